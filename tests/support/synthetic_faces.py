"""Tiny insightface-compatible face models, made with onnx.helper at test time.

No face model can be downloaded here, and the real ones are licensed for research only, so the
always-on tests use two small ONNX graphs that insightface's own `model_zoo` (and the pack's runtime,
idea/onnx_faces) routes exactly like a real pack: a detector with the 9 SCRFD outputs (strides
8/16/32, 2 anchors, 5 keypoints; each output `[K*2, C]` with no batch dim) whose constants encode
chosen faces, and a recogniser `Conv -> Relu -> Flatten -> MatMul` with seeded weights (different
crops give different embeddings). The detector can also take SCRFD's other layouts (LAYOUTS: no
keypoints, 5 strides with 1 anchor, a leading batch axis).

Coordinates: faces are given in the ORIGINAL image's pixels when `image_hw` is passed, else in the
detector-input (letterboxed `det_size` square) pixels. insightface letterboxes an image into the
top-left of a `det_size` square keeping its aspect ratio and divides the decoded boxes by the scale
it used; `detector_scale` reproduces that scale, so a pack written for one image size returns the
chosen boxes (to float32 rounding) for any image of that size. Each face sits at its own stride-32
anchor (the one nearest its centre); faces whose boxes overlap by IoU > 0.4 would be merged by NMS.
"""
from __future__ import annotations

import logging
import pathlib
from typing import NamedTuple, Sequence

import numpy as np

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
NUM_ANCHORS = 2
FACE_STRIDE = 32  # the chosen faces live at stride-32 anchors
OPSET = 17
IR_VERSION = 8  # old enough for every onnxruntime a ComfyUI install may have
REC_SIZE = 112
# insightface's 5-point ArcFace template for a 112x112 crop: eyes, nose, mouth corners.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)

Face = tuple  # (box [x1, y1, x2, y2], kps 5x2) or (box, kps, score)


class DetectorLayout(NamedTuple):
    """One of SCRFD's output layouts (the number of outputs is what routes and decodes it)."""

    strides: tuple[int, ...] = STRIDES
    anchors: int = NUM_ANCHORS
    keypoints: bool = True
    batched: bool = False  # each output [1, rows, C] instead of [rows, C]

    @property
    def outputs(self) -> int:
        return len(self.strides) * (3 if self.keypoints else 2)


SCRFD_9 = DetectorLayout()  # antelopev2's scrfd_10g_bnkps, buffalo_l's det_10g
LAYOUTS = {"9 outputs": SCRFD_9,
           "6 outputs, no keypoints": DetectorLayout(keypoints=False),
           "15 outputs, 5 strides, 1 anchor": DetectorLayout((8, 16, 32, 64, 128), 1),
           "10 outputs, no keypoints": DetectorLayout((8, 16, 32, 64, 128), 1, keypoints=False),
           "9 outputs, batched": DetectorLayout(batched=True)}


def face_in_box(x1: float, y1: float, size: float) -> tuple[np.ndarray, np.ndarray]:
    """A square face box at (x1, y1) with plausible keypoints (the ArcFace template scaled in), so
    alignment crops a sensible region."""
    box = np.array([x1, y1, x1 + size, y1 + size], dtype=np.float64)
    kps = ARCFACE_TEMPLATE * (size / REC_SIZE) + np.array([x1, y1])
    return box, kps


def detector_scale(image_hw: Sequence[int], det_size: int) -> float:
    """The factor insightface's detector applies to an image of this size (its letterbox rule)."""
    height, width = int(image_hw[0]), int(image_hw[1])
    if height / width > 1.0:
        new_height = det_size
    else:
        new_height = int(det_size * (height / width))
    return float(new_height) / height


def to_detector_coords(points: np.ndarray, image_hw: Sequence[int], det_size: int) -> np.ndarray:
    """Image pixels -> detector-input pixels (boxes or keypoints alike)."""
    return np.asarray(points, dtype=np.float64) * detector_scale(image_hw, det_size)


def two_faces(image_hw: Sequence[int] = (512, 512)) -> list[Face]:
    """Two non-overlapping faces of different sizes in an image of this size: the large one on the
    left, the small one on the right. The SMALL one scores higher (0.95 vs 0.90), so insightface
    lists it first and "largest face" cannot pass by taking the first."""
    height, width = int(image_hw[0]), int(image_hw[1])
    big = min(height, width) * 0.45
    small = big * 0.5
    big_box, big_kps = face_in_box(width * 0.05, height * 0.25, big)
    small_box, small_kps = face_in_box(width * 0.60, height * 0.30, small)
    return [(big_box, big_kps, 0.90), (small_box, small_kps, 0.95)]


def _encode_faces(faces: Sequence[Face], det_size: int, layout: DetectorLayout = SCRFD_9) -> dict[str, np.ndarray]:
    """The output tensors (keyed score_/bbox_/kps_<stride>) that decode to these faces."""
    outs = {}
    for stride in layout.strides:
        rows = (det_size // stride) ** 2 * layout.anchors
        outs[f"score_{stride}"] = np.zeros((rows, 1), np.float32)
        outs[f"bbox_{stride}"] = np.zeros((rows, 4), np.float32)
        outs[f"kps_{stride}"] = np.zeros((rows, 10), np.float32)
    side = det_size // FACE_STRIDE
    used = set()
    for face in faces:
        box = np.asarray(face[0], np.float64)
        kps = np.asarray(face[1], np.float64).reshape(5, 2)
        score = float(face[2]) if len(face) > 2 else 1.0
        col = int(np.clip(round((box[0] + box[2]) / 2 / FACE_STRIDE), 0, side - 1))
        row = int(np.clip(round((box[1] + box[3]) / 2 / FACE_STRIDE), 0, side - 1))
        if (row, col) in used:
            raise ValueError(f"two faces share the stride-{FACE_STRIDE} anchor ({row}, {col})")
        used.add((row, col))
        centre = np.array([col, row], np.float64) * FACE_STRIDE
        index = (row * side + col) * layout.anchors  # the first anchor of that cell
        distances = np.concatenate([centre - box[:2], box[2:] - centre]) / FACE_STRIDE
        outs[f"score_{FACE_STRIDE}"][index, 0] = score
        outs[f"bbox_{FACE_STRIDE}"][index] = distances
        outs[f"kps_{FACE_STRIDE}"][index] = ((kps - centre) / FACE_STRIDE).reshape(-1)
    return outs


def detector_model(faces: Sequence[Face], det_size: int = 640, dynamic_input: bool = False,
                   layout: DetectorLayout = SCRFD_9):
    """An SCRFD-layout detector that returns `faces` (detector-input coordinates) for any image.

    With a fixed input (default) insightface keeps `det_size` whatever `prepare` asks for; with
    `dynamic_input` it takes the size from `prepare`, which must then equal `det_size`."""
    from onnx import TensorProto, helper, numpy_helper

    outs = {name: value[None] if layout.batched else value
            for name, value in _encode_faces(faces, det_size, layout).items()}
    kinds = ("score", "bbox", "kps") if layout.keypoints else ("score", "bbox")
    order = [f"{kind}_{s}" for kind in kinds for s in layout.strides]
    shape = ["N", 3, "H", "W"] if dynamic_input else [1, 3, det_size, det_size]
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["mean"], name="ReduceMean_0", keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"], name="Mul_0")]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outputs = []
    for name in order:
        inits.append(numpy_helper.from_array(outs[name], f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "nothing"], [name], name=f"Add_{name}"))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(outs[name].shape)))
    graph = helper.make_graph(nodes, "synthetic_scrfd",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, shape)],
                              outputs, inits)
    return _finish(graph)


def recognizer_model(emb_dim: int = 512, seed: int = 0):
    """An ArcFace-layout recogniser ['N',3,112,112] -> ['N',emb_dim]; its node names avoid Sub/Mul
    so insightface normalises its input with mean 127.5 / std 127.5 as for a real ArcFace."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    channels, kernel = 8, 8
    flat = channels * (REC_SIZE // kernel) ** 2
    weight = (rng.standard_normal((channels, 3, kernel, kernel)) / kernel).astype(np.float32)
    bias = (rng.standard_normal(channels) * 0.1).astype(np.float32)
    proj = (rng.standard_normal((flat, emb_dim)) / np.sqrt(flat)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input.1", "conv_w", "conv_b"], ["feat"], name="Conv_0",
                              kernel_shape=[kernel, kernel], strides=[kernel, kernel]),
             helper.make_node("Relu", ["feat"], ["act"], name="Relu_1"),
             helper.make_node("Flatten", ["act"], ["flat"], name="Flatten_2", axis=1),
             helper.make_node("MatMul", ["flat", "proj"], ["embedding"], name="MatMul_3")]
    inits = [numpy_helper.from_array(weight, "conv_w"), numpy_helper.from_array(bias, "conv_b"),
             numpy_helper.from_array(proj, "proj")]
    graph = helper.make_graph(
        nodes, "synthetic_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, REC_SIZE, REC_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", emb_dim])], inits)
    return _finish(graph)


def other_task_model(side: int):
    """A model of another task in a real pack, which the loaders skip: 192 px in = landmarks
    (antelopev2's 1k3d68, 2d106det), 96 px = gender and age (genderage)."""
    from onnx import TensorProto, helper
    nodes = [helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["out"])]
    graph = helper.make_graph(nodes, "other_task",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, side, side])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])])
    return _finish(graph)


def _finish(graph):
    from onnx import checker, helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="idea-tests")
    model.ir_version = IR_VERSION
    checker.check_model(model)
    return model


def pack_dir(models_root: pathlib.Path, name: str) -> pathlib.Path:
    """Where FaceAnalysis(name=name, root=<models_root>/insightface) looks for a pack's files."""
    return pathlib.Path(models_root) / "insightface" / "models" / name


def write_synthetic_pack(models_root: pathlib.Path, name: str, faces: Sequence[Face],
                         det_size: int = 640, emb_dim: int = 512,
                         image_hw: Sequence[int] | None = None, dynamic_input: bool = False,
                         seed: int = 0, layout: DetectorLayout = SCRFD_9) -> pathlib.Path:
    """Write <models_root>/insightface/models/<name>/{det.onnx, rec.onnx} and return that folder.

    `faces` are (box, kps[, score]) in image pixels of an image of size `image_hw`, or in detector
    input pixels when `image_hw` is None. An empty list gives a pack that detects no face."""
    import onnx

    if image_hw is not None:
        faces = [(to_detector_coords(f[0], image_hw, det_size),
                  to_detector_coords(f[1], image_hw, det_size), *f[2:]) for f in faces]
    folder = pack_dir(models_root, name)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(detector_model(faces, det_size, dynamic_input, layout), str(folder / "det.onnx"))
    onnx.save(recognizer_model(emb_dim, seed), str(folder / "rec.onnx"))
    log.debug("synthetic face pack %s: %d face(s), det %d, emb %d", folder, len(faces), det_size,
              emb_dim)
    return folder


def write_no_face_pack(models_root: pathlib.Path, name: str = "synthetic_noface",
                       det_size: int = 640, emb_dim: int = 512) -> pathlib.Path:
    """A pack whose detector finds nothing (every score 0)."""
    return write_synthetic_pack(models_root, name, [], det_size=det_size, emb_dim=emb_dim)


def write_two_face_pack(models_root: pathlib.Path, name: str = "synthetic_twofaces",
                        image_hw: Sequence[int] = (512, 512), det_size: int = 640,
                        emb_dim: int = 512) -> pathlib.Path:
    """A pack that finds `two_faces(image_hw)` (large left, small right, small one listed first)."""
    return write_synthetic_pack(models_root, name, two_faces(image_hw), det_size=det_size,
                                emb_dim=emb_dim, image_hw=image_hw)


def noise_image(height: int = 512, width: int = 512, seed: int = 0) -> np.ndarray:
    """A deterministic RGB uint8 image with structure at every scale, so that different face crops
    give clearly different embeddings."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3)).repeat(16, 0).repeat(16, 1)
    fine = rng.integers(0, 64, (height, width, 3))
    return np.clip(coarse[:height, :width] * 0.75 + fine, 0, 255).astype(np.uint8)

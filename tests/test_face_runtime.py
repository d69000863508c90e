"""The pack's own ONNX face runtime (idea/onnx_faces) with no ComfyUI host and no insightface.

Routing by ONNX signature, SCRFD detection in every layout, the alignment feeding the recogniser, the
errors a user can meet, and the environment's onnxruntime. Marked `standalone`: tools/bare_install.sh
runs these in a fresh venv holding only requirements.txt (+ torch, pillow, pytest, onnx), built with
no C compiler. The agreement with insightface 0.7.3 is tests/test_face_runtime_reference.py.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from idea import face_models
from idea.face_models import FaceModelError, load_face_models
from idea.face_pipeline import detect_faces, embed_photos, recognition_embedding
from idea.onnx_faces import node_names, pixels
from idea.onnx_faces.arcface import ARCFACE_TEMPLATE, ArcFaceRecognizer, template_for
from idea.onnx_faces.routing import signature_kind
from idea.onnx_faces.scrfd import ScrfdDetector
from support import paths, real_faces, synthetic_faces
from support.synthetic_faces import LAYOUTS, face_in_box, noise_image, other_task_model, write_synthetic_pack

pytestmark = pytest.mark.standalone


def bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


def load(folder, det_size: int = 640):
    models = load_face_models(folder, "CPU")
    models.prepare_detector(det_size)
    return models


# --- routing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("inputs,outputs,kind", [
    ([[1, 3, 640, 640]], 9, "detection"), ([["N", 3, "H", "W"]], 6, "detection"),
    ([[1, 3, "?", "?"]], 10, "detection"), ([[1, 3, 640, 640]], 15, "detection"),
    ([[1, 3, 640, 640]], 12, "skip"),  # YuNet as shipped: not an SCRFD layout
    ([["N", 3, 112, 112]], 1, "recognition"), ([[1, 3, 224, 224]], 1, "recognition"),
    ([["N", 3, 112, 112]], 2, "skip"),
    ([[1, 3, 192, 192]], 1, "skip"),  # 2d106det / 1k3d68 (landmarks)
    ([["None", 3, 96, 96]], 1, "skip"),  # genderage
    ([[1, 3, 128, 128], [1, 512]], 1, "skip"),  # inswapper
    ([[1, 3, 100, 100]], 1, "skip"), ([[1, 3, 120, 120]], 1, "skip"), ([["N", 3, "H", "W"]], 1, "skip"),
])
def test_files_are_routed_by_their_signature_as_insightface_does(inputs, outputs, kind):
    assert signature_kind(inputs, outputs)[0] == kind


def test_a_pack_with_the_other_models_of_antelopev2_loads_its_detector_and_recogniser(tmp_path):
    import onnx
    box, kps = face_in_box(100, 100, 150)
    folder = write_synthetic_pack(tmp_path, "antelope_like", [(box, kps)], image_hw=(400, 400))
    for name, side in (("1k3d68.onnx", 192), ("2d106det.onnx", 192), ("genderage.onnx", 96)):
        onnx.save(other_task_model(side), str(folder / name))  # sorted before det.onnx / rec.onnx
    models = load(folder)
    assert models.detector.path.name == "det.onnx" and models.recognizer.path.name == "rec.onnx"
    assert len(detect_faces(models, bgr(noise_image(400, 400)))) == 1


@pytest.mark.parametrize("emb_dim", [512, 128])
def test_synthetic_pack_is_routed_with_its_layout_and_normalisation(tmp_path, emb_dim):
    box, kps = face_in_box(100, 100, 200)
    models = load(write_synthetic_pack(tmp_path, "synth", [(box, kps)], emb_dim=emb_dim))
    assert isinstance(models.detector, ScrfdDetector) and isinstance(models.recognizer, ArcFaceRecognizer)
    assert models.detector.strides == (8, 16, 32) and models.detector.anchors == 2
    assert models.detector.has_keypoints and models.detector.input_size == (640, 640)
    assert models.embedding_size == emb_dim and models.recognizer.input_size == 112
    assert (models.recognizer.input_mean, models.recognizer.input_std) == (127.5, 127.5)
    assert models.providers == ("CPUExecutionProvider",)


def test_a_recogniser_that_normalises_itself_gets_raw_pixels(tmp_path):
    """SFace (converted) starts with `_minusscalar0` and `_mulscalar0`: insightface's rule for
    MXNet exports, mean 0 / std 1."""
    models = load(real_faces.write_real_pack(tmp_path))
    assert (models.recognizer.input_mean, models.recognizer.input_std) == (0.0, 1.0)
    assert models.embedding_size == real_faces.EMBEDDING_SIZE
    assert models.detector.model_input_size == (640, 640)


def test_node_names_are_read_as_onnx_reads_them(tmp_path):
    import onnx
    det, rec = real_faces.converted_models()
    synth = write_synthetic_pack(tmp_path, "synth", [face_in_box(10, 10, 100)])
    for path in (det, rec, synth / "det.onnx", synth / "rec.onnx"):
        expected = [n.name for n in onnx.load(str(path), load_external_data=False).graph.node[:8]]
        assert node_names.first_node_names(path) == expected, path
    assert node_names.first_node_names(rec, 2) == ["_minusscalar0", "_mulscalar0"]


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07 truncated download\xff\xff")
    with pytest.raises(ValueError):
        node_names.first_node_names(path)


# --- detection ----------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [name for name, layout in LAYOUTS.items() if layout.keypoints])
@pytest.mark.parametrize("image_hw", [(480, 640), (700, 500), (640, 640)])
def test_every_scrfd_layout_returns_exactly_the_chosen_face(tmp_path, layout, image_hw):
    box, kps = face_in_box(image_hw[1] * 0.3, image_hw[0] * 0.2, 190)
    folder = write_synthetic_pack(tmp_path, "synth", [(box, kps)], image_hw=image_hw, layout=LAYOUTS[layout])
    faces = detect_faces(load(folder), bgr(noise_image(*image_hw)))
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, box, atol=1e-3)
    np.testing.assert_allclose(faces[0].keypoints, kps, atol=1e-3)
    assert faces[0].score == pytest.approx(1.0)


@pytest.mark.parametrize("layout", [name for name, layout in LAYOUTS.items() if not layout.keypoints])
def test_a_detector_without_keypoints_is_refused_with_the_fix(tmp_path, layout):
    folder = write_synthetic_pack(tmp_path, "nokps", [face_in_box(100, 100, 200)], layout=LAYOUTS[layout])
    with pytest.raises(FaceModelError, match=r"gives no keypoints.*5 landmarks"):
        detect_faces(load(folder), bgr(noise_image(640, 640)))


def test_a_dynamic_detector_uses_the_detection_size(tmp_path):
    box, kps = face_in_box(64, 96, 128)
    folder = write_synthetic_pack(tmp_path, "dyn", [(box, kps)], det_size=480, dynamic_input=True)
    models = load(folder, det_size=480)
    assert models.detector.model_input_size is None and models.detector.input_size == (480, 480)
    faces = detect_faces(models, bgr(noise_image(960, 960)))  # twice the detector's side
    np.testing.assert_allclose(faces[0].box, box * 2, atol=1e-3)
    models.prepare_detector(640)  # outputs sized for 480 no longer fit: said, not garbage
    with pytest.raises(FaceModelError, match=r"gives output 'score_8' of shape \[7200, 1\].*\[12800, 1\]"):
        detect_faces(models, bgr(noise_image(960, 960)))


def test_two_faces_come_strongest_first_and_overlapping_boxes_merge(tmp_path):
    image_hw = (512, 768)
    (big_box, _, _), (small_box, _, _) = synthetic_faces.two_faces(image_hw)
    faces = detect_faces(load(synthetic_faces.write_two_face_pack(tmp_path, "two", image_hw=image_hw)),
                         bgr(noise_image(*image_hw)))
    assert [f.score for f in faces] == pytest.approx([0.95, 0.90])
    np.testing.assert_allclose([faces[0].box, faces[1].box], [small_box, big_box], atol=1e-3)
    boxes = np.array([[0, 0, 100, 100, 0.9], [5, 5, 105, 105, 0.95], [300, 300, 350, 350, 0.8]], np.float32)
    from idea.onnx_faces.scrfd import non_maximum_suppression
    assert non_maximum_suppression(boxes, 0.4) == [1, 2]


def test_no_face_pack_finds_nothing(tmp_path):
    models = load(synthetic_faces.write_no_face_pack(tmp_path, "empty"))
    assert detect_faces(models, bgr(noise_image())) == []


# --- alignment and pixels -----------------------------------------------------------------------

def test_the_crop_puts_the_keypoints_on_the_arcface_template(tmp_path):
    """Bright dots at the 5 keypoints of a rotated, scaled face land on the template's pixels."""
    models = load(write_synthetic_pack(tmp_path, "align", [face_in_box(100, 100, 200)]))
    angle, scale, shift = 0.3, 2.1, np.array([180.0, 140.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    keypoints = (ARCFACE_TEMPLATE.astype(np.float64) - 56) @ rotation.T * scale + shift
    photo = np.zeros((480, 640, 3), np.uint8)
    for x, y in keypoints.round().astype(int):
        photo[y - 2:y + 3, x - 2:x + 3] = 255
    crop = models.recognizer.align(photo, keypoints)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE:
        patch = crop[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2]
        assert patch.max() > 200, (x, y)
    assert crop.mean() < 20  # only the dots are bright


def test_templates_for_other_recogniser_sides():
    np.testing.assert_allclose(template_for(224), ARCFACE_TEMPLATE * 2, rtol=1e-6)
    np.testing.assert_allclose(template_for(128), ARCFACE_TEMPLATE + [8, 0], rtol=1e-6)


def test_the_similarity_estimate_recovers_a_similarity_exactly():
    angle, scale, shift = -0.4, 0.7, np.array([12.5, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.array([[10, 20], [80, 25], [45, 60], [20, 90], [75, 95]], np.float64)
    matrix = pixels.similarity_estimate(src, src @ (scale * rotation).T + shift)
    np.testing.assert_allclose(matrix, np.concatenate([scale * rotation, shift[:, None]], 1), atol=1e-4)


def test_warp_and_resize_keep_what_they_should():
    photo = noise_image(90, 120)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_array_equal(pixels.warp_affine(photo, identity, 80), photo[:80, :80])
    shifted = pixels.warp_affine(photo, np.array([[1.0, 0, 5], [0, 1.0, 7]]), 80)
    np.testing.assert_array_equal(shifted[7:, 5:], photo[:73, :75])
    assert not shifted[:7].any() and not shifted[:, :5].any()  # black outside the photo
    np.testing.assert_array_equal(pixels.resize_bilinear(photo, 120, 90), photo)
    flat = np.full((64, 48, 3), 77, np.uint8)
    for width, height in ((24, 32), (100, 133), (7, 5)):
        np.testing.assert_array_equal(pixels.resize_bilinear(flat, width, height), np.full((height, width, 3), 77))
    ramp = np.repeat(np.arange(0, 256, 16, dtype=np.uint8)[None, :, None], 3, axis=2)  # 1 x 16
    up = pixels.resize_bilinear(ramp, 64, 1)[0, :, 0].astype(int)
    assert (np.diff(up) >= 0).all() and up[0] == 0 and up[-1] == 240


# --- the real pack and the pipeline -------------------------------------------------------------

def test_real_photos_one_person_close_another_far(tmp_path):
    """The node's own path (embed_photos) on the sdist's photos: needs no ComfyUI."""
    from support.images import to_image_tensor
    models = load_face_models(real_faces.write_real_pack(tmp_path), "CPU")
    means = {}
    for name in ("obama", "obama2", "obama3", "biden"):
        face, crops = embed_photos(models, to_image_tensor(real_faces.load_photo(name)), crop_size=128)
        assert face.dim == 128 and crops.shape == (1, 128, 128, 3)
        means[name] = face.mean.numpy()
    assert min(float(means["obama"] @ means[n]) for n in ("obama2", "obama3")) > 0.6
    assert max(float(means["biden"] @ means[n]) for n in ("obama", "obama2", "obama3")) < 0.45


def test_recognition_embedding_is_the_recognisers_raw_output(tmp_path):
    models = load(real_faces.write_real_pack(tmp_path))
    photo = real_faces.load_photo("obama")
    face = detect_faces(models, bgr(photo))[0]
    row = recognition_embedding(models, bgr(photo), face.keypoints)
    crop = models.recognizer.align(photo, face.keypoints)
    np.testing.assert_array_equal(row, models.recognizer.embed_crop(crop))
    assert row.shape == (128,) and np.linalg.norm(row) > 1.0  # not normalised here


# --- errors and the environment -----------------------------------------------------------------

def test_a_corrupt_model_file_is_named_with_the_fix(tmp_path):
    folder = write_synthetic_pack(tmp_path, "corrupt", [face_in_box(100, 100, 150)])
    (folder / "rec.onnx").write_bytes(b"\x08\x07 truncated download")
    with pytest.raises(FaceModelError, match=r"cannot load face model .*rec\.onnx.*intact copy"):
        load_face_models(folder, "CPU")


def test_a_pack_of_foreign_models_has_no_detector(tmp_path):
    import onnx
    folder = tmp_path / "foreign"
    folder.mkdir()
    onnx.save(other_task_model(192), str(folder / "2d106det.onnx"))
    with pytest.raises(FaceModelError, match=r"has no face detector and no recognition model.*antelopev2"):
        load_face_models(folder, "CPU")


def test_without_onnxruntime_the_error_names_the_pip_line(tmp_path):
    folder = write_synthetic_pack(tmp_path, "noort", [face_in_box(100, 100, 150)])
    script = textwrap.dedent(f"""
        import sys
        sys.modules["onnxruntime"] = None  # as if not installed: `import onnxruntime` fails
        sys.path.insert(0, {str(paths.REPO / 'tests')!r})
        import conftest  # loads idea/ on its own, as the tests do
        from idea.face_models import FaceModelError, load_face_models
        try:
            load_face_models({str(folder)!r}, "auto")
        except FaceModelError as exc:
            print("ERROR:", exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "ERROR:" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    message = result.stdout.split("ERROR:", 1)[1]
    assert "onnxruntime is not installed" in message and "pip install onnxruntime-gpu" in message
    assert "insightface" not in message


def test_exactly_one_onnxruntime_distribution_is_installed():
    """What requirements.txt promises (and tools/bare_install.sh checks in a fresh venv): two of them
    overwrite each other's files and break the CUDA provider."""
    found = face_models.onnxruntime_distributions()
    listed = subprocess.run([sys.executable, "-m", "pip", "list", "--format", "json"], capture_output=True,
                            text=True, check=True).stdout
    by_pip = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    assert set(found) <= by_pip and {"onnxruntime", "onnxruntime-gpu"} & by_pip <= set(found)
    assert len(found) == 1, f"{found} installed; keep exactly one: {face_models.ONE_ONNXRUNTIME}"


def test_several_onnxruntimes_are_warned_about_with_the_fix(caplog):
    with caplog.at_level(logging.WARNING):
        assert not face_models.warn_if_several_onnxruntimes(["onnxruntime-gpu"])
        assert caplog.text == ""
        assert face_models.warn_if_several_onnxruntimes(["onnxruntime", "onnxruntime-gpu"])
    assert "onnxruntime and onnxruntime-gpu are installed together" in caplog.text
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in caplog.text

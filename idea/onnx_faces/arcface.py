"""The recogniser of a pack (ArcFace layout): align a face by its 5 keypoints, embed the crop.

Facts of insightface 0.7.3 this follows (model_zoo/arcface_onnx.py, utils/face_align.py):
- input: one square image side S (112 in antelopev2/buffalo_l), RGB, NCHW float32,
  (pixel - mean) * (1 / std) with mean = std = 127.5, unless one of the graph's first 8 nodes is
  named Sub*/_minus* and one Mul*/_mul* (a model exported from MXNet that normalises itself):
  then mean 0, std 1;
- alignment ("norm_crop"): the similarity taking the 5 keypoints closest to the ArcFace template
  (eyes, nose tip, mouth corners in a 112 px crop) scaled by S / 112, or for sides that are
  multiples of 128 scaled by S / 128 and shifted right by 8 * S / 128; the photo warped by it,
  bilinear, black outside.
"""
from __future__ import annotations

import pathlib

import numpy as np

from .node_names import first_node_names
from .pixels import similarity_estimate, warp_affine

# insightface's template (float32 there; the alignment is computed from the float32 values).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
NORMALISING_NODES = (("Sub", "_minus"), ("Mul", "_mul"))
NAMES_CHECKED = 8


def normalisation(path: pathlib.Path) -> tuple[float, float]:
    """(mean, std) the recogniser's input needs, from the names of its first nodes."""
    names = first_node_names(path, NAMES_CHECKED)
    normalises_itself = all(any(n.startswith(prefixes) for n in names) for prefixes in NORMALISING_NODES)
    return (0.0, 1.0) if normalises_itself else (127.5, 127.5)


def template_for(side: int) -> np.ndarray:
    """Where the 5 keypoints go in a `side` px crop."""
    if side % 112 != 0 and side % 128 == 0:
        ratio = side / 128.0
        return ARCFACE_TEMPLATE * ratio + np.array([8.0 * ratio, 0.0], dtype=np.float32)
    return ARCFACE_TEMPLATE * (side / 112.0)  # 112-multiples, and (insightface refuses them) any other side


class ArcFaceRecognizer:
    """One onnxruntime session holding an ArcFace-layout recogniser."""

    def __init__(self, path: pathlib.Path, session):
        self.path = pathlib.Path(path)
        self.session = session
        model_input = session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_size = int(model_input.shape[2])
        self.output_name = session.get_outputs()[0].name
        self.output_shape = list(session.get_outputs()[0].shape)
        self.input_mean, self.input_std = normalisation(self.path)

    @property
    def embedding_size(self) -> int | None:
        size = self.output_shape[-1]
        return size if isinstance(size, int) else None

    def align(self, rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """The [S, S, 3] uint8 crop the recogniser sees, from an RGB uint8 photo and its 5 keypoints."""
        template = template_for(self.input_size)
        matrix = similarity_estimate(np.asarray(keypoints, dtype=np.float32), template)
        return warp_affine(rgb, matrix, self.input_size)

    def embed_crop(self, crop: np.ndarray) -> np.ndarray:
        """The raw (unnormalised) embedding of one aligned RGB crop."""
        blob = (crop.astype(np.float32) - np.float32(self.input_mean)) * np.float32(1.0 / self.input_std)
        blob = np.ascontiguousarray(blob.transpose(2, 0, 1)[None])
        out = self.session.run([self.output_name], {self.input_name: blob})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def embed(self, rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        return self.embed_crop(self.align(rgb, keypoints))

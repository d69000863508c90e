"""Run an insightface model pack's ONNX files without insightface (numpy + onnxruntime only).

Why: insightface 0.7.3 is a source package that needs a C++ compiler (most Windows installs have
none), and insightface 2.x pulls in the CPU onnxruntime and the GUI OpenCV, which next to
onnxruntime-gpu gives two onnxruntimes in one environment. The pack needs only a small part of it:
routing a pack's files by their ONNX signature, SCRFD detection and the ArcFace 5-point alignment
feeding the recogniser. That part lives here, reproducing insightface 0.7.3's results (the same
faces, keypoints and embeddings on the same packs; tests/test_face_runtime_reference.py compares
the two), including OpenCV's resize and warp arithmetic, without OpenCV (ComfyUI does not ship it).

- routing.py: which file of a pack is the detector, which the recogniser, which are skipped;
- scrfd.py: the detector; arcface.py: alignment and the recogniser;
- pixels.py: OpenCV-equal resize and affine warp, and the similarity estimate;
- node_names.py: the first node names of an ONNX file (the recogniser's normalisation rule).
"""
from __future__ import annotations

from ..errors import IDEAError


class FaceModelError(IDEAError, RuntimeError):
    """A face model pack is missing, incomplete or cannot run; the message names the fix."""

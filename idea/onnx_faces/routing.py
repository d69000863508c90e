"""Which model of a pack a file is, from its ONNX signature (file names do not matter).

insightface 0.7.3's model_zoo decides in this order, and so does this: 5 or more outputs -> a
detector; a 192 x 192 input -> a 2D/3D landmark model (2d106det, 1k3d68); 96 x 96 -> gender/age;
two inputs at 128 x 128 -> a face swapper; a square input of at least 112 px, a multiple of 16,
with one output -> an ArcFace recogniser. The pack uses only the detector and the recogniser: the
others are skipped. Unlike insightface, a file that fits no known layout is skipped with a reason
instead of failing later: a detector output count other than 6/9/10/15, a recogniser with several
outputs, an input whose size is not fixed.
"""
from __future__ import annotations

import logging
import pathlib

from . import FaceModelError
from .arcface import ArcFaceRecognizer
from .scrfd import LAYOUTS, ScrfdDetector

log = logging.getLogger(__name__)

OTHER_TASKS = {192: "landmarks", 96: "gender and age"}


def signature_kind(input_shapes: list[list], output_count: int) -> tuple[str, str]:
    """('detection' | 'recognition' | 'skip', why) for a model's input shapes and output count."""
    shape = input_shapes[0]
    if output_count >= 5:
        if output_count in LAYOUTS:
            return "detection", f"SCRFD layout, {output_count} outputs"
        return "skip", f"{output_count} outputs, not an SCRFD layout (6, 9, 10 or 15)"
    if len(shape) != 4:
        return "skip", f"input of rank {len(shape)}, not an image"
    height, width = shape[2], shape[3]
    if not (isinstance(height, int) and isinstance(width, int)):
        return "skip", f"input size {height} x {width} is not fixed"
    if height == width and height in OTHER_TASKS:
        return "skip", f"a {OTHER_TASKS[height]} model ({height} x {width} input)"
    if len(input_shapes) == 2 and height == width == 128:
        return "skip", "a face swapper (two inputs)"
    if height == width and height >= 112 and height % 16 == 0:
        if output_count == 1:
            return "recognition", f"ArcFace layout, {height} x {width} input"
        return "skip", f"{output_count} outputs where a recogniser has one"
    return "skip", f"input {height} x {width} fits no face model of a pack"


def open_model(path: pathlib.Path, providers: list[str]):
    """The pack model in `path` (ScrfdDetector, ArcFaceRecognizer) or None for one the pack skips.
    A file onnxruntime cannot load is a FaceModelError naming the file and the fix."""
    import onnxruntime
    try:
        session = onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # a truncated download, a foreign file
        raise _unloadable(path, exc) from exc
    kind, why = signature_kind([list(i.shape) for i in session.get_inputs()], len(session.get_outputs()))
    if kind == "skip":
        log.info("face pack file %s skipped: %s", path.name, why)
        return None
    try:
        return ScrfdDetector(path, session) if kind == "detection" else ArcFaceRecognizer(path, session)
    except (OSError, ValueError) as exc:  # e.g. unreadable node names
        raise _unloadable(path, exc) from exc


def _unloadable(path: pathlib.Path, exc: Exception) -> FaceModelError:
    return FaceModelError(f"cannot load face model {path}: {exc}. Replace the file with an intact copy "
                          "or remove it from the pack folder.")

"""The detector of a pack (SCRFD layout, as antelopev2's scrfd_10g_bnkps and buffalo_l's det_10g).

Facts of insightface 0.7.3 this follows (model_zoo/retinaface.py, which its model_zoo routes SCRFD
files to):
- outputs: scores, then box distances, then (if present) keypoint offsets, one output per stride;
  6 outputs = strides 8/16/32 with 2 anchors per cell and no keypoints, 9 = the same with 5
  keypoints, 10 / 15 = strides 8..128 with 1 anchor (without / with keypoints). Each output is
  `[rows, C]`, rows = cells * anchors in row-major cell order (a leading batch axis of 1 is allowed);
- input: the photo resized (keeping its aspect ratio) into the top-left of a black canvas of the
  model's fixed input size, or of det_size x det_size where the input is dynamic; RGB NCHW float32,
  (pixel - 127.5) / 128;
- decoding: an anchor at (column, row) * stride; a box is the anchor minus/plus the distances
  (left, top, right, bottom) times the stride, a keypoint the anchor plus its offset times the stride;
  rows scoring at least the threshold (0.5) are kept, ordered by score, and greedy non-maximum
  suppression (IoU over 0.4, areas counted with insightface's +1 pixel) leaves one box per face;
  coordinates are divided by the resize factor to return to the photo's pixels.
"""
from __future__ import annotations

import pathlib

import numpy as np

from . import FaceModelError
from .pixels import resize_bilinear

# number of outputs -> (strides, anchors per cell, has keypoints)
LAYOUTS = {6: ((8, 16, 32), 2, False), 9: ((8, 16, 32), 2, True),
           10: ((8, 16, 32, 64, 128), 1, False), 15: ((8, 16, 32, 64, 128), 1, True)}
INPUT_MEAN, INPUT_STD = 127.5, 128.0
NMS_THRESHOLD = 0.4


def fixed_input_size(shape) -> tuple[int, int] | None:
    """(width, height) when the model's input has a fixed spatial size, else None."""
    height, width = shape[2], shape[3]
    return (width, height) if isinstance(height, int) and isinstance(width, int) else None


class ScrfdDetector:
    """One onnxruntime session holding an SCRFD-layout face detector."""

    def __init__(self, path: pathlib.Path, session):
        self.path = pathlib.Path(path)
        self.session = session
        model_input = session.get_inputs()[0]
        self.input_name = model_input.name
        self.output_names = [o.name for o in session.get_outputs()]
        self.strides, self.anchors, self.has_keypoints = LAYOUTS[len(self.output_names)]
        self.model_input_size = fixed_input_size(model_input.shape)
        self.input_size = self.model_input_size
        self.threshold = 0.5
        self._anchor_cache: dict[tuple[int, int, int], np.ndarray] = {}

    def prepare(self, input_size: tuple[int, int], threshold: float = 0.5) -> None:
        """A fixed-size model keeps its own size (as in insightface, det_size only sizes dynamic ones)."""
        self.input_size = self.model_input_size or tuple(input_size)
        self.threshold = threshold

    def letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(the detector's canvas holding the resized photo in its top-left, the resize factor)."""
        width, height = self.input_size
        photo_ratio = rgb.shape[0] / rgb.shape[1]
        if photo_ratio > height / width:
            new_height = height
            new_width = max(int(new_height / photo_ratio), 1)
        else:
            new_width = width
            new_height = max(int(new_width * photo_ratio), 1)
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        canvas[:new_height, :new_width] = resize_bilinear(rgb, new_width, new_height)
        return canvas, float(new_height) / rgb.shape[0]

    def _anchor_centres(self, rows: int, cols: int, stride: int) -> np.ndarray:
        key = (rows, cols, stride)
        if key not in self._anchor_cache:
            ys, xs = np.mgrid[:rows, :cols]
            centres = (np.stack([xs, ys], axis=-1).astype(np.float32) * stride).reshape(-1, 2)
            self._anchor_cache[key] = np.repeat(centres, self.anchors, axis=0)
        return self._anchor_cache[key]

    def _output(self, outputs: list, index: int, rows: int, width: int) -> np.ndarray:
        out = np.asarray(outputs[index], dtype=np.float32)
        if out.ndim == 3 and out.shape[0] == 1:  # a batched export
            out = out[0]
        if out.shape != (rows, width):
            raise FaceModelError(
                f"the face detector {self.path} gives output '{self.output_names[index]}' of shape "
                f"{list(out.shape)} where the SCRFD layout needs [{rows}, {width}]; it is not a detector "
                "this pack can run. Use the detector of an antelopev2 or buffalo_l pack.")
        return out

    def _candidates(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(scores, boxes, keypoints) of every anchor row at or above the threshold, in canvas pixels."""
        outputs = self.session.run(self.output_names, {self.input_name: blob})
        levels = len(self.strides)
        scores, boxes, keypoints = [], [], []
        for level, stride in enumerate(self.strides):
            rows, cols = blob.shape[2] // stride, blob.shape[3] // stride
            count = rows * cols * self.anchors
            centres = self._anchor_centres(rows, cols, stride)
            score = self._output(outputs, level, count, 1)[:, 0]
            keep = np.nonzero(score >= self.threshold)[0]
            distance = self._output(outputs, levels + level, count, 4)[keep] * stride
            anchor = centres[keep]
            scores.append(score[keep])
            boxes.append(np.concatenate([anchor - distance[:, :2], anchor + distance[:, 2:]], axis=1))
            if self.has_keypoints:
                offsets = self._output(outputs, 2 * levels + level, count, 10)[keep] * stride
                keypoints.append(anchor[:, None, :] + offsets.reshape(-1, 5, 2))
        return (np.concatenate(scores), np.concatenate(boxes),
                np.concatenate(keypoints) if self.has_keypoints else None)

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Faces in an RGB uint8 photo: ([N, 5] x1, y1, x2, y2, score; [N, 5, 2] keypoints or None),
        in photo pixels, strongest first."""
        if self.input_size is None:
            raise FaceModelError(f"the face detector {self.path} has a dynamic input size and was not "
                                 "prepared with a detection size")
        canvas, factor = self.letterbox(rgb)
        blob = (canvas.astype(np.float32) - np.float32(INPUT_MEAN)) * np.float32(1.0 / INPUT_STD)
        blob = np.ascontiguousarray(blob.transpose(2, 0, 1)[None])
        scores, boxes, keypoints = self._candidates(blob)
        order = scores.argsort()[::-1]
        dets = np.concatenate([boxes / factor, scores[:, None]], axis=1).astype(np.float32)[order]
        keep = non_maximum_suppression(dets, NMS_THRESHOLD)
        kept_keypoints = None if keypoints is None else (keypoints / factor)[order][keep]
        return dets[keep], kept_keypoints


def non_maximum_suppression(dets: np.ndarray, threshold: float) -> list[int]:
    """Indices of the boxes kept, strongest first: each box drops the weaker ones it overlaps by an
    IoU over `threshold` (areas count the end pixels, as in insightface)."""
    x1, y1, x2, y2, scores = (dets[:, i] for i in range(5))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        overlap_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        overlap_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        inter = overlap_w * overlap_h
        iou = inter / (areas[best] + areas[rest] - inter)
        order = rest[iou <= threshold]
    return kept

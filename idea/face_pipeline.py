"""Detect, select, align and embed one face per photo (docs/method.md, component 1).

The recogniser gets insightface's canonical 112 px alignment; the crops handed to the user (and to
training) use the same 5-point similarity alignment at the framing the user chose (idea/face_framing.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .face_embedding import FaceEmbedding
from .face_framing import DEFAULT_FRAMING, warp_crop
from .errors import InputError
from .face_models import FaceModelError, FaceModels
from .images import as_rgb_batch

log = logging.getLogger(__name__)

SELECTIONS = ("largest", "index")
# Narrower faces give the recogniser too little to go on (it sees 112 px crops) and training crops
# that are mostly upscaling blur.
MIN_FACE_PX = 64


class FaceNotFoundError(InputError):
    """A photo has no usable face (or not the one asked for); the message names the photo and fix."""


class FaceTooSmallError(InputError):
    """The chosen face is narrower than MIN_FACE_PX; the message names the photo and the fix."""


@dataclass
class DetectedFace:
    box: np.ndarray  # [4] x1, y1, x2, y2
    score: float
    keypoints: np.ndarray  # [5, 2]

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


def images_to_bgr_uint8(images: torch.Tensor, node: str = "FaceID Embed") -> list[np.ndarray]:
    """ComfyUI IMAGE ([B,H,W,C] float in 0..1; grey, RGB or RGBA) -> insightface's BGR uint8 arrays."""
    rgb = as_rgb_batch(images, node)
    arr = (rgb.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    return [np.ascontiguousarray(a[..., ::-1]) for a in arr]


def detect_faces(models: FaceModels, bgr: np.ndarray) -> list[DetectedFace]:
    """Every face the pack's detector finds in a BGR uint8 photo, strongest first."""
    boxes, kpss = models.detector.detect(np.ascontiguousarray(bgr[..., ::-1]))
    if kpss is None and boxes.shape[0]:
        raise FaceModelError("the face detector gives no keypoints; use a detector with 5 landmarks "
                             "(SCRFD *_bnkps, as in antelopev2 or buffalo_l)")
    return [DetectedFace(boxes[i, :4].astype(np.float64), float(boxes[i, 4]), kpss[i].astype(np.float64))
            for i in range(boxes.shape[0])]


def blown_out(bgr: np.ndarray) -> bool:
    """Mostly white (over 3/4 of the pixels): what ComfyUI's Load Image makes of a 16-bit PNG (it clips it)."""
    return bool((bgr >= 250).all(axis=-1).mean() > 0.75)


def select_face(faces: list[DetectedFace], selection: str, index: int, photo: int, total: int,
                hint: str = "") -> DetectedFace:
    """`largest` by box area, or `index` counting faces left to right from 0. `hint`: a likely cause
    to add when there is no face."""
    where = f"photo {photo + 1} of {total}"
    if not faces:
        raise FaceNotFoundError(
            f"no face found in {where}.{hint} Use a photo where the face is clearly visible and at least "
            f"about {MIN_FACE_PX} px wide, try a larger detection size, or remove that photo from the batch.")
    if selection == "largest":
        return max(faces, key=lambda f: f.area)
    if selection != "index":
        raise InputError(f"unknown face selection '{selection}'; choose one of {SELECTIONS}")
    ordered = sorted(faces, key=lambda f: f.box[0])
    if not 0 <= index < len(ordered):
        raise FaceNotFoundError(f"{where} has {len(ordered)} face(s) (index 0..{len(ordered) - 1} from the "
                                f"left), but face index {index} was asked for; lower the face index.")
    return ordered[index]


def check_face_size(face: DetectedFace, photo: int, total: int) -> None:
    width = float(face.box[2] - face.box[0])
    if width < MIN_FACE_PX:
        raise FaceTooSmallError(
            f"the face in photo {photo + 1} of {total} is only {width:.0f} px wide; ID-EA needs faces at least "
            f"{MIN_FACE_PX} px wide. Use a closer or higher-resolution photo of the face (upscaling adds no "
            "detail), or remove that photo from the batch.")


def recognition_embedding(models: FaceModels, bgr: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The recogniser's raw embedding of the face at `keypoints`, aligned as insightface aligns it."""
    return models.recognizer.embed(np.ascontiguousarray(bgr[..., ::-1]), keypoints)


def embed_photos(models: FaceModels, images: torch.Tensor, det_size: int = 640, selection: str = "largest",
                 index: int = 0, crop_size: int = 512,
                 framing: str = DEFAULT_FRAMING) -> tuple[FaceEmbedding, torch.Tensor]:
    """One face per photo -> the face embedding and the aligned crops ([N, S, S, 3] float RGB) at
    `framing` (idea/face_framing.py), which the embedding records."""
    models.prepare_detector(det_size)
    rgb = as_rgb_batch(images, "FaceID Embed")
    bgr_images = images_to_bgr_uint8(rgb)
    rows, scores, kps_all, boxes, crops = [], [], [], [], []
    for i, bgr in enumerate(bgr_images):
        faces = detect_faces(models, bgr)
        hint = (" It is almost entirely white, which is what Load Image makes of a 16-bit PNG: save the photo "
                "as an 8-bit PNG or a JPEG." if not faces and blown_out(bgr) else "")
        face = select_face(faces, selection, index, i, len(bgr_images), hint)
        check_face_size(face, i, len(bgr_images))
        rows.append(torch.from_numpy(recognition_embedding(models, bgr, face.keypoints)))
        scores.append(face.score)
        kps_all.append(torch.from_numpy(face.keypoints))
        boxes.append(torch.from_numpy(face.box))
        crops.append(warp_crop(rgb[i].detach().cpu(), face.keypoints, crop_size, framing))
    embedding = FaceEmbedding.from_rows(torch.stack(rows), models.name, torch.tensor(scores),
                                        torch.stack(kps_all), torch.stack(boxes), framing)
    log.info("embedded %d face(s) with %s (size %d)", embedding.count, models.name, embedding.dim)
    return embedding, torch.stack(crops)

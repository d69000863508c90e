"""How much the faces in generated images look like the reference person (a likeness readout).

Each image's largest face (or, in a picture of several people, the one at a given position from the
left) is embedded with the recogniser that made the reference, and compared by cosine with the
reference's normalised mean. An image without a face is a miss, not an error:
generations that lose the face are exactly what the user wants to count. Cosines are only
comparable within one recogniser, so a reference from another model pack is refused.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError
from .face_embedding import FaceEmbedding
from .face_models import FaceModels
from .face_pipeline import (FaceNotFoundError, detect_faces, images_to_bgr_uint8, recognition_embedding,
                            select_face)

log = logging.getLogger(__name__)


class FaceModelMismatchError(InputError):
    """The reference embedding comes from another recogniser than the chosen model pack."""


@dataclass(frozen=True)
class SimilarityReport:
    """Per-image cosine similarity to the reference; None where no face was found."""

    scores: tuple[float | None, ...]

    @property
    def found(self) -> list[float]:
        return [s for s in self.scores if s is not None]

    @property
    def mean(self) -> float:
        """Mean over the images with a face (0.0 when none has one; see `face_share`)."""
        return float(np.mean(self.found)) if self.found else 0.0

    @property
    def face_share(self) -> float:
        return len(self.found) / len(self.scores) if self.scores else 0.0

    def per_image(self, miss: float = 0.0) -> list[float]:
        """One number per image, `miss` standing in where there was no face."""
        return [miss if s is None else s for s in self.scores]

    def text(self) -> str:
        parts = [f"image {i + 1}: " + ("no face" if s is None else f"{s:.2f}") for i, s in enumerate(self.scores)]
        total = len(self.scores)
        if self.found:
            summary = f"mean {self.mean:.2f} over {len(self.found)}/{total} images with a face"
        else:
            summary = f"no face in any of the {total} images"
        return ", ".join(parts) + "; " + summary


def check_same_recogniser(reference: FaceEmbedding, models: FaceModels) -> None:
    """Refuse a reference made by another model pack (or of another size) than `models`."""
    if reference.model_name != models.name or reference.dim != models.embedding_size:
        raise FaceModelMismatchError(
            f"the reference was embedded with {reference.model_name} (size {reference.dim}), but the chosen "
            f"model pack is {models.name} (size {models.embedding_size}); choose the same model pack as in "
            "FaceID Embed, since similarities from different recognisers cannot be compared.")


def chosen_face_embedding(models: FaceModels, bgr: np.ndarray, selection: str = "largest",
                          index: int = 0) -> np.ndarray | None:
    """The L2-normalised embedding of the chosen face in one BGR image (the largest, or the index-th
    from the left), or None when there is no such face."""
    try:
        face = select_face(detect_faces(models, bgr), selection, index, photo=0, total=1)
    except FaceNotFoundError:
        return None
    row = recognition_embedding(models, bgr, face.keypoints)
    return row / max(float(np.linalg.norm(row)), 1e-12)


def face_similarity(models: FaceModels, images: torch.Tensor, reference: FaceEmbedding, det_size: int = 640,
                    selection: str = "largest", index: int = 0) -> SimilarityReport:
    """Cosine of each image's chosen face with the reference's normalised mean embedding. With
    several people in a picture, `index` picks whose face is scored (0 = leftmost), so each person
    can be compared with their own reference."""
    check_same_recogniser(reference, models)
    models.prepare_detector(det_size)
    target = torch.nn.functional.normalize(reference.mean.detach().float().cpu(), dim=-1).numpy()
    scores: list[float | None] = []
    for bgr in images_to_bgr_uint8(images, "Face Similarity"):
        row = chosen_face_embedding(models, bgr, selection, index)
        scores.append(None if row is None else float(row @ target))
    report = SimilarityReport(tuple(scores))
    log.info("face similarity with %s: %s", models.name, report.text())
    return report

"""The face-embedding value that FaceID Embed produces and every later stage consumes."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .face_framing import DEFAULT_FRAMING


def normalised_mean(rows: torch.Tensor) -> torch.Tensor:
    """The identity's direction: the mean of L2-normalised rows, renormalised."""
    return torch.nn.functional.normalize(rows.mean(dim=0), dim=-1)


@dataclass(frozen=True)
class FaceEmbedding:
    """Per-photo L2-normalised embeddings plus their normalised mean (docs/method.md, component 1).

    The size is read from the recognition model (512 for ArcFace packs, 128 for SFace), never assumed.
    """

    embeddings: torch.Tensor  # [N, F] float32, each row L2-normalised
    mean: torch.Tensor  # [F] float32, mean of the rows, normalised again
    model_name: str  # the insightface model pack folder, e.g. "antelopev2"
    det_scores: torch.Tensor  # [N] detector confidence of the chosen face in each photo
    keypoints: torch.Tensor  # [N, 5, 2] the 5 landmarks in source-image pixels (x, y)
    boxes: torch.Tensor  # [N, 4] x1, y1, x2, y2 in source-image pixels
    # How the aligned crops made with this embedding frame the face (idea/face_framing.py); the
    # identity made from it records it, so one can tell what its tokens were trained on.
    framing: str = DEFAULT_FRAMING

    @property
    def dim(self) -> int:
        return int(self.mean.shape[-1])

    @property
    def count(self) -> int:
        return int(self.embeddings.shape[0])

    def subset(self, indices: list[int]) -> "FaceEmbedding":
        """The value for only these photos. Rows are kept bit for bit and the mean is computed as
        from_rows computes it, so it equals the embedding of those photos alone."""
        index = torch.as_tensor(indices, dtype=torch.long)
        rows = self.embeddings[index]
        return FaceEmbedding(rows, normalised_mean(rows), self.model_name, self.det_scores[index],
                             self.keypoints[index], self.boxes[index], self.framing)

    @staticmethod
    def from_rows(rows: torch.Tensor, model_name: str, det_scores: torch.Tensor,
                  keypoints: torch.Tensor, boxes: torch.Tensor, framing: str = DEFAULT_FRAMING) -> "FaceEmbedding":
        """Normalise raw recogniser outputs and build the value (mean of normalised rows, renormalised)."""
        rows = rows.detach().to(torch.float32)
        normed = torch.nn.functional.normalize(rows, dim=-1)
        return FaceEmbedding(normed, normalised_mean(normed), model_name, det_scores.to(torch.float32),
                             keypoints.to(torch.float32), boxes.to(torch.float32), framing)

"""Do the reference photos show one person? Each photo against the mean of the others.

A photo of somebody else among the references makes ID-EA learn a blend of two people, silently.
Each photo's embedding is compared (cosine) with the normalised mean of the other photos' embeddings:
with several photos of one person every score is high, and a photo of another person scores about as
low as two strangers do, while the others barely move (their mean still holds the majority). That
mean hides an even split (two photos each of two people score about 0.58 against it, whoever they
are), so a photo must also match at least half of the other photos one by one.

What counts as "the same person" depends on the recogniser (measured with the real SFace model on
the test photos: same person 0.74-0.81 pairwise, Obama against Biden at most 0.29; the ArcFace
models of antelopev2/buffalo_l score the same person lower), so the threshold is chosen by the
recogniser's embedding size unless the user gives one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .errors import InputError
from .face_embedding import FaceEmbedding

log = logging.getLogger(__name__)

ACTIONS = ("stop", "warn", "drop")
# Cosine with the mean of the other photos below which a photo "looks like someone else", by the
# recogniser's embedding size. 128 = OpenCV's SFace: strangers measured at most 0.32 (13 faces), the
# same person at least 0.74 pairwise; OpenCV's own verification threshold for it is 0.363.
# 512 = insightface's ArcFace packs (antelopev2, buffalo_l): lower, as they score the same person
# lower; not measured here (no ArcFace model can be had offline), see docs/nodes.md, FaceID Embed.
THRESHOLDS = {128: 0.40, 512: 0.25}
DEFAULT_THRESHOLD = 0.30  # another recogniser: between the two


class ReferenceMismatchError(InputError):
    """Some reference photos look like another person than the rest."""


def threshold_for(dim: int, chosen: float = 0.0) -> float:
    """The user's threshold when given (> 0), else the one for a recogniser of this embedding size."""
    return float(chosen) if chosen > 0.0 else THRESHOLDS.get(int(dim), DEFAULT_THRESHOLD)


def leave_one_out_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """[N] cosine of each L2-normalised row with the normalised mean of the other rows (N >= 2)."""
    rows = torch.nn.functional.normalize(embeddings.detach().double(), dim=-1)
    others = rows.sum(0, keepdim=True) - rows  # each row's complement sum; its direction is the mean's
    return torch.nn.functional.cosine_similarity(rows, others, dim=-1).float()


def pairwise_matches(embeddings: torch.Tensor, threshold: float) -> torch.Tensor:
    """[N] how many of the other photos each photo matches (cosine >= threshold) one by one."""
    rows = torch.nn.functional.normalize(embeddings.detach().double(), dim=-1)
    same = (rows @ rows.T) >= threshold
    return same.sum(1) - same.diagonal().long()


@dataclass(frozen=True)
class Agreement:
    similarities: tuple[float, ...]  # per photo, with the mean of the others (empty for one photo)
    matches: tuple[int, ...]  # per photo, how many other photos it matches one by one
    threshold: float
    count: int

    def is_odd(self, i: int) -> bool:
        return self.similarities[i] < self.threshold or 2 * self.matches[i] < self.count - 1

    @property
    def odd(self) -> list[int]:
        """Indices of the photos that look like someone else: below the threshold against the mean of
        the others, or matching fewer than half of the other photos."""
        return [i for i in range(len(self.similarities)) if self.is_odd(i)]

    def describe_odd(self) -> str:
        return ", ".join(f"photo {i + 1} ({self.similarities[i]:.2f})" for i in self.odd)

    def text(self) -> str:
        """One line per photo, as the node shows it."""
        if self.count < 2:
            return f"{self.count} photo: nothing to compare it with"
        lines = [f"photo {i + 1}: {s:.2f} with the others, matches {self.matches[i]} of {self.count - 1}"
                 + ("  <- looks like someone else" if self.is_odd(i) else "")
                 for i, s in enumerate(self.similarities)]
        verdict = (f"{len(self.odd)} of {self.count} photos below {self.threshold:.2f}" if self.odd
                   else f"all {self.count} photos agree (threshold {self.threshold:.2f})")
        return "\n".join(lines + [verdict])


def measure_agreement(embedding: FaceEmbedding, threshold: float = 0.0) -> Agreement:
    """How well every reference photo agrees with the others (threshold 0: by recogniser)."""
    limit = threshold_for(embedding.dim, threshold)
    if embedding.count < 2:
        return Agreement((), (), limit, embedding.count)
    scores = leave_one_out_similarity(embedding.embeddings)
    matches = pairwise_matches(embedding.embeddings, limit)
    return Agreement(tuple(float(s) for s in scores), tuple(int(m) for m in matches), limit, embedding.count)


def mismatch_message(agreement: Agreement, model_name: str) -> str:
    return (f"the reference photos do not all show the same person: {agreement.describe_odd()} "
            f"{'looks' if len(agreement.odd) == 1 else 'look'} like someone else (cosine with the mean of "
            f"the other photos; {model_name} counts below {agreement.threshold:.2f} as another person, as "
            "it does a photo that matches fewer than half of the others). "
            "Remove that photo, set on_mismatch to 'drop' to leave such photos out, or to 'warn' to keep "
            "them; a photo that is merely dark, blurred or turned away can also score low.")


def apply_agreement(embedding: FaceEmbedding, agreement: Agreement, action: str) -> list[int]:
    """The indices of the photos to keep under `action` (stop / warn / drop); stop raises
    ReferenceMismatchError naming the odd photos. Drop keeps the rest only when they are a clear
    majority that agrees among itself; otherwise it cannot tell who is meant and stops."""
    if action not in ACTIONS:
        raise InputError(f"on_mismatch must be one of {ACTIONS}, got {action!r}")
    everyone = list(range(embedding.count))
    if not agreement.odd or action == "warn":
        return everyone
    message = mismatch_message(agreement, embedding.model_name)
    if action == "stop":
        raise ReferenceMismatchError(message)
    kept = [i for i in everyone if i not in agreement.odd]
    if len(kept) * 2 <= embedding.count:
        raise ReferenceMismatchError(
            f"{message} With on_mismatch 'drop' the photos that agree must be the majority, but only "
            f"{len(kept)} of {embedding.count} do, so it cannot tell which person is meant: give photos of "
            "one person.")
    rest = measure_agreement(embedding.subset(kept), agreement.threshold)
    if rest.odd:
        raise ReferenceMismatchError(
            f"{message} After leaving those out, {rest.describe_odd()} of the remaining photos still "
            "disagree: give photos of one person.")
    return kept


def check_references(embedding: FaceEmbedding, crops: torch.Tensor, action: str = "stop",
                     threshold: float = 0.0) -> tuple[FaceEmbedding, torch.Tensor, str]:
    """FaceID Embed's check: (embedding, crops) of the photos kept under `action`, and the agreement
    text per photo (which also says what was dropped or let through)."""
    agreement = measure_agreement(embedding, threshold)
    kept = apply_agreement(embedding, agreement, action)
    text = agreement.text()
    if len(kept) < embedding.count:
        log.warning("leaving out %s: %s", agreement.describe_odd(), mismatch_message(agreement, embedding.model_name))
        text += f"\ndropped {agreement.describe_odd()}; using {len(kept)} photos"
        return embedding.subset(kept), crops[torch.as_tensor(kept, dtype=torch.long)], text
    if agreement.odd:
        log.warning("%s (on_mismatch is 'warn': going on)", mismatch_message(agreement, embedding.model_name))
        text += "\nkept all photos anyway (on_mismatch: warn)"
    return embedding, crops, text

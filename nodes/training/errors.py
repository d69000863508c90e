"""How a training run that cannot go on is reported (titled `ID-EA.<Name>` in the UI, see idea/errors)."""
from __future__ import annotations

import torch

from ...idea.errors import IDEAError


class TrainingStoppedError(IDEAError, RuntimeError):
    """Training stopped before the end (the loss became inf/nan); the last good save is kept."""


class TrainingOutOfMemoryError(IDEAError, torch.OutOfMemoryError):
    """Out of memory while training. It stays a torch.OutOfMemoryError, so the host also adds its
    memory tips and frees the models it holds, as for any out-of-memory error."""

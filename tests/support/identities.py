"""Identity files with random contents for tests that need one on disk (any base, open gate)."""
from __future__ import annotations

import torch

from idea.identity import IdentityEmbedding
from idea.identity_writing import save_identity
from support.random_identities import WIDTHS, context_width


def write_identity(path, arch: str, seed: int, face_dim: int = 512) -> None:
    gen = torch.Generator().manual_seed(seed)
    widths = WIDTHS[arch]
    initial = {key: torch.randn(2, width, generator=gen) for key, width in widths.items()}
    face = torch.randn(face_dim, generator=gen)
    identity = IdentityEmbedding.create(arch, initial, torch.randn(2, context_width(arch), generator=gen),
                                        face / face.norm(), "synthetic", seed=seed)
    with torch.no_grad():
        identity.adapter.gamma.fill_(1.0)  # a trained adapter: its gate is open
    save_identity(identity, path, overwrite=True)

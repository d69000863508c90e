"""ID-Enhancer: fuses the face embedding with the textual ID anchor into K identity tokens Z.

The face embedding lives in a recogniser's space that the text encoder never saw; attending from it
over the anchor (celebrity-name states in the UNet's context space) lands it in that context space
(docs/method.md, component 3). The clean [K, D_ctx] form is used instead of the released code's
[K, 2*D] plus a mapping back; both express the same family of functions.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import apply_linear, check_heads, multi_head_attention, seeded_linear


class IDEnhancer(nn.Module):
    """E(f, A) -> Z: expand f to D_ctx, repeat for K query slots, attend over the anchor, project.

    Keys and values share one Linear applied to the anchor, as the method describes. The K query slots
    start from the same expanded face vector, so (as in the released code) the K rows of Z are equal.
    Inputs are moved to the module's device and dtype; Z comes back in the module's dtype.
    """

    def __init__(self, face_dim: int, ctx_dim: int, num_tokens: int = 2, heads: int = 8, seed: int = 0):
        super().__init__()
        if face_dim < 1 or ctx_dim < 1 or num_tokens < 1:
            raise ValueError(f"IDEnhancer needs positive sizes, got face_dim={face_dim}, "
                             f"ctx_dim={ctx_dim}, num_tokens={num_tokens}")
        check_heads(ctx_dim, heads)
        self.face_dim = face_dim
        self.ctx_dim = ctx_dim
        self.num_tokens = num_tokens
        self.heads = heads
        generator = torch.Generator().manual_seed(seed)
        self.expander = seeded_linear(face_dim, ctx_dim, generator)
        self.query = seeded_linear(ctx_dim, ctx_dim, generator)
        self.key_value = seeded_linear(ctx_dim, ctx_dim, generator)
        self.output = seeded_linear(ctx_dim, ctx_dim, generator)

    @classmethod
    def seeded(cls, face_dim: int, ctx_dim: int, num_tokens: int, seed: int, heads: int = 8) -> "IDEnhancer":
        """The same weights for the same seed on any machine; the global RNG is left untouched."""
        return cls(face_dim, ctx_dim, num_tokens=num_tokens, heads=heads, seed=seed)

    def forward(self, face: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        """face [F] or [B,F], anchor [K_a,D_ctx] -> Z [K,D_ctx] or [B,K,D_ctx]."""
        single = face.dim() == 1
        if face.dim() not in (1, 2) or face.shape[-1] != self.face_dim:
            raise ValueError(f"face embedding must be [{self.face_dim}] or [B, {self.face_dim}], "
                             f"got {list(face.shape)}")
        if anchor.dim() != 2 or anchor.shape[-1] != self.ctx_dim:
            raise ValueError(f"anchor must be [tokens, {self.ctx_dim}], got {list(anchor.shape)}")
        param = self.expander.weight
        faces = face.to(device=param.device, dtype=param.dtype)
        faces = faces.unsqueeze(0) if single else faces
        batch = faces.shape[0]
        expanded = apply_linear(self.expander, faces)  # [B, D]
        slots = expanded.unsqueeze(1).expand(batch, self.num_tokens, self.ctx_dim)
        queries = apply_linear(self.query, slots)
        anchor_tokens = anchor.to(device=param.device, dtype=param.dtype)
        keys_values = apply_linear(self.key_value, anchor_tokens).unsqueeze(0).expand(batch, -1, -1)
        fused = apply_linear(self.output, multi_head_attention(queries, keys_values, keys_values, self.heads))
        return fused[0] if single else fused

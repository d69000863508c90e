"""ID-Adapter: injects the identity tokens Z into the text condition every cross-attention reads.

y' = y + weight * beta * tanh(gamma) * SA([y ; W_z Z])[:, :L]   (method.md, component 4)

gamma starts at 0, so training begins from the unmodified model, and a strength of 0 must give back
the host's conditioning untouched (not y + 0 * x, which turns inf into nan).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import apply_linear, check_heads, multi_head_attention, seeded_linear


class IDAdapter(nn.Module):
    """Self-attention over the L text tokens plus the K projected identity tokens, gated by tanh(gamma).

    The math runs in the adapter's own parameter dtype on the context's device (weights are copied
    there per call when they live elsewhere; move the module once to avoid that copy), and the result
    is returned in the context's dtype, so an fp32 adapter serves fp16/bf16 models unchanged.
    """

    def __init__(self, ctx_dim: int, heads: int = 8, beta: float = 0.4, seed: int = 0):
        super().__init__()
        if ctx_dim < 1:
            raise ValueError(f"IDAdapter needs a positive context size, got {ctx_dim}")
        check_heads(ctx_dim, heads)
        if not math.isfinite(beta):
            raise ValueError(f"beta must be finite, got {beta}")
        self.ctx_dim = ctx_dim
        self.heads = heads
        self.beta = float(beta)
        generator = torch.Generator().manual_seed(seed)
        self.id_projection = seeded_linear(ctx_dim, ctx_dim, generator)  # W_z
        self.to_q = seeded_linear(ctx_dim, ctx_dim, generator)
        self.to_k = seeded_linear(ctx_dim, ctx_dim, generator)
        self.to_v = seeded_linear(ctx_dim, ctx_dim, generator)
        self.to_out = seeded_linear(ctx_dim, ctx_dim, generator)
        self.gamma = nn.Parameter(torch.zeros(()))

    def _is_pass_through(self, weight: float) -> bool:
        """True when the output is exactly y and no gradient is needed. At gamma == 0 during training
        the full path still runs: d(tanh(gamma))/d(gamma) = 1 there, so gamma must get its gradient."""
        if weight == 0.0 or self.beta == 0.0:
            return True
        gamma_needs_grad = torch.is_grad_enabled() and self.gamma.requires_grad
        return not gamma_needs_grad and float(self.gamma.detach()) == 0.0

    def forward(self, context: torch.Tensor, id_tokens: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
        """context [B,L,D], id_tokens Z [K,D] or [B,K,D] (or [1,K,D]) -> [B,L,D] in context's dtype."""
        if context.dim() != 3 or context.shape[-1] != self.ctx_dim:
            raise ValueError(f"context must be [batch, tokens, {self.ctx_dim}], got {list(context.shape)}")
        if id_tokens.dim() not in (2, 3) or id_tokens.shape[-1] != self.ctx_dim:
            raise ValueError(f"identity tokens must be [K, {self.ctx_dim}] or [batch, K, {self.ctx_dim}], "
                             f"got {list(id_tokens.shape)}")
        if self._is_pass_through(weight):
            return context
        batch, length, _ = context.shape
        compute_dtype = self.gamma.dtype
        y = context.to(compute_dtype)
        z = id_tokens.to(device=context.device, dtype=compute_dtype)
        z = z.unsqueeze(0) if z.dim() == 2 else z
        if z.shape[0] not in (1, batch):
            raise ValueError(f"identity tokens batch {z.shape[0]} does not match the context batch {batch}")
        z = z.expand(batch, -1, -1)
        tokens = torch.cat([y, apply_linear(self.id_projection, z)], dim=1)
        attended = multi_head_attention(apply_linear(self.to_q, tokens), apply_linear(self.to_k, tokens),
                                        apply_linear(self.to_v, tokens), self.heads)
        update = apply_linear(self.to_out, attended)[:, :length]
        gate = self.gamma.to(device=context.device)
        scale = weight * self.beta * torch.tanh(gate)
        return (y + scale * update).to(context.dtype)

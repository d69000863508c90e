"""ID-Adapter: injects the identity tokens Z into the text condition every cross-attention reads.

y' = y + weight * beta * tanh(gamma) * SA([y ; W_z Z])[:, :L]   (docs/method.md, component 4)

gamma starts at 0, so training begins from the unmodified model, and a strength of 0 must give back
the host's conditioning untouched (not y + 0 * x, which turns inf into nan).

A context longer than one text-encoder window (a long prompt, or a short one the host repeated to
batch it with a longer one) is adapted window by window: see `adapt_by_chunks`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import apply_linear, check_heads, multi_head_attention, seeded_linear

# One text-encoder window: the host encodes a long prompt 77 tokens at a time, and training only ever
# showed the adapter one such window.
CHUNK_TOKENS = 77


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


def adapt_by_chunks(adapter: IDAdapter, context: torch.Tensor, id_tokens: torch.Tensor, weight: float = 1.0,
                    chunk_tokens: int | None = CHUNK_TOKENS) -> torch.Tensor:
    """y' with every `chunk_tokens` window of the context adapted on its own, each against all of Z.

    Why: the adapter's self-attention runs over [y ; W_z Z], so on a longer y the identity tokens get a
    smaller share of attention. The host encodes each 77-token chunk of a long prompt separately, and
    repeats a shorter context to the length of a longer one before batching cond with uncond
    (comfy/conds.py, CONDCrossAttn.concat); window by window, y' is the same however the host pads or
    batches. Each window is one call of the shape training used, so a single window (every training
    context) is exactly `adapter(context, id_tokens, weight)`. A length that is no multiple of the
    window (no SD1.x/SD2.x/SDXL text encoder makes one) is adapted as a whole. chunk_tokens None: the
    context is one sequence (FLUX.1's T5-XXL states have no windows, and the host never pads cond and
    uncond to a common length for it), adapted whole.
    """
    length = context.shape[1] if context.dim() == 3 else 0
    if chunk_tokens is None or length <= chunk_tokens or length % chunk_tokens:
        return adapter(context, id_tokens, weight)
    windows = context.split(chunk_tokens, dim=1)
    return torch.cat([adapter(window, id_tokens, weight) for window in windows], dim=1)

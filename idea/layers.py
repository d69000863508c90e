"""Building blocks shared by the ID-Enhancer and the ID-Adapter.

Both modules must be reproducible from a seed without touching the global RNG (a node that builds an
identity must not change the sampler's random stream), and both need plain multi-head attention.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def seeded_linear(in_features: int, out_features: int, generator: torch.Generator) -> nn.Linear:
    """An nn.Linear with PyTorch's default init distribution (uniform in +-1/sqrt(fan_in)), drawn from
    `generator`. Built on the meta device first so the global RNG is never consumed. Inside
    `with torch.device("meta")` it stays there: shapes without memory, which is how the identity
    loader learns a module's shapes before it allocates anything."""
    device = "meta" if torch.get_default_device().type == "meta" else "cpu"
    layer = nn.Linear(in_features, out_features, device="meta").to_empty(device=device)
    bound = 1.0 / math.sqrt(in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def check_heads(dim: int, heads: int) -> None:
    """Fail early with a readable message instead of a reshape error deep inside attention."""
    if heads < 1 or dim % heads != 0:
        raise ValueError(f"attention heads ({heads}) must divide the feature size ({dim}); "
                         f"768, 1024 and 2048 all work with 8 heads")


def apply_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """F.linear with the layer's weights brought to x's device and dtype (a no-op when they match),
    so a module kept on one device still serves inputs on another while gradients still flow."""
    weight = layer.weight.to(device=x.device, dtype=x.dtype)
    bias = layer.bias.to(device=x.device, dtype=x.dtype)
    return F.linear(x, weight, bias)


def multi_head_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Scaled dot-product attention split into `heads` heads; q [B,Tq,D], k and v [B,Tk,D] -> [B,Tq,D]."""
    batch, q_len, dim = q.shape
    head_dim = dim // heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], t.shape[1], heads, head_dim).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(batch, q_len, dim)

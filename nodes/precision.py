"""Precision, attention-kernel and gradient-checkpointing choices for training on the host's UNet
(or FLUX.1 transformer)."""
from __future__ import annotations

import contextlib
import logging

import torch
import torch.utils.checkpoint

from .flux_autograd import adds_residuals_in_place, recomputed_in_backward

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
CHECKPOINTING = ("auto", "on", "off")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(choice: str, device: torch.device) -> str:
    """auto: bf16 on a CUDA GPU that supports it, else fp16 on a CUDA GPU; fp32 on the CPU, MPS and
    other devices (their autocast support varies, and fp32 is what the released run used)."""
    if choice not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if choice != "auto":
        return choice
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def resolve_checkpointing(choice: str, arch: str) -> bool:
    """auto: on for SDXL and FLUX.1 (their activations dominate memory: docs/flux.md's table), off for
    SD1.x/SD2.x."""
    if choice not in CHECKPOINTING:
        raise ValueError(f"gradient_checkpointing must be one of {CHECKPOINTING}")
    return choice == "on" or (choice == "auto" and arch in ("sdxl", "flux"))


def autocast_for(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def sdpa_for_backward(device: torch.device):
    """The SDPA kernel for backward through the host's CLIP attention on CUDA: the memory-efficient
    kernel fails on the 77x77 causal mask ("attn_bias is not correctly aligned"); the math kernel is
    the one verified to work (on an H200). Only the text encoder runs under it."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.MATH])


_CONTAINERS = (torch.nn.ModuleList, torch.nn.Sequential, torch.nn.ModuleDict)


def _outermost_layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The highest modules below `module` that are called through their own forward (the UNet calls
    the layers inside its Sequential blocks one by one, so the blocks themselves cannot be wrapped)."""
    found = []
    for child in module.children():
        if isinstance(child, _CONTAINERS):
            found += _outermost_layers(child)
        else:
            found.append(child)
    return found


def _checkpointed(forward):
    def run(*args, **kwargs):
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return run


@contextlib.contextmanager
def gradient_checkpointing(model_patcher, enabled: bool):
    """Recompute each UNet layer (FLUX.1: each double- and single-stream block) in backward instead of
    storing its activations.

    The layers are shared with every clone of the model, so their forwards are swapped only for the
    duration of training and always restored (the host's TrainLoraNode does the same)."""
    if not enabled:
        yield
        return
    unet = model_patcher.model.diffusion_model
    layers = [m for name in ("input_blocks", "middle_block", "output_blocks", "double_blocks", "single_blocks")
              if getattr(unet, name, None) is not None for m in _outermost_layers(getattr(unet, name))]
    # FLUX's blocks add residuals in place, which torch's checkpoint would silently get wrong
    wrap = recomputed_in_backward if adds_residuals_in_place(model_patcher) else _checkpointed
    try:
        for layer in layers:
            layer.forward = wrap(type(layer).forward.__get__(layer))
        log.info("gradient checkpointing on %d UNet layers", len(layers))
        yield
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)

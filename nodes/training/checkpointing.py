"""Gradient checkpointing of the host's UNet (or FLUX.1 transformer) for training: the node's
`gradient_checkpointing` input resolved per base, and the layers' forwards swapped for recomputing
ones for the duration of a run."""
from __future__ import annotations

import contextlib
import logging

import torch
import torch.utils.checkpoint

from .flux_autograd import adds_residuals_in_place, recomputed_in_backward

log = logging.getLogger(__name__)

CHECKPOINTING = ("auto", "on", "off")


def resolve_checkpointing(choice: str, arch: str) -> bool:
    """auto: on for SDXL and FLUX.1 (their activations dominate memory: docs/flux.md's table), off for
    SD1.x/SD2.x."""
    if choice not in CHECKPOINTING:
        raise ValueError(f"gradient_checkpointing must be one of {CHECKPOINTING}")
    return choice == "on" or (choice == "auto" and arch in ("sdxl", "flux"))


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

"""Let autograd run through frozen host models, cheaply, for the duration of training.

The host executes every node in inference mode, so a checkpoint loaded by a loader node holds
inference tensors, which autograd refuses to save for backward. Copying the weights would double
the model's memory; instead each inference tensor is aliased by a normal tensor over the same storage
(no copy). Weights that are normal tensors but still require grad are flagged frozen, so autograd
does not keep every layer's input for a weight gradient nobody asks for. Everything is put back
afterwards.
"""
from __future__ import annotations

import contextlib
import logging

import torch

log = logging.getLogger(__name__)


def _alias(tensor: torch.Tensor) -> torch.Tensor:
    """A normal tensor viewing the inference tensor's memory (set_ outside inference mode)."""
    return torch.empty(0, dtype=tensor.dtype, device=tensor.device).set_(
        tensor.untyped_storage(), tensor.storage_offset(), tensor.size(), tensor.stride())


def clone_saved(tensor: torch.Tensor) -> torch.Tensor:
    """Snapshot what autograd saves from a residual stream (it requires grad: it depends on the
    learned vectors), which the host then adds to in place (its CLIP and T5 layers, FLUX's blocks).
    Weights, their per-step casts, masks and position embeddings need no copy: should the host ever
    modify one of those in place, autograd's version check fails loudly rather than computing a wrong
    gradient. Used as torch.autograd.graph.saved_tensors_hooks(clone_saved, keep_saved)."""
    return tensor.clone() if tensor.requires_grad else tensor


def keep_saved(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


@contextlib.contextmanager
def host_training_mode():
    """The host's own flag for "a training loop runs" (comfy.model_management.in_training, set by its
    TrainLoraNode; newer hosts such as 0.33.0): with it, FLUX's RoPE (and other layers) take their
    differentiable path instead of a fused comfy_kitchen kernel that has no backward. Hosts without
    the flag (0.3.75) have nothing to switch."""
    import comfy.model_management as mm
    if not hasattr(mm, "in_training"):
        yield
        return
    before = mm.in_training
    mm.in_training = True
    try:
        yield
    finally:
        mm.in_training = before


@contextlib.contextmanager
def autograd_usable(*modules: torch.nn.Module):
    swapped, frozen = [], []
    try:
        for module in modules:
            for owner in module.modules():
                for name, param in list(owner._parameters.items()):
                    if param is not None and param.is_inference():
                        owner._parameters[name] = torch.nn.Parameter(_alias(param), requires_grad=False)
                        swapped.append((owner._parameters, name, param))
                    elif param is not None and param.requires_grad:
                        param.requires_grad_(False)
                        frozen.append(param)
                for name, buffer in list(owner._buffers.items()):
                    if buffer is not None and buffer.is_inference():
                        owner._buffers[name] = _alias(buffer)
                        swapped.append((owner._buffers, name, buffer))
        if swapped:
            log.debug("aliased %d inference tensors for training", len(swapped))
        yield
    finally:
        for table, name, original in reversed(swapped):
            table[name] = original
        for param in frozen:
            param.requires_grad_(True)

"""Backward through the host's FLUX.1 transformer and T5-XXL, whose blocks add their residuals in place.

The host's DoubleStreamBlock and SingleStreamBlock write `img += ...`, `txt += ...`, `x += ...` into
tensors their own LayerNorms saved for backward. Autograd refuses that ("modified by an inplace
operation"), and torch's gradient checkpointing would not even notice: its recomputation keeps the
saved tensors by reference, so the in-place writes would silently corrupt the gradient. So:

- without checkpointing, the training forward runs under the hooks the text encoders already use
  (caption_encoder: every saved tensor that depends on the learned vectors is snapshotted);
- with checkpointing, each block is one autograd node of our own: its forward runs without a graph
  on clones of its inputs (the block then writes into the clones, never into what the caller keeps),
  and its backward recomputes the block under those hooks and asks autograd for the inputs' gradients
  only. No weight inside a block is trained (frozen by autograd_weights), so the gradients with
  respect to the block's tensor inputs are all there is to return, and torch.autograd.grad (which
  the trainer uses) works through it, unlike torch's reentrant checkpoint.

The same recomputation serves T5-XXL's layers when checkpointing is on: there it matters even more,
because each layer's fp16 (or fp8) weights are cast to bf16 per call and backward keeps every cast
copy (bench/flux_memory.py measured 386 MB a layer, 9.3 GB for the 24), where recomputing keeps one.
"""
from __future__ import annotations

import contextlib

import torch

from .autograd_weights import clone_saved, keep_saved

IN_PLACE_RESIDUAL_MODELS = ("Flux",)  # the host's diffusion-model classes that add residuals in place


def adds_residuals_in_place(model_patcher) -> bool:
    return type(model_patcher.model.diffusion_model).__name__ in IN_PLACE_RESIDUAL_MODELS


def saved_tensor_snapshots():
    """Snapshot what autograd saves (only tensors that carry a gradient, i.e. activations)."""
    return torch.autograd.graph.saved_tensors_hooks(clone_saved, keep_saved)


def training_forward_guard(model_patcher):
    """The context the trainer runs a training forward of this model in."""
    if torch.is_grad_enabled() and adds_residuals_in_place(model_patcher):
        return saved_tensor_snapshots()
    return contextlib.nullcontext()


class _RecomputedBlock(torch.autograd.Function):
    """out = block(inputs), storing only the inputs; backward recomputes the block."""

    @staticmethod
    def forward(ctx, call, recompute_context, constant_outputs, *tensors):
        ctx.call, ctx.recompute_context = call, recompute_context
        ctx.save_for_backward(*tensors)
        with torch.no_grad():
            outputs = call([t.clone() for t in tensors])
        ctx.single = torch.is_tensor(outputs)
        if ctx.single:
            return outputs
        outputs = tuple(o.detach() if i in constant_outputs else o for i, o in enumerate(outputs))
        ctx.mark_non_differentiable(*[outputs[i] for i in constant_outputs])
        return outputs

    @staticmethod
    def backward(ctx, *grad_outputs):
        inputs = [t.detach().requires_grad_(t.requires_grad) for t in ctx.saved_tensors]
        with torch.enable_grad(), saved_tensor_snapshots(), ctx.recompute_context():
            outputs = ctx.call([t.clone() for t in inputs])
        outputs = (outputs,) if ctx.single else tuple(outputs)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad and g is not None]
        wanted = [t for t in inputs if t.requires_grad]
        grads = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True)
                     if pairs and wanted else [])
        return (None, None, None, *[next(grads) if t.requires_grad else None for t in inputs])


def recomputed_in_backward(forward, constant_outputs: tuple[int, ...] = (), recompute_context=contextlib.nullcontext):
    """A block forward that keeps only its inputs and recomputes itself in backward (see above).
    constant_outputs: indexes of outputs that never carry a gradient (T5's position bias, made from
    positions and frozen weights), handed on without one. recompute_context: a factory of the context
    the recomputation runs in (the text encoder's attention kernels: caption_encoder.sdpa_for_backward)."""
    def run(*args, **kwargs):
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        names = list(kwargs)
        values = list(args) + [kwargs[name] for name in names]
        positions = [i for i, v in enumerate(values) if torch.is_tensor(v)]
        if not any(values[i].requires_grad for i in positions):
            return forward(*args, **kwargs)

        def call(tensors):
            filled = list(values)
            for i, tensor in zip(positions, tensors):
                filled[i] = tensor
            return forward(*filled[:len(args)], **dict(zip(names, filled[len(args):])))

        return _RecomputedBlock.apply(call, recompute_context, constant_outputs, *[values[i] for i in positions])
    return run


@contextlib.contextmanager
def t5_layers_recomputed(t5_encoder, enabled: bool, recompute_context=contextlib.nullcontext):
    """Recompute each T5-XXL layer (comfy.text_encoders.t5.T5Block) in backward for the duration of
    training; the layers are shared with every clone of the CLIP, so their forwards are restored."""
    layers = list(t5_encoder.transformer.encoder.block) if enabled else []
    try:
        for layer in layers:
            layer.forward = recomputed_in_backward(type(layer).forward.__get__(layer), constant_outputs=(1,),
                                                   recompute_context=recompute_context)
        yield
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)

"""The ID-Adapter attached to a MODEL: every cross-attention reads y' = adapter(y, Z, weight).

Mechanism: a keyed DIFFUSION_MODEL wrapper (comfy.patcher_extension). The UNet's forward hands it the
context once per model call, already on the model's device and dtype, so y' is computed once per call
rather than once per attention layer, and every layer (and every other pack's attn2 patch or attn2
*replace* patch) then sees y'. FLUX.1's transformer hands the same wrapper its T5-XXL context before
txt_in, so its text stream starts from y' and every joint attention reads it (docs/flux.md). Wrappers
are keyed lists, so nothing exclusive is taken: ControlNets, IPAdapter/InstantID replace patches and
attn2 patches keep working, and chained applications run in the order they were attached (the first
one attached is the outermost, so it adapts first).

Inference and training share this code: the inference node attaches frozen copies, the training node
attaches its live adapter (copy_adapter=False) and a callable that recomputes Z with gradients.
Contexts are adapted 77-token window by window (idea.adapter.adapt_by_chunks), so y' does not depend
on how the host padded or batched them; training contexts are one window, adapted exactly as before.
FLUX.1's T5 context has no windows (window_tokens None): it is adapted whole.
"""
from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable

import torch
from comfy import patcher_extension

from ...idea.adapter import CHUNK_TOKENS, adapt_by_chunks

log = logging.getLogger(__name__)

KEY_PREFIX = "idea_id_adapter"
APPLY_TO = {"cond": frozenset({0}), "uncond": frozenset({1}), "both": frozenset({0, 1})}

IdTokens = torch.Tensor | Callable[[], torch.Tensor]


class IDAdapterWrapper:
    """DIFFUSION_MODEL wrapper that replaces the context of the selected batch rows by y'.

    Rows are selected per chunk (transformer_options["cond_or_uncond"]: the batch is that many equal
    chunks, 0 = cond, 1 = uncond) and per sample by the sigma window (transformer_options["sigmas"]).
    Unselected rows, and calls where no row is selected, get the context object back untouched, so a
    disabled adapter is bit-identical to no adapter.
    """

    def __init__(self, adapter: torch.nn.Module, id_tokens: IdTokens, weight: float,
                 sigma_start: float | None, sigma_end: float | None, apply_to: str, copy_adapter: bool,
                 window_tokens: int | None = CHUNK_TOKENS):
        if apply_to not in APPLY_TO:
            raise ValueError(f"apply_to must be one of {sorted(APPLY_TO)}, got {apply_to!r}")
        self.weight = float(weight)
        self.window_tokens = window_tokens
        self.sigma_start = sigma_start
        self.sigma_end = sigma_end
        self.apply_to = apply_to
        self.copy_adapter = copy_adapter
        self._devices: dict[tuple[torch.device, torch.dtype], tuple[torch.nn.Module, torch.Tensor]] = {}
        if copy_adapter:
            # Built outside inference mode so the copies stay usable if this model is later trained
            # on; detached and frozen so sampling never builds a graph through them.
            with torch.inference_mode(False), torch.no_grad():
                self.adapter = copy.deepcopy(adapter).requires_grad_(False).eval()
                self.id_tokens = id_tokens if callable(id_tokens) else id_tokens.detach().clone()
        else:
            self.adapter, self.id_tokens = adapter, id_tokens
        self.is_pass_through = self._has_no_effect()

    def _has_no_effect(self) -> bool:
        """A frozen adapter whose gate is shut (weight 0, beta 0 or tanh(gamma) = 0) is skipped
        entirely; a live one only at weight 0, since its gamma may still be learning."""
        if self.weight == 0.0 or not self.copy_adapter:
            return self.weight == 0.0
        return self.adapter.beta == 0.0 or float(self.adapter.gamma) == 0.0

    def __call__(self, executor, *args, **kwargs):
        """The denoisers call their wrappers positionally with the context third and the
        transformer_options last: UNet (x, timesteps, context, y, control, transformer_options),
        FLUX (x, timestep, context, y, guidance, ref_latents, control, transformer_options). Everything
        but the context is handed on exactly as it came."""
        args = list(args)
        if len(args) > 2:
            options = args[-1] if len(args) >= 6 and isinstance(args[-1], dict) else kwargs.get("transformer_options")
            if args[2] is not None:
                args[2] = self.adapt_context(args[2], options or {})
        elif kwargs.get("context") is not None:
            kwargs["context"] = self.adapt_context(kwargs["context"], kwargs.get("transformer_options") or {})
        return executor(*args, **kwargs)

    def adapt_context(self, context: torch.Tensor, transformer_options: dict) -> torch.Tensor:
        """y' for the selected rows of `context` [B, L, D]; the other rows are left as they are."""
        if self.is_pass_through:
            return context
        rows = self.rows_to_adapt(context.shape[0], transformer_options)
        if not rows.any():
            return context
        if rows.all():
            return self._adapt(context)
        index = rows.nonzero().squeeze(1).to(context.device)
        return context.index_copy(0, index, self._adapt(context.index_select(0, index)))

    def rows_to_adapt(self, batch: int, transformer_options: dict) -> torch.Tensor:
        """Bool [batch]: which rows get y'. Without cond_or_uncond (a direct call outside the sampler)
        the whole batch counts as one cond chunk."""
        chunks = transformer_options.get("cond_or_uncond") or [0]
        if batch % len(chunks):
            raise ValueError(f"a batch of {batch} cannot be split into the {len(chunks)} cond/uncond "
                             f"chunks the sampler reported")
        per_chunk = batch // len(chunks)
        wanted = APPLY_TO[self.apply_to]
        chunk_rows = torch.tensor([kind in wanted for kind in chunks]).repeat_interleave(per_chunk)
        return chunk_rows & self._in_window(transformer_options.get("sigmas"), per_chunk).repeat(len(chunks))

    def _in_window(self, sigmas, per_chunk: int) -> torch.Tensor:
        """Bool [per_chunk]: samples whose sigma lies in [sigma_end, sigma_start]. Sampling gives one
        sigma per latent; training may give each latent its own, hence the per-sample test."""
        if (self.sigma_start is None and self.sigma_end is None) or sigmas is None:
            return torch.ones(per_chunk, dtype=torch.bool)
        sigmas = sigmas.detach().reshape(-1).float().cpu()
        if sigmas.numel() != per_chunk:
            sigmas = sigmas[:1].expand(per_chunk)
        inside = torch.ones(per_chunk, dtype=torch.bool)
        if self.sigma_start is not None:
            inside &= sigmas <= self.sigma_start
        if self.sigma_end is not None:
            inside &= sigmas >= self.sigma_end
        return inside

    def _adapt(self, context: torch.Tensor) -> torch.Tensor:
        if not self.copy_adapter:
            tokens = self.id_tokens() if callable(self.id_tokens) else self.id_tokens
            return adapt_by_chunks(self.adapter, context, tokens, self.weight, self.window_tokens)
        adapter, tokens = self._on_device(context)
        return adapt_by_chunks(adapter, context, tokens, self.weight, self.window_tokens)

    def _on_device(self, context: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
        """The frozen copies on the context's device, computing in at least fp32 (the adapter is tiny
        next to the UNet, and its gate is a small difference of large activations); made once per
        device and dtype. The result still comes back in the model's dtype (IDAdapter casts it)."""
        dtype = torch.promote_types(context.dtype, torch.float32)
        key = (context.device, dtype)
        if key not in self._devices:
            with torch.inference_mode(False), torch.no_grad():
                adapter = copy.deepcopy(self.adapter).to(device=context.device, dtype=dtype)
                tokens = None if callable(self.id_tokens) else self.id_tokens.to(context.device, dtype)
            self._devices[key] = (adapter, tokens)
            log.debug("ID-Adapter copy made for %s %s", context.device, dtype)
        adapter, tokens = self._devices[key]
        return adapter, (self.id_tokens() if tokens is None else tokens)


def attach_id_adapter(model_patcher, adapter: torch.nn.Module, id_tokens: IdTokens, weight: float = 1.0,
                      sigma_start: float | None = None, sigma_end: float | None = None,
                      apply_to: str = "cond", key: str | None = None, copy_adapter: bool = True,
                      window_tokens: int | None = CHUNK_TOKENS):
    """A clone of `model_patcher` whose UNet reads y' = adapter(y, Z, weight) in every cross-attention.

    id_tokens: Z [K, D_ctx] (or [B, K, D_ctx]), or a zero-argument callable returning it each model call
    (training: Z recomputed with gradients). copy_adapter=True uses frozen, detached copies of the
    adapter and Z (inference: the identity is never touched); False uses the adapter as-is so
    gradients reach its parameters. sigma_start >= sigma_end bound the active window (None: open).
    apply_to: "cond", "uncond" or "both". key: the wrapper key; unique by default so that several
    applications stack. window_tokens: the adapter's window (idea.archs; None for FLUX.1's whole
    T5 context). The patcher passed in is left unchanged.
    """
    if sigma_start is not None and sigma_end is not None and sigma_start < sigma_end:
        raise ValueError(f"sigma_start ({sigma_start}) must not be below sigma_end ({sigma_end})")
    wrapper = IDAdapterWrapper(adapter, id_tokens, weight, sigma_start, sigma_end, apply_to, copy_adapter,
                               window_tokens)
    key = key or f"{KEY_PREFIX}.{uuid.uuid4().hex}"
    if model_patcher.get_wrappers(patcher_extension.WrappersMP.DIFFUSION_MODEL, key):
        raise ValueError(f"the model already has an ID-Adapter with key {key!r}")
    patched = model_patcher.clone()
    patched.add_wrapper_with_key(patcher_extension.WrappersMP.DIFFUSION_MODEL, key, wrapper)
    return patched


def attached_id_adapters(model_patcher) -> list[tuple[str, IDAdapterWrapper]]:
    """(key, wrapper) of every ID-Adapter on the model, in the order they apply."""
    wrappers = model_patcher.wrappers.get(patcher_extension.WrappersMP.DIFFUSION_MODEL, {})
    return [(key, w) for key, items in wrappers.items() for w in items if isinstance(w, IDAdapterWrapper)]

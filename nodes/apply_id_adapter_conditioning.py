"""Apply ID-Adapter to Conditioning: the identity written into a prompt's CONDITIONING, once.

The adapter reads only the text context and the identity tokens Z, never the latent or the noise
level, so y' can be computed once here instead of at every model call (what Apply ID-Adapter does on
the MODEL). The result is ordinary CONDITIONING: masks, areas, timestep ranges, Combine, Concat and
ControlNet treat it as any prompt, which is what lets two identities share one picture, each on its
own region. The very code of the model patch computes y' (the same frozen fp32 copy, window by window),
so the image matches Apply ID-Adapter's (cond only, full schedule) to float precision.
"""
from __future__ import annotations

import logging

from comfy_api.latest import io

from ..idea.archs import ARCH_LABELS, base_arch
from ..idea.errors import InputError
from .patching.adapter_patch import IDAdapterWrapper
from .patching.frozen_identity import frozen_id_tokens, warn_if_untrained
from .schema.search_words import search_aliases
from .types import IdentityType

log = logging.getLogger(__name__)

# Context widths of the text encoders ComfyUI pairs with each base, to name the base of a prompt.
_CONTEXT_BASES = {768: "SD1.x", 1024: "SD2.x", 2048: "SDXL", 1280: "SDXL Refiner", 4096: "FLUX.1 or SD3 (T5-XXL)"}
# FLUX.1's pooled vector is CLIP-L's (768); SD3 shares the 4096-wide context but pools CLIP-L + CLIP-G.
_FLUX_POOLED_WIDTH = 768


class IdentityConditioningMismatch(InputError):
    """The conditioning was encoded for another base than the one the identity was trained on."""


def check_identity_fits_conditioning(identity, conditioning) -> None:
    """Refuse a prompt whose context width is not the identity's, naming both bases and the fix."""
    if not conditioning:
        raise InputError("the conditioning is empty; connect a CLIP Text Encode (or another conditioning) node")
    for context, extra in conditioning:
        width = int(context.shape[-1])
        if context.dim() != 3 or width != identity.ctx_dim:
            base = _CONTEXT_BASES.get(width, "a model ID-EA does not support")
            wanted = ARCH_LABELS[identity.arch]
            raise IdentityConditioningMismatch(
                f"this identity was trained for {wanted} (context {identity.ctx_dim}) but the conditioning has "
                f"context {width} ({base}); encode the prompt with the CLIP of the {wanted} checkpoint the "
                f"identity was trained on, or train an identity on this checkpoint")
        pooled = extra.get("pooled_output") if isinstance(extra, dict) else None
        if identity.arch == "flux" and pooled is not None and int(pooled.shape[-1]) != _FLUX_POOLED_WIDTH:
            raise IdentityConditioningMismatch(
                f"this identity was trained for FLUX.1 (T5-XXL context with a CLIP-L pooled vector of "
                f"{_FLUX_POOLED_WIDTH}) but the conditioning's pooled vector is {int(pooled.shape[-1])} wide "
                "(SD3 pools CLIP-L and CLIP-G); encode the prompt with FLUX.1's DualCLIPLoader (type flux)")


class ApplyIDAdapterConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_ApplyIDAdapterConditioning",
            display_name="Apply ID-Adapter to Conditioning",
            category="ID-EA",
            **search_aliases("identity", "face id", "IPAdapter face", "regional identity", "two people",
                             "multiple people"),
            description="Enriches a prompt's conditioning with the identity through its trained ID-Adapter, "
                        "once, before sampling (no cost per step). The output is ordinary conditioning: "
                        "restrict it to a region (Conditioning Set Mask / Set Area) to put several people "
                        "in one picture, or to part of the schedule (Conditioning Set Timestep Range). "
                        "Use it on a prompt containing the identity's embedding.",
            inputs=[
                io.Conditioning.Input("conditioning",
                                      tooltip="The prompt to enrich, e.g. from CLIP Text Encode with "
                                              "embedding:NAME in it, encoded with the CLIP of the checkpoint "
                                              "the identity was trained on (SD1.x, SD2.x, SDXL or, "
                                              "experimental, FLUX.1)."),
                IdentityType.Input("identity", tooltip="From Load Identity or Learn ID Token."),
                io.Float.Input("weight", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Strength of the adapter: 1 is what it was trained with, 0 returns "
                                       "the conditioning unchanged."),
            ],
            outputs=[io.Conditioning.Output("adapted_conditioning", display_name="conditioning",
                                            tooltip="The same conditioning with the identity in its text "
                                                    "context; SDXL's pooled output, masks, areas and "
                                                    "ControlNets are kept as they were.")],
        )

    @classmethod
    def execute(cls, conditioning, identity, weight) -> io.NodeOutput:
        check_identity_fits_conditioning(identity, conditioning)
        warn_if_untrained(identity, "Apply ID-Adapter to Conditioning")
        # The model patch's own wrapper: with no sampler labels every row counts as cond.
        adapter = IDAdapterWrapper(identity.adapter, frozen_id_tokens(identity), weight, None, None,
                                   apply_to="cond", copy_adapter=True,
                                   window_tokens=base_arch(identity.arch).adapter_window)
        adapted = [[adapter.adapt_context(context, {}), dict(extra)] for context, extra in conditioning]
        log.info("ID-Adapter applied to %d conditioning entr%s at weight %.2f", len(adapted),
                 "y" if len(adapted) == 1 else "ies", weight)
        return io.NodeOutput(adapted)

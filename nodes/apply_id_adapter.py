"""Apply ID-Adapter: route B of the method, the identity injected into the UNet's text condition."""
from __future__ import annotations

import logging

from comfy_api.latest import io

from ..idea.archs import base_arch
from ..idea.errors import InputError
from .host.model_arch import check_identity_fits
from .host.text_encoders import check_clip_fits
from .patching.adapter_patch import attach_id_adapter
from .patching.frozen_identity import frozen_id_tokens, warn_if_untrained
from .schema.search_words import search_aliases
from .types import IdentityType

log = logging.getLogger(__name__)

APPLY_TO_OPTIONS = ["cond", "uncond", "both"]


def sigma_window(model, start_at: float, end_at: float) -> tuple[float | None, float | None]:
    """Schedule percentages -> (sigma_start, sigma_end); None for an open end, so the full schedule
    needs no per-step check at all."""
    if start_at > end_at:
        raise InputError(f"start_at ({start_at}) is after end_at ({end_at}), so the adapter would never run; "
                         "set start_at below end_at")
    sampling = model.get_model_object("model_sampling")
    sigma_start = sampling.percent_to_sigma(start_at) if start_at > 0.0 else None
    sigma_end = sampling.percent_to_sigma(end_at) if end_at < 1.0 else None
    return sigma_start, sigma_end


class ApplyIDAdapter(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_ApplyIDAdapter",
            display_name="Apply ID-Adapter (Identity)",
            category="ID-EA",
            **search_aliases("identity", "face id", "IPAdapter face", "InstantID", "PuLID", "LoRA alternative",
                             "apply identity", "face adapter"),
            description="Patches the model so every cross-attention reads the text condition enriched with "
                        "the identity's fused tokens by its trained ID-Adapter (the full ID-EA method). Use "
                        "it with a prompt containing the identity's embedding. Composes with ControlNet, "
                        "IPAdapter/InstantID, LoRAs and further Apply ID-Adapter nodes. FLUX.1 (experimental, "
                        "not yet measured on a GPU): the adapter enriches the T5-XXL text the transformer reads.",
            inputs=[
                io.Model.Input("model", tooltip="The SD1.x, SD2.x, SDXL or FLUX.1 (experimental) model the identity "
                                                "was trained on (same base); the input model itself is not "
                                                "modified."),
                IdentityType.Input("identity", tooltip="From Load Identity or Learn ID Token."),
                io.Float.Input("weight", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Strength of the adapter: 1 is what it was trained with, 0 turns it off."),
                io.Float.Input("start_at", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of the sampling schedule at which the adapter starts "
                                       "(0 = from the first step)."),
                io.Float.Input("end_at", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of the sampling schedule after which the adapter stops "
                                       "(1 = until the last step)."),
                io.Combo.Input("apply_to", options=APPLY_TO_OPTIONS, default="cond",
                               tooltip="Which condition reads the adapted context: cond (the positive "
                                       "prompt, as in training), uncond (the negative) or both."),
                io.Clip.Input("clip", optional=True,
                              tooltip="Optional: the CLIP your prompts are encoded with. When connected, its "
                                      "clip skip (CLIP Set Last Layer) is checked against the layer the "
                                      "identity was made with, which its tokens need."),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The model with the ID-Adapter attached.")],
        )

    @classmethod
    def execute(cls, model, identity, weight, start_at, end_at, apply_to, clip=None) -> io.NodeOutput:
        found = check_identity_fits(identity, model)
        if clip is not None:
            check_clip_fits(identity, clip)
        sigma_start, sigma_end = sigma_window(model, start_at, end_at)
        id_tokens = frozen_id_tokens(identity)
        warn_if_untrained(identity, "Apply ID-Adapter")
        patched = attach_id_adapter(model, identity.adapter, id_tokens, weight=weight,
                                    sigma_start=sigma_start, sigma_end=sigma_end, apply_to=apply_to,
                                    window_tokens=base_arch(identity.arch).adapter_window)
        log.info("ID-Adapter attached to a %s model: weight %.2f, schedule %.2f-%.2f, %s",
                 found.label, weight, start_at, end_at, apply_to)
        return io.NodeOutput(patched)

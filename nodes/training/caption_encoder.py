"""Training captions through the user's text encoder, with the learned vectors inserted, with grad.

The encoders are the host's own modules (comfy.sd1_clip.SDClipModel), called the way
CLIP.encode_from_tokens calls them (clip options reset, the CLIP's layer/clip-skip set, the model
loaded), but batched: encode_token_weights would join several captions into one long prompt.
"""
from __future__ import annotations

import contextlib

import torch

from ...idea.training_recipe import CAPTION_TEMPLATES, caption_parts
from ..host.text_encoders import ClipLayout
from .autograd_weights import clone_saved, keep_saved


def sdpa_for_backward(device: torch.device):
    """The SDPA kernel for backward through the host's CLIP attention on CUDA: the memory-efficient
    kernel fails on the 77x77 causal mask ("attn_bias is not correctly aligned"); the math kernel is
    the one verified to work (on an H200). Only the text encoder runs under it."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.MATH])


class CaptionEncoder:
    def __init__(self, clip, layout: ClipLayout, templates: tuple[str, ...] = CAPTION_TEMPLATES):
        self.clip, self.layout = clip, layout
        # token ids of the text around the learned tokens, per template and encoder (tokenised once)
        self.parts = {h.key: [(h.name_token_ids(before), h.name_token_ids(after))
                              for before, after in map(caption_parts, templates)]
                      for h in layout.encoders}

    def prepare(self) -> None:
        """Set the clip options exactly as CLIP.encode_from_tokens does, and load the encoder."""
        model = self.clip.cond_stage_model
        model.reset_clip_options()
        if self.clip.layer_idx is not None:
            model.set_clip_options({"layer": self.clip.layer_idx})
        self.clip.load_model()

    def tokens(self, key: str, caption_indices: list[int], vectors: torch.Tensor) -> list[list]:
        handle = next(h for h in self.layout.encoders if h.key == key)
        rows = []
        for index in caption_indices:
            before, after = self.parts[key][index]
            rows.append(handle.token_list(list(before) + list(vectors.unbind(0)) + list(after)))
        return rows

    def encode(self, caption_indices: list[int], vectors: dict[str, torch.Tensor],
               device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (context [B, L, D_ctx], pooled output or None). Differentiable w.r.t. `vectors`.

        The context is the context encoders' outputs (SDXL: CLIP-L then CLIP-G; FLUX.1: T5-XXL), the
        pooled output the model's pooled encoder's (SDXL: CLIP-G; FLUX.1: CLIP-L), as at sampling.

        The host's CLIP layers add residuals in place, which autograd refuses for saved tensors;
        cloning the saved activations (saved_tensors_hooks) makes the same modules differentiable.
        On CUDA the memory-efficient attention kernel cannot run backward with CLIP's 77x77 causal
        mask ("attn_bias is not correctly aligned"), so the encoder runs with the other kernels."""
        outputs, pooled = {}, None
        hooks = (torch.autograd.graph.saved_tensors_hooks(clone_saved, keep_saved)
                 if torch.is_grad_enabled() else contextlib.nullcontext())
        with hooks, sdpa_for_backward(self.layout.encoders[0].embedding_table().device):
            for handle in self.layout.encoders:
                z, p = handle.encoder.encode(self.tokens(handle.key, caption_indices, vectors[handle.key]))[:2]
                outputs[handle.key] = z
                if handle.key == self.layout.pooled_key:
                    pooled = p
        context = torch.cat([outputs[h.key] for h in self.layout.context_encoders], dim=-1)
        if device is not None:
            context = context.to(device)
        return context, pooled

"""The textual ID anchor for the user's own CLIP (docs/method.md, component 2, "cross initialisation").

Names are tokenised by each encoder's own tokenizer, column means of their input embeddings are run
through the host's encoding path as [BOS, m_1..m_K, EOS, PAD...], and the outputs at 1..K are both
the anchor and the initial input vectors of the new tokens. Cached per CLIP, so a graph that re-runs
does not re-encode.

FLUX.1 (docs/flux.md): the anchor is T5-XXL's output at m_1..m_K (T5 has no BOS: positions 0..K-1),
the context FLUX reads; T5's new tokens start from the means m_k themselves, CLIP-L's (which only
feed the pooled vector) from its output, as for SD1.x (idea.archs says which rule each encoder uses).
"""
from __future__ import annotations

import hashlib
import logging
import weakref

import torch

from ...idea.anchor import column_means, load_name_list
from ...idea.archs import base_arch
from .text_encoders import ClipLayout, encode_sequences, encoder_outputs, split_context

log = logging.getLogger(__name__)

_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def _cache_key(clip, names: list[str], num_tokens: int) -> tuple:
    """What changes the encoder's outputs: the layer (clip skip), patches (LoRA), names, K."""
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return (clip.layer_idx, getattr(clip.patcher, "patches_uuid", None), digest, num_tokens)


def textual_anchor(clip, layout: ClipLayout, num_tokens: int,
                   names: list[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-> (anchor [K, D_ctx], initial input vectors {encoder key: [K, D_tok]}), float32 on the CPU."""
    names = names if names is not None else load_name_list()
    per_clip = _CACHE.setdefault(clip.cond_stage_model, {})
    key = _cache_key(clip, names, num_tokens)
    if key in per_clip:
        anchor, initial = per_clip[key]
        return anchor.clone(), {k: v.clone() for k, v in initial.items()}
    inserted, means = {}, {}
    for handle in layout.encoders:
        ids = [handle.name_token_ids(name) for name in names]
        means[handle.key] = column_means(ids, handle.embedding_table().float().cpu(), num_tokens)
        inserted[handle.key] = [means[handle.key][k] for k in range(num_tokens)]
    if len(layout.context_encoders) == len(layout.encoders):  # SD1.x/SD2.x/SDXL: one encode of the context
        context = encode_sequences(clip, layout, inserted)
        anchor = context[0, 1:1 + num_tokens].detach().float().cpu()
        initial = {k: v.clone() for k, v in split_context(layout, anchor).items()}
    else:
        anchor, initial = _per_encoder_anchor(clip, layout, num_tokens, inserted, means)
    per_clip[key] = (anchor, initial)
    log.info("textual ID anchor: %d names, %d tokens, context %d (%s)", len(names), num_tokens,
             anchor.shape[1], layout.arch)
    return anchor.clone(), {k: v.clone() for k, v in initial.items()}


def _per_encoder_anchor(clip, layout: ClipLayout, num_tokens: int, inserted: dict, means: dict):
    """Anchor and initial vectors where the context is not every encoder's output (FLUX.1): each
    encoder's states at the inserted positions, the anchor from the context encoders only, each
    encoder's start by its own rule (idea.archs: "cross" = its output, "input_means" = the means)."""
    outputs = encoder_outputs(clip, layout, inserted)
    states = {h.key: outputs[h.key][0, h.first_position:h.first_position + num_tokens].detach().float().cpu()
              for h in layout.encoders}
    anchor = torch.cat([states[h.key] for h in layout.context_encoders], dim=-1)
    arch = base_arch(layout.arch)
    initial = {key: (means[key] if arch.initialisation_of(key) == "input_means" else state).float().clone()
               for key, state in states.items()}
    return anchor, initial

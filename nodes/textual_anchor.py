"""The textual ID anchor for the user's own CLIP (docs/method.md, component 2, "cross initialisation").

Names are tokenised by each encoder's own tokenizer, column means of their input embeddings are run
through the host's encoding path as [BOS, m_1..m_K, EOS, PAD...], and the outputs at 1..K are both
the anchor and the initial input vectors of the new tokens. Cached per CLIP, so a graph that re-runs
does not re-encode.
"""
from __future__ import annotations

import hashlib
import logging
import weakref

import torch

from ..idea.anchor import column_means, load_name_list
from .text_encoders import ClipLayout, encode_sequences, split_context

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
    inserted = {}
    for handle in layout.encoders:
        ids = [handle.name_token_ids(name) for name in names]
        means = column_means(ids, handle.embedding_table().float().cpu(), num_tokens)
        inserted[handle.key] = [means[k] for k in range(num_tokens)]
    context = encode_sequences(clip, layout, inserted)
    anchor = context[0, 1:1 + num_tokens].detach().float().cpu()
    initial = {k: v.clone() for k, v in split_context(layout, anchor).items()}
    per_clip[key] = (anchor, initial)
    log.info("textual ID anchor: %d names, %d tokens, context %d (%s)", len(names), num_tokens,
             anchor.shape[1], layout.arch)
    return anchor.clone(), {k: v.clone() for k, v in initial.items()}

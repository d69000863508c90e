"""Read the user's CLIP: which base it belongs to, its encoders, and encoding through the host's path.

Everything that must agree with sampling time (clip skip, layer choice, LoRA patches on the CLIP)
comes for free by encoding through `CLIP.encode_from_tokens`, the same call CLIPTextEncode makes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...idea.archs import ARCH_LABELS, base_arch
from ...idea.errors import InputError
from .model_arch import SUPPORTED_BASES, IdentityModelMismatch

# token-embedding width of each encoder the pack supports, by the host's embedding key
ENCODER_WIDTHS = {"clip_l": 768, "clip_h": 1024, "clip_g": 1280, "t5xxl": 4096}
ARCH_BY_KEYS = {("clip_l",): "sd1", ("clip_h",): "sd2", ("clip_l", "clip_g"): "sdxl", ("t5xxl", "clip_l"): "flux"}


class UnsupportedClipError(InputError):
    """A CLIP that is not the text encoder of an SD1.x, SD2.x, SDXL or FLUX.1 checkpoint."""


@dataclass
class EncoderHandle:
    key: str  # the host's embedding key: clip_l / clip_h / clip_g / t5xxl
    token_key: str  # key in the tokenizer's output dict: l / h / g / t5xxl
    encoder: torch.nn.Module  # comfy.sd1_clip.SDClipModel (T5XXLModel is one too)
    tokenizer: object  # comfy.sd1_clip.SDTokenizer

    @property
    def width(self) -> int:
        return int(self.encoder.transformer.get_input_embeddings().weight.shape[1])

    def embedding_table(self) -> torch.Tensor:
        return self.encoder.transformer.get_input_embeddings().weight.detach()

    @property
    def first_position(self) -> int:
        """Where the first inserted token sits: after BOS (CLIP), or first (T5 has no start token)."""
        return 1 if self.tokenizer.start_token is not None else 0

    def name_token_ids(self, text: str) -> list[int]:
        """The text's token ids without BOS/EOS (the tokenizer adds both)."""
        ids = self.tokenizer.tokenizer(text)["input_ids"]
        start = self.tokenizer.tokens_start
        return ids[start:len(ids) - (1 if self.tokenizer.tokenizer_adds_end_token else 0)]

    def token_list(self, inserted: list) -> list:
        """[BOS, *inserted, EOS, PAD...] padded as the host pads a prompt of this encoder (CLIP: to its
        77-token window; T5-XXL: to at least its min_length, 256); inserted items may be token ids or
        [D] tensors (the host's process_tokens treats any non-integer as an embedding)."""
        tok = self.tokenizer
        seq = ([tok.start_token] if tok.start_token is not None else []) + list(inserted)
        if tok.end_token is not None:
            seq.append(tok.end_token)
        if len(seq) > tok.max_length:
            raise ValueError(f"caption of {len(seq)} tokens is longer than the encoder's {tok.max_length}")
        length = tok.max_length if tok.pad_to_max_length else max(len(seq), tok.min_length or 0)
        return seq + [tok.pad_token] * (length - len(seq))

    def sequence(self, inserted: list) -> list[tuple]:
        """token_list as the (token, weight) pairs CLIP.encode_from_tokens takes."""
        return [(t, 1.0) for t in self.token_list(inserted)]


@dataclass
class ClipLayout:
    arch: str  # sd1 / sd2 / sdxl / flux
    encoders: list[EncoderHandle]  # in the identity's key order (SDXL: L then G; FLUX.1: T5-XXL then L)

    @property
    def context_encoders(self) -> list[EncoderHandle]:
        """The encoders whose outputs, concatenated, are the denoiser's context (FLUX.1: T5-XXL only)."""
        keys = base_arch(self.arch).context_keys
        return [h for h in self.encoders if h.key in keys]

    @property
    def pooled_key(self) -> str:
        """The encoder whose pooled output the model reads as `y` (SDXL: CLIP-G; FLUX.1: CLIP-L)."""
        return base_arch(self.arch).pooled_key

    @property
    def ctx_dim(self) -> int:
        return sum(e.width for e in self.context_encoders)


def read_clip(clip) -> ClipLayout:
    """Identify SD1.x (CLIP-L), SD2.x (OpenCLIP-H), SDXL (CLIP-L + CLIP-G) or FLUX.1 (T5-XXL + CLIP-L)
    from the CLIP object."""
    model, tokenizer = clip.cond_stage_model, clip.tokenizer
    handles = []
    if (hasattr(model, "t5xxl") and hasattr(model, "clip_l") and not hasattr(model, "clip_g")
            and not hasattr(model, "clip_name")):
        handles = [EncoderHandle("t5xxl", "t5xxl", model.t5xxl, getattr(tokenizer, "t5xxl", None)),
                   EncoderHandle("clip_l", "l", model.clip_l, getattr(tokenizer, "clip_l", None))]
    elif hasattr(model, "clip_l") and hasattr(model, "clip_g") and not hasattr(model, "clip_name"):
        handles = [EncoderHandle("clip_l", "l", model.clip_l, tokenizer.clip_l),
                   EncoderHandle("clip_g", "g", model.clip_g, tokenizer.clip_g)]
    elif getattr(model, "clip_name", None) in ("l", "h") and hasattr(model, getattr(model, "clip", "")):
        name = model.clip_name
        handles = [EncoderHandle(f"clip_{name}", name, getattr(model, model.clip),
                                 getattr(tokenizer, f"clip_{name}", None))]
    keys = tuple(h.key for h in handles)
    if keys not in ARCH_BY_KEYS or any(h.tokenizer is None for h in handles):
        raise UnsupportedClipError(
            f"ID-EA works with the text encoders of {SUPPORTED_BASES}; this CLIP is "
            f"{type(model).__name__}. Load an SD1.5, SD2.1 or SDXL checkpoint (or its CLIP), or FLUX.1's "
            "T5-XXL and CLIP-L with DualCLIPLoader (type flux).")
    for h in handles:
        if h.width != ENCODER_WIDTHS[h.key]:
            raise UnsupportedClipError(
                f"encoder {h.key} has token width {h.width}, expected {ENCODER_WIDTHS[h.key]}: this "
                "does not look like an SD1.x/SD2.x/SDXL/FLUX.1 text encoder.")
    return ClipLayout(ARCH_BY_KEYS[keys], handles)


def encode_sequences(clip, layout: ClipLayout, inserted_per_encoder: dict[str, list]) -> torch.Tensor:
    """Run the host's encoder on [BOS, inserted..., EOS, PAD...] for every encoder at once and return
    the context [1, L, D_ctx] (SDXL: CLIP-L and CLIP-G outputs concatenated, as at sampling; FLUX.1:
    T5-XXL's states, CLIP-L only adding the pooled vector)."""
    tokens = {h.token_key: [h.sequence(inserted_per_encoder[h.key])] for h in layout.encoders}
    return clip.encode_from_tokens(tokens)


def encoder_outputs(clip, layout: ClipLayout, inserted_per_encoder: dict[str, list]) -> dict[str, torch.Tensor]:
    """Each encoder's own output states [1, L, D] for [BOS, inserted..., EOS, PAD...], encoded the way
    CLIP.encode_from_tokens sets up the model (options reset, the CLIP's layer, the model loaded).
    Where the context is not every encoder's output (FLUX.1 returns only T5-XXL's), this is how the
    other encoders' states are read."""
    model = clip.cond_stage_model
    model.reset_clip_options()
    if clip.layer_idx is not None:
        model.set_clip_options({"layer": clip.layer_idx})
    clip.load_model()
    try:
        return {h.key: h.encoder.encode_token_weights([h.sequence(inserted_per_encoder[h.key])])[0]
                for h in layout.encoders}
    finally:
        model.reset_clip_options()


def split_context(layout: ClipLayout, context: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cut a [..., D_ctx] context into each context encoder's share, by key."""
    parts, start = {}, 0
    for h in layout.context_encoders:
        parts[h.key] = context[..., start:start + h.width]
        start += h.width
    return parts


class ClipLayerMismatch(InputError):
    """The identity's tokens were made at another text-encoder layer (clip skip) than this CLIP uses."""


def encoder_layers(clip, layout: ClipLayout) -> dict[str, str]:
    """The layer each encoder's output comes from when this CLIP encodes a prompt: "last", or a
    negative hidden-layer index as text ("-2" is the penultimate). Read with the host's own rule
    (reset the options, then apply clip.layer_idx, as every encode does), so CLIP Set Last Layer -1 on
    SD1.x reads as "last", which it is."""
    model = clip.cond_stage_model
    model.reset_clip_options()
    if clip.layer_idx is not None:
        model.set_clip_options({"layer": clip.layer_idx})
    layers = {}
    for handle in layout.encoders:
        encoder = handle.encoder
        index = encoder.layer_idx if encoder.layer == "hidden" else None
        if index is not None and index >= 0:
            index -= encoder.num_layers
        is_last = encoder.layer == "last" or (index == -1 and encoder.layer_norm_hidden_state)
        layers[handle.key] = "last" if is_last else str(index)
    model.reset_clip_options()
    return layers


def describe_layers(layers: dict[str, str]) -> str:
    return ", ".join(f"{key}: {'last layer' if value == 'last' else 'layer ' + value}"
                     for key, value in sorted(layers.items()))


def check_clip_fits(identity, clip) -> ClipLayout:
    """This CLIP's layout, after checking that it is of the identity's base and encodes at the layers
    the identity was made with (identities saved before the layer was recorded are not checked)."""
    layout = read_clip(clip)
    if layout.arch != identity.arch:
        raise IdentityModelMismatch(f"the CLIP is {ARCH_LABELS[layout.arch]} but the identity was made for "
                                    f"{ARCH_LABELS[identity.arch]}; use the CLIP of the checkpoint the identity was "
                                    "made with")
    check_clip_layers(identity, clip, layout)
    return layout


def check_clip_layers(identity, clip, layout: ClipLayout) -> None:
    """Raise ClipLayerMismatch unless this CLIP encodes at the layers the identity was made with."""
    if identity.clip_layers is None:
        return
    current = encoder_layers(clip, layout)
    if current != identity.clip_layers:
        raise ClipLayerMismatch(
            f"this identity was made with the text encoder at {describe_layers(identity.clip_layers)} (its "
            f"clip skip), but this CLIP encodes at {describe_layers(current)}. Use the same CLIP Set Last "
            f"Layer setting as when the identity was made, or make a new identity with ID-Enhancer from this CLIP.")

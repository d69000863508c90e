"""The base models ID-EA serves, described without the host: which text encoders an identity learns
tokens for, which of them make the context the denoiser reads, and how each one is started.

Why a table: SD1.x/SD2.x/SDXL read one context made of every encoder's output (SDXL concatenates
CLIP-L and CLIP-G), but FLUX.1 reads T5-XXL's states as its text sequence and uses CLIP-L only for
the pooled vector that modulates every block. The identity, the trainer and the adapter ask this
table instead of assuming "context = all encoders" (docs/flux.md says why each FLUX entry is so).
"""
from __future__ import annotations

from dataclasses import dataclass

# One text-encoder window of the CLIP encoders: the host encodes a long SD prompt 77 tokens at a time.
CLIP_WINDOW_TOKENS = 77


@dataclass(frozen=True)
class BaseArch:
    key: str  # the pack's arch key, written into identity files
    label: str  # what messages call it
    encoder_keys: tuple[str, ...]  # the host's embedding keys an identity holds token vectors for
    context_keys: tuple[str, ...]  # the encoders whose outputs, concatenated, are the denoiser's context
    pooled_key: str  # the encoder whose pooled output the model may read (SDXL's and FLUX's `y`)
    # The adapter's window: contexts are adapted window by window (None: the context is one sequence)
    adapter_window: int | None = CLIP_WINDOW_TOKENS
    # How an encoder's trainable input vectors start (docs/method.md, component 2): "cross" = the encoder's
    # output at the anchor's positions (the released cross initialisation), "input_means" = the
    # column means of the names' input embeddings themselves (docs/flux.md: T5's output space is not
    # its input space). Encoders not named here use "cross".
    initialisation: tuple[tuple[str, str], ...] = ()
    experimental: bool = False

    def initialisation_of(self, encoder_key: str) -> str:
        return dict(self.initialisation).get(encoder_key, "cross")


ARCHS = {arch.key: arch for arch in (
    BaseArch("sd1", "SD1.x", ("clip_l",), ("clip_l",), "clip_l"),
    BaseArch("sd2", "SD2.x", ("clip_h",), ("clip_h",), "clip_h"),
    BaseArch("sdxl", "SDXL", ("clip_l", "clip_g"), ("clip_l", "clip_g"), "clip_g"),
    BaseArch("flux", "FLUX.1", ("t5xxl", "clip_l"), ("t5xxl",), "clip_l", adapter_window=None,
             initialisation=(("t5xxl", "input_means"),), experimental=True),
)}

ARCH_ENCODER_KEYS = {key: arch.encoder_keys for key, arch in ARCHS.items()}
ARCH_LABELS = {key: arch.label for key, arch in ARCHS.items()}


def base_arch(key: str) -> BaseArch:
    if key not in ARCHS:
        raise ValueError(f"unknown base architecture {key!r}; known: {sorted(ARCHS)}")
    return ARCHS[key]

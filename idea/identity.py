"""The identity value passed between nodes: everything ID-EA learned or fixed for one person.

Keys of the token vectors are the host's embedding keys, so the same vectors can be written as a
prompt embedding (`embedding:NAME`) without renaming: "clip_l" (SD1.x, SDXL's and FLUX.1's CLIP-L),
"clip_h" (SD2.x's OpenCLIP-H), "clip_g" (SDXL's CLIP-G), "t5xxl" (FLUX.1's T5-XXL).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from .adapter import IDAdapter
from .archs import ARCH_ENCODER_KEYS, ARCH_LABELS, base_arch
from .enhancer import IDEnhancer

__all__ = ["ARCH_ENCODER_KEYS", "ARCH_LABELS", "IdentityEmbedding", "check_arch"]


def check_arch(arch: str) -> None:
    base_arch(arch)


@dataclass
class IdentityEmbedding:
    """One person's ID-EA identity. ctx_dim, num_tokens and face_dim are read from the tensors so
    they can never disagree with them; __post_init__ checks that the parts fit together."""

    arch: str
    token_vectors: dict[str, torch.Tensor]  # trained input vectors, key -> [K, D_tok]
    initial_vectors: dict[str, torch.Tensor]  # their cross-initialised values, same keys and shapes
    anchor: torch.Tensor  # [K, D_ctx] textual ID anchor
    enhancer: IDEnhancer
    adapter: IDAdapter
    face_mean: torch.Tensor  # [F] normalised mean face embedding
    face_model_name: str
    train_enhancer: bool = True
    seed: int = 0
    metadata: dict = field(default_factory=dict)  # training settings etc., JSON-serialisable
    # The text-encoder layer each encoder's anchor was made at (clip skip), e.g. {"clip_l": "last"} or
    # {"clip_h": "-2"}; the tokens are trained and must be used at that layer. None: not recorded.
    clip_layers: dict[str, str] | None = None

    def __post_init__(self) -> None:
        check_arch(self.arch)
        expected_keys = set(ARCH_ENCODER_KEYS[self.arch])
        for label, vectors in (("token_vectors", self.token_vectors), ("initial_vectors", self.initial_vectors)):
            if set(vectors) != expected_keys:
                raise ValueError(f"{label} of a {ARCH_LABELS[self.arch]} identity need keys "
                                 f"{sorted(expected_keys)}, got {sorted(vectors)}")
        if self.anchor.dim() != 2:
            raise ValueError(f"anchor must be [K, D_ctx], got {list(self.anchor.shape)}")
        for key in expected_keys:
            trained, initial = self.token_vectors[key], self.initial_vectors[key]
            if trained.dim() != 2 or trained.shape[0] != self.num_tokens or trained.shape != initial.shape:
                raise ValueError(f"{key}: token vectors {list(trained.shape)} and initial vectors "
                                 f"{list(initial.shape)} must both be [{self.num_tokens}, D]")
        context_keys = base_arch(self.arch).context_keys
        token_width = sum(self.token_vectors[key].shape[1] for key in context_keys)
        if token_width != self.ctx_dim:
            raise ValueError(f"the widths of {', '.join(context_keys)} add up to {token_width} but the anchor has "
                             f"{self.ctx_dim} features; the context is their concatenation")
        if self.face_mean.dim() != 1:
            raise ValueError(f"face_mean must be [F], got {list(self.face_mean.shape)}")
        enhancer_shape = (self.enhancer.face_dim, self.enhancer.ctx_dim, self.enhancer.num_tokens)
        if enhancer_shape != (self.face_dim, self.ctx_dim, self.num_tokens):
            raise ValueError(f"enhancer built for (face, ctx, tokens) = {enhancer_shape}, identity has "
                             f"{(self.face_dim, self.ctx_dim, self.num_tokens)}")
        if self.adapter.ctx_dim != self.ctx_dim:
            raise ValueError(f"adapter built for context {self.adapter.ctx_dim}, identity has {self.ctx_dim}")
        if self.clip_layers is not None and set(self.clip_layers) != expected_keys:
            raise ValueError(f"clip_layers of a {ARCH_LABELS[self.arch]} identity need keys {sorted(expected_keys)}, "
                             f"got {sorted(self.clip_layers)}")
        # An identity is a value: nothing in it asks for gradients until make_trainable says so.
        self.enhancer.requires_grad_(False)
        self.adapter.requires_grad_(False)

    @property
    def ctx_dim(self) -> int:
        return int(self.anchor.shape[1])

    @property
    def num_tokens(self) -> int:
        return int(self.anchor.shape[0])

    @property
    def face_dim(self) -> int:
        return int(self.face_mean.shape[0])

    @property
    def framing(self) -> str | None:
        """How the reference crops framed the face (idea/face_framing.py), from the face embedding the
        identity was made from; None in identities made before 0.2.0, whose crops were all
        "head and shoulders"."""
        return self.metadata.get("framing")

    @property
    def encoder_keys(self) -> tuple[str, ...]:
        return ARCH_ENCODER_KEYS[self.arch]

    @classmethod
    def create(cls, arch: str, initial_vectors: dict[str, torch.Tensor], anchor: torch.Tensor,
               face_mean: torch.Tensor, face_model_name: str, seed: int = 0, train_enhancer: bool = True,
               heads: int = 8, beta: float = 0.4, metadata: dict | None = None,
               clip_layers: dict[str, str] | None = None) -> "IdentityEmbedding":
        """A fresh, untrained identity: token vectors start at the cross-initialised values, the
        enhancer is seeded with `seed` and the adapter with `seed + 1` (distinct streams, same run)."""
        anchor = anchor.detach().to(torch.float32).clone()
        face_mean = face_mean.detach().to(torch.float32).clone()
        initial = {key: value.detach().to(torch.float32).clone() for key, value in initial_vectors.items()}
        return cls(arch=arch,
                   token_vectors={key: value.clone() for key, value in initial.items()},
                   initial_vectors=initial, anchor=anchor,
                   enhancer=IDEnhancer.seeded(face_mean.shape[0], anchor.shape[1], anchor.shape[0], seed, heads),
                   adapter=IDAdapter(anchor.shape[1], heads=heads, beta=beta, seed=seed + 1),
                   face_mean=face_mean, face_model_name=face_model_name,
                   train_enhancer=train_enhancer, seed=seed, metadata=dict(metadata or {}),
                   clip_layers=dict(clip_layers) if clip_layers is not None else None)

    def fused_tokens(self) -> torch.Tensor:
        """Z [K, D_ctx] = Enhancer(face_mean, anchor); differentiable w.r.t. the enhancer's weights."""
        return self.enhancer(self.face_mean, self.anchor)

    def make_trainable(self) -> dict[str, torch.Tensor]:
        """Flag exactly what ID-EA trains and return it, by name, for the optimiser: the token vectors,
        the adapter, and the enhancer unless it is frozen (the released code's behaviour). The anchor,
        face embedding and initial vectors are fixed inputs and get no gradient. The names are those
        of the identity file, so an optimiser's state can be saved and matched by them."""
        for fixed in (self.anchor, self.face_mean, *self.initial_vectors.values()):
            fixed.requires_grad_(False)
        self.enhancer.requires_grad_(self.train_enhancer)
        self.adapter.requires_grad_(True)
        trainable = {f"token_vectors.{key}": self.token_vectors[key].requires_grad_(True)
                     for key in self.encoder_keys}
        trainable.update({f"adapter.{name}": p for name, p in self.adapter.named_parameters()})
        if self.train_enhancer:
            trainable.update({f"enhancer.{name}": p for name, p in self.enhancer.named_parameters()})
        return trainable

    def clone(self) -> "IdentityEmbedding":
        """An independent, detached copy (no shared storage, no autograd history)."""
        def detached(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {key: value.detach().clone() for key, value in tensors.items()}

        return IdentityEmbedding(arch=self.arch, token_vectors=detached(self.token_vectors),
                                 initial_vectors=detached(self.initial_vectors),
                                 anchor=self.anchor.detach().clone(), enhancer=copy.deepcopy(self.enhancer),
                                 adapter=copy.deepcopy(self.adapter), face_mean=self.face_mean.detach().clone(),
                                 face_model_name=self.face_model_name, train_enhancer=self.train_enhancer,
                                 seed=self.seed, metadata=copy.deepcopy(self.metadata),
                                 clip_layers=dict(self.clip_layers) if self.clip_layers is not None else None)

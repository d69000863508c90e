"""Random identities of the pack's own classes and the adapter computed on its own, for the tests of
Apply ID-Adapter and Apply ID-Adapter to Conditioning inside the real host."""
from __future__ import annotations

import copy

import torch

FACE_DIM = 512
WIDTHS = {"sd1": {"clip_l": 768}, "sd2": {"clip_h": 1024}, "sdxl": {"clip_l": 768, "clip_g": 1280},
          "flux": {"t5xxl": 4096, "clip_l": 768}}
CONTEXT_KEYS = {"sd1": ("clip_l",), "sd2": ("clip_h",), "sdxl": ("clip_l", "clip_g"), "flux": ("t5xxl",)}


def context_width(arch: str) -> int:
    """The width of the context the identity's anchor and adapter live in (FLUX.1: T5-XXL's alone)."""
    return sum(WIDTHS[arch][key] for key in CONTEXT_KEYS[arch])


def randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def make_identity(host, arch="sd1", seed=0, gamma=1.0):
    """A random identity of the right shapes whose adapter is switched on (gamma != 0)."""
    identity_mod = host.pack_module("idea.identity")
    widths = WIDTHS[arch]
    initial = {key: randn(2, width, seed=seed + i) for i, (key, width) in enumerate(widths.items())}
    face = randn(FACE_DIM, seed=seed + 5)
    identity = identity_mod.IdentityEmbedding.create(arch, initial, randn(2, context_width(arch), seed=seed + 6),
                                                     face / face.norm(), "synthetic", seed=seed)
    with torch.no_grad():
        identity.adapter.gamma.fill_(gamma)
    return identity


def adapted(identity, context, weight=1.0):
    """y' of one 77-token window computed here, directly with idea's IDAdapter, independent of the
    patch. Frozen like the node's copy: PyTorch's matmul batches a 3-D input differently when the
    weight requires grad, which moves the last bit of batch > 1 results."""
    frozen = copy.deepcopy(identity.adapter).requires_grad_(False)
    with torch.inference_mode():
        return frozen(context, identity.fused_tokens(), weight)


def sample(host, model, positive, negative, steps=2, width=64, height=64, seed=7, cfg=5.0):
    """The latent a KSampler run (euler, normal schedule, full denoise) makes."""
    latent = host.run("EmptyLatentImage", width=width, height=height, batch_size=1)[0]
    return host.run("KSampler", model=model, seed=seed, steps=steps, cfg=cfg, sampler_name="euler",
                    scheduler="normal", positive=positive, negative=negative, latent_image=latent,
                    denoise=1.0)[0]["samples"]

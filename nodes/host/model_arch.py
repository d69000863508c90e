"""Which base a MODEL is (SD1.x / SD2.x / SDXL / FLUX.1) and the size of the text context it reads.

An identity's adapter and tokens only make sense in the context space they were trained in, so the
nodes refuse a mismatch up front with a message that names both bases, instead of failing deep inside
the UNet with a shape error (or, worse, running on a model of the same width but another base).
"""
from __future__ import annotations

from dataclasses import dataclass

import comfy.supported_models as supported

from ...idea.archs import ARCH_LABELS
from ...idea.errors import InputError

# Most specific first: each host config class and the pack's arch key its subclasses belong to (None:
# unsupported). SDXLRefiner is no SDXL subclass (CLIP-G only, context 1280) and stays unsupported;
# FLUX.2 derives from the host's Flux config but reads another text encoder (Mistral), so it is
# named before Flux. FLUX.1 dev, schnell and Fill share FLUX.1's T5-XXL + CLIP-L.
_FAMILIES = tuple((cls, key) for cls, key in (
    (getattr(supported, "Flux2", None), None), (supported.Flux, "flux"),
    (supported.SDXL, "sdxl"), (supported.SD20, "sd2"), (supported.SD15, "sd1")) if cls is not None)
_UNSUPPORTED_LABELS = {"SDXLRefiner": "SDXL Refiner", "Flux2": "FLUX.2"}
SUPPORTED_BASES = "SD1.x, SD2.x, SDXL and (experimental) FLUX.1"


class IdentityModelMismatch(InputError):
    """The identity was trained for another base model than the one it is applied to."""


@dataclass(frozen=True)
class ModelArch:
    arch: str | None  # "sd1" / "sd2" / "sdxl" / "flux", None when ID-EA does not support the model
    ctx_dim: int | None  # the text context's width (UNet cross-attention, FLUX txt_in), None without one
    config_name: str  # the host's model config class, e.g. "SD15", "SDXL", "Flux"

    @property
    def label(self) -> str:
        if self.arch is not None:
            return ARCH_LABELS[self.arch]
        return _UNSUPPORTED_LABELS.get(self.config_name, self.config_name)

    def describe(self) -> str:
        return f"{self.label} (context {self.ctx_dim})" if self.ctx_dim else self.label


def arch_of_config(model_config) -> ModelArch:
    """The arch of a host model config (comfy.supported_models.*)."""
    arch = next((key for cls, key in _FAMILIES if isinstance(model_config, cls)), None)
    ctx_dim = model_config.unet_config.get("context_dim") or model_config.unet_config.get("context_in_dim")
    return ModelArch(arch, int(ctx_dim) if ctx_dim else None, type(model_config).__name__)


def read_model_arch(model) -> ModelArch:
    """The arch of a MODEL (a ModelPatcher)."""
    return arch_of_config(model.model.model_config)


def check_identity_fits(identity, model) -> ModelArch:
    """Raise IdentityModelMismatch unless `identity` was trained for the base of `model`."""
    found = read_model_arch(model)
    if found.arch is None:
        raise IdentityModelMismatch(
            f"ID-EA works with {SUPPORTED_BASES} models; this model is {found.describe()}. "
            f"The identity was trained for {ARCH_LABELS[identity.arch]} (context {identity.ctx_dim}): "
            f"load a checkpoint of that base.")
    if found.arch != identity.arch or found.ctx_dim != identity.ctx_dim:
        wanted = f"{ARCH_LABELS[identity.arch]} (context {identity.ctx_dim})"
        raise IdentityModelMismatch(
            f"this identity was trained for {wanted} but the model is {found.describe()}; load an "
            f"{ARCH_LABELS[identity.arch]} checkpoint or train the identity on this one")
    return found

"""FLUX.1-dev with random weights, built with the host's own classes, for timing and memory.

Full size: the transformer config the host's detection reports for flux1-dev.safetensors (3072 wide,
19 double- and 38 single-stream blocks, 24 heads, guidance input), built directly on the load device
by the host's Flux model config, in bf16 or with fp8 (e4m3fn) weights computing in bf16, as UNETLoader
loads `weight_dtype fp8_e4m3fn`; T5-XXL and CLIP-L from the host's FLUX text-encoder target with their
real configs, in the host's text-encoder dtype (fp16) or T5 in fp8 (t5xxl_fp8_e4m3fn); FLUX.1's VAE.
Weights are filled on the device (fan-in normal; fp8 through a bf16 draw), which takes seconds.
`--tiny`: the tests' small FLUX (tests/support/tiny_flux.py), loaded through the host.
"""
from __future__ import annotations

import logging
import math

import torch
from sd_models import SEED, ModelSet, fill_random_

log = logging.getLogger(__name__)

KINDS = ("flux", "flux_fp8")
# what comfy/model_detection.py reports for FLUX.1-dev
FULL_DIT = {"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 768, "context_in_dim": 4096,
            "hidden_size": 3072, "mlp_ratio": 4.0, "num_heads": 24, "depth": 19, "depth_single_blocks": 38,
            "axes_dim": [16, 56, 56], "theta": 10000, "patch_size": 2, "qkv_bias": True, "guidance_embed": True}
FP8 = torch.float8_e4m3fn


def _fill(module: torch.nn.Module, seed: int) -> None:
    """fill_random_ for every dtype: fp8 parameters are drawn in bf16 and stored, one at a time."""
    low = [p for p in module.parameters() if p.dtype == FP8]
    if not low:
        fill_random_(module, seed)
        return
    gen = torch.Generator(device=low[0].device).manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim == 0:
                continue
            if p.ndim == 1:
                p.fill_(1.0)
                continue
            draw = torch.randn(p.shape, generator=gen, device=p.device, dtype=torch.bfloat16)
            p.copy_(draw / math.sqrt(math.prod(p.shape[1:])))


def _transformer(weights: str):
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    from support.tiny_flux import host_unet_config
    config = comfy.model_detection.model_config_from_unet_config(host_unet_config(dict(FULL_DIT)))
    if type(config).__name__ != "Flux":
        raise RuntimeError(f"the host detects the FLUX.1-dev config as {type(config).__name__}")
    load_device = mm.get_torch_device()
    supported = list(config.supported_inference_dtypes)
    compute = mm.unet_dtype(model_params=0, supported_dtypes=supported)
    if weights == "fp8":
        config.set_inference_dtype(FP8, mm.unet_manual_cast(FP8, load_device, supported) or compute)
    else:
        config.set_inference_dtype(compute, mm.unet_manual_cast(compute, load_device, supported))
    model = config.get_model({}, "", device=load_device)
    _fill(model.diffusion_model, SEED)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=mm.unet_offload_device())
    if load_device.type != "cpu":
        mm.load_models_gpu([patcher], force_full_load=True)
    return patcher


def _text_encoders(weights: str, embedding_directory):
    import comfy.model_management as mm
    import comfy.sd
    import comfy.supported_models_base
    import comfy.text_encoders.flux
    target = comfy.supported_models_base.ClipTarget(
        comfy.text_encoders.flux.FluxTokenizer,
        comfy.text_encoders.flux.flux_clip(dtype_t5=FP8 if weights == "fp8" else None))
    clip = comfy.sd.CLIP(target, embedding_directory=embedding_directory,
                         model_options={"initial_device": mm.text_encoder_device()})
    _fill(clip.cond_stage_model, SEED + 1)
    return clip


def _vae():
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencodingEngine
    from support.tiny_flux import VAE_DDCONFIG
    params = {"params": dict(VAE_DDCONFIG)}
    source = AutoencodingEngine(
        regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
        encoder_config={**params, "target": "comfy.ldm.modules.diffusionmodules.model.Encoder"},
        decoder_config={**params, "target": "comfy.ldm.modules.diffusionmodules.model.Decoder"})
    fill_random_(source, SEED + 2)
    vae = comfy.sd.VAE(sd=source.state_dict())
    del source
    return vae


def build_full(kind: str) -> ModelSet:
    import folder_paths
    if kind not in KINDS:
        raise ValueError(f"unknown FLUX kind {kind!r}; known: {KINDS}")
    weights = "fp8" if kind == "flux_fp8" else "bf16"
    models = ModelSet(kind, _transformer(weights), _text_encoders(weights, folder_paths.get_folder_paths("embeddings")),
                      _vae(), tiny=False)
    log.info("built %s: %s", kind, models.describe())
    return models


def build_tiny(kind: str) -> ModelSet:
    """The tests' small FLUX.1-dev (one weight format: its fp16 files load as the host decides)."""
    from support import paths, tiny_flux
    if kind not in KINDS:
        raise ValueError(f"unknown FLUX kind {kind!r}; known: {KINDS}")
    model, clip, vae = tiny_flux.load_tiny_flux(paths.cache_dir())
    return ModelSet(kind, model, clip, vae, tiny=True)

"""Random-weight Stable Diffusion models built with the host's own classes, for timing.

The compute of a forward/backward pass does not depend on the weights, and no SD weights exist
offline, so full-size SD1.5, SD2.1(-base) and SDXL are built from the host's model configs
(comfy.supported_models: the UNet configs the host's detection reports for those checkpoints), its
text-encoder classes with their real json configs (CLIP-L; OpenCLIP-H; CLIP-L + CLIP-G) and its
standard VAE, the way comfy.sd.load_state_dict_guess_config builds a loaded checkpoint: the host
picks the dtypes, the UNet is made directly on the load device and handed to load_models_gpu.
Weights are filled in place on the device (fan-in normal), which takes seconds even for SDXL.

`--tiny` instead uses the tests' tiny SD1.5 checkpoint file and in-process SD2-/SDXL-like models
(real token and context widths, one-level UNets, narrow text encoders).
"""
from __future__ import annotations

import contextlib
import gc
import logging
import math
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

KINDS = ("sd15", "sd21", "sdxl")
SEED = 20250712

_COMMON = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
           "legacy": False, "in_channels": 4, "model_channels": 320, "use_temporal_attention": False,
           "use_temporal_resblock": False}
_SD_LEVELS = {"num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
              "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1,
              "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]}
# The configs comfy/model_detection.py reports for the released checkpoints.
UNET_CONFIGS = {
    "sd15": {**_COMMON, **_SD_LEVELS, "adm_in_channels": None, "use_linear_in_transformer": False,
             "context_dim": 768, "num_heads": 8},
    "sd21": {**_COMMON, **_SD_LEVELS, "adm_in_channels": None, "use_linear_in_transformer": True,
             "context_dim": 1024, "num_head_channels": 64},
    "sdxl": {**_COMMON, "num_classes": "sequential", "adm_in_channels": 2816, "num_res_blocks": [2, 2, 2],
             "transformer_depth": [0, 0, 2, 2, 10, 10], "channel_mult": [1, 2, 4], "transformer_depth_middle": 10,
             "use_linear_in_transformer": True, "context_dim": 2048, "num_head_channels": 64,
             "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10]},
}
EXPECTED_CONFIG = {"sd15": "SD15", "sd21": "SD20", "sdxl": "SDXL"}


@dataclass
class ModelSet:
    """What CheckpointLoaderSimple would give for one base model, plus what the bench reports."""

    kind: str  # sd15 / sd21 / sdxl
    model: object  # comfy.model_patcher.ModelPatcher
    clip: object  # comfy.sd.CLIP
    vae: object  # comfy.sd.VAE
    tiny: bool

    @property
    def label(self) -> str:
        return f"{self.kind}-tiny" if self.tiny else self.kind

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"unet": self.model.model.diffusion_model, "text": self.clip.cond_stage_model,
                "vae": self.vae.first_stage_model}

    def describe(self) -> dict:
        modules = self.modules()
        return {"unet_params_m": round(sum(p.numel() for p in modules["unet"].parameters()) / 1e6, 1),
                "text_params_m": round(sum(p.numel() for p in modules["text"].parameters()) / 1e6, 1),
                "unet_dtype": weight_dtype(modules["unet"]), "text_dtype": weight_dtype(modules["text"])}


def weight_dtype(module: torch.nn.Module) -> str:
    """The dtype holding most of a module's weights (the host keeps a few in another one)."""
    counts: dict[torch.dtype, int] = {}
    for p in module.parameters():
        counts[p.dtype] = counts.get(p.dtype, 0) + p.numel()
    return str(max(counts, key=counts.get)).replace("torch.", "")


@contextlib.contextmanager
def fp32_on(models: ModelSet, device: torch.device):
    """For the block, UNet, text encoders and VAE hold fresh fp32 copies of their weights on
    `device`, as normal tensors that a plain training script can use (the loaded ones are inference
    tensors, often fp16); the original tensors are put back afterwards, untouched."""
    swapped = []
    try:
        for module in models.modules().values():
            for owner in module.modules():
                for table in (owner._parameters, owner._buffers):
                    for name, tensor in list(table.items()):
                        if tensor is None or not tensor.is_floating_point():
                            continue
                        copy = tensor.detach().to(device=device, dtype=torch.float32, copy=True)
                        if table is owner._parameters:
                            copy = torch.nn.Parameter(copy, requires_grad=False)
                        table[name] = copy
                        swapped.append((table, name, tensor))
        yield models
    finally:
        for table, name, original in reversed(swapped):
            table[name] = original


def fill_random_(module: torch.nn.Module, seed: int) -> None:
    """Fan-in normal weights, unit norms, zero biases, 0.02 embeddings, drawn on each parameter's
    own device (the host builds layers uninitialised; this keeps every activation finite)."""
    norms = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.BatchNorm2d)
    generators: dict[torch.device, torch.Generator] = {}
    with torch.no_grad():
        for mod in module.modules():
            for name, p in mod.named_parameters(recurse=False):
                if p.ndim == 0:
                    continue
                if p.device not in generators:
                    generators[p.device] = torch.Generator(device=p.device).manual_seed(seed)
                gen = generators[p.device]
                if isinstance(mod, norms) or p.ndim == 1:
                    p.fill_(1.0 if name == "weight" else 0.0)
                elif isinstance(mod, torch.nn.Embedding):
                    p.normal_(0.0, 0.02, generator=gen)
                else:
                    p.normal_(0.0, 1.0 / math.sqrt(math.prod(p.shape[1:])), generator=gen)


def _unet(kind: str):
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    config = comfy.model_detection.model_config_from_unet_config(dict(UNET_CONFIGS[kind]))
    if type(config).__name__ != EXPECTED_CONFIG[kind]:
        raise RuntimeError(f"the host detects the {kind} config as {type(config).__name__}")
    load_device = mm.get_torch_device()
    supported = list(config.supported_inference_dtypes)
    chosen = mm.unet_dtype(model_params=0, supported_dtypes=supported)
    config.set_inference_dtype(chosen, mm.unet_manual_cast(chosen, load_device, supported))
    model = config.get_model({}, "", device=load_device)
    fill_random_(model.diffusion_model, SEED)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device,
                                               offload_device=mm.unet_offload_device())
    if load_device.type != "cpu":
        mm.load_models_gpu([patcher], force_full_load=True)
    return patcher, config


def _clip(config, embedding_directory):
    import comfy.model_management as mm
    import comfy.sd
    options = {"initial_device": mm.text_encoder_device()}
    clip = comfy.sd.CLIP(config.clip_target({}), embedding_directory=embedding_directory,
                         model_options=options)
    fill_random_(clip.cond_stage_model, SEED + 1)
    return clip


def _vae():
    """The host's standard SD VAE (SDXL's has the same architecture) from a random state dict."""
    import comfy.ldm.models.autoencoder
    import comfy.sd
    from support.tiny_models import VAE_DDCONFIG
    source = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4)
    fill_random_(source, SEED + 2)
    vae = comfy.sd.VAE(sd=source.state_dict())
    del source
    return vae


def build_full(kind: str) -> ModelSet:
    """Full-size random `kind` on the host's device, in the dtypes the host picks for a loaded
    checkpoint (fp16/bf16 on a GPU; fp32_on converts them for the published recipe)."""
    import folder_paths
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {KINDS}")
    model, config = _unet(kind)
    clip = _clip(config, folder_paths.get_folder_paths("embeddings"))
    models = ModelSet(kind, model, clip, _vae(), tiny=False)
    log.info("built %s: %s", kind, models.describe())
    return models


_TINY_SD15 = {}


def build_tiny(kind: str) -> ModelSet:
    """The tests' tiny models: the SD1.5 checkpoint file, SD2-/SDXL-like in-process builds; all
    share the tiny checkpoint's (full-config) VAE, which SD2 and SDXL have the same shape of."""
    from support import paths, tiny_models
    if "sd15" not in _TINY_SD15:
        _TINY_SD15["sd15"] = tiny_models.build_sd15_in_process(paths.cache_dir())
    sd15_model, sd15_clip, vae = _TINY_SD15["sd15"]
    if kind == "sd15":
        return ModelSet(kind, sd15_model, sd15_clip, vae, tiny=True)
    if kind == "sd21":
        model, clip = tiny_models.build_sd2_like()
    elif kind == "sdxl":
        model, clip = tiny_models.build_sdxl_like()
    else:
        raise ValueError(f"unknown model kind {kind!r}; known: {KINDS}")
    return ModelSet(kind, model, clip, vae, tiny=True)


def build(kind: str, tiny: bool) -> ModelSet:
    """Inside inference mode, as the host's loader nodes run: the weights are inference tensors,
    exactly what Learn ID Token receives from CheckpointLoaderSimple. FLUX kinds: bench/flux_models.py."""
    with torch.inference_mode():
        if kind.startswith("flux"):
            import flux_models
            return flux_models.build_tiny(kind) if tiny else flux_models.build_full(kind)
        return build_tiny(kind) if tiny else build_full(kind)


def release(models: ModelSet | None) -> None:
    """Drop a model set and give its device memory back before the next one is built."""
    import comfy.model_management as mm
    if models is None or models.tiny:
        return
    mm.unload_all_models()
    models.model = models.clip = models.vae = None
    gc.collect()
    mm.soft_empty_cache()

"""A small FLUX.1-dev built with the host's own classes, for tests: a narrow transformer, a T5-XXL-shaped
and a CLIP-L text encoder made small through the host's config hooks, and FLUX.1's VAE.

Everything the pack reads keeps its real size and layout: the transformer is a FLUX.1-dev (guidance
input, 16 latent channels, 2x2 patches, heads of 128 as the real one) with a real-layout file; T5 keeps
its 4096-wide token embeddings and 32128-token vocabulary (the real context width and the tokenizer's
ids), CLIP-L its 768-wide ones; the VAE is FLUX.1's own config. What is small: width 256 (2 heads), one
double- and one single-stream block; T5 with 2 layers of 2 heads, CLIP-L with 3 narrow layers.

Loading goes through the host: the text encoders by comfy.sd.load_clip (what DualCLIPLoader calls),
with the host's `<encoder>_model_config` overrides; the VAE by the core VAELoader (or comfy.sd.VAE);
the transformer by the host's detection and comfy.sd.load_diffusion_model_state_dict where the host's
detection can describe a narrow FLUX (0.33.0 reads the head count from the width), and otherwise by the
same steps with the head count set (0.3.75's detection fixes 24 heads, i.e. only 3072-wide models).
Files are built once into the fixture cache, in a child process as tiny_models builds its files.
"""
from __future__ import annotations

import logging
import os
import pathlib
import sys

from support import paths
from support.tiny_models import _cached, ensure_host_importable, init_random_

log = logging.getLogger(__name__)

VERSION = 1  # bump when a builder changes: cached files carry it in their names
SEED = 20260105
FILES = {kind: f"idea-tiny-flux-{kind}-v{VERSION}.safetensors" for kind in ("dit", "clip-l", "t5xxl", "vae")}

# FLUX.1-dev's transformer config as the host's detection reports it, made narrow and shallow.
DIT_CONFIG = {"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 768,
              "context_in_dim": 4096, "hidden_size": 256, "mlp_ratio": 4.0, "num_heads": 2, "depth": 1,
              "depth_single_blocks": 1, "axes_dim": [16, 56, 56], "theta": 10000, "patch_size": 2,
              "qkv_bias": True, "guidance_embed": True}
# The host's per-encoder config overrides (real token widths kept).
T5XXL_CONFIG = {"num_layers": 2, "num_heads": 2, "d_kv": 32, "d_ff": 64}
CLIP_L_CONFIG = {"hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 3, "intermediate_size": 128,
                 "projection_dim": 768}
# model_options of comfy.sd.load_clip. Its long-CLIP hook (text_encoders/long_clipl.py) rewrites
# clip_l_model_config from model_options["model_config"] plus the file's position count, so CLIP-L's
# overrides go there.
TEXT_ENCODER_OPTIONS = {"t5xxl_model_config": T5XXL_CONFIG, "model_config": CLIP_L_CONFIG}
# FLUX.1's VAE (ae.safetensors) as comfy.sd.VAE builds it: the SD VAE config with 16 latent channels
VAE_DDCONFIG = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def host_unet_config(config: dict) -> dict:
    """A FLUX.1 unet config with the fields this host's FluxParams needs and its detection adds for a
    FLUX.1 file (0.33.0: txt_ids_dims = [])."""
    import dataclasses
    import comfy.ldm.flux.model
    fields = {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}
    return {**config, **({"txt_ids_dims": []} if "txt_ids_dims" in fields and "txt_ids_dims" not in config else {})}


def flux_params(config: dict) -> dict:
    """The FluxParams keyword arguments of this host for a FLUX.1 unet config."""
    import dataclasses
    import comfy.ldm.flux.model
    fields = {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}
    return {k: v for k, v in host_unet_config(config).items() if k in fields}


def _real_layout(state_dict: dict) -> dict:
    """Keys as FLUX.1 files have them: newer hosts name the q/k norms' parameter `weight` and rename
    `scale` on loading (Flux.process_unet_state_dict); the files say `scale`, which every host reads."""
    return {(k[:-len("weight")] + "scale" if k.endswith("_norm.weight") and ".norm." in k else k): v
            for k, v in state_dict.items()}


def _dit_state_dict() -> dict:
    import torch
    import comfy.ldm.flux.model
    import comfy.ops
    model = comfy.ldm.flux.model.Flux(dtype=torch.float32, operations=comfy.ops.disable_weight_init,
                                      **flux_params(DIT_CONFIG))
    init_random_(model, SEED)
    return {k: v.to(torch.float16).contiguous() for k, v in _real_layout(model.state_dict()).items()}


def _text_state_dict(kind: str) -> dict:
    import torch
    import comfy.sd1_clip
    import comfy.text_encoders.sd3_clip
    options = {"t5xxl_model_config": T5XXL_CONFIG, "clip_l_model_config": CLIP_L_CONFIG}
    if kind == "t5xxl":
        encoder = comfy.text_encoders.sd3_clip.T5XXLModel(dtype=torch.float32, model_options=options)
    else:
        encoder = comfy.sd1_clip.SDClipModel(dtype=torch.float32, return_projected_pooled=False, model_options=options)
    init_random_(encoder.transformer, SEED + (1 if kind == "t5xxl" else 2))
    state = encoder.transformer.state_dict()
    return {k: v.to(torch.float16).contiguous() for k, v in state.items()}


def _vae_state_dict() -> dict:
    import torch
    from comfy.ldm.models.autoencoder import AutoencodingEngine
    params = {"target": None, "params": dict(VAE_DDCONFIG)}
    vae = AutoencodingEngine(
        regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
        encoder_config={**params, "target": "comfy.ldm.modules.diffusionmodules.model.Encoder"},
        decoder_config={**params, "target": "comfy.ldm.modules.diffusionmodules.model.Decoder"})
    init_random_(vae, SEED + 3)
    return {k: v.to(torch.float16).contiguous() for k, v in vae.state_dict().items()}


def _build_file(kind: str, out: pathlib.Path) -> None:
    """Child-process entry: build one file and write it atomically."""
    ensure_host_importable()
    import safetensors.torch
    builders = {"dit": _dit_state_dict, "clip-l": lambda: _text_state_dict("clip-l"),
                "t5xxl": lambda: _text_state_dict("t5xxl"), "vae": _vae_state_dict}
    sd = builders[kind]()
    tmp = out.with_name(out.name + ".part")
    safetensors.torch.save_file(sd, str(tmp), metadata={"idea_tiny": f"flux {kind} v{VERSION} seed {SEED}"})
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)


def tiny_flux_files(cache_dir=None) -> dict[str, pathlib.Path]:
    """{dit, clip-l, t5xxl, vae} -> the cached files, built when missing."""
    cache_dir = cache_dir or paths.cache_dir()
    return {kind: _cached(cache_dir, name, f"flux-{kind}", module="support.tiny_flux", build_kind=kind)
            for kind, name in FILES.items()}


# ---- loading, through the host (the host must be importable) ------------------------------------

def load_dit(path):
    """ModelPatcher of the tiny transformer file, loaded the way UNETLoader loads a diffusion model."""
    ensure_host_importable()
    import comfy.model_detection as detection
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.sd
    import comfy.utils
    sd = comfy.utils.load_torch_file(str(path))
    detected = detection.detect_unet_config(sd, "")
    heads = detected["hidden_size"] // sum(detected["axes_dim"])
    if detected["num_heads"] == heads:  # this host's own loader describes the narrow model
        return comfy.sd.load_diffusion_model_state_dict(sd)
    config = detection.model_config_from_unet_config({**detected, "num_heads": heads}, sd)
    load_device = mm.get_torch_device()
    supported = list(config.supported_inference_dtypes)
    dtype = mm.unet_dtype(model_params=comfy.utils.calculate_parameters(sd), supported_dtypes=supported,
                          weight_dtype=comfy.utils.weight_dtype(sd))
    config.set_inference_dtype(dtype, mm.unet_manual_cast(dtype, load_device, supported))
    model = config.get_model(sd, "").to(mm.unet_offload_device())
    model.load_model_weights(sd, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=mm.unet_offload_device())


def load_clip(files: dict, embedding_directory=None):
    """comfy.sd.CLIP of the two text-encoder files, as DualCLIPLoader (type flux) loads them, with the
    host's config overrides that make the encoders small."""
    ensure_host_importable()
    import comfy.sd
    if embedding_directory is None:
        folder_paths = sys.modules.get("folder_paths")
        embedding_directory = folder_paths.get_folder_paths("embeddings") if folder_paths else None
    return comfy.sd.load_clip(ckpt_paths=[str(files["clip-l"]), str(files["t5xxl"])],
                              embedding_directory=embedding_directory, clip_type=comfy.sd.CLIPType.FLUX,
                              model_options={k: dict(v) for k, v in TEXT_ENCODER_OPTIONS.items()})


def load_vae(path):
    ensure_host_importable()
    import comfy.sd
    import comfy.utils
    return comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(path)))


def load_tiny_flux(cache_dir=None, embedding_directory=None) -> tuple:
    """(MODEL, CLIP, VAE) of the small FLUX.1-dev."""
    files = tiny_flux_files(cache_dir)
    return load_dit(files["dit"]), load_clip(files, embedding_directory), load_vae(files["vae"])


_LOADED: dict = {}


def loaded_in_host(cache_dir=None) -> tuple:
    """(MODEL, CLIP, VAE) loaded once per process inside inference mode, as loader nodes run, so the
    weights are inference tensors (what the pack's nodes receive from a user's graph)."""
    if "flux" not in _LOADED:
        import torch
        with torch.inference_mode():
            _LOADED["flux"] = load_tiny_flux(cache_dir)
    return _LOADED["flux"]


def install_vae(base_dir, name: str = "idea-tiny-flux-ae.safetensors", cache_dir=None) -> pathlib.Path:
    """Link the VAE into <base_dir>/models/vae/<name> for the core VAELoader."""
    source = tiny_flux_files(cache_dir)["vae"]
    folder = pathlib.Path(base_dir) / "models" / "vae"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    if not link.exists():
        link.symlink_to(source)
    return link


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    _build_file(sys.argv[1], pathlib.Path(sys.argv[2]))

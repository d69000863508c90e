"""Tiny random-weight models built with the real host's own classes, for tests.

No Stable Diffusion weights exist offline, so the suite makes its own. The SD1.5 checkpoint and its
ControlNet are files (cached, built once in a child process so that this process's host import is
left alone) that the host detects and loads like real ones. SD2-like and SDXL-like models are built
in-process: their UNets are one level deep and their text encoders have few, narrow layers, but the
token-embedding widths (768 / 1024 / 1280) and context sizes (768 / 1024 / 2048) are the real ones,
because the pack reads the architecture from those sizes.
"""
from __future__ import annotations

import logging
import math
import os
import pathlib
import subprocess
import sys
import time

from support import paths

log = logging.getLogger(__name__)

VERSION = 2  # bump when a builder changes: cached files carry it in their names
SEED = 20250711
SD15_FILE = f"idea-tiny-sd15-v{VERSION}.safetensors"
CONTROLNET_FILE = f"idea-tiny-controlnet-sd15-v{VERSION}.safetensors"
SD21_FILE = f"idea-tiny-sd21-v{VERSION}.safetensors"

# The host's default SD1.x/SD2.x VAE (comfy/sd.py builds this config whatever the file holds).
VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
                "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [],
                "dropout": 0.0}


def unet_config(context_dim: int, model_channels: int = 320, linear: bool = False,
                adm_in_channels: int | None = None) -> dict:
    """What comfy/model_detection.py reports for a one-level UNet (one res block, transformer depth
    1 everywhere, middle transformer): the minimum that still has attn2 in input, middle and output."""
    cfg = {"use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
           "adm_in_channels": adm_in_channels, "in_channels": 4, "out_channels": 4,
           "model_channels": model_channels, "num_res_blocks": [1], "transformer_depth": [1],
           "transformer_depth_output": [1, 1], "channel_mult": [1], "transformer_depth_middle": 1,
           "use_linear_in_transformer": linear, "context_dim": context_dim,
           "use_temporal_resblock": False, "use_temporal_attention": False}
    if adm_in_channels is not None:
        cfg["num_classes"] = "sequential"
    return cfg


def text_encoder_config(hidden: int, heads: int, layers: int = 3, intermediate: int = 128) -> dict:
    """Overrides for the host's CLIP json config (model_options["<name>_model_config"]). Three
    layers is the least that allows the penultimate layer (the host asserts |layer_idx| < layers)."""
    return {"hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": layers,
            "intermediate_size": intermediate, "projection_dim": hidden}


def ensure_host_importable() -> None:
    """Put the host on sys.path and select CPU mode if nothing imported model_management yet
    (a CPU torch asserts otherwise). Never touches base_directory: the in-process host sets it."""
    comfy_dir = str(paths.comfyui_dir())
    if comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    if "comfy.model_management" not in sys.modules:
        from comfy.cli_args import args
        args.cpu = True


def init_random_(module, seed: int, scale: float = 1.0) -> None:
    """Deterministic fan-in init. The host builds layers with disable_weight_init, so their
    parameters start as uninitialised memory; 1/sqrt(fan_in) keeps every activation finite."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    norms = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.BatchNorm2d)
    with torch.no_grad():
        for mod in module.modules():
            for name, p in mod.named_parameters(recurse=False):
                if p.ndim == 0:
                    continue
                if isinstance(mod, norms) or p.ndim == 1:
                    p.fill_(1.0 if name in ("weight", "scale") else 0.0)  # FLUX's RMSNorm calls it scale
                elif isinstance(mod, torch.nn.Embedding):
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
                else:
                    std = scale / math.sqrt(math.prod(p.shape[1:]))
                    p.copy_(torch.randn(p.shape, generator=gen) * std)


def _prefixed(state_dict: dict, prefix: str, dtype) -> dict:
    return {prefix + k: v.detach().to(dtype).contiguous() for k, v in state_dict.items()}


def _sd15_state_dict() -> dict:
    """UNet + the real-config CLIP-L + the real-config VAE, random, fp16, in checkpoint key layout."""
    import torch
    import comfy.ldm.models.autoencoder
    import comfy.sd1_clip
    import comfy.supported_models
    config = comfy.supported_models.SD15(unet_config(768))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    init_random_(model.diffusion_model, SEED)
    sd = _prefixed(model.diffusion_model.state_dict(), "model.diffusion_model.", torch.float16)
    del model
    text = comfy.sd1_clip.SDClipModel(dtype=torch.float32)  # the host's CLIP-L json config
    init_random_(text.transformer, SEED + 1)
    text_sd = text.transformer.state_dict()
    text_sd.pop("text_projection.weight", None)  # SD1 checkpoints carry none; the host drops it too
    sd.update(_prefixed(text_sd, "cond_stage_model.transformer.", torch.float16))
    del text, text_sd
    vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4)
    init_random_(vae, SEED + 2)
    sd.update(_prefixed(vae.state_dict(), "first_stage_model.", torch.float16))
    return sd


def _sd21_state_dict() -> dict:
    """Like _sd15_state_dict for SD2.1-base: a one-level UNet with the SD2 layout (context 1024, linear
    proj_in), the real-config OpenCLIP-H text encoder in its checkpoint layout (the host's own saving
    conversion), the VAE; fp16. The host detects it as SD20, epsilon-prediction (no 768-v key)."""
    import torch
    import comfy.ldm.models.autoencoder
    import comfy.supported_models
    import comfy.text_encoders.sd2_clip
    config = comfy.supported_models.SD20(unet_config(1024, linear=True))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    init_random_(model.diffusion_model, SEED + 4)
    sd = _prefixed(model.diffusion_model.state_dict(), "model.diffusion_model.", torch.float16)
    del model
    clip = comfy.text_encoders.sd2_clip.SD2ClipModel(dtype=torch.float16)  # the host's ViT-H json config
    init_random_(clip, SEED + 5)
    sd.update(_prefixed(config.process_clip_state_dict_for_saving(clip.state_dict()), "", torch.float16))
    del clip
    vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4)
    init_random_(vae, SEED + 6)
    sd.update(_prefixed(vae.state_dict(), "first_stage_model.", torch.float16))
    return sd


def _controlnet_state_dict() -> dict:
    """A ControlNet for the tiny UNet, in the original "control_model." layout. Its zero convs are
    random rather than zero so that applying it visibly changes the result."""
    import torch
    import comfy.cldm.cldm
    import comfy.ops
    cfg = unet_config(768)
    cfg.pop("out_channels")
    cfg.pop("transformer_depth_output")
    cnet = comfy.cldm.cldm.ControlNet(hint_channels=3, num_heads=8, num_head_channels=-1,
                                      operations=comfy.ops.disable_weight_init, **cfg)
    init_random_(cnet, SEED + 3)
    return _prefixed(cnet.state_dict(), "control_model.", torch.float16)


def _check_detected(sd: dict, expected: str) -> None:
    """Fail the build, not a test later, if the host would not detect the file as `expected`."""
    import comfy.model_detection
    config = comfy.model_detection.model_config_from_unet(sd, "model.diffusion_model.")
    if type(config).__name__ != expected:
        raise RuntimeError(f"tiny checkpoint detected as {type(config).__name__}, expected {expected}")


def _build_file(kind: str, out: pathlib.Path) -> None:
    """Child-process entry: build one file and write it atomically."""
    ensure_host_importable()
    import safetensors.torch
    if kind == "sd15":
        sd = _sd15_state_dict()
        _check_detected(sd, "SD15")
    elif kind == "sd21":
        sd = _sd21_state_dict()
        _check_detected(sd, "SD20")
    elif kind == "controlnet":
        sd = _controlnet_state_dict()
    else:
        raise ValueError(kind)
    tmp = out.with_name(out.name + ".part")
    # one metadata key: safetensors writes several in an unstable order, and the bytes should repeat
    safetensors.torch.save_file(sd, str(tmp), metadata={"idea_tiny": f"{kind} v{VERSION} seed {SEED}"})
    os.chmod(tmp, 0o644)  # safetensors creates it owner-only
    os.replace(tmp, out)


def _cached(cache_dir: pathlib.Path, name: str, kind: str, module: str = "support.tiny_models",
            build_kind: str | None = None) -> pathlib.Path:
    """The cached file, built in a child process (`python -m module build_kind target`, under a lock)
    when missing; older versions go."""
    cache_dir = pathlib.Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / name
    if target.exists():
        return target
    with paths.file_lock(cache_dir / f".{kind}.lock"):
        if target.exists():
            return target
        stem = name.rsplit("-v", 1)[0]
        for old in cache_dir.glob(f"{stem}-v*.safetensors"):
            old.unlink()
        start = time.monotonic()
        tests_dir = pathlib.Path(__file__).resolve().parents[1]
        proc = subprocess.run([sys.executable, "-m", module, build_kind or kind, str(target)],
                              cwd=tests_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"building {name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        log.info("built %s in %.1f s (%.0f MiB)", target, time.monotonic() - start,
                 target.stat().st_size / 2**20)
    return target


def tiny_sd15_checkpoint(cache_dir) -> pathlib.Path:
    """A single-file SD1.5 checkpoint (~445 MiB fp16) that the host detects as SD15."""
    return _cached(cache_dir, SD15_FILE, "sd15")


def tiny_sd21_checkpoint(cache_dir) -> pathlib.Path:
    """A single-file SD2.1-base checkpoint (~0.9 GiB fp16: its text encoder is full size, as the
    loader builds it from a fixed config) that the host detects as SD20 with epsilon prediction."""
    return _cached(cache_dir, SD21_FILE, "sd21")


def tiny_controlnet(cache_dir) -> pathlib.Path:
    """A ControlNet file for the tiny SD1.5 UNet, loadable by the core ControlNetLoader."""
    return _cached(cache_dir, CONTROLNET_FILE, "controlnet")


def _install(source: pathlib.Path, folder: pathlib.Path, name: str) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    if link.is_symlink() or link.exists():
        if link.resolve() == source.resolve():
            return link
        link.unlink()
    link.symlink_to(source)
    return link


def install_checkpoint(base_dir, name: str = "idea-tiny-sd15.safetensors", cache_dir=None,
                       build=tiny_sd15_checkpoint) -> pathlib.Path:
    """Link a tiny checkpoint (`build`: tiny_sd15_checkpoint or tiny_sd21_checkpoint) into
    <base_dir>/models/checkpoints/<name> for CheckpointLoaderSimple."""
    source = build(cache_dir or paths.cache_dir())
    return _install(source, pathlib.Path(base_dir) / "models" / "checkpoints", name)


def load_checkpoint(host, cache_dir=None, name: str = "idea-tiny-sd15.safetensors") -> tuple:
    """(model, clip, vae) of the tiny checkpoint through the core CheckpointLoaderSimple, as a user's
    graph loads it (so the weights are inference tensors)."""
    install_checkpoint(host.base, name, cache_dir=cache_dir)
    return tuple(host.run("CheckpointLoaderSimple", ckpt_name=name)[:3])


def install_controlnet(base_dir, name: str = "idea-tiny-controlnet.safetensors", cache_dir=None) -> pathlib.Path:
    """Link the tiny ControlNet into <base_dir>/models/controlnet/<name> for ControlNetLoader."""
    source = tiny_controlnet(cache_dir or paths.cache_dir())
    return _install(source, pathlib.Path(base_dir) / "models" / "controlnet", name)


# ---- in-process builders (the host must be importable; the `host` fixture has imported it) ----

def _default_embedding_dirs():
    folder_paths = sys.modules.get("folder_paths")
    return folder_paths.get_folder_paths("embeddings") if folder_paths is not None else None


def build_sd15_in_process(cache_dir=None):
    """(ModelPatcher, comfy.sd.CLIP, comfy.sd.VAE) from the tiny checkpoint, loaded as the core
    loader does."""
    ensure_host_importable()
    import comfy.sd
    ckpt = tiny_sd15_checkpoint(cache_dir or paths.cache_dir())
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        str(ckpt), output_vae=True, output_clip=True, embedding_directory=_default_embedding_dirs())
    return model, clip, vae


def _patcher(model_config, model_cls, model_type, seed: int):
    """Host model of `model_cls` with random weights, wrapped as the loaders wrap it."""
    import comfy.model_management as mm
    import comfy.model_patcher
    load_device = mm.get_torch_device()
    dtype = mm.unet_dtype(supported_dtypes=model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(dtype, mm.unet_manual_cast(dtype, load_device))
    model = model_cls(model_config, model_type=model_type)
    init_random_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device,
                                            offload_device=mm.unet_offload_device())


def _clip(target, te_options: dict, seed: int, embedding_directory):
    """comfy.sd.CLIP around the host's encoder classes, shrunk through model_options overrides."""
    import comfy.sd
    if embedding_directory is None:
        embedding_directory = _default_embedding_dirs()
    clip = comfy.sd.CLIP(target, embedding_directory=embedding_directory, model_options=te_options)
    init_random_(clip.cond_stage_model, seed)
    return clip


def build_sd2_like(model_channels: int = 128, prediction: str = "eps", seed: int = SEED + 10,
                   embedding_directory=None):
    """(ModelPatcher, comfy.sd.CLIP) shaped like SD2.x: the host's SD20 config and SD2 text
    encoder (OpenCLIP-H layout, 1024-wide tokens, penultimate layer), context 1024, linear proj_in.
    prediction: "eps" (what detection gives a 2.x-base model) or "v" (the 768-v models)."""
    ensure_host_importable()
    import comfy.model_base
    import comfy.supported_models
    import comfy.supported_models_base
    import comfy.text_encoders.sd2_clip as sd2_clip
    config = comfy.supported_models.SD20(unet_config(1024, model_channels, linear=True))
    model_type = {"eps": comfy.model_base.ModelType.EPS,
                  "v": comfy.model_base.ModelType.V_PREDICTION}[prediction]
    model = _patcher(config, comfy.model_base.BaseModel, model_type, seed)
    target = comfy.supported_models_base.ClipTarget(sd2_clip.SD2Tokenizer, sd2_clip.SD2ClipModel)
    clip = _clip(target, {"clip_h_model_config": text_encoder_config(1024, 16)}, seed + 1,
                 embedding_directory)
    return model, clip


def build_sdxl_like(model_channels: int = 128, seed: int = SEED + 20, embedding_directory=None):
    """(ModelPatcher, comfy.sd.CLIP) shaped like SDXL: the host's SDXL config and model class
    (pooled + size conditioning, adm 2816), its CLIP-L (768) + CLIP-G (1280) pair, context 2048."""
    ensure_host_importable()
    import comfy.model_base
    import comfy.sdxl_clip
    import comfy.supported_models
    import comfy.supported_models_base
    config = comfy.supported_models.SDXL(unet_config(2048, model_channels, linear=True,
                                                     adm_in_channels=2816))
    model = _patcher(config, comfy.model_base.SDXL, comfy.model_base.ModelType.EPS, seed)
    target = comfy.supported_models_base.ClipTarget(comfy.sdxl_clip.SDXLTokenizer,
                                                    comfy.sdxl_clip.SDXLClipModel)
    te_options = {"clip_l_model_config": text_encoder_config(768, 12),
                  "clip_g_model_config": text_encoder_config(1280, 20)}
    clip = _clip(target, te_options, seed + 1, embedding_directory)
    return model, clip


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    _build_file(sys.argv[1], pathlib.Path(sys.argv[2]))

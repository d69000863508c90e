"""The bundled workflows as test prompts: UI file -> API prompt, the user's files swapped for test ones.

Workflows are named by their key in tools/make_workflows.py (idea_train_and_generate, ...); the file
is named by the template title the generator gives it (`path`).

A user runs workflows/*.json with their own checkpoint, insightface pack, ControlNet and photos at
full size. The tests run the same files with stand-ins: the tiny random SD1.5 checkpoint and
ControlNet (tiny_models), the real SFace/YuNet pack (real_faces), real photos under the names the
Load Image nodes use, and sizes and step counts small enough for a CPU. `substitute` is the single
place that decides those swaps; everything else in the prompt is what the file says.

SDXL: the host detects SDXL from the UNet's keys and shapes (model_channels 320, transformer depths
[0, 0, 2, 2, 10, 10], context 2048, adm 2816) but not from its channel multipliers, so a full-depth
UNet with every level at 320 channels is detected as SDXL. The checkpoint loader builds CLIP-L and
CLIP-G from fixed configs, though, so the file must hold both at full size: `sdxl_checkpoint` makes
that 2.4 GB file once (about 15 s and 3.6 GB of memory on 2 cores, cached, byte-for-byte repeatable).
"""
from __future__ import annotations

import copy
import json
import logging
import os
import pathlib
import subprocess
import sys
import time

from support import paths, real_faces, tiny_models
from support.images import save_png
from support.synthetic_faces import noise_image
from support.tools import tool
from support.workflow_api import linked_source, ui_to_api

log = logging.getLogger(__name__)

WORKFLOWS_DIR = paths.REPO / "workflows"
FACE_PACK = "sface_yunet"
CHECKPOINT = "idea-tiny-sd15.safetensors"
SDXL_CHECKPOINT = "idea-sdxl-narrow.safetensors"
SD21_CHECKPOINT = "idea-tiny-sd21.safetensors"
CONTROLNET = "idea-tiny-controlnet.safetensors"
# what a Load Image node's file is in the tests: a real photo by name, or None for a plain picture
INPUTS = {"my_person_1.png": "obama", "pose.png": None, "person_a.png": "obama3", "person_b.png": "biden"}
SMALL = 64  # training resolution, face crops and latent images, in pixels
SDXL_VERSION = 1
SDXL_FILE = f"idea-sdxl-narrow-v{SDXL_VERSION}.safetensors"


def registry() -> dict:
    """key -> the generator's Workflow (title, prompt, layout)."""
    return tool("make_workflows").WORKFLOWS


def path(name: str) -> pathlib.Path:
    return WORKFLOWS_DIR / registry()[name].file_name


def load(name: str) -> dict:
    return json.loads(path(name).read_text(encoding="utf-8"))


def names() -> list[str]:
    return sorted(registry())


def to_api(workflow: dict, object_info: dict) -> dict:
    """ui_to_api, plus Preview Any: its only widget is the frontend's text display, which the server
    does not read and frontends send differently (1.32.9 an empty `preview` value, 1.49 and later
    nothing), so it is left out (tests/test_workflows_ui.py checks the result equals the frontend's
    own graphToPrompt in what the server reads)."""
    previews = [n for n in workflow["nodes"] if n["type"] == "PreviewAny" and n.get("mode", 0) == 0]
    rest = copy.deepcopy(workflow)
    rest["nodes"] = [n for n in rest["nodes"] if n["type"] != "PreviewAny"]
    prompt = ui_to_api(rest, object_info)
    for node in previews:
        inputs = {}
        source = linked_source(workflow, object_info, node["id"])
        if source is not None:
            if source[0] not in prompt:
                raise ValueError(f"Preview Any {node['id']} reads node {source[0]}, which is not in the prompt")
            inputs["source"] = source
        title = node.get("title") or object_info["PreviewAny"]["display_name"]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": "PreviewAny", "_meta": {"title": title}}
    return prompt


def substitute(prompt: dict, *, checkpoint: str = CHECKPOINT, identity_name: str | None = None,
               steps: int = 2, batch_size: int = 2) -> dict:
    """The prompt with test models, CPU-sized images and few steps; `identity_name` replaces the
    workflow's identity name (Learn ID Token, Load Identity and `embedding:` in the prompts)."""
    out = copy.deepcopy(prompt)
    found = [e["inputs"]["name"] for e in out.values() if e["class_type"] == "IDEA_LearnIDToken"]
    found += [e["inputs"]["identity_file"].removesuffix(".safetensors") for e in out.values()
              if e["class_type"] == "IDEA_LoadIdentity"]
    old_name = found[0] if found else None
    swaps = {
        "CheckpointLoaderSimple": {"ckpt_name": checkpoint},
        "ControlNetLoader": {"control_net_name": CONTROLNET},
        "IDEA_FaceIDEmbed": {"model_pack": FACE_PACK, "crop_size": SMALL},
        "IDEA_LearnIDToken": {"steps": steps, "batch_size": batch_size, "resolution": SMALL},
        "EmptyLatentImage": {"width": SMALL, "height": SMALL, "batch_size": 1},
        "KSampler": {"steps": 2},
        "BasicScheduler": {"steps": 2},
    }
    for entry in out.values():
        inputs, swap = entry["inputs"], swaps.get(entry["class_type"], {})
        if not set(swap) <= set(inputs):  # a renamed input would otherwise be added, not replaced
            raise ValueError(f"{entry['class_type']} has no input(s) {sorted(set(swap) - set(inputs))}")
        inputs.update(swap)
        if identity_name and old_name:
            if entry["class_type"] == "IDEA_LearnIDToken":
                inputs["name"] = identity_name
            elif entry["class_type"] == "IDEA_LoadIdentity":
                inputs["identity_file"] = f"{identity_name}.safetensors"
            elif isinstance(inputs.get("text"), str):
                inputs["text"] = inputs["text"].replace(f"embedding:{old_name}", f"embedding:{identity_name}")
        if entry["class_type"] == "LoadImage" and inputs["image"] not in INPUTS:
            raise ValueError(f"no test picture for Load Image file {inputs['image']!r}; add it to INPUTS")
    return out


def install(base: pathlib.Path, cache_dir: pathlib.Path | None = None) -> None:
    """Put the stand-ins where a user puts their files: checkpoint, ControlNet, face pack, photos."""
    base = pathlib.Path(base)
    tiny_models.install_checkpoint(base, CHECKPOINT, cache_dir=cache_dir)
    tiny_models.install_controlnet(base, CONTROLNET, cache_dir=cache_dir)
    real_faces.write_real_pack(base / "models", FACE_PACK)
    install_pictures(base / "input")


def install_sd21_checkpoint(base: pathlib.Path, cache_dir: pathlib.Path | None = None) -> pathlib.Path:
    """The tiny SD2.1-base checkpoint (built once, ~0.9 GiB), for the workflow that names SD2.1."""
    return tiny_models.install_checkpoint(base, SD21_CHECKPOINT, cache_dir=cache_dir,
                                          build=tiny_models.tiny_sd21_checkpoint)


def install_pictures(input_dir: pathlib.Path) -> None:
    for name, photo in INPUTS.items():
        picture = real_faces.load_photo(photo) if photo else noise_image(256, 256, seed=3)
        save_png(picture, pathlib.Path(input_dir) / name)


def output_files(base: pathlib.Path, entry: dict, node_id: str) -> list[pathlib.Path]:
    """The files a SaveImage node wrote, from its history entry."""
    images = entry["outputs"][node_id]["images"]
    return [pathlib.Path(base) / "output" / i["subfolder"] / i["filename"] for i in images]


def node_ids(prompt: dict, class_type: str) -> list[str]:
    return [key for key, entry in prompt.items() if entry["class_type"] == class_type]


# ---- the SDXL-detectable checkpoint (2.4 GB, built once) ----

def _half(state_dict: dict, prefix: str) -> dict:
    return {prefix + k: v.detach().half().contiguous() for k, v in state_dict.items()}


def _sdxl_state_dict() -> dict:
    """Full-depth SDXL UNet at 320 channels on every level, full-size random CLIP-L + CLIP-G in the
    SDXL checkpoint layout (the host's own saving conversion), the SD VAE; fp16."""
    import comfy.ldm.models.autoencoder
    import comfy.model_detection
    import comfy.sdxl_clip
    import comfy.supported_models
    import torch
    cfg = tiny_models.unet_config(2048, 320, linear=True, adm_in_channels=2816)
    cfg.update(num_res_blocks=[2, 2, 2], transformer_depth=[0, 0, 2, 2, 10, 10], channel_mult=[1, 1, 1],
               transformer_depth_middle=10, transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10],
               num_head_channels=64)
    config = comfy.supported_models.SDXL(cfg)
    config.set_inference_dtype(torch.float16, None)  # made in fp16: the same values, half the memory
    unet = config.get_model({}).diffusion_model
    tiny_models.init_random_(unet, tiny_models.SEED + 30)
    sd = _half(unet.state_dict(), "model.diffusion_model.")
    del unet
    found = comfy.model_detection.model_config_from_unet(sd, "model.diffusion_model.")
    if type(found).__name__ != "SDXL":
        raise RuntimeError(f"the narrow SDXL UNet was detected as {type(found).__name__}")
    clip = comfy.sdxl_clip.SDXLClipModel(dtype=torch.float16)
    tiny_models.init_random_(clip, tiny_models.SEED + 31)
    sd.update(_half(config.process_clip_state_dict_for_saving(clip.state_dict()), ""))
    del clip
    vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(tiny_models.VAE_DDCONFIG), embed_dim=4)
    tiny_models.init_random_(vae, tiny_models.SEED + 32)
    sd.update(_half(vae.state_dict(), "first_stage_model."))
    return sd


def sdxl_checkpoint(cache_dir: pathlib.Path | None = None) -> pathlib.Path:
    """The cached SDXL-detectable checkpoint, built in a child process (under a lock) when missing."""
    cache_dir = pathlib.Path(cache_dir or paths.cache_dir())
    target = cache_dir / SDXL_FILE
    with paths.file_lock(cache_dir / ".sdxl-narrow.lock"):
        if not target.exists():
            for old in cache_dir.glob("idea-sdxl-narrow-v*.safetensors"):
                old.unlink()
            start = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "support.workflow_fixtures", str(target)],
                                  cwd=paths.REPO / "tests", capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"building {target.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
            log.info("built %s in %.0f s", target, time.monotonic() - start)
    return target


def install_sdxl_checkpoint(base: pathlib.Path, cache_dir: pathlib.Path | None = None) -> pathlib.Path:
    link = pathlib.Path(base) / "models" / "checkpoints" / SDXL_CHECKPOINT
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(sdxl_checkpoint(cache_dir))
    return link


def _build_sdxl(out: pathlib.Path) -> None:
    """Child-process entry: keeps the parent's host import (if any) untouched."""
    tiny_models.ensure_host_importable()
    import safetensors.torch
    tmp = out.with_name(out.name + ".part")
    safetensors.torch.save_file(_sdxl_state_dict(), str(tmp), metadata={"idea_test": f"sdxl narrow v{SDXL_VERSION}"})
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    _build_sdxl(pathlib.Path(sys.argv[1]))


def install_saved_people(base: pathlib.Path, names: tuple[str, ...], seed: int) -> tuple[str, ...]:
    """SD1.5 people as Learn ID Token leaves them: an identity file and an embedding each (random,
    with an open gate; a workflow's logic, not the likeness, is under test)."""
    import torch
    from safetensors.torch import save_file
    from support.identities import write_identity
    models = pathlib.Path(base) / "models"
    (models / "embeddings").mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        write_identity(models / "idea" / f"{name}.safetensors", "sd1", seed=seed + k)
        vectors = torch.randn(2, 768, generator=torch.Generator().manual_seed(seed + 10 + k))
        save_file({"clip_l": vectors}, str(models / "embeddings" / f"{name}.safetensors"))
    return names


def install_two_people(base: pathlib.Path) -> tuple[str, str]:
    """person_a and person_b, the two identities workflow 5 loads."""
    return install_saved_people(base, ("person_a", "person_b"), seed=40)

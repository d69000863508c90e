"""FLUX.1 (experimental) through the real server (POST /prompt), on the small FLUX.1-dev: a photo ->
FaceID Embed -> ID-Enhancer -> Learn ID Token (saved) -> Load Identity -> a generation with
`embedding:NAME` and Apply ID-Adapter; weight 0 gives exactly the latent without the adapter; and
identities refused across bases with both named, the server answering the next prompt.

The server loads tests/support/flux_nodes, whose one node loads the small FLUX's transformer and text
encoders through the host's loading functions (UNETLoader and DualCLIPLoader cannot make them small).
"""
from __future__ import annotations

import pathlib

import pytest
import torch
from safetensors.torch import load_file

from support import real_faces, tiny_flux, tiny_models
from support.identities import write_identity
from support.images import save_png
from support.server import ComfyServer, execution_error
from support.training_prompts import photo_to_identity

FLUX_NODES = pathlib.Path(__file__).resolve().parent / "support" / "flux_nodes"
VAE = "idea-tiny-flux-ae.safetensors"
SD15 = "idea-tiny-sd15.safetensors"
NAME = "served_flux_person"


@pytest.fixture(scope="module")
def flux_server(tmp_path_factory, cache_dir):
    tiny_flux.tiny_flux_files(cache_dir)  # built here, not inside a prompt
    server = ComfyServer(tmp_path_factory.mktemp("flux-server"))
    (server.base / "custom_nodes" / "idea_flux_nodes").symlink_to(FLUX_NODES, target_is_directory=True)
    tiny_flux.install_vae(server.base, VAE, cache_dir)
    tiny_models.install_checkpoint(server.base, SD15, cache_dir=cache_dir)
    real_faces.write_real_pack(server.base / "models", "sface_yunet")
    save_png(real_faces.load_photo("obama2"), server.base / "input" / "obama2.png")
    write_identity(server.base / "models" / "idea" / "someone-sd1.safetensors", "sd1", seed=3)
    server.start()
    yield server
    server.stop()


def loaders() -> dict:
    return {"1": {"class_type": "IDEA_TEST_LoadTinyFlux", "inputs": {}},
            "2": {"class_type": "VAELoader", "inputs": {"vae_name": VAE}}}


def training_prompt() -> dict:
    return {**loaders(), **photo_to_identity(["1", 0], ["1", 1], ["2", 0], NAME, start=3, batch_size=1,
                                             train_enhancer=False)}


def generation_prompt(prefix: str, text: str, identity_file: str | None = None, weight: float = 1.0,
                      checkpoint: str | None = None) -> dict:
    """FLUX: CLIPTextEncode -> FluxGuidance -> KSampler at CFG 1 -> SaveLatent (and an image); with
    identity_file, Load Identity -> Apply ID-Adapter on the model. checkpoint: an SD model instead."""
    prompt = {**loaders(),
              "10": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["1", 1]}},
              "11": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["10", 0], "guidance": 3.5}},
              "12": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "13": {"class_type": "KSampler",
                     "inputs": {"model": ["1", 0], "seed": 5, "steps": 2, "cfg": 1.0, "sampler_name": "euler",
                                "scheduler": "simple", "positive": ["11", 0], "negative": ["11", 0],
                                "latent_image": ["12", 0], "denoise": 1.0}},
              "14": {"class_type": "SaveLatent", "inputs": {"samples": ["13", 0], "filename_prefix": prefix}},
              "15": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["2", 0]}},
              "16": {"class_type": "SaveImage", "inputs": {"images": ["15", 0], "filename_prefix": prefix}}}
    if identity_file is not None:
        prompt["20"] = {"class_type": "IDEA_LoadIdentity", "inputs": {"identity_file": identity_file}}
        prompt["21"] = {"class_type": "IDEA_ApplyIDAdapter",
                        "inputs": {"model": ["1", 0], "identity": ["20", 0], "weight": weight, "start_at": 0.0,
                                   "end_at": 1.0, "apply_to": "cond"}}
        prompt["13"]["inputs"]["model"] = ["21", 0]
    if checkpoint is not None:
        prompt["30"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}}
        prompt["21"]["inputs"]["model"] = ["30", 0]
    return prompt


def saved_latent(server, entry) -> torch.Tensor:
    [latent] = entry["outputs"]["14"]["latents"]
    return load_file(server.base / "output" / latent["subfolder"] / latent["filename"])["latent_tensor"]


@pytest.fixture(scope="module")
def trained(flux_server):
    entry = flux_server.run_ok(training_prompt())
    assert entry["outputs"]["7"]["images"], "the loss curve preview is missing"
    return entry


def test_trained_identity_generates_with_its_word_and_the_adapter(flux_server, trained):
    models = flux_server.base / "models"
    assert (models / "idea" / f"{NAME}.safetensors").is_file()
    assert set(load_file(models / "embeddings" / f"{NAME}.safetensors")) == {"t5xxl", "clip_l"}
    plain = saved_latent(flux_server, flux_server.run_ok(generation_prompt("flux_plain", "a photo of a person")))
    text = f"a photo of embedding:{NAME} person"
    word = saved_latent(flux_server, flux_server.run_ok(generation_prompt("flux_word", text)))
    adapted = saved_latent(flux_server, flux_server.run_ok(
        generation_prompt("flux_adapted", text, f"{NAME}.safetensors")))
    off = saved_latent(flux_server, flux_server.run_ok(
        generation_prompt("flux_off", text, f"{NAME}.safetensors", weight=0.0)))
    assert plain.shape == (1, 16, 8, 8) and torch.isfinite(adapted).all()
    assert not torch.equal(word, plain)  # the host's encoder found embedding:NAME and used it
    log = flux_server.log_tail(200_000)
    assert f"embedding:{NAME} does not exist" not in log and "shape mismatch" not in log
    assert not torch.equal(adapted, word)  # the trained adapter acts
    assert torch.equal(off, word)  # weight 0: exactly the picture without the adapter


def test_identities_of_the_other_base_are_refused_by_name(flux_server, trained):
    on_sd = execution_error(flux_server.run(
        generation_prompt("flux_on_sd", "a photo", f"{NAME}.safetensors", checkpoint=SD15)))
    assert on_sd["node_type"] == "IDEA_ApplyIDAdapter"
    assert "trained for FLUX.1 (context 4096) but the model is SD1.x (context 768)" in on_sd["exception_message"]
    sd_on_flux = execution_error(flux_server.run(generation_prompt("sd_on_flux", "a photo", "someone-sd1.safetensors")))
    assert sd_on_flux["node_type"] == "IDEA_ApplyIDAdapter"
    assert "trained for SD1.x (context 768) but the model is FLUX.1 (context 4096)" in sd_on_flux["exception_message"]
    assert flux_server.run_ok(generation_prompt("flux_after", "a photo of a person"))["outputs"]["14"]["latents"]

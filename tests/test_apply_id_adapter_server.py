"""Apply ID-Adapter through the real server (POST /prompt): the full route-B workflow from a checkpoint
and an identity file on disk to a saved image, and a mismatched identity answered with the fix."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from support import tiny_models
from support.identities import write_identity
from support.server import execution_error

CHECKPOINT = "idea-tiny-sd15.safetensors"


@pytest.fixture(scope="module")
def adapter_server(server, cache_dir):
    tiny_models.install_checkpoint(server.base, CHECKPOINT, cache_dir=cache_dir)
    folder = server.base / "models" / "idea"
    folder.mkdir(parents=True, exist_ok=True)
    write_identity(folder / "tiny-sd1.safetensors", "sd1", seed=1)
    write_identity(folder / "tiny-sdxl.safetensors", "sdxl", seed=2)
    return server


def workflow(prefix, identity_file=None, weight=1.0):
    """CheckpointLoaderSimple -> (Load Identity -> Apply ID-Adapter) -> KSampler -> VAEDecode -> SaveImage."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a person", "clip": ["1", 1]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "7": {"class_type": "KSampler",
              "inputs": {"model": ["1", 0], "seed": 5, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
                         "scheduler": "normal", "positive": ["4", 0], "negative": ["5", 0],
                         "latent_image": ["6", 0], "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": prefix}},
    }
    if identity_file is not None:
        prompt["2"] = {"class_type": "IDEA_LoadIdentity", "inputs": {"identity_file": identity_file}}
        prompt["3"] = {"class_type": "IDEA_ApplyIDAdapter",
                       "inputs": {"model": ["1", 0], "identity": ["2", 0], "weight": weight,
                                  "start_at": 0.0, "end_at": 1.0, "apply_to": "cond"}}
        prompt["7"]["inputs"]["model"] = ["3", 0]
    return prompt


def saved_image(server, entry) -> np.ndarray:
    [image] = entry["outputs"]["9"]["images"]
    path = server.base / "output" / image["subfolder"] / image["filename"]
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_object_info_describes_the_node(adapter_server):
    info = adapter_server.get("/object_info/IDEA_ApplyIDAdapter")["IDEA_ApplyIDAdapter"]
    assert (info["display_name"], info["category"], info["output"]) == (
        "Apply ID-Adapter (Identity)", "ID-EA", ["MODEL"])
    required = info["input"]["required"]
    assert required["identity"][0] == "IDEA_IDENTITY" and required["apply_to"][1]["default"] == "cond"
    assert all(spec[1].get("tooltip") for spec in required.values())


def test_ksampler_workflow_with_the_adapter_succeeds_and_the_adapter_shows(adapter_server):
    plain = saved_image(adapter_server, adapter_server.run_ok(workflow("idea_plain")))
    with_identity = saved_image(adapter_server,
                                adapter_server.run_ok(workflow("idea_adapter", "tiny-sd1.safetensors")))
    switched_off = saved_image(adapter_server, adapter_server.run_ok(
        workflow("idea_adapter_off", "tiny-sd1.safetensors", weight=0.0)))
    assert with_identity.shape == plain.shape == (64, 64, 3) and plain.std() > 5
    assert np.array_equal(switched_off, plain)
    assert np.abs(with_identity - plain).mean() > 1.0


def test_an_sdxl_identity_on_an_sd15_checkpoint_is_refused_with_the_fix(adapter_server):
    entry = adapter_server.run(workflow("idea_mismatch", "tiny-sdxl.safetensors"))
    assert entry["status"]["status_str"] == "error"
    error = execution_error(entry)
    assert error["node_type"] == "IDEA_ApplyIDAdapter"
    assert ("trained for SDXL (context 2048) but the model is SD1.x (context 768); load an SDXL checkpoint"
            in error["exception_message"])

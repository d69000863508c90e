"""FaceID Embed -> ID-Enhancer -> Learn ID Token through the real server (POST /prompt), and bad
inputs that end in a clear execution_error while the server keeps working."""
from __future__ import annotations

import pytest

from support import real_faces, tiny_models
from support.identities import write_identity
from support.images import save_png
from support.server import execution_error
from support.training_prompts import photo_to_identity

CHECKPOINT = "idea-tiny-sd15.safetensors"


@pytest.fixture(scope="module")
def learn_server(server, cache_dir):
    tiny_models.install_checkpoint(server.base, CHECKPOINT, cache_dir=cache_dir)
    real_faces.write_real_pack(server.base / "models", "sface_yunet")
    save_png(real_faces.load_photo("obama2"), server.base / "input" / "obama2.png")
    write_identity(server.base / "models" / "idea" / "someone-sdxl.safetensors", "sdxl", seed=3)
    return server


def training_prompt(name: str, identity_source: str = "enhancer", steps: int = 2) -> dict:
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
              **photo_to_identity(["1", 0], ["1", 1], ["1", 2], name, start=2, steps=steps)}
    if identity_source == "file":
        prompt["4"] = {"class_type": "IDEA_LoadIdentity", "inputs": {"identity_file": "someone-sdxl.safetensors"}}
    return prompt


def test_photo_to_trained_identity_runs_to_success_and_saves_both_files(learn_server):
    entry = learn_server.run_ok(training_prompt("served_person"))
    assert entry["outputs"]["6"]["images"], "the loss curve preview is missing"
    models = learn_server.base / "models"
    assert (models / "idea" / "served_person.safetensors").is_file()
    assert (models / "embeddings" / "served_person.safetensors").is_file()


def test_bad_inputs_end_in_a_clear_error_and_the_server_keeps_working(learn_server):
    wrong_base = learn_server.run(training_prompt("wrong_base", identity_source="file"))
    error = execution_error(wrong_base)
    assert error["node_type"] == "IDEA_LearnIDToken"
    assert "trained for SDXL" in error["exception_message"] and "SD1.x" in error["exception_message"]

    saved = [learn_server.base / "models" / folder / "served_person.safetensors" for folder in ("idea", "embeddings")]
    before = [path.read_bytes() for path in saved]
    taken = learn_server.run(training_prompt("served_person", steps=3))  # a changed input: Learn runs again
    error = execution_error(taken)
    assert error is not None, "a second run under a taken name must stop"
    assert error["exception_type"] == "ID-EA.NameTakenError"
    assert "Nothing was overwritten" in error["exception_message"]
    assert [path.read_bytes() for path in saved] == before

    again = learn_server.run_ok(training_prompt("served_person_2"))
    assert again["outputs"]["6"]["images"]

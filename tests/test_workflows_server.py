"""The bundled workflows run on the real server, converted from their UI files as shipped, with only
the user's files and sizes swapped for test ones (support/workflow_fixtures.substitute).

The user's path is followed: idea_train_and_generate trains `my_person` and generates with it in one
run; the saved-identity workflows then load that identity by the same name. idea_sdxl runs on a
checkpoint the host detects as SDXL (full depth, narrow; see support/workflow_fixtures.py).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from support import workflow_fixtures as wf
from support.server import PromptFailed, execution_error

from idea.identity_file import load_identity


@pytest.fixture(scope="module")
def object_info(workflow_server):
    return workflow_server.get("/object_info")


def prompt_of(name: str, object_info: dict, **swaps) -> dict:
    return wf.substitute(wf.to_api(wf.load(name), object_info), **swaps)


def missing_embedding_warnings(server, name: str) -> int:
    """How often the host logged that `embedding:name` was not found (its warning quotes the rest of
    the prompt after the name)."""
    return server.log_tail(10**8).count(f"warning, embedding:{name} ")


def saved_images(server, prompt: dict, entry: dict) -> list[np.ndarray]:
    [save] = wf.node_ids(prompt, "SaveImage")
    files = wf.output_files(server.base, entry, save)
    assert files and all(f.is_file() for f in files), files
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def identity_name(prompt: dict) -> str:
    [learn] = wf.node_ids(prompt, "IDEA_LearnIDToken")
    return prompt[learn]["inputs"]["name"]


def failure(server, entry: dict) -> str:
    return f"{execution_error(entry)}\n{server.log_tail(3000)}"


def check_train_and_generate(server, prompt: dict, entry: dict, arch: str, encoders: set[str]) -> None:
    """Trained files on disk for this base, an image saved, the loss curve and the likeness text
    shown, and the new embedding found by the prompt encoded in the same run."""
    assert entry["status"]["status_str"] == "success", failure(server, entry)
    name = identity_name(prompt)
    assert load_identity(server.base / "models" / "idea" / f"{name}.safetensors").arch == arch
    with safe_open(server.base / "models" / "embeddings" / f"{name}.safetensors", "pt") as embedding:
        assert set(embedding.keys()) == encoders
    [image] = saved_images(server, prompt, entry)
    assert image.shape == (wf.SMALL, wf.SMALL, 3)
    [similarity] = wf.node_ids(prompt, "IDEA_FaceSimilarity")
    [text] = entry["outputs"][similarity]["text"]
    # a random model draws no face; the summary still reaches the node (which shows it)
    assert re.fullmatch(r"image 1: (no face; no face in any of the 1 images|-?[01]\.\d\d; mean -?[01]\.\d\d "
                        r"over 1/1 images with a face)", text), text
    previews = {key for key in wf.node_ids(prompt, "PreviewImage") if entry["outputs"].get(key, {}).get("images")}
    assert len(previews) == 1  # the loss curve
    assert missing_embedding_warnings(server, name) == 0
    # what makes that deterministic: every prompt encoder takes its CLIP from Learn ID Token
    [learn] = wf.node_ids(prompt, "IDEA_LearnIDToken")
    assert all(prompt[key]["inputs"]["clip"] == [learn, 2] for key in wf.node_ids(prompt, "CLIPTextEncode"))


@pytest.fixture(scope="module")
def trained(workflow_server, object_info):
    """idea_train_and_generate as shipped (name my_person), run once for the module."""
    prompt = prompt_of("idea_train_and_generate", object_info)
    return prompt, workflow_server.run(prompt, timeout=600)


def test_train_and_generate_trains_saves_and_generates_in_one_run(workflow_server, trained):
    check_train_and_generate(workflow_server, *trained, arch="sd1", encoders={"clip_l"})


@pytest.mark.parametrize("name", ["idea_saved_identity", "idea_controlnet_pose"])
def test_saved_identity_workflows_use_the_trained_identity(workflow_server, object_info, trained, name):
    assert trained[1]["status"]["status_str"] == "success", "idea_train_and_generate failed: nothing to load"
    prompt = prompt_of(name, object_info)
    [load] = wf.node_ids(prompt, "IDEA_LoadIdentity")
    assert prompt[load]["inputs"]["identity_file"] == f"{identity_name(trained[0])}.safetensors"
    entry = workflow_server.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "success", failure(workflow_server, entry)
    [image] = saved_images(workflow_server, prompt, entry)
    assert image.shape == (wf.SMALL, wf.SMALL, 3) and image.std() > 1.0
    assert missing_embedding_warnings(workflow_server, identity_name(trained[0])) == 0


def test_controlnet_workflow_feeds_the_pose_to_both_prompts(object_info):
    prompt = prompt_of("idea_controlnet_pose", object_info)
    [apply] = wf.node_ids(prompt, "ControlNetApplyAdvanced")
    [sampler] = wf.node_ids(prompt, "KSampler")
    assert prompt[sampler]["inputs"]["positive"] == [apply, 0]
    assert prompt[sampler]["inputs"]["negative"] == [apply, 1]
    [pose] = [k for k in wf.node_ids(prompt, "LoadImage") if prompt[k]["inputs"]["image"] == "pose.png"]
    assert prompt[apply]["inputs"]["image"] == [pose, 0]


def test_sdxl_workflow_asks_for_sdxl_sizes(object_info):
    prompt = wf.to_api(wf.load("idea_sdxl"), object_info)
    by_type = {entry["class_type"]: entry["inputs"] for entry in prompt.values()}
    assert by_type["EmptyLatentImage"]["width"] == by_type["EmptyLatentImage"]["height"] == 1024
    assert by_type["IDEA_LearnIDToken"]["resolution"] == 1024 and by_type["IDEA_FaceIDEmbed"]["crop_size"] == 1024
    assert "xl" in by_type["CheckpointLoaderSimple"]["ckpt_name"]


def test_sdxl_workflow_runs_on_an_sdxl_checkpoint(workflow_server, object_info, cache_dir):
    wf.install_sdxl_checkpoint(workflow_server.base, cache_dir)
    prompt = prompt_of("idea_sdxl", object_info, checkpoint=wf.SDXL_CHECKPOINT, identity_name="my_person_sdxl",
                       steps=1, batch_size=1)
    entry = workflow_server.run(prompt, timeout=900)
    check_train_and_generate(workflow_server, prompt, entry, arch="sdxl", encoders={"clip_l", "clip_g"})


@pytest.fixture(scope="module")
def two_identities(workflow_server):
    return wf.install_two_people(workflow_server.base)


def test_two_people_workflow_runs_and_scores_each_face(workflow_server, object_info, two_identities):
    prompt = prompt_of("idea_two_people", object_info)
    entry = workflow_server.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "success", failure(workflow_server, entry)
    [image] = saved_images(workflow_server, prompt, entry)
    assert image.shape == (wf.SMALL, wf.SMALL, 3) and image.std() > 1.0
    texts = [entry["outputs"][key]["text"][0] for key in wf.node_ids(prompt, "IDEA_FaceSimilarity")]
    assert len(texts) == 2 and all(text.startswith("image 1: ") for text in texts), texts  # shown on each node
    assert all(missing_embedding_warnings(workflow_server, name) == 0 for name in two_identities)
    # each person: their own identity on their own prompt, their own half, their own face scored
    by_type = {}
    for key in sorted(prompt, key=int):
        by_type.setdefault(prompt[key]["class_type"], []).append(prompt[key]["inputs"])
    assert [a["x"] for a in by_type["ConditioningSetAreaPercentage"]] == [0.0, 0.5]
    assert [s["face_index"] for s in by_type["IDEA_FaceSimilarity"]] == [0, 1]
    assert [i["identity_file"] for i in by_type["IDEA_LoadIdentity"]] == ["person_a.safetensors",
                                                                         "person_b.safetensors"]


def test_two_people_a_missing_identity_refuses_the_whole_prompt(workflow_server, object_info, two_identities):
    """ComfyUI runs the outputs whose inputs validate and skips the rest; every output depends on the
    checkpoint and both identities, and Load Identity checks its file when the prompt is queued."""
    prompt = prompt_of("idea_two_people", object_info)
    [_, identity_b] = wf.node_ids(prompt, "IDEA_LoadIdentity")
    prompt[identity_b]["inputs"]["identity_file"] = "person_c.safetensors"
    with pytest.raises(PromptFailed, match=r"answered 400.*identity file 'person_c\.safetensors' not found in "):
        workflow_server.queue(prompt)


def test_two_people_the_picture_does_not_wait_for_the_likeness_checks_face_pack(workflow_server, object_info,
                                                                                two_identities):
    """The face pack (like the reference photos) is read only by the likeness check: without it both
    FaceID Embed nodes are refused when the prompt is queued, with their message (the frontend
    outlines them in red), and the picture is still made and saved."""
    prompt = prompt_of("idea_two_people", object_info)
    embeds = wf.node_ids(prompt, "IDEA_FaceIDEmbed")
    for key in embeds:
        prompt[key]["inputs"]["model_pack"] = "antelopev2"  # listed by default, not installed here
    answer = workflow_server.post("/prompt", {"prompt": prompt, "client_id": workflow_server.client_id})
    assert set(answer["node_errors"]) == set(embeds)
    assert all("antelopev2" in answer["node_errors"][key]["errors"][0]["details"] for key in embeds)
    entry = workflow_server.wait(answer["prompt_id"], timeout=300)
    assert entry["status"]["status_str"] == "success", failure(workflow_server, entry)
    [image] = saved_images(workflow_server, prompt, entry)
    assert image.shape == (wf.SMALL, wf.SMALL, 3)
    assert not set(wf.node_ids(prompt, "IDEA_FaceSimilarity")) & set(entry["outputs"])

"""Workflows 6 (compare route A and route B) and 7 (reproduce the authors' released run) on the real
server, from their UI files as shipped (their blueprint node flattened as the frontend does), with
the user's files and sizes swapped for test ones (support/workflow_fixtures.substitute).

What is checked: the settings the files ship with (the released recipe and sampling, the three
routes sharing one prompt, latent, seed, sampler, steps and CFG), and that every route's pictures
are saved and every route's likeness reaches its box on the canvas. A random model draws no face,
so a likeness reads "no face" (0.0) here; a real checkpoint gives a number per picture.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from support import workflow_fixtures as wf
from support.server import execution_error

from idea.identity_file import load_identity

SCORE = re.compile(r"(image \d+: (no face|-?[01]\.\d\d)(; )?)+(; )?(mean -?[01]\.\d\d over \d+/\d+ images with a face|"
                   r"no face in any of the \d+ images)")
ROUTES = ("route A", "route B 0.5", "route B 1")


@pytest.fixture(scope="module")
def object_info(workflow_server):
    return workflow_server.get("/object_info")


def shipped(name: str, object_info: dict) -> dict:
    return wf.to_api(wf.load(name), object_info)


def by_title(prompt: dict) -> dict:
    """title -> (node id, inputs) of every node, blueprint nodes flattened."""
    return {entry["_meta"]["title"]: (key, entry["inputs"]) for key, entry in prompt.items()}


def check_routes_share_everything_but_the_model(prompt: dict, adapter_from: list) -> None:
    """Every route samples the same prompt, negative prompt, latent, noise, sampler, steps and CFG;
    their guiders read the checkpoint's model through Apply ID-Adapter at 0 (route A: the model as
    loaded), 0.5 and 1."""
    nodes = by_title(prompt)
    samplers = [nodes[f"Sample, {route}"][1] for route in ROUTES]
    for shared in ("noise", "sampler", "sigmas", "latent_image"):
        assert len({tuple(s[shared]) for s in samplers}) == 1, shared
    guiders = [prompt[s["guider"][0]]["inputs"] for s in samplers]
    for shared in ("positive", "negative", "cfg"):
        assert len({tuple(g[shared]) for g in guiders}) == 1, shared
    [checkpoint] = wf.node_ids(prompt, "CheckpointLoaderSimple")
    adapters = [prompt[g["model"][0]] for g in guiders]
    assert [a["class_type"] for a in adapters] == ["IDEA_ApplyIDAdapter"] * 3
    assert [a["inputs"]["weight"] for a in adapters] == [0.0, 0.5, 1.0]
    assert all(a["inputs"]["identity"] == adapter_from and a["inputs"]["model"] == [checkpoint, 0] for a in adapters)


def route_results(server, prompt: dict, entry: dict) -> dict:
    """route -> (its saved pictures, the likeness its box shows)."""
    nodes, results = by_title(prompt), {}
    for route in ROUTES:
        save, likeness = nodes[f"Pictures, {route}"][0], nodes[f"Likeness, {route}"][0]
        files = wf.output_files(server.base, entry, save)
        assert files and all(f.is_file() for f in files), (route, files)
        [text] = entry["outputs"][likeness]["text"]
        results[route] = ([np.asarray(Image.open(f).convert("RGB")) for f in files], text)
    return results


def test_the_reproduce_workflow_ships_the_released_recipe_and_sampling(object_info):
    prompt = shipped("idea_reproduce_release", object_info)
    nodes = {entry["class_type"]: entry["inputs"] for entry in prompt.values()}
    assert nodes["CheckpointLoaderSimple"]["ckpt_name"] == "v2-1_512-ema-pruned.safetensors"
    assert nodes["IDEA_FaceIDEmbed"]["framing"] == "face" and nodes["IDEA_FaceIDEmbed"]["crop_size"] == 512
    assert nodes["IDEA_IDEnhancer"]["num_tokens"] == 2 and nodes["IDEA_IDEnhancer"]["train_enhancer"] is False
    learn = nodes["IDEA_LearnIDToken"]
    assert (learn["steps"], learn["batch_size"], learn["learning_rate"], learn["precision"], learn["resolution"],
            learn["train_enhancer"]) == (320, 8, 0.0015, "fp32", 0, "from identity")
    titles = by_title(prompt)
    assert titles["Prompt"][1]["text"] == "a photo of a embedding:my_person_sd21 person"
    assert titles["Negative prompt"][1]["text"] == ""
    assert nodes["KSamplerSelect"]["sampler_name"] == "dpmpp_2m"
    assert (nodes["BasicScheduler"]["steps"], nodes["BasicScheduler"]["scheduler"]) == (50, "sgm_uniform")
    assert nodes["PrimitiveFloat"]["value"] == 7.5
    check_routes_share_everything_but_the_model(prompt, [wf.node_ids(prompt, "IDEA_LearnIDToken")[0], 0])


def test_the_compare_workflow_draws_three_routes_from_one_prompt_and_seed(object_info):
    prompt = shipped("idea_compare_routes", object_info)
    check_routes_share_everything_but_the_model(prompt, [wf.node_ids(prompt, "IDEA_LoadIdentity")[0], 0])


def test_reproduce_trains_on_sd21_and_saves_and_scores_every_route(workflow_server, object_info, cache_dir):
    wf.install_sd21_checkpoint(workflow_server.base, cache_dir)
    prompt = wf.substitute(shipped("idea_reproduce_release", object_info), checkpoint=wf.SD21_CHECKPOINT)
    entry = workflow_server.run(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", f"{execution_error(entry)}\n{workflow_server.log_tail(3000)}"
    identity = load_identity(workflow_server.base / "models" / "idea" / "my_person_sd21.safetensors")
    assert identity.arch == "sd2" and identity.framing == "face"
    training = identity.metadata["training"]
    assert training["precision"] == "fp32" and training["train_enhancer"] is False
    for route, (pictures, text) in route_results(workflow_server, prompt, entry).items():
        assert pictures[0].shape == (wf.SMALL, wf.SMALL, 3), route
        assert SCORE.fullmatch(text), (route, text)


def test_compare_saves_and_scores_every_route_and_the_routes_differ(workflow_server, object_info):
    wf.install_saved_people(workflow_server.base, ("compare_person",), seed=60)
    prompt = wf.substitute(shipped("idea_compare_routes", object_info), identity_name="compare_person")
    entry = workflow_server.run(prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", f"{execution_error(entry)}\n{workflow_server.log_tail(3000)}"
    results = route_results(workflow_server, prompt, entry)
    for route, (pictures, text) in results.items():
        assert pictures[0].shape == (wf.SMALL, wf.SMALL, 3) and pictures[0].std() > 1.0, route
        assert SCORE.fullmatch(text), (route, text)
    # the same noise and prompt, three conditionings: the adapter (its gate open) changes the picture
    a, half, full = (results[route][0][0].astype(int) for route in ROUTES)
    assert np.abs(a - full).max() > 0 and np.abs(half - full).max() > 0

"""The subgraph blueprints in subgraphs/: what each file says, that the blueprint versions of workflows
1 and 2 and the compare workflow hold the very same definitions, and, through the real server, that each
blueprint's inner graph (flattened into a prompt as the frontend does it: tests/test_workflows_ui.py checks the Python
conversion equals the frontend's graphToPrompt) makes exactly what the expanded workflow makes with
the same settings: the same trained identity and embedding, the same picture.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from support import workflow_fixtures as wf
from support.tools import tool
from support.workflow_api import ui_to_api

MAKE = tool("make_workflows")
BLUEPRINTS = MAKE.BLUEPRINTS
DIR = wf.WORKFLOWS_DIR.parent / "subgraphs"
IO = {  # what each blueprint takes and gives, as its node shows it (labels where it has them)
    "learn": (["photos", "clip", "model", "vae"], ["identity", "clip"]),
    "generate": (["model", "identity", "clip", "vae"], ["IMAGE"]),
    "two_people": (["clip", "identity A", "identity B", "model", "vae"], ["IMAGE"]),
    "compare": (["clip", "model", "identity", "vae", "face_embedding"],
                [f"route {r} {what}" for r in ("A", "B 0.5", "B 1") for what in ("pictures", "likeness")]),
}


def blueprint(key: str) -> dict:
    return json.loads((DIR / BLUEPRINTS[key].file_name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bp_server(server, cache_dir):
    wf.install(server.base, cache_dir)
    wf.install_two_people(server.base)
    return server


@pytest.fixture(scope="module")
def object_info(bp_server):
    return bp_server.get("/object_info")


def test_subgraphs_holds_the_four_blueprints_and_nothing_else():
    assert sorted(p.name for p in DIR.iterdir()) == sorted(b.file_name for b in BLUEPRINTS.values())
    assert [b.name for b in BLUEPRINTS.values()] == ["Learn a person (ID-EA)", "Generate with a person (ID-EA)",
                                                    "Two people in one picture (ID-EA)",
                                                    "Compare route A and route B (ID-EA)"]


@pytest.mark.parametrize("key", list(BLUEPRINTS))
def test_a_blueprint_is_one_subgraph_node_named_categorised_and_described(key, object_info):
    spec, bp = BLUEPRINTS[key], blueprint(key)
    [node], [definition] = bp["nodes"], bp["definitions"]["subgraphs"]
    assert node["type"] == definition["id"] == spec.id and node["title"] == definition["name"] == spec.name
    assert definition["category"] == "ID-EA" and "widgets" in definition
    assert bp["extra"]["BlueprintDescription"] == definition["description"] == spec.description
    assert "checkpoint" in spec.description and ("insightface" in spec.description) == (key == "learn")
    assert bp["links"] == [] and all(slot["link"] is None for slot in node["inputs"])
    shown = lambda slots: [s.get("label") or s["name"] for s in slots]  # noqa: E731
    assert (shown(node["inputs"]), shown(node["outputs"])) == IO[key]
    assert (shown(definition["inputs"]), shown(definition["outputs"])) == IO[key]
    # every promoted widget is a widget input of an inner node, and every inner node is one the host has
    inner = {str(n["id"]): n["type"] for n in definition["nodes"]}
    assert node["properties"]["proxyWidgets"] == [list(p) for p in spec.promoted]
    for node_id, widget in spec.promoted:
        inputs = object_info[inner[node_id]]["input"]
        assert widget in {**inputs.get("required", {}), **inputs.get("optional", {})}, (node_id, widget)
    assert set(inner.values()) <= set(object_info)


@pytest.mark.parametrize("name,keys", [("idea_blueprint_start", ["learn", "generate"]),
                                       ("idea_blueprint_saved", ["generate"]), ("idea_compare_routes", ["compare"])])
def test_the_blueprint_workflows_hold_the_blueprints_very_definitions(name, keys):
    definitions = wf.load(name)["definitions"]["subgraphs"]
    assert definitions == [blueprint(key)["definitions"]["subgraphs"][0] for key in keys]


def test_the_blueprint_workflows_are_the_expanded_ones_condensed(object_info):
    """The same nodes with the same settings and wiring: the blueprint version of workflow 1 is workflow
    1 without its likeness check, that of workflow 2 is workflow 2 (node ids aside)."""
    for condensed, expanded, left_out in (("idea_blueprint_start", "idea_train_and_generate", {"IDEA_FaceSimilarity"}),
                                          ("idea_blueprint_saved", "idea_saved_identity", set())):
        assert shape(wf.to_api(wf.load(condensed), object_info)) == shape(
            {k: e for k, e in wf.to_api(wf.load(expanded), object_info).items() if e["class_type"] not in left_out})


def shape(prompt: dict) -> list:
    """A prompt without its node ids: each node's class and inputs, links named by the class and
    slot of their origin (unambiguous in these prompts up to equal twins), sorted."""
    def value(v):
        return (prompt[v[0]]["class_type"], v[1]) if isinstance(v, list) and len(v) == 2 else v
    return sorted(json.dumps([e["class_type"], {k: value(v) for k, v in sorted(e["inputs"].items())}])
                  for e in prompt.values())


def run(server, prompt: dict) -> dict:
    entry = server.run(prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", f"{entry['status']}\n{server.log_tail(3000)}"
    return entry


def picture(server, prompt: dict, entry: dict) -> np.ndarray:
    [save] = wf.node_ids(prompt, "SaveImage")
    [file] = wf.output_files(server.base, entry, save)
    return np.asarray(Image.open(file).convert("RGB"))


def tensors(path) -> dict:
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture(scope="module")
def both_trained(bp_server, object_info):
    """Workflow 1 and its blueprint version, each under its own name, with the same test settings."""
    out = {}
    for name, person in (("idea_train_and_generate", "expanded"), ("idea_blueprint_start", "blueprint")):
        prompt = wf.substitute(wf.to_api(wf.load(name), object_info), identity_name=person)
        out[person] = (prompt, run(bp_server, prompt))
    return out


def test_learn_a_person_trains_what_the_expanded_workflow_trains(bp_server, both_trained):
    models = bp_server.base / "models"
    for folder in ("idea", "embeddings"):
        expanded = tensors(models / folder / "expanded.safetensors")
        condensed = tensors(models / folder / "blueprint.safetensors")
        assert expanded.keys() == condensed.keys()
        assert all(torch.equal(expanded[k], condensed[k]) for k in expanded), folder


def test_generate_with_a_person_makes_the_expanded_workflows_picture(bp_server, both_trained):
    """In one run after training (workflow 1), and from a saved identity by name (workflow 2)."""
    pictures = {person: picture(bp_server, *both_trained[person]) for person in both_trained}
    assert pictures["expanded"].std() > 1.0 and np.array_equal(pictures["expanded"], pictures["blueprint"])
    saved = {}
    for name in ("idea_saved_identity", "idea_blueprint_saved"):
        prompt = wf.substitute(wf.to_api(wf.load(name), bp_server.get("/object_info")), identity_name="expanded")
        saved[name] = picture(bp_server, prompt, run(bp_server, prompt))
    assert np.array_equal(saved["idea_saved_identity"], saved["idea_blueprint_saved"])


def around_two_people(bp: dict) -> dict:
    """A workflow that uses the blueprint as a user wires it: checkpoint, two Load Identity, Save Image."""
    node = json.loads(json.dumps(bp["nodes"][0]))
    node["id"] = 30
    sources = {"model": (1, 0, "MODEL"), "clip": (1, 1, "CLIP"), "vae": (1, 2, "VAE"),
               "identity A": (3, 0, "IDEA_IDENTITY"), "identity B": (7, 0, "IDEA_IDENTITY")}
    links = []
    for slot, entry in enumerate(node["inputs"]):
        origin, origin_slot, kind = sources[entry.get("label") or entry["name"]]
        links.append([len(links) + 1, origin, origin_slot, 30, slot, kind])
        entry["link"] = len(links)
    links.append([len(links) + 1, 30, 0, 17, 0, "IMAGE"])
    core = [{"id": 1, "type": "CheckpointLoaderSimple", "widgets_values": [wf.CHECKPOINT]},
            {"id": 3, "type": "IDEA_LoadIdentity", "widgets_values": ["person_a.safetensors"]},
            {"id": 7, "type": "IDEA_LoadIdentity", "widgets_values": ["person_b.safetensors"]},
            {"id": 17, "type": "SaveImage", "widgets_values": ["ID-EA/two_people"],
             "inputs": [{"name": "images", "type": "IMAGE", "link": len(links)}]}]
    return {"nodes": core + [node], "links": links, "definitions": bp["definitions"]}


def test_two_people_in_one_picture_makes_the_expanded_workflows_picture(bp_server, object_info):
    expanded = wf.substitute(wf.to_api(wf.load("idea_two_people"), object_info))
    condensed = wf.substitute(ui_to_api(around_two_people(blueprint("two_people")), object_info))
    assert {e["class_type"] for e in condensed.values()} >= {"IDEA_ApplyIDAdapterConditioning",
                                                              "ConditioningSetAreaPercentage"}
    pictures = [picture(bp_server, prompt, run(bp_server, prompt)) for prompt in (expanded, condensed)]
    assert pictures[0].std() > 1.0 and np.array_equal(*pictures)

"""The bundled workflows in the real frontend: served as templates, loaded with nothing missing or
complained about, converted to the prompt the server tests run, made by the generator, pictured.

Why a browser: only the frontend knows whether it can build every node of a file, and its schema
check, link fixer and missing-node dialog report through toasts and dialogs, not exceptions.
"""
from __future__ import annotations

import importlib.util
import json
import urllib.request

import numpy as np
import pytest
from PIL import Image
from support import paths, wiring
from support import workflow_fixtures as wf
from support.frontend import Frontend

PACK_MODULE = "ComfyUI-ID-EA"  # the folder name under custom_nodes/, which names the template group
NAMES = wf.names()
NOTE_TYPES = {"Note", "MarkdownNote"}


def tool(name: str):
    """A script from tools/ as a module (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"idea_tools_{name}", paths.REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ui_server(server):
    # the photos the Load Image nodes name: without them the frontend's previews answer 404 errors
    wf.install_pictures(server.base / "input")
    return server


@pytest.fixture(scope="module")
def browser(ui_server):
    with Frontend(ui_server.url, 1280, 720) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page(browser):
    return browser.open_page()


@pytest.fixture(scope="module")
def object_info(ui_server):
    return ui_server.get("/object_info")


def served(server, route: str):
    with urllib.request.urlopen(server.url + route, timeout=30) as resp:
        return json.loads(resp.read())


def test_there_are_the_five_workflows():
    assert NAMES == ["idea_controlnet_pose", "idea_saved_identity", "idea_sdxl", "idea_train_and_generate",
                     "idea_two_people"]


def test_the_templates_route_lists_and_serves_every_workflow(ui_server):
    listing = served(ui_server, "/workflow_templates")
    assert sorted(listing.get(PACK_MODULE, [])) == NAMES, listing
    for name in NAMES:
        assert served(ui_server, f"/api/workflow_templates/{PACK_MODULE}/{name}.json") == wf.load(name)
        # the template browser shows <name>.jpg as the card's picture
        with urllib.request.urlopen(f"{ui_server.url}/api/workflow_templates/{PACK_MODULE}/{name}.jpg",
                                    timeout=30) as resp:
            assert resp.headers.get_content_type() == "image/jpeg" and resp.read(3) == b"\xff\xd8\xff"


@pytest.mark.parametrize("name", NAMES)
def test_template_loads_without_missing_nodes_errors_or_toasts(ui_server, page, name):
    workflow = served(ui_server, f"/api/workflow_templates/{PACK_MODULE}/{name}.json")  # as the template browser
    report = page.load_workflow(workflow, name)
    assert report.problems == []
    assert report.node_count == len(workflow["nodes"])
    assert report.console_warnings == []


@pytest.mark.parametrize("name", NAMES)
def test_workflow_has_notes_saying_where_the_models_go(name):
    workflow = wf.load(name)
    text = "\n".join(n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in NOTE_TYPES)
    assert "models/" in text and "checkpoints/" in text
    types = {n["type"] for n in workflow["nodes"]}
    if "IDEA_FaceIDEmbed" in types:
        assert "insightface/models/antelopev2/" in text
    if "ControlNetLoader" in types:
        assert "controlnet/" in text
    identity_files = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] == "IDEA_LoadIdentity"]
    identity_files += ["my_person.safetensors"] if "IDEA_LearnIDToken" in types else []
    for file in identity_files:
        assert f"idea/{file}" in text and f"embeddings/{file}" in text
    assert workflow["groups"] and all(n["type"] in NOTE_TYPES or any(
        _inside(n, g["bounding"]) for g in workflow["groups"]) for n in workflow["nodes"])


def _inside(node: dict, box: list) -> bool:
    (x, y), (w, h) = node["pos"], node["size"]
    return box[0] <= x and box[1] <= y and x + w <= box[0] + box[2] and y + h <= box[1] + box[3]


def test_the_wiring_check_sees_crossings_and_links_behind_nodes():
    down, up = wiring.Link(1, 0, 2, (0, 0), (300, 200)), wiring.Link(3, 0, 4, (0, 200), (300, 0))
    below, branch = wiring.Link(3, 0, 4, (0, 300), (300, 400)), wiring.Link(1, 0, 5, (0, 0), (300, 300))
    assert wiring.crossings([down, up]) == [(down, up)]
    assert wiring.crossings([down, below, branch]) == []  # apart, or branches of one output
    assert wiring.behind_nodes([down], {9: {"box": [100, 50, 200, 150]}}) == [(down, 9)]


def test_two_people_flows_left_to_right_without_crossing_wires(page):
    """Branches of one output may fan out; otherwise no link crosses another, runs backwards or hides
    behind a node (the spline as the frontend draws it, support/wiring.py)."""
    page.load_workflow(wf.load("idea_two_people"), "idea_two_people")
    links, nodes = wiring.read(page)
    assert len(links) == 33  # 29 connections, three of them through 4 reroutes
    assert [link for link in links if link.end[0] <= link.start[0]] == []
    assert wiring.crossings(links) == []
    assert wiring.behind_nodes(links, nodes) == []


@pytest.mark.parametrize("name", NAMES)
def test_python_conversion_equals_the_frontends_prompt(page, object_info, name):
    workflow = wf.load(name)
    page.load_workflow(workflow, name)
    assert wf.to_api(workflow, object_info) == page.graph_to_prompt()


def _content(workflow: dict) -> dict:
    """What a workflow says, without where its nodes sit and how large they are (both depend on the
    fonts of the browser that measured them)."""
    nodes = [{k: v for k, v in n.items() if k not in ("pos", "size")} for n in workflow["nodes"]]
    groups = [{k: v for k, v in g.items() if k != "bounding"} for g in workflow["groups"]]
    return {**{k: v for k, v in workflow.items() if k not in ("nodes", "groups")}, "nodes": nodes, "groups": groups}


def test_the_files_are_what_the_generator_makes(page):
    make = tool("make_workflows")
    assert sorted(make.WORKFLOWS) == NAMES
    for name in NAMES:
        assert _content(make.build(page, name)) == _content(wf.load(name)), f"re-run tools/make_workflows.py ({name})"


def test_the_screenshot_script_pictures_a_workflow(ui_server, browser, tmp_path):
    shots = tool("screenshots")
    [path] = shots.screenshots(ui_server.url, [wf.WORKFLOWS_DIR / "idea_saved_identity.json"], tmp_path,
                               browser=browser)
    assert path == tmp_path / "idea_saved_identity.png"
    with Image.open(path) as image:
        assert image.size == shots.SIZE
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.std() > 10, "the screenshot is blank"


def test_every_workflow_has_its_readme_screenshot():
    shots = tool("screenshots")
    pictures = sorted(p.stem for p in shots.OUT.glob("*.png"))
    assert pictures == NAMES
    for name in NAMES:
        with Image.open(shots.OUT / f"{name}.png") as image:
            assert image.size == shots.SIZE

"""The bundled workflows in the real frontend: served as templates under their titles, loaded with
nothing missing or complained about, their models listed with download links, converted to the
prompt the server tests run, made by the generator, pictured.

Why a browser: only the frontend knows whether it can build every node of a file, and its schema
check, link fixer and missing-node and missing-model listings report through toasts, dialogs and
(from 1.49) an errors panel, not exceptions. And only the page shows whether a pack node carries a
picture or an error box that is not its own (under the Vue renderer, "Image failed to load").
"""
from __future__ import annotations

import json
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image
from support import workflow_fixtures as wf
from support.frontend import Frontend
from support.frontend_shown import pack_node_marks, template_cards
from support.server import ComfyServer
from support.workflow_api import server_read
from support.tools import tool

pytestmark = pytest.mark.frontend  # runs in the browser: .ci/run repeats these with each newer frontend

PACK_MODULE = "ComfyUI-ID-EA"  # the folder name under custom_nodes/, which names the template group
BLUEPRINTS_DIR = wf.WORKFLOWS_DIR.parent / "subgraphs"
NAMES = wf.names()
NOTE_TYPES = {"Note", "MarkdownNote"}
MAKE = tool("make_workflows")


@pytest.fixture(scope="module")
def ui_server(picture_server):
    return picture_server


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


def template_url(server, title: str, suffix: str) -> str:
    """What the template browser asks for (it fetches the file name as given, spaces and all)."""
    return f"{server.url}/api/workflow_templates/{PACK_MODULE}/{urllib.parse.quote(title + suffix)}"


def served(url: str):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


TRYING_ORDER = ["idea_blueprint_start", "idea_train_and_generate", "idea_saved_identity", "idea_blueprint_saved",
                "idea_controlnet_pose", "idea_sdxl", "idea_two_people", "idea_compare_routes",
                "idea_reproduce_release"]


def test_there_are_the_nine_workflows_and_only_their_files():
    assert NAMES == sorted(TRYING_ORDER)
    files = sorted(p.name for p in wf.WORKFLOWS_DIR.iterdir())
    assert files == sorted(f"{MAKE.WORKFLOWS[k].title}{ext}" for k in NAMES for ext in (".json", ".jpg"))


def test_template_titles_read_as_titles_in_the_order_to_try_them():
    """Frontend 1.32.9 titles a custom node's template card with its file name and describes it with
    the same name, dashes and underscores turned into spaces: so the names are the titles. Each
    blueprint version sits beside the workflow it condenses."""
    titles = [MAKE.WORKFLOWS[k].title for k in TRYING_ORDER]
    assert [t.split(" ", 1)[0] for t in titles] == ["1", "1", "2", "2", "3", "4", "5", "6", "7"]
    assert "Start here" in titles[0] and "blueprint" in titles[0] and "blueprint" in titles[3]
    assert all("-" not in t and "_" not in t and t.endswith(("(SD1.5)", "(SDXL)", "(SD2.1)")) for t in titles)
    assert sorted(titles) == titles  # the frontend's alphabetical order is the order to try them


def test_the_template_browser_shows_the_titles_with_their_pictures(page):
    """Opened as a user does (the Templates command), the pack's group shows a card per workflow,
    titled with its title and pictured with its thumbnail, loaded. (1.32.9 sorts the cards by title;
    1.49+ keeps the server's listing order, so the titles' numbers give the order to try them.)"""
    titles = [MAKE.WORKFLOWS[name].title for name in NAMES]
    page.close_overlays()
    try:
        seen = template_cards(page.page, PACK_MODULE, titles)
    finally:
        page.close_overlays()
    for title in titles:
        card = seen["cards"][title]
        assert card["shown"] and card["pictures"] and all(card["pictures"]), (title, seen["cards"])
    assert set(seen["fetched"]) >= {f"{title}.jpg" for title in titles}, seen["fetched"]


def test_the_templates_route_lists_and_serves_every_workflow(ui_server):
    listing = served(f"{ui_server.url}/workflow_templates")
    assert sorted(listing.get(PACK_MODULE, [])) == sorted(MAKE.WORKFLOWS[k].title for k in NAMES), listing
    for name in NAMES:
        title = MAKE.WORKFLOWS[name].title
        assert served(template_url(ui_server, title, ".json")) == wf.load(name)
        # the template browser shows <title>.jpg as the card's picture
        with urllib.request.urlopen(template_url(ui_server, title, ".jpg"), timeout=30) as resp:
            assert resp.headers.get_content_type() == "image/jpeg" and resp.read(3) == b"\xff\xd8\xff"


@pytest.mark.parametrize("name", NAMES)
def test_template_loads_without_missing_nodes_errors_or_toasts(ui_server, page, name):
    workflow = served(template_url(ui_server, MAKE.WORKFLOWS[name].title, ".json"))  # as the template browser
    report = page.load_workflow(workflow, name)
    assert report.problems == []
    assert report.node_count == len(workflow["nodes"])
    assert report.console_warnings == []


@pytest.mark.parametrize("name", NAMES)
def test_missing_models_are_listed_with_their_folder_and_download_link(page, name):
    """The test server holds none of the models the workflows name, so the frontend lists each one a
    loader names, with the folder it goes in and where to get it (the link its Copy URL button
    copies: 1.49+ turns a Hugging Face file link into the file's page, /blob/ for /resolve/)."""
    workflow = wf.load(name)
    named = {v for n in workflow["nodes"] for v in n.get("widgets_values") or [] if v in MAKE.MODEL_SOURCES}
    assert named, "every workflow names a checkpoint"
    report = page.load_workflow(workflow, name)
    expected = sorted((f"{MAKE.MODEL_SOURCES[m][0]} / {m}", MAKE.MODEL_SOURCES[m][1]) for m in named)
    listed = sorted((label, url.replace("/blob/", "/resolve/", 1)) for label, url in report.missing_models)
    assert listed == expected
    assert all(url.startswith("https://huggingface.co/") and url.endswith("/" + label.split(" / ")[1])
               for label, url in report.missing_models)


@pytest.mark.parametrize("name", NAMES)
def test_workflow_has_notes_saying_where_the_models_go_and_come_from(name):
    workflow = wf.load(name)
    text = "\n".join(n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in NOTE_TYPES)
    assert "ComfyUI/models/checkpoints/" in text and "models/models/" not in text
    types = {n["type"] for graph in [workflow, *(workflow.get("definitions") or {}).get("subgraphs", [])]
             for n in graph["nodes"]}  # inside its blueprint nodes too
    if "IDEA_FaceIDEmbed" in types:
        assert "ComfyUI/models/insightface/models/antelopev2/" in text
        assert MAKE.FACE_PACKS["antelopev2"] in text and MAKE.FACE_PACKS["buffalo_l"] in text
        assert "Face Similarity follows it" in text  # buffalo_l: one place to change
        assert "More photos" in text  # the graph has one Load Image: how to give more
    if "ControlNetLoader" in types:
        assert "ComfyUI/models/controlnet/" in text and MAKE.MODEL_SOURCES[MAKE.CONTROLNET][1] in text
    identity_files = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] == "IDEA_LoadIdentity"]
    identity_files += [f"{n['widgets_values'][0]}.safetensors"  # Learn ID Token's name, its first widget
                       for graph in [workflow, *(workflow.get("definitions") or {}).get("subgraphs", [])]
                       for n in graph["nodes"] if n["type"] == "IDEA_LearnIDToken"]
    for file in identity_files:  # both files of every identity it trains or loads
        assert f"ComfyUI/models/idea/{file}" in text and f"ComfyUI/models/embeddings/{file}" in text
    checkpoints = {v for n in workflow["nodes"] if n["type"] == "CheckpointLoaderSimple" for v in n["widgets_values"]}
    assert all(MAKE.MODEL_SOURCES[c][1] in text for c in checkpoints)


def test_sdxl_trains_at_the_batch_the_performance_targets_name(object_info):
    """docs/performance.md, Targets: SDXL at 1024 px, batch 4, within 24 GiB."""
    prompt = wf.to_api(wf.load("idea_sdxl"), object_info)
    [learn] = [e["inputs"] for e in prompt.values() if e["class_type"] == "IDEA_LearnIDToken"]
    assert learn["batch_size"] == 4 and learn["resolution"] == 1024


@pytest.mark.parametrize("name", NAMES)
def test_python_conversion_equals_the_frontends_prompt(page, object_info, name):
    workflow = wf.load(name)
    page.load_workflow(workflow, name)
    assert wf.to_api(workflow, object_info) == server_read(page.graph_to_prompt(), object_info)


def _content(workflow: dict) -> dict:
    """What a workflow says, without where its nodes sit and how large they are (both depend on the
    fonts of the browser that measured them), in its subgraphs too."""
    nodes = [{k: v for k, v in n.items() if k not in ("pos", "size")} for n in workflow["nodes"]]
    groups = [{k: v for k, v in g.items() if k != "bounding"} for g in workflow.get("groups", [])]
    out = {**{k: v for k, v in workflow.items() if k not in ("nodes", "groups")}, "nodes": nodes, "groups": groups}
    if "definitions" in workflow:
        out["definitions"] = {**workflow["definitions"], "subgraphs": [
            {**_content({k: v for k, v in d.items() if k not in ("inputNode", "outputNode", "inputs", "outputs")}),
             "io": [[{k: v for k, v in slot.items() if k != "pos"} for slot in d[side]]
                    for side in ("inputs", "outputs")]}
            for d in workflow["definitions"].get("subgraphs", [])]}
    return out


def test_the_files_are_what_the_generator_makes(page):
    """Workflows and blueprints, in the frontend that wrote them: each frontend saves a workflow in its
    own format (1.49+ adds `widgets_values_named` and output slots to output nodes, drops group font
    sizes), so in another one this would compare formats, not content. The files are written with the
    default host's frontend, the oldest tested, whose format every newer one reads (the other tests
    load them)."""
    written_by = {wf.load(name)["extra"]["frontendVersion"] for name in NAMES}
    running = page.page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
    if written_by != {running}:
        pytest.skip(f"the files were written by frontend {sorted(written_by)}, this page runs {running}: "
                    "each frontend saves its own format")
    assert sorted(MAKE.WORKFLOWS) == NAMES
    built = {}
    for name in NAMES:
        built[name] = MAKE.build(page, name)
        assert _content(built[name]) == _content(wf.load(name)), f"re-run python -m tools.make_workflows ({name})"
    blueprints = MAKE.blueprint_files(page, built)
    assert sorted(blueprints) == sorted(p.name for p in BLUEPRINTS_DIR.glob("*.json"))
    for file_name, blueprint in blueprints.items():
        shipped = json.loads((BLUEPRINTS_DIR / file_name).read_text(encoding="utf-8"))
        assert _content(blueprint) == _content(shipped), f"re-run python -m tools.make_workflows ({file_name})"


def test_the_screenshot_script_pictures_a_workflow_at_default_settings(ui_server, browser, tmp_path):
    shots = tool("screenshots")
    assert set(shots.SETTINGS) == {"Comfy.Graph.CanvasInfo"}  # nothing that changes how nodes are drawn
    [path] = shots.screenshots(ui_server.url, ["idea_saved_identity"], tmp_path, browser=browser)
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


# ---- what shows on the pack's nodes ----

@pytest.fixture(scope="module")
def complete_page(browser, tmp_path_factory):
    """A page on a server that has every file the bundled workflows name (stand-ins under their
    names), as a user who has put every model and photo in place: nothing is missing."""
    server = ComfyServer(tmp_path_factory.mktemp("complete-server"))
    files = [wf.load(name) for name in NAMES] + [json.loads(p.read_text(encoding="utf-8"))
                                                 for p in sorted(BLUEPRINTS_DIR.glob("*.json"))]
    tool("vue_sizes").install_named_files(server.base, files)
    server.start()
    try:
        page = browser.open_page(server_url=server.url)
        yield page
        page.close()
    finally:
        server.stop()


@pytest.mark.parametrize("name", NAMES + sorted(p.stem for p in BLUEPRINTS_DIR.glob("*.json")))
def test_no_pack_node_shows_a_picture_or_an_error_box(complete_page, name):
    """Every bundled workflow and blueprint file, loaded with every file in place: no node of this pack
    (nor one inside a blueprint node) shows a picture, an error outline or an error box."""
    path = BLUEPRINTS_DIR / f"{name}.json"
    workflow = json.loads(path.read_text(encoding="utf-8")) if path.exists() else wf.load(name)
    report = complete_page.load_workflow(workflow, name)
    assert report.problems == []
    complete_page.close_overlays()
    complete_page.page.wait_for_timeout(500)
    assert pack_node_marks(complete_page.page) == {}
    inside = pack_node_marks(complete_page.page, inside_blueprints=True)
    assert len(inside) == len(workflow.get("definitions", {}).get("subgraphs", []))
    assert all(marks == {} for marks in inside.values()), inside


# A picture the frontend holds under a pack node's id, however it came there (it keys the previews of
# Load Image nodes by node id and keeps an input preview when that id's node runs without pictures): a
# Load Image made with Load Identity's id and a file that is not there, as the page shows it.
STALE_PREVIEW = """async (id) => {
  const load = LiteGraph.createNode('LoadImage');
  load.id = id;
  load.widgets.find(w => w.name === 'image').value = 'not_here.png';
  await new Promise(r => setTimeout(r, 1500));
}"""


def test_a_picture_held_under_a_pack_nodes_id_does_not_show_on_it(complete_page):
    workflow = wf.load("idea_saved_identity")
    complete_page.load_workflow(workflow, "stale preview")
    complete_page.close_overlays()
    [load_identity] = [n["id"] for n in workflow["nodes"] if n["type"] == "IDEA_LoadIdentity"]
    complete_page.page.evaluate(STALE_PREVIEW, load_identity)
    assert pack_node_marks(complete_page.page) == {}

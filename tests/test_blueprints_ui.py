"""The subgraph blueprints in the real frontend, as a user finds and uses them: listed by the node
search under the pack (1.32.9 names the pack beside each blueprint, 1.49+ its category, "Subgraph
Blueprints / ID-EA"), dropped onto the canvas as one node with its promoted widgets, and queued as
its ID-EA nodes. The server of this module also holds another pack whose subgraphs/ has a broken and a
foreign file, which must not keep the pack or its blueprints from loading.
"""
from __future__ import annotations

import json
import re

import pytest
from support import paths
from support.frontend import Frontend
from support.frontend_shown import search_nodes
from support.server import ComfyServer
from support.tools import tool
from support.workflow_api import widget_layout

pytestmark = pytest.mark.frontend  # runs in the browser: .ci/run repeats these with each newer frontend

BLUEPRINTS = tool("make_workflows").BLUEPRINTS
DIR = paths.REPO / "subgraphs"
NAMES = {key: spec.name for key, spec in BLUEPRINTS.items()}

# The one node on the canvas: its title, whether it is a subgraph node, its widgets, and the classes
# of the prompt the frontend makes of the graph.
DROPPED = """async () => {
  const nodes = app.graph.nodes;
  return {count: nodes.length, title: nodes[0]?.title, subgraph: !!nodes[0]?.subgraph,
          widgets: (nodes[0]?.widgets || []).map(w => [w.name, w.value]),
          classes: Object.values((await app.graphToPrompt()).output).map(e => e.class_type)};
}"""


@pytest.fixture(scope="module")
def bp_server(tmp_path_factory):
    server = ComfyServer(tmp_path_factory.mktemp("blueprint-server"))
    other = server.base / "custom_nodes" / "other_pack" / "subgraphs"
    other.mkdir(parents=True)
    (other / "broken.json").write_text('{"nodes": [{"id": 1, "type": ', encoding="utf-8")  # cut off
    (other / "foreign.json").write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}), encoding="utf-8")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page_info(bp_server):
    return bp_server.get("/object_info")


def promoted_values(spec, object_info: dict) -> list:
    """The saved values of the inner widgets a blueprint promotes."""
    definition = json.loads((DIR / spec.file_name).read_text(encoding="utf-8"))["definitions"]["subgraphs"][0]
    inner = {str(n["id"]): n for n in definition["nodes"]}
    values = []
    for node_id, widget in spec.promoted:
        node = inner[node_id]
        values.append(node["widgets_values"][widget_layout(object_info[node["type"]]).index(widget)])
    return values


@pytest.fixture(scope="module")
def page(bp_server):
    with Frontend(bp_server.url, 1280, 720) as browser:
        yield browser.open_page()


def test_the_server_lists_the_blueprints_beside_the_other_packs_files(bp_server):
    listed = {entry["name"]: entry["info"]["node_pack"] for entry in bp_server.get("/global_subgraphs").values()}
    assert {listed[name] for name in NAMES.values()} == {"custom_nodes.ComfyUI-ID-EA"}
    assert {"broken", "foreign"} <= set(listed)


def test_the_pack_loads_beside_a_broken_and_a_foreign_blueprint(page):
    assert page.startup_page_errors == []
    assert {"IDEA_FaceIDEmbed", "IDEA_LearnIDToken", "IDEA_ApplyIDAdapter"} <= page.registered_node_types()


@pytest.mark.parametrize("key", list(BLUEPRINTS))
def test_the_node_search_lists_each_blueprint_under_the_pack(page, key):
    page.close_overlays()
    listed = search_nodes(page.page, NAMES[key])
    mine = [text for text in listed if text.startswith(NAMES[key])]
    assert mine and "ID-EA" in mine[0][len(NAMES[key]):], listed  # the pack's name or the category


@pytest.mark.parametrize("key", list(BLUEPRINTS))
def test_a_blueprint_drops_onto_the_canvas_as_one_node_and_queues_as_its_id_ea_nodes(page, page_info, key):
    page.close_overlays()
    page.page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.NewBlankWorkflow'); }")
    page.page.wait_for_function("() => app.graph.nodes.length === 0")
    search_nodes(page.page, NAMES[key], choose=True)
    dropped = page.page.evaluate(DROPPED)
    spec = BLUEPRINTS[key]
    assert (dropped["count"], dropped["title"], dropped["subgraph"]) == (1, NAMES[key], True)
    # its widgets are the promoted ones, with the inner nodes' values (1.32.9 names them "<inner node id>:
    # <widget>", 1.49+ like subgraph inputs, a repeated name with "_1", "_2")
    names = [re.sub(r"^\d+: |_\d+$", "", name) for name, _ in dropped["widgets"]]
    assert names == [widget for _, widget in spec.promoted]
    assert [value for _, value in dropped["widgets"]] == promoted_values(spec, page_info)
    inner = [n["type"] for n in json.loads((DIR / spec.file_name).read_text(encoding="utf-8"))
             ["definitions"]["subgraphs"][0]["nodes"]]
    assert sorted(dropped["classes"]) == sorted(inner) and any(t.startswith("IDEA_") for t in inner)

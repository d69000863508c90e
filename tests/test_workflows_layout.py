"""The bundled workflows and blueprints as a person reads them in the real frontend, at its default
settings, under the renderer the run chose (IDEA_VUE_NODES: the classic canvas or the Vue nodes).

Checked on the canvas the frontend draws (support/workflow_layout.py): data flows left to right, no
wire runs behind a node or a note, no two wires cross unless the generator names that crossing, no
node, note or group overlaps another, no two things share a title; the frontend's own Fit View at
1920x1080 still draws the nodes' text. Checked on what the page shows (the Vue nodes' own elements,
taller than the canvas's nodes): no node, note or group overlaps another, in every workflow, every
blueprint file and inside every blueprint node, as a new user first opens them (the models missing,
so each loader shows its notice); and each opens fitted to the window, no node under the menu or the
side bar, the Read-me's heading readable at 1920x1080.
"""
from __future__ import annotations

import json

import pytest
from support import paths
from support import workflow_fixtures as wf
from support.frontend import VUE_NODES, Frontend, prepare_user_settings
from support.tools import tool
from support.workflow_layout import GEOMETRY_JS, INSIDE_BLUEPRINTS_JS, ON_SCREEN_JS, SHOWN_GEOMETRY_JS, analyse

pytestmark = pytest.mark.frontend  # runs in the browser: .ci/run repeats these with each newer frontend

NAMES = wf.names()
MAKE = tool("make_workflows")
BLUEPRINT_FILES = {p.stem: p for p in sorted((paths.REPO / "subgraphs").glob("*.json"))}
EVERY_FILE = NAMES + list(BLUEPRINT_FILES)


def load_file(name: str) -> dict:
    """A bundled workflow by key, or a blueprint file by name."""
    if name in BLUEPRINT_FILES:
        return json.loads(BLUEPRINT_FILES[name].read_text(encoding="utf-8"))
    return wf.load(name)

# The frontend's Fit View (the "." key), as it animates it; returns the zoom and whether the canvas
# then draws nodes as bare boxes (LiteGraph's low-quality mode below MinFontSizeForLOD).
FIT_VIEW = """async () => {
  await app.extensionManager.command.execute('Comfy.Canvas.FitView');
  await new Promise(r => setTimeout(r, 600));
  return {scale: app.canvas.ds.scale, lowQuality: app.canvas.low_quality};
}"""

# The Read-me note's heading on screen, and whether the page shows it there (not hidden, not covered).
README_ON_SCREEN = """() => {
  const note = app.graph.nodes.find(n => n.type === 'MarkdownNote' && n.title.startsWith('Read me'));
  const heading = Array.from(document.querySelectorAll('h1, h2')).find(h => h.innerText.trim() &&
    note.widgets[0].value.includes(h.innerText.trim()));
  let headingAt = null;
  if (heading) {
    const b = heading.getBoundingClientRect();
    headingAt = document.elementFromPoint(b.left + Math.min(30, b.width / 2), b.top + b.height / 2);
  }
  return {heading: heading ? heading.innerText : null,
          headingVisible: !!(heading && headingAt && heading.contains(headingAt))};
}"""


@pytest.fixture(scope="module")
def browser(picture_server):
    prepare_user_settings(picture_server.url)  # the first-run switches only: every drawing setting default
    with Frontend(picture_server.url, 1920, 1080) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page(browser):
    return browser.open_page(prepare=False)


def crossing_pairs(report, geometry) -> set:
    """The report's crossings as {((origin, target), (origin, target))} of node ids."""
    title = {f"{n['title']} (#{n['id']})": str(n["id"]) for n in geometry["nodes"]}
    pairs = set()
    for text in report.crossings:
        first, second = text.split(" x ")
        wires = [tuple(title[end] for end in wire.split(" -> ")) for wire in (first, second)]
        pairs.add(tuple(sorted(wires)))
    return pairs


def _node(node_id: int, x: float, y: float, title: str | None = None, titled: bool = True) -> dict:
    return {"id": node_id, "type": "KSampler", "title": title or f"node {node_id}", "rect": [x, y, 100, 80],
            "titled": titled}


def _wire(wire_id: int, origin: int, target: int, start, end) -> dict:
    return {"id": wire_id, "origin": origin, "origin_slot": 0, "target": target, "target_slot": 0,
            "start": list(start), "end": list(end)}


def test_the_layout_check_sees_crossings_backward_wires_and_wires_behind_nodes():
    """The check itself, on drawn geometry: two wires that share no node and cross are found, wires
    that share a node (a fan-out, or two inputs of one node) are not; a wire that runs backwards or
    under a node that is not its end is found; a Reroute's hidden title counts for nothing."""
    nodes = [_node(1, -100, -40), _node(2, 300, 160), _node(3, -100, 170), _node(4, 300, -40),
             _node(9, 140, 500, title="node 1", titled=False)]
    wires = [_wire(10, 1, 2, (0, 0), (300, 200)), _wire(11, 3, 4, (0, 210), (300, 0)),  # an X
             _wire(12, 1, 4, (0, 0), (300, 10))]  # crosses wire 11 too, but shares node 4 with it
    report = analyse({"nodes": nodes, "links": wires, "groups": []})
    assert report.crossings == ["node 1 (#1) -> node 2 (#2) x node 3 (#3) -> node 4 (#4)"]
    assert report.backward == [] and report.duplicate_titles == []
    behind = analyse({"nodes": nodes + [_node(6, 120, 60)], "links": wires[:1], "groups": []})
    assert behind.hidden == ["node 1 (#1) -> node 2 (#2) behind node 6 (#6)"]
    backward = analyse({"nodes": nodes, "links": [_wire(13, 2, 3, (400, 200), (-100, 200))], "groups": []})
    assert backward.backward == ["node 2 (#2) -> node 3 (#3)"]


@pytest.mark.parametrize("name", NAMES)
def test_wires_run_left_to_right_in_the_open_and_cross_only_where_the_generator_says(page, name):
    page.load_workflow(wf.load(name), name)
    geometry = page.page.evaluate(GEOMETRY_JS)
    report = analyse(geometry)
    assert report.backward == [], "wires that run right to left"
    assert report.hidden == [], "wires hidden behind a node or note"
    assert report.overlapping == [] and report.outside_groups == []
    assert report.duplicate_titles == []
    accepted = {tuple(sorted(tuple(w) for w in pair)) for pair in MAKE.WORKFLOWS[name].layout()["crossings"]}
    assert crossing_pairs(report, geometry) == accepted, report.crossings


@pytest.mark.parametrize("name", NAMES)
def test_fit_view_at_default_settings_draws_the_nodes_text(page, name):
    page.load_workflow(wf.load(name), name)
    page.close_overlays()
    assert page.page.evaluate("() => app.extensionManager.setting.get('LiteGraph.Canvas.MinFontSizeForLOD')") == 8
    view = page.page.evaluate(FIT_VIEW)
    assert not view["lowQuality"], f"Fit View shows {name} at {view['scale']:.2f}: bare boxes"


@pytest.mark.parametrize("name", EVERY_FILE)
def test_no_node_note_or_group_overlaps_another_as_the_page_draws_them(page, name):
    page.load_workflow(load_file(name), name)
    page.close_overlays()
    drawn = page.page.evaluate(SHOWN_GEOMETRY_JS)
    if VUE_NODES:
        assert all(n["dom"] for n in drawn["nodes"]), "the Vue renderer drew no element for some node"
    report = analyse(drawn)
    assert report.overlapping == [] and report.outside_groups == []
    for inside in page.page.evaluate(INSIDE_BLUEPRINTS_JS):
        assert analyse(inside).overlapping == [], f"inside {inside['blueprint']}"


def _inside(rect, area) -> bool:
    x, y, w, h = rect
    ax, ay, aw, ah = area
    return ax <= x and ay <= y and x + w <= ax + aw and y + h <= ay + ah


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)])
def test_every_file_opens_fitted_to_the_window(browser, size):
    """The files save no view, so every tested frontend fits what it loads to the window: every node and
    group on the canvas, every node's title bar seen (not under the menu, the side bar or a dialog),
    and the graph as large as fits."""
    page = browser.open_page(prepare=False, size=size)
    try:
        for name in EVERY_FILE:
            page.load_workflow(load_file(name), name)
            page.close_overlays()
            page.page.wait_for_timeout(300)
            seen = page.page.evaluate(ON_SCREEN_JS)
            shown = seen["nodes"] + seen["groups"]
            assert [n["title"] for n in shown if not _inside(n["rect"], seen["canvas"])] == [], name
            assert [n["title"] for n in seen["nodes"] if not n["titleSeen"]] == [], name
            if name in NAMES and size == (1920, 1080):
                readme = page.page.evaluate(README_ON_SCREEN)
                assert readme["heading"] and readme["headingVisible"], (name, readme)
            # fitted, not merely inside: as large as fits (the frontend's fit fills 3/4 of the window
            # along the graph's longer side, measured with or without the group titles above the nodes)
            rects = [n["rect"] for n in seen["nodes"]]
            width = max(r[0] + r[2] for r in rects) - min(r[0] for r in rects)
            height = max(r[1] + r[3] for r in rects) - min(r[1] for r in rects)
            assert max(width / seen["canvas"][2], height / seen["canvas"][3]) > 0.66, (name, seen["scale"])
    finally:
        page.close()

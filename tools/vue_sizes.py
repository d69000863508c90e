"""Measures how large the Vue node renderer ("Nodes 2.0") draws each kind of node of the bundled
workflows, and writes tools/vue_node_sizes.json, which tools/make_workflows.py reserves.

Why: a workflow file holds one position and size per node. The classic canvas draws a node at its
saved size; the Vue renderer draws it as a DOM element at least as large as its content (taller widget
rows, a 225 px minimum width, an "Issues" footer on a node whose file is missing, taller Markdown),
and no larger than that when the saved size is larger. So a layout whose saved sizes are at least what
Vue needs is drawn with the same boxes by both renderers, and one layout serves both. The generator
runs in the oldest tested frontend (1.32.9), which cannot measure the newest one's Vue nodes: this
script measures them in the frontend it is run with (1.58.1: `tools/provision.sh` with
IDEA_COMFYUI_SOURCE=.../ComfyUI-0.33.0.tar.gz IDEA_FRONTEND=1.58.1, then source its env.sh).

Each workflow file is loaded with the Vue renderer on and every node's saved size cut to nothing, so
each node shows its content's own size (at the narrowest width Vue gives a node, where it is
tallest; a note keeps its width), on a server that has every file the workflows name (stand-in
files, and pictures under the Load Image nodes' names, so each shows its preview). The largest is
kept per node type and title, per node type, per blueprint node and per note (see `size_keys`):
`{key: [width, height]}`, height without the title bar, as LiteGraph counts a node's size. A node
whose file is missing shows an "Issues" footer below that (24 px in 1.58.1); the layout's gaps below
each node (tools/workflow_parts.GAP, and the bottom padding of a group) are larger than that, so it
never reaches the next node or the frame.

    python -m tools.vue_sizes [--out tools/vue_node_sizes.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import pathlib
import tempfile

from .harness import support
from .workflow_parts import MODEL_SOURCES

REPO = pathlib.Path(__file__).resolve().parents[1]

log = logging.getLogger("vue_sizes")

OUT = REPO / "tools" / "vue_node_sizes.json"
NOTE_TYPES = ("Note", "MarkdownNote")
# The Vue renderer draws no node narrower than this (frontend 1.58.1; a node saved narrower, such as
# VAE Decode at 150, is drawn 225 wide). A node is measured at this width, the narrowest it can have
# in either renderer; given no width at all, Vue would lay its widgets out at their natural width
# instead (FaceID Embed: 261), wider than it needs.
VUE_MIN_WIDTH = 225
# Sub-pixel layout moves a measured size by a pixel from run to run: a size within this of the one
# recorded keeps the recorded one, so remeasuring changes the file (and the layouts) only when a node
# really changed.
JITTER = 2

# The size each node takes on screen, in canvas units, read off its [data-node-id] element.
_MEASURE = """async () => {
  await new Promise(r => setTimeout(r, 800));  // the Vue nodes lay themselves out
  const ds = app.canvas.ds, title = LiteGraph.NODE_TITLE_HEIGHT;
  return app.graph.nodes.map(n => {
    const el = document.querySelector(`[data-node-id="${n.id}"]`);
    if (!el) return null;
    const box = el.getBoundingClientRect();
    return {id: n.id, type: n.type, title: n.title, subgraph: !!n.subgraph,
            size: [Math.ceil(box.width / ds.scale), Math.ceil(box.height / ds.scale - title)]};
  }).filter(Boolean);
}"""


def size_keys(node: dict) -> list[str]:
    """What a measured size is reserved for (tools/arrange_workflow.js reads the same keys): a note and
    a blueprint node by their title; any other node by type and title as the page shows it
    ("KSampler|KSampler": the Vue renderer widens a node to its title) and, for nodes of that type
    under other titles, by type alone (the largest of them); Reroutes by none."""
    if node["type"] == "Reroute":
        return []
    if node["type"] in NOTE_TYPES or node["subgraph"]:
        return [node["title"]]
    return [f"{node['type']}|{node['title']}", node["type"]]


def shrunk(workflow: dict) -> dict:
    """The workflow with every node's saved size cut to VUE_MIN_WIDTH by 1 px (a note keeps its width,
    which is the layout's choice: its text wraps to it)."""
    out = json.loads(json.dumps(workflow))
    for node in out["nodes"]:
        node["size"] = [node["size"][0] if node["type"] in NOTE_TYPES else VUE_MIN_WIDTH, 1]
    return out


def measure(page, workflow: dict, name: str) -> dict[str, list[int]]:
    """{size key: [width, height]} of one workflow's nodes as the Vue renderer draws them."""
    page.load_workflow(shrunk(workflow), name)
    page.close_overlays()
    nodes = page.page.evaluate(_MEASURE)
    if not nodes:
        raise RuntimeError("no [data-node-id] element: this frontend did not draw Vue nodes")
    out: dict[str, list[int]] = {}
    for node in nodes:
        for key in size_keys(node):
            out[key] = [max(a, b) for a, b in zip(out.get(key, [0, 0]), node["size"])]
    return out


def install_named_files(base: pathlib.Path, workflows: list[dict]) -> None:
    """Stand-ins for every file the workflows name (their names are all the frontend lists), and
    pictures under the Load Image nodes' names."""
    save_png, noise_image = support("images").save_png, support("synthetic_faces").noise_image
    support("workflow_fixtures").install_pictures(base / "input")
    graphs = [g for w in workflows for g in [w, *(w.get("definitions") or {}).get("subgraphs", [])]]
    for node in (n for g in graphs for n in g["nodes"]):
        for value in (v for v in node.get("widgets_values") or [] if isinstance(v, str)):
            if value in MODEL_SOURCES:
                target = base / "models" / MODEL_SOURCES[value][0] / value
            elif node["type"] == "IDEA_LoadIdentity":
                target = base / "models" / "idea" / value
            elif node["type"] == "LoadImage" and pathlib.Path(value).suffix:
                target = base / "input" / value
                if not target.exists():
                    save_png(noise_image(256, 256, seed=3), target)
                continue
            else:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()


def measure_all(server_url: str, files: list[pathlib.Path]) -> dict[str, list[int]]:
    frontend = support("frontend")
    frontend.prepare_user_settings(server_url, {**frontend.USER_SETTINGS, "Comfy.VueNodes.Enabled": True})
    found: dict[str, list[int]] = {}
    with frontend.Frontend(server_url, 1920, 1080) as browser:
        page = browser.open_page(prepare=False)
        for path in files:
            for key, size in measure(page, json.loads(path.read_text(encoding="utf-8")), path.stem).items():
                found[key] = [max(a, b) for a, b in zip(found.get(key, [0, 0]), size)]
    return found


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    files = sorted((REPO / "workflows").glob("*.json"))
    with tempfile.TemporaryDirectory(prefix="idea-vue-sizes-") as base:
        server = support("server").ComfyServer(pathlib.Path(base))
        install_named_files(server.base, [json.loads(f.read_text(encoding="utf-8")) for f in files])
        server.start()
        try:
            sizes = measure_all(server.url, files)
        finally:
            server.stop()
    recorded = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    sizes = {key: recorded[key] if key in recorded and all(abs(a - b) <= JITTER for a, b in zip(size, recorded[key]))
             else size for key, size in sizes.items()}
    args.out.write_text(json.dumps(dict(sorted(sizes.items())), indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s (%d kinds of node)", args.out, len(sizes))


if __name__ == "__main__":
    main()

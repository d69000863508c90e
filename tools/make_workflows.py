"""Writes workflows/*.json, the example workflows ComfyUI lists as this pack's templates, and
subgraphs/*.json, the subgraph blueprints cut out of them (tools/blueprints.py).

Why generated: each workflow is written as an API prompt (short, reviewable, the same format the
server tests run; tools/person_workflows.py, two_people_workflow.py, route_workflows.py and
blueprint_workflows.py, each with its notes and layout) and turned into the UI format by the real
frontend (`app.loadApiJson`, then `graphToPrompt().workflow`, what the UI's Export writes), so the
files are exactly what frontend 1.32.9 saves. The page then lays the nodes out
(tools/arrange_workflow.js) and adds Markdown notes.

What a reader of the canvas needs, and what the shared helpers (tools/workflow_parts.py) give every
workflow:
- a file name that is the template card's title (frontend 1.32.9 shows a custom node's template by
  its file name, and the same name, dashes and underscores made spaces, as its description), numbered
  in the order to try them;
- every model a loader names carries the frontend's `models` property (name, download URL, folder),
  so a missing one is listed in the frontend's missing-models dialog with its link;
- data flowing left to right with no wire behind a node or note, titles used once, and no saved
  view, so every frontend opens the workflow fitted to its window (tests/test_workflows_layout.py
  checks these); where a column layout alone would make wires cross, Reroute nodes carry a wire
  around the rest;
- every node laid out at least as large as the Vue node renderer draws it (tools/vue_sizes.py
  measures that into tools/vue_node_sizes.json; rerun it on a host with the newest frontend after
  adding a node type, a title or a note), so the same boxes serve the classic canvas and the Vue
  nodes, and nothing overlaps in either.

    python -m tools.make_workflows [--url http://127.0.0.1:8188] [--out workflows] [--blueprints subgraphs]

Run from the repository root. Without --url a throw-away server with this pack is started. Needs
the provisioned host and /usr/bin/chromium (see tests/support/frontend.py).
"""
from __future__ import annotations

import argparse
import json
import pathlib
from dataclasses import dataclass
from typing import Callable

from . import blueprint_workflows, route_workflows, two_people_workflow
from .blueprints import BLUEPRINTS, TWO_PEOPLE_OFFSET, as_blueprint, convert, fixed_ids, saved_from_start
from .harness import support
from .person_workflows import saved_identity, saved_layout, train_and_generate, train_layout

# (CONTROLNET, FACE_PACKS and MODEL_SOURCES are imported for the tests, which read the workflows' facts
# from this module)
from .workflow_parts import CONTROLNET, FACE_PACKS, MODEL_SOURCES, NAME, attach_model_sources  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Workflow:
    """One bundled workflow: `key` names it in tests and screenshots, `title` is its file name and
    so the template card's title (no '-' or '_': the card's description turns them into spaces).
    check_only: node ids of the models only a likeness check reads, which the picture is made
    without (every other model is needed by every output, so a missing one refuses the whole prompt).
    cut: the blueprints (tools/blueprints.py) cut out of the prompt's nodes, in order; their node ids
    are handed to `layout` (called without, it names them by key) and to `then`, which changes the
    graph after the cut."""

    key: str
    title: str
    prompt: Callable[[], dict]
    layout: Callable[..., dict]
    check_only: tuple[str, ...] = ()
    cut: tuple[str, ...] = ()
    then: Callable | None = None

    @property
    def file_name(self) -> str:
        return f"{self.title}.json"


def _saved_from_start(page, ids: dict) -> None:
    saved_from_start(page, int(ids["learn"]), int(ids["generate"]), 2, f"{NAME}.safetensors")


START_PROMPT = lambda: blueprint_workflows.start_prompt(train_and_generate("sd1"))  # noqa: E731
WORKFLOWS = {w.key: w for w in (
    Workflow("idea_train_and_generate", "1 Start here. Learn a person from photos, then generate (SD1.5)",
             lambda: train_and_generate("sd1"), lambda: train_layout("sd1")),
    Workflow("idea_blueprint_start", "1 Start here with blueprints. Learn a person from photos, then generate (SD1.5)",
             START_PROMPT, blueprint_workflows.start_layout, cut=("learn", "generate")),
    Workflow("idea_saved_identity", "2 Generate with a learned person (SD1.5)",
             lambda: saved_identity(False), lambda: saved_layout(False)),
    Workflow("idea_blueprint_saved", "2 Generate with a learned person, one blueprint node (SD1.5)",
             START_PROMPT, blueprint_workflows.saved_layout, cut=("learn", "generate"), then=_saved_from_start),
    Workflow("idea_controlnet_pose", "3 A learned person in a ControlNet pose (SD1.5)",
             lambda: saved_identity(True), lambda: saved_layout(True)),
    Workflow("idea_sdxl", "4 Learn a person from photos, then generate (SDXL)",
             lambda: train_and_generate("sdxl"), lambda: train_layout("sdxl")),
    Workflow("idea_two_people", "5 Two people in one picture (SD1.5)",
             two_people_workflow.two_people, two_people_workflow.two_people_layout,
             check_only=two_people_workflow.CHECK_MODELS),
    Workflow("idea_compare_routes", "6 Compare route A and route B with a learned person (SD1.5)",
             route_workflows.compare_routes, route_workflows.compare_layout, check_only=("3", "4"),
             cut=("compare",)),
    Workflow("idea_reproduce_release", "7 Reproduce the authors' released run (SD2.1)",
             route_workflows.reproduce_release, route_workflows.reproduce_layout, cut=("compare",)),
)}
# Where each blueprint is cut from: a bundled workflow, or (two people) workflow 5 without its
# likeness check, which is no bundled workflow of its own, its node ids raised clear of the other
# blueprints' (frontend 1.58.1 silently refuses to add a blueprint whose promoted inner node ids
# another blueprint added in this session also promotes).
TWO_PEOPLE_SOURCE = Workflow("two_people_blueprint", "Two people in one picture (blueprint source)",
                             lambda: two_people_workflow.picture_only(two_people_workflow.two_people(),
                                                                      TWO_PEOPLE_OFFSET),
                             lambda ids=None: None, cut=("two_people",))
BLUEPRINT_SOURCES = {"learn": WORKFLOWS["idea_blueprint_start"], "generate": WORKFLOWS["idea_blueprint_start"],
                     "two_people": TWO_PEOPLE_SOURCE, "compare": WORKFLOWS["idea_compare_routes"]}

_ARRANGE = (pathlib.Path(__file__).with_name("arrange_workflow.js")).read_text(encoding="utf-8")
_EXPORT = "async () => JSON.parse(JSON.stringify((await app.graphToPrompt()).workflow))"


def build(page, key: str, spec: Workflow | None = None) -> dict:
    """The UI workflow `key`: converted by the frontend, its blueprints cut out, arranged, its models'
    sources attached."""
    spec = spec or WORKFLOWS[key]
    workflow = page.api_to_ui(spec.prompt(), spec.title)
    report = page.load_workflow(workflow, spec.title)
    if report.missing_node_types:
        raise RuntimeError(f"{key}: the frontend lacks node types {report.missing_node_types}")
    made = {blueprint: convert(page, BLUEPRINTS[blueprint]) for blueprint in spec.cut}
    ids = {blueprint: str(m["node"]) for blueprint, m in made.items()}
    if spec.then:
        spec.then(page, ids)
    arrangement = spec.layout(ids) if spec.cut else spec.layout()
    workflow = page.page.evaluate(_ARRANGE, arrangement) if arrangement else page.page.evaluate(_EXPORT)
    return fixed_ids(attach_model_sources(workflow), {b: m["definition"] for b, m in made.items()})


def blueprint_files(page, built: dict) -> dict:
    """file name -> blueprint, each taken from the workflow it was cut from (`built`: key -> workflow)."""
    out = {}
    for key, source in BLUEPRINT_SOURCES.items():
        workflow = built[source.key] if source.key in built else build(page, source.key, source)
        out[BLUEPRINTS[key].file_name] = as_blueprint(workflow, key)
    return out


def write_all(server_url: str, out_dir: pathlib.Path, blueprints_dir: pathlib.Path) -> list[pathlib.Path]:
    frontend = support("frontend")
    out_dir.mkdir(parents=True, exist_ok=True)
    blueprints_dir.mkdir(parents=True, exist_ok=True)
    written, built = [], {}
    # the classic canvas, whatever IDEA_VUE_NODES says: the layout measures its nodes
    # (tools/arrange_workflow.js), and reserves what the Vue renderer needs from vue_node_sizes.json
    frontend.prepare_user_settings(server_url, {**frontend.USER_SETTINGS, "Comfy.VueNodes.Enabled": False})
    with frontend.Frontend(server_url) as browser:
        page = browser.open_page(prepare=False)
        for key, spec in WORKFLOWS.items():
            built[key] = build(page, key)
            written.append(_write(out_dir / spec.file_name, built[key]))
        for file_name, blueprint in blueprint_files(page, built).items():
            written.append(_write(blueprints_dir / file_name, blueprint))
    return written


def _write(path: pathlib.Path, content: dict) -> pathlib.Path:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running ComfyUI with this pack (default: start one)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "workflows")
    parser.add_argument("--blueprints", type=pathlib.Path, default=REPO / "subgraphs")
    args = parser.parse_args()
    if args.url:
        paths = write_all(args.url, args.out, args.blueprints)
    else:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="idea-workflows-") as base:
            server = support("server").ComfyServer(pathlib.Path(base))
            server.start()
            try:
                paths = write_all(server.url, args.out, args.blueprints)
            finally:
                server.stop()
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()

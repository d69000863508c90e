"""A bundled workflow whose model is missing or misnamed is refused as a whole, before anything runs,
and the frontend shows the user which file and marks its node.

Why it needs saying: the host validates each output node on its own and runs the outputs that pass
("Output will be ignored" for the rest, in the console only), so a workflow with one output that
does not need the checkpoint would run that part and report success. Every output of a bundled
workflow therefore depends on every model it loads (checked on the prompt), and the face nodes check
their model pack when the prompt is queued (checked in the frontend, model by model, with every
other model present). One exception, declared by the generator (`check_only`): the reference photos
and the face pack of workflow 5's likeness check, which the picture does not need (its two Likeness
nodes each need one person's photo, so nothing else could wait for both; the server test shows
the picture is made and the check refused with its message).

What the frontend shows is read from the page (support/frontend_shown.py): frontend 1.32.9 an error
dialog ("Prompt outputs failed validation" with each message), 1.49+ its errors panel (each entry's
message revealed through its "Info for ..." button); both outline the refused node in red.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from support import workflow_fixtures as wf
from support.frontend import Frontend
from support.frontend_shown import queue, read_shown, red_outline
from support.identities import write_identity
from support.tools import tool

pytestmark = pytest.mark.frontend  # runs in the browser: .ci/run repeats these with each newer frontend

NAMES = wf.names()
TOOLS = tool("make_workflows")
CHECK_ONLY = {name: set(spec.check_only) for name, spec in TOOLS.WORKFLOWS.items()}
# the input of each loader that names a file or folder the user provides
MODEL_INPUTS = {"CheckpointLoaderSimple": "ckpt_name", "ControlNetLoader": "control_net_name",
                "IDEA_LoadIdentity": "identity_file", "IDEA_FaceIDEmbed": "model_pack",
                "IDEA_FaceSimilarity": "model_pack", "LoadImage": "image"}
STAND_IN_IDENTITY = "stand_in_identity.safetensors"
SAME_AS_REFERENCE = "same as reference"
STAND_INS = {"ckpt_name": wf.CHECKPOINT, "control_net_name": wf.CONTROLNET, "identity_file": STAND_IN_IDENTITY,
             "model_pack": wf.FACE_PACK}  # Load Image: the workflow's own names, installed as test pictures
OUTLINED = 20  # red pixels around a node that the frontend outlined (1.32.9 draws 1 px, 1.49+ 6 px)

# Sets widget values ({node id: {input: value}}) as a user picks them: the widget's callback runs, so
# the frontend re-checks the value (1.49+ drops a file it had listed as missing once one is chosen).
# A blueprint node's promoted widget is named "<inner id>: <input>" in 1.32.9, "<input>" in 1.49+.
SET_VALUES = """(values) => {
  for (const [id, inputs] of Object.entries(values)) {
    const node = app.graph.getNodeById(+id);
    for (const [name, value] of Object.entries(inputs)) {
      const widget = node.widgets.find(w => w.name === name || w.name.endsWith(': ' + name)), old = widget.value;
      widget.value = value;
      widget.callback?.(value, app.canvas, node);
      node.onWidgetChanged?.(name, value, old, widget);
    }
  }
}"""


@dataclass(frozen=True)
class Model:
    """A file or folder a workflow names: set in widget `field` of root node `node` (a loader, or a
    blueprint node that promotes its loader's input), checked by the prompt's node `loader`."""

    node: str
    field: str
    loader: str


def model_nodes(workflow: dict) -> list[Model]:
    """Every model the UI workflow names, and where (Face Similarity set to `same as reference` names
    none: it uses FaceID Embed's pack)."""
    definitions = {d["id"]: d for d in (workflow.get("definitions") or {}).get("subgraphs", [])}
    models = []
    for n in workflow["nodes"]:
        if n["type"] in MODEL_INPUTS and SAME_AS_REFERENCE not in (n.get("widgets_values") or []):
            models.append(Model(str(n["id"]), MODEL_INPUTS[n["type"]], str(n["id"])))
        elif n["type"] in definitions:
            inner = {str(i["id"]): i["type"] for i in definitions[n["type"]]["nodes"]}
            models += [Model(str(n["id"]), widget, f"{n['id']}:{inner_id}")
                       for inner_id, widget in n["properties"].get("proxyWidgets", [])
                       if MODEL_INPUTS.get(inner[inner_id]) == widget]
    return models


def stand_ins(models: list[Model]) -> dict:
    """{node: {field: the test's file}} for every model: what SET_VALUES sets."""
    values = {}
    for model in models:
        if model.field in STAND_INS:
            values.setdefault(model.node, {})[model.field] = STAND_INS[model.field]
    return values


def ancestors(prompt: dict, key: str) -> set[str]:
    found, todo = set(), [key]
    while todo:
        for value in prompt[todo.pop()]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] not in found:
                found.add(value[0])
                todo.append(value[0])
    return found


@pytest.fixture(scope="module")
def model_server(server, cache_dir):
    wf.install(server.base, cache_dir)
    write_identity(server.base / "models" / "idea" / STAND_IN_IDENTITY, "sd1", seed=12)
    return server


@pytest.fixture(scope="module")
def object_info(model_server):
    return model_server.get("/object_info")


@pytest.fixture(scope="module")
def page(model_server):
    with Frontend(model_server.url, 1280, 720) as browser:
        yield browser.open_page()


@pytest.mark.parametrize("name", NAMES)
def test_every_output_depends_on_every_model_the_workflow_loads(object_info, name):
    prompt = wf.to_api(wf.load(name), object_info)
    outputs = [k for k, e in prompt.items() if object_info[e["class_type"]]["output_node"]]
    loaders = {model.loader for model in model_nodes(wf.load(name))}
    assert outputs and loaders and CHECK_ONLY[name] <= loaders
    for output in outputs:
        missing = loaders - ancestors(prompt, output)
        assert missing <= CHECK_ONLY[name], f"{prompt[output]['_meta']['title']} runs without {sorted(missing)}"
    # what only the likeness check reads is read by it
    assert all(any(model in ancestors(prompt, o) for o in outputs) for model in CHECK_ONLY[name])


CASES = [pytest.param(name, model, id=f"{name}-{model.loader}") for name in NAMES
         for model in model_nodes(wf.load(name)) if model.loader not in CHECK_ONLY[name]]


def farthest_from(workflow: dict, node_id: str) -> str:
    """The node farthest from `node_id` on the canvas: its outline cannot reach into that one's ring."""
    nodes = {str(n["id"]): n["pos"] for n in workflow["nodes"] if n["type"] not in ("Note", "MarkdownNote", "Reroute")}
    x, y = nodes[node_id]
    return max(nodes, key=lambda k: (nodes[k][0] - x) ** 2 + (nodes[k][1] - y) ** 2)


def run_with(page, workflow: dict, name: str, values: dict):
    """Load the workflow, set `values`, press Run; what the server answered and the page showed."""
    page.load_workflow(workflow, name)
    page.close_overlays()
    page.page.evaluate(SET_VALUES, values)
    run = queue(page.page)
    page.page.wait_for_timeout(500)
    return run, read_shown(page.page)


@pytest.mark.parametrize("name,model", CASES)
def test_one_missing_model_refuses_the_whole_workflow_and_marks_its_node(model_server, page, name, model):
    workflow = wf.load(name)
    values = stand_ins(model_nodes(workflow))
    values.setdefault(model.node, {})[model.field] = "misnamed_by_the_user"
    before = (model_server.get("/queue"), len(model_server.get("/history")))
    try:
        run, shown = run_with(page, workflow, name, values)
        assert run.queued is False and run.status == 400
        assert set(run.answer["node_errors"]) == {model.loader}, run.answer  # this model, and nothing else
        # named to the user, in a dialog or the errors panel; 1.58.1 reports a photo it could not load
        # by its node ("The image for Pose image couldn't be loaded"), not by the file's name
        node = next(n for n in workflow["nodes"] if str(n["id"]) == model.node)
        named = ["misnamed_by_the_user"] + ([f"image for {node['title']}"] if node["type"] == "LoadImage" else [])
        assert any(words in shown.text for words in named), shown
        page.close_overlays()
        outlined = red_outline(page.page, model.node)  # the loader, or the blueprint node holding it
        if ":" in model.loader and outlined < OUTLINED:
            # frontend 1.32.9 outlines neither a blueprint node nor the node inside it whose input the
            # server refused (1.49+ outlines the blueprint node); its error dialog names that node's
            # class and input instead
            class_type = run.answer["node_errors"][model.loader]["class_type"]
            assert f"{class_type}:" in shown.text and model.field in shown.text
        else:
            assert outlined >= OUTLINED
        assert red_outline(page.page, farthest_from(workflow, model.node)) < OUTLINED // 4  # only that node
        assert (model_server.get("/queue"), len(model_server.get("/history"))) == before  # nothing ran
    finally:
        page.close_overlays()


def test_a_missing_face_pack_is_refused_with_where_its_files_go_and_where_to_get_them(model_server, page):
    """The face nodes check their pack when the prompt is queued, with their own message: the folder
    it goes in, where to get it, and the packs there are."""
    workflow = wf.load("idea_train_and_generate")
    values = stand_ins(model_nodes(workflow))
    face = next(str(n["id"]) for n in workflow["nodes"] if n["type"] == "IDEA_FaceIDEmbed")
    values[face] = {"model_pack": "antelopev2"}
    try:
        run, shown = run_with(page, workflow, "train", values)
        [message] = [e["details"] for e in run.answer["node_errors"][face]["errors"]]
        folder = str(model_server.base / "models" / "insightface" / "models" / "antelopev2")
        for fact in (folder, TOOLS.FACE_PACKS["antelopev2"], wf.FACE_PACK):  # where, from where, what is there
            assert fact in message and fact in shown.text, (fact, shown)
        page.close_overlays()
        assert red_outline(page.page, face) >= OUTLINED
    finally:
        page.close_overlays()


def test_the_notes_and_the_error_give_the_same_face_pack_links():
    from idea.face_models import PACK_SOURCES
    assert TOOLS.FACE_PACKS == PACK_SOURCES

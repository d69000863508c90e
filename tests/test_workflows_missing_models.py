"""A bundled workflow whose model is missing or misnamed is refused as a whole, in the frontend's
error dialog, before anything runs.

Why it needs saying: the host validates each output node on its own and runs the outputs that pass
("Output will be ignored" for the rest, in the console only), so a workflow with one output that
does not need the checkpoint would run that part and report success. Every output of a bundled
workflow therefore depends on every model it loads (checked on the prompt), and the face nodes check
their model pack when the prompt is queued (checked in the frontend, model by model, with every
other model present). One exception, declared by the generator (`check_only`): the reference photos
and the face pack of workflow 5's likeness check, which the picture does not need (its two Likeness
nodes each need one person's photo, so nothing else could wait for both; the server test shows
the picture is made and the check refused with its message).
"""
from __future__ import annotations

import pytest
from support import workflow_fixtures as wf
from support.frontend import Frontend
from support.identities import write_identity
from support.tools import tool

NAMES = wf.names()
CHECK_ONLY = {name: set(spec.check_only) for name, spec in tool("make_workflows").WORKFLOWS.items()}
# the input of each loader that names a file or folder the user provides
MODEL_INPUTS = {"CheckpointLoaderSimple": "ckpt_name", "ControlNetLoader": "control_net_name",
                "IDEA_LoadIdentity": "identity_file", "IDEA_FaceIDEmbed": "model_pack",
                "IDEA_FaceSimilarity": "model_pack", "LoadImage": "image"}
STAND_IN_IDENTITY = "stand_in_identity.safetensors"
SAME_AS_REFERENCE = "same as reference"
STAND_INS = {"ckpt_name": wf.CHECKPOINT, "control_net_name": wf.CONTROLNET, "identity_file": STAND_IN_IDENTITY,
             "model_pack": wf.FACE_PACK}  # Load Image: the workflow's own names, installed as test pictures
STORES = "document.querySelector('#vue-app').__vue_app__.config.globalProperties.$pinia._s"

# Sets widget values ({node id: {input: value}}), queues the graph as the Run button does, and
# returns what the frontend then shows: its error dialogs and the node errors the server sent.
QUEUE = f"""async (values) => {{
  for (const [id, inputs] of Object.entries(values)) {{
    const node = app.graph.getNodeById(+id);
    for (const [name, value] of Object.entries(inputs)) node.widgets.find(w => w.name === name).value = value;
  }}
  const queued = await app.queuePrompt(0, 1);
  await new Promise(r => setTimeout(r, 500));
  return {{queued, nodeErrors: {STORES}.get('execution').lastNodeErrors || {{}},
          dialogs: Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText.replace(/\\s+/g, ' '))}};
}}"""


def model_nodes(workflow: dict) -> dict[str, str]:
    """node id -> the input that names its model, for every node of the UI workflow that names one
    (Face Similarity set to `same as reference` names none: it uses FaceID Embed's pack)."""
    return {str(n["id"]): MODEL_INPUTS[n["type"]] for n in workflow["nodes"] if n["type"] in MODEL_INPUTS
            and SAME_AS_REFERENCE not in (n.get("widgets_values") or [])}


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
    loaders = set(model_nodes(wf.load(name)))
    assert outputs and loaders and CHECK_ONLY[name] <= loaders
    for output in outputs:
        missing = loaders - ancestors(prompt, output)
        assert missing <= CHECK_ONLY[name], f"{prompt[output]['_meta']['title']} runs without {sorted(missing)}"
    # what only the likeness check reads is read by it
    assert all(any(model in ancestors(prompt, o) for o in outputs) for model in CHECK_ONLY[name])


CASES = [(name, node_id) for name in NAMES for node_id in model_nodes(wf.load(name))
         if node_id not in CHECK_ONLY[name]]


@pytest.mark.parametrize("name,node_id", CASES)
def test_one_missing_model_refuses_the_whole_workflow_in_the_error_dialog(model_server, page, name, node_id):
    workflow = wf.load(name)
    loaders = model_nodes(workflow)
    values = {key: {field: STAND_INS[field]} for key, field in loaders.items() if field in STAND_INS}
    values[node_id] = {loaders[node_id]: "misnamed_by_the_user"}
    before = (model_server.get("/queue"), len(model_server.get("/history")))
    page.load_workflow(workflow, name)
    page.close_overlays()
    shown = page.page.evaluate(QUEUE, values)
    try:
        assert shown["queued"] is False
        assert set(shown["nodeErrors"]) == {node_id}, shown["nodeErrors"]  # this model, and nothing else
        [error] = [d for d in shown["dialogs"] if "Prompt outputs failed validation" in d]
        assert "misnamed_by_the_user" in error
        assert (model_server.get("/queue"), len(model_server.get("/history"))) == before  # nothing ran
    finally:
        page.close_overlays()


def test_a_missing_face_pack_is_refused_with_where_its_files_go(model_server, page):
    """The face nodes check their pack when the prompt is queued, with their own message."""
    workflow = wf.load("idea_train_and_generate")
    loaders = model_nodes(workflow)
    values = {key: {field: STAND_INS[field]} for key, field in loaders.items() if field in STAND_INS}
    face = next(str(n["id"]) for n in workflow["nodes"] if n["type"] == "IDEA_FaceIDEmbed")
    values[face] = {"model_pack": "antelopev2"}
    page.load_workflow(workflow, "train")
    page.close_overlays()
    shown = page.page.evaluate(QUEUE, values)
    page.close_overlays()
    [message] = [e["details"] for e in shown["nodeErrors"][face]["errors"]]
    assert str(model_server.base / "models" / "insightface" / "models" / "antelopev2") in message
    assert wf.FACE_PACK in message  # the packs it did find

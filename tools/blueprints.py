"""The pack's subgraph blueprints (subgraphs/*.json) and the bundled workflows made of them, cut out of
the bundled workflows' own prompts by tools/make_workflows.py (one source of truth for the wiring).

Why cut out in the real frontend: a blueprint is a workflow whose single node is a subgraph, and the
frontend's own "Convert to Subgraph" (`LGraph.convertToSubgraph`) decides its inputs and outputs from
the wires that cross the selection's edge, exactly as a user's conversion does. The page then names
the subgraph, promotes the few widgets a newcomer may change (`properties.proxyWidgets`) and labels
its inputs, and serialises it; Python adds the
category, the description (`extra.BlueprintDescription`, which every tested frontend shows) and a
fixed id per blueprint, so the files do not change from run to run.

"Learn a person" and "Generate with a person" come from workflow 1 in one graph, which with both
cut out is the blueprint version of workflow 1; removing "Learn a person" and giving "Generate with
a person" a saved identity makes the blueprint version of workflow 2, so both hold the blueprints'
very definitions.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

CATEGORY = "ID-EA"
NAMESPACE = uuid.UUID("6f1c4a52-9d0e-4c59-9a5e-1d4a0b7e3c21")  # this pack's blueprint ids


@dataclass(frozen=True)
class Blueprint:
    """One blueprint: `inner` nodes of its source workflow's prompt become the subgraph (its inputs and
    outputs are the wires that cross the cut); `promoted` (node id, widget) appear on the blueprint's
    node; `labels` rename its inputs and outputs (by the name the conversion gave)."""

    key: str
    name: str  # the file name, which is what the blueprint browser lists
    inner: tuple[str, ...]
    promoted: tuple[tuple[str, str], ...]
    description: str
    labels: dict = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.name}.json"

    @property
    def id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, self.key))


LEARN = Blueprint(
    "learn", "Learn a person (ID-EA)", ("5", "7", "8", "9"),
    (("8", "name"), ("8", "steps"), ("8", "batch_size"), ("5", "model_pack"), ("8", "resume")),
    "Learns a person from one to five photos on your own checkpoint (SD1.5, SD2 or SDXL): FaceID Embed, "
    "ID-Enhancer and Learn ID Token with the paper's recipe (320 steps). Needs an insightface model pack "
    "in ComfyUI/models/insightface/models/ (antelopev2 or buffalo_l). Saves models/idea/NAME.safetensors "
    "and embeddings/NAME.safetensors; its clip output knows embedding:NAME, its identity goes to Generate "
    "with a person.", labels={"images": "photos"})
GENERATE = Blueprint(
    "generate", "Generate with a person (ID-EA)", ("10", "11", "12", "13", "14", "15"),
    (("11", "text"), ("12", "text"), ("14", "seed"), ("13", "width"), ("13", "height"), ("10", "weight")),
    "Makes a picture of a learned person: the identity on every cross-attention (Apply ID-Adapter) and "
    "embedding:NAME in the prompt. Connect the checkpoint the person was learned on, and the identity from "
    "Learn a person or from Load Identity (a saved person, by name); take clip from Learn a person when "
    "it trains in the same run.")
TWO_PEOPLE_OFFSET = 100  # its nodes are workflow 5's, numbered from 102 (see make_workflows.TWO_PEOPLE_SOURCE)
TWO_PEOPLE = Blueprint(
    "two_people", "Two people in one picture (ID-EA)",
    tuple(str(TWO_PEOPLE_OFFSET + i) for i in (2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16)),
    tuple((str(TWO_PEOPLE_OFFSET + i), widget) for i, widget in ((2, "text"), (6, "text"), (10, "text"), (15, "seed"))),
    "Two learned people in one picture, A on the left half and B on the right, each prompt with its own "
    "identity (Apply ID-Adapter to Conditioning and Set Area), with a background prompt for the whole "
    "picture. Connect the checkpoint both were learned on and two identities (Load Identity); keep "
    "embedding:NAME of each in their prompt.", labels={"identity": "identity A", "identity_1": "identity B"})
COMPARE = Blueprint(
    "compare", "Compare route A and route B (ID-EA)", tuple(str(i) for i in range(5, 27)),
    (("5", "text"), ("6", "text"), ("8", "noise_seed"), ("10", "steps"), ("11", "value"), ("9", "sampler_name"),
     ("10", "scheduler"), ("7", "batch_size"), ("7", "width"), ("7", "height")),
    "Shows which way of generating makes a learned person: one prompt, seed and latent drawn with route A "
    "(embedding:NAME alone, as the authors generated) and route B (Apply ID-Adapter at weight 0.5 and 1), "
    "each route's pictures scored by Face Similarity against the person's face. Connect the checkpoint the "
    "person was learned on, their identity (Load Identity) and a face embedding of their photo (FaceID "
    "Embed); show each route's pictures with Save Image and its likeness with Preview Any.",
    labels={"reference": "face_embedding", "IMAGE": "route A pictures", "summary": "route A likeness",
            "IMAGE_1": "route B 0.5 pictures", "summary_1": "route B 0.5 likeness",
            "IMAGE_2": "route B 1 pictures", "summary_2": "route B 1 likeness"})
BLUEPRINTS = {b.key: b for b in (LEARN, GENERATE, TWO_PEOPLE, COMPARE)}

# Converts the nodes `inner` of the loaded graph to a subgraph node titled `name`, promotes widgets,
# labels inputs; returns the node's id and the definition's id.
_CONVERT = """([inner, name, promoted, labels]) => {
  const g = app.graph, items = new Set(inner.map(id => g.getNodeById(+id)));
  const {node, subgraph} = g.convertToSubgraph(items);
  node.title = subgraph.name = name;
  node.properties.proxyWidgets = promoted;
  subgraph.inputs.forEach((input, i) => {
    if (labels[input.name]) input.label = node.inputs[i].label = labels[input.name];
  });
  subgraph.outputs.forEach((output, i) => {
    if (labels[output.name]) output.label = node.outputs[i].label = labels[output.name];
  });
  return {node: node.id, definition: subgraph.id};
}"""

# Workflow 2 from workflow 1's blueprint version: "Learn a person" and the photo go, a saved identity
# comes, the prompts read the checkpoint's CLIP.
_SAVED_FROM_START = """([learn, generate, photo, identityFile]) => {
  const g = app.graph, gen = g.getNodeById(generate), ckpt = g.getNodeById(1);
  g.remove(g.getNodeById(learn)); g.remove(g.getNodeById(photo));
  const load = LiteGraph.createNode('IDEA_LoadIdentity');
  load.id = 2; g.add(load);
  load.widgets.find(w => w.name === 'identity_file').value = identityFile;
  load.connect(0, gen, gen.inputs.findIndex(i => i.name === 'identity'));
  ckpt.connect(1, gen, gen.inputs.findIndex(i => i.name === 'clip'));
}"""


def convert(page, blueprint: Blueprint) -> dict:
    """Cut `blueprint.inner` out of the graph loaded in `page` (a support.frontend.FrontendPage)."""
    return page.page.evaluate(_CONVERT, [list(blueprint.inner), blueprint.name,
                                         [list(p) for p in blueprint.promoted], blueprint.labels])


def fixed_ids(workflow: dict, made: dict[str, str]) -> dict:
    """The workflow with each subgraph's random ids (`made`: blueprint key -> id the page gave it; its
    input and output slots have random ids too) replaced by ids made from the blueprint's key, and
    each definition's category and description set."""
    fixed = {}
    for key, random_id in made.items():
        fixed[random_id] = BLUEPRINTS[key].id
        for definition in [d for d in workflow["definitions"]["subgraphs"] if d["id"] == random_id]:  # if kept
            for side in ("inputs", "outputs"):
                for i, slot in enumerate(definition[side]):
                    fixed[slot["id"]] = str(uuid.uuid5(NAMESPACE, f"{key}/{side}/{i}"))
    text = json.dumps(workflow)
    for random_id, fixed_id in fixed.items():
        text = text.replace(random_id, fixed_id)
    out = json.loads(text)
    for definition in (out.get("definitions") or {}).get("subgraphs", []):
        spec = next(b for b in BLUEPRINTS.values() if b.id == definition["id"])
        definition.update(name=spec.name, category=CATEGORY, description=spec.description)
    return out


def as_blueprint(workflow: dict, key: str) -> dict:
    """The blueprint file of `key` from a workflow that holds it: its node alone, unwired, at the origin,
    with its definition, as the frontend's Publish writes one."""
    spec = BLUEPRINTS[key]
    [node] = [json.loads(json.dumps(n)) for n in workflow["nodes"] if n["type"] == spec.id]
    [definition] = [d for d in workflow["definitions"]["subgraphs"] if d["id"] == spec.id]
    node.update(pos=[0, 0], order=0)
    for slot in node.get("inputs") or []:
        slot["link"] = None
    for slot in node.get("outputs") or []:
        slot["links"] = []
    return {"revision": 0, "last_node_id": node["id"], "last_link_id": 0, "nodes": [node], "links": [],
            "version": 0.4, "definitions": {"subgraphs": [definition]},
            "extra": {"BlueprintDescription": spec.description}}


def saved_from_start(page, learn_node: int, generate_node: int, photo_node: int, identity_file: str) -> None:
    """Turn the loaded blueprint version of workflow 1 into that of workflow 2 (see _SAVED_FROM_START)."""
    page.page.evaluate(_SAVED_FROM_START, [learn_node, generate_node, photo_node, identity_file])

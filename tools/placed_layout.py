"""Explicit layouts for workflows whose wiring a column layout cannot draw without crossings.

LiteGraph draws a link as a spline that leaves its output to the right and enters its input from the
left, with control arms of a quarter of the link's length, so where a node sits decides whether two
links cross. The two-people workflow is placed here node by node (sizes fixed, so the result does not
depend on the browser's fonts), with three Reroute nodes that give the checkpoint's MODEL and VAE and
the decoded image a path around the rest, and groups drawn around their members.
tests/test_workflows_ui.py checks the result in the real frontend: every link runs left to right, no
two links cross (branches of one output aside) and no link runs behind a node.

Used by tools/make_workflows.py (`PLACE` is the page script, `two_people_plan` its argument).
"""
from __future__ import annotations

TITLE = 30  # LiteGraph's title bar above a node's position
GAP = 60  # between columns
ROW_GAP = 40  # between stacked nodes (below the title bar)
PAD = 24  # between a group's frame and its nodes
REROUTE = [75, 26]
# Every node's size: the frontend's own for the node, larger for text and pictures.
SIZES = {"CheckpointLoaderSimple": [270, 98], "CLIPTextEncode": [300, 110], "IDEA_LoadIdentity": [270, 58],
         "IDEA_ApplyIDAdapterConditioning": [304, 78], "ConditioningSetAreaPercentage": [350, 154],
         "ConditioningCombine": [211, 46], "EmptyLatentImage": [270, 106], "KSampler": [270, 262],
         "VAEDecode": [140, 46], "SaveImage": [280, 300], "LoadImage": [240, 300],
         "IDEA_FaceIDEmbed": [289, 198], "IDEA_FaceSimilarity": [270, 214], "PreviewAny": [240, 110]}


def _two_people_positions(types: dict) -> dict:
    """Top-left corners (below the title bar) of every node and reroute of idea_two_people.

    Bands, top to bottom: the MODEL wire (reroutes R_model, R_sampler); the prompts and identities,
    each person's chain, the background and negative prompts; the VAE wire (reroute R_vae) along the
    bottom into VAE Decode. The checkpoint sits halfway down the prompt column, so its MODEL wire
    rises, its VAE wire falls and its CLIP wires fan out between them. Right of VAE Decode the image
    runs straight to Likeness A and, through R_image, below reference photo A to Likeness B.
    """
    def size(key):
        return REROUTE if key.startswith("R_") else SIZES[types[key]]

    pos = {}
    x1 = 270 + 150  # the prompt column
    y = 100
    for key in ("2", "3", "6", "7", "10", "11"):  # prompt A, identity A, prompt B, identity B, background, negative
        pos[key] = (x1, y)
        y += size(key)[1] + TITLE + ROW_GAP
    pos["1"] = (0, 520)
    pos["R_model"] = (290, 100 - TITLE - 40)
    pos["R_vae"] = (290, y + 40)
    x2 = x1 + size("2")[0] + GAP
    pos["4"], pos["8"] = (x2, pos["2"][1]), (x2, pos["6"][1])  # apply identity A / B
    x3 = x2 + size("4")[0] + GAP
    pos["5"], pos["9"] = (x3, pos["2"][1]), (x3, pos["6"][1])  # left / right half
    x4 = x3 + size("5")[0] + GAP
    pos["12"] = (x4, (pos["2"][1] + pos["6"][1]) // 2 + 40)  # both people
    x5 = x4 + size("12")[0] + GAP
    pos["13"] = (x5, pos["10"][1] - 150)  # with the background
    x_latent = x5 + size("13")[0] + GAP
    x_sampler = x_latent + size("14")[0] + GAP
    y_sampler = pos["11"][1] + 14 - 54  # its negative input level with the negative prompt's output
    pos["15"] = (x_sampler, y_sampler)
    pos["R_sampler"] = (x_sampler - 140, pos["R_model"][1])
    pos["14"] = (x_latent, y_sampler + 60 + 40)
    x_decode = x_sampler + size("15")[0] + GAP
    pos["16"] = (x_decode, pos["R_vae"][1] + 13 - 34)  # its vae input level with the VAE reroute
    decoded = x_decode + size("16")[0]
    line_a = pos["16"][1] + 14  # decoded image, level into Likeness A
    x_photos = decoded + 60 + REROUTE[0] + GAP
    pos["18"] = (x_photos, line_a + 120)  # reference photo A, below the image line
    line_b = pos["18"][1] + size("18")[1] + 60  # the image again, below photo A, into Likeness B
    pos["R_image"] = (decoded + 60, line_b - 13)
    pos["22"] = (x_photos, line_b + 120)  # reference photo B
    x_embed = x_photos + size("18")[0] + GAP
    pos["19"], pos["23"] = (x_embed, pos["18"][1]), (x_embed, pos["22"][1])
    x_check = x_embed + size("19")[0] + GAP
    pos["20"], pos["24"] = (x_check, line_a - 14), (x_check, line_b - 14)
    x_preview = x_check + size("20")[0] + GAP
    pos["21"], pos["25"] = (x_preview, pos["20"][1] + 60), (x_preview, pos["24"][1] + 60)
    pos["17"] = (x_check, line_a - 14 - TITLE - 60 - size("17")[1])  # save, above Likeness A
    return pos


def two_people_plan(prompt: dict, notes: dict, colors: dict) -> dict:
    """The argument of PLACE for idea_two_people: sizes, positions, reroutes, notes and groups.
    notes: key -> {title, text, size}; they are placed here (readme left of everything, regions
    above the people's chains, likeness above Save)."""
    types = {key: entry["class_type"] for key, entry in prompt.items()}
    pos = _two_people_positions(types)
    save_x, save_y = pos["17"]
    places = {"readme": (-notes["readme"]["size"][0] - 80, 0), "regions": (pos["12"][0], 100),
              "likeness": (save_x, save_y - 2 * TITLE - 40 - notes["likeness"]["size"][1])}
    return {
        "nodes": {key: {"pos": list(pos[key]), "size": SIZES[kind]} for key, kind in types.items()},
        # (origin node, output slot) -> the reroutes in order -> (target node, input slot)
        "reroutes": [{"from": ["1", 0], "via": ["R_model", "R_sampler"], "to": ["15", 0]},
                     {"from": ["1", 2], "via": ["R_vae"], "to": ["16", 1]},
                     {"from": ["16", 0], "via": ["R_image"], "to": ["24", 0]}],
        "reroute_pos": {key: list(value) for key, value in pos.items() if key.startswith("R_")},
        "reroute_size": REROUTE,
        "notes": {key: {**note, "pos": list(places[key])} for key, note in notes.items()},
        "groups": [
            {"title": "Read me", "color": colors["notes"], "members": ["note:readme"]},
            {"title": "1 · Checkpoint, prompts and identities", "color": colors["train"],
             "members": ["1", "2", "3", "6", "7", "10", "11", "R_model", "R_vae"]},
            {"title": "2 · Each person on their half", "color": colors["photos"],
             "members": ["4", "5", "8", "9", "12", "13", "note:regions"]},
            {"title": "3 · Generate", "color": colors["generate"], "members": ["R_sampler", "14", "15", "16"]},
            {"title": "4 · Save, and check each face", "color": colors["check"],
             "members": ["17", "R_image", "18", "19", "20", "21", "22", "23", "24", "25", "note:likeness"]},
        ],
        "title": TITLE, "pad": PAD,
    }


# Places a loaded graph as planned: sizes and positions, a Reroute on each named link, Markdown notes,
# and groups framing their members (title bar included).
PLACE = """async ({nodes, reroutes, reroute_pos, reroute_size, notes, groups, title, pad}) => {
  const g = app.graph, Group = LiteGraph.LGraphGroup || window.LGraphGroup;
  for (const group of [...g.groups]) g.remove(group);
  const made = {};
  for (const [id, spec] of Object.entries(nodes)) {
    const n = g.getNodeById(+id);
    n.size = [...spec.size]; n.pos = [...spec.pos]; made[id] = n;
  }
  for (const spec of reroutes) {
    let [from, slot] = [made[spec.from[0]], spec.from[1]];
    for (const name of spec.via) {
      const r = LiteGraph.createNode('Reroute');
      g.add(r); r.size = [...reroute_size]; r.pos = [...reroute_pos[name]]; made[name] = r;
      from.connect(slot, r, 0);
      [from, slot] = [r, 0];
    }
    from.connect(slot, made[spec.to[0]], spec.to[1]);
  }
  for (const [key, spec] of Object.entries(notes)) {
    const n = LiteGraph.createNode('MarkdownNote');
    n.title = spec.title; n.widgets[0].value = spec.text; n.size = [...spec.size]; n.pos = [...spec.pos];
    g.add(n); made['note:' + key] = n;
  }
  for (const spec of groups) {
    const boxes = spec.members.map(key => made[key]).map(n =>
      [n.pos[0], n.pos[1] - (n.type === 'Reroute' ? 0 : title), n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
    const x0 = Math.min(...boxes.map(b => b[0])) - pad, y0 = Math.min(...boxes.map(b => b[1])) - pad - title - 20;
    const x1 = Math.max(...boxes.map(b => b[2])) + pad, y1 = Math.max(...boxes.map(b => b[3])) + pad;
    const group = new Group(spec.title);
    group.color = spec.color; group.pos = [x0, y0]; group.size = [x1 - x0, y1 - y0];
    g.add(group);
  }
  g.setDirtyCanvas(true, true);
  const {workflow} = await app.graphToPrompt();
  workflow.extra.ds = {scale: 1, offset: [0, 0]};
  return JSON.parse(JSON.stringify(workflow));
}"""

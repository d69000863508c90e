"""Writes workflows/*.json, the example workflows ComfyUI lists as this pack's templates.

Why generated: each workflow is written here as an API prompt (short, reviewable, the same format
the server tests run) and turned into the UI format by the real frontend (`app.loadApiJson`, then
`graphToPrompt().workflow`, what the UI's Export writes), so the files are exactly what frontend
1.32.9 saves. The page then lays the nodes out in titled groups and adds Markdown notes.

    python tools/make_workflows.py [--url http://127.0.0.1:8188] [--out workflows]

Without --url a throw-away server with this pack is started. Needs the provisioned host and
/usr/bin/chromium (see tests/support/frontend.py).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))

import placed_layout  # noqa: E402

NAME = "my_person"  # Learn ID Token's default name: the files and `embedding:my_person`
CHECKPOINTS = {"sd1": "v1-5-pruned-emaonly-fp16.safetensors", "sdxl": "sd_xl_base_1.0.safetensors"}
CONTROLNET = "control_v11p_sd15_openpose_fp16.safetensors"
PHOTOS = ("my_person_1.png", "my_person_2.png")
POSE_IMAGE = "pose.png"
POSITIVE = f"a close-up photo of embedding:{NAME} person, natural light, detailed face"
NEGATIVE = "blurry, lowres, deformed, bad anatomy, watermark, text"
SIZES = {"sd1": 512, "sdxl": 1024}
CFG = {"sd1": 7.0, "sdxl": 6.0}
# Sizes for nodes whose size the frontend computes before it knows their content (image previews,
# text boxes); other nodes keep the frontend's size.
NODE_SIZES = {"LoadImage": [240, 300], "PreviewImage": [240, 240], "SaveImage": [280, 300],
              "CLIPTextEncode": [300, 120], "ImageBatch": [220, 46], "PreviewAny": [270, 110]}
COLORS = {"photos": "#3f789e", "train": "#a1309b", "generate": "#88A", "check": "#b58b2a", "notes": "#444"}


def node(class_type: str, title: str | None = None, **inputs) -> dict:
    entry = {"class_type": class_type, "inputs": inputs}
    if title:
        entry["_meta"] = {"title": title}
    return entry


def generation_nodes(model_from: list, arch: str, first: int, clip_from: list | None = None) -> dict:
    """Prompt, negative prompt, latent, sampler, decode and save, ids from `first`; the checkpoint is
    node "1". clip_from: where the prompts' CLIP comes from (default the checkpoint's)."""
    clip_from = clip_from or ["1", 1]
    i = [str(first + k) for k in range(6)]
    size = SIZES[arch]
    return {
        i[0]: node("CLIPTextEncode", f"Prompt (embedding:{NAME})", text=POSITIVE, clip=clip_from),
        i[1]: node("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=clip_from),
        i[2]: node("EmptyLatentImage", width=size, height=size, batch_size=1),
        i[3]: node("KSampler", seed=1234, steps=30, cfg=CFG[arch], sampler_name="dpmpp_2m", scheduler="karras",
                   denoise=1.0, model=model_from, positive=[i[0], 0], negative=[i[1], 0], latent_image=[i[2], 0]),
        i[4]: node("VAEDecode", samples=[i[3], 0], vae=["1", 2]),
        i[5]: node("SaveImage", images=[i[4], 0], filename_prefix=f"ID-EA/{NAME}"),
    }


def train_and_generate(arch: str) -> dict:
    """Photos -> face -> identity -> training -> the adapter on the model -> image -> likeness."""
    size = SIZES[arch]
    label = "SDXL" if arch == "sdxl" else "SD1.5"
    face = {"model_pack": "antelopev2", "provider": "auto", "detection_size": 640}
    prompt = {
        "1": node("CheckpointLoaderSimple", f"Load Checkpoint ({label})", ckpt_name=CHECKPOINTS[arch]),
        "2": node("LoadImage", "Reference photo 1", image=PHOTOS[0]),
        "3": node("LoadImage", "Reference photo 2", image=PHOTOS[1]),
        "4": node("ImageBatch", "Reference photos", image1=["2", 0], image2=["3", 0]),
        "5": node("IDEA_FaceIDEmbed", images=["4", 0], face_selection="largest", face_index=0, crop_size=size,
                  **face),
        "6": node("PreviewImage", "Aligned faces", images=["5", 1]),
        "7": node("IDEA_IDEnhancer", face_embedding=["5", 0], clip=["1", 1], num_tokens=2, seed=0,
                  train_enhancer=True),
        "8": node("IDEA_LearnIDToken", model=["1", 0], clip=["1", 1], vae=["1", 2], images=["5", 1],
                  identity=["7", 0], name=NAME, steps=320, batch_size=8, learning_rate=0.0015, seed=0,
                  train_enhancer="from identity", resolution=size if arch == "sdxl" else 0,
                  gradient_checkpointing="auto", precision="auto", save_every=0, resume=True),
        "9": node("PreviewImage", "Training loss", images=["8", 1]),
        "10": node("IDEA_ApplyIDAdapter", model=["1", 0], identity=["8", 0], weight=1.0, start_at=0.0,
                   end_at=1.0, apply_to="cond"),
    }
    # the prompts take Learn ID Token's clip output: encoded after training, they find embedding:NAME
    prompt.update(generation_nodes(["10", 0], arch, 11, clip_from=["8", 2]))  # 11..16, the image is 15
    prompt["17"] = node("IDEA_FaceSimilarity", images=["15", 0], reference=["5", 0], **face)
    prompt["18"] = node("PreviewAny", "Likeness", source=["17", 3])
    return prompt


def saved_identity(controlnet: bool = False) -> dict:
    """A saved identity on the model and in the prompt; with a ControlNet on both prompts."""
    prompt = {
        "1": node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINTS["sd1"]),
        "2": node("IDEA_LoadIdentity", identity_file=f"{NAME}.safetensors"),
        "3": node("IDEA_ApplyIDAdapter", model=["1", 0], identity=["2", 0], weight=1.0, start_at=0.0,
                  end_at=1.0, apply_to="cond"),
    }
    prompt.update(generation_nodes(["3", 0], "sd1", 4))  # 4..9: prompts 4/5, sampler 7
    if controlnet:
        prompt["10"] = node("ControlNetLoader", "Load ControlNet (OpenPose)", control_net_name=CONTROLNET)
        prompt["11"] = node("LoadImage", "Pose image", image=POSE_IMAGE)
        prompt["12"] = node("ControlNetApplyAdvanced", positive=["4", 0], negative=["5", 0],
                            control_net=["10", 0], image=["11", 0], strength=1.0, start_percent=0.0,
                            end_percent=1.0, vae=["1", 2])
        prompt["7"]["inputs"].update(positive=["12", 0], negative=["12", 1])
    return prompt


PEOPLE = ("person_a", "person_b")  # the two identities' names: files and `embedding:NAME`
PEOPLE_PHOTOS = ("person_a.png", "person_b.png")
TWO_PEOPLE_SIZE = (768, 512)  # width, height: side by side, each half 384 px wide
BACKGROUND = "two friends standing side by side in a sunny park, natural light, detailed faces"
PERSON_PROMPTS = ("a photo of embedding:person_a person, smiling, detailed face",
                  "a photo of embedding:person_b person, detailed face")


def two_people() -> dict:
    """Two saved identities in one picture: each prompt adapted with its own identity (Apply
    ID-Adapter to Conditioning) on its own half, a shared background prompt, one sampler, and each
    person's likeness scored on their own face (left and right)."""
    face = {"model_pack": "antelopev2", "provider": "auto", "detection_size": 640}
    width, height = TWO_PEOPLE_SIZE
    prompt = {"1": node("CheckpointLoaderSimple", "Load Checkpoint (SD1.5)", ckpt_name=CHECKPOINTS["sd1"])}
    for k, (name, text, x) in enumerate(zip(PEOPLE, PERSON_PROMPTS, (0.0, 0.5))):
        side = ("A, left", "B, right")[k]
        base = 2 + 4 * k  # 2..5 for A, 6..9 for B
        prompt[str(base)] = node("CLIPTextEncode", f"Prompt {side} (embedding:{name})", text=text, clip=["1", 1])
        prompt[str(base + 1)] = node("IDEA_LoadIdentity", f"Identity {side}", identity_file=f"{name}.safetensors")
        prompt[str(base + 2)] = node("IDEA_ApplyIDAdapterConditioning", f"Apply identity {side[0]}",
                                     conditioning=[str(base), 0], identity=[str(base + 1), 0], weight=1.0)
        prompt[str(base + 3)] = node("ConditioningSetAreaPercentage", f"{('Left', 'Right')[k]} half",
                                     conditioning=[str(base + 2), 0], width=0.5, height=1.0, x=x, y=0.0,
                                     strength=1.0)
    prompt.update({
        "10": node("CLIPTextEncode", "Background (whole picture)", text=BACKGROUND, clip=["1", 1]),
        "11": node("CLIPTextEncode", "Negative prompt", text=NEGATIVE, clip=["1", 1]),
        "12": node("ConditioningCombine", "Both people", conditioning_1=["5", 0], conditioning_2=["9", 0]),
        "13": node("ConditioningCombine", "People and background", conditioning_1=["12", 0],
                   conditioning_2=["10", 0]),
        "14": node("EmptyLatentImage", width=width, height=height, batch_size=1),
        "15": node("KSampler", seed=1234, steps=30, cfg=CFG["sd1"], sampler_name="dpmpp_2m", scheduler="karras",
                   denoise=1.0, model=["1", 0], positive=["13", 0], negative=["11", 0], latent_image=["14", 0]),
        "16": node("VAEDecode", samples=["15", 0], vae=["1", 2]),
        "17": node("SaveImage", images=["16", 0], filename_prefix="ID-EA/two_people"),
    })
    for k, (name, photo) in enumerate(zip(PEOPLE, PEOPLE_PHOTOS)):
        side = ("A", "B")[k]
        base = 18 + 4 * k  # 18..21 for A, 22..25 for B
        prompt[str(base)] = node("LoadImage", f"Reference photo {side}", image=photo)
        prompt[str(base + 1)] = node("IDEA_FaceIDEmbed", f"FaceID Embed {side}", images=[str(base), 0],
                                     face_selection="largest", face_index=0, crop_size=512, **face)
        prompt[str(base + 2)] = node("IDEA_FaceSimilarity", f"Likeness {side} ({('left', 'right')[k]} face)",
                                     images=["16", 0], reference=[str(base + 1), 0], face_selection="index",
                                     face_index=k, **face)
        prompt[str(base + 3)] = node("PreviewAny", f"Likeness {side}", source=[str(base + 2), 3])
    return prompt


def _note(title: str, text: str, width: int = 420, height: int = 300) -> dict:
    return {"title": title, "text": text.strip(), "size": [width, height]}


FACE_PACK = ("- `models/insightface/models/antelopev2/`: the insightface **antelopev2** pack, its `.onnx` "
             "files directly in that folder (`buffalo_l` works too; both are for non-commercial use only)")


def train_notes(arch: str, name: str, checkpoint: str, size: int) -> dict:
    label = "SDXL" if arch == "sdxl" else "SD1.5"
    memory = ("SDXL training is heavy: gradient checkpointing is on (auto); if memory runs out, lower "
              "`batch_size` to 4 or 2." if arch == "sdxl" else "If memory runs out, lower `batch_size`.")
    return {
        "readme": _note(f"ID-EA: train an identity, then generate ({label})", f"""
## Train an identity, then use it ({label})
**Models** (in `ComfyUI/models/`):
- `checkpoints/{checkpoint}` or any {label} checkpoint: train and generate with the same one
{FACE_PACK}

**Photos**: 1 to 5 photos of one person in `ComfyUI/input/` (or upload them in the Load Image nodes);
add more with further Image Batch nodes. Faces are cropped to {size} px.

**Queue** once. Learn ID Token trains 320 steps at batch 8 and saves
- `models/idea/{name}.safetensors` (for Load Identity)
- `models/embeddings/{name}.safetensors` (`embedding:{name}` in any prompt)

Afterwards generate with **idea_saved_identity**{" (with this SDXL checkpoint and a 1024 px latent)" if arch == "sdxl" else ""}.
`resume` is on, so queueing again (even after a restart) reuses the saved identity, or finishes it
if it was interrupted, instead of training again. For another person change `name`.
""", width=400, height=350),
        "train": _note("Training", f"""
Defaults are the paper's: 2 tokens, 320 steps, batch 8, learning rate 0.0015 per sample.
{memory} Interrupting saves the steps done; the next queue continues them.
""", width=300, height=120),
        "routes": _note("How the identity is used", f"""
- **Apply ID-Adapter**: the trained adapter adds the identity to every cross-attention (the full method).
- **`embedding:{name}`** in the prompt: the two learned tokens, usable in any workflow.

The prompts take their CLIP from Learn ID Token's `clip` output, so they are encoded after training
has saved `embedding:{name}` and find it in this same run.
""", width=300, height=250),
        "likeness": _note("Likeness", """
Face Similarity compares the faces in the new images with the reference photos: the cosine of
their face embeddings, higher is more alike. Use the same model pack as FaceID Embed and compare
numbers only within one pack. Images without a face count as misses.
""", width=280, height=160),
    }


def saved_notes(name: str, checkpoint: str, controlnet: str | None, pose_image: str) -> dict:
    pose = (f"- `controlnet/{controlnet}` or another SD1.5 OpenPose ControlNet\n\n**Pose image**: an OpenPose "
            f"skeleton (`{pose_image}` in `ComfyUI/input/`), e.g. made from a photo with an OpenPose "
            "preprocessor node. Lower `strength` to loosen the pose.\n") if controlnet else ""
    return {"readme": _note("ID-EA: generate with a saved identity", f"""
## Generate with a saved identity{" and a pose" if controlnet else ""}
**Models** (in `ComfyUI/models/`):
- `checkpoints/{checkpoint}`: the checkpoint the identity was trained on (or one of the same base)
- `idea/{name}.safetensors` and `embeddings/{name}.safetensors`: both written by Learn ID Token
  (idea_train_and_generate); press **R** to refresh the lists after training
{pose}
**Prompt**: keep `embedding:{name}` (the learned tokens); Apply ID-Adapter adds the identity to every
cross-attention. Lower its `weight` for a lighter touch, or `end_at` to free the late steps.
""", height=300 if controlnet else 240)}


def two_people_notes() -> dict:
    a, b = PEOPLE
    return {
        "readme": _note("ID-EA: two people in one picture", f"""
## Two people in one picture
**Models**:
- `ComfyUI/models/checkpoints/{CHECKPOINTS["sd1"]}`: the SD1.5 checkpoint both identities were
  trained on (Stable Diffusion 1.5 or a fine-tune, e.g. from Hugging Face)
- `ComfyUI/models/idea/{a}.safetensors`, `ComfyUI/models/embeddings/{a}.safetensors`,
  `ComfyUI/models/idea/{b}.safetensors`, `ComfyUI/models/embeddings/{b}.safetensors`: made by
  **idea_train_and_generate**, run once per person (`name` = `{a}`, then `{b}`); press **R** to
  refresh the lists afterwards
- `ComfyUI/models/insightface/models/antelopev2/`: the `.onnx` files of the insightface
  **antelopev2** pack (from the insightface project; the pack IPAdapter FaceID, InstantID and PuLID
  use; `buffalo_l` works too; non-commercial use only)

**Photos**: one photo of each person in `ComfyUI/input/` (`{PEOPLE_PHOTOS[0]}`, `{PEOPLE_PHOTOS[1]}`), only
to score the likeness.

Each person's prompt is enriched with their own identity by **Apply ID-Adapter to Conditioning** and
restricted to their half of the picture; the background prompt covers the whole picture. Every model
file is needed: a missing one stops the whole run with a message (ComfyUI itself only warns about a
missing `embedding:` name, so keep both embedding files in place).
""", width=440, height=380),
        "regions": _note("Regions", """
**Conditioning (Set Area with Percentage)** puts person A on the left half (x 0, width 0.5) and B on
the right (x 0.5). Use **Conditioning (Set Mask)** for other shapes, and **Conditioning (Set Timestep
Range)** on a person's conditioning to limit their identity to part of the steps.
""", width=420, height=150),
        "likeness": _note("Likeness", """
Each **Face Similarity** scores one face of the picture against that person's reference photo:
`face_index` 0 is the leftmost face (A), 1 the next (B). Higher is more alike; a missing face
counts as a miss.
""", width=420, height=150),
    }


def _two_people_layout() -> dict:
    return {"place": placed_layout.two_people_plan(two_people(), two_people_notes(), COLORS)}


def _section(title: str, color: str, *columns: list) -> dict:
    return {"title": title, "color": color, "columns": [list(c) for c in columns]}


def _train_layout(arch: str) -> dict:
    return {"rows": [
        [_section("Read me", COLORS["notes"], ["note:readme"]),
         _section("1 · Reference photos → face", COLORS["photos"], ["2"], ["3"], ["4", "5"]),
         _section("2 · Learn the identity", COLORS["train"], ["1", "7", "note:train"], ["8"], ["9"])],
        [_section("3 · Generate with it", COLORS["generate"], ["10", "13"], ["11", "12"], ["note:routes"],
                  ["14"], ["15", "16"]),
         _section("4 · Check", COLORS["check"], ["6"], ["17", "18"], ["note:likeness"])],
    ], "notes": train_notes(arch, NAME, CHECKPOINTS[arch], SIZES[arch]), "sizes": NODE_SIZES}


def _saved_layout(controlnet: bool) -> dict:
    readme = _section("Read me", COLORS["notes"], ["note:readme"])
    identity = _section("1 · The saved identity", COLORS["train"], ["1", "2", "3"])
    generate = _section(f"{3 if controlnet else 2} · Generate", COLORS["generate"], ["4", "5"], ["6", "7"], ["8", "9"])
    rows = ([[readme, identity, _section("2 · Pose", COLORS["photos"], ["10", "12"], ["11"])], [generate]]
            if controlnet else [[readme, identity, generate]])
    return {"rows": rows, "notes": saved_notes(NAME, CHECKPOINTS["sd1"], CONTROLNET if controlnet else None,
                                               POSE_IMAGE), "sizes": NODE_SIZES}


WORKFLOWS = {
    "idea_train_and_generate": (lambda: train_and_generate("sd1"), lambda: _train_layout("sd1")),
    "idea_saved_identity": (lambda: saved_identity(False), lambda: _saved_layout(False)),
    "idea_controlnet_pose": (lambda: saved_identity(True), lambda: _saved_layout(True)),
    "idea_sdxl": (lambda: train_and_generate("sdxl"), lambda: _train_layout("sdxl")),
    "idea_two_people": (two_people, _two_people_layout),
}

# Lays out the loaded graph: rows of titled groups, each group columns of nodes stacked top-down
# (heights as the frontend computed them), notes created as MarkdownNote nodes where named.
_ARRANGE = """async ({rows, notes, sizes}) => {
  const g = app.graph, GAP = 30, PAD = 24, TITLE = LiteGraph.NODE_TITLE_HEIGHT, HEAD = 50;
  const Group = LiteGraph.LGraphGroup || window.LGraphGroup;
  for (const group of [...g.groups]) g.remove(group);
  const resolve = (item) => {
    if (!item.startsWith('note:')) {
      const n = g.getNodeById(+item), size = sizes[n.type] || n.size;
      n.size = [Math.round(size[0]), Math.round(size[1])];
      return n;
    }
    const spec = notes[item.slice(5)], n = LiteGraph.createNode('MarkdownNote');
    n.title = spec.title; n.widgets[0].value = spec.text; n.size = spec.size; g.add(n); return n;
  };
  let y = 0;
  for (const row of rows) {
    let x = 0, rowBottom = y;
    const made = [];
    for (const section of row) {
      let cx = x + PAD, bottom = y + HEAD;
      for (const column of section.columns) {
        let cy = y + HEAD + TITLE, width = 0;
        for (const item of column) {
          const n = resolve(item);
          n.pos = [cx, cy];
          cy += n.size[1] + TITLE + GAP;
          width = Math.max(width, n.size[0]);
        }
        cx += width + GAP;
        bottom = Math.max(bottom, cy - GAP);
      }
      const group = new Group(section.title);
      group.color = section.color;
      group.pos = [x, y];
      group.size = [cx - GAP + PAD - x, bottom + PAD - y];
      g.add(group); made.push(group);
      x = cx - GAP + PAD + GAP * 2;
      rowBottom = Math.max(rowBottom, bottom + PAD);
    }
    for (const group of made) group.size = [group.size[0], rowBottom - y];
    y = rowBottom + GAP * 2;
  }
  g.setDirtyCanvas(true, true);
  const {workflow} = await app.graphToPrompt();
  workflow.extra.ds = {scale: 1, offset: [0, 0]};
  return JSON.parse(JSON.stringify(workflow));
}"""


def build(page, name: str) -> dict:
    """The UI workflow `name`: converted by the frontend, then arranged with groups and notes."""
    make_prompt, make_layout = WORKFLOWS[name]
    workflow = page.api_to_ui(make_prompt(), name)
    report = page.load_workflow(workflow, name)
    if report.missing_node_types:
        raise RuntimeError(f"{name}: the frontend lacks node types {report.missing_node_types}")
    layout = make_layout()
    if "place" in layout:  # laid out node by node (tools/placed_layout.py)
        return page.page.evaluate(placed_layout.PLACE, layout["place"])
    return page.page.evaluate(_ARRANGE, layout)


def write_all(server_url: str, out_dir: pathlib.Path) -> list[pathlib.Path]:
    from support.frontend import Frontend
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with Frontend(server_url) as browser:
        page = browser.open_page()
        for name in WORKFLOWS:
            path = out_dir / f"{name}.json"
            path.write_text(json.dumps(build(page, name), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running ComfyUI with this pack (default: start one)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "workflows")
    args = parser.parse_args()
    if args.url:
        paths = write_all(args.url, args.out)
    else:
        import tempfile

        from support.server import ComfyServer
        with tempfile.TemporaryDirectory(prefix="idea-workflows-") as base:
            server = ComfyServer(pathlib.Path(base))
            server.start()
            try:
                paths = write_all(server.url, args.out)
            finally:
                server.stop()
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()

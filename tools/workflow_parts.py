"""The pieces every bundled workflow is made of (tools/make_workflows.py): the models they name and
where those come from, node and note entries of an API prompt, and the layout that
tools/arrange_workflow.js carries out in the frontend."""
from __future__ import annotations

import json
import pathlib

NAME = "my_person"  # Learn ID Token's default name: the files and `embedding:my_person`
CHECKPOINTS = {"sd1": "v1-5-pruned-emaonly-fp16.safetensors", "sdxl": "sd_xl_base_1.0.safetensors",
               "sd2": "v2-1_512-ema-pruned.safetensors"}  # sd2: the authors' base, SD2.1-base
CONTROLNET = "control_v11p_sd15_openpose_fp16.safetensors"
PHOTO = "my_person_1.png"
POSE_IMAGE = "pose.png"
POSITIVE = f"a close-up photo of embedding:{NAME} person, natural light, detailed face"
NEGATIVE = "blurry, lowres, deformed, bad anatomy, watermark, text"
SIZES = {"sd1": 512, "sdxl": 1024}
CFG = {"sd1": 7.0, "sdxl": 6.0}
BATCH = {"sd1": 8, "sdxl": 4}  # SDXL at 1024 px: batch 4 is the size that fits 24 GiB (README, Performance)
LABELS = {"sd1": "SD1.5", "sdxl": "SDXL", "sd2": "SD2.1 base"}
# Where each model the workflows name comes from: (folder under ComfyUI/models, download URL). The
# URLs are the ones ComfyUI's own templates use. The pack downloads nothing; the frontend offers the
# link when the file is missing.
MODEL_SOURCES = {
    CHECKPOINTS["sd1"]: ("checkpoints", "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/"
                                        "main/v1-5-pruned-emaonly-fp16.safetensors"),
    CHECKPOINTS["sdxl"]: ("checkpoints", "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/"
                                         "main/sd_xl_base_1.0.safetensors"),
    # the checkpoint of stabilityai/stable-diffusion-2-1-base, which the authors' command trains
    CHECKPOINTS["sd2"]: ("checkpoints", "https://huggingface.co/stabilityai/stable-diffusion-2-1-base/resolve/"
                                        "main/v2-1_512-ema-pruned.safetensors"),
    CONTROLNET: ("controlnet", "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/"
                               "main/control_v11p_sd15_openpose_fp16.safetensors"),
}
# insightface packs are folders, which the frontend's model list cannot show: the notes say where.
# (The same links as idea/face_models.PACK_SOURCES, which a missing pack's error names; a test ties them.)
FACE_PACKS = {"antelopev2": "https://github.com/deepinsight/insightface/releases/download/v0.7/antelopev2.zip",
              "buffalo_l": "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"}
# Node sizes in canvas units, at least the frontend's own minimum (so a node that gains an input
# grows instead of being cut): narrow enough that the whole flow fits the frontend's Fit View at a
# zoom where text is still drawn (1920x1080 window, default settings), tall enough for previews
# (Load Image: the height the frontend gives it once its picture has loaded).
NODE_SIZES = {"CheckpointLoaderSimple": [240, 0], "LoadImage": [215, 326], "PreviewImage": [215, 130],
              "CLIPTextEncode": [230, 90], "KSampler": [220, 0], "SaveImage": [220, 260],
              "IDEA_FaceSimilarity": [220, 0], "IDEA_LoadIdentity": [250, 0], "ControlNetLoader": [250, 0],
              "ControlNetApplyAdvanced": [240, 0]}
COLORS = {"photos": "#3f789e", "train": "#a1309b", "generate": "#88A", "check": "#b58b2a"}
GAP = {"x": 40, "y": 30}
# Frontends 1.49 and later draw text up to 6 % wider than 1.32.9, where the files are made, and widen
# a node to fit it: every width the generating frontend measures gets this much more, so the saved
# layout is the one every tested frontend draws (no node grows over a wire or a neighbour).
WIDTH_SLACK = 1.07
# How large the Vue node renderer draws each kind of node (tools/vue_sizes.py measures it in the newest
# frontend): every node and note is laid out at least that large, so both renderers draw the same boxes.
VUE_SIZES = json.loads((pathlib.Path(__file__).with_name("vue_node_sizes.json")).read_text(encoding="utf-8"))


def node(class_type: str, title: str | None = None, **inputs) -> dict:
    entry = {"class_type": class_type, "inputs": inputs}
    if title:
        entry["_meta"] = {"title": title}
    return entry


def note(title: str, text: str, width: int, height: int) -> dict:
    return {"title": title, "text": text.strip(), "size": [width, height]}


def columns(**named) -> list:
    """A layout's columns, left to right, each named for what it holds (the names are for the reader;
    tools/arrange_workflow.js takes the columns in order). A column is a list of entries, top to bottom,
    or `wide(...)`."""
    return list(named.values())


def wide(*items, gap: int) -> dict:
    """A column followed by a wider gap: room for wires that change height steeply between columns."""
    return {"items": list(items), "gap": gap}


def group(title: str, color: str, *items: str) -> dict:
    return {"title": title, "color": color, "items": list(items)}


TOP = 0  # the top of the flow: notes, and boxes with nothing above them


def at(item: str, y: int = TOP, span: bool = False) -> dict:
    """A column entry whose box starts no higher than y (a free lane for the wires above it); with
    span, it may reach over the next columns (a wide note above them)."""
    return {"item": item, "y": y, "span": span}


def reroute(origin: tuple, via: tuple, target: tuple) -> dict:
    """The wire from (node, output slot) to (node, input slot or name) drawn through the Reroute nodes
    `via` (names that the columns place like nodes)."""
    return {"from": list(origin), "via": list(via), "to": list(target)}


def layout(columns: list, groups: list[dict], notes: dict, crossings: tuple = (), reroutes: tuple = (),
           sizes: dict | None = None) -> dict:
    """What tools/arrange_workflow.js takes. crossings: the wire crossings the layout accepts, each
    ((origin, target), (origin, target)) by node id, checked by tests/test_workflows_layout.py; every
    other pair of wires that share no node must not cross. sizes: this workflow's own node sizes,
    over NODE_SIZES."""
    return {"columns": columns, "groups": groups, "notes": notes, "sizes": {**NODE_SIZES, **(sizes or {})},
            "vueSizes": VUE_SIZES, "gap": GAP, "widthSlack": WIDTH_SLACK,
            "crossings": [list(map(list, pair)) for pair in crossings],
            "reroutes": list(reroutes)}


def models_note(*lines: str) -> str:
    """The Models paragraph: each line names its full path under ComfyUI/ and where to get it."""
    return "**Models** (nothing is downloaded for you):\n" + "\n".join(f"- {line}" for line in lines)


def checkpoint_line(arch: str, purpose: str) -> str:
    name = CHECKPOINTS[arch]
    return (f"`ComfyUI/models/checkpoints/`: an {LABELS[arch]} checkpoint, chosen in **Load Checkpoint** "
            f"({purpose}). The workflow names [{name}]({MODEL_SOURCES[name][1]}); any {LABELS[arch]} "
            "fine-tune works.")


FACE_PACK_LINE = (
    "`ComfyUI/models/insightface/models/antelopev2/`: the `.onnx` files of insightface's "
    f"[antelopev2 pack]({FACE_PACKS['antelopev2']}) (unzip it in `models/insightface/models/`; "
    f"for non-commercial research use only). With [buffalo_l]({FACE_PACKS['buffalo_l']}) instead, set "
    "FaceID Embed's `model_pack` to buffalo_l; Face Similarity follows it (`same as reference`).")


def attach_model_sources(workflow: dict) -> dict:
    """Give every node that names a model of MODEL_SOURCES the frontend's `models` property."""
    for entry in workflow["nodes"]:
        named = [v for v in entry.get("widgets_values") or [] if isinstance(v, str) and v in MODEL_SOURCES]
        if named:
            entry.setdefault("properties", {})["models"] = [
                {"name": v, "url": MODEL_SOURCES[v][1], "directory": MODEL_SOURCES[v][0]} for v in named]
    return workflow


def result_lines(name: str) -> str:
    return (f"- `ComfyUI/models/idea/{name}.safetensors`: the identity, for Load Identity\n"
            f"- `ComfyUI/models/embeddings/{name}.safetensors`: the learned words, `embedding:{name}` in any prompt")

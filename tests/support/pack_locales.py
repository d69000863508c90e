"""The pack's translations as ComfyUI serves them, and the text a node schema gives each of them.

ComfyUI reads `locales/<lang>/main.json` and `nodeDefs.json` of every custom node pack and serves them
merged at /i18n; the frontend merges that into its own messages and looks a node's text up under
`nodeDefs.<node id>`: `display_name`, `description`, `inputs.<input>.name|tooltip` and
`outputs.<index>.name|tooltip`, and each part of a category under `nodeCategories.<part>`.
"""
from __future__ import annotations

import json
import pathlib

from support import paths

LOCALES = paths.REPO / "locales"
LANGUAGES = ("en", "zh", "ja", "ko")
FILES = ("main.json", "nodeDefs.json")
# Beside each translation: the English it translates, by file (the host serves only FILES).
TRANSLATED_FROM = "translated_from.json"

# Words people type, and the nodes each must find (more may carry a word).
SEARCH_WORDS = {
    "face id": {"IDEA_FaceIDEmbed", "IDEA_ApplyIDAdapter", "IDEA_LearnIDToken"},
    "textual inversion": {"IDEA_LearnIDToken"},
    "PuLID": {"IDEA_ApplyIDAdapter", "IDEA_LearnIDToken"},
    "InstantID": {"IDEA_ApplyIDAdapter", "IDEA_LearnIDToken"},
    "IPAdapter face": {"IDEA_ApplyIDAdapter", "IDEA_ApplyIDAdapterConditioning"},
    "LoRA alternative": {"IDEA_LearnIDToken", "IDEA_ApplyIDAdapter"},
    "identity": {"IDEA_LoadIdentity", "IDEA_IDEnhancer", "IDEA_ApplyIDAdapter", "IDEA_LearnIDToken"},
}


def load(lang: str, file: str) -> dict:
    return json.loads((LOCALES / lang / file).read_text(encoding="utf-8"))


def pack_nodes(object_info: dict) -> dict:
    return {node_id: info for node_id, info in object_info.items() if node_id.startswith("IDEA_")}


def schema_text(info: dict) -> dict:
    """What a nodeDefs.json entry holds for one node, in the schema's own (English) words: an input's
    shown name is its id, an output's its output_name."""
    inputs = {}
    for section in ("required", "optional"):
        for name in info.get("input_order", {}).get(section, []):
            inputs[name] = {"name": name, "tooltip": info["input"][section][name][1].get("tooltip")}
    tooltips = info.get("output_tooltips") or [None] * len(info["output_name"])
    outputs = {str(i): {"name": name, "tooltip": tip}
               for i, (name, tip) in enumerate(zip(info["output_name"], tooltips))}
    return {"display_name": info["display_name"], "description": info["description"], "inputs": inputs,
            "outputs": outputs}


def categories(object_info: dict) -> set[str]:
    """Every part of the pack's node categories ("ID-EA/advanced" has two), each translated on its own."""
    return {part for info in pack_nodes(object_info).values() for part in info["category"].split("/")}


def leaves(tree, path: tuple = ()):
    """(path, text) of every string in a locale file."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, path + (key,))
    else:
        yield path, tree


def host_version(comfy_dir: pathlib.Path | None = None) -> str:
    """The ComfyUI version of the host the tests run on, as its comfyui_version.py says."""
    text = ((comfy_dir or paths.comfyui_dir()) / "comfyui_version.py").read_text(encoding="utf-8")
    return text.split("__version__ =", 1)[1].strip().strip("\"'")

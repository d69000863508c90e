"""The pack's model folders, registered with the host so extra_model_paths.yaml can add more.

- `insightface`: `<models>/insightface`, holding `models/<pack>/*.onnx` (the FaceAnalysis layout
  other face packs use, so one copy serves them all);
- `idea`: `<models>/idea`, the saved identity files.
Learn ID Token also keeps the optimiser's state of each run in `<models>/idea_resume` (not a
registered folder: nothing lists it, only resume reads it).
"""
from __future__ import annotations

import os
import pathlib

import folder_paths

INSIGHTFACE = "insightface"
IDENTITIES = "idea"


def register() -> None:
    for name, exts in ((INSIGHTFACE, set()), (IDENTITIES, {".safetensors"})):
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))
        folder_paths.folder_names_and_paths[name][1].update(exts)


def insightface_roots() -> list[pathlib.Path]:
    return [pathlib.Path(p) for p in folder_paths.get_folder_paths(INSIGHTFACE)]


def resume_dir() -> pathlib.Path:
    return pathlib.Path(folder_paths.models_dir) / "idea_resume"


def identity_dir() -> pathlib.Path:
    """Where new identity files are written: the first registered `idea` folder."""
    return pathlib.Path(folder_paths.get_folder_paths(IDENTITIES)[0])

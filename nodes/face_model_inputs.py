"""The face-model inputs FaceID Embed and Face Similarity share, defined once, and loading the pack."""
from __future__ import annotations

from comfy_api.latest import io

from ..idea.face_models import FaceModels, PROVIDERS, list_model_packs, load_face_models, resolve_model_pack
from ..idea.face_pipeline import SELECTIONS
from . import model_folders

DEFAULT_PACK = "antelopev2"


def pack_choices() -> list[str]:
    """Packs found on disk; the default stays listed so a workflow naming it reaches the node,
    whose error then says exactly where the files go."""
    found = list_model_packs(model_folders.insightface_roots())
    return ([DEFAULT_PACK] if DEFAULT_PACK not in found else []) + found


def model_pack_input(tooltip: str) -> io.Combo.Input:
    return io.Combo.Input("model_pack", options=pack_choices(), default=DEFAULT_PACK, tooltip=tooltip)


def provider_input() -> io.Combo.Input:
    return io.Combo.Input("provider", options=list(PROVIDERS), default="auto",
                          tooltip="Where the face models run: auto uses CUDA when onnxruntime-gpu offers it, "
                                  "else the CPU.")


def detection_size_input() -> io.Int.Input:
    return io.Int.Input("detection_size", default=640, min=160, max=2048, step=32,
                        tooltip="Side of the square the detector sees; larger finds smaller faces but is slower.")


def face_selection_inputs(what: str, optional: bool = False) -> list[io.Input]:
    """face_selection and face_index: which face of a picture with several people to use. Optional
    where they were added to an existing node, so prompts saved before still validate."""
    return [io.Combo.Input("face_selection", options=list(SELECTIONS), default="largest", optional=optional,
                           tooltip=f"Which face {what} when a picture shows several: the largest, or the one "
                                   "at face_index counting from the left."),
            io.Int.Input("face_index", default=0, min=0, max=63, optional=optional,
                         tooltip="With face_selection = index: 0 is the leftmost face.")]


def load_pack(model_pack: str, provider: str) -> FaceModels:
    return load_face_models(resolve_model_pack(model_folders.insightface_roots(), model_pack), provider)

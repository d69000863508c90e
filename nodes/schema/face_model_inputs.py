"""The face-model inputs FaceID Embed and Face Similarity share, defined once, and loading the pack."""
from __future__ import annotations

from comfy_api.latest import io

from ...idea.face_models import (FaceModelError, FaceModels, PROVIDERS, list_model_packs, load_face_models,
                                resolve_model_pack)
from ...idea.face_pipeline import SELECTIONS
from ..host import model_folders

DEFAULT_PACK = "antelopev2"
# Face Similarity's default: the pack the reference was embedded with, so a workflow names its pack
# once (in FaceID Embed) and the two can never disagree.
SAME_AS_REFERENCE = "same as reference"


def pack_choices() -> list[str]:
    """Packs found on disk; the default stays listed so a new node shows it even before the files
    are in place (validation then says exactly where they go)."""
    found = list_model_packs(model_folders.insightface_roots())
    return ([DEFAULT_PACK] if DEFAULT_PACK not in found else []) + found


def model_pack_input(tooltip: str, follow_reference: bool = False) -> io.Combo.Input:
    """follow_reference: offer SAME_AS_REFERENCE first, as the default."""
    choices = pack_choices()
    if follow_reference:
        return io.Combo.Input("model_pack", options=[SAME_AS_REFERENCE] + choices, default=SAME_AS_REFERENCE,
                              tooltip=tooltip)
    return io.Combo.Input("model_pack", options=choices, default=DEFAULT_PACK, tooltip=tooltip)


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


def check_model_pack(model_pack: str) -> bool | str:
    """For a node's validate_inputs: True when the pack's folder is found, else the message saying
    where its files go. Checked when the prompt is queued, so a workflow with a missing pack is
    refused as a whole (the frontend's error dialog) instead of running the nodes that do not need it."""
    if model_pack == SAME_AS_REFERENCE:
        return True  # the reference's own pack, which FaceID Embed has checked
    try:
        resolve_model_pack(model_folders.insightface_roots(), model_pack)
    except FaceModelError as err:
        return str(err)
    return True

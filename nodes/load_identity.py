"""Load Identity: a saved identity file from models/idea/ -> the identity value."""
from __future__ import annotations

import os

from comfy_api.latest import io

import folder_paths

from ..idea.errors import IDEAError
from ..idea.identity_file import load_identity
from . import model_folders
from .types import IdentityType


class IdentityNotFoundError(IDEAError, FileNotFoundError):
    """The identity file chosen in the node is not (or no longer) in models/idea/."""


def _not_found(identity_file: str) -> str:
    return (f"identity file '{identity_file}' not found in {model_folders.identity_dir()}; put the "
            ".safetensors file written by Learn ID Token there and refresh the node list (press R).")


class LoadIdentity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_LoadIdentity",
            display_name="Load Identity",
            category="ID-EA",
            description="Loads an identity trained by Learn ID Token from models/idea/ (.safetensors only).",
            inputs=[
                io.Combo.Input("identity_file",
                               options=folder_paths.get_filename_list(model_folders.IDENTITIES),
                               tooltip="An identity file in models/idea/ (saved by Learn ID Token)."),
            ],
            outputs=[IdentityType.Output("identity", tooltip="For Apply ID-Adapter (or to resume training).")],
        )

    @classmethod
    def validate_inputs(cls, identity_file) -> bool | str:
        """A missing file refuses the prompt when it is queued: the host does not check a v3 node's
        list itself, and the run would otherwise start and fail midway."""
        if folder_paths.get_full_path(model_folders.IDENTITIES, identity_file) is None:
            return _not_found(identity_file)
        return True

    @classmethod
    def execute(cls, identity_file) -> io.NodeOutput:
        path = folder_paths.get_full_path(model_folders.IDENTITIES, identity_file)
        if path is None:
            raise IdentityNotFoundError(_not_found(identity_file))
        return io.NodeOutput(load_identity(path))

    @classmethod
    def fingerprint_inputs(cls, identity_file):
        """Re-run when the file on disk changes (a finished training run replaces it)."""
        path = folder_paths.get_full_path(model_folders.IDENTITIES, identity_file)
        return os.path.getmtime(path) if path and os.path.exists(path) else identity_file

"""Load Identity: a saved identity file from models/idea/ -> the identity value."""
from __future__ import annotations

import os

from comfy_api.latest import io

import folder_paths

from ..idea.errors import IDEAError
from ..idea.identity_file import load_identity
from .host import model_folders
from .schema.search_words import search_aliases
from .types import IdentityType

# The file Learn ID Token writes under its default name (my_person): what a new node offers first.
DEFAULT_FILE = "my_person.safetensors"


def identity_file_input() -> io.Combo.Input:
    """The saved identities; the default is the one the bundled workflows train, or the first file.
    With none saved yet the list is empty and the default still names what training will write, so
    the node (and its search preview) shows a file name rather than nothing."""
    files = folder_paths.get_filename_list(model_folders.IDENTITIES)
    default = DEFAULT_FILE if DEFAULT_FILE in files or not files else files[0]
    return io.Combo.Input("identity_file", options=files, default=default,
                          tooltip="An identity file in models/idea/ (saved by Learn ID Token).")


def missing_file_message(identity_file: str) -> str:
    return (f"identity file '{identity_file}' not found in {model_folders.identity_dir()}; train it with "
            f"Learn ID Token (name '{identity_file.removesuffix('.safetensors')}') or put the .safetensors "
            "file written by Learn ID Token there, then refresh the node list (press R).")


class IdentityNotFoundError(IDEAError, FileNotFoundError):
    """The identity file chosen in the node is not (or no longer) in models/idea/."""


class LoadIdentity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IDEA_LoadIdentity",
            display_name="Load Identity",
            category="ID-EA",
            **search_aliases("identity", "load person", "load face", "face id", "embedding"),
            description="Loads an identity trained by Learn ID Token from models/idea/ (.safetensors only).",
            inputs=[identity_file_input()],
            outputs=[IdentityType.Output("identity", display_name="identity",
                                         tooltip="For Apply ID-Adapter (or to resume training).")],
        )

    @classmethod
    def execute(cls, identity_file) -> io.NodeOutput:
        path = folder_paths.get_full_path(model_folders.IDENTITIES, identity_file)
        if path is None:
            raise IdentityNotFoundError(missing_file_message(identity_file))
        return io.NodeOutput(load_identity(path))

    @classmethod
    def validate_inputs(cls, identity_file) -> bool | str:
        """Checked when the prompt is queued: the host does not check a v3 node's list itself, so a
        missing file would otherwise start the run and fail midway; refused, the whole workflow stops
        before anything runs, with the fix."""
        if folder_paths.get_full_path(model_folders.IDENTITIES, identity_file) is None:
            return missing_file_message(identity_file)
        return True

    @classmethod
    def fingerprint_inputs(cls, identity_file):
        """Re-run when the file on disk changes (a finished training run replaces it)."""
        path = folder_paths.get_full_path(model_folders.IDENTITIES, identity_file)
        return os.path.getmtime(path) if path and os.path.exists(path) else identity_file

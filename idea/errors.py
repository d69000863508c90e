"""The base of every error class this pack defines, titled so that a person can read it.

ComfyUI titles a failed node with the type of its exception written as `module.qualname`
(`full_type_name` in the host's execution.py). A custom node's modules are imported under the path
of its install folder, so a pack-defined class would be titled
`/home/.../ComfyUI/custom_nodes/ComfyUI-ID-EA.idea.face_pipeline.FaceNotFoundError`. Every subclass
of IDEAError reports its module as "ID-EA" instead: the title reads `ID-EA.FaceNotFoundError`, and
log lines and tracebacks read the same. Each error also derives from the builtin it refines
(ValueError, RuntimeError, FileExistsError...), so code that catches those keeps working.
"""
from __future__ import annotations

TITLE_MODULE = "ID-EA"


class IDEAError(Exception):
    """An error of this pack; its message says what is wrong and how to fix it."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__module__ = TITLE_MODULE


IDEAError.__module__ = TITLE_MODULE


class InputError(IDEAError, ValueError):
    """A node input that cannot be used as given (the message names the input and what to use)."""


def error_title(error_type: type) -> str:
    """The title ComfyUI shows for an exception type (its `module.qualname`, or the bare name of a
    builtin), computed as the host does."""
    module = error_type.__module__
    return error_type.__qualname__ if module == "builtins" else f"{module}.{error_type.__qualname__}"

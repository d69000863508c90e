"""A throw-away copy of the provisioned host, for tests that run tools/provision.sh or `make run`.

Why: provisioning links the checkout it runs from into its ComfyUI's custom_nodes/; run against the
shared host from another checkout (a worktree, a CI clone beside it) it would re-link that host.
The copy holds its own ComfyUI tree (about 25 MB, copied in a second), the host's venv linked (never
changed by a provisioned run), and the host's stamps, so the script sees a provisioned host.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import sys

from support import paths


def real_host_dir() -> pathlib.Path:
    """The folder of the host the tests run on (env.sh, stamps/, and ComfyUI/ and venv/ when
    tools/provision.sh made them)."""
    return pathlib.Path(os.environ.get("IDEA_PROVISIONED_HOST", paths.REPO / ".host"))


def is_provisioned_folder() -> bool:
    """Whether the tests' host was built by tools/provision.sh into its own folder (not COMFYUI_PATH)."""
    real = real_host_dir()
    return paths.comfyui_dir() == real / "ComfyUI" and (real / "stamps").is_dir() and (real / "venv").is_dir()


def provisioned_copy(dest: pathlib.Path) -> pathlib.Path:
    """IDEA_HOST_DIR for a copy of the provisioned host at `dest`; returns `dest`."""
    real = real_host_dir()
    comfy, venv = paths.comfyui_dir(), real / "venv"
    if not is_provisioned_folder():
        raise RuntimeError(f"the host at {real} was not provisioned by tools/provision.sh into its own folder "
                           "(COMFYUI_PATH / IDEA_PYTHON hosts cannot be copied)")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(comfy, dest / "ComfyUI", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(real / "stamps", dest / "stamps")
    os.symlink(venv, dest / "venv", target_is_directory=True)
    (dest / "cache").mkdir(exist_ok=True)
    return dest


def isolated_host_env(dest: pathlib.Path) -> dict:
    """Environment for running tools/provision.sh or `make` on the tests' host without touching its
    folder: a copy of a provisioned host, or the same COMFYUI_PATH host and Python with their own
    IDEA_HOST_DIR (that host is the user's: it is used in place, as provisioning would, and its Python
    is never changed). A copy keeps the source and frontend it was provisioned with: it shares the
    host's venv."""
    if is_provisioned_folder():
        # the same host and frontend again (env.sh records both), so that nothing is installed
        again = {key: os.environ[recorded] for key, recorded in (("IDEA_COMFYUI_SOURCE", "IDEA_HOST_SOURCE"),
                                                                  ("IDEA_FRONTEND", "IDEA_HOST_FRONTEND"))
                 if os.environ.get(recorded)}
        return {**again, "IDEA_HOST_DIR": str(provisioned_copy(dest))}
    # someone's own ComfyUI: its Python as it is now (never IDEA_FRONTEND, which would install the
    # frontend recorded at provisioning over whatever the user has since)
    return {"COMFYUI_PATH": str(paths.comfyui_dir()), "IDEA_PYTHON": os.environ.get("IDEA_PY", sys.executable),
            "IDEA_HOST_DIR": str(dest)}

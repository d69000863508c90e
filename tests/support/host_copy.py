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

from support import paths


def real_host_dir() -> pathlib.Path:
    """The host the tests run on: the folder holding env.sh, stamps/ and cache/."""
    return paths.cache_dir().parent.parent


def provisioned_copy(dest: pathlib.Path) -> pathlib.Path:
    """IDEA_HOST_DIR for a copy of the provisioned host at `dest`; returns `dest`."""
    real = real_host_dir()
    comfy, venv = paths.comfyui_dir(), real / "venv"
    if comfy != real / "ComfyUI" or not (real / "stamps").is_dir() or not venv.is_dir():
        raise RuntimeError(f"the host at {real} was not provisioned by tools/provision.sh into its own folder "
                           "(COMFYUI_PATH / IDEA_PYTHON hosts cannot be copied)")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(comfy, dest / "ComfyUI", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(real / "stamps", dest / "stamps")
    os.symlink(venv, dest / "venv", target_is_directory=True)
    (dest / "cache").mkdir(exist_ok=True)
    return dest

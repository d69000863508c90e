"""Where the provisioned host and the fixture cache live (from .host/env.sh, else the defaults)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]


def comfyui_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("IDEA_COMFYUI", REPO / ".host" / "ComfyUI"))


def cache_dir() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("IDEA_CACHE", REPO / ".host" / "cache")) / "fixtures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_base_dir(base: pathlib.Path) -> pathlib.Path:
    """A ComfyUI --base-directory for tests: its own models/input/output, and this pack linked into
    its custom_nodes/ so the host loads it exactly as a user's install would."""
    for sub in ("custom_nodes", "input", "output", "temp", "user", "models"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / "ComfyUI-ID-EA"
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    return base


@contextlib.contextmanager
def file_lock(lock_path: pathlib.Path):
    """Exclusive lock on a file, so concurrent test processes build a cached fixture only once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

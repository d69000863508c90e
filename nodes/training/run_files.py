"""Where Learn ID Token writes: models/embeddings/<name>.safetensors (for `embedding:<name>` in any
prompt), models/idea/<name>.safetensors (the identity file) and models/idea_resume/<name>.safetensors
(the optimiser's state, for an exact resume), never overwriting a user's file.

The optimiser's state sits outside models/idea/ so Load Identity never lists it."""
from __future__ import annotations

import logging
import pathlib
import re
from dataclasses import dataclass

import folder_paths

from ...idea.errors import IDEAError, InputError
from ...idea.identity import IdentityEmbedding
from ...idea.identity_file import load_identity, read_checksum, save_embedding_for_prompts, save_identity
from ...idea.training_state import load_optimizer_state, save_optimizer_state
from ..host import model_folders

log = logging.getLogger(__name__)


class NameTakenError(IDEAError, FileExistsError):
    """A new training run would replace a file the user already has; nothing is written."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class IdentityPaths:
    name: str
    identity: pathlib.Path
    embedding: pathlib.Path
    optimizer_state: pathlib.Path

    def existing(self) -> list[pathlib.Path]:
        return [p for p in (self.identity, self.embedding, self.optimizer_state) if p.exists()]


def paths_for(name: str) -> IdentityPaths:
    if not _NAME.match(name or "") or name.endswith(".safetensors"):
        raise InputError(f"identity name {name!r} is not usable as a file and prompt name: use letters, "
                         "digits, '_', '-' or '.', start with a letter or digit, at most 64 characters, "
                         "without the .safetensors extension")
    embeddings = pathlib.Path(folder_paths.get_folder_paths("embeddings")[0])
    return IdentityPaths(name, model_folders.identity_dir() / f"{name}.safetensors",
                         embeddings / f"{name}.safetensors", model_folders.resume_dir() / f"{name}.safetensors")


def steps_done(identity: IdentityEmbedding) -> int:
    return int(identity.metadata.get("training", {}).get("steps_done", 0))


def check_fresh_start(paths: IdentityPaths) -> None:
    """A new run must not replace anything: the name is taken if either file exists."""
    taken = paths.existing()
    if not taken:
        return
    detail = ""
    if paths.identity.exists():
        try:
            done = load_identity(paths.identity)
            detail = (f" (an identity trained for {steps_done(done)} of "
                      f"{done.metadata.get('training', {}).get('steps_total', '?')} steps)")
        except ValueError:
            detail = " (not a readable ID-EA identity)"
    raise NameTakenError(
        f"'{paths.name}' already exists: {', '.join(map(str, taken))}{detail}. Nothing was overwritten. "
        "Choose another name, or turn on resume to continue training that identity.")


def load_for_resume(paths: IdentityPaths, arch: str, ctx_dim: int) -> IdentityEmbedding:
    """The saved identity of this name, checked against the model it will be trained on."""
    return load_identity(paths.identity, expected_arch=arch, expected_ctx_dim=ctx_dim)


def save_all(identity: IdentityEmbedding, paths: IdentityPaths, optimizer, named_trainable: dict) -> None:
    """The files of this run (after check_fresh_start or for a resumed identity of this name): the
    identity, the prompt embedding, and the optimiser's state tied to that identity's checksum."""
    checksum = save_identity(identity, paths.identity, overwrite=True)
    save_embedding_for_prompts(identity.token_vectors, paths.embedding, overwrite=True)
    save_optimizer_state(optimizer, named_trainable, paths.optimizer_state, checksum)
    log.info("saved identity '%s' (%d steps) to %s and %s", paths.name, steps_done(identity),
             paths.identity, paths.embedding)


def saved_optimizer_state(paths: IdentityPaths) -> dict | None:
    """The optimiser's state saved with the identity of this name, or None (with the reason logged:
    the run then goes on with a fresh optimiser, close to but not exactly an uninterrupted run)."""
    tensors, why_not = load_optimizer_state(paths.optimizer_state, read_checksum(paths.identity))
    if tensors is None:
        log.warning("resuming '%s' with a fresh optimiser: %s. The result will differ slightly from an "
                    "uninterrupted run.", paths.name, why_not)
    return tensors

"""The optimiser's state, saved beside each identity a training run writes, so a resumed run
continues exactly as an uninterrupted one would.

AdamW's moments are what a resumed run cannot rebuild: started afresh, 2 steps + resume to 4 land
elsewhere than 4 straight steps. They live in a file of their own, not in the identity: they are
twice the size of what they describe (about 280 MB for SDXL) and only training needs them. The file
names the identity file it belongs to by that file's checksum, so a state is never applied to
another identity (or to one saved by a run that stopped between the two writes).
"""
from __future__ import annotations

import logging
import os

import torch
from safetensors import safe_open

from .safetensors_checks import check_container
from .safetensors_writes import serialize, write_atomically

logger = logging.getLogger(__name__)

KIND = "ID-EA optimiser state"
STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")  # what AdamW keeps per parameter


def save_optimizer_state(optimizer: torch.optim.Optimizer, named: dict[str, torch.Tensor],
                         path: str | os.PathLike, identity_checksum: str) -> None:
    """Write the optimiser's per-parameter state, keyed by the trainable tensors' names."""
    names = {id(tensor): name for name, tensor in named.items()}
    tensors = {}
    for param, state in optimizer.state.items():
        for key in STATE_KEYS:
            value = torch.as_tensor(state[key]).detach()
            tensors[f"{names[id(param)]}:{key}"] = value.to("cpu").contiguous().clone()
    metadata = {"idea.kind": KIND, "idea.identity_checksum": identity_checksum}
    write_atomically(serialize(tensors, metadata), path, overwrite=True)


def load_optimizer_state(path: str | os.PathLike, identity_checksum: str | None) -> tuple[dict | None, str]:
    """(tensors, "") when `path` holds the state saved with the identity of that checksum, else
    (None, why not). Never raises for a missing, foreign or damaged file: resuming then starts a
    fresh optimiser, which only costs exactness."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return None, f"there is no saved optimiser state ({path})"
    try:
        check_container(path)
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("idea.kind") != KIND:
                return None, f"{path} is not an ID-EA optimiser state"
            if identity_checksum is None or metadata.get("idea.identity_checksum") != identity_checksum:
                return None, f"{path} belongs to another save of this identity"
            return {name: handle.get_tensor(name) for name in handle.keys()}, ""
    except Exception as error:  # IdentityFileError, OSError, and safetensors' own error types
        return None, f"{path} is unreadable ({error})"


def restore_optimizer_state(optimizer: torch.optim.Optimizer, named: dict[str, torch.Tensor],
                            tensors: dict[str, torch.Tensor]) -> list[str]:
    """Put the saved state back for every trainable tensor it has (matched by name and shape; the
    optimiser must have been built from list(named.values())); returns the names left fresh."""
    state, fresh = {}, []
    for index, (name, param) in enumerate(named.items()):
        saved = {key: tensors.get(f"{name}:{key}") for key in STATE_KEYS}
        if any(value is None for value in saved.values()) or saved["exp_avg"].shape != param.shape:
            fresh.append(name)
            continue
        state[index] = {key: value.clone() for key, value in saved.items()}
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    return fresh

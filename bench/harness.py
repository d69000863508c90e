"""The real ComfyUI host inside the benchmark process, on the chosen device, in a throw-away base dir.

The host is started exactly as the tests start it (tests/support/inprocess_host.py), with the device
mode chosen here. The node writes identity files into the host's models/ folders, so the base
directory is always a fresh temporary one that the caller removes.
"""
from __future__ import annotations

import logging
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

log = logging.getLogger(__name__)


class DeviceUnavailable(RuntimeError):
    """The requested device cannot run the benchmarks; the message says why and what to do."""


def add_test_support_to_path() -> None:
    """tests/support holds the tiny checkpoint, synthetic face packs and host paths the bench reuses."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


def check_device(device: str) -> None:
    """Refuse early and clearly, before the host is imported, when the device is not usable."""
    if device not in ("cpu", "cuda"):
        raise DeviceUnavailable(f"--device must be cpu or cuda, got {device!r}")
    if device == "cpu":
        return
    import torch
    if not torch.cuda.is_available():
        raise DeviceUnavailable(
            "--device cuda was asked for but torch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). Run on a GPU machine, "
            "or use --device cpu (add --tiny for the quick CPU check).")


def start_host(device: str, base: pathlib.Path):
    """Import the host with the pack loaded from base/custom_nodes; returns tests' InProcessHost
    (whose run(node_id, **inputs) executes a node the way the executor does)."""
    add_test_support_to_path()
    from support.inprocess_host import start_inprocess_host
    host = start_inprocess_host(pathlib.Path(base), cpu=device == "cpu")
    import comfy.model_management as mm
    log.info("host started on %s (base %s)", mm.get_torch_device(), host.base)
    return host

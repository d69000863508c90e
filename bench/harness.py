"""The real ComfyUI host inside the benchmark process, on the chosen device, in a throw-away base dir.

Why not tests/support/inprocess_host.start_inprocess_host: it always selects CPU mode. The steps are
the same (device mode and base directory set before any comfy import, the host's `utils` package
first, then `nodes` and the host's own custom-node loader), with the device left to the caller. The
node writes identity files into the host's models/ folders, so the base directory is always a fresh
temporary one that the caller removes.
"""
from __future__ import annotations

import asyncio
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
    from support import paths
    from support.inprocess_host import InProcessHost
    if "comfy.model_management" in sys.modules:
        raise RuntimeError("the host was imported before its device was chosen")
    comfy_dir = str(paths.comfyui_dir())
    if comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    base = paths.make_base_dir(pathlib.Path(base))
    from comfy.cli_args import args
    args.cpu = device == "cpu"
    args.base_directory = str(base)
    import folder_paths
    import utils.install_util  # noqa: F401  (the host's utils package before comfy/ shadows it)

    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    pack_name = str(base / "custom_nodes" / "ComfyUI-ID-EA").replace(".", "_x_")
    if pack_name not in sys.modules:
        raise RuntimeError("the host did not load the ID-EA pack; see the log above")
    import comfy.model_management as mm
    log.info("host started on %s (base %s)", mm.get_torch_device(), base)
    return InProcessHost(base=base, nodes=nodes, pack=sys.modules[pack_name], folder_paths=folder_paths)

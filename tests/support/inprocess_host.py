"""Import the real ComfyUI into the test process and load this pack through the host's own loader."""
from __future__ import annotations

import asyncio
import importlib
import pathlib
import sys
from dataclasses import dataclass
from types import ModuleType

from support import paths


@dataclass
class InProcessHost:
    base: pathlib.Path  # the --base-directory the host was pointed at
    nodes: ModuleType  # the host's `nodes` module (NODE_CLASS_MAPPINGS, core nodes)
    pack: ModuleType  # this pack, as the host imported it
    folder_paths: ModuleType

    def node(self, node_id: str):
        return self.nodes.NODE_CLASS_MAPPINGS[node_id]

    def pack_module(self, dotted: str) -> ModuleType:
        """A submodule of the pack under the host's module name (imported if the host has not yet), e.g.
        "idea.adapter": the standalone `idea` package is another copy, whose classes differ."""
        return importlib.import_module(f"{self.pack.__name__}.{dotted}")

    def face_embedding(self, dim: int = 512, rows: int = 1, seed: int = 0, model_name: str = "syn"):
        """A FaceEmbedding (the pack's own class) of seeded random rows, for tests that need no photo."""
        import torch
        raw = torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed))
        return self.pack_module("idea.face_embedding").FaceEmbedding.from_rows(
            raw, model_name, torch.ones(rows), torch.zeros(rows, 5, 2), torch.zeros(rows, 4))

    def run(self, node_id: str, **inputs):
        """Execute a node the way the executor does (v3 nodes through their classmethod) and
        return its outputs as a tuple."""
        import torch
        cls = self.node(node_id)
        with torch.inference_mode():
            if hasattr(cls, "GET_SCHEMA"):
                out = cls.execute(**inputs)
                return tuple(out.args) if hasattr(out, "args") else tuple(out)
            return tuple(getattr(cls(), cls.FUNCTION)(**inputs))


_HOST: InProcessHost | None = None


def start_inprocess_host(base: pathlib.Path, cpu: bool = True) -> InProcessHost:
    """Once per process: the device mode and the base directory must be set before any comfy import
    (tests use the CPU; the benchmarks may pick a GPU)."""
    global _HOST
    if _HOST is not None:
        return _HOST
    if "comfy.model_management" in sys.modules:
        raise RuntimeError("the host was imported before its device mode and base directory were set")
    comfy_dir = str(paths.comfyui_dir())
    if comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    base = paths.make_base_dir(base)
    from comfy.cli_args import args
    args.cpu = cpu
    args.base_directory = str(base)
    # Import the host's `utils` package first, as main.py does: later imports put comfy/ on sys.path,
    # where comfy/utils.py would otherwise shadow it (and core nodes_images.py would fail to load).
    import utils.install_util  # noqa: F401
    import folder_paths
    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    pack_dir = str(base / "custom_nodes" / "ComfyUI-ID-EA")
    pack_name = pack_dir.replace(".", "_x_")
    if pack_name not in sys.modules:
        raise RuntimeError(f"the host did not load the pack from {pack_dir}; see the log above")
    _HOST = InProcessHost(base=base, nodes=nodes, pack=sys.modules[pack_name], folder_paths=folder_paths)
    return _HOST

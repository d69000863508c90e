"""The pack's import layers, read from the source with `ast` (no host needed).

- nodes/*.py is the node list: one module per node registered by extension.py, plus __init__,
  extension and types, so `ls nodes/*.py` shows the product at a glance;
- no node module imports another node module (shared code lives in a subpackage);
- a subpackage of nodes/ never imports a node module, and imports only the sibling subpackages its
  docstring allows (SUBPACKAGE_MAY_IMPORT mirrors those docstrings);
- idea/ never imports ComfyUI (comfy, comfy_api, comfy_extras, folder_paths, the host's `nodes`) nor
  anything of the pack's nodes/.

Every import counts, including those inside functions. The checks run on a copy of the tree with
one import added too, so each can be seen to fail.
"""
from __future__ import annotations

import ast
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOT_NODES = {"__init__", "extension", "types"}
HOST_PACKAGES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "nodes", "server",
                 "execution"}
SUBPACKAGE_MAY_IMPORT = {"host": set(), "schema": {"host"}, "patching": set(), "training": {"host", "patching"}}

pytestmark = pytest.mark.standalone


def module_name(root: pathlib.Path, path: pathlib.Path) -> str:
    """'nodes.training.trainer' for nodes/training/trainer.py (a package: its __init__'s name)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: pathlib.Path, path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file; relative imports resolved within the pack
    (the repo root is the pack), `from . import x` counted as importing the module x."""
    here = module_name(root, path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module
            else:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            found.append((node.lineno, base))
            # `from .pkg import name` may import the submodule pkg.name
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def pack_modules(root: pathlib.Path, under: str) -> list[pathlib.Path]:
    return sorted((root / under).rglob("*.py"))


def registered_node_modules(root: pathlib.Path) -> set[str]:
    """The modules extension.py takes the classes of get_node_list from."""
    tree = ast.parse((root / "nodes" / "extension.py").read_text())
    listed = {n.id for f in ast.walk(tree) if isinstance(f, ast.AsyncFunctionDef) and f.name == "get_node_list"
              for n in ast.walk(f) if isinstance(n, ast.Name)}
    return {f"nodes.{node.module}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
            and any(alias.name in listed for alias in node.names)}


def node_modules(root: pathlib.Path) -> set[str]:
    return {f"nodes.{p.stem}" for p in (root / "nodes").glob("*.py") if p.stem not in NOT_NODES}


def within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def violations(root: pathlib.Path) -> list[str]:
    found = []
    nodes = node_modules(root)
    registered = registered_node_modules(root)
    if nodes != registered:
        found.append(f"nodes/*.py must be the registered node modules plus {sorted(NOT_NODES)}: "
                     f"not registered {sorted(nodes - registered)}, "
                     f"registered but missing {sorted(registered - nodes)}")
    for path in pack_modules(root, "nodes"):
        me = module_name(root, path)
        where = f"{path.relative_to(root)}"
        sub = path.parent.name if path.parent != root / "nodes" else None
        for line, target in imports(root, path):
            hit = next((n for n in nodes if within(target, n)), None)
            if me in nodes and hit and hit != me:
                found.append(f"{where}:{line}: node module imports node module {hit}")
            if sub is not None and hit:
                found.append(f"{where}:{line}: subpackage nodes.{sub} imports node module {hit}")
            if sub is not None and target.startswith("nodes."):
                other = target.split(".")[1]
                allowed = SUBPACKAGE_MAY_IMPORT.get(sub, set())
                if other in SUBPACKAGE_MAY_IMPORT and other != sub and other not in allowed:
                    found.append(f"{where}:{line}: nodes.{sub} imports nodes.{other}, "
                                 "which its docstring does not allow")
    for path in pack_modules(root, "idea"):
        for line, target in imports(root, path):
            top = target.split(".")[0]
            if top in HOST_PACKAGES:  # the pack's own nodes/ resolves to "nodes..." too
                found.append(f"{path.relative_to(root)}:{line}: idea/ imports {target}")
    return sorted(set(found))


def test_the_tree_keeps_its_layers():
    assert violations(REPO) == []


def test_every_subpackage_of_nodes_has_its_rules():
    """A new subpackage is added to SUBPACKAGE_MAY_IMPORT (and says its rules in its docstring)."""
    subpackages = {p.parent.name for p in (REPO / "nodes").glob("*/__init__.py")}
    assert subpackages == set(SUBPACKAGE_MAY_IMPORT)
    for name in subpackages:
        assert "May import" in ast.get_docstring(ast.parse((REPO / "nodes" / name / "__init__.py").read_text()))


@pytest.fixture
def tree_copy(tmp_path):
    root = tmp_path / "pack"
    for part in ("nodes", "idea"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__", "data", "*.onnx"))
    assert violations(root) == []
    return root


BREAKS = {
    "node imports node": ("nodes/apply_id_adapter_conditioning.py",
                          "from .apply_id_adapter import sigma_window\n", "node module imports node module"),
    "node imports node lazily": ("nodes/learn_id_token.py",
                                 "def later():\n    from . import load_identity\n", "node module imports node module"),
    "idea imports the host": ("idea/identity.py", "import comfy.model_management\n", "idea/ imports comfy"),
    "idea imports folder_paths": ("idea/anchor.py", "def later():\n    import folder_paths\n",
                                  "idea/ imports folder_paths"),
    "idea imports the pack's nodes": ("idea/adapter.py", "from ..nodes.patching import adapter_patch\n",
                                      "idea/ imports nodes"),
    "subpackage imports a node": ("nodes/training/trainer.py", "from ..learn_id_token import snapshot\n",
                                  "subpackage nodes.training imports node module"),
    "subpackage imports a sibling it may not": ("nodes/host/model_arch.py",
                                                "from ..training.precision import PRECISIONS\n",
                                                "nodes.host imports nodes.training"),
    "a helper module among the nodes": ("nodes/helpers.py", "X = 1\n", "not registered ['nodes.helpers']"),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_break_is_caught(tree_copy, case):
    file, added, expected = BREAKS[case]
    path = tree_copy / file
    path.write_text((path.read_text() if path.exists() else "") + "\n" + added)
    found = violations(tree_copy)
    assert any(expected in v for v in found), found

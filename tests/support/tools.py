"""The tools/ package (the workflow generators), for tests that use what they make.

tools/ is run as a package from the repository root (`python -m tools.make_workflows`); the tests keep
the repository root off sys.path (its nodes/ would shadow the host's `nodes`), so the package is
imported from its folder, under its own name `tools`.
"""
from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys
from types import ModuleType

from support import paths

FOLDER = paths.REPO / "tools"


def tool(name: str) -> ModuleType:
    """tools/<name>.py as tools.<name>, imported once (registered in sys.modules: its dataclasses need that)."""
    package = sys.modules.get("tools")
    if package is None:
        spec = importlib.util.spec_from_file_location("tools", FOLDER / "__init__.py",
                                                      submodule_search_locations=[str(FOLDER)])
        package = importlib.util.module_from_spec(spec)
        sys.modules["tools"] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules["tools"]
            raise
    elif pathlib.Path(package.__file__).resolve().parent != FOLDER.resolve():
        raise RuntimeError(f"another module named 'tools' is imported ({package.__file__}), not {FOLDER}")
    return importlib.import_module(f"tools.{name}")

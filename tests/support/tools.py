"""The scripts in tools/ as modules (tools/ is no package), for tests that use what they make."""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from support import paths


def tool(name: str) -> ModuleType:
    """tools/<name>.py, imported once (registered in sys.modules: its dataclasses need that)."""
    module_name = f"idea_tools_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, paths.REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return sys.modules[module_name]

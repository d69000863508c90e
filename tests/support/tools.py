"""The tools/ package (the workflow generators), for tests that use what they make.

tools/ runs as a package from the repository root (`python -m tools.make_workflows`); under pytest,
conftest.py imports it from its folder (the tests keep the repository root off sys.path).
"""
from __future__ import annotations

import importlib
from types import ModuleType


def tool(name: str) -> ModuleType:
    """tools/<name>.py, as the module tools.<name>."""
    return importlib.import_module(f"tools.{name}")

"""The tests' harness (tests/support: the real server, the web frontend in headless Chromium) for the
tools that drive them, so tests and tools share one harness rather than two copies.

It is imported under the name its own modules and the tests use, `support`, from its folder rather
than through sys.path; under pytest the tests' import is reused.
"""
from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys
from types import ModuleType

SUPPORT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "support"


def support(name: str) -> ModuleType:
    """tests/support/<name>.py, as the module support.<name>."""
    if "support" not in sys.modules:
        spec = importlib.util.spec_from_file_location("support", SUPPORT / "__init__.py",
                                                      submodule_search_locations=[str(SUPPORT)])
        package = importlib.util.module_from_spec(spec)
        sys.modules["support"] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules["support"]
            raise
    return importlib.import_module(f"support.{name}")

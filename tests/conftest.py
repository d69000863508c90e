"""Test harness: a real ComfyUI host, in-process and as a server, plus cached fixtures.

Paths come from .host/env.sh (written by tools/provision.sh; `make test` sources it). The host is
started only by the tests that ask for it, so the plain-torch tests of idea/ stay fast.
"""
from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the `support` helpers

from support import paths  # noqa: E402


def _load_standalone(package: str):
    """Import the repo's folder `package` as the top-level package of that name without putting the
    repo root on sys.path (the repo's own nodes/ would shadow the host's `nodes` module)."""
    if package in sys.modules:
        return sys.modules[package]
    spec = importlib.util.spec_from_file_location(
        package, REPO / package / "__init__.py", submodule_search_locations=[str(REPO / package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    spec.loader.exec_module(module)
    return module


_load_standalone("idea")
_load_standalone("tools")  # the workflow generators (tests/support/tools.py)


@pytest.fixture(scope="session")
def cache_dir() -> pathlib.Path:
    return paths.cache_dir()


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The real ComfyUI, imported in this process with this pack loaded through its own loader."""
    from support.inprocess_host import start_inprocess_host
    return start_inprocess_host(tmp_path_factory.mktemp("comfy-base"))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real ComfyUI server (main.py) with this pack, on a free loopback port."""
    from support.server import ComfyServer
    srv = ComfyServer(tmp_path_factory.mktemp("server-base"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def picture_server(server):
    """The server with the pictures the bundled workflows' Load Image nodes name (without them the
    frontend's previews answer 404 errors)."""
    from support import workflow_fixtures
    workflow_fixtures.install_pictures(server.base / "input")
    return server


@pytest.fixture(scope="module")
def workflow_server(server, cache_dir):
    """The server with the stand-ins of the bundled workflows' files (support/workflow_fixtures.install):
    the tiny checkpoint and ControlNet, the real face pack, the pictures."""
    from support import workflow_fixtures
    workflow_fixtures.install(server.base, cache_dir)
    return server

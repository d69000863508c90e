"""The pack as users install it: registry metadata, `make run`, a face stack without insightface."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
import urllib.request

from support import paths
from support.host_copy import isolated_host_env
from support.server import free_port

REPO = paths.REPO


def _validate(folder: pathlib.Path) -> subprocess.CompletedProcess:
    comfy = pathlib.Path(sys.executable).parent / "comfy"
    return subprocess.run([str(comfy), "--skip-prompt", "--no-enable-telemetry", "node", "validate"],
                          cwd=folder, capture_output=True, text=True, timeout=120)


def test_comfy_node_validate_passes_on_the_pack():
    result = _validate(REPO)
    assert result.returncode == 0 and "passed" in result.stdout + result.stderr, result.stdout + result.stderr


def test_comfy_node_validate_rejects_an_empty_version(tmp_path):
    """The check above can fail: the same validator refuses a pyproject without a version."""
    shutil.copy(REPO / "LICENSE", tmp_path / "LICENSE")
    text = (REPO / "pyproject.toml").read_text()
    emptied = re.sub(r'(?m)^version = "[^"]+"', 'version = ""', text, count=1)
    assert emptied != text
    (tmp_path / "pyproject.toml").write_text(emptied)
    result = _validate(tmp_path)
    assert "version is empty" in (result.stdout + result.stderr)


def test_registry_metadata_matches_requirements_and_pack_version():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "comfyui-id-ea"
    assert meta["tool"]["comfy"]["DisplayName"]
    reqs = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    def normalise(requirement: str) -> str:
        return requirement.replace('"', "'").replace(" ", "")
    assert sorted(map(normalise, reqs)) == sorted(map(normalise, meta["project"]["dependencies"]))
    version_file = (REPO / "idea" / "version.py").read_text()
    assert f'PACK_VERSION = "{meta["project"]["version"]}"' in version_file


def test_make_run_serves_the_ui_and_lists_the_nodes(tmp_path):
    """On a copy of the provisioned host (IDEA_HOST_DIR), so the shared one is never re-linked."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), **isolated_host_env(tmp_path / "host"))
    proc = subprocess.Popen(["make", "run"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        info = None
        while time.monotonic() < deadline and info is None:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-4000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/object_info", timeout=30) as r:
                    info = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert info is not None, "make run did not serve /object_info in time"
        assert '"IDEA_FaceIDEmbed"' in info
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert b"<html" in r.read().lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_pack_needs_no_insightface_and_explains_a_missing_onnxruntime(tmp_path):
    """With insightface unimportable throughout, and onnxruntime too at first, the pack lists its nodes
    and FaceID Embed says which pip line fixes the missing onnxruntime; once onnxruntime imports, it
    embeds a face without insightface."""
    script = textwrap.dedent(f"""
        import pathlib, sys
        sys.modules["insightface"] = sys.modules["onnxruntime"] = None  # `import` fails, find_spec says absent
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from support.inprocess_host import start_inprocess_host
        from support.synthetic_faces import face_in_box, write_synthetic_pack
        host = start_inprocess_host(pathlib.Path({str(tmp_path)!r}))
        assert "IDEA_FaceIDEmbed" in host.nodes.NODE_CLASS_MAPPINGS
        write_synthetic_pack(host.base / "models", "antelopev2", [face_in_box(60, 60, 120)], image_hw=(256, 256))
        import torch
        run = lambda: host.run("IDEA_FaceIDEmbed", images=torch.rand(1, 256, 256, 3), model_pack="antelopev2",
                               provider="CPU", face_selection="largest", face_index=0, detection_size=640,
                               crop_size=128)
        try:
            run()
        except Exception as exc:
            print("ERROR:", exc)
        del sys.modules["onnxruntime"]
        print("FACES:", run()[0].count, sys.modules["insightface"] is None)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert "ERROR:" in result.stdout and "FACES:" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    message = result.stdout.split("ERROR:", 1)[1].split("FACES:")[0]
    assert "onnxruntime is not installed" in message and "pip install onnxruntime-gpu" in message
    assert result.stdout.split("FACES:", 1)[1].split() == ["1", "True"]  # insightface never imported


NODES = {"IDEA_FaceIDEmbed": "FaceID Embed (Face Embedding)", "IDEA_IDEnhancer": "ID-Enhancer (New Identity)",
         "IDEA_LearnIDToken": "Learn ID Token (Textual Inversion)",
         "IDEA_ApplyIDAdapter": "Apply ID-Adapter (Identity)",
         "IDEA_LoadIdentity": "Load Identity", "IDEA_FaceSimilarity": "Face Similarity",
         "IDEA_ApplyIDAdapterConditioning": "Apply ID-Adapter to Conditioning"}


def test_every_node_registers_with_its_display_name_and_tooltips(host):
    """A schema error in one node stops the host from registering it (and every node after it) with
    only a log warning; this catches that."""
    registered = {k for k in host.nodes.NODE_CLASS_MAPPINGS if k.startswith("IDEA_")}
    assert registered == set(NODES)
    for node_id, display in NODES.items():
        assert host.nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id] == display
        spec = host.node(node_id).INPUT_TYPES()
        for section in ("required", "optional"):
            for name, (_, options) in spec.get(section, {}).items():
                assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_the_readme_clones_the_declared_repository_and_names_the_real_template_menus():
    url = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"git clone {url} ComfyUI/custom_nodes/ComfyUI-ID-EA" in readme
    # frontend 1.32.9 has no Workflow menu: templates are behind the side bar's Templates button and
    # the logo menu's Browse Templates
    assert "Workflow → Browse" not in readme
    assert "**Templates** button" in readme and "**Browse Templates**" in readme

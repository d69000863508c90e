"""tools/provision.sh: idempotent, and pointed at another host by COMFYUI_PATH or by sitting in a
ComfyUI's custom_nodes/."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from support import paths

REPO = paths.REPO


def provision(env_extra: dict, script=REPO / "tools" / "provision.sh") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "IDEA_PYTHON", "IDEA_HOST_DIR")}
    env.update(env_extra)
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=900)


def env_file(host_dir) -> dict:
    values = {}
    for line in (host_dir / "env.sh").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value.strip('"')
    return values


def test_a_second_run_installs_nothing():
    result = provision({})
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [line for line in result.stderr.splitlines() if line.startswith("[provision]")]
    assert steps and steps[-1].startswith("[provision] ready"), result.stderr[-2000:]
    assert not any(word in line for line in steps for word in ("installing", "extracting", "creating")), steps


def fake_comfyui(root):
    """A folder that looks like a ComfyUI checkout to the script: main.py, requirements, custom_nodes."""
    real = paths.comfyui_dir()
    root.mkdir(parents=True)
    shutil.copy(real / "main.py", root / "main.py")
    shutil.copy(real / "requirements.txt", root / "requirements.txt")
    (root / "custom_nodes").mkdir()
    return root


def test_comfyui_path_selects_another_host(tmp_path):
    other = fake_comfyui(tmp_path / "OtherComfy")
    host_dir = tmp_path / "host"
    result = provision({"COMFYUI_PATH": str(other), "IDEA_PYTHON": sys.executable, "IDEA_HOST_DIR": str(host_dir)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert env_file(host_dir)["IDEA_COMFYUI"] == str(other)
    assert os.path.realpath(other / "custom_nodes" / "ComfyUI-ID-EA") == str(REPO)
    assert not (host_dir / "ComfyUI").exists()  # nothing extracted when a host is given


def test_a_pack_inside_custom_nodes_uses_that_comfyui(tmp_path):
    enclosing = fake_comfyui(tmp_path / "UserComfy")
    (enclosing / "custom_nodes" / "ComfyUI-ID-EA").symlink_to(REPO, target_is_directory=True)
    host_dir = tmp_path / "host"
    script = enclosing / "custom_nodes" / "ComfyUI-ID-EA" / "tools" / "provision.sh"
    result = provision({"IDEA_PYTHON": sys.executable, "IDEA_HOST_DIR": str(host_dir)}, script=script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert env_file(host_dir)["IDEA_COMFYUI"] == str(enclosing)

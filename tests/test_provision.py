"""tools/provision.sh and the Makefile: `make run` installs only what running needs and `make test`
adds the tests' packages and chromium, a second run installs nothing, and COMFYUI_PATH or an enclosing
ComfyUI selects the host. Every run here uses its own IDEA_HOST_DIR (a copy of the provisioned host, or
an empty folder with COMFYUI_PATH and IDEA_PYTHON), so the shared host is never touched."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from support import paths
from support.host_copy import provisioned_copy

REPO = paths.REPO


def provision(env_extra: dict, script=REPO / "tools" / "provision.sh", args=(), make=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "IDEA_PYTHON", "IDEA_HOST_DIR")}
    env.update(env_extra)
    command = ["make", "-s", make] if make else ["bash", str(script), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)


def steps(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("[provision]")]
    assert lines and lines[-1].startswith("[provision] ready"), result.stderr[-2000:]
    return lines


def env_file(host_dir) -> dict:
    values = {}
    for line in (host_dir / "env.sh").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value.strip('"')
    return values


def test_a_second_run_installs_nothing(tmp_path):
    host_dir = provisioned_copy(tmp_path / "host")
    provision({"IDEA_HOST_DIR": str(host_dir)}, args=["--with-tests"])  # may catch up on changed requirements
    again = steps(provision({"IDEA_HOST_DIR": str(host_dir)}, args=["--with-tests"]))
    assert not any(word in line for line in again for word in ("installing", "extracting", "creating")), again
    assert os.path.realpath(host_dir / "ComfyUI" / "custom_nodes" / "ComfyUI-ID-EA") == str(REPO)


def test_make_run_provisions_only_what_running_needs_and_make_test_adds_the_rest(tmp_path):
    host_dir = tmp_path / "host"
    env = {"COMFYUI_PATH": str(fake_comfyui(tmp_path / "Comfy")), "IDEA_PYTHON": sys.executable,
           "IDEA_HOST_DIR": str(host_dir)}
    for_running = steps(provision(env, make="provision"))  # what `make run` runs first
    assert any("installing the pack's requirements" in line for line in for_running), for_running
    assert not any("tests" in line or "chromium" in line for line in for_running), for_running
    stamps = sorted(p.name for p in (host_dir / "stamps").iterdir())
    assert any(s.startswith("pack-req-") for s in stamps) and not any(s.startswith("test-req-") for s in stamps)

    for_tests = steps(provision(env, make="provision-tests"))  # what `make test` runs first
    assert any("installing the tests' requirements" in line for line in for_tests), for_tests
    assert any("chromium" in line for line in for_tests), for_tests
    assert not any("pack's requirements" in line for line in for_tests), for_tests  # already there
    assert any(p.name.startswith("test-req-") for p in (host_dir / "stamps").iterdir())


def test_the_make_targets_call_the_provisioner_as_described():
    dry = {target: subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True).stdout
           for target in ("run", "test")}
    assert "tools/provision.sh\n" in dry["run"] and "--with-tests" not in dry["run"], dry["run"]
    assert "tools/provision.sh --with-tests" in dry["test"], dry["test"]


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

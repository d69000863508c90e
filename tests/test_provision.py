"""tools/provision.sh and the Makefile: `make run` installs only what running needs and `make test`
adds the tests' packages and chromium, a second run installs nothing, COMFYUI_PATH or an enclosing
ComfyUI selects the host, and IDEA_COMFYUI_SOURCE builds one from a source tree. Every run here uses
its own IDEA_HOST_DIR (a copy of the provisioned host, or an empty folder with COMFYUI_PATH and
IDEA_PYTHON), so the shared host is never touched.

A Python given by IDEA_PYTHON (here: the suite's own) is a user's: provisioning only adds what the
pack and its tests lack and changes nothing it has. Runs with IDEA_PYTHON here have no package index
(PIP_NO_INDEX), so a provisioner that tried to change that Python would fail instead of changing it.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

from support import paths
from support.host_copy import isolated_host_env

REQUIREMENT_NAME = r"\s*([A-Za-z0-9_.-]+)"  # a requirement line's distribution name

REPO = paths.REPO
HOST_CHOICE = ("COMFYUI_PATH", "IDEA_PYTHON", "IDEA_HOST_DIR", "IDEA_COMFYUI_SOURCE", "IDEA_FRONTEND")


def provision(env_extra: dict, script=REPO / "tools" / "provision.sh", args=(), make=None,
              find_links: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    """Run the provisioner; with IDEA_PYTHON, pip can reach only `find_links` (no index at all)."""
    env = {k: v for k, v in os.environ.items() if k not in HOST_CHOICE}
    env.update(env_extra)
    command = ["make", "-s", make] if make else ["bash", str(script), *args]
    with tempfile.TemporaryDirectory() as nothing:
        if "IDEA_PYTHON" in env_extra:
            env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(find_links or nothing))
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
    """On the host the suite runs on, whichever it is (the same variables select it again)."""
    env = isolated_host_env(tmp_path / "host")
    provision(env, args=["--with-tests"])  # may catch up on changed requirements
    again = steps(provision(env, args=["--with-tests"]))
    busy = ("installing", "extracting", "creating", "copying")
    assert not any(word in line for line in again for word in busy), again
    comfy = pathlib.Path(env_file(pathlib.Path(env["IDEA_HOST_DIR"]))["IDEA_COMFYUI"])
    assert comfy == paths.comfyui_dir() or comfy == pathlib.Path(env["IDEA_HOST_DIR"]) / "ComfyUI"
    assert os.path.realpath(comfy / "custom_nodes" / "ComfyUI-ID-EA") == str(REPO)


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
    assert "tools/provision.sh)" in dry["run"] and "--with-tests" not in dry["run"], dry["run"]
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


def fake_source_tree(root, version: str = "0.3.99"):
    """A ComfyUI-like source tree with a version file, as an upstream checkout has."""
    fake_comfyui(root)
    (root / "comfyui_version.py").write_text(f'__version__ = "{version}"\n')
    return root


def test_a_source_archive_becomes_a_host_of_its_own(tmp_path):
    tree = fake_source_tree(tmp_path / "src" / "ComfyUI-0.3.99")
    archive = tmp_path / "ComfyUI-0.3.99.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(tree.parent), tree.name], check=True)
    host_dir = tmp_path / "host"
    env = {"IDEA_COMFYUI_SOURCE": str(archive), "IDEA_PYTHON": sys.executable, "IDEA_HOST_DIR": str(host_dir)}
    first = steps(provision(env))
    assert any("copying ComfyUI from" in line for line in first), first
    assert "ComfyUI 0.3.99" in first[-1]
    comfy = host_dir / "ComfyUI"
    assert env_file(host_dir)["IDEA_COMFYUI"] == str(comfy) and (comfy / "main.py").is_file()
    assert os.path.realpath(comfy / "custom_nodes" / "ComfyUI-ID-EA") == str(REPO)
    again = steps(provision(env))
    assert not any("copying" in line for line in again), again


def test_a_source_folder_is_copied_and_left_as_it_was(tmp_path):
    tree = fake_source_tree(tmp_path / "MyComfy")
    host_dir = tmp_path / "host"
    env = {"IDEA_COMFYUI_SOURCE": str(tree), "IDEA_PYTHON": sys.executable, "IDEA_HOST_DIR": str(host_dir)}
    steps(provision(env))
    assert (host_dir / "ComfyUI" / "main.py").is_file()
    assert list((tree / "custom_nodes").iterdir()) == []  # the pack is linked into the copy only


def test_a_source_without_comfyui_is_refused_by_name(tmp_path):
    empty = tmp_path / "NotComfy"
    empty.mkdir()
    result = provision({"IDEA_COMFYUI_SOURCE": str(empty), "IDEA_PYTHON": sys.executable,
                        "IDEA_HOST_DIR": str(tmp_path / "host")})
    assert result.returncode != 0 and "holds no ComfyUI tree" in result.stderr and str(empty) in result.stderr


def test_the_default_host_folder_follows_the_source_name(tmp_path):
    """Without IDEA_HOST_DIR, IDEA_COMFYUI_SOURCE=.../ComfyUI-X.tar.gz provisions .hosts/ComfyUI-X/,
    beside (never over) the default host's .host/."""
    name = f"ComfyUI-test-{os.getpid()}"
    tree = fake_source_tree(tmp_path / name)
    host_dir = REPO / ".hosts" / name
    try:
        result = provision({"IDEA_COMFYUI_SOURCE": str(tree), "IDEA_PYTHON": sys.executable})
        steps(result)
        assert result.stdout.strip() == str(host_dir / "env.sh")  # what make sources
        assert env_file(host_dir)["IDEA_COMFYUI"] == str(host_dir / "ComfyUI")
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)


# --- a Python given by IDEA_PYTHON is never changed ------------------------------------------------

def freeze(python) -> list[str]:
    return subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def installed_version(name: str) -> str | None:
    import importlib.metadata
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_provisioning_never_changes_a_python_given_by_idea_python(tmp_path):
    """A user's report: a ComfyUI whose frontend is newer than its requirements pin (as after
    `pip install -U comfyui-frontend-package`), and whose torch and numpy differ from the pins too.
    Provisioning for running and for the tests (`make run`, `make test`, and the tests here, which
    provision only that way) leaves every package of that Python exactly as it was."""
    comfy = fake_comfyui(tmp_path / "UserComfy")
    pins = {"comfyui-frontend-package": "1.0.0", "torch": "2.0.0", "numpy": "1.25.0"}
    for name, version in pins.items():  # other versions than this Python has (or none it has)
        assert installed_version(name) != version
    kept = [line for line in (comfy / "requirements.txt").read_text().splitlines()
            if not re.match(REQUIREMENT_NAME, line) or canonical(re.match(REQUIREMENT_NAME, line)[1]) not in pins]
    (comfy / "requirements.txt").write_text("\n".join(kept + [f"{n}=={v}" for n, v in pins.items()]) + "\n")
    host_dir = tmp_path / "host"
    env = {"COMFYUI_PATH": str(comfy), "IDEA_PYTHON": sys.executable, "IDEA_HOST_DIR": str(host_dir)}
    before = freeze(sys.executable)
    for target in ("provision", "provision-tests"):
        lines = steps(provision(env, make=target))
        assert any("leaving the host's requirements to" in line for line in lines), lines
    assert freeze(sys.executable) == before
    assert env_file(host_dir)["IDEA_HOST_FRONTEND"] == (installed_version("comfyui-frontend-package") or "")


def wheel(folder: pathlib.Path, name: str, version: str, module: str) -> pathlib.Path:
    """A minimal pure-Python wheel holding `module/__init__.py`."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    files = {f"{module}/__init__.py": f"VERSION = {version!r}\n",
             f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: idea-tests\nRoot-Is-Purelib: true\n"
                                          "Tag: py3-none-any\n")}
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{f},,\n" for f in [*files, f"{dist}.dist-info/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def pack_with_requirements(root: pathlib.Path, requirements: str) -> pathlib.Path:
    """A copy of the pack's provisioning tools beside other requirements (what provisioning installs)."""
    (root / "tools").mkdir(parents=True)
    (root / "tests").mkdir()
    for tool in ("provision.sh", "installed_pins.py"):
        shutil.copy(REPO / "tools" / tool, root / "tools" / tool)
    (root / "requirements.txt").write_text(requirements)
    (root / "tests" / "requirements.txt").write_text("idea-probe-test\n")
    return root / "tools" / "provision.sh"


def test_idea_python_gets_what_it_lacks_and_nothing_it_has_is_changed(tmp_path):
    """In a throw-away venv holding an onnxruntime and an old probe package: the pack's requirements add
    a missing package, leave the old one (a newer one is on offer), add no onnxruntime-gpu beside the
    onnxruntime; a requirement needing another version of what is installed stops with the fix."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    probes = (("onnxruntime", "1.0", "onnxruntime"), ("onnxruntime-gpu", "1.0", "onnxruntime"),
              ("idea-probe-old", "1.0", "idea_probe_old"), ("idea-probe-old", "2.0", "idea_probe_old"),
              ("idea-probe-new", "1.0", "idea_probe_new"), ("idea-probe-test", "1.0", "idea_probe_test"))
    for name, version, module in probes:
        wheel(wheels, name, version, module)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--find-links", str(wheels),
                    "onnxruntime==1.0", "idea-probe-old==1.0"], check=True)
    before = freeze(python)
    script = pack_with_requirements(tmp_path / "pack", "idea-probe-old\nidea-probe-new\nonnxruntime-gpu\n")
    env = {"COMFYUI_PATH": str(fake_comfyui(tmp_path / "Comfy")), "IDEA_PYTHON": str(python),
           "IDEA_HOST_DIR": str(tmp_path / "host")}
    steps(provision(env, script=script, args=["--with-tests"], find_links=wheels))
    after = freeze(python)
    assert sorted(set(after) - set(before)) == ["idea-probe-new==1.0", "idea-probe-test==1.0"], after
    assert set(before) <= set(after)  # idea-probe-old stays 1.0, no onnxruntime-gpu

    script = pack_with_requirements(tmp_path / "pack2", "idea-probe-old>=2\n")
    result = provision({**env, "IDEA_HOST_DIR": str(tmp_path / "host2")}, script=script, find_links=wheels)
    assert result.returncode != 0 and "never changes a package of a Python given by IDEA_PYTHON" in result.stderr
    assert freeze(python) == after

"""Does `pip install -r requirements.txt` find wheels (no compiler) on every Python and platform users run?

For each platform and Python 3.10-3.13 it evaluates requirements.txt's markers for that platform,
asks pip to resolve the result from wheels only (`pip install --dry-run --only-binary :all:
--platform ... --python-version ...`, which reads the registry's metadata and downloads no wheel) and
prints what would be installed, or pip's error. Needs the package registry. Caveat: pip evaluates the
markers of the dependencies' own requirements for the machine it runs on, not the target.

    python3 tools/wheel_matrix.py [requirements.txt]
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile

from pip._vendor.packaging.markers import Marker
from pip._vendor.packaging.requirements import Requirement

REPO = pathlib.Path(__file__).resolve().parents[1]
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# platform name -> (marker environment, pip --platform tags, newest first)
PLATFORMS = {
    "linux x86_64": ({"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux"},
                     ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                      "manylinux2014_x86_64"]),
    "linux aarch64": ({"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux"},
                      ["manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64",
                       "manylinux2014_aarch64"]),
    "windows x64": ({"sys_platform": "win32", "platform_machine": "AMD64", "platform_system": "Windows"},
                    ["win_amd64"]),
    "macos arm64": ({"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin"},
                    [f"macosx_{v}_0_{a}" for v in (15, 14, 13, 12, 11) for a in ("arm64", "universal2")]),
    "macos x86_64": ({"sys_platform": "darwin", "platform_machine": "x86_64", "platform_system": "Darwin"},
                     [f"macosx_{v}_0_{a}" for v in (15, 14, 13, 12, 11, 10) for a in ("x86_64", "universal2")]
                     + ["macosx_10_15_x86_64", "macosx_10_9_x86_64", "macosx_10_9_universal2"]),
}


def requirements_for(lines: list[str], environment: dict, python: str) -> list[str]:
    """The requirement strings (markers removed) that apply on this platform and Python."""
    chosen = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        env = {**environment, "python_version": python, "python_full_version": f"{python}.0"}
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(env):
            requirement.marker = None
            chosen.append(str(requirement))
    return chosen


def resolve(requirements: list[str], python: str, tags: list[str]) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = pathlib.Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                   "--only-binary", ":all:", "--python-version", python, "--target", str(pathlib.Path(tmp) / "t"),
                   "--report", str(report), *[arg for tag in tags for arg in ("--platform", tag)], *requirements]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
            return False, " | ".join(errors) or proc.stderr[-300:]
        installed = json.loads(report.read_text())["install"]
        return True, ", ".join(f"{item['metadata']['name']}=={item['metadata']['version']}" for item in installed)


def main() -> int:
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "requirements.txt"
    lines = path.read_text().splitlines()
    failures = 0
    for platform, (environment, tags) in PLATFORMS.items():
        for python in PYTHONS:
            ok, what = resolve(requirements_for(lines, environment, python), python, tags)
            failures += not ok
            print(f"{platform:14} {python}: {'wheels' if ok else 'FAILS'}: {what}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

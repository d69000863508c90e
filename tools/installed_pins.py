"""Install into someone else's Python only what is missing: never upgrade, downgrade or add a second onnxruntime.

tools/provision.sh runs this with the Python given by IDEA_PYTHON (a user's ComfyUI), before it
installs the pack's or the tests' requirements there:

    PYTHON tools/installed_pins.py pin REQUIREMENTS CONSTRAINTS_OUT REQUIREMENTS_OUT
    PYTHON tools/installed_pins.py onnxruntimes    (prints the onnxruntime distributions installed)

CONSTRAINTS_OUT pins every distribution that Python has at its installed version, so pip may add
missing packages but fails (instead of changing one) when a requirement needs another version.
REQUIREMENTS_OUT is REQUIREMENTS without its onnxruntime lines when that Python already has an
onnxruntime (onnxruntime, onnxruntime-gpu, onnxruntime-directml...): they share one module, and a
second one breaks the first. Only the standard library and pip's own vendored `packaging` are used.
"""
from __future__ import annotations

import importlib.metadata
import pathlib
import re
import sys

from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
from pip._vendor.packaging.version import InvalidVersion, Version


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, tuple[str, str]]:
    """canonical name -> (name, version) of each installed distribution, the first on sys.path winning
    (the one `import` and pip see)."""
    found: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and canonical(name) not in found:
            found[canonical(name)] = (name, dist.version)
    return found


def onnxruntimes(distributions: dict[str, tuple[str, str]]) -> list[str]:
    """The installed distributions that provide the module `onnxruntime` (by name, then by their files)."""
    found = []
    for key, (name, _) in distributions.items():
        if key == "onnxruntime" or key.startswith("onnxruntime-"):
            files = importlib.metadata.distribution(name).files
            if files is None or any(str(f).replace("\\", "/") == "onnxruntime/__init__.py" for f in files):
                found.append(key)
    return sorted(found)


def pins(distributions: dict[str, tuple[str, str]]) -> list[str]:
    lines = []
    for name, version in distributions.values():
        try:
            Version(version)
        except InvalidVersion:  # a version pip cannot pin; it is left as it is anyway
            continue
        lines.append(f"{name}=={version}")
    return sorted(lines, key=str.lower)


def without_onnxruntime(lines: list[str]) -> list[str]:
    kept = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        try:
            name = canonical(Requirement(text).name) if text and not text.startswith("-") else ""
        except InvalidRequirement:
            name = ""
        if name == "onnxruntime" or name.startswith("onnxruntime-"):
            kept.append(f"# {line}  (left out: this Python has an onnxruntime)")
        else:
            kept.append(line)
    return kept


def pin(requirements: str, constraints_out: str, requirements_out: str) -> None:
    distributions = installed()
    pathlib.Path(constraints_out).write_text("\n".join(pins(distributions)) + "\n")
    lines = pathlib.Path(requirements).read_text().splitlines()
    if onnxruntimes(distributions):
        lines = without_onnxruntime(lines)
    pathlib.Path(requirements_out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["pin"] and len(sys.argv) == 5:
        pin(*sys.argv[2:])
    elif sys.argv[1:] == ["onnxruntimes"]:
        print(" ".join(onnxruntimes(installed())))
    else:
        sys.exit(__doc__)

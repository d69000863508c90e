"""The project's lint settings hold everywhere: ruff with the settings in pyproject.toml ([tool.ruff]:
pyflakes, pycodestyle's errors and warnings, lines of at most 120 characters) finds nothing in any
tracked Python file. Run by `make test`, so CI enforces it on every host; ruff is a test requirement.
Shown failing on a copy with one over-long line, so the check can be seen to bite."""
from __future__ import annotations

import shutil
import subprocess
import sys

from support.paths import REPO


def ruff(folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=folder, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_finds_nothing_with_the_configured_line_length():
    result = ruff(REPO)
    assert result.returncode == 0, f"ruff check (settings in pyproject.toml):\n{result.stdout}{result.stderr}"


def test_a_line_over_the_configured_length_fails(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "long_line.py").write_text(f"WORDS = {'x' * 120!r}\n")
    result = ruff(tmp_path)
    assert result.returncode == 1 and "long_line.py:1:121: E501" in result.stdout, result.stdout + result.stderr

"""The JavaScript the tests run in the frontend's page, kept as .js files in tests/support/js/ so it
reads (and diffs) as JavaScript rather than as Python strings.

Each file holds one function, what `page.evaluate` or `wait_for_function` is given, after a header of
`//` lines saying what it reads and why; the header is not sent. A line `/* include NAME.js */` is
replaced by that file's script (a helper two scripts share). Read once, then cached.
"""
from __future__ import annotations

import functools
import pathlib
import re

FOLDER = pathlib.Path(__file__).with_name("js")
INCLUDE = re.compile(r"/\* include (\w+)\.js \*/")


@functools.cache
def script(name: str) -> str:
    """tests/support/js/<name>.js without its comment header, its includes filled in."""
    lines = (FOLDER / f"{name}.js").read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and lines[0].startswith("//"):
        lines.pop(0)
    return INCLUDE.sub(lambda match: script(match.group(1)), "".join(lines).strip())

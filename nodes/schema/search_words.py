"""The words people type into the node search for what a node does ("face id", "textual inversion",
"PuLID", ...), given to the host as the schema's `search_aliases` where it has that field.

ComfyUI 0.33 has `io.Schema.search_aliases` and sends it in /object_info, where frontends from 1.49 on
search it beside the node's names. ComfyUI 0.3.75's Schema has no such field: passing it there would
stop the node from registering, so there the words are left out (its frontend, 1.32.9, searches names
only; the display names carry the most typed words for it).
"""
from __future__ import annotations

from dataclasses import fields

from comfy_api.latest import io

HOST_TAKES_ALIASES = "search_aliases" in {field.name for field in fields(io.Schema)}


def search_aliases(*words: str) -> dict:
    """For `io.Schema(..., **search_aliases("face id", ...))`: the words where the host takes them."""
    return {"search_aliases": list(words)} if HOST_TAKES_ALIASES else {}

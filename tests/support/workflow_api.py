"""UI workflow (what the frontend saves) -> API prompt (what POST /prompt takes), without a browser.

Why a Python twin of the frontend's `app.graphToPrompt()`: the server tests of the shipped
workflows should not depend on a browser being installed, and a second, independent reading of a
workflow file catches files that only work because the frontend silently repairs them. The rules
below are those of frontend 1.32.9 (tests/test_frontend_harness.py checks them against the real
frontend for every node type the server offers):

- `widgets_values` lists one value per widget in the order of the node's inputs (`input_order`,
  required then optional), counting only widget types (INT, FLOAT, STRING, BOOLEAN, COMBO) that
  are not `forceInput`.
- The frontend adds values that are not inputs: a `control_after_generate` value after an INT
  widget that asks for it (or, when it does not say, is named seed/noise_seed); a control value
  and a filter-list value after a COMBO widget with `control_after_generate`; one "upload" value at
  the end of a node with an image/video upload widget.
- Note, MarkdownNote, Reroute and PrimitiveNode exist only in the frontend: Reroutes pass their
  input link on, a PrimitiveNode gives its value to the widgets it feeds, notes are dropped.
- A STRING widget with `dynamicPrompts` is sent with C-style comments stripped (so a URL's "//"
  cuts the text) and `{a|b}` replaced by a random choice, which this converter refuses.
- Muted nodes (mode 2) are dropped with every input that comes from them; a bypassed node (mode 4)
  hands an input of the requested type on (the same slot first, as the frontend does).
- Subgraph nodes are flattened as the frontend does it: the nodes of their definition enter the
  prompt as "<subgraph node id>:<inner id>", their links followed across the subgraph's edges.
- Anything else is refused (ConversionError), never guessed: hosts from 2026 add widget kinds the
  frontend draws and saves in its own ways (`socketless` inputs such as COLOR or CURVE, dynamic
  inputs such as COMFY_DYNAMICCOMBO_V3 whose sub-widgets are saved too, audio uploads), and some
  node types get their widgets from a frontend extension (FRONTEND_EXTENDED). `unreadable_inputs`
  names them; workflows with such nodes are converted by the frontend's own graphToPrompt.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
UPLOAD_OPTIONS = ("image_upload", "video_upload")
WIDGET_OPTIONS = ("socketless", "component")  # an input the frontend draws as a widget of its own kind
SEED_NAMES = ("seed", "noise_seed")
FRONTEND_ONLY = None  # a widgets_values slot that is not an input (control, filter list, upload)
NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
VIRTUAL_TYPES = NOTE_TYPES | {"Reroute", "PrimitiveNode"}
# Node types whose widgets frontend extensions add or replace (webcam, 3D viewers, remote combos):
# their widgets_values cannot be read from /object_info; use the frontend's graphToPrompt.
FRONTEND_EXTENDED = frozenset({"LoadImageOutput", "WebcamCapture", "Load3D", "Preview3D", "SaveGLB",
                               "PreviewAny", "CustomCombo"})
MODE_NEVER, MODE_BYPASS = 2, 4


class ConversionError(ValueError):
    """The workflow cannot be converted faithfully; the message names the node and the reason."""


def _input_specs(node_info: dict):
    """(name, spec) of a node's inputs in the order the frontend builds its widgets."""
    inputs = node_info.get("input", {})
    order = node_info.get("input_order") or {sec: list(inputs.get(sec, {})) for sec in ("required", "optional")}
    for section in ("required", "optional"):
        for name in order.get(section, []):
            yield name, inputs[section][name]


def _kind(spec) -> str:
    return "COMBO" if isinstance(spec[0], list) else str(spec[0])


def _options(spec) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def widget_layout(node_info: dict) -> list[str | None]:
    """The input name behind each `widgets_values` slot of a node, FRONTEND_ONLY for the others."""
    layout: list[str | None] = []
    upload = False
    for name, spec in _input_specs(node_info):
        kind, opts = _kind(spec), _options(spec)
        if kind not in WIDGET_TYPES or opts.get("forceInput"):
            continue
        layout.append(name)
        if kind == "INT" and opts.get("control_after_generate", name in SEED_NAMES):
            layout.append(FRONTEND_ONLY)
        if kind == "COMBO" and opts.get("control_after_generate"):
            layout += [FRONTEND_ONLY, FRONTEND_ONLY]
        upload = upload or any(opts.get(o) for o in UPLOAD_OPTIONS)
    if upload:
        layout.append(FRONTEND_ONLY)
    return layout


def link_kinds(object_info: dict) -> frozenset[str]:
    """The kinds some node outputs: an input of such a kind is a socket, not a widget."""
    kinds = {part.strip() for info in object_info.values() for out in info.get("output") or []
             if isinstance(out, str) for part in out.split(",")}
    return frozenset(kinds - WIDGET_TYPES)


def unreadable_inputs(node_info: dict, links: frozenset[str]) -> list[str]:
    """"name (kind)" of each input whose widget values this converter cannot place: a kind that is
    neither a classic widget nor a socket (`links`), one drawn as a widget of its own, an unknown upload."""
    out = []
    for name, spec in _input_specs(node_info):
        kind, opts = _kind(spec), _options(spec)
        parts = [part.strip() for part in kind.split(",")]
        socket = kind in WIDGET_TYPES or all(part == "*" or part in links for part in parts)
        uploads = {key for key, on in opts.items() if key.endswith("_upload") and on} - set(UPLOAD_OPTIONS)
        if not socket or uploads or (kind not in WIDGET_TYPES and any(opts.get(o) for o in WIDGET_OPTIONS)):
            out.append(f"{name} ({kind}{', ' + ', '.join(sorted(uploads)) if uploads else ''})")
    return out


_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//.*")
_CHOICE = re.compile(r"(?<!\\)\{")


def dynamic_prompt_value(text: str, where: str) -> str:
    """What the frontend sends for a `dynamicPrompts` text widget, when that is not random."""
    stripped = _COMMENTS.sub("", text)
    if _CHOICE.search(stripped):
        raise ConversionError(f"{where} uses the random-choice syntax {{a|b}}; its prompt differs per run")
    return re.sub(r"\\([{}|])", r"\1", stripped)


def _links(workflow: dict) -> dict[int, tuple[int, int]]:
    """link id -> (origin node id, origin slot); both the array and the object link forms."""
    out = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):
            out[link["id"]] = (link["origin_id"], link["origin_slot"])
        else:
            out[link[0]] = (link[1], link[2])
    return out


def _types_match(a: str, b: str) -> bool:
    """LiteGraph's isValidConnection: equal, a wildcard, or overlapping comma-separated lists."""
    if a in ("*", "") or b in ("*", "") or a == b:
        return True
    return bool({t.strip().upper() for t in str(a).split(",")} & {t.strip().upper() for t in str(b).split(",")})


@dataclass
class _Scope:
    """One graph level: the root, or one subgraph node's definition seen through that node. Its nodes
    go into the prompt as `prefix + id` ("17:5" for node 5 inside subgraph node 17), as the frontend
    names them."""

    prefix: str
    nodes: dict
    links: dict
    instance: dict | None = None  # the subgraph node, in `parent`
    parent: "_Scope | None" = None


SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS = -10, -20  # the ids of a subgraph's input and output nodes


class _Converter:
    def __init__(self, workflow: dict, object_info: dict):
        self.info = object_info
        self.links_kinds = link_kinds(object_info)
        self.definitions = {d["id"]: d for d in (workflow.get("definitions") or {}).get("subgraphs") or []}
        self.root = _Scope("", {n["id"]: n for n in workflow.get("nodes", [])}, _links(workflow))

    def _inner(self, scope: _Scope, node: dict) -> _Scope:
        """The scope of subgraph node `node`."""
        if node.get("mode") in (MODE_NEVER, MODE_BYPASS) or node.get("widgets_values"):
            raise ConversionError(f"subgraph node {node['id']} is muted, bypassed or keeps its own widget "
                                  "values; convert this workflow with the frontend's graphToPrompt")
        definition = self.definitions[node["type"]]
        return _Scope(f"{scope.prefix}{node['id']}:", {n["id"]: n for n in definition.get("nodes", [])},
                      _links(definition), node, scope)

    def _origin(self, scope: _Scope, node: dict, slot: int):
        """Follow the link into input `slot` to (scope, node, output slot), through reroutes, bypassed
        nodes and subgraph edges; None when nothing real feeds it."""
        link_id = node["inputs"][slot].get("link")
        if link_id is None:
            return None
        if link_id not in scope.links:
            raise ConversionError(f"node {scope.prefix}{node['id']} ({node['type']}) input "
                                  f"{node['inputs'][slot]['name']} refers to link {link_id}, which the workflow "
                                  "does not have")
        origin_id, origin_slot = scope.links[link_id]
        if origin_id == SUBGRAPH_INPUTS:  # from outside: what feeds the subgraph node's input
            return self._origin(scope.parent, scope.instance, origin_slot)
        return self._resolve_output(scope, scope.nodes[origin_id], origin_slot, node["inputs"][slot].get("type", "*"))

    def _resolve_output(self, scope: _Scope, node: dict, slot: int, wanted: str, depth: int = 0):
        if depth > len(scope.nodes):
            raise ConversionError(f"circular links through node {scope.prefix}{node['id']}")
        if node["type"] in self.definitions:  # into the subgraph, to what its output `slot` shows
            inner = self._inner(scope, node)
            output = self.definitions[node["type"]]["outputs"][slot]
            if not output.get("linkIds"):
                return None
            origin_id, origin_slot = inner.links[output["linkIds"][0]]
            if origin_id == SUBGRAPH_INPUTS:
                return self._origin(scope, node, origin_slot)
            return self._resolve_output(inner, inner.nodes[origin_id], origin_slot, wanted, depth + 1)
        if node.get("mode") == MODE_NEVER:
            return None
        if node["type"] == "Reroute":
            return self._follow(scope, node, 0, depth)
        if node.get("mode") == MODE_BYPASS:
            index = self._bypass_input(node, slot, wanted)
            return None if index is None else self._follow(scope, node, index, depth)
        return scope, node, slot

    def _follow(self, scope: _Scope, node: dict, input_slot: int, depth: int):
        inputs = node.get("inputs") or []
        if input_slot >= len(inputs) or inputs[input_slot].get("link") is None:
            return None
        origin_id, origin_slot = scope.links[inputs[input_slot]["link"]]
        if origin_id == SUBGRAPH_INPUTS:
            return self._origin(scope.parent, scope.instance, origin_slot)
        return self._resolve_output(scope, scope.nodes[origin_id], origin_slot, inputs[input_slot].get("type", "*"),
                                    depth + 1)

    @staticmethod
    def _bypass_input(node: dict, slot: int, wanted: str) -> int | None:
        """Which input a bypassed node passes on for output `slot` (the frontend's rule)."""
        inputs = node.get("inputs") or []
        outputs = node.get("outputs") or []
        out_type = outputs[slot].get("type", "*") if slot < len(outputs) else "*"
        if wanted in ("*", ""):
            return slot if len(inputs) > slot else (0 if inputs else None)
        if (slot < len(inputs) and _types_match(inputs[slot]["type"], out_type)
                and _types_match(inputs[slot]["type"], wanted)):
            return slot
        for i, inp in enumerate(inputs):
            if inp["type"] == wanted:
                return i
        for i, inp in enumerate(inputs):
            if _types_match(inp["type"], out_type) and _types_match(inp["type"], wanted):
                return i
        return None

    def _widget_values(self, node: dict, where: str) -> dict:
        values = node.get("widgets_values")
        if values is None:
            return {}
        if isinstance(values, dict):  # some packs save widgets by name
            return dict(values)
        layout = widget_layout(self.info[node["type"]])
        if len(values) != len(layout):
            raise ConversionError(
                f"node {where} ({node['type']}) has {len(values)} widget values but the server's "
                f"definition gives {len(layout)} widgets ({layout}); the node changed since the workflow "
                "was saved: re-save it from the current frontend")
        specs = dict(_input_specs(self.info[node["type"]]))
        out = {}
        for name, value in zip(layout, values):
            if name is FRONTEND_ONLY:
                continue
            if isinstance(value, str) and _options(specs[name]).get("dynamicPrompts"):
                value = dynamic_prompt_value(value, f"node {where} ({node['type']}) widget {name}")
            out[name] = value
        return out

    def node_inputs(self, scope: _Scope, node: dict) -> dict:
        inputs = {name: ({"__value__": v} if isinstance(v, list) else v)
                  for name, v in self._widget_values(node, f"{scope.prefix}{node['id']}").items()}
        for slot, inp in enumerate(node.get("inputs") or []):
            origin = self._origin(scope, node, slot)
            if origin is None:
                continue
            source_scope, source, source_slot = origin
            if source["type"] == "PrimitiveNode":
                value = (source.get("widgets_values") or [None])[0]
                inputs[inp["name"]] = {"__value__": value} if isinstance(value, list) else value
            elif source["type"] in VIRTUAL_TYPES:
                continue
            else:
                inputs[inp["name"]] = [f"{source_scope.prefix}{source['id']}", int(source_slot)]
        return inputs

    def _convert_scope(self, scope: _Scope, prompt: dict) -> None:
        for node in scope.nodes.values():
            kind, where = node["type"], f"{scope.prefix}{node['id']}"
            if kind in self.definitions:
                self._convert_scope(self._inner(scope, node), prompt)
                continue
            if kind in VIRTUAL_TYPES or node.get("mode") in (MODE_NEVER, MODE_BYPASS):
                continue
            if kind not in self.info:
                raise ConversionError(f"node {where} has type {kind!r}, which the server does not offer")
            if kind in FRONTEND_EXTENDED:
                raise ConversionError(f"node {where} ({kind}) has widgets made by a frontend extension; "
                                      "convert this workflow with the frontend's graphToPrompt")
            unreadable = unreadable_inputs(self.info[kind], self.links_kinds)
            if unreadable:
                raise ConversionError(f"node {where} ({kind}) has inputs whose widgets this converter cannot "
                                      f"read: {', '.join(unreadable)}; convert this workflow with the frontend's "
                                      "graphToPrompt")
            title = node.get("title") or self.info[kind].get("display_name") or kind
            prompt[where] = {"inputs": self.node_inputs(scope, node), "class_type": kind, "_meta": {"title": title}}

    def convert(self) -> dict:
        prompt = {}
        self._convert_scope(self.root, prompt)
        for entry in prompt.values():  # links into dropped nodes go, as in the frontend
            for name, value in list(entry["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                    del entry["inputs"][name]
        return prompt


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """The API prompt for a UI workflow, given the server's /object_info."""
    prompt = _Converter(workflow, object_info).convert()
    log.debug("converted a %d-node UI workflow into a %d-node prompt", len(workflow.get("nodes", [])), len(prompt))
    return prompt


def linked_source(workflow: dict, object_info: dict, node_id: int, slot: int = 0) -> list | None:
    """The prompt's [node id, output slot] that feeds input `slot` of the workflow's node `node_id`,
    followed through reroutes, bypassed nodes and subgraph edges as the frontend does; None when
    nothing real feeds it."""
    converter = _Converter(workflow, object_info)
    origin = converter._origin(converter.root, converter.root.nodes[node_id], slot)
    if origin is None:
        return None
    scope, source, source_slot = origin
    return [f"{scope.prefix}{source['id']}", int(source_slot)]


def server_read(prompt: dict, object_info: dict) -> dict:
    """The prompt as the server reads it: each node's declared inputs only. Frontends add values of
    their own widgets that no node declares (Preview Any's text display), and not all alike."""
    def declared(kind: str) -> set:
        spec = object_info[kind]["input"]
        return {*spec.get("required", {}), *spec.get("optional", {})}
    return {key: {**entry, "inputs": {k: v for k, v in entry["inputs"].items() if k in declared(entry["class_type"])}}
            for key, entry in prompt.items()}


def strip_meta(prompt: dict) -> dict:
    """The prompt without `_meta` (titles), for comparing what the server would execute."""
    return {key: {k: v for k, v in entry.items() if k != "_meta"} for key, entry in prompt.items()}

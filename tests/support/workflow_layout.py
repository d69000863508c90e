"""How a workflow reads on the canvas: wires, nodes, notes and groups as the real frontend draws them.

Why measured in the frontend: slot positions and node sizes (title bar, widgets, fonts) are the
frontend's own (`node.getConnectionPos`, `node.boundingRect`), and its spline links are cubic Béziers
whose control points sit a quarter of the end-to-end distance out along each end's direction (right
from an output, left into an input: LiteGraph's SPLINE_LINK). Python then checks what a person sees:
wires that run right to left, wires hidden behind a node or note, wires that cross, overlapping
nodes, groups or titles, and two nodes with one title.

Under the Vue node renderer each node is a DOM element ([data-node-id]) as large as its content, so
SHOWN_GEOMETRY_JS reads the boxes off those elements (LiteGraph's own boxes where the canvas draws
the nodes), in the graph the canvas shows and inside every blueprint node (`INSIDE_BLUEPRINTS_JS`);
ON_SCREEN_JS says where all of it lies in the window.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from support.scripts import script

GEOMETRY_JS = script("graph_geometry")
SHOWN_GEOMETRY_JS = script("shown_geometry")
INSIDE_BLUEPRINTS_JS = script("inside_blueprints")
ON_SCREEN_JS = script("on_screen")

NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
SAMPLES = 48  # points per wire


@dataclass(frozen=True)
class Wire:
    id: int
    origin: int
    origin_slot: int
    target: int
    points: tuple[tuple[float, float], ...]


def spline(start, end, samples: int = SAMPLES) -> tuple[tuple[float, float], ...]:
    """LiteGraph's spline link from an output (going right) into an input (coming from the left)."""
    (x0, y0), (x3, y3) = start, end
    reach = 0.25 * ((x3 - x0) ** 2 + (y3 - y0) ** 2) ** 0.5
    x1, y1, x2, y2 = x0 + reach, y0, x3 - reach, y3
    out = []
    for i in range(samples + 1):
        t = i / samples
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
        out.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
    return tuple(out)


def _inside(point, rect, margin: float = 0.0) -> bool:
    x, y, w, h = rect
    return x - margin < point[0] < x + w + margin and y - margin < point[1] < y + h + margin


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _segments_cross(p, q, r, s) -> bool:
    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    d1, d2, d3, d4 = orient(r, s, p), orient(r, s, q), orient(p, q, r), orient(p, q, s)
    return (d1 > 0) != (d2 > 0) and (d3 > 0) != (d4 > 0) and 0 not in (d1, d2, d3, d4)


def _wires_cross(a: Wire, b: Wire) -> bool:
    for (p, q), (r, s) in itertools.product(zip(a.points, a.points[1:]), zip(b.points, b.points[1:])):
        if _segments_cross(p, q, r, s):
            return True
    return False


@dataclass
class LayoutReport:
    """What a reader of the canvas would trip over; every list empty is a clean layout."""

    backward: list[str]  # wires whose input lies left of their output
    hidden: list[str]  # wires that pass behind a node or note that is not one of their ends
    crossings: list[str]  # wires that cross away from any node they share (see `analyse`)
    overlapping: list[str]  # nodes, notes and groups overlapping (a node half inside a group counts)
    outside_groups: list[str]  # nodes (not notes) that sit in no group, when the workflow has groups
    duplicate_titles: list[str]  # titles shown by more than one node, note or group

    @property
    def problems(self) -> list[str]:
        return (self.backward + self.hidden + self.crossings + self.overlapping + self.outside_groups
                + self.duplicate_titles)


def analyse(geometry: dict) -> LayoutReport:
    """Check the geometry GEOMETRY_JS returned."""
    nodes = {n["id"]: n for n in geometry["nodes"]}
    label = {i: f"{n['title']} (#{i})" for i, n in nodes.items()}
    wires = [Wire(w["id"], w["origin"], w["origin_slot"], w["target"], spline(w["start"], w["end"]))
             for w in geometry["links"]]
    name = {w.id: f"{label[w.origin]} -> {label[w.target]}" for w in wires}

    backward = [name[w.id] for w in wires if w.points[-1][0] <= w.points[0][0]]
    hidden = []
    for w in wires:
        behind = [label[i] for i, n in nodes.items() if i not in (w.origin, w.target)
                  and any(_inside(p, n["rect"]) for p in w.points)]
        hidden += [f"{name[w.id]} behind {b}" for b in behind]
    # Wires that leave one node (a checkpoint's MODEL, CLIP and VAE fanning out) or enter one node
    # may cross next to it, where the eye follows them anyway; a crossing of two wires with no node
    # in common is one a reader has to untangle.
    crossings = [f"{name[a.id]} x {name[b.id]}" for a, b in itertools.combinations(wires, 2)
                 if not {a.origin, a.target} & {b.origin, b.target} and _wires_cross(a, b)]
    overlapping = [f"{label[a]} / {label[b]}" for a, b in itertools.combinations(nodes, 2)
                   if _overlap(nodes[a]["rect"], nodes[b]["rect"])]
    groups = geometry["groups"]
    overlapping += [f"group {a['title']} / group {b['title']}" for a, b in itertools.combinations(groups, 2)
                    if _overlap(a["rect"], b["rect"])]
    # a node or note that reaches into a group it does not belong to hides part of its frame or title
    overlapping += [f"{label[i]} / group {g['title']}" for g in groups for i, n in nodes.items()
                    if _overlap(n["rect"], g["rect"]) and not _contains(g["rect"], n["rect"])]
    outside = []
    if groups:
        outside = [label[i] for i, n in nodes.items() if n["type"] not in NOTE_TYPES and not any(
            _contains(g["rect"], n["rect"]) for g in groups)]
    # a Reroute shows no title bar, so its (shared) title is never read
    titles = [n["title"] for n in nodes.values() if n.get("titled", True)] + [g["title"] for g in groups]
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    return LayoutReport(backward, hidden, crossings, overlapping, outside, duplicates)


def _contains(outer, inner) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1] and inner[0] + inner[2] <= outer[0] + outer[2]
            and inner[1] + inner[3] <= outer[1] + outer[3])


def bounds(geometry: dict) -> tuple[float, float, float, float]:
    """x, y, width, height of everything drawn (nodes with their title bars, and groups)."""
    rects = [n["rect"] for n in geometry["nodes"]] + [g["rect"] for g in geometry["groups"]]
    x0, y0 = min(r[0] for r in rects), min(r[1] for r in rects)
    x1, y1 = max(r[0] + r[2] for r in rects), max(r[1] + r[3] for r in rects)
    return x0, y0, x1 - x0, y1 - y0

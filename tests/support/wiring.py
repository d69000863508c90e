"""How a loaded workflow's links are drawn, to check a layout: crossings, direction, links behind nodes.

LiteGraph (frontend 1.32.9, `calculateControlPoints`) draws a link as a cubic spline from the output
slot to the input slot, leaving to the right and arriving from the left, with control arms of
max(30, distance / 4). The slot positions and node boxes come from the frontend itself
(`getConnectionPos`), so only the curve is computed here.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

# Read from the page: every link's end points, and every node's box with its title bar.
GEOMETRY = """() => {
  const g = app.graph, title = LiteGraph.NODE_TITLE_HEIGHT;
  const links = [...(g.links instanceof Map ? g.links.values() : Object.values(g.links))].filter(Boolean);
  return {
    links: links.map(l => ({origin: l.origin_id, slot: l.origin_slot, target: l.target_id,
      start: g.getNodeById(l.origin_id).getConnectionPos(false, l.origin_slot),
      end: g.getNodeById(l.target_id).getConnectionPos(true, l.target_slot)})),
    nodes: g.nodes.map(n => ({id: n.id, type: n.type,
      box: [n.pos[0], n.pos[1] - (n.constructor.title_mode === LiteGraph.NO_TITLE ? 0 : title),
            n.pos[0] + n.size[0], n.pos[1] + n.size[1]]})),
  };
}"""


@dataclass(frozen=True)
class Link:
    origin: int
    slot: int
    target: int
    start: tuple[float, float]
    end: tuple[float, float]

    def curve(self, points: int = 80) -> list[tuple[float, float]]:
        arm = max(30.0, math.dist(self.start, self.end) * 0.25)
        (x0, y0), (x3, y3) = self.start, self.end
        x1, x2 = x0 + arm, x3 - arm
        out = []
        for i in range(points + 1):
            t = i / points
            u = 1 - t
            out.append((u ** 3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t ** 3 * x3,
                        u ** 3 * y0 + 3 * u * u * t * y0 + 3 * u * t * t * y3 + t ** 3 * y3))
        return out


def read(page) -> tuple[list[Link], dict[int, dict]]:
    """The links and nodes of the graph loaded in a frontend page."""
    found = page.page.evaluate(GEOMETRY)
    links = [Link(l["origin"], l["slot"], l["target"], tuple(l["start"]), tuple(l["end"])) for l in found["links"]]
    return links, {n["id"]: n for n in found["nodes"]}


def _segments_meet(a, b, c, d) -> bool:
    """Whether segment ab meets segment cd (touching counts)."""
    def side(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    ab_c, ab_d, cd_a, cd_b = side(a, b, c), side(a, b, d), side(c, d, a), side(c, d, b)
    if ab_c == ab_d == 0:  # collinear: meet when the spans overlap
        return max(min(a[0], b[0]), min(c[0], d[0])) <= min(max(a[0], b[0]), max(c[0], d[0])) and \
            max(min(a[1], b[1]), min(c[1], d[1])) <= min(max(a[1], b[1]), max(c[1], d[1]))
    return ab_c * ab_d <= 0 and cd_a * cd_b <= 0


def crossings(links: list[Link]) -> list[tuple[Link, Link]]:
    """Pairs of links whose curves meet. Branches of one output (same node and slot) are one wire
    splitting, not a crossing; links of different outputs never share an end point."""
    curves = {link: list(itertools.pairwise(link.curve())) for link in links}
    boxes = {link: _box([p for segment in curves[link] for p in segment]) for link in links}
    return [(first, second) for first, second in itertools.combinations(links, 2)
            if (first.origin, first.slot) != (second.origin, second.slot)
            and _boxes_meet(boxes[first], boxes[second])
            and any(_segments_meet(*s, *t) for s, t in itertools.product(curves[first], curves[second]))]


def _box(points) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _boxes_meet(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def behind_nodes(links: list[Link], nodes: dict[int, dict]) -> list[tuple[Link, int]]:
    """(link, node) where the link is drawn under a node that is neither of its ends."""
    found = []
    for link in links:
        points = link.curve(160)
        for node_id, node in nodes.items():
            if node_id in (link.origin, link.target):
                continue
            x0, y0, x1, y1 = node["box"]
            if any(x0 + 2 < x < x1 - 2 and y0 + 2 < y < y1 - 2 for x, y in points):
                found.append((link, node_id))
    return found

"""What the real frontend shows a user about a workflow's problems, read from the visible page.

Why its own module: frontends differ most here, and a test should hold the promise, not one
frontend's widgets. 1.32.9 shows missing nodes and models in dialogs when a workflow loads, and a
rejected Run in an error dialog; 1.49 and later count both in a toast ("2 errors found",
"3 issues found") whose "View details" opens an errors panel beside the canvas, one section per kind
("Missing Models", "Invalid input", ...), each entry with an "Info for ..." button that reveals the
host's message. Everything here goes through roles, accessible names and visible text, as a user (or
a screen reader) meets them:
- `read_shown`: the dialogs, and the errors panel opened through "View details" with every
  message revealed; each listed model with its folder and the link its "Copy URL" button copies;
  `LoadReport`, what loading a workflow showed, sorted into what a test server legitimately lacks
  (models) and problems.
- `queue`: the Run as `app.queuePrompt` does it, with the server's answer to POST /prompt.
- `red_outline`: how many red pixels ring a node on screen (both frontends outline a node in red
  when the server rejected it; 1.49+ also when a file it names is missing, and a subgraph node
  whose inner node was rejected, which 1.32.9 does not outline).
- `template_cards` and `search_nodes`: the template browser and the node search box.
- `node_texts` and `pack_node_marks`: the text boxes a node shows, and what shows on the pack's nodes
  besides the node itself (a picture, an error box), under either renderer: the classic canvas (DOM
  widgets float over it) or the Vue node renderer (each node a [data-node-id] element).
"""
from __future__ import annotations

import io
import json
import re
import urllib.parse
from dataclasses import dataclass, field

from support.scripts import script

CLOSE_PANEL = "Toggle properties panel"  # the errors panel's toggle in 1.49+
FILE_NAME = r"[^\s/'\"]+\.(?:safetensors|ckpt|pt|pth|bin|sft|gguf|onnx|png|jpe?g|webp)"

_LISTED_ROWS = script("listed_missing_files")
_PANEL_SECTIONS = script("panel_sections")
DIALOG_TEXTS = script("dialog_texts")
_NODE_ON_SCREEN = script("node_on_screen")


@dataclass
class Listed:
    """One file the frontend lists as missing: its name, the folder it names, the link it copies."""

    name: str
    folder: str
    url: str | None


@dataclass
class Shown:
    """What the page showed: every visible dialog's text, the errors panel's sections (1.49+; each
    starts with its count and heading, e.g. "1 Missing Models ..."), and the files listed as missing."""

    dialogs: list[str] = field(default_factory=list)
    panel: list[str] = field(default_factory=list)
    listed: list[Listed] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.dialogs + self.panel)


def _listed(page, row: dict) -> Listed:
    """One row: "folder / name" on one line (1.32.9), or the name with the folder on the next line."""
    lines = row["lines"]
    for line in lines:
        match = re.fullmatch(rf"(\S+) / ({FILE_NAME})", line)
        if match:
            folder, name = match.groups()
            break
    else:
        at = next(i for i, line in enumerate(lines) if re.search(FILE_NAME, line))
        name = re.search(FILE_NAME, lines[at]).group(0)
        folder = lines[at + 1] if at + 1 < len(lines) else ""
    url = None
    if row["copyUrl"] >= 0:
        page.get_by_role("button", name="Copy URL", exact=True).nth(row["copyUrl"]).click()
        url = page.evaluate("async () => await navigator.clipboard.readText()")
    return Listed(name=name, folder=folder, url=url)


def _press(button) -> None:
    """Click a visible button; when another toast lies over it (two stack at the same corner), the
    click goes to the button itself."""
    try:
        button.click(timeout=3_000)
    except Exception:  # playwright's TimeoutError: something intercepts the pointer
        button.dispatch_event("click")


def read_shown(page, settle_ms: int = 300) -> Shown:
    """What the page shows now: dialogs, and (when a toast offers "View details") the errors panel with
    every entry's message revealed, then the panel closed again. `page`: a playwright Page."""
    shown = Shown(dialogs=page.evaluate(DIALOG_TEXTS))
    details = page.get_by_role("button", name="View details")
    opened = details.count() > 0 and details.first.is_visible()
    if opened:
        _press(details.first)
        page.wait_for_timeout(settle_ms)
        infos = page.get_by_role("button", name=re.compile(r"^Info for "))
        for i in range(infos.count()):
            _press(infos.nth(i))
        page.wait_for_timeout(settle_ms if infos.count() else 0)
        shown.panel = page.evaluate(_PANEL_SECTIONS)
    shown.listed = [_listed(page, row) for row in page.evaluate(_LISTED_ROWS, FILE_NAME) if row["named"]]
    if opened:
        page.get_by_role("button", name=CLOSE_PANEL).first.click()
    return shown


# What a frontend shows about a workflow's missing files, which a test server legitimately lacks: the
# missing-models dialog of 1.32.9 and the errors panel's "Missing Models" section of 1.49+, whose
# toast ("2 errors found ... View details") only leads there. Missing nodes are counted apart.
MISSING_FILES_DIALOG = re.compile(r"^Missing Models\b")
MISSING_NODES_DIALOG = re.compile(r"\bmissing nodes\b")
EXPLAINED_PANEL = ("Missing Models", "Missing Node Packs")
LEADS_TO_PANEL = "View details"


@dataclass
class LoadReport:
    """What loading one workflow into the frontend showed; `problems` is empty for a clean load."""

    name: str
    node_count: int
    missing_node_types: list[str]  # not in LiteGraph.registered_node_types, or listed by the frontend
    shown: Shown  # the dialogs and errors panel the page showed after the load
    console_errors: list[str]
    page_errors: list[str]
    toasts: list[str]  # the text of every toast raised during the load (but the one leading to the panel)
    console_warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # console errors dropped as known noise, with why

    @property
    def shown_missing_nodes(self) -> list[str]:
        """The missing node types the page named to the user (in a dialog or the errors panel)."""
        return [t for t in self.missing_node_types if t in self.shown.text]

    @property
    def missing_models(self) -> list[tuple[str, str]]:
        """("folder / name", url) of each missing model the page listed with a download link."""
        return [(f"{f.folder} / {f.name}", f.url) for f in self.shown.listed if f.url]

    @property
    def dialogs(self) -> list[str]:
        """Dialogs other than those about missing nodes and models."""
        return [d for d in self.shown.dialogs if not (MISSING_FILES_DIALOG.search(d) or MISSING_NODES_DIALOG.search(d))]

    @property
    def panel_errors(self) -> list[str]:
        """Errors panel sections other than those about missing nodes and models (1.49+)."""
        return [s for s in self.shown.panel
                if not any(re.match(rf"^\d+ {h}\b", s) for h in EXPLAINED_PANEL) and re.match(r"^\d+ ", s)]

    @property
    def problems(self) -> list[str]:
        out = [f"missing node type: {t}" for t in self.missing_node_types]
        out += [f"console error: {e}" for e in self.console_errors]
        out += [f"page error: {e}" for e in self.page_errors]
        out += [f"toast: {t}" for t in self.toasts]
        out += [f"dialog: {d}" for d in self.dialogs]
        out += [f"errors panel: {e}" for e in self.panel_errors]
        return out


@dataclass
class Queued:
    """A Run: whether the frontend says it queued, and what the server answered to POST /prompt."""

    queued: object
    status: int
    answer: dict


def queue(page) -> Queued:
    """Queue the loaded graph as the Run button does (`app.queuePrompt`)."""
    with page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST") as response:
        queued = page.evaluate("async () => await app.queuePrompt(0, 1)")
    answer = response.value
    return Queued(queued=queued, status=answer.status, answer=json.loads(answer.text() or "{}"))


def red_outline(page, node_id, margin: int = 14) -> int:
    """Red pixels in the ring of `margin` px around node `node_id` on screen, the view centred on it at
    scale 1."""
    import numpy as np
    from PIL import Image
    x, y, w, h = page.evaluate(_NODE_ON_SCREEN, int(node_id))
    page.wait_for_timeout(200)
    png = page.screenshot(clip={"x": x - margin, "y": y - margin, "width": w + 2 * margin, "height": h + 2 * margin})
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red = (rgb[..., 0] > 170) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    red[margin:-margin, margin:-margin] = False  # the ring only: a node's own colours do not count
    return int(red.sum())


_TEMPLATE_CARDS = script("template_cards")
_CARD_LOADED = script("template_card_loaded")


def template_cards(page, pack: str, titles: list[str]) -> dict:
    """Open the template browser (the Templates command) and choose the pack's group. Returns the
    dialog's text, each title's card ({shown, pictures: [loaded]}), and the template files the page
    fetched from the pack's folder (1.58 shows a fetched picture as a blob: URL)."""
    fetched = []
    folder = f"/api/workflow_templates/{pack}/"

    def listener(response) -> None:
        if response.ok:
            fetched.append(urllib.parse.unquote(urllib.parse.urlsplit(response.url).path))
    page.on("response", listener)
    try:
        page.evaluate("() => app.extensionManager.command.execute('Comfy.BrowseTemplates')")
        page.get_by_role("dialog").get_by_text(pack, exact=True).first.click()
        page.wait_for_function(script("template_titles_shown"), arg=titles, timeout=15_000)
        cards = {}
        for title in titles:  # a card's picture loads once it is scrolled into view; each card is read
            # then, as a user sees it (scrolling on may let the browser drop a picture it passed)
            page.get_by_role("dialog").get_by_text(title, exact=True).first.scroll_into_view_if_needed()
            page.wait_for_function(_CARD_LOADED, arg=title, timeout=15_000)
            cards.update(page.evaluate(_TEMPLATE_CARDS, [title])["cards"])
        shown = {**page.evaluate(_TEMPLATE_CARDS, []), "cards": cards}  # the dialog's text; cards read above
    finally:
        page.remove_listener("response", listener)
    return {**shown, "fetched": sorted({f[len(folder):] for f in fetched if f.startswith(folder)})}


_OPTIONS = script("search_options")


def search_nodes(page, query: str, settle_ms: int = 800, choose: bool = False) -> list[str]:
    """Type `query` into the node search box (opened by its command, as a double click on the canvas
    does) and return the texts of the results it lists; then close the box, or with `choose` press
    Enter, which adds the first result to the canvas."""
    page.evaluate("() => app.extensionManager.command.execute('Workspace.SearchBox.Toggle')")
    page.get_by_role("combobox").first.wait_for(timeout=10_000)
    page.keyboard.type(query)
    page.wait_for_timeout(settle_ms)
    found = page.evaluate(_OPTIONS)
    if not choose:
        page.keyboard.press("Escape")
        return found
    page.wait_for_function(f"(q) => ({_OPTIONS})().some(o => o.startsWith(q))", arg=query, timeout=10_000)
    found = page.evaluate(_OPTIONS)
    before = page.evaluate("() => app.graph.nodes.length")
    page.keyboard.press("Enter")
    page.wait_for_function("(n) => app.graph.nodes.length > n", arg=before, timeout=10_000)
    return found


_NODE_TEXTS = script("node_texts")


def node_texts(page, node_id) -> list[str]:
    """The texts of the text boxes shown on node `node_id` (of the graph the canvas shows)."""
    return page.evaluate(_NODE_TEXTS, int(node_id))


# What shows on this pack's nodes (types IDEA_*, and blueprint nodes) besides the node itself, in the
# graph the canvas shows: a picture (the canvas draws node.imgs; a Vue node shows the <img> or <video>
# in its element, and never node.imgs), an error outline (node.has_errors), or one of the Vue
# renderer's error boxes and notices.
ERROR_TEXTS = ("Image failed to load", "Image does not exist", "Error loading image", "Node Render Error",
               "Node Content Error", "Node Widgets Error", "Issues")
_MARKS = """const marksOf = (graph, errorTexts) => {
  const out = {};
  for (const n of graph.nodes) {
    if (!(String(n.type).startsWith('IDEA_') || n.subgraph)) continue;
    const marks = [];
    if (n.has_errors) marks.push('error outline');
    const el = document.querySelector(`[data-node-id="${n.id}"]`);
    if (!el && n.imgs && n.imgs.length) marks.push('picture');  // the canvas draws node.imgs
    if (el) {  // a Vue node shows what its element holds
      if (el.querySelector('img, video')) marks.push('picture');
      if (el.querySelector('.node-error, [data-testid^="error"]')) marks.push('error box');
      const lines = el.innerText.split('\\n').map(l => l.trim());
      marks.push(...errorTexts.filter(t => lines.includes(t)));
    }
    if (marks.length) out[`${n.title} (#${n.id})`] = [...new Set(marks)];
  }
  return out;
};"""
_PACK_NODE_MARKS = f"""(errorTexts) => {{ {_MARKS} return marksOf(app.canvas.graph, errorTexts); }}"""
# The same inside each blueprint node of the root graph, each opened as a user does (double click), then
# the root graph shown again: {blueprint node's title: marks}.
_MARKS_INSIDE_BLUEPRINTS = f"""async (errorTexts) => {{
  {_MARKS}
  const root = app.canvas.graph, out = {{}};
  for (const node of root.nodes.filter(n => n.subgraph)) {{
    app.canvas.openSubgraph(node.subgraph, node);
    await new Promise(r => setTimeout(r, 600));
    out[node.title] = marksOf(app.canvas.graph, errorTexts);
    app.canvas.setGraph(root);
    await new Promise(r => setTimeout(r, 300));
  }}
  return out;
}}"""


def pack_node_marks(page, inside_blueprints: bool = False) -> dict:
    """{node: what shows on it besides the node} for this pack's nodes in the graph the canvas shows
    (empty when none shows anything); with `inside_blueprints`, {blueprint node: that} inside each."""
    return page.evaluate(_MARKS_INSIDE_BLUEPRINTS if inside_blueprints else _PACK_NODE_MARKS, list(ERROR_TEXTS))

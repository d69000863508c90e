"""The real ComfyUI web frontend in headless Chromium, for loading workflows the way a user does.

Why a browser: only the frontend knows which node types it can build, how it validates a workflow
file (its zod schema and link fixer raise toasts, not exceptions), and what it shows the user (the
missing-nodes dialog). Reading the JSON in Python would miss all of that.

Debian's /usr/bin/chromium is driven through the `playwright` package; no browser is ever
downloaded. Playwright gives every launch a fresh temporary profile (user-data-dir). What was
learned about frontend 1.32.9 on a fresh user directory:
- With no `Comfy.TutorialCompleted` setting the frontend treats the user as new and opens the
  template browser over the canvas; the setting is stored server-side, so it is posted to the
  server's /settings before the page loads (`prepare_user_settings`).
- A "Nodes 2.0" banner (localStorage `vueNodesBannerDismissed`) and the minimap would cover part of
  every screenshot; both are switched off.
- Missing node types: `loadGraphData` hands its own list to the `afterConfigureGraph` extension
  hook and shows it in a dialog (`[aria-labelledby=global-missing-nodes] .comfy-missing-nodes`);
  both are read, besides checking `LiteGraph.registered_node_types` directly.
- Schema problems in a workflow file are shown as toasts ("Alert: Invalid workflow against zod
  schema", "Workflow Validation", "Workflow Links Fixed"), so toasts are collected too.
- Models a workflow names in its nodes' `models` property (name, url, directory) that the server's
  folder does not hold are listed in the missing-models dialog (`global-missing-models-warning`),
  each with its folder, name and download link; these are reported apart from the problems, since a
  test server never holds a user's models.
Console noise that is not the workflow's fault is listed in IGNORED_CONSOLE with the reason.
"""
from __future__ import annotations

import json
import logging
import pathlib
import re
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
READY_TIMEOUT_MS = 60_000
STARTUP_SETTLE_MS = 500  # the first-run template browser opens shortly after the app is ready

# Server-side user settings that keep the first-run UI (template browser, minimap) off the canvas.
USER_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}
LOCAL_STORAGE = {"vueNodesBannerDismissed": "true"}

# Same-origin files a fresh user directory legitimately lacks; the frontend asks for them and falls
# back to defaults on 404.
OPTIONAL_PATHS = re.compile(r"^/(favicon\.ico|user\.css|api/userdata/user\.css|"
                            r"api/userdata/comfy\.templates\.json|api/userdata\?dir=(workflows|subgraphs))")

# (pattern, why it is not the workflow's fault). Matched against the message text.
IGNORED_CONSOLE = [
    (re.compile(r"TypeError: Cannot read properties of undefined \(reading 'id'\)[\s\S]*at onChange"),
     "frontend 1.32.9 bug at start-up: GraphView sets LiteGraph.Canvas.MinFontSizeForLOD before "
     "that setting is registered; happens on every page load, before any workflow"),
    (re.compile(r"^Error fetching file size: TypeError: Failed to fetch[\s\S]*at fetchFileSize"),
     "the missing-models dialog asks each model's download host for the file size; these machines "
     "are offline and the harness blocks every request that leaves the ComfyUI server"),
]

_INIT_SCRIPT = """
(() => {
  for (const [k, v] of Object.entries(%(storage)s)) localStorage.setItem(k, v);
  window.__ideaToasts = [];
  const seen = new WeakSet();
  const grab = () => {
    for (const el of document.querySelectorAll('.p-toast-message')) {
      if (seen.has(el)) continue;
      seen.add(el);
      const sev = (el.className.match(/p-toast-message-(\\w+)/) || [])[1] || 'unknown';
      window.__ideaToasts.push(sev + ': ' + el.innerText.replace(/\\s+/g, ' ').trim());
    }
  };
  new MutationObserver(grab).observe(document, {childList: true, subtree: true});
})();
"""

_READY = ("() => window.app && window.app.graph && window.app.canvas && window.LiteGraph && "
          "Object.keys(LiteGraph.registered_node_types).length > 0")

_HOOK = """() => {
  if (window.__ideaHooked) return;
  window.__ideaHooked = true;
  window.__ideaMissing = null;
  app.registerExtension({name: 'idea.tests.missingNodes',
    afterConfigureGraph(missing) {
      window.__ideaMissing = (missing || []).map(m => typeof m === 'string' ? m : m.type);
    }});
}"""

_LOAD = """async ([wf, name]) => {
  window.__ideaMissing = null;
  const types = (Array.isArray(wf.nodes) ? wf.nodes : []).map(n => n && n.type);
  const unregistered = [...new Set(types.filter(t => !(t in LiteGraph.registered_node_types)))];
  let thrown = null;
  try { await app.loadGraphData(wf, true, true, name); } catch (e) { thrown = String((e && e.stack) || e); }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {unregistered, hook: window.__ideaMissing, nodes: app.graph.nodes.length, thrown};
}"""

# The frontend's own Fit View command animates; this sets the same view at once. The nodes'
# bounding boxes (title bar included) fill FIT_ZOOM of the canvas, leaving room for the side bar.
FIT_ZOOM = 0.88
_FIT_VIEW = """async (zoom) => {
  app.canvas.deselectAll();
  const rects = app.graph.nodes.map(n => n.boundingRect);
  if (rects.length) {
    const x0 = Math.min(...rects.map(r => r[0])), y0 = Math.min(...rects.map(r => r[1]));
    const x1 = Math.max(...rects.map(r => r[0] + r[2])), y1 = Math.max(...rects.map(r => r[1] + r[3]));
    app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], {zoom});
  }
  app.canvas.setDirty(true, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
}"""

_FROM_API = """async ([prompt, name]) => {
  app.graph.clear();
  app.loadApiJson(prompt, name);
  if (app.graph.nodes.length !== Object.keys(prompt).length) return null;
  app.graph.arrange();
  await new Promise(r => requestAnimationFrame(r));
  return JSON.parse(JSON.stringify(app.graph.serialize()));
}"""

# Through the app's Pinia stores (what Vue devtools use): the template browser has no standard
# close button and ignores Escape without focus.
_CLOSE_OVERLAYS = """() => {
  const stores = document.querySelector('#vue-app').__vue_app__.config.globalProperties.$pinia._s;
  const dialogs = stores.get('dialog');
  for (const d of [...dialogs.dialogStack]) dialogs.closeDialog({key: d.key});
  stores.get('toast').removeAll();
  for (const b of document.querySelectorAll('.p-toast-close-button')) b.click();
}"""

_DIALOGS = """() => Array.from(document.querySelectorAll('.p-dialog')).map(d => ({
  id: d.getAttribute('aria-labelledby') || '',
  text: d.innerText.replace(/\\s+/g, ' ').trim().slice(0, 300),
  missing: Array.from(d.querySelectorAll('.comfy-missing-nodes span')).map(s => s.innerText.trim()),
  models: Array.from(d.querySelectorAll('.comfy-missing-models [role=option] span[title]'))
    .map(s => [s.innerText.trim(), s.getAttribute('title')]),
}))"""
MISSING_MODELS_DIALOG = "global-missing-models-warning"


@dataclass
class LoadReport:
    """What loading one workflow into the frontend showed; `problems` is empty for a clean load."""

    name: str
    node_count: int
    missing_node_types: list[str]  # not in LiteGraph.registered_node_types, or listed by the frontend
    dialog_missing: list[str]  # what the frontend's missing-nodes dialog listed
    console_errors: list[str]
    page_errors: list[str]
    toasts: list[str]  # "severity: text" of every toast raised during the load
    dialogs: list[str]  # titles of the dialogs open after the load
    console_warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # console errors dropped as known noise, with why
    missing_models: list[tuple[str, str]] = field(default_factory=list)  # ("folder / name", url) listed

    @property
    def problems(self) -> list[str]:
        out = [f"missing node type: {t}" for t in self.missing_node_types]
        out += [f"console error: {e}" for e in self.console_errors]
        out += [f"page error: {e}" for e in self.page_errors]
        out += [f"toast: {t}" for t in self.toasts]
        out += [f"dialog: {d}" for d in self.dialogs]
        return out


def prepare_user_settings(server_url: str, settings: dict | None = None) -> None:
    """Store `settings` (default USER_SETTINGS) for the server's default user before a page loads."""
    body = json.dumps(USER_SETTINGS if settings is None else settings).encode()
    req = urllib.request.Request(server_url.rstrip("/") + "/settings", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError(f"POST /settings answered {resp.status}")


class _Log:
    """Console messages and page errors, split into start-up and per-load windows."""

    def __init__(self, origin: str):
        self.origin = origin
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.page_errors: list[str] = []
        self.ignored: list[str] = []

    def on_console(self, msg) -> None:
        if msg.type == "warning":
            self.warnings.append(msg.text)
        if msg.type != "error":
            return
        why = self._why_ignored(msg.text, (msg.location or {}).get("url", ""))
        if why:
            self.ignored.append(f"{msg.text.splitlines()[0]} ({why})")
        else:
            self.errors.append(msg.text)

    def on_page_error(self, err) -> None:
        self.page_errors.append(str(err))

    def _why_ignored(self, text: str, url: str) -> str | None:
        if text.startswith("Failed to load resource"):
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}" != self.origin:
                return "off-origin request (the registry, api.comfy.org); these machines are offline and "\
                       "the harness blocks every request that leaves the ComfyUI server"
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if OPTIONAL_PATHS.match(path):
                return "optional per-user file that a fresh user directory does not have"
        for pattern, why in IGNORED_CONSOLE:
            if pattern.search(text):
                return why
        return None

    def take(self) -> tuple[list[str], list[str], list[str], list[str]]:
        out = (self.errors, self.warnings, self.page_errors, self.ignored)
        self.errors, self.warnings, self.page_errors, self.ignored = [], [], [], []
        return out


class FrontendPage:
    """One browser tab on the ComfyUI frontend, ready for workflows (see `Frontend.open_page`)."""

    def __init__(self, page, log_: _Log, startup: tuple):
        self.page = page  # the playwright Page, for anything not wrapped here
        self._log = log_
        self.startup_errors, _, self.startup_page_errors, self.startup_ignored = startup
        self.startup_dialogs: list[str] = []  # dialogs open when the page became ready

    def close(self) -> None:
        self.page.context.close()

    def registered_node_types(self) -> set[str]:
        return set(self.page.evaluate("() => Object.keys(LiteGraph.registered_node_types)"))

    def close_overlays(self) -> None:
        """Close dialogs and toasts so the next load and screenshot start clean."""
        self.page.evaluate(_CLOSE_OVERLAYS)
        self.page.wait_for_function("() => !document.querySelector('.p-dialog, .p-toast-message')",
                                    timeout=10_000)

    def load_workflow(self, workflow: dict, name: str = "workflow", settle_ms: int = 300) -> LoadReport:
        """`app.loadGraphData(workflow)` as the UI does it on a file drop; collect what went wrong."""
        self.close_overlays()
        self._log.take()
        self.page.evaluate("() => { window.__ideaToasts = []; }")
        self.page.evaluate(_HOOK)
        result = self.page.evaluate(_LOAD, [workflow, name])
        self.page.wait_for_timeout(settle_ms)  # late console errors, dialogs and toasts
        dialogs = self.page.evaluate(_DIALOGS)
        toasts = self.page.evaluate("() => window.__ideaToasts")
        errors, warnings, page_errors, ignored = self._log.take()
        if result["thrown"]:
            page_errors.append(f"loadGraphData threw: {result['thrown']}")
        dialog_missing = [m for d in dialogs for m in d["missing"]]
        missing = sorted(set(result["unregistered"]) | set(result["hook"] or []) | set(dialog_missing))
        other_dialogs = [d["text"] for d in dialogs if d["id"] not in ("global-missing-nodes", MISSING_MODELS_DIALOG)]
        models = [tuple(m) for d in dialogs if d["id"] == MISSING_MODELS_DIALOG for m in d["models"]]
        report = LoadReport(name=name, node_count=result["nodes"], missing_node_types=missing,
                            dialog_missing=dialog_missing, console_errors=errors, page_errors=page_errors,
                            toasts=toasts, dialogs=other_dialogs, console_warnings=warnings, ignored=ignored,
                            missing_models=models)
        log.info("loaded %s into the frontend: %d nodes, %d problem(s)", name, report.node_count,
                 len(report.problems))
        return report

    def graph_to_prompt(self) -> dict:
        """The API prompt of the loaded graph, made by the frontend itself (`app.graphToPrompt`)."""
        return self.page.evaluate("async () => (await app.graphToPrompt()).output")

    def api_to_ui(self, prompt: dict, name: str = "from_api") -> dict:
        """The UI workflow the frontend makes of an API prompt (`app.loadApiJson`, then LiteGraph's
        `arrange` for a column layout), serialised as the UI saves a file: a way to author workflow
        files without a mouse that is still the real frontend's format."""
        self.close_overlays()
        workflow = self.page.evaluate(_FROM_API, [prompt, name])
        if workflow is None or len(workflow["nodes"]) != len(prompt):
            self.close_overlays()
            missing = sorted({e["class_type"] for e in prompt.values()} - self.registered_node_types())
            raise ValueError(f"the frontend did not build the prompt; unknown node types: {missing}")
        return workflow

    def screenshot(self, path: pathlib.Path, close_overlays: bool = True) -> pathlib.Path:
        """Fit the whole graph into the view and save the page as a PNG."""
        if close_overlays:
            self.close_overlays()
        self.page.evaluate(_FIT_VIEW, FIT_ZOOM)
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path


class Frontend:
    """One headless Chromium for a ComfyUI server: `with Frontend(url) as fe: page = fe.open_page()`."""

    def __init__(self, server_url: str, width: int = 1600, height: int = 900):
        self.url = server_url.rstrip("/")
        parts = urlsplit(self.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.viewport = {"width": width, "height": height}
        self._playwright = self._browser = None

    def __enter__(self) -> "Frontend":
        from playwright.sync_api import sync_playwright
        if not pathlib.Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} not found; install Debian's chromium package")
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                             args=CHROMIUM_FLAGS)
        except Exception:
            self._playwright.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()
        self._browser = self._playwright = None

    def _route(self, route) -> None:
        """Keep the page on the ComfyUI server: anything else fails at once, not after a DNS wait."""
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            route.abort("blockedbyclient")

    def open_page(self, prepare: bool = True, size: tuple[int, int] | None = None) -> FrontendPage:
        """A new tab with the app ready, the first-run UI off (unless `prepare` is False) and
        start-up messages and dialogs set aside; `size`: its viewport, if not the browser's."""
        if self._browser is None:
            raise RuntimeError("use Frontend as a context manager")
        if prepare:
            prepare_user_settings(self.url)
        viewport = {"width": size[0], "height": size[1]} if size else self.viewport
        context = self._browser.new_context(viewport=viewport)
        context.add_init_script(_INIT_SCRIPT % {"storage": json.dumps(LOCAL_STORAGE)})
        context.route("**/*", self._route)
        page = context.new_page()
        log_ = _Log(self.origin)
        page.on("console", log_.on_console)
        page.on("pageerror", log_.on_page_error)
        page.goto(self.url + "/")
        page.wait_for_function(_READY, timeout=READY_TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(STARTUP_SETTLE_MS)
        fpage = FrontendPage(page, log_, log_.take())
        fpage.startup_dialogs = [d["text"] for d in page.evaluate(_DIALOGS)]
        fpage.close_overlays()
        return fpage


def load_workflow(page: FrontendPage, workflow: dict, name: str = "workflow") -> LoadReport:
    """Load a UI workflow into an open frontend page and report what went wrong."""
    return page.load_workflow(workflow, name)


def screenshot(page: FrontendPage, path: pathlib.Path) -> pathlib.Path:
    """Fit the graph to the view and save a PNG."""
    return page.screenshot(path)

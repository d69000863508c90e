"""The real ComfyUI web frontend in headless Chromium, for loading workflows the way a user does.

Why a browser: only the frontend knows which node types it can build, how it validates a workflow
file, and what it shows the user about missing nodes and models. Reading the JSON in Python would miss
all of that.

Debian's /usr/bin/chromium is driven through the `playwright` package; no browser is ever
downloaded. Playwright gives every launch a fresh temporary profile (user-data-dir).

Only the frontend's public surface is used, so that the same harness reads frontends 1.32.9, 1.49.6
and 1.58.1 (tests/support/frontend_shown.py reads what they show about errors): `window.app` with its
`extensionManager` (settings, commands, toasts), LiteGraph and the graph, the extension hooks, and
the visible page by ARIA role and text, as a user or a screen reader meets it. What was learned:
- With no `Comfy.TutorialCompleted` setting the frontend treats the user as new and opens the
  template browser over the canvas; the setting is stored server-side, so it is posted to the
  server's /settings before the page loads (`prepare_user_settings`). The same request turns on
  `Comfy.Validation.Workflows` (the frontend's own check of a workflow file against its schema: on by
  default in 1.32.9, off from 1.49), which raises an alert for a file that fails it.
- A "Nodes 2.0" banner (localStorage `vueNodesBannerDismissed`) and the minimap would cover part of
  every screenshot; both are switched off.
- The renderer is a user setting too (`Comfy.VueNodes.Enabled`, "Modern Node Design (Nodes 2.0)"):
  IDEA_VUE_NODES=1 turns it on for every page (`VUE_NODES`), as a user switching it and reloading
  does. Its nodes are DOM elements ([data-node-id]), which support/frontend_shown.py and
  support/workflow_layout.py read where they exist.
- Missing node types: `loadGraphData` hands its own list to the `afterConfigureGraph` extension hook;
  it is read besides checking `LiteGraph.registered_node_types` directly.
- Toasts are collected as the page shows them: leaf elements of role alert or status with text.
Console noise that is not the workflow's fault is listed in IGNORED_CONSOLE with the reason.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import urllib.request
from urllib.parse import urlsplit

from support.frontend_shown import DIALOG_TEXTS, LEADS_TO_PANEL, LoadReport, read_shown
from support.scripts import script

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
READY_TIMEOUT_MS = 60_000
STARTUP_SETTLE_MS = 500  # late start-up messages
FIRST_RUN_TIMEOUT_MS = 15_000  # the first-run template browser opens seconds after the app is ready

# The node renderer under test: the classic canvas, or with IDEA_VUE_NODES=1 the Vue node renderer
# ("Nodes 2.0": each node a DOM element, [data-node-id]), switched by the user setting a user switches.
VUE_NODES = os.environ.get("IDEA_VUE_NODES", "") == "1"
# Server-side user settings that keep the first-run UI (template browser, minimap) off the canvas, have
# the frontend check every workflow file against its schema, and choose the renderer.
USER_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False, "Comfy.Validation.Workflows": True,
                 "Comfy.VueNodes.Enabled": VUE_NODES}
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
    (re.compile(r"^ComfyApp graph accessed before initialization$"),
     "frontend 1.49.6 at start-up: its own code reads app.graph before the graph exists; logged on "
     "every page load, before any workflow, with or without this pack"),
]

_INIT_SCRIPT = script("page_init")
_READY = script("app_ready")
_HOOK = script("hook_missing_nodes")
_LOAD = script("load_workflow")

# The frontend's own Fit View command animates; this sets the same view at once. The nodes'
# bounding boxes (title bar included) fill FIT_ZOOM of the canvas, leaving room for the side bar.
FIT_ZOOM = 0.88
_FIT_VIEW = script("fit_view")
_FROM_API = script("api_to_ui")
_DISMISS_TOASTS = script("dismiss_toasts")
_VISIBLE_DIALOGS = script("visible_dialog_count")
CLOSE_BUTTONS = re.compile(r"^(Close|Close dialog)$")


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
        """Close dialogs and toasts so the next load and screenshot start clean, as a user would:
        Escape, else the dialog's Close button, else a click beside it (1.32.9's template browser)."""
        self.page.evaluate(_DISMISS_TOASTS)
        attempts = (lambda: self.page.keyboard.press("Escape"),
                    lambda: self.page.get_by_role("dialog").get_by_role("button", name=CLOSE_BUTTONS).first.click(
                        timeout=1_000),
                    lambda: self.page.mouse.click(2, self.page.viewport_size["height"] - 2))
        for attempt in attempts * 2:
            if self._dialogs_gone(0):
                return
            try:
                attempt()
            except Exception:  # playwright: no such button, or it went while being clicked
                pass
            if self._dialogs_gone(700):
                return
        raise RuntimeError(f"dialogs stay open: {self.page.evaluate(DIALOG_TEXTS)}")

    def _dialogs_gone(self, wait_ms: int) -> bool:
        if wait_ms == 0:
            return not self.page.evaluate(_VISIBLE_DIALOGS)
        try:
            self.page.wait_for_function(f"() => !({_VISIBLE_DIALOGS})()", timeout=wait_ms)
            return True
        except Exception:  # playwright's TimeoutError
            return False

    def load_workflow(self, workflow: dict, name: str = "workflow", settle_ms: int = 300) -> LoadReport:
        """`app.loadGraphData(workflow)` as the UI does it on a file drop; collect what went wrong."""
        self.close_overlays()
        self._log.take()
        self.page.evaluate("() => { window.__ideaToasts = []; }")
        self.page.evaluate(_HOOK)
        result = self.page.evaluate(_LOAD, [workflow, name])
        self.page.wait_for_timeout(settle_ms)  # late console errors, dialogs and toasts
        toasts = [t for t in self.page.evaluate("() => window.__ideaToasts") if LEADS_TO_PANEL not in t]
        errors, warnings, page_errors, ignored = self._log.take()  # the load's, not the panel's (1.58.1
        shown = read_shown(self.page)  # warns "Invalid layout total size" when its errors panel opens)
        if result["thrown"]:
            page_errors.append(f"loadGraphData threw: {result['thrown']}")
        missing = sorted(set(result["unregistered"]) | set(result["hook"] or []))
        report = LoadReport(name=name, node_count=result["nodes"], missing_node_types=missing, shown=shown,
                            console_errors=errors, page_errors=page_errors, toasts=toasts,
                            console_warnings=warnings, ignored=ignored)
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

    @staticmethod
    def _route(origin: str):
        """Keep the page on its ComfyUI server: anything else fails at once, not after a DNS wait."""
        def route_(route) -> None:
            parts = urlsplit(route.request.url)
            if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == origin:
                route.continue_()
            else:
                route.abort("blockedbyclient")
        return route_

    def open_page(self, prepare: bool = True, size: tuple[int, int] | None = None,
                  wait_for_dialog: bool = False, server_url: str | None = None) -> FrontendPage:
        """A new tab with the app ready, the first-run UI off (unless `prepare` is False) and
        start-up messages and dialogs set aside; `size`: its viewport, if not the browser's;
        `wait_for_dialog`: wait (up to FIRST_RUN_TIMEOUT_MS) for a dialog to open at start-up;
        `server_url`: another ComfyUI server than the browser's (playwright runs one browser a thread)."""
        if self._browser is None:
            raise RuntimeError("use Frontend as a context manager")
        url = server_url.rstrip("/") if server_url else self.url
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if prepare:
            prepare_user_settings(url)
        viewport = {"width": size[0], "height": size[1]} if size else self.viewport
        context = self._browser.new_context(viewport=viewport)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)  # "Copy URL"
        context.add_init_script(_INIT_SCRIPT % {"storage": json.dumps(LOCAL_STORAGE)})
        context.route("**/*", self._route(origin))
        page = context.new_page()
        log_ = _Log(origin)
        page.on("console", log_.on_console)
        page.on("pageerror", log_.on_page_error)
        page.goto(url + "/")
        page.wait_for_function(_READY, timeout=READY_TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(STARTUP_SETTLE_MS)
        fpage = FrontendPage(page, log_, log_.take())
        if wait_for_dialog:  # a first-run dialog opens seconds after start-up
            try:
                page.wait_for_function(_VISIBLE_DIALOGS, timeout=FIRST_RUN_TIMEOUT_MS)
            except Exception:  # playwright's TimeoutError: none opened, which the caller reads
                pass
        fpage.startup_dialogs = page.evaluate(DIALOG_TEXTS)
        fpage.close_overlays()
        return fpage


def load_workflow(page: FrontendPage, workflow: dict, name: str = "workflow") -> LoadReport:
    """Load a UI workflow into an open frontend page and report what went wrong."""
    return page.load_workflow(workflow, name)


def screenshot(page: FrontendPage, path: pathlib.Path) -> pathlib.Path:
    """Fit the graph to the view and save a PNG."""
    return page.screenshot(path)

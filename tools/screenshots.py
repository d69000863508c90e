"""Screenshots of the bundled workflows for the README: docs/screenshots/<key>.png, and the template
browser's thumbnails, workflows/<title>.jpg (keys and titles: tools/make_workflows.py).

Each workflow file is loaded into the real frontend (headless Chromium, tests/support/frontend.py)
as a dropped file is, checked to load cleanly, fitted to the view and saved, at the frontend's default
settings (text is drawn only where a node's text would be at least 8 px on screen, so a picture
whose zoom is too small for that is refused rather than saved as grey boxes). So the pictures show
what a user sees and are remade, not hand-edited, when a workflow changes.

    python -m tools.screenshots [--url http://127.0.0.1:8188] [--out docs/screenshots] [KEY ...]

Without --url a throw-away server is started whose input folder holds placeholder pictures under
the names the workflows' Load Image nodes use (a running server shows its own files instead).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import pathlib
import tempfile

from .harness import support
from .make_workflows import WORKFLOWS as REGISTRY

REPO = pathlib.Path(__file__).resolve().parents[1]

log = logging.getLogger("screenshots")

WORKFLOWS = REPO / "workflows"
OUT = REPO / "docs" / "screenshots"
SIZE = (1920, 1080)
# The frontend's defaults, except the render statistics it prints in the corner.
SETTINGS = {"Comfy.Graph.CanvasInfo": False}
# Screen margins (left, top, right, bottom; CSS px) kept free of the graph: the side bar, the tab bar
# with the floating workflow menu and Run button, and the zoom controls.
CHROME = (80, 100, 30, 80)

# Fits nodes and group frames (their titles stand above the nodes) into the free part of the window.
_FIT = """async ([left, top, right, bottom]) => {
  app.canvas.deselectAll();
  const rects = [...app.graph.nodes.map(n => n.boundingRect), ...app.graph.groups.map(g => g._bounding)];
  const x0 = Math.min(...rects.map(r => r[0])), y0 = Math.min(...rects.map(r => r[1]));
  const x1 = Math.max(...rects.map(r => r[0] + r[2])), y1 = Math.max(...rects.map(r => r[1] + r[3]));
  const w = innerWidth - left - right, h = innerHeight - top - bottom;
  const scale = Math.min(w / (x1 - x0), h / (y1 - y0), 1), ds = app.canvas.ds;
  ds.scale = scale;
  ds.offset = [(left + (w - (x1 - x0) * scale) / 2) / scale - x0, (top + (h - (y1 - y0) * scale) / 2) / scale - y0];
  app.canvas.setDirty(true, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {scale, lowQuality: app.canvas.low_quality};
}"""


def load_image_names(workflow: dict) -> list[str]:
    """The files the workflow's Load Image nodes name."""
    return [n["widgets_values"][0] for n in workflow["nodes"]
            if n["type"] == "LoadImage" and n.get("widgets_values")]


def placeholder(name: str, path: pathlib.Path) -> None:
    """A stand-in picture: a stick figure for a pose image, a head-and-shoulders shape otherwise."""
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (512, 512), (0, 0, 0) if "pose" in name else (196, 206, 214))
    draw = ImageDraw.Draw(image)
    if "pose" in name:
        joints = {"head": (256, 110), "neck": (256, 170), "hip": (256, 320), "lh": (170, 250), "rh": (342, 250),
                  "lf": (200, 460), "rf": (312, 460)}
        bones = [("head", "neck", (255, 0, 0)), ("neck", "hip", (255, 170, 0)), ("neck", "lh", (0, 255, 0)),
                 ("neck", "rh", (0, 170, 255)), ("hip", "lf", (170, 0, 255)), ("hip", "rf", (255, 0, 170))]
        for a, b, colour in bones:
            draw.line([joints[a], joints[b]], fill=colour, width=14)
    else:
        draw.ellipse([176, 90, 336, 270], fill=(120, 134, 148))
        draw.ellipse([96, 290, 416, 620], fill=(120, 134, 148))
    image.save(path)


def write_thumbnail(screenshot: pathlib.Path, target: pathlib.Path, width: int = 480) -> pathlib.Path:
    """The template browser asks for workflows/<name>.jpg next to each workflow; a small JPEG of the
    screenshot fills it (without one its card shows a broken image)."""
    from PIL import Image
    with Image.open(screenshot) as image:
        small = image.convert("RGB").resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    small.save(target, "JPEG", quality=85, optimize=True)
    return target


def screenshots(server_url: str, keys: list[str], out_dir: pathlib.Path, size: tuple[int, int] = SIZE,
                browser=None, workflows_dir: pathlib.Path = WORKFLOWS) -> list[pathlib.Path]:
    """Load each workflow and write <out_dir>/<key>.png; a workflow that does not load cleanly, or
    that the frontend would draw as bare boxes at this size, raises instead of being pictured.
    `browser`: an open support.frontend.Frontend to reuse."""
    frontend = support("frontend")
    if browser is None:
        with frontend.Frontend(server_url, *size) as own:
            return screenshots(server_url, keys, out_dir, size, own, workflows_dir)
    frontend.prepare_user_settings(server_url, {**frontend.USER_SETTINGS, **SETTINGS})
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key in keys:
        path = workflows_dir / REGISTRY[key].file_name
        page = browser.open_page(prepare=False)  # a fresh tab bar for each picture
        try:
            page.page.set_viewport_size({"width": size[0], "height": size[1]})
            report = page.load_workflow(json.loads(path.read_text(encoding="utf-8")), path.name)
            if report.problems:
                raise RuntimeError(f"{path.name} did not load cleanly: {report.problems}")
            page.close_overlays()
            view = page.page.evaluate(_FIT, list(CHROME))
            if view["lowQuality"]:
                raise RuntimeError(f"{path.name} fits the window only at {view['scale']:.2f}, where the frontend "
                                   "draws nodes without their text; make the layout more compact")
            target = out_dir / f"{key}.png"
            page.page.screenshot(path=str(target))
        finally:
            page.close()
        log.info("wrote %s (zoom %.0f %%)", target, view["scale"] * 100)
        written.append(target)
    return written


@contextlib.contextmanager
def own_server(paths: list[pathlib.Path]):
    """A throw-away server with this pack and placeholder input pictures; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="idea-screenshots-") as base:
        server = support("server").ComfyServer(pathlib.Path(base))
        for path in paths:
            for name in load_image_names(json.loads(path.read_text(encoding="utf-8"))):
                placeholder(name, server.base / "input" / name)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keys", nargs="*", help=f"workflow keys (default: all of {sorted(REGISTRY)})")
    parser.add_argument("--url", help="a running ComfyUI with this pack (default: start one)")
    parser.add_argument("--workflows", type=pathlib.Path, default=WORKFLOWS)
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    keys = args.keys or list(REGISTRY)
    files = [args.workflows / REGISTRY[k].file_name for k in keys]
    with (contextlib.nullcontext(args.url) if args.url else own_server(files)) as url:
        for key, path in zip(keys, screenshots(url, keys, args.out, workflows_dir=args.workflows)):
            print(path)
            print(write_thumbnail(path, args.workflows / f"{REGISTRY[key].title}.jpg"))


if __name__ == "__main__":
    main()

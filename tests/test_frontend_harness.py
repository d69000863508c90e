"""The real frontend in headless Chromium and the UI -> API conversion, on core nodes.

These are the checks the shipped workflows will go through: load into the frontend with nothing
missing and nothing logged, a screenshot, and a run on the real server of the API prompt that the
Python converter makes (which must equal the frontend's own graphToPrompt).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from PIL import Image

from support import tiny_models
from support.frontend import Frontend, prepare_user_settings
from support.workflow_api import (FRONTEND_EXTENDED, FRONTEND_ONLY, ConversionError, link_kinds, strip_meta,
                                  ui_to_api, unreadable_inputs, widget_layout)

pytestmark = pytest.mark.frontend  # runs in the browser: .ci/run repeats these with each newer frontend

CKPT = "idea-tiny-sd15.safetensors"
VIEWPORT = (1280, 720)


def core_prompt(ckpt: str = CKPT) -> dict:
    """Text to image with core nodes only, tiny enough for the CPU (64 px, one step)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a face", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 1, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "harness", "images": ["8", 0]}},
    }


def hand_written_missing() -> dict:
    """A UI file as a person might write it: one core node and one that no pack provides."""
    return {
        "last_node_id": 2, "last_link_id": 1, "version": 0.4, "groups": [], "config": {}, "extra": {},
        "nodes": [
            {"id": 1, "type": "EmptyLatentImage", "pos": [0, 0], "size": [300, 110], "flags": {}, "order": 0,
             "mode": 0, "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}],
             "properties": {}, "widgets_values": [64, 64, 1]},
            {"id": 2, "type": "NoSuchNode_XYZ", "pos": [400, 0], "size": [200, 60], "flags": {}, "order": 1,
             "mode": 0, "inputs": [{"name": "latent", "type": "LATENT", "link": 1}], "outputs": [],
             "properties": {}, "widgets_values": []},
        ],
        "links": [[1, 1, 0, 2, 0, "LATENT"]],
    }


# Adds what only the frontend has to the loaded core graph: a PrimitiveNode driving the seed, a
# Reroute on the VAE, a Note, a bypassed LatentUpscaleBy before the sampler and a muted preview.
DECORATE = """() => {
  const g = app.graph, by = t => g.nodes.find(n => n.type === t), add = (t, pos) => {
    const n = LiteGraph.createNode(t); n.pos = pos; g.add(n); return n; };
  const ks = by('KSampler'), ck = by('CheckpointLoaderSimple'), dec = by('VAEDecode'), lat = by('EmptyLatentImage');
  const prim = add('PrimitiveNode', [700, 600]);
  prim.connect(0, ks, ks.inputs.findIndex(i => i.name === 'seed'));
  prim.widgets[0].value = 1234;
  const rr = add('Reroute', [900, 600]); ck.connect(2, rr, 0); rr.connect(0, dec, 1);
  add('Note', [0, 700]).widgets[0].value = 'frontend-only note';
  const up = add('LatentUpscaleBy', [400, 700]); lat.connect(0, up, 0); up.connect(0, ks, 3); up.mode = 4;
  const pv = add('PreviewImage', [1400, 400]); dec.connect(0, pv, 0); pv.mode = 2;
  return JSON.parse(JSON.stringify(g.serialize()));
}"""

# Every node type the frontend registered: the names of the widgets it saves, and how many values
# it saves (a widget an extension adds only to show something, serialize false, is in neither).
WIDGETS_OF_EVERY_TYPE = """() => Object.fromEntries(Object.keys(LiteGraph.registered_node_types).map(t => {
  const n = LiteGraph.createNode(t);
  return [t, {names: (n.widgets || []).filter(w => w.serialize !== false).map(w => w.name),
              saved: (n.serialize().widgets_values || []).length}];
}))"""


@pytest.fixture(scope="module")
def frontend(server):
    with Frontend(server.url, *VIEWPORT) as browser:
        yield browser


@pytest.fixture(scope="module")
def page(frontend):
    return frontend.open_page()


@pytest.fixture(scope="module")
def object_info(server):
    tiny_models.install_checkpoint(server.base, name=CKPT)
    return server.get("/object_info")


@pytest.fixture(scope="module")
def core_ui(page, object_info):
    return page.api_to_ui(core_prompt(), "core")


def test_startup_is_clean_and_every_server_node_is_registered(page, object_info):
    assert page.startup_errors == [] and page.startup_page_errors == [] and page.startup_dialogs == []
    registered = page.registered_node_types()
    assert "IDEA_FaceIDEmbed" in registered
    assert set(object_info) <= registered


def test_first_run_template_browser_is_seen_without_the_prepared_settings(server, frontend):
    prepare_user_settings(server.url, {"Comfy.TutorialCompleted": False})
    try:
        fresh = frontend.open_page(prepare=False, wait_for_dialog=True)
        assert any(d.startswith("Templates") for d in fresh.startup_dialogs), fresh.startup_dialogs
        fresh.close()
    finally:
        prepare_user_settings(server.url)


def test_core_workflow_loads_without_missing_nodes_or_errors(page, core_ui):
    report = page.load_workflow(core_ui, "core")
    assert report.problems == []
    assert report.node_count == 7


def test_unknown_node_type_is_reported_missing(page):
    report = page.load_workflow(hand_written_missing(), "missing")
    assert report.missing_node_types == ["NoSuchNode_XYZ"]
    assert report.shown_missing_nodes == ["NoSuchNode_XYZ"]  # named to the user (dialog or errors panel)
    assert report.node_count == 2 and report.problems == ["missing node type: NoSuchNode_XYZ"]


def test_file_failing_the_frontends_schema_is_reported(page, core_ui):
    broken = copy.deepcopy(core_ui)
    broken["nodes"][0]["pos"] = "left"  # fails the frontend's workflow schema
    report = page.load_workflow(broken, "broken")
    assert any("zod schema" in t for t in report.toasts), report
    assert report.problems


def test_screenshot_is_a_png_of_the_whole_graph(page, core_ui, tmp_path):
    page.load_workflow(core_ui, "core")
    path = page.screenshot(tmp_path / "core.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.size == VIEWPORT
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.std() > 10, "the screenshot is blank"
    in_view = page.page.evaluate("""() => app.graph.nodes.every(n => {
      const [x, y, w, h] = n.boundingRect, ds = app.canvas.ds;
      const a = ds.convertOffsetToCanvas([x, y]), b = ds.convertOffsetToCanvas([x + w, y + h]);
      return a[0] >= 0 && a[1] >= 0 && b[0] <= innerWidth && b[1] <= innerHeight; })""")
    assert in_view, "some node lies outside the screenshot"


def test_widget_layout_matches_the_frontend_for_every_node_type_it_converts(page, object_info):
    """Every node type the Python converter accepts saves its widgets where it expects them; the
    others (widget kinds of 2026 hosts, frontend extensions) it refuses by name."""
    frontend = page.page.evaluate(WIDGETS_OF_EVERY_TYPE)
    links = link_kinds(object_info)
    wrong, refused = {}, set(FRONTEND_EXTENDED)
    for node_type, info in object_info.items():
        if unreadable_inputs(info, links):
            refused.add(node_type)
        layout, seen = widget_layout(info), frontend[node_type]
        inputs = set(info["input"].get("required", {})) | set(info["input"].get("optional", {}))
        as_seen = [name if name in inputs else FRONTEND_ONLY for name in seen["names"]]
        if as_seen != layout or seen["saved"] != len(layout):
            wrong[node_type] = (seen, layout)
    assert set(wrong) <= refused, {k: v for k, v in wrong.items() if k not in refused}
    for node_type in sorted(refused & set(object_info))[:5]:  # refused, by name, when a workflow holds one
        node = {"id": 1, "type": node_type, "mode": 0, "inputs": [], "widgets_values": []}
        with pytest.raises(ConversionError, match=node_type):
            ui_to_api({"nodes": [node], "links": []}, object_info)


def test_python_conversion_equals_the_frontends_and_runs_on_the_server(page, server, core_ui, object_info):
    assert strip_meta(ui_to_api(core_ui, object_info)) == strip_meta(core_prompt())
    page.load_workflow(core_ui, "decorated")
    decorated = page.page.evaluate(DECORATE)
    by_frontend = page.graph_to_prompt()
    by_python = ui_to_api(decorated, object_info)
    assert by_python == by_frontend
    assert by_python["3"]["inputs"]["seed"] == 1234  # from the PrimitiveNode
    assert by_python["3"]["inputs"]["latent_image"] == ["5", 0]  # around the bypassed upscale
    assert by_python["8"]["inputs"]["vae"] == ["4", 2]  # through the Reroute
    assert len(by_python) == 7  # notes, reroute, primitive, bypassed and muted nodes dropped

    entry = server.run_ok(by_python, timeout=300)
    images = entry["outputs"]["9"]["images"]
    with Image.open(server.base / "output" / images[0]["subfolder"] / images[0]["filename"]) as image:
        assert image.size == (64, 64)


def test_the_page_runs_the_frontend_installed_beside_the_host(page):
    """The frontend under test is the comfyui-frontend-package in the host's Python (the one
    IDEA_FRONTEND asked provisioning for), so a matrix column tests what it names."""
    import importlib.metadata
    assert page.page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__") == \
        importlib.metadata.version("comfyui-frontend-package")

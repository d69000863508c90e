"""What the real frontend shows of the pack's nodes: every output by its name, Face Similarity's
summary and FaceID Embed's agreement on the node itself (read off the screen after a real run, with no
picture or error box on any of the pack's nodes), node search by the words people type, and Load
Identity's search preview. Under either renderer (IDEA_VUE_NODES, tests/support/frontend.py).

Frontend 1.32.9 searches node names and display names only (fuzzy, and a word must start within the
first 30 or so characters), so the display names carry the words: "FaceID Embed (Face Embedding)",
"Learn ID Token (Textual Inversion)", "ID-Enhancer (New Identity)", "Apply ID-Adapter (Identity)".
The search is read as the user meets it: the search box opened, the words typed, the listed results.
"""
from __future__ import annotations

import pytest
from support import real_faces
from support import workflow_fixtures as wf
from support.frontend import Frontend
from support.frontend_shown import node_texts, pack_node_marks, search_nodes

pytestmark = pytest.mark.frontend  # runs in the browser: .ci/run repeats these with each newer frontend

OUTPUTS = {
    "IDEA_FaceIDEmbed": ["face_embedding", "aligned_faces", "agreement"],
    "IDEA_IDEnhancer": ["identity"],
    "IDEA_LearnIDToken": ["identity", "loss_curve", "clip"],
    "IDEA_ApplyIDAdapter": ["model"],
    "IDEA_ApplyIDAdapterConditioning": ["conditioning"],
    "IDEA_LoadIdentity": ["identity"],
    "IDEA_FaceSimilarity": ["similarities", "mean_similarity", "face_found_share", "summary"],
}
SEARCHES = {
    "embedding": {"IDEA_FaceIDEmbed"},
    "textual inversion": {"IDEA_LearnIDToken"},
    "identity": {"IDEA_LoadIdentity", "IDEA_IDEnhancer", "IDEA_ApplyIDAdapter"},
}

# Face Similarity after FaceID Embed on one photo, queued from the page as the Run button does; the
# summary box is read once the server reports the node executed.
RUN_SIMILARITY = """async ([photo, pack]) => {
  const face = {provider: "CPU", detection_size: 640};
  app.graph.clear();
  await app.loadApiJson({
    "1": {class_type: "LoadImage", inputs: {image: photo}},
    "2": {class_type: "IDEA_FaceIDEmbed", inputs: {images: ["1", 0], model_pack: pack, face_selection: "largest",
           face_index: 0, crop_size: 128, ...face}},
    "3": {class_type: "IDEA_FaceSimilarity",
          inputs: {images: ["1", 0], reference: ["2", 0], model_pack: pack, ...face}},
  }, "similarity");
  const node = app.graph.nodes.find(n => n.type === "IDEA_FaceSimilarity");
  const box = () => node.widgets.find(w => w.name === "summary_text");
  const before = box().value;
  const api = app.api;
  const executed = new Promise(done => api.addEventListener("executed", e => {
    if (String(e.detail.node) === String(node.id)) done(e.detail.output); }));
  const sent = (await app.graphToPrompt()).output[String(node.id)].inputs;
  await app.queuePrompt(0, 1);
  const output = await Promise.race([executed, new Promise(r => setTimeout(() => r(null), 120000))]);
  await new Promise(r => requestAnimationFrame(r));
  return {node: node.id, before, after: box().value, output, sent, saved: node.serialize().widgets_values};
}"""


@pytest.fixture(scope="module")
def node_server(server):
    real_faces.write_real_pack(server.base / "models", wf.FACE_PACK)
    wf.install_pictures(server.base / "input")
    return server


@pytest.fixture(scope="module")
def page(node_server):
    with Frontend(node_server.url, 1280, 720) as browser:
        yield browser.open_page()


def test_every_output_shows_its_name_not_its_type(node_server, page):
    info = node_server.get("/object_info")
    shown = page.page.evaluate("""(types) => Object.fromEntries(types.map(t =>
      [t, LiteGraph.createNode(t).outputs.map(o => o.label || o.localized_name || o.name)]))""", list(OUTPUTS))
    for node_type, names in OUTPUTS.items():
        assert info[node_type]["output_name"] == names
        assert shown[node_type] == names


@pytest.mark.parametrize("query", list(SEARCHES))
def test_node_search_finds_the_nodes_by_the_words_people_type(node_server, page, query):
    names = {t: i["display_name"] for t, i in node_server.get("/object_info").items() if t.startswith("IDEA_")}
    page.close_overlays()
    listed = search_nodes(page.page, query)
    found = {t for t, name in names.items() if any(text.startswith(name) for text in listed)}
    assert SEARCHES[query] <= found, listed


def test_load_identity_search_preview_names_a_file(node_server, page):
    """The search preview prints each widget's default ('undefined' for a list without one): it is
    the file Learn ID Token writes under its default name, when that or no file is saved, else the
    first file (tests/test_load_identity.py covers the empty folder)."""
    spec = node_server.get("/object_info/IDEA_LoadIdentity")["IDEA_LoadIdentity"]["input"]["required"]["identity_file"]
    files = spec[1]["options"] if spec[0] == "COMBO" else spec[0]
    expected = "my_person.safetensors" if not files or "my_person.safetensors" in files else files[0]
    assert spec[1]["default"] == expected
    assert page.page.evaluate("() => LiteGraph.createNode('IDEA_LoadIdentity').widgets[0].value") == expected


def test_face_similarity_shows_its_summary_on_the_node(page):
    page.close_overlays()
    result = page.page.evaluate(RUN_SIMILARITY, ["my_person_1.png", wf.FACE_PACK])
    assert result["output"] is not None, "Face Similarity did not run"
    [text] = result["output"]["text"]
    assert result["before"] == "" and result["after"] == text
    assert text.startswith("image 1: ") and "mean" in text
    assert node_texts(page.page, result["node"]) == [text]  # what the user sees on the node
    assert pack_node_marks(page.page) == {}  # no picture or error box on FaceID Embed or Face Similarity
    # another workflow opened in its own tab, then the run's tab again: the frontend rebuilds the graph
    # and hands the outputs back, and the text is shown again
    page.load_workflow(wf.load("idea_saved_identity"), "another workflow")
    page.close_overlays()
    page.page.get_by_text("similarity", exact=True).first.click()
    page.page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'IDEA_FaceSimilarity')")
    assert node_texts(page.page, result["node"]) == [text]
    assert "summary_text" not in result["sent"]  # shown only: not sent with the prompt...
    # ...nor saved in the workflow: only the inputs' widgets are
    assert result["saved"] == [wf.FACE_PACK, "CPU", 640, "largest", 0]


# FaceID Embed on two photos of one person (joined by the host's Image Batch), queued from the page;
# its agreement box does not exist before the run (a saved workflow's layout keeps the node's size).
RUN_AGREEMENT = """async ([first, second, pack]) => {
  app.graph.clear();
  await app.loadApiJson({
    "1": {class_type: "LoadImage", inputs: {image: first}},
    "2": {class_type: "LoadImage", inputs: {image: second}},
    "3": {class_type: "ImageBatch", inputs: {image1: ["1", 0], image2: ["2", 0]}},
    "4": {class_type: "IDEA_FaceIDEmbed", inputs: {images: ["3", 0], model_pack: pack, provider: "CPU",
           face_selection: "largest", face_index: 0, detection_size: 640, crop_size: 128,
           on_mismatch: "stop", min_agreement: 0}},
    "5": {class_type: "PreviewImage", inputs: {images: ["4", 1]}},
  }, "agreement");
  const node = app.graph.nodes.find(n => n.type === "IDEA_FaceIDEmbed");
  const box = () => node.widgets.find(w => w.name === "agreement_text");
  const before = {box: box() !== undefined, height: node.size[1]};
  const api = app.api;
  const executed = new Promise(done => api.addEventListener("executed", e => {
    if (String(e.detail.node) === String(node.id)) done(e.detail.output); }));
  const sent = (await app.graphToPrompt()).output[String(node.id)].inputs;
  await app.queuePrompt(0, 1);
  const output = await Promise.race([executed, new Promise(r => setTimeout(() => r(null), 120000))]);
  await new Promise(r => requestAnimationFrame(r));
  return {node: node.id, before, after: box()?.value, height: node.size[1], output, sent,
          saved: node.serialize().widgets_values};
}"""


def test_faceid_embed_shows_the_photos_agreement_on_the_node(page):
    page.close_overlays()
    result = page.page.evaluate(RUN_AGREEMENT, ["my_person_1.png", "person_a.png", wf.FACE_PACK])
    assert result["output"] is not None, "FaceID Embed did not run"
    [text] = result["output"]["text"]
    assert not result["before"]["box"] and result["after"] == text
    assert text.startswith("photo 1: ") and "all 2 photos agree" in text
    assert node_texts(page.page, result["node"]) == [text]  # what the user sees on the node
    assert pack_node_marks(page.page) == {}
    assert result["height"] > result["before"]["height"]  # the node grew to show it
    assert "agreement_text" not in result["sent"]
    assert result["saved"] == [wf.FACE_PACK, "CPU", "largest", 0, 640, 128, "stop", 0, "face"]  # framing: default

"""The pack in the frontend's other languages, read off the screen: with the language set to Chinese,
Japanese and Korean, the node search lists every pack node by its translated name (under the
translated category), finds Learn ID Token when its translated name is typed, and an input's tooltip
shows in that language. In English, the search finds the nodes by the words people type.

Two frontend differences are asserted as they are, not skipped:
- Frontends before 1.34.9 (1.32.9, ComfyUI 0.3.75's pin) lose every pack's translations: they merge
  the server's /i18n into a language before loading the language's own messages, which then replace
  it (ComfyUI_frontend PR #7214 keeps them; 1.34.0 lacks that, 1.34.9 has it). Core nodes are
  translated there; the pack's names and tooltips stay English, so its translated names find nothing.
- Search words (`search_aliases`) are sent by ComfyUI 0.33, not by 0.3.75 (whose frontend, 1.32.9,
  searches names only).
"""
from __future__ import annotations

import pytest
from support.frontend import Frontend
from support.frontend_locale import frontend_version, input_tooltip, open_page_in, place_chosen_node, reset_language
from support.frontend_shown import search_nodes
from support.pack_locales import SEARCH_WORDS, load, pack_nodes

pytestmark = pytest.mark.frontend  # runs in the browser: .ci/run repeats these with each newer frontend

LANGUAGES = ("zh", "ja", "ko")
FIRST_KEEPING_PACK_TRANSLATIONS = (1, 34, 9)
LEARN = "IDEA_LearnIDToken"
# A core node, to show the page runs in the language whatever happens to the pack's text.
LOAD_IMAGE = {"zh": "加载图像", "ja": "画像を読み込む", "ko": "이미지 로드"}


@pytest.fixture(scope="module")
def browser(server):
    try:
        with Frontend(server.url, 1280, 720) as frontend:
            yield frontend
    finally:
        reset_language(server.url)  # the session's later pages start in English again


@pytest.fixture(scope="module", params=LANGUAGES)
def lang_page(request, browser):
    page = open_page_in(browser, request.param)
    yield request.param, page
    page.close()


def _keeps_pack_translations(page) -> bool:
    return frontend_version(page) >= FIRST_KEEPING_PACK_TRANSLATIONS


def _shown_texts(lang: str, keeps: bool) -> tuple[dict, dict]:
    """(nodeDefs, nodeCategories) the page should show: the language's, or English where the
    frontend loses the pack's translations."""
    shown = lang if keeps else "en"
    return load(shown, "nodeDefs.json"), load(shown, "main.json")["nodeCategories"]


def test_the_page_runs_in_the_language(lang_page):
    lang, page = lang_page
    page.close_overlays()
    assert any(text.startswith(LOAD_IMAGE[lang]) for text in search_nodes(page.page, "LoadImage")), lang


def test_the_search_lists_every_pack_node_by_its_name_in_the_language(lang_page):
    lang, page = lang_page
    keeps = _keeps_pack_translations(page)
    names, categories = _shown_texts(lang, keeps)
    for node_id, text in names.items():
        page.close_overlays()
        listed = search_nodes(page.page, text["display_name"])
        mine = [entry for entry in listed if entry.startswith(text["display_name"])]
        assert mine, (lang, node_id, text["display_name"], listed)
        assert categories["ID-EA"] in mine[0][len(text["display_name"]):], mine[0]
    if not keeps:  # the translated names are nowhere: frontend < 1.34.9 drops the pack's translations
        translated = load(lang, "nodeDefs.json")[LEARN]["display_name"]
        page.close_overlays()
        assert not [t for t in search_nodes(page.page, translated) if t.startswith(translated)]


def test_learn_id_token_is_found_by_its_translated_name_and_its_tooltip_reads_in_the_language(lang_page):
    """Typing the translated name and pressing Enter puts Learn ID Token on the canvas (before 1.34.9:
    the English name, the only one shown); resting the mouse on its first input socket shows that
    input's tooltip."""
    lang, page = lang_page
    names, _ = _shown_texts(lang, _keeps_pack_translations(page))
    page.close_overlays()
    page.page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.NewBlankWorkflow'); }")
    page.page.wait_for_function("() => app.graph.nodes.length === 0")
    search_nodes(page.page, names[LEARN]["display_name"], choose=True)
    place_chosen_node(page)
    assert page.page.evaluate("() => app.graph.nodes.map(n => n.type)") == [LEARN]
    first_input = next(iter(names[LEARN]["inputs"].values()))
    assert input_tooltip(page, LEARN, 0) == first_input["tooltip"]
    shown_name = page.page.evaluate("(t) => { const i = app.graph.nodes.find(n => n.type === t).inputs[0];"
                                    " return i.label || i.localized_name || i.name; }", LEARN)
    assert shown_name == first_input["name"]


@pytest.fixture(scope="module")
def english_page(browser):
    page = open_page_in(browser, "en")
    yield page
    page.close()


@pytest.mark.parametrize("word", list(SEARCH_WORDS))
def test_the_search_finds_the_nodes_by_the_words_people_type(server, english_page, word):
    info = pack_nodes(server.get("/object_info"))
    english = load("en", "nodeDefs.json")
    english_page.close_overlays()
    listed = search_nodes(english_page.page, word)
    found = {node_id for node_id, text in english.items()
             if any(entry.startswith(text["display_name"]) for entry in listed)}
    if all("search_aliases" in node for node in info.values()):
        assert SEARCH_WORDS[word] <= found, (word, listed)
        return
    # ComfyUI 0.3.75 sends no search words: a word finds the nodes whose names hold it, and a word no
    # name holds (PuLID, InstantID, ...) finds none of the pack's nodes there
    assert not any("search_aliases" in node for node in info.values())
    named = {node_id for node_id, text in english.items()
             if all(part in text["display_name"].lower() for part in word.lower().split())}
    assert named <= found and (named or not found), (word, listed)

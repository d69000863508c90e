"""The pack's translations, its search words and its declared host range, against the real host.

locales/ is data the frontend reads, so nothing keeps it in step with the node schemas but these
tests: every node, input, output and category the host lists for the pack has its entry in every
language, no entry names something that is gone, and the English file is the schemas' own text.
Each translation also records the English it translates (`translated_from.json`, which the host does
not serve), so a renamed input or a changed tooltip fails here until every language is updated.
"""
from __future__ import annotations

import json
import os
import re
import tomllib

import pytest
from support import paths
from support.pack_locales import (FILES, LANGUAGES, LOCALES, SEARCH_WORDS, TRANSLATED_FROM, categories, host_version,
                                  leaves, load, pack_nodes, schema_text)

TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
# The script each translation is written in: every display name, description and tooltip has some.
SCRIPT = {"zh": re.compile(r"[\u4e00-\u9fff]"), "ja": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]"),
          "ko": re.compile(r"[\uac00-\ud7af]")}
# Frontends compile names and descriptions (1.32.9 also tooltips) as vue-i18n messages, in which these
# characters start a placeholder, a linked message or a plural: such text would not show as written.
MESSAGE_SYNTAX = re.compile(r"[{}@|$]")


@pytest.fixture(scope="module")
def object_info(server):
    return server.get("/object_info")


def _paths(tree) -> set[tuple]:
    return {path for path, _ in leaves(tree)}


def test_each_language_has_exactly_its_files():
    assert sorted(p.name for p in LOCALES.iterdir()) == sorted(LANGUAGES)
    for lang in LANGUAGES:
        record = [TRANSLATED_FROM] if lang != "en" else []
        assert sorted(p.name for p in (LOCALES / lang).iterdir()) == sorted([*FILES, *record]), lang


def test_the_english_file_is_the_schemas_own_text(object_info):
    """The frontend shows English from these files too (1.58 prefers a pack's en file to the server's
    text), so it must say what the schemas say."""
    schemas = dict(leaves({node_id: schema_text(info) for node_id, info in pack_nodes(object_info).items()}))
    written = dict(leaves(load("en", "nodeDefs.json")))
    differ = {path: (written.get(path), schemas.get(path)) for path in schemas.keys() | written.keys()
              if written.get(path) != schemas.get(path)}
    assert not differ, ("locales/en/nodeDefs.json (file, schema) where they differ; update it and every "
                        f"other language: {differ}")
    assert load("en", "main.json") == {"nodeCategories": {part: part for part in categories(object_info)}}


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_language_covers_every_node_input_output_and_category_and_nothing_else(object_info, lang):
    english = _paths(load("en", "nodeDefs.json"))
    translated = _paths(load(lang, "nodeDefs.json"))
    assert not english - translated, f"{lang} lacks: {sorted(english - translated)}"
    assert not translated - english, f"{lang} has stale entries: {sorted(translated - english)}"
    assert set(load(lang, "main.json")) == {"nodeCategories"}
    assert set(load(lang, "main.json")["nodeCategories"]) == categories(object_info)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_translation_translates_the_english_of_today(lang):
    """When an English text changes, its translations are out of date until they are redone and the
    new English is recorded in the language's translated_from.json."""
    recorded = json.loads((LOCALES / lang / TRANSLATED_FROM).read_text(encoding="utf-8"))
    assert sorted(recorded) == sorted(FILES)
    for file in FILES:
        was, now = dict(leaves(recorded[file])), dict(leaves(load("en", file)))
        stale = {path: {"translated from": was.get(path), "English now": now.get(path)}
                 for path in was.keys() | now.keys() if was.get(path) != now.get(path)}
        assert not stale, f"locales/{lang}/{file}: redo these and record the English in {TRANSLATED_FROM}: {stale}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_translations_are_written_in_their_language(lang):
    english = dict(leaves(load("en", "nodeDefs.json")))
    for path, text in leaves(load(lang, "nodeDefs.json")):
        assert isinstance(text, str) and text.strip(), (lang, path)
        if path[-1] in ("display_name", "description", "tooltip"):
            assert SCRIPT[lang].search(text) and text != english[path], (lang, path, text)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_text_holds_the_frontends_message_syntax(lang):
    for file in FILES:
        for path, text in leaves(load(lang, file)):
            assert not MESSAGE_SYNTAX.search(text), (lang, file, path, text)


def test_the_host_serves_every_language_of_the_pack(server):
    """GET /i18n, what the frontend merges into its messages at start-up."""
    served = server.get("/i18n")
    for lang in LANGUAGES:
        nodes = load(lang, "nodeDefs.json")
        assert {k: served[lang]["nodeDefs"][k] for k in nodes} == nodes, lang
        for part, text in load(lang, "main.json")["nodeCategories"].items():
            assert served[lang]["nodeCategories"][part] == text


def test_search_words_reach_object_info_where_the_host_takes_them(object_info):
    """ComfyUI 0.33 sends `search_aliases` for every node (its core nodes' too); 0.3.75 has no such
    field, and there the pack's nodes still register, without it."""
    nodes = pack_nodes(object_info)
    assert len(nodes) == 7
    if "search_aliases" not in object_info["KSampler"]:
        assert not any("search_aliases" in info for info in nodes.values())
        return
    for word, expected in SEARCH_WORDS.items():
        carrying = {node_id for node_id, info in nodes.items() if word in (info.get("search_aliases") or [])}
        assert expected <= carrying, (word, carrying)


def test_requires_comfyui_admits_this_host_and_starts_at_the_oldest_host_ci_proves():
    """`requires-comfyui` is what the registry and the Manager go by. CI runs the suite on the default
    host (`make test`: ComfyUI 0.3.75, the oldest) and on each newer host archive: every one must be
    admitted, and the lower bound is the default host's version, so the range claims nothing older
    than a host the suite passes on."""
    comfy = tomllib.loads((paths.REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["comfy"]
    spec = comfy["requires-comfyui"]
    match = re.fullmatch(r">=(\d+)\.(\d+)\.(\d+)", spec)
    assert match, f"requires-comfyui {spec!r}: expected '>=X.Y.Z'"
    lowest = tuple(map(int, match.groups()))
    version = host_version()
    assert tuple(map(int, version.split(".")[:3])) >= lowest, f"this host ({version}) is outside {spec}"
    default_host = not os.environ.get("IDEA_HOST_SOURCE") and (
        os.path.realpath(paths.comfyui_dir())
        == os.path.realpath(os.path.join(os.environ.get("IDEA_PROVISIONED_HOST", paths.REPO / ".host"), "ComfyUI")))
    if default_host:
        assert spec == f">={version}", f"the oldest host CI runs is {version}; requires-comfyui says {spec}"

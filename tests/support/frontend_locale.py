"""The frontend in another language, read as its user meets it.

The language is the `Comfy.Locale` setting, stored server-side (as choosing it in Settings does), so a
page opened afterwards starts in it. The server keeps it for every later page (posted settings are
merged into the stored ones): a test that changes it sets it back (`reset_language`).

What a user reads: the node search box's results (support.frontend_shown.search_nodes) and a node's
tooltip, which the frontend shows in a DOM element after the mouse rests on an input socket: the
classic canvas's `.node-tooltip` (after the `LiteGraph.Node.TooltipDelay` setting's time), or under
the Vue node renderer an element with the role `tooltip` beside the socket's own element.
"""
from __future__ import annotations

from support.frontend import USER_SETTINGS, Frontend, FrontendPage, prepare_user_settings
from support.scripts import script

_INPUT_SOCKET = script("input_socket_on_screen")
_TOOLTIP = script("node_tooltip")
_SOCKET_UNCOVERED = script("socket_uncovered")


def open_page_in(browser: Frontend, lang: str) -> FrontendPage:
    """A page of the frontend with its language set to `lang` (and the first-run UI off)."""
    prepare_user_settings(browser.url, {**USER_SETTINGS, "Comfy.Locale": lang})
    page = browser.open_page(prepare=False)
    shown = page.page.evaluate("() => app.extensionManager.setting.get('Comfy.Locale')")
    if shown != lang:
        raise RuntimeError(f"the page started in {shown!r}, not {lang!r}")
    return page


def reset_language(server_url: str) -> None:
    """English again, for the pages other tests open on the same server."""
    prepare_user_settings(server_url, {"Comfy.Locale": "en"})


def frontend_version(page: FrontendPage) -> tuple[int, ...]:
    return tuple(int(p) for p in page.page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__").split("."))


def place_chosen_node(page: FrontendPage) -> None:
    """A node chosen in the search box follows the mouse in 1.58 ("ghost placement") until a click
    puts it down: click the canvas's middle, as a user does. Earlier frontends place it at once."""
    if page.page.evaluate("() => app.canvas.state?.ghostNodeId != null"):
        box = page.page.evaluate("() => { const r = app.canvas.canvas.getBoundingClientRect();"
                                 " return [r.left + r.width / 2, r.top + r.height / 2]; }")
        page.page.mouse.move(*box)  # the ghost follows the pointer there first; a bare click does not place it
        page.page.wait_for_timeout(300)
        page.page.mouse.down()
        page.page.mouse.up()
        page.page.wait_for_function("() => app.canvas.state.ghostNodeId == null")


def input_tooltip(page: FrontendPage, node_type: str, slot: int, timeout_ms: int = 6_000) -> str | None:
    """Rest the mouse on input socket `slot` of the first `node_type` node on the canvas and return the
    tooltip the page shows there (None when none shows within `timeout_ms`). As a user whose first
    rest went unnoticed, it moves off and back once more before giving up."""
    x, y = page.page.evaluate(_INPUT_SOCKET, [node_type, slot])
    # the frontend shows tooltips only for a pointer resting on the socket itself: wait until nothing
    # else lies over it there (the search box closes with a fade)
    page.page.wait_for_function(_SOCKET_UNCOVERED, arg=[x, y, node_type], timeout=timeout_ms)
    for _ in range(2):
        page.page.mouse.move(x - 40, y)
        page.page.mouse.move(x, y, steps=4)
        try:
            page.page.wait_for_function(f"() => ({_TOOLTIP})() !== null", timeout=timeout_ms // 2)
        except Exception:  # playwright's TimeoutError: no tooltip showed
            continue
        return page.page.evaluate(_TOOLTIP)
    return None

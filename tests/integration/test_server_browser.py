"""The web page in a real browser: Debian's headless Chromium loads the pages from
`tiup mirror serve` on 127.0.0.1 (driven over the DevTools protocol, ``support/browser.py``).

Assertions are on the rendered DOM (what the user sees: visible rows, computed colours,
the filter as keys are typed); every page is also saved as a screenshot under
``tests/.artifacts/browser/`` for review.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from browser import ARTIFACTS, Browser, poll
from serverkit import ServerProc, raw, start_server
from uikit import SPECS, UiMirror, make_ui_mirror

VISIBLE_ROWS = ("[...document.querySelectorAll('#components tbody tr')]"
                ".filter(r => !r.hidden).map(r => r.querySelector('th a').textContent)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, UiMirror]]:
    base = tmp_path_factory.mktemp("browser")
    made = make_ui_mirror(base)
    srv = start_server(made.mirror, "--read-only", workdir=base)
    poll(lambda: "passed" in raw(srv, "GET", "/ui/")[2].decode(), "the first verification")
    yield srv, made
    srv.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with Browser(tmp_path_factory.mktemp("chromium")) as b:
        yield b


def shot(b: Browser, name: str, *, full_page: bool = True) -> None:
    path = b.screenshot(ARTIFACTS / f"{name}.png", full_page=full_page)
    assert path.stat().st_size > 5000
    print(f"screenshot: {path}")


def test_index_page(site: tuple[ServerProc, UiMirror], browser: Browser) -> None:
    srv, _made = site
    browser.open(f"{srv.url}/")
    b = browser
    assert b.value("document.documentElement.lang") == "en"
    assert b.value("document.title") == f"tiup mirror: {len(SPECS)} components"
    assert b.value("[...document.querySelectorAll('h1, h2')].map(h => h.tagName + ' ' + "
                   "h.textContent)") == ["H1 Components", "H2 Health", "H2 Components"]
    assert b.value(VISIBLE_ROWS) == sorted(SPECS)
    # the origin is filled in by the script
    assert b.value("document.querySelector('[data-origin]').textContent") == srv.url
    # owner-written markup is shown as text and never runs
    assert b.value("window.__pwned === undefined") is True
    sneaky = b.value("[...document.querySelectorAll('#components tbody tr')]"
                     ".find(r => r.querySelector('th').textContent === 'sneaky')"
                     ".cells[2].textContent")
    assert sneaky.startswith("<script>window.__pwned = 1</script>")
    # the hidden component and the manifest about to expire carry their marks
    row = "[...document.querySelectorAll('#components tbody tr')].find(r => " \
          "r.querySelector('th a').textContent === '{}').querySelector('th').textContent"
    assert "hidden" in b.value(row.format("ghost"))
    assert "manifest 3 days left: renew now" in b.value(row.format("fading"))
    # latest version and sizes of the big component (250 versions on two platforms)
    big = b.value("[...document.querySelectorAll('#components tbody tr')].find(r => "
                  "r.querySelector('th a').textContent === 'big').innerText")
    assert "v1.2.49" in big and "linux/amd64, linux/arm64" in big
    # accessibility: tables with captions and column headers, the input has a label
    assert b.value("[...document.querySelectorAll('table')].every(t => t.caption && "
                   "t.tHead.querySelectorAll('th[scope=col]').length > 0)") is True
    assert b.value("document.querySelector('label[for=q]').textContent") == \
        "Filter components"
    assert b.value("document.querySelector('[role=status]').getAttribute('aria-live')") == \
        "polite"
    shot(b, "index")


def _rgb(b: Browser, expression: str) -> tuple[int, ...]:
    text = b.value(f"getComputedStyle({expression}).backgroundColor")
    return tuple(int(x) for x in text[text.index("(") + 1:-1].split(",")[:3])


def _contrast(b: Browser, expression: str) -> float:
    """WCAG contrast ratio of an element's text against its background."""
    return float(b.value(f"""(() => {{
        const el = {expression}; const s = getComputedStyle(el);
        const lum = c => {{ const v = c.match(/\\d+/g).slice(0, 3).map(Number).map(x => {{
            x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }});
            return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }};
        const a = lum(s.color), b = lum(s.backgroundColor);
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); }})()"""))


def test_expiry_colours(site: tuple[ServerProc, UiMirror], browser: Browser) -> None:
    srv, _ = site
    b = browser
    b.open(f"{srv.url}/ui/")
    cell = "document.querySelector('tr[data-role={}] td.left')"
    classes = {role: b.value(f"document.querySelector('tr[data-role={role}]').className")
               for role in ("root", "index", "snapshot", "timestamp")}
    assert classes == {"root": "expiry-ok", "index": "expiry-ok",
                       "snapshot": "expiry-warn", "timestamp": "expiry-bad"}
    ok, amber, red = (_rgb(b, cell.format(r)) for r in ("root", "snapshot", "timestamp"))
    assert len({ok, amber, red}) == 3
    assert red[0] > red[1] and red[0] > red[2]  # red
    assert amber[0] > amber[2] and amber[1] > amber[2]  # amber (red + green, little blue)
    assert ok[1] > ok[0] and ok[1] > ok[2]  # green
    for role in ("root", "snapshot", "timestamp"):
        assert _contrast(b, cell.format(role)) >= 7.0, role
    assert b.value(f"{cell.format('timestamp')}.textContent") == "5 days left: renew now"
    assert b.value(f"{cell.format('snapshot')}.textContent") == "20 days left: renew soon"
    assert b.value("document.getElementById('verify-result').textContent") == "passed"


def test_search_filters_as_you_type(site: tuple[ServerProc, UiMirror],
                                    browser: Browser) -> None:
    srv, _ = site
    b = browser
    b.open(f"{srv.url}/ui/")
    b.wait_for("document.documentElement.dataset.filterReady", "the script ran")
    b.type_text("#q", "wor")
    b.wait_for("document.getElementById('component-count').textContent === "
               f"'2 of {len(SPECS)} components shown'")
    # "world" by name, "hello" by its description ("Says hello to the world")
    assert b.value(VISIBLE_ROWS) == ["hello", "world"]
    b.type_text("#q", "ld ot")
    b.wait_for(f"{VISIBLE_ROWS}.length === 1")
    assert b.value(VISIBLE_ROWS) == ["world"]
    shot(b, "index-filtered")
    b.clear("#q")
    b.wait_for(f"{VISIBLE_ROWS}.length === {len(SPECS)}")
    assert b.value("document.getElementById('component-count').textContent") == \
        f"{len(SPECS)} components"
    # by platform and by owner
    b.type_text("#q", "j. doe")
    b.wait_for(f"{VISIBLE_ROWS}.length === {len(SPECS)}")


def test_reading_works_without_javascript(site: tuple[ServerProc, UiMirror],
                                          browser: Browser) -> None:
    srv, _ = site
    b = browser
    b.call("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        b.open(f"{srv.url}/ui/?q=wor")
        assert b.value("document.documentElement.dataset.filterReady") is None
        assert b.value(VISIBLE_ROWS) == ["hello", "world"]
        assert b.value("document.getElementById('component-count').textContent") == \
            f"2 of {len(SPECS)} components shown"
        b.open(f"{srv.url}/ui/component/big?page=2")
        assert b.value("document.querySelectorAll('#versions tbody tr').length") == 200
    finally:
        b.call("Emulation.setScriptExecutionDisabled", {"value": False})


def test_component_page(site: tuple[ServerProc, UiMirror], browser: Browser) -> None:
    srv, _ = site
    b = browser
    b.open(f"{srv.url}/ui/")
    # follow the link as a user would
    b.value("document.querySelector('a[href=\"/ui/component/big\"]').click()")
    b.wait_for("location.pathname === '/ui/component/big' && document.readyState === "
               "'complete' && document.querySelector('h1').textContent === 'big'")
    first = "[...document.querySelectorAll('#versions tbody tr')].map(r => " \
            "r.cells[0].textContent + ' ' + r.cells[1].textContent)"
    rows = b.value(first)
    assert len(rows) == 200 and rows[:2] == ["v1.2.49 linux/amd64", "v1.2.49 linux/arm64"]
    assert b.value("document.getElementById('version-count').textContent") == \
        "Page 1 of 3: versions 1–100 of 250"
    assert b.value("document.querySelector('nav.pages [aria-current=page]').textContent") \
        == "1"
    assert "tiup install big:v1.2.49" in b.value(
        "document.querySelector('#versions tbody tr').innerText")
    assert b.value("document.querySelectorAll('#versions thead th[scope=col]').length") == 6
    shot(b, "component", full_page=False)  # the first screen: 200 rows are long
    b.value("document.querySelector('nav.pages a[rel=next]').click()")
    b.wait_for("location.search === '?page=2' && document.readyState === 'complete' && "
               "!!document.getElementById('version-count')")
    assert b.value("document.getElementById('version-count').textContent") == \
        "Page 2 of 3: versions 101–200 of 250"
    b.open(f"{srv.url}/ui/component/oldies")
    yanked = b.value("[...document.querySelectorAll('#versions tbody tr')]"
                     ".filter(r => r.cells[0].textContent.includes('yanked'))"
                     ".map(r => r.cells[5].textContent)")
    assert yanked == ["—", "—"]


def test_print_layout(site: tuple[ServerProc, UiMirror], browser: Browser) -> None:
    srv, _ = site
    b = browser
    b.open(f"{srv.url}/ui/component/hello")
    b.call("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        for sel in ("form.filter", "header.site"):
            assert b.value(f"getComputedStyle(document.querySelector('{sel}')).display") \
                == "none", sel
        assert b.value("getComputedStyle(document.querySelector('#versions')).display") == \
            "table"
        pdf = b.call("Page.printToPDF", {"printBackground": False})["data"]
        assert len(pdf) > 1000
        shot(b, "component-print", full_page=False)
    finally:
        b.call("Emulation.setEmulatedMedia", {"media": ""})


"""A real headless-browser check of the rendered book: every page loads with no request to another
host and no console error, every Altair chart renders (vega served by the book itself) and shows a
tooltip on hover, nothing overflows the text column at 1280 px and 420 px, and in dark mode the charts
are drawn with light text on the dark page."""

import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from conftest import chromium_path

pytestmark = [pytest.mark.book, pytest.mark.browser]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(built_book):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(built_book)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _pages(built_book):
    from allocsim.book import runner as book

    return ["index.html"] + [str(p.path).rsplit(".", 1)[0] + ".html" for p in book.pages() if p.path != "intro.md"]


def _load(browser, url, width=1280, scheme="light"):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    external, errors = [], []
    page.on("request", lambda r: external.append(r.url) if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    return page, external, errors


def _wait_for_charts(page, n_charts):
    if n_charts:
        page.wait_for_function(f"document.querySelectorAll('.allocsim-chart svg.marks, .allocsim-chart canvas').length >= {n_charts}",
                               timeout=20000)


#: Elements wider than the text column (.bd-article) that are not inside a box that scrolls or clips
#: them horizontally; each as "tag.class (right edge px > column's right edge px)".
_OVERFLOW_JS = """() => {
  const col = document.querySelector('.bd-article');
  if (!col) return ['no .bd-article'];
  const right = col.getBoundingClientRect().right + 1;
  const out = [];
  const clipped = (el) => {
    for (let a = el.parentElement; a && a !== col; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden' || ox === 'clip') return true;
    }
    return false;
  };
  for (const el of col.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= right) continue;
    if (getComputedStyle(el).position === 'fixed' || clipped(el)) continue;
    out.push(`${el.tagName.toLowerCase()}.${(el.className.baseVal ?? el.className).toString().split(' ')[0]} (${Math.round(r.right)} > ${Math.round(right)})`);
  }
  return out.slice(0, 8);
}"""


#: Charts drawn wider than their container, each as "chart id: drawn px > container px". The drawn width
#: is the SVG's width attribute: CSS (max-width: 100%) would scale a too-wide chart down, shrinking its
#: text and marks, so the bounding box alone would not show it.
_CHART_WIDER_JS = """() => [...document.querySelectorAll('.allocsim-chart')].flatMap(el => {
  const s = el.querySelector('svg.marks, canvas');
  if (!s) return [];
  const drawn = s.tagName === 'CANVAS' ? s.width / (window.devicePixelRatio || 1) : parseFloat(s.getAttribute('width'));
  return drawn > el.clientWidth + 1 ? [`${el.id}: ${Math.round(drawn)} > ${el.clientWidth}`] : [];
})"""


def test_every_page_loads_offline_and_renders_its_charts(built_book, server, browser):
    # index.html only redirects to intro.html: evaluating in it races with that navigation
    for rel in ["intro.html" if r == "index.html" else r for r in _pages(built_book)]:
        html = (built_book / rel).read_text()
        n_charts = html.count('class="allocsim-chart"')
        page, external, errors = _load(browser, f"{server}/{rel}")
        try:
            _wait_for_charts(page, n_charts)
            assert page.locator(".allocsim-chart-error").count() == 0
            widths = page.evaluate("[...document.querySelectorAll('.allocsim-chart svg.marks')].map(s => s.getBoundingClientRect().width)")
            assert all(w > 50 for w in widths), f"{rel}: a chart drew with no width: {widths}"
            assert external == [], f"{rel} loaded from other hosts: {external[:5]}"
            assert errors == [], f"{rel}: console errors {errors}"
        finally:
            page.close()


@pytest.mark.parametrize("width", [1280, 420])
def test_nothing_overflows_the_text_column(built_book, server, browser, width):
    """Wide tables and code scroll inside the column; charts reflow (composed ones are stacked and
    narrowed by _static/allocsim.js): none sticks out of it, and no chart is drawn wider than its box."""
    problems = {}
    for rel in ["intro.html" if r == "index.html" else r for r in _pages(built_book)]:  # index.html redirects
        n_charts = (built_book / rel).read_text().count('class="allocsim-chart"')
        page, _, errors = _load(browser, f"{server}/{rel}", width=width)
        try:
            _wait_for_charts(page, n_charts)
            page.wait_for_timeout(300)
            bad = page.evaluate(_OVERFLOW_JS) + page.evaluate(_CHART_WIDER_JS)
            if bad:
                problems[rel] = bad
            assert errors == [], f"{rel} at {width} px: console errors {errors}"
        finally:
            page.close()
    assert problems == {}, f"elements wider than the text column at {width} px: {problems}"


def test_charts_follow_the_dark_theme(built_book, server, browser):
    """In dark mode the charts are drawn again with light axis labels on a transparent background."""
    page, _, errors = _load(browser, f"{server}/chapters/05-iops.html", scheme="dark")
    try:
        _wait_for_charts(page, 1)
        page.wait_for_function("document.documentElement.dataset.theme === 'dark'", timeout=5000)
        page.wait_for_timeout(800)
        fill = page.evaluate("(() => { const t = document.querySelector('.allocsim-chart svg .role-axis-label text'); return t && getComputedStyle(t).fill || t && t.getAttribute('fill'); })()")
        assert fill, "no axis label found"
        rgb = [int(x) for x in fill.replace("rgb(", "").replace(")", "").split(",")[:3]] if fill.startswith("rgb") else None
        assert rgb is None or sum(rgb) > 450, f"axis labels are dark on the dark page: {fill}"
        if rgb is None:
            assert fill.lower() in ("#d8d8d8", "#e0e0e0"), fill
        # switching back to light draws them dark again
        page.evaluate("document.documentElement.dataset.theme = 'light'")
        page.wait_for_timeout(800)
        fill = page.evaluate("(() => { const t = document.querySelector('.allocsim-chart svg .role-axis-label text'); return t.getAttribute('fill') || getComputedStyle(t).fill; })()")
        assert fill.lower() not in ("#d8d8d8", "#e0e0e0"), fill
        assert errors == []
    finally:
        page.close()


def test_charts_are_interactive_tooltips(built_book, server, browser):
    page, external, _ = _load(browser, f"{server}/chapters/01-thread.html")
    try:
        page.wait_for_selector(".allocsim-chart svg.marks", timeout=20000)
        # hover bars of the IOPS chart until vega-tooltip shows one
        marks = page.locator(".vega-embed svg.marks path[role='graphics-symbol'], .vega-embed svg.marks path.mark-rect, .vega-embed svg .mark-rect path")
        shown = ""
        for i in range(min(marks.count(), 40)):
            marks.nth(i).hover(force=True)
            page.wait_for_timeout(100)
            tip = page.locator("#vg-tooltip-element")
            if tip.count() and tip.is_visible() and tip.inner_text().strip():
                shown = tip.inner_text()
                break
        assert shown, "no tooltip appeared on hovering chart marks"
        assert "M IOPS" in shown or "date" in shown or "allocator" in shown
        assert external == []
    finally:
        page.close()


def test_index_redirects_to_the_landing_page(built_book, server, browser):
    page, external, errors = _load(browser, f"{server}/index.html")
    try:
        page.wait_for_url("**/intro.html", timeout=10000)
        assert external == [] and errors == []
    finally:
        page.close()

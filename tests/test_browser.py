"""A real headless-browser check of the rendered book: every page loads with no request to another
host, every Altair chart renders (vega served by the book itself) and shows a tooltip on hover."""

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


def _load(browser, url):
    page = browser.new_page()
    external, errors = [], []
    page.on("request", lambda r: external.append(r.url) if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load")
    return page, external, errors


def test_every_page_loads_offline_and_renders_its_charts(built_book, server, browser):
    for rel in _pages(built_book):
        html = (built_book / rel).read_text()
        n_charts = html.count('id="altair-viz-')
        page, external, errors = _load(browser, f"{server}/{rel}")
        try:
            if n_charts:
                page.wait_for_function(f"document.querySelectorAll('.vega-embed svg.marks, .vega-embed canvas').length >= {n_charts}",
                                       timeout=20000)
                assert page.locator(".vega-embed .error, .vega-embed-error").count() == 0
            assert external == [], f"{rel} loaded from other hosts: {external[:5]}"
            real_errors = [e for e in errors if "THEBE_JS_URL" not in e]
            assert real_errors == [], f"{rel}: JavaScript errors {real_errors}"
        finally:
            page.close()


def test_charts_are_interactive_tooltips(built_book, server, browser):
    page, external, _ = _load(browser, f"{server}/chapters/01-thread.html")
    try:
        page.wait_for_selector(".vega-embed svg.marks", timeout=20000)
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

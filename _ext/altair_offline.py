"""Serve vega, vega-lite and vega-embed from the book itself, so Altair charts work offline.

Altair's default HTML output loads the three libraries from a CDN unless their versions are already
recorded in ``window.VEGA_DEBUG``; then it calls the global ``vegaEmbed``. This extension

* writes vl-convert's bundle of the three libraries (vega 6, vega-lite 6, vega-embed 7, the
  versions Altair 6 expects) to ``_static/vega/vega-bundle.js``, wrapped in a function so its
  top-level names do not collide with Sphinx's globals (``_``), and
* adds it and an inline ``VEGA_DEBUG`` record (versions read from Altair) to every page.

No page then loads any script from another host (tests/test_browser.py checks this).
"""

from __future__ import annotations

import json
from pathlib import Path

BUNDLE = "vega/vega-bundle.js"


def _versions() -> dict:
    from altair.vegalite.v6 import display

    return {
        "vega_version": display.VEGA_VERSION,
        "vegalite_version": display.VEGALITE_VERSION,
        "vegaembed_version": display.VEGAEMBED_VERSION,
    }


def _write_bundle(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import vl_convert

    out = Path(app.outdir) / "_static" / BUNDLE
    out.parent.mkdir(parents=True, exist_ok=True)
    vl = _versions()["vegalite_version"].rsplit(".", 1)[0]  # "6.4.1" -> "6.4"
    js = vl_convert.javascript_bundle(vl_version="v" + vl.replace(".", "_"))
    body = "(function(){\n" + js + "\n})();\n"
    if not out.exists() or out.read_text() != body:
        out.write_text(body)


def setup(app):
    app.add_js_file(None, body="var VEGA_DEBUG = " + json.dumps(_versions()) + ";", priority=200)
    app.add_js_file(BUNDLE, priority=201)
    app.connect("build-finished", _write_bundle)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

"""The book's chart theme: one look for every chapter, and one colour per allocator throughout.

Use::

    from allocsim.pages import charts
    charts.enable()                                   # once per chapter (registers the theme)
    alt.Chart(df).mark_bar().encode(
        x=alt.X("ns_per_io:Q", title=charts.axis("time per IO", "ns")),
        color=charts.allocator_color("allocator"),    # consistent colours + legend order
    ).properties(title="…")
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json

import altair as alt

#: The three allocators of the thread, in the order the book always lists them, with fixed colours
#: (Okabe–Ito, colour-blind safe). Extra series (e.g. "kmalloc-96 (7.0, sheaves)") get grey shades.
ALLOCATORS = ("per-CPU list", "kmalloc", "sheaf-256")
COLORS = {"per-CPU list": "#D55E00", "kmalloc": "#0072B2", "sheaf-256": "#009E73"}
#: Kernel versions, for charts that colour by version instead.
KERNELS = ("6.19", "7.0")
KERNEL_COLORS = {"6.19": "#999999", "7.0": "#CC79A7"}
ACCENT = "#E69F00"

# The book's text column is about 620 px wide: a chart's plot area plus its axis labels must fit.
WIDTH, HEIGHT = 460, 280


def _theme():
    return {
        "config": {
            "view": {"continuousWidth": WIDTH, "continuousHeight": HEIGHT, "stroke": None},
            "font": "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif",
            "title": {"fontSize": 15, "anchor": "start", "subtitleColor": "#555"},
            "axis": {"labelFontSize": 12, "titleFontSize": 12, "grid": True, "gridColor": "#eee"},
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom"},
            "range": {"category": [COLORS[a] for a in ALLOCATORS] + ["#56B4E9", ACCENT, "#CC79A7", "#999999"]},
        }
    }


#: Top-level keys of a composed chart: these (and charts faceted by a row/column encoding) keep their
#: own widths and scroll inside the column when wider than it; a single view or a layer takes the width
#: of its container.
_COMPOSED = ("hconcat", "vconcat", "concat", "facet", "repeat")
_ids = itertools.count()


def fit_container(spec: dict) -> dict:
    """The spec as the book embeds it: a single view or a layer gets ``width: "container"`` (it takes
    the text column's width and reflows with it, down to a phone's), and no ``$schema`` URL."""
    spec = dict(spec)
    spec.pop("$schema", None)
    faceted = any(k in (spec.get("encoding") or {}) for k in ("row", "column", "facet"))
    if not faceted and not any(k in spec for k in _COMPOSED):
        spec["width"] = "container"
        spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    return spec


def render(spec: dict, **_meta) -> dict:
    """Altair renderer for the book: a ``<div>`` carrying the spec (JSON in ``data-spec``), embedded by
    ``_static/allocsim.js`` with the vega served by the book (``_ext/altair_offline.py``). Unlike
    Altair's default HTML output, it names no CDN (no fallback loader), takes the container's width,
    and is re-embedded with dark colours when the page switches to the dark theme."""
    spec = fit_container(spec)
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    div = f"allocsim-chart-{digest}-{next(_ids)}"
    title = spec.get("title")
    title = title.get("text") if isinstance(title, dict) else title
    title = " ".join(title) if isinstance(title, list) else title
    label = html.escape(str(spec.get("description") or title or "chart"))
    return {"text/html": (f'<div id="{div}" class="allocsim-chart" role="img" aria-label="{label}" '
                          f'data-spec="{html.escape(text, quote=True)}"></div>'
                          f'<script>window.allocsimEmbed ? allocsimEmbed("{div}") : '
                          f'(window.allocsimPending = window.allocsimPending || []).push("{div}");</script>')}


def enable() -> None:
    """Register and enable the book theme and renderer (idempotent). The renderer (:func:`render`) emits
    no CDN URL: the book serves vega itself (``_ext/altair_offline.py``), so charts work offline."""
    alt.theme.register("allocsim", enable=True)(_theme)
    alt.renderers.register("allocsim", render)
    alt.renderers.enable("allocsim")
    alt.data_transformers.disable_max_rows()
    import pandas as pd

    pd.set_option("display.max_colwidth", None)  # tables on the page show whole sentences


def axis(quantity: str, unit: str | None = None) -> str:
    """Axis titles always carry their unit: ``axis("time per IO", "ns")`` → ``time per IO (ns)``."""
    return f"{quantity} ({unit})" if unit else quantity


def allocator_color(field: str = "allocator", title: str = "allocator") -> alt.Color:
    """Colour encoding for a field holding allocator names from :data:`ALLOCATORS`."""
    return alt.Color(f"{field}:N", title=title,
                     scale=alt.Scale(domain=list(ALLOCATORS), range=[COLORS[a] for a in ALLOCATORS]))


def kernel_color(field: str = "kernel", title: str = "kernel") -> alt.Color:
    return alt.Color(f"{field}:N", title=title,
                     scale=alt.Scale(domain=list(KERNELS), range=[KERNEL_COLORS[k] for k in KERNELS]))

"""Tables and charts for the methods appendix: the cost table, every chapter's parameters, the environment."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import version

import altair as alt
import pandas as pd

from allocsim.pages import charts
from allocsim.pages.glue import Md
from allocsim.facts import costs, cpu
from allocsim.pages import params
from allocsim.pages.specs import CLOCK_GHZ

KEY_PACKAGES = ("numba", "numpy", "pandas", "altair", "papermill", "jupytext", "jupyter-book", "myst-nb", "Sphinx",
                "vl-convert-python", "hypothesis", "pytest", "playwright")


def cost_frame(name: str = "default", clock_ghz: float = CLOCK_GHZ) -> pd.DataFrame:
    f = costs.load(name).frame()
    f["ns"] = f["cycles"] / clock_ghz
    return f[["key", "cycles", "low", "high", "ns", "what", "machine", "source", "tag"]]


def cost_rows(tbl: pd.DataFrame) -> pd.DataFrame:
    """The cost table in three readable columns for the page (full detail stays in data/costs.csv)."""
    return pd.DataFrame({
        "primitive": "`" + tbl["key"] + "`: " + tbl["what"],
        "cycles (range)": tbl["cycles"].map("{:g}".format) + " (" + tbl["low"].map("{:g}".format) + "–" + tbl["high"].map("{:g}".format) + ")",
        "ns": tbl["ns"].map("{:.2f}".format),
        "source [V verified / I inferred]": tbl["source"] + "; measured on " + tbl["machine"] + " [" + tbl["tag"] + "]",
    })


def log_ticks(high: float) -> list[float]:
    """Tick values for a (symmetric) log axis from 0 up to ``high``: 0, 1, 2, 5, 10, 20, 50, … — so the
    small costs, where most entries lie, have ticks too."""
    ticks, decade = [0.0], 1.0
    while decade <= high:
        ticks += [v * decade for v in (1, 2, 5) if v * decade <= high * 2]
        decade *= 10
    return ticks


def cost_chart(name: str = "default") -> alt.Chart:
    """Each primitive's cost (point) and cited range (bar), on a symmetric log axis with ticks at 1-2-5."""
    f = costs.load(name).frame()
    ticks = log_ticks(float(f["high"].max()))
    base = alt.Chart(f).encode(y=alt.Y("key:N", title=None, sort=list(costs.KEYS), axis=alt.Axis(labelLimit=200)))
    tooltip = [alt.Tooltip("key:N"), alt.Tooltip("cycles:Q"), alt.Tooltip("low:Q"), alt.Tooltip("high:Q"),
               alt.Tooltip("what:N"), alt.Tooltip("machine:N"), alt.Tooltip("source:N")]
    rng = base.mark_rule(strokeWidth=3, color="#bbb").encode(
        x=alt.X("low:Q", title=charts.axis("cost per operation, log scale", "cycles"),
                scale=alt.Scale(type="symlog", domain=[0, ticks[-1]]), axis=alt.Axis(values=ticks, format="d")),
        x2="high:Q", tooltip=tooltip)
    pt = base.mark_point(filled=True, size=90, color=charts.ACCENT).encode(x="cycles:Q", tooltip=tooltip)
    return (rng + pt).properties(title=alt.Title(f"Cost table '{name}'", subtitle="point: value used; bar: cited range"),
                                 width=380, height=320)


def parameters_frame() -> pd.DataFrame:
    rows = []
    for s in params.specs().values():
        for p in s.params:
            rows.append({"chapter": s.slug, "parameter": p.name, "type": p.type.__name__, "default": repr(p.default),
                         "allowed": p.allowed(), "meaning": p.help})
    return pd.DataFrame(rows)


def environment_frame() -> pd.DataFrame:
    rows = [{"component": "Python", "version": sys.version.split()[0]},
            {"component": "platform", "version": platform.platform()}]
    rows += [{"component": name, "version": version(name)} for name in KEY_PACKAGES]
    return pd.DataFrame(rows)


def hierarchy_frame(clock_ghz: float = CLOCK_GHZ) -> pd.DataFrame:
    """The memory hierarchy's parameters (``data/kernel/cpu.yaml``), with the nanosecond rows in cycles at
    ``clock_ghz`` (``ns x GHz``, as :func:`allocsim.facts.cpu.geometry` converts them)."""
    f = cpu.load().frame()
    f["cycles"] = [v * clock_ghz if u == "ns" else (v if u == "cycles" else float("nan"))
                   for v, u in zip(f["value"], f["unit"])]
    return f[["key", "value", "low", "high", "unit", "cycles", "machine", "source", "status", "note"]]


def hierarchy_rows(tbl: pd.DataFrame) -> pd.DataFrame:
    """The hierarchy's parameters in four readable columns for the page (full detail in data/kernel/cpu.yaml)."""
    def num(v):
        return f"{v:g}"

    return pd.DataFrame({
        "parameter": "`" + tbl["key"] + "`",
        "value (range)": [f"{num(v)} {u} ({num(lo)}–{num(hi)})" if lo != hi else f"{num(v)} {u}"
                          for v, lo, hi, u in zip(tbl["value"], tbl["low"], tbl["high"], tbl["unit"])],
        "cycles": [num(c) if c == c else "" for c in tbl["cycles"]],
        "source [V verified / I inferred]": tbl["source"] + "; " + tbl["machine"] + " [" + tbl["status"] + "]"
        + tbl["note"].map(lambda n: f" — {n}" if n else ""),
    })


def cpu_machine() -> str:
    """The machine the hierarchy's default CPU describes (``data/kernel/cpu.yaml``)."""
    return Md(cpu.load().machine)

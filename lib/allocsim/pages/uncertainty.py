"""Chapter 6 ("How sure is the verdict?"): the tables and charts that read a finished sweep
(:mod:`allocsim.analysis.sweep`, :mod:`allocsim.analysis.uncertainty`)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from allocsim.analysis import iops
from allocsim.analysis import uncertainty as unc
from allocsim.pages import charts

KL = unc.KL


def _config(k: str, a: str) -> str:
    return f"{KL[k]} {a}"


def histogram(frame: pd.DataFrame, figs: pd.DataFrame, bins: int = 30) -> pd.DataFrame:
    """Each configuration's predicted M IOPS binned (so the page carries counts, not every sample), with
    the reported figure and its rounding band beside it."""
    rows = []
    h = iops.PRECISION_MIOPS / 2
    for r in figs.to_dict("records"):
        c = (r["kernel"], r["allocator"])
        x = frame[unc.column("M IOPS", c)].to_numpy()
        lo = min(x.min(), r["reported M IOPS"] - h)
        hi = max(x.max(), r["reported M IOPS"] + h)
        counts, edges = np.histogram(x, bins=bins, range=(lo, hi))
        for n, a, b in zip(counts, edges[:-1], edges[1:]):
            rows.append({"configuration": _config(*c), "allocator": c[1], "from": a, "to": b, "share": n / len(x),
                         "reported": r["reported M IOPS"], "band lo": r["reported M IOPS"] - h,
                         "band hi": r["reported M IOPS"] + h})
    return pd.DataFrame(rows)


def distribution_chart(frame: pd.DataFrame, figs: pd.DataFrame) -> alt.FacetChart:
    d = histogram(frame, figs)
    order = [_config(k, a) for k, a in iops.CONFIGS]
    base = alt.Chart()
    band = base.mark_rect(color="#d9d9d9").encode(x="band lo:Q", x2="band hi:Q", opacity=alt.value(0.6))
    bars = base.mark_rect(opacity=0.9).encode(
        x=alt.X("from:Q", title=charts.axis("predicted throughput of one submitter", "M IOPS"),
                scale=alt.Scale(zero=False)),
        x2="to:Q", y=alt.Y("share:Q", title="share", axis=alt.Axis(format="%", tickCount=2)), y2=alt.datum(0),
        color=charts.allocator_color("allocator"),
        tooltip=[alt.Tooltip("configuration:N"), alt.Tooltip("from:Q", format=".4f"), alt.Tooltip("to:Q", format=".4f"),
                 alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("reported:Q", format=".2f")])
    rule = base.mark_rule(color="#333", strokeWidth=2).encode(x="reported:Q")
    return alt.layer(band, bars, rule, data=d).properties(width=440, height=60).facet(
        row=alt.Row("configuration:N", sort=order, title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
    ).properties(title=alt.Title("The six predictions, every cost uncertain at once",
                                 subtitle="bars: the sweep's predictions; line: the reported figure; grey: ± half a 0.01M step"))


def figures_table(figs: pd.DataFrame) -> pd.DataFrame:
    out = figs.copy()
    out["kernel"] = out["kernel"].map(KL)
    ci = f"{100 * unc.CREDIBLE:.0f} % interval"
    out[ci] = [f"{a:.4f} … {b:.4f}" for a, b in zip(out["low"], out["high"])]
    out = out.rename(columns={"at the table's values": "at the cited values"})
    return out[["kernel", "allocator", "reported M IOPS", "at the cited values", "median", ci, "P(reproduced)"]]


def probability_table(figs: pd.DataFrame, p: dict) -> pd.DataFrame:
    rows = []
    for r in figs.to_dict("records"):
        rows.append({"event": f"{_config(r['kernel'], r['allocator'])} predicted as {r['reported M IOPS']:.2f}M",
                     "probability": r["P(reproduced)"]})
    rows += [
        {"event": "all six predicted as reported", "probability": p["p_all_six"]},
        {"event": "per-CPU list ahead of sheaf-256 on 7.0-rc4 by more than half a step (0.005M)", "probability": p["p_edge_half"]},
        {"event": "per-CPU list ahead of sheaf-256 on 7.0-rc4 by more than one step (0.01M)", "probability": p["p_edge_step"]},
        {"event": "the patch gains over kmalloc on 6.19 at all", "probability": p["p_gain_positive"]},
        {"event": (f"the patch's 6.19 gain within what the rounded figures allow "
                   f"({p['gain_span'][0]:.2f} … {p['gain_span'][1]:.2f} %)"), "probability": p["p_gain_in_span"]},
    ]
    return pd.DataFrame(rows)


def sobol_chart(sob: pd.DataFrame, output: str) -> alt.LayerChart:
    s = sob[sob["output"] == output]
    long = []
    for r in s.to_dict("records"):
        for name, col in (("first order", "S1"), ("total", "ST")):
            long.append({"input": r["input"], "costs": r["costs"], "index": name, "value": r[col],
                         "lo": r[col] - r[col + " ±"], "hi": r[col] + r[col + " ±"], "ci": r[col + " ±"]})
    d = pd.DataFrame(long)
    order = list(s["input"])
    color = alt.Color("index:N", title=None, scale=alt.Scale(domain=["first order", "total"], range=["#56B4E9", "#0072B2"]))
    bars = alt.Chart(d).mark_bar().encode(
        y=alt.Y("input:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
        yOffset=alt.YOffset("index:N", sort=["first order", "total"]),
        x=alt.X("value:Q", title=charts.axis(f"Sobol' index of {unc.OUTPUTS[output]}", None), scale=alt.Scale(domain=[-0.1, 1.2])),
        color=color,
        tooltip=[alt.Tooltip("input:N"), alt.Tooltip("costs:N"), alt.Tooltip("index:N"),
                 alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("ci:Q", title="± (95 %)", format=".3f")])
    err = alt.Chart(d).mark_bar(color="#222", size=2).encode(
        y=alt.Y("input:N", sort=order), yOffset=alt.YOffset("index:N", sort=["first order", "total"]),
        x="lo:Q", x2="hi:Q")
    return (bars + err).properties(width=380, height=alt.Step(12), title=alt.Title(
        "Which costs the answer depends on, all moving at once",
        subtitle="Sobol' indices (SALib) with 95 % bootstrap intervals; first order = alone, total = with interactions"))


def sobol_table(sob: pd.DataFrame, output: str) -> pd.DataFrame:
    s = sob[sob["output"] == output]
    return s[["input", "costs", "S1", "S1 ±", "ST", "ST ±"]].rename(columns={"S1": "first order", "S1 ±": "±",
                                                                          "ST": "total", "ST ±": "± "})

"""Chapter 6 ("How sure is the verdict?"): the tables and charts that read a finished sweep
(:mod:`allocsim.analysis.sweep`, :mod:`allocsim.analysis.uncertainty`)."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from allocsim.analysis import iops
from allocsim.analysis import runs
from allocsim.analysis import uncertainty as unc
from allocsim.pages import charts
from allocsim.pages.glue import Md

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


# ---- the chapter's sections: one function and one frozen dataclass each ---------------------------------
# The chapter glues every field under its own name (allocsim.pages.glue.glue_all); Markdown fields are Md.



def _count_of(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def tri_words(tri: list) -> str:
    """``{…} triangular around the row's own value``: which rows are triangular, or that none is."""
    if not tri:
        return "No row is"
    return f"{len(tri)} row{' is' if len(tri) == 1 else 's are'} ({', '.join(f'`{k}`' for k in tri)})"


def groups_words(factors) -> str:
    """The sentence naming the inputs that move several cost rows together, each with its rows."""
    g = [f"`{f.name}` ({', '.join(f'`{k}`' for k in f.members)})" for f in factors if len(f.members) > 1]
    if not g:
        return "No rows are grouped."
    return (f"The one group is {g[0]}." if len(g) == 1 else f"The groups are {'; '.join(g)}.")


@dataclass(frozen=True)
class Inputs:
    """What is uncertain, and how: the inputs the sweep draws."""

    n_inputs: int  # independent uncertain inputs (factors)
    n_fixed: int  # cost rows with a single cited value
    tri_rows: Md  # which rows are triangular
    groups: Md  # the inputs that move several rows together
    n_runs: int  # complete cost tables the sweep runs
    n_base: int  # Sobol' base samples


def inputs(study: unc.Study, u: unc.Uncertainty | None = None) -> Inputs:
    u = study.uncertainty() if u is None else u
    tri = [k for k, d in u.dists.items() if d.kind == "triangular"]
    return Inputs(len(u.factors), int(sum(d.fixed for d in u.dists.values())), Md(tri_words(tri)),
                  Md(groups_words(u.factors)), study.n_runs, int(study.samples))


def engine_words(reused: bool, engine: str, rate: float) -> str:
    """``This run used {…}``: a sweep reused from disk, or the engine and its rate."""
    return "a sweep already on disk (the same inputs), reused" if reused else f"{engine}, at {rate:.1f} samples per second"


@dataclass(frozen=True)
class Sweep:
    """The sweep as it ran, and how its nominal predictions compare with chapter 5's."""

    engine: Md
    nom_diff: float  # largest |nominal − chapter 5| prediction over the six configurations, M IOPS
    ch5_ios: int  # IOs per configuration in chapter 5
    ios: int  # IOs per configuration in each sample


def sweep_section(study: unc.Study, reused: bool, engine: str, rate: float, nominal: dict,
                  ch5: runs.Reproduction) -> Sweep:
    diff = max(abs(nominal[unc.column("M IOPS", c)] - ch5.predicted_miops(*c)) for c in iops.CONFIGS)
    return Sweep(Md(engine_words(reused, engine, rate)), float(diff), int(ch5.setup.ios), int(study.setup.ios))


def figure_words(row) -> str:
    """One configuration and its probability of being reproduced, e.g. ``7.0-rc4 kmalloc (0.83)``."""
    return f"{KL[row['kernel']]} {row['allocator']} ({row['P(reproduced)']:.2f})"


@dataclass(frozen=True)
class Figures:
    """The six figures: the chance all come out as reported, and the most and least often reproduced."""

    p_all_six: float
    best_fig: Md
    worst_fig: Md


def figures_section(figs: pd.DataFrame, p: dict) -> Figures:
    best = figs.loc[figs["P(reproduced)"].idxmax()]
    worst = figs.loc[figs["P(reproduced)"].idxmin()]
    return Figures(p["p_all_six"], Md(figure_words(best)), Md(figure_words(worst)))


@dataclass(frozen=True)
class Probabilities:
    """The per-CPU list's edge on 7.0-rc4 and the patch's 6.19 gain across the sweep."""

    edge_med: float  # M IOPS
    edge_lo: float
    edge_hi: float
    edge_ns_med: float  # ns per IO
    edge_ns_lo: float
    edge_ns_hi: float
    cred_pct: float  # the credible interval, %
    p_half: float  # P(edge > half a 0.01M step)
    p_step: float  # P(edge > one step)
    gain_med: float  # %
    gain_lo: float
    gain_hi: float
    p_gain_span: float  # P(gain within what the rounded figures allow)
    span_lo: float
    span_hi: float


def probabilities_section(p: dict) -> Probabilities:
    """``p``: :func:`allocsim.analysis.uncertainty.probabilities`."""
    return Probabilities(
        p["edge_median"], p["edge_interval"][0], p["edge_interval"][1],
        p["edge_ns_median"], p["edge_ns_interval"][0], p["edge_ns_interval"][1],
        100 * unc.CREDIBLE, p["p_edge_half"], p["p_edge_step"],
        p["gain_median"], p["gain_interval"][0], p["gain_interval"][1],
        p["p_gain_in_span"], p["gain_span"][0], p["gain_span"][1])


def rank_words(rk: dict) -> str:
    """Whether the sweep ranks the costs that matter (``rk``: :func:`allocsim.analysis.uncertainty.ranking`)."""
    if rk["ranked"] == rk["matter"] and rk["ranked"] >= 1:
        many = rk["ranked"] > 1
        names = ", ".join(f"`{x}`" for x in rk["top"][:rk["ranked"]])
        return (f"the interval{'s' if many else ''} of {names} {'lie' if many else 'lies'} wholly above every later "
                "input's, so this sample count ranks the costs that matter")
    return "the intervals overlap, so the ranking of the leading costs needs a larger sweep (raise `samples`)"


@dataclass(frozen=True)
class Sensitivity:
    """Which costs matter, all moving at once (Sobol' total indices)."""

    matters: float  # a total index above this matters
    sob_top: Md  # the input that explains most of the edge's variance
    sob_top_st: float
    sob_top_ci: float
    sob_ranked: int
    sob_max_ci: float
    sob_matter: int
    sob_rank_words: Md
    sob_small: int  # inputs whose total index stays below ``matters`` even at the high end
    gain_top: Md  # the input that explains most of the patch gain's variance
    gain_top_st: float
    gain_top_ci: float


def sensitivity(sob: pd.DataFrame, matters: float = 0.01) -> Sensitivity:
    """``sob``: :func:`allocsim.analysis.uncertainty.sobol` (sorted by total index within each output)."""
    rk = unc.ranking(sob, "edge ns/IO", matters=matters)
    edge = sob[sob["output"] == "edge ns/IO"]
    top, gtop = edge.iloc[0], sob[sob["output"] == "patch gain %"].iloc[0]
    return Sensitivity(matters, Md(f"`{top['input']}`"), top["ST"], top["ST ±"], rk["ranked"], rk["max_halfwidth"],
                       rk["matter"], Md(rank_words(rk)), int((edge["ST"] + edge["ST ±"] < matters).sum()),
                       Md(f"`{gtop['input']}`"), gtop["ST"], gtop["ST ±"])


def verdict_words(p_edge_step: float, p_edge_half: float) -> str:
    """The chapter's verdict: chapter 5's holds when the edge exceeds one step with probability below 5 %."""
    if p_edge_step < 0.05:
        return ("With every cost uncertain at once, the per-CPU list's edge over the dedicated sheaf cache on 7.0-rc4 "
                f"stays below one 0.01M step with probability {1 - p_edge_step:.3f}, and below half a step with "
                f"probability {1 - p_edge_half:.3f}. Chapter 5's verdict therefore holds across the cited ranges: "
                "sheaves answer the problem the private list was written for, within the precision of the thread's figures.")
    return (f"With every cost uncertain at once, the per-CPU list beats the dedicated sheaf cache on 7.0-rc4 by more than "
            f"one 0.01M step with probability {p_edge_step:.3f}. That is too likely to dismiss, so the cited ranges "
            "leave chapter 5's verdict open, and the experiment at its end is what would decide it.")


@dataclass(frozen=True)
class Verdict:
    verdict: Md


def verdict(p: dict) -> Verdict:
    return Verdict(Md(verdict_words(p["p_edge_step"], p["p_edge_half"])))


@dataclass(frozen=True)
class Hierarchy:
    """What the memory hierarchy switch means for the cache-latency rows of the sweep."""

    hier_note: Md
    lat_uses_on: float  # l1_hit + l2_hit + l3_hit paid per IO (most of the six), hierarchy on
    lat_uses_off: float  # the same with it off


def hierarchy_section(study: unc.Study, base_cycles: float) -> Hierarchy:
    """The ``cache_latencies`` rows with the study's hierarchy switch: how often they are still paid, in words."""
    u = unc.cache_row_uses(study.setup, study.clock_ghz, base_cycles)
    rows = ", ".join(f"`{k}`" for k in unc.CACHE_ROWS)
    if study.setup.hierarchy:
        note = (f"This sweep runs the models with the memory hierarchy on (the `hierarchy` parameter): the hot paths' "
                f"loads and stores are charged by the hierarchy, so the cache-latency rows ({rows}) price only the loads "
                f"the slow paths still charge flat — at most {u['on']:.2f} per IO in any of the six configurations, "
                f"against {u['off']:.1f} with the hierarchy off. Their draws have next to no effect on the answers below, "
                f"and the hierarchy's own latencies (the ranges of `data/kernel/cpu.yaml`, listed in the methods appendix) "
                f"are not sampled: they stay at their cited values.")
    else:
        note = (f"This sweep runs the models with the memory hierarchy off (the `hierarchy` parameter): the "
                f"cache-latency rows ({rows}) price every load the code waits for — up to {u['off']:.1f} per IO in the "
                f"six configurations (at most {u['on']:.2f} with the hierarchy on).")
    return Hierarchy(Md(note), u["on"], u["off"])


def cache_rows_words(sob: pd.DataFrame, hierarchy: bool, group: str = "cache_latencies") -> str:
    """The cache-latency group's total Sobol' index for both outputs, in a sentence (empty when the design has
    no such input)."""
    g = sob[sob["input"] == group]
    if g.empty:
        return ""
    st = {o: float(g.loc[g["output"] == o, "ST"].iloc[0]) for o in unc.OUTPUTS}
    how = ("with the hierarchy on, they price only the slow paths' flat loads" if hierarchy else
           "with the hierarchy off, they price every load the code waits for")
    return (f"The cache-latency rows (`{group}`) have a total index of {st['edge ns/IO']:.2g} for the edge and "
            f"{st['patch gain %']:.2g} for the patch's gain: {how}.")

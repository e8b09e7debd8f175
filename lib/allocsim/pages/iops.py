"""Tables, charts and glue for chapter 5 ("Reproducing the IOPS comparison"), so the notebook only calls them.

Everything here formats results computed by :mod:`allocsim.analysis.comparison` (one function and one
dataclass per section), :mod:`allocsim.analysis.runs`, :mod:`allocsim.analysis.iops`,
:mod:`allocsim.analysis.agreement` and :mod:`allocsim.analysis.claims`. The ``glue_*`` functions glue a section's dataclass field by field under
the field's name, plus the few clauses whose wording follows the numbers (``comparison.*_words``); the
prose is the chapter's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import altair as alt
import numpy as np
import pandas as pd

from allocsim.analysis import agreement
from allocsim.analysis import claims
from allocsim.analysis import comparison
from allocsim.analysis import iops
from allocsim.analysis import runs
from allocsim.analysis.runs import Reproduction
from allocsim.facts import steps as _steps
from allocsim.facts import thread
from allocsim.pages import charts
from allocsim.pages import costing
from allocsim.pages.glue import glue, glue_all
from allocsim.pages.mdtable import markdown



def _step():
    """The two reported 7.0-rc4 figures one 0.01M step apart, as ``(lo, hi, pct)`` for the titles below."""
    st = comparison.step()
    return st.lo_fig, st.hi_fig, st.gap_pct

#: The model's kernel names and the thread's.
KERNEL_LABEL = {"6.19": "6.19", "7.0": "7.0-rc4"}

#: Cost-table primitive → the mechanism it stands for in the breakdown (every row of data/costs.csv).
MECHANISM = {
    "preempt_pair": "preempt count (get_cpu/put_cpu, local_trylock)",
    "l1_hit": "loads the code waits for (L1)",
    "function_call": "calls (entry points, hooks, slow paths)",
    "static_key": "static keys (hooks)",
    "zero_line": "init_on_alloc zeroing",
    "memcg_account": "memcg accounting (SLAB_ACCOUNT)",
    "percpu_cmpxchg16b": "cmpxchg16b (cpu slab, slab freelist)",
    "locked_cmpxchg16b": "cmpxchg16b (cpu slab, slab freelist)",
    "irq_save_restore": "interrupt toggling (splice, slow paths)",
    "irq_disable_enable": "interrupt toggling (splice, slow paths)",
    "spin_lock_pair": "barn / list_lock traffic",
    "spin_lock_irqsave_pair": "barn / list_lock traffic",
    "cacheline_transfer": "barn / list_lock traffic",
    "bulk_object": "refill / flush in bulk",
    "page_alloc_free": "page allocator",
    "l2_hit": "cache misses",
    "l3_hit": "cache misses",
    "other": "lock waiting and timing effects",
    "memory": "loads and stores (memory hierarchy)",
}


# ---- the setup: chapter 5's parameters, the kernel's hot-path switches among them ----------------------

def switches(P) -> _steps.Hooks:
    """The hook switches of chapter 5's parameters (one bool parameter per switch of ``hooks.yaml``)."""
    return _steps.Hooks.of({k: bool(getattr(P, k)) for k in _steps.switches()})


def setup_of(P) -> runs.Setup:
    """The six runs' :class:`allocsim.analysis.runs.Setup` of chapter 5's validated parameters ``P``:
    the workload and cache fields, the kernel's hot-path switches as :attr:`Setup.hooks` and the memory
    hierarchy switch as :attr:`Setup.hierarchy` (at the page's clock)."""
    s = replace(runs.Setup.from_params(P), hooks=switches(P), hierarchy=bool(P.hierarchy))
    return runs.clocked(s, P.clock_ghz).validate()


def switches_table(hooks: _steps.Hooks) -> pd.DataFrame:
    """Every switch: this page's value, the distribution default, what it changes on the hot path and the
    source of the default (``data/kernel/hooks.yaml``)."""
    rows = []
    for k, sw in _steps.switches().items():
        on = lambda v: "on" if v else "off"  # noqa: E731
        rows.append({"switch": costing.escape(k), "this page (default)": f"{on(getattr(hooks, k))} ({on(sw['default'])})",
                     "what it changes; the default's source": costing.escape(sw["what"]) + ". *Default:* "
                     + costing.escape(sw["source"])})
    return pd.DataFrame(rows)


def switches_words(hooks: _steps.Hooks) -> str:
    """Whether this page runs the distribution defaults, and which switches it changed."""
    changed = hooks.changed()
    if not changed:
        return "This page runs every switch at its distribution default."
    return ("This page changes " + ", ".join(f"`{k}` to {'on' if v else 'off'}" for k, v in changed.items())
            + " from the distribution defaults.")


def _label(df: pd.DataFrame) -> pd.DataFrame:
    d = df.copy()
    d["configuration"] = d["kernel"].map(KERNEL_LABEL) + " · " + d["allocator"]
    return d


def cycles_frame(rep: Reproduction) -> pd.DataFrame:
    rows = []
    for (k, a), r in rep.runs.items():
        rows.append({"kernel": k, "allocator": a, "cycles_per_io": r.cycles_per_io,
                     "ns_per_io": r.cycles_per_io / rep.clock_ghz, "model": r.model,
                     "paths": ", ".join(f"{p} {c / r.ios:.2f}/IO" for p, (c, cy) in
                                        sorted(r.paths.items(), key=lambda kv: -kv[1][1]) if c)})
    return pd.DataFrame(rows)


def cycles_chart(rep: Reproduction) -> alt.Chart:
    """Allocator cycles per IO of the six configurations (steady state)."""
    d = cycles_frame(rep)
    d["kernel_label"] = d["kernel"].map(KERNEL_LABEL)
    return alt.Chart(d).mark_bar().encode(
        x=alt.X("cycles_per_io:Q", title=charts.axis("allocator cost per IO (alloc + free)", "cycles")),
        y=alt.Y("allocator:N", title=None, sort=list(charts.ALLOCATORS)),
        row=alt.Row("kernel_label:N", title=None, sort=[KERNEL_LABEL[k] for k in iops.KERNELS],
                    header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")),
        color=charts.allocator_color(),
        tooltip=[alt.Tooltip("kernel:N"), alt.Tooltip("allocator:N"), alt.Tooltip("model:N"),
                 alt.Tooltip("cycles_per_io:Q", title="cycles per IO", format=".2f"),
                 alt.Tooltip("ns_per_io:Q", title="ns per IO", format=".2f"),
                 alt.Tooltip("paths:N", title="paths per IO")],
    ).properties(width=400, height=75, title=alt.Title("What the allocator costs per IO, by model",
                                                       subtitle="steady state of the io_uring loop; hover for the paths taken"))


#: Number formats of :func:`prediction_table`.
PREDICTION_FORMATS = {"reported (M IOPS)": ".2f", "predicted (M IOPS)": ".4f", "residual (ns)": "+.2f",
                      "z": "+.2f", "to the edge (ns)": "+.2f"}


def prediction_table(rep: Reproduction) -> pd.DataFrame:
    """The fit, narrow enough for the text column: configuration, reported and predicted M IOPS, the
    residual in ns per IO and in half-intervals of the figure's rounding (z), whether the prediction rounds
    to the figure with the ns per IO to the nearer edge of its interval beside it (negative: by how much it
    misses), and whether the base was fitted on it."""
    t = rep.table
    return pd.DataFrame({
        "configuration": t["kernel"].map(KERNEL_LABEL) + " " + t["allocator"],
        "reported (M IOPS)": t["reported M IOPS"], "predicted (M IOPS)": t["predicted M IOPS"],
        "residual (ns)": t["residual ns/IO"], "z": t["z"],
        "rounds to it": t["rounds to reported"].map({True: "yes", False: "no"}),
        "to the edge (ns)": t["edge ns/IO"], "fitted on": t["fitted on"].map({True: "yes", False: ""})})


def z_frame(rep: Reproduction, loo: pd.DataFrame) -> pd.DataFrame:
    """Every residual in half-intervals: the page's fit (one per configuration) and leave-one-out's
    out-of-sample predictions (five per configuration)."""
    t = _label(rep.table).assign(fit="this page's fit")
    t["calibrated on"] = ""
    l = _label(loo).assign(fit="leave-one-out")
    l["calibrated on"] = l["calibrated on"].str.replace("7.0 ", f"{KERNEL_LABEL['7.0']} ", regex=False)
    cols = ["configuration", "allocator", "fit", "calibrated on", "z", "residual ns/IO", "edge ns/IO",
            "predicted M IOPS", "reported M IOPS"]
    return pd.concat([t[cols], l[cols]], ignore_index=True)


def z_chart(rep: Reproduction, loo: pd.DataFrame) -> alt.LayerChart:
    """Residuals in half-intervals of the figures' rounding: light band |z| <= 1 (the prediction rounds to
    the figure), darker strips the knife edge on either side of its edges; points the page's fit, ticks the
    leave-one-out predictions."""
    d = z_frame(rep, loo)
    m = float(max(1.6, d["z"].abs().max() + 0.2))
    k = agreement.KNIFE
    scale = alt.Scale(domain=[-m, m], nice=False)
    ticks_at = list(np.arange(-np.floor(2 * m) / 2, np.floor(2 * m) / 2 + 0.01, 0.5))
    x = alt.X("z:Q", scale=scale, axis=alt.Axis(values=ticks_at, format="~g"),
              title="z (+: slower than the figure)")
    y = alt.Y("configuration:N", title=None, sort=list(_label(rep.table)["configuration"]), axis=alt.Axis(labelLimit=220))
    bands = pd.DataFrame({"lo": [-1.0, -1 - k, 1 - k], "hi": [1.0, -1 + k, 1 + k], "shade": ["#dddddd", "#aaaaaa", "#aaaaaa"]})
    band = alt.Chart(bands).mark_rect(opacity=0.6).encode(x=alt.X("lo:Q", scale=scale), x2="hi:Q",
                                                          color=alt.Color("shade:N", scale=None))
    tip = [alt.Tooltip("configuration:N"), alt.Tooltip("fit:N"), alt.Tooltip("calibrated on:N"),
           alt.Tooltip("z:Q", format="+.3f"), alt.Tooltip("residual ns/IO:Q", format="+.2f"),
           alt.Tooltip("edge ns/IO:Q", title="ns to the edge (−: outside)", format="+.2f"),
           alt.Tooltip("predicted M IOPS:Q", format=".4f"), alt.Tooltip("reported M IOPS:Q", format=".2f")]
    ticks = alt.Chart(d[d["fit"] == "leave-one-out"]).mark_tick(color="#777", thickness=1.5, size=14).encode(
        x=x, y=y, tooltip=tip)
    pts = alt.Chart(d[d["fit"] != "leave-one-out"]).mark_point(filled=True, size=130, opacity=1).encode(
        x=x, y=y, color=charts.allocator_color().legend(None), tooltip=tip)  # the row labels name the allocator
    return (band + ticks + pts).resolve_scale(color="independent").properties(width=380, height=200, title=alt.Title(
        "Residuals in half-intervals of the rounding", subtitle="points: this page's fit · ticks: leave-one-out"))


def loo_perfect_chart(dist: pd.DataFrame, a: agreement.Agreement) -> alt.LayerChart:
    """The perfect model's leave-one-out score under the figures' rounding (bars; coloured inside its central
    interval), the model's score marked."""
    d = dist.copy()
    inside = (d["rounds right"] >= a.loo_perfect_lo) & (d["rounds right"] <= a.loo_perfect_hi)
    d["where"] = np.where(inside, f"the perfect model's {a.level_pct:.0f} %", "outside it")
    x = alt.X("rounds right:O", sort=list(d["rounds right"]), title=f"predictions that round right (of {a.loo_n})",
              axis=alt.Axis(values=list(range(0, a.loo_n + 1, 2 if a.loo_n <= 40 else 5)), labelAngle=0))
    bars = alt.Chart(d).mark_bar().encode(
        x=x, y=alt.Y("probability:Q", title="probability, perfect model"),
        color=alt.Color("where:N", title=None, scale=alt.Scale(range=["#999999", charts.ACCENT],
                        domain=["outside it", f"the perfect model's {a.level_pct:.0f} %"]),
                        legend=alt.Legend(orient="bottom", labelLimit=300)),
        tooltip=[alt.Tooltip("rounds right:O"), alt.Tooltip("probability:Q", format=".3f")])
    mark = pd.DataFrame({"rounds right": [a.loo_ok], "label": [f"the model: {a.loo_ok}"]})
    rule = alt.Chart(mark).mark_rule(color=charts.COLORS["per-CPU list"], strokeWidth=2.5).encode(x=x)
    text = alt.Chart(mark).mark_text(align="left", dx=6, dy=2, baseline="top", fontWeight="bold",
                                     color=charts.COLORS["per-CPU list"]).encode(x=x, y=alt.value(0), text="label:N")
    return (bars + rule + text).properties(width=380, height=180, title=alt.Title(
        "Leave-one-out against a perfect model", subtitle=f"same rounding; {a.draws:,} seeded draws"))


def loo_chart(loo: pd.DataFrame) -> alt.Chart:
    """Leave-one-out: residual of each prediction (columns) for each single calibration target (rows)."""
    d = loo.copy()
    d["predicted"] = d["kernel"].map(KERNEL_LABEL) + " · " + d["allocator"]
    d["calibrated on"] = d["calibrated on"].str.replace("7.0 ", f"{KERNEL_LABEL['7.0']} ", regex=False)
    d["mark"] = np.where(d["rounds to reported"], "✓", "✗")
    order = [f"{KERNEL_LABEL[k]} · {a}" for k, a in iops.CONFIGS]
    order_on = [f"{KERNEL_LABEL[k]} {a}" for k, a in iops.CONFIGS]
    m = float(max(1.0, d["residual ns/IO"].abs().max()))
    base = alt.Chart(d).encode(
        x=alt.X("predicted:N", title="predicted configuration", sort=order, axis=alt.Axis(labelAngle=-35, labelLimit=150)),
        y=alt.Y("calibrated on:N", title="base cost fitted on", sort=order_on, axis=alt.Axis(labelLimit=150)),
        tooltip=[alt.Tooltip("calibrated on:N"), alt.Tooltip("predicted:N"), alt.Tooltip("base ns:Q", format=".1f"),
                 alt.Tooltip("predicted M IOPS:Q", format=".4f"), alt.Tooltip("reported M IOPS:Q", format=".2f"),
                 alt.Tooltip("residual ns/IO:Q", format="+.2f"), alt.Tooltip("rounds to reported:N")])
    cells = base.mark_rect().encode(color=alt.Color("residual ns/IO:Q", title="residual (ns/IO)",
                                                    scale=alt.Scale(scheme="redblue", domain=[-m, m], reverse=True)))
    text = base.mark_text(fontSize=15, fontWeight="bold").encode(
        text="mark:N", color=alt.condition(f"abs(datum['residual ns/IO']) > {m / 2}", alt.value("white"), alt.value("#222")))
    return (cells + text).properties(width=300, height=220, title=alt.Title(
        "Leave-one-out: fit on one figure, predict the other five",
        subtitle="✓ = the prediction rounds to the reported figure"))


def clock_chart(profile: pd.DataFrame, clock_ghz: float, noise_rms: float) -> alt.LayerChart:
    line = alt.Chart(profile).mark_line(point=alt.OverlayMarkDef(color=charts.ACCENT), color=charts.ACCENT).encode(
        x=alt.X("clock_ghz:Q", title=charts.axis("assumed clock", "GHz")),
        y=alt.Y("rms_ns:Q", title=charts.axis("RMS residual of the six", "ns per IO")),
        tooltip=[alt.Tooltip("clock_ghz:Q", title="GHz"), alt.Tooltip("rms_ns:Q", title="RMS ns", format=".2f"),
                 alt.Tooltip("rounding:Q", title="figures reproduced"), alt.Tooltip("base_ns:Q", format=".1f")])
    rule = alt.Chart(pd.DataFrame({"y": [noise_rms], "what": ["a perfect model's median RMS under the rounding"]})).mark_rule(
        strokeDash=[4, 3], color="#555").encode(y="y:Q", tooltip=[alt.Tooltip("what:N"), alt.Tooltip("y:Q", format=".2f")])
    now = alt.Chart(pd.DataFrame({"x": [clock_ghz]})).mark_rule(color="#999").encode(x="x:Q")
    return (line + rule + now).properties(width=400, height=200, title=alt.Title(
        "Would fitting the clock as well help?", subtitle="dashed: the median RMS a perfect model leaves under the figures' 0.01M rounding"))


def paths_chart(pf: pd.DataFrame, kernel: str, allocator: str) -> alt.Chart:
    """Per-path cycles per IO of the per-CPU list and ``allocator`` on ``kernel`` (``Result.paths``)."""
    d = pf[(pf["kernel"] == kernel) & (pf["allocator"].isin(["per-CPU list", allocator]))].copy()
    d = d[d["cycles_per_io"] > 0]
    return alt.Chart(d).mark_bar().encode(
        x=alt.X("sum(cycles_per_io):Q", title=charts.axis("cycles per IO", "cycles")),
        y=alt.Y("allocator:N", title=None, sort=["per-CPU list", allocator]),
        color=alt.Color("path:N", title="path", scale=alt.Scale(scheme="tableau20"),
                        legend=alt.Legend(columns=2, labelLimit=260)),
        order=alt.Order("cycles_per_io:Q", sort="descending"),
        tooltip=[alt.Tooltip("allocator:N"), alt.Tooltip("path:N"), alt.Tooltip("per_io:Q", title="times per IO", format=".3f"),
                 alt.Tooltip("cycles_per_io:Q", title="cycles per IO", format=".2f"),
                 alt.Tooltip("ns_per_io:Q", title="ns per IO", format=".2f")],
    ).properties(width=420, height=90, title=alt.Title(f"Where the cycles go on {KERNEL_LABEL[kernel]}: by path",
                                                       subtitle="Result.paths in the steady state; hover a segment"))


def mechanism_frame(uses: pd.DataFrame, clock_ghz: float) -> pd.DataFrame:
    d = uses.copy()
    d["mechanism"] = d["primitive"].map(MECHANISM)
    g = d.groupby(["allocator", "mechanism"], as_index=False)["cycles per IO"].sum()
    w = g.pivot(index="mechanism", columns="allocator", values="cycles per IO").fillna(0.0)
    return w


def mechanism_chart(uses: pd.DataFrame, kernel: str, allocator: str, clock_ghz: float) -> alt.Chart:
    """The gap by mechanism: ``allocator`` minus the per-CPU list, cycles per IO, from the primitive
    decomposition of :func:`allocsim.analysis.runs.primitive_uses`."""
    w = mechanism_frame(uses, clock_ghz)
    for a in ("per-CPU list", allocator):
        if a not in w.columns:
            w[a] = 0.0
    d = pd.DataFrame({"mechanism": w.index, "per-CPU list": w["per-CPU list"].values, "other": w[allocator].values})
    d["gap"] = d["other"] - d["per-CPU list"]
    d["gap_ns"] = d["gap"] / clock_ghz
    d = d[(d["per-CPU list"].abs() > 1e-9) | (d["other"].abs() > 1e-9)]
    d["side"] = np.where(d["gap"] >= 0, f"{allocator} pays more", "the list pays more")
    return alt.Chart(d).mark_bar().encode(
        x=alt.X("gap:Q", title=charts.axis(f"{allocator} minus per-CPU list, per IO", "cycles")),
        y=alt.Y("mechanism:N", title=None, sort=alt.EncodingSortField("gap", order="descending"), axis=alt.Axis(labelLimit=260)),
        color=alt.Color("side:N", title=None, legend=alt.Legend(labelLimit=300),
                        scale=alt.Scale(range=[charts.COLORS.get(allocator, "#009E73"), charts.COLORS["per-CPU list"]],
                                        domain=[f"{allocator} pays more", "the list pays more"])),
        tooltip=[alt.Tooltip("mechanism:N"), alt.Tooltip("per-CPU list:Q", title="per-CPU list cycles/IO", format=".2f"),
                 alt.Tooltip("other:Q", title=f"{allocator} cycles/IO", format=".2f"),
                 alt.Tooltip("gap:Q", title="difference cycles/IO", format="+.2f"),
                 alt.Tooltip("gap_ns:Q", title="difference ns/IO", format="+.2f")],
    ).properties(width=260, height=alt.Step(22), title=alt.Title(f"… and by mechanism ({KERNEL_LABEL[kernel]})",
                                                                 subtitle="cost-table primitives paid per IO × their cost"))


def noise_chart(nf: pd.DataFrame, cv: float) -> alt.HConcatChart:
    x = alt.X("cv_pct:Q", title=charts.axis("run-to-run CV", "%"))
    p = nf.melt(id_vars=["cv_pct"], value_vars=["p_order", "p_exact"], var_name="what", value_name="p")
    p["what"] = p["what"].map({"p_order": "same order as reported", "p_exact": "exactly the reported figures"})
    left = alt.Chart(p).mark_line(point=True).encode(
        x=x, y=alt.Y("p:Q", title="probability, one run each", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("what:N", title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=300)),
        tooltip=[alt.Tooltip("cv_pct:Q", title="CV %"), alt.Tooltip("what:N"), alt.Tooltip("p:Q", format=".3f")])
    right = alt.Chart(nf).mark_line(point=alt.OverlayMarkDef(color=charts.ACCENT), color=charts.ACCENT).encode(
        x=x, y=alt.Y("runs:Q", title="runs per allocator", scale=alt.Scale(type="log")),
        tooltip=[alt.Tooltip("cv_pct:Q", title="CV %"), alt.Tooltip("runs:Q")])
    mark = alt.Chart(pd.DataFrame({"x": [cv * 100]})).mark_rule(color="#999", strokeDash=[4, 3]).encode(x="x:Q")
    lo, hi, pct = _step()
    return alt.hconcat((left + mark).properties(width=210, height=190, title="Single runs"),
                       (right + mark).properties(width=210, height=190, title=f"{lo:.2f}M vs {hi:.2f}M at 95 %")).properties(
        title=alt.Title(f"Is a {pct:.1f} % difference measurable?", subtitle="dashed: the CV this page assumes"))


def tornado_chart(tor: pd.DataFrame, allocator: str, kernel: str) -> alt.LayerChart:
    d = tor[tor["swing"] > 1e-9].copy()
    if d.empty:
        d = tor.head(1).copy()
    g0 = float(tor["gap at default"].iloc[0])
    long = []
    for r in d.to_dict("records"):
        for end in ("low", "high"):
            long.append({"key": r["key"], "end": f"{end} end of the cited range", "value": r[end],
                         "gap": r[f"gap at {end}"], "default": g0, "source": r["source"]})
    L = pd.DataFrame(long)
    order = list(d["key"])
    bars = alt.Chart(L).mark_bar(opacity=0.85).encode(
        y=alt.Y("key:N", title=None, sort=order, axis=alt.Axis(labelLimit=200)),
        x=alt.X("default:Q", title=charts.axis(f"per-CPU list's edge over {allocator} on {KERNEL_LABEL[kernel]}", "ns per IO")),
        x2="gap:Q",
        color=alt.Color("end:N", title=None, scale=alt.Scale(range=["#56B4E9", "#E69F00"]), legend=alt.Legend(labelLimit=300)),
        tooltip=[alt.Tooltip("key:N", title="cost entry"), alt.Tooltip("end:N"), alt.Tooltip("value:Q", title="cycles"),
                 alt.Tooltip("gap:Q", title="edge ns/IO", format="+.2f"), alt.Tooltip("source:N")])
    rule = alt.Chart(pd.DataFrame({"x": [g0]})).mark_rule(color="#333").encode(x="x:Q")
    return (bars + rule).properties(width=380, height=alt.Step(20), title=alt.Title(
        "Which costs the verdict depends on", subtitle="each cost-table entry moved to either end of its cited range, the rest at default"))


def scenario_chart(sc: pd.DataFrame) -> alt.Chart:
    d = _label(sc)
    return alt.Chart(d).mark_point(filled=True, size=110, opacity=1).encode(
        x=alt.X("alloc ns/IO:Q", title=charts.axis("allocator time per IO", "ns")),
        y=alt.Y("scenario:N", title=None, sort=list(dict.fromkeys(d["scenario"])), axis=alt.Axis(labelLimit=300)),
        color=charts.allocator_color(), shape=alt.Shape("kernel:N", title="kernel"),
        tooltip=[alt.Tooltip("scenario:N"), alt.Tooltip("configuration:N"),
                 alt.Tooltip("alloc cycles/IO:Q", format=".2f"), alt.Tooltip("alloc ns/IO:Q", format=".2f"),
                 alt.Tooltip("predicted M IOPS:Q", title="M IOPS per submitter", format=".4f")],
    ).properties(width=280, height=alt.Step(26), title=alt.Title("The same six under other conditions",
                                                                 subtitle="per submitter thread; base cost as calibrated"))


def claims_table(df: pd.DataFrame) -> pd.DataFrame:
    out = df[["quantity", "kernel", "claimed", "modelled", "status", "how", "note"]].copy()
    out["status"] = out["status"].map({"reproduced": "**reproduced**", "partly": "partly", "not reproduced": "*not reproduced*"})
    return out


#: SLUB_STATS counters worth recording per run (their sysfs names: ``enum stat_item`` and the
#: ``STAT_ATTR()`` list of v6.19 / v7.0 ``mm/slub.c``).
COUNTERS_619 = ("alloc_fastpath", "alloc_slowpath", "free_fastpath", "free_slowpath", "free_frozen",
                "cpu_partial_alloc", "cpu_partial_free", "alloc_cpu_sheaf", "free_cpu_sheaf")
COUNTERS_SHEAVES = ("sheaf_refill", "sheaf_flush", "sheaf_alloc", "barn_get", "barn_get_fail", "barn_put", "barn_put_fail")


def expected_counters(rep: Reproduction) -> pd.DataFrame:
    """What the models expect each SLUB_STATS counter to read per IO, per configuration (non-zero only;
    the per-CPU list's are those of its kmalloc-128 fallback)."""
    rows = []
    for (k, a), r in rep.runs.items():
        for name, v in r.stats.items():
            base = name.split(":", 1)[1] if ":" in name else name
            if ":" not in name and a == "per-CPU list":
                continue  # the list's own counters are not SLUB_STATS
            if base in COUNTERS_619 + COUNTERS_SHEAVES + ("alloc_slab", "free_slab", "alloc_from_partial") and v:
                rows.append({"kernel": KERNEL_LABEL[k], "allocator": a, "counter": base, "per IO": v / r.ios})
    if not rows:
        return pd.DataFrame(columns=["counter"])
    d = pd.DataFrame(rows)
    d["configuration"] = d["kernel"] + " " + d["allocator"]
    w = d.pivot_table(index="counter", columns="configuration", values="per IO", aggfunc="sum").fillna(0.0)
    return w.reset_index()


# ---- sentences whose wording depends on the numbers (so a re-run with other parameters stays true) ----

BARN_PATHS = ("alloc_sheaf_barn", "alloc_sheaf_refill", "free_sheaf_barn_empty", "free_sheaf_barn_put", "free_sheaf_flush",
              "free_sheaf_alloc_empty", "free_sheaf_flush_main", "alloc_sheaf_spare", "free_sheaf_spare")


def barn_sentence(rep: Reproduction, kernel: str, allocator: str) -> str:
    """Whether the sheaf's slow paths (spare swaps, barn, refill, flush) appear in the steady state."""
    r = rep.runs[(kernel, allocator)]
    used = {p: c for p, (c, _) in r.paths.items() if c and p in BARN_PATHS}
    if not any(p.startswith("alloc_sheaf") or p.startswith("free_sheaf") for p, (c, _) in r.paths.items() if c):
        return ""  # no sheaf in this configuration (6.19 kmalloc, the per-CPU list)
    if not used:
        return ("In the steady state of this loop the sheaf never runs empty or full: no spare swap, barn exchange, "
                "refill or flush happens at all — the objects in flight stay inside main and spare.")
    per = ", ".join(f"`{p}` {c / r.ios:.3f}" for p, c in sorted(used.items(), key=lambda kv: -kv[1]))
    return f"Beyond the fast path, the sheaf's slower paths run this often per IO: {per}."


def mechanism_sentence(uses: pd.DataFrame, allocator: str, clock_ghz: float, top: int = 4) -> str:
    """The largest per-mechanism differences between ``allocator`` and the per-CPU list, in words."""
    w = mechanism_frame(uses, clock_ghz)
    if allocator not in w.columns or "per-CPU list" not in w.columns:
        return ""
    diff = (w[allocator] - w["per-CPU list"]).sort_values(key=lambda x: -x.abs())
    diff = diff[diff.abs() > 0.005].head(top)
    if diff.empty:
        return "No mechanism differs between the two."
    parts = [f"{name}: {w.loc[name, allocator]:.2f} against {w.loc[name, 'per-CPU list']:.2f} cycles per IO"
             for name in diff.index]
    return "The largest differences per IO, " + allocator + " against the list: " + "; ".join(parts) + "."




# ---- glue, section by section --------------------------------------------------------------------------

def _md(text: str):
    from IPython.display import Markdown

    return Markdown(text)


def label(kernel: str, allocator: str | None = None) -> str:
    """``7.0-rc4 sheaf-256``: the thread's name for a model configuration."""
    return KERNEL_LABEL[kernel] + ("" if allocator is None else f" {allocator}")


def glue_setting(setup: runs.Setup) -> comparison.Setting:
    """The workload and caches as the prose names them (all from the parameters)."""
    s = comparison.setting(setup)
    glue("t_opts", _md(f"`t/io_uring {s.t_opts}`"))
    glue("t_opts_assumed", _md(f"`t/io_uring {comparison.ASSUMED.t_io_uring()}`"))
    glue("command_whose", _md(comparison.command_words(s)))
    glue("completion_where", _md(s.completion))
    glue("submitters_words", _md(comparison.submitters_words(s.submitters)))
    for key in ("kmalloc_cache", "fallback_cache"):
        glue(key, _md(getattr(s, key)))
    glue("object_size", s.object_size)
    glue("sheaf_capacity", s.sheaf_capacity)
    glue("default_capacity_70", s.default_capacity_70)
    glue("warmup", setup.workload(0).warmup)
    glue("qd", setup.queue_depth)
    return s


def glue_switches(setup: runs.Setup) -> pd.DataFrame:
    """The switches this page ran with (glued in words) and their table."""
    glue("switches_words", _md(switches_words(setup.hooks)))
    glue("switches_on", _md(", ".join(f"`{k}`" for k in _steps.switches() if getattr(setup.hooks, k)) or "none"))
    return switches_table(setup.hooks)


# ---- the hot paths side by side (cost model v2) --------------------------------------------------------

#: Number formats of the hot-path table.
HOT_FORMATS = {c: ".0f" for c in costing.HOT_COLUMNS}


@dataclass(frozen=True)
class HotPaths:
    """One allocation and one free on each allocator's hot path (cycles, step sums of steps.yaml)."""

    hp_list: float  # the per-CPU list: a hit and a free onto the interrupt list
    hp_619: float  # 6.19 kmalloc on the cpu slab's fast paths
    hp_70: float  # 7.0 kmalloc, a sheaf hit each way
    hp_sheaf: float  # the dedicated cache, a sheaf hit each way
    hp_skip: float  # what the list skips against the dedicated cache: both entry points and both sets of hooks
    hp_skip_ns: float
    hp_alloc_hooks: float  # slab_alloc_node()'s hooks (the dedicated cache)
    hp_lookup: float  # kfree(): the entry and the lookup of the object's slab and cache (7.0 kmalloc)
    hp_own_list: float  # the allocator proper, both directions
    hp_own_sheaf: float
    hp_own_word: str  # "more" / "fewer": the list's own steps against the sheaf's
    hp_sheaf_run: float  # what the model charged 7.0 sheaf-256 per IO in the run (for comparison)
    hp_list_run: float


def hot_paths(rep: Reproduction) -> tuple[pd.DataFrame, HotPaths]:
    """:func:`allocsim.pages.costing.hot_path_totals` of the page's setup, and the figures the prose names."""
    d = costing.hot_path_directions(rep.setup)
    L, K6, K7, S = (d[c] for c in costing.HOT_COLUMNS)
    pair = lambda x: x["alloc"].total + x["free"].total  # noqa: E731
    own = lambda x: x["alloc"].allocator + x["free"].allocator  # noqa: E731
    skip = pair(S) - own(S)
    return costing.hot_path_totals(rep.setup), HotPaths(
        pair(L), pair(K6), pair(K7), pair(S), skip, skip / rep.clock_ghz, S["alloc"].hooks,
        K7["free"].entry, own(L), own(S), "more" if own(L) > own(S) else "fewer",
        float(rep.alloc_cycles[("7.0", "sheaf-256")]), float(rep.alloc_cycles[("7.0", PCPU_LABEL)]))


PCPU_LABEL = "per-CPU list"


def glue_hot_paths(rep: Reproduction) -> pd.DataFrame:
    t, h = hot_paths(rep)
    glue_all(h, skip=("hp_own_word",))
    glue("hp_own_word", _md(h.hp_own_word))
    return t


def configs_table(setup: runs.Setup) -> pd.DataFrame:
    return pd.DataFrame([runs.describe_config(k, a, setup) for k, a in iops.CONFIGS]).assign(
        kernel=lambda d: d["kernel"].map(KERNEL_LABEL))


def glue_costs(rep: Reproduction, s: comparison.Setting) -> comparison.CostsPerIO:
    for (k, a), v in rep.alloc_cycles.items():
        glue(f"cyc_{k}_{a}", v)
        glue(f"ns_{k}_{a}", v / rep.clock_ghz)
    c = comparison.costs_per_io(rep)
    glue_all(c, skip=("kmalloc_cheaper_70",))
    glue("kmalloc_gain_word", _md("less" if c.kmalloc_cheaper_70 else "more"))
    glue("pcpu_hit_tail", _md(comparison.hit_words(c.pcpu_hit, s.fallback_cache)))
    return c


def miss_words(fit: comparison.Fit) -> str:
    """Why the predictions that do not round to the reported figure miss (or that none does)."""
    if not fit.missed:
        return "Every prediction rounds to the reported figure."
    parts = []
    pcpu = [resid for _, a, _, _, resid in fit.missed if a == PCPU_LABEL]
    if pcpu and max(pcpu) > 0:
        parts.append("The per-CPU list is predicted slower than reported because the model gives it a smaller edge "
                     "over the other two than the reported figures suggest; the section on the remaining nanoseconds "
                     "takes that edge apart.")
    elif pcpu:
        parts.append("The per-CPU list is predicted faster than reported because the model gives it a larger edge over "
                     "the other two than the reported figures suggest: its hits skip the entry points and slab hooks "
                     "every SLUB operation runs (the hot-path table above).")
    for k, a, _, _, resid in fit.missed:
        if a != PCPU_LABEL:
            parts.append(f"{label(k, a)} is predicted {abs(resid):.1f} ns per IO {'slower' if resid > 0 else 'faster'} "
                         "than reported.")
    return " ".join(parts)


def glue_fit(rep: Reproduction) -> comparison.Fit:
    f = comparison.fit(rep)
    glue_all(f, skip=("missed", "rms_now"))
    glue("cal_on", _md("all six figures" if len(rep.on) == 6 else f"the {label(*rep.on[0])} figure alone"))
    glue("clock", rep.clock_ghz)
    glue("missed", _md(", ".join(f"{label(k, a)} ({p:.4f}M against {r:.2f}M)" for k, a, p, r, _ in f.missed) or "none"))
    glue("miss_why", _md(miss_words(f)))
    st = comparison.step()
    glue_all(st, skip=("gap_pct",))
    glue("step_gap_pct", st.gap_pct)
    glue("precision_miops", iops.PRECISION_MIOPS)
    return f


def knife_words(table: pd.DataFrame, clock_ghz: float) -> str:
    """Which "rounds to the figure" verdicts sit on a knife edge, with the ns (and cycles) that would flip
    them; or how far the nearest verdict is from flipping when none does."""
    t = _label(table)
    kn = t[agreement.knife_edge(t["z"])]
    if kn.empty:
        r = t.loc[t["edge ns/IO"].abs().idxmin()]
        return (f"No verdict is that close to an edge: the nearest, {r['configuration']}, is "
                f"{abs(r['edge ns/IO']):.2f} ns per IO from flipping.")
    parts = []
    for r in kn.to_dict("records"):
        e = abs(r["edge ns/IO"])
        verb = (f"rounds to {r['reported M IOPS']:.2f}M with {e:.2f} ns per IO to spare" if r["rounds to reported"] else
                f"misses {r['reported M IOPS']:.2f}M by {e:.2f} ns per IO")
        parts.append(f"{r['configuration']} {verb} ({e * clock_ghz:.2f} cycles)")
    verdicts = "that verdict says" if len(parts) == 1 else "those verdicts say"
    return ("; ".join(parts) + f": {verdicts} nothing either way, since a fraction of a cycle per IO in any cost "
            "would flip it.")


def glue_agreement(rep: Reproduction) -> agreement.Agreement:
    """The agreement statistics (:func:`allocsim.analysis.agreement.evaluate`), their clauses and two charts."""
    loo = iops.leave_one_out(runs.reported_miops(), rep.alloc_cycles, rep.clock_ghz)
    a = glue_all(agreement.evaluate(rep.table, loo), skip=("loo_ok", "loo_n"))  # glue_loo glues those two
    # plain text (no markup), so the landing page can paste them too ({glue:text} works across documents)
    glue("rms_words", agreement.rms_words(a))
    glue("loo_words", agreement.loo_words(a))
    glue("knife_words", knife_words(rep.table, rep.clock_ghz))
    glue("knife_count_words", agreement.knife_count_words(a.n_knife, a.n_figures))
    glue("loo_knife_words", agreement.knife_count_words(a.loo_n_knife, a.loo_n))
    glue("knife", agreement.KNIFE)
    glue("fig_z", z_chart(rep, loo))
    glue("fig_loo_perfect", loo_perfect_chart(agreement.loo_distribution(rep.table["reported M IOPS"]), a))
    return a


def glue_clock(rep: Reproduction) -> pd.DataFrame:
    prof = comparison.clock_profile(rep)
    c = comparison.clock_check(rep, prof)
    glue_all(c, skip=("prefers_other_clock",))
    glue("clock_verdict", _md(comparison.clock_words(c.prefers_other_clock)))
    glue("fig_clock", clock_chart(prof, rep.clock_ghz, c.rms_noise))
    return prof


def _targets(names) -> str:
    return ", ".join(n.replace("7.0 ", KERNEL_LABEL["7.0"] + " ") for n in names)


def glue_loo(rep: Reproduction) -> pd.DataFrame:
    loo, s = comparison.leave_one_out(rep)
    glue_all(s, skip=("lo_on", "hi_on", "best", "far_base_ns", "loo_rerun_delta"))
    glue("loo_lo_on", _md(_targets(s.lo_on)))
    glue("loo_hi_on", _md(_targets(s.hi_on)))
    glue("loo_others", len(iops.CONFIGS) - 1)
    glue("loo_best", _md(", ".join(f"{_targets([k])} ({v} of {len(iops.CONFIGS) - 1})" for k, v in s.best)))
    glue("loo_rerun", _md(comparison.change_words(s.loo_rerun_delta)))
    glue("fig_loo", loo_chart(loo))
    return loo


def gains_display(table: pd.DataFrame) -> pd.DataFrame:
    """The gains table as the page shows it (kernel names as the thread gives them)."""
    d = table.drop(columns=["key", "lo", "hi"]).copy()
    d["gain"] = d["gain"].str.replace("7.0", KERNEL_LABEL["7.0"], regex=False)
    return d


def glue_gains(rep: Reproduction, statuses: dict) -> pd.DataFrame:
    t = comparison.gains_table(rep, statuses)
    g = comparison.gains(rep, t)
    glue_all(g)
    glue("patch_status", _md(claims.status_phrase(statuses["patch-gain"])))
    return t


def mechanism_words(kernel: str, allocator: str) -> str:
    """What one operation of the page's allocator and of the list does (the kernel code it runs)."""
    entry = ("the call into the slab allocator and its hooks (`slab_alloc_node()`'s on an allocation; on a free the "
             "lookup of the object's slab and `slab_free()`'s)")
    lst = ("a list operation is a preempt-count round trip (`get_cpu()`/`put_cpu()`), the loads that find this CPU's "
           "list, and a pointer pop or push, plus, every so often, the splice of the interrupt list under "
           "`local_irq_save()` — and no hooks")
    if kernel == "7.0" or allocator == "sheaf-256":
        return (f"A sheaf operation is {entry}, then `local_trylock()` — itself a preempt-count round trip — and one "
                f"array slot; {lst}.")
    return (f"A 6.19 kmalloc operation is {entry}, then a `cmpxchg16b` on the cpu slab's freelist and transaction id "
            "when the object's slab is still the cpu slab, and otherwise a locked `cmpxchg16b` on the slab's own "
            f"freelist (`__slab_free()`), with the cpu partial list behind it; {lst}.")


def mechanism_uses(kernel: str, allocator: str, setup: runs.Setup, base_cycles: float) -> pd.DataFrame:
    """:func:`allocsim.analysis.runs.primitive_uses` of the per-CPU list and ``allocator``. With the memory
    hierarchy on, its charges are not a cost-table row, so they fall into the remainder ``other``; the row
    ``memory`` takes them out of it: the remainder with the hierarchy on minus the remainder of the same
    runs with it off (what is left in ``other`` is the lock waiting and timing of the flat runs)."""
    pair = ("per-CPU list", allocator)
    uses = pd.concat([runs.primitive_uses(kernel, a, setup, base_cycles) for a in pair], ignore_index=True)
    if not setup.hierarchy:
        return uses
    flat = replace(setup, hierarchy=False)
    rows = []
    for a in pair:
        off = runs.primitive_uses(kernel, a, flat, base_cycles)
        o_off = float(off.loc[off["primitive"] == "other", "cycles per IO"].iloc[0])
        at = (uses["allocator"] == a) & (uses["primitive"] == "other")
        o_on = float(uses.loc[at, "cycles per IO"].iloc[0])
        uses.loc[at, "cycles per IO"] = o_off
        rows.append({"kernel": kernel, "allocator": a, "primitive": "memory", "uses per IO": float("nan"),
                     "cycles per IO": o_on - o_off})
    return pd.concat([uses, pd.DataFrame(rows)], ignore_index=True)


def glue_gap(rep: Reproduction, kernel: str, allocator: str) -> comparison.Gap:
    g = comparison.gap(rep, kernel, allocator)
    glue_all(g, skip=("behind", "gap_c", "reported_pcpu", "reported_other", "need_hi"))
    glue("focus", _md(f"{allocator} on {KERNEL_LABEL[kernel]}"))
    glue("focus_alloc", _md(allocator))
    glue("focus_kernel", _md(KERNEL_LABEL[kernel]))
    glue("gap_word", _md("behind" if g.behind else "ahead of"))
    glue("mech_what", _md(mechanism_words(kernel, allocator)))
    glue("barn_sentence", _md(barn_sentence(rep, kernel, allocator)))
    glue("need_sentence", _md(comparison.need_words(g, allocator)))
    uses = mechanism_uses(kernel, allocator, rep.setup, rep.base_cycles)
    glue("mech_sentence", _md(mechanism_sentence(uses, allocator, rep.clock_ghz)))
    glue("fig_paths", paths_chart(runs.paths_frame(rep.runs, rep.clock_ghz), kernel, allocator))
    glue("fig_mechanism", mechanism_chart(uses, kernel, allocator, rep.clock_ghz))
    return g


def glue_noise(rep: Reproduction, kernel: str, allocator: str, cv: float, seed: int) -> comparison.Noise:
    nf, n = comparison.noise(rep, kernel, allocator, cv, seed)
    glue_all(n)
    glue("one_run", _md(comparison.one_run_words(n.runs_rep, comparison.step().gap_pct)))
    glue("fig_noise", noise_chart(nf, cv))
    return n


def glue_sensitivity(rep: Reproduction, kernel: str, allocator: str) -> comparison.Sensitivity:
    tor, s = comparison.sensitivity(rep, kernel, allocator)
    glue_all(s, skip=("tor_top",))
    glue("tor_top", _md(f"`{s.tor_top}`"))
    glue("fig_tornado", tornado_chart(tor, allocator, kernel))
    return s


def edges_table(sc: pd.DataFrame) -> pd.DataFrame:
    """The list's edge in each scenario (rows) over kmalloc and sheaf-256 on each kernel (columns)."""
    e = comparison.scenario_edges(sc)
    e["column"] = e["kernel"].map(KERNEL_LABEL) + " " + e["allocator"]
    w = e.pivot_table(index=["key", "scenario"], columns="column", values="edge", sort=False).reset_index()
    return w.drop(columns="key")


def glue_scenarios(rep: Reproduction, kernel: str) -> pd.DataFrame:
    """Every scenario edge as ``sc_<scenario key>_<kernel>_<allocator>`` (keys by name)."""
    sc = comparison.scenarios(rep)
    for r in comparison.scenario_edges(sc).to_dict("records"):
        glue(f"sc_{r['key']}_{r['kernel']}_{r['allocator']}", r["edge"])
    f = sc[(sc["key"] == "polled") & (sc["kernel"] == kernel) & (sc["allocator"] == "per-CPU list")]
    glue("sc_polled_pcpu", float(f["alloc cycles/IO"].iloc[0]))
    glue("fig_scenarios", scenario_chart(sc))
    return sc


SA_FORMATS = {"reported M IOPS": ".2f", "without SLAB_ACCOUNT": ".4f", "with SLAB_ACCOUNT": ".4f"}


def glue_slab_account(rep: Reproduction, calibrate_on) -> pd.DataFrame:
    sa, s = comparison.slab_account(rep, calibrate_on)
    glue_all(s, skip=("sheaf_with", "kmalloc_with", "reported_sheaf", "reported_kmalloc"))
    glue("sa_sentence", _md(comparison.slab_account_words(s)))
    return sa.assign(kernel=lambda d: d["kernel"].map(KERNEL_LABEL))


# ---- the kernel's switches as a sensitivity ------------------------------------------------------------

#: The switch the page flips for its sensitivity: zeroing on allocation, the hook the list skips that costs most.
FLIP = "init_on_alloc"

#: Number formats of :func:`switch_sensitivity`'s table.
SW_FORMATS = {"reported (M IOPS)": ".2f", "predicted, page": ".4f", "residual, page (ns)": "+.2f",
              "predicted, flipped": ".4f", "residual, flipped (ns)": "+.2f"}


@dataclass(frozen=True)
class SwitchSensitivity:
    """The six predictions with the page's switches and with :data:`FLIP` flipped, each calibrated on its own."""

    sw_flip: str  # "`init_on_alloc` off" (or on, if the page turned it off)
    sw_rms_page: float
    sw_rms_flip: float
    sw_max_page: float
    sw_max_flip: float
    sw_base_page: float
    sw_base_flip: float
    sw_edge_page: float  # the list's edge over the dedicated cache on 7.0, ns per IO
    sw_edge_flip: float
    sw_zero_cycles: float  # what the flipped switch changes per IO on the dedicated cache (cycles)
    sw_largest: str = ""  # the switch whose flip changes the dedicated cache's hot path most (:func:`switch_effects`)
    sw_largest_cycles: float = 0.0


def switch_effects(setup: runs.Setup) -> pd.Series:
    """Each switch flipped alone (the others as in ``setup``): how many cycles it changes one allocation and
    one free on the dedicated cache's hot path (step sums; the list's hits run none of the hooks), largest first."""
    col = costing.HOT_COLUMNS[3]
    pair = lambda s: sum(x.total for x in costing.hot_path_directions(s)[col].values())  # noqa: E731
    base = pair(setup)
    out = {k: abs(pair(replace(setup, hooks=replace(setup.hooks, **{k: not getattr(setup.hooks, k)}))) - base)
           for k in _steps.switches()}
    return pd.Series(out, dtype=float).sort_values(ascending=False, kind="stable")


def _rms(rep: Reproduction) -> float:
    return float(np.sqrt((rep.table["residual ns/IO"] ** 2).mean()))


def switch_sensitivity(rep: Reproduction, calibrate_on="all") -> tuple[pd.DataFrame, SwitchSensitivity]:
    """Reproduce the six with :data:`FLIP` flipped (everything else as on the page) and set the two side by
    side: predictions, residuals, the fitted base and the list's edge over the dedicated cache on 7.0."""
    hooks = rep.setup.hooks
    flipped = replace(hooks, **{FLIP: not getattr(hooks, FLIP)})
    other = runs.reproduce(replace(rep.setup, hooks=flipped).validate(), rep.clock_ghz, calibrate_on)
    t, o = rep.table, other.table
    table = pd.DataFrame({"configuration": t["kernel"].map(KERNEL_LABEL) + " " + t["allocator"],
                          "reported (M IOPS)": t["reported M IOPS"], "predicted, page": t["predicted M IOPS"],
                          "residual, page (ns)": t["residual ns/IO"], "predicted, flipped": o["predicted M IOPS"].values,
                          "residual, flipped (ns)": o["residual ns/IO"].values})
    edge = lambda r: (r.alloc_cycles[("7.0", "sheaf-256")] - r.alloc_cycles[("7.0", PCPU_LABEL)]) / r.clock_ghz  # noqa: E731
    word = f"`{FLIP}` {'off' if getattr(hooks, FLIP) else 'on'}"
    eff = switch_effects(rep.setup)
    return table, SwitchSensitivity(
        word, _rms(rep), _rms(other), float(t["residual ns/IO"].abs().max()), float(o["residual ns/IO"].abs().max()),
        rep.calibration.base_ns, other.calibration.base_ns, edge(rep), edge(other),
        abs(float(rep.alloc_cycles[("7.0", "sheaf-256")] - other.alloc_cycles[("7.0", "sheaf-256")])),
        f"`{eff.index[0]}`", float(eff.iloc[0]))


def switch_words(s: SwitchSensitivity) -> str:
    """Which setting of the flipped switch the reported figures sit closer to, in words."""
    if abs(s.sw_rms_flip - s.sw_rms_page) < 0.05:
        return "The reported figures do not tell the two settings apart."
    closer = "flipped" if s.sw_rms_flip < s.sw_rms_page else "page's"
    return ("The reported figures sit closer to the flipped setting — which says only that the six figures, read "
            "through the models, are more consistent with it, not what the testers' kernel was." if closer == "flipped"
            else "The reported figures sit closer to this page's setting.")


def glue_switch_sensitivity(rep: Reproduction, calibrate_on) -> pd.DataFrame:
    t, s = switch_sensitivity(rep, calibrate_on)
    glue_all(s, skip=("sw_flip", "sw_largest"))
    glue("sw_flip", _md(s.sw_flip))
    glue("sw_largest", _md(s.sw_largest))
    glue("sw_sentence", _md(switch_words(s)))
    return t.rename(columns={"predicted, flipped": f"predicted, {FLIP} flipped",
                             "residual, flipped (ns)": f"residual, {FLIP} flipped (ns)"})


def sw_formats() -> dict:
    """:data:`SW_FORMATS` under the column names :func:`glue_switch_sensitivity` returns."""
    return {k.replace("flipped", f"{FLIP} flipped"): v for k, v in SW_FORMATS.items()}


def glue_verdict(rep: Reproduction, kernel: str, allocator: str, sc: pd.DataFrame, gains_t: pd.DataFrame,
                 noise: comparison.Noise, sens: comparison.Sensitivity, gap: comparison.Gap) -> comparison.Verdict:
    g = comparison.gains(rep, gains_t)
    v = comparison.verdict(rep, kernel, allocator, sc, g)
    st = comparison.step()
    glue_all(v, skip=("patch_inside", "below_step"))
    glue("v619_faster", _md(comparison.faster_words(v.v_619_edge_ns)))
    glue("sheaf619_faster", _md(comparison.faster_words(v.sheaf_619_saving_ns)))
    glue("patch_inside", _md(comparison.inside_words(v.patch_inside)))
    glue("proposal", _md(comparison.proposal_words(v.v_619_edge_ns, v.sheaf_619_saving_ns)))
    glue("edge_body", _md(comparison.edge_words(v, f"{allocator} on {KERNEL_LABEL[kernel]}", st, sens.gap_max,
                                                noise.p_order)))
    glue("missing", _md(comparison.missing_words(gap.need_per_op, gap.rep_gap_ns, allocator)))
    glue("closing", _md(comparison.closing_words(v.below_step)))
    # for the landing page's summary (intro.md pastes these from this page)
    glue("edge_70_sheaf_ns", v.v_70_sh_edge_ns)
    glue("one_step_ns", st.step_ns)
    return v


# ---- the experiment: command lines from the parameters ---------------------------------------------------

def t_io_uring_block(setup: runs.Setup) -> str:
    """The t/io_uring command of the page's setting, as a fenced block."""
    p = int("-p1" in setup.t_io_uring())
    return ("```bash\n"
            f"taskset -c 2 t/io_uring -p{p} -d{setup.queue_depth} -s{setup.submit_batch} -c{setup.complete_batch} \\\n"
            f"    -n{setup.submitters} -b4096 -B1 -F1 -O1 -R1 -r30 /mnt/ext4/testfile\n```")


def fio_block(setup: runs.Setup) -> str:
    """The same run with fio, as a fenced block."""
    hipri = int("-p1" in setup.t_io_uring())
    return ("```bash\n"
            "fio --name=iomap_dio --filename=/mnt/ext4/testfile --size=16G \\\n"
            "    --direct=1 --rw=randread --bs=4k --ioengine=io_uring \\\n"
            f"    --iodepth={setup.queue_depth} --iodepth_batch_submit={setup.submit_batch} \\\n"
            f"    --iodepth_batch_complete_min={setup.complete_batch} --hipri={hipri} \\\n"
            f"    --fixedbufs=1 --registerfiles=1 --numjobs={setup.submitters} --cpus_allowed=2 \\\n"
            "    --time_based --ramp_time=5 --runtime=30\n```")


def counters_words() -> str:
    return (", ".join(f"`{c}`" for c in COUNTERS_619) + " (6.19) and " + ", ".join(f"`{c}`" for c in COUNTERS_SHEAVES))


def expected_counters_words(rep: Reproduction) -> str:
    """The table of expected SLUB_STATS counters per IO, with its lead-in (empty if none)."""
    ec = expected_counters(rep)
    if not len(ec):
        return ""
    cols = [c for c in ec.columns if c != "counter"]
    fb = comparison.setting(rep.setup).fallback_cache
    note = (f"the per-CPU list's columns are its {fb} fallback" if any(c.endswith("per-CPU list") for c in cols) else
            f"the per-CPU list's {fb} fallback reads zero on every counter: in the steady state the list never falls back")
    return (f"What the models expect those counters to read per IO in the steady state ({note}):\n\n"
            + markdown(ec, {c: ".3f" for c in cols}))


def glue_experiment(rep: Reproduction, noise: comparison.Noise) -> None:
    glue("cmd_t_io_uring", _md(t_io_uring_block(rep.setup)))
    glue("cmd_fio", _md(fio_block(rep.setup)))
    glue("counters", _md(counters_words()))
    glue("expected_counters", _md(expected_counters_words(rep)))


def iops_claims_words(checks: pd.DataFrame, rep: Reproduction) -> str:
    """The six IOPS claims' statuses and, when any is not reproduced, why cost model v2 moved them (the
    hooks the list's hits skip, the real preempt count, the 6.19 fast path as a step sum) — with the
    predictions they end at."""
    c = checks[checks["id"].str.startswith("iops-")]
    n = {st: int((c["status"] == st).sum()) for st in claims.STATUSES}
    head = (f"Of the six IOPS figures, {n['reproduced']} are reproduced, {n['partly']} partly and "
            f"{n['not reproduced']} not.")
    if n["reproduced"] == len(c):
        return head
    _, h = hot_paths(rep)
    t = rep.table
    lst = t[t["allocator"] == PCPU_LABEL]
    slub = t[t["allocator"] != PCPU_LABEL]
    rep_slub = sorted(set(slub["reported M IOPS"]))
    rs = f"{rep_slub[0]:.2f}M" if len(rep_slub) == 1 else f"{rep_slub[0]:.2f}M–{rep_slub[-1]:.2f}M"
    model_spread = float(lst["predicted M IOPS"].mean() - slub["predicted M IOPS"].mean())
    rep_spread = float(lst["reported M IOPS"].mean() - slub["reported M IOPS"].mean())
    apart = "further apart" if abs(model_spread) > abs(rep_spread) else "closer together"
    preempt = rep.setup.costs().cycles("preempt_pair")
    return (f"{head} Cost model v2 charges every allocator the steps its code executes, and three of its changes move "
            f"these figures: the list's hits skip the entry points and slab hooks, {h.hp_skip:.0f} cycles per IO that "
            f"the dedicated cache pays; a preempt-count round trip costs {preempt:.0f} cycles, in the list's "
            "`get_cpu()`/`put_cpu()` and the sheaves' `local_trylock()` alike; and 6.19's fast path is a sum of steps, "
            f"{h.hp_619:.0f} cycles per allocation and free with their hooks, instead of one measured whole call. So "
            f"the model puts the list at {lst['predicted M IOPS'].iloc[0]:.3f}M against "
            f"{lst['reported M IOPS'].iloc[0]:.2f}M reported, and the SLUB configurations between "
            f"{slub['predicted M IOPS'].min():.3f}M and {slub['predicted M IOPS'].max():.3f}M against {rs}: {apart} "
            "than the figures show. The sensitivity to the kernel's configuration above shows how much of that "
            "rests on the switches.")


def glue_claims(checks: pd.DataFrame, rep: Reproduction | None = None) -> None:
    """The claims section's figures; with ``rep``, also why the IOPS claims read as they do (``iops_claims``)."""
    if rep is not None:
        glue("iops_claims", _md(iops_claims_words(checks, rep)))
    glue("approx_pct", 100 * claims.APPROX)
    glue("null_iops", claims.NULL_IOPS_PCT)
    glue("null_micro", claims.NULL_MICRO_PCT)
    summ = claims.summary(checks)
    glue("n_claims", len(checks))
    glue("n_repr", summ["reproduced"])
    glue("n_partly", summ["partly"])
    glue("n_not", summ["not reproduced"])
    glue("multi_threads", _md(", ".join(map(str, claims.MULTI_THREADS))))
    for cid, status in zip(checks["id"], checks["status"]):
        glue(f"status_{cid}", status)  # chapter 4 glues its claims under the same keys
    glue("claim26", float(thread.claims().set_index("id").loc["default-capacity-26", "value"]))


def l1_words(l1_min_pct: float, beyond_max: float) -> str:
    """How many of the hierarchy's accesses hit L1, and what that means for the step sums (a clause)."""
    if beyond_max == 0:
        return ("every one of them hits L1, so on these paths the runs charge what the step sums below charge.")
    return (f"at least {l1_min_pct:.1f} % of them hit L1 (at most {beyond_max:.3f} per IO do not); the step sums "
            "below charge every load as an L1 hit.")


def glue_hierarchy(rep: Reproduction) -> None:
    """Glue what the page's ``hierarchy`` switch does to the runs: ``hier_words`` (how the runs charge memory
    and where their accesses found their lines) and ``hier_leftout`` (what of memory the models leave out)."""
    if not rep.setup.hierarchy:
        glue("hier_words", _md("With this page's `hierarchy` switch off, the runs charge memory the same way: "
                               "the flat `l1_hit` per load and nothing per store."))
        glue("hier_leftout", _md("and cache lines that are not in L1 (the `hierarchy` switch is off)"))
        return
    from allocsim.analysis import changelog

    a = changelog.hierarchy_accesses(rep.setup, rep.base_cycles, rep.clock_ghz)
    l1 = float((a["L1"] / a["accesses"]).min() * 100)
    glue("hier_words", _md(
        "The runs, with this page's `hierarchy` switch on, charge the loads and stores through the memory hierarchy "
        "instead (the methods appendix, *The memory hierarchy*): each costs what the cache "
        "holding its line says — an L1 hit the L1d latency, the same cycles as the `l1_hit` row, a line in L2, the "
        "LLC, another core's cache or memory more. In this page's runs the models make "
        f"{a['accesses'].min():.1f} to {a['accesses'].max():.1f} loads and stores per IO and "
        + l1_words(l1, float(a["beyond L1"].max()))))
    glue("hier_leftout", _md("(cache lines outside L1 are charged by the memory hierarchy)"))

"""Tables and charts for chapter 5 ("Reproducing the IOPS comparison"), so the notebook only calls them.

Everything here formats results computed by :mod:`allocsim.analysis.runs`, :mod:`allocsim.analysis.iops` and
:mod:`allocsim.analysis.claims`; nothing is computed that the chapter's prose relies on without gluing it.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from allocsim.pages import charts
from allocsim.analysis import iops
from allocsim.facts import thread
from allocsim.analysis.runs import Reproduction


def _step():
    """The two reported 7.0-rc4 figures one 0.01M step apart (sheaf-256 and the per-CPU list), read
    from data/thread/claims.yaml, as ``(lo, hi, pct)`` for the sentences and titles below."""
    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    lo, hi = float(f["7.0-rc4", "sheaf-256"]), float(f["7.0-rc4", "per-CPU list"])
    return lo, hi, iops.gain_pct(hi, lo)

#: The model's kernel names and the thread's.
KERNEL_LABEL = {"6.19": "6.19", "7.0": "7.0-rc4"}

#: Cost-table primitive → the mechanism it stands for in the breakdown (the issue's categories).
MECHANISM = {
    "preempt_pair": "preempt count (get_cpu/put_cpu)",
    "local_trylock_pair": "local_trylock (sheaves lock)",
    "l1_hit": "list / array slot and object word (L1)",
    "function_call": "slab entry call (hooks not modelled)",
    "percpu_cmpxchg16b": "cmpxchg16b (cpu slab, slab freelist)",
    "locked_cmpxchg16b": "cmpxchg16b (cpu slab, slab freelist)",
    "irq_save_restore": "interrupt toggling (splice, slow paths)",
    "irq_disable_enable": "interrupt toggling (splice, slow paths)",
    "spin_lock_pair": "barn / list_lock traffic",
    "cacheline_transfer": "barn / list_lock traffic",
    "bulk_object": "refill / flush in bulk",
    "page_alloc_free": "page allocator",
    "l2_hit": "cache misses",
    "l3_hit": "cache misses",
    "memcg_charge": "memcg charge (SLAB_ACCOUNT)",
    "other": "lock waiting and timing effects",
}


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


def prediction_table(rep: Reproduction) -> pd.DataFrame:
    t = rep.table.copy()
    t["kernel"] = t["kernel"].map(KERNEL_LABEL)
    t["rounds to reported"] = t["rounds to reported"].map({True: "yes", False: "no"})
    t["fitted on"] = t["fitted on"].map({True: "yes", False: ""})
    return t[["kernel", "allocator", "alloc ns/IO", "reported ns/IO", "predicted ns/IO", "residual ns/IO",
              "reported M IOPS", "predicted M IOPS", "rounds to reported", "fitted on"]]


def prediction_chart(rep: Reproduction) -> alt.LayerChart:
    """Predicted IOPS (points) against the reported figures with their rounding interval (bars)."""
    t = _label(rep.table)
    half = iops.PRECISION_MIOPS / 2
    t["lo"] = t["reported M IOPS"] - half
    t["hi"] = t["reported M IOPS"] + half
    lo = float(min(t["lo"].min(), t["predicted M IOPS"].min())) - 0.005
    hi = float(max(t["hi"].max(), t["predicted M IOPS"].max())) + 0.005
    y = alt.Y("configuration:N", title=None, sort=list(t["configuration"]), axis=alt.Axis(labelLimit=220))
    x_scale = alt.Scale(domain=[lo, hi], zero=False)
    tip = [alt.Tooltip("configuration:N"), alt.Tooltip("reported M IOPS:Q", format=".2f"),
           alt.Tooltip("predicted M IOPS:Q", format=".4f"), alt.Tooltip("residual ns/IO:Q", format="+.2f"),
           alt.Tooltip("rounds to reported:N")]
    band = alt.Chart(t).mark_bar(height=14, opacity=0.35, color="#999").encode(
        x=alt.X("lo:Q", scale=x_scale, title=charts.axis("throughput of one submitter", "M IOPS")), x2="hi:Q", y=y,
        tooltip=tip)
    pts = alt.Chart(t).mark_point(filled=True, size=120, opacity=1).encode(
        x=alt.X("predicted M IOPS:Q", scale=x_scale), y=y, color=charts.allocator_color(), tooltip=tip)
    return (band + pts).properties(width=360, height=200, title=alt.Title(
        "Predicted (points) vs reported (grey: everything that rounds to the figure)",
        subtitle="one parameter fitted: the base cost per IO"))


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


def clock_profile(rep: Reproduction, clocks=None) -> pd.DataFrame:
    """RMS residual (ns per IO) of the one-parameter fit for other clocks, with the allocator cycles of
    ``rep`` (they depend on the clock only through the base cost in the workload; see the chapter)."""
    clocks = np.round(np.arange(1.5, 5.01, 0.1), 2) if clocks is None else clocks
    from allocsim.analysis.runs import reported_miops

    rows = []
    for g in clocks:
        t, cal = iops.table(reported_miops(), rep.alloc_cycles, float(g), on=rep.on)
        rows.append({"clock_ghz": float(g), "rms_ns": float(np.sqrt((t["residual ns/IO"] ** 2).mean())),
                     "rounding": int(t["rounds to reported"].sum()), "base_ns": cal.base_ns})
    return pd.DataFrame(rows)


def clock_chart(profile: pd.DataFrame, clock_ghz: float, noise_rms: float) -> alt.LayerChart:
    line = alt.Chart(profile).mark_line(point=alt.OverlayMarkDef(color=charts.ACCENT), color=charts.ACCENT).encode(
        x=alt.X("clock_ghz:Q", title=charts.axis("assumed clock", "GHz")),
        y=alt.Y("rms_ns:Q", title=charts.axis("RMS residual of the six", "ns per IO")),
        tooltip=[alt.Tooltip("clock_ghz:Q", title="GHz"), alt.Tooltip("rms_ns:Q", title="RMS ns", format=".2f"),
                 alt.Tooltip("rounding:Q", title="figures reproduced"), alt.Tooltip("base_ns:Q", format=".1f")])
    rule = alt.Chart(pd.DataFrame({"y": [noise_rms], "what": ["RMS of the rounding alone"]})).mark_rule(
        strokeDash=[4, 3], color="#555").encode(y="y:Q", tooltip=[alt.Tooltip("what:N"), alt.Tooltip("y:Q", format=".2f")])
    now = alt.Chart(pd.DataFrame({"x": [clock_ghz]})).mark_rule(color="#999").encode(x="x:Q")
    return (line + rule + now).properties(width=400, height=200, title=alt.Title(
        "Would fitting the clock as well help?", subtitle="dashed: the residual the 0.01M rounding of the figures alone explains"))


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


def noise_frame(means: dict, reported: dict, a: str, b: str, cvs=None, seed: int = 0, draws: int = 50_000) -> pd.DataFrame:
    """Over a range of CVs: P(single runs order the three allocators as reported), P(they give exactly
    the reported figures), and the runs per allocator to tell ``a`` from ``b`` (95 %, power 80 %)."""
    cvs = [0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02] if cvs is None else cvs
    rows = []
    for cv in cvs:
        rows.append({"cv": cv, "cv_pct": cv * 100,
                     "p_order": iops.p_same_order(means, reported, cv, draws=draws, seed=seed),
                     "p_exact": iops.p_reported_order(means, cv, draws=draws, seed=seed, targets=reported),
                     "runs": iops.runs_needed(reported[a], reported[b], cv)})
    return pd.DataFrame(rows)


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


#: SLUB_STATS counters worth recording per run (sysfs names; kernel.md §1.8, §3).
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


def experiment_markdown(setup, P, runs_rep: int, runs_model: int, rep: Reproduction | None = None) -> str:
    """The experiment that would settle the question, as MyST Markdown with this page's parameters."""
    p = 1 if setup.completion == "task" else 0
    fio_hipri = 1 if p else 0
    lo, hi, pct = _step()
    lines = [
        f"Measure the allocator directly, not only the IOPS it leaves, and repeat enough to see {pct:.1f} %. "
        f"With this page's noise assumption that is **{runs_rep} runs per allocator** to tell {lo:.2f}M from {hi:.2f}M "
        f"(5 % level, 80 % power), and {runs_model} to resolve the difference the model predicts.",
        "",
        "1. **Three kernels per version, or better one kernel with a switch.** Build the patch, the dedicated "
        f"cache (`sheaf_capacity = {setup.sheaf_capacity}`, once with and once without `SLAB_ACCOUNT`) and plain "
        "kmalloc behind a boot or module parameter, so the variants can be interleaved run by run (A B C A B C …) "
        "within one boot; otherwise alternate boots. Enable `CONFIG_SLUB_STATS=y`.",
        "2. **Fix what the model holds fixed.** Pin the submitter to one CPU, route the NVMe queue's interrupt to "
        "that CPU, and fix the clock so cycles and ns stay proportional:",
        "",
        "```bash",
        "cpupower frequency-set -g performance",
        "# Intel; on AMD: echo 0 > /sys/devices/system/cpu/cpufreq/boost",
        "echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo",
        "# the NVMe queue's interrupt to the submitter's CPU (2 here)",
        "grep nvme /proc/interrupts",
        "echo 2 > /proc/irq/<irq>/smp_affinity_list",
        "```",
        "",
        "3. **The run**, t/io_uring from fio's source tree (`-p0` interrupts, as in the thread; "
        "`-p1` needs `nvme.poll_queues` > 0):",
        "",
        "```bash",
        f"taskset -c 2 t/io_uring -p{p} -d{setup.queue_depth} -s{setup.submit_batch} -c{setup.complete_batch} \\",
        f"    -n{setup.submitters} -b4096 -B1 -F1 -O1 -R1 -r30 /mnt/ext4/testfile",
        "```",
        "",
        "or the same with fio:",
        "",
        "```bash",
        "fio --name=iomap_dio --filename=/mnt/ext4/testfile --size=16G \\",
        "    --direct=1 --rw=randread --bs=4k --ioengine=io_uring \\",
        f"    --iodepth={setup.queue_depth} --iodepth_batch_submit={setup.submit_batch} \\",
        f"    --iodepth_batch_complete_min={setup.complete_batch} --hipri={fio_hipri} \\",
        f"    --fixedbufs=1 --registerfiles=1 --numjobs={setup.submitters} --cpus_allowed=2 \\",
        "    --time_based --ramp_time=5 --runtime=30",
        "```",
        "",
        "4. **Record per run**, besides IOPS:",
        "   - `perf stat -e cycles,instructions -C 2 -- sleep 30` and `perf record -g -C 2 -- sleep 10`: cycles per IO, "
        "and the share in `kmem_cache_alloc*`, `kfree`, `__slab_free` and the list's `pcpu_cache_list_alloc/free` — "
        "the quantity the models predict (their cycles per IO are in the first chart of this page);",
        "   - the SLUB_STATS counters of the caches involved — `kmalloc-96` (a `kmalloc-rnd-NN-96` copy with "
        "`CONFIG_RANDOM_KMALLOC_CACHES`), `kmalloc-128` (the list's fallback) and `iomap_dio` — reset before the run "
        "with `echo 0 > /sys/kernel/slab/<cache>/<counter>` and read after: "
        + ", ".join(f"`{c}`" for c in COUNTERS_619) + " (6.19) and "
        + ", ".join(f"`{c}`" for c in COUNTERS_SHEAVES) + "; plus `sheaf_capacity`, `objs_per_slab` and "
        "`cpu_partial` once;",
        "   - the NVMe interrupt count from `/proc/interrupts` (how many completions each interrupt carries: the "
        "model assumes one interrupt per wait batch) and the benchmark's memory cgroup (`cat /proc/self/cgroup`: "
        "in the root cgroup `SLAB_ACCOUNT` costs almost nothing).",
        "5. **Report** the mean and a 95 % confidence interval of IOPS per variant, and cycles per IO in the allocator "
        "functions — a difference in the latter settles the question even where IOPS cannot.",
    ]
    text = "\n".join(lines)
    if rep is not None:
        ec = expected_counters(rep)
        if len(ec):
            from allocsim.pages.mdtable import markdown

            cols = [c for c in ec.columns if c != "counter"]
            pcpu_cols = [c for c in cols if c.endswith("per-CPU list")]
            note = ("the per-CPU list's columns are its kmalloc-128 fallback" if pcpu_cols else
                    "the per-CPU list's kmalloc-128 fallback reads zero on every counter: in the steady state the "
                    "list never falls back")
            text += (f"\n\nWhat the models expect those counters to read per IO in the steady state ({note}):\n\n"
                     + markdown(ec, {c: ".3f" for c in cols}))
    return text


# ---- sentences whose wording depends on the numbers (so a re-run with other parameters stays true) ----

def _fmt_ns(x: float) -> str:
    return f"{x:.1f} ns"


def miss_sentence(rep: Reproduction) -> str:
    """Why the predictions that do not round to the reported figure miss (or that none does)."""
    t = rep.table
    missed = t[~t["rounds to reported"]]
    if missed.empty:
        return "Every prediction rounds to the reported figure."
    parts = []
    pcpu = missed[missed["allocator"] == "per-CPU list"]
    if len(pcpu):
        parts.append("The per-CPU list is predicted slower than reported because the model gives it a smaller edge "
                     "over the other two than the reported figures suggest; the section on the remaining nanoseconds "
                     "takes that edge apart.")
    rest = missed[missed["allocator"] != "per-CPU list"]
    for r in rest.to_dict("records"):
        side = "slower" if r["residual ns/IO"] > 0 else "faster"
        parts.append(f"{KERNEL_LABEL[r['kernel']]} {r['allocator']} is predicted {abs(r['residual ns/IO']):.1f} ns per IO "
                     f"{side} than reported.")
    return " ".join(parts)


BARN_PATHS = ("alloc_sheaf_barn", "alloc_sheaf_refill", "free_sheaf_barn_empty", "free_sheaf_barn_put", "free_sheaf_flush",
              "free_sheaf_alloc_empty", "free_sheaf_flush_main", "alloc_sheaf_spare", "free_sheaf_spare")


def barn_sentence(rep: Reproduction, kernel: str, allocator: str) -> str:
    """Whether the sheaf's slow paths (spare swaps, barn, refill, flush) appear in the steady state."""
    r = rep.runs[(kernel, allocator)]
    used = {p: c for p, (c, _) in r.paths.items() if c and p in BARN_PATHS}
    if not any(p.startswith("alloc_sheaf") or p.startswith("free_sheaf") or p.startswith("alloc_cpu") or p == "alloc_fastpath"
               for p in r.paths):
        return ""
    if not used:
        return ("In the steady state of this loop the sheaf never runs empty or full: no spare swap, barn exchange, "
                "refill or flush happens at all — one submitter keeps its working set inside main and spare.")
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


def slab_account_sentence(with_rep: Reproduction, reported) -> str:
    """What the reported 6.19 ordering of the dedicated cache and kmalloc says about SLAB_ACCOUNT."""
    sh, km = with_rep.predicted_miops("6.19", "sheaf-256"), with_rep.predicted_miops("6.19", "kmalloc")
    rs, rk = float(reported[("6.19", "sheaf-256")]), float(reported[("6.19", "kmalloc")])
    pred = "slower than" if sh < km else "faster than"
    rep_rel = "faster than" if rs > rk else "slower than" if rs < rk else "level with"
    agree = (sh < km) == (rs < rk) and rs != rk
    s = (f"An accounted dedicated cache on 6.19 is predicted at {sh:.3f}M, {pred} kmalloc at {km:.3f}M; the thread "
         f"measured the dedicated cache {rep_rel} kmalloc ({rs:.2f}M against {rk:.2f}M).")
    if not agree:
        s += (" So, within the model, the reported figures fit a cache *without* `SLAB_ACCOUNT` — or a benchmark in the "
              "root memory cgroup, where accounting costs almost nothing.")
    else:
        s += " The reported ordering does not tell the two variants apart."
    return s


def verdict_markdown(v: dict) -> str:
    """The verdict as bullet points; ``v`` holds the numbers the chapter computed (see the chapter). The
    wording follows the signs and sizes of the numbers, so a re-run with other parameters stays true."""
    lines = []
    e = v["v_619_edge_ns"]
    inside = v["patch_lo"] <= v["g_patch_pred"] <= v["patch_hi"]
    lead = (f"On 6.19 the per-CPU list beats kmalloc by {e:.1f} ns per IO in the model" if e > 0 else
            f"On 6.19 the per-CPU list is {abs(e):.1f} ns per IO slower than kmalloc in the model")
    lines.append(
        f"- **{lead}** — a {v['g_patch_pred']:+.2f} % IOPS difference against {v['g_patch_rep']:+.2f} % reported "
        f"(“about 2.6%” in the patch), " + ("inside" if inside else "outside")
        + f" what the rounded figures allow ({v['patch_lo']:.2f}–{v['patch_hi']:.2f} %). The 6.19 cpu slab's free fast "
        f"path takes {v['fast_free_619']:.0f} % of this workload's frees.")
    sheaf_619 = v["sheaf_619_saving_ns"]  # kmalloc minus the dedicated cache on 6.19
    if e > 0:
        rec = 100 * sheaf_619 / e
        verdict = "works" if rec >= 50 else "helps only partly" if rec > 0 else "does not help"
        first = (f"Dave Chinner's proposal {verdict} in the model.** The dedicated cache with `sheaf_capacity = "
                 f"{v['capacity']}` recovers {rec:.0f} % of that gap on 6.19")
    else:
        first = (f"Dave Chinner's proposal, in the model:** the dedicated cache with `sheaf_capacity = {v['capacity']}` "
                 f"is {abs(sheaf_619):.1f} ns per IO {'faster' if sheaf_619 > 0 else 'slower'} than kmalloc on 6.19")
    lines.append(
        f"- **{first}; on 7.0-rc4 plain kmalloc and the dedicated cache differ by {abs(v['v_70_km_vs_sh_ns']):.1f} ns per "
        "IO — Vlastimil Babka's point is that 7.0 already gives every cache sheaves.")
    g, step = v["gap_focus"], v["step_ns"]
    lo, hi, pct = _step()
    head = (f"- **The patch's edge on 7.0-rc4 is {v['v_70_km_edge_ns']:+.1f} ns per IO over kmalloc and "
            f"{v['v_70_sh_edge_ns']:+.1f} ns over the dedicated cache** ({v['v_70_km_edge_pct']:+.2f} % and "
            f"{v['v_70_sh_edge_pct']:+.2f} % IOPS; positive: the list is faster). ")
    if g <= 0:
        body = (f"Over {v['focus']} the model puts the list *behind* ({g:+.1f} ns), so the reported order — the list "
                f"ahead — is not what the model expects: single runs would show it with probability {v['p_order']:.2f}. "
                f"Even with every cost at the end of its cited range that favours the list the edge is {v['gap_max']:+.1f} ns.")
    elif g < step:
        body = (f"The edge over {v['focus']} is smaller than one step of the thread's precision ({step:.1f} ns between "
                f"{lo:.2f}M and {hi:.2f}M); with every cost at the end of its cited range that favours the list it is "
                f"{v['gap_max']:.1f} ns. So the reported {hi:.2f}M against {lo:.2f}M is what rounding and a single run each "
                f"produce from such a gap (probability {v['p_order']:.2f} of exactly that order from single runs if the "
                f"model is right) — not evidence of a {pct:.1f} % advantage.")
    else:
        body = (f"The edge over {v['focus']} is larger than one step of the thread's precision ({step:.1f} ns between "
                f"{lo:.2f}M and {hi:.2f}M), so the model leaves the list an edge the reported figures could resolve.")
    lines.append(head + body)
    need = v["need_per_op"]
    missing = (f"the slab hooks the list skips (along with memcg accounting, KASAN and freelist hardening) would have to "
               f"cost about {need:.0f} cycles per sheaf operation to produce the nominal 7 ns" if need > 0 else
               "the model's edge already reaches the nominal 7 ns without them")
    lines.append(
        f"- **What could still make the list matter** is what the models do not charge: {missing}. And the list "
        f"loses ground where its design does not fit: with completions in softirq its edge over kmalloc on 7.0-rc4 is "
        f"{v['softirq_edge']:+.1f} ns, with half the completions on another CPU {v['cross_edge']:+.1f} ns.")
    return "\n".join(lines)

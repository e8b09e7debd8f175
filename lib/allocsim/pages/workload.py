"""Tables, charts and sentences for the chapter "Your workload" (chapters/07-workload.md); the measurement
and the replay themselves are :mod:`allocsim.analysis.workload`, the trace :mod:`allocsim.workloads.recorded`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import altair as alt
import pandas as pd

from allocsim.analysis import runs
from allocsim.analysis import workload as wl
from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import BUILD, ROOT
from allocsim.kernel import pcpu_list
from allocsim.pages import charts
from allocsim.pages.glue import Md
from allocsim.workloads import recorded

LIVE_TRACE = BUILD / "traces" / "live.csv.gz"


def load_trace(trace: str, seconds: float = 2.0, log=lambda m: None) -> tuple[recorded.Trace, str]:
    """The trace the page shows, and one sentence saying which. ``trace``: ``"live"`` (record now; where that
    is impossible, the sentence says why and the shipped trace is used) or a path (relative to the
    repository root or absolute)."""
    if trace == "live":
        from allocsim.facts import record

        try:
            LIVE_TRACE.parent.mkdir(parents=True, exist_ok=True)
            record.record(LIVE_TRACE, seconds=seconds, fio=record.FioLoad(size_mb=64), log=log)
            return recorded.load(LIVE_TRACE), f"a trace recorded on this machine just now ({seconds:g} s of fio)"
        except AllocsimError as exc:
            return (recorded.load(recorded.DEFAULT_TRACE),
                    f"the shipped trace, because recording here was not possible: {exc}")
    p = Path(trace)
    p = p if p.is_absolute() else ROOT / p
    tr = recorded.load(p)
    shipped = p.resolve() == recorded.DEFAULT_TRACE.resolve()
    return tr, ("the trace shipped with the book" if shipped else f"the trace `{p.name}`")


def machine_table(tr: recorded.Trace, m: wl.Measurement) -> pd.DataFrame:
    meta = tr.meta
    mach, blk, load = meta.get("machine", {}), meta.get("block", {}), meta.get("load", {})
    target = meta.get("target", {})
    rows = [
        ("recorded", meta.get("recorded")),
        ("kernel release", mach.get("release")),
        ("CPUs (present) / NUMA nodes", f"{mach.get('cpus_present')} / {mach.get('numa_nodes')}"),
        ("block device, I/O scheduler", f"{blk.get('device')}, {blk.get('scheduler')} "
                                        f"({blk.get('nr_hw_queues')} hardware queue(s))"),
        ("load", f"`{load.get('t_io_uring')}` (fio {load.get('fio_version')}, io_uring, O_DIRECT random reads of "
                 f"{(load.get('fio') or {}).get('block_size', 0) // 1024} KiB)"
         if load.get("kind") == "fio" else f"`{load.get('command') or 'none (fixed time)'}`"),
        ("events recorded", f"{meta.get('events')} in {m.seconds:.2f} s ({m.allocs_per_second:,.0f} allocations/s)"),
        ("filters", f"`{target.get('alloc_filter')}`; `{target.get('free_filter')}`"),
        ("events lost by the ring buffer", (meta.get("tracefs") or {}).get("events_lost")),
        ("tracefs format hash", f"`{(meta.get('tracefs') or {}).get('formats_sha256', '')[:23]}…`"),
    ]
    return pd.DataFrame(rows, columns=["", "value"]).astype({"value": str})


def counts_table(m: wl.Measurement) -> pd.DataFrame:
    t = m.per_cpu.pivot_table(index=["cpu", "kind"], columns="context", values="events", fill_value=0)
    t = t.reindex(columns=[c for c in ("task", "hardirq", "softirq") if c in t.columns])
    t["all"] = t.sum(axis=1)
    return t.astype(int).reset_index()


def comparison_table(m: wl.Measurement) -> pd.DataFrame:
    c = wl.comparison(m)
    def fmt(v, u, digits):
        return "n/a" if v != v else (f"{100 * v:.1f} %" if u == "share" else f"{v:.{digits}f}")

    c["measured"] = [fmt(v, u, 1) for v, u in zip(c["measured"], c["unit"])]
    c["book's default"] = [fmt(v, u, 0) for v, u in zip(c["assumed"], c["unit"])]
    return c[["quantity", "measured", "book's default"]]


def inflight_chart(m: wl.Measurement, queue_depth: int) -> alt.LayerChart:
    d = m.inflight
    line = alt.Chart(d).mark_line(color=charts.COLORS["kmalloc"], strokeWidth=1).encode(
        x=alt.X("t_ms:Q", title=charts.axis("time since the first event", "ms")),
        y=alt.Y("inflight:Q", title=charts.axis("iomap_dio objects in flight", "objects")),
        tooltip=[alt.Tooltip("t_ms:Q", title="ms", format=".2f"), alt.Tooltip("inflight:Q", title="in flight")])
    rule = alt.Chart(pd.DataFrame({"y": [queue_depth], "label": [f"queue depth {queue_depth}"]})).mark_rule(
        color=charts.ACCENT, strokeDash=[4, 3]).encode(y="y:Q", tooltip=[alt.Tooltip("label:N", title="")])
    return (line + rule).properties(title=alt.Title("Objects allocated and not yet freed",
                                                    subtitle="after every event of the trace, in time order"))


def lifetime_chart(m: wl.Measurement) -> alt.Chart:
    d = pd.DataFrame({"lifetime_us": m.lifetimes_us})
    return alt.Chart(d).mark_bar(color=charts.COLORS["kmalloc"]).encode(
        x=alt.X("lifetime_us:Q", bin=alt.Bin(maxbins=60), title=charts.axis("allocation to free", "µs")),
        y=alt.Y("count():Q", title=charts.axis("objects", None)),
        tooltip=[alt.Tooltip("count():Q", title="objects")],
    ).properties(height=200, title=alt.Title("How long an iomap_dio lives",
                                             subtitle="from kmalloc in __iomap_dio_rw() to kfree in iomap_dio_complete()"))


def replay_table(rp: wl.Replay, chapter5: pd.Series, clock_ghz: float) -> pd.DataFrame:
    t = rp.table.copy()
    t["chapter 5 cycles/IO"] = [chapter5.get((k, a), float("nan")) for k, a in zip(t["kernel"], t["allocator"])]
    return t[["kernel", "allocator", "cycles/IO", "chapter 5 cycles/IO", "ns/IO", "most frequent path",
              "slab KiB at end"]]


def replay_chart(rp: wl.Replay, chapter5: pd.Series, t_io_uring: str) -> alt.Chart:
    rows = []
    for r in rp.table.to_dict("records"):
        k, a = r["kernel"], r["allocator"]
        rows.append({"kernel": k, "allocator": a, "workload": "your trace, replayed", "cycles": r["cycles/IO"]})
        if (k, a) in chapter5.index:
            rows.append({"kernel": k, "allocator": a, "workload": "chapter 5's io_uring default",
                         "cycles": float(chapter5[(k, a)])})
    d = pd.DataFrame(rows)
    return alt.Chart(d).mark_bar().encode(
        x=alt.X("cycles:Q", title=charts.axis("allocator cost per IO (alloc + free)", "cycles")),
        y=alt.Y("workload:N", title=None),
        row=alt.Row("kernel:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")),
        column=alt.Column("allocator:N", title=None, sort=list(charts.ALLOCATORS)),
        color=charts.allocator_color(),
        opacity=alt.Opacity("workload:N", scale=alt.Scale(domain=["your trace, replayed", "chapter 5's io_uring default"],
                                                          range=[1.0, 0.45]), legend=None),
        tooltip=["kernel:N", "allocator:N", "workload:N", alt.Tooltip("cycles:Q", format=".1f")],
    ).properties(width=130, height=50, title=alt.Title("Replayed cost per IO against chapter 5's workload",
                                                       subtitle=f"solid: the recorded traffic; faded: t/io_uring {t_io_uring}"))


def worth_table(w: pd.DataFrame) -> pd.DataFrame:
    return w.rename(columns={"ns/IO": "allocator ns/IO"})


# ---- the chapter's sections: one function and one frozen dataclass each ---------------------------------
# The chapter glues every field under its own name (allocsim.pages.glue.glue_all); Markdown fields are Md.


def edge_words(notes: list) -> str:
    """The edges of the recording as sentences, or that every object is matched."""
    return (" ".join(n[0].upper() + n[1:] + "." for n in notes)
            or "Every allocation in the recording is matched to its free, and no free lacks its allocation.")


@dataclass(frozen=True)
class Recording:
    """The recording: which trace, its size and rate, and its edges."""

    which_trace: Md
    n_events: int
    n_allocs: int
    n_frees: int
    seconds: float
    rate: float  # allocations per second
    edge_note: Md


def recording(m: wl.Measurement, which: str) -> Recording:
    return Recording(Md(which), m.events, m.allocs, m.frees, m.seconds, m.allocs_per_second,
                     Md(edge_words(m.edges.notes)))


def default_words(dominant: str, assumed: str) -> str:
    """Whether the frees' dominant context is the one the book assumes by default."""
    return "as the book assumes by default" if dominant == assumed else f"where the book assumes `{assumed}` by default"


@dataclass(frozen=True)
class Assumptions:
    """The recording measured against the models' defaults (shares in %, times in µs)."""

    soft_share: float
    hard_share: float
    task_share: float
    cross_share: float
    infl_med: float
    infl_max: int
    qd: int  # the book's queue depth
    sub_mean: float  # allocations per submit batch
    comp_mean: float  # frees per completion batch
    batch_gap: float  # µs that end a batch
    life_med: float
    life_p99: float
    dominant_ctx: Md
    vs_default: Md


def assumptions(m: wl.Measurement, setup: runs.Setup) -> Assumptions:
    ls = m.lifetime_stats()
    dominant = max(m.free_ctx, key=m.free_ctx.get)
    return Assumptions(100 * m.free_ctx["softirq"], 100 * m.free_ctx["hardirq"], 100 * m.free_ctx["task"],
                       100 * m.cross_cpu_share, m.inflight_stats["median"], m.inflight_stats["max"],
                       setup.queue_depth, m.batch_stats("submit")["mean"], m.batch_stats("complete")["mean"],
                       wl.BATCH_GAP_US, ls["median"], ls["p99"], Md(f"**{dominant}**"),
                       Md(default_words(dominant, _assumed_context(setup))))


def _assumed_context(setup: runs.Setup) -> str:
    """The completion context most of the book's default frees run in (from blk-mq's placement of the
    setup's topology)."""
    sh = setup.completion_shares()
    return max(("task", "hardirq", "softirq"), key=lambda k: sh[k])


def object_size(tr: recorded.Trace, setup: runs.Setup) -> int:
    """The recorded ``bytes_req`` of the traced allocation, else the book's ``sizeof(struct iomap_dio)``."""
    return int((tr.meta.get("target") or {}).get("bytes_req") or setup.object_size)


@dataclass(frozen=True)
class ReplayCosts:
    """Allocator cycles per IO of each configuration: ``rc_*`` replayed from the trace, ``c5_*`` chapter 5's
    synthetic io_uring workload (kernel 619 = 6.19, 70 = 7.0; pcpu = the per-CPU list, sheaf = sheaf-256)."""

    rc_619_pcpu: float
    rc_619_kmalloc: float
    rc_619_sheaf: float
    rc_70_pcpu: float
    rc_70_kmalloc: float
    rc_70_sheaf: float
    c5_619_pcpu: float
    c5_619_kmalloc: float
    c5_619_sheaf: float
    c5_70_pcpu: float
    c5_70_kmalloc: float
    c5_70_sheaf: float


def replay_costs(rp: wl.Replay, chapter5: pd.Series) -> ReplayCosts:
    """``chapter5``: chapter 5's allocator cycles per IO by (kernel, allocator) (``Reproduction.alloc_cycles``)."""
    rc = rp.table.set_index(["kernel", "allocator"])["cycles/IO"]

    def r(k, a):
        return float(rc[(k, a)])

    def c(k, a):
        return float(chapter5[(k, a)])

    return ReplayCosts(
        r("6.19", "per-CPU list"), r("6.19", "kmalloc"), r("6.19", "sheaf-256"),
        r("7.0", "per-CPU list"), r("7.0", "kmalloc"), r("7.0", "sheaf-256"),
        c("6.19", "per-CPU list"), c("6.19", "kmalloc"), c("6.19", "sheaf-256"),
        c("7.0", "per-CPU list"), c("7.0", "kmalloc"), c("7.0", "sheaf-256"))


def pcpu_vs_kmalloc_words(pcpu: float, kmalloc: float) -> str:
    """``On this traffic the per-CPU list {…}``: dearer or cheaper than kmalloc on 7.0, in cycles per IO."""
    if pcpu > kmalloc:
        return f"costs **more** than plain kmalloc on 7.0 ({pcpu:.1f} against {kmalloc:.1f} cycles per IO)"
    return f"costs less than plain kmalloc on 7.0 ({pcpu:.1f} against {kmalloc:.1f} cycles per IO)"


def pcpu_why_words(bypass: float) -> str:
    """Why the per-CPU list keeps or loses the frees, by the share it hands to ``kfree()``."""
    if bypass >= 0.5:
        return ("The reason is the context of the frees: the patch keeps an object only when `iomap_dio_complete()` "
                "runs in task or hard-IRQ context, and hands a softirq-context free straight to `kfree()`")
    return ("Most frees here run in task or hard-IRQ context, which the patch keeps on its lists; a softirq-context "
            "free it hands straight to `kfree()`")


@dataclass(frozen=True)
class PcpuReplay:
    """The per-CPU list on the replayed traffic (7.0)."""

    pcpu_bypass: float  # % of frees handed to kfree()
    pcpu_hits: float  # % of allocations served from its lists
    size: int  # bytes requested
    header: int  # the list's header in front of each object, bytes
    n_configs: int
    pcpu_vs_kmalloc: Md
    pcpu_why: Md


def pcpu_replay(rp: wl.Replay, size: int) -> PcpuReplay:
    bypass, hits = wl.pcpu_front_shares(rp, "7.0")
    cyc = rp.table.set_index(["kernel", "allocator"])["cycles/IO"]
    pc, km = cyc[("7.0", "per-CPU list")], cyc[("7.0", "kmalloc")]
    return PcpuReplay(100 * bypass, 100 * hits, size, pcpu_list.header_size(), len(rp.table),
                      Md(pcpu_vs_kmalloc_words(pc, km)), Md(pcpu_why_words(bypass)))


def base_ns(user_base_ns: float, calibrated_ns: float) -> float:
    """The base cost per IO for the IOPS comparison: the reader's ``base_ns``, or (when it is 0) chapter 5's
    base calibrated on the thread's six figures (``Reproduction.calibration.base_ns``)."""
    return user_base_ns if user_base_ns > 0 else calibrated_ns


@dataclass(frozen=True)
class Worth:
    """What the replayed difference is worth in IOPS of one submitter: the per-CPU list's gain, %."""

    base: float  # ns per IO of everything else
    base_from: Md
    gain_70_k: float  # over kmalloc on 7.0
    gain_70_s: float  # over sheaf-256 on 7.0
    gain_619_k: float  # over kmalloc on 6.19


def worth_section(w: pd.DataFrame, base: float, yours: bool) -> Worth:
    """``w``: :func:`allocsim.analysis.workload.worth`; ``yours``: the base is the reader's ``base_ns``."""
    g = w.set_index(["kernel", "allocator"])["per-CPU list gain %"]
    return Worth(base, Md("your base cost" if yours else "chapter 5's base cost, calibrated on the thread's six figures"),
                 float(g[("7.0", "kmalloc")]), float(g[("7.0", "sheaf-256")]), float(g[("6.19", "kmalloc")]))

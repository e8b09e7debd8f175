"""Tables, charts and sentences for the chapter "Your workload" (chapters/07-workload.md); the measurement
and the replay themselves are :mod:`allocsim.analysis.workload`, the trace :mod:`allocsim.workloads.recorded`."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd

from allocsim.analysis import workload as wl
from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import BUILD, ROOT
from allocsim.pages import charts
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

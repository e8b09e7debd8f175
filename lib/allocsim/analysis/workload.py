"""Your workload: measure a recorded trace — the numbers the models otherwise assume — and replay it
through every allocator model.

**Measurement** (:func:`measure`), each quantity defined on the trace after :func:`allocsim.workloads.recorded.match`:

* *completion context shares*: the share of frees the trace flags put in task, hardirq and softirq
  context (what the chapters' blk-mq topology — ``polled``, the interrupt shares, ``nr_hw_queues``,
  ``rq_affinity`` — gives, :meth:`allocsim.workloads.iouring.IOUring.completion_shares`);
* *cross-CPU share*: frees that ran on another CPU than their object's allocation (the same shares'
  ``other_cpu``);
* *in flight*: objects allocated and not yet freed, after every event, in time order (the io_uring
  ``queue_depth`` bounds it per submitter); objects alive before recording began are not known and not
  counted, so a trace whose first frees were trimmed under-counts at its start;
* *batches*: on each CPU, a run of consecutive allocations with no free of that CPU between and less than
  ``batch_gap_us`` (default :data:`BATCH_GAP_US`) between neighbours is one submit batch, a run of frees
  likewise one completion batch (t/io_uring's ``-s`` and ``-c`` bound them). On the shipped trace the
  time between a CPU's allocations is 1–5 µs within an ``io_uring_enter`` and tens of µs or more between
  them, so the threshold sits in the gap between the two;
* *lifetimes*: free time minus allocation time of each object freed within the trace.

**Replay** (:func:`replay`): the trace as a :class:`~allocsim.kernel.program.Program` through the
configurations of :data:`allocsim.analysis.iops.CONFIGS` — the per-CPU list (the patch), kmalloc (6.19 cpu
slab; 7.0 sheaves) and the dedicated cache with ``sheaf_capacity = 256`` (6.19 sheaves on the cpu slab;
7.0 sheaves) — each run by the callable :func:`allocsim.analysis.runs.model_fn` builds, exactly as the IOPS
chapter runs them. Cycles per IO are the allocator's cycles over the whole trace divided by its
allocations (one ``iomap_dio`` per IO).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from allocsim.analysis import iops
from allocsim.analysis import runs
from allocsim.facts.errors import AllocsimError
from allocsim.facts.kconfig import cache_geometry
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK
from allocsim.workloads import recorded

BATCH_GAP_US = 10.0  # a pause this long on one CPU ends a batch (see measure())
PAGE_SIZE = 4096  # x86-64 (arch/x86/include/asm/page_types.h: PAGE_SHIFT 12)


@dataclass
class Measurement:
    trace: str
    seconds: float
    events: int
    allocs: int
    frees: int
    ncpu: int
    alloc_ctx: dict  # name -> share of allocations
    free_ctx: dict  # name -> share of frees
    cross_cpu_share: float  # of matched frees
    per_cpu: pd.DataFrame  # cpu, allocs, frees (by context)
    inflight: pd.DataFrame  # t_ms, inflight (after every event, thinned for charts)
    inflight_stats: dict
    submit_batches: np.ndarray
    complete_batches: np.ndarray
    lifetimes_us: np.ndarray
    edges: recorded.Edges
    meta: dict = field(default_factory=dict)

    def batch_stats(self, which: str) -> dict:
        b = self.submit_batches if which == "submit" else self.complete_batches
        if len(b) == 0:
            return {"mean": float("nan"), "median": float("nan"), "p90": float("nan"), "max": 0}
        return {"mean": float(b.mean()), "median": float(np.median(b)), "p90": float(np.percentile(b, 90)),
                "max": int(b.max())}

    def lifetime_stats(self) -> dict:
        x = self.lifetimes_us
        if len(x) == 0:
            return {"mean": float("nan"), "median": float("nan"), "p99": float("nan"), "max": float("nan")}
        return {"mean": float(x.mean()), "median": float(np.median(x)), "p99": float(np.percentile(x, 99)),
                "max": float(x.max())}

    @property
    def allocs_per_second(self) -> float:
        return self.allocs / self.seconds if self.seconds > 0 else float("nan")


def _runs(mask: np.ndarray, cpu: np.ndarray, t: np.ndarray, gap_ns: float) -> np.ndarray:
    """Lengths of maximal runs of True in ``mask`` that stay on one CPU with less than ``gap_ns`` between
    neighbours (arrays in per-CPU order)."""
    if len(mask) == 0:
        return np.zeros(0, np.int64)
    brk = np.ones(len(mask), bool)
    brk[1:] = (mask[1:] != mask[:-1]) | (cpu[1:] != cpu[:-1]) | (np.diff(t) >= gap_ns)
    ids = np.cumsum(brk) - 1
    lengths = np.bincount(ids)
    run_is_true = mask[brk]
    return lengths[run_is_true].astype(np.int64)


def measure(trace: recorded.Trace, edges: str = "trim", batch_gap_us: float = BATCH_GAP_US,
            max_points: int = 4000) -> Measurement:
    """The workload's numbers (see the module docstring)."""
    if isinstance(batch_gap_us, bool) or not isinstance(batch_gap_us, (int, float)) or not batch_gap_us > 0:
        raise AllocsimError(f"batch_gap_us must be a number of microseconds > 0, not {batch_gap_us!r}")
    ev, rep = recorded.match(trace, edges)
    if len(ev) == 0:
        raise AllocsimError(f"the trace {trace.name} has no event left to measure")
    op = ev["op"].to_numpy()
    ctx = ev["ctx"].to_numpy()
    cpu = ev["cpu"].to_numpy()
    t = ev["t_ns"].to_numpy()
    slot = ev["slot"].to_numpy()
    a, f = op == ALLOC, op == FREE
    names = recorded.CTX_LABELS

    def shares(mask):
        n = int(mask.sum())
        return {names[c]: (float(np.count_nonzero(mask & (ctx == c))) / n if n else float("nan"))
                for c in (TASK, HARDIRQ, SOFTIRQ)}

    n_slots = int(a.sum())
    alloc_cpu = np.full(n_slots, -1, np.int64)
    alloc_t = np.zeros(n_slots, np.int64)
    alloc_cpu[slot[a]] = cpu[a]
    alloc_t[slot[a]] = t[a]
    cross = float(np.mean(cpu[f] != alloc_cpu[slot[f]])) if f.any() else float("nan")
    lifetimes = (t[f] - alloc_t[slot[f]]) / 1e3
    # in flight, in time order (ev is in file = time order)
    level = np.cumsum(np.where(a, 1, -1))
    step = max(1, len(level) // max_points)
    infl = pd.DataFrame({"t_ms": (t[::step] - t[0]) / 1e6, "inflight": level[::step]})
    # batches on each CPU in that CPU's order
    idx = np.argsort(cpu, kind="stable")
    sub = _runs(a[idx], cpu[idx], t[idx], batch_gap_us * 1e3)
    comp = _runs(f[idx], cpu[idx], t[idx], batch_gap_us * 1e3)
    per_cpu = (ev.assign(kind=np.where(a, "alloc", "free"), context=ev["ctx"].map(names))
               .groupby(["cpu", "kind", "context"]).size().rename("events").reset_index())
    seconds = float((t[-1] - t[0]) / 1e9) if len(t) > 1 else 0.0
    return Measurement(
        trace=trace.name, seconds=seconds, events=len(ev), allocs=int(a.sum()), frees=int(f.sum()),
        ncpu=trace.ncpu, alloc_ctx=shares(a), free_ctx=shares(f), cross_cpu_share=cross, per_cpu=per_cpu,
        inflight=infl, inflight_stats={"mean": float(level.mean()), "median": float(np.median(level)),
                                       "p99": float(np.percentile(level, 99)), "max": int(level.max())},
        submit_batches=sub, complete_batches=comp, lifetimes_us=lifetimes, edges=rep, meta=trace.meta)


def assumed(setup: runs.Setup | None = None) -> dict:
    """The chapters' default workload (the IOPS chapter's :class:`allocsim.analysis.runs.Setup`), in the terms of
    :func:`measure`."""
    s = setup or runs.Setup()
    sh = s.completion_shares()  # what blk-mq's placement gives the setup's topology
    return {"task": sh["task"], "hardirq": sh["hardirq"], "softirq": sh["softirq"], "cross_cpu_share": sh["other_cpu"],
            "queue_depth": s.queue_depth, "submit_batch": s.submit_batch, "complete_batch": s.complete_batch}


def comparison(m: Measurement, setup: runs.Setup | None = None) -> pd.DataFrame:
    """Measured against assumed, one row per quantity."""
    d = assumed(setup)
    sb, cb = m.batch_stats("submit"), m.batch_stats("complete")
    rows = [
        ("frees in task context", m.free_ctx["task"], d["task"], "share"),
        ("frees in hardirq context", m.free_ctx["hardirq"], d["hardirq"], "share"),
        ("frees in softirq context", m.free_ctx["softirq"], d["softirq"], "share"),
        ("frees on another CPU than the allocation", m.cross_cpu_share, d["cross_cpu_share"], "share"),
        ("objects in flight (max)", m.inflight_stats["max"], d["queue_depth"], "count"),
        ("objects in flight (median)", m.inflight_stats["median"], d["queue_depth"], "count"),
        ("submit batch (mean)", sb["mean"], d["submit_batch"], "count"),
        ("completion batch (mean)", cb["mean"], d["complete_batch"], "count"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "measured", "assumed", "unit"])


# ---------------------------------------------------------------------------------------------------
# Replay

@dataclass
class Replay:
    table: pd.DataFrame  # one row per configuration
    results: dict  # (kernel, allocator) -> Result
    program_events: int
    seconds: float  # wall time of the replays


def _slab_bytes(result, kernel: str, allocator: str, setup: runs.Setup, ncpu: int) -> int:
    if allocator == "per-CPU list":
        back = result.extra.get("backend")
        g = cache_geometry(setup.object_size + 8, ncpu, kernel, kmalloc=True)
        return int(back.extra["nr_slabs"]) * (PAGE_SIZE << g.order) if back is not None else 0
    g = result.extra["geometry"]
    return int(result.extra["nr_slabs"]) * (PAGE_SIZE << g.order)


def replay(program, object_size: int = 96, clock_ghz: float = 3.0, configs=iops.CONFIGS, seed: int = 0,
           hierarchy: bool = True) -> Replay:
    """Run ``program`` through each configuration; cycles and ns per IO, the most frequent path, lock
    waiting and slab memory at the end. ``hierarchy``: the models' loads and stores through the memory
    hierarchy at ``clock_ghz`` (:attr:`allocsim.analysis.runs.Setup.hierarchy`), or the flat ``l1_hit``."""
    import time

    setup = runs.clocked(runs.Setup(object_size=object_size, seed=seed, hierarchy=hierarchy).validate(), clock_ghz)
    rows, results = [], {}
    n_alloc = int(np.count_nonzero(program.op == ALLOC))
    if n_alloc == 0:
        raise AllocsimError("the program has no allocation to replay")
    t0 = time.perf_counter()
    for kernel, allocator in configs:
        r = runs.model_fn(kernel, allocator, setup)(program)
        results[(kernel, allocator)] = r
        top = max(r.paths.items(), key=lambda kv: kv[1][0]) if r.paths else ("", (0, 0.0))
        rows.append({"kernel": kernel, "allocator": allocator, "model": r.model,
                     "cycles/IO": r.cycles / n_alloc, "ns/IO": r.cycles / n_alloc / clock_ghz,
                     "lock wait cycles/IO": r.lock_wait / n_alloc,
                     "most frequent path": f"{top[0]} ({100.0 * top[1][0] / r.n_ops:.0f} %)" if r.n_ops else "",
                     "slab KiB at end": _slab_bytes(r, kernel, allocator, setup, program.ncpu) / 1024})
    return Replay(pd.DataFrame(rows), results, program.n_events, time.perf_counter() - t0)


def worth(table: pd.DataFrame, base_ns: float, against: str = "per-CPU list") -> pd.DataFrame:
    """IOPS of one CPU-bound submitter for ``base_ns`` of other work per IO plus each allocator's replayed
    ns per IO (:func:`allocsim.analysis.iops.ns_to_miops`), and the gain of ``against`` over each."""
    if isinstance(base_ns, bool) or not isinstance(base_ns, (int, float)) or not base_ns > 0:
        raise AllocsimError(f"the base cost per IO must be a number of ns > 0, not {base_ns!r}")
    out = table[["kernel", "allocator", "ns/IO"]].copy()
    out["M IOPS"] = iops.ns_to_miops(base_ns + out["ns/IO"].to_numpy())
    ref = out[out["allocator"] == against].set_index("kernel")["M IOPS"]
    out[f"{against} gain %"] = [iops.gain_pct(ref[k], m) if k in ref.index else float("nan")
                                for k, m in zip(out["kernel"], out["M IOPS"])]
    return out


# ---------------------------------------------------------------------------------------------------
# CLI: python -m allocsim replay [TRACE]

def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f} %"


def main(args) -> int:
    trace = recorded.load(args.trace, expect_sites=None if args.alloc_site == "any" else (args.alloc_site,))
    m = measure(trace, args.edges)
    meta = trace.meta
    mach = meta.get("machine", {})
    print(f"trace {trace.path}: {m.events} events ({m.allocs} allocations, {m.frees} frees) in {m.seconds:.3f} s, "
          f"{m.allocs_per_second:,.0f} allocations/s; kernel {mach.get('release')}, {mach.get('ncpu')} CPUs; "
          f"load: {(meta.get('load') or {}).get('t_io_uring') or (meta.get('load') or {}).get('command')}")
    for note in m.edges.notes:
        print(f"note: {note}")
    print()
    print("events by CPU, kind and context:")
    print(m.per_cpu.to_string(index=False))
    print()
    comp = comparison(m)
    comp["measured"] = [(_pct(v) if u == "share" else f"{v:.1f}") for v, u in zip(comp["measured"], comp["unit"])]
    comp["assumed"] = [(_pct(v) if u == "share" else f"{v:g}") for v, u in zip(comp["assumed"], comp["unit"])]
    print("measured against the book's defaults:")
    print(comp.drop(columns="unit").to_string(index=False))
    ls = m.lifetime_stats()
    print(f"\nobject lifetime: median {ls['median']:.1f} µs, mean {ls['mean']:.1f} µs, 99th percentile "
          f"{ls['p99']:.1f} µs")
    if args.no_replay:
        return 0
    prog, _ = recorded.to_program(trace, args.edges, args.timing, args.clock_ghz)
    size = (meta.get("target") or {}).get("bytes_req") or 96
    rp = replay(prog, object_size=int(size), clock_ghz=args.clock_ghz)
    print(f"\nreplay of {rp.program_events} events through every model ({rp.seconds:.1f} s; "
          f"{args.clock_ghz:g} GHz for ns):")
    t = rp.table.copy()
    for c in ("cycles/IO", "ns/IO", "lock wait cycles/IO", "slab KiB at end"):
        t[c] = t[c].map(lambda v: f"{v:.1f}")
    print(t.drop(columns="model").to_string(index=False))
    return 0


def pcpu_front_shares(rp: Replay, kernel: str = "7.0") -> tuple[float, float]:
    """The per-CPU list's behaviour in a replay on ``kernel``, as ``(bypass, hits)``: the share of frees it
    hands straight to ``kfree()`` because they ran in softirq context, and the share of allocations its
    lists served (a hit or a splice from the free side)."""
    st = rp.results[(kernel, "per-CPU list")].extra["front"].stats
    return (st["kfree_softirq"] / max(1, st["free"]),
            (st["alloc_hit"] + st["alloc_splice"]) / max(1, st["alloc"]))

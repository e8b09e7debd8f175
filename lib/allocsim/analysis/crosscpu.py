"""What cross-CPU completions cost the allocators, with the memory hierarchy and with the flat model (chapter 2,
issue 11).

The io_uring loop of :mod:`allocsim.workloads.iouring` (the page's workload) with every completion in one place
(:data:`PLACEMENTS`, the blk-mq topology fields of :class:`allocsim.analysis.runs.Setup`): on the submitting CPU,
on another CPU of its last-level cache, or in another LLC — sent back to the submitter by IPI (``rq_affinity``
1, the default) or completed where the interrupt landed (``rq_affinity`` 0). Each runs through the 6.19 cpu
slab and the 7.0 sheaves of ``kmalloc(sizeof(struct iomap_dio))`` and the per-CPU list on both kernels
(:data:`CONFIGS`, the models of :func:`allocsim.analysis.runs.model_fn`), once with the memory hierarchy of
:mod:`allocsim.kernel.cache` and once with the flat charges (every load an ``l1_hit``).

**One program for both columns.** The workload numbers its CPUs as the hierarchy does
(:func:`allocsim.workloads.adapter.hierarchy_llc_cpus`: ``cpus_per_llc`` to an LLC) in both runs, so the only
difference between them is the cache model: "another CPU of the LLC" is one of CPUs 1–7 (a seeded uniform
draw per IO) and "another LLC" CPU 8.

**What moves** (the lines each path touches, ``data/kernel/steps.yaml``): the object's line was last written by
the submitting CPU — ``slab_post_alloc_hook()`` zeroes it under ``init_on_alloc`` (the distribution default,
``data/kernel/hooks.yaml``) and 6.19's allocation fast path reads its free pointer. On 6.19 a free on another
CPU goes through ``do_slab_free()`` → ``__slab_free()``, whose ``set_freepointer()`` writes the free pointer
inside the object (v6.19 ``mm/slub.c``): the line moves to the freeing CPU, and back when the submitting CPU
allocates the object again and reads that pointer. On 7.0 ``free_to_pcs()`` stores only the pointer, in the
freeing CPU's sheaf (``pcs->main->objects[pcs->main->size++]``, v7.0 ``mm/slub.c``): the object's line stays
where it was, and only the sheaf's lines travel, a sheaf at a time through the barn. The per-CPU list never
serves an allocation on the submitting CPU when no completion comes back to it: each allocation falls back to
``kmalloc``, and the completing CPU's list, once full, ``kfree()``\\ s — so it pays what its kmalloc backend pays
for a remote free, plus its own paths.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from allocsim.analysis import runs
from allocsim.facts import cpu as _cpu
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import pcpu_list
from allocsim.workloads import adapter, iouring

_TOPO = dict(polled=False, nr_hw_queues=0)
#: Where every completion runs: the blk-mq topology of each placement (the fields of runs.Setup / the page).
PLACEMENTS = {
    "same CPU": dict(_TOPO, irq_same_cpu_share=1.0, irq_same_llc_share=0.0, irq_other_llc_share=0.0, rq_affinity=1),
    "same LLC": dict(_TOPO, irq_same_cpu_share=0.0, irq_same_llc_share=1.0, irq_other_llc_share=0.0, rq_affinity=1),
    "other LLC, sent back": dict(_TOPO, irq_same_cpu_share=0.0, irq_same_llc_share=0.0, irq_other_llc_share=1.0,
                                 rq_affinity=1),
    "other LLC": dict(_TOPO, irq_same_cpu_share=0.0, irq_same_llc_share=0.0, irq_other_llc_share=1.0, rq_affinity=0),
}
#: What each placement means, for tables.
PLACEMENT_WORDS = {
    "same CPU": "interrupt on the submitting CPU: hardirq there",
    "same LLC": "interrupt on another CPU of its LLC: hardirq there",
    "other LLC, sent back": "interrupt in another LLC, rq_affinity 1: IPI, BLOCK_SOFTIRQ on the submitter",
    "other LLC": "interrupt in another LLC, rq_affinity 0: hardirq there",
}
#: The models compared: (kernel, allocator) of runs.model_fn.
CONFIGS = (("6.19", "kmalloc"), ("7.0", "kmalloc"), ("6.19", "per-CPU list"), ("7.0", "per-CPU list"))
_WHAT = {("6.19", "kmalloc"): "6.19 kmalloc (cpu slab)", ("7.0", "kmalloc"): "7.0 kmalloc (sheaves)",
         ("6.19", "per-CPU list"): "6.19 per-CPU list", ("7.0", "per-CPU list"): "7.0 per-CPU list"}
#: The hierarchy's counters summed into "transfers" (a line taken from another CPU's cache) and "invalidations".
INVALIDATIONS = ("INV_SAME", "INV_LLC", "INV_NODE")


def label(kernel: str, allocator: str) -> str:
    """The model's name on the page: ``"6.19 kmalloc (cpu slab)"``, ``"7.0 per-CPU list"``…"""
    return _WHAT.get((kernel, allocator), f"{kernel} {allocator}")


def _check(where: str) -> None:
    if where not in PLACEMENTS:
        raise AllocsimError(f"the completion placement must be one of {', '.join(map(repr, PLACEMENTS))}, not {where!r}")


def workload(P, where: str) -> iouring.IOUring:
    """The page's io_uring run (``P``: a chapter's parameters or a :class:`~allocsim.analysis.runs.Setup`, with
    ``clock_ghz`` for the base work) with every completion placed as ``where`` says, its CPUs numbered as the
    memory hierarchy numbers them — whether or not the run then uses the hierarchy."""
    _check(where)
    ns = SimpleNamespace(**{k: getattr(P, k) for k in (*adapter.PARAMETERS, "clock_ghz") if hasattr(P, k)})
    ns.hierarchy = True
    return adapter.io_uring(ns, **PLACEMENTS[where])


def setup(P, hierarchy: bool) -> runs.Setup:
    """The models' setup: the book's defaults (``struct iomap_dio``, the cost table, the hooks of a distribution
    kernel) with the hierarchy on or off at the page's clock."""
    return runs.Setup(hierarchy=bool(hierarchy), clock_ghz=float(P.clock_ghz), seed=int(getattr(P, "seed", 0)))


def measure(P, kernel: str, allocator: str, where: str, hierarchy: bool) -> iouring.SteadyState:
    """The steady state of one model, one placement, hierarchy on or off (the list with the page's
    ``threshold`` and ``max_nr`` when ``P`` has them)."""
    kw = {k: getattr(P, k) for k in ("threshold", "max_nr") if hasattr(P, k)}
    fn = runs.model_fn(kernel, allocator, setup(P, hierarchy), **kw)
    return iouring.steady_state(fn, workload(P, where))


def table(P, configs=CONFIGS, placements=tuple(PLACEMENTS)) -> pd.DataFrame:
    """One row per model × placement × hierarchy on/off: cycles per IO and, with the hierarchy on, where its
    accesses were served per IO (``L1`` … ``MEM``), the lines taken from another CPU's cache (``transfers``) and
    the writes that invalidated copies elsewhere (``invalidations``); ``CPUs``: the CPUs in the program."""
    rows = []
    for where in placements:
        n = workload(P, where).n_cpus
        for kernel, allocator in configs:
            for on in (False, True):
                ss = measure(P, kernel, allocator, where, on)
                h = ss.hierarchy_per_io() or {}
                rows.append({"kernel": kernel, "allocator": allocator, "model": label(kernel, allocator),
                             "where": where, "hierarchy": "on" if on else "off", "CPUs": n,
                             "cycles per IO": ss.cycles_per_io,
                             "transfers per IO": ss.transfers_per_io if on else np.nan,
                             "invalidations per IO": sum(h[k] for k in INVALIDATIONS) if on else np.nan,
                             **{f"{k} per IO": h.get(k, np.nan) for k in iouring.COUNTER_NAMES}})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`table` as one row per model × placement: cycles per IO flat and with the hierarchy, what the
    hierarchy adds, and its transfers and invalidations per IO (indexed by model and placement, in order)."""
    key = ["model", "where"]
    off = df[df["hierarchy"] == "off"].set_index(key)
    on = df[df["hierarchy"] == "on"].set_index(key)
    out = pd.DataFrame({"CPUs": on["CPUs"], "cycles per IO, flat": off["cycles per IO"],
                        "cycles per IO, hierarchy": on["cycles per IO"]})
    out["added by the hierarchy"] = out["cycles per IO, hierarchy"] - out["cycles per IO, flat"]
    out["transfers per IO"] = on["transfers per IO"]
    out["invalidations per IO"] = on["invalidations per IO"]
    order = pd.MultiIndex.from_tuples([(m, w) for m in dict.fromkeys(df["model"]) for w in dict.fromkeys(df["where"])],
                                      names=key)
    return out.reindex(order)


def value(df: pd.DataFrame, kernel: str, allocator: str, where: str, hierarchy: str, column: str) -> float:
    """One number of :func:`table`."""
    sel = df[(df["kernel"] == kernel) & (df["allocator"] == allocator) & (df["where"] == where)
             & (df["hierarchy"] == hierarchy)]
    if len(sel) != 1:
        raise AllocsimError(f"the cross-CPU table has no single row for {kernel} {allocator}, {where}, hierarchy {hierarchy}")
    return float(sel[column].iloc[0])


def latencies(clock_ghz: float) -> dict:
    """The hierarchy's L1 hit, transfer and memory latencies in cycles at ``clock_ghz``, and its CPUs per LLC
    (``data/kernel/cpu.yaml``)."""
    g = _cpu.geometry(clock_ghz=clock_ghz)
    return {"l1": g.lat_l1, "same_llc": g.lat_same_llc, "cross_llc": g.lat_cross_llc, "cross_node": g.lat_cross_node,
            "memory": g.lat_memory, "cpus_per_llc": g.cpus_per_llc}


def distance_cost(df: pd.DataFrame, kernel: str, allocator: str, clock_ghz: float) -> float:
    """How many transfer latencies one IO pays: the cycles per IO that moving the completing CPU from the
    submitter's LLC to another LLC adds (hierarchy on, completed where the interrupt lands), divided by what
    each such access then costs more (cross-LLC minus same-LLC latency). A whole number when the two runs touch
    the same lines in the same order and only the distance changed."""
    lat = latencies(clock_ghz)
    d = value(df, kernel, allocator, "other LLC", "on", "cycles per IO") - value(df, kernel, allocator, "same LLC", "on",
                                                                               "cycles per IO")
    return d / (lat["cross_llc"] - lat["same_llc"])


def slab_order_note(object_size: int, kernel: str, cpus) -> pd.DataFrame:
    """What the CPUs present change in the cache the models build: ``calculate_order()``'s ``min_objects = 4 ×
    (fls(nr_cpus) + 1)`` and the resulting slab order and objects per slab (v6.19/v7.0 ``mm/slub.c``), for each
    CPU count in ``cpus`` (the SLUB models take the program's CPUs as the CPUs present)."""
    from allocsim.facts import kconfig

    rows = []
    for n in cpus:
        g = kconfig.cache_geometry(object_size, int(n), kernel, kmalloc=True)
        rows.append({"CPUs": int(n), "min_objects": kconfig.min_objects(int(n)), "order": g.order,
                     "objects per slab": g.objs_per_slab, "cache": g.name})
    return pd.DataFrame(rows)


def element_size() -> int:
    """Bytes the per-CPU list asks ``kmalloc`` for (``struct pcpu_cache_element`` + ``struct iomap_dio``)."""
    return pcpu_list.element_size() + pcpu_list.header_size()


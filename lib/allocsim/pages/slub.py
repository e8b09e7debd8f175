"""Runs, tables and charts for chapter 3 ("kmalloc before sheaves", slug ``cpuslab``) and chapter 4
("Sheaves and the barn", slug ``sheaves``). Every number comes from :func:`allocsim.kernel.slub.run` or
:mod:`allocsim.facts.kconfig`; the chapters only call these functions and glue the results.

Steady state. Both chapters measure the steady state by difference: the cost of a longer run minus
that of a shorter one whose program is a prefix of it (:func:`allocsim.workloads.iouring.steady_state` for the
io_uring loop; :func:`microbench` for the module benchmark, whose per-thread programs are prefixes of
one another for ``fifo`` and ``lifo`` free orders and statistically alike for ``random``)."""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from allocsim.analysis.claims import interval  # the book's one status rule for every claim
from allocsim.analysis.microbench import FAST_FREES, MICRO_ROUNDS, improvement, microbench  # noqa: F401
from allocsim.pages import charts
from allocsim.workloads import iouring
from allocsim.facts import kconfig
from allocsim.kernel import slub
from allocsim.facts import thread
from allocsim.kernel import program as trace
from allocsim.kernel import stats as ss
from allocsim.facts.errors import AllocsimError

# ------------------------------------------------------------------------------------------------
# A box-and-arrow diagram (both chapters draw their mechanism with it)


def box_diagram(boxes: list[dict], edges: list[tuple], title: str, subtitle: str, xmax=100, ymax=60,
                width=None, height=320, w=11, h=5) -> alt.LayerChart:
    """Boxes (``id``, ``x``, ``y``, ``label``, ``sub``, ``code``; optional ``w``/``h`` half sizes and
    ``fill``) joined by arrows ``(from, to, label, (label_x, label_y), code[, shift])``; ``shift`` moves
    an arrow to its left (data units, seen along its direction), so that two opposite arrows between the
    same boxes, both shifted, do not overlap. Hovering a
    box or an arrow shows the kernel code it stands for."""
    W = width or charts.WIDTH + 120
    b = pd.DataFrame(boxes).set_index("id")
    b["w"] = b["w"].fillna(w) if "w" in b else w
    b["h"] = b["h"].fillna(h) if "h" in b else h
    b["fill"] = b["fill"].fillna("#f4f4f4") if "fill" in b else "#f4f4f4"
    b["x0"], b["x1"], b["y0"], b["y1"] = b["x"] - b["w"], b["x"] + b["w"], b["y"] - b["h"], b["y"] + b["h"]
    rows, heads, labels = [], [], []
    for edge in edges:
        a, z, text, (lx, ly), code = edge[:5]
        shift = edge[5] if len(edge) > 5 else 0.0
        xa, ya, xb, yb = b.loc[a, "x"], b.loc[a, "y"], b.loc[z, "x"], b.loc[z, "y"]
        dx, dy = xb - xa, yb - ya
        if shift:
            norm = math.hypot(dx, dy)
            px, py = -dy / norm * shift, dx / norm * shift
            xa, ya, xb, yb = xa + px, ya + py, xb + px, yb + py
        ta = min(b.loc[a, "w"] / abs(dx) if dx else math.inf, b.loc[a, "h"] / abs(dy) if dy else math.inf)
        tb = min(b.loc[z, "w"] / abs(dx) if dx else math.inf, b.loc[z, "h"] / abs(dy) if dy else math.inf)
        x0, y0, x1, y1 = xa + dx * ta, ya + dy * ta, xb - dx * tb, yb - dy * tb
        plain = text.replace("\n", " ")
        rows.append({"x": x0, "y": y0, "x2": x1, "y2": y1, "when": plain, "code": code})
        heads.append({"x": x1, "y": y1, "angle": math.degrees(math.atan2(dx * W / xmax, dy * height / ymax)),
                      "when": plain, "code": code})
        labels.append({"x": lx, "y": ly, "text": text, "when": plain, "code": code})
    xs = alt.X("x:Q", scale=alt.Scale(domain=[0, xmax]), axis=None)
    ys = alt.Y("y:Q", scale=alt.Scale(domain=[0, ymax]), axis=None)
    tip = [alt.Tooltip("when:N", title="path"), alt.Tooltip("code:N", title="kernel")]
    bt = b.reset_index()
    box_tip = [alt.Tooltip("label:N", title="part"), alt.Tooltip("code:N", title="kernel")]
    rect = alt.Chart(bt).mark_rect(stroke="#555", cornerRadius=4).encode(
        x=alt.X("x0:Q", scale=alt.Scale(domain=[0, xmax]), axis=None), x2="x1:Q",
        y=alt.Y("y0:Q", scale=alt.Scale(domain=[0, ymax]), axis=None), y2="y1:Q",
        fill=alt.Fill("fill:N", scale=None), tooltip=box_tip)
    name = alt.Chart(bt).mark_text(fontWeight="bold", fontSize=10.5, dy=-6).encode(x=xs, y=ys, text="label:N",
                                                                                   tooltip=box_tip)
    sub = alt.Chart(bt).mark_text(fontSize=9.5, color="#555", dy=8).encode(x=xs, y=ys, text="sub:N", tooltip=box_tip)
    lines = alt.Chart(pd.DataFrame(rows)).mark_rule(strokeWidth=1.6, color="#333").encode(
        x=xs, y=ys, x2="x2:Q", y2="y2:Q", tooltip=tip)
    arrow = alt.Chart(pd.DataFrame(heads)).mark_point(shape="triangle", filled=True, size=60, color="#333",
                                                      opacity=1).encode(
        x=xs, y=ys, angle=alt.Angle("angle:Q", scale=None), tooltip=tip)
    text = alt.Chart(pd.DataFrame(labels)).mark_text(fontSize=10, lineBreak="\n", color="#8a5a00").encode(
        x=xs, y=ys, text="text:N", tooltip=tip)
    return (rect + name + sub + lines + arrow + text).properties(
        width=W, height=height, title=alt.Title(title, subtitle=subtitle))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


# ------------------------------------------------------------------------------------------------
# Chapter 3: the 6.19 cpu slab under the io_uring direct-read loop

FREE_PATHS = ("free_fastpath", "free_frozen", "free_partial", "free_cpu_partial", "free_cpu_partial_drain",
              "free_list_lock")
ALLOC_PATHS = ("alloc_fastpath", "alloc_refill", "alloc_cpu_partial", "alloc_from_partial", "alloc_slab")

#: What each cpu-slab path does, in the kernel's words, and the primitives the model charges for it.
CPU_SLAB_PATHS = {
    "alloc_fastpath": ("pop c->freelist: this_cpu_try_cmpxchg128 on {freelist, tid}",
                       "percpu_cmpxchg16b (the measured cost of a whole fast-path call)"),
    "alloc_refill": ("___slab_alloc: get_freelist() takes the cpu slab's own freelist (remote frees)",
                     "function_call, irq_save_restore, locked_cmpxchg16b, l1_hit"),
    "alloc_cpu_partial": ("___slab_alloc: cpu slab exhausted, the next slab comes off the cpu partial list",
                          "function_call, 2 × irq_save_restore, locked_cmpxchg16b, l1_hit ×2"),
    "alloc_from_partial": ("___slab_alloc: get_partial_node() under list_lock, extra slabs to the cpu partial list",
                           "function_call, list_lock (spin_lock_pair + irq_save_restore), locked_cmpxchg16b, …"),
    "alloc_slab": ("___slab_alloc: new_slab() from the page allocator",
                   "function_call, ½ page_alloc_free, l1_hit per object, irq_save_restore"),
    "free_fastpath": ("do_slab_free: the object's slab is this CPU's cpu slab: push onto c->freelist",
                      "percpu_cmpxchg16b"),
    "free_frozen": ("__slab_free to a frozen slab (another CPU's cpu slab): cmpxchg only",
                    "function_call, locked_cmpxchg16b"),
    "free_partial": ("__slab_free to a slab that already has free objects: cmpxchg only",
                     "function_call, locked_cmpxchg16b"),
    "free_cpu_partial": ("__slab_free of a full slab: put_cpu_partial() puts it on this CPU's partial list",
                         "function_call, locked_cmpxchg16b, irq_save_restore, l1_hit"),
    "free_cpu_partial_drain": ("… and the cpu partial list was full: __put_partials() to the node under list_lock",
                               "as free_cpu_partial, plus list_lock and l1_hit per slab moved"),
    "free_list_lock": ("__slab_free of the last object of a slab: list_lock to check or discard it",
                       "function_call, list_lock, locked_cmpxchg16b (, ½ page_alloc_free)"),
}


def io_workload(P, **over) -> iouring.IOUring:
    """The chapter's io_uring configuration (``P`` = the validated chapter parameters)."""
    base = dict(submitters=P.submitters, queue_depth=P.queue_depth, submit_batch=min(P.submit_batch, P.queue_depth),
                complete_batch=min(P.complete_batch, P.queue_depth), ios=P.ios, warmup=P.warmup,
                completion_order=P.completion_order, task_share=P.task_share, hardirq_share=P.hardirq_share,
                softirq_share=P.softirq_share, cross_cpu_share=P.cross_cpu_share, seed=P.seed)
    base.update(over)
    if base["warmup"] < base["queue_depth"]:
        base["warmup"] = base["queue_depth"]
    if base["ios"] < base["warmup"] + base["submit_batch"]:
        base["ios"] = base["warmup"] + 4 * base["queue_depth"] + base["submit_batch"]
    return iouring.IOUring(**base).validate()


def io_model(P, kernel=None, **kw):
    """``Program -> Result`` for kmalloc of ``P.object_size`` on ``kernel`` (default ``P.kernel``)."""
    k = kernel or P.kernel
    return lambda prog: slub.run(prog, kernel=k, object_size=P.object_size, ncpu_present=P.machine_cpus, seed=P.seed,
                                 **kw)


def io_steady(P, kernel=None, **over) -> iouring.SteadyState:
    return iouring.steady_state(io_model(P, kernel), io_workload(P, **over))


def path_table(st: iouring.SteadyState, described=CPU_SLAB_PATHS) -> pd.DataFrame:
    """Per path: calls per IO (``per IO``), ``cycles/call``, ``cycles/IO`` and the share of the IO's
    allocator cycles."""
    rows = []
    for name, (n, cy) in st.paths.items():
        if n <= 0:
            continue
        what, prim = described.get(name, ("", ""))
        rows.append({"path": name, "what the kernel does": what, "primitives charged": prim,
                     "per IO": n / st.ios, "cycles/call": cy / n, "cycles/IO": cy / st.ios})
    df = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(ss.PATHS)}
    df = df.sort_values("path", key=lambda s: s.map(order)).reset_index(drop=True)
    df["share of cycles"] = df["cycles/IO"] / df["cycles/IO"].sum()
    return df


def split(st: iouring.SteadyState) -> dict:
    """The fast/slow split of one steady state: shares of allocations and frees on the fast path, and
    cycles per IO (one allocation + one free)."""
    n = st.ios
    get = lambda k: st.paths.get(k, (0, 0.0))
    return {
        "alloc fast share": get("alloc_fastpath")[0] / n,
        "free fast share": get("free_fastpath")[0] / n,
        "cycles per IO": st.cycles_per_io,
        "fast cycles per IO": (get("alloc_fastpath")[1] + get("free_fastpath")[1]) / n,
    }


def qd_sweep(P, depths=(1, 2, 4, 8, 16, 24, 32, 40, 48, 64, 96, 128, 192, 256), orders=("fifo", "random"),
             kernel=None) -> pd.DataFrame:
    """The fast/slow split and cycles per IO as the queue depth and the completion order vary (batches
    ``min(P.submit_batch, depth)``), everything else as on the page."""
    rows = []
    for order in orders:
        for qd in depths:
            st = io_steady(P, kernel, queue_depth=qd, completion_order=order,
                           submit_batch=min(P.submit_batch, qd), complete_batch=min(P.complete_batch, qd),
                           warmup=max(P.warmup, 8 * qd), ios=max(P.ios, 8 * qd + P.ios - P.warmup))
            row = {"queue depth": qd, "completion order": order, **split(st)}
            for p in FREE_PATHS:
                row[p] = st.paths.get(p, (0, 0))[0] / st.ios
            rows.append(row)
    return pd.DataFrame(rows)


#: The sheaf_capacity of Dave Chinner's proposed iomap_dio cache, which the thread's IOPS runs used.
THREAD_SHEAF_CAPACITY = 256
#: The three caches of the thread's io_uring comparison that exist on 6.19 and 7.0 (label, slub.run arguments).
IO_CACHES = (
    ("6.19 kmalloc", dict(kernel="6.19")),
    (f"6.19 dedicated cache, sheaf_capacity {THREAD_SHEAF_CAPACITY}",
     dict(kernel="6.19", kmalloc=False, sheaf_capacity=THREAD_SHEAF_CAPACITY)),
    ("7.0 kmalloc (sheaves)", dict(kernel="7.0")),
)


def compare_caches(P, gap: int, caches=IO_CACHES) -> pd.DataFrame:
    """The page's io_uring workload with ``gap`` cycles of other work before each submission, through
    each cache: allocator cycles per IO (steady state), the share of frees served on a fast path (the
    cpu slab's, or a sheaf with room) and the rest."""
    cfg = io_workload(P, submit_gap=gap)
    rows = []
    for label, kw in caches:
        st = iouring.steady_state(lambda p, kw=kw: slub.run(p, object_size=P.object_size, ncpu_present=P.machine_cpus,
                                                            seed=P.seed, **kw), cfg)
        fast = sum(st.paths.get(k, (0, 0))[0] for k in FAST_FREES) / st.ios
        rows.append({"cache": label, "cycles per IO": st.cycles_per_io, "free fast path": fast,
                     "slow or bypass frees": 1 - fast})
    return pd.DataFrame(rows).set_index("cache")


def cpu_slab_diagram(objs_per_slab: int, cpu_partial_slabs: int, min_partial: int) -> alt.LayerChart:
    boxes = [
        {"id": "c", "x": 12, "y": 48, "label": "kmem_cache_cpu", "sub": "freelist + tid, per CPU",
         "code": "struct kmem_cache_cpu { struct freelist_tid; struct slab *slab; struct slab *partial; local_trylock_t lock; }"},
        {"id": "cs", "x": 44, "y": 48, "label": "cpu slab (frozen)", "sub": f"{objs_per_slab} objects",
         "code": "c->slab: the slab c->freelist comes from; frozen"},
        {"id": "cp", "x": 82, "y": 48, "label": "cpu partial list", "sub": f"up to {cpu_partial_slabs} slabs, then drain",
         "code": "c->partial, s->cpu_partial_slabs (set_cpu_partial, slub_set_cpu_partial)"},
        {"id": "pg", "x": 12, "y": 10, "label": "page allocator", "sub": "new_slab / discard_slab",
         "code": "allocate_slab() / free_slab()"},
        {"id": "np", "x": 56, "y": 10, "label": "node partial list", "sub": f"list_lock; keeps {min_partial} slabs",
         "code": "struct kmem_cache_node { spinlock_t list_lock; struct list_head partial; nr_partial }"},
        {"id": "fs", "x": 89, "y": 10, "label": "a full slab", "sub": "gets a free", "w": 9,
         "code": "an object freed after its slab stopped being the cpu slab (and the slab had no free object)"},
    ]
    edges = [
        ("cs", "c", "get_freelist():\nalloc_refill", (28, 57), "freelist = get_freelist(s, slab); stat(s, ALLOC_REFILL)"),
        ("cp", "cs", "cpu_partial_alloc", (63, 55), "slab = slub_percpu_partial(c); c->slab = slab; freelist = get_freelist(s, slab)"),
        ("np", "cs", "get_partial_node():\none slab to the cpu slab,\nmore to the cpu partial list", (36, 29),
         "slab = get_partial(s, node, &pc); put_cpu_partial(s, slab, 0) for the extra ones; freeze_slab(s, slab)"),
        ("pg", "cs", "new_slab()", (20, 31), "slab = new_slab(s, pc.flags, node); stat(s, ALLOC_SLAB)"),
        ("fs", "cp", "put_cpu_partial()", (95, 31), "put_cpu_partial(s, slab, 1); stat(s, CPU_PARTIAL_FREE)"),
        ("cp", "np", "drain when full", (74, 31), "__put_partials(s, slab_to_put); stat(s, CPU_PARTIAL_DRAIN)"),
        ("np", "pg", "empty slab,\nnr_partial ≥ min_partial", (34, 3), "discard_slab(s, slab); stat(s, FREE_SLAB)"),
    ]
    return box_diagram(boxes, edges, "SLUB up to 6.19: where an object comes from and goes back to",
                       "the free fast path exists only for the cpu slab; hover a box or arrow for the kernel code")


def qd_chart(df: pd.DataFrame, objs_per_slab: int) -> alt.LayerChart:
    """Free fast-path share and cycles per IO against queue depth, one line per completion order."""
    base = alt.Chart(df).encode(
        x=alt.X("queue depth:Q", title=charts.axis("queue depth", "IOs in flight"), scale=alt.Scale(type="log", base=2)),
        color=alt.Color("completion order:N", title="completion order",
                        scale=alt.Scale(domain=["fifo", "random"], range=[charts.ACCENT, "#56B4E9"])),
        tooltip=[alt.Tooltip("queue depth:Q"), alt.Tooltip("completion order:N"),
                 alt.Tooltip("free fast share:Q", format=".1%"), alt.Tooltip("alloc fast share:Q", format=".1%"),
                 alt.Tooltip("cycles per IO:Q", format=".1f")])
    share = base.mark_line(point=True).encode(
        y=alt.Y("free fast share:Q", title=charts.axis("frees on the fast path", "share"), axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]))).properties(title="Free fast path", height=220)
    cyc = base.mark_line(point=True).encode(
        y=alt.Y("cycles per IO:Q", title=charts.axis("allocator cycles per IO", "alloc + free"))).properties(
        title="Cost per IO", height=220)
    rule = alt.Chart(pd.DataFrame({"q": [objs_per_slab]})).mark_rule(strokeDash=[4, 3], color="#888").encode(
        x="q:Q", tooltip=[alt.Tooltip("q:Q", title="objects per slab")])
    return alt.vconcat(share + rule, cyc + rule).properties(
        title=alt.Title("6.19 kmalloc under the io_uring loop", subtitle="dashed: objects per slab"))


def free_split_chart(df: pd.DataFrame, order: str = "fifo") -> alt.Chart:
    d = df[df["completion order"] == order].melt(id_vars=["queue depth"], value_vars=list(FREE_PATHS),
                                                 var_name="path", value_name="per IO")
    return alt.Chart(d).mark_bar().encode(
        x=alt.X("queue depth:O", title=charts.axis("queue depth", "IOs in flight")),
        y=alt.Y("per IO:Q", stack="normalize", title=charts.axis("frees by path", "share"), axis=alt.Axis(format="%")),
        color=alt.Color("path:N", sort=list(FREE_PATHS), title="free path", legend=alt.Legend(labelLimit=300, columns=3)),
        order=alt.Order("path:N"),
        tooltip=[alt.Tooltip("queue depth:O"), alt.Tooltip("path:N"), alt.Tooltip("per IO:Q", format=".1%")],
    ).properties(title=f"Where the frees go ({order} completions)")


# ------------------------------------------------------------------------------------------------
# Chapter 4: sheaves and the barn


def capacity_table(version: str = "7.0", sizes=None) -> pd.DataFrame:
    """``calculate_sheaf_capacity()`` for each kmalloc size class: the base tier, the sheaf's bytes at
    that capacity, the kmalloc bucket they round to, and the capacity that fills it."""
    header = kconfig.sheaf_header()
    rows = []
    for size in sizes or kconfig.kmalloc_sizes():
        base = kconfig.sheaf_capacity_base(size)
        raw = header + kconfig.pointer_size() * base
        bucket = kconfig.kmalloc_size_roundup(raw)
        rows.append({"cache": kconfig.kmalloc_cache_name(size), "s->size": size, "base capacity": base,
                     "sheaf bytes at base": raw, "kmalloc bucket": bucket,
                     "capacity": kconfig.calculate_sheaf_capacity(size, 0, version)})
    return pd.DataFrame(rows)


def sheaves_diagram(capacity: int, max_full: int = 10) -> alt.LayerChart:
    boxes = [
        {"id": "main", "x": 15, "y": 46, "label": "main", "sub": f"sheaf of ≤ {capacity}", "w": 9,
         "code": "pcs->main: never NULL; alloc pops objects[--size], free pushes objects[size++]", "fill": "#e8f3ee"},
        {"id": "spare", "x": 15, "y": 16, "label": "spare", "sub": "full, empty or none", "w": 9,
         "code": "pcs->spare: swapped with main when main is empty (alloc) or full (free)", "fill": "#e8f3ee"},
        {"id": "barn", "x": 60, "y": 46, "label": "barn (per node)", "sub": f"full sheaves (≤ {max_full}) · empty ones",
         "w": 14, "code": "struct node_barn { spinlock_t lock; sheaves_full, nr_full; sheaves_empty, nr_empty }"},
        {"id": "slabs", "x": 60, "y": 10, "label": "slabs", "sub": "node partial list, list_lock", "w": 14,
         "code": "7.0: refill_objects() / __slab_free(); 6.18, 6.19: the cpu slab via __kmem_cache_alloc_bulk()"},
        {"id": "kmalloc", "x": 91, "y": 46, "label": "kmalloc", "sub": "sheaf structs", "w": 8,
         "code": "alloc_empty_sheaf(): kzalloc(struct_size(sheaf, objects, capacity))"},
    ]
    edges = [
        ("spare", "main", "swap", (7, 31), "swap(pcs->main, pcs->spare)"),
        ("barn", "main", "alloc, main and spare empty:\nbarn_replace_empty_sheaf()", (38, 38),
         "full = barn_replace_empty_sheaf(barn, pcs->main); stat(s, BARN_GET)", 2.5),
        ("main", "barn", "free, main and spare full:\nbarn_replace_full_sheaf()", (37, 56),
         "empty = barn_replace_full_sheaf(barn, pcs->main); stat(s, BARN_PUT) (no spare: barn_get_empty_sheaf())", 2.5),
        ("slabs", "main", "refill_sheaf():\nthe barn has no full sheaf", (28, 25),
         "refill_sheaf(s, empty, gfp); stat_add(s, SHEAF_REFILL, filled)"),
        ("spare", "slabs", f"sheaf_flush_unused(spare):\nthe barn holds {max_full} full", (38, 4),
         "sheaf_flush_unused(s, to_flush); stat(s, BARN_PUT_FAIL)"),
        ("kmalloc", "barn", "alloc_empty_sheaf()", (82, 55), "empty = alloc_empty_sheaf(s, GFP_NOWAIT)"),
    ]
    return box_diagram(boxes, edges, "Per-CPU sheaves and the per-node barn",
                       "one CPU shown; every CPU of the node shares the barn and its lock; hover for the kernel code")


def lineage_table() -> pd.DataFrame:
    """Bonwick & Adams (2001) next to SLUB sheaves (allocators-and-costs.md §1.3; kernel.md §1.1, §1.5)."""
    return pd.DataFrame([
        {"Bonwick & Adams 2001": "magazine (M rounds, a stack)", "SLUB sheaves": "sheaf (sheaf_capacity objects, a stack)"},
        {"Bonwick & Adams 2001": "loaded magazine", "SLUB sheaves": "pcs->main"},
        {"Bonwick & Adams 2001": "previous magazine", "SLUB sheaves": "pcs->spare"},
        {"Bonwick & Adams 2001": "depot (per cache), depot lock", "SLUB sheaves": "barn (per NUMA node per cache), barn spinlock"},
        {"Bonwick & Adams 2001": "depot tracks a working set, frees excess under pressure",
         "SLUB sheaves": "barn bounded: MAX_FULL_SHEAVES = 10 when trading a full sheaf"},
        {"Bonwick & Adams 2001": "magazine size grows with depot contention",
         "SLUB sheaves": "capacity fixed at cache creation (7.0 default or kmem_cache_args.sheaf_capacity)"},
        {"Bonwick & Adams 2001": "per-CPU locks", "SLUB sheaves": "local_trylock (preempt_disable + a flag; fails in an interrupt that hit a holder)"},
    ])


def hidden_overhead(slow: float, fast: float, pct: float) -> float:
    """Cycles per pair the measurement would have to include, on top of the allocator's, for a model
    saving of ``slow`` → ``fast`` cycles to show as only ``pct`` % (``(slow - fast) / (slow + X) = pct``)."""
    return (slow - fast) / (pct / 100.0) - slow


def claims_table(P, sweep: pd.DataFrame | None = None) -> pd.DataFrame:
    """The chapter's claims (``data/thread/claims.yaml``, ``tested_in: sheaves``) next to the model's
    values for the same setup (``P``: object size, capacity, K values, threads, free order, machine).
    The "multithreaded" claim states no thread count: it is evaluated over the thread counts of
    ``sweep`` (:func:`threads_sweep`; computed if not given) and reproduced if some count lands in the
    range — the table says which."""
    c = thread.claims().set_index("id")
    kw = dict(object_size=P.object_size, free_order=P.free_order, machine_cpus=P.machine_cpus,
              cpus_per_node=P.cpus_per_node or None, seed=P.seed)
    mb = {}

    def m(kernel, k, threads, cap):
        key = (kernel, k, threads, cap)
        if key not in mb:
            mb[key] = microbench(kernel, k, threads, cap, **kw)["cycles"]
        return mb[key]


    def row(cid, setup, value, unit, fmt):
        r = c.loc[cid]
        claimed = (f"{r['low']:g}–{r['high']:g}" if r["low"] is not None and not pd.isna(r["low"]) else f"{r['value']:g}")
        iv = interval({"id": cid, **r.to_dict()})
        return {"claim": cid, "quote": r["quote"], "setup": setup, "claimed": f"{claimed} {r['unit']}",
                "modelled": format(value, fmt) + f" {unit}", "value": value, "rule": iv.basis,
                "verdict": iv.status(value)}

    geo = kconfig.cache_geometry(P.object_size, P.machine_cpus, "7.0", kmalloc=False)
    base = kconfig.sheaf_capacity_base(geo.size)
    rows = [
        row("default-capacity-26", f"7.0 calculate_sheaf_capacity(), s->size {geo.size} (base tier {base})",
            geo.sheaf_capacity, "objects", "d"),
        row("k32-no-difference", f"7.0, K={P.k_small}, 1 thread: default vs capacity {P.capacity}",
            improvement(m("7.0", P.k_small, 1, None), m("7.0", P.k_small, 1, P.capacity)), "%", "+.1f"),
        row("k128-single", f"7.0, K={P.k_large}, 1 thread: default vs capacity {P.capacity}",
            improvement(m("7.0", P.k_large, 1, None), m("7.0", P.k_large, 1, P.capacity)), "%", "+.1f"),
        row("k128-multithread", f"7.0, K={P.k_large}, {P.threads} threads: default vs capacity {P.capacity}",
            m("7.0", P.k_large, P.threads, None) / m("7.0", P.k_large, P.threads, P.capacity), "x", ".2f"),
        row("module-10pct", f"6.19, K={P.k_small}, 1 thread: no sheaves vs capacity {P.capacity}",
            improvement(m("6.19", P.k_small, 1, None), m("6.19", P.k_small, 1, P.capacity)), "%", "+.1f"),
    ]
    df = pd.DataFrame(rows).set_index("claim")
    if sweep is None:
        sweep = threads_sweep(replace_kernel(P, "7.0"))
    sp_ = sweep.groupby("threads")["speed-up"].first()
    iv = interval({"id": "k128-multithread", **c.loc["k128-multithread"].to_dict()})
    inside = [int(n) for n, x in sp_.items() if iv.status(x) == "reproduced" and n > 1]
    partly = [int(n) for n, x in sp_.items() if iv.status(x) == "partly" and n > 1]
    listed = ", ".join(f"{x:.2f} x ({int(n)})" for n, x in sp_.items() if n > 1)
    df.loc["k128-multithread", "setup"] = (f"7.0, K={P.k_large}, {', '.join(str(int(n)) for n in sp_.index if n > 1)} "
                                           f"threads: default vs capacity {P.capacity}")
    df.loc["k128-multithread", "modelled"] = listed
    df.loc["k128-multithread", "value"] = df.loc["k128-multithread", "value"]
    df.loc["k128-multithread", "verdict"] = (
        f"reproduced at {', '.join(map(str, inside))} threads" if inside
        else f"partly, at {', '.join(map(str, partly))} threads" if partly
        else "not reproduced at any thread count swept")
    return df


def replace_kernel(P, kernel: str):
    """A copy of the chapter parameters ``P`` with another kernel."""
    from types import SimpleNamespace

    return SimpleNamespace(**{**vars(P), "kernel": kernel})


def threads_sweep(P, threads=(1, 2, 4, 6, 8, 12, 16, 24, 32), k=None) -> pd.DataFrame:
    """Default capacity vs ``P.capacity`` on 7.0 for K = ``k`` (default ``P.k_large``) as threads grow:
    cycles, barn traffic, lock waiting, objects moved to and from slabs, per alloc+free pair."""
    k = k or P.k_large
    kw = dict(object_size=P.object_size, free_order=P.free_order, machine_cpus=max(P.machine_cpus, max(threads)),
              cpus_per_node=P.cpus_per_node or None, seed=P.seed)
    rows = []
    for n in threads:
        d = microbench(P.kernel, k, n, None, **kw)
        e = microbench(P.kernel, k, n, P.capacity, **kw)
        for label, r in ((f"default ({d['capacity']})", d), (f"capacity {e['capacity']}", e)):
            rows.append({"threads": n, "cache": label, **{key: r[key] for key in
                         ("cycles", "barn", "wait", "barn wait", "list wait", "transfers", "slab objects", "barn_put_fail")}})
        rows[-2]["speed-up"] = d["cycles"] / e["cycles"]
        rows[-1]["speed-up"] = d["cycles"] / e["cycles"]
    return pd.DataFrame(rows)


def heat_grid(ks=None, caps=None):
    """The 20 × 20 grid of the heat map: K from 8 to 640, requested capacity from 28 to 256."""
    ks = ks if ks is not None else sorted({int(round(x)) for x in np.geomspace(8, 640, 20)})
    caps = caps if caps is not None else [int(round(x)) for x in np.linspace(28, 256, 20)]
    return list(ks), list(caps)


def heat_sweep(P, threads: int = 1, ks=None, caps=None, events_per_point: int = 4096) -> pd.DataFrame:
    """Cycles per alloc+free pair over K × requested capacity (7.0 ``max()``-es the request with the
    default), for ``threads`` threads; rounds chosen so each point runs about ``events_per_point``
    alloc/free calls per thread in its measured window."""
    ks, caps = heat_grid(ks, caps)
    kw = dict(object_size=P.object_size, free_order=P.free_order, machine_cpus=max(P.machine_cpus, threads),
              cpus_per_node=P.cpus_per_node or None, seed=P.seed)
    rows = []
    for cap in caps:
        for k in ks:
            r = max(4, events_per_point // (2 * k))
            d = microbench(P.kernel, k, threads, cap, rounds=(r // 2, r // 2 + r), **kw)
            rows.append({"K": k, "requested capacity": cap, "capacity": d["capacity"], "cycles": d["cycles"],
                         "barn": d["barn"], "slab objects": d["slab objects"], "K / capacity": k / d["capacity"]})
    return pd.DataFrame(rows)


def cliff(df: pd.DataFrame) -> pd.DataFrame:
    """Per capacity: the largest K in the sweep that never touches the barn, the smallest that does
    (barn lock taken in the steady state), that K over the capacity (predicted: just above 2, main +
    spare), and the cost per pair on either side."""
    rows = []
    for cap, g in df.groupby("capacity"):
        g = g.sort_values("K")
        quiet, busy = g[g["barn"] == 0], g[g["barn"] > 0]
        if not len(busy):
            rows.append({"capacity": cap, "last K without barn traffic": int(quiet["K"].max()),
                         "first K with barn traffic": None, "first K / capacity": None,
                         "cycles before": float(quiet["cycles"].iloc[-1]), "cycles after": None})
            continue
        k = int(busy["K"].iloc[0])
        before = g[g["K"] < k]
        rows.append({"capacity": cap, "last K without barn traffic": int(before["K"].max()) if len(before) else None,
                     "first K with barn traffic": k, "first K / capacity": k / cap,
                     "cycles before": float(before["cycles"].iloc[-1]) if len(before) else None,
                     "cycles after": float(busy["cycles"].iloc[0])})
    return pd.DataFrame(rows)


def heat_chart(df: pd.DataFrame, title: str, field: str = "cycles", legend: str = "cycles per pair") -> alt.LayerChart:
    d = df.copy()
    ks = sorted(d["K"].unique())
    scale = alt.Scale(scheme="viridis", type="log") if field == "cycles" else alt.Scale(scheme="viridis")
    heat = alt.Chart(d).mark_rect().encode(
        x=alt.X("K:O", title=charts.axis("K, objects allocated then freed per round"), sort=ks),
        y=alt.Y("capacity:O", title=charts.axis("sheaf capacity", "objects"), sort="descending"),
        color=alt.Color(f"{field}:Q", title=legend, scale=scale),
        tooltip=[alt.Tooltip("K:O"), alt.Tooltip("capacity:O"), alt.Tooltip("cycles:Q", format=".1f"),
                 alt.Tooltip("barn:Q", title="barn lock per pair", format=".3f"),
                 alt.Tooltip("slab objects:Q", title="objects to/from slabs per pair", format=".3f"),
                 alt.Tooltip("K / capacity:Q", format=".2f")])
    # the K = 2 × capacity line, drawn on the nearest grid cells
    line = []
    for cap in sorted(d["capacity"].unique()):
        k2 = min(ks, key=lambda k: abs(k - 2 * cap))
        line.append({"K": k2, "capacity": cap, "what": "K ≈ 2 × capacity (main + spare)"})
    mark = alt.Chart(pd.DataFrame(line)).mark_point(shape="diamond", filled=True, color="white", size=40).encode(
        x=alt.X("K:O", sort=ks), y=alt.Y("capacity:O", sort="descending"), tooltip=["what:N", "K:O", "capacity:O"])
    return (heat + mark).properties(title=alt.Title(title, subtitle="white marks: K = 2 × capacity"), width=charts.WIDTH,
                                     height=360)


def threads_chart(df: pd.DataFrame) -> alt.VConcatChart:
    caches = list(dict.fromkeys(df["cache"]))  # default first, then the explicit capacity
    base = alt.Chart(df).encode(
        x=alt.X("threads:Q", title=charts.axis("threads (one per CPU, one node)")),
        color=alt.Color("cache:N", title="cache", scale=alt.Scale(
            domain=caches, range=[charts.COLORS["kmalloc"], charts.COLORS["sheaf-256"]])),
        tooltip=[alt.Tooltip("threads:Q"), alt.Tooltip("cache:N"), alt.Tooltip("cycles:Q", format=".1f"),
                 alt.Tooltip("barn:Q", format=".3f"), alt.Tooltip("barn wait:Q", format=".1f"),
                 alt.Tooltip("list wait:Q", format=".1f"), alt.Tooltip("slab objects:Q", format=".3f"),
                 alt.Tooltip("speed-up:Q", format=".2f")])
    cyc = base.mark_line(point=True).encode(y=alt.Y("cycles:Q", title=charts.axis("cycles per pair"))).properties(
        title="Cost per alloc+free pair", height=200)
    wait = base.mark_line(point=True).encode(y=alt.Y("wait:Q", title=charts.axis("lock waiting per pair", "cycles"))).properties(
        title="Waiting for the barn lock and list_lock", height=160)
    slab = base.mark_line(point=True).encode(
        y=alt.Y("slab objects:Q", title=charts.axis("objects moved to/from slabs per pair"))).properties(
        title="Objects flushed to and refilled from slabs", height=160)
    return alt.vconcat(cyc, wait, slab).properties(title="As threads grow (K = 128)")

"""Runs, tables, charts and the glued numbers of chapter 3 ("kmalloc before sheaves", slug ``cpuslab``):
the 6.19 cpu slab under the io_uring direct-read loop. Every number comes from :func:`allocsim.kernel.slub.run`
or :mod:`allocsim.facts.kconfig`; the chapter calls one function per section and glues the dataclass it
returns (:func:`allocsim.pages.glue.glue_all`), so each glue key is a field name.

The workload is :func:`allocsim.workloads.adapter.io_uring` of the chapter's parameters, with the book's
base work per IO (the same workload chapters 2 and 5 run). Steady state: the cost of a longer run minus
that of a shorter one whose program is a prefix of it (:func:`allocsim.workloads.iouring.steady_state`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import altair as alt
import pandas as pd

from allocsim.analysis.microbench import FAST_FREES
from allocsim.analysis.runs import Setup
from allocsim.facts import costs as _costs
from allocsim.facts import kconfig
from allocsim.facts import steps as _steps
from allocsim.facts import thread
from allocsim.kernel import slub
from allocsim.kernel import stats as ss
from allocsim.pages import charts
from allocsim.pages import costing
from allocsim.pages.diagram import box_diagram
from allocsim.pages.glue import Md
from allocsim.workloads import adapter
from allocsim.workloads import iouring

FREE_PATHS = ("free_fastpath", "free_frozen", "free_partial", "free_cpu_partial", "free_cpu_partial_drain",
              "free_list_lock")


#: What each cpu-slab path does, in the kernel's words, and what the model charges for it. Every allocation
#: path runs the entry point and the slab_alloc_node() hooks first (``kmalloc_entry`` + ``slab_alloc_hooks``
#: of data/kernel/steps.yaml), every free path ``kfree_entry`` + ``slab_free_hooks``; the rest is the path's own.
ALLOC_FIRST, FREE_FIRST = "entry and hooks, then ", "entry, slab lookup and hooks, then "
CPU_SLAB_PATHS = {
    "alloc_fastpath": ("pop c->freelist: this_cpu_try_cmpxchg128 on {freelist, tid}",
                       ALLOC_FIRST + "the steps of cpu_slab_alloc (the table above)"),
    "alloc_refill": ("___slab_alloc: get_freelist() takes the cpu slab's own freelist (remote frees)",
                     ALLOC_FIRST + "function_call, irq_save_restore, locked_cmpxchg16b, l1_hit"),
    "alloc_cpu_partial": ("___slab_alloc: cpu slab exhausted, the next slab comes off the cpu partial list",
                          ALLOC_FIRST + "function_call, 2 × irq_save_restore, locked_cmpxchg16b, l1_hit ×2"),
    "alloc_from_partial": ("___slab_alloc: get_partial_node() under list_lock, extra slabs to the cpu partial list",
                           ALLOC_FIRST + "function_call, list_lock (spin_lock_irqsave_pair), locked_cmpxchg16b, …"),
    "alloc_slab": ("___slab_alloc: new_slab() from the page allocator",
                   ALLOC_FIRST + "function_call, ½ page_alloc_free, l1_hit per object, irq_save_restore"),
    "free_fastpath": ("do_slab_free: the object's slab is this CPU's cpu slab: push onto c->freelist",
                      FREE_FIRST + "the steps of cpu_slab_free (the table above)"),
    "free_frozen": ("__slab_free to a frozen slab (another CPU's cpu slab): cmpxchg only",
                    FREE_FIRST + "function_call, locked_cmpxchg16b"),
    "free_partial": ("__slab_free to a slab that already has free objects: cmpxchg only",
                     FREE_FIRST + "function_call, locked_cmpxchg16b"),
    "free_cpu_partial": ("__slab_free of a full slab: put_cpu_partial() puts it on this CPU's partial list",
                         FREE_FIRST + "function_call, locked_cmpxchg16b, irq_save_restore, l1_hit"),
    "free_cpu_partial_drain": ("… and the cpu partial list was full: __put_partials() to the node under list_lock",
                               "as free_cpu_partial, plus list_lock and l1_hit per slab moved"),
    "free_list_lock": ("__slab_free of the last object of a slab: list_lock to check or discard it",
                       FREE_FIRST + "function_call, list_lock, locked_cmpxchg16b (, ½ page_alloc_free)"),
}


def io_model(P, kernel=None, **kw):
    """``Program -> Result`` for kmalloc of ``P.object_size`` on ``kernel`` (default ``P.kernel``)."""
    k = kernel or P.kernel
    return lambda prog: slub.run(prog, kernel=k, object_size=P.object_size, ncpu_present=P.machine_cpus, seed=P.seed,
                                 hierarchy=P.hierarchy, clock_ghz=P.clock_ghz, **kw)


def io_steady(P, kernel=None, **over) -> iouring.SteadyState:
    """The steady state of the page's workload (``over`` replaces workload fields) on ``kernel``."""
    return iouring.steady_state(io_model(P, kernel), adapter.io_uring(P, **over))


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


#: The sheaf_capacity of Dave Chinner's proposed iomap_dio cache, which the thread's IOPS runs used (the
#: IOPS chapter's setup holds it).
THREAD_SHEAF_CAPACITY = Setup().sheaf_capacity
KMALLOC_619, SHEAF_619, KMALLOC_70 = ("6.19 kmalloc", f"6.19 dedicated cache, sheaf_capacity {THREAD_SHEAF_CAPACITY}",
                                      "7.0 kmalloc (sheaves)")
#: The three caches of the thread's io_uring comparison that exist on 6.19 and 7.0 (label -> slub.run arguments).
IO_CACHES = {
    KMALLOC_619: dict(kernel="6.19"),
    SHEAF_619: dict(kernel="6.19", kmalloc=False, sheaf_capacity=THREAD_SHEAF_CAPACITY),
    KMALLOC_70: dict(kernel="7.0"),
}


def compare_caches(P, caches=None) -> pd.DataFrame:
    """The page's io_uring workload (base work included) through each cache: allocator cycles per IO
    (steady state), the share of frees served on a fast path (the cpu slab's, or a sheaf with room) and
    the rest."""
    cfg = adapter.io_uring(P)
    rows = []
    for label, kw in (caches or IO_CACHES).items():
        st = iouring.steady_state(lambda p, kw=kw: slub.run(p, object_size=P.object_size, ncpu_present=P.machine_cpus,
                                                            seed=P.seed, hierarchy=P.hierarchy, clock_ghz=P.clock_ghz,
                                                            **kw), cfg)
        fast = sum(st.paths.get(k, (0, 0))[0] for k in FAST_FREES) / st.ios
        rows.append({"cache": label, "cycles per IO": st.cycles_per_io, "free fast path": fast,
                     "slow or bypass frees": 1 - fast})
    return pd.DataFrame(rows).set_index("cache")


# ------------------------------------------------------------------------------------------------
# The chapter's sections: one function each, returning what the prose pastes


@dataclass(frozen=True)
class Setting:
    """The cache the page's object lands in, its geometry, and the thread's 6.19 figures."""

    g_name: Md
    g_req: int
    g_cpus: int
    g_order: int
    g_objs: int
    g_cp_objs: int
    g_cp_slabs: int
    g_minp: int
    g_kernel: Md
    t_pcpu: float
    t_kmalloc: float
    t_sheaf: float
    qd: int
    _geo: object = None


def setting(P) -> Setting:
    geo = kconfig.cache_geometry(P.object_size, P.machine_cpus, P.kernel)
    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    return Setting(Md(f"`{geo.name}`"), P.object_size, P.machine_cpus, geo.order, geo.objs_per_slab, geo.cpu_partial,
                   geo.cpu_partial_slabs, geo.min_partial, Md(f"`{P.kernel}`"), f[("6.19", "per-CPU list")],
                   f[("6.19", "kmalloc")], f[("6.19", "sheaf-256")], P.queue_depth, geo)


def page_facts(P) -> _steps.Facts:
    """The step facts of the page's kmalloc cache on ``P.kernel``, with a distribution kernel's hook
    switches (the SLUB model's own, :func:`allocsim.pages.costing.slub_facts`)."""
    return costing.slub_facts(P.kernel, P.object_size, True, ncpu=P.machine_cpus)


def step_table(P) -> pd.DataFrame:
    """Every step of one ``kmalloc()`` and one ``kfree()`` on the cpu slab's fast path of the page's cache."""
    return costing.slub_step_table(page_facts(P))


@dataclass(frozen=True)
class PathCosts:
    """What the model charges the paths the prose names, in cycles (``nan``: the run did not take it):
    the fast paths' step sums and their parts, the primitives of the slow paths, and the slow paths as
    the run charged them."""

    c_fast: float  # alloc_fastpath per call in the run (= c_alloc_fast)
    c_alloc_fast: float  # kmalloc_entry + slab_alloc_hooks + cpu_slab_alloc
    c_free_fast: float  # kfree_entry + slab_free_hooks + cpu_slab_free
    c_alloc_entry: float  # kmalloc_entry + slab_alloc_hooks
    c_free_entry: float  # kfree_entry + slab_free_hooks
    c_cs_alloc: float  # cpu_slab_alloc alone
    c_cs_free: float
    c_pcpu: float  # the this_cpu_try_cmpxchg128 instruction (percpu_cmpxchg16b)
    c_locked: float
    c_call: float
    c_irq: float
    c_free_partial: float
    c_cpu_partial_alloc: float
    c_free_cpu_partial: float
    hooks_on: Md  # the hook switches on, as hooks.yaml names them


def path_costs(pt: pd.DataFrame, P) -> PathCosts:
    """From :func:`path_table` of the page's run, the step sums of the page's cache and the cost table."""
    cyc = pt.set_index("path")["cycles/call"]
    c = _costs.load()
    f = page_facts(P)
    a, fr = costing.slub_direction(f, "alloc"), costing.slub_direction(f, "free")
    nan = float("nan")
    return PathCosts(cyc.get("alloc_fastpath", a.total), a.total, fr.total, a.entry + a.hooks, fr.entry + fr.hooks,
                     a.allocator, fr.allocator, c.cycles("percpu_cmpxchg16b"), c.cycles("locked_cmpxchg16b"),
                     c.cycles("function_call"), c.cycles("irq_save_restore"), cyc.get("free_partial", nan),
                     cyc.get("alloc_cpu_partial", nan), cyc.get("free_cpu_partial", nan),
                     Md(", ".join(f"`{k}`" for k, v in asdict(f.hooks).items() if v)))


def path_rows(pt: pd.DataFrame) -> pd.DataFrame:
    """:func:`path_table` as the page shows it: what the kernel does with the primitives charged."""
    what = pt["what the kernel does"] + " (" + pt["primitives charged"] + ")"
    return pd.DataFrame({"path": pt["path"], "what the kernel does (primitives charged)": what,
                         "calls per IO": pt["per IO"], "cycles per call": pt["cycles/call"],
                         "cycles per IO": pt["cycles/IO"]})


@dataclass(frozen=True)
class Loop:
    """The io_uring loop on the page's cache: the window measured and the fast/slow split."""

    w_first: int
    w_end: int
    sb: int
    cb: int
    free_fast: float
    alloc_fast: float
    cyc_io: float
    cyc_ideal: float
    cyc_extra: float
    ns_extra: float
    ghz: float
    free_partial_share: float
    free_cpu_partial_share: float
    slow_free_share: float
    slow_cycles_share: float


def loop(P, st: iouring.SteadyState, pt: pd.DataFrame) -> Loop:
    cfg = adapter.io_uring(P)
    first, end = iouring.steady_window(cfg)
    sp = split(st)
    f = page_facts(P)
    ideal = costing.slub_direction(f, "alloc").total + costing.slub_direction(f, "free").total
    per = pt.set_index("path")["per IO"]
    return Loop(first, end, cfg.submit_batch, cfg.complete_batch, 100 * sp["free fast share"],
                100 * sp["alloc fast share"], sp["cycles per IO"], ideal, sp["cycles per IO"] - ideal,
                (sp["cycles per IO"] - ideal) / P.clock_ghz, P.clock_ghz, 100 * per.get("free_partial", 0.0),
                100 * per.get("free_cpu_partial", 0.0), 100 * (1 - sp["free fast share"]),
                100 * (1 - sp["fast cycles per IO"] / sp["cycles per IO"]))


@dataclass(frozen=True)
class Cliff:
    """Where the free fast path falls off as the queue deepens (in-order completions): the two
    neighbouring depths of the sweep with the largest drop in the share of fast frees — the same
    computation marks the band on the chart — and what each side looks like."""

    qd_shallow_max: int
    qd_shallow_fast: float
    qd_deep_min: int
    qd_deep_fast_lo: float
    qd_deep_fast_hi: float
    qd_deep_cyc_lo: float
    qd_deep_cyc_hi: float
    rnd_deep_fast: float
    fifo_deep_fast: float
    qd_max: int
    cliff_slabs_lo: float
    cliff_slabs_hi: float


def cliff(qd: pd.DataFrame, objs_per_slab: int, order: str = "fifo") -> Cliff:
    """From :func:`qd_sweep` (both orders)."""
    fifo = qd[qd["completion order"] == order].set_index("queue depth").sort_index()
    rnd = qd[qd["completion order"] != order].set_index("queue depth").sort_index()
    share = fifo["free fast share"].to_numpy()
    if len(share) < 2:
        raise ValueError("the queue-depth sweep needs at least two depths to place a cliff")
    drops = share[:-1] - share[1:]
    i = int(drops.argmax())
    last, first = int(fifo.index[i]), int(fifo.index[i + 1])
    shallow, deep = fifo[fifo.index <= last], fifo[fifo.index >= first]
    deepest = int(fifo.index.max())
    return Cliff(last, 100 * shallow["free fast share"].min(), first, 100 * deep["free fast share"].min(),
                 100 * deep["free fast share"].max(), deep["cycles per IO"].min(), deep["cycles per IO"].max(),
                 100 * rnd["free fast share"].loc[rnd.index.max()] if len(rnd) else float("nan"),
                 100 * fifo["free fast share"].loc[deepest], deepest, last / objs_per_slab, first / objs_per_slab)


@dataclass(frozen=True)
class Thread619:
    """The thread's 6.19 kmalloc vs sheaf-256 difference next to the models' on the page's workload."""

    t_ns_diff: float
    gap_cycles: int
    m_kmalloc: float
    m_sheaf: float
    sheaf_cap: int
    m_ns_diff: float
    m_kmalloc_70: float
    m_ns_diff_abs: float = 0.0
    m_diff_word: Md = Md("less")  # "less" when the sheaves spend less than kmalloc, else "more"
    m_fast_kmalloc: float = 0.0  # one allocation and one free on the cpu slab's fast paths (step sums)
    m_fast_sheaf: float = 0.0  # … on sheaf hits of the dedicated cache
    m_where: Md = Md("")  # where the 6.19 difference comes from, in words (:func:`where_words`)


def where_words(fast_kmalloc: float, fast_sheaf: float, kmalloc: float, sheaf: float) -> str:
    """Where the 6.19 difference between kmalloc and the dedicated cache comes from, given the fast-path pairs
    (step sums) and the cycles per IO of the run."""
    if fast_kmalloc < fast_sheaf and kmalloc > sheaf:
        return (f"on their fast paths the cpu slab is the cheaper of the two ({fast_kmalloc:.0f} cycles per allocation "
                f"and free against {fast_sheaf:.0f} for sheaf hits), so the whole difference, and more, is the frees "
                "that miss the cpu slab")
    if kmalloc > sheaf:
        return (f"the fast paths ({fast_kmalloc:.0f} cycles per allocation and free on the cpu slab, {fast_sheaf:.0f} on "
                "sheaf hits) and the frees that miss the cpu slab")
    return (f"the fast paths: {fast_kmalloc:.0f} cycles per allocation and free on the cpu slab against "
            f"{fast_sheaf:.0f} on sheaf hits, which the frees that miss the cpu slab do not make up for")


def thread_619(P, cmp: pd.DataFrame) -> Thread619:
    """From :func:`compare_caches` of the page."""
    f = thread.iops_figures().set_index(["kernel", "allocator"])["ns_per_io"]
    k, s = cmp.loc[KMALLOC_619, "cycles per IO"], cmp.loc[SHEAF_619, "cycles per IO"]
    pair = lambda x: costing.slub_direction(x, "alloc").total + costing.slub_direction(x, "free").total  # noqa: E731
    fk = pair(costing.slub_facts("6.19", P.object_size, True, ncpu=P.machine_cpus))
    fs = pair(costing.slub_facts("6.19", P.object_size, False, THREAD_SHEAF_CAPACITY, ncpu=P.machine_cpus))
    return Thread619(f[("6.19", "kmalloc")] - f[("6.19", "sheaf-256")], adapter.io_uring(P).submit_gap, k, s,
                     THREAD_SHEAF_CAPACITY, (k - s) / P.clock_ghz, cmp.loc[KMALLOC_70, "cycles per IO"],
                     abs(k - s) / P.clock_ghz, Md("less" if k >= s else "more"), fk, fs, Md(where_words(fk, fs, k, s)))


# ------------------------------------------------------------------------------------------------
# Charts


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


def qd_chart(df: pd.DataFrame, objs_per_slab: int, edge: Cliff | None = None) -> alt.VConcatChart:
    """Free fast-path share and cycles per IO against queue depth, one line per completion order; a
    dashed rule at one slab's objects and, with ``edge`` (:func:`cliff`), a band where the fast path falls."""
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
    marks = rule
    subtitle = "dashed: objects per slab"
    if edge is not None:
        band = alt.Chart(pd.DataFrame({"a": [edge.qd_shallow_max], "b": [edge.qd_deep_min],
                                       "what": [f"the fast path falls between depth {edge.qd_shallow_max} "
                                                f"and {edge.qd_deep_min}"]})).mark_rect(
            color="#888", opacity=0.15).encode(x="a:Q", x2="b:Q", tooltip=["what:N"])
        marks = band + rule
        subtitle += "; grey band: where the free fast path falls off"
    return alt.vconcat(share + marks, cyc + marks).properties(
        title=alt.Title("6.19 kmalloc under the io_uring loop", subtitle=subtitle))


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

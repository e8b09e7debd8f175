"""Tables, charts and glue for chapter 4 ("Sheaves and the barn", slug ``sheaves``).

The arithmetic is :mod:`allocsim.analysis.microbench` (sweeps, the cliff, one dataclass per section) and
the claims are :func:`allocsim.analysis.claims.micro_claims` — the book's one evaluator; this module turns
their results into what the page shows and glues their fields by name."""

from __future__ import annotations

import altair as alt
import pandas as pd

from allocsim.analysis import claims
from allocsim.analysis import microbench as mb
from allocsim.facts import costs as _costs
from allocsim.facts import kconfig
from allocsim.facts import thread
from allocsim.kernel import barn
from allocsim.kernel import sheaves
from allocsim.pages import charts
from allocsim.pages.diagram import box_diagram
from allocsim.pages.glue import glue, glue_all


def micro_setup(P) -> claims.MicroSetup:
    """The microbenchmark setup of the page's parameters ``P`` (the thread range of "a multithreaded
    environment" is the book's one range, :data:`allocsim.analysis.claims.MULTI_THREADS`)."""
    return claims.MicroSetup(object_size=P.object_size, capacity=P.capacity, k_small=P.k_small, k_large=P.k_large,
                             free_order=P.free_order, machine_cpus=P.machine_cpus,
                             cpus_per_node=P.cpus_per_node or None, seed=P.seed).validate()


def _kw(P) -> dict:
    return dict(object_size=P.object_size, free_order=P.free_order, machine_cpus=P.machine_cpus,
                cpus_per_node=P.cpus_per_node or None, seed=P.seed)


def threads_sweep(P, kernel: str | None = None) -> pd.DataFrame:
    """:func:`allocsim.analysis.microbench.threads_sweep` for the page (K = ``P.k_large``)."""
    return mb.threads_sweep(kernel or P.kernel, P.k_large, P.capacity, **_kw(P))


def heat_sweep(P, threads: int = 1, ks=None, caps=None) -> pd.DataFrame:
    """:func:`allocsim.analysis.microbench.heat_sweep` for the page's kernel and setup."""
    return mb.heat_sweep(P.kernel, threads, ks, caps, **_kw(P))


def nodes_words(cpus_per_node: int) -> str:
    """How the page's CPUs are grouped into NUMA nodes (each node has its own barn and partial list)."""
    return "on one node" if not cpus_per_node else f"on nodes of {cpus_per_node} CPUs, each with its own barn"


def barn_words(threads: int, cpus_per_node: int) -> str:
    """``sharing one barn`` or how many barns ``threads`` threads (one per CPU) are spread over."""
    n = 1 if not cpus_per_node else -(-threads // cpus_per_node)
    return "sharing one barn" if n == 1 else f"spread over {n} barns ({cpus_per_node} CPUs per node)"


def glue_setting(P) -> None:
    """The sentences that describe the page's machine, from its parameters."""
    from IPython.display import Markdown

    glue("nodes_words", Markdown(nodes_words(P.cpus_per_node)))
    glue("barn_words", Markdown(barn_words(P.threads, P.cpus_per_node)))


def glue_design(P):
    """The design section's constants; returns the 7.0 geometry of the page's cache."""
    geo = kconfig.cache_geometry(P.object_size, P.machine_cpus, "7.0", kmalloc=False)
    glue_setting(P)
    for key, v in (("cap_default", geo.sheaf_capacity), ("max_full", barn.MAX_FULL_SHEAVES),
                   ("max_empty", barn.MAX_EMPTY_SHEAVES), ("batch_max", sheaves.PCS_BATCH_MAX), ("obj_size", P.object_size)):
        glue(key, v)
    return geo


def glue_capacity(P) -> mb.DefaultCapacity:
    """The default-capacity section: every field of :func:`allocsim.analysis.microbench.default_capacity`,
    the claimed 26 and the sentence on which side of main + spare the two K fall."""
    from IPython.display import Markdown

    dc = mb.default_capacity(P.object_size, P.machine_cpus, P.k_small, P.k_large)
    glue_all(dc, skip=("same_side",))
    glue("same_side", Markdown(mb.same_side_words(dc.same_side)))
    glue("k_small", P.k_small)
    glue("k_large", P.k_large)
    glue("claim26", _claim("default-capacity-26")["value"])
    return dc


def _claim(cid: str) -> dict:
    return thread.claims().set_index("id").loc[cid].to_dict()


#: Chapter 4's glue key for each claim's status.
STATUS_KEYS = {"k32-no-difference": "v_k32", "k128-single": "v_k128_1", "k128-multithread": "v_k128_n",
               "module-10pct": "v_619", "default-capacity-26": "v_26"}


def status_words(row: dict) -> str:
    """A claim's status as the page says it: the status, and for a claim evaluated over a range of
    thread counts where it holds (``partly reproduced (in the interval at 16 threads)``)."""
    return claims.status_phrase(row["status"]) + (f" ({row['note']})" if row.get("note") else "")


def claims_table(P, micro=None) -> pd.DataFrame:
    """The chapter's claims for the page's setup — :func:`allocsim.analysis.claims.micro_claims`, indexed
    by claim id, with the claims' labels (their ``quantity`` in ``data/thread/claims.yaml``) and a
    ``verdict`` column (:func:`status_words`)."""
    df = claims.micro_claims(micro or micro_setup(P))
    df["verdict"] = [status_words(r) for r in df.to_dict("records")]
    return df.set_index("id")


def glue_claims(P, cl: pd.DataFrame, sweep: pd.DataFrame) -> None:
    """The microbenchmark section: statuses, modelled values, the claimed figures, the rounds."""
    from IPython.display import Markdown

    for cid, key in STATUS_KEYS.items():
        glue(key, Markdown(cl.loc[cid, "verdict"]))
        glue(f"status_{cid}", cl.loc[cid, "status"])  # the same key in chapter 5 (tests/test_consistency.py)
    v = cl["value"]
    mt = _claim("k128-multithread")
    inside = mb.threads_in_range(sweep, mt["low"], mt["high"])
    glue("range_threads", Markdown(", ".join(map(str, inside)) if inside else "none of the thread counts swept"))
    glue("m_k32", v["k32-no-difference"])
    glue("m_k128_1", v["k128-single"])
    glue("m_k128_n", micro_setup(P).speedup(P.k_large, P.threads))
    glue("m_619", v["module-10pct"])
    glue("n_threads", P.threads)
    glue("capacity", P.capacity)
    glue("order", Markdown(f"`{P.free_order}`"))
    glue("n_reproduced", int((cl["status"] == "reproduced").sum()))
    glue("n_claims", len(cl))
    glue("claim_lo", mt["low"])
    glue("claim_hi", mt["high"])
    glue("claim12", _claim("k128-single")["value"])
    glue("claim10", _claim("module-10pct")["value"])
    glue("r0", mb.MICRO_ROUNDS[0])
    glue("r1", mb.MICRO_ROUNDS[1])
    glue("multi_threads", Markdown(", ".join(map(str, claims.MULTI_THREADS))))


def quotes_table(cl: pd.DataFrame) -> pd.DataFrame:
    """The claims in the thread's words, each under its label."""
    return cl[["label", "quote", "claimed"]].rename(columns={"label": "claim"}).reset_index(drop=True)


def results_table(cl: pd.DataFrame) -> pd.DataFrame:
    """What the model gives for each claim, under its label."""
    return cl[["label", "setup", "modelled", "rule", "verdict"]].rename(columns={"label": "claim"}).reset_index(drop=True)


def glue_heat(heat1: pd.DataFrame, heatn: pd.DataFrame) -> None:
    glue_all(mb.cliff_summary(heat1))
    glue_all(mb.heat_extremes(heatn))
    glue("heat_points", len(heat1))
    glue("n_k", heat1["K"].nunique())
    glue("n_cap", heat1["requested capacity"].nunique())


def glue_contention(P, sweep: pd.DataFrame) -> mb.Contention:
    from IPython.display import Markdown

    c = mb.contention(sweep, P.k_large, _costs.load())
    glue_all(c, skip=("flush_from",))
    glue("flush_from", Markdown(mb.flush_words(c.flush_from)))
    return c


def glue_619(P) -> mb.Gap619:
    g = mb.gap_619(P.object_size, P.capacity, P.k_small, P.k_large, float(_claim("module-10pct")["value"]),
                   _costs.load(), **{k: v for k, v in _kw(P).items() if k != "object_size"})
    glue_all(g)
    glue("objs619", kconfig.cache_geometry(P.object_size, P.machine_cpus, "6.19", kmalloc=False).objs_per_slab)
    return g


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
    """Bonwick & Adams, "Magazines and Vmem" (USENIX 2001, §3) next to SLUB sheaves (v7.0 ``mm/slub.c``:
    ``struct slub_percpu_sheaves``, ``struct node_barn``, ``barn_replace_full_sheaf()``)."""
    return pd.DataFrame([
        {"Bonwick & Adams 2001": "magazine (M rounds, a stack)", "SLUB sheaves": "sheaf (sheaf_capacity objects, a stack)"},
        {"Bonwick & Adams 2001": "loaded magazine", "SLUB sheaves": "pcs->main"},
        {"Bonwick & Adams 2001": "previous magazine", "SLUB sheaves": "pcs->spare"},
        {"Bonwick & Adams 2001": "depot (per cache), depot lock", "SLUB sheaves": "barn (per NUMA node per cache), barn spinlock"},
        {"Bonwick & Adams 2001": "depot tracks a working set, frees excess under pressure",
         "SLUB sheaves": f"barn bounded: MAX_FULL_SHEAVES = {barn.MAX_FULL_SHEAVES} when trading a full sheaf"},
        {"Bonwick & Adams 2001": "magazine size grows with depot contention",
         "SLUB sheaves": "capacity fixed at cache creation (7.0 default or kmem_cache_args.sheaf_capacity)"},
        {"Bonwick & Adams 2001": "per-CPU locks", "SLUB sheaves": "local_trylock (preempt_disable + a flag; fails in an interrupt that hit a holder)"},
    ])


def heat_chart(df: pd.DataFrame, title: str) -> alt.LayerChart:
    """Cycles per pair over K × capacity, coloured by the cycles above the cheapest point of the map on
    a square-root scale (so the first few cycles of barn traffic show, not only the worst corner), with
    the K = 2 × capacity cells marked by outlined diamonds."""
    d = df.copy()
    floor = float(d["cycles"].min())
    d["extra"] = d["cycles"] - floor
    ks = sorted(d["K"].unique())
    heat = alt.Chart(d).mark_rect().encode(
        x=alt.X("K:O", title=charts.axis("K, objects allocated then freed per round"), sort=ks),
        y=alt.Y("capacity:O", title=charts.axis("sheaf capacity", "objects"), sort="descending"),
        color=alt.Color("extra:Q", title=[f"cycles per pair", f"above {floor:.0f}"],
                        scale=alt.Scale(scheme="inferno", type="sqrt", reverse=True)),
        tooltip=[alt.Tooltip("K:O"), alt.Tooltip("capacity:O"), alt.Tooltip("cycles:Q", format=".1f"),
                 alt.Tooltip("barn:Q", title="barn lock per pair", format=".3f"),
                 alt.Tooltip("slab objects:Q", title="objects to/from slabs per pair", format=".3f"),
                 alt.Tooltip("K / capacity:Q", format=".2f")])
    line = []
    for cap in sorted(d["capacity"].unique()):
        k2 = min(ks, key=lambda k: abs(k - 2 * cap))
        line.append({"K": k2, "capacity": cap, "what": "K ≈ 2 × capacity (main + spare)"})
    mark = alt.Chart(pd.DataFrame(line)).mark_point(shape="diamond", filled=True, fill="#ffffff", stroke="#00a0e0",
                                                    strokeWidth=2.5, size=90, opacity=1).encode(
        x=alt.X("K:O", sort=ks), y=alt.Y("capacity:O", sort="descending"), tooltip=["what:N", "K:O", "capacity:O"])
    return (heat + mark).properties(title=alt.Title(title, subtitle="blue-outlined diamonds: K = 2 × capacity"),
                                    width=charts.WIDTH, height=360)


def threads_chart(df: pd.DataFrame, k: int, cpus_per_node: int = 0) -> alt.VConcatChart:
    caches = list(dict.fromkeys(df["cache"]))  # default first, then the explicit capacity
    base = alt.Chart(df).encode(
        x=alt.X("threads:Q", title=charts.axis(f"threads (one per CPU, {nodes_words(cpus_per_node).split(',')[0].removeprefix('on ')})")),
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
    return alt.vconcat(cyc, wait, slab).properties(title=f"As threads grow (K = {k})")

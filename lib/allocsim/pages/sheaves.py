"""Tables, charts and glue for chapter 4 ("Sheaves and the barn", slug ``sheaves``).

The arithmetic is :mod:`allocsim.analysis.microbench` (sweeps, the cliff, one dataclass per section) and
the claims are :func:`allocsim.analysis.claims.micro_claims` — the book's one evaluator; this module turns
their results into what the page shows and glues their fields by name."""

from __future__ import annotations

from dataclasses import dataclass

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
from allocsim.pages.glue import Md, glue, glue_all


def micro_setup(P) -> claims.MicroSetup:
    """The microbenchmark setup of the page's parameters ``P`` (the thread range of "a multithreaded
    environment" is the book's one range, :data:`allocsim.analysis.claims.MULTI_THREADS`)."""
    return claims.MicroSetup(object_size=P.object_size, capacity=P.capacity, k_small=P.k_small, k_large=P.k_large,
                             free_order=P.free_order, machine_cpus=P.machine_cpus,
                             cpus_per_node=P.cpus_per_node or None, seed=P.seed, hierarchy=hierarchy_of(P)).validate()


def hierarchy_of(P) -> bool:
    """The page's ``hierarchy`` parameter (the book's model: on)."""
    return bool(getattr(P, "hierarchy", True))


def _kw(P) -> dict:
    return dict(object_size=P.object_size, free_order=P.free_order, machine_cpus=P.machine_cpus,
                cpus_per_node=P.cpus_per_node or None, seed=P.seed, hierarchy=hierarchy_of(P))


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
    glue("range_words", Markdown(range_words(inside, sorted(sweep["threads"].unique()))))
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


def range_words(inside, swept) -> str:
    """Where the threads sweep's speed-up lies in the claimed range, in words."""
    if inside:
        return f"reached at {', '.join(map(str, inside))} threads of the sweep below"
    return f"not reached at any thread count of the sweep below ({swept[0]} to {swept[-1]})"


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


def saving_words(pct: float) -> str:
    """``save 4.0 %`` or ``cost 12.2 % more time``: a time saving in words, whatever its sign."""
    return f"save {pct:.1f} % of the time" if pct >= 0 else f"cost {-pct:.1f} % more time"


def gap_words(g: mb.Gap619, claim10: float, claim12: float, k_large: int) -> str:
    """The 6.19 gap in words: when the model's sheaves are slower, the validation's miss; when faster, the
    overhead per pair that would shrink the difference to the claim and what it does to the 7.0 claim."""
    if g.s619 >= g.p619:
        return ("The sign is the validation's miss above: the model's sheaf hit costs more than the cpu "
                "slab's fast path, where the sheaves series measured it cheaper on the same comparison, so "
                "the model cannot reproduce any gain of sheaves over the 6.19 cpu slab until that miss is "
                "resolved — no overhead common to both caches turns the model's loss into a gain.")
    return (f"For the model's difference to shrink to {claim10:g}%, every alloc+free pair of the module would "
            f"have to carry about {g.x_overhead:.0f} cycles that the model does not see — the loop, the timer "
            f"reads. The same overhead would shrink the 7.0 single-thread gain for K = {k_large} to "
            f"{g.k128_diluted:.1f}%, against the reported {claim12:g}%.")


def glue_619(P) -> mb.Gap619:
    from IPython.display import Markdown

    g = mb.gap_619(P.object_size, P.capacity, P.k_small, P.k_large, float(_claim("module-10pct")["value"]),
                   _costs.load(), **{k: v for k, v in _kw(P).items() if k != "object_size"})
    glue_all(g)
    glue("m619_words", Markdown(saving_words(g.m619)))
    glue("gap_words", Markdown(gap_words(g, float(_claim("module-10pct")["value"]), float(_claim("k128-single")["value"]), P.k_large)))
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
        color=alt.Color("extra:Q", title=["cycles per pair", f"above {floor:.0f}"],
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
                 alt.Tooltip("line transfers:Q", format=".2f"), alt.Tooltip("speed-up:Q", format=".2f")])
    cyc = base.mark_line(point=True).encode(y=alt.Y("cycles:Q", title=charts.axis("cycles per pair"))).properties(
        title="Cost per alloc+free pair", height=200)
    wait = base.mark_line(point=True).encode(y=alt.Y("wait:Q", title=charts.axis("lock waiting per pair", "cycles"))).properties(
        title="Waiting for the barn lock and list_lock", height=160)
    slab = base.mark_line(point=True).encode(
        y=alt.Y("slab objects:Q", title=charts.axis("objects moved to/from slabs per pair"))).properties(
        title="Objects flushed to and refilled from slabs", height=160)
    panels = [cyc, wait, slab]
    if df["line transfers"].notna().all():  # the memory hierarchy was on
        panels.insert(1, base.mark_line(point=True).encode(
            y=alt.Y("line transfers:Q", title=charts.axis("lines from another core per pair"))).properties(
            title="Cache lines taken from another core's cache", height=160))
    return alt.vconcat(*panels).properties(title=f"As threads grow (K = {k})")


# ------------------------------------------------------------------------------------------------
# Validation: the hot single-object pair against the sheaves series' own measurement

@dataclass(frozen=True)
class Validation:
    """The validation section's numbers (:func:`allocsim.analysis.microbench.single_object_validation`,
    ``hit_totals``, ``break_even``), glued by field name."""

    v_meas: float  # measured "sheaves better by %", batch 1, no memcg
    v_meas_memcg: float
    v_meas10: float  # batch 10, no memcg
    v_model: float  # model, distribution switches, batch 1, no memcg
    v_model_memcg: float
    v_model_off: float  # every switch off
    v_resid: float  # model − measured, pp (distribution switches, batch 1, no memcg)
    v_resid_off: float
    v_resid_lo: float  # the most negative residual over the eight rows (pp)
    v_resid_hi: float
    v_without: float  # model cycles per pair, cpu slab (distribution switches)
    v_with: float  # with sheaves
    v_without_off: float
    v_with_off: float
    v_meas_ratio: float  # measured sheaves pair / cpu-slab pair
    v_memcg_meas: float  # measured: memcg adds % of a cpu-slab pair
    v_memcg_model: float  # model: memcg adds % of a cpu-slab pair (distribution switches)
    v_hit_sheaves: float  # the steps in which the two hits differ: sheaf hit, per pair
    v_hit_cpuslab: float
    v_hit_diff: float
    v_preempt2: float  # per pair: two preempt pairs (sheaves)
    v_cmpxchg2: float  # per pair: two cmpxchg16b (cpu slab)
    v_loads_sheaves: float  # per pair: the sheaf hit's loads (cycles)
    v_loads_cpuslab: float
    v_need: float  # how many cycles cheaper than the cpu-slab pair the measurement makes the sheaf pair (distribution switches)
    v_cmpxchg_need: float  # percpu_cmpxchg16b alone would have to cost this (distribution switches)
    v_cmpxchg_need_off: float
    v_cmpxchg_high: float  # its cited high end
    v_object_size: int
    v_capacity: int
    v_kernel: str
    v_call_lo: float  # the measured whole-call kmem_cache alloc+free pair (cycles), low and high
    v_call_hi: float


def validation(P):
    """(table, break-even table) of the page's validation: :func:`allocsim.analysis.microbench.single_object_validation`
    on ``P.bench_kernel`` with ``P.bench_object_size``-byte objects, and ``break_even`` for its batch-1
    no-memcg row under both switch settings."""
    v = mb.single_object_validation(P.bench_kernel, P.bench_object_size, hierarchy=hierarchy_of(P))
    m = mb.SHEAVES_V6[0]
    frames = []
    for setting in mb.VALIDATION_HOOKS:
        b = mb.break_even(m.pct, P.bench_kernel, P.bench_object_size, hooks=setting, hierarchy=hierarchy_of(P))
        frames.append(b.set_index("cost")[["value", "low", "high", "needed"]].rename(columns={"needed": f"needed ({setting})"}))
    be = frames[0].join(frames[1][[f"needed ({mb.VALIDATION_HOOKS[1]})"]], how="outer").reset_index()
    return v, be


def _vrow(v: pd.DataFrame, setting: str, batch: int, memcg: bool) -> dict:
    return v[(v["switches"] == setting) & (v["batch"] == batch) & (v["memcg"] == memcg)].iloc[0].to_dict()


def validation_numbers(P, v: pd.DataFrame, be: pd.DataFrame) -> Validation:
    d, dm, o = _vrow(v, "default", 1, False), _vrow(v, "default", 1, True), _vrow(v, "off", 1, False)
    t = _costs.load()
    ht = mb.hit_totals().set_index("allocator")
    steps_all = pd.concat([mb.hit_steps("alloc"), mb.hit_steps("free")])
    loads = steps_all[steps_all["kind"] == "load"].groupby("allocator")["cycles"].sum()
    cx = be.set_index("cost").loc["percpu_cmpxchg16b"]
    need = d["measured %"] / 100.0 * d["model without"]  # W − S that makes S = (1 − p) W with W as modelled
    return Validation(
        d["measured %"], dm["measured %"], _vrow(v, "default", 10, False)["measured %"], d["model %"], dm["model %"],
        o["model %"], d["residual pp"], o["residual pp"], float(v["residual pp"].min()), float(v["residual pp"].max()),
        d["model without"], d["model with"], o["model without"], o["model with"], d["measured ratio"],
        (dm["measured without"] / d["measured without"] - 1) * 100, (dm["model without"] / d["model without"] - 1) * 100,
        float(ht.loc["sheaves", "pair"]), float(ht.loc["cpu slab", "pair"]),
        float(ht.loc["sheaves", "pair"] - ht.loc["cpu slab", "pair"]),
        2 * t.cycles("preempt_pair"), 2 * t.cycles("percpu_cmpxchg16b"),
        float(loads.get("sheaves", 0.0)), float(loads.get("cpu slab", 0.0)), need,
        float(cx["needed (default)"]), float(cx["needed (off)"]), float(t.rows["percpu_cmpxchg16b"]["high"]),
        int(P.bench_object_size), mb.SHEAVES_V6_CAPACITY, P.bench_kernel, *map(float, mb.WHOLE_CALL_PAIR))


def glue_validation(P, v: pd.DataFrame, be: pd.DataFrame) -> Validation:
    from IPython.display import Markdown

    n = glue_all(validation_numbers(P, v, be))
    glue("v_source", Markdown(f"“{mb.SHEAVES_V6_SOURCE.split(chr(39))[1]}”"))
    glue("v_sign", Markdown(slower_words(n.v_model)))
    glue("v_can", Markdown(can_words(be)))
    return n


def can_words(be: pd.DataFrame) -> str:
    """Which cost rows of a break-even table could alone reproduce the measurement with a value inside
    their cited range (under the distribution switches), as the start of a sentence."""
    col = "needed (default)"
    ok = [r["cost"] for r in be.to_dict("records") if r[col] == r[col] and r["low"] <= r[col] <= r["high"]]
    if not ok:
        return "No single row can within its cited range"
    names = " and ".join(f"`{k}`" for k in ok)
    return f"Only {names} can" if len(ok) < len(be) else f"Every row ({names}) can"


def slower_words(model_pct: float) -> str:
    """How the model's sheaves compare on the hot pair, in words."""
    if model_pct < 0:
        return f"**slower** than the cpu slab, by {-model_pct:.1f} %"
    return f"faster than the cpu slab, by {model_pct:.1f} %"


def validation_table(v: pd.DataFrame) -> pd.DataFrame:
    """The validation rows as the page shows them."""
    return pd.DataFrame({
        "switches": v["switches"].map({"default": "distribution defaults", "off": "all off"}),
        "benchmark": ["batch " + str(b) + (", memcg" if m else ", no memcg") for b, m in zip(v["batch"], v["memcg"])],
        "measured: sheaves better by": v["measured %"].map("{:.1f} %".format),
        "model: cycles per pair without → with": [f"{a:.1f} → {b:.1f}" for a, b in zip(v["model without"], v["model with"])],
        "model: sheaves better by": v["model %"].map("{:+.1f} %".format),
        "residual (model − measured)": v["residual pp"].map("{:+.1f} pp".format),
    })


def break_even_table(be: pd.DataFrame) -> pd.DataFrame:
    """What one cost row alone would have to cost for the model to give the measured 17.2 %."""
    def need(x):
        return "no value moves it" if pd.isna(x) else ("impossible (< 0)" if x < 0 else f"{x:.1f}")
    cols = [c for c in be.columns if c.startswith("needed")]
    out = pd.DataFrame({"cost row": "`" + be["cost"] + "`", "cited value (range)": [
        f"{a:g} ({lo:g}–{hi:g})" for a, lo, hi in zip(be["value"], be["low"], be["high"])]})
    for c in cols:
        out[c.replace("needed", "would need")] = be[c].map(need)
    return out


def _short(step: str) -> str:
    """A step's code without its trailing remark in parentheses (the full text is in :func:`hit_code_table`)."""
    i = step.find(" (")
    return step[:i] if i > 0 and step.endswith(")") else step


def _charge(cost: str, n: float, cycles: float) -> str:
    if cost == "—":
        return "store: 0"
    if n == 0:
        return f"{cost} × 0: 0"
    return f"{cost}{f' × {n:g}' if n != 1 else ''}: {cycles:g}"


def hit_side_by_side(side: str) -> pd.DataFrame:
    """The steps in which a sheaf hit and the cpu slab's fast path differ on one ``side`` (alloc or free),
    row by row next to each other: each cell the step's code (without its remark) and its charge — the
    cost row and cycles (a store is charged nothing) — and a last row with each side's total."""
    f = mb.hit_steps(side)
    cols = {}
    for alloc, label in (("sheaves", "sheaf hit"), ("cpu slab", "cpu slab fast path")):
        g = f[f["allocator"] == alloc]
        cols[label] = [f"`{_short(st) if n else st}` — {_charge(c, n, y)}"  # a step charged nothing keeps its reason
                       for st, c, n, y in zip(g["step"], g["cost"], g["times"], g["cycles"])]
        cols[label].append(f"**total: {g['cycles'].sum():g}**")
    n = max(len(c) for c in cols.values())
    return pd.DataFrame({k: c[:-1] + [""] * (n - len(c)) + c[-1:] for k, c in cols.items()})


def hit_code_table() -> pd.DataFrame:
    """Every differing step with the kernel code it is read off (for the reader auditing beside the source):
    the step (side, allocator and code) with where in the kernel it is, and its charge (two columns, so the
    table reads at a phone's width)."""
    f = pd.concat([mb.hit_steps("alloc").assign(side="alloc"), mb.hit_steps("free").assign(side="free")])
    return pd.DataFrame({"step — where in the kernel": [f"{sd}, {al}: `{st}` — {code}" for sd, al, st, code in
                                                       zip(f["side"], f["allocator"], f["step"], f["kernel code"])],
                         "charge": [_charge(c, n, y) for c, n, y in zip(f["cost"], f["times"], f["cycles"])]})


def validation_chart(v: pd.DataFrame) -> alt.LayerChart:
    """Measured vs modelled "sheaves better by %" for each benchmark row, the model under both switch
    settings; a rule at 0 (left of it the model's sheaves are slower)."""
    rows = []
    for r in v.to_dict("records"):
        bench = f"batch {r['batch']}, {'memcg' if r['memcg'] else 'no memcg'}"
        rows.append({"benchmark": bench, "what": f"model, switches {'at defaults' if r['switches'] == 'default' else 'all off'}",
                     "sheaves better by %": r["model %"], "residual pp": r["residual pp"]})
        if r["switches"] == "default":
            rows.append({"benchmark": bench, "what": "measured", "sheaves better by %": r["measured %"],
                         "residual pp": 0.0})
    d = pd.DataFrame(rows)
    order = list(dict.fromkeys(d["benchmark"]))
    kinds = ["measured", "model, switches at defaults", "model, switches all off"]
    base = alt.Chart(d).encode(
        y=alt.Y("benchmark:N", sort=order, title=None, axis=alt.Axis(labelLimit=160)),
        x=alt.X("sheaves better by %:Q", title=charts.axis("sheaves better by", "%"), axis=alt.Axis(tickCount=8)),
        color=alt.Color("what:N", title=None, scale=alt.Scale(domain=kinds, range=[charts.ACCENT, charts.COLORS["sheaf-256"], "#56B4E9"]),
                        legend=alt.Legend(labelLimit=220, direction="vertical")),
        shape=alt.Shape("what:N", title=None, scale=alt.Scale(domain=kinds, range=["diamond", "circle", "square"])),
        tooltip=["benchmark:N", "what:N", alt.Tooltip("sheaves better by %:Q", format="+.1f"),
                 alt.Tooltip("residual pp:Q", format="+.1f")])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#888", strokeDash=[4, 3]).encode(x="x:Q")
    return (zero + base.mark_point(filled=True, size=110, opacity=0.9)).properties(
        title=alt.Title("Sheaves vs the cpu slab, hot pair",
                        subtitle=["measured (sheaves v6, Ryzen 7 5700)", "and modelled; left of 0: sheaves slower"]),
        width=charts.WIDTH, height=200)


# ------------------------------------------------------------------------------------------------
# Free order and batch size (the memory hierarchy)

ORDER_WORDS = {"fifo": "FIFO", "lifo": "LIFO", "random": "random"}


def order_sweep(P, ks=None, caps=None) -> pd.DataFrame:
    """:func:`allocsim.analysis.microbench.order_sweep` for the page: its kernel, object size and machine,
    one thread, with the page's ``hierarchy`` switch."""
    kw = {k: v for k, v in _kw(P).items() if k != "free_order"}
    return mb.order_sweep(P.kernel, ks, caps, **kw)


def order_tables(P, ks=None):
    """(on, off): :func:`allocsim.analysis.microbench.order_table` at the page's default capacity for K =
    1, 10 and ``P.k_large``, with the hierarchy on and off."""
    ks = ks or (1, 10, P.k_large)
    kw = {k: v for k, v in _kw(P).items() if k not in ("free_order", "hierarchy")}
    return (mb.order_table(P.kernel, ks, None, hierarchy=True, **kw),
            mb.order_table(P.kernel, ks, None, hierarchy=False, **kw))


def order_chart(df: pd.DataFrame, title: str) -> alt.FacetChart:
    """Cycles per pair over K × capacity, one panel per free order, coloured as :func:`heat_chart` (cycles
    above the cheapest point of the whole map, square-root scale), so the panels share one scale."""
    d = df.copy()
    floor = float(d["cycles"].min())
    d["extra"] = d["cycles"] - floor
    d["free order"] = d["order"].map(ORDER_WORDS)
    ks = sorted(d["K"].unique())
    return alt.Chart(d).mark_rect().encode(
        x=alt.X("K:O", title=charts.axis("K, objects per round"), sort=ks),
        y=alt.Y("capacity:O", title=charts.axis("sheaf capacity", "objects"), sort="descending"),
        color=alt.Color("extra:Q", title=["cycles per pair", f"above {floor:.0f}"],
                        scale=alt.Scale(scheme="inferno", type="sqrt", reverse=True)),
        tooltip=[alt.Tooltip("free order:N"), alt.Tooltip("K:O"), alt.Tooltip("capacity:O"),
                 alt.Tooltip("cycles:Q", format=".1f"),
                 alt.Tooltip("from L1:Q", title="L1 accesses per pair", format=".2f"),
                 alt.Tooltip("from L2:Q", title="L2 accesses per pair", format=".2f"),
                 alt.Tooltip("from LLC:Q", title="LLC accesses per pair", format=".2f"),
                 alt.Tooltip("from transfer:Q", title="lines from another core per pair", format=".2f"),
                 alt.Tooltip("from memory:Q", title="memory accesses per pair", format=".2f")],
    ).properties(width=150, height=170).facet(
        column=alt.Column("free order:N", sort=[ORDER_WORDS[o] for o in mb.ORDERS], title=None)).properties(title=title)


def order_source_table(on: pd.DataFrame) -> pd.DataFrame:
    """Where each pair's loads and stores were served, per K and free order (accesses per pair)."""
    out = pd.DataFrame({"K": on["K"], "free order": on["order"].map(ORDER_WORDS),
                        "cycles per pair": on["cycles"].map("{:.1f}".format)})
    for g in mb.SOURCE_GROUPS:
        out[g] = on[f"from {g}"].map("{:.2f}".format)
    return out


def glue_order(P, on: pd.DataFrame, off: pd.DataFrame, sweep: pd.DataFrame) -> mb.OrderEffects:
    """The order section's numbers (:class:`allocsim.analysis.microbench.OrderEffects`) and the sweep's size."""
    e = glue_all(mb.order_effects(on, off))
    glue("o_points", len(sweep))
    glue("o_n_k", sweep["K"].nunique())
    glue("o_n_cap", sweep["requested capacity"].nunique())
    glue("o_kernel", Md(P.kernel))
    ex = mb.heat_extremes(sweep)
    glue("o_worst", ex.heat_worst)
    glue("o_worst_k", ex.heat_worst_k)
    glue("o_worst_order", Md(ORDER_WORDS[sweep.loc[sweep["cycles"].idxmax(), "order"]]))
    glue("o_floor", ex.heat_floor)
    kw = {k: v for k, v in _kw(P).items() if k != "free_order"}
    m = mb.order_table("6.19", (P.k_large,), None, **kw).set_index("order")["cycles"]
    for o in mb.ORDERS:
        glue(f"o619_{o}", float(m[o]))
    return e


def claims_compare(P, cl: pd.DataFrame) -> pd.DataFrame:
    """The microbenchmark claims with the hierarchy on and off (the page's setup otherwise): one row per
    claim with both modelled values and statuses, and whether the status changed."""
    from dataclasses import replace

    ms = micro_setup(P)
    other = claims_table(P, replace(ms, hierarchy=not ms.hierarchy))
    on, off = (cl, other) if ms.hierarchy else (other, cl)
    return pd.DataFrame({"claim": on["label"], "flat model": off["modelled"], "status (flat)": off["status"].map(claims.status_phrase),
                         "with the hierarchy": on["modelled"], "status (hierarchy)": on["status"].map(claims.status_phrase),
                         "changed": on["status"] != off["status"]})


def changed_words(cmp: pd.DataFrame) -> str:
    """Which claims changed status when the hierarchy was switched on, in words."""
    ch = cmp[cmp["changed"]]
    if not len(ch):
        return "No claim changes status"
    parts = [f"“{r['claim']}” goes from {r['status (flat)']} ({r['flat model']}) to {r['status (hierarchy)']} "
             f"({r['with the hierarchy']})" for _, r in ch.iterrows()]
    return ("; ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def glue_compare(cmp: pd.DataFrame) -> None:
    from IPython.display import Markdown

    glue("n_changed", int(cmp["changed"].sum()))
    glue("changed_words", Markdown(changed_words(cmp)))
    r = cmp.loc["module-10pct"]
    glue("m619_flat", Markdown(r["flat model"]))
    glue("m619_hier", Markdown(r["with the hierarchy"]))


def compare_table(cmp: pd.DataFrame) -> pd.DataFrame:
    return cmp.drop(columns=["changed"]).reset_index(drop=True)


@dataclass(frozen=True)
class BulkValidation:
    """Brouer's 2015 per-object cost against batch size beside the model (:func:`allocsim.analysis.microbench.bulk_validation`)."""

    b_k1_meas: float  # measured cycles per pair at batch 1
    b_k1_model: float
    b_last: int  # the largest batch size
    b_last_meas: float  # … measured cycles per pair
    b_last_model: float
    b_ratio_meas: float  # largest batch over batch 1, measured
    b_ratio_model: float  # … model with the hierarchy
    b_ratio_flat: float  # … model without
    b_step_meas_lo: int  # measured: the last batch before the first rise of 20 % or more over batch 1, and the first after
    b_step_meas_hi: int
    b_step_model_lo: int  # the same for the model with the hierarchy
    b_step_model_hi: int
    b_gap_closed: float  # % of the flat model's shortfall in the ratio at the largest batch that the hierarchy closes
    b_cpus: int
    b_object_size: int
    b_objs: int  # objects per slab of the model's cache (calculate_order() for that many CPUs)


def _step(df: pd.DataFrame, col: str) -> tuple[int, int]:
    r = df[col] / df[col].iloc[0]
    i = int((r >= 1.2).idxmax()) if (r >= 1.2).any() else len(df) - 1
    return int(df["bulk"].iloc[max(i - 1, 0)]), int(df["bulk"].iloc[i])


def bulk_numbers(bv: pd.DataFrame, m, kernel: str = "6.19") -> BulkValidation:
    last = bv.iloc[-1]
    rm, rh, rf = last["measured / batch 1"], last["model / batch 1"], last["model flat / batch 1"]
    closed = (rh - rf) / (rm - rf) * 100 if rm != rf else float("nan")
    return BulkValidation(float(bv["measured"].iloc[0]), float(bv["model"].iloc[0]), int(last["bulk"]),
                          float(last["measured"]), float(last["model"]), float(rm), float(rh), float(rf),
                          *_step(bv, "measured"), *_step(bv, "model"), float(closed), int(m.cpus), int(m.object_size),
                          int(kconfig.cache_geometry(m.object_size, m.cpus, kernel, kmalloc=False).objs_per_slab))


def bulk_validation(P):
    """(table, measurement): the page's batch-size validation on ``P.bench_kernel`` (every hook switch off)."""
    from allocsim.facts import published

    m = published.bulk_fallback()
    return mb.bulk_validation(P.bench_kernel, "off", m), m


def glue_bulk(P, bv: pd.DataFrame, m) -> BulkValidation:
    from IPython.display import Markdown

    n = glue_all(bulk_numbers(bv, m, P.bench_kernel))
    glue("b_source", Markdown(f"“{m.title}” ({m.author}, {m.date}, Message-Id `{m.message_id}`)"))
    glue("b_machine", Markdown(m.machine))
    return n


def bulk_table(bv: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"batch": bv["bulk"], "measured, cycles": bv["measured"].map("{:.0f}".format),
                         "measured ÷ batch 1": bv["measured / batch 1"].map("{:.2f}".format),
                         "model with the hierarchy": bv["model"].map("{:.1f}".format),
                         "÷ batch 1": bv["model / batch 1"].map("{:.2f}".format),
                         "flat model ÷ batch 1": bv["model flat / batch 1"].map("{:.2f}".format),
                         "model: accesses beyond L1 per pair": bv["model beyond L1"].map("{:.2f}".format)})


def bulk_chart(bv: pd.DataFrame) -> alt.Chart:
    """Per-pair cost relative to batch 1 against the batch size: measured, the model with and without the hierarchy."""
    rows = []
    for col, what in (("measured / batch 1", "measured (Brouer 2015)"), ("model / batch 1", "model, hierarchy on"),
                      ("model flat / batch 1", "model, hierarchy off")):
        rows += [{"batch": b, "relative to batch 1": v, "what": what} for b, v in zip(bv["bulk"], bv[col])]
    d = pd.DataFrame(rows)
    return alt.Chart(d).mark_line(point=True).encode(
        x=alt.X("batch:Q", scale=alt.Scale(type="log"), title=charts.axis("objects allocated, then freed (FIFO)")),
        y=alt.Y("relative to batch 1:Q", title=charts.axis("cycles per pair ÷ batch 1")),
        color=alt.Color("what:N", title=None, legend=alt.Legend(orient="bottom", direction="vertical")),
        tooltip=["what:N", "batch:Q", alt.Tooltip("relative to batch 1:Q", format=".2f")],
    ).properties(title="Per-object cost against batch size, cpu slab", width=charts.WIDTH, height=220)

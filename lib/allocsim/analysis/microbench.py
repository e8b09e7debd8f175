"""The thread's kernel-module microbenchmark run through the SLUB models: per alloc+free pair, in the steady state.

Chapter 4 shows it and :mod:`allocsim.analysis.claims` evaluates the thread's microbenchmark claims with
it (one home, so both read the same numbers). The second half holds chapter 4's arithmetic: the threads
and heat-map sweeps, the cliff, and one small dataclass per section whose fields the chapter glues.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocsim.facts import kconfig
from allocsim.facts.errors import AllocsimError
from allocsim.workloads.microbench import microbench as microbench_program
from allocsim.kernel import cache, slub

#: Free paths that put the object straight back without touching a slab list.
FAST_FREES = ("free_fastpath", "free_sheaf", "free_sheaf_spare")


#: Where a load or store's line came from, in the order of the hierarchy's counters
#: (:data:`allocsim.kernel.cache.KINDS`): this core's L1 or L2, its LLC, another core's cache (same LLC,
#: another LLC, another node), memory.
SOURCES = cache.KINDS


#: Rounds of the two runs whose difference is the steady state of the module benchmark.
MICRO_ROUNDS = (20, 60)


def microbench(kernel: str, k: int, threads: int, capacity: int | None, *, object_size: int = 256,
               rounds: tuple[int, int] = MICRO_ROUNDS, free_order: str = "fifo", machine_cpus: int | None = None,
               cpus_per_node: int | None = None, seed: int = 0, costs=None, hooks=None, steps="default",
               slab_account: bool = False, hierarchy=True, clock_ghz: float = 3.0) -> dict:
    """The thread's module benchmark on a dedicated cache (``kmem_cache_create()``, ``kmalloc=False``):
    each of ``threads`` CPUs allocates ``k`` objects then frees them. ``capacity`` ``None`` is the
    kernel's default (7.0: ``calculate_sheaf_capacity()``; 6.19: no sheaves). Steady state per round:
    the difference between runs of ``rounds[1]`` and ``rounds[0]`` rounds. Returns per alloc+free pair
    (one thread's view): ``cycles`` (lock waiting included), ``barn`` (barn lock acquisitions),
    ``wait`` (cycles waiting for the barn lock and list_lock), ``slab objects`` (objects moved between
    sheaves and slabs: refilled + flushed), ``fast frees`` (share of frees on the cpu slab's fast path
    or into a sheaf with room), plus the ``model`` name and effective ``capacity``. ``costs``, ``hooks``,
    ``steps`` and ``slab_account`` are :func:`allocsim.kernel.slub.run`'s (cost model v2: the cost table,
    the hot-path switches, the step file; ``None``/``"default"`` = the book's defaults). ``hierarchy`` and
    ``clock_ghz`` are too: the memory hierarchy of :mod:`allocsim.kernel.memory` (``True``, the book's
    model: the default CPU at ``clock_ghz``; a :class:`allocsim.facts.cpu.Geometry`; ``False``: every load
    an L1 hit), through which batch size, free order and object size change the cost; with it on, ``from
    L1`` … ``from MEM`` (:data:`SOURCES`) count per pair the loads and stores each level served (summed
    over the CPUs: the hierarchy's counters, ``result.extra["hierarchy"]``), NaN when it is off."""
    r0, r1 = rounds
    if not 0 < r0 < r1:
        raise AllocsimError(f"microbench rounds must be two increasing positive counts, not {rounds!r}")
    res = []
    for r in (r0, r1):
        prog = microbench_program(threads, k, r, free_order, seed=seed)
        res.append(slub.run(prog, kernel=kernel, object_size=object_size, sheaf_capacity=capacity, kmalloc=False,
                            ncpu_present=max(threads, machine_cpus or threads), cpus_per_node=cpus_per_node,
                            seed=seed, costs=costs, hooks=hooks, steps=steps, slab_account=slab_account,
                            hierarchy=hierarchy, clock_ghz=clock_ghz))
    a, b = res
    pairs = threads * k * (r1 - r0)
    d = lambda f: (f(b) - f(a)) / pairs
    stat = lambda name: (lambda r: r.stats.get(name, 0))
    return {
        "model": b.model, "capacity": b.extra["geometry"].sheaf_capacity,
        "cycles": d(lambda r: r.cycles),
        "barn": d(lambda r: r.extra["barn_lock_taken"]),
        "wait": d(lambda r: r.lock_wait),
        "barn wait": d(lambda r: r.extra["barn_lock_wait"]),
        "list wait": d(lambda r: r.extra["list_lock_wait"]),
        "transfers": d(lambda r: r.extra["barn_lock_transfers"] + r.extra["list_lock_transfers"]),
        "slab objects": d(lambda r: r.stats.get("sheaf_refill", 0) + r.stats.get("sheaf_flush", 0)),
        "barn_put_fail": d(stat("barn_put_fail")),
        "fast frees": d(lambda r: sum(r.paths.get(k, (0, 0))[0] for k in FAST_FREES)),
        **{f"from {name}": (d(lambda r, i=i: float(r.extra["hierarchy"][:, i].sum())) if hierarchy else float("nan"))
           for i, name in enumerate(SOURCES)},
    }


def improvement(before: float, after: float) -> float:
    """Time saved in % of the slower: the thread's "x% improvement in time spent"."""
    return (before - after) / before * 100.0


# ------------------------------------------------------------------------------------------------
# Chapter 4's arithmetic, one small dataclass per section (the chapter glues their fields by name)



def threads_sweep(kernel: str, k: int, capacity: int, *, threads=(1, 2, 4, 6, 8, 12, 16, 24, 32), object_size: int = 256,
                  free_order: str = "fifo", machine_cpus: int = 64, cpus_per_node: int | None = None,
                  seed: int = 0, hierarchy=True, clock_ghz: float = 3.0) -> pd.DataFrame:
    """Default capacity vs ``capacity`` on ``kernel`` for K = ``k`` as threads grow: cycles, barn traffic,
    lock waiting, objects moved to and from slabs, per alloc+free pair; ``speed-up`` is the default
    cache's cycles over the other's at that thread count."""
    kw = dict(object_size=object_size, free_order=free_order, machine_cpus=max(machine_cpus, max(threads)),
              cpus_per_node=cpus_per_node or None, seed=seed, hierarchy=hierarchy, clock_ghz=clock_ghz)
    rows = []
    for n in threads:
        d = microbench(kernel, k, n, None, **kw)
        e = microbench(kernel, k, n, capacity, **kw)
        for label, r in ((f"default ({d['capacity']})", d), (f"capacity {e['capacity']}", e)):
            rows.append({"threads": n, "cache": label, **{key: r[key] for key in
                         ("cycles", "barn", "wait", "barn wait", "list wait", "transfers", "slab objects", "barn_put_fail")},
                         "line transfers": sources_of(r)["from transfer"], "speed-up": d["cycles"] / e["cycles"]})
    return pd.DataFrame(rows)


def threads_in_range(sweep: pd.DataFrame, low: float, high: float) -> list[int]:
    """The thread counts of a :func:`threads_sweep` whose speed-up lies in ``[low, high]``."""
    sp = sweep.groupby("threads")["speed-up"].first()
    return [int(n) for n, x in sp.items() if low <= x <= high]


def heat_grid(ks=None, caps=None):
    """The 20 × 20 grid of the heat map: K from 8 to 640 (geometric), requested capacity from 28 to 256."""
    ks = ks if ks is not None else sorted({int(round(x)) for x in np.geomspace(8, 640, 20)})
    caps = caps if caps is not None else [int(round(x)) for x in np.linspace(28, 256, 20)]
    return list(ks), list(caps)


def heat_sweep(kernel: str, threads: int = 1, ks=None, caps=None, events_per_point: int = 4096, *, object_size: int = 256,
               free_order: str = "fifo", machine_cpus: int = 64, cpus_per_node: int | None = None,
               seed: int = 0, hierarchy=True, clock_ghz: float = 3.0) -> pd.DataFrame:
    """Cycles per alloc+free pair over K × requested capacity (7.0 ``max()``-es the request with the
    default), for ``threads`` threads; rounds chosen so each point runs about ``events_per_point``
    alloc/free calls per thread in its measured window."""
    ks, caps = heat_grid(ks, caps)
    kw = dict(object_size=object_size, free_order=free_order, machine_cpus=max(machine_cpus, threads),
              cpus_per_node=cpus_per_node or None, seed=seed, hierarchy=hierarchy, clock_ghz=clock_ghz)
    rows = []
    for cap in caps:
        for k in ks:
            r = max(4, events_per_point // (2 * k))
            d = microbench(kernel, k, threads, cap, rounds=(r // 2, r // 2 + r), **kw)
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


#: The free orders of the order map (the program's ``free_order``).
ORDERS = ("fifo", "lifo", "random")
#: The hierarchy's counters grouped as the chapter's table shows them: another core's cache (same LLC,
#: another LLC, another node) is one "transfer" column.
SOURCE_GROUPS = {"L1": ("L1",), "L2": ("L2",), "LLC": ("LLC",), "transfer": ("XSAME", "XLLC", "XNODE"),
                 "memory": ("MEM",)}


def order_grid(ks=None, caps=None):
    """The order map's grid: K from 8 to 512 (doubling) and requested capacities 28 (7.0's default for
    256-byte objects, which the ``max()`` keeps), 64, 128 and 256."""
    return list(ks if ks is not None else (8, 16, 32, 64, 128, 256, 512)), list(caps if caps is not None else (28, 64, 128, 256))


def order_sweep(kernel: str, ks=None, caps=None, orders=ORDERS, threads: int = 1, events_per_point: int = 4096, *,
                object_size: int = 256, machine_cpus: int = 64, cpus_per_node: int | None = None, seed: int = 0,
                hierarchy=True, clock_ghz: float = 3.0) -> pd.DataFrame:
    """Cycles per alloc+free pair over K × free order × requested capacity (:func:`microbench`, rounds as
    in :func:`heat_sweep`), with where each pair's loads and stores were served (``from L1`` … ``from
    memory``, :data:`SOURCE_GROUPS`; NaN with the hierarchy off)."""
    ks, caps = order_grid(ks, caps)
    bad = [o for o in orders if o not in ORDERS]
    if bad or not orders:
        raise AllocsimError(f"order_sweep orders must be drawn from {ORDERS}, not {tuple(orders)!r}")
    kw = dict(object_size=object_size, machine_cpus=max(machine_cpus, threads), cpus_per_node=cpus_per_node or None,
              seed=seed, hierarchy=hierarchy, clock_ghz=clock_ghz)
    rows = []
    for order in orders:
        for cap in caps:
            for k in ks:
                r = max(4, events_per_point // (2 * k))
                d = microbench(kernel, k, threads, cap, rounds=(r // 2, r // 2 + r), free_order=order, **kw)
                rows.append({"order": order, "K": k, "requested capacity": cap, "capacity": d["capacity"],
                             "cycles": d["cycles"], "barn": d["barn"], "slab objects": d["slab objects"],
                             **sources_of(d)})
    return pd.DataFrame(rows)


def sources_of(d: dict) -> dict:
    """A :func:`microbench` result's per-pair accesses grouped by :data:`SOURCE_GROUPS` (``from L1`` …)."""
    return {f"from {g}": float(sum(d[f"from {k}"] for k in kinds)) for g, kinds in SOURCE_GROUPS.items()}


def order_table(kernel: str, ks=(1, 10, 128), capacity: int | None = None, orders=ORDERS, *, object_size: int = 256,
                machine_cpus: int = 64, cpus_per_node: int | None = None, seed: int = 0, hierarchy=True,
                clock_ghz: float = 3.0, rounds: tuple[int, int] = MICRO_ROUNDS) -> pd.DataFrame:
    """One thread, one cache (``capacity`` None: the kernel's default): for each K and free order the cycles
    per pair and where its loads and stores were served (accesses per pair, :func:`sources_of`)."""
    kw = dict(object_size=object_size, machine_cpus=machine_cpus, cpus_per_node=cpus_per_node or None, seed=seed,
              hierarchy=hierarchy, clock_ghz=clock_ghz, rounds=rounds)
    rows = []
    for k in ks:
        for order in orders:
            d = microbench(kernel, int(k), 1, capacity, free_order=order, **kw)
            rows.append({"K": int(k), "order": order, "capacity": d["capacity"], "cycles": d["cycles"], **sources_of(d)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class OrderEffects:
    """The order-and-batch section's numbers (one thread, the page's kernel and default capacity), from an
    :func:`order_table` with the hierarchy on and the same with it off."""

    o_k1: float  # cycles per pair at K = 1 (every order: one object)
    o_small_spread: float  # at the middle K: largest minus smallest cycles over the orders (on)
    o_fifo: float  # at the largest K: FIFO, LIFO, random
    o_lifo: float
    o_random: float
    o_l2_fifo: float  # … accesses per pair served by L2 (or further) at the largest K
    o_l2_lifo: float
    o_l2_random: float
    o_flat: float  # the largest K with the hierarchy off (every order the same)
    o_flat_spread: float  # largest minus smallest over every K and order with the hierarchy off
    o_k_small: int  # the middle K
    o_k_large: int  # the largest K


def order_effects(on: pd.DataFrame, off: pd.DataFrame) -> OrderEffects:
    ks = sorted(on["K"].unique())
    big, mid = ks[-1], ks[len(ks) // 2]
    at = on[on["K"] == big].set_index("order")
    beyond = lambda o: float(at.loc[o, ["from L2", "from LLC", "from transfer", "from memory"]].sum())
    m = on[on["K"] == mid]["cycles"]
    return OrderEffects(float(on[on["K"] == ks[0]]["cycles"].iloc[0]), float(m.max() - m.min()),
                        float(at.loc["fifo", "cycles"]), float(at.loc["lifo", "cycles"]), float(at.loc["random", "cycles"]),
                        beyond("fifo"), beyond("lifo"), beyond("random"),
                        float(off[off["K"] == big]["cycles"].iloc[0]),
                        float(off.groupby("K")["cycles"].agg(lambda c: c.max() - c.min()).max()), int(mid), int(big))


@dataclass(frozen=True)
class DefaultCapacity:
    """7.0's ``calculate_sheaf_capacity()`` for one object size, and which side of main + spare
    (2 × capacity, at the base tier and at the rounded capacity) two round sizes K fall on."""

    cap_size: int  # s->size
    cap_base: int  # the base tier
    cap_bytes: int  # header + one pointer per object of the base
    cap_bucket: int  # the kmalloc bucket those bytes round up to
    cap_final: int  # the capacity that fills the bucket
    cap_header: int
    cap_base2: int
    cap_final2: int
    same_side: bool  # both K on the same side of 2 × base and 2 × final


def default_capacity(object_size: int, machine_cpus: int, k_small: int, k_large: int) -> DefaultCapacity:
    """The default capacity section of chapter 4 (``kconfig.cache_geometry`` of a dedicated 7.0 cache)."""
    geo = kconfig.cache_geometry(object_size, machine_cpus, "7.0", kmalloc=False)
    size, header = geo.size, kconfig.sheaf_header()
    base = kconfig.sheaf_capacity_base(size)
    raw = header + kconfig.pointer_size() * base
    final = kconfig.calculate_sheaf_capacity(size, 0, "7.0")
    same = all((k <= 2 * base) == (k <= 2 * final) for k in (k_small, k_large))
    return DefaultCapacity(size, base, raw, kconfig.kmalloc_size_roundup(raw), final, header, 2 * base, 2 * final, same)


def same_side_words(same: bool) -> str:
    return "on the same side of both" if same else "on different sides of the two"


@dataclass(frozen=True)
class Cliff:
    """Where barn traffic starts in a one-thread heat sweep."""

    cliff_lo: float  # smallest first-K-with-barn-traffic / capacity
    cliff_hi: float
    cliff_n: int  # capacities whose sweep reaches the barn
    cliff_k_before: int  # at the smallest capacity (the default): last K without barn traffic
    cliff_k_after: int  # … and first K with it (0: none in the sweep)


def cliff_summary(heat: pd.DataFrame) -> Cliff:
    c = cliff(heat)
    busy = c.dropna(subset=["first K / capacity"])
    b0 = c.sort_values("capacity").iloc[0]
    after = b0["first K with barn traffic"]
    return Cliff(float(busy["first K / capacity"].min()) if len(busy) else float("nan"),
                 float(busy["first K / capacity"].max()) if len(busy) else float("nan"), int(len(busy)),
                 int(b0["last K without barn traffic"]), int(after) if pd.notna(after) else 0)


@dataclass(frozen=True)
class HeatExtremes:
    heat_floor: float
    heat_worst: float
    heat_worst_k: int
    heat_worst_cap: int


def heat_extremes(heat: pd.DataFrame) -> HeatExtremes:
    w = heat.loc[heat["cycles"].idxmax()]
    return HeatExtremes(float(heat["cycles"].min()), float(w["cycles"]), int(w["K"]), int(w["capacity"]))


@dataclass(frozen=True)
class Contention:
    """Why one thread sees percent and many threads a factor (chapter 4), from a :func:`threads_sweep`."""

    barn_per_pair: float  # one thread, default cache: barn lock acquisitions per pair
    barn_per_round: float
    one_cycles: float  # one thread: default cache, cycles per pair
    one_fast: float  # one thread: the explicit capacity
    hold: float  # cycles the barn lock is held per acquisition under contention
    sat_threads: float  # threads whose barn work per pair adds up to one pair's time
    max_threads: int
    max_speedup: float
    max_wait: float
    max_cycles: float
    flush_from: int | None  # fewest threads at which objects flow to and from slabs (None: none in the sweep)
    one_xfer: float  # one thread, default cache: lines taken from another core's cache per pair (NaN: hierarchy off)
    max_xfer: float  # at the most threads, default cache
    max_xfer_fast: float  # at the most threads, the explicit capacity
    max_xfer_cycles: float  # the default cache's cycles per pair at the most threads not spent waiting, above one thread's


def contention(sweep: pd.DataFrame, k: int, costs) -> Contention:
    """``hold`` = a spinlock pair + a cache-line transfer + two L1 hits (``data/costs.csv``)."""
    d = sweep[sweep["cache"].str.startswith("default")].set_index("threads")
    e = sweep[~sweep["cache"].str.startswith("default")].set_index("threads")
    hold = costs.cycles("spin_lock_pair") + costs.cycles("cacheline_transfer") + 2 * costs.cycles("l1_hit")
    barn = float(d["barn"].iloc[0])
    flushing = d[d["slab objects"] > 0]
    return Contention(barn, barn * k, float(d["cycles"].iloc[0]), float(e["cycles"].iloc[0]), float(hold),
                      float(e["cycles"].iloc[0] / (barn * hold)) if barn else float("inf"), int(d.index.max()),
                      float(d["speed-up"].iloc[-1]), float(d["wait"].iloc[-1]), float(d["cycles"].iloc[-1]),
                      int(flushing.index.min()) if len(flushing) else None,
                      float(d["line transfers"].iloc[0]), float(d["line transfers"].iloc[-1]),
                      float(e["line transfers"].iloc[-1]),
                      float(d["cycles"].iloc[-1] - d["wait"].iloc[-1] - d["cycles"].iloc[0]))


def flush_words(flush_from: int | None) -> str:
    return f"{flush_from} threads" if flush_from is not None else "no thread count in the sweep"


def hidden_overhead(slow: float, fast: float, pct: float) -> float:
    """Cycles per pair the measurement would have to include, on top of the allocator's, for a model
    saving of ``slow`` → ``fast`` cycles to show as only ``pct`` % (``(slow - fast) / (slow + X) = pct``)."""
    return (slow - fast) / (pct / 100.0) - slow


@dataclass(frozen=True)
class Gap619:
    """The 6.19 claim (chapter 4's last section): the model's 6.19 caches at K = ``k_small``, one thread,
    without and with sheaves; and, when the model's sheaves are the faster, the overhead per pair that
    would shrink their difference to the claimed % and what that overhead would do to the 7.0
    single-thread gain at K = ``k_large`` (both NaN when the model's sheaves are the slower: no overhead
    added to both caches turns a loss into a gain)."""

    p619: float  # cycles per pair, no sheaves
    fast619: float  # % of its frees on the cpu slab's fast path
    s619: float  # with sheaves
    m619: float  # % of time saved by the sheaves (negative: they cost more)
    x_overhead: float
    k128_diluted: float  # % saved at K = k_large on 7.0 with that overhead added
    c_fast: float  # cycles of the cpu slab's cmpxchg16b (percpu_cmpxchg16b)


def gap_619(object_size: int, capacity: int, k_small: int, k_large: int, claimed_pct: float, costs, *,
            free_order: str = "fifo", machine_cpus: int = 64, cpus_per_node: int | None = None, seed: int = 0,
            hierarchy=True, clock_ghz: float = 3.0) -> Gap619:
    kw = dict(object_size=object_size, free_order=free_order, machine_cpus=machine_cpus,
              cpus_per_node=cpus_per_node or None, seed=seed, hierarchy=hierarchy, clock_ghz=clock_ghz)
    plain = microbench("6.19", k_small, 1, None, **kw)
    with_sh = microbench("6.19", k_small, 1, capacity, **kw)
    x = k128 = float("nan")
    if plain["cycles"] > with_sh["cycles"]:
        x = hidden_overhead(plain["cycles"], with_sh["cycles"], claimed_pct)
        m70 = microbench("7.0", k_large, 1, None, **kw)["cycles"]
        m70b = microbench("7.0", k_large, 1, capacity, **kw)["cycles"]
        k128 = improvement(m70 + x, m70b + x)
    return Gap619(plain["cycles"], 100 * plain["fast frees"], with_sh["cycles"],
                  improvement(plain["cycles"], with_sh["cycles"]), x, k128, costs.cycles("percpu_cmpxchg16b"))

# ------------------------------------------------------------------------------------------------
# Validation: the hot single-object pair, sheaves against the cpu slab (cost model v2; nothing tuned)

@dataclass(frozen=True)
class Measured:
    """One pair of rows of the cover letter: the benchmark without and with sheaves (same unit)."""

    batch: int  # objects allocated, then freed (1: alternating single-object alloc and free)
    memcg: bool  # the benchmark's "memcg" rows (accounted allocations)
    without: int  # "no sheaves"
    with_sheaves: int  # "sheaves"

    @property
    def pct(self) -> float:
        """The letter's "sheaves better by X%": time saved in % of the cache without sheaves."""
        return improvement(self.without, self.with_sheaves)


def __getattr__(name: str):
    """The published figures of the validation, read from ``data/published/`` (:mod:`allocsim.facts.published`)
    when first asked for: ``SHEAVES_V6`` (the cover letter's rows this chapter compares with, as
    :class:`Measured`), ``SHEAVES_V6_SOURCE`` (the source in one line), ``SHEAVES_V6_CAPACITY`` (the sheaf
    capacity of the series' benchmark cache) and ``WHOLE_CALL_PAIR`` (measured whole-call cpu-slab pairs,
    cycles, lowest and highest)."""
    from allocsim.facts import published as _published

    if name == "SHEAVES_V6":
        return tuple(Measured(r["batch"], r["memcg"], r["without"], r["with_sheaves"]) for r in _published.sheaves_v6().rows)
    if name == "SHEAVES_V6_SOURCE":
        return _published.sheaves_v6().source
    if name == "SHEAVES_V6_CAPACITY":
        return _published.sheaves_v6().capacity
    if name == "WHOLE_CALL_PAIR":
        c = [r["cycles"] for r in _published.fastpath_pair()]
        return (min(c), max(c))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The two hook settings the validation is shown under: the distribution defaults and every switch off
#: (the benchmark kernel's configuration is not stated).
VALIDATION_HOOKS = ("default", "off")


def validation_hooks(setting: str, memcg: bool):
    """The :class:`allocsim.facts.steps.Hooks` of one validation row: ``setting`` (``default`` or ``off``)
    with the ``memcg`` switch on for a "memcg" row (the cache's objects are then charged:
    ``slab_account=True``)."""
    from dataclasses import replace as _replace

    from allocsim.facts import steps as _steps

    h = _steps.Hooks.of(setting)
    return _replace(h, memcg=True) if memcg else h


def single_object_validation(kernel: str = "6.18", object_size: int = 64, capacity: int | None = None,
                             rounds: tuple[int, int] = (50, 150), costs=None, steps: str = "default",
                             hierarchy=True) -> pd.DataFrame:
    """The sheaves series' own benchmark through the models: a dedicated cache on a cpu-slab kernel
    (``kernel`` 6.18/6.19, ``kmalloc=False``) without and with ``sheaf_capacity=capacity``, one thread
    allocating ``batch`` objects then freeing them (FIFO), for each row of :data:`SHEAVES_V6` and each
    setting of :data:`VALIDATION_HOOKS`. One row per (setting, batch, memcg): the measured and modelled
    "sheaves better by %" and the residual (model − measured, percentage points), the model's cycles per
    alloc+free pair without and with sheaves, and the measured ratio of the two rows. ``capacity`` None:
    the series' benchmark cache's (:data:`SHEAVES_V6_CAPACITY`)."""
    capacity = __getattr__("SHEAVES_V6_CAPACITY") if capacity is None else capacity
    if kernel not in ("6.18", "6.19"):
        raise AllocsimError(f"the single-object validation runs on a cpu-slab kernel, '6.18' or '6.19', not {kernel!r}")
    rows = []
    for setting in VALIDATION_HOOKS:
        for m in __getattr__("SHEAVES_V6"):
            h = validation_hooks(setting, m.memcg)
            kw = dict(object_size=object_size, rounds=rounds, machine_cpus=1, costs=costs, hooks=h, steps=steps,
                      slab_account=m.memcg, hierarchy=hierarchy)
            a = microbench(kernel, m.batch, 1, None, **kw)
            b = microbench(kernel, m.batch, 1, capacity, **kw)
            model = improvement(a["cycles"], b["cycles"])
            rows.append({"switches": setting, "batch": m.batch, "memcg": m.memcg,
                         "measured without": m.without, "measured with": m.with_sheaves, "measured %": m.pct,
                         "model without": a["cycles"], "model with": b["cycles"], "model %": model,
                         "residual pp": model - m.pct, "measured ratio": m.with_sheaves / m.without,
                         "model ratio": b["cycles"] / a["cycles"]})
    return pd.DataFrame(rows)


def bulk_validation(kernel: str = "6.19", hooks: str = "off", measurement=None, rounds: tuple[int, int] = (20, 60),
                    clock_ghz: float = 3.0) -> pd.DataFrame:
    """A published per-object cost against batch size (default :func:`allocsim.facts.published.bulk_fallback`:
    Brouer 2015, SLUB's cpu slab, one CPU, FIFO frees) beside the model's microbenchmark on the cpu-slab
    ``kernel`` with the measurement's object size, CPU count and free order, the hot-path switches
    ``hooks`` (``off``: a 2015 kernel had none of today's hardening hooks), with the memory hierarchy on and
    off. One row per batch size: the measured and modelled cycles per pair and each relative to its own
    batch-1 value — the shape is compared, not the level (another CPU, kernel and cost table); nothing is
    fitted."""
    from allocsim.facts import published as _published

    if kernel not in ("6.18", "6.19"):
        raise AllocsimError(f"the batch-size validation runs on a cpu-slab kernel, '6.18' or '6.19', not {kernel!r}")
    m = measurement or _published.bulk_fallback()
    h = validation_hooks(hooks, False)
    kw = dict(object_size=m.object_size, machine_cpus=m.cpus, free_order=m.free_order, hooks=h, rounds=rounds,
              clock_ghz=clock_ghz)
    rows = []
    for r in m.rows:
        on = microbench(kernel, r["bulk"], 1, None, hierarchy=True, **kw)
        off = microbench(kernel, r["bulk"], 1, None, hierarchy=False, **kw)
        rows.append({"bulk": r["bulk"], "measured": float(r["cycles"]), "model": on["cycles"], "model flat": off["cycles"],
                     "model beyond L1": float(sum(on[f"from {k}"] for k in SOURCES if k != "L1"))})
    df = pd.DataFrame(rows)
    for col in ("measured", "model", "model flat"):
        df[f"{col} / batch 1"] = df[col] / df[col].iloc[0]
    return df


#: The segments of a hit on each side (data/kernel/steps.yaml): a sheaf hit and a cpu-slab fast path.
HIT_SEGMENTS = {("sheaves", "alloc"): ("local_trylock", "pcs_alloc"),
                ("sheaves", "free"): ("pcs_free_check", "local_trylock", "pcs_free"),
                ("cpu slab", "alloc"): ("cpu_slab_alloc",),
                ("cpu slab", "free"): ("cpu_slab_free",)}


def hit_steps(side: str, book=None, table=None, facts=None) -> pd.DataFrame:
    """The steps of a hot alloc (``side`` ``alloc``) or free (``free``) that differ between a sheaf hit and
    the cpu slab's fast path — :data:`HIT_SEGMENTS` expanded by :meth:`allocsim.facts.steps.StepBook.frame`
    — one frame with an ``allocator`` column. What both share (the entry point and the hooks) is not in it."""
    from allocsim.facts import costs as _costs
    from allocsim.facts import steps as _steps

    book = book or _steps.load()
    table = table or _costs.load()
    facts = facts or _steps.Facts(sheaves=True, cpu_slab=True, kmalloc=False)
    if side not in ("alloc", "free"):
        raise AllocsimError(f"side must be 'alloc' or 'free', not {side!r}")
    frames = []
    for alloc in ("sheaves", "cpu slab"):
        f = book.frame(HIT_SEGMENTS[(alloc, side)], table, facts)
        f.insert(0, "allocator", alloc)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def hit_totals(book=None, table=None, facts=None) -> pd.DataFrame:
    """Cycles of each side's differing steps (:func:`hit_steps`) per allocator, and per pair."""
    rows = []
    for alloc in ("sheaves", "cpu slab"):
        r = {"allocator": alloc}
        for side in ("alloc", "free"):
            f = hit_steps(side, book, table, facts)
            r[side] = float(f[f["allocator"] == alloc]["cycles"].sum())
        r["pair"] = r["alloc"] + r["free"]
        rows.append(r)
    return pd.DataFrame(rows)


def break_even(measured_pct: float, kernel: str = "6.18", object_size: int = 64, batch: int = 1,
               capacity: int | None = None, hooks="default", memcg: bool = False, costs=None,
               rows=None, hierarchy=True) -> pd.DataFrame:
    """For each cost row (``rows``: default every row of the table that changes either cache's pair): the
    value that row alone would need for the model's "sheaves better by %" to equal ``measured_pct``, all
    other rows at their values — a diagnostic of the miss, not a fit (the book keeps the cited value).
    The pair's cycles are linear in each row while the paths stay the same, so two runs per cache give
    the slope; ``needed`` is NaN when no value can (the row moves both caches alike)."""
    capacity = __getattr__("SHEAVES_V6_CAPACITY") if capacity is None else capacity
    from allocsim.facts import costs as _costs

    table = costs or _costs.load()
    h = validation_hooks(hooks, memcg) if isinstance(hooks, str) else hooks
    kw = dict(object_size=object_size, rounds=(50, 150), machine_cpus=1, hooks=h, slab_account=memcg, hierarchy=hierarchy)
    w0 = microbench(kernel, batch, 1, None, costs=table, **kw)["cycles"]
    s0 = microbench(kernel, batch, 1, capacity, costs=table, **kw)["cycles"]
    p = measured_pct / 100.0
    out = []
    for key in (rows or _costs.KEYS):
        v = table.cycles(key)
        bumped = table.with_overrides(**{key: v + 1.0})
        a = microbench(kernel, batch, 1, None, costs=bumped, **kw)["cycles"] - w0
        b = microbench(kernel, batch, 1, capacity, costs=bumped, **kw)["cycles"] - s0
        if rows is None and a == 0 and b == 0:
            continue
        den = (1 - p) * a - b
        d = (s0 - (1 - p) * w0) / den if den != 0 else float("nan")
        r = table.rows[key]
        need = v + d
        out.append({"cost": key, "value": v, "low": r["low"], "high": r["high"], "per pair without": a,
                    "per pair with": b, "needed": need,
                    "within its range": bool(r["low"] <= need <= r["high"]) if need == need else False})
    return pd.DataFrame(out)

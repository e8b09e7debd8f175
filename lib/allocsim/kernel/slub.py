"""The facade every chapter calls to run a workload through SLUB: :func:`run`.

It picks the model the kernel version and the cache imply —

* **6.18 / 6.19, no sheaves** (any kmalloc cache; a dedicated cache without ``sheaf_capacity``): the
  cpu slab of :mod:`allocsim.kernel.cpu_slab` (v6.19 ``mm/slub.c``);
* **6.18 / 6.19 with sheaves** (a dedicated ``kmem_cache_create()`` cache with ``sheaf_capacity``,
  ``kmalloc=False``): opt-in sheaves of :mod:`allocsim.kernel.sheaves` refilled through that cpu slab
  (v6.19 ``mm/slub.c`` ``do_kmem_cache_create()``, ``refill_sheaf()`` → ``__kmem_cache_alloc_bulk()``: "double caching");
* **7.0**: sheaves on every cache, kmalloc included, with the default capacity of
  ``calculate_sheaf_capacity()`` (or ``max(default, sheaf_capacity)`` for a dedicated cache), no cpu
  slab (v7.0 ``mm/slub.c``; the series "slab: replace cpu (partial) slabs with sheaves") —

fills the cache geometry from :func:`allocsim.facts.kconfig.cache_geometry` (``calculate_order()``,
``set_cpu_partial()``, ``min_partial``, sheaf capacity), and runs the program event by event on simulated
CPUs (:mod:`allocsim.kernel.sim`: the CPU whose next event starts earliest moves next; ``list_lock`` and the barn lock
are shared locks with clocks, so contention emerges from the costs).

What every call executes besides the allocator proper — the entry point (``kmalloc()`` or
``kmem_cache_alloc()``, ``kfree()`` with its ``virt_to_page()`` lookup or ``kmem_cache_free()``), the
pre/post allocation hooks and the free hooks — is charged from the steps of ``data/kernel/steps.yaml``
(cost model v2, :mod:`allocsim.facts.steps`) with the kernel configuration switches ``hooks``
(``init_on_alloc`` zeroing, memcg, KFENCE sampling, alloc tagging, the preemption model; defaults of a
distribution kernel, ``data/kernel/hooks.yaml``). ``slab_account=True`` models a ``SLAB_ACCOUNT`` cache
(Dave Chinner's proposed ``iomap_dio`` cache sets it) allocated by a task in a non-root memory cgroup:
with the ``memcg`` switch on, every allocation and every free pays ``memcg_account``, whichever path
served it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from allocsim.facts import steps as _steps
from allocsim.facts import versions
from allocsim.facts import costs as _costs
from allocsim.facts import kconfig
from allocsim.kernel import memory as _memory
from allocsim.kernel import stats as _st
from allocsim.kernel.barn import (
    B_EMPTY_HEAD, B_FULL_HEAD, B_NR_EMPTY, B_NR_FULL, MAX_EMPTY_SHEAVES, MAX_FULL_SHEAVES, SH_NEXT, SH_SIZE,
)
from allocsim.kernel.cpu_slab import CC_FREELIST, CC_PARTIAL, CC_PARTIAL_SLABS, CC_SLAB
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.result import Result
from allocsim.kernel.sheaves import PCS_MAIN, PCS_SPARE, irq_event_done, kmem_cache_alloc, kmem_cache_free, trylock_ok
from allocsim.kernel.sim import DEADLOCK, next_cpu as _sim_next_cpu
from allocsim.kernel.state import (
    AC_TAKEN_BARN, AC_TAKEN_LIST, AC_WAIT_BARN, AC_WAIT_LIST, AC_XFER_BARN, AC_XFER_LIST, CFG, CF_CAP,
    CF_MAX_SHEAVES, CF_MAX_SLABS, CF_OBJS, CF_SHEAVES, G, G_ERR, G_FREE_HEAD, G_NEXT_NEW, G_SHEAF_FREE_HEAD,
    G_SHEAF_NEXT_NEW, NCF, ND_HEAD, ND_NR_PARTIAL, ND_NR_SLABS, ND_TAIL, SL_CPU, SL_FREELIST, SL_FROZEN, SL_INUSE,
    SL_NEXT, SL_NODE, SL_PREV, SL_WHERE, V_70, V_CPU_SLAB, W_CPU_PARTIAL, W_CPU_SLAB, W_NODE_PARTIAL, W_NONE,
    W_POOL, new_state, view
)
from allocsim.kernel import state as _state
from allocsim.kernel.program import ALLOC, Program


#: :func:`allocsim.kernel.sim.next_cpu` itself, compiled inline into the event loop without reference counting
#: (the same Python function; only the compilation options differ).
next_cpu = njit(_nrt=False, inline="always")(_sim_next_cpu.py_func)


@dataclass(frozen=True)
class SlubConfig:
    """Everything a SLUB model needs besides the program: the kernel version, the cache geometry
    (numbers as ``/sys/kernel/slab/<cache>/`` shows them), the machine, and model switches.

    ``gfp_nowait_fails`` makes ``alloc_empty_sheaf(GFP_NOWAIT)`` fail (memory pressure), the only way
    ``__pcs_replace_full_main()`` reaches ``sheaf_flush_main()``. ``slab_account``: a ``SLAB_ACCOUNT``
    cache charged to a memory cgroup."""

    version: str
    geometry: kconfig.CacheGeometry
    ncpu: int
    cpus_per_node: int
    gfp_nowait_fails: bool = False
    slab_account: bool = False
    hooks: _steps.Hooks = field(default_factory=_steps.Hooks.default)
    kmalloc: bool = True

    @property
    def nnodes(self) -> int:
        return -(-self.ncpu // self.cpus_per_node)

    @property
    def sheaves(self) -> bool:
        return self.geometry.sheaf_capacity > 0

    @property
    def model(self) -> str:
        g = self.geometry
        acct = ", SLAB_ACCOUNT" if self.slab_account else ""
        if not versions.family(self.version).cpu_slab:
            return f"{self.version} sheaves ({g.name}, capacity {g.sheaf_capacity}{acct})"
        if self.sheaves:
            return f"{self.version} sheaves on cpu slab ({g.name}, capacity {g.sheaf_capacity}{acct})"
        return f"{self.version} cpu slab ({g.name}{acct})"


def _check_int(name, v, lo, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
        rng = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise AllocsimError(f"slub.run {name} must be an integer {rng}, not {v!r}")
    return int(v)


def configure(program: Program, kernel: str = "7.0", object_size: int = 256, sheaf_capacity: int | None = None,
              kmalloc: bool = True, ncpu_present: int | None = None, cpus_per_node: int | None = None,
              gfp_nowait_fails: bool = False, slab_account: bool = False, hooks=None) -> SlubConfig:
    """Validate :func:`run`'s arguments (one sentence per mistake) and compute the cache geometry."""
    if not isinstance(program, Program):
        raise AllocsimError(f"slub.run program must be an allocsim.kernel.program.Program, not {type(program).__name__}")
    version = kconfig.check_version(kernel)
    if not isinstance(kmalloc, bool):
        raise AllocsimError(f"slub.run kmalloc must be True (a kmalloc-N cache) or False (a dedicated kmem_cache), not {kmalloc!r}")
    if not isinstance(gfp_nowait_fails, bool):
        raise AllocsimError(f"slub.run gfp_nowait_fails must be True or False, not {gfp_nowait_fails!r}")
    if not isinstance(slab_account, bool):
        raise AllocsimError(f"slub.run slab_account must be True or False, not {slab_account!r}")
    ncpu = program.ncpu
    if ncpu < 1:
        raise AllocsimError("slub.run program must have at least one CPU")
    if ncpu_present is None:
        ncpu_present = ncpu
    ncpu_present = _check_int("ncpu_present", ncpu_present, ncpu, kconfig.nr_cpus_max())
    if cpus_per_node is None:
        cpus_per_node = ncpu
    cpus_per_node = _check_int("cpus_per_node", cpus_per_node, 1, ncpu)
    if sheaf_capacity is not None:
        sheaf_capacity = _check_int("sheaf_capacity", sheaf_capacity, 0)
        if kmalloc and sheaf_capacity:
            raise AllocsimError(f"slub.run sheaf_capacity={sheaf_capacity} needs kmalloc=False: a kmalloc cache takes no "
                                f"sheaf_capacity request (only a dedicated kmem_cache_create() cache does)")
    geometry = kconfig.cache_geometry(object_size, ncpu_present, version, sheaf_capacity=sheaf_capacity or 0,
                                      kmalloc=kmalloc)
    return SlubConfig(version=version, geometry=geometry, ncpu=ncpu, cpus_per_node=cpus_per_node,
                      gfp_nowait_fails=gfp_nowait_fails, slab_account=slab_account, hooks=_steps.Hooks.of(hooks),
                      kmalloc=kmalloc)


def facts_of(cfg: SlubConfig) -> _steps.Facts:
    """What the step conditions of ``data/kernel/steps.yaml`` read for this model. The object size is
    ``s->object_size``, which ``init_on_alloc`` zeroes: the bucket for a kmalloc cache, the requested size
    for a dedicated one (``slab_post_alloc_hook()``: ``zero_size = s->object_size``)."""
    g = cfg.geometry
    return _steps.Facts(hooks=cfg.hooks, sheaves=cfg.sheaves, account=cfg.slab_account,
                        cpu_slab=versions.family(cfg.version).cpu_slab, kmalloc=cfg.kmalloc,
                        object_size=g.size if cfg.kmalloc else g.object_size)


def cost_vector(cfg: SlubConfig, costs: _costs.CostTable, steps: _steps.StepBook, memory: bool = True) -> np.ndarray:
    """The cost block of the model's state: the cost table's rows, then the hot paths' step sums (without
    their loads and stores when ``memory`` is false: the memory hierarchy charges those)."""
    sheaf_bytes = kconfig.sheaf_header() + kconfig.pointer_size() * cfg.geometry.sheaf_capacity
    return np.concatenate([costs.vector, _steps.slub_vector(costs, steps, facts_of(cfg), sheaf_bytes, memory)])



def _peak_live(program: Program) -> int:
    """An upper bound on objects allocated and not yet freed at any time: per CPU the highest running
    count of its allocations minus its frees, summed."""
    return int(_peak_live_jit(program.start, program.op))


@njit(cache=True, _nrt=False)
def _peak_live_jit(start, op):
    total = 0
    for c in range(len(start) - 1):
        live = 0
        peak = 0
        for i in range(start[c], start[c + 1]):
            live += 1 if op[i] == ALLOC else -1
            if live > peak:
                peak = live
        total += peak
    return total


def new_model_state(cfg: SlubConfig, program: Program, cost_vector: np.ndarray, scale: int = 1, access=None,
                    hierarchy=None):
    """The state ``(I, F)`` for ``cfg`` (see :mod:`allocsim.kernel.slab_pages`), sized for ``program`` (times
    ``scale``); with the memory hierarchy ``hierarchy`` (a cache geometry) on when given, ``access`` being the
    segments' memory accesses (:func:`allocsim.facts.steps.access_table`)."""
    g = cfg.geometry
    cap = g.sheaf_capacity
    peak = _peak_live(program)
    cached = cfg.ncpu * (2 * cap + g.objs_per_slab * (g.cpu_partial_slabs + 1)) + cfg.nnodes * (MAX_FULL_SHEAVES + 4) * cap
    max_slabs = scale * (peak + cached + cfg.ncpu * (g.cpu_partial_slabs + 2) + cfg.nnodes * (g.min_partial + 2) + 8)
    max_sheaves = scale * (3 * cfg.ncpu + cfg.nnodes * (MAX_FULL_SHEAVES + MAX_EMPTY_SHEAVES + 4)
                           + (peak // cap if cap else 0) + 8)
    version = V_CPU_SLAB if versions.family(cfg.version).cpu_slab else V_70
    words, floats, lazy = _memory.sizes(cfg.ncpu, hierarchy)
    if hierarchy is not None and access is not None:
        access = _memory.resolve_rows(access)
    I, F = new_state(cfg.ncpu, cfg.nnodes, cfg.cpus_per_node, g.objs_per_slab, g.min_partial, g.cpu_partial_slabs,
                     cap, version, cfg.sheaves, max_slabs, max_sheaves if cap else 1, cost_vector,
                     max_full=MAX_FULL_SHEAVES, nowait_fails=cfg.gfp_nowait_fails,
                     access=access, mem_words=words, mem_floats=floats, mem_lazy=lazy)
    _memory.attach(I, F, cfg.ncpu, hierarchy, g.size, kconfig.page_size() << g.order, kconfig.sheaf_header())
    return I, F


@njit(cache=True)
def simulate(I, F, start, op, ctx, slot, gap, n_slots, u, event_path):
    """Run a program: allocate the loop's arrays and hand them to :func:`event_loop`. Returns
    ``(status, clock, cycles, path_count, path_cycles, slot_obj)``; ``status`` is -1 when every program
    finished, -2 on a deadlock, 1 when the state tables overflowed (rerun larger); ``slot_obj`` is the
    object each slot's ALLOC got."""
    ncpu = len(start) - 1
    clock = np.zeros(ncpu, np.float64)
    pos = start[:-1].copy()
    slot_time = np.full(n_slots, -1.0)
    slot_obj = np.full(n_slots, -1, np.int64)
    path_count = np.zeros(_st.N_PATHS, np.int64)
    path_cycles = np.zeros(_st.N_PATHS, np.float64)
    status, total = event_loop(I, F, start, op, ctx, slot, gap, u, event_path, clock, pos, slot_time, slot_obj,
                               path_count, path_cycles)
    return status, clock, total, path_count, path_cycles, slot_obj


@njit(cache=True, _nrt=False)
def event_loop(I, F, start, op, ctx, slot, gap, u, event_path, clock, pos, slot_time, slot_obj, path_count,
               path_cycles):
    """The event loop: the runnable CPU whose next event starts earliest (clock + gap) runs it
    (:func:`allocsim.kernel.sim.next_cpu`); a FREE waits for its ALLOC; interrupt-context events get their
    ``local_trylock`` verdict from :func:`allocsim.kernel.sheaves.trylock_ok`. Compiled without numba's
    reference counting (it allocates nothing), which halves its cost."""
    total = 0.0
    while True:
        cpu = next_cpu(clock, pos, start, op, slot, slot_time, gap)
        if cpu < 0:
            return cpu, total
        i = pos[cpu]
        pos[cpu] += 1
        t = clock[cpu] + gap[i]
        s = slot[i]
        if op[i] != ALLOC and slot_time[s] > t:
            t = slot_time[s]
        c = ctx[i]
        ok = trylock_ok(I, F, cpu, c, u[i], t)
        t0 = t
        if op[i] == ALLOC:
            obj, t, path = kmem_cache_alloc(I, F, cpu, c, ok, t)
            slot_obj[s] = obj
            slot_time[s] = t
        else:
            t, path = kmem_cache_free(I, F, slot_obj[s], cpu, c, ok, t)
        irq_event_done(I, F, cpu, c, t)
        clock[cpu] = t
        event_path[i] = path
        path_count[path] += 1
        path_cycles[path] += t - t0
        total += t - t0
        if I[G + G_ERR] != 0:
            return 1, total


def irq_draws(program: Program, seed: int) -> np.ndarray:
    """The seeded uniforms that place interrupts (one per event; see :mod:`allocsim.kernel.sheaves`)."""
    return np.random.default_rng([int(seed), 0x5EAF]).random(program.n_events)


def run(program: Program, kernel: str = "7.0", object_size: int = 256, sheaf_capacity: int | None = None,
        kmalloc: bool = True, ncpu_present: int | None = None, cpus_per_node: int | None = None,
        costs: _costs.CostTable | None = None, seed: int = 0, gfp_nowait_fails: bool = False,
        slab_account: bool = False, hooks=None, steps: str | _steps.StepBook = "default", hierarchy=False,
        clock_ghz: float = 3.0) -> Result:
    """Run ``program`` through SLUB of ``kernel`` for ``object_size``-byte objects.

    ``sheaf_capacity``: ``None`` = the kernel's default for the cache (7.0: ``calculate_sheaf_capacity()``;
    6.18/6.19: no sheaves); an integer = an explicit ``kmem_cache_args.sheaf_capacity`` (needs
    ``kmalloc=False``; in 7.0 it is ``max()``-ed with the default). ``kmalloc``: a ``kmalloc-N`` cache
    (``s->size`` the bucket) or a dedicated ``kmem_cache``. ``ncpu_present``: CPUs the machine has (for
    ``calculate_order()``), default the program's CPUs. ``cpus_per_node``: CPUs per NUMA node (one
    barn and one partial list per node), default all on one node. ``costs``: a
    :class:`allocsim.facts.costs.CostTable` (default ``data/costs.csv``). ``seed``: the interrupt-placement
    draws. ``gfp_nowait_fails``: ``GFP_NOWAIT`` sheaf allocations fail (memory pressure).
    ``slab_account``: a ``SLAB_ACCOUNT`` cache charged to a memory cgroup (``memcg_account`` per
    allocation and per free, when the ``memcg`` switch is on). ``hooks``: the kernel configuration
    switches of the hot paths (:class:`allocsim.facts.steps.Hooks`; ``None`` = a distribution kernel's
    defaults, ``data/kernel/hooks.yaml``). ``steps``: the step file the hot paths are costed from
    (``"default"`` = ``data/kernel/steps.yaml``; ``"v1"`` = the charges before cost model v2).
    ``hierarchy``: the memory hierarchy of :mod:`allocsim.kernel.memory` — ``True`` for the default CPU of
    ``data/kernel/cpu.yaml`` at ``clock_ghz`` (which turns its nanosecond transfers into cycles), or a
    :class:`allocsim.facts.cpu.Geometry`; ``False`` (default) charges every load ``l1_hit``. Returns a :class:`allocsim.kernel.result.Result` whose ``extra`` holds the configuration, the
    lock statistics and the final slab/barn counts.
    """
    cfg = configure(program, kernel, object_size, sheaf_capacity, kmalloc, ncpu_present, cpus_per_node,
                    gfp_nowait_fails, slab_account, hooks)
    if costs is None:
        costs = _costs.load()
    if not isinstance(costs, _costs.CostTable):
        raise AllocsimError(f"slub.run costs must be an allocsim.facts.costs.CostTable or None, not {type(costs).__name__}")
    book = steps if isinstance(steps, _steps.StepBook) else _steps.load(steps)
    geo = _memory.geometry_of(hierarchy, clock_ghz, "slub.run")
    vector = cost_vector(cfg, costs, book, memory=geo is None)
    access = _steps.access_table(book, facts_of(cfg)) if geo is not None else None
    seed = _check_int("seed", seed, 0)
    _state.refresh_numba_cache()
    start, op, ctx, slot, gap, n_slots = program.arrays()
    u = irq_draws(program, seed)
    scale = 1
    while True:
        I, F = new_model_state(cfg, program, vector, scale, access, geo)
        event_path = np.full(program.n_events, -1, np.int64)
        try:
            status, clock, total, pcount, pcycles, slot_obj = simulate(I, F, start, op, ctx, slot, gap, n_slots, u,
                                                                       event_path)
        except IndexError:  # only with NUMBA_BOUNDSCHECK=1 (the test suite); without it the write corrupts memory
            raise AllocsimError(_out_of_range(cfg, I)) from None
        if status != 1:
            break
        scale *= 2
    if status == DEADLOCK:
        raise AllocsimError("slub.run program deadlocked: some CPU frees a slot that is never allocated before it")
    return _result(cfg, program, I, F, clock, total, pcount, pcycles, event_path, slot_obj)


def _out_of_range(cfg: SlubConfig, I: np.ndarray) -> str:
    """The sentence for a model step that indexed outside the state arrays (caught by bounds checking)."""
    cf = I[CFG:CFG + NCF]
    return (f"slub.run: a model step of {cfg.model} indexed outside its state (the slab table of "
            f"{int(cf[CF_MAX_SLABS])} slabs of {int(cf[CF_OBJS])} objects, the sheaf table of {int(cf[CF_MAX_SHEAVES])} "
            f"sheaves of capacity {int(cf[CF_CAP])}, {cfg.ncpu} CPUs on {cfg.nnodes} node(s), {len(I)} int64 in all); "
            f"a bug in the model, not in the program")


def live_slots(program: Program) -> np.ndarray:
    """Slots the program allocates and never frees."""
    return _live_slots(program.op, program.slot, program.n_slots)


@njit(cache=True)
def _live_slots(op, slot, n_slots):
    freed = np.zeros(n_slots, np.bool_)
    for i in range(len(op)):
        if op[i] != ALLOC:
            freed[slot[i]] = True
    out = np.empty(len(op), np.int64)
    n = 0
    for i in range(len(op)):
        if op[i] == ALLOC and not freed[slot[i]]:
            out[n] = slot[i]
            n += 1
    return out[:n].copy()


def _result(cfg, program, I, F, clock, total, pcount, pcycles, event_path, slot_obj) -> Result:
    v = view(I, F)
    nd, barn, stats, acc = v["nd"], v["barn"], v["stats"], v["acc"]
    paths = {_st.PATHS[k]: (int(pcount[k]), float(pcycles[k])) for k in range(_st.N_PATHS) if pcount[k]}
    n_alloc = int(np.count_nonzero(program.op == ALLOC))
    extra = {
        "config": cfg,
        "geometry": cfg.geometry,
        "list_lock_wait": float(acc[AC_WAIT_LIST]),
        "barn_lock_wait": float(acc[AC_WAIT_BARN]),
        "list_lock_taken": int(acc[AC_TAKEN_LIST]),
        "barn_lock_taken": int(acc[AC_TAKEN_BARN]),
        "list_lock_transfers": int(acc[AC_XFER_LIST]),
        "barn_lock_transfers": int(acc[AC_XFER_BARN]),
        "nr_slabs": int(nd[:, ND_NR_SLABS].sum()),
        "nr_partial": int(nd[:, ND_NR_PARTIAL].sum()),
        "barn_nr_full": barn[:, B_NR_FULL].tolist(),
        "barn_nr_empty": barn[:, B_NR_EMPTY].tolist(),
        "state": (I, F),
        "slot_obj": slot_obj,
        "live_objects": slot_obj[live_slots(program)],
        "hierarchy": _memory.counters(I),  # per CPU, where the data came from (None when the hierarchy is off)
    }
    return Result(model=cfg.model, n_alloc=n_alloc, n_free=program.n_events - n_alloc, cycles=float(total),
                  clock=clock, stats=_st.stats_dict(stats, cfg.version), paths=paths,
                  lock_wait=float(acc[AC_WAIT_LIST] + acc[AC_WAIT_BARN]), event_path=event_path, extra=extra)


def audit(result: Result) -> dict:
    """Check the final state of a :func:`run` against the model's invariants and return a summary;
    raise ``AssertionError`` naming the first violation. Conservation of everything the model moves:

    * **objects** — every object of every slab in use is in exactly one place: its slab's freelist, a
      CPU's freelist (6.19), a sheaf (main, spare or in a barn), or still allocated by the program —
      none lost, none handed out twice; each slab's ``inuse`` is ``objects`` minus its free ones;
    * **slabs** — every slab number ever used is in exactly one place: the pool of unused numbers, a
      node's partial list, a CPU's partial list (6.19), a CPU's cpu slab (6.19), or on no list — and
      then it is full and not frozen; its ``where`` field says the same; the node's ``nr_slabs`` counts
      its slabs, and ``alloc_slab - free_slab`` (SLUB_STATS) equals the slabs in use;
    * **sheaves** — every sheaf number ever used is in exactly one place: a CPU's ``main`` (never
      missing) or ``spare``, a barn's full or empty list, or the pool; barn full sheaves are full and
      empty ones empty; every sheaf holds 0 to ``sheaf_capacity`` objects; the sheaves made are the
      CPUs' first ``main`` sheaves plus ``sheaf_alloc`` (SLUB_STATS);
    * **counts** — each node's ``nr_partial`` and each CPU's partial-slab count equal the lengths of
      their lists (links consistent both ways), each barn's ``nr_full`` / ``nr_empty`` the lengths of
      its lists; a cpu slab is frozen and owned by its CPU.
    """
    I, F = result.extra["state"]
    v = view(I, F)
    sl, onext, nd, cc, sh, shobj, pcs, barn = (v[k] for k in ("sl", "onext", "nd", "cc", "sh", "shobj", "pcs", "barn"))
    cfg, g, stats = v["cfg"], v["g"], v["stats"]
    objs, cap = int(cfg[CF_OBJS]), int(cfg[CF_CAP])
    where: dict[int, str] = {}
    slab_at: dict[int, str] = {}
    sheaf_at: dict[int, str] = {}

    def place(obj, what):
        assert obj not in where, f"object {obj} is both {where[obj]} and {what}"
        where[obj] = what

    def place_slab(slab, what, want_where):
        slab = int(slab)
        assert slab not in slab_at, f"slab {slab} is both {slab_at[slab]} and {what}"
        assert sl[slab, SL_WHERE] == want_where, f"slab {slab} is {what} but marked {int(sl[slab, SL_WHERE])}"
        slab_at[slab] = what

    def place_sheaf(sheaf, what):
        sheaf = int(sheaf)
        assert 0 <= sheaf < int(g[G_SHEAF_NEXT_NEW]), f"{what} is sheaf {sheaf}, which was never made"
        assert sheaf not in sheaf_at, f"sheaf {sheaf} is both {sheaf_at[sheaf]} and {what}"
        sheaf_at[sheaf] = what

    def chain(head, limit):
        out = []
        while head >= 0:
            out.append(int(head))
            assert len(out) <= limit, "a freelist loops"
            head = onext[head]
        return out

    n_used = int(g[G_NEXT_NEW])
    s, count = int(g[G_FREE_HEAD]), 0
    while s >= 0:
        place_slab(s, "in the pool of unused slab numbers", W_POOL)
        s, count = int(sl[s, SL_NEXT]), count + 1
        assert count <= n_used, "the pool of slab numbers loops"
    alive = [s for s in range(n_used) if sl[s, SL_WHERE] != W_POOL]
    per_node = np.zeros(len(nd), np.int64)
    for s in alive:
        fl = chain(sl[s, SL_FREELIST], objs)
        for o in fl:
            assert o // objs == s, f"object {o} on the freelist of slab {s}"
            place(o, f"free in slab {s}")
        assert sl[s, SL_INUSE] == objs - len(fl), f"slab {s}: inuse {sl[s, SL_INUSE]} but {len(fl)} of {objs} free"
        per_node[sl[s, SL_NODE]] += 1
    assert int(per_node.sum()) == stats[_st.S_ALLOC_SLAB] - stats[_st.S_FREE_SLAB], \
        f"{int(per_node.sum())} slabs in use, but alloc_slab - free_slab = {stats[_st.S_ALLOC_SLAB] - stats[_st.S_FREE_SLAB]}"
    for n in range(len(nd)):
        assert nd[n, ND_NR_SLABS] == per_node[n], f"node {n}: nr_slabs {nd[n, ND_NR_SLABS]} but {per_node[n]} slabs"
        s, prev, count = nd[n, ND_HEAD], -1, 0
        while s >= 0:
            assert sl[s, SL_PREV] == prev and sl[s, SL_NODE] == n, f"node {n} partial list broken at slab {s}"
            assert sl[s, SL_FROZEN] == 0, f"slab {s} on node {n}'s partial list is frozen"
            place_slab(s, f"on node {n}'s partial list", W_NODE_PARTIAL)
            prev, s, count = s, sl[s, SL_NEXT], count + 1
        assert nd[n, ND_TAIL] == prev and nd[n, ND_NR_PARTIAL] == count, f"node {n}: nr_partial {nd[n, ND_NR_PARTIAL]} but {count} listed"
    for c in range(len(cc)):
        slab = cc[c, CC_SLAB]
        if slab >= 0:
            assert sl[slab, SL_CPU] == c and sl[slab, SL_FROZEN] == 1, f"cpu {c}: bad cpu slab {slab}"
            place_slab(slab, f"cpu {c}'s cpu slab", W_CPU_SLAB)
        for o in chain(cc[c, CC_FREELIST], objs):
            assert o // objs == slab, f"cpu {c}: object {o} on its freelist is not from its cpu slab"
            place(o, f"on cpu {c}'s freelist")
        s, count = cc[c, CC_PARTIAL], 0
        while s >= 0:
            assert sl[s, SL_CPU] == c and sl[s, SL_FROZEN] == 0, f"cpu {c}: partial list broken at slab {s}"
            place_slab(s, f"on cpu {c}'s partial list", W_CPU_PARTIAL)
            s, count = sl[s, SL_NEXT], count + 1
        assert cc[c, CC_PARTIAL_SLABS] == count, f"cpu {c}: {cc[c, CC_PARTIAL_SLABS]} partial slabs counted, {count} listed"
    for s in alive:
        if s not in slab_at:
            assert sl[s, SL_WHERE] == W_NONE, f"slab {s} is marked {int(sl[s, SL_WHERE])} but on no list"
            assert sl[s, SL_FREELIST] < 0 and sl[s, SL_FROZEN] == 0, \
                f"slab {s} is on no list, so it must be full and not frozen (free objects would be lost to allocation)"
            slab_at[s] = "full, on no list"
    assert set(slab_at) == set(range(n_used)), f"slab numbers in no place: {sorted(set(range(n_used)) - set(slab_at))[:5]}"

    def sheaf_objects(sheaf, what):
        size = int(sh[sheaf, SH_SIZE])
        assert 0 <= size <= cap, f"{what} holds {size} objects, capacity {cap}"
        for o in shobj[sheaf, :size]:
            place(int(o), what)
        return size

    n_full = n_empty = 0
    if cfg[CF_SHEAVES]:
        for c in range(len(pcs)):
            assert pcs[c, PCS_MAIN] >= 0, f"cpu {c} has no main sheaf"
            place_sheaf(pcs[c, PCS_MAIN], f"cpu {c}'s main sheaf")
            sheaf_objects(pcs[c, PCS_MAIN], f"cpu {c}'s main sheaf")
            if pcs[c, PCS_SPARE] >= 0:
                place_sheaf(pcs[c, PCS_SPARE], f"cpu {c}'s spare sheaf")
                sheaf_objects(pcs[c, PCS_SPARE], f"cpu {c}'s spare sheaf")
        for n in range(len(barn)):
            for head, col, want, name in ((B_FULL_HEAD, B_NR_FULL, cap, "full"), (B_EMPTY_HEAD, B_NR_EMPTY, 0, "empty")):
                s, count = barn[n, head], 0
                while s >= 0:
                    place_sheaf(s, f"on barn {n}'s {name} list")
                    assert sheaf_objects(s, f"a sheaf in barn {n}") == want, f"barn {n}: a sheaf on the wrong list"
                    s, count = sh[s, SH_NEXT], count + 1
                assert barn[n, col] == count, f"barn {n}: count {barn[n, col]} but {count} sheaves listed"
            n_full += int(barn[n, B_NR_FULL])
            n_empty += int(barn[n, B_NR_EMPTY])
        s = int(g[G_SHEAF_FREE_HEAD])
        while s >= 0:
            place_sheaf(s, "in the pool of unused sheaf numbers")
            s = int(sh[s, SH_NEXT])
        made = int(g[G_SHEAF_NEXT_NEW])
        lost = sorted(set(range(made)) - set(sheaf_at))
        assert not lost, f"sheaves lost (on no CPU, in no barn, not in the pool): {lost[:5]}"
        assert made == len(pcs) + stats[_st.S_SHEAF_ALLOC], \
            f"{made} sheaves made, but {len(pcs)} CPUs' first main sheaves + sheaf_alloc {stats[_st.S_SHEAF_ALLOC]}"
    live = result.extra["live_objects"]
    for o in live:
        place(int(o), "allocated")
    expected = {s * objs + i for s in alive for i in range(objs)}
    missing = expected - set(where)
    assert not missing, f"objects lost: {sorted(missing)[:5]}"
    assert set(where) <= expected, "an object belongs to no slab in use"
    return {"slabs": len(alive), "objects": len(expected), "allocated": len(live), "barn_full": n_full,
            "barn_empty": n_empty, "sheaves": len(sheaf_at)}

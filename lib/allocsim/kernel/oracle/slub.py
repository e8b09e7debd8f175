"""Pure-Python oracle of :func:`allocsim.kernel.slub.run`, written independently of the numba side: it reads
the kernel constants from ``data/kernel/*.yaml`` and the cycle costs from ``data/costs.csv`` itself, derives
the cache geometry (``calculate_order()``, ``set_cpu_partial()``, ``min_partial``,
``calculate_sheaf_capacity()``) and the interrupt placement draws again, and runs the same scheduler
(earliest clock first, a FREE waits for its ALLOC) over the oracle models of
:mod:`allocsim.kernel.oracle.cpu_slab`, :mod:`allocsim.kernel.oracle.sheaves` and
:mod:`allocsim.kernel.oracle.slab_pages`. From the package it uses only the event format
(:mod:`allocsim.kernel.program`) and the data layer (:mod:`allocsim.facts`: where ``data/`` is, the kernel
versions and their model families, the struct layouts); nothing of the numba models' configuration,
charging or bookkeeping. Used by the tests (and the benchmark's speed ratio).

With ``hierarchy`` (issue 11) the oracle makes the memory accesses the numba models make, at the same points, with
its own caches (:mod:`allocsim.kernel.oracle.cache`), its own addresses and its own access lists per segment
(:mod:`allocsim.kernel.oracle.memory`); the step sums then leave the loads and stores out.

Every kernel function below is ported from the source named in its docstring (v6.19 / v7.0 ``mm/slub.c``,
``mm/slab_common.c``, ``include/linux/slab.h``), as ``data/kernel/*.yaml`` records it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
import yaml

from allocsim.facts import paths, structs, versions
from allocsim.kernel.oracle import cache as oc
from allocsim.kernel.oracle import cpu_slab as cs
from allocsim.kernel.oracle import memory as om
from allocsim.kernel.oracle import sheaves as shv
from allocsim.kernel.oracle import steps as st
from allocsim.kernel.oracle.slab_pages import State
from allocsim.kernel.program import ALLOC, Program

#: ``MAX_FULL_SHEAVES`` (v6.19 / v7.0 ``mm/slub.c``, ``#define MAX_FULL_SHEAVES 10``).
MAX_FULL_SHEAVES = 10
#: ``s->remote_node_defrag_ratio = 1000`` (``kmem_cache_open()``, v6.19 / v7.0 ``mm/slub.c``).
REMOTE_NODE_DEFRAG_RATIO = 1000


def _kernel_data(name: str) -> dict:
    return yaml.safe_load((paths.DATA / "kernel" / name).read_text())


def cost_dict(costs=None) -> dict:
    """Cycles by primitive: ``data/costs.csv`` read with :mod:`csv`, or the rows of a given table (a cost
    table's ``rows``, e.g. ``data/costs-v1.csv`` or a table with overrides)."""
    if costs is not None:
        return {k: float(row["cycles"]) for k, row in costs.rows.items()}
    with (paths.DATA / "costs.csv").open(newline="") as fh:
        return {row["key"]: float(row["cycles"]) for row in csv.DictReader(fh)}


# ---------------------------------------------------------------------------------------------------------
# Cache geometry, ported again from the kernel

def _get_order(size: int, page: int) -> int:
    """``get_order()``: smallest order with ``PAGE_SIZE << order >= size``."""
    order = 0
    while (page << order) < size:
        order += 1
    return order


def kmalloc_bucket(size: int) -> int:
    """``kmalloc_slab(size)->object_size`` (``mm/slab.h`` with ``kmalloc_size_index[]``): the smallest
    kmalloc cache of ``data/kernel/kmalloc.yaml`` that holds ``size`` bytes."""
    return min(s for s in _kernel_data("kmalloc.yaml")["sizes"] if s >= size)


def kmalloc_size_roundup(size: int) -> int:
    """``kmalloc_size_roundup()`` (``mm/slab_common.c``): the bucket, or whole pages above
    ``KMALLOC_MAX_CACHE_SIZE``."""
    if size <= _kernel_data("kmalloc.yaml")["kmalloc_max_cache_size"]:
        return kmalloc_bucket(size)
    page = _kernel_data("slub.yaml")["page_size"]
    return page << _get_order(size, page)


def calculate_order(size: int, nr_cpus: int) -> int:
    """``calculate_order()`` + ``calc_slab_order()`` (v6.19 / v7.0 ``mm/slub.c``), without boot parameters.
    ``nr_cpus`` is ``num_present_cpus()`` (with one present CPU the kernel takes ``nr_cpu_ids``; the
    models' machine has no CPUs beyond the present ones, so it is the same number)."""
    d = _kernel_data("slub.yaml")
    page, max_order = d["page_size"], d["slub_max_order"]
    min_objects = d["min_objects_factor"] * (nr_cpus.bit_length() + 1)
    max_objects = max((page << max_order) // size, 1)
    min_objects = min(min_objects, max_objects)
    min_order = max(d["slub_min_order"], _get_order(min_objects * size, page))
    if (page << min_order) // size > d["max_objs_per_page"]:
        return _get_order(size * d["max_objs_per_page"], page) - 1
    for fract_leftover in d["waste_fractions"]:
        order = min_order
        while order <= max_order:
            slab_size = page << order
            if slab_size % size <= slab_size // fract_leftover:
                break
            order += 1
        if order <= max_order:
            return order
    return _get_order(size, page)


def _tier(rows: list, size: int, key: str) -> int:
    return next(r[key] for r in rows if size >= r["min_size"])


@dataclass(frozen=True)
class Geometry:
    size: int
    objs_per_slab: int
    min_partial: int
    cpu_partial_slabs: int
    sheaf_capacity: int
    object_size: int = 0   # s->object_size: what init_on_alloc zeroes (the bucket for kmalloc)
    sheaf_bytes: int = 0   # header + objects[] of one sheaf
    slab_bytes: int = 0    # PAGE_SIZE << order
    sheaf_header: int = 0  # offsetof(struct slab_sheaf, objects)


def geometry(version: str, object_size: int, kmalloc: bool, sheaf_capacity: int | None, nr_cpus: int) -> Geometry:
    """The cache as ``kmem_cache_open()`` / ``calculate_sizes()`` set it up (no debug options):

    * ``s->size``: the kmalloc bucket, or ``ALIGN(object_size, sizeof(void *))`` for a dedicated cache;
    * ``min_partial = clamp(ilog2(size) / 2, MIN_PARTIAL, MAX_PARTIAL)``;
    * ``cpu_partial_slabs = DIV_ROUND_UP(2 * cpu_partial, objects)`` with ``set_cpu_partial()``'s tiers
      (cpu-slab kernels only; 0 in 7.0);
    * ``sheaf_capacity``: 7.0 ``calculate_sheaf_capacity()`` (the base tier raised until
      ``header + 8 * capacity`` fills its kmalloc bucket, ``max()``-ed with a request); 6.18/6.19 the
      request verbatim (``do_kmem_cache_create()``);
    * ``sheaf_bytes``: what a ``kzalloc()`` of one sheaf allocates and zeroes."""
    fam = versions.family(version)
    d = _kernel_data("slub.yaml")
    pointer = structs.load("slab_sheaf").field("cache").size
    header = structs.offsetof("slab_sheaf", "objects")
    size = kmalloc_bucket(object_size) if kmalloc else -(-object_size // pointer) * pointer
    order = calculate_order(size, nr_cpus)
    objs = (d["page_size"] << order) // size
    min_partial = max(d["min_partial"], min(d["max_partial"], (size.bit_length() - 1) // 2))
    cpu_partial_slabs = 0
    if fam.cpu_slab:
        cpu_partial_slabs = -(-2 * _tier(d["cpu_partial_tiers"], size, "objects") // objs)
    requested = sheaf_capacity or 0
    cap = requested
    if fam.sheaves_by_default:
        base = _tier(_kernel_data("sheaves.yaml")["capacity_tiers"], size, "capacity")
        cap = max((kmalloc_size_roundup(header + pointer * base) - header) // pointer, requested)
    return Geometry(size, objs, min_partial, cpu_partial_slabs, cap,
                    object_size=size if kmalloc else object_size, sheaf_bytes=header + pointer * cap,
                    slab_bytes=d["page_size"] << order, sheaf_header=header)


def irq_draws(seed: int, n_events: int) -> np.ndarray:
    """The seeded uniforms that place interrupts, one per event: the stream of NumPy's ``default_rng``
    seeded with ``[seed, 0x5EAF]`` (the definition :mod:`allocsim.kernel.sheaves` documents)."""
    return np.random.default_rng([int(seed), 0x5EAF]).random(n_events)


# ---------------------------------------------------------------------------------------------------------
# The run

@dataclass
class OracleResult:
    """What the oracle computed: per event the path name taken, per slot the object its ALLOC got,
    the counters it reached (kernel names), cycles, lock waiting and the per-CPU clocks."""

    event_path: list
    slot_obj: np.ndarray
    stats: dict
    cycles: float
    lock_wait: float
    clock: np.ndarray
    paths: dict
    extra: dict = field(default_factory=dict)


def new_state(version, geo: Geometry, ncpu, cpus_per_node, cost: dict, nowait_fails=False, slab_account=False,
              kmalloc=True, hooks=None, steps_name="default", spec=None):
    """The oracle's machine; ``spec``: the memory hierarchy (:mod:`allocsim.kernel.oracle.cache`'s spec) or None
    (off: every load charged ``l1_hit`` in the step sums)."""
    nnodes = -(-ncpu // cpus_per_node)
    m = State(ncpu, nnodes, cpus_per_node, geo.objs_per_slab, geo.min_partial, geo.cpu_partial_slabs,
              geo.sheaf_capacity, not versions.family(version).cpu_slab, geo.sheaf_capacity > 0, cost,
              max_full=MAX_FULL_SHEAVES, nowait_fails=nowait_fails,
              defrag_ratio=REMOTE_NODE_DEFRAG_RATIO)
    m.slab_account = slab_account
    facts = dict(sheaves=geo.sheaf_capacity > 0, account=slab_account, cpu_slab=versions.family(version).cpu_slab,
                 kmalloc=kmalloc, zero_size=geo.object_size)
    m.hot = st.slub_costs(steps_name, cost, hooks, **facts, sheaf_bytes=geo.sheaf_bytes, memory=spec is None)
    m.memory = None
    if spec is not None:
        m.memory = om.Memory(ncpu, spec, om.accesses(steps_name, st.slub_env(hooks, **facts), kmalloc), geo.size,
                             geo.slab_bytes, geo.objs_per_slab, geo.sheaf_header, geo.sheaf_capacity)
    cs.attach(m)
    shv.attach(m)
    return m


def next_cpu(clock, pos, ends, program, slot_time):
    best = None
    for c in range(len(clock)):
        i = pos[c]
        if i >= ends[c]:
            continue
        if program.op[i] != ALLOC and slot_time.get(int(program.slot[i])) is None:
            continue
        if best is None or clock[c] + float(program.gap[i]) < clock[best] + float(program.gap[pos[best]]):
            best = c
    return best


def run(program: Program, kernel="7.0", object_size=256, sheaf_capacity=None, kmalloc=True, ncpu_present=None,
        cpus_per_node=None, costs=None, seed=0, gfp_nowait_fails=False, slab_account=False, hooks=None,
        steps="default", hierarchy=None, clock_ghz=3.0, log_accesses=False) -> OracleResult:
    """``hooks``: a mapping of every switch of ``data/kernel/hooks.yaml`` to true/false (``None``: the
    defaults); ``steps``: the step file's name. ``hierarchy``: the memory hierarchy — ``None``/``False`` off,
    ``True`` the CPU of ``data/kernel/cpu.yaml`` read by :func:`allocsim.kernel.oracle.cache.read_cpu` at
    ``clock_ghz``, or an :class:`allocsim.facts.cpu.Geometry`; ``log_accesses``: keep every access
    (``extra["accesses"]``: per event a list of ``(cpu, line, write, cycles, kind, invalidated)``)."""
    version = versions.check_version(kernel)
    ncpu = program.ncpu
    geo = geometry(version, object_size, kmalloc, sheaf_capacity, ncpu_present or ncpu)
    if hierarchy is None or hierarchy is False:
        spec = None
    elif hierarchy is True:
        spec = oc.read_cpu(clock_ghz)
    else:
        spec = om.spec_of(hierarchy)
    m = new_state(version, geo, ncpu, cpus_per_node or ncpu, cost_dict(costs), gfp_nowait_fails, slab_account,
                  kmalloc, hooks, steps, spec)
    per_event = [None] * program.n_events if (log_accesses and m.memory is not None) else None
    u = irq_draws(seed, program.n_events)
    clock = [0.0] * ncpu
    pos = [int(program.start[c]) for c in range(ncpu)]
    ends = [int(program.start[c + 1]) for c in range(ncpu)]
    slot_time: dict[int, float] = {}
    slot_obj: dict[int, int] = {}
    live: set[int] = set()
    event_path: list = [None] * program.n_events
    paths_: dict[str, list] = {}
    total = 0.0
    order: list = []  # event indices in the order they ran
    while True:
        cpu = next_cpu(clock, pos, ends, program, slot_time)
        if cpu is None:
            if pos != ends:
                raise RuntimeError("oracle: deadlock")
            break
        i = pos[cpu]
        pos[cpu] += 1
        order.append(i)
        t = clock[cpu] + float(program.gap[i])
        s = int(program.slot[i])
        if program.op[i] != ALLOC:
            t = max(t, slot_time[s])
        ctx = int(program.ctx[i])
        if per_event is not None:
            m.memory.log = per_event[i] = []
        ok = shv.trylock_ok(m, cpu, ctx, float(u[i]), t)
        t0 = t
        if program.op[i] == ALLOC:
            obj, t, path = shv.kmem_cache_alloc(m, cpu, ctx, ok, t)
            assert obj not in live, f"object {obj} handed out twice"
            live.add(obj)
            slot_obj[s] = obj
            slot_time[s] = t
        else:
            obj = slot_obj[s]
            live.remove(obj)
            t, path = shv.kmem_cache_free(m, obj, cpu, ctx, ok, t)
        shv.irq_event_done(m, cpu, ctx, t)
        clock[cpu] = t
        event_path[i] = path
        c = paths_.setdefault(path, [0, 0.0])
        c[0] += 1
        c[1] += t - t0
        total += t - t0
    objs = np.full(program.n_slots, -1, np.int64)
    for k, o in slot_obj.items():
        objs[k] = o
    extra = {"state": m, "live": live, "geometry": geo, "slot_obj": objs, "hierarchy": None, "cache": None,
             "order": order}
    if m.memory is not None:
        h = m.memory.h
        extra["hierarchy"] = [[h.count[c][k] for k in oc.KINDS + oc.INVS[1:]] for c in range(ncpu)]
        extra["cache"] = h
        extra["accesses"] = per_event
    return OracleResult(event_path=event_path, slot_obj=objs, stats={k: v for k, v in m.stats.items() if v},
                        cycles=total, lock_wait=m.wait["list"] + m.wait["barn"], clock=np.asarray(clock),
                        paths={k: (v[0], v[1]) for k, v in paths_.items()}, extra=extra)

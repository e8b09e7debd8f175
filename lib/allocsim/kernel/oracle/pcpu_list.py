"""Pure-Python oracle of :mod:`allocsim.kernel.pcpu_list`: the patch's ``pcpu_cache_list_alloc()`` /
``pcpu_cache_list_free()`` ("[PATCH v3] iomap: add allocation cache for iomap_dio", guzebing, 2026-01-15;
``data/thread/thread.txt``) written with Python lists and dicts, as close to the C as possible, plus
its own earliest-clock scheduler, its own per-path charges (the step sums of ``data/kernel/steps.yaml``, read again)
and its own fallback program. It shares nothing with the numba model but the event format
(:mod:`allocsim.kernel.program`), and must give the same event paths, counters, cycles and fallback
program. Slow on purpose (no NumPy in the loop); used by tests and the benchmark.
"""

from __future__ import annotations

import numpy as np

from allocsim.kernel.oracle import cache as oc
from allocsim.kernel.oracle import steps as st
from allocsim.kernel.oracle.memory import _walk
from allocsim.kernel.oracle.slub import cost_dict
from allocsim.kernel.program import ALLOC, HARDIRQ, TASK, Program

#: ``#define PCPU_CACHE_IRQ_THRESHOLD 16`` and ``#define DIO_ALLOC_CACHE_MAX 256`` of the patch (v3).
PCPU_CACHE_IRQ_THRESHOLD = 16
DIO_ALLOC_CACHE_MAX = 256
PATHS = ("alloc_hit", "alloc_splice", "alloc_kmalloc", "free_task", "free_irq", "kfree_full", "kfree_softirq")


def charges(costs=None, hooks=None, steps="default") -> dict:
    """Cycles per path: the step sums ``pcpu_<path>`` of ``data/kernel/steps.yaml`` (or ``steps-<name>``),
    read by the oracle's own step reader (:mod:`allocsim.kernel.oracle.steps`). The kmalloc / kfree of a
    miss are the backend's."""
    return st.pcpu_costs(steps, cost_dict(costs), hooks)


# The memory hierarchy, written again for the oracle: the address regions of allocsim.kernel.memory (in lines;
# each COLOUR x k lines past its power of two), the element header at the element's start, a global step's
# line its access row (every path starts with pcpu_get_cpu's two globals), and the charges without the loads
# and stores the hierarchy replaces.
COLOUR = 97
REGION = {"global": (1 << 20) + COLOUR, "kmem_cache": (2 << 20) + 2 * COLOUR, "percpu_offset": (3 << 20) + 3 * COLOUR,
          "pcpu_struct": (4 << 20) + 4 * COLOUR, "descriptor": (5 << 20) + 5 * COLOUR, "object": 1 << 34}


def _env(hooks):
    env = dict(st.hook_defaults() if hooks is None else hooks)
    env.update(sheaves=False, account=False, cpu_slab=False, kmalloc=True, object_size=0)
    return env


def charges_without_memory(costs=None, hooks=None, steps="default") -> dict:
    """The per-path charges with the loads and stores left out (what the hierarchy charges instead)."""
    segs, cost, env = st.segments(steps), cost_dict(costs), _env(hooks)
    return {p: sum(step.get("n", 1) * cost[step["cost"]] for step in _walk(segs, "pcpu_" + p, env)
                   if step["kind"] not in ("load", "store") and step["cost"] != "none")
            for p in PATHS}


def path_accesses(hooks=None, steps="default") -> dict:
    """Per path, the ``(line class, write, times)`` of its loads and stores, in order (times > 0)."""
    segs, env = st.segments(steps), _env(hooks)
    return {p: [(step["line"], step["kind"] == "store", step.get("n", 1)) for step in _walk(segs, "pcpu_" + p, env)
                if step["kind"] in ("load", "store") and step.get("n", 1) > 0]
            for p in PATHS}


def element_stride() -> int:
    from allocsim.facts import structs

    return (structs.sizeof("pcpu_cache_element") + structs.sizeof("iomap_dio") + 7) // 8 * 8


def line_of(cls, cpu, element, row, stride):
    if cls == "object":
        return REGION["object"] + element * stride // 64
    if cls in ("pcpu_struct", "percpu_offset"):
        return REGION[cls] + cpu
    if cls in ("descriptor", "kmem_cache"):
        return REGION[cls]
    return REGION["global"] + row


def fallback_calls_program(ncpu: int, calls: list, n_elements: int) -> Program:
    """The kmalloc/kfree calls ``(cpu, op, ctx, element, time)`` as a program: per CPU in the order they
    happened, the slot an element id, the gap the (rounded) time since the CPU's previous call."""
    start, op, ctx, slot, gap = [0], [], [], [], []
    for c in range(ncpu):
        prev = 0.0
        for cpu, o, x, e, t in calls:
            if cpu != c:
                continue
            op.append(o)
            ctx.append(x)
            slot.append(e)
            gap.append(int(round(t - prev)))
            prev = t
        start.append(len(op))
    return Program(np.asarray(start, np.int64), np.asarray(op, np.int8), np.asarray(ctx, np.int8),
                   np.asarray(slot, np.int64), np.asarray(gap, np.int64), int(n_elements))


class PcpuCache:
    """``struct pcpu_cache`` of one CPU. Lists are Python lists, the head at the end."""

    def __init__(self):
        self.free_list = []
        self.free_list_irq = []
        self.nr = 0
        self.nr_irq = 0


def run_reference(program: Program, threshold: int = PCPU_CACHE_IRQ_THRESHOLD, max_nr: int = DIO_ALLOC_CACHE_MAX,
                  costs=None, hooks=None, steps="default", hierarchy=None) -> dict:
    """Returns a dict: event_path (list of path names), paths {name: (count, cycles)}, stats, cycles, clock,
    caches (list of PcpuCache), where {element: state}, fallback (Program); with ``hierarchy`` (a spec of
    :mod:`allocsim.kernel.oracle.cache`) also ``memory`` (per event: cycles, and per access (cycles, kind,
    invalidated)) and the hierarchy itself."""
    program.validate()
    assert 1 <= threshold <= max_nr
    cost = charges(costs, hooks, steps) if hierarchy is None else charges_without_memory(costs, hooks, steps)
    hier = None if hierarchy is None else oc.Hierarchy(program.ncpu, hierarchy)
    acc = None if hierarchy is None else path_accesses(hooks, steps)
    stride = element_stride()
    memory = []
    ncpu = program.ncpu
    start = program.start.tolist()
    op, ctx, slot, gap = program.op.tolist(), program.ctx.tolist(), program.slot.tolist(), program.gap.tolist()
    caches = [PcpuCache() for _ in range(ncpu)]
    pos = start[:-1]
    clock = [0.0] * ncpu
    alloc_time = {}  # slot -> clock when its ALLOC finished
    slot_obj = {}
    where = {}  # element -> ("live",) | ("task", cpu) | ("irq", cpu) | ("kfreed",)
    n_elements = 0
    stats = {k: 0 for k in ("alloc", "alloc_hit", "alloc_miss", "alloc_splice", "splice_objects", "alloc_kmalloc",
                            "free", "free_task", "free_irq", "kfree_full", "kfree_softirq")}
    paths = {p: [0, 0.0] for p in PATHS}
    event_path = [None] * len(op)
    fallback = []  # (cpu, op, ctx, element, time)
    # where each element lives (hierarchy on): kmalloc returns what this CPU kfree()d last (SLUB's per-CPU LIFO:
    # the main sheaf, the cpu freelist), else what another CPU kfree()d (through the barn / the slabs), else
    # memory never used before
    home = {}
    kfreed_here = [[] for _ in range(ncpu)]
    n_homes = 0

    def runnable(c):
        i = pos[c]
        return i < start[c + 1] and (op[i] == ALLOC or slot[i] in alloc_time)

    while True:
        ready = [c for c in range(ncpu) if runnable(c)]
        if not ready:
            if any(pos[c] < start[c + 1] for c in range(ncpu)):
                raise RuntimeError("deadlock")
            break
        cpu = min(ready, key=lambda c: (clock[c] + gap[pos[c]], c))
        i = pos[cpu]
        pos[cpu] += 1
        clock[cpu] += gap[i]
        cache = caches[cpu]
        if op[i] == ALLOC:
            # pcpu_cache_list_alloc()
            stats["alloc"] += 1
            if cache.free_list:
                path = "alloc_hit"
                stats["alloc_hit"] += 1
            else:
                stats["alloc_miss"] += 1
                if cache.nr_irq >= threshold:
                    # irq_cache_splice(): free_list is empty; take the IRQ list as it is
                    path = "alloc_splice"
                    stats["alloc_splice"] += 1
                    stats["splice_objects"] += cache.nr_irq
                    cache.free_list = cache.free_list_irq
                    cache.free_list_irq = []
                    cache.nr += cache.nr_irq
                    cache.nr_irq = 0
                    for e in cache.free_list:
                        where[e] = ("task", cpu)
                else:
                    path = "alloc_kmalloc"
                    stats["alloc_kmalloc"] += 1
            if path == "alloc_kmalloc":
                element = n_elements
                n_elements += 1
                fallback.append((cpu, ALLOC, ctx[i], element, clock[cpu]))
                donors = [c for c in [cpu] + list(range(ncpu)) if kfreed_here[c]]
                if donors:  # this CPU's last kfree(), else the last of the first CPU that kfree()d one
                    home[element] = kfreed_here[donors[0]].pop()
                else:
                    home[element] = n_homes
                    n_homes += 1
            else:
                element = cache.free_list.pop()
                cache.nr -= 1
            where[element] = ("live",)
            slot_obj[slot[i]] = element
        else:
            # pcpu_cache_list_free()
            clock[cpu] = max(clock[cpu], alloc_time[slot[i]])
            stats["free"] += 1
            element = slot_obj[slot[i]]
            if cache.nr_irq + cache.nr >= max_nr:
                path = "kfree_full"
            elif ctx[i] == TASK:
                path = "free_task"
                cache.free_list.append(element)
                cache.nr += 1
                where[element] = ("task", cpu)
            elif ctx[i] == HARDIRQ:
                path = "free_irq"
                cache.free_list_irq.append(element)
                cache.nr_irq += 1
                where[element] = ("irq", cpu)
            else:
                path = "kfree_softirq"
            stats[path] += 1
            if path in ("kfree_full", "kfree_softirq"):
                where[element] = ("kfreed",)
                fallback.append((cpu, op[i], ctx[i], element, clock[cpu]))
        event_path[i] = path
        paths[path][0] += 1
        m = 0.0
        if hier is not None:
            got = []
            for row, (cls, write, times) in enumerate(acc[path]):
                for _ in range(times):
                    c, kind, inv = hier.access(cpu, line_of(cls, cpu, home[element], row, stride), write)
                    if write:
                        c -= hierarchy["latency"]["L1"]
                    got.append((c, kind, inv))
                    m += c
            memory.append((i, m, got))
            if path in ("kfree_full", "kfree_softirq"):
                kfreed_here[cpu].append(home[element])
        paths[path][1] += cost[path] + m
        clock[cpu] += cost[path] + m
        if op[i] == ALLOC:
            alloc_time[slot[i]] = clock[cpu]

    fb = fallback_calls_program(ncpu, fallback, n_elements)
    return {
        "event_path": event_path, "paths": {p: (c, cy) for p, (c, cy) in paths.items()}, "stats": stats,
        "cycles": sum(cy for _, cy in paths.values()), "clock": clock, "caches": caches, "where": where,
        "n_elements": n_elements, "fallback": fb, "slot_obj": slot_obj, "memory": memory, "hierarchy": hier,
    }

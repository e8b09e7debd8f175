"""Pure-Python reference of :mod:`allocsim.kernel.pcpu_list`: the patch's ``pcpu_cache_list_alloc()`` /
``pcpu_cache_list_free()`` written with Python lists and dicts, as close to the C as possible, plus
its own earliest-clock scheduler. It must give the same event paths, counters, cycles and fallback
program as the numba model. Slow on purpose (no NumPy in the loop); used by tests and the benchmark.
"""

from __future__ import annotations

from allocsim.kernel.pcpu_list import (
    DIO_ALLOC_CACHE_MAX, PATHS, PCPU_CACHE_IRQ_THRESHOLD, _validate, fallback_program, path_costs,
)
from allocsim.kernel.program import ALLOC, HARDIRQ, TASK, Program


class PcpuCache:
    """``struct pcpu_cache`` of one CPU. Lists are Python lists, the head at the end."""

    def __init__(self):
        self.free_list = []
        self.free_list_irq = []
        self.nr = 0
        self.nr_irq = 0


def run_reference(program: Program, threshold: int = PCPU_CACHE_IRQ_THRESHOLD, max_nr: int = DIO_ALLOC_CACHE_MAX,
                  costs=None) -> dict:
    """Returns a dict: event_path (list), paths {name: (count, cycles)}, stats, cycles, clock,
    caches (list of PcpuCache), where {element: state}, fallback (Program)."""
    _validate(program, threshold, max_nr)
    cost = dict(zip(PATHS, path_costs(costs).tolist()))
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
        event_path[i] = PATHS.index(path)
        paths[path][0] += 1
        paths[path][1] += cost[path]
        clock[cpu] += cost[path]
        if op[i] == ALLOC:
            alloc_time[slot[i]] = clock[cpu]

    fb = fallback_program(ncpu, [f[0] for f in fallback], [f[1] for f in fallback], [f[2] for f in fallback],
                          [f[3] for f in fallback], [f[4] for f in fallback], n_elements)
    return {
        "event_path": event_path, "paths": {p: (c, cy) for p, (c, cy) in paths.items()}, "stats": stats,
        "cycles": sum(cy for _, cy in paths.values()), "clock": clock, "caches": caches, "where": where,
        "n_elements": n_elements, "fallback": fb, "slot_obj": slot_obj,
    }

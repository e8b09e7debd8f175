"""The thread's kernel-module microbenchmark run through the SLUB models: per alloc+free pair, in the steady state.

Chapter 4 shows it and :mod:`allocsim.analysis.claims` evaluates the thread's microbenchmark claims with
it (one home, so both read the same numbers).
"""

from __future__ import annotations

from allocsim.facts.errors import AllocsimError
from allocsim.kernel import program as trace
from allocsim.kernel import slub

#: Free paths that put the object straight back without touching a slab list.
FAST_FREES = ("free_fastpath", "free_sheaf", "free_sheaf_spare")


#: Rounds of the two runs whose difference is the steady state of the module benchmark.
MICRO_ROUNDS = (20, 60)


def microbench(kernel: str, k: int, threads: int, capacity: int | None, *, object_size: int = 256,
               rounds: tuple[int, int] = MICRO_ROUNDS, free_order: str = "fifo", machine_cpus: int | None = None,
               cpus_per_node: int | None = None, seed: int = 0, costs=None) -> dict:
    """The thread's module benchmark on a dedicated cache (``kmem_cache_create()``, ``kmalloc=False``):
    each of ``threads`` CPUs allocates ``k`` objects then frees them. ``capacity`` ``None`` is the
    kernel's default (7.0: ``calculate_sheaf_capacity()``; 6.19: no sheaves). Steady state per round:
    the difference between runs of ``rounds[1]`` and ``rounds[0]`` rounds. Returns per alloc+free pair
    (one thread's view): ``cycles`` (lock waiting included), ``barn`` (barn lock acquisitions),
    ``wait`` (cycles waiting for the barn lock and list_lock), ``slab objects`` (objects moved between
    sheaves and slabs: refilled + flushed), ``fast frees`` (share of frees on the cpu slab's fast path
    or into a sheaf with room), plus the ``model`` name and effective ``capacity``."""
    r0, r1 = rounds
    if not 0 < r0 < r1:
        raise AllocsimError(f"microbench rounds must be two increasing positive counts, not {rounds!r}")
    res = []
    for r in (r0, r1):
        prog = trace.microbench(threads, k, r, free_order, seed=seed)
        res.append(slub.run(prog, kernel=kernel, object_size=object_size, sheaf_capacity=capacity, kmalloc=False,
                            ncpu_present=max(threads, machine_cpus or threads), cpus_per_node=cpus_per_node,
                            seed=seed, costs=costs))
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
    }


def improvement(before: float, after: float) -> float:
    """Time saved in % of the slower: the thread's "x% improvement in time spent"."""
    return (before - after) / before * 100.0

"""The thread's kernel-module microbenchmark as a workload: per-CPU programs of alloc/free events in the
format of :mod:`allocsim.kernel.program`. Chapter 4 and the claims evaluation run it through the SLUB
models (:mod:`allocsim.analysis.microbench`)."""

from __future__ import annotations

import numpy as np

from allocsim.facts.errors import AllocsimError
from allocsim.kernel.program import ALLOC, FREE, Program


def microbench(threads: int, k: int, rounds: int, free_order: str = "fifo", seed: int = 0) -> Program:
    """The thread's kernel-module benchmark: each of ``threads`` CPUs allocates ``k`` objects then
    frees them, ``rounds`` times, in task context. ``free_order`` is ``fifo`` (first allocated,
    first freed), ``lifo`` (reverse) or ``random`` (a seeded shuffle per round).

    The thread says only "request 32 objects and then free 32 objects"; the order of the frees is
    not stated, hence the parameter."""
    for name, v, lo in (("threads", threads, 1), ("k", k, 1), ("rounds", rounds, 1)):
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise AllocsimError(f"microbench {name} must be an integer >= {lo}, not {v!r}")
    if free_order not in ("fifo", "lifo", "random"):
        raise AllocsimError(f"microbench free_order must be 'fifo', 'lifo' or 'random', not {free_order!r}")
    rng = np.random.default_rng(seed)
    per_cpu = 2 * k * rounds
    n = threads * per_cpu
    op = np.empty(n, np.int8)
    slot = np.empty(n, np.int64)
    base = 0
    pos = 0
    for _t in range(threads):
        for _r in range(rounds):
            ids = np.arange(base, base + k, dtype=np.int64)
            op[pos:pos + k] = ALLOC
            slot[pos:pos + k] = ids
            pos += k
            if free_order == "lifo":
                ids = ids[::-1]
            elif free_order == "random":
                ids = rng.permutation(ids)
            op[pos:pos + k] = FREE
            slot[pos:pos + k] = ids
            pos += k
            base += k
    start = np.arange(threads + 1, dtype=np.int64) * per_cpu
    return Program(start, op, np.zeros(n, np.int8), slot, np.zeros(n, np.int64), int(base)).validate()

"""Workload helpers shared by the SLUB model tests (imported by test_cpu_slab, test_sheaves, test_slub)."""

import numpy as np
import pytest

from allocsim.kernel import slub
from allocsim.kernel import stats as ss
from allocsim.kernel.oracle import slub as rslub
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, from_lists


def random_program(seed, ncpu=2, n=300, p_alloc=0.55, cross=0.3, irq=0.0, gap_max=0):
    """A random program: each step one CPU allocates a new slot or frees a live one (allocated earlier
    on any CPU, with probability ``cross`` on another CPU than the one freeing); frees run in hardirq or
    softirq context with probability ``irq``. Cannot deadlock (a FREE is generated after its ALLOC)."""
    rng = np.random.default_rng(seed)
    per_cpu = [[] for _ in range(ncpu)]
    owner = {}
    live = []
    nxt = 0
    for _ in range(n):
        cpu = int(rng.integers(ncpu))
        gap = int(rng.integers(gap_max + 1)) if gap_max else 0
        if not live or rng.random() < p_alloc:
            per_cpu[cpu].append((ALLOC, TASK, nxt, gap))
            owner[nxt] = cpu
            live.append(nxt)
            nxt += 1
            continue
        k = int(rng.integers(len(live)))
        s = live.pop(k)
        fcpu = owner[s] if rng.random() >= cross or ncpu == 1 else int(rng.integers(ncpu))
        ctx = TASK
        if rng.random() < irq:
            ctx = HARDIRQ if rng.random() < 0.8 else SOFTIRQ
        per_cpu[fcpu].append((FREE, ctx, s, gap))
    return from_lists(per_cpu, n_slots=nxt)


def path_names(result):
    return [ss.PATHS[p] for p in result.event_path]


def nonzero(stats):
    return {k: v for k, v in stats.items() if v}


def assert_same(a, b):
    """The numba model ``a`` and the oracle's result ``b`` agree event for event, object for object, count
    for count (the oracle names paths and counters itself; it reports only the counters it reached)."""
    assert path_names(a) == b.event_path
    assert a.extra["slot_obj"].tolist() == b.slot_obj.tolist()
    assert nonzero(a.stats) == b.stats
    assert a.cycles == pytest.approx(b.cycles, rel=1e-12)
    assert a.lock_wait == pytest.approx(b.lock_wait, rel=1e-12, abs=1e-9)
    assert np.allclose(a.clock, b.clock, rtol=1e-12)


def both(program, **kw):
    a = slub.run(program, **kw)
    b = rslub.run(program, **kw)
    assert_same(a, b)
    slub.audit(a)
    return a

"""Issue 11's hand-computed cases on the SLUB models with the memory hierarchy on (slub.run(hierarchy=…)):
LIFO reuse is all L1 hits, a batch that fits L1 stays in L1 and one that does not misses it on every object,
a free on another CPU of an object last written on this one pays one transfer; and the address regions of
allocsim.kernel.memory do not all start in the same cache set."""

from __future__ import annotations

import numpy as np
import pytest

from allocsim.facts import cpu as cpufacts
from allocsim.kernel import cache, memory, slub
from allocsim.kernel.program import ALLOC, FREE, TASK, Program
from allocsim.workloads.microbench import microbench

G = cpufacts.geometry(3.0)
#: an L1 of 64 lines (16 sets x 4 ways), the rest the default CPU's
SMALL_L1 = G.with_(l1_sets=16, l1_ways=4)


def counts(result) -> dict:
    h = result.extra["hierarchy"].sum(axis=0)
    return {n: int(v) for n, v in zip(cache.COUNTER_NAMES, h) if v}


def steady(kernel, k, order, geometry, object_size=64, early=8, late=12) -> dict:
    """What rounds ``early+1 .. late`` of the one-thread microbenchmark add (the cold start taken out)."""
    a = counts(slub.run(microbench(1, k, late, order), kernel=kernel, hierarchy=geometry, object_size=object_size))
    b = counts(slub.run(microbench(1, k, early, order), kernel=kernel, hierarchy=geometry, object_size=object_size))
    return {n: a.get(n, 0) - b.get(n, 0) for n in cache.COUNTER_NAMES if a.get(n, 0) - b.get(n, 0)}


@pytest.mark.parametrize("kernel", ["6.19", "7.0"])
def test_lifo_reuse_of_one_object_is_all_l1_hits(kernel):
    d = steady(kernel, 1, "lifo", True, object_size=256)
    assert set(d) == {"L1"} and d["L1"] > 0


@pytest.mark.parametrize("kernel", ["6.19", "7.0"])
def test_a_batch_that_fits_l1_stays_in_l1(kernel):
    # 16 one-line objects plus the per-CPU, kmem_cache, struct slab, sheaf and global lines: < 64 lines
    d = steady(kernel, 16, "fifo", SMALL_L1)
    assert set(d) == {"L1"}


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_a_batch_bigger_than_l1_misses_it_on_every_object(order):
    """6.19: every alloc reads, every free writes, the object's free pointer; 128 objects of one line each
    go through a 64-line L1 between an object's alloc and its free, so each round misses L1 at least once per
    object (and never needs more than L2)."""
    k, rounds = 128, 4
    d = steady("6.19", k, order, SMALL_L1)
    assert d.get("L2", 0) >= k * rounds and set(d) <= {"L1", "L2"}


def program(per_cpu) -> Program:
    """Per CPU a list of (op, slot, gap) task-context events."""
    start, op, ctx, slot, gap = [0], [], [], [], []
    for events in per_cpu:
        for o, s, g in events:
            op.append(o)
            ctx.append(TASK)
            slot.append(s)
            gap.append(g)
        start.append(len(op))
    return Program(np.array(start, np.int64), np.array(op, np.int8), np.array(ctx, np.int8),
                   np.array(slot, np.int64), np.array(gap, np.int64), max(slot) + 1)


def test_a_free_on_cpu_b_of_an_object_last_written_on_cpu_a_pays_one_transfer():
    """6.19: CPU 0 frees object x (set_freepointer() writes x), allocates it again (reads it), and CPU 1 frees
    it: __slab_free() writes x's free pointer on CPU 1, which takes the line from CPU 0's cache."""
    p = program([[(ALLOC, 0, 0), (FREE, 0, 0), (ALLOC, 1, 0)], [(FREE, 1, 1000)]])
    h = slub.run(p, kernel="6.19", hierarchy=True).extra["hierarchy"]
    assert h[1, cache.K_XSAME] == 1 and h[1, cache.K_XLLC] == 0 and h[0, cache.K_XSAME] == 0
    # the same on 7.0: free_to_pcs() stores the pointer in CPU 1's sheaf and never writes the object
    h = slub.run(p, kernel="7.0", hierarchy=True).extra["hierarchy"]
    assert h[1, cache.K_XSAME] == 0


def test_the_hierarchy_off_reports_nothing_and_on_is_deterministic():
    p = microbench(2, 8, 3)
    assert slub.run(p, kernel="7.0").extra["hierarchy"] is None
    a = slub.run(p, kernel="7.0", hierarchy=True)
    b = slub.run(p, kernel="7.0", hierarchy=True)
    assert a.cycles == b.cycles and (a.extra["hierarchy"] == b.extra["hierarchy"]).all()


def test_region_bases_fall_into_different_sets_at_every_level():
    bases = [memory.R_GLOBAL, memory.R_KMEM_CACHE, memory.R_PERCPU, memory.R_PCPU_STRUCT, memory.R_DESCRIPTOR,
             memory.R_STRUCT_PAGE, memory.R_SHEAF, memory.R_OBJECT]
    for sets in (G.l1_sets, G.l2_sets, G.llc_sets, SMALL_L1.l1_sets):
        assert len({b % sets for b in bases}) == len(bases), sets


def test_resolved_rows_compute_the_fixed_and_per_cpu_lines_by_hand():
    """memory.resolve_rows: one row per load or store: a kmem_cache row is its one line, a global row its own line
    (region + segment × MAX_ACCESSES + row), a per-CPU row its region (the CPU added at run time), a row done
    twice two rows, an object_lines row of three lines three rows with offsets 0, 1, 2; then one row of -1
    (as many rows per segment as the longest segment's accesses, plus that one)."""
    M = memory
    acc = np.full((2, M.MAXACC, 3), -1, np.int64)
    acc[0, 0] = (M.X_KMEM_CACHE, 0, 1)
    acc[0, 1] = (M.X_PCPU_STRUCT, 1, 2)
    acc[1, 0] = (M.X_OBJECT_LINES, 1, 3)
    acc[1, 1] = (M.X_GLOBAL, 0, 1)
    acc[1, 2] = (M.X_PERCPU, 0, 1)
    r = M.resolve_rows(acc)
    assert r.shape == (2, 6, 3)
    assert r[0, :3].tolist() == [[M.RK_FIXED, M.R_KMEM_CACHE, 0], [M.RK_CPU, M.R_PCPU_STRUCT, 1],
                                 [M.RK_CPU, M.R_PCPU_STRUCT, 1]]
    assert r[1, :5].tolist() == [[M.RK_OBJECT_LINES, 0, 1], [M.RK_OBJECT_LINES, 1, 1], [M.RK_OBJECT_LINES, 2, 1],
                                 [M.RK_FIXED, M.R_GLOBAL + 1 * M.MAXACC + 1, 0], [M.RK_CPU, M.R_PERCPU, 0]]
    assert (r[0, 3:] == -1).all() and (r[1, 5:] == -1).all()

"""The workload format and the shared scheduler/lock clocks."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.kernel import sim
from allocsim.kernel import program as trace
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, TASK


@pytest.mark.parametrize("order", ["fifo", "lifo", "random"])
def test_microbench_shape(order):
    p = trace.microbench(threads=3, k=5, rounds=4, free_order=order, seed=1)
    assert p.ncpu == 3 and p.n_events == 3 * 2 * 5 * 4 and p.n_slots == 3 * 5 * 4
    for c in range(3):
        ops = p.op[p.start[c]:p.start[c + 1]]
        assert list(ops[:5]) == [ALLOC] * 5 and list(ops[5:10]) == [FREE] * 5
    first_frees = p.slot[5:10]
    expect = {"fifo": [0, 1, 2, 3, 4], "lifo": [4, 3, 2, 1, 0]}
    if order in expect:
        assert list(first_frees) == expect[order]
    else:
        assert sorted(first_frees) == [0, 1, 2, 3, 4]


def test_microbench_is_deterministic():
    a = trace.microbench(2, 8, 3, "random", seed=7)
    b = trace.microbench(2, 8, 3, "random", seed=7)
    assert np.array_equal(a.slot, b.slot)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(threads=0, k=1, rounds=1), "microbench threads must be an integer >= 1"),
    (dict(threads=1, k=-3, rounds=1), "microbench k must be an integer >= 1"),
    (dict(threads=1, k=1, rounds=1, free_order="fofi"), "free_order must be 'fifo', 'lifo' or 'random'"),
])
def test_microbench_rejects_bad_input(kwargs, msg):
    with pytest.raises(AllocsimError, match=msg):
        trace.microbench(**kwargs)


@pytest.mark.parametrize("lists, msg", [
    ([[(ALLOC, TASK, 0), (ALLOC, TASK, 0)]], "allocated more than once"),
    ([[(ALLOC, TASK, 0), (FREE, TASK, 0), (FREE, TASK, 0)]], "freed more than once"),
    ([[(FREE, TASK, 0)]], "frees a slot it never allocates"),
    ([[(ALLOC, 7, 0)]], "ctx must be TASK"),
])
def test_program_validation(lists, msg):
    with pytest.raises(AllocsimError, match=msg):
        trace.from_lists(lists)


def test_next_cpu_earliest_clock_and_dependencies():
    # CPU 1 frees slot 0, which CPU 0 allocates only as its second event
    p = trace.from_lists([[(ALLOC, TASK, 1), (ALLOC, TASK, 0)], [(FREE, HARDIRQ, 0)]])
    clock = np.array([5.0, 0.0])
    pos = p.start[:-1].copy()
    slot_time = np.full(p.n_slots, -1.0)
    # CPU 1 has the earlier clock but waits on slot 0: CPU 0 runs
    assert sim.next_cpu(clock, pos, p.start, p.op, p.slot, slot_time, p.gap) == 0
    pos[0] = 2
    slot_time[0] = 9.0
    assert sim.next_cpu(clock, pos, p.start, p.op, p.slot, slot_time, p.gap) == 1
    pos[1] = p.start[2]
    assert sim.next_cpu(clock, pos, p.start, p.op, p.slot, slot_time, p.gap) == sim.DONE


def test_next_cpu_reports_deadlock():
    p = trace.from_lists([[(FREE, TASK, 0)], [(FREE, TASK, 1), (ALLOC, TASK, 0)], [(ALLOC, TASK, 1)]])
    clock = np.zeros(3)
    pos = p.start[:-1].copy()
    pos[2] = p.start[3]  # pretend CPU 2 never ran its alloc: program exhausted
    slot_time = np.full(p.n_slots, -1.0)
    assert sim.next_cpu(clock, pos, p.start, p.op, p.slot, slot_time, p.gap) == sim.DEADLOCK


def test_lock_clock():
    free_at, owner = sim.new_locks(1)
    t, waited, xfer = sim.lock_acquire(free_at, owner, 0, 0, 10.0, 80.0)
    assert (t, waited, xfer) == (10.0, 0.0, 0)  # never held: no wait, no transfer
    sim.lock_release(free_at, owner, 0, 0, 40.0)
    t, waited, xfer = sim.lock_acquire(free_at, owner, 0, 1, 25.0, 80.0)
    assert waited == 15.0 and xfer == 1 and t == 40.0 + 80.0
    sim.lock_release(free_at, owner, 0, 1, 130.0)
    t, waited, xfer = sim.lock_acquire(free_at, owner, 0, 1, 200.0, 80.0)
    assert (t, waited, xfer) == (200.0, 0.0, 0)  # same CPU held it last: line is local


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1000), min_size=1, max_size=6), st.floats(0, 1000), st.floats(0, 100))
def test_lock_wait_never_negative_and_serialises(clocks, hold, xfer):
    free_at, owner = sim.new_locks(1)
    last_release = 0.0
    for cpu, now in enumerate(clocks):
        t, waited, _ = sim.lock_acquire(free_at, owner, 0, cpu, now, xfer)
        assert waited >= 0 and t >= now and t >= last_release
        last_release = t + hold
        sim.lock_release(free_at, owner, 0, cpu, last_release)

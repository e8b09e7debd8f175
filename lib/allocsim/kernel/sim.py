"""The shared discrete-event machinery of the models: simulated CPUs with clocks, and shared locks
that remember when they become free and which CPU held them last.

All functions are ``@njit`` over plain arrays so that every model can call them from its own jitted
loop. A model's loop looks like::

    while True:
        cpu = next_cpu(clock, pos, start, op, slot, slot_time, gap)
        if cpu < 0: break            # -1: all programs done; -2: deadlock (a free that never becomes possible)
        i = pos[cpu]; pos[cpu] += 1
        clock[cpu] += gap[i]
        if op[i] == FREE: clock[cpu] = max(clock[cpu], slot_time[slot[i]])
        ... model work, charging cycles to clock[cpu]; shared locks via lock_acquire/lock_release ...
        if op[i] == ALLOC: slot_time[slot[i]] = clock[cpu]

A lock ``l`` is two entries: ``lock_free_at[l]`` (the clock value at which its last holder released
it) and ``lock_owner[l]`` (that holder, -1 if never taken). Acquiring waits until it is free and pays
one cache-line transfer when another CPU held it last; waiting time is returned so models can count
it. This is contention without threads, and it is deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from allocsim.kernel.program import FREE

DONE = -1
DEADLOCK = -2


@njit(cache=True)
def next_cpu(clock, pos, start, op, slot, slot_time, gap):
    """The runnable CPU whose next event starts earliest — its clock plus that event's ``gap`` (lowest
    index on ties): one whose next event is an ALLOC, or a FREE of a slot already allocated. Returns DONE
    when every program is finished and DEADLOCK when CPUs remain but all wait on slots nobody will
    allocate. (Comparing start times, not clocks, keeps a CPU with a long gap — an idle period of a
    recorded trace — from taking a shared lock "in the future" of the others.)"""
    best = -1
    best_t = np.inf  # clocks and gaps are finite: the first runnable CPU always beats it
    remaining = False
    for c in range(len(clock)):
        i = pos[c]
        if i >= start[c + 1]:
            continue
        remaining = True
        if op[i] == FREE and slot_time[slot[i]] < 0.0:
            continue
        t = clock[c] + gap[i]
        # a select, not a branch: which CPU is earliest changes from event to event, and a branch on it
        # would be mispredicted about once per event
        better = t < best_t
        best = c if better else best
        best_t = t if better else best_t
    if best >= 0:
        return best
    if remaining:
        return DEADLOCK
    return DONE


@njit(cache=True)
def lock_acquire(lock_free_at, lock_owner, lock, cpu, now, transfer_cycles):
    """Take shared lock ``lock`` at time ``now`` on ``cpu``. Returns ``(t, waited, transferred)``:
    the clock after acquiring, the cycles spent waiting for the holder, and 1 if the lock's cache
    line came from another CPU (charged ``transfer_cycles``), else 0."""
    waited = 0.0
    if lock_free_at[lock] > now:
        waited = lock_free_at[lock] - now
        now = lock_free_at[lock]
    transferred = 0
    if lock_owner[lock] >= 0 and lock_owner[lock] != cpu:
        now += transfer_cycles
        transferred = 1
    return now, waited, transferred


@njit(cache=True)
def lock_release(lock_free_at, lock_owner, lock, cpu, now):
    """Release ``lock`` at time ``now``: later acquirers wait until ``now``."""
    lock_free_at[lock] = now
    lock_owner[lock] = cpu


def new_locks(n: int):
    """Arrays for ``n`` shared locks, all free and never held."""
    return np.zeros(n, np.float64), np.full(n, -1, np.int64)

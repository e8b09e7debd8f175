"""The workload format every allocator model consumes: per-CPU *programs* of alloc/free events.

A program is a CSR layout over CPUs. CPU ``c`` runs events ``start[c]:start[c+1]`` in order.
Each event is

* ``op``   — :data:`ALLOC` or :data:`FREE`;
* ``ctx``  — the context the call runs in: :data:`TASK`, :data:`HARDIRQ` or :data:`SOFTIRQ`
  (the patch's ``in_task()`` / ``in_hardirq()`` split, and sheaves' ``local_trylock``);
* ``slot`` — a handle: an ALLOC stores the object it got into ``slot``; the FREE of that slot (on
  any CPU, later) frees that object. Every slot is allocated exactly once and freed at most once;
* ``gap``  — cycles of non-allocator work this CPU does before the event (the rest of the IO path,
  or the device latency a completion waits for).

A FREE on CPU ``b`` of a slot allocated on CPU ``a`` cannot run before that ALLOC: the scheduler
(:mod:`allocsim.kernel.sim`) makes ``b`` wait. Models process events CPU by CPU, always advancing the CPU
whose next event starts earliest — its clock plus the event's gap (DESIGN §4), so the interleaving — and with it lock contention — follows
from the costs, deterministically.

Workload generators live beside this module: :func:`microbench` here (the thread's kernel-module
benchmark); the io_uring direct-read loop in :mod:`allocsim.workloads.iouring`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocsim.facts.errors import AllocsimError

ALLOC, FREE = 0, 1
TASK, HARDIRQ, SOFTIRQ = 0, 1, 2
CTX_NAMES = {"task": TASK, "hardirq": HARDIRQ, "softirq": SOFTIRQ}
OP_NAMES = {ALLOC: "alloc", FREE: "free"}


@dataclass(frozen=True)
class Program:
    start: np.ndarray  # int64[ncpu + 1]
    op: np.ndarray  # int8[n]
    ctx: np.ndarray  # int8[n]
    slot: np.ndarray  # int64[n]
    gap: np.ndarray  # int64[n]
    n_slots: int

    @property
    def ncpu(self) -> int:
        return len(self.start) - 1

    @property
    def n_events(self) -> int:
        return len(self.op)

    def arrays(self):
        """The tuple the jitted models take: (start, op, ctx, slot, gap, n_slots)."""
        return self.start, self.op, self.ctx, self.slot, self.gap, self.n_slots

    def validate(self) -> "Program":
        """Check the invariants the models rely on; raise :class:`AllocsimError` naming the first
        violation. Cheap (vectorised); generators call it before returning."""
        n = len(self.op)
        if not (len(self.ctx) == len(self.slot) == len(self.gap) == n):
            raise AllocsimError("program arrays op, ctx, slot and gap must have the same length")
        if self.start[0] != 0 or self.start[-1] != n or np.any(np.diff(self.start) < 0):
            raise AllocsimError("program start offsets must rise from 0 to the number of events")
        if n and (self.slot.min() < 0 or self.slot.max() >= self.n_slots):
            raise AllocsimError(f"program slots must lie in 0..{self.n_slots - 1}")
        if np.any((self.op != ALLOC) & (self.op != FREE)):
            raise AllocsimError("program op must be ALLOC (0) or FREE (1)")
        if np.any((self.ctx < TASK) | (self.ctx > SOFTIRQ)):
            raise AllocsimError("program ctx must be TASK (0), HARDIRQ (1) or SOFTIRQ (2)")
        if np.any(self.gap < 0):
            raise AllocsimError("program gap cycles must be >= 0")
        allocs = self.slot[self.op == ALLOC]
        frees = self.slot[self.op == FREE]
        if len(np.unique(allocs)) != len(allocs):
            raise AllocsimError("a program slot is allocated more than once")
        if len(np.unique(frees)) != len(frees):
            raise AllocsimError("a program slot is freed more than once")
        if not np.all(np.isin(frees, allocs)):
            raise AllocsimError("a program frees a slot it never allocates")
        return self


def from_lists(per_cpu: list[list[tuple]], n_slots: int | None = None) -> Program:
    """Build a program from Python lists of ``(op, ctx, slot[, gap])`` per CPU (tests, examples)."""
    start = [0]
    ops, ctxs, slots, gaps = [], [], [], []
    for events in per_cpu:
        for ev in events:
            ops.append(ev[0]); ctxs.append(ev[1]); slots.append(ev[2]); gaps.append(ev[3] if len(ev) > 3 else 0)
        start.append(len(ops))
    n_slots = (max(slots) + 1 if slots else 0) if n_slots is None else n_slots
    return Program(
        np.asarray(start, np.int64), np.asarray(ops, np.int8), np.asarray(ctxs, np.int8),
        np.asarray(slots, np.int64), np.asarray(gaps, np.int64), int(n_slots),
    ).validate()


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

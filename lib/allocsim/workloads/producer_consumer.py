"""Synthetic workloads the recorded traces suggest, beside :mod:`allocsim.workloads.iouring`.

**Producer/consumer** (:class:`ProducerConsumer`): one set of CPUs only allocates, another only frees —
the pattern of a network driver allocating skbs on the CPU that takes the receive interrupt and the
socket's reader freeing them on another, or of a bio allocated by the submitter and completed on the CPU
that owns the interrupt. The shipped ``iomap_dio`` trace has it in part: every free on CPU 1 in softirq
context, while CPU 0 only allocates. Each producer allocates batches of ``batch`` objects; a consumer
frees each batch in the order it was allocated (``fifo``) or reversed (``lifo``), in context ``ctx``.
Producer ``p`` hands batch ``b`` to consumer ``(p + b) % consumers``. How far the producers run ahead
follows from the gaps: a consumer's free waits for its allocation (:mod:`allocsim.kernel.sim`), and the
CPU whose next event starts earliest moves next, so with ``consume_gap <= produce_gap`` the consumers
keep up and about one batch per producer is in flight, while a slower consumer lets the backlog grow
(a producer never waits for a consumer: the program format has no such dependency, like a driver that
keeps allocating receive buffers).

**Mixed-size background** (:class:`Background`): other ``kmalloc`` users that share the cache — any
request whose size rounds to the same kmalloc class (``kmalloc_slab()``; 65–96 bytes all land in
kmalloc-96) takes objects from the same slabs, sheaves and partial lists. Each CPU runs a seeded stream
of such allocations with request sizes drawn from ``sizes`` (only those in the same class are kept: the
rest go to other caches and do not touch this one), each freed after a geometric number of that CPU's
later events (mean ``mean_life``), in a context drawn from the shares. :func:`mix` interleaves such a
background into any program, CPU by CPU, so the io_uring or a recorded workload can be replayed with
company.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocsim.facts import kconfig
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, Program

_CTX = {"task": TASK, "hardirq": HARDIRQ, "softirq": SOFTIRQ}


def _int(name, v, lo, what):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise AllocsimError(f"{what} {name} must be an integer >= {lo}, not {v!r}")


@dataclass(frozen=True)
class ProducerConsumer:
    producers: int = 1
    consumers: int = 1
    objects: int = 20_000  # per producer
    batch: int = 32
    ctx: str = "softirq"  # context of the frees
    order: str = "fifo"  # order in which a consumer frees a batch
    produce_gap: int = 0  # non-allocator cycles before each allocation
    consume_gap: int = 0  # ... before each free

    def validate(self) -> "ProducerConsumer":
        w = "producer/consumer"
        for name, lo in (("producers", 1), ("consumers", 1), ("objects", 1), ("batch", 1),
                         ("produce_gap", 0), ("consume_gap", 0)):
            _int(name, getattr(self, name), lo, w)
        if self.ctx not in _CTX:
            raise AllocsimError(f"{w} ctx must be one of {', '.join(map(repr, _CTX))}, not {self.ctx!r}")
        if self.order not in ("fifo", "lifo"):
            raise AllocsimError(f"{w} order must be 'fifo' or 'lifo', not {self.order!r}")
        return self


def producer_consumer(cfg: ProducerConsumer = ProducerConsumer()) -> Program:
    """CPUs ``0 .. producers-1`` allocate, CPUs ``producers .. producers+consumers-1`` free, batch by batch
    (see the module docstring). Slot ``p * objects + i`` is producer ``p``'s ``i``-th object."""
    cfg.validate()
    P, C, n, b = cfg.producers, cfg.consumers, cfg.objects, cfg.batch
    ncpu = P + C
    per_cpu_ops: list[list[np.ndarray]] = [[] for _ in range(ncpu)]
    per_cpu_slots: list[list[np.ndarray]] = [[] for _ in range(ncpu)]
    nb = -(-n // b)
    for p in range(P):
        base = p * n
        for k in range(nb):
            lo, hi = k * b, min(n, (k + 1) * b)
            ids = np.arange(base + lo, base + hi, dtype=np.int64)
            per_cpu_ops[p].append(np.full(len(ids), ALLOC, np.int8))
            per_cpu_slots[p].append(ids)
    # consumers: batches in the order they are produced (round by round over producers)
    for k in range(nb):
        for p in range(P):
            lo, hi = k * b, min(n, (k + 1) * b)
            ids = np.arange(p * n + lo, p * n + hi, dtype=np.int64)
            if cfg.order == "lifo":
                ids = ids[::-1]
            c = P + (p + k) % C
            per_cpu_ops[c].append(np.full(len(ids), FREE, np.int8))
            per_cpu_slots[c].append(ids)
    return _assemble(per_cpu_ops, per_cpu_slots, ncpu, P * n, _CTX[cfg.ctx], cfg.produce_gap, cfg.consume_gap)


def _assemble(ops, slots, ncpu, n_slots, free_ctx, produce_gap, consume_gap) -> Program:
    op_l, slot_l, ctx_l, gap_l, start = [], [], [], [], [0]
    for c in range(ncpu):
        o = np.concatenate(ops[c]) if ops[c] else np.empty(0, np.int8)
        s = np.concatenate(slots[c]) if slots[c] else np.empty(0, np.int64)
        op_l.append(o)
        slot_l.append(s)
        ctx_l.append(np.where(o == FREE, free_ctx, TASK).astype(np.int8))
        gap_l.append(np.where(o == FREE, consume_gap, produce_gap).astype(np.int64))
        start.append(start[-1] + len(o))
    prog = Program(np.asarray(start, np.int64), np.concatenate(op_l), np.concatenate(ctx_l),
                   np.concatenate(slot_l), np.concatenate(gap_l), int(n_slots))
    return prog.validate()


@dataclass(frozen=True)
class Background:
    ncpu: int = 2
    events: int = 20_000  # allocations per CPU
    sizes: tuple = (72, 80, 88, 96, 128, 192)  # request sizes, drawn uniformly
    object_size: int = 96  # the cache whose class is shared
    mean_life: float = 64.0  # mean lifetime, in this CPU's later events
    task_share: float = 0.7
    hardirq_share: float = 0.1
    softirq_share: float = 0.2
    seed: int = 0

    def validate(self) -> "Background":
        w = "background"
        _int("ncpu", self.ncpu, 1, w)
        _int("events", self.events, 1, w)
        if not self.sizes or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in self.sizes):
            raise AllocsimError(f"{w} sizes must be a non-empty list of positive integers, not {self.sizes!r}")
        if not (isinstance(self.mean_life, (int, float)) and self.mean_life >= 1):
            raise AllocsimError(f"{w} mean_life must be a number >= 1, not {self.mean_life!r}")
        tot = self.task_share + self.hardirq_share + self.softirq_share
        if min(self.task_share, self.hardirq_share, self.softirq_share) < 0 or abs(tot - 1) > 1e-9:
            raise AllocsimError(f"{w} context shares must be >= 0 and add up to 1, not {tot:g}")
        return self

    def same_class(self) -> np.ndarray:
        """The request sizes that land in ``object_size``'s kmalloc class."""
        cls = kconfig.kmalloc_size(self.object_size)
        return np.array([s for s in self.sizes if s <= kconfig.kmalloc_sizes()[-1] and kconfig.kmalloc_size(s) == cls],
                        np.int64)


def background(cfg: Background = Background()) -> Program:
    """Per CPU, ``events`` draws of a request size; those in the cache's class become an allocation freed
    after a geometric number of that CPU's later allocations (FIFO among equal times). Everything is freed
    by the end."""
    cfg.validate()
    rng = np.random.default_rng([cfg.seed, 0xB6])
    keep_sizes = set(cfg.same_class().tolist())
    start, ops, slots, ctxs = [0], [], [], []
    next_slot = 0
    for c in range(cfg.ncpu):
        sizes = rng.choice(np.asarray(cfg.sizes, np.int64), cfg.events)
        mine = np.isin(sizes, list(keep_sizes))
        k = int(mine.sum())
        ids = np.arange(next_slot, next_slot + k, dtype=np.int64)
        next_slot += k
        life = rng.geometric(1.0 / cfg.mean_life, k)
        u = rng.random(k)
        fctx = np.where(u < cfg.task_share, TASK, np.where(u < cfg.task_share + cfg.hardirq_share, HARDIRQ, SOFTIRQ))
        # event times: allocation j at 2j, its free just after allocation j + life (odd times: after)
        t_alloc = 2 * np.arange(k, dtype=np.int64)
        t_free = 2 * np.minimum(np.arange(k) + life, k) + 1
        t = np.concatenate([t_alloc, t_free])
        o = np.concatenate([np.full(k, ALLOC, np.int8), np.full(k, FREE, np.int8)])
        s = np.concatenate([ids, ids])
        x = np.concatenate([np.full(k, TASK, np.int8), fctx.astype(np.int8)])
        idx = np.lexsort((np.arange(2 * k), t))
        ops.append(o[idx]); slots.append(s[idx]); ctxs.append(x[idx])
        start.append(start[-1] + 2 * k)
    n = start[-1]
    return Program(np.asarray(start, np.int64), np.concatenate(ops), np.concatenate(ctxs), np.concatenate(slots),
                   np.zeros(n, np.int64), int(next_slot)).validate()


def mix(a: Program, b: Program, seed: int = 0) -> Program:
    """``a`` and ``b`` on the same CPUs, each CPU's two event streams interleaved by a seeded random merge
    (each stream keeps its order); ``b``'s slots are renumbered after ``a``'s. CPUs missing in one program
    run only the other's events."""
    ncpu = max(a.ncpu, b.ncpu)
    rng = np.random.default_rng([seed, 0x31C])
    start, parts = [0], {k: [] for k in ("op", "ctx", "slot", "gap")}
    for c in range(ncpu):
        sa = slice(a.start[c], a.start[c + 1]) if c < a.ncpu else slice(0, 0)
        sb = slice(b.start[c], b.start[c + 1]) if c < b.ncpu else slice(0, 0)
        na, nb = sa.stop - sa.start, sb.stop - sb.start
        pick_b = np.zeros(na + nb, bool)
        pick_b[rng.choice(na + nb, nb, replace=False)] = True
        for k, arr_a, arr_b in (("op", a.op[sa], b.op[sb]), ("ctx", a.ctx[sa], b.ctx[sb]),
                                ("slot", a.slot[sa], b.slot[sb] + a.n_slots), ("gap", a.gap[sa], b.gap[sb])):
            out = np.empty(na + nb, arr_a.dtype)
            out[~pick_b] = arr_a
            out[pick_b] = arr_b
            parts[k].append(out)
        start.append(start[-1] + na + nb)
    return Program(np.asarray(start, np.int64), *(np.concatenate(parts[k]) for k in ("op", "ctx", "slot", "gap")),
                   a.n_slots + b.n_slots).validate()


def background_for(program: Program, share: float = 0.5, cfg: Background = Background(), seed: int = 0) -> Program:
    """``program`` with a background whose allocations are ``share`` of all allocations on each CPU."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise AllocsimError(f"background share must be a number from 0 to below 1, not {share!r}")
    if share == 0:
        return program
    n_alloc = int(np.count_nonzero(program.op == ALLOC))
    per_cpu = max(1, int(round(n_alloc * share / (1 - share) / program.ncpu)))
    kept = len(cfg.same_class()) / len(cfg.sizes)
    if kept == 0:
        raise AllocsimError(f"none of the background sizes {cfg.sizes} lands in kmalloc-{kconfig.kmalloc_size(cfg.object_size)}")
    bg = background(Background(**{**cfg.__dict__, "ncpu": program.ncpu, "events": int(np.ceil(per_cpu / kept)),
                                  "seed": seed}))
    return mix(program, bg, seed)

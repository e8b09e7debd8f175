"""The io_uring direct-read workload of the thread's measurements, as an :class:`allocsim.kernel.program.Program`.

One ``struct iomap_dio`` is allocated per IO at submission (``__iomap_dio_rw()``, task context on the
submitting CPU) and freed at completion (``iomap_dio_complete()``, in whatever context the bio's
end_io runs: ``blk_mq_complete_request()`` → ``blk_mq_complete_request_remote()`` in
block/blk-mq.c, v6.19/v7.0: hard IRQ on the interrupted CPU, BLOCK_SOFTIRQ, or task context when polled). The submitter loop mirrors ``submitter_fn()`` / ``submitter_uring_fn()``
of fio's ``t/io_uring.c``, the tool the patch authors ran (the thread names the tool, never its options):

.. code-block:: c

    if (!prepped && s->inflight < depth) {
        to_prep = min(depth - s->inflight, batch_submit);
        prepped = prep_more_ios(s, to_prep);
    }
    s->inflight += prepped;
    to_submit = prepped;
    if (to_submit && (s->inflight + to_submit <= depth))
        to_wait = 0;
    else
        to_wait = min(s->inflight + to_submit, batch_complete);
    ret = io_uring_enter(s, to_submit, to_wait, flags);   /* submit, then wait */
    this_reap = reap_events(s);

So a submitter first fills its queue in batches of ``submit_batch`` without waiting, and from then on
alternates "submit a batch, wait for ``complete_batch`` completions". Each pass of that loop is a
*step*; a step's allocations (the submissions) come before its frees (the completions it waits for).

Completions: where and in which context each IO's free runs. By default (``placement='blkmq'``) the
reader sets the *topology* and blk-mq's own rules decide (:mod:`allocsim.workloads.blkmq`, mirroring
``blk_mq_complete_request()`` of v7.0 ``block/blk-mq.c``): each IO's interrupt lands on the submitting CPU,
on another CPU of the submitter's last-level cache or on a CPU of another LLC (``irq_same_cpu_share``,
``irq_same_llc_share``, ``irq_other_llc_share``; the CPU within a set is a seeded uniform draw); then

* polled I/O (``polled``, t/io_uring ``-p1``, fio ``--hipri``) completes in **task** context on the submitter;
* an interrupt on the submitting CPU, or (``rq_affinity`` 1, the default) on a CPU sharing its LLC, completes
  in **hardirq** context on the IRQ CPU — another CPU than the submitter unless it is the submitter;
* an interrupt on a CPU of another LLC (or on any other CPU with ``rq_affinity=2``) is sent back by IPI and
  completes in **BLOCK_SOFTIRQ on the submitting CPU**;
* otherwise, with a single hardware queue (``nr_hw_queues=1``), in **BLOCK_SOFTIRQ on the IRQ CPU**.

The defaults — every interrupt on the submitting CPU, one queue per CPU (``nr_hw_queues=0``),
``rq_affinity=1``, not polled — give what the book has always modelled for ``t/io_uring -p0``: every free in
hardirq context on the submitting CPU. CPUs are numbered consecutively, ``llc_cpus`` to an LLC (CPU ``c`` in LLC ``c // llc_cpus``,
as the memory hierarchy of :mod:`allocsim.kernel.cache` numbers them; 0 = automatic: the submitters, plus one
CPU if ``irq_same_llc_share > 0``, share LLC 0). The program has the CPUs the placement needs (``ncpu`` 0): the
submitters; with ``irq_same_llc_share > 0`` the rest of each submitter's LLC; with ``irq_other_llc_share > 0``
and the submitters in one LLC, the first CPU of the next (CPU ``llc_cpus``). A CPU that no interrupt lands on
takes no part in the run (it only counts for the models' CPUs present).

``placement='independent'`` is the pre-v2 model, kept so that the book's model changelog can show what the
coupling changed: the context is a seeded draw with shares ``task_share`` / ``hardirq_share`` /
``softirq_share``, and independently a share ``cross_cpu_share`` of completions runs on *another* CPU,
a seeded uniform draw among the other ``n_cpus - 1`` CPUs (that CPU only frees). Each placement's
fields must stay at their defaults under the other.

In both, a completing CPU other than the submitter only frees: its FREE events appear in its own program
in step order, and the scheduler in :mod:`allocsim.kernel.sim` makes each wait for its ALLOC. CPUs
``submitters .. n_cpus-1`` (if any) submit nothing.

Simplifications (each a parameter or stated here):

* The device completes exactly the IOs the submitter waits for, at the moment it waits (no
  completions arrive early and are reaped in passing). Device latency matters only through the
  order of completions: ``completion_order='fifo'`` (oldest in-flight IO first, the default) or
  ``'random'`` (each wait completes a seeded random choice of the in-flight IOs).
* Non-allocator CPU work per IO is ``submit_gap`` cycles before each allocation and
  ``complete_gap`` cycles before each free (both 0 by default: the allocator models charge only
  their own cycles, and the IOPS chapter adds the base cost per IO).
* With ``drain=True`` (default) the program ends by reaping every in-flight IO, so every slot is
  freed. With ``drain=False`` it stops right after the step that submits the last IO, leaving
  ``queue_depth`` IOs in flight; such programs are prefixes of one another, which is what
  :func:`steady_state` uses to measure the steady state exactly.

Slot ``s * ios + i`` is IO ``i`` of submitter ``s``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from allocsim.facts.errors import AllocsimError
from allocsim.kernel.cache import COUNTER_NAMES
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, Program
from allocsim.workloads import blkmq

_ORDERS = ("fifo", "random")
# Separate seeded streams per submitter and purpose, so that a program with more IOs extends the
# one with fewer (prefix stability) and changing one share does not reshuffle the others.
_RNG_CTX, _RNG_CROSS, _RNG_TARGET, _RNG_ORDER, _RNG_IRQ_WHERE, _RNG_IRQ_CPU = 0, 1, 2, 3, 4, 5
#: The fields of each placement model; under the other model each must keep its default.
TOPOLOGY = ("polled", "irq_same_cpu_share", "irq_same_llc_share", "irq_other_llc_share", "nr_hw_queues",
            "rq_affinity", "llc_cpus")
INDEPENDENT = ("task_share", "hardirq_share", "softirq_share", "cross_cpu_share")
#: The hierarchy's counters of accesses that took the line from another CPU's cache (allocsim.kernel.cache).
TRANSFERS = ("XSAME", "XLLC", "XNODE")


@dataclass(frozen=True)
class IOUring:
    """One t/io_uring run. Defaults: one thread, ``-d128 -s32 -c32`` (t/io_uring's own defaults — the
    thread never gives the authors' options, so the batches are the book's assumption), interrupt
    completions (``-p0``) on the submitting CPU of an NVMe-like device with one queue per CPU."""

    submitters: int = 1  # submitter threads, one per CPU (t/io_uring -n)
    queue_depth: int = 128  # -d
    submit_batch: int = 32  # -s
    complete_batch: int = 32  # -c
    ios: int = 20_000  # IOs per submitter
    placement: str = "blkmq"  # 'blkmq' (context and CPU from the topology) or 'independent' (pre-v2)
    polled: bool = False  # REQ_POLLED: t/io_uring -p1, fio --hipri (blkmq)
    irq_same_cpu_share: float = 1.0  # interrupts on the submitting CPU (blkmq)
    irq_same_llc_share: float = 0.0  # interrupts on another CPU sharing its LLC (blkmq)
    irq_other_llc_share: float = 0.0  # interrupts on a CPU in another LLC (blkmq)
    nr_hw_queues: int = 0  # hardware queues; 0 = one per CPU, 1 = a single queue (blkmq)
    rq_affinity: int = 1  # /sys/block/*/queue/rq_affinity: 0, 1 (SAME_COMP, default), 2 (SAME_FORCE) (blkmq)
    llc_cpus: int = 0  # CPUs per last-level cache, numbered consecutively; 0 = automatic (blkmq)
    task_share: float = 0.0  # completions in task context (independent, pre-v2)
    hardirq_share: float = 1.0  # completions in hardirq context (independent, pre-v2)
    softirq_share: float = 0.0  # completions in softirq context (independent, pre-v2)
    cross_cpu_share: float = 0.0  # completions that run on another CPU (independent, pre-v2)
    ncpu: int = 0  # CPUs in the program; 0 = automatic (the submitters plus the CPUs the placement needs)
    completion_order: str = "fifo"  # 'fifo' or 'random' (see module docstring)
    submit_gap: int = 0  # non-allocator cycles before each allocation
    complete_gap: int = 0  # non-allocator cycles before each free
    drain: bool = True  # reap every in-flight IO at the end
    warmup: int = 4096  # IOs per submitter that steady_state() leaves out
    seed: int = 0

    @classmethod
    def from_t_io_uring(cls, p: int = 0, d: int = 128, s: int = 32, c: int = 32, n: int = 1, **kw) -> "IOUring":
        """The workload of ``t/io_uring -p<p> -d<d> -s<s> -c<c> -n<n>``: ``-p1`` is polled I/O (task
        context on the submitter), ``-p0`` interrupts placed by the topology in ``kw``."""
        if p not in (0, 1):
            raise AllocsimError(f"t/io_uring -p must be 0 (interrupts) or 1 (polled), not {p!r}")
        if kw.get("placement", "blkmq") == "independent":
            shares = dict(task_share=1.0, hardirq_share=0.0, softirq_share=0.0) if p == 1 else {}
        else:
            shares = dict(polled=p == 1)
        return cls(submitters=n, queue_depth=d, submit_batch=s, complete_batch=c, **{**shares, **kw}).validate()

    @property
    def n_cpus(self) -> int:
        if self.ncpu:
            return self.ncpu
        if self.placement == "independent":
            return self.submitters + (1 if self.cross_cpu_share > 0 else 0)
        # blkmq: the submitters, plus what the interrupts need — the rest of each submitter's LLC when some
        # land on another CPU of it, and the first CPU of the next LLC when some land in another LLC and the
        # submitters fill only one (CPU c is in LLC c // llc_size)
        llc, n = self.llc_size, self.submitters
        llcs = -(-n // llc)
        if self.irq_same_llc_share > 0:
            n = max(n, llcs * llc)
        if self.irq_other_llc_share > 0 and llcs == 1:
            n = max(n, llc + 1)
        return n

    @property
    def llc_size(self) -> int:
        """CPUs per last-level cache (``llc_cpus``, or automatic: the submitters plus one CPU if some
        interrupts land on another CPU of their LLC)."""
        if self.llc_cpus:
            return self.llc_cpus
        return self.submitters + (1 if self.irq_same_llc_share > 0 else 0)

    def topology(self) -> dict:
        """The blk-mq topology fields, as :func:`allocsim.workloads.blkmq.shares` takes them."""
        return {k: getattr(self, k) for k in TOPOLOGY if k != "llc_cpus"}

    def completion_shares(self) -> dict:
        """Expected share of completions in task, hardirq and softirq context and on another CPU than the
        submitter's (``{"task", "hardirq", "softirq", "other_cpu"}``), under either placement."""
        if self.placement == "independent":
            return {"task": self.task_share, "hardirq": self.hardirq_share, "softirq": self.softirq_share,
                    "other_cpu": self.cross_cpu_share}
        return blkmq.shares(**self.topology())

    def validate(self) -> "IOUring":
        """Raise :class:`AllocsimError` naming the first bad field; return ``self``."""
        for name, lo in (("submitters", 1), ("queue_depth", 1), ("submit_batch", 1), ("complete_batch", 1),
                         ("ios", 1), ("ncpu", 0), ("submit_gap", 0), ("complete_gap", 0), ("warmup", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise AllocsimError(f"io_uring {name} must be an integer >= {lo}, not {v!r}")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            raise AllocsimError(f"io_uring seed must be an integer >= 0, not {self.seed!r}")
        if self.submit_batch > self.queue_depth:
            raise AllocsimError(f"io_uring submit_batch ({self.submit_batch}) must not exceed queue_depth ({self.queue_depth})")
        if self.complete_batch > self.queue_depth:
            raise AllocsimError(f"io_uring complete_batch ({self.complete_batch}) must not exceed queue_depth ({self.queue_depth})")
        if not isinstance(self.placement, str) or self.placement not in blkmq.PLACEMENTS:
            raise AllocsimError(f"io_uring placement must be one of {', '.join(map(repr, blkmq.PLACEMENTS))}, not {self.placement!r}")
        theirs = INDEPENDENT if self.placement == "blkmq" else TOPOLOGY
        d = _DEFAULTS
        for name in theirs:
            if getattr(self, name) != d[name]:
                raise AllocsimError(f"io_uring {name} belongs to placement={'independent' if self.placement == 'blkmq' else 'blkmq'!r}, "
                                    f"not to placement={self.placement!r}: leave it at {d[name]!r} or change placement")
        for name in ("task_share", "hardirq_share", "softirq_share", "cross_cpu_share"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not 0.0 <= v <= 1.0:
                raise AllocsimError(f"io_uring {name} must be a number from 0 to 1, not {v!r}")
        total = self.task_share + self.hardirq_share + self.softirq_share
        if abs(total - 1.0) > 1e-9:
            raise AllocsimError(f"io_uring completion shares task_share + hardirq_share + softirq_share must add up to 1, not {total:g}")
        blkmq.check_shares(self.irq_same_cpu_share, self.irq_same_llc_share, self.irq_other_llc_share, "io_uring ")
        blkmq.blk_mq_complete_request(blkmq.SAME_CPU, polled=self.polled, nr_hw_queues=self.nr_hw_queues,
                                      rq_affinity=self.rq_affinity)
        if isinstance(self.llc_cpus, bool) or not isinstance(self.llc_cpus, (int, np.integer)) or self.llc_cpus < 0:
            raise AllocsimError(f"io_uring llc_cpus must be an integer >= 0 (0: automatic), not {self.llc_cpus!r}")
        if self.ncpu and self.ncpu < self.submitters:
            raise AllocsimError(f"io_uring ncpu ({self.ncpu}) must be 0 (automatic) or at least submitters ({self.submitters})")
        if self.cross_cpu_share > 0 and self.n_cpus < 2:
            raise AllocsimError("io_uring cross_cpu_share > 0 needs at least 2 CPUs (set ncpu >= 2 or leave it 0)")
        if self.placement == "blkmq":
            for s in range(self.submitters):
                same, other = blkmq.candidates(s, self.llc_size, self.n_cpus)
                if self.irq_same_llc_share > 0 and not len(same):
                    raise AllocsimError(f"io_uring irq_same_llc_share > 0 needs another CPU in the LLC of submitter {s} "
                                        f"({self.n_cpus} CPUs, {self.llc_size} per LLC): raise ncpu or llc_cpus, or leave them 0")
                if self.irq_other_llc_share > 0 and not len(other):
                    raise AllocsimError(f"io_uring irq_other_llc_share > 0 needs a CPU outside the LLC of submitter {s} "
                                        f"({self.n_cpus} CPUs, {self.llc_size} per LLC): raise ncpu or lower llc_cpus, or leave them 0")
        if self.completion_order not in _ORDERS:
            raise AllocsimError(f"io_uring completion_order must be one of {', '.join(map(repr, _ORDERS))}, not {self.completion_order!r}")
        if not isinstance(self.drain, bool):
            raise AllocsimError(f"io_uring drain must be true or false, not {self.drain!r}")
        return self


def steps(cfg: IOUring) -> list[tuple[int, int]]:
    """The t/io_uring loop of one submitter as a list of ``(submitted, waited)`` per step: how many
    IOs each pass of ``submitter_fn`` submits and then waits for (the same for every submitter)."""
    cfg.validate()
    out = []
    inflight = submitted = 0
    while True:
        if submitted == cfg.ios and (not cfg.drain or inflight == 0):
            break
        prep = 0
        if inflight < cfg.queue_depth and submitted < cfg.ios:
            prep = min(cfg.queue_depth - inflight, cfg.submit_batch, cfg.ios - submitted)
        inflight += prep
        submitted += prep
        if prep and inflight + prep <= cfg.queue_depth:
            wait = 0
        else:
            wait = min(inflight, cfg.complete_batch)  # min(inflight + to_submit, batch_complete), capped by what is in flight
        inflight -= wait
        out.append((prep, wait))
    return out


def _rng(cfg: IOUring, submitter: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, submitter, purpose])


def placement(cfg: IOUring, submitter: int) -> tuple[np.ndarray, np.ndarray]:
    """``(context, cpu)`` of the completion of each of ``submitter``'s IOs, a pure function of ``cfg``
    (seeded): with ``placement='blkmq'`` the topology's interrupt CPUs through blk-mq's rules
    (:func:`allocsim.workloads.blkmq.place`, mirroring ``blk_mq_complete_request()`` of v7.0
    ``block/blk-mq.c``); with ``'independent'`` (pre-v2) a context and a CPU drawn independently."""
    cfg.validate()
    if cfg.placement == "independent":
        return _contexts(cfg, submitter), _completion_cpus(cfg, submitter)
    u_where = _rng(cfg, submitter, _RNG_IRQ_WHERE).random(cfg.ios)
    u_cpu = _rng(cfg, submitter, _RNG_IRQ_CPU).random(cfg.ios)
    ctx, cpu, _ = blkmq.place(u_where, u_cpu, submitter, n_cpus=cfg.n_cpus, llc_cpus=cfg.llc_size, **cfg.topology())
    return ctx, cpu


def _contexts(cfg: IOUring, submitter: int) -> np.ndarray:
    u = _rng(cfg, submitter, _RNG_CTX).random(cfg.ios)
    ctx = np.full(cfg.ios, SOFTIRQ, np.int8)
    ctx[u < cfg.task_share + cfg.hardirq_share] = HARDIRQ
    ctx[u < cfg.task_share] = TASK
    return ctx


def _completion_cpus(cfg: IOUring, submitter: int) -> np.ndarray:
    cpu = np.full(cfg.ios, submitter, np.int64)
    if cfg.cross_cpu_share <= 0:
        return cpu
    cross = _rng(cfg, submitter, _RNG_CROSS).random(cfg.ios) < cfg.cross_cpu_share
    others = cfg.n_cpus - 1
    t = np.minimum((_rng(cfg, submitter, _RNG_TARGET).random(cfg.ios) * others).astype(np.int64), others - 1)
    t = t + (t >= submitter)  # skip the submitting CPU itself
    cpu[cross] = t[cross]
    return cpu


def _completion_order(cfg: IOUring, submitter: int, plan: list[tuple[int, int]]) -> list[np.ndarray]:
    """The IO indices each step completes, oldest first (fifo) or a seeded choice (random)."""
    out = []
    if cfg.completion_order == "fifo":
        done = submitted = 0
        for prep, wait in plan:
            submitted += prep
            out.append(np.arange(done, done + wait, dtype=np.int64))
            done += wait
        return out
    rng = _rng(cfg, submitter, _RNG_ORDER)
    inflight: list[int] = []
    submitted = 0
    for prep, wait in plan:
        inflight.extend(range(submitted, submitted + prep))
        submitted += prep
        pick = np.sort(rng.choice(len(inflight), size=wait, replace=False)) if wait else np.empty(0, np.int64)
        chosen = [inflight[j] for j in pick]
        rng.shuffle(chosen)
        keep = np.ones(len(inflight), bool)
        keep[pick] = False
        inflight = [x for x, k in zip(inflight, keep) if k]
        out.append(np.asarray(chosen, np.int64))
    return out


def program(cfg: IOUring = IOUring()) -> Program:
    """The per-CPU alloc/free program of the io_uring direct-read run ``cfg`` (see module docstring).

    Event order on each CPU: step by step; within a step, the submitter's own allocations first,
    then the frees that land on this CPU, by submitter number, each submitter's in completion order.
    """
    cfg.validate()
    plan = steps(cfg)
    n_steps = len(plan)
    prep = np.array([p for p, _ in plan], np.int64)
    parts = {k: [] for k in ("cpu", "step", "kind", "sub", "seq", "op", "ctx", "slot", "gap")}

    def add(cpu, step, kind, sub, seq, op, ctx, slot, gap):
        n = len(slot)
        parts["cpu"].append(np.asarray(cpu, np.int64) * np.ones(n, np.int64))
        parts["step"].append(np.asarray(step, np.int64) * np.ones(n, np.int64))
        parts["kind"].append(np.full(n, kind, np.int64))
        parts["sub"].append(np.full(n, sub, np.int64))
        parts["seq"].append(np.asarray(seq, np.int64))
        parts["op"].append(np.full(n, op, np.int8))
        parts["ctx"].append(np.asarray(ctx, np.int8) * np.ones(n, np.int8))
        parts["slot"].append(np.asarray(slot, np.int64))
        parts["gap"].append(np.full(n, gap, np.int64))

    alloc_step = np.repeat(np.arange(n_steps, dtype=np.int64), prep)  # step of IO i's submission
    for s in range(cfg.submitters):
        base = s * cfg.ios
        n_sub = len(alloc_step)
        add(s, alloc_step, 0, s, np.arange(n_sub), ALLOC, TASK, base + np.arange(n_sub), cfg.submit_gap)
        ctx, ccpu = placement(cfg, s)
        order = _completion_order(cfg, s, plan)
        if order:
            freed = np.concatenate(order)
            fstep = np.repeat(np.arange(n_steps, dtype=np.int64), [len(o) for o in order])
            add(ccpu[freed], fstep, 1, s, np.arange(len(freed)), FREE, ctx[freed], base + freed, cfg.complete_gap)

    cat = {k: np.concatenate(v) if v else np.empty(0, np.int64) for k, v in parts.items()}
    idx = np.lexsort((cat["seq"], cat["sub"], cat["kind"], cat["step"], cat["cpu"]))
    counts = np.bincount(cat["cpu"][idx], minlength=cfg.n_cpus) if len(idx) else np.zeros(cfg.n_cpus, np.int64)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Program(start, cat["op"][idx].astype(np.int8), cat["ctx"][idx].astype(np.int8),
                   cat["slot"][idx].astype(np.int64), cat["gap"][idx].astype(np.int64),
                   int(cfg.submitters * cfg.ios)).validate()


_DEFAULTS = {f.name: f.default for f in fields(IOUring)}


@dataclass
class SteadyState:
    """Allocator cost in the steady state: the difference between two runs of prefix-stable
    programs (``drain=False``) with ``ios`` and ``warmup`` IOs per submitter, so warm-up (the
    cache filling, the queue filling) is left out exactly. ``ios`` here counts the IOs in the
    window over all submitters; each is one allocation and one free."""

    model: str
    ios: int
    cycles: float
    paths: dict  # name -> (count, cycles) within the window
    stats: dict  # counter -> value within the window
    #: the memory hierarchy's counters within the window (``cache.COUNTER_NAMES`` → accesses), summed over the
    #: CPUs and, for the per-CPU list, over its front end and its kmalloc backend; None when it was off
    hierarchy: dict | None = None

    @property
    def cycles_per_io(self) -> float:
        return self.cycles / self.ios

    def hierarchy_per_io(self) -> dict | None:
        """Where each access was served, per IO: ``L1``, ``L2``, ``LLC`` (hits), ``XSAME`` / ``XLLC`` / ``XNODE``
        (taken from another CPU of the same LLC, of another LLC, of another node), ``MEM``, and ``INV_SAME`` /
        ``INV_LLC`` / ``INV_NODE`` (writes that invalidated copies that far away); None with the hierarchy off."""
        if self.hierarchy is None:
            return None
        return {k: v / self.ios for k, v in self.hierarchy.items()}

    @property
    def transfers_per_io(self) -> float | None:
        """Accesses per IO that took a line from another CPU's cache (``XSAME + XLLC + XNODE``); None when off."""
        h = self.hierarchy_per_io()
        return None if h is None else sum(h[k] for k in TRANSFERS)

    def paths_frame(self) -> pd.DataFrame:
        rows = [{"model": self.model, "path": k, "count": int(c), "cycles": float(cy),
                 "per_io": float(c) / self.ios, "cycles_per_io": float(cy) / self.ios}
                for k, (c, cy) in self.paths.items()]
        return pd.DataFrame(rows, columns=["model", "path", "count", "cycles", "per_io", "cycles_per_io"])


def steady_window(cfg: IOUring) -> tuple[int, int]:
    """The IO numbers per submitter ``(first, end)`` that :func:`steady_state` measures: from the
    warm-up to the end, both rounded down to whole submit batches."""
    cfg.validate()
    b = cfg.submit_batch
    first, end = (cfg.warmup // b) * b, (cfg.ios // b) * b
    if first < cfg.queue_depth:
        raise AllocsimError(f"io_uring warmup ({cfg.warmup}) must be at least queue_depth ({cfg.queue_depth}) so the queue is full when measuring starts")
    if end <= first:
        raise AllocsimError(f"io_uring ios ({cfg.ios}) must exceed warmup ({cfg.warmup}) by at least one submit batch ({b})")
    return first, end


#: Progress of the io_uring runs in this process: runs, IOs simulated, first and last report times.
_PROGRESS = {"runs": 0, "ios": 0, "t0": None, "last": None}


def _report_progress(ios: int, started: float) -> None:
    """A heartbeat for long chapters: when ``ALLOCSIM_PROGRESS`` is set to a number of seconds (``run``
    sets 10 for a run estimated over a minute, and streams the kernel's stderr), print to stderr, at
    most that often, how many io_uring runs and IOs this kernel has simulated and for how long."""
    every = os.environ.get("ALLOCSIM_PROGRESS")
    if not every:
        return
    try:
        every = float(every)
    except ValueError:
        return
    p = _PROGRESS
    now = time.monotonic()
    if p["t0"] is None:
        p["t0"] = p["last"] = started
    p["runs"] += 1
    p["ios"] += ios
    if now - p["last"] >= every:
        p["last"] = now
        print(f"progress: {p['runs']} io_uring runs, {p['ios'] / 1e6:.2f} M IOs simulated in {now - p['t0']:.0f} s",
              file=sys.stderr, flush=True)


def steady_state(run, cfg: IOUring = IOUring()) -> SteadyState:
    """Run the allocator model ``run`` (any callable ``Program -> Result``) on the programs of
    ``cfg`` with ``ios`` and with ``warmup`` IOs per submitter (``drain=False``) and return the
    difference: the cost of the steady-state window only."""
    first, end = steady_window(cfg)
    started = time.monotonic()
    short = run(program(replace(cfg, ios=first, drain=False)))
    long = run(program(replace(cfg, ios=end, drain=False)))
    _report_progress((first + end) * cfg.submitters, started)
    paths = {}
    for k, (c, cy) in long.paths.items():
        c0, cy0 = short.paths.get(k, (0, 0.0))
        paths[k] = (c - c0, cy - cy0)
    stats = {k: v - short.stats.get(k, 0) for k, v in long.stats.items()}
    return SteadyState(model=long.model, ios=(end - first) * cfg.submitters, cycles=long.cycles - short.cycles,
                       paths=paths, stats=stats, hierarchy=_hierarchy_window(short, long))


def _hierarchy_window(short, long) -> dict | None:
    """The hierarchy's counters of ``long`` minus ``short`` (``Result.extra["hierarchy"]``: per CPU; the per-CPU
    list's front end and backend already summed by :meth:`allocsim.kernel.result.Result.combine`), summed over
    the CPUs, or None when the hierarchy was off."""
    a, b = short.extra.get("hierarchy"), long.extra.get("hierarchy")
    if b is None:
        return None
    tot = np.asarray(b).sum(axis=0) - (0 if a is None else np.asarray(a).sum(axis=0))
    return {k: int(v) for k, v in zip(COUNTER_NAMES, tot)}


def describe(cfg: IOUring) -> dict:
    """The configuration as a plain dict (for tables and glue)."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)} | {"n_cpus": cfg.n_cpus}

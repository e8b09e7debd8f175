"""Where blk-mq completes a request: its CPU and its context, as one function of the topology.

A driver reports a finished request from its interrupt handler (or, for polled I/O, from the task that
polls) with ``blk_mq_complete_request()``; v7.0 ``block/blk-mq.c``
(https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/block/blk-mq.c?h=v7.0):

.. code-block:: c

    void blk_mq_complete_request(struct request *rq)
    {
        if (!blk_mq_complete_request_remote(rq))
            rq->q->mq_ops->complete(rq);            /* here: the IRQ CPU, in the caller's context */
    }

    bool blk_mq_complete_request_remote(struct request *rq)
    {
        WRITE_ONCE(rq->state, MQ_RQ_COMPLETE);
        if ((rq->mq_hctx->nr_ctx == 1 &&
             rq->mq_ctx->cpu == raw_smp_processor_id()) ||
             rq->cmd_flags & REQ_POLLED)
            return false;
        if (blk_mq_complete_need_ipi(rq)) {
            blk_mq_complete_send_ipi(rq);           /* IPI → BLOCK_SOFTIRQ on rq->mq_ctx->cpu */
            return true;
        }
        if (rq->q->nr_hw_queues == 1) {
            blk_mq_raise_softirq(rq);               /* BLOCK_SOFTIRQ on this (the IRQ) CPU */
            return true;
        }
        return false;
    }

and ``blk_mq_complete_need_ipi()`` is false without ``QUEUE_FLAG_SAME_COMP`` (``rq_affinity`` 0), with
forced interrupt threads, when the IRQ CPU *is* the submitting CPU (``rq->mq_ctx->cpu``), or when, without
``QUEUE_FLAG_SAME_FORCE`` (``rq_affinity`` 2), the two share a last-level cache
(``cpus_share_cache()``) and have equal capacity (``cpus_equal_capacity()``); otherwise it is true (the
submitting CPU being online). ``blk_mq_complete_send_ipi()`` queues the request on the submitting CPU's
``blk_cpu_done`` list and sends one IPI per empty-to-non-empty transition (so completions are batched per
IPI); the IPI handler raises ``BLOCK_SOFTIRQ`` there, and ``blk_done_softirq()`` runs ``->complete()``.
``QUEUE_FLAG_SAME_COMP`` is in ``QUEUE_FLAG_MQ_DEFAULT`` (v7.0 ``include/linux/blkdev.h``): ``rq_affinity``
is 1 unless changed in sysfs (``queue_rq_affinity_store()``, v7.0 ``block/blk-sysfs.c``: 0 clears both flags,
1 sets ``SAME_COMP``, 2 sets both).

So the reader chooses the **topology** — where each interrupt lands relative to the submitting CPU (the same
CPU, another CPU sharing its LLC, a CPU in another LLC), whether the device has a single hardware queue,
whether the I/O is polled, and ``rq_affinity`` — and the completion's context and CPU follow:
:func:`blk_mq_complete_request` is the branch-by-branch mirror, :func:`place` applies it to every IO.

Assumptions (stated, not parameters): all CPUs have equal capacity (``cpus_equal_capacity()`` true, no
big.LITTLE), interrupts are not force-threaded (no ``threadirqs``), the submitting CPU stays online, and a
single hardware queue serves more than one CPU (``nr_ctx > 1``). The driver calls
``blk_mq_complete_request()`` from its hard interrupt handler, so "local" means hardirq context on the IRQ
CPU (NVMe's ``nvme_irq()`` → ``nvme_handle_cqe()``; its batched ``blk_mq_add_to_batch()`` path completes
in the same handler).
"""

from __future__ import annotations

import math

import numpy as np

from allocsim.facts.errors import AllocsimError
from allocsim.kernel.program import HARDIRQ, SOFTIRQ, TASK

#: Where an IO's interrupt lands, relative to its submitting CPU.
SAME_CPU, SAME_LLC, OTHER_LLC = 0, 1, 2
WHERE = ("same CPU", "same LLC", "other LLC")
#: Which CPU runs the completion (and so the free of ``iomap_dio``).
ON_SUBMITTER, ON_IRQ_CPU = 0, 1
#: The two placement models of :class:`allocsim.workloads.iouring.IOUring`.
PLACEMENTS = ("blkmq", "independent")
RQ_AFFINITY = (0, 1, 2)
CONTEXT_NAMES = {TASK: "task", HARDIRQ: "hardirq", SOFTIRQ: "softirq"}


def blk_mq_complete_request(where: int, *, polled: bool = False, nr_hw_queues: int = 0,
                            rq_affinity: int = 1) -> tuple[int, int]:
    """``(context, cpu)`` of one request's completion: ``context`` is TASK, HARDIRQ or SOFTIRQ
    (:mod:`allocsim.kernel.program`), ``cpu`` is :data:`ON_SUBMITTER` or :data:`ON_IRQ_CPU`.

    Mirrors ``blk_mq_complete_request()`` → ``blk_mq_complete_request_remote()`` →
    ``blk_mq_complete_need_ipi()`` / ``blk_mq_complete_send_ipi()`` / ``blk_mq_raise_softirq()`` of v7.0
    ``block/blk-mq.c`` in the kernel's order (module docstring). ``where`` is :data:`SAME_CPU`,
    :data:`SAME_LLC` or :data:`OTHER_LLC`: the interrupt's CPU relative to the submitter's. A polled request
    is completed by the polling task itself, i.e. in task context on the submitting CPU (t/io_uring ``-p1``
    polls from the submitter). ``nr_hw_queues`` 0 stands for one queue per CPU (every hardware context maps
    one CPU: ``nr_ctx == 1``)."""
    _check_topology(polled, nr_hw_queues, rq_affinity)
    if where not in (SAME_CPU, SAME_LLC, OTHER_LLC):
        raise AllocsimError(f"where must be {SAME_CPU} (same CPU), {SAME_LLC} (same LLC) or {OTHER_LLC} (other LLC), not {where!r}")
    nr_ctx_one = nr_hw_queues == 0
    if polled:  # rq->cmd_flags & REQ_POLLED: ->complete() by the poller
        return TASK, ON_SUBMITTER
    if nr_ctx_one and where == SAME_CPU:  # nr_ctx == 1 && mq_ctx->cpu == this CPU
        return HARDIRQ, ON_IRQ_CPU
    same_comp, same_force = rq_affinity >= 1, rq_affinity == 2
    # blk_mq_complete_need_ipi(): SAME_COMP set, not this CPU, and (SAME_FORCE or no shared LLC)
    need_ipi = same_comp and where != SAME_CPU and (same_force or where == OTHER_LLC)
    if need_ipi:  # blk_mq_complete_send_ipi(): BLOCK_SOFTIRQ on rq->mq_ctx->cpu
        return SOFTIRQ, ON_SUBMITTER
    if nr_hw_queues == 1:  # blk_mq_raise_softirq(): BLOCK_SOFTIRQ on this CPU
        return SOFTIRQ, ON_IRQ_CPU
    return HARDIRQ, ON_IRQ_CPU  # ->complete() in the interrupt handler


def _check_topology(polled, nr_hw_queues, rq_affinity) -> None:
    if not isinstance(polled, (bool, np.bool_)):
        raise AllocsimError(f"polled must be true or false, not {polled!r}")
    if isinstance(nr_hw_queues, bool) or not isinstance(nr_hw_queues, (int, np.integer)) or nr_hw_queues < 0:
        raise AllocsimError(f"nr_hw_queues must be an integer >= 0 (0: one queue per CPU), not {nr_hw_queues!r}")
    if isinstance(rq_affinity, bool) or rq_affinity not in RQ_AFFINITY:
        raise AllocsimError(f"rq_affinity must be 0, 1 (QUEUE_FLAG_SAME_COMP, the default) or 2 (and QUEUE_FLAG_SAME_FORCE), not {rq_affinity!r}")


def check_shares(same_cpu, same_llc, other_llc, prefix: str = "") -> None:
    """Raise :class:`AllocsimError` unless the three interrupt shares are numbers in [0, 1] adding up to 1
    (``prefix`` starts the sentence, e.g. ``"io_uring "``)."""
    names = ("irq_same_cpu_share", "irq_same_llc_share", "irq_other_llc_share")
    vals = (same_cpu, same_llc, other_llc)
    for name, v in zip(names, vals):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) \
                or not 0.0 <= v <= 1.0:
            raise AllocsimError(f"{prefix}{name} must be a number from 0 to 1, not {v!r}")
    total = float(sum(vals))
    if abs(total - 1.0) > 1e-9:
        raise AllocsimError(f"{prefix}interrupt shares {' + '.join(names)} must add up to 1, not {total:g}")


def table(*, polled=False, nr_hw_queues=0, rq_affinity=1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`blk_mq_complete_request` for each ``where`` (indexed by :data:`SAME_CPU` … :data:`OTHER_LLC`):
    ``(contexts, cpus)`` as two small arrays."""
    rows = [blk_mq_complete_request(w, polled=polled, nr_hw_queues=nr_hw_queues, rq_affinity=rq_affinity)
            for w in (SAME_CPU, SAME_LLC, OTHER_LLC)]
    return np.array([r[0] for r in rows], np.int8), np.array([r[1] for r in rows], np.int8)


def shares(*, polled=False, irq_same_cpu_share=1.0, irq_same_llc_share=0.0, irq_other_llc_share=0.0,
           nr_hw_queues=0, rq_affinity=1) -> dict:
    """The expected share of completions in each context and on another CPU than the submitter's, for a
    topology (what :func:`place` draws from): ``{"task", "hardirq", "softirq", "other_cpu"}``."""
    check_shares(irq_same_cpu_share, irq_same_llc_share, irq_other_llc_share)
    ctx, cpu = table(polled=polled, nr_hw_queues=nr_hw_queues, rq_affinity=rq_affinity)
    w = (irq_same_cpu_share, irq_same_llc_share, irq_other_llc_share)
    out = {"task": 0.0, "hardirq": 0.0, "softirq": 0.0, "other_cpu": 0.0}
    for where, share in enumerate(w):
        out[CONTEXT_NAMES[int(ctx[where])]] += share
        if cpu[where] == ON_IRQ_CPU and where != SAME_CPU:
            out["other_cpu"] += share
    return out


def llc_members(cpu: int, llc_cpus: int, n_cpus: int) -> np.ndarray:
    """The CPUs sharing ``cpu``'s last-level cache when CPUs ``0 .. n_cpus-1`` are numbered consecutively,
    ``llc_cpus`` to an LLC (``cpus_share_cache(a, b)`` ⇔ ``a // llc_cpus == b // llc_cpus``)."""
    first = (cpu // llc_cpus) * llc_cpus
    return np.arange(first, min(first + llc_cpus, n_cpus), dtype=np.int64)


def candidates(submitter: int, llc_cpus: int, n_cpus: int) -> tuple[np.ndarray, np.ndarray]:
    """The CPUs an interrupt may land on when it is in the submitter's LLC but not on the submitter, and
    when it is in another LLC."""
    mine = llc_members(submitter, llc_cpus, n_cpus)
    same = mine[mine != submitter]
    everyone = np.arange(n_cpus, dtype=np.int64)
    other = everyone[(everyone < mine[0]) | (everyone > mine[-1])]
    return same, other


def place(u_where: np.ndarray, u_cpu: np.ndarray, submitter: int, *, n_cpus: int, llc_cpus: int, polled=False,
          irq_same_cpu_share=1.0, irq_same_llc_share=0.0, irq_other_llc_share=0.0, nr_hw_queues=0,
          rq_affinity=1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(context, cpu, irq_cpu)`` of each IO of ``submitter``, from two arrays of uniform draws in [0, 1).

    ``u_where`` picks where the interrupt lands (below ``irq_same_cpu_share``: the submitter; then, up to
    ``irq_same_cpu_share + irq_same_llc_share``: another CPU of its LLC; else a CPU of another LLC) and
    ``u_cpu`` which CPU of that set (uniform). :func:`blk_mq_complete_request` then decides the context and
    whether the completion runs on the IRQ CPU or on the submitter. A pure function: the same draws give the
    same placement."""
    check_shares(irq_same_cpu_share, irq_same_llc_share, irq_other_llc_share)
    u_where, u_cpu = np.asarray(u_where, float), np.asarray(u_cpu, float)
    if u_where.shape != u_cpu.shape:
        raise AllocsimError(f"place needs as many CPU draws as interrupt draws, not {u_cpu.shape} and {u_where.shape}")
    same, other = candidates(submitter, llc_cpus, n_cpus)
    where = np.full(u_where.shape, OTHER_LLC, np.int8)
    where[u_where < irq_same_cpu_share + irq_same_llc_share] = SAME_LLC
    where[u_where < irq_same_cpu_share] = SAME_CPU
    for w, share, pool in ((SAME_LLC, irq_same_llc_share, same), (OTHER_LLC, irq_other_llc_share, other)):
        if share > 0 and len(pool) == 0:
            raise AllocsimError(f"an interrupt on {'another CPU of the submitter’s LLC' if w == SAME_LLC else 'a CPU of another LLC'} "
                                f"needs such a CPU: CPU {submitter} has none among {n_cpus} CPUs, {llc_cpus} per LLC")
    irq_cpu = np.full(u_where.shape, submitter, np.int64)
    for w, pool in ((SAME_LLC, same), (OTHER_LLC, other)):
        sel = where == w
        if sel.any():
            k = np.minimum((u_cpu[sel] * len(pool)).astype(np.int64), len(pool) - 1)
            irq_cpu[sel] = pool[k]
    ctx_t, cpu_t = table(polled=polled, nr_hw_queues=nr_hw_queues, rq_affinity=rq_affinity)
    ctx = ctx_t[where]
    cpu = np.where(cpu_t[where] == ON_IRQ_CPU, irq_cpu, submitter).astype(np.int64)
    return ctx, cpu, irq_cpu

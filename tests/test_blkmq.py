"""blk-mq completion placement (allocsim.workloads.blkmq): context and CPU from the topology, as
blk_mq_complete_request() of v7.0 block/blk-mq.c decides them."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.facts.errors import AllocsimError
from allocsim.kernel.program import FREE, HARDIRQ, SOFTIRQ, TASK
from allocsim.workloads import blkmq as bm
from allocsim.workloads import iouring as io

S, I = bm.ON_SUBMITTER, bm.ON_IRQ_CPU


# ---- each branch of blk_mq_complete_request(), hand-computed from the kernel code ------------------------

@pytest.mark.parametrize("where", [bm.SAME_CPU, bm.SAME_LLC, bm.OTHER_LLC])
@pytest.mark.parametrize("nr_hw_queues, rq_affinity", [(0, 1), (1, 1), (0, 0), (1, 2), (8, 2)])
def test_polled_completes_in_task_context_on_the_submitter(where, nr_hw_queues, rq_affinity):
    # REQ_POLLED: blk_mq_complete_request_remote() returns false before anything else
    assert bm.blk_mq_complete_request(where, polled=True, nr_hw_queues=nr_hw_queues, rq_affinity=rq_affinity) == (TASK, S)


def test_interrupt_on_the_submitting_cpu_is_hardirq_there():
    # nr_ctx == 1 && mq_ctx->cpu == this CPU → ->complete() in the handler; with several CPUs per queue,
    # need_ipi is false (cpu == mq_ctx->cpu) and nr_hw_queues != 1 → the same
    assert bm.blk_mq_complete_request(bm.SAME_CPU) == (HARDIRQ, I)
    assert bm.blk_mq_complete_request(bm.SAME_CPU, nr_hw_queues=4) == (HARDIRQ, I)
    assert bm.blk_mq_complete_request(bm.SAME_CPU, rq_affinity=2) == (HARDIRQ, I)


def test_same_llc_is_hardirq_on_the_irq_cpu():
    # SAME_COMP, not SAME_FORCE, cpus_share_cache() and equal capacity → need_ipi false → local
    assert bm.blk_mq_complete_request(bm.SAME_LLC) == (HARDIRQ, I)
    assert bm.blk_mq_complete_request(bm.SAME_LLC, nr_hw_queues=16) == (HARDIRQ, I)


def test_other_llc_is_softirq_on_the_submitter():
    # need_ipi true → blk_mq_complete_send_ipi() → BLOCK_SOFTIRQ on rq->mq_ctx->cpu
    assert bm.blk_mq_complete_request(bm.OTHER_LLC) == (SOFTIRQ, S)
    # need_ipi is tested before nr_hw_queues == 1
    assert bm.blk_mq_complete_request(bm.OTHER_LLC, nr_hw_queues=1) == (SOFTIRQ, S)


def test_single_hw_queue_is_softirq_on_the_irq_cpu():
    # need_ipi false (same CPU, or same LLC) and nr_hw_queues == 1 → blk_mq_raise_softirq() on this CPU
    assert bm.blk_mq_complete_request(bm.SAME_CPU, nr_hw_queues=1) == (SOFTIRQ, I)
    assert bm.blk_mq_complete_request(bm.SAME_LLC, nr_hw_queues=1) == (SOFTIRQ, I)
    # rq_affinity 0 clears SAME_COMP: never an IPI, so even another LLC stays on the IRQ CPU
    assert bm.blk_mq_complete_request(bm.OTHER_LLC, nr_hw_queues=1, rq_affinity=0) == (SOFTIRQ, I)


def test_rq_affinity_0_and_2():
    # 0: no IPI at all → hardirq on whichever CPU took the interrupt
    assert bm.blk_mq_complete_request(bm.OTHER_LLC, rq_affinity=0) == (HARDIRQ, I)
    # 2 (SAME_FORCE): any other CPU, even in the same LLC, sends the completion back
    assert bm.blk_mq_complete_request(bm.SAME_LLC, rq_affinity=2) == (SOFTIRQ, S)


def test_shares_from_the_topology():
    assert bm.shares() == {"task": 0.0, "hardirq": 1.0, "softirq": 0.0, "other_cpu": 0.0}
    got = bm.shares(irq_same_cpu_share=0.5, irq_same_llc_share=0.3, irq_other_llc_share=0.2)
    assert got == pytest.approx({"task": 0.0, "hardirq": 0.8, "softirq": 0.2, "other_cpu": 0.3})
    got = bm.shares(irq_same_cpu_share=0.5, irq_same_llc_share=0.3, irq_other_llc_share=0.2, nr_hw_queues=1)
    assert got == pytest.approx({"task": 0.0, "hardirq": 0.0, "softirq": 1.0, "other_cpu": 0.3})
    assert bm.shares(polled=True, irq_same_cpu_share=0.0, irq_other_llc_share=1.0)["task"] == 1.0


# ---- place(): CPUs of each set ----------------------------------------------------------------------------

def test_place_hand_computed():
    # 6 CPUs, 3 per LLC; submitter 1. Same LLC: CPUs 0 and 2; other LLC: 3, 4, 5.
    u_where = np.array([0.1, 0.45, 0.55, 0.7, 0.95])
    u_cpu = np.array([0.9, 0.2, 0.8, 0.0, 0.99])
    kw = dict(n_cpus=6, llc_cpus=3, irq_same_cpu_share=0.4, irq_same_llc_share=0.2, irq_other_llc_share=0.4)
    ctx, cpu, irq = bm.place(u_where, u_cpu, 1, **kw)
    assert irq.tolist() == [1, 0, 2, 3, 5]
    assert ctx.tolist() == [HARDIRQ, HARDIRQ, HARDIRQ, SOFTIRQ, SOFTIRQ]
    assert cpu.tolist() == [1, 0, 2, 1, 1]  # other LLC: sent back to the submitter
    ctx, cpu, _ = bm.place(u_where, u_cpu, 1, nr_hw_queues=1, **kw)
    assert ctx.tolist() == [SOFTIRQ] * 5 and cpu.tolist() == [1, 0, 2, 1, 1]
    ctx, cpu, _ = bm.place(u_where, u_cpu, 1, polled=True, **kw)
    assert ctx.tolist() == [TASK] * 5 and cpu.tolist() == [1] * 5


def test_llc_numbering():
    assert bm.llc_members(4, 3, 8).tolist() == [3, 4, 5]
    assert bm.llc_members(7, 3, 8).tolist() == [6, 7]
    same, other = bm.candidates(0, 2, 3)
    assert same.tolist() == [1] and other.tolist() == [2]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), n_cpus=st.integers(2, 9), llc=st.integers(1, 9), sub=st.integers(0, 8),
       w=st.sampled_from([(1.0, 0.0, 0.0), (0.2, 0.3, 0.5), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)]),
       polled=st.booleans(), nr_hw=st.sampled_from([0, 1, 3]), aff=st.sampled_from([0, 1, 2]), seed=st.integers(0, 99))
def test_property_place_every_io_once_on_an_existing_cpu(n, n_cpus, llc, sub, w, polled, nr_hw, aff, seed):
    sub = sub % n_cpus
    llc = min(llc, n_cpus)
    rng = np.random.default_rng(seed)
    u1, u2 = rng.random(n), rng.random(n)
    kw = dict(n_cpus=n_cpus, llc_cpus=llc, polled=polled, irq_same_cpu_share=w[0], irq_same_llc_share=w[1],
              irq_other_llc_share=w[2], nr_hw_queues=nr_hw, rq_affinity=aff)
    same, other = bm.candidates(sub, llc, n_cpus)
    if (w[1] > 0 and not len(same)) or (w[2] > 0 and not len(other)):
        with pytest.raises(AllocsimError, match="needs such a CPU"):
            bm.place(u1, u2, sub, **kw)
        return
    ctx, cpu, irq = bm.place(u1, u2, sub, **kw)
    assert len(ctx) == len(cpu) == len(irq) == n  # one completion per IO
    assert cpu.min() >= 0 and cpu.max() < n_cpus and irq.min() >= 0 and irq.max() < n_cpus
    assert set(cpu.tolist()) <= {sub} | set(irq.tolist())  # the submitter or the IRQ CPU, nothing else
    share_llc = irq // llc == sub // llc
    assert np.all(share_llc[u1 < w[0] + w[1]]) and not np.any(share_llc[u1 >= w[0] + w[1]])
    # each IO as the scalar mirror says
    where = np.where(irq == sub, bm.SAME_CPU, np.where(share_llc, bm.SAME_LLC, bm.OTHER_LLC))
    for k in range(n):
        c, on = bm.blk_mq_complete_request(int(where[k]), polled=polled, nr_hw_queues=nr_hw, rq_affinity=aff)
        assert ctx[k] == c and cpu[k] == (irq[k] if on == I else sub)
    # deterministic: the same draws, the same placement
    again = bm.place(u1, u2, sub, **kw)
    assert all(np.array_equal(a, b) for a, b in zip((ctx, cpu, irq), again))


def test_program_follows_the_topology_and_is_deterministic():
    c = io.IOUring(submitters=2, ios=6000, irq_same_cpu_share=0.5, irq_same_llc_share=0.25, irq_other_llc_share=0.25,
                   seed=3)
    assert c.n_cpus == 4 and c.llc_size == 3  # LLC 0: submitters 0, 1 and CPU 2; LLC 1: CPU 3
    p = io.program(c)
    f = p.op == FREE
    assert abs((p.ctx[f] == SOFTIRQ).mean() - 0.25) < 0.02 and abs((p.ctx[f] == HARDIRQ).mean() - 0.75) < 0.02
    # CPU 3 (the other LLC) takes interrupts but never frees: they are sent back to the submitter
    assert p.start[4] - p.start[3] == 0
    q = io.program(c)
    assert all(np.array_equal(a, b) for a, b in zip(p.arrays(), q.arrays()))
    d = io.program(dataclasses.replace(c, seed=4))
    assert not np.array_equal(p.ctx, d.ctx)


@pytest.mark.parametrize("call, word", [
    (lambda: bm.blk_mq_complete_request(3), "where must be"),
    (lambda: bm.blk_mq_complete_request(0, rq_affinity=5), "rq_affinity"),
    (lambda: bm.blk_mq_complete_request(0, polled="yes"), "polled"),
    (lambda: bm.blk_mq_complete_request(0, nr_hw_queues=1.5), "nr_hw_queues"),
    (lambda: bm.shares(irq_same_cpu_share=0.9), "add up to 1"),
    (lambda: bm.shares(irq_same_cpu_share=float("nan")), "must be a number"),
    (lambda: bm.shares(irq_same_cpu_share=float("inf")), "must be a number"),
    (lambda: bm.place([0.5], [0.5, 0.1], 0, n_cpus=2, llc_cpus=2), "as many CPU draws"),
])
def test_bad_input_one_sentence(call, word):
    with pytest.raises(AllocsimError, match=word) as e:
        call()
    assert "\n" not in str(e.value)

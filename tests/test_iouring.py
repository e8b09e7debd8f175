"""The io_uring direct-read workload generator (allocsim.workloads.iouring)."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.workloads import iouring as io
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.result import Result
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK


def per_cpu(p, c):
    s, e = p.start[c], p.start[c + 1]
    return p.op[s:e], p.ctx[s:e], p.slot[s:e], p.gap[s:e]


def test_defaults_follow_t_io_uring_command_line():
    c = io.IOUring()
    assert (c.submitters, c.queue_depth, c.submit_batch, c.complete_batch) == (1, 128, 32, 32)
    assert (c.placement, c.polled, c.irq_same_cpu_share, c.nr_hw_queues, c.rq_affinity) == ("blkmq", False, 1.0, 0, 1)
    assert c.completion_shares() == {"task": 0.0, "hardirq": 1.0, "softirq": 0.0, "other_cpu": 0.0}
    assert io.IOUring.from_t_io_uring(p=1).polled
    assert io.IOUring.from_t_io_uring(p=1, placement="independent").task_share == 1.0
    assert io.IOUring.from_t_io_uring(p=0) == c


def test_default_blkmq_program_equals_the_pre_v2_default():
    """The defaults (interrupts on the submitting CPU, one queue per CPU, rq_affinity 1) give, event for
    event, the program the independent draws gave with every completion in hardirq on the submitter."""
    for kw in (dict(ios=3000), dict(submitters=3, ios=1000, completion_order="random", seed=4)):
        a = io.program(io.IOUring(**kw))
        b = io.program(io.IOUring(placement="independent", **kw))
        for x, y in zip(a.arrays(), b.arrays()):
            assert np.array_equal(x, y)


def test_steps_fill_then_alternate():
    plan = io.steps(io.IOUring(ios=320))
    # fill: three batches without waiting, then submit 32 / wait 32 ...
    assert plan[:5] == [(32, 0), (32, 0), (32, 0), (32, 32), (32, 32)]
    assert sum(p for p, _ in plan) == 320 and sum(w for _, w in plan) == 320
    # ... the last submission still waits for 32, then the drain waits for the 96 left, 32 at a time
    assert plan[-4:] == [(32, 32)] + [(0, 32)] * 3


def test_counts_and_every_slot_allocated_and_freed_once():
    c = io.IOUring(placement="independent", submitters=3, ios=1000, cross_cpu_share=0.25, softirq_share=0.2, hardirq_share=0.5, task_share=0.3)
    p = io.program(c)
    assert p.ncpu == 4 and p.n_slots == 3000
    assert (p.op == ALLOC).sum() == 3000 and (p.op == FREE).sum() == 3000
    for op in (ALLOC, FREE):
        assert np.array_equal(np.sort(p.slot[p.op == op]), np.arange(3000))
    # allocations only on submitter CPUs, in task context, in IO order
    for s in range(3):
        op, ctx, slot, _ = per_cpu(p, s)
        assert np.all(ctx[op == ALLOC] == TASK)
        assert np.array_equal(slot[op == ALLOC], s * 1000 + np.arange(1000))
    op, _, _, _ = per_cpu(p, 3)
    assert np.all(op == FREE) and len(op) > 0


def test_queue_depth_never_exceeded():
    for c in (io.IOUring(ios=2000), io.IOUring(queue_depth=100, submit_batch=32, complete_batch=8, ios=1500),
              io.IOUring(queue_depth=16, submit_batch=16, complete_batch=16, ios=500, completion_order="random")):
        inflight = 0
        for prep, wait in io.steps(c):
            inflight += prep
            assert inflight <= c.queue_depth
            inflight -= wait
            assert inflight >= 0
        # and in the program itself (all completions on the submitter)
        op, _, _, _ = per_cpu(io.program(c), 0)
        live = np.cumsum(np.where(op == ALLOC, 1, -1))
        assert live.max() <= c.queue_depth and live.min() >= 0 and live[-1] == 0


def test_steady_state_inflight_is_queue_depth():
    op, _, _, _ = per_cpu(io.program(io.IOUring(ios=3200)), 0)
    live = np.cumsum(np.where(op == ALLOC, 1, -1))
    assert live.max() == 128
    # in the steady state each step submits 32 (up to 128 in flight) and reaps 32 (down to 96)
    mid = live[1000:5000]
    assert set(np.unique(mid)) == set(range(96, 129))


def test_fifo_completion_frees_oldest_first_random_does_not():
    op, _, slot, _ = per_cpu(io.program(io.IOUring(ios=640)), 0)
    assert np.array_equal(slot[op == FREE], np.arange(640))
    op, _, slot, _ = per_cpu(io.program(io.IOUring(ios=640, completion_order="random", seed=3)), 0)
    freed = slot[op == FREE]
    assert not np.array_equal(freed, np.arange(640))
    assert np.array_equal(np.sort(freed), np.arange(640))


def test_each_free_follows_its_alloc_on_the_same_cpu():
    p = io.program(io.IOUring(ios=640, completion_order="random", queue_depth=32, complete_batch=32, submit_batch=32))
    op, _, slot, _ = per_cpu(p, 0)
    seen = set()
    for o, s in zip(op, slot):
        if o == ALLOC:
            seen.add(int(s))
        else:
            assert int(s) in seen


def test_contexts_follow_the_shares():
    p = io.program(io.IOUring(placement="independent", ios=20_000, task_share=0.2, hardirq_share=0.5, softirq_share=0.3, seed=7))
    f = p.ctx[p.op == FREE]
    assert abs((f == TASK).mean() - 0.2) < 0.02
    assert abs((f == HARDIRQ).mean() - 0.5) < 0.02
    assert abs((f == SOFTIRQ).mean() - 0.3) < 0.02
    assert np.all(io.program(io.IOUring(ios=500)).ctx[io.program(io.IOUring(ios=500)).op == FREE] == HARDIRQ)


def test_cross_cpu_share_and_targets():
    c = io.IOUring(placement="independent", submitters=2, ncpu=4, ios=10_000, cross_cpu_share=0.4, seed=1)
    p = io.program(c)
    for s in range(2):
        own = per_cpu(p, s)
        # 60% of its own IOs, plus a third of the other submitter's 40% cross-CPU completions
        assert abs((own[0] == FREE).sum() / 10_000 - (0.6 + 0.4 / 3)) < 0.02
    # CPU 2 and 3 only free; every CPU other than the submitter can receive
    for cpu in (2, 3):
        op, _, slot, _ = per_cpu(p, cpu)
        assert np.all(op == FREE) and len(op) > 1000
        assert set(np.unique(slot // 10_000)) == {0, 1}
    # the submitting CPU never receives its own IO as a "cross-CPU" completion: all its frees of its
    # own IOs plus those from the other submitter
    total_cross = sum(((p.slot[p.start[c_]:p.start[c_ + 1]] // 10_000) != c_).sum() for c_ in range(4))
    assert abs(total_cross / 20_000 - 0.4) < 0.02


def test_determinism_and_seed():
    c = io.IOUring(placement="independent", submitters=2, ios=2000, cross_cpu_share=0.3, softirq_share=0.5, hardirq_share=0.5,
                   completion_order="random", seed=11)
    a, b = io.program(c), io.program(c)
    for x, y in zip(a.arrays()[:5], b.arrays()[:5]):
        assert np.array_equal(x, y)
    d = io.program(dataclasses.replace(c, seed=12))
    assert not np.array_equal(a.slot, d.slot)


def test_undrained_programs_are_prefixes():
    kw = dict(placement="independent", submitters=2, cross_cpu_share=0.3, softirq_share=0.5, hardirq_share=0.5,
              completion_order="random", seed=5, drain=False)
    short, long = io.program(io.IOUring(ios=640, **kw)), io.program(io.IOUring(ios=1280, **kw))
    for c in range(short.ncpu):
        s0, s1 = short.start[c], short.start[c + 1]
        l0 = long.start[c]
        n = s1 - s0
        for arr_s, arr_l in ((short.op, long.op), (short.ctx, long.ctx), (short.slot, long.slot)):
            # slots are numbered s * ios + i, so compare (submitter, io) pairs
            if arr_s is short.slot:
                a = np.stack([arr_s[s0:s1] // 640, arr_s[s0:s1] % 640])
                b = np.stack([arr_l[l0:l0 + n] // 1280, arr_l[l0:l0 + n] % 1280])
                assert np.array_equal(a, b)
            else:
                assert np.array_equal(arr_s[s0:s1], arr_l[l0:l0 + n])
    # undrained: the program ends after the last step's wait, so queue_depth - complete_batch IOs
    # of each submitter stay in flight
    assert (short.op == FREE).sum() == 2 * (640 - (128 - 32))


def test_gaps():
    p = io.program(io.IOUring(ios=100, submit_gap=700, complete_gap=50))
    assert np.all(p.gap[p.op == ALLOC] == 700) and np.all(p.gap[p.op == FREE] == 50)


def test_steady_state_with_a_counting_model():
    def run(prog):
        n = prog.n_events
        return Result(model="count", n_alloc=int((prog.op == ALLOC).sum()), n_free=int((prog.op == FREE).sum()),
                      cycles=float(n), clock=np.zeros(prog.ncpu), paths={"event": (n, float(n))},
                      stats={"frees": int((prog.op == FREE).sum())})
    c = io.IOUring(ios=5000, warmup=1000)
    first, end = io.steady_window(c)
    assert (first, end) == (992, 4992)
    ss = io.steady_state(run, c)
    assert ss.ios == 4000
    assert ss.cycles_per_io == 2.0  # one alloc and one free per IO in the window
    assert ss.stats["frees"] == 4000
    assert ss.paths_frame().loc[0, "per_io"] == 2.0


def _counting(prog):
    n = prog.n_events
    return Result(model="count", n_alloc=int((prog.op == ALLOC).sum()), n_free=int((prog.op == FREE).sum()),
                  cycles=float(n), clock=np.zeros(prog.ncpu), paths={"event": (n, float(n))}, stats={})


def test_long_runs_report_progress_on_stderr_only_when_asked(monkeypatch, capsys):
    """`run` sets ALLOCSIM_PROGRESS=10 for a run estimated over a minute: the kernel's io_uring runs
    then print a heartbeat (runs, IOs simulated, seconds) to stderr at most every 10 s."""
    monkeypatch.setattr(io, "_PROGRESS", {"runs": 0, "ios": 0, "t0": None, "last": None})
    c = io.IOUring(ios=5000, warmup=1000, submitters=2)
    monkeypatch.delenv("ALLOCSIM_PROGRESS", raising=False)
    io.steady_state(_counting, c)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("ALLOCSIM_PROGRESS", "0")
    io.steady_state(_counting, c)
    io.steady_state(_counting, c)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[-1].startswith("progress: 2 io_uring runs, 0.02 M IOs simulated in ")  # (992+4992)×2×2
    monkeypatch.setenv("ALLOCSIM_PROGRESS", "3600")
    io.steady_state(_counting, c)
    assert capsys.readouterr().err == ""  # at most once an hour


@pytest.mark.parametrize("kw, word", [
    (dict(queue_depth=0), "queue_depth"),
    (dict(queue_depth=-4), "queue_depth"),
    (dict(submit_batch=200), "submit_batch"),
    (dict(complete_batch=129), "complete_batch"),
    (dict(placement="independent", hardirq_share=0.5), "add up to 1"),
    (dict(placement="independent", softirq_share=1.5, hardirq_share=0.0), "softirq_share"),
    (dict(placement="independent", cross_cpu_share=0.5, ncpu=1), "ncpu"),
    (dict(hardirq_share=0.5), "belongs to placement='independent'"),
    (dict(placement="independent", polled=True), "belongs to placement='blkmq'"),
    (dict(placement="blk-mq"), "placement must be one of"),
    (dict(irq_same_cpu_share=0.5), "add up to 1"),
    (dict(irq_same_cpu_share=float("nan"), irq_same_llc_share=1.0), "irq_same_cpu_share must be a number"),
    (dict(rq_affinity=3), "rq_affinity"),
    (dict(nr_hw_queues=-1), "nr_hw_queues"),
    (dict(polled=1), "polled"),
    (dict(llc_cpus=-2), "llc_cpus"),
    (dict(irq_same_cpu_share=0.0, irq_same_llc_share=1.0, ncpu=1), "needs another CPU in the LLC"),
    (dict(irq_same_cpu_share=0.0, irq_other_llc_share=1.0, ncpu=2, llc_cpus=2), "needs a CPU outside the LLC"),
    (dict(completion_order="lifo"), "completion_order"),
    (dict(ios=2.5), "ios"),
    (dict(submitters=True), "submitters"),
    (dict(seed=-1), "seed"),
])
def test_invalid_configs_raise_one_sentence(kw, word):
    with pytest.raises(AllocsimError, match=word):
        io.program(io.IOUring(**kw))


def test_steady_window_errors():
    with pytest.raises(AllocsimError, match="warmup"):
        io.steady_window(io.IOUring(warmup=64))
    with pytest.raises(AllocsimError, match="exceed warmup"):
        io.steady_window(io.IOUring(ios=4100, warmup=4096))
    with pytest.raises(AllocsimError, match="-p"):
        io.IOUring.from_t_io_uring(p=2)


@settings(max_examples=40, deadline=None)
@given(qd=st.integers(1, 64), sb=st.integers(1, 64), cb=st.integers(1, 64), ios=st.integers(1, 400),
       subs=st.integers(1, 3), irq=st.sampled_from([(1.0, 0.0, 0.0), (0.5, 0.25, 0.25), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]),
       polled=st.booleans(), nr_hw=st.sampled_from([0, 1, 4]), aff=st.sampled_from([0, 1, 2]),
       order=st.sampled_from(["fifo", "random"]), seed=st.integers(0, 5))
def test_property_valid_programs(qd, sb, cb, ios, subs, irq, polled, nr_hw, aff, order, seed):
    sb, cb = min(sb, qd), min(cb, qd)
    c = io.IOUring(submitters=subs, queue_depth=qd, submit_batch=sb, complete_batch=cb, ios=ios,
                   irq_same_cpu_share=irq[0], irq_same_llc_share=irq[1], irq_other_llc_share=irq[2], polled=polled,
                   nr_hw_queues=nr_hw, rq_affinity=aff, completion_order=order, seed=seed)
    p = io.program(c)  # validate() inside: unique allocs/frees, frees of allocated slots
    assert (p.op == ALLOC).sum() == subs * ios and (p.op == FREE).sum() == subs * ios
    # every IO completes exactly once, on a CPU of the program, in the context its placement says
    freed = np.sort(p.slot[p.op == FREE])
    assert np.array_equal(freed, np.arange(subs * ios))
    cpu_of_event = np.repeat(np.arange(p.ncpu), np.diff(p.start))
    for s in range(subs):
        ctx, cpu = io.placement(c, s)
        assert cpu.min() >= 0 and cpu.max() < c.n_cpus == p.ncpu
        mine = (p.op == FREE) & (p.slot // ios == s)
        order_ = np.argsort(p.slot[mine] % ios)
        assert np.array_equal(cpu_of_event[mine][order_], cpu)
        assert np.array_equal(p.ctx[mine][order_], ctx)
        if polled:
            assert np.all(ctx == TASK) and np.all(cpu == s)
    inflight = 0
    for prep, wait in io.steps(c):
        inflight += prep
        assert inflight <= qd
        inflight -= wait


def test_the_heartbeat_never_reaches_the_page():
    from allocsim.book.runner import _without_heartbeat

    outs = [{"output_type": "stream", "name": "stderr", "text": "progress: 3 io_uring runs, 0.06 M IOs simulated in 10 s\n"},
            {"output_type": "stream", "name": "stderr", "text": "warning\nprogress: 4 io_uring runs\n"},
            {"output_type": "stream", "name": "stdout", "text": "progress: kept on stdout\n"}]
    assert _without_heartbeat(outs) == [{"output_type": "stream", "name": "stderr", "text": "warning\n"},
                                        outs[2]]


@pytest.mark.parametrize("kw, n", [
    (dict(), 1),  # every interrupt on the submitter: no other CPU
    (dict(irq_same_cpu_share=0.0, irq_same_llc_share=1.0), 8),  # the rest of the submitter's LLC
    (dict(irq_same_cpu_share=0.0, irq_other_llc_share=1.0), 9),  # and the first CPU of the next LLC
    (dict(irq_same_cpu_share=0.5, irq_same_llc_share=0.25, irq_other_llc_share=0.25), 9),
    (dict(submitters=9, irq_same_cpu_share=0.0, irq_same_llc_share=1.0), 16),  # submitter 8 needs LLC 1 filled
    (dict(submitters=16, irq_same_cpu_share=0.0, irq_other_llc_share=1.0), 16),  # two LLCs of submitters already
    (dict(submitters=3, irq_same_cpu_share=0.0, irq_other_llc_share=1.0, llc_cpus=0), 4),  # automatic: 3 + 1
    (dict(submitters=3, irq_same_cpu_share=0.0, irq_same_llc_share=1.0, llc_cpus=0), 4),
])
def test_the_program_has_the_cpus_the_placement_needs(kw, n):
    """CPU c is in LLC c // llc_cpus: the program has the submitters and the CPUs the interrupts may land on."""
    c = io.IOUring(**{"llc_cpus": 8, **kw})
    assert c.n_cpus == n
    p = io.program(dataclasses.replace(c, ios=600, warmup=128))
    assert p.ncpu == n
    llc = c.llc_size
    for s in range(c.submitters):
        _, cpu = io.placement(c, s)
        # with rq_affinity 1 an interrupt in another LLC is sent back to the submitter: every free runs in its LLC
        assert (cpu // llc == s // llc).all() and cpu.max() < n
    if c.irq_other_llc_share > 0:
        rq0 = dataclasses.replace(c, rq_affinity=0)
        _, cpu = io.placement(rq0, 0)
        assert (cpu // llc != 0).mean() == pytest.approx(c.irq_other_llc_share, abs=0.1)


class _Counted:
    """A model stub that reports per-CPU hierarchy counters proportional to the events of each CPU."""

    def __init__(self, on=True):
        self.on = on

    def __call__(self, prog):
        from allocsim.kernel.cache import COUNTER_NAMES
        h = None
        if self.on:
            h = np.zeros((prog.ncpu, len(COUNTER_NAMES)), np.int64)
            h[:, 0] = np.diff(prog.start) * 3  # three L1 hits per event
            h[:, 3] = np.diff(prog.start)  # one same-LLC transfer per event
        return Result("stub", int((prog.op == ALLOC).sum()), int((prog.op == FREE).sum()), float(prog.n_events),
                      np.zeros(prog.ncpu), extra={"hierarchy": h})


def test_steady_state_counts_the_hierarchys_accesses_in_the_window():
    cfg = io.IOUring(ios=2048, warmup=256, irq_same_cpu_share=0.5, irq_same_llc_share=0.5, llc_cpus=2)
    ss = io.steady_state(_Counted(), cfg)
    first, end = io.steady_window(cfg)
    events = 2 * (end - first)  # an alloc and a free per IO in the window
    assert ss.hierarchy["L1"] == 3 * events and ss.hierarchy["XSAME"] == events
    assert ss.hierarchy_per_io()["XSAME"] == 2.0 and ss.transfers_per_io == 2.0
    assert set(ss.hierarchy) == set(io.COUNTER_NAMES) and ss.hierarchy["MEM"] == 0
    off = io.steady_state(_Counted(on=False), cfg)
    assert off.hierarchy is None and off.hierarchy_per_io() is None and off.transfers_per_io is None

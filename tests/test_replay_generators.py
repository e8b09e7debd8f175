"""The generators the traces suggest: producer/consumer and the mixed-size background."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.facts.errors import AllocsimError
from allocsim.kernel import slub
from allocsim.kernel.program import ALLOC, FREE, SOFTIRQ, TASK
from allocsim.workloads import iouring
from allocsim.workloads import producer_consumer as pc


def _conserved(prog):
    allocs = prog.slot[prog.op == ALLOC]
    frees = prog.slot[prog.op == FREE]
    assert sorted(allocs.tolist()) == list(range(prog.n_slots))
    assert sorted(frees.tolist()) == list(range(prog.n_slots))


@settings(max_examples=25)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 300), st.integers(1, 40), st.sampled_from(["fifo", "lifo"]))
def test_producer_consumer_shape(P, C, n, b, order):
    prog = pc.producer_consumer(pc.ProducerConsumer(producers=P, consumers=C, objects=n, batch=b, order=order))
    _conserved(prog)
    assert prog.ncpu == P + C
    for c in range(P + C):
        ops = prog.op[prog.start[c]:prog.start[c + 1]]
        assert (ops == ALLOC).all() if c < P else (ops == FREE).all()
    assert (prog.ctx[prog.op == FREE] == SOFTIRQ).all() and (prog.ctx[prog.op == ALLOC] == TASK).all()
    # each producer's objects are freed batch by batch in allocation (fifo) or reverse (lifo) order
    frees = prog.slot[prog.start[P]:prog.start[P + 1]]
    first = frees[: min(b, n)]
    assert first.tolist() == (sorted(first.tolist()) if order == "fifo" else sorted(first.tolist(), reverse=True))


def test_producer_consumer_runs_and_frees_cross_cpu():
    prog = pc.producer_consumer(pc.ProducerConsumer(objects=4096, produce_gap=300, consume_gap=200))
    r = slub.run(prog, kernel="7.0", object_size=96)
    assert r.n_alloc == r.n_free == 4096
    assert slub.audit(r)["allocated"] == 0
    with pytest.raises(AllocsimError, match="ctx must be one of"):
        pc.producer_consumer(pc.ProducerConsumer(ctx="nmi"))


def test_background_keeps_only_the_same_class_and_frees_everything():
    cfg = pc.Background(ncpu=2, events=2000, sizes=(72, 96, 128, 512), object_size=96, seed=3)
    assert cfg.same_class().tolist() == [72, 96]
    prog = pc.background(cfg)
    _conserved(prog)
    n_alloc = int((prog.op == ALLOC).sum())
    assert 1600 < n_alloc < 2400  # about half of 2 x 2000 draws land in kmalloc-96
    assert pc.background(cfg).slot.tolist() == prog.slot.tolist()  # deterministic
    with pytest.raises(AllocsimError, match="add up to 1"):
        pc.Background(task_share=0.5).validate()


def test_mix_keeps_each_stream_in_order():
    a = iouring.program(iouring.IOUring(placement="independent", ios=512, cross_cpu_share=0.5, softirq_share=1.0, hardirq_share=0.0))
    mixed = pc.background_for(a, share=0.5, cfg=pc.Background(sizes=(96,)), seed=1)
    assert mixed.ncpu == a.ncpu
    for c in range(a.ncpu):
        seg = mixed.slot[mixed.start[c]:mixed.start[c + 1]]
        mine = seg[seg < a.n_slots]
        assert mine.tolist() == a.slot[a.start[c]:a.start[c + 1]].tolist()
    n_a = int((a.op == ALLOC).sum())
    n_m = int((mixed.op == ALLOC).sum())
    assert n_m - n_a == pytest.approx(n_a, rel=0.05)
    r = slub.run(mixed, kernel="6.19", object_size=96)
    assert slub.audit(r)["allocated"] == 0
    with pytest.raises(AllocsimError, match="lands in kmalloc-96"):
        pc.background_for(a, 0.5, pc.Background(sizes=(512,)))

"""The SLUB models with the memory hierarchy on (slub.run(hierarchy=…)) against their pure-Python oracle
(kernel/oracle/slub.py with kernel/oracle/memory.py and kernel/oracle/cache.py: addresses, access lists and caches
written again): the same path for every event, the same objects, counters, cycles (total, per path, per CPU
clock), the same hierarchy counters per CPU and the same cache contents at the end; per event, the same kinds of
access (numba run on every prefix of the execution). Models: the 6.19 cpu slab, 6.19 opt-in sheaves over the
cpu slab, 7.0 kmalloc and dedicated caches; one and several CPUs, one and two LLC domains, one and two nodes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocsim.facts import cpu as cpufacts
from allocsim.kernel import cache, slub
from allocsim.kernel.oracle import cache as oc
from allocsim.kernel.oracle import memory as om
from allocsim.kernel.oracle import slub as rslub
from allocsim.kernel.program import ALLOC, FREE, TASK, from_lists
from allocsim.kernel.state import H_MEM
from allocsim.workloads.iouring import IOUring, program as iouring_program
from slub_programs import assert_same, random_program

G = cpufacts.geometry(3.0)
# 2 CPUs per LLC: with 4 CPUs two LLC domains, in one node (cross-LLC transfers) or in two (cross-node)
TINY = G.with_(l1_sets=2, l1_ways=2, l2_sets=4, l2_ways=2, llc_sets=8, llc_ways=2, cpus_per_llc=2, llcs_per_node=1)
TINY_LLC = TINY.with_(llcs_per_node=2, l2_sets=8, llc_sets=32, llc_ways=4)
GEOMETRIES = {"default": True, "tiny": TINY, "tiny-2llc": TINY_LLC}
MODELS = {
    "6.19 cpu slab": dict(kernel="6.19"),
    "6.19 sheaves over the cpu slab": dict(kernel="6.19", kmalloc=False, sheaf_capacity=8, object_size=200),
    "7.0 kmalloc": dict(kernel="7.0"),
    "7.0 dedicated": dict(kernel="7.0", kmalloc=False, object_size=72),
}
KINDS = oc.KINDS + oc.INVS[1:]


def _geo(name):
    g = GEOMETRIES[name]
    return G if g is True else g


def assert_same_with_memory(a, b, ncpu):
    """assert_same, and the hierarchy: counters per CPU, per-path cycles, cache contents."""
    assert_same(a, b)
    assert a.paths.keys() == b.paths.keys()
    for k, (n, cy) in a.paths.items():
        assert n == b.paths[k][0] and cy == pytest.approx(b.paths[k][1], rel=1e-12), k
    cnt = a.extra["hierarchy"]
    assert cnt.shape == (ncpu, len(cache.COUNTER_NAMES))
    assert cnt.tolist() == b.extra["hierarchy"]
    I, _ = a.extra["state"]
    assert cache.contents(I, int(I[H_MEM])) == b.extra["cache"].contents()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.sampled_from([1, 2, 4]), st.sampled_from(sorted(MODELS)),
       st.sampled_from(sorted(GEOMETRIES)), st.sampled_from([0.0, 0.4]), st.sampled_from([0.0, 0.3]),
       st.sampled_from([None, 2]))
def test_numba_and_oracle_agree_with_the_hierarchy(seed, ncpu, model, geo, cross, irq, per_node):
    kw = dict(MODELS[model], hierarchy=GEOMETRIES[geo], seed=seed % 7)
    if per_node and ncpu > per_node:
        kw["cpus_per_node"] = per_node
    prog = random_program(seed, ncpu=ncpu, n=400, cross=cross, irq=irq, gap_max=50)
    a = slub.run(prog, **kw)
    b = rslub.run(prog, **kw)
    assert_same_with_memory(a, b, ncpu)
    slub.audit(a)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("geo", ["tiny", "tiny-2llc"])
def test_long_runs_agree_and_reach_every_source(model, geo):
    """4 CPUs in two LLC domains, frees on other CPUs: the oracle's accesses reach transfers and invalidations,
    and numba agrees counter for counter."""
    prog = random_program(11, ncpu=4, n=3000, cross=0.5, irq=0.2)
    kw = dict(MODELS[model], hierarchy=GEOMETRIES[geo])
    a = slub.run(prog, **kw)
    b = rslub.run(prog, **kw, log_accesses=True)
    assert_same_with_memory(a, b, 4)
    kinds = Counter(k for ev in b.extra["accesses"] if ev for *_, k, _ in ev)
    far = "XLLC" if GEOMETRIES[geo].llcs_per_node == 2 else "XNODE"
    assert {"L1", "L2", "LLC", "MEM", "XSAME", far} <= set(kinds), kinds
    totals = np.asarray(b.extra["hierarchy"]).sum(axis=0)
    # a write invalidated a copy in the other LLC domain
    assert totals[KINDS.index("llc" if far == "XLLC" else "node")] > 0
    # every access the oracle logged is counted once
    assert sum(kinds.values()) == totals[:len(oc.KINDS)].sum()


def _prefix(prog, order, k):
    """The program of the first ``k`` events in execution order ``order`` (per CPU, a prefix of its events)."""
    keep = set(order[:k])
    per_cpu = []
    for c in range(prog.ncpu):
        evs = []
        for i in range(int(prog.start[c]), int(prog.start[c + 1])):
            if i in keep:
                evs.append((int(prog.op[i]), int(prog.ctx[i]), int(prog.slot[i]), int(prog.gap[i])))
        per_cpu.append(evs)
    return from_lists(per_cpu, n_slots=prog.n_slots)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_event_makes_the_same_kinds_of_access(model):
    """Per event, the kinds of access (L1 … MEM, invalidations) the numba model made equal the oracle's: numba run
    on every prefix of the execution (task context only, so that the interrupt draws, indexed by event, do not
    move), its counters after event k minus after event k - 1 against the kinds the oracle logged for event k."""
    prog = random_program(5, ncpu=4, n=90, cross=0.5, irq=0.0)
    kw = dict(MODELS[model], hierarchy=TINY)
    b = rslub.run(prog, **kw, log_accesses=True)
    assert_same_with_memory(slub.run(prog, **kw), b, 4)
    order = b.extra["order"]  # the events in the order the scheduler ran them
    prev = np.zeros(len(KINDS), np.int64)
    for k in range(1, len(order) + 1):
        a = slub.run(_prefix(prog, order, k), **kw)
        now = a.extra["hierarchy"].sum(axis=0)
        i = order[k - 1]
        want = Counter()
        for _, _, _, _, kind, inv in b.extra["accesses"][i]:
            want[kind] += 1
            if inv is not None:
                want[inv] += 1
        got = {KINDS[j]: int(d) for j, d in enumerate(now - prev) if d}
        assert got == dict(want), f"event {i} (#{k} executed)"
        prev = now


def test_the_oracle_reads_the_default_cpu_itself():
    """hierarchy=True: the oracle's own reading of data/kernel/cpu.yaml equals the numba side's geometry."""
    assert om.spec_of(G) == oc.read_cpu(3.0)
    assert om.spec_of(cpufacts.geometry(2.0)) == oc.read_cpu(2.0)


def test_hand_case_lifo_reuse_is_all_l1_in_the_oracle():
    """One CPU allocating and freeing the same object on 7.0: after the first round every access is an L1 hit."""
    per_cpu = [[]]
    for r in range(20):
        per_cpu[0] += [(ALLOC, TASK, r, 0), (FREE, TASK, r, 0)]
    prog = from_lists(per_cpu, n_slots=20)
    b = rslub.run(prog, kernel="7.0", hierarchy=True, log_accesses=True)
    late = [kind for ev in b.extra["accesses"][10:] for *_, kind, _ in ev]
    assert late and set(late) == {"L1"}
    assert_same_with_memory(slub.run(prog, kernel="7.0", hierarchy=True), b, 1)


def test_hierarchy_off_is_the_flat_model():
    """hierarchy None/False: no memory state, and the same result as before (the existing oracle tests)."""
    prog = random_program(3, ncpu=2, n=300, cross=0.3)
    for kw in MODELS.values():
        b0 = rslub.run(prog, **kw)
        b1 = rslub.run(prog, **kw, hierarchy=False)
        assert b0.extra["hierarchy"] is None and b0.extra["state"].memory is None
        assert b0.cycles == b1.cycles and b0.event_path == b1.event_path
        assert_same(slub.run(prog, **kw), b0)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("irq", [dict(irq_same_llc_share=1.0, irq_same_cpu_share=0.0),
                                 dict(irq_other_llc_share=1.0, irq_same_cpu_share=0.0)], ids=["same-llc", "other-llc"])
def test_io_uring_with_completions_on_other_cpus_agrees(model, irq):
    """The io_uring loop (blk-mq placement, interrupts on another CPU of the LLC or of another LLC, random
    completion order): numba and the oracle agree with the hierarchy on; with the interrupt in the LLC the frees
    run there and lines move between CPUs (with it in another LLC blk-mq completes in softirq on the submitter)."""
    cfg = IOUring(submitters=2, queue_depth=32, submit_batch=8, complete_batch=8, ios=400, warmup=0,
                  completion_order="random", llc_cpus=2, seed=3, **irq)
    prog = iouring_program(cfg)
    g = TINY_LLC.with_(l2_sets=64, l2_ways=8, llc_sets=256, llc_ways=8)
    kw = dict(MODELS[model], hierarchy=g)
    a = slub.run(prog, **kw)
    b = rslub.run(prog, **kw)
    assert_same_with_memory(a, b, prog.ncpu)
    totals = dict(zip(KINDS, np.asarray(b.extra["hierarchy"]).sum(axis=0).tolist()))
    if "irq_same_llc_share" in irq:
        assert totals["XSAME"] > 0, totals

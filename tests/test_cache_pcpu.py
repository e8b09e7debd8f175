"""The per-CPU list with the memory hierarchy on (pcpu_list.simulate(hierarchy=…)) against its pure-Python oracle
(kernel/oracle/pcpu_list.py with kernel/oracle/cache.py, addresses and access lists read again): the same
paths, the same cycles per event, the same kind of every access (where the data came from, what a write
invalidated), the same counters and cache contents; and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocsim.facts import cpu as cpufacts
from allocsim.kernel import cache, pcpu_list
from allocsim.kernel.oracle import cache as oc
from allocsim.kernel.oracle import pcpu_list as opl
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, Program
from allocsim.workloads.iouring import IOUring, program as iouring_program

G = cpufacts.geometry(3.0)
TINY = G.with_(l1_sets=2, l1_ways=2, l2_sets=4, l2_ways=2, llc_sets=8, llc_ways=2, cpus_per_llc=2, llcs_per_node=1)
KIND = {k: i for i, k in enumerate(oc.KINDS)}
INV = {None: 0, "same": 1, "llc": 2, "node": 3}


def spec_of(g):
    return {"l1": (g.l1_sets, g.l1_ways), "l2": (g.l2_sets, g.l2_ways), "llc": (g.llc_sets, g.llc_ways),
            "cpus_per_llc": g.cpus_per_llc, "llcs_per_node": g.llcs_per_node,
            "latency": dict(zip(oc.KINDS, (g.lat_l1, g.lat_l2, g.lat_llc, g.lat_same_llc, g.lat_cross_llc,
                                           g.lat_cross_node, g.lat_memory)))}


configs = st.builds(
    lambda subs, qd, sb, ctx, cross, order, seed: IOUring(
        submitters=subs, queue_depth=qd, submit_batch=min(sb, qd), complete_batch=min(sb, qd), ios=120,
        task_share=ctx[0], hardirq_share=ctx[1], softirq_share=ctx[2], cross_cpu_share=cross,
        completion_order=order, warmup=0, seed=seed, placement="independent"),
    st.integers(1, 3), st.sampled_from([4, 16, 64]), st.sampled_from([1, 4, 8]),
    st.sampled_from([(0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.2, 0.5, 0.3)]), st.sampled_from([0.0, 0.3, 1.0]),
    st.sampled_from(["fifo", "random"]), st.integers(0, 3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs, st.sampled_from(["tiny", "default"]))
def test_numba_and_oracle_agree_event_for_event_and_access_for_access(cfg, geo):
    g = TINY if geo == "tiny" else G
    prog = iouring_program(cfg)
    front = pcpu_list.simulate(prog, hierarchy=g)[0]
    ref = opl.run_reference(prog, hierarchy=spec_of(g))
    assert [pcpu_list.PATHS[p] for p in front.event_path] == ref["event_path"]
    mem, log = front.extra["event_memory"], front.extra["access_log"]
    for i, m, accesses in ref["memory"]:
        assert mem[i] == m, f"event {i}: numba {mem[i]} cycles in the hierarchy, oracle {m}"
        assert [int(x) for x in log[i] if x >= 0] == [KIND[k] * 4 + INV[v] for _, k, v in accesses], f"event {i}"
    assert front.cycles == ref["cycles"] and list(front.clock) == ref["clock"]
    h = ref["hierarchy"]
    cnt = front.extra["hierarchy"]
    for c in range(prog.ncpu):
        assert cnt[c, :cache.NK].tolist() == [h.count[c][k] for k in oc.KINDS]
    assert cache.contents(front.extra["cache"]) == h.contents()


def test_a_long_cross_cpu_run_agrees_and_reaches_transfers():
    cfg = IOUring(submitters=2, queue_depth=32, ios=600, cross_cpu_share=0.5, hardirq_share=0.5, task_share=0.5,
                  placement="independent",
                  completion_order="random", warmup=0, seed=5)
    prog = iouring_program(cfg)
    g = TINY.with_(cpus_per_llc=4, l2_sets=64, l2_ways=8, llc_sets=256, llc_ways=8)  # one LLC; L2 keeps lines
    front = pcpu_list.simulate(prog, hierarchy=g)[0]
    ref = opl.run_reference(prog, hierarchy=spec_of(g))
    kinds = {k for _, _, acc in ref["memory"] for _, k, _ in acc}
    # (no invalidations: the list writes only lines no other CPU holds shared — an element's next pointer,
    # which a transfer brings over modified, and the CPU's own struct pcpu_cache)
    assert {"L1", "L2", "LLC", "XSAME", "MEM"} <= kinds
    assert front.cycles == ref["cycles"]
    log = front.extra["access_log"]
    for i, _, accesses in ref["memory"]:
        assert [int(x) for x in log[i] if x >= 0] == [KIND[k] * 4 + INV[v] for _, k, v in accesses]


def program(per_cpu) -> Program:
    start, op, ctx, slot, gap = [0], [], [], [], []
    for events in per_cpu:
        for o, c, s, g in events:
            op.append(o)
            ctx.append(c)
            slot.append(s)
            gap.append(g)
        start.append(len(op))
    return Program(np.array(start, np.int64), np.array(op, np.int8), np.array(ctx, np.int8),
                   np.array(slot, np.int64), np.array(gap, np.int64), max(slot) + 1)


def kinds_of(front, i):
    return [oc.KINDS[int(x) // 4] for x in front.extra["access_log"][i] if x >= 0]


def test_lifo_reuse_of_an_element_is_all_l1_hits():
    """CPU 0: alloc (kmalloc: the list is empty), free (push: writes the element's next), alloc (pop: reads
    the element's next, the list head and nr): every line was touched by CPU 0 just before."""
    p = program([[(ALLOC, TASK, 0, 0), (FREE, TASK, 0, 0), (ALLOC, TASK, 1, 0)]])
    front = pcpu_list.simulate(p, hierarchy=True)[0]
    assert [pcpu_list.PATHS[x] for x in front.event_path] == ["alloc_kmalloc", "free_task", "alloc_hit"]
    assert kinds_of(front, 2) and set(kinds_of(front, 2)) == {"L1"}


def test_kmalloc_hands_back_what_this_cpu_kfreed_last():
    """CPU 0 kmallocs e0 and frees it into its list (writing e0->next: a miss to memory), takes it back, then
    frees it in softirq (the patch kfree()s it). The next kmalloc is handed back that object (SLUB's per-CPU
    LIFO), so writing the new element's next pointer finds its line in CPU 0's L1. A later kmalloc with nothing
    kfree()d is memory never used before: its first write misses to memory again."""
    p = program([[(ALLOC, TASK, 0, 0), (FREE, TASK, 0, 0), (ALLOC, TASK, 1, 0), (FREE, SOFTIRQ, 1, 0),
                  (ALLOC, TASK, 2, 0), (FREE, TASK, 2, 0), (ALLOC, TASK, 3, 0), (ALLOC, TASK, 4, 0),
                  (FREE, TASK, 4, 0)]])
    front = pcpu_list.simulate(p, hierarchy=True)[0]
    assert [pcpu_list.PATHS[x] for x in front.event_path] == [
        "alloc_kmalloc", "free_task", "alloc_hit", "kfree_softirq", "alloc_kmalloc", "free_task", "alloc_hit",
        "alloc_kmalloc", "free_task"]
    assert "MEM" in kinds_of(front, 1) and "MEM" not in kinds_of(front, 5) and "MEM" in kinds_of(front, 8)
    ref = opl.run_reference(p, hierarchy=spec_of(G))
    assert [[k for _, k, _ in got] for _, _, got in ref["memory"]] == [kinds_of(front, i) for i in range(9)]


def test_a_free_on_cpu_b_of_an_element_last_written_on_cpu_a_pays_one_transfer():
    """CPU 0 frees element x into its list (writes x->next), takes it back (reads it), then CPU 1 frees x in
    hardirq: pushing x onto CPU 1's IRQ list writes x->next, which CPU 0 holds modified: one same-LLC
    transfer for the element's line (CPU 1's own struct is new to it: memory)."""
    p = program([[(ALLOC, TASK, 0, 0), (FREE, TASK, 0, 0), (ALLOC, TASK, 1, 0)], [(FREE, HARDIRQ, 1, 10_000)]])
    front = pcpu_list.simulate(p, hierarchy=True)[0]
    assert kinds_of(front, 3).count("XSAME") == 1 and "XLLC" not in kinds_of(front, 3)
    assert front.extra["hierarchy"][1, cache.K_XSAME] == 1
    # across LLC domains (CPU 8 is in the next group of 8): the cross-LLC transfer instead
    far = program([[(ALLOC, TASK, 0, 0), (FREE, TASK, 0, 0), (ALLOC, TASK, 1, 0)]] + [[]] * 7
                  + [[(FREE, HARDIRQ, 1, 10_000)]])
    front = pcpu_list.simulate(far, hierarchy=True)[0]
    assert front.extra["hierarchy"][8, cache.K_XLLC] == 1 and front.extra["hierarchy"][8, cache.K_XSAME] == 0


def test_off_is_the_flat_charge_and_on_costs_at_least_as_much():
    prog = iouring_program(IOUring(ios=500, warmup=0))
    off = pcpu_list.simulate(prog)[0]
    on = pcpu_list.simulate(prog, hierarchy=True)[0]
    assert off.extra["hierarchy"] is None and on.cycles >= off.cycles
    assert (on.event_path == off.event_path).all()
    with pytest.raises(Exception, match="hierarchy must be true, false or an allocsim.facts.cpu.Geometry"):
        pcpu_list.simulate(prog, hierarchy="yes")


@pytest.mark.parametrize("shares", [(0.3, 0.0), (0.0, 0.3), (0.3, 0.3)])
def test_blkmq_placements_agree_with_the_oracle(shares):
    """Completions placed as blk-mq places them (interrupts on another CPU of the LLC or of another LLC)."""
    cfg = IOUring(submitters=2, queue_depth=32, ios=400, irq_same_cpu_share=1.0 - sum(shares),
                  irq_same_llc_share=shares[0], irq_other_llc_share=shares[1], warmup=0, seed=3)
    prog = iouring_program(cfg)
    g = TINY.with_(cpus_per_llc=cfg.llc_size, l2_sets=64, l2_ways=8, llc_sets=256, llc_ways=8)
    front = pcpu_list.simulate(prog, hierarchy=g)[0]
    ref = opl.run_reference(prog, hierarchy=spec_of(g))
    assert [pcpu_list.PATHS[p] for p in front.event_path] == ref["event_path"]
    log = front.extra["access_log"]
    for i, m, accesses in ref["memory"]:
        assert front.extra["event_memory"][i] == m
        assert [int(x) for x in log[i] if x >= 0] == [KIND[k] * 4 + INV[v] for _, k, v in accesses]
    assert front.cycles == ref["cycles"]
    kinds = {k for _, _, acc in ref["memory"] for _, k, _ in acc}
    if shares[0]:
        assert "XSAME" in kinds
    # an interrupt on a CPU of another LLC sends the completion back to the submitting CPU (BLOCK_SOFTIRQ),
    # whose free goes to kfree(): the list never moves an element's line across LLCs
    assert not {"XLLC", "XNODE"} & kinds

"""The slab layer (allocsim.kernel.slab_pages): slabs, freelists, node partial lists, list_lock, and the 7.0
slab paths, tested on their own with a hand-made state, and against the pure-Python reference."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.facts import costs
from allocsim.kernel import slab_pages as sp
from allocsim.kernel import state as ks
from allocsim.kernel import slub
from allocsim.kernel import stats as ss
from allocsim.kernel import program as trace
from allocsim.workloads.microbench import microbench
from allocsim.kernel.oracle import slab_pages as rsp
from allocsim.kernel.oracle import slub as rslub
from slub_programs import assert_same

COST = costs.load()
#: the cost block new_state takes: the table's rows, then the hot-path step sums (unused by the slab layer)
VEC = np.concatenate([COST.vector, np.zeros(ks.NSEG)])
C = {k: COST.cycles(k) for k in costs.KEYS}


def state(objs=4, min_partial=2, nnodes=1, ncpu=2, max_slabs=16, version=ks.V_70):
    return ks.new_state(ncpu=ncpu, nnodes=nnodes, cpus_per_node=max(1, ncpu // nnodes), objs_per_slab=objs,
                        min_partial=min_partial, cpu_partial_slabs=0, capacity=0, version=version, sheaves=False,
                        max_slabs=max_slabs, max_sheaves=1, cost=VEC)


def freelist(I, F, slab):
    v = ks.view(I, F)
    out, o = [], v["sl"][slab, ks.SL_FREELIST]
    while o >= 0:
        out.append(int(o))
        o = v["onext"][o]
    return out


def partial(I, F, node=0):
    v = ks.view(I, F)
    out, s = [], v["nd"][node, ks.ND_HEAD]
    while s >= 0:
        out.append(int(s))
        s = v["sl"][s, ks.SL_NEXT]
    return out


def test_new_slab_builds_an_address_ordered_freelist_and_charges_half_a_page():
    I, F = state(objs=4)
    slab, t = sp.new_slab(I, F, 0, 0.0)
    v = ks.view(I, F)
    assert slab == 0 and freelist(I, F, 0) == [0, 1, 2, 3]
    assert v["sl"][0, ks.SL_INUSE] == 0 and v["sl"][0, ks.SL_WHERE] == ks.W_NONE
    assert v["nd"][0, ks.ND_NR_SLABS] == 1
    assert t == 0.5 * C["page_alloc_free"] + 4 * C["l1_hit"]
    slab2, _ = sp.new_slab(I, F, 0, 0.0)
    assert slab2 == 1 and freelist(I, F, 1) == [4, 5, 6, 7]


def test_discarded_slab_numbers_are_reused_most_recent_first():
    I, F = state()
    for _ in range(3):
        sp.new_slab(I, F, 0, 0.0)
    t = sp.discard_slab(I, F, 0, 0.0)
    sp.discard_slab(I, F, 2, 0.0)
    assert t == 0.5 * C["page_alloc_free"]
    v = ks.view(I, F)
    assert v["nd"][0, ks.ND_NR_SLABS] == 1 and v["stats"][ss.S_FREE_SLAB] == 2
    assert sp.new_slab(I, F, 0, 0.0)[0] == 2
    assert sp.new_slab(I, F, 0, 0.0)[0] == 0
    assert sp.new_slab(I, F, 0, 0.0)[0] == 3


def test_partial_list_head_tail_and_remove():
    I, F = state()
    for _ in range(4):
        sp.new_slab(I, F, 0, 0.0)
    sp.add_partial(I, 0, True)
    sp.add_partial(I, 1, True)
    sp.add_partial(I, 2, False)
    assert partial(I, F) == [2, 0, 1]
    sp.remove_partial(I, 0)
    assert partial(I, F) == [2, 1]
    sp.remove_partial(I, 2)
    sp.add_partial(I, 3, True)
    assert partial(I, F) == [1, 3]
    v = ks.view(I, F)
    assert v["nd"][0, ks.ND_NR_PARTIAL] == 2 and v["nd"][0, ks.ND_TAIL] == 3
    assert v["sl"][0, ks.SL_WHERE] == ks.W_NONE and v["sl"][3, ks.SL_WHERE] == ks.W_NODE_PARTIAL


def test_list_lock_waits_for_the_holder_and_pays_a_transfer_from_another_cpu():
    I, F = state(nnodes=1)
    t = sp.list_lock(I, F, 0, 0, 100.0)
    assert t == 100.0 + C["spin_lock_irqsave_pair"]
    sp.list_unlock(I, F, 0, 0, 500.0)
    # CPU 1 wants it at 200 (+ the flags part of the irqsave pair, outside the lock): waits until 500, then the
    # line moves
    t1 = sp.list_lock(I, F, 0, 1, 200.0)
    assert t1 == 500.0 + C["cacheline_transfer"] + C["spin_lock_pair"]
    sp.list_unlock(I, F, 0, 1, t1)
    t2 = sp.list_lock(I, F, 0, 1, t1 + 10)  # same CPU again, lock free: no wait, no transfer
    assert t2 == t1 + 10 + C["spin_lock_irqsave_pair"]
    acc = ks.view(I, F)["acc"]
    assert acc[ks.AC_WAIT_LIST] == 300.0 - (C["spin_lock_irqsave_pair"] - C["spin_lock_pair"]) and acc[ks.AC_XFER_LIST] == 1 and acc[ks.AC_TAKEN_LIST] == 3


def _bdf_expected(p, objs):
    """The kernel's build_detached_freelist(), transcribed independently."""
    p = list(p)
    size = len(p) - 1
    first = p[size]
    slab = first // objs
    chain = [first]
    same = size
    lookahead = 3
    while size > 0:
        size -= 1
        if p[size] // objs == slab:
            chain.insert(0, p[size])
            same -= 1
            p[size], p[same] = p[same], p[size]
            continue
        lookahead -= 1
        if lookahead == 0:
            break
    return same, slab, chain, p[:same]


@pytest.mark.parametrize("p", [
    [0, 1, 2, 3],              # one slab
    [0, 4, 1, 5, 2],           # two slabs interleaved
    [0, 4, 8, 12, 16, 1],      # lookahead of 3 stops before reaching object 0
    [9, 0, 1, 2, 10],          # the rest compacted in front
])
def test_build_detached_freelist_matches_the_kernel_walk(p):
    I, F = state(objs=4, max_slabs=8)
    base = I[ks.H_SCRATCH]
    I[base:base + len(p)] = p
    same, slab, head, tail, cnt = sp.build_detached_freelist(I, base, len(p))
    e_same, e_slab, e_chain, e_rest = _bdf_expected(p, 4)
    onext = ks.view(I, F)["onext"]
    got, o = [], head
    for _ in range(cnt):
        got.append(int(o))
        o = onext[o]
    assert (same, slab, cnt, tail) == (e_same, e_slab, len(e_chain), e_chain[-1])
    assert got == e_chain and o == -1
    assert sorted(I[base:base + same].tolist()) == sorted(e_rest)
    # the reference does the same
    m = rsp.State(1, 1, 1, 4, 2, 0, 0, True, False, C)
    for s in range(5):
        rsp.new_slab(m, 0, 0.0)
    r_same, r_slab, r_chain = rsp.build_detached_freelist(m, list(p), len(p))
    assert (r_same, r_slab.id, r_chain) == (e_same, e_slab, e_chain)


def _take_all(I, F, slab):
    """Allocate every object of a slab directly (as get_freelist_nofreeze would)."""
    b = sp.slb(I, slab)
    objs = freelist(I, F, slab)
    I[b + ks.SL_FREELIST] = -1
    I[b + ks.SL_INUSE] = len(objs) + I[b + ks.SL_INUSE]
    return objs


def test_slab_free_70_paths():
    I, F = state(objs=4, min_partial=1)
    s0, _ = sp.new_slab(I, F, 0, 0.0)
    objs = _take_all(I, F, s0)                                   # full slab, on no list
    t, path = sp.slab_free_70(I, F, s0, objs[0], objs[0], 1, 0, 0.0)
    assert path == ss.P_FREE_LIST_LOCK and partial(I, F) == [s0]  # full -> partial tail
    assert t == C["spin_lock_irqsave_pair"] + C["locked_cmpxchg16b"] + C["l1_hit"]
    t, path = sp.slab_free_70(I, F, s0, objs[1], objs[1], 1, 0, 0.0)
    assert path == ss.P_FREE_PARTIAL and t == C["locked_cmpxchg16b"]  # cmpxchg only
    sp.slab_free_70(I, F, s0, objs[2], objs[2], 1, 0, 0.0)
    # the last object: empty slab, but nr_partial (1) >= min_partial (1): discarded
    t, path = sp.slab_free_70(I, F, s0, objs[3], objs[3], 1, 0, 0.0)
    v = ks.view(I, F)
    assert path == ss.P_FREE_LIST_LOCK and partial(I, F) == [] and v["sl"][s0, ks.SL_WHERE] == ks.W_POOL
    st_ = v["stats"]
    assert st_[ss.S_FREE_ADD_PARTIAL] == 1 and st_[ss.S_FREE_REMOVE_PARTIAL] == 1 and st_[ss.S_FREE_SLAB] == 1
    assert st_[ss.S_FREE_SLOWPATH] == 4


def test_slab_free_70_keeps_an_empty_slab_below_min_partial():
    I, F = state(objs=2, min_partial=2)
    s0, _ = sp.new_slab(I, F, 0, 0.0)
    a, b = _take_all(I, F, s0)
    sp.slab_free_70(I, F, s0, a, a, 1, 0, 0.0)
    sp.slab_free_70(I, F, s0, b, b, 1, 0, 0.0)
    assert partial(I, F) == [s0] and freelist(I, F, s0) == [b, a]


def test_refill_objects_node_detaches_whole_slabs_and_returns_the_surplus():
    I, F = state(objs=4, min_partial=1, max_slabs=8)
    for _ in range(3):
        s, _ = sp.new_slab(I, F, 0, 0.0)
        sp.add_partial(I, s, True)           # three slabs with 4 free objects each: 0, 1, 2
    dst = I[ks.H_SCRATCH]
    got, t = sp.refill_objects_node(I, F, 0, dst, 6, 6, 0, 0.0)
    # slabs 0 and 1 detached (4 + 4 >= 6), emptied last-detached first: all of slab 1, then 2 of slab 0
    assert got == 6 and I[dst:dst + 6].tolist() == [4, 5, 6, 7, 0, 1]
    # racy read 4, list_lock 62, two detached 2 x 4; slab 1: cmpxchg 38 + 4 x 8.75; slab 0: 38 + 2 x 8.75,
    # its tail found (2 x 4) and __slab_free'd as a full slab (lock 62, cmpxchg 38, partial list 4): 314.5
    lock = C["spin_lock_irqsave_pair"]
    assert t == (C["l1_hit"] + lock + 2 * C["l1_hit"] + C["locked_cmpxchg16b"] + 4 * C["bulk_object"]
                 + C["locked_cmpxchg16b"] + 2 * C["bulk_object"] + 2 * C["l1_hit"]
                 + lock + C["locked_cmpxchg16b"] + C["l1_hit"]) == 314.5
    assert partial(I, F) == [2, 0]           # slab 0 had a surplus: back on the list at the tail
    assert freelist(I, F, 0) == [2, 3] and ks.view(I, F)["sl"][1, ks.SL_INUSE] == 4


def test_refill_objects_node_puts_back_slabs_it_did_not_need():
    # slab 0 has 1 free object, slab 1 has 4: both are detached for 3 objects, slab 1 (last detached)
    # alone covers the request, so slab 0 must go back untouched (this branch once leaked slab 0)
    I, F = state(objs=4, min_partial=1, max_slabs=8)
    s0, _ = sp.new_slab(I, F, 0, 0.0)
    s1, _ = sp.new_slab(I, F, 0, 0.0)
    objs0 = _take_all(I, F, s0)
    sp.slab_free_70(I, F, s0, objs0[0], objs0[0], 1, 0, 0.0)   # slab 0 on the list with 1 free
    sp.add_partial(I, s1, True)
    dst = I[ks.H_SCRATCH]
    got, _ = sp.refill_objects_node(I, F, 0, dst, 3, 3, 0, 0.0)
    assert got == 3 and all(o // 4 == s1 for o in I[dst:dst + 3])
    # slab 1's surplus object went back with __slab_free (to the tail), slab 0 to the head untouched
    assert partial(I, F) == [s0, s1]
    assert freelist(I, F, s0) == [objs0[0]] and len(freelist(I, F, s1)) == 1


def test_refill_objects_falls_back_to_new_slabs():
    I, F = state(objs=4, min_partial=1, max_slabs=8)
    dst = I[ks.H_SCRATCH]
    got, _ = sp.refill_objects(I, F, dst, 6, 6, 0, 0.0)
    v = ks.view(I, F)
    assert got == 6 and v["stats"][ss.S_ALLOC_SLAB] == 2
    assert partial(I, F) == [1] and freelist(I, F, 1) == [6, 7]   # the second slab's rest, at the head


def test_alloc_single_70_from_partial_then_new():
    I, F = state(objs=2, min_partial=1)
    lock = C["spin_lock_irqsave_pair"]
    obj, t, path = sp.alloc_single_70(I, F, 0, 0.0)
    assert (obj, path) == (0, ss.P_ALLOC_SLAB_NEW) and partial(I, F) == [0]
    # racy read 4, a new slab of 2 (105.5 + 2 x 4), one object 8.75, onto the partial list (62 + 4): 192.25
    assert t == C["l1_hit"] + 0.5 * C["page_alloc_free"] + 2 * C["l1_hit"] + C["bulk_object"] + lock + C["l1_hit"] == 192.25
    obj, t, path = sp.alloc_single_70(I, F, 0, 192.25)  # (from 0.0 it would wait for the lock's release)
    assert (obj, path) == (1, ss.P_ALLOC_SLAB_PARTIAL) and partial(I, F) == []  # slab full: off the list
    # racy read 4, list_lock 62, cmpxchg 38, the now full slab leaves the list 4: 108
    assert t - 192.25 == C["l1_hit"] + lock + C["locked_cmpxchg16b"] + C["l1_hit"] == 108
    assert ks.view(I, F)["stats"][ss.S_ALLOC_SLOWPATH] == 2


def test_tables_that_overflow_are_flagged_and_run_retries_with_larger_ones():
    prog = microbench(2, 64, 2)
    cfg = slub.configure(prog, "7.0")
    I, F = ks.new_state(2, 1, 2, cfg.geometry.objs_per_slab, cfg.geometry.min_partial, 0, cfg.geometry.sheaf_capacity,
                        ks.V_70, True, max_slabs=2, max_sheaves=2, cost=VEC)
    start, op, ctx, slot, gap, n_slots = prog.arrays()
    status, *_ = slub.simulate(I, F, start, op, ctx, slot, gap, n_slots, slub.irq_draws(prog, 0),
                               np.zeros(prog.n_events, np.int64))
    assert status == 1 and ks.view(I, F)["g"][ks.G_ERR] != 0
    r = slub.run(prog, kernel="7.0")
    assert slub.audit(r)["slabs"] > 2


# --- the 7.0 slab layer under the sheaves, against the reference --------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40)), min_size=1, max_size=120))
def test_slab_layer_matches_reference_on_random_frees(ops):
    """Random interleavings of allocations and frees through a 7.0 cache of 4096-byte objects (8 per
    slab, sheaves of 4): refills and flushes reach the slab layer often."""
    live, events, nxt = [], [], 0
    for kind, k in ops:
        if kind == 0 or not live:
            events.append((trace.ALLOC, trace.TASK, nxt))
            live.append(nxt)
            nxt += 1
        else:
            events.append((trace.FREE, trace.TASK, live.pop(k % len(live))))
    prog = trace.from_lists([events])
    a = slub.run(prog, kernel="7.0", object_size=4096)
    b = rslub.run(prog, kernel="7.0", object_size=4096)
    assert_same(a, b)
    slub.audit(a)

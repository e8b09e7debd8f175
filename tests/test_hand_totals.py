"""Hand-computed path and cycle totals for every SLUB model path, NOT differential: the numba model alone is
run, and each expected total is worked out here from the cost table, with the arithmetic written out.

The runs use the pre-v2 charges (``data/costs-v1.csv``, ``data/kernel/steps-v1.yaml``, every hook switch off):
their hot paths are a handful of rows, so the totals below isolate the slow paths' control flow and charges,
which cost model v2 left as they were (the barn, the slab lists, refill and flush). The v2 hot paths have
their own hand-computed totals in ``tests/test_steps.py``. (The numbers in the comments are
data/costs-v1.csv: function_call 5, local_trylock_pair 3, l1_hit 4,
percpu_cmpxchg16b 21, locked_cmpxchg16b 38, irq_save_restore 37, spin_lock_pair 33, cacheline_transfer 80,
page_alloc_free 425, bulk_object 17.5). A mistake made identically in a model and its oracle shows here.

An uncontended ``spin_lock_irqsave()`` of a lock this CPU held last (or nobody) is LOCK = irq_save_restore +
spin_lock_pair (37 + 33 = 70); from another CPU a cacheline_transfer is added (150). ``new_slab()`` of a slab
of n objects is half a page alloc+free plus one l1_hit per object (212.5 + 4n).

Caches: 7.0 dedicated cache of 4096-byte objects (sheaf capacity 4, 8 objects per slab, min_partial 6, a
64-byte sheaf = one line); 6.19 kmalloc-4k (8 objects per slab, cpu_partial_slabs 2, min_partial 6);
6.19 dedicated 4096-byte cache with sheaf_capacity 4 (sheaves over the cpu slab).
"""

import pytest

from allocsim.facts import costs, kconfig
from allocsim.kernel import slub
from allocsim.kernel.program import ALLOC as A, FREE as F, HARDIRQ as H, SOFTIRQ as S, TASK as T, from_lists
from allocsim.kernel import stats as ss

C = costs.load("v1")
V1 = dict(costs=C, steps="v1", hooks="off")
CALL, TRY, L1 = C.cycles("function_call"), C.cycles("local_trylock_pair"), C.cycles("l1_hit")
PCX, LCX = C.cycles("percpu_cmpxchg16b"), C.cycles("locked_cmpxchg16b")
IRQ, SPIN, XFER = C.cycles("irq_save_restore"), C.cycles("spin_lock_pair"), C.cycles("cacheline_transfer")
PAGE, BULK = C.cycles("page_alloc_free"), C.cycles("bulk_object")
LOCK = IRQ + SPIN                      # 70
LOCK_REMOTE = IRQ + XFER + SPIN        # 150


def NEW_SLAB(n):
    return 0.5 * PAGE + n * L1         # 212.5 + 4n


V70 = dict(kernel="7.0", object_size=4096, kmalloc=False)
V619 = dict(kernel="6.19", object_size=4096)
V619_SHEAVES = dict(kernel="6.19", object_size=4096, kmalloc=False, sheaf_capacity=4)


def run(per_cpu, **kw):
    r = slub.run(from_lists(per_cpu), **V1, **kw)
    slub.audit(r)
    return r


def names(r):
    return [ss.PATHS[p] for p in r.event_path]


def test_the_caches_these_totals_assume():
    g = kconfig.cache_geometry(4096, 1, "7.0", kmalloc=False)
    assert (g.sheaf_capacity, g.objs_per_slab, g.min_partial) == (4, 8, 6)
    g = kconfig.cache_geometry(4096, 2, "6.19")
    assert (g.objs_per_slab, g.cpu_partial_slabs, g.min_partial, g.sheaf_capacity) == (8, 2, 6, 0)
    assert kconfig.sheaf_header() + 8 * 4 == 64  # one cache line zeroed per new sheaf


# ------------------------------------------------------------------------------------------------------
# 7.0 sheaves, one CPU

ROUND = [(A, T, s) for s in range(12)] + [(F, T, s) for s in range(12)] \
    + [(A, T, s) for s in range(12, 24)] + [(F, T, s) for s in range(12, 24)]


def test_70_sheaf_paths_hand_totals():
    r = run([ROUND], **V70)
    p = names(r)
    R, SH = "alloc_sheaf_refill", "alloc_sheaf"
    assert p[:12] == [R, SH, SH, SH] * 3
    assert p[12:24] == ["free_sheaf"] * 4 + ["free_sheaf_spare"] + ["free_sheaf"] * 3 + ["free_sheaf_alloc_empty"] \
        + ["free_sheaf"] * 3
    assert p[24:36] == [SH] * 4 + ["alloc_sheaf_spare"] + [SH] * 3 + ["alloc_sheaf_barn"] + [SH] * 3
    assert p[36:] == ["free_sheaf"] * 4 + ["free_sheaf_spare"] + ["free_sheaf"] * 3 + ["free_sheaf_barn_put"] \
        + ["free_sheaf"] * 3
    # a hit: the call, the local trylock pair, one array slot: 5 + 3 + 4 = 12
    hit = CALL + TRY + L1
    assert r.paths[SH] == (19, 19 * hit) and r.paths["free_sheaf"] == (20, 20 * hit)
    # first refill: main and spare empty, the barn has no full sheaf (racy read, l1_hit) and no empty one
    # (racy read, l1_hit); a new sheaf (call + one zeroed line + the kmalloc fast path of 7.0, trylock +
    # l1_hit: 5 + 4 + 3 + 4 = 16); refill_objects(): the racy nr_partial read (4), nothing partial, so a new
    # slab (212.5 + 32) gives 4 objects (4 x 17.5) and goes on the partial list (LOCK 70 + l1_hit 4);
    # relock (3), pop (4): 5 + 3 + 4 + 4 + 16 + 4 + 244.5 + 70 + 74 + 3 + 4 = 431.5
    first = CALL + TRY + L1 + L1 + (CALL + L1 + TRY + L1) + L1 + NEW_SLAB(8) + 4 * BULK + (LOCK + L1) + TRY + L1
    assert first == 431.5
    # second: the empty spare is refilled (no barn_get_empty_sheaf, no new sheaf) from the partial slab:
    # racy read 4, LOCK 70, detach 4, get_freelist_nofreeze 38, 4 objects 70: 5 + 3 + 4 + 186 + 3 + 4 = 205
    second = CALL + TRY + L1 + (L1 + LOCK + L1 + LCX + 4 * BULK) + TRY + L1
    assert second == 205
    # third: the spare again, nothing partial (slab 0 is full): 431.5 - 4 - 16 = 411.5
    third = CALL + TRY + L1 + (L1 + NEW_SLAB(8) + 4 * BULK + LOCK + L1) + TRY + L1
    assert third == 411.5
    assert r.paths[R] == (3, first + second + third)
    # spare swaps: one pointer swap (l1_hit) besides the hit: 16
    assert r.paths["alloc_sheaf_spare"] == (1, CALL + TRY + L1 + L1)
    assert r.paths["free_sheaf_spare"] == (2, 2 * (CALL + TRY + L1 + L1))
    # barn_replace_empty_sheaf(): racy read 4, LOCK 70, two list operations 8; pop 4: 5 + 3 + 82 + 4 = 94
    assert r.paths["alloc_sheaf_barn"] == (1, CALL + TRY + (L1 + LOCK + 2 * L1) + L1)
    # main and spare full, the barn has no empty sheaf: barn_replace_full_sheaf() fails on its racy reads (4,
    # -ENOMEM); alloc_empty_sheaf(GFP_NOWAIT) 16; relock 3; __pcs_install_empty_sheaf puts the full main in the
    # barn (LOCK 70 + l1_hit 4) and installs the empty one (4); push 4: 5 + 3 + 4 + 16 + 3 + 74 + 4 + 4 = 113
    assert r.paths["free_sheaf_alloc_empty"] == (1, CALL + TRY + L1 + (CALL + L1 + TRY + L1) + TRY + (LOCK + L1) + L1 + L1)
    # later the barn holds an empty sheaf: barn_replace_full_sheaf() trades (4 + 70 + 8), install 4, push 4: 98
    assert r.paths["free_sheaf_barn_put"] == (1, CALL + TRY + (L1 + LOCK + 2 * L1) + L1 + L1)
    assert r.cycles == sum(cy for _, cy in r.paths.values())
    s = r.stats
    assert (s["sheaf_alloc"], s["barn_get"], s["barn_get_fail"], s["barn_put"], s["alloc_slab"], s["sheaf_refill"]) \
        == (2, 1, 3, 2, 2, 12)
    assert slub.audit(r)["sheaves"] == 3  # the first main + 2 allocated: none lost


def test_70_free_into_a_cpu_without_spare_takes_the_barns_empty_sheaf_across_cpus():
    cpu0 = [(A, T, s) for s in range(12)] + [(F, T, s) for s in range(12)] + [(A, T, s) for s in range(12, 24)]
    cpu1 = [(F, T, s, 10**6) for s in range(12, 24)]  # later, CPU 1 frees CPU 0's objects (same node)
    r = run([cpu0, cpu1], **V70)
    p = names(r)[36:]
    assert p == ["free_sheaf"] * 4 + ["free_sheaf_barn_empty"] + ["free_sheaf"] * 3 + ["free_sheaf_alloc_empty"] \
        + ["free_sheaf"] * 3
    # no spare: barn_get_empty_sheaf(): racy read 4, the barn lock CPU 0 held last (37 + 80 + 33 = 150), pop 4;
    # main becomes the spare (4); push 4: 5 + 3 + 158 + 4 + 4 = 174
    assert r.paths["free_sheaf_barn_empty"] == (1, CALL + TRY + (L1 + LOCK_REMOTE + L1) + L1 + L1)
    assert r.paths["free_sheaf_barn_empty"][1] == 174
    # then main and spare full, barn empty: as on CPU 0, and the barn lock is CPU 1's now (no transfer): 113
    assert r.paths["free_sheaf_alloc_empty"] == (2, 2 * (CALL + TRY + L1 + (CALL + L1 + TRY + L1) + TRY + (LOCK + L1) + L1 + L1))
    assert r.extra["barn_lock_transfers"] == 1


def test_70_barn_over_max_full_sheaves_flushes_the_spare_hand_total():
    r = run([[(A, T, s) for s in range(64)] + [(F, T, s) for s in range(64)]], **V70)
    assert [i for i, x in enumerate(names(r)[64:]) if x == "free_sheaf_flush"] == [48, 52, 56, 60]
    # barn_replace_full_sheaf(): racy read (4) finds nr_full = MAX_FULL_SHEAVES: -E2BIG. The spare is flushed:
    # 4 x bulk_object (70) and one detached freelist for one slab through __slab_free(): a full slab needs the
    # list_lock (70), the cmpxchg (38) and goes on the partial list (4): 112 -> 182; relock 3, install 4, push 4
    fixed = CALL + TRY + L1 + 4 * BULK + TRY + L1 + L1
    full_slab = LOCK + LCX + L1
    # the fourth flush empties slab 6 (its other half was flushed at the third): lock + cmpxchg, kept (3
    # partial slabs < min_partial 6): 108
    empties = LOCK + LCX
    assert r.paths["free_sheaf_flush"] == (4, 3 * (fixed + full_slab) + fixed + empties)
    assert r.paths["free_sheaf_flush"][1] == 3 * 205 + 201
    assert r.stats["sheaf_flush"] == 16 and r.stats["barn_put_fail"] == 4


def test_70_sheaf_flush_main_hand_total():
    r = run([[(A, T, s) for s in range(64)] + [(F, T, s) for s in range(64)]], gfp_nowait_fails=True, **V70)
    assert [i for i, x in enumerate(names(r)[64:]) if x == "free_sheaf_flush_main"] == list(range(8, 64, 4))
    # -ENOMEM (racy read 4), alloc_empty_sheaf(GFP_NOWAIT) fails (the call, 5); sheaf_flush_main(): lock 3, copy
    # 4 pointers (one l1_hit), unlock, bulk free 4 x 17.5 + __slab_free of the group; relock 3, push 4: 101 + that
    fixed = CALL + TRY + L1 + CALL + (TRY + L1 + 4 * BULK) + TRY + L1
    assert fixed == 101
    # the groups, slab by slab: a full slab's first half goes on the partial list (112); its second half empties
    # it (108), kept while nr_partial < min_partial (6), else taken off (l1_hit) and discarded (212.5): 324.5
    half, empty, discard = LOCK + LCX + L1, LOCK + LCX, LOCK + LCX + L1 + 0.5 * PAGE
    groups = [half, half, empty, half, empty, half, empty, half, empty, half, discard, half, discard, half]
    assert r.paths["free_sheaf_flush_main"] == (14, 14 * fixed + sum(groups))
    assert r.paths["free_sheaf_flush_main"][1] == 3391
    assert r.stats["free_slab"] == 2 and r.stats["sheaf_flush"] == 56


def test_70_interrupt_paths_hand_totals():
    ev = [(A, T, s) for s in range(8)] + [(F, H, s) for s in range(4)] + [(A, T, 8)] + [(F, S, s) for s in range(4, 8)]
    for seed in range(40):
        r = run([ev], seed=seed, **V70)
        if names(r)[8] == "free_bypass_trylock" and names(r)[13] != "free_bypass_trylock":
            break
    else:
        pytest.fail("no seed made the first interrupt (only) land in a locked section")
    # a failed trylock costs the pair (3) on top of the call (5); then __slab_free() (another call, 5): the
    # first object's slab is full (slab 0: its objects are in the sheaves), so list_lock + cmpxchg + partial
    # list (112); the other three only the cmpxchg (38): 4 x 13 + 112 + 3 x 38 = 278
    assert names(r)[8:12] == ["free_bypass_trylock"] * 4
    first_irq = 4 * (CALL + TRY + CALL) + (LOCK + LCX + L1) + 3 * LCX
    assert first_irq == 278
    assert r.paths["free_bypass_trylock"] == (4, first_irq)


def test_70_alloc_bypass_trylock_hand_total():
    ev = [(A, T, s) for s in range(4)] + [(F, H, 0), (F, T, 1), (F, T, 2), (A, T, 4), (A, T, 5), (A, H, 6)]
    for seed in range(60):
        r = run([ev], seed=seed, **V70)
        if names(r)[-1] == "alloc_bypass_trylock":
            break
    else:
        pytest.fail("no seed made the interrupt allocation fail the trylock")
    # call 5, failed trylock 3, ___slab_alloc() call 5; get_from_partial(): racy read 4, list_lock 70, one object
    # with a cmpxchg 38 (slab 0 keeps free objects: stays on the list): 5 + 3 + 5 + 112 = 125
    assert r.paths["alloc_bypass_trylock"] == (1, CALL + TRY + CALL + (L1 + LOCK + LCX))
    assert r.stats["alloc_slowpath"] == 1


def test_70_remote_node_frees_hand_total():
    cpu0 = [(A, T, s) for s in range(4)]
    cpu1 = [(F, T, s, 1000) for s in range(4)]
    r = run([cpu0, cpu1], cpus_per_node=1, **V70)
    # two calls (kfree, then __slab_free) and a cmpxchg each (48); the last empties slab 0: list_lock of node 0,
    # last held by CPU 0 (150), kept (1 partial slab < 6): 3 x 48 + (10 + 150 + 38) = 342
    assert r.paths["free_remote_node"] == (4, 3 * (CALL + CALL + LCX) + CALL + CALL + LOCK_REMOTE + LCX)
    assert r.paths["free_remote_node"][1] == 342


# ------------------------------------------------------------------------------------------------------
# 6.19 sheaves over the cpu slab (the refill path that puts the empty main back in the barn)

def test_619_sheaf_refill_hand_totals_and_the_empty_main_goes_to_the_barn():
    r = run([[(A, T, s) for s in range(8)]], **V619_SHEAVES)
    assert names(r) == (["alloc_sheaf_refill"] + ["alloc_sheaf"] * 3) * 2
    # first: racy reads of the barn (4 + 4), a new sheaf (call 5 + one line 4 + the 6.19 kmalloc fast path 21 =
    # 30); __kmem_cache_alloc_bulk(): irq save 37, the first object through ___slab_alloc() (call 5, racy
    # nr_partial 4, new slab 244.5, retry_load_slab irq save 37, load 4), irq save 37 again, three objects off
    # c->freelist (3 x 17.5); relock 3; the empty main goes to the barn (barn_put_empty_sheaf: 70 + 4); pop 4
    bulk = IRQ + (CALL + L1 + NEW_SLAB(8) + IRQ + L1) + IRQ + 3 * BULK
    assert bulk == 421
    first = CALL + TRY + L1 + L1 + (CALL + L1 + PCX) + bulk + TRY + (LOCK + L1) + L1
    assert first == 548
    # second: the barn's empty sheaf (racy 4, lock 70, pop 4) is refilled from c->freelist (37 + 4 x 17.5), the
    # empty main goes to the barn (74): 5 + 3 + 4 + 78 + 107 + 3 + 74 + 4 = 278
    second = CALL + TRY + L1 + (L1 + LOCK + L1) + (IRQ + 4 * BULK) + TRY + (LOCK + L1) + L1
    assert second == 278
    assert r.paths["alloc_sheaf_refill"] == (2, first + second)
    assert r.paths["alloc_sheaf"] == (6, 6 * (CALL + TRY + L1))
    assert r.extra["barn_nr_empty"] == [1]  # the sheaf the second refill replaced waits there
    assert slub.audit(r)["sheaves"] == 2
    s = r.stats
    assert (s["alloc_cpu_sheaf"], s["sheaf_alloc"], s["barn_get_fail"], s["alloc_fastpath"], s["sheaf_refill"]) \
        == (8, 1, 2, 7, 8)


# ------------------------------------------------------------------------------------------------------
# 6.19 cpu slab (kmalloc-4k)

def test_619_cpu_slab_paths_hand_totals():
    ev = [(A, T, s) for s in range(9)] + [(F, T, 8), (F, T, 0), (F, T, 1)] + [(A, T, s) for s in range(9, 18)]
    r = run([ev], **V619)
    # new_slab() for an empty CPU: call 5, racy nr_partial 4, the slab 244.5, retry_load_slab irq save 37,
    # load 4 = 294.5; the second finds its cpu slab exhausted first (irq save 37 + get_freelist cmpxchg 38):
    # 369.5
    first_slab = CALL + L1 + NEW_SLAB(8) + IRQ + L1
    second_slab = CALL + IRQ + LCX + L1 + NEW_SLAB(8) + IRQ + L1
    assert (first_slab, second_slab) == (294.5, 369.5)
    assert r.paths["alloc_slab"] == (2, first_slab + second_slab)
    assert r.paths["alloc_fastpath"] == (15, 15 * PCX)
    assert r.paths["free_fastpath"] == (1, PCX)
    # a full slab freed into: call 5, cmpxchg 38, put_cpu_partial() under the cpu slab lock (37 + 4): 84
    assert r.paths["free_cpu_partial"] == (1, CALL + LCX + IRQ + L1)
    assert r.paths["free_partial"] == (1, CALL + LCX)
    # exhausted cpu slab (37 + 38), the cpu partial slab (37 + 4) and its freelist (38), load 4: 163
    assert r.paths["alloc_cpu_partial"] == (1, CALL + IRQ + LCX + IRQ + L1 + LCX + L1)
    assert r.paths["alloc_cpu_partial"][1] == 163


def test_619_get_partial_node_moves_slabs_until_more_than_half_cpu_partial_slabs():
    """Five slabs on lists: the node partial list holds four when get_partial_node() runs, so its stop test
    (``++partial_slabs > cpu_partial_slabs / 2``, i.e. > 1) decides how many move to the cpu partial list."""
    ev = [(A, T, s) for s in range(48)] + [(F, T, s) for s in (0, 8, 16, 24, 32)] + [(A, T, s) for s in range(48, 54)]
    r = run([ev], **V619)
    p = names(r)
    assert p[48:53] == ["free_cpu_partial", "free_cpu_partial", "free_cpu_partial_drain", "free_cpu_partial",
                        "free_cpu_partial_drain"]
    assert p[53:] == ["alloc_cpu_partial", "alloc_from_partial", "alloc_cpu_partial", "alloc_cpu_partial",
                      "alloc_from_partial", "alloc_slab"]
    assert r.extra["slot_obj"][48:].tolist() == [32, 8, 24, 0, 16, 48]
    # drain: put_cpu_partial (call 5, cmpxchg 38, 37 + 4) and __put_partials() of two slabs (70 + 2 x 4): 162
    assert r.paths["free_cpu_partial_drain"] == (2, 2 * (CALL + LCX + IRQ + L1 + LOCK + 2 * L1))
    assert r.paths["free_cpu_partial"] == (3, 3 * (CALL + LCX + IRQ + L1))
    # get_partial_node() over the node list [1, 0, 3, 2]: racy read 4, list_lock 70, slab 1 taken (4), slabs 0
    # and 3 moved to the cpu partial list (4 + 37 + 4 each; the second makes partial_slabs 2 > 1: stop), then
    # freeze_slab 38, irq save 37, load 4; after the exhausted cpu slab (5 + 37 + 38): 327. Later slab 2 alone: 237
    moved = L1 + IRQ + L1
    first = CALL + IRQ + LCX + (L1 + LOCK + L1 + 2 * moved) + LCX + IRQ + L1
    second = CALL + IRQ + LCX + (L1 + LOCK + L1) + LCX + IRQ + L1
    assert (first, second) == (327, 237)
    assert r.paths["alloc_from_partial"] == (2, first + second)
    assert r.paths["alloc_cpu_partial"] == (3, 3 * (CALL + IRQ + LCX + IRQ + L1 + LCX + L1))
    assert r.paths["alloc_slab"] == (7, CALL + L1 + NEW_SLAB(8) + IRQ + L1 + 6 * (CALL + IRQ + LCX + L1 + NEW_SLAB(8) + IRQ + L1))
    assert r.paths["alloc_fastpath"] == (42, 42 * PCX)
    s = r.stats
    assert (s["cpu_partial_node"], s["cpu_partial_drain"], s["alloc_from_partial"], s["cpu_partial_alloc"]) == (2, 2, 2, 3)


def test_619_remote_free_to_a_frozen_slab_and_alloc_refill_hand_totals():
    cpu0 = [(A, T, s) for s in range(4)] + [(A, T, 4, 100_000)] + [(A, T, s) for s in range(5, 9)]
    cpu1 = [(F, T, 0, 1000), (F, T, 1)]
    r = run([cpu0, cpu1], **V619)
    # another CPU's cpu slab is frozen: __slab_free() is the call and the cmpxchg (43)
    assert r.paths["free_frozen"] == (2, 2 * (CALL + LCX))
    # get_freelist() of the cpu slab takes the two objects back: 5 + 37 + 38 + 4 = 84
    assert r.paths["alloc_refill"] == (1, CALL + IRQ + LCX + L1)


def test_619_free_list_lock_of_a_slab_on_the_cpu_partial_list():
    ev = [(A, T, s) for s in range(16)] + [(F, T, s) for s in range(8)]
    r = run([ev], **V619)
    assert names(r)[16:] == ["free_cpu_partial"] + ["free_partial"] * 6 + ["free_list_lock"]
    # the slab becomes empty (not frozen, had free objects): list_lock (70), the cmpxchg (38); it is on this
    # CPU's partial list, so it stays there: 5 + 70 + 38 = 113
    assert r.paths["free_list_lock"] == (1, CALL + LOCK + LCX)


# ------------------------------------------------------------------------------------------------------
# a slab layer path under a 6.19 cache: the node partial list, an empty slab discarded

def test_619_free_list_lock_discards_an_empty_node_partial_slab():
    # seven slabs each with one object freed go to the node partial list (drains); then all of slab 0 is freed:
    # when it becomes empty nr_partial (>= 6) is at min_partial: taken off (4) and discarded (212.5)
    ev = [(A, T, s) for s in range(72)] + [(F, T, 8 * k) for k in range(8)] + [(F, T, s) for s in range(1, 8)]
    r = run([ev], **V619)
    assert names(r)[-1] == "free_list_lock" and r.extra["nr_partial"] >= 5
    last = r.paths["free_list_lock"]
    assert last == (1, CALL + LOCK + LCX + L1 + 0.5 * PAGE)

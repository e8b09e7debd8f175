"""Sheaves and the barn (allocsim.kernel.sheaves, allocsim.kernel.barn): every replace / refill / flush path of
v6.19 and v7.0 mm/slub.c (alloc_from_pcs, __pcs_replace_empty_main, free_to_pcs, __pcs_replace_full_main) on
hand-traced programs, local_trylock failing under interrupts, the 6.18/6.19 double caching, the barn limits,
and random programs against the reference.

Most tests use a dedicated 7.0 cache of 4096-byte objects: capacity 4 (the 7.0 default for that size:
base 4, the 64-byte sheaf already fills kmalloc-64), 8 objects per slab."""

from hypothesis import given, settings, strategies as st

from allocsim.kernel import barn
import pytest

from allocsim.facts import costs, steps
from allocsim.facts import kconfig
from allocsim.kernel import sheaves
from allocsim.kernel import state as ks
from allocsim.kernel import slub
from allocsim.kernel.program import ALLOC as A, FREE as F, HARDIRQ as H, SOFTIRQ as S, TASK as T, from_lists
from slub_programs import both, path_names, random_program

C = {k: costs.load().cycles(k) for k in costs.KEYS}
#: the step sums of cost model v2 the sheaf paths charge (a 4096-byte dedicated cache, distribution switches)
SEG = dict(zip(steps.SLUB_SEGMENTS, steps.slub_vector(costs.load(), steps.load(),
                                                      steps.Facts(sheaves=True, kmalloc=False, object_size=4096))))
KW = dict(kernel="7.0", object_size=4096, kmalloc=False)


def run(per_cpu, **kw):
    return both(from_lists(per_cpu), **{**KW, **kw})


def test_capacity_used_here_and_the_constants():
    assert kconfig.cache_geometry(4096, 1, "7.0", kmalloc=False).sheaf_capacity == 4
    assert barn.MAX_FULL_SHEAVES == 10 and barn.MAX_EMPTY_SHEAVES == 10 and sheaves.PCS_BATCH_MAX == 32


def test_alloc_refill_spare_swap_and_barn_get_then_free_spare_swap_and_alloc_empty():
    ev = [(A, T, s) for s in range(16)] + [(F, T, s) for s in range(16)] + [(A, T, s) for s in range(16, 32)]
    r = run([ev])
    p = path_names(r)
    # empty cache: every 4th allocation finds main and spare empty and the barn without full sheaves,
    # so a sheaf is refilled from slabs (new slabs at first, then the partial list)
    assert p[:16] == (["alloc_sheaf_refill"] + ["alloc_sheaf"] * 3) * 4
    # LIFO within a sheaf: the refill put objects 0..3 in, the allocations take 3, 2, 1, 0
    assert r.extra["slot_obj"][:4].tolist() == [3, 2, 1, 0]
    # frees: main fills (4), then the empty spare is swapped in; when both are full and the barn has no
    # empty sheaf (-ENOMEM), a new empty sheaf is allocated and the full main goes to the barn
    assert p[16:32] == (["free_sheaf"] * 4 + ["free_sheaf_spare"] + ["free_sheaf"] * 3
                        + ["free_sheaf_alloc_empty"] + ["free_sheaf"] * 3 + ["free_sheaf_alloc_empty"] + ["free_sheaf"] * 3)
    # allocations again: main, the full spare, then full sheaves from the barn (barn_replace_empty_sheaf)
    assert p[32:] == (["alloc_sheaf"] * 4 + ["alloc_sheaf_spare"] + ["alloc_sheaf"] * 3
                      + (["alloc_sheaf_barn"] + ["alloc_sheaf"] * 3) * 2)
    s = r.stats
    assert s["alloc_fastpath"] == 32 and s["free_fastpath"] == 16  # 7.0 counts sheaf hits as fast paths
    assert s["sheaf_refill"] == 16 and s["sheaf_alloc"] == 3 and s["barn_put"] == 2 and s["barn_get"] == 2
    assert s["barn_get_fail"] == 4 and s["alloc_slab"] == 2 and s["alloc_slowpath"] == 0
    assert "alloc_cpu_sheaf" not in s  # a 6.19-only counter
    # a sheaf hit: the entry point and hooks, the local trylock, main->size and the array slot
    assert r.paths["alloc_sheaf"] == (25, pytest.approx(25 * (SEG["alloc_entry"] + SEG["local_trylock"] + SEG["pcs_alloc"])))


def test_free_into_a_cpu_without_spare_takes_an_empty_sheaf_from_the_barn_then_barn_put():
    cpu0 = [(A, T, s) for s in range(16)] + [(F, T, s) for s in range(16)] + [(A, T, s) for s in range(16, 32)]
    cpu1 = [(F, T, s, 10**6) for s in range(16, 32)]  # later, CPU 1 frees CPU 0's objects (same node)
    r = run([cpu0, cpu1])
    p = path_names(r)[48:]
    # CPU 1 has no spare yet: barn_get_empty_sheaf() (CPU 0 left two empty sheaves in the barn);
    # then with main and spare full, barn_replace_full_sheaf() trades one for the other empty sheaf;
    # the barn then has none left: a new one
    assert p == (["free_sheaf"] * 4 + ["free_sheaf_barn_empty"] + ["free_sheaf"] * 3 + ["free_sheaf_barn_put"]
                 + ["free_sheaf"] * 3 + ["free_sheaf_alloc_empty"] + ["free_sheaf"] * 3)
    # CPU 1 took the barn lock last held by CPU 0: a cache-line transfer
    assert r.extra["barn_lock_transfers"] >= 1


def test_barn_over_max_full_sheaves_flushes_the_spare_to_slabs():
    ev = [(A, T, s) for s in range(64)] + [(F, T, s) for s in range(64)]
    r = run([ev])
    p = path_names(r)[64:]
    special = [(i, x) for i, x in enumerate(p) if x != "free_sheaf"]
    # 10 full sheaves go into the barn (no empty ones to trade: alloc + install ignoring the limit);
    # from then on barn_replace_full_sheaf() says -E2BIG: barn_put_fail, the full spare is flushed
    assert special == ([(4, "free_sheaf_spare")] + [(8 + 4 * k, "free_sheaf_alloc_empty") for k in range(10)]
                       + [(48 + 4 * k, "free_sheaf_flush") for k in range(4)])
    assert r.extra["barn_nr_full"] == [10]
    assert r.stats["barn_put_fail"] == 4 and r.stats["sheaf_flush"] == 16 and r.stats["free_slowpath"] == 4


def test_sheaf_flush_main_when_no_empty_sheaf_can_be_allocated():
    ev = [(A, T, s) for s in range(64)] + [(F, T, s) for s in range(64)]
    r = run([ev], gfp_nowait_fails=True)
    p = path_names(r)[64:]
    assert [x for x in p if x != "free_sheaf"] == ["free_sheaf_spare"] + ["free_sheaf_flush_main"] * 14
    # the barn never gets a sheaf: alloc_empty_sheaf(GFP_NOWAIT) fails, so put_fail counts and the main
    # sheaf is flushed in PCS_BATCH_MAX batches
    assert r.stats["barn_put_fail"] == 14 and r.stats["sheaf_flush"] == 56 and r.extra["barn_nr_full"] == [0]


def test_sheaf_flush_main_batches_of_32():
    # capacity 64 (explicit): one flush_main moves 64 objects in two batches of PCS_BATCH_MAX
    ev = [(A, T, s) for s in range(192)] + [(F, T, s) for s in range(192)]
    r = run([ev], sheaf_capacity=64, gfp_nowait_fails=True)
    assert path_names(r).count("free_sheaf_flush_main") == 1
    assert r.stats["sheaf_flush"] == 64
    # two batches: each takes the local lock and copies 32 pointers (4 lines)
    one = r.paths["free_sheaf_flush_main"][1]
    assert one > 2 * (SEG["local_trylock"] + 4 * C["l1_hit"])


def test_remote_node_objects_bypass_the_sheaves():
    cpu0 = [(A, T, s) for s in range(4)]
    cpu1 = [(F, T, s, 1000) for s in range(4)]
    r = run([cpu0, cpu1], cpus_per_node=1)
    assert path_names(r)[4:] == ["free_remote_node"] * 4
    assert r.stats["free_slowpath"] == 4 and r.stats["free_fastpath"] == 0
    # on one node the same frees go into CPU 1's sheaves
    r = run([cpu0, cpu1])
    assert path_names(r)[4:] == ["free_sheaf"] * 4


def test_trylock_fails_for_a_whole_interrupt_when_it_lands_in_a_locked_section():
    # back-to-back task allocations (no other work): the lock is held for a share of the time (the sheaf
    # operation itself; the entry point and hooks run outside it), so some interrupts (a run of hardirq frees)
    # land inside a locked section
    fails = []
    for seed in range(200):
        ev = [(A, T, s) for s in range(8)] + [(F, H, s) for s in range(4)] + [(A, T, 8)] + [(F, S, s) for s in range(4, 8)]
        r = run([ev], seed=seed)
        p = path_names(r)
        irq1, irq2 = p[8:12], p[13:17]
        for irq in (irq1, irq2):
            verdict = {x == "free_bypass_trylock" for x in irq}
            assert len(verdict) == 1  # all calls of one interrupt share the verdict
            fails.append(verdict.pop())
        if irq1[0] == "free_bypass_trylock":
            assert r.stats["free_slowpath"] >= 4
    assert any(fails) and not all(fails)


def test_trylock_never_fails_when_the_task_holds_the_lock_for_a_tiny_share_of_the_time():
    ev = [(A, T, s, 10**7) for s in range(8)] + [(F, H, s) for s in range(8)]
    for seed in range(10):
        r = run([ev], seed=seed)
        assert "free_bypass_trylock" not in path_names(r)


def test_alloc_in_interrupt_context_that_fails_the_trylock_takes_the_slab_path():
    # warm up (one refill), an interrupt to restart the window, then only sheaf hits before the
    # interrupt-context allocation: the task held the lock for the sheaf operations only (a small share of
    # each call: the entry point and hooks run outside it), so many seeds are tried
    ev = [(A, T, s) for s in range(4)] + [(F, H, 0), (F, T, 1), (F, T, 2), (A, T, 4), (A, T, 5), (A, H, 6)]
    outcomes = set()
    for seed in range(300):
        r = run([ev], seed=seed)
        outcomes.add(path_names(r)[-1])
        if path_names(r)[-1] == "alloc_bypass_trylock":
            assert r.stats["alloc_slowpath"] == 1
    # (when the first interrupt's free failed too, main is empty by then and 7.0 refills even in hardirq)
    assert "alloc_bypass_trylock" in outcomes and len(outcomes) > 1
    assert outcomes <= {"alloc_sheaf", "alloc_sheaf_refill", "alloc_bypass_trylock"}


def test_619_sheaves_refill_through_the_cpu_slab_double_caching():
    r = run([[(A, T, 0)]], kernel="6.19", sheaf_capacity=4)
    assert path_names(r) == ["alloc_sheaf_refill"]
    s = r.stats
    # __kmem_cache_alloc_bulk(): ___slab_alloc() made a new cpu slab (one object), then 3 objects came off
    # c->freelist; the other 4 of the slab stay on c->freelist: cached twice, below the sheaf
    assert s["alloc_slowpath"] == 1 and s["alloc_slab"] == 1 and s["alloc_fastpath"] == 3
    assert s["alloc_cpu_sheaf"] == 1 and s["sheaf_refill"] == 4
    I, F_ = r.extra["state"]
    v = ks.view(I, F_)
    freelist, o = [], v["cc"][0, 0]
    while o >= 0:
        freelist.append(int(o))
        o = v["onext"][o]
    assert freelist == [4, 5, 6, 7]


def test_619_interrupt_allocation_does_not_refill_a_sheaf():
    ev = [(A, T, s) for s in range(4)] + [(A, H, 4)]
    for seed in range(5):
        r = run([ev], kernel="6.19", sheaf_capacity=4, seed=seed)
        p = path_names(r)[4]
        # main and spare empty, barn empty, GFP_ATOMIC cannot block: the cpu slab (which still holds the
        # other half of the slab) serves it directly — unless the trylock failed first
        assert p in ("alloc_fastpath", "alloc_bypass_trylock")
        assert r.stats["barn_get_fail"] >= 1


def test_619_flush_goes_through_do_slab_free():
    ev = [(A, T, s) for s in range(64)] + [(F, T, s) for s in range(64)]
    r = run([ev], kernel="6.19", sheaf_capacity=4)
    assert path_names(r).count("free_sheaf_flush") == 4
    assert r.stats["free_cpu_sheaf"] == 64 and r.stats["sheaf_flush"] == 16
    assert r.stats["free_slowpath"] + r.stats["free_fastpath"] >= 4  # each flushed group: fast or slow


def test_every_sheaf_path_is_reached_and_matches_the_reference():
    seen = set()
    for seed in range(10):
        for kw in (dict(), dict(gfp_nowait_fails=True), dict(cpus_per_node=1), dict(kernel="6.19", sheaf_capacity=4)):
            r = both(random_program(seed, ncpu=2, n=500, p_alloc=0.5, cross=0.3, irq=0.3), **{**KW, **kw})
            seen.update(path_names(r))
        r = both(from_lists([[(A, T, s) for s in range(64)] + [(F, T, s) for s in range(64)]]), **KW)
        seen.update(path_names(r))
    sheaf_paths = {"alloc_sheaf", "alloc_sheaf_spare", "alloc_sheaf_barn", "alloc_sheaf_refill", "free_sheaf",
                   "free_sheaf_spare", "free_sheaf_barn_empty", "free_sheaf_barn_put", "free_sheaf_flush",
                   "free_sheaf_alloc_empty", "free_sheaf_flush_main", "free_bypass_trylock", "free_remote_node"}
    assert sheaf_paths <= seen, f"not reached: {sheaf_paths - seen}"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 4), st.sampled_from(["6.19", "7.0"]), st.sampled_from([4, 7, 30]),
       st.floats(0, 1), st.floats(0, 0.6), st.booleans())
def test_random_programs_match_the_reference(seed, ncpu, kernel, cap, cross, irq, nowait):
    """Event for event, object for object; and the invariants (slub.audit): no object lost or handed out
    twice, sheaf sizes within capacity, barn counts equal to its lists, slab inuse counts consistent."""
    prog = random_program(seed, ncpu=ncpu, n=300, cross=cross, irq=irq, gap_max=50)
    both(prog, kernel=kernel, object_size=4096, kmalloc=False, sheaf_capacity=cap, gfp_nowait_fails=nowait,
         cpus_per_node=1 if ncpu > 2 else None)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 6))
def test_barn_full_count_stays_within_the_limit_except_through_install(seed, ncpu):
    """nr_full exceeds MAX_FULL_SHEAVES only through the paths that ignore it by design
    (__pcs_install_empty_sheaf, the refill install): never by more than one sheaf per CPU."""
    prog = random_program(seed, ncpu=ncpu, n=600, p_alloc=0.5, cross=0.5)
    r = slub.run(prog, **KW)
    audit = slub.audit(r)
    assert audit["barn_full"] <= barn.MAX_FULL_SHEAVES + ncpu

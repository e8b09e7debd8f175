"""SLUB <= 6.19, the cpu slab (allocsim.kernel.cpu_slab): one test per path, hand-traced against v6.19
mm/slub.c (__slab_alloc_node, ___slab_alloc, do_slab_free, __slab_free), every path reached and matched by the pure-Python reference, and random programs event for event.

kmalloc-4k on 6.19 (1-2 CPUs): 8 objects per slab, cpu_partial 6 objects = 2 slabs, min_partial 6."""

from hypothesis import given, settings, strategies as st

from allocsim.facts import costs, steps
from allocsim.facts import kconfig
from allocsim.kernel.program import ALLOC as A, FREE as F, TASK as T, from_lists
from slub_programs import both, path_names, random_program

C = {k: costs.load().cycles(k) for k in costs.KEYS}


def hot(kernel="6.19", object_size=4096, kmalloc=True):
    """The v2 step sums (entry point and hooks, fast paths) a cpu-slab cache of this kind charges."""
    f = steps.Facts(cpu_slab=True, kmalloc=kmalloc, object_size=kconfig.kmalloc_size(object_size) if kmalloc else object_size)
    return dict(zip(steps.SLUB_SEGMENTS, steps.slub_vector(costs.load(), steps.load(), f)))
KW = dict(kernel="6.19", object_size=4096)


def run(per_cpu, **kw):
    return both(from_lists(per_cpu), **{**KW, **kw})


def test_geometry_used_for_these_tests():
    g = kconfig.cache_geometry(4096, 2, "6.19")
    assert (g.objs_per_slab, g.cpu_partial_slabs, g.min_partial, g.sheaf_capacity) == (8, 2, 6, 0)


def test_fast_path_new_slab_bypass_cpu_partial_and_free_paths():
    ev = [(A, T, s) for s in range(9)] + [(F, T, 8), (F, T, 0), (F, T, 1)] + [(A, T, s) for s in range(9, 18)]
    r = run([ev])
    p = path_names(r)
    # an empty cache: the first allocation makes a slab the cpu slab, the next 7 pop c->freelist
    assert p[:8] == ["alloc_slab"] + ["alloc_fastpath"] * 7
    # the 9th finds the cpu slab exhausted (deactivate_bypass) and nothing partial: a second new slab
    assert p[8] == "alloc_slab"
    # object 8 is on the cpu slab: fast free; object 0's slab is full and unfrozen: put_cpu_partial();
    # object 1's slab is now on the cpu partial list with free objects: just the cmpxchg
    assert p[9:12] == ["free_fastpath", "free_cpu_partial", "free_partial"]
    # LIFO: the freed object 8 comes back first; when the cpu slab runs out, the cpu partial slab
    # (freelist 1 -> 0) becomes the cpu slab
    assert p[12:20] == ["alloc_fastpath"] * 8 and p[20] == "alloc_cpu_partial"
    assert r.extra["slot_obj"][9:].tolist() == [8, 9, 10, 11, 12, 13, 14, 15, 1]
    s = r.stats
    assert s["deactivate_bypass"] == 2 and s["cpu_partial_free"] == 1 and s["cpu_partial_alloc"] == 1
    assert s["alloc_fastpath"] == 15 and s["alloc_slowpath"] == 3 and s["free_fastpath"] == 1 and s["free_slowpath"] == 2
    # costs: a fast path is the entry point and hooks plus the cpu_slab_alloc steps; a slow free adds the call
    # and a LOCK cmpxchg16b
    v = hot()
    assert r.paths["alloc_fastpath"][1] == 15 * (v["alloc_entry"] + v["cpu_slab_alloc"])
    assert r.paths["free_partial"][1] == v["free_entry"] + C["function_call"] + C["locked_cmpxchg16b"]


def test_cpu_partial_list_drains_to_the_node_and_get_partial_node_refills_it():
    ev = [(A, T, s) for s in range(32)] + [(F, T, 0), (F, T, 8), (F, T, 16), (A, T, 32), (A, T, 33)]
    r = run([ev])
    p = path_names(r)[32:]
    # slabs 0 and 1 go to the cpu partial list; slab 2 finds it holding cpu_partial_slabs (2): drain
    assert p[:3] == ["free_cpu_partial", "free_cpu_partial", "free_cpu_partial_drain"]
    # slab 2 (object 16) is next from the cpu partial list; then get_partial_node(): slab 1 becomes the
    # cpu slab and slab 0 moves to the cpu partial list (cpu_partial_node)
    assert p[3:] == ["alloc_cpu_partial", "alloc_from_partial"]
    assert r.extra["slot_obj"][32:].tolist() == [16, 8]
    s = r.stats
    assert s["cpu_partial_drain"] == 1 and s["free_add_partial"] == 2
    assert s["alloc_from_partial"] == 1 and s["cpu_partial_node"] == 1


def test_remote_free_to_a_frozen_slab_then_alloc_refill():
    cpu0 = [(A, T, s) for s in range(4)] + [(A, T, 4, 100_000)] + [(A, T, s) for s in range(5, 9)]
    cpu1 = [(F, T, 0, 1000), (F, T, 1)]
    r = run([cpu0, cpu1])
    p = path_names(r)
    # CPU 1 frees objects of CPU 0's cpu slab: that slab is frozen, so __slab_free just links them
    assert p[9:] == ["free_frozen", "free_frozen"]
    # CPU 0 uses up c->freelist, then get_freelist() takes the two remotely freed objects back
    assert p[:9] == ["alloc_slab"] + ["alloc_fastpath"] * 7 + ["alloc_refill"]
    assert r.extra["slot_obj"][8] == 1
    assert r.stats["free_frozen"] == 2 and r.stats["alloc_refill"] == 1


def test_free_fast_path_only_for_this_cpus_cpu_slab():
    # CPU 0 allocates 4 objects of its cpu slab; CPU 1 (which has no cpu slab) frees them: never fast
    cpu0 = [(A, T, s) for s in range(4)]
    cpu1 = [(F, T, s, 500) for s in range(4)]
    r = run([cpu0, cpu1])
    assert path_names(r)[4:] == ["free_frozen"] * 4 and r.stats["free_fastpath"] == 0
    # the same frees on CPU 0 are all fast
    r = run([cpu0 + [(F, T, s) for s in range(4)]])
    assert path_names(r)[4:] == ["free_fastpath"] * 4


def test_empty_slab_on_the_node_partial_list_is_discarded_above_min_partial():
    # 9 slabs of 8; free one object of each of slabs 0..7 (drains put them on the node list), then free
    # every object of slab 0: when it becomes empty, nr_partial >= min_partial (6): discarded
    ev = [(A, T, s) for s in range(72)]
    ev += [(F, T, 8 * k) for k in range(8)]
    ev += [(F, T, s) for s in range(1, 8)]
    r = run([ev])
    p = path_names(r)
    assert p[-1] == "free_list_lock"
    assert r.stats["free_remove_partial"] == 1 and r.stats["free_slab"] == 1
    assert r.extra["nr_slabs"] == 8


def test_every_cpu_slab_path_is_reached_and_matches_the_reference():
    seen = set()
    for seed in range(12):
        for ncpu in (1, 2, 3):
            r = both(random_program(seed, ncpu=ncpu, n=400, cross=0.4), **KW)
            seen.update(path_names(r))
    cpu_paths = {"alloc_fastpath", "alloc_refill", "alloc_cpu_partial", "alloc_from_partial", "alloc_slab",
                 "free_fastpath", "free_frozen", "free_cpu_partial", "free_cpu_partial_drain", "free_partial",
                 "free_list_lock"}
    assert cpu_paths <= seen, f"not reached: {cpu_paths - seen}"
    assert seen <= cpu_paths  # and nothing else: no sheaves in a 6.19 kmalloc cache


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 4), st.sampled_from([96, 256, 4096]), st.floats(0, 1))
def test_random_programs_match_the_reference(seed, ncpu, size, cross):
    both(random_program(seed, ncpu=ncpu, n=250, cross=cross, irq=0.3), kernel="6.19", object_size=size)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10**6))
def test_two_nodes_match_the_reference(seed):
    both(random_program(seed, ncpu=4, n=400, cross=0.5), kernel="6.19", object_size=4096, cpus_per_node=2)

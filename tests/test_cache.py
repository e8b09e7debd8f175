"""The memory hierarchy (allocsim.kernel.cache): hand-computed cases from issue 11's "Done when", the coherence
and capacity invariants as properties, and the numba model against its pure-Python oracle
(allocsim.kernel.oracle.cache) access for access: cycles, where the data came from, what a write invalidated,
the counters and the final contents of every level."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocsim.facts import cpu as cpufacts
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import cache
from allocsim.kernel.oracle import cache as oracle

CLOCK = 3.0
G = cpufacts.geometry(CLOCK)
INV_NAME = {0: None, 1: "same", 2: "llc", 3: "node"}


def kinds_of(CI, CF, accesses):
    cycles, kinds, invs = cache.stream(CI, CF, *zip(*accesses)) if accesses else (np.zeros(0),) * 3
    return cycles, [cache.KINDS[k] for k in kinds], [INV_NAME[int(i)] for i in invs]


# -- hand-computed cases ------------------------------------------------------------------------------------

def test_lifo_reuse_of_the_same_line_is_an_l1_hit():
    """kfree() writes the free pointer into the object; the next kmalloc() on the same CPU reads it back."""
    CI, CF = cache.new_cache(2, G)
    cycles, kinds, invs = kinds_of(CI, CF, [(0, 1000, 1), (0, 1000, 0), (0, 1000, 1)])
    assert kinds == ["MEM", "L1", "L1"] and invs == [None, None, None]
    assert list(cycles) == [66 * CLOCK, 4.0, 4.0]


def test_a_fifo_sweep_over_more_lines_than_l1_holds_misses_l1_on_every_line():
    l1_lines = G.l1_sets * G.l1_ways  # 512
    n = 2 * l1_lines
    lines = list(range(5000, 5000 + n))
    CI, CF = cache.new_cache(1, G)
    kinds_of(CI, CF, [(0, x, 1) for x in lines])  # first pass: allocate (cold)
    _, kinds, _ = kinds_of(CI, CF, [(0, x, 0) for x in lines])  # FIFO: the same order again
    assert kinds == ["L2"] * n  # every line was evicted from L1 before its turn came, and L2 holds all
    # LIFO (the reverse order) finds the most recent L1-full of lines in L1
    CI, CF = cache.new_cache(1, G)
    kinds_of(CI, CF, [(0, x, 1) for x in lines])
    _, kinds, _ = kinds_of(CI, CF, [(0, x, 0) for x in reversed(lines)])
    assert kinds[:l1_lines] == ["L1"] * l1_lines and kinds[l1_lines:] == ["L2"] * l1_lines


def test_a_write_on_b_of_a_line_last_written_on_a_pays_one_transfer():
    CI, CF = cache.new_cache(16, G)
    cycles, kinds, invs = kinds_of(CI, CF, [(0, 77, 1), (1, 77, 1)])
    assert kinds == ["MEM", "XSAME"] and invs == [None, None]
    assert cycles[1] == 23 * CLOCK
    assert cache.counters(CI)[1, cache.K_XSAME] == 1 and cache.counters(CI)[:, cache.K_XSAME:cache.K_MEM].sum() == 1
    # A has lost its copy: its next read is a transfer back, and B keeps a shared copy
    cycles, kinds, _ = kinds_of(CI, CF, [(0, 77, 0), (1, 77, 0)])
    assert kinds == ["XSAME", "L1"]
    # across LLC domains (CPU 8 is in the second group of 8): the cross-LLC latency
    # (the line is still dirty in domain 0: B's write was downgraded, not written back to memory)
    cycles, kinds, invs = kinds_of(CI, CF, [(8, 77, 1)])
    assert kinds == ["XLLC"] and invs == ["llc"] and cycles[0] == 107 * CLOCK
    c = cache.contents(CI)
    assert 77 not in c["l2"][0] and 77 not in c["l2"][1] and c["llc"][1][77] == ({8}, 8, True)


def test_transfer_latencies_by_distance():
    g = G.with_(llcs_per_node=1)  # every LLC domain its own node
    CI, CF = cache.new_cache(24, G)
    cycles, kinds, _ = kinds_of(CI, CF, [(0, 5, 1), (8, 5, 0)])
    assert kinds == ["MEM", "XLLC"] and cycles[1] == 107 * CLOCK
    CI, CF = cache.new_cache(24, g)
    cycles, kinds, invs = kinds_of(CI, CF, [(0, 5, 1), (8, 5, 0), (16, 5, 0), (0, 5, 1)])
    # CPU 16 reads a line that is now clean in domains 0 and 1: memory; then CPU 0's write invalidates
    # copies in two other nodes and pays the cross-node latency
    assert kinds == ["MEM", "XNODE", "MEM", "L1"] and invs == [None, None, None, "node"]
    assert list(cycles) == [66 * CLOCK, 197 * CLOCK, 66 * CLOCK, 197 * CLOCK]


def test_a_write_to_a_line_only_this_cpu_holds_costs_nothing_extra():
    CI, CF = cache.new_cache(2, G)
    cycles, kinds, invs = kinds_of(CI, CF, [(0, 9, 0), (0, 9, 1)])
    assert kinds == ["MEM", "L1"] and invs == [None, None] and cycles[1] == 4.0
    # shared with the other CPU of the domain: the write invalidates it at the same-LLC latency
    cycles, kinds, invs = kinds_of(CI, CF, [(1, 9, 0), (0, 9, 1), (1, 9, 0)])
    assert kinds == ["XSAME", "L1", "XSAME"] and invs == [None, "same", None]
    assert cycles[1] == 23 * CLOCK


def test_a_set_conflict_evicts_the_least_recently_used_line():
    """Nine lines of one L1 set (stride = the number of sets) in an 8-way L1."""
    CI, CF = cache.new_cache(1, G)
    S = G.l1_sets
    first8 = [3 + k * S for k in range(8)]
    ninth = 3 + 8 * S
    kinds_of(CI, CF, [(0, x, 0) for x in first8])
    _, kinds, _ = kinds_of(CI, CF, [(0, first8[0], 0)])  # line 0 becomes the most recent
    assert kinds == ["L1"]
    kinds_of(CI, CF, [(0, ninth, 0)])  # evicts the LRU: first8[1]
    _, kinds, _ = kinds_of(CI, CF, [(0, x, 0) for x in [first8[0], *first8[2:], ninth]])
    assert kinds == ["L1"] * 8
    _, kinds, _ = kinds_of(CI, CF, [(0, first8[1], 0)])
    assert kinds == ["L2"]  # L1 lost it, L2 (1024 sets) kept it
    occ = cache.set_occupancy(CI)
    assert occ["l1"] == (8, 8, False)


def test_an_llc_eviction_takes_the_line_out_of_every_private_cache_of_the_domain():
    g = G.with_(llc_sets=1, llc_ways=2)  # a 2-line LLC
    CI, CF = cache.new_cache(2, g)
    kinds_of(CI, CF, [(0, 1, 0), (1, 2, 0), (1, 3, 0)])  # line 1 is the LRU of the LLC and goes
    c = cache.contents(CI)
    assert 1 not in c["l1"][0] and 1 not in c["l2"][0] and set(c["llc"][0]) == {2, 3}
    _, kinds, _ = kinds_of(CI, CF, [(0, 1, 0)])
    assert kinds == ["MEM"]


def test_cycles_follow_the_clock_for_transfers_and_memory_only():
    g = cpufacts.geometry(2.0)
    assert (g.lat_l1, g.lat_l2, g.lat_llc) == (4.0, 12.0, 46.0)
    assert (g.lat_same_llc, g.lat_cross_llc, g.lat_cross_node, g.lat_memory) == (46.0, 214.0, 394.0, 132.0)


@pytest.mark.parametrize("bad, message", [
    (dict(ncpu=0), "at least one CPU"),
    (dict(geometry=G.__class__(**{**G.__dict__, "l1_ways": 0})), "l1_ways must be a whole number >= 1"),
    (dict(geometry=G.__class__(**{**G.__dict__, "cpus_per_llc": 63})), "cpus_per_llc must be at most 62"),
    (dict(geometry=G.__class__(**{**G.__dict__, "lat_memory": float("nan")})), "lat_memory must be a number of cycles"),
])
def test_bad_geometry_is_one_sentence(bad, message):
    args = dict(ncpu=2, geometry=G) | bad
    with pytest.raises(AllocsimError, match=message) as exc:
        cache.new_cache(**args)
    assert "\n" not in str(exc.value)


def test_a_bad_stream_is_one_sentence():
    CI, CF = cache.new_cache(2, G)
    with pytest.raises(AllocsimError, match="CPU must be from 0 to 1"):
        cache.stream(CI, CF, [2], [1], [0])
    with pytest.raises(AllocsimError, match="line number must be >= 0"):
        cache.stream(CI, CF, [0], [-1], [0])
    with pytest.raises(AllocsimError, match="one CPU, one line and one write flag"):
        cache.stream(CI, CF, [0, 1], [1], [0])


def test_the_hierarchy_can_live_inside_larger_arrays():
    n = cache.size_of(3, G)
    I = np.zeros(n + 10, np.int64)
    F = np.zeros(cache.NF + 4, np.float64)
    cache.init_at(I, 10, F, 4, 3, G)
    CI, CF = cache.new_cache(3, G)
    for c, ln, w in [(0, 4, 1), (1, 4, 0), (2, 4, 1), (2, 900, 0)]:
        assert cache.access_at(I, 10, F, 4, c, ln, w) == cache.access(CI, CF, c, ln, w)
    assert (cache.counters(I, 10) == cache.counters(CI)).all()


# -- the oracle, and properties ------------------------------------------------------------------------------

def small_geometry(cpl, lpn, odd=False):
    """Tiny caches so that short streams evict at every level; ``odd``: set counts that are not powers of two
    (the set index is then ``line % sets`` instead of a mask)."""
    s1, s2, s3 = (3, 5, 6) if odd else (2, 4, 4)
    return G.with_(l1_sets=s1, l1_ways=2, l2_sets=s2, l2_ways=2, llc_sets=s3, llc_ways=3, cpus_per_llc=cpl,
                   llcs_per_node=lpn)


def spec_of(g):
    """The oracle's spec for a geometry a test made up (the oracle's own reading is checked separately)."""
    return {"l1": (g.l1_sets, g.l1_ways), "l2": (g.l2_sets, g.l2_ways), "llc": (g.llc_sets, g.llc_ways),
            "cpus_per_llc": g.cpus_per_llc, "llcs_per_node": g.llcs_per_node,
            "latency": dict(zip(oracle.KINDS, (g.lat_l1, g.lat_l2, g.lat_llc, g.lat_same_llc, g.lat_cross_llc,
                                               g.lat_cross_node, g.lat_memory)))}


def check_invariants(c, ncpu, cpl):
    """The coherence and inclusion rules on a contents() snapshot."""
    holders = {}
    for cpu in range(ncpu):
        l1, l2 = c["l1"][cpu], c["l2"][cpu]
        for ln, s in l1.items():
            assert l2.get(ln) == s, f"L1 of CPU {cpu} holds line {ln} that its L2 lacks or holds in another state"
        for ln, s in l2.items():
            holders.setdefault(ln, []).append((cpu, s))
            ent = c["llc"][cpu // cpl].get(ln)
            assert ent is not None and cpu in ent[0], f"line {ln} in CPU {cpu}'s L2 but not in its LLC's sharers"
    for ln, hs in holders.items():
        mods = [cpu for cpu, s in hs if s == cache.S_MOD]
        assert len(mods) <= 1, f"line {ln} modified in CPUs {mods}"
        if mods:
            assert len(hs) == 1, f"line {ln} modified in CPU {mods[0]} and held by {hs}"
    dirty = {}
    for d, ents in c["llc"].items():
        for ln, (sharers, writer, dt) in ents.items():
            assert sharers == {cpu for cpu, _ in holders.get(ln, []) if cpu // cpl == d}
            assert writer == next((cpu for cpu, s in holders.get(ln, []) if s == cache.S_MOD and cpu // cpl == d), -1)
            if writer >= 0:
                assert dt
            if dt:
                dirty.setdefault(ln, []).append(d)
    for ln, ds in dirty.items():
        assert len(ds) == 1, f"line {ln} dirty in domains {ds}"
        assert all(ln not in c["llc"][e] for e in c["llc"] if e != ds[0]), f"line {ln} dirty in {ds[0]} and held elsewhere"


streams = st.integers(1, 7).flatmap(lambda ncpu: st.tuples(
    st.just(ncpu), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2]), st.booleans(),
    st.lists(st.tuples(st.integers(0, ncpu - 1), st.integers(0, 23), st.booleans()), max_size=80)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_numba_and_oracle_agree_access_for_access_and_the_invariants_hold(case):
    ncpu, cpl, lpn, odd, accesses = case
    g = small_geometry(cpl, lpn, odd)
    CI, CF = cache.new_cache(ncpu, g)
    h = oracle.Hierarchy(ncpu, spec_of(g))
    for i, (c, ln, w) in enumerate(accesses):
        cyc = cache.access(CI, CF, c, ln, w)
        got = (cyc, cache.KINDS[CI[cache.H_LAST_KIND]], INV_NAME[int(CI[cache.H_LAST_INV])])
        want = h.access(c, ln, w)
        assert got == want, f"access {i} {(c, ln, w)}: numba {got}, oracle {want}"
        snap = cache.contents(CI)
        assert snap == h.contents(), f"contents differ after access {i}"
        check_invariants(snap, ncpu, cpl)
        occ = cache.set_occupancy(CI)
        assert all(n <= ways and not dup for n, ways, dup in occ.values()), occ
    cnt = cache.counters(CI)
    for cpu in range(ncpu):
        assert dict(zip(cache.COUNTER_NAMES, cnt[cpu].tolist())) == {
            **{k: h.count[cpu][k] for k in oracle.KINDS},
            "INV_SAME": h.count[cpu]["same"], "INV_LLC": h.count[cpu]["llc"], "INV_NODE": h.count[cpu]["node"]}


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 3000), st.booleans()), min_size=1, max_size=3000),
       st.sampled_from([1.0, 3.0, 4.2]))
def test_default_cpu_streams_agree_with_the_oracle_reading_the_data_itself(accesses, clock):
    CI, CF = cache.new_cache(16, cpufacts.geometry(clock))
    cycles, kinds, invs = cache.stream(CI, CF, *zip(*accesses))
    want, h = oracle.run_stream(16, oracle.read_cpu(clock), accesses)
    got = [(float(c), cache.KINDS[k], INV_NAME[int(i)]) for c, k, i in zip(cycles, kinds, invs)]
    assert got == want
    assert cache.contents(CI) == h.contents()


def test_a_long_seeded_stream_reaches_every_kind_and_agrees_with_the_oracle():
    rng = np.random.default_rng(11)
    n = 20000
    acc = list(zip(rng.integers(0, 6, n).tolist(), rng.integers(0, 40, n).tolist(), (rng.random(n) < 0.4).tolist()))
    g = small_geometry(2, 2)
    CI, CF = cache.new_cache(6, g)
    cycles, kinds, invs = cache.stream(CI, CF, *zip(*acc))
    want, h = oracle.run_stream(6, spec_of(g), acc)
    assert [(float(c), cache.KINDS[k], INV_NAME[int(i)]) for c, k, i in zip(cycles, kinds, invs)] == want
    assert set(kinds.tolist()) == set(range(7)) and set(invs.tolist()) == {0, 1, 2, 3}
    check_invariants(cache.contents(CI), 6, 2)


def test_the_oracle_reads_the_same_cpu_as_the_facts_module():
    assert oracle.read_cpu(3.0) == spec_of(G)


def test_the_benchmark_prints_its_figures():
    from conftest import run_cli

    r = run_cli("bench", "cache", "--accesses", "3000", "--repeat", "1", "--stream", "shared")
    assert r.returncode == 0, r.stderr
    assert "M accesses/s" in r.stdout and "oracle" in r.stdout and "XLLC" in r.stdout


def test_benchmark_streams_are_seeded():
    from allocsim.book.benchmarks.cache import make_stream

    for name in ("lifo", "sweep", "shared"):
        a, b = make_stream(name, 500), make_stream(name, 500)
        assert all((x == y).all() for x, y in zip(a, b))

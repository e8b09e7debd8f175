"""kconfig: versions, calculate_order(), min_partial, set_cpu_partial(), the sheaf capacity formula and
cache_geometry(), checked against the values a 6.18.44 kernel shows in /sys/kernel/slab (the shipped snapshot
data/snapshots/linux-6.18.44-fc-v595-2026-11-29.json) and values worked by hand from mm/slub.c
calculate_order(), set_cpu_partial() (v6.19) and calculate_sheaf_capacity() (v7.0)."""

import pytest
from hypothesis import given, settings, strategies as st

from allocsim.facts import kconfig, versions
from allocsim.facts.errors import AllocsimError

# /sys/kernel/slab on 6.18.44, 2 present CPUs (data/snapshots/linux-6.18.44-fc-v595-2026-11-29.json):
# cache: (slab_size, order, objs/slab, cpu_partial, min_partial)
LIVE_6_18_2CPU = {
    "kmalloc-64": (64, 0, 64, 120, 5),
    "kmalloc-96": (96, 0, 42, 120, 5),
    "kmalloc-128": (128, 0, 32, 120, 5),
    "kmalloc-192": (192, 0, 21, 120, 5),
    "kmalloc-256": (256, 0, 16, 52, 5),
    "kmalloc-512": (512, 1, 16, 52, 5),
    "kmalloc-1k": (1024, 2, 16, 24, 5),
    "kmalloc-2k": (2048, 3, 16, 24, 5),
    "kmalloc-4k": (4096, 3, 8, 6, 6),
    "kmalloc-8k": (8192, 3, 4, 6, 6),
}


@pytest.mark.parametrize("cache", sorted(LIVE_6_18_2CPU))
def test_live_table_2cpus(cache):
    size, order, objs, cpu_partial, min_partial = LIVE_6_18_2CPU[cache]
    assert kconfig.calculate_order(size, 2) == (order, objs)
    assert kconfig.set_cpu_partial(size, objs, "6.18")[0] == cpu_partial
    assert kconfig.min_partial(size) == min_partial
    g = kconfig.cache_geometry(size, 2, "6.18.44")
    assert (g.name, g.size, g.order, g.objs_per_slab, g.cpu_partial, g.min_partial) == (cache, size, order, objs, cpu_partial, min_partial)
    assert g.sheaf_capacity == 0  # 6.18: every kmalloc-* cache has sheaf_capacity 0 [LIVE]


def test_computed_64_cpus():
    # worked by hand from mm/slub.c calculate_order() (v6.19, v7.0): 64 CPUs (min_objects 32)
    assert kconfig.min_objects(64) == 32
    assert kconfig.calculate_order(256, 64) == (1, 32)
    assert kconfig.calculate_order(512, 64) == (2, 32)
    assert kconfig.calculate_order(192, 64) == (1, 42)
    assert kconfig.calculate_order(96, 64)[0] == 0
    assert kconfig.calculate_order(64, 64)[0] == 0


def test_computed_192_cpus():
    assert kconfig.calculate_order(128, 192)[0] == 1
    assert kconfig.calculate_order(256, 192) == (2, 64)
    assert kconfig.calculate_order(512, 192) == (3, 64)


def test_min_objects_single_present_cpu_uses_nr_cpu_ids():
    # calculate_order(): "don't trust the number if it's just 1" -> nr_cpu_ids
    assert kconfig.min_objects(1) == 4 * (1 + 1)
    assert kconfig.min_objects(1, ncpu_possible=64) == 32
    assert kconfig.min_objects(2, ncpu_possible=64) == 12  # present > 1: possible is ignored


def test_cpu_partial_slabs():
    # mm/slub.c set_cpu_partial() + slub_set_cpu_partial() (v6.19): kmalloc-96 gives ceil(240/42) = 6 slabs
    assert kconfig.set_cpu_partial(96, 42, "6.19") == (120, 6)
    assert kconfig.set_cpu_partial(96, 42, "7.0") == (0, 0)
    assert kconfig.set_cpu_partial(4096, 8, "6.18") == (6, 2)


@pytest.mark.parametrize("size,expected", [(64, 60), (96, 60), (128, 60), (192, 60), (255, 60),
                                           (256, 28), (512, 28), (1023, 28),
                                           (1024, 12), (2048, 12), (4095, 12), (4096, 4), (8192, 4)])
def test_sheaf_capacity_7_0(size, expected):
    # mm/slub.c calculate_sheaf_capacity() (v7.0) by hand: 60 / 28 / 12 / 4 (base 60 / 26 / 12 / 4 rounded to fill the kmalloc bucket)
    assert kconfig.calculate_sheaf_capacity(size) == expected
    assert kconfig.calculate_sheaf_capacity(size, 0, "7.0-rc4") == expected


def test_sheaf_capacity_base_and_buckets():
    assert [kconfig.sheaf_capacity_base(s) for s in (96, 256, 1024, 4096)] == [60, 26, 12, 4]
    assert kconfig.sheaf_header() == 32
    # kmalloc_size_roundup(32 + 8 * capacity), mm/slab_common.c (v7.0): 512 B for capacity 60, 256 B for 28, 128 B for 12, 64 B for 4
    assert [kconfig.sheaf_alloc_size(c) for c in (60, 28, 12, 4)] == [512, 256, 128, 64]
    # 26 would be 240 bytes, rounded up to kmalloc-256: the "26" vs 28 discussion
    assert kconfig.sheaf_alloc_size(26) == 256
    # Dave Chinner's sheaf_capacity = 256 sheaf: 32 + 2048 = 2080 B -> kmalloc-4k
    assert kconfig.sheaf_alloc_size(256) == 4096


def test_sheaf_capacity_requests():
    # maple_node (256 B): max(28, 32) = 32; vm_area_struct (192 B): max(60, 32) = 60
    assert kconfig.calculate_sheaf_capacity(256, 32, "7.0") == 32
    assert kconfig.calculate_sheaf_capacity(192, 32, "7.0") == 60
    assert kconfig.calculate_sheaf_capacity(96, 256, "7.0") == 256
    # 6.18/6.19: verbatim, no rounding; 0 when not asked
    assert kconfig.calculate_sheaf_capacity(256, 32, "6.18") == 32
    assert kconfig.calculate_sheaf_capacity(192, 0, "6.19") == 0
    assert kconfig.calculate_sheaf_capacity(96, 27, "6.19") == 27


def test_cache_geometry_iomap_dio():
    g = kconfig.cache_geometry(96, 2, "7.0")
    assert (g.name, g.size, g.order, g.objs_per_slab, g.cpu_partial, g.cpu_partial_slabs, g.sheaf_capacity) == (
        "kmalloc-96", 96, 0, 42, 0, 0, 60)
    assert kconfig.cache_geometry(96, 2, "6.19").cpu_partial == 120
    # the patch's element: 96 + 8-byte header -> kmalloc-128
    assert kconfig.cache_geometry(104, 2, "6.19").name == "kmalloc-128"
    d = kconfig.cache_geometry(100, 2, "6.19", sheaf_capacity=256, kmalloc=False)
    assert (d.object_size, d.size, d.sheaf_capacity) == (100, 104, 256)
    d7 = kconfig.cache_geometry(96, 2, "7.0", sheaf_capacity=256, kmalloc=False, name="iomap_dio")
    assert (d7.name, d7.sheaf_capacity, d7.cpu_partial) == ("iomap_dio", 256, 0)
    with pytest.raises(AllocsimError):
        kconfig.cache_geometry(96, 2, "7.0", sheaf_capacity=32)  # kmalloc caches take no request
    with pytest.raises(Exception):
        g.order = 1  # frozen


@pytest.mark.parametrize("v,expected", [("6.18", "6.18"), ("6.18.44", "6.18"), ("6.18.44-fc-v595", "6.18"),
                                        ("6.19", "6.19"), ("6.19.10", "6.19"), ("7.0", "7.0"), ("7.0-rc3", "7.0"),
                                        ("7.0-rc4", "7.0"), ("v7.0", "7.0"), (" 7.0.1 ", "7.0")])
def test_check_version_aliases(v, expected):
    assert kconfig.check_version(v) == expected


@pytest.mark.parametrize("v", ["5.15", "6.1", "7.1", "6", "seven", "", "6.18x", None, 7.0])
def test_check_version_unknown(v):
    with pytest.raises(AllocsimError) as e:
        kconfig.check_version(v)
    msg = str(e.value)
    assert "6.18, 6.19, 7.0" in msg and msg.count(". ") == 0 and "\n" not in msg


def test_versions_match_data():
    assert kconfig.VERSIONS == tuple(kconfig._slub()["versions"])
    assert all(versions.FAMILY_OF[v] in versions.FAMILIES for v in kconfig.VERSIONS)


@pytest.mark.parametrize("call", [
    lambda: kconfig.calculate_order(0, 2),
    lambda: kconfig.calculate_order(-8, 2),
    lambda: kconfig.calculate_order(96.0, 2),
    lambda: kconfig.calculate_order(True, 2),
    lambda: kconfig.calculate_order((4096 << 10) + 1, 2),
    lambda: kconfig.calculate_order(96, 0),
    lambda: kconfig.calculate_order(96, 10**6),
    lambda: kconfig.min_partial(0),
    lambda: kconfig.set_cpu_partial(96, 0, "6.18"),
    lambda: kconfig.set_cpu_partial(96, 42, "5.4"),
    lambda: kconfig.calculate_sheaf_capacity(96, -1),
    lambda: kconfig.calculate_sheaf_capacity(96, 10**9),
    lambda: kconfig.calculate_sheaf_capacity(96, 0, "4.19"),
    lambda: kconfig.sheaf_alloc_size(0),
    lambda: kconfig.cache_geometry(8193, 2, "7.0"),
    lambda: kconfig.cache_geometry(0, 2, "7.0", kmalloc=False),
    lambda: kconfig.kmalloc_size_roundup(0),
])
def test_bad_input_one_sentence(call):
    with pytest.raises(AllocsimError) as e:
        call()
    msg = str(e.value)
    assert msg and "\n" not in msg and "Traceback" not in msg


def test_kmalloc_size_roundup():
    assert kconfig.kmalloc_size_roundup(240) == 256
    assert kconfig.kmalloc_size_roundup(2080) == 4096
    assert kconfig.kmalloc_size_roundup(8193) == 16384
    assert kconfig.kmalloc_size_roundup(4096 << 10) == 4096 << 10


# --- properties of calculate_order(), against a brute-force reading of the comment's rule ---------------

def _reference_order(size, ncpu):
    """Obviously-correct restatement: take the fraction list in order; for each, the smallest order in
    [min_order, 3] whose leftover is at most slab/fraction; the first fraction that has one wins."""
    page = 4096
    nr = 4 * (ncpu.bit_length() + 1)
    nr = min(nr, max((page << 3) // size, 1))
    min_order = next(o for o in range(11) if (page << o) >= nr * size)
    if (page << min_order) // size > 32767:
        o = next(o for o in range(11) if (page << o) >= size * 32767) - 1
        return o, (page << o) // size
    for frac in (16, 8, 4, 2):
        for o in range(min_order, 4):
            if (page << o) % size <= (page << o) // frac:
                return o, (page << o) // size
    o = next(o for o in range(11) if (page << o) >= size)
    return o, (page << o) // size


@settings(max_examples=400, deadline=None)
@given(size=st.integers(1, 4096 << 10), ncpu=st.integers(1, 8192))
def test_calculate_order_matches_reference(size, ncpu):
    assert kconfig.calculate_order(size, ncpu) == _reference_order(size, ncpu)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(8, 8192).map(lambda s: s // 8 * 8 or 8), ncpu=st.integers(1, 8192))
def test_calculate_order_invariants(size, ncpu):
    order, objs = kconfig.calculate_order(size, ncpu)
    assert 0 <= order <= 3 and objs >= 1
    assert objs == (4096 << order) // size and objs * size <= 4096 << order
    # the waste never exceeds half the slab for objects that fit an order-3 slab
    assert (4096 << order) - objs * size <= (4096 << order) // 2
    # more CPUs never means smaller slabs
    assert kconfig.calculate_order(size, min(ncpu * 2, 8192))[0] >= order


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 8192), req=st.integers(0, 4096))
def test_sheaf_capacity_properties(size, req):
    cap = kconfig.calculate_sheaf_capacity(size, req, "7.0")
    assert cap >= req and cap >= kconfig.sheaf_capacity_base(size)
    if cap > req:  # the default: the sheaf exactly fills its kmalloc bucket
        assert 32 + 8 * cap == kconfig.sheaf_alloc_size(cap)
    assert kconfig.calculate_sheaf_capacity(size, req, "6.19") == req


def test_machine_constants_come_from_the_data(tmp_path, monkeypatch):
    """PAGE_SIZE, sizeof(void *) and the most CPUs are read from data/ (slub.yaml, structs.yaml), once."""
    import shutil

    import yaml

    from allocsim.facts import datafile, paths

    assert (kconfig.page_size(), kconfig.pointer_size(), kconfig.nr_cpus_max()) == (4096, 8, 8192)
    data = tmp_path / "data"
    shutil.copytree(paths.DATA, data)
    doc = yaml.safe_load((data / "kernel" / "slub.yaml").read_text())
    doc["nr_cpus_max"] = 16
    (data / "kernel" / "slub.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(paths, "DATA", data)
    datafile.clear_cache()
    try:
        assert kconfig.min_objects(16) == 4 * (5 + 1)
        with pytest.raises(AllocsimError, match="the number of present CPUs must be an integer from 1 to 16, not 17"):
            kconfig.min_objects(17)
    finally:
        monkeypatch.undo()
        datafile.clear_cache()

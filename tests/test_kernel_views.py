"""The appendix "Your kernel" (allocsim.pages.kernel) on the shipped snapshot."""

import dataclasses

import pytest

from allocsim.facts import inspect, kconfig, structs
from allocsim.pages import kernel as views


@pytest.fixture(scope="module")
def snap():
    reading, _ = inspect.load("snapshot")
    rows, summary = inspect.compare(reading)
    return reading, rows, summary, inspect.parse(reading)


def test_summary_table_and_spaced_headers(snap):
    reading, rows, summary, _ = snap
    t = views.summary_table(summary, reading)
    assert t.loc["kernel release", "value"] == summary["release"]
    assert t.loc["reading", "value"] == reading.source and reading.source.startswith("snapshot")
    assert list(views.spaced(inspect.readings_table(reading)).columns) == [
        c.replace("_", " ") for c in inspect.readings_table(reading).columns]


def test_sheaf_sizes_from_the_kernel_data():
    s = views.sheaf_sizes(structs.sizeof("iomap_dio"), version="7.0")
    assert s.header_bytes == kconfig.sheaf_header()
    assert s.sheaf_bytes_26 == s.header_bytes + s.pointer_bytes * s.base256
    assert s.sheaf_bucket_26 == kconfig.sheaf_alloc_size(s.base256)
    assert s.cap256_70 == kconfig.calculate_sheaf_capacity(256, 0, "7.0")
    assert str(s.dio_cache) == f"`{kconfig.kmalloc_cache_name(structs.sizeof('iomap_dio'))}`"
    assert s.big_size == views.THREAD_OBJECT_SIZE and str(s.big_cache) == "`kmalloc-256`"


def test_dio_section(snap):
    *_, facts = snap
    d = views.dio_section(facts, "6.18")
    assert d.elem == d.dio_model + d.hdr and d.elem_slack == d.elem_bucket - d.elem
    assert d.elem_bucket == kconfig.kmalloc_size(d.elem)
    assert str(d.dio_kernel) == f"{facts.structs['iomap_dio'].size} bytes"
    no_btf = dataclasses.replace(facts, structs={})
    assert str(views.dio_section(no_btf, "6.18").dio_kernel) == "unknown (no BTF in this reading)"


def test_tables_of_the_snapshot(snap):
    _, rows, summary, facts = snap
    k = views.cache_table(rows, "kmalloc caches")
    assert "verdict" in k.columns and len(k) > 0
    g = views.group_table(rows, "structs")
    assert "group" not in g.columns and len(g) > 0
    assert "kmalloc caches" in views.kmalloc_sheaves_text(facts) or "sheaf capacity" in views.kmalloc_sheaves_text(facts)
    text = views.sheaf_256_text(summary, 0)
    assert "no default sheaves" in text  # a 6.18 reading cannot settle the thread's 26
    assert "cannot settle" in views.sheaf_256_text(summary, None)


def test_geometry_curves_follow_calculate_order():
    c = views.geometry_curves("6.19", sizes=(96,), cpus=(1, 64))
    for r in c.itertuples():
        g = kconfig.cache_geometry(96, r.cpus, "6.19")
        assert (r.objs_per_slab, r.order) == (g.objs_per_slab, g.order)
        assert r.min_objects == kconfig.min_objects(r.cpus)

"""layout: struct sizes and offsets on x86-64 computed from data/kernel/structs.yaml with the C rules,
checked against the struct definitions in fs/iomap/direct-io.c (v6.18.2 line 34, v6.19 line 26, v7.0 line 28),
mm/slub.c (v6.19 lines 458-490), block/bio.c (lines 27-35) and the patch v3 in data/thread/thread.txt (lines 271-285)."""

import pytest

from allocsim.facts import datafile, paths
import yaml

from allocsim.facts import kconfig
from allocsim.facts import structs as layout
from allocsim.facts.errors import AllocsimError, DataError


def test_iomap_dio():
    s = layout.load("iomap_dio")
    assert (s.size, s.align) == (96, 8)
    # struct iomap_dio of fs/iomap/direct-io.c (v7.0 line 28) laid out by hand with the x86-64 C rules
    expected = {"iocb": 0, "dops": 8, "i_size": 16, "size": 24, "ref": 32, "flags": 36, "error": 40,
                "done_before": 48, "wait_for_completion": 56, "submit": 64, "aio": 64}
    assert {f.name: f.offset for f in s.fields} == expected
    assert s.field("aio").size == 32 and s.field("submit").size == 16
    assert s.offsetof("submit.waiter") == 72 and s.offsetof("aio.work") == 64
    assert layout.sizeof("work_struct") == 32
    assert kconfig.kmalloc_cache_name(s.size) == "kmalloc-96"


def test_slab_sheaf_header():
    s = layout.load("slab_sheaf")
    assert layout.offsetof("slab_sheaf", "objects") == 32 == s.size
    assert [(f.name, f.offset, f.size) for f in s.fields if f.offset >= 16] == [
        ("cache", 16, 8), ("size", 24, 4), ("node", 28, 4), ("objects", 32, 0)]
    assert s.offsetof("pfmemalloc") == 4 and s.offsetof("barn_list") == 0


def test_patch_element_and_bio_cache():
    assert layout.sizeof("pcpu_cache_element") == 8
    assert layout.offsetof("pcpu_cache_element", "payload") == 8
    assert kconfig.kmalloc_cache_name(layout.sizeof("iomap_dio") + layout.sizeof("pcpu_cache_element")) == "kmalloc-128"
    assert layout.sizeof("bio_alloc_cache") == 24
    assert layout.sizeof("pcpu_cache") == 24
    assert layout.load("node_barn").size == 48


def test_unknown_names():
    with pytest.raises(AllocsimError, match="unknown struct 'kmem_cache'"):
        layout.load("kmem_cache")
    with pytest.raises(AllocsimError, match="has no member 'nope'"):
        layout.offsetof("iomap_dio", "nope")
    with pytest.raises(AllocsimError):
        layout.offsetof("iomap_dio", "submit.nope")


# --- the C rules, on crafted field lists ------------------------------------------------------------------

def _crafted(tmp_path, monkeypatch, structs):
    doc = {"source": "crafted for a test", "scalars": {"pointer": [8, 8], "char": [1, 1], "int": [4, 4],
                                                       "short": [2, 2], "long": [8, 8]},
           "structs": structs}
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "structs.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(paths, "DATA", tmp_path)
    datafile.clear_cache()
    layout.load.cache_clear()


@pytest.fixture
def crafted(tmp_path, monkeypatch):
    yield lambda structs: _crafted(tmp_path, monkeypatch, structs)
    datafile.clear_cache()
    layout.load.cache_clear()


def test_c_rules(crafted):
    crafted({
        "a": {"source": "x", "fields": [{"name": "c", "type": "char"}, {"name": "l", "type": "long"},
                                        {"name": "s", "type": "short"}]},
        "b": {"source": "x", "fields": [{"name": "c", "type": "char"}, {"name": "arr", "type": "int", "array": 3}]},
        "u": {"source": "x", "kind": "union", "fields": [{"name": "c", "type": "char", "array": 5},
                                                         {"name": "s", "type": "short"}]},
        "f": {"source": "x", "fields": [{"name": "n", "type": "int"}, {"name": "p", "type": "pointer", "array": "flex"}]},
        "g": {"source": "x", "fields": [{"name": "c", "type": "char"}, {"name": "inner", "type": "u"}]},
    })
    a = layout.load("a")
    assert (a.size, a.align, [f.offset for f in a.fields]) == (24, 8, [0, 8, 16])
    b = layout.load("b")
    assert (b.size, b.offsetof("arr")) == (16, 4)
    u = layout.load("u")
    assert (u.size, u.align) == (6, 2)  # 5 bytes padded to the short's alignment
    f = layout.load("f")
    assert (f.size, f.offsetof("p")) == (8, 8)  # flexible member: aligned, size 0, struct padded
    g = layout.load("g")
    assert (g.size, g.offsetof("inner"), g.offsetof("inner.s")) == (8, 2, 2)


@pytest.mark.parametrize("structs,match", [
    ({"a": {"source": "x", "fields": [{"name": "x", "type": "float128"}]}}, "unknown type"),
    ({"a": {"source": "x", "fields": [{"name": "x", "type": "a"}]}}, "contains itself"),
    ({"a": {"source": "x", "fields": [{"name": "x", "type": "int", "array": "flex"}, {"name": "y", "type": "int"}]}}, "must be the last"),
    ({"a": {"source": "x", "fields": [{"name": "x", "type": "int", "array": 0}]}}, "'array' must be"),
    ({"a": {"source": "x", "fields": []}}, "non-empty list"),
    ({"a": {"fields": [{"name": "x", "type": "int"}]}}, "needs a 'source'"),
    ({"a": {"source": "x", "kind": "enum", "fields": [{"name": "x", "type": "int"}]}}, "kind 'enum'"),
    ({"a": {"source": "x", "fields": [{"name": "x", "type": "int"}, {"name": "x", "type": "int"}]}}, "declared twice"),
])
def test_malformed_data(crafted, structs, match):
    crafted(structs)
    with pytest.raises(DataError, match=match):
        layout.load("a")


def test_versions_and_sheaf_structs():
    # v6.18.2: the third union member is a plain `unsigned int capacity` (no pfmemalloc); same layout
    old, new = layout.load("slab_sheaf", "6.18.44"), layout.load("slab_sheaf", "7.0")
    assert "pfmemalloc" not in {f.name for f in old.fields} and new.offsetof("pfmemalloc") == 4
    assert old.size == new.size == 32 and old.offsetof("objects") == 32
    # `#define rcu_head callback_head`: the compiler (and BTF) name the member callback_head
    assert new.offsetof("callback_head") == 0
    p = layout.load("slub_percpu_sheaves")
    assert (p.size, p.offsetof("lock"), p.field("lock").size, p.offsetof("main"), p.offsetof("rcu_free")) == (32, 0, 1, 8, 24)
    with pytest.raises(AllocsimError, match="unknown kernel version"):
        layout.load("slab_sheaf", "5.10")

"""What cross-CPU completions cost (allocsim.analysis.crosscpu and chapter 2's section): the placements are what
they say, both columns run one program, and hand-computed cases of what moves between the caches."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from allocsim.analysis import crosscpu as cc
from allocsim.facts import cpu as cpufacts
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.program import FREE, HARDIRQ, SOFTIRQ
from allocsim.pages import params
from allocsim.pages import pcpu as views
from allocsim.workloads import iouring

G = cpufacts.geometry(3.0)


@pytest.fixture(scope="module")
def P():
    # a warm-up long enough for the lists of the seven CPUs that take interrupts elsewhere in the LLC to fill
    return params.validate("pcpu", {"ios": 5120, "warmup": 3072})


@pytest.fixture(scope="module")
def df(P):
    return cc.table(P)


def _frees(w):
    prog = iouring.program(w)
    cpu = np.repeat(np.arange(prog.ncpu), np.diff(prog.start))
    f = prog.op == FREE
    return cpu[f], prog.ctx[f]


@pytest.mark.parametrize("where, cpus, ctx", [
    ("same CPU", {0}, HARDIRQ),
    ("same LLC", set(range(1, G.cpus_per_llc)), HARDIRQ),  # the other CPUs of the hierarchy's LLC 0
    ("other LLC, sent back", {0}, SOFTIRQ),  # IPI: BLOCK_SOFTIRQ on the submitter
    ("other LLC", {G.cpus_per_llc}, HARDIRQ),  # CPU 8: LLC 1 of the hierarchy
])
def test_each_placement_completes_where_it_says(P, where, cpus, ctx):
    cpu, c = _frees(cc.workload(P, where))
    assert set(cpu.tolist()) == cpus and (c == ctx).all()
    # the LLC of every completing CPU, as the hierarchy numbers them
    llc = set((cpu // G.cpus_per_llc).tolist())
    assert llc == ({1} if where == "other LLC" else {0})


def test_both_columns_run_one_program(P, df):
    """The flat run and the hierarchy run of a placement see the same CPUs (the hierarchy's numbering)."""
    for where in cc.PLACEMENTS:
        rows = df[df["where"] == where]
        assert rows["CPUs"].nunique() == 1
    assert cc.workload(P, "same LLC").n_cpus == G.cpus_per_llc
    assert cc.workload(P, "other LLC").n_cpus == G.cpus_per_llc + 1
    assert cc.workload(P, "same CPU").n_cpus == 1
    off = df[df["hierarchy"] == "off"]
    assert off["transfers per IO"].isna().all() and off["L1 per IO"].isna().all()
    on = df[df["hierarchy"] == "on"]
    assert on["transfers per IO"].notna().all()
    assert len(df) == len(cc.PLACEMENTS) * len(cc.CONFIGS) * 2


def test_on_the_submitting_cpu_nothing_moves(df):
    on = df[(df["hierarchy"] == "on") & df["where"].isin(["same CPU", "other LLC, sent back"])]
    assert (on["transfers per IO"] == 0).all() and (on["invalidations per IO"] == 0).all()
    assert (on["MEM per IO"] == 0).all()  # the working set stays in cache


def test_a_remote_free_on_6_19_moves_the_objects_line_three_times_per_io(P, df):
    """Hand-computed: on 6.19 each IO freed on another CPU of the LLC takes the object's free-pointer line from
    the other core twice (__slab_free()'s set_freepointer() on the completing CPU, the allocation fast path's
    read on the submitting CPU) and invalidates it once (init_on_alloc's zeroing of the shared copy): 2 transfers
    and 1 invalidation per IO, each costing the same-LLC latency. In another LLC the same three accesses pay the
    cross-LLC latency instead, so the IO costs exactly 3 x (cross-LLC - same-LLC) cycles more."""
    near = {k: cc.value(df, "6.19", "kmalloc", "same LLC", "on", f"{k} per IO") for k in ("XSAME", "XLLC", "INV_SAME")}
    far = {k: cc.value(df, "6.19", "kmalloc", "other LLC", "on", f"{k} per IO") for k in ("XSAME", "XLLC", "INV_LLC")}
    assert near == {"XSAME": 2.0, "XLLC": 0.0, "INV_SAME": 1.0}
    assert far["XSAME"] == 0.0 and far["XLLC"] == 2.0
    d = cc.value(df, "6.19", "kmalloc", "other LLC", "on", "cycles per IO") - cc.value(
        df, "6.19", "kmalloc", "same LLC", "on", "cycles per IO")
    assert d == pytest.approx(3 * (G.lat_cross_llc - G.lat_same_llc), abs=1e-9)
    assert cc.distance_cost(df, "6.19", "kmalloc", P.clock_ghz) == pytest.approx(3.0, abs=1e-12)
    # the flat model sees no difference between the two distances
    assert cc.value(df, "6.19", "kmalloc", "other LLC", "off", "cycles per IO") == pytest.approx(
        cc.value(df, "6.19", "kmalloc", "same LLC", "off", "cycles per IO"))


def test_7_0_moves_the_sheaf_not_the_object(P, df):
    """free_to_pcs() writes only the completing CPU's sheaf slot: per IO a fraction of a line moves (the sheaf's
    lines, one per eight pointers, travel with it through the barn), never the object's."""
    from allocsim.facts import kconfig

    cap = kconfig.cache_geometry(96, G.cpus_per_llc, "7.0", kmalloc=True).sheaf_capacity
    sheaf_lines = -(-(kconfig.sheaf_header() + 8 * cap) // 64)
    for where in ("same LLC", "other LLC"):
        x = cc.value(df, "7.0", "kmalloc", where, "on", "transfers per IO")
        assert sheaf_lines - 1 <= x * cap <= sheaf_lines + 2, (where, x)  # about its lines, per sheaf of cap objects
        assert x < cc.value(df, "6.19", "kmalloc", where, "on", "transfers per IO") / 8


def test_the_list_pays_its_backends_remote_free(df):
    """With every completion elsewhere the list never hits: each element comes from kmalloc and goes back by
    kfree() on the completing CPU, with exactly kmalloc's transfers (the list's own lines stay put)."""
    for k in ("6.19", "7.0"):
        for where in ("same LLC", "other LLC"):
            lst = cc.value(df, k, "per-CPU list", where, "on", "transfers per IO")
            # 6.19: two per IO, as for kmalloc (abs: a completing CPU whose list fills only early in the window keeps
            # a few elements); 7.0: the sheaves of seven completing CPUs reach the barn at other points of this short
            # window than kmalloc's (rel)
            tol = dict(abs=0.01) if k == "6.19" else dict(rel=0.3)
            assert lst == pytest.approx(cc.value(df, k, "kmalloc", where, "on", "transfers per IO"), **tol)
            extra_list = cc.value(df, k, "per-CPU list", where, "on", "cycles per IO") - cc.value(
                df, k, "per-CPU list", where, "off", "cycles per IO")
            extra_kmalloc = cc.value(df, k, "kmalloc", where, "on", "cycles per IO") - cc.value(
                df, k, "kmalloc", where, "off", "cycles per IO")
            if k == "6.19":  # every IO's three accesses of the object, as for kmalloc
                assert extra_list == pytest.approx(extra_kmalloc, rel=0.01), (k, where)


def test_summary_is_the_table_side_by_side(df):
    s = cc.summary(df)
    assert list(s.index.get_level_values("model").unique()) == [cc.label(*c) for c in cc.CONFIGS]
    assert list(s.index.get_level_values("where").unique()) == list(cc.PLACEMENTS)
    row = s.loc[(cc.label("6.19", "kmalloc"), "same LLC")]
    assert row["added by the hierarchy"] == pytest.approx(row["cycles per IO, hierarchy"] - row["cycles per IO, flat"])
    assert row["transfers per IO"] == cc.value(df, "6.19", "kmalloc", "same LLC", "on", "transfers per IO")


def test_slab_order_follows_calculate_order():
    """min_objects = 4 * (fls(nr_cpus) + 1), written out here independently."""
    t = cc.slab_order_note(96, "6.19", (1, 2, 8, 9, 64))
    fls = {1: 1, 2: 2, 8: 4, 9: 4, 64: 7}
    assert t["min_objects"].tolist() == [4 * (fls[n] + 1) for n in (1, 2, 8, 9, 64)]
    assert (t["order"] == 0).all() and (t["objects per slab"] == 4096 // 96).all()
    words = views.order_words(pd.concat([t, cc.slab_order_note(104, "6.19", (1, 9))], ignore_index=True))
    assert "`kmalloc-96` keeps order-0 slabs of 42 objects" in words and "kmalloc-128" in words
    changed = pd.DataFrame([{"CPUs": 1, "min_objects": 8, "order": 0, "objects per slab": 8, "cache": "kmalloc-512"},
                            {"CPUs": 64, "min_objects": 32, "order": 2, "objects per slab": 32, "cache": "kmalloc-512"}])
    assert views.order_words(changed) == ("`kmalloc-512` goes from order 0 (8 objects) with 1 CPUs to order 2 (32 objects) "
                                          "with 64 CPUs")


def test_bad_names_are_one_sentence(P, df):
    with pytest.raises(AllocsimError, match="^the completion placement must be one of 'same CPU', .*, not 'far'$"):
        cc.workload(P, "far")
    with pytest.raises(AllocsimError, match="no single row for 6.18 kmalloc"):
        cc.value(df, "6.18", "kmalloc", "same CPU", "on", "cycles per IO")


def test_the_page_section_glues_the_table(P, df):
    sec = views.cross_cpu_section(P)
    assert sec.cc619_same_added == pytest.approx(sec.cc619_same - sec.cc619_same_flat)
    assert sec.cc619_same == cc.value(sec._df, "6.19", "kmalloc", "same LLC", "on", "cycles per IO")
    assert sec.cc619_charges == pytest.approx(3.0)
    assert sec.cc_lat_same == G.lat_same_llc and sec.cc_lat_cross == G.lat_cross_llc
    assert (sec.cc_n_same, sec.cc_n_far, sec.cc_last_in_llc) == (8, 9, 7)
    assert sec.cc70_lines == pytest.approx(sec.cc70_same_xfer * sec.cc70_cap)
    assert sec.cc_sent_xfer == 0 and sec.cc_local_added < 1
    t = views.cross_cpu_table(sec._summary)
    assert list(t.columns) == list(views.CROSS_FORMATS)
    assert views.cross_cpu_chart(sec._df).to_dict()["vconcat"]
    off = params.validate("pcpu", {"ios": 5120, "warmup": 3072, "hierarchy": False})
    assert "flat model" in views.cross_cpu_section(off).hier_words


def test_the_pages_models_follow_the_hierarchy_parameter(P):
    prog = iouring.program(iouring.IOUring(ios=600, warmup=128))
    assert P.hierarchy is True and params.validate("pcpu", {}).hierarchy is True
    assert views.list_model(P)(prog).extra["hierarchy"] is not None
    assert views.kmalloc_model(P)(prog).extra["hierarchy"] is not None
    off = SimpleNamespace(**{**vars(P), "hierarchy": False})
    assert views.list_model(off)(prog).extra["hierarchy"] is None
    assert views.kmalloc_model(off)(prog).extra["hierarchy"] is None


def test_fresh_elements_are_the_front_ends_memory_misses(P):
    """The list's front end misses to memory only on the header of an element kmalloc gives it from memory
    never used before: none when nothing falls back to kmalloc; none when completions in softirq send elements
    back to kfree() on the submitting CPU (its next kmalloc is handed back the object it just freed); some when
    elements pile up on other CPUs' lists and the submitter's kmalloc finds nothing kfree()d anywhere."""
    assert views.fresh_elements(P) == (0.0, 0.0)
    assert views.fresh_elements(P, **views.SCENARIOS[views.SOFT25]) == (0.0, 0.0)
    mem, cyc = views.fresh_elements(P, **views.SCENARIOS[views.CROSS25])
    assert mem > 0 and cyc == pytest.approx(mem * (G.lat_memory - G.lat_l1))

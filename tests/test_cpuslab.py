"""Chapter 3's analyses (allocsim.pages.cpuslab): the io_uring loop on the 6.19 cpu slab, the cliff, the
comparison with the thread's caches, and the sections the page glues."""

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from allocsim.facts import costs, kconfig, steps, thread
from allocsim.pages import cpuslab as cv
from allocsim.pages import params
from allocsim.workloads import adapter

P = params.validate("cpuslab", {})


@pytest.fixture(scope="module")
def run():
    st = cv.io_steady(P)
    return st, cv.path_table(st)


def test_io_split_and_path_table(run):
    st, pt = run
    sp = cv.split(st)
    assert 0 < sp["free fast share"] < sp["alloc fast share"] <= 1
    assert pt["share of cycles"].sum() == pytest.approx(1.0)
    assert pt["cycles/IO"].sum() == pytest.approx(st.cycles_per_io)
    rows = cv.path_rows(pt)
    assert list(rows["path"]) == list(pt["path"]) and rows["cycles per IO"].sum() == pytest.approx(st.cycles_per_io)


def test_the_page_runs_with_the_books_base_work():
    """7.0 kmalloc is sensitive to the base work (without it completion interrupts find the sheaves'
    trylock taken); the page's figure is the one with it, the IOPS chapter's value."""
    on = cv.io_steady(P, kernel="7.0").cycles_per_io
    off = cv.io_steady(P, kernel="7.0", submit_gap=0).cycles_per_io
    assert adapter.io_uring(P).submit_gap == adapter.base_work_cycles(P.clock_ghz) > 0
    assert on < off


def test_sections_compute_what_the_prose_says(run):
    st, pt = run
    s = cv.setting(P)
    geo = kconfig.cache_geometry(P.object_size, P.machine_cpus, P.kernel)
    assert (s.g_objs, s.g_order, str(s.g_name)) == (geo.objs_per_slab, geo.order, f"`{geo.name}`")
    c = cv.path_costs(pt, P)
    t = costs.load()
    assert c.c_pcpu == t.cycles("percpu_cmpxchg16b")
    # the fast paths are the step sums of steps.yaml: entry point and hooks, then the cpu slab's own steps,
    # and the run charged exactly that per fast-path allocation
    book, f = steps.load(), cv.page_facts(P)
    part = lambda *segs: sum(book.cycles(x, t, f) for x in segs)  # noqa: E731
    assert c.c_alloc_entry == part("kmalloc_entry", "slab_alloc_hooks") and c.c_cs_alloc == part("cpu_slab_alloc")
    assert c.c_free_entry == part("kfree_entry", "slab_free_hooks") and c.c_cs_free == part("cpu_slab_free")
    assert c.c_alloc_fast == c.c_alloc_entry + c.c_cs_alloc == pytest.approx(c.c_fast)
    assert c.c_free_fast == c.c_free_entry + c.c_cs_free
    assert pt.set_index("path").loc["free_fastpath", "cycles/call"] == pytest.approx(c.c_free_fast)
    # a free that misses the cpu slab: the same entry and hooks, then __slab_free() and its locked cmpxchg16b
    assert c.c_free_partial == pytest.approx(c.c_free_entry + t.cycles("function_call") + t.cycles("locked_cmpxchg16b"))
    assert str(c.hooks_on) == ", ".join(f"`{k}`" for k, v in steps.switches().items() if v["default"])
    lp = cv.loop(P, st, pt)
    assert lp.cyc_ideal == c.c_alloc_fast + c.c_free_fast
    assert lp.cyc_extra == pytest.approx(lp.cyc_io - lp.cyc_ideal)
    assert lp.slow_free_share == pytest.approx(100 - lp.free_fast)
    assert lp.ns_extra == pytest.approx(lp.cyc_extra / P.clock_ghz)


def test_cliff_is_the_largest_drop_of_the_sweep():
    qd = pd.DataFrame({"queue depth": [8, 16, 32, 64, 8, 16, 32, 64], "completion order": ["fifo"] * 4 + ["random"] * 4,
                       "free fast share": [1.0, 0.9, 0.3, 0.25, 1.0, 0.8, 0.4, 0.2],
                       "cycles per IO": [42, 45, 60, 61, 42, 47, 58, 66]})
    e = cv.cliff(qd, objs_per_slab=21)
    assert (e.qd_shallow_max, e.qd_deep_min) == (16, 32)
    assert e.qd_shallow_fast == pytest.approx(90) and (e.qd_deep_fast_lo, e.qd_deep_fast_hi) == pytest.approx((25, 30))
    assert (e.qd_deep_cyc_lo, e.qd_deep_cyc_hi) == (60, 61) and e.qd_max == 64
    assert e.rnd_deep_fast == pytest.approx(20) and e.fifo_deep_fast == pytest.approx(25)
    assert e.cliff_slabs_lo == pytest.approx(16 / 21)
    with pytest.raises(ValueError):
        cv.cliff(qd.iloc[:1], 21)


def test_the_pages_cliff_lies_where_its_chart_drops():
    qd = cv.qd_sweep(P, depths=(16, 32, 48, 64, 128), orders=("fifo",))
    e = cv.cliff(qd, kconfig.cache_geometry(P.object_size, P.machine_cpus, P.kernel).objs_per_slab)
    fifo = qd.set_index("queue depth")["free fast share"]
    assert fifo[e.qd_shallow_max] - fifo[e.qd_deep_min] == max(np.diff(-fifo.to_numpy()))
    chart = cv.qd_chart(qd, 42, e).to_dict()
    assert "grey band" in chart["title"]["subtitle"]


def test_compare_caches_and_the_thread_section():
    cmp = cv.compare_caches(P)
    assert list(cmp.index) == list(cv.IO_CACHES)
    assert cmp.loc[cv.KMALLOC_619, "cycles per IO"] > cmp.loc[cv.SHEAF_619, "cycles per IO"]
    t = cv.thread_619(P, cmp)
    f = thread.iops_figures().set_index(["kernel", "allocator"])["ns_per_io"]
    assert t.t_ns_diff == pytest.approx(f[("6.19", "kmalloc")] - f[("6.19", "sheaf-256")])
    assert t.m_ns_diff == pytest.approx((t.m_kmalloc - t.m_sheaf) / P.clock_ghz)
    assert t.m_ns_diff_abs == pytest.approx(abs(t.m_ns_diff)) and str(t.m_diff_word) == ("less" if t.m_ns_diff >= 0 else "more")
    assert t.m_kmalloc_70 == cmp.loc[cv.KMALLOC_70, "cycles per IO"]


def test_sections_glue_by_name():
    for cls in (cv.Setting, cv.PathCosts, cv.Loop, cv.Cliff, cv.Thread619):
        names = [f.name for f in fields(cls)]
        assert len(names) == len(set(names)) and all(n.isidentifier() for n in names)


def test_diagrams_and_charts_build():
    qd = cv.qd_sweep(P, depths=(8, 64), orders=("fifo", "random"))
    for ch in (cv.cpu_slab_diagram(42, 6, 5), cv.qd_chart(qd, 42), cv.free_split_chart(qd)):
        assert ch.to_dict()["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


def test_step_table_lists_what_the_fast_paths_charge():
    """The page's table of steps sums, part by part, to what the model charges on the fast paths."""
    tab = cv.step_table(P)
    c = cv.path_costs(pd.DataFrame({"path": [], "cycles/call": []}), P)
    by = tab.groupby("part", sort=False)["cycles"].sum()
    assert list(by.index) == ["kmalloc_entry", "slab_alloc_hooks", "cpu_slab_alloc", "kfree_entry", "slab_free_hooks",
                              "cpu_slab_free"]
    assert by[["kmalloc_entry", "slab_alloc_hooks", "cpu_slab_alloc"]].sum() == c.c_alloc_fast
    assert by[["kfree_entry", "slab_free_hooks", "cpu_slab_free"]].sum() == c.c_free_fast
    # init_on_alloc zeroes the kmalloc bucket, one 64-byte line at a time: kmalloc-96 is two lines
    zero = tab[tab["cost"] == "zero_line"]
    assert list(zero["times"]) == [2]
    assert "`__kmalloc_cache_noprof(" in " ".join(tab["step"])  # C as written, in a code span
    assert "\\_\\_kmalloc\\_cache\\_noprof()" in " ".join(tab["kernel code"])  # escaped for Markdown in plain text
    assert np.isnan(c.c_free_partial)  # a path the run did not take is nan, not a made-up number


def test_where_the_619_difference_comes_from():
    assert "the whole difference, and more, is the frees that miss" in cv.where_words(119, 131, 144, 131)
    assert cv.where_words(125, 120, 144, 131).startswith("the fast paths (125 cycles")
    assert "do not make up for" in cv.where_words(100, 131, 120, 131)

"""The "step — kernel code — cost" tables of chapters 2, 3 and 5 (allocsim.pages.costing): they list what the
models charge, with the models' own facts, and sum to the models' path costs."""

from dataclasses import replace

import numpy as np
import pytest

from allocsim.analysis import runs as R
from allocsim.facts import costs, steps
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import pcpu_list as pl
from allocsim.kernel import slub
from allocsim.pages import costing
from allocsim.workloads import iouring


def test_slub_facts_are_the_models_own():
    prog = iouring.program(iouring.IOUring(ios=600, queue_depth=16, submit_batch=8, complete_batch=8))
    for kernel, size, kmalloc, cap, acct in (("6.19", 96, True, 0, False), ("7.0", 96, True, 0, False),
                                             ("6.19", 96, False, 256, True), ("7.0", 200, False, 256, False)):
        cfg = slub.configure(prog, kernel, size, cap or None, kmalloc, slab_account=acct)
        assert costing.slub_facts(kernel, size, kmalloc, cap, acct, ncpu=prog.ncpu) == slub.facts_of(cfg)


def test_the_list_table_lists_get_cpu_once_and_sums_to_the_models_path_costs():
    t = costing.pcpu_step_table()
    shared = next(iter(costing.PCPU_PARTS))
    assert (t["part"] == shared).sum() == len(steps.load().steps("pcpu_get_cpu", steps.Facts()))
    by = t.groupby("part", sort=False)["cycles"].sum()
    pc = dict(zip(pl.PATHS, pl.path_costs()))
    for part in ("alloc_hit", "free_irq", "free_task", "alloc_splice"):
        assert by[shared] + by[part] == pc[part]
    assert set(t.loc[t["cycles"] == 0, "cost"]) <= {"—", "l1_hit", "static_key"}  # stores, and loads read with a line


def test_fast_path_directions_add_up_and_follow_the_switches():
    f = costing.slub_facts("7.0", 96, False, 256)
    t = costs.load()
    d = costing.slub_direction(f, "alloc")
    book = steps.load()
    assert d.total == sum(book.cycles(s, t, f) for s in ("kmem_cache_alloc_entry", "slab_alloc_hooks", "local_trylock",
                                                          "pcs_alloc"))
    off = costing.slub_direction(replace(f, hooks=steps.Hooks.off()), "alloc")
    assert off.allocator == d.allocator and off.hooks < d.hooks  # the switches change the hooks, not the sheaf
    on = costing.slub_direction(replace(f, hooks=replace(f.hooks, init_on_free=True)), "free")
    assert on.hooks - costing.slub_direction(f, "free").hooks == (
        t.cycles("function_call") + f.object_lines * t.cycles("zero_line"))
    with pytest.raises(AllocsimError, match="direction must be 'alloc' or 'free', not 'both'"):
        costing.slub_parts(f, "both")


def test_hot_path_totals_columns_and_total_row():
    setup = R.Setup(ios=5000)
    t = costing.hot_path_totals(setup).set_index("step sum")
    assert list(t.columns) == list(costing.HOT_COLUMNS)
    assert np.allclose(t.iloc[:-1].sum(), t.loc["**alloc + free**"])
    lst = t[costing.HOT_COLUMNS[0]]
    assert (lst.iloc[[0, 1, 3, 4]] == 0).all()  # the list's hits skip the entry points and the hooks
    # SLAB_ACCOUNT adds memcg_account on each side of the dedicated cache, and nothing elsewhere
    acct = costing.hot_path_totals(replace(setup, slab_account=True)).set_index("step sum")
    diff = (acct - t).loc["**alloc + free**"]
    assert diff[costing.HOT_COLUMNS[3]] == pytest.approx(2 * costs.load().cycles("memcg_account"))
    assert (diff[list(costing.HOT_COLUMNS[:3])] == 0).all()


def test_markdown_escaping():
    assert costing.escape("__pa() p[i] *x*") == "\\_\\_pa() p\\[i\\] \\*x\\*"
    t = costing.slub_step_table(costing.slub_facts("7.0", 96))
    assert t["step"].str.startswith("`").all() and t["step"].str.endswith("`").all()  # C as written, in code spans
    assert not t["kernel code"].str.contains(r"(?<!\\)__", regex=True).any()
    assert costing.standin_words() == "{:.0f} cycles per `kmalloc` and {:.0f} per `kfree`".format(*pl.standin_charges())


def test_shown_names_each_part_once_and_says_how_a_step_is_charged():
    t = costing.step_table({"hit": "pcpu_alloc_hit"}, steps.Facts())
    s = costing.shown(t)
    assert list(s.columns) == ["step", "kernel code", "charged", "cycles"]
    assert s["step"].iloc[0] == "**hit**" and s["cycles"].iloc[0] == t["cycles"].sum() == s["cycles"].iloc[1:].sum()
    assert len(s) == len(t) + 1 and list(s["kernel code"].iloc[1:]) == list(t["kernel code"])
    assert (costing.charged("l1_hit", 1), costing.charged("zero_line", 2.0), costing.charged("l1_hit", 0.0),
            costing.charged("—", 2.0)) == ("l1_hit", "2 × zero_line", "0 × l1_hit", "—")
    assert "`cache->free_list = ...; cache->nr--`" in list(s["step"])  # a code span: `--` stays two hyphens
    assert costing.escape("a--b") == "a\\-\\-b"  # and in plain cells too

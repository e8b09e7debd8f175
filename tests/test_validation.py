"""Chapter 4's validation (allocsim.analysis.microbench: single_object_validation, hit_steps, break_even;
allocsim.pages.sheaves: its tables and numbers): the hot single-object pair, sheaves against the cpu slab,
compared with the sheaves series' own measurement. Nothing is tuned; these tests check that the model's
numbers are what the step file says and that the diagnostics mean what the page says."""

from types import SimpleNamespace

import pandas as pd
import pytest

from allocsim.analysis import microbench as mb
from allocsim.facts import costs, steps
from allocsim.facts.errors import AllocsimError
from allocsim.pages import params
from allocsim.pages import sheaves as sv

P4 = SimpleNamespace(**params.spec("sheaves").defaults())


@pytest.fixture(scope="module")
def val():
    return sv.validation(P4)


def test_the_measurement_is_the_cover_letters(val):
    # "sheaves better by 17.2%", "11.5%", "15.3%", "11.0%" (the letter rounds to one decimal)
    assert [round(m.pct, 1) for m in mb.SHEAVES_V6] == [17.2, 11.5, 15.3, 11.1]
    assert round(mb.improvement(162771491, 144746490), 2) == 11.07  # printed as 11.0 in the letter (truncated)
    v, _ = val
    assert len(v) == len(mb.SHEAVES_V6) * len(mb.VALIDATION_HOOKS)
    assert (v["residual pp"] == v["model %"] - v["measured %"]).all()
    assert set(v["switches"]) == set(mb.VALIDATION_HOOKS) and (v["model without"] > 0).all()


def test_the_model_pair_is_the_step_sums(val):
    """Differential: the simulated steady-state pair equals the step file's sums for the same facts —
    entry + hooks + the hit, each side — computed without the simulator."""
    v, _ = val
    book, table = steps.load(), costs.load()
    for r in v.to_dict("records"):
        h = mb.validation_hooks(r["switches"], r["memcg"])
        for sheaves, col in ((False, "model without"), (True, "model with")):
            f = steps.Facts(hooks=h, sheaves=sheaves, account=r["memcg"], cpu_slab=True, kmalloc=False,
                            object_size=P4.bench_object_size)
            segs = ["kmem_cache_alloc_entry", "slab_alloc_hooks", "kmem_cache_free_entry", "slab_free_hooks"]
            hit = (mb.HIT_SEGMENTS[("sheaves", "alloc")] + mb.HIT_SEGMENTS[("sheaves", "free")] if sheaves
                   else mb.HIT_SEGMENTS[("cpu slab", "alloc")] + mb.HIT_SEGMENTS[("cpu slab", "free")])
            want = sum(book.cycles(s, table, f) for s in segs + list(hit))
            assert r[col] == pytest.approx(want), (r["switches"], r["memcg"], col)


def test_the_hits_differ_by_what_the_side_by_side_tables_show(val):
    v, _ = val
    ht = mb.hit_totals().set_index("allocator")
    diff = ht.loc["sheaves", "pair"] - ht.loc["cpu slab", "pair"]
    assert list(v["model with"] - v["model without"]) == pytest.approx([diff] * len(v))
    for side in ("alloc", "free"):
        t = sv.hit_side_by_side(side)
        assert t.iloc[-1]["sheaf hit"] == f"**total: {ht.loc['sheaves', side]:g}**"
        assert t.iloc[-1]["cpu slab fast path"] == f"**total: {ht.loc['cpu slab', side]:g}**"
    alloc = sv.hit_side_by_side("alloc")
    assert "`preempt_disable() ... preempt_enable()` — preempt_pair: 11" in list(alloc["sheaf hit"])
    assert any(c.startswith("`next_object = get_freepointer_safe(s, object)` — l1_hit: 4") for c in alloc["cpu slab fast path"])
    assert sv._short("a (b)") == "a" and sv._short("f(x)") == "f(x)" and sv._charge("l1_hit", 0, 0) == "l1_hit × 0: 0"
    assert any("(nothing waits for a prefetch)" in c for c in alloc["cpu slab fast path"])  # a free step keeps its reason
    code = sv.hit_code_table()
    assert list(code.columns) == ["step — where in the kernel", "charge"]
    assert any(c.startswith("alloc, sheaves: `s->cpu_sheaves` — mm/slub.c alloc_from_pcs()") for c in code.iloc[:, 0])
    assert any(c.endswith("— mm/slub.c __update_cpu_freelist_fast()") for c in code.iloc[:, 0])
    with pytest.raises(AllocsimError, match="side must be 'alloc' or 'free'"):
        mb.hit_steps("both")


def test_break_even_value_reproduces_the_measurement():
    """The diagnostic means what the page says: with the one row at its 'needed' value, the model gives
    the measured %."""
    m = mb.SHEAVES_V6[0]
    be = mb.break_even(m.pct).set_index("cost")
    need = be.loc["percpu_cmpxchg16b", "needed"]
    assert be.loc["percpu_cmpxchg16b", "within its range"] and 9 < need <= 32
    t = costs.load().with_overrides(percpu_cmpxchg16b=float(need))
    kw = dict(object_size=64, rounds=(50, 150), machine_cpus=1, hooks=steps.Hooks.default(), costs=t)
    a = mb.microbench("6.18", 1, 1, None, **kw)["cycles"]
    b = mb.microbench("6.18", 1, 1, mb.SHEAVES_V6_CAPACITY, **kw)["cycles"]
    assert mb.improvement(a, b) == pytest.approx(m.pct, abs=1e-6)
    assert be.loc["preempt_pair", "needed"] < 0 and not be.loc["preempt_pair", "within its range"]
    assert "memcg_account" not in be.index  # not charged without memcg: left out


def test_validation_numbers_and_words(val):
    v, be = val
    n = sv.validation_numbers(P4, v, be)
    assert n.v_meas == pytest.approx(mb.SHEAVES_V6[0].pct) and n.v_resid == pytest.approx(n.v_model - n.v_meas)
    assert n.v_hit_diff == n.v_with - n.v_without
    assert n.v_preempt2 == 2 * costs.load().cycles("preempt_pair")
    assert n.v_need == pytest.approx(n.v_meas / 100 * n.v_without) and n.v_resid_lo <= n.v_resid <= n.v_resid_hi
    assert (n.v_call_lo, n.v_call_hi) == mb.WHOLE_CALL_PAIR
    assert sv.slower_words(-15.0) == "**slower** than the cpu slab, by 15.0 %"
    assert sv.slower_words(4.0) == "faster than the cpu slab, by 4.0 %"
    assert sv.can_words(be) == "Only `percpu_cmpxchg16b` can"
    assert sv.can_words(be.assign(high=-1.0)) == "No single row can within its cited range"
    assert sv.can_words(be.assign(**{"needed (default)": 0.5, "low": 0.0, "high": 1.0})).startswith("Every row (")
    bt = sv.break_even_table(be)
    assert list(bt.columns) == ["cost row", "cited value (range)", "would need (default)", "would need (off)"]
    assert bt.set_index("cost row").loc["`preempt_pair`", "would need (default)"] == "impossible (< 0)"
    tab = sv.validation_table(v)
    assert tab.iloc[0]["measured: sheaves better by"] == "17.2 %" and len(tab) == len(v)
    spec = sv.validation_chart(v).to_dict()
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


def test_bad_kernel_is_one_sentence():
    with pytest.raises(AllocsimError, match="cpu-slab kernel, '6.18' or '6.19', not '7.0'"):
        mb.single_object_validation("7.0")

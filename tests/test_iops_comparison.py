"""Chapter 5's arithmetic (allocsim.analysis.comparison): each section's dataclass against the runs it
summarises, and every branch of the clauses whose wording follows the numbers."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from allocsim.analysis import claims as C
from allocsim.analysis import comparison as cmp
from allocsim.analysis import iops
from allocsim.analysis import runs as R
from allocsim.facts import thread
from allocsim.facts.errors import AllocsimError


@pytest.fixture(scope="module")
def rep():
    return R.reproduce(R.Setup(ios=6000), clock_ghz=3.0)


# ---- the setting comes from the parameters -------------------------------------------------------------

def test_setting_of_the_default_and_of_a_custom_run():
    d = cmp.setting(R.Setup())
    assert d.assumed and d.t_opts == "-p0 -d128 -s32 -c32 -n1"
    assert (d.kmalloc_cache, d.fallback_cache) == ("kmalloc-96", "kmalloc-128") and d.object_size == 96
    c = cmp.setting(R.Setup(polled=True, submitters=4, object_size=200))
    assert not c.assumed and c.t_opts == "-p1 -d128 -s32 -c32 -n4"
    assert (c.kmalloc_cache, c.fallback_cache) == ("kmalloc-256", "kmalloc-256")
    assert "-p0" in cmp.command_words(c) and cmp.command_words(d) == "the book's reading of the benchmark"


def test_setting_words():
    hard = cmp.completion_words(R.Setup())
    assert "-p0" in hard and "interrupt" in hard
    task = cmp.completion_words(R.Setup(polled=True))
    assert "-p1" in task and "task" in task
    assert "BLOCK_SOFTIRQ" in cmp.completion_words(R.Setup(irq_same_cpu_share=0.0, irq_other_llc_share=1.0))
    # blk-mq's coupling: a quarter of the interrupts in another LLC go back to the submitter's softirq,
    # a quarter elsewhere in the LLC complete in hardirq on that CPU
    mixed = cmp.completion_words(R.Setup(irq_same_cpu_share=0.5, irq_same_llc_share=0.25, irq_other_llc_share=0.25))
    assert mixed == ("75 % in interrupt context (`-p0`); 25 % in softirq context (`BLOCK_SOFTIRQ`), "
                     "25 % of them on another CPU than the submitter's")
    assert cmp.submitters_words(1) == "one CPU-bound submitter"
    assert cmp.submitters_words(4).startswith("4 CPU-bound submitters")


def test_step_is_read_from_the_claims_data():
    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    st = cmp.step()
    assert (st.lo_fig, st.hi_fig) == (f["7.0-rc4", "sheaf-256"], f["7.0-rc4", "per-CPU list"])
    assert st.step_ns == pytest.approx(1e3 / st.lo_fig - 1e3 / st.hi_fig)
    assert 0 < st.half_step_ns < st.step_ns and st.gap_pct == pytest.approx(iops.gain_pct(st.hi_fig, st.lo_fig))


# ---- sections ---------------------------------------------------------------------------------------------

def test_costs_fit_and_clock(rep):
    c = cmp.costs_per_io(rep)
    assert 0 < c.fast_free_619 < c.fast_alloc_619 <= 100 and 0 < c.pcpu_hit <= 100
    cyc = rep.alloc_cycles
    assert c.kmalloc_gain_abs == pytest.approx(abs(cyc[("6.19", "kmalloc")] - cyc[("7.0", "kmalloc")]))
    f = cmp.fit(rep)
    assert f.n_params == 1 and f.n_ok + len(f.missed) == 6
    assert f.max_resid == pytest.approx(rep.table["residual ns/IO"].abs().max())
    prof = cmp.clock_profile(rep, clocks=[2.0, 3.0, 4.0])
    cc = cmp.clock_check(rep, prof)
    assert cc.rms_best <= cc.rms_now + 1e-9 and cc.best_clock in (2.0, 3.0, 4.0)
    assert cc.prefers_other_clock == (cc.rms_now - cc.rms_best >= cc.rms_noise)


def test_leave_one_out_summary(rep):
    loo, s = cmp.leave_one_out(rep, rerun=False)
    assert s.loo_n == 30 == len(loo) and 0 <= s.loo_ok <= 30
    assert s.loo_base_lo <= rep.calibration.base_ns <= s.loo_base_hi
    assert s.far_base_ns in (s.loo_base_lo, s.loo_base_hi) and s.loo_rerun_delta == 0.0
    assert all(0 <= v <= 5 for _, v in s.best) and len({v for _, v in s.best}) == 1


def test_gains_table_carries_the_claim_status(rep):
    st = {"patch-gain": "partly"}
    t = cmp.gains_table(rep, st)
    assert list(t["key"]) == [g[0] for g in cmp.GAINS]
    row = t.set_index("key").loc["patch"]
    assert row["claim status"] == "partly" and row["claimed"] == "2.6 %"
    assert (row["within the rounding"] == "yes") == (row["lo"] <= row["predicted"] <= row["hi"])
    g = cmp.gains(rep, t)
    assert g.patch_claimed == 2.6 and g.n_gains == len(cmp.GAINS)
    lo, hi = cmp.span(("6.19", "per-CPU list"), ("6.19", "kmalloc"))
    assert lo < g.g_patch_rep < hi


def test_gap_and_need(rep):
    g = cmp.gap(rep, "7.0", "sheaf-256")
    cyc = rep.alloc_cycles
    assert g.gap_c == pytest.approx(cyc[("7.0", "sheaf-256")] - cyc[("7.0", "per-CPU list")])
    assert g.behind == (g.gap_c >= 0) and g.rep_gap_hi > g.rep_gap_ns > 0
    # the need closes the reported gap: model gap + 2 × need == reported gap (in cycles)
    assert g.gap_c + 2 * g.need_per_op == pytest.approx(g.rep_gap_ns * rep.clock_ghz)
    under = replace(g, need_per_op=5.0, need_hi=9.0)
    assert "each sheaf-256 operation would need about 5 more cycles" in cmp.need_words(under, "sheaf-256")
    assert ("more cycles" in cmp.need_words(g, "sheaf-256")) == (g.need_per_op > 0)
    covered = replace(g, need_per_op=-4.0, need_hi=2.0)
    assert cmp.need_words(covered, "sheaf-256").startswith("The model's edge already covers")
    assert "beyond it by 4 cycles per sheaf-256 operation, within what the rounding" in cmp.need_words(covered, "sheaf-256")
    beyond = replace(g, need_per_op=-30.0, need_hi=0.0)
    assert "more than the rounding of the figures allows" in cmp.need_words(beyond, "sheaf-256")


def test_noise_and_scenarios(rep):
    nf, n = cmp.noise(rep, "7.0", "sheaf-256", 0.005)
    assert 0 <= n.p_exact <= n.p_order <= 1 and n.runs_rep_95 > n.runs_rep > 1
    assert (n.cv_lo, n.cv_hi) == (nf["cv_pct"].min(), nf["cv_pct"].max())
    assert "cannot establish a 0.8 %" in cmp.one_run_words(6, 0.84)
    assert "single run" in cmp.one_run_words(1, 0.84)
    sc = cmp.scenarios(replace(rep, setup=replace(rep.setup, ios=4200)))
    assert set(sc["key"]) == set(cmp.SCENARIOS)
    e = cmp.scenario_edges(sc)
    m = e[e["key"] == "measured"].set_index(["kernel", "allocator"])["edge"]
    cyc = rep.alloc_cycles
    assert len(e) == 4 * len(cmp.SCENARIOS) and np.isfinite(m).all()
    with pytest.raises(AllocsimError, match="scenario must be one of"):
        cmp.scenario_edge(sc, "nope", "7.0", "kmalloc")
    assert cyc is not None


# ---- wording branches ---------------------------------------------------------------------------------------

def test_small_clauses():
    assert cmp.faster_words(1.0) == "faster than" and cmp.faster_words(-1.0) == "slower than"
    assert cmp.inside_words(True) == "inside" and cmp.inside_words(False) == "outside"
    assert cmp.clock_words(False).startswith("A second fitted parameter")
    assert "prefer another clock" in cmp.clock_words(True)
    assert cmp.change_words(0.0) == "changes no configuration's cost at all (to two decimals)"
    assert cmp.change_words(0.004).startswith("changes no configuration's cost at all")
    assert cmp.change_words(0.5) == "changes no configuration by more than 0.50 cycles per IO"
    assert cmp.hit_words(99.0, "kmalloc-128").startswith(", so")
    assert "kmalloc-256" in cmp.hit_words(50.0, "kmalloc-256")
    assert cmp.closing_words(True) != cmp.closing_words(False) and "hardware" in cmp.closing_words(True)


@pytest.mark.parametrize("edge, saving, expect", [
    (16.0, 14.4, "works in the model: it recovers 90 %"),
    (16.0, 4.0, "helps only partly in the model: it recovers 25 %"),
    (16.0, -2.0, "does not help in the model"),
    (-1.0, 3.0, "has no edge of the list to recover"),
])
def test_proposal_words(edge, saving, expect):
    assert cmp.proposal_words(edge, saving).startswith(expect)


def _verdict(gap_focus):
    return cmp.Verdict(16.0, 16.0, True, 14.4, 14.4, 0.1, 1.7, 1.6, 0.2, 0.19, gap_focus, gap_focus < 7.0, -3.3, -0.8)


def test_edge_words_three_cases():
    st = cmp.step()
    behind = cmp.edge_words(_verdict(-0.5), "sheaf-256 on 7.0-rc4", st, 2.0, 0.1)
    below = cmp.edge_words(_verdict(1.6), "sheaf-256 on 7.0-rc4", st, 4.3, 0.17)
    above = cmp.edge_words(_verdict(9.0), "sheaf-256 on 7.0-rc4", st, 12.0, 0.5)
    assert "*behind* (-0.5 ns)" in behind
    assert "smaller than one step" in below and "not evidence of a 0.8 % advantage" in below
    assert "larger than one step" in above
    m = cmp.missing_words(8.1, st.step_ns, "sheaf-256")
    assert "reported 7.0 ns" in m and "8 cycles per sheaf-256 operation" in m
    assert "reported 21.4 ns" in cmp.missing_words(37.0, 21.37, "kmalloc")
    assert "the model's edge already reaches the reported 7.0" in cmp.missing_words(-1.0, st.step_ns, "kmalloc")
    assert cmp.missing_words(-1.0, st.step_ns, "kmalloc").startswith("is not needed")
    assert cmp.missing_words(8.1, st.step_ns, "sheaf-256").startswith("would have to cost")


def _sa(sheaf, km, rs, rk):
    return cmp.SlabAccount(4, 0, 2.5, 12.7, 88.0, 59.0, 5.3, sheaf, km, rs, rk)


def test_slab_account_words_branches():
    disagree = cmp.slab_account_words(_sa(1.165, 1.186, 1.19, 1.17))
    assert "slower than kmalloc" in disagree and "*without* `SLAB_ACCOUNT`" in disagree
    agree = cmp.slab_account_words(_sa(1.20, 1.18, 1.19, 1.17))
    assert "does not tell the two variants apart" in agree
    level = cmp.slab_account_words(_sa(1.20, 1.18, 1.19, 1.19))
    assert "level with" in level


def test_verdict_from_the_runs(rep):
    sc = cmp.scenarios(rep)
    t = cmp.gains_table(rep, C.statuses(rep, C.MicroSetup(rounds=(5, 10))))
    v = cmp.verdict(rep, "7.0", "sheaf-256", sc, cmp.gains(rep, t))
    cyc = rep.alloc_cycles
    assert v.gap_focus == pytest.approx((cyc[("7.0", "sheaf-256")] - cyc[("7.0", "per-CPU list")]) / 3.0)
    assert v.below_step == (v.gap_focus < cmp.step().step_ns)
    assert v.softirq_edge == cmp.scenario_edge(sc, "softirq", "7.0", "kmalloc")
    assert isinstance(pd.Series([v.v_619_edge_ns]).iloc[0], float)

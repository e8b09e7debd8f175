"""The agreement statistics of chapter 5: residuals in half-intervals, the knife edge, and the perfect model
under the same rounding. Pinned with hand-computed and synthetic inputs, never with the model's own
predictions (those change whenever the cost model does)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.analysis import agreement as A
from allocsim.analysis import iops
from allocsim.facts.errors import AllocsimError

FIGS = np.array([1.20, 1.17, 1.19, 1.20, 1.19, 1.19])
REPORTED = pd.Series(dict(zip(iops.CONFIGS, FIGS)))


# ---- hand-computed cases ----------------------------------------------------------------------------------

def test_z_of_known_residuals():
    # 1.19488M against 1.20M: 0.00512M slow of the figure, 1.024 half-intervals; the sign follows the ns residual
    assert iops.half_interval_z(1.19488, 1.20)[0] == pytest.approx(1.024)
    assert iops.half_interval_z(1.2025, 1.20)[0] == pytest.approx(-0.5)
    assert iops.half_interval_z(1.19, 1.19)[0] == 0.0
    z = iops.half_interval_z([1.19488, 1.2025], [1.20, 1.20])
    assert list(iops.inside(z)) == [False, True]


def test_a_prediction_exactly_on_an_edge():
    # 1.195M is the edge between 1.19M and 1.20M: |z| = 1 for both, inside both (edges count), margin zero
    for fig, sign in ((1.19, -1), (1.20, 1)):
        z = iops.half_interval_z(1.195, fig)[0]
        assert z == pytest.approx(sign * 1.0)
        assert iops.inside(z)
        assert iops.edge_margin_ns(1.195, fig)[0] == pytest.approx(0.0, abs=1e-9)
        assert A.knife_edge([z])[0]


def test_edge_margin_by_hand():
    # the example: 1.19488M for 1.20M misses the edge at 1.195M by 1000/1.19488 - 1000/1.195 ns
    miss = 1e3 / 1.19488 - 1e3 / 1.195
    assert miss == pytest.approx(0.084, abs=5e-4)
    assert iops.edge_margin_ns(1.19488, 1.20)[0] == pytest.approx(-miss)
    # the figure itself sits closer to its fast edge (in ns the interval is lopsided)
    fast, slow = 1e3 / 1.19 - 1e3 / 1.195, 1e3 / 1.185 - 1e3 / 1.19
    assert fast < slow
    assert iops.edge_margin_ns(1.19, 1.19)[0] == pytest.approx(fast)


def test_knife_edge_threshold():
    z = np.array([0.0, 0.89, 0.91, 1.0, 1.09, 1.11, -0.95, -1.2])
    assert list(A.knife_edge(z)) == [False, False, True, True, True, False, True, False]


def test_spread_of_known_values():
    s = A.spread(np.arange(1, 101))
    assert (s.median, s.lo, s.hi) == (50.0, 5.0, 95.0)
    assert A.spread([3, 3, 3]) == A.Spread(3.0, 3.0, 3.0)


def test_two_figures_leave_one_out_by_hand():
    # with two figures each out-of-sample residual is ±(e1 - e0): both predictions share one fate
    ok, rms = A.perfect_loo([1.20, 1.17], draws=500, seed=3)
    e = A.rounding_errors_ns([1.20, 1.17], draws=500, seed=3)
    assert np.allclose(rms, np.abs(e[:, 1] - e[:, 0]))
    assert set(np.unique(ok)) <= {0, 1, 2}


# ---- properties -------------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(20, 500), min_size=1, max_size=8), st.integers(0, 2 ** 31 - 1))
def test_true_values_are_inside_their_intervals(steps, seed):
    figs = np.array(steps) / 100.0
    t = A.true_miops(figs, draws=200, seed=seed)
    z = iops.half_interval_z(t.ravel(), np.tile(figs, 200))
    assert np.all(np.abs(z) <= 1.0 + 1e-9) and iops.inside(z).all()
    assert np.all(iops.edge_margin_ns(t.ravel(), np.tile(figs, 200)) >= -1e-9)


@settings(max_examples=30, deadline=None)
@given(st.floats(-3, 3, allow_nan=False), st.integers(50, 300))
def test_z_and_margin_agree_on_inside(z0, step):
    fig = step / 100.0
    pred = fig - z0 * 0.005
    z = iops.half_interval_z(pred, fig)[0]
    assert z == pytest.approx(z0, abs=1e-9)
    if abs(abs(z0) - 1) > 1e-6:
        assert bool(iops.inside(z)) == (iops.edge_margin_ns(pred, fig)[0] > 0)


def test_rms_of_uniform_rounding_is_h_over_root_three():
    # one figure, many draws: the rounding error in ns has RMS ≈ (1000/F²)·h/√3 (uniform in M IOPS)
    for f in (0.5, 1.19, 3.0):
        e = A.rounding_errors_ns([f], draws=200_000, seed=1)[:, 0]
        h_ns = 1e3 / f ** 2 * 0.005
        assert math.sqrt(np.mean(e ** 2)) == pytest.approx(h_ns / math.sqrt(3), rel=0.01)
        assert abs(np.mean(e)) < 0.01 * h_ns


def test_fitted_rms_matches_the_analytic_degrees_of_freedom():
    # an independent oracle: E[RMS²] = (n - 1)/n · mean(h_ns²/3) for a base fitted on all n figures
    h = 1e3 / FIGS ** 2 * 0.005
    ms = np.mean(A.perfect_fit_rms(FIGS, draws=100_000, seed=2) ** 2)
    assert ms == pytest.approx(np.mean(h ** 2 / 3) * 5 / 6, rel=0.02)
    # a fit on one figure leaves more: that figure's error is added to all the others
    one = np.zeros(6, bool)
    one[2] = True
    assert np.mean(A.perfect_fit_rms(FIGS, on=one, draws=20_000, seed=2) ** 2) > ms


def test_loo_rms_is_a_fixed_multiple_of_the_all_six_rms():
    # Σ_{c≠o} (e_o - e_c)² = 2n Σ (e - ē)²: the leave-one-out RMS adds nothing to the fit's
    fit = A.perfect_fit_rms(FIGS, draws=1000, seed=5)
    _, loo = A.perfect_loo(FIGS, draws=1000, seed=5)
    assert np.allclose(loo, fit * math.sqrt(2 * 6 / 5))


# ---- the perfect model goes through the real fitting code --------------------------------------------------

@pytest.mark.parametrize("draw", [0, 7, 123])
def test_perfect_model_through_iops_table_and_leave_one_out(draw):
    """Differential: build the perfect model's allocator cycles for one draw, run the package's own fit and
    leave-one-out, and compare with the vectorised simulation."""
    seed, clock, base = 11, 3.0, 700.0
    t_true = A.true_miops(FIGS, draws=200, seed=seed)[draw]
    alloc = pd.Series(dict(zip(iops.CONFIGS, (1e3 / t_true - base) * clock)))
    t, _ = iops.table(REPORTED, alloc, clock)
    rms = math.sqrt(np.mean(t["residual ns/IO"] ** 2))
    assert rms == pytest.approx(A.perfect_fit_rms(FIGS, draws=200, seed=seed)[draw], rel=1e-9)
    on = [iops.CONFIGS[1]]
    t1, _ = iops.table(REPORTED, alloc, clock, on=on)
    mask = np.array([c in on for c in iops.CONFIGS])
    assert math.sqrt(np.mean(t1["residual ns/IO"] ** 2)) == pytest.approx(
        A.perfect_fit_rms(FIGS, on=mask, draws=200, seed=seed)[draw], rel=1e-9)
    loo = iops.leave_one_out(REPORTED, alloc, clock)
    ok, lrms = A.perfect_loo(FIGS, draws=200, seed=seed)
    assert int(loo["rounds to reported"].sum()) == ok[draw]
    assert math.sqrt(np.mean(loo["residual ns/IO"] ** 2)) == pytest.approx(lrms[draw], rel=1e-9)


def _synthetic(resid_ns):
    """A fit table and its leave-one-out for a model off the figures by ``resid_ns`` (base fitted on all)."""
    alloc = pd.Series(dict(zip(iops.CONFIGS, (1e3 / FIGS - 700.0 + np.asarray(resid_ns)) * 3.0)))
    t, _ = iops.table(REPORTED, alloc, 3.0)
    return t, iops.leave_one_out(REPORTED, alloc, 3.0)


def test_evaluate_an_exact_model():
    t, loo = _synthetic(np.zeros(6))
    a = A.evaluate(t, loo, draws=5000)
    assert (a.n_figures, a.n_inside, a.loo_ok, a.loo_n) == (6, 6, 30, 30)
    assert a.rms_ns == pytest.approx(0, abs=1e-9) and a.rms_share_worse == 1.0 and a.loo_share_as_low == 1.0
    assert a.rms_perfect_lo < a.rms_perfect_med < a.rms_perfect_hi
    assert a.loo_perfect_lo <= a.loo_perfect_med <= a.loo_perfect_hi <= 30
    assert a.n_knife == 0


def test_evaluate_a_model_off_by_far_more_than_rounding():
    off = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])  # every pair 10 ns apart or more: no prediction round right
    t, loo = _synthetic(off)
    a = A.evaluate(t, loo, draws=5000)
    assert a.n_inside == 0 and a.max_abs_z > 2 and a.loo_ok == 0
    assert a.rms_ns == pytest.approx(np.std(off)) and a.rms_share_worse == 0.0
    assert a.loo_share_as_low == 0.0 and a.loo_rms_share_worse == 0.0


def test_evaluate_is_deterministic_and_seeded():
    t, loo = _synthetic([1.0, -2.0, 0.5, 3.0, -1.5, -1.0])
    assert A.evaluate(t, loo, draws=3000, seed=4) == A.evaluate(t, loo, draws=3000, seed=4)
    assert A.evaluate(t, loo, draws=3000, seed=4) != A.evaluate(t, loo, draws=3000, seed=5)
    d1, d2 = A.loo_distribution(FIGS, draws=3000), A.loo_distribution(FIGS, draws=3000)
    pd.testing.assert_frame_equal(d1, d2)
    assert d1["probability"].sum() == pytest.approx(1.0) and list(d1["rounds right"]) == list(range(31))


# ---- bad input: one sentence each ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: iops.half_interval_z([1.2, float("nan")], [1.2, 1.2]), "predicted_miops must hold finite"),
    (lambda: iops.half_interval_z([], []), "predicted_miops must be a non-empty list"),
    (lambda: iops.half_interval_z([1.2, 1.1], [1.2]), "must have the same length, not 2 and 1"),
    (lambda: iops.edge_margin_ns([1.2], [0.001]), "reported_miops must hold finite M IOPS figures above"),
    (lambda: iops.half_interval_z([1.2], [1.2], precision=0), "precision must be a number"),
    (lambda: A.true_miops([1.2], draws=0), "draws must be an integer >= 1"),
    (lambda: A.true_miops([1.2], seed=-1), "seed must be an integer >= 0"),
    (lambda: A.perfect_fit_rms([1.2, 1.1], on=[True]), "on must be one true/false per figure"),
    (lambda: A.perfect_fit_rms([1.2, 1.1], on=np.zeros(2, bool)), "at least one figure"),
    (lambda: A.perfect_loo([1.2]), "at least two figures"),
    (lambda: A.spread([]), "non-empty array of finite values"),
    (lambda: A.spread([1.0, float("nan")]), "non-empty array of finite values"),
    (lambda: A.evaluate(pd.DataFrame(), pd.DataFrame()), "table must be a non-empty table"),
    (lambda: A.evaluate(_synthetic(np.zeros(6))[0].drop(columns="fitted on"), _synthetic(np.zeros(6))[1]),
     r"table lacks the column\(s\) \['fitted on'\]"),
    (lambda: A.evaluate(_synthetic(np.zeros(6))[0], _synthetic(np.zeros(6))[1].head(5)),
     r"one row per ordered pair of the 6 figures \(30\), not 5"),
    (lambda: A.evaluate(_synthetic(np.zeros(6))[0].assign(**{"residual ns/IO": np.nan}), _synthetic(np.zeros(6))[1]),
     "table has a NaN"),
])
def test_bad_input_is_one_sentence(call, match):
    with pytest.raises(AllocsimError, match=match) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and msg.count(". ") == 0


# ---- the clauses -------------------------------------------------------------------------------------------

def _a(**kw):
    base = dict(n_figures=6, n_inside=4, max_abs_z=1.0, rms_ns=2.0, rms_perfect_med=1.8, rms_perfect_lo=1.0,
                rms_perfect_hi=2.5, rms_share_worse=0.3, loo_ok=20, loo_n=30, loo_perfect_med=22.0, loo_perfect_lo=14.0,
                loo_perfect_hi=30.0, loo_share_as_low=0.3, loo_rms_ns=3.0, loo_rms_perfect_med=2.8,
                loo_rms_perfect_lo=1.6, loo_rms_perfect_hi=3.8, loo_rms_share_worse=0.3, n_knife=0, loo_n_knife=0,
                draws=100, level_pct=90.0)
    base.update(kw)
    return A.Agreement(**base)


def test_rms_words_branches():
    assert A.rms_words(_a()).startswith("within that range (30.0 %")
    assert A.rms_words(_a(rms_ns=2.6, rms_share_worse=0.038)).startswith("above that range: only 3.8 %")
    assert A.rms_words(_a(rms_ns=0.5, rms_share_worse=0.99)).startswith("below that range (99.0 %")
    assert A.rms_words(_a(rms_ns=5.8, rms_share_worse=0.0)).startswith("above that range: none of the perfect model's 100 draws")
    assert A.rms_words(_a(rms_ns=5.8, rms_share_worse=0.0004)).startswith("above that range: fewer than 0.1 %")


def test_loo_words_branches():
    assert A.loo_words(_a()).startswith("within that range (30.0 %")
    assert A.loo_words(_a(loo_ok=12, loo_share_as_low=0.014)) == "below that range: only 1.4 % of the perfect model's draws score as low"
    assert A.loo_words(_a(loo_ok=2, loo_share_as_low=0.0)) == "below that range: none of the perfect model's 100 draws score as low"
    assert A.loo_words(_a(loo_ok=14, loo_share_as_low=0.057)).startswith("at the bottom of that range: 5.7 %")
    assert A.loo_words(_a(loo_ok=29, loo_perfect_hi=28.0, loo_share_as_low=0.97)).startswith("above that range")


def test_knife_count_words_branches():
    assert A.knife_count_words(0, 6).startswith("none of the 6 verdicts is within 0.1 half-intervals of an edge")
    assert A.knife_count_words(1, 6).startswith("one of the 6 verdicts is within")
    assert A.knife_count_words(2, 6) == ("2 of the 6 verdicts are within 0.1 half-intervals of an edge of its figure's "
                                         "rounding interval, so the count could move by 2 for a fraction of a cycle per IO")

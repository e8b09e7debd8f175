"""The noise helpers added for chapter 5: order probabilities and exact-figure probabilities with targets
(the residual the rounding alone leaves is tests/test_agreement.py's)."""

import pytest
from hypothesis import given, settings, strategies as st

from allocsim.analysis import iops
from allocsim.facts.errors import AllocsimError

REPORTED_70 = {"per-CPU list": 1.20, "kmalloc": 1.19, "sheaf-256": 1.19}


def test_same_order_is_certain_when_means_sit_inside_their_rounding_cells():
    means = {"per-CPU list": 1.2001, "kmalloc": 1.1899, "sheaf-256": 1.1901}
    assert iops.p_same_order(means, REPORTED_70, cv=1e-4, draws=2000) == 1.0
    # and impossible when the list is truly slower by several steps
    slow = {"per-CPU list": 1.15, "kmalloc": 1.19, "sheaf-256": 1.19}
    assert iops.p_same_order(slow, REPORTED_70, cv=1e-4, draws=2000) == 0.0


def test_same_order_is_seeded_and_bounded():
    means = {"per-CPU list": 1.195, "kmalloc": 1.192, "sheaf-256": 1.193}
    p1 = iops.p_same_order(means, REPORTED_70, 0.005, draws=20_000, seed=7)
    assert p1 == iops.p_same_order(means, REPORTED_70, 0.005, draws=20_000, seed=7)
    assert 0.0 < p1 < 1.0


def test_exact_figures_with_targets():
    means = {"a": 1.1949, "b": 1.1925}
    # rounded means are 1.19/1.19; against targets 1.20/1.19 the list must round up: about half the time
    p = iops.p_reported_order(means, 1e-3, draws=50_000, targets={"a": 1.20, "b": 1.19})
    assert 0.3 < p < 0.7
    assert iops.p_reported_order(means, 1e-5, draws=5000) == 1.0  # default target: the means rounded


def test_errors():
    with pytest.raises(AllocsimError, match="must name the same allocators"):
        iops.p_same_order({"a": 1.2}, {"b": 1.2}, 0.01)
    with pytest.raises(AllocsimError, match="runs must be an integer >= 1"):
        iops.p_same_order(REPORTED_70, REPORTED_70, 0.01, runs=0)
    with pytest.raises(AllocsimError, match="cv must be a number between 0 and 0.5"):
        iops.p_same_order(REPORTED_70, REPORTED_70, -0.1)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.001, 0.02), st.integers(1, 20))
def test_more_runs_make_the_true_order_likelier(cv, runs):
    # true means already in the reported cells: averaging more runs can only help
    means = {"per-CPU list": 1.2001, "kmalloc": 1.1899, "sheaf-256": 1.1901}
    p1 = iops.p_same_order(means, REPORTED_70, cv, runs=runs, draws=4000, seed=1)
    p2 = iops.p_same_order(means, REPORTED_70, cv, runs=runs * 4, draws=4000, seed=1)
    assert p2 >= p1 - 0.03  # Monte Carlo tolerance

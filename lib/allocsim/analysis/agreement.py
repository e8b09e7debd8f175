"""How far do rounded figures agree with a model? Each statistic scored against a *perfect* model under the
same rounding.

The thread gives every IOPS figure to 0.01M, so a figure F stands for every throughput that rounds to it,
``[F - h, F + h]`` with ``h`` = 0.005M. A perfect model — one that knows every true throughput behind the
figures, up to the one base cost the fit supplies — still leaves residuals against the figures, because the
figures are rounded. So "how many predictions round right" or "an RMS residual of 2.4 ns" mean nothing
until they are set beside what that perfect model scores. This module simulates it:

* the true value behind each figure is drawn **uniform over its rounding interval in M IOPS** (the unit
  the figure was rounded in) and converted to ns per IO, ``e = 1000/T - 1000/F`` (the rounding error in ns,
  positive when the truth is slower than the figure);
* the perfect model's allocator costs are the true times less an unknown base, so fitting the base the way
  :func:`allocsim.analysis.iops.calibrate` fits the real model (least squares, on the same configurations)
  leaves the residuals ``e - mean(e over the fitted configurations)``; leave-one-out (fit on figure c,
  predict o) leaves ``e_o - e_c`` — the base cancels, and the residuals depend only on the rounding;
* the statistics — RMS residual of the fit, the leave-one-out count that rounds right and its RMS — are
  computed from those residuals exactly as from the model's, over :data:`DRAWS` seeded draws, and
  summarised by their median and a :data:`LEVEL` interval.

:func:`evaluate` places the model's own numbers (from :func:`allocsim.analysis.iops.table` and
:func:`allocsim.analysis.iops.leave_one_out`) in those distributions and lists the knife edges: predictions
whose "rounds to the figure" verdict would flip if the prediction moved by less than :data:`KNIFE` of a
half-interval. Same inputs and seed, same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocsim.analysis import iops
from allocsim.facts.errors import AllocsimError

DRAWS = 20_000  # perfect-model draws per statistic
SEED = 0  # seed of those draws (fixed: the page's numbers do not depend on the workload's seed)
LEVEL = 0.90  # the central interval reported beside each median
KNIFE = 0.1  # a verdict is on a knife edge when |z| is within this of 1 (a tenth of a half-interval)


def _check_draws(draws, seed):
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise AllocsimError(f"draws must be an integer >= 1, not {draws!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AllocsimError(f"seed must be an integer >= 0, not {seed!r}")


def _mask(on, n: int) -> np.ndarray:
    """The fitted configurations as a boolean mask over the ``n`` figures (None: all)."""
    if on is None:
        return np.ones(n, bool)
    m = np.asarray(on)
    if m.dtype != bool or m.shape != (n,):
        raise AllocsimError(f"on must be one true/false per figure ({n}), not {on!r}")
    if not m.any():
        raise AllocsimError("on must mark at least one figure to fit the base cost on")
    return m


# ---- the perfect model -----------------------------------------------------------------------------------

def true_miops(reported_miops, draws: int = DRAWS, seed: int = SEED,
               precision: float = iops.PRECISION_MIOPS) -> np.ndarray:
    """``draws`` × n true throughputs behind the figures, each uniform over its rounding interval (M IOPS)."""
    f = iops._figures("reported_miops", reported_miops, precision)
    _check_draws(draws, seed)
    h = precision / 2
    return np.random.default_rng(seed).uniform(f - h, f + h, size=(draws, f.size))


def rounding_errors_ns(reported_miops, draws: int = DRAWS, seed: int = SEED,
                       precision: float = iops.PRECISION_MIOPS) -> np.ndarray:
    """``draws`` × n rounding errors in ns per IO, true time minus the figure's time (positive: the truth
    is slower than the figure)."""
    f = iops._figures("reported_miops", reported_miops, precision)
    return 1e3 / true_miops(f, draws, seed, precision) - 1e3 / f


def perfect_fit_rms(reported_miops, on=None, draws: int = DRAWS, seed: int = SEED,
                    precision: float = iops.PRECISION_MIOPS) -> np.ndarray:
    """RMS residual (ns per IO, over all figures) of a perfect model whose base cost is fitted by least
    squares on the figures ``on`` marks (default all), one value per draw."""
    e = rounding_errors_ns(reported_miops, draws, seed, precision)
    m = _mask(on, e.shape[1])
    r = e - e[:, m].mean(axis=1, keepdims=True)
    return np.sqrt((r ** 2).mean(axis=1))


def loo_residuals_ns(errors_ns: np.ndarray) -> np.ndarray:
    """Leave-one-out residuals of a perfect model, ``draws`` × n (fitted on) × n (predicted):
    ``e_o - e_c``; the diagonal (a figure predicting itself) is zero and is not scored."""
    e = np.asarray(errors_ns, dtype=float)
    return e[:, None, :] - e[:, :, None]


def perfect_loo(reported_miops, draws: int = DRAWS, seed: int = SEED,
                precision: float = iops.PRECISION_MIOPS) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out of a perfect model, per draw: how many of the n·(n-1) out-of-sample predictions
    round to their figure, and their RMS residual in ns per IO."""
    f = iops._figures("reported_miops", reported_miops, precision)
    if f.size < 2:
        raise AllocsimError(f"leave-one-out needs at least two figures, not {f.size}")
    r = loo_residuals_ns(rounding_errors_ns(f, draws, seed, precision))
    off = ~np.eye(f.size, dtype=bool)
    r = r[:, off]  # draws × n(n-1), row-major: fitted on c, predicted o
    f_pred = np.tile(f, (f.size, 1))[off]
    pred = 1e3 / (1e3 / f_pred + r)
    ok = iops.inside((f_pred - pred) / (precision / 2)).sum(axis=1)
    return ok, np.sqrt((r ** 2).mean(axis=1))


# ---- summaries ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """Median and central :data:`LEVEL` interval of a simulated statistic."""

    median: float
    lo: float
    hi: float


def spread(x, level: float = LEVEL) -> Spread:
    """Median and the central ``level`` interval of ``x`` (values that occur in ``x``: counts stay whole)."""
    a = np.asarray(x, dtype=float)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise AllocsimError("spread needs a non-empty array of finite values")
    if not 0 < level < 1:
        raise AllocsimError(f"level must lie strictly between 0 and 1, not {level!r}")
    q = np.quantile(a, [(1 - level) / 2, 0.5, (1 + level) / 2], method="inverted_cdf")
    return Spread(float(q[1]), float(q[0]), float(q[2]))


@dataclass(frozen=True)
class Agreement:
    """The model's agreement with the figures, each number beside what a perfect model scores."""

    n_figures: int  # figures
    n_inside: int  # predictions inside their figure's rounding interval (|z| <= 1)
    max_abs_z: float  # largest |residual| in half-intervals
    rms_ns: float  # RMS residual of the fit, ns per IO
    rms_perfect_med: float  # … of a perfect model under the same rounding: median
    rms_perfect_lo: float  # … and the LEVEL interval
    rms_perfect_hi: float
    rms_share_worse: float  # share of perfect-model draws with an RMS at least the model's
    loo_ok: int  # out-of-sample predictions that round to their figure
    loo_n: int
    loo_perfect_med: float
    loo_perfect_lo: float
    loo_perfect_hi: float
    loo_share_as_low: float  # share of perfect-model draws scoring no more than the model
    loo_rms_ns: float
    loo_rms_perfect_med: float
    loo_rms_perfect_lo: float
    loo_rms_perfect_hi: float
    loo_rms_share_worse: float
    n_knife: int  # fitted predictions within KNIFE of an edge of their interval
    loo_n_knife: int  # out-of-sample predictions within KNIFE of an edge
    draws: int
    level_pct: float


_TABLE_COLUMNS = ("predicted M IOPS", "reported M IOPS", "residual ns/IO", "fitted on")
_LOO_COLUMNS = ("predicted M IOPS", "reported M IOPS", "residual ns/IO")


def _columns(df, name, cols):
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise AllocsimError(f"{name} must be a non-empty table, not {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise AllocsimError(f"{name} lacks the column(s) {missing}")
    if not np.all(np.isfinite(df[[c for c in cols if c != "fitted on"]].to_numpy(dtype=float))):
        raise AllocsimError(f"{name} has a NaN or infinite value in {list(cols)}")


def knife_edge(z, knife: float = KNIFE) -> np.ndarray:
    """Verdicts that would flip if the prediction moved by less than ``knife`` of a half-interval."""
    return np.abs(np.abs(np.asarray(z, dtype=float)) - 1.0) < knife


def evaluate(table: pd.DataFrame, loo: pd.DataFrame, draws: int = DRAWS, seed: int = SEED,
             precision: float = iops.PRECISION_MIOPS, level: float = LEVEL) -> Agreement:
    """Score the fit ``table`` (:func:`allocsim.analysis.iops.table`) and its leave-one-out ``loo``
    (:func:`allocsim.analysis.iops.leave_one_out`) against a perfect model fitted on the same figures."""
    _columns(table, "table", _TABLE_COLUMNS)
    _columns(loo, "loo", _LOO_COLUMNS)
    f = iops._figures("reported_miops", table["reported M IOPS"], precision)
    n = f.size
    if len(loo) != n * (n - 1):
        raise AllocsimError(f"loo must have one row per ordered pair of the {n} figures ({n * (n - 1)}), not {len(loo)}")
    z = iops.half_interval_z(table["predicted M IOPS"], f, precision)
    rms = float(np.sqrt(np.mean(table["residual ns/IO"].to_numpy(float) ** 2)))
    sim_rms = perfect_fit_rms(f, table["fitted on"].to_numpy(bool), draws, seed, precision)
    lz = iops.half_interval_z(loo["predicted M IOPS"], loo["reported M IOPS"], precision)
    l_ok = int(iops.inside(lz).sum())
    l_rms = float(np.sqrt(np.mean(loo["residual ns/IO"].to_numpy(float) ** 2)))
    sim_ok, sim_lrms = perfect_loo(f, draws, seed, precision)
    r, k, lr = spread(sim_rms, level), spread(sim_ok, level), spread(sim_lrms, level)
    return Agreement(
        n, int(iops.inside(z).sum()), float(np.abs(z).max()),
        rms, r.median, r.lo, r.hi, float(np.mean(sim_rms >= rms)),
        l_ok, len(loo), k.median, k.lo, k.hi, float(np.mean(sim_ok <= l_ok)),
        l_rms, lr.median, lr.lo, lr.hi, float(np.mean(sim_lrms >= l_rms)),
        int(knife_edge(z).sum()), int(knife_edge(lz).sum()), int(draws), 100 * level)


def loo_distribution(reported_miops, draws: int = DRAWS, seed: int = SEED,
                     precision: float = iops.PRECISION_MIOPS) -> pd.DataFrame:
    """The perfect model's leave-one-out score: probability of each count 0…n(n-1) (for a chart)."""
    ok, _ = perfect_loo(reported_miops, draws, seed, precision)
    n = np.asarray(reported_miops).size
    counts = np.bincount(ok, minlength=n * (n - 1) + 1)
    return pd.DataFrame({"rounds right": np.arange(counts.size), "probability": counts / counts.sum()})


# ---- the clauses whose wording follows the numbers ---------------------------------------------------------

def _few(share: float, draws: int) -> str:
    """"only 3.8 % of the perfect model's draws", said right when the share is tiny or none."""
    if share == 0:
        return f"none of the perfect model's {draws:,} draws"
    if share < 0.001:
        return "fewer than 0.1 % of the perfect model's draws"
    return f"only {100 * share:.1f} % of the perfect model's draws"


def rms_words(a: Agreement) -> str:
    """Where the model's RMS residual falls in the perfect model's distribution, as the end of a sentence
    "The model's RMS residual is …"."""
    share = f"{100 * a.rms_share_worse:.1f} %"
    if a.rms_ns > a.rms_perfect_hi:
        return (f"above that range: {_few(a.rms_share_worse, a.draws)} leave as much, so the figures' rounding does "
                "not explain all of it")
    if a.rms_ns < a.rms_perfect_lo:
        return (f"below that range ({share} of the perfect model's draws leave as much): the model sits closer to "
                "the figures than rounding lets even a perfect model sit, which is luck rather than accuracy")
    return f"within that range ({share} of the perfect model's draws leave as much or more): rounding alone explains it"


def loo_words(a: Agreement) -> str:
    """Where the model's leave-one-out count falls in the perfect model's distribution, as the end of a
    sentence "The model's score is …"."""
    share = f"{100 * a.loo_share_as_low:.1f} %"
    if a.loo_ok < a.loo_perfect_lo:
        return f"below that range: {_few(a.loo_share_as_low, a.draws)} score as low"
    if a.loo_ok > a.loo_perfect_hi:
        return f"above that range ({share} of the perfect model's draws score as low or lower): better than rounding allows, which is luck"
    if a.loo_ok == a.loo_perfect_lo < a.loo_perfect_hi:
        return f"at the bottom of that range: {share} of the perfect model's draws score as low or lower"
    return f"within that range ({share} of the perfect model's draws score as low or lower)"


def knife_count_words(n_knife: int, n: int, knife: float = KNIFE) -> str:
    """How many of the ``n`` "rounds to the figure" verdicts sit on a knife edge, as a clause."""
    within = f"within {knife:g} half-intervals of an edge of its figure's rounding interval"
    if n_knife == 0:
        return f"none of the {n} verdicts is {within}, so the count means what it says"
    if n_knife == 1:
        return f"one of the {n} verdicts is {within}, so the count could move by one for a fraction of a cycle per IO"
    return (f"{n_knife} of the {n} verdicts are {within}, so the count could move by {n_knife} for a fraction of a "
            "cycle per IO")

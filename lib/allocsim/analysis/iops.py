"""From allocator cycles per IO to IOPS: one CPU-bound submitter, so

    time per IO = base + allocator cycles per IO / clock.

``base`` — everything the IO path costs besides allocating and freeing ``struct iomap_dio`` — is the
only parameter fitted to the reported figures; the clock is a stated parameter, not fitted. Everything
else (the six allocator costs) comes from the models. :func:`calibrate` reports how many parameters it
fitted so a test can hold it to one, and :func:`leave_one_out` calibrates on each single figure in turn
and predicts the other five. :func:`half_interval_z` and :func:`edge_margin_ns` place each prediction in
its figure's rounding interval; :mod:`allocsim.analysis.agreement` scores the whole fit against a perfect
model under the same rounding.

The noise helpers answer "is a 0.8% difference measurable?": repeated IOPS runs are modelled as normal
with a coefficient of variation ``cv`` (a parameter; the thread gives none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from allocsim.facts.errors import AllocsimError

#: The six configurations of the thread, in the book's order.
KERNELS = ("6.19", "7.0")
ALLOCATORS = ("per-CPU list", "kmalloc", "sheaf-256")
CONFIGS = tuple((k, a) for k in KERNELS for a in ALLOCATORS)
PRECISION_MIOPS = 0.01  # the thread gives figures to two decimals of a million IOPS
#: A prediction exactly on an edge of its figure's rounding interval counts as inside it (|z| = 1); the
#: tolerance only absorbs the floating-point error of (F - P) / h for decimal F and P.
_EDGE_TOL = 1e-9


def miops_to_ns(miops):
    """Time per IO in ns for a throughput in millions of IOPS (one CPU-bound submitter)."""
    return 1e3 / np.asarray(miops, dtype=float)


def ns_to_miops(ns):
    return 1e3 / np.asarray(ns, dtype=float)


# ---- where a prediction lies in its figure's rounding interval ------------------------------------------

def _figures(name: str, x, precision: float = PRECISION_MIOPS) -> np.ndarray:
    """``x`` as a 1-D array of finite M IOPS figures above half a step, or one sentence saying what is wrong."""
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if a.ndim != 1 or a.size == 0:
        raise AllocsimError(f"{name} must be a non-empty list of M IOPS figures, not {x!r}")
    if not np.all(np.isfinite(a)) or np.any(a <= precision / 2):
        raise AllocsimError(f"{name} must hold finite M IOPS figures above {precision / 2:g}, not {a.tolist()!r}")
    return a


def _pair(predicted_miops, reported_miops, precision):
    if not (isinstance(precision, (int, float)) and not isinstance(precision, bool) and 0 < precision < 1):
        raise AllocsimError(f"precision must be a number of M IOPS between 0 and 1, not {precision!r}")
    p = _figures("predicted_miops", predicted_miops, precision)
    f = _figures("reported_miops", reported_miops, precision)
    if p.shape != f.shape:
        raise AllocsimError(f"predicted_miops and reported_miops must have the same length, not {p.size} and {f.size}")
    return p, f


def half_interval_z(predicted_miops, reported_miops, precision: float = PRECISION_MIOPS) -> np.ndarray:
    """Each prediction's residual in units of its figure's rounding half-interval, signed.

    A reported figure F (given to ``precision``, 0.01M in the thread) stands for every throughput that rounds
    to it, ``[F - h, F + h]`` with ``h = precision / 2``. The half-interval is taken **in M IOPS**, where it is
    symmetric: ``z = (F - P) / h`` for a prediction P. In ns per IO the same interval is lopsided (its slow
    side, ``1000/(F - h) - 1000/F``, is longer than its fast side), so dividing an ns residual by one number
    would move the edges; in M IOPS ``|z| <= 1`` is exactly "inside the figure's rounding interval" (an edge
    counts as inside). The sign follows the ns residual: z > 0 when the prediction is slower than the figure
    (fewer IOPS), z < 0 when it is faster.
    """
    p, f = _pair(predicted_miops, reported_miops, precision)
    return (f - p) / (precision / 2)


def inside(z) -> np.ndarray:
    """``|z| <= 1``: the prediction rounds to its figure (an edge counts as inside)."""
    return np.abs(np.asarray(z, dtype=float)) <= 1.0 + _EDGE_TOL


def edge_margin_ns(predicted_miops, reported_miops, precision: float = PRECISION_MIOPS) -> np.ndarray:
    """The knife edge: ns per IO from each prediction to the nearer edge of its figure's rounding interval,
    positive inside the interval (how far the prediction could move and still round to the figure) and
    negative outside (how far it misses by). E.g. a prediction of 1.19488M for a figure of 1.20M misses the
    edge at 1.195M by ``1000/1.195 - 1000/1.19488`` = -0.08 ns per IO."""
    p, f = _pair(predicted_miops, reported_miops, precision)
    h = precision / 2
    pred_ns = 1e3 / p
    return np.minimum(pred_ns - 1e3 / (f + h), 1e3 / (f - h) - pred_ns)


@dataclass(frozen=True)
class Calibration:
    base_ns: float
    fitted_on: tuple  # the configurations whose reported figures fixed base_ns
    n_params: int = 1  # base_ns only; the clock is given, not fitted

    def predict_ns(self, alloc_ns):
        return self.base_ns + np.asarray(alloc_ns, dtype=float)


def _check_index(s: pd.Series, name: str):
    missing = [c for c in CONFIGS if c not in s.index]
    if missing:
        raise AllocsimError(f"{name} lacks the configuration(s) {missing}; it needs all six (kernel, allocator) pairs")


def calibrate(reported_ns: pd.Series, alloc_ns: pd.Series, on=None) -> Calibration:
    """Least-squares base cost on the configurations ``on`` (default: all six): the mean of
    ``reported - allocator`` time per IO, the one parameter of the IOPS model."""
    on = tuple(CONFIGS if on is None else on)
    if not on:
        raise AllocsimError("calibration needs at least one configuration to fit the base cost on")
    for c in on:
        if c not in CONFIGS:
            raise AllocsimError(f"unknown configuration {c!r}; configurations are (kernel, allocator) pairs of {KERNELS} × {ALLOCATORS}")
    diff = np.array([reported_ns[c] - alloc_ns[c] for c in on], dtype=float)
    return Calibration(float(diff.mean()), on)


def table(reported_miops: pd.Series, alloc_cycles: pd.Series, clock_ghz: float, on=None) -> tuple[pd.DataFrame, Calibration]:
    """Reported vs predicted for the six configurations: ns per IO, M IOPS, residuals, each residual in
    half-intervals of the figure's rounding (:func:`half_interval_z`), the distance to the nearer edge of
    that interval (:func:`edge_margin_ns`), and whether the prediction rounds to the reported figure at
    the thread's precision (0.01M), i.e. ``|z| <= 1``."""
    _check_index(reported_miops, "reported_miops")
    _check_index(alloc_cycles, "alloc_cycles")
    if not clock_ghz > 0:
        raise AllocsimError(f"clock_ghz must be > 0, not {clock_ghz!r}")
    reported_ns = pd.Series(miops_to_ns(reported_miops.values), index=reported_miops.index)
    alloc_ns = alloc_cycles / clock_ghz
    cal = calibrate(reported_ns, alloc_ns, on)
    rows = []
    for c in CONFIGS:
        pred_ns = float(cal.predict_ns(alloc_ns[c]))
        pred = float(ns_to_miops(pred_ns))
        z = float(half_interval_z(pred, reported_miops[c])[0])
        rows.append({
            "kernel": c[0], "allocator": c[1], "alloc cycles/IO": float(alloc_cycles[c]), "alloc ns/IO": float(alloc_ns[c]),
            "reported ns/IO": float(reported_ns[c]), "predicted ns/IO": pred_ns,
            "residual ns/IO": pred_ns - float(reported_ns[c]),
            "reported M IOPS": float(reported_miops[c]), "predicted M IOPS": pred,
            "z": z, "edge ns/IO": float(edge_margin_ns(pred, reported_miops[c])[0]),
            "rounds to reported": bool(inside(z)),
            "fitted on": c in cal.fitted_on,
        })
    return pd.DataFrame(rows), cal


def leave_one_out(reported_miops: pd.Series, alloc_cycles: pd.Series, clock_ghz: float) -> pd.DataFrame:
    """Calibrate on each single configuration in turn and predict the other five."""
    rows = []
    for c in CONFIGS:
        t, cal = table(reported_miops, alloc_cycles, clock_ghz, on=[c])
        for r in t.to_dict("records"):
            if (r["kernel"], r["allocator"]) == c:
                continue
            rows.append({"calibrated on": f"{c[0]} {c[1]}", "kernel": r["kernel"], "allocator": r["allocator"],
                         "base ns": cal.base_ns, "predicted M IOPS": r["predicted M IOPS"],
                         "reported M IOPS": r["reported M IOPS"], "residual ns/IO": r["residual ns/IO"],
                         "z": r["z"], "edge ns/IO": r["edge ns/IO"], "rounds to reported": r["rounds to reported"]})
    return pd.DataFrame(rows)


def gain_pct(a_miops: float, b_miops: float) -> float:
    return (a_miops / b_miops - 1.0) * 100.0


# ---- noise: is the difference measurable? -------------------------------------------------------

def _check_cv(cv):
    if not (isinstance(cv, (int, float)) and 0 < cv < 0.5):
        raise AllocsimError(f"the coefficient of variation cv must be a number between 0 and 0.5, not {cv!r}")


def p_greater(m1: float, m2: float, cv: float, runs: int = 1) -> float:
    """P(mean of ``runs`` runs of 1 > mean of ``runs`` runs of 2) for normal runs with relative sd ``cv``."""
    _check_cv(cv)
    sd = math.sqrt((cv * m1) ** 2 + (cv * m2) ** 2) / math.sqrt(runs)
    return NormalDist().cdf((m1 - m2) / sd)


def runs_needed(m1: float, m2: float, cv: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Runs per allocator for a two-sided test at level ``alpha`` to detect m1 ≠ m2 with ``power``
    (normal approximation: n = (z_{1-α/2} + z_{power})² (σ1² + σ2²) / δ²)."""
    _check_cv(cv)
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise AllocsimError("alpha and power must lie strictly between 0 and 1")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    var = (cv * m1) ** 2 + (cv * m2) ** 2
    delta = abs(m1 - m2)
    if delta == 0:
        raise AllocsimError("the two means are equal; no number of runs tells them apart")
    return int(math.ceil(z * z * var / (delta * delta)))


def _rounded_draws(mu, cv, runs, draws, seed, precision):
    rng = np.random.default_rng(seed)
    x = mu + rng.standard_normal((draws, len(mu))) * (cv * mu / math.sqrt(runs))
    return np.round(x / precision)


def _check_draws(runs, draws):
    for name, v in (("runs", runs), ("draws", draws)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise AllocsimError(f"{name} must be an integer >= 1, not {v!r}")


def p_reported_order(means: dict, cv: float, runs: int = 1, draws: int = 200_000, seed: int = 0,
                     precision: float = PRECISION_MIOPS, targets: dict | None = None) -> float:
    """Probability that single runs (or means of ``runs`` runs), rounded to the thread's precision,
    come out exactly as ``targets`` (default: ``means`` rounded) — e.g. 1.20 / 1.19 / 1.19. Monte
    Carlo, seeded."""
    _check_cv(cv)
    _check_draws(runs, draws)
    names = list(means)
    mu = np.array([means[n] for n in names], dtype=float)
    q = _rounded_draws(mu, cv, runs, draws, seed, precision)
    goal = mu if targets is None else np.array([targets[n] for n in names], dtype=float)
    target = np.round(goal / precision)
    return float(np.mean(np.all(q == target, axis=1)))


def p_same_order(means: dict, reported: dict, cv: float, runs: int = 1, draws: int = 200_000, seed: int = 0,
                 precision: float = PRECISION_MIOPS) -> float:
    """Probability that single runs (or means of ``runs`` runs) with true means ``means``, rounded to
    the thread's precision, *order* the allocators as ``reported`` does: for every pair the same
    relation (greater, equal after rounding, or less). E.g. on 7.0-rc4 the per-CPU list above both
    others and kmalloc level with the dedicated cache. Monte Carlo, seeded."""
    _check_cv(cv)
    _check_draws(runs, draws)
    names = list(means)
    if set(names) != set(reported):
        raise AllocsimError(f"means and reported must name the same allocators, not {sorted(names)} and {sorted(reported)}")
    mu = np.array([means[n] for n in names], dtype=float)
    q = _rounded_draws(mu, cv, runs, draws, seed, precision)
    r = np.round(np.array([reported[n] for n in names], dtype=float) / precision)
    ok = np.ones(draws, bool)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            ok &= np.sign(q[:, i] - q[:, j]) == np.sign(r[i] - r[j])
    return float(ok.mean())

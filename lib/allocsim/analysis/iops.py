"""From allocator cycles per IO to IOPS: one CPU-bound submitter, so

    time per IO = base + allocator cycles per IO / clock.

``base`` — everything the IO path costs besides allocating and freeing ``struct iomap_dio`` — is the
only parameter fitted to the reported figures; the clock is a stated parameter, not fitted. Everything
else (the six allocator costs) comes from the models. :func:`calibrate` reports how many parameters it
fitted so a test can hold it to one, and :func:`leave_one_out` calibrates on each single figure in turn
and predicts the other five.

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


def miops_to_ns(miops):
    """Time per IO in ns for a throughput in millions of IOPS (one CPU-bound submitter)."""
    return 1e3 / np.asarray(miops, dtype=float)


def ns_to_miops(ns):
    return 1e3 / np.asarray(ns, dtype=float)


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
    """Reported vs predicted for the six configurations: ns per IO, M IOPS, residuals, and whether the
    prediction rounds to the reported figure at the thread's precision (0.01M)."""
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
        rows.append({
            "kernel": c[0], "allocator": c[1], "alloc cycles/IO": float(alloc_cycles[c]), "alloc ns/IO": float(alloc_ns[c]),
            "reported ns/IO": float(reported_ns[c]), "predicted ns/IO": pred_ns,
            "residual ns/IO": pred_ns - float(reported_ns[c]),
            "reported M IOPS": float(reported_miops[c]), "predicted M IOPS": pred,
            "rounds to reported": bool(round(pred, 2) == round(float(reported_miops[c]), 2)),
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
                         "rounds to reported": r["rounds to reported"]})
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


def rounding_rms_ns(reported_miops, n_params: int = 1, precision: float = PRECISION_MIOPS) -> float:
    """The RMS residual (ns per IO) that the rounding of the reported figures alone would leave after a
    fit with ``n_params`` parameters: each figure's true value is anywhere within ±precision/2 (uniform,
    variance h²/3 in ns, with h the half-step converted at that rate), and a least-squares fit absorbs
    ``n_params`` of the ``n`` degrees of freedom."""
    m = np.asarray(reported_miops, dtype=float)
    n = len(m)
    if n <= n_params:
        raise AllocsimError(f"need more figures ({n}) than fitted parameters ({n_params}) for a residual")
    h_ns = 1e3 / (m - precision / 2) - 1e3 / m
    return float(math.sqrt(np.mean(h_ns ** 2 / 3.0) * (n - n_params) / n))

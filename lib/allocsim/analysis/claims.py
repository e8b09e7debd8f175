"""Every quantitative claim of the thread (``data/thread/claims.yaml``) held against the models.

:func:`evaluate` computes, for each claim id, the value the models give for the same quantity and
setup, and a status. The IOPS claims come from a :class:`allocsim.analysis.runs.Reproduction` (the six
configurations with the calibrated base cost); the microbenchmark claims are run here through chapter 4's
helper :func:`allocsim.analysis.microbench.microbench` (:func:`allocsim.kernel.program.microbench` programs through
:func:`allocsim.kernel.slub.run`), with chapter 4's stated assumptions for what the thread leaves open (a 64-CPU
machine, FIFO frees); the default sheaf capacity comes from :func:`allocsim.facts.kconfig.cache_geometry`. Nothing
is read from other chapters' notebooks.

**The status rule.** Each claim gets an interval from its own wording:

* a stated range (``low``..``high``, e.g. "3-4x") is the interval;
* a claim of *no* effect ("doesn't show any performance improvement", "did not show a noticeable
  difference", value 0 %) is ``|effect| <= threshold``: for IOPS, one step of the thread's precision
  (0.01M of the measured rate, about 0.84 %); for the microbenchmark, 5 % (half of the smallest effect,
  10 %, that the same author reported as an improvement);
* a point value qualified by "about" or "roughly" is the value ± 20 %;
* a bare point value is the value ± half a unit of its last digit (1.20M IOPS: ±0.005M; 26 objects:
  ±0.5).

Then a claim is **reproduced** if the modelled value lies in the interval; **partly** reproduced if it
lies in a wider band — for effects (%, ×): the same direction and within a factor of two of the interval
(for no-effect claims: below twice the threshold); for levels (M IOPS, objects): within one more step of
the stated precision (±0.015M; ±1.5 objects) — and **not reproduced** otherwise.

Where a claim's setup leaves something out that changes the model's answer (the number of threads of a
"multithreaded environment"), the model is evaluated over a stated range of it; the claim is reproduced
if every value in the range is, partly if some value reaches the interval or band, not reproduced if none
does — and the table says where it holds.

Two caveats the table carries per row: the six IOPS figures are also the calibration data (one fitted
parameter for six figures; see the chapter's leave-one-out), and setups the thread does not state are
assumptions, named in the ``how`` column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocsim.analysis import iops
from allocsim.facts import kconfig
from allocsim.kernel import slub
from allocsim.facts import thread
from allocsim.kernel import program as trace
from allocsim.facts.errors import AllocsimError
from allocsim.analysis import microbench

STATUSES = ("reproduced", "partly", "not reproduced")
#: Relative half-width of an interval for "about X" / "roughly X".
APPROX = 0.20
#: No-effect thresholds, in %: one 0.01M step of ~1.19M IOPS; half of the 10 % the author called an improvement.
NULL_IOPS_PCT = iops.PRECISION_MIOPS / float(thread.iops_figures()["miops"].mean()) * 100.0  # mean of the six figures (1.19M)
NULL_MICRO_PCT = 5.0
#: Half a unit of the last stated digit, for level claims.
HALF_UNIT = {"M IOPS": iops.PRECISION_MIOPS / 2, "objects": 0.5}
#: Microbenchmark object size where the thread does not state one (Fengnan: "When I tested 256-byte objects").
MICRO_OBJECT_SIZE = 256
#: Thread counts standing for "a multithreaded environment" (unstated in the thread; chapter 4 uses 8).
MULTI_THREADS = (2, 4, 8, 16)
#: CPUs of the machine the module benchmark ran on (unstated; sets the slab order) — chapter 4's default.
MICRO_MACHINE_CPUS = 64


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    band_lo: float  # the "partly" band
    band_hi: float
    basis: str  # which wording rule produced it

    def status(self, x: float) -> str:
        if self.lo <= x <= self.hi:
            return "reproduced"
        if self.band_lo <= x <= self.band_hi:
            return "partly"
        return "not reproduced"


def interval(claim: dict) -> Interval:
    """The interval and the partly band of one claim row (see the module docstring)."""
    v, unit, quote = float(claim["value"]), claim["unit"], claim["quote"]
    low, high = claim.get("low"), claim.get("high")
    is_effect = unit in ("%", "x")
    if low is not None and not pd.isna(low):
        lo, hi = float(low), float(high)
        return Interval(lo, hi, lo / 2, hi * 2, f"the stated range {lo:g}–{hi:g}")
    if is_effect and v == 0:
        thr = NULL_IOPS_PCT if "IOPS" in claim["quantity"] or "io_uring" in claim["setup"] else NULL_MICRO_PCT
        return Interval(-thr, thr, -2 * thr, 2 * thr, f"no effect: |effect| ≤ {thr:.2g} %")
    if re.search(r"\b(about|roughly)\b", quote):
        lo, hi = v * (1 - APPROX), v * (1 + APPROX)
        if is_effect:
            return Interval(lo, hi, lo / 2, hi * 2, f"“about {v:g}”: ±{APPROX:.0%}")
        h = abs(v) * APPROX
        return Interval(lo, hi, v - 2 * h, v + 2 * h, f"“about {v:g}”: ±{APPROX:.0%}")
    if unit in HALF_UNIT:
        h = HALF_UNIT[unit]
        return Interval(v - h, v + h, v - 3 * h, v + 3 * h, f"stated precision ±{h:g} {unit}")
    # a bare effect: half a unit of its last digit
    digits = len(str(v).split(".")[1].rstrip("0")) if "." in str(v) else 0
    h = 0.5 * 10 ** (-digits)
    return Interval(v - h, v + h, v / 2 if v > 0 else 2 * v, 2 * v if v > 0 else v / 2, f"stated precision ±{h:g}")


def microbench_cycles(kernel: str, k: int, threads: int, sheaf_capacity: int | None, object_size: int = MICRO_OBJECT_SIZE,
                      rounds: tuple[int, int] | None = None, costs=None, seed: int = 0,
                      machine_cpus: int = MICRO_MACHINE_CPUS) -> float:
    """Cycles per alloc+free pair (one thread's view, lock waiting included) of the thread's module
    benchmark on a dedicated ``kmem_cache`` — each thread allocates ``k`` objects then frees them — in the
    steady state: chapter 4's :func:`allocsim.analysis.microbench.microbench` (difference of runs of ``rounds[1]``
    and ``rounds[0]`` rounds; ``None``: chapter 4's own choice)."""
    kw = {} if rounds is None else {"rounds": rounds}
    return float(microbench.microbench(kernel, k, threads, sheaf_capacity, object_size=object_size,
                                       machine_cpus=max(machine_cpus, threads), seed=seed, costs=costs, **kw)["cycles"])


def _improvement(t_before: float, t_after: float) -> float:
    """Time saved, in % of the slower: "a roughly 10% improvement in time spent"."""
    return (t_before - t_after) / t_before * 100.0


def _fmt(x: float, unit: str) -> str:
    if unit == "M IOPS":
        return f"{x:.4f}M"
    if unit == "x":
        return f"{x:.2f}×"
    if unit == "%":
        return f"{x:+.2f} %"
    return f"{x:g} {unit}"


def _claimed(c: dict) -> str:
    unit = c["unit"]
    if c.get("low") is not None and not pd.isna(c["low"]):
        return f"{c['low']:g}–{c['high']:g}{'×' if unit == 'x' else ' ' + unit}"
    if unit == "M IOPS":
        return f"{c['value']:.2f}M"
    if unit == "x":
        return f"{c['value']:g}×"
    return f"{c['value']:g} {unit}" if unit != "%" else f"{c['value']:g} %"


def aggregate(statuses) -> str:
    """The status of a claim evaluated over a range of an unstated setting: reproduced if it is at every
    value, partly if at least one value reaches the interval or the partly band, else not reproduced."""
    statuses = list(statuses)
    if not statuses or any(s not in STATUSES for s in statuses):
        raise AllocsimError(f"statuses must be a non-empty list drawn from {STATUSES}, not {statuses!r}")
    if all(s == "reproduced" for s in statuses):
        return "reproduced"
    return "partly" if any(s != "not reproduced" for s in statuses) else "not reproduced"


def _where(xs, values, iv: Interval, what: str) -> str:
    """Where along ``xs`` the modelled ``values`` are in the interval, or between which two they cross it."""
    inside = [x for x, v in zip(xs, values) if iv.lo <= v <= iv.hi]
    if inside:
        return f"in the interval at {', '.join(map(str, inside))} {what}"
    for (x0, v0), (x1, v1) in zip(zip(xs, values), zip(xs[1:], values[1:])):
        if min(v0, v1) < iv.lo and max(v0, v1) > iv.hi:
            return f"crosses the interval between {x0} and {x1} {what}"
    return f"in the interval at none of {', '.join(map(str, xs))} {what}"


def evaluate(rep, multi_threads=MULTI_THREADS, rounds: tuple[int, int] | None = None, costs=None) -> pd.DataFrame:
    """One row per claim of ``data/thread/claims.yaml``: the claim, the modelled value, the interval,
    the status and how the model was run. ``rep`` is the chapter's :class:`~allocsim.analysis.runs.Reproduction`.
    Raises :class:`AllocsimError` for a claim id this module does not know how to evaluate (so a new
    claim cannot silently go untested)."""
    claims = thread.claims()
    costs = rep.setup.costs() if costs is None else costs
    multi_threads = tuple(multi_threads)
    if not multi_threads or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 2 for t in multi_threads):
        raise AllocsimError(f"multi_threads must be thread counts >= 2, not {multi_threads!r}")
    cap_default = kconfig.cache_geometry(MICRO_OBJECT_SIZE, MICRO_MACHINE_CPUS, "7.0", kmalloc=False).sheaf_capacity
    cache = {}

    def mb(kernel, k, threads, cap):
        key = (kernel, k, threads, cap)
        if key not in cache:
            cache[key] = microbench_cycles(kernel, k, threads, cap, rounds=rounds, costs=costs)
        return cache[key]

    fitted = {f"{k} {a}" for k, a in rep.on}
    rows = []
    for c in claims.to_dict("records"):
        cid = c["id"]
        iv = interval(c)
        values: list[float]
        note = ""
        if c["unit"] == "M IOPS":
            kernel = kconfig.check_version(c["kernel"])
            values = [rep.predicted_miops(kernel, c["allocator"])]
            how = f"io_uring model {rep.setup.t_io_uring()}, {kernel} {c['allocator']}, base cost calibrated on {'all six' if len(rep.on) == 6 else ', '.join(sorted(fitted))}"
            if f"{kernel} {c['allocator']}" in fitted:
                note = "also calibration data" if len(rep.on) > 1 else "the calibration target (reproduced by construction)"
        elif cid == "patch-gain":
            values = [iops.gain_pct(rep.predicted_miops("6.19", "per-CPU list"), rep.predicted_miops("6.19", "kmalloc"))]
            how = "predicted IOPS, per-CPU list vs kmalloc on 6.19 (the kernel the v3 patch was written against [I])"
        elif cid == "sheaf-70rc3-io":
            values = [iops.gain_pct(rep.predicted_miops("7.0", "sheaf-256"), rep.predicted_miops("7.0", "kmalloc"))]
            how = "predicted IOPS, dedicated cache with sheaf_capacity 256 vs kmalloc on 7.0"
        elif cid == "module-10pct":
            values = [_improvement(mb("6.19", 32, 1, None), mb("6.19", 32, 1, 256))]
            how = (f"6.19, {MICRO_OBJECT_SIZE}-byte objects, K=32, 1 thread, {MICRO_MACHINE_CPUS}-CPU machine: a cache "
                   "without sheaves vs sheaf_capacity 256 (capacity, size and machine not stated for this test)")
        elif cid == "default-capacity-26":
            values = [float(cap_default)]
            how = f"calculate_sheaf_capacity() of 7.0 for s->size {MICRO_OBJECT_SIZE} (base tier {kconfig.sheaf_capacity_base(MICRO_OBJECT_SIZE)}, rounded to fill a kmalloc bucket)"
        elif cid == "k32-no-difference":
            values = [_improvement(mb("7.0", 32, 1, None), mb("7.0", 32, 1, 256))]
            how = f"7.0, {MICRO_OBJECT_SIZE}-byte objects, K=32, 1 thread: default capacity ({cap_default}) vs 256"
        elif cid == "k128-single":
            values = [_improvement(mb("7.0", 128, 1, None), mb("7.0", 128, 1, 256))]
            how = f"7.0, {MICRO_OBJECT_SIZE}-byte objects, K=128, 1 thread: default capacity ({cap_default}) vs 256"
        elif cid == "k128-multithread":
            values = [mb("7.0", 128, t, None) / mb("7.0", 128, t, 256) for t in multi_threads]
            how = (f"7.0, {MICRO_OBJECT_SIZE}-byte objects, K=128, default capacity ({cap_default}) vs 256, one node; "
                   f"threads not stated: {', '.join(map(str, multi_threads))}")
        else:
            raise AllocsimError(f"claims_check does not know how to evaluate claim {cid!r} (data/thread/claims.yaml); add it to claims_check.evaluate")
        statuses = [iv.status(v) for v in values]
        if len(values) == 1:
            status = statuses[0]
            modelled = _fmt(values[0], c["unit"])
        else:
            status = aggregate(statuses)
            modelled = " / ".join(_fmt(v, c["unit"]) for v in values)
            note = _where(multi_threads, values, iv, "threads")
        rows.append({"id": cid, "quantity": c["quantity"] + (f", {c['allocator']}" if c["allocator"] else ""),
                     "kernel": c["kernel"], "claimed": _claimed(c), "modelled": modelled,
                     "interval": f"{_fmt(iv.lo, c['unit'])} … {_fmt(iv.hi, c['unit'])} ({iv.basis})",
                     "status": status, "how": how, "note": note, "value": values[0] if len(values) == 1 else np.nan,
                     "values": values})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> dict:
    """How many claims have each status."""
    return {s: int((df["status"] == s).sum()) for s in STATUSES}


_DEFAULT: dict = {}


def statuses() -> dict[str, str]:
    """``{claim_id: status}`` for the book's default setup (chapter 5's default reproduction), computed
    once per process — the one status per claim the landing page shows. (Interim: helper content2's
    unified evaluator provides this same public function; keep theirs at merge.)"""
    if "table" not in _DEFAULT:
        from allocsim.analysis import runs

        _DEFAULT["table"] = evaluate(runs.reproduce())
    return dict(zip(_DEFAULT["table"]["id"], _DEFAULT["table"]["status"]))

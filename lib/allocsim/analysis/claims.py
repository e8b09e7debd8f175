"""Every quantitative claim of the thread (``data/thread/claims.yaml``) held against the models — the
book's one claims evaluator.

:func:`evaluate` computes, for each claim id, the value the models give for the same quantity and
setup, and a status. The IOPS claims come from a :class:`allocsim.analysis.runs.Reproduction` (the six
configurations with the calibrated base cost); the five microbenchmark claims (:func:`micro_claims`) are
run through :func:`allocsim.analysis.microbench.microbench` with a :class:`MicroSetup` — what the thread
leaves open (object size, free order, the machine's CPUs, the thread counts of "a multithreaded
environment"), chapter 4's defaults unless a page passes its own; the default sheaf capacity comes from
:func:`allocsim.facts.kconfig.cache_geometry`. The microbenchmark runs with the memory hierarchy of
:mod:`allocsim.kernel.memory` (``MicroSetup.hierarchy``, on by default: the book's model); :func:`evaluate`
runs it with the hierarchy switch and clock of the reproduction it is given, so one model state answers
every claim. Chapter 4 shows :func:`micro_claims` for its parameters,
chapter 5 shows :func:`evaluate`, and the landing page asks :func:`statuses` (``{claim_id: status}``,
computed once per process for the default setup; :func:`status_details` adds the values behind each).
With default parameters all three therefore give every claim the same status.

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
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from allocsim.analysis import iops
from allocsim.facts import kconfig
from allocsim.facts import steps as _steps
from allocsim.facts import thread
from allocsim.facts.errors import AllocsimError
from allocsim.analysis import microbench
from allocsim.analysis import runs

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


@dataclass(frozen=True)
class MicroSetup:
    """How the thread's kernel-module benchmark is run where the thread leaves it open — one setup for
    chapter 4 (built from its parameters), chapter 5 and the landing page (the defaults below, which are
    chapter 4's defaults). ``threads`` is the range standing for "a multithreaded environment"."""

    object_size: int = MICRO_OBJECT_SIZE
    capacity: int = 256  # the explicit sheaf_capacity of the thread's tests
    k_small: int = 32
    k_large: int = 128
    threads: tuple = MULTI_THREADS
    free_order: str = "fifo"
    machine_cpus: int = MICRO_MACHINE_CPUS
    cpus_per_node: int | None = None
    seed: int = 0
    rounds: tuple | None = None  # None: microbench.MICRO_ROUNDS
    hooks: object = None  # cost model v2's hot-path switches (allocsim.facts.steps.Hooks; None: the distribution defaults)
    steps: str = "default"  # the step file ("v1": the charges before cost model v2)
    hierarchy: bool = True  # the memory hierarchy of allocsim.kernel.memory (the book's model); False: flat l1_hit loads
    clock_ghz: float = 3.0  # the clock the hierarchy's nanosecond latencies become cycles at

    def validate(self) -> "MicroSetup":
        t = tuple(self.threads)
        if not t or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 2 for x in t):
            raise AllocsimError(f"multi_threads must be thread counts >= 2, not {t!r}")
        if not isinstance(self.hierarchy, (bool, np.bool_)):
            raise AllocsimError(f"hierarchy must be true or false, not {self.hierarchy!r}")
        c = self.clock_ghz
        if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)) or not np.isfinite(c) or c <= 0:
            raise AllocsimError(f"clock_ghz must be a finite number > 0, not {c!r}")
        return self

    def cycles(self, kernel: str, k: int, threads: int, capacity: int | None, costs=None) -> float:
        """Cycles per alloc+free pair (:func:`allocsim.analysis.microbench.microbench`), memoised."""
        key = None if costs is None else tuple(costs.vector)
        return _bench(self.object_size, self.free_order, self.machine_cpus, self.cpus_per_node, self.seed,
                      self.rounds, kernel, int(k), int(threads), capacity, key, costs, self.hooks, self.steps,
                      bool(self.hierarchy), float(self.clock_ghz))

    def improvement(self, kernel: str, k: int, capacity_before: int | None, costs=None) -> float:
        """One thread: % of time saved by ``capacity`` over ``capacity_before`` (None: the kernel's default)."""
        return microbench.improvement(self.cycles(kernel, k, 1, capacity_before, costs),
                                      self.cycles(kernel, k, 1, self.capacity, costs))

    def speedup(self, k: int, threads: int, costs=None) -> float:
        """7.0, ``threads`` threads: the default cache's time over the ``capacity`` cache's."""
        return self.cycles("7.0", k, threads, None, costs) / self.cycles("7.0", k, threads, self.capacity, costs)


_BENCH: dict = {}


def _bench(object_size, free_order, machine_cpus, cpus_per_node, seed, rounds, kernel, k, threads, capacity,
           costs_key, costs, hooks=None, steps="default", hierarchy=True, clock_ghz=3.0) -> float:
    key = (object_size, free_order, machine_cpus, cpus_per_node, seed, rounds, kernel, k, threads, capacity, costs_key,
           _steps.Hooks.of(hooks), steps, hierarchy, clock_ghz)
    if key not in _BENCH:
        kw = {} if rounds is None else {"rounds": tuple(rounds)}
        _BENCH[key] = float(microbench.microbench(kernel, k, threads, capacity, object_size=object_size,
                                                  free_order=free_order, machine_cpus=max(machine_cpus, threads),
                                                  cpus_per_node=cpus_per_node, seed=seed, costs=costs,
                                                  hooks=hooks, steps=steps, hierarchy=hierarchy,
                                                  clock_ghz=clock_ghz, **kw)["cycles"])
    return _BENCH[key]


def microbench_cycles(kernel: str, k: int, threads: int, sheaf_capacity: int | None, object_size: int = MICRO_OBJECT_SIZE,
                      rounds: tuple[int, int] | None = None, costs=None, seed: int = 0,
                      machine_cpus: int = MICRO_MACHINE_CPUS, hierarchy: bool = True) -> float:
    """Cycles per alloc+free pair (one thread's view, lock waiting included) of the thread's module
    benchmark on a dedicated ``kmem_cache`` — each thread allocates ``k`` objects then frees them — in the
    steady state (:func:`allocsim.analysis.microbench.microbench`; ``rounds`` None: its default)."""
    ms = MicroSetup(object_size=object_size, machine_cpus=machine_cpus, seed=seed, rounds=rounds, hierarchy=hierarchy)
    return ms.cycles(kernel, k, threads, sheaf_capacity, costs)


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


def where(xs, values, iv: Interval, what: str) -> str:
    """Where along ``xs`` the modelled ``values`` are in the interval, or between which two they cross it."""
    inside = [x for x, v in zip(xs, values) if iv.lo <= v <= iv.hi]
    if inside:
        return f"in the interval at {', '.join(map(str, inside))} {what}"
    for (x0, v0), (x1, v1) in zip(zip(xs, values), zip(xs[1:], values[1:])):
        if min(v0, v1) < iv.lo and max(v0, v1) > iv.hi:
            return f"crosses the interval between {x0} and {x1} {what}"
    return f"in the interval at none of {', '.join(map(str, xs))} {what}"


_where = where  # the old private name


#: The microbenchmark claims, evaluated by :func:`micro_claims` (chapter 4's table is exactly these rows).
MICRO_CLAIMS = ("default-capacity-26", "k32-no-difference", "k128-single", "k128-multithread", "module-10pct")


def _micro_row(cid: str, ms: MicroSetup, costs) -> tuple[list, list, str, str]:
    """(xs, values, setup in words, how) of one microbenchmark claim; xs is the thread range for the
    multithreaded claim, else ``[None]``."""
    size, cap = ms.object_size, ms.capacity
    geo = kconfig.cache_geometry(size, ms.machine_cpus, "7.0", kmalloc=False)
    base = kconfig.sheaf_capacity_base(geo.size)
    assumed = (f"{size}-byte objects, {ms.free_order} frees, {ms.machine_cpus}-CPU machine")
    if cid == "default-capacity-26":
        return ([None], [float(geo.sheaf_capacity)], f"7.0 calculate_sheaf_capacity(), s->size {geo.size} (base tier {base})",
                f"calculate_sheaf_capacity() of 7.0 for s->size {geo.size} (base tier {base}, rounded to fill a kmalloc bucket)")
    if cid == "k32-no-difference":
        return ([None], [ms.improvement("7.0", ms.k_small, None, costs)],
                f"7.0, K={ms.k_small}, 1 thread: default ({geo.sheaf_capacity}) vs capacity {cap}",
                f"7.0, {assumed}, K={ms.k_small}, 1 thread: default capacity ({geo.sheaf_capacity}) vs {cap}")
    if cid == "k128-single":
        return ([None], [ms.improvement("7.0", ms.k_large, None, costs)],
                f"7.0, K={ms.k_large}, 1 thread: default ({geo.sheaf_capacity}) vs capacity {cap}",
                f"7.0, {assumed}, K={ms.k_large}, 1 thread: default capacity ({geo.sheaf_capacity}) vs {cap}")
    if cid == "k128-multithread":
        xs = list(ms.threads)
        return (xs, [ms.speedup(ms.k_large, t, costs) for t in xs],
                f"7.0, K={ms.k_large}, {', '.join(map(str, xs))} threads: default ({geo.sheaf_capacity}) vs capacity {cap}",
                f"7.0, {assumed}, K={ms.k_large}, default capacity ({geo.sheaf_capacity}) vs {cap}, one node; "
                f"threads not stated: {', '.join(map(str, xs))}")
    if cid == "module-10pct":
        return ([None], [ms.improvement("6.19", ms.k_small, None, costs)],
                f"6.19, K={ms.k_small}, 1 thread: no sheaves vs capacity {cap}",
                f"6.19, {assumed}, K={ms.k_small}, 1 thread: a cache without sheaves vs sheaf_capacity {cap} "
                "(capacity, size and machine not stated for this test)")
    raise AllocsimError(f"analysis.claims does not know how to evaluate claim {cid!r} (data/thread/claims.yaml); "
                        "add it to analysis.claims")


def _row(c: dict, xs: list, values: list, setup: str, how: str, note: str = "") -> dict:
    iv = interval(c)
    statuses = [iv.status(v) for v in values]
    if len(values) == 1:
        status, modelled = statuses[0], _fmt(values[0], c["unit"])
    else:
        status = aggregate(statuses)
        modelled = " / ".join(f"{_fmt(v, c['unit'])} ({x})" for x, v in zip(xs, values))
        note = where(xs, values, iv, "threads")
    return {"id": c["id"], "label": c["quantity"] + (f", {c['allocator']}" if c.get("allocator") else ""),
            "quantity": c["quantity"] + (f", {c['allocator']}" if c.get("allocator") else ""),
            "kernel": c["kernel"], "quote": c["quote"], "claimed": _claimed(c), "modelled": modelled, "setup": setup,
            "interval": f"{_fmt(iv.lo, c['unit'])} … {_fmt(iv.hi, c['unit'])} ({iv.basis})", "rule": iv.basis,
            "status": status, "how": how, "note": note,
            "value": values[0] if len(values) == 1 else np.nan, "values": values}


def micro_claims(micro: MicroSetup = MicroSetup(), costs=None) -> pd.DataFrame:
    """The five microbenchmark claims (:data:`MICRO_CLAIMS`) for ``micro``: one row each, columns as
    :func:`evaluate` plus ``setup`` (the run in a few words)."""
    micro.validate()
    c = thread.claims().set_index("id", drop=False)
    rows = []
    for cid in MICRO_CLAIMS:
        xs, values, setup, how = _micro_row(cid, micro, costs)
        rows.append(_row(c.loc[cid].to_dict(), xs, values, setup, how))
    return pd.DataFrame(rows)


def evaluate(rep, multi_threads=None, rounds: tuple[int, int] | None = None, costs=None,
             micro: MicroSetup | None = None) -> pd.DataFrame:
    """One row per claim of ``data/thread/claims.yaml``: the claim, the modelled value, the interval,
    the status and how the model was run. ``rep`` is the chapter's :class:`~allocsim.analysis.runs.Reproduction`;
    the microbenchmark claims are :func:`micro_claims` of ``micro`` (default :class:`MicroSetup` with the
    hook switches and step file of ``rep.setup``, so one model state answers every claim; with
    ``multi_threads`` and ``rounds`` if given). Raises :class:`AllocsimError` for a claim id this module
    does not know how to evaluate (so a new claim cannot silently go untested)."""
    claims = thread.claims()
    costs = rep.setup.costs() if costs is None else costs
    micro = micro or MicroSetup(hooks=rep.setup.hooks, steps=rep.setup.steps,
                                hierarchy=bool(getattr(rep.setup, "hierarchy", True)), clock_ghz=float(rep.clock_ghz))
    if multi_threads is not None:
        micro = replace(micro, threads=tuple(multi_threads))
    if rounds is not None:
        micro = replace(micro, rounds=tuple(rounds))
    micro.validate()
    fitted = {f"{k} {a}" for k, a in rep.on}
    rows = []
    for c in claims.to_dict("records"):
        cid = c["id"]
        note = ""
        if c["unit"] == "M IOPS":
            kernel = kconfig.check_version(c["kernel"])
            values = [rep.predicted_miops(kernel, c["allocator"])]
            how = (f"io_uring model {rep.setup.t_io_uring()}, {kernel} {c['allocator']}, base cost calibrated on "
                   f"{'all six' if len(rep.on) == 6 else ', '.join(sorted(fitted))}")
            if f"{kernel} {c['allocator']}" in fitted:
                note = "also calibration data" if len(rep.on) > 1 else "the calibration target (reproduced by construction)"
            rows.append(_row(c, [None], values, f"{kernel} {c['allocator']}", how, note))
        elif cid == "patch-gain":
            values = [iops.gain_pct(rep.predicted_miops("6.19", "per-CPU list"), rep.predicted_miops("6.19", "kmalloc"))]
            how = "predicted IOPS, per-CPU list vs kmalloc on 6.19 (the kernel the v3 patch was written against [I])"
            rows.append(_row(c, [None], values, "6.19 per-CPU list vs kmalloc", how))
        elif cid == "sheaf-70rc3-io":
            values = [iops.gain_pct(rep.predicted_miops("7.0", "sheaf-256"), rep.predicted_miops("7.0", "kmalloc"))]
            how = (f"predicted IOPS, dedicated cache with sheaf_capacity {rep.setup.sheaf_capacity} vs kmalloc on 7.0")
            rows.append(_row(c, [None], values, "7.0 sheaf-256 vs kmalloc", how))
        else:
            xs, values, setup, how = _micro_row(cid, micro, costs)
            rows.append(_row(c, xs, values, setup, how))
    return pd.DataFrame(rows)


def status_phrase(status: str) -> str:
    """A status as prose says it: ``reproduced``, ``partly reproduced``, ``not reproduced``."""
    if status not in STATUSES:
        raise AllocsimError(f"status must be one of {STATUSES}, not {status!r}")
    return "partly reproduced" if status == "partly" else status


@dataclass(frozen=True)
class ClaimStatus:
    """One claim's status with what it rests on (see :func:`status_details`)."""

    id: str
    label: str
    status: str
    claimed: str
    modelled: str
    rule: str
    note: str


def status_details(rep=None, micro: MicroSetup | None = None) -> dict[str, ClaimStatus]:
    """``{claim_id: ClaimStatus}`` — :func:`evaluate` in a form other pages can show. ``rep`` None: the
    book's default :func:`allocsim.analysis.runs.reproduce` (memoised, so every page that asks gets the
    same statuses from one computation)."""
    df = _default_table() if rep is None and micro is None else evaluate(rep if rep is not None else _default_rep(),
                                                                           micro=micro)
    return {r["id"]: ClaimStatus(r["id"], r["label"], r["status"], r["claimed"], r["modelled"], r["rule"], r["note"])
            for r in df.to_dict("records")}


def statuses(rep=None, micro: MicroSetup | None = None) -> dict[str, str]:
    """``{claim_id: status}`` for every claim of ``data/thread/claims.yaml``, each status one of
    :data:`STATUSES`, by the rule of this module's docstring — the one status a claim has everywhere in
    the book (chapters 4 and 5 and the landing page all read it from here). With no arguments: the book's
    default setup (chapter 5's default :class:`~allocsim.analysis.runs.Reproduction` and the default
    :class:`MicroSetup`), computed once per process. :func:`status_details` gives the values behind each."""
    return {k: v.status for k, v in status_details(rep, micro).items()}


_DEFAULT: dict = {}


def _default_rep():
    if "rep" not in _DEFAULT:
        _DEFAULT["rep"] = runs.reproduce()
    return _DEFAULT["rep"]


def _default_table() -> pd.DataFrame:
    if "table" not in _DEFAULT:
        _DEFAULT["table"] = evaluate(_default_rep())
    return _DEFAULT["table"]


def summary(df: pd.DataFrame) -> dict:
    """How many claims have each status."""
    return {s: int((df["status"] == s).sum()) for s in STATUSES}

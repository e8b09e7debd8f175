"""Chapter 5's arithmetic ("Reproducing the IOPS comparison"), one function per section.

Each function takes the chapter's :class:`allocsim.analysis.runs.Reproduction` (and, where it needs them,
the :class:`allocsim.analysis.runs.Setup`, the kernel and allocator the page examines) and returns a
small frozen dataclass; the chapter glues every field under its own name
(:func:`allocsim.pages.glue.glue_all`), so the prose pastes numbers by name. Where the *wording* of
a sentence depends on the sign or size of a number, a small function here returns that clause (the
``*_words`` functions); they are unit-tested branch by branch.

Kernels are the models' names (``"6.19"``, ``"7.0"``); the page maps ``"7.0"`` to the thread's
"7.0-rc4".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocsim.analysis import agreement
from allocsim.analysis import iops
from allocsim.analysis import runs
from allocsim.facts import kconfig
from allocsim.facts import thread
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import pcpu_list

PCPU = "per-CPU list"
H = iops.PRECISION_MIOPS / 2  # half a step of the thread's precision


def _ns(miops: float) -> float:
    return 1e3 / miops


# ---- the setting ------------------------------------------------------------------------------------

#: What the thread gives of the benchmark's command line: nothing. The page models a t/io_uring run whose
#: queue depth and batches are t/io_uring's own defaults (fio ``t/io_uring.c``: ``DEPTH`` 128,
#: ``BATCH_SUBMIT`` 32, ``BATCH_COMPLETE`` 32), with interrupt completions and one submitter.
ASSUMED = runs.Setup()


@dataclass(frozen=True)
class Setting:
    """The workload and caches as the page's prose describes them, all from the parameters."""

    t_opts: str  # the t/io_uring options modelled
    assumed: bool  # the book's default command line
    completion: str  # where the completion frees iomap_dio, in words (completion_words)
    submitters: int
    kmalloc_cache: str  # the kmalloc cache of sizeof(struct iomap_dio)
    fallback_cache: str  # the per-CPU list's kmalloc fallback (object + its 8-byte header)
    object_size: int
    sheaf_capacity: int
    default_capacity_70: int  # 7.0's default sheaf capacity of the kmalloc cache


def setting(setup: runs.Setup) -> Setting:
    size = setup.object_size
    fb = size + pcpu_list.header_size()
    ncpu = setup.workload(0).n_cpus
    geo = kconfig.cache_geometry(size, ncpu, "7.0", kmalloc=True)
    same = all(getattr(setup, f) == getattr(ASSUMED, f) for f in
               ("queue_depth", "submit_batch", "complete_batch", *runs.TOPOLOGY, "placement", "completion", "submitters",
                "cross_cpu_share"))
    return Setting(setup.t_io_uring(), same, completion_words(setup), setup.submitters, kconfig.kmalloc_cache_name(size),
                   kconfig.kmalloc_cache_name(fb), size, setup.sheaf_capacity, geo.sheaf_capacity)


def completion_words(setup: runs.Setup) -> str:
    """Where the completion frees ``iomap_dio``, in words, with the t/io_uring switch: the contexts blk-mq's
    placement gives the setup's topology (one when a single share is 1, else each share)."""
    sh = setup.completion_shares()
    words = {"hardirq": "in interrupt context (`-p0`)", "task": "in task context, polled by the submitter (`-p1`)",
             "softirq": "in softirq context (`BLOCK_SOFTIRQ`)"}
    used = [(sh[k], w) for k, w in words.items() if sh[k] > 0]
    text = used[0][1] if len(used) == 1 else "; ".join(f"{100 * x:.0f} % {w}" for x, w in used)
    if sh["other_cpu"] > 0:
        text += f", {100 * sh['other_cpu']:.0f} % of them on another CPU than the submitter's"
    return text


def submitters_words(n: int) -> str:
    """``With {…}, the time per IO …``."""
    return "one CPU-bound submitter" if n == 1 else f"{n} CPU-bound submitters, one CPU each (IOPS per submitter)"


def command_words(s: Setting) -> str:
    """Whose command line the page models."""
    return ("the book's reading of the benchmark" if s.assumed else
            "this page's parameters, not the book's default reading of the benchmark "
            f"(`t/io_uring {ASSUMED.t_io_uring()}`)")


# ---- one step of the thread's precision ---------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """The two reported 7.0-rc4 figures one 0.01M step apart (sheaf-256 and the per-CPU list)."""

    lo_fig: float
    hi_fig: float
    step_ns: float  # time per IO between them
    half_step_ns: float  # the rounding half-step at lo_fig, in ns per IO
    step_pct: float  # one 0.01M step in % of lo_fig
    gap_pct: float  # hi over lo, %


def step() -> Step:
    rm = runs.reported_miops()
    hi, lo = float(rm[("7.0", PCPU)]), float(rm[("7.0", "sheaf-256")])
    return Step(lo, hi, _ns(lo) - _ns(hi), _ns(lo - H) - _ns(lo), iops.PRECISION_MIOPS / lo * 100, iops.gain_pct(hi, lo))


# ---- what the allocator costs per IO ------------------------------------------------------------------

@dataclass(frozen=True)
class CostsPerIO:
    fast_free_619: float  # % of 6.19 kmalloc frees on the cpu slab's fast path
    fast_alloc_619: float  # % of 6.19 kmalloc allocations on it
    pcpu_hit: float  # % of 7.0 per-CPU list allocations served from its own lists
    kmalloc_gain_abs: float  # |6.19 − 7.0| kmalloc cycles per IO
    kmalloc_cheaper_70: bool  # 7.0 kmalloc costs no more than 6.19's


def costs_per_io(rep: runs.Reproduction) -> CostsPerIO:
    r619 = rep.runs[("6.19", "kmalloc")]
    frees = sum(c for p, (c, _) in r619.paths.items() if p.startswith("free_"))
    ff = 100 * r619.paths.get("free_fastpath", (0, 0))[0] / frees if frees else 0.0
    fa = 100 * r619.paths.get("alloc_fastpath", (0, 0))[0] / r619.ios
    lst = rep.runs[("7.0", PCPU)]
    hit = 100 * (lst.stats["alloc_hit"] + lst.stats["alloc_splice"]) / lst.ios
    cyc = rep.alloc_cycles
    kg = cyc[("6.19", "kmalloc")] - cyc[("7.0", "kmalloc")]
    return CostsPerIO(ff, fa, hit, abs(kg), kg >= 0)


def hit_words(pcpu_hit: float, fallback_cache: str) -> str:
    """The clause after "serves N % of the allocations from its own lists"."""
    return (", so the kmalloc underneath hardly matters." if pcpu_hit >= 95 else
            f"; the rest go to {fallback_cache}, so here the kernel underneath matters.")


# ---- the fit --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit:
    n_iter: int
    base_ns: float
    base_cycles: int
    n_params: int
    n_ok: int  # predictions that round to the reported figure
    max_resid: float
    rms_now: float
    missed: tuple  # ((kernel, allocator, predicted M IOPS, reported M IOPS, residual ns), …)


def fit(rep: runs.Reproduction) -> Fit:
    t = rep.table
    missed = tuple((r["kernel"], r["allocator"], r["predicted M IOPS"], r["reported M IOPS"], r["residual ns/IO"])
                   for r in t[~t["rounds to reported"]].to_dict("records"))
    return Fit(len(rep.iterations), rep.calibration.base_ns, rep.base_cycles, rep.calibration.n_params,
               int(t["rounds to reported"].sum()), float(t["residual ns/IO"].abs().max()),
               float(np.sqrt((t["residual ns/IO"] ** 2).mean())), missed)


def clock_profile(rep: runs.Reproduction, clocks=None) -> pd.DataFrame:
    """RMS residual (ns per IO) of the one-parameter fit for other clocks, with the allocator cycles of
    ``rep`` (they depend on the clock only through the base cost in the workload)."""
    clocks = np.round(np.arange(1.5, 5.01, 0.1), 2) if clocks is None else clocks
    rows = []
    for g in clocks:
        t, cal = iops.table(runs.reported_miops(), rep.alloc_cycles, float(g), on=rep.on)
        rows.append({"clock_ghz": float(g), "rms_ns": float(np.sqrt((t["residual ns/IO"] ** 2).mean())),
                     "rounding": int(t["rounds to reported"].sum()), "base_ns": cal.base_ns})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ClockCheck:
    best_clock: float
    rms_best: float
    rms_now: float
    rms_noise: float  # what the rounding of the figures alone leaves: a perfect model's median RMS
    prefers_other_clock: bool  # fitting the clock would gain more than the rounding explains


def clock_check(rep: runs.Reproduction, profile: pd.DataFrame) -> ClockCheck:
    best = profile.loc[profile["rms_ns"].idxmin()]
    now = fit(rep).rms_now
    noise = agreement.spread(agreement.perfect_fit_rms(rep.table["reported M IOPS"], rep.table["fitted on"].to_numpy(bool))).median
    return ClockCheck(float(best["clock_ghz"]), float(best["rms_ns"]), now, noise, now - float(best["rms_ns"]) >= noise)


def clock_words(prefers_other_clock: bool) -> str:
    return ("Here the improvement exceeds what the rounding explains: the data would prefer another clock. The page "
            "still fits only the base; set `clock_ghz` to see the predictions at another clock."
            if prefers_other_clock else
            "A second fitted parameter would only fit the rounding, so the clock stays a stated parameter.")


# ---- leave one out --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeaveOneOut:
    loo_ok: int
    loo_n: int
    loo_max: float
    loo_base_lo: float
    loo_base_hi: float
    lo_on: tuple  # targets ("kernel allocator") whose fit gives the lowest base
    hi_on: tuple
    far_base_ns: float  # the single-target base furthest from the main fit's
    best: tuple  # ((target, others reproduced), …) for the targets that reproduce the most
    loo_rerun_delta: float = 0.0  # max change of any configuration's cycles per IO when re-run at far_base_ns


def leave_one_out(rep: runs.Reproduction, rerun: bool = True) -> tuple[pd.DataFrame, LeaveOneOut]:
    """:func:`allocsim.analysis.iops.leave_one_out` and its summary; with ``rerun`` the six runs are
    repeated at the most different base to show how little the allocator cycles depend on it."""
    loo = iops.leave_one_out(runs.reported_miops(), rep.alloc_cycles, rep.clock_ghz)
    bases = loo.groupby("calibrated on")["base ns"].first()
    far = float(bases.iloc[int(np.argmax(np.abs(bases.values - rep.calibration.base_ns)))])
    per = loo.groupby("calibrated on")["rounds to reported"].sum()
    delta = 0.0
    if rerun:
        far_runs = runs.run_all(rep.setup, int(round(far * rep.clock_ghz)))
        delta = float((runs.cycles_series(far_runs) - rep.alloc_cycles).abs().max())
    return loo, LeaveOneOut(
        int(loo["rounds to reported"].sum()), len(loo), float(loo["residual ns/IO"].abs().max()),
        float(bases.min()), float(bases.max()), tuple(bases.index[np.isclose(bases, bases.min())]),
        tuple(bases.index[np.isclose(bases, bases.max())]), far,
        tuple((k, int(v)) for k, v in per.items() if v == per.max()), delta)


def change_words(delta: float, unit: str = "cycles per IO") -> str:
    """"changes no configuration by more than 0.00 cycles" said sensibly."""
    if round(delta, 2) == 0:
        return "changes no configuration's cost at all (to two decimals)"
    return f"changes no configuration by more than {delta:.2f} {unit}"


# ---- the derived gains ----------------------------------------------------------------------------------

#: The gains the thread's argument rests on: key, label, numerator and denominator configuration, and the
#: claim of data/thread/claims.yaml that states it (or None).
GAINS = (
    ("patch", "per-CPU list over kmalloc, 6.19", ("6.19", PCPU), ("6.19", "kmalloc"), "patch-gain"),
    ("pcpu_70", "per-CPU list over kmalloc, 7.0", ("7.0", PCPU), ("7.0", "kmalloc"), None),
    ("km", "kmalloc 7.0 over kmalloc 6.19", ("7.0", "kmalloc"), ("6.19", "kmalloc"), None),
    ("sheaf_619", "sheaf-256 over kmalloc, 6.19", ("6.19", "sheaf-256"), ("6.19", "kmalloc"), None),
    ("pcpu_sheaf_70", "per-CPU list over sheaf-256, 7.0", ("7.0", PCPU), ("7.0", "sheaf-256"), None),
)


def span(a: tuple, b: tuple, reported: pd.Series | None = None) -> tuple[float, float]:
    """The gain of ``a`` over ``b`` (%) that the reported figures allow, each anywhere within its rounding."""
    rm = runs.reported_miops() if reported is None else reported
    return iops.gain_pct(rm[a] - H, rm[b] + H), iops.gain_pct(rm[a] + H, rm[b] - H)


def gains_table(rep: runs.Reproduction, statuses: dict) -> pd.DataFrame:
    """One row per gain of :data:`GAINS`: the claim's figure, the reported and predicted gain, the range
    the rounded figures allow, whether the prediction lies in it, and — for a gain the thread claims —
    the claim's status (``statuses``: :func:`allocsim.analysis.claims.statuses`)."""
    rm = runs.reported_miops()
    claims = thread.claims().set_index("id")
    rows = []
    for key, label, a, b, cid in GAINS:
        lo, hi = span(a, b, rm)
        pred = iops.gain_pct(rep.predicted_miops(*a), rep.predicted_miops(*b))
        claimed = "" if cid is None else f"{claims.loc[cid, 'value']:g} %"
        rows.append({"key": key, "gain": label, "claimed": claimed, "reported": iops.gain_pct(rm[a], rm[b]),
                     "allowed by the rounding": f"{lo:+.2f} … {hi:+.2f} %", "predicted": pred,
                     "within the rounding": "yes" if lo <= pred <= hi else "no",
                     "claim status": "" if cid is None else statuses[cid], "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Gains:
    g_patch_pred: float
    g_patch_rep: float
    patch_lo: float
    patch_hi: float
    patch_claimed: float  # "about 2.6%", from the claims data
    g_km_pred: float
    g_km_rep: float
    g_km_ns: float  # what sheaves for every cache take off kmalloc per IO, ns
    g_inside: int  # predicted gains within the rounding
    n_gains: int


def gains(rep: runs.Reproduction, table: pd.DataFrame) -> Gains:
    t = table.set_index("key")
    cyc = rep.alloc_cycles
    return Gains(float(t.loc["patch", "predicted"]), float(t.loc["patch", "reported"]), float(t.loc["patch", "lo"]),
                 float(t.loc["patch", "hi"]), float(thread.claims().set_index("id").loc["patch-gain", "value"]),
                 float(t.loc["km", "predicted"]), float(t.loc["km", "reported"]),
                 (cyc[("6.19", "kmalloc")] - cyc[("7.0", "kmalloc")]) / rep.clock_ghz,
                 int((t["within the rounding"] == "yes").sum()), len(t))


# ---- where the remaining nanoseconds go -----------------------------------------------------------------

@dataclass(frozen=True)
class Gap:
    """The per-CPU list's edge over ``allocator`` on ``kernel``: modelled and reported."""

    gap_c: float  # allocator − list, cycles per IO
    gap_c_abs: float
    gap_ns_abs: float
    behind: bool  # the allocator costs at least as much as the list
    gap_pct: float  # the list's IOPS edge, %
    rep_gap_ns: float  # the reported figures' difference, ns per IO
    reported_pcpu: float
    reported_other: float
    need_per_op: float  # extra cycles per alloc and per free the figures would ask of the model
    rep_gap_hi: float  # the largest reported gap the rounding allows, ns
    need_hi: float


def gap(rep: runs.Reproduction, kernel: str, allocator: str) -> Gap:
    rm, cyc, clock = runs.reported_miops(), rep.alloc_cycles, rep.clock_ghz
    g = cyc[(kernel, allocator)] - cyc[(kernel, PCPU)]
    rep_gap = _ns(rm[(kernel, allocator)]) - _ns(rm[(kernel, PCPU)])
    hi_gap = _ns(rm[(kernel, allocator)] - H) - _ns(rm[(kernel, PCPU)] + H)
    return Gap(float(g), abs(float(g)), abs(float(g)) / clock, g >= 0,
               runs.edge_pct(g / clock, rep.calibration.base_ns, cyc[(kernel, PCPU)] / clock), float(rep_gap),
               float(rm[(kernel, PCPU)]), float(rm[(kernel, allocator)]), float((rep_gap * clock - g) / 2),
               float(hi_gap), float(max(0.0, (hi_gap * clock - g) / 2)))


def need_words(g: Gap, allocator: str) -> str:
    """What the reported gap would ask of the model (or how far the model's edge goes beyond it)."""
    if g.need_per_op > 0:
        return (f"If the reported gap were exactly {g.reported_pcpu:.2f}M against {g.reported_other:.2f}M "
                f"({g.rep_gap_ns:.1f} ns), each {allocator} operation would need about {g.need_per_op:.0f} more cycles "
                f"than the model charges; the rounding of the figures allows anything up to {g.need_hi:.0f} cycles (a "
                f"gap of up to {g.rep_gap_hi:.1f} ns). That is the size of the effect what the models still leave out "
                "would have to have.")
    within = ("within what the rounding of the figures allows" if g.need_hi > 0 else
              "more than the rounding of the figures allows")
    return (f"The model's edge already covers the reported gap of {g.rep_gap_ns:.1f} ns and goes beyond it by "
            f"{-g.need_per_op:.0f} cycles per {allocator} operation, {within} (a gap of up to {g.rep_gap_hi:.1f} ns).")


# ---- noise ------------------------------------------------------------------------------------------------

def noise_frame(means: dict, reported: dict, a: str, b: str, cvs=None, seed: int = 0, draws: int = 50_000) -> pd.DataFrame:
    """Over a range of CVs: P(single runs order the three allocators as reported), P(they give exactly
    the reported figures), and the runs per allocator to tell ``a`` from ``b`` (95 %, power 80 %)."""
    cvs = [0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02] if cvs is None else cvs
    rows = []
    for cv in cvs:
        rows.append({"cv": cv, "cv_pct": cv * 100,
                     "p_order": iops.p_same_order(means, reported, cv, draws=draws, seed=seed),
                     "p_exact": iops.p_reported_order(means, cv, draws=draws, seed=seed, targets=reported),
                     "runs": iops.runs_needed(reported[a], reported[b], cv)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Noise:
    cv_pct: float
    cv_lo: float
    cv_hi: float
    sd_miops: float
    p_order: float
    p_exact: float
    p_pcpu_first: float
    runs_rep: int  # runs per allocator to tell the two reported 7.0-rc4 figures apart (80 % power)
    runs_rep_95: int
    runs_model: int  # … the model's predicted difference (0: none)


def noise(rep: runs.Reproduction, kernel: str, allocator: str, cv: float, seed: int = 0) -> tuple[pd.DataFrame, Noise]:
    rm, st = runs.reported_miops(), step()
    means = {a: rep.predicted_miops(kernel, a) for a in iops.ALLOCATORS}
    reported = {a: float(rm[(kernel, a)]) for a in iops.ALLOCATORS}
    nf = noise_frame(means, reported, PCPU, allocator, seed=seed)
    d = abs(means[PCPU] - means[allocator])
    return nf, Noise(cv * 100, float(nf["cv_pct"].min()), float(nf["cv_pct"].max()), cv * st.lo_fig,
                     iops.p_same_order(means, reported, cv, seed=seed),
                     iops.p_reported_order(means, cv, seed=seed, targets=reported),
                     iops.p_greater(means[PCPU], means[allocator], cv),
                     iops.runs_needed(st.hi_fig, st.lo_fig, cv), iops.runs_needed(st.hi_fig, st.lo_fig, cv, power=0.95),
                     iops.runs_needed(means[PCPU], means[allocator], cv) if d > 0 else 0)


def one_run_words(runs_rep: int, gap_pct: float) -> str:
    return (f"One run per allocator, as in the thread, cannot establish a {gap_pct:.1f} % difference at this noise "
            "level — it can only fail to contradict one." if runs_rep > 1 else
            "At this low a noise level a single run per allocator would already do.")


# ---- sensitivity --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sensitivity:
    tor_top: str  # the cost entry that moves the edge most
    tor_top_swing: float
    n_matter: int  # entries that move it by more than MATTER_NS
    gap_max: float  # every entry at the end that favours the list
    gap_min: float
    gap_max_pct: float
    matter_ns: float  # MATTER_NS


#: A cost entry "matters" to the verdict if moving it across its cited range moves the edge by more than this (ns).
MATTER_NS = 0.05


def sensitivity(rep: runs.Reproduction, kernel: str, allocator: str) -> tuple[pd.DataFrame, Sensitivity]:
    base, clock = rep.calibration.base_ns, rep.clock_ghz
    tor = runs.tornado(rep.setup, kernel, allocator, base, clock)
    fav = runs.extreme_gap(rep.setup, kernel, allocator, base, clock, tor)
    top = tor.iloc[0]
    return tor, Sensitivity(str(top["key"]), float(top["swing"]), int((tor["swing"] > MATTER_NS).sum()), fav["max"],
                            fav["min"], runs.edge_pct(fav["max"], base, rep.alloc_cycles[(kernel, PCPU)] / clock), MATTER_NS)


#: The other ways to run the benchmark: key → (label, the Setup fields changed on top of the page's).
SCENARIOS = {
    "measured": ("this page's parameters", {}),
    "polled": ("polled completions (-p1)", {"polled": True}),
    "softirq": ("interrupts in another LLC (softirq)",
                {"irq_same_cpu_share": 0.0, "irq_same_llc_share": 0.0, "irq_other_llc_share": 1.0}),
    "cross": ("half the interrupts elsewhere in the LLC",
              {"irq_same_cpu_share": 0.5, "irq_same_llc_share": 0.5, "irq_other_llc_share": 0.0}),
    "account": ("dedicated cache with SLAB_ACCOUNT", {"slab_account": True}),
    "no_account": ("dedicated cache without SLAB_ACCOUNT", {"slab_account": False}),
    "four": ("4 submitter threads (-n4)", {"submitters": 4}),
    "irq_work": ("half the base cost in the interrupt handler", {"irq_work_share": 0.5}),
}


def scenarios(rep: runs.Reproduction) -> pd.DataFrame:
    """The six configurations under each of :data:`SCENARIOS`, with the calibrated base cost."""
    frames = []
    for key, (label, changes) in SCENARIOS.items():
        f = runs.predict(runs.scenario(rep.setup, **changes), rep.calibration.base_ns, rep.clock_ghz)
        f.insert(0, "scenario", label)
        f.insert(0, "key", key)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def scenario_edge(sc: pd.DataFrame, key: str, kernel: str, allocator: str) -> float:
    """The list's edge over ``allocator`` on ``kernel`` in scenario ``key``, ns per IO (positive: the list is faster)."""
    if key not in SCENARIOS:
        raise AllocsimError(f"scenario must be one of {', '.join(SCENARIOS)}, not {key!r}")
    f = sc[sc["key"] == key].set_index(["kernel", "allocator"])
    return float(f.loc[(kernel, allocator), "alloc ns/IO"] - f.loc[(kernel, PCPU), "alloc ns/IO"])


def scenario_edges(sc: pd.DataFrame) -> pd.DataFrame:
    """Long form: scenario key, label, kernel, allocator (kmalloc, sheaf-256) and the list's edge, ns per IO."""
    return pd.DataFrame([{"key": key, "scenario": label, "kernel": k, "allocator": a, "edge": scenario_edge(sc, key, k, a)}
                         for key, (label, _) in SCENARIOS.items() for k in iops.KERNELS for a in ("kmalloc", "sheaf-256")])


# ---- SLAB_ACCOUNT both ways ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlabAccount:
    sa_ok_without: int
    sa_ok_with: int
    sa_rms_without: float
    sa_rms_with: float
    memcg_cycles: float  # memcg_account: per accounted allocation and per free
    memcg_low: float
    sa_low_gap: float  # accounted 6.19 dedicated cache at the low memcg cost minus 6.19 kmalloc, ns per IO
    sheaf_with: float  # predicted M IOPS of the accounted 6.19 cache
    kmalloc_with: float
    reported_sheaf: float
    reported_kmalloc: float


def slab_account(rep: runs.Reproduction, calibrate_on="all") -> tuple[pd.DataFrame, SlabAccount]:
    """Calibrate with and without ``SLAB_ACCOUNT`` on the dedicated cache (the thread does not say)."""
    setup, clock, rm = rep.setup, rep.clock_ghz, runs.reported_miops()
    other = runs.reproduce(runs.scenario(setup, slab_account=not setup.slab_account), clock, calibrate_on)
    pair = {setup.slab_account: rep, (not setup.slab_account): other}
    sa = pd.DataFrame({"kernel": [k for k, _ in iops.CONFIGS], "allocator": [a for _, a in iops.CONFIGS],
                       "reported M IOPS": [rm[c] for c in iops.CONFIGS],
                       "without SLAB_ACCOUNT": [pair[False].predicted_miops(*c) for c in iops.CONFIGS],
                       "with SLAB_ACCOUNT": [pair[True].predicted_miops(*c) for c in iops.CONFIGS]})
    costs = setup.costs()
    low = costs.rows["memcg_account"]["low"]
    lowrun = runs.run_config("6.19", "sheaf-256", runs.scenario(setup, slab_account=True), rep.base_cycles,
                             costs.with_overrides(memcg_account=low))
    rms = lambda r: float(np.sqrt((r.table["residual ns/IO"] ** 2).mean()))  # noqa: E731
    return sa, SlabAccount(int(pair[False].table["rounds to reported"].sum()), int(pair[True].table["rounds to reported"].sum()),
                           rms(pair[False]), rms(pair[True]), costs.cycles("memcg_account"), low,
                           (lowrun.cycles_per_io - rep.alloc_cycles[("6.19", "kmalloc")]) / clock,
                           pair[True].predicted_miops("6.19", "sheaf-256"), pair[True].predicted_miops("6.19", "kmalloc"),
                           float(rm[("6.19", "sheaf-256")]), float(rm[("6.19", "kmalloc")]))


def slab_account_words(s: SlabAccount) -> str:
    """What the reported 6.19 ordering of the dedicated cache and kmalloc says about SLAB_ACCOUNT."""
    sh, km, rs, rk = s.sheaf_with, s.kmalloc_with, s.reported_sheaf, s.reported_kmalloc
    pred = "slower than" if sh < km else "faster than"
    rep_rel = "faster than" if rs > rk else "slower than" if rs < rk else "level with"
    agree = (sh < km) == (rs < rk) and rs != rk
    out = (f"An accounted dedicated cache on 6.19 is predicted at {sh:.3f}M, {pred} kmalloc at {km:.3f}M; the thread "
           f"measured the dedicated cache {rep_rel} kmalloc ({rs:.2f}M against {rk:.2f}M).")
    if not agree:
        return out + (" So, within the model, the reported figures fit a cache *without* `SLAB_ACCOUNT` — or a "
                      "benchmark in the root memory cgroup, where accounting costs almost nothing.")
    return out + " The reported ordering does not tell the two variants apart."


# ---- the verdict --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    v_619_edge_ns: float  # the list's edge over kmalloc on 6.19
    v_619_edge_abs: float
    patch_inside: bool  # the predicted patch gain lies within what the rounded figures allow
    sheaf_619_saving_ns: float  # 6.19 kmalloc minus the dedicated cache
    sheaf_619_saving_abs: float
    v_70_km_vs_sh_abs: float
    v_70_km_edge_ns: float
    v_70_sh_edge_ns: float
    v_70_km_edge_pct: float
    v_70_sh_edge_pct: float
    gap_focus: float  # the list's edge over the page's allocator on the page's kernel, ns
    below_step: bool  # gap_focus < one step of the thread's precision
    softirq_edge: float
    cross_edge: float


def verdict(rep: runs.Reproduction, kernel: str, allocator: str, sc: pd.DataFrame, g: Gains) -> Verdict:
    cyc, clock, base = rep.alloc_cycles, rep.clock_ghz, rep.calibration.base_ns
    edge = lambda k, a: (cyc[(k, a)] - cyc[(k, PCPU)]) / clock  # noqa: E731
    pct = lambda k, a: runs.edge_pct(edge(k, a), base, cyc[(k, PCPU)] / clock)  # noqa: E731
    e619, s619 = edge("6.19", "kmalloc"), (cyc[("6.19", "kmalloc")] - cyc[("6.19", "sheaf-256")]) / clock
    focus = edge(kernel, allocator)
    return Verdict(e619, abs(e619), g.patch_lo <= g.g_patch_pred <= g.patch_hi, s619, abs(s619),
                   abs(edge("7.0", "kmalloc") - edge("7.0", "sheaf-256")), edge("7.0", "kmalloc"), edge("7.0", "sheaf-256"),
                   pct("7.0", "kmalloc"), pct("7.0", "sheaf-256"), focus, focus < step().step_ns,
                   scenario_edge(sc, "softirq", "7.0", "kmalloc"), scenario_edge(sc, "cross", "7.0", "kmalloc"))


def faster_words(x: float) -> str:
    """``faster than`` for a positive difference (the other costs more), else ``slower than``."""
    return "faster than" if x > 0 else "slower than"


def inside_words(inside: bool) -> str:
    return "inside" if inside else "outside"


def proposal_words(edge_619: float, saving_619: float) -> str:
    """How Dave Chinner's dedicated cache fares on 6.19: the share of the list's edge it recovers."""
    if edge_619 <= 0:
        return "has no edge of the list to recover on 6.19"
    rec = 100 * saving_619 / edge_619
    verdict_ = "works" if rec >= 50 else "helps only partly" if rec > 0 else "does not help"
    return f"{verdict_} in the model: it recovers {rec:.0f} % of the list's edge on 6.19"


def edge_words(v: Verdict, focus: str, st: Step, gap_max: float, p_order: float) -> str:
    """Whether the list's modelled edge over the page's allocator is negative, below one step of the
    thread's precision, or above it — and what that makes of the reported figures."""
    g, step_ns = v.gap_focus, st.step_ns
    if g <= 0:
        return (f"Over {focus} the model puts the list *behind* ({g:+.1f} ns), so the reported order — the list ahead — "
                f"is not what the model expects: single runs would show it with probability {p_order:.2f}. Even with every "
                f"cost at the end of its cited range that favours the list the edge is {gap_max:+.1f} ns.")
    if g < step_ns:
        return (f"The edge over {focus} is smaller than one step of the thread's precision ({step_ns:.1f} ns between "
                f"{st.lo_fig:.2f}M and {st.hi_fig:.2f}M); with every cost at the end of its cited range that favours the "
                f"list it is {gap_max:.1f} ns. So the reported {st.hi_fig:.2f}M against {st.lo_fig:.2f}M is what rounding "
                f"and a single run each produce from such a gap (probability {p_order:.2f} of exactly that order from "
                f"single runs if the model is right) — not evidence of a {st.gap_pct:.1f} % advantage.")
    return (f"The edge over {focus} is larger than one step of the thread's precision ({step_ns:.1f} ns between "
            f"{st.lo_fig:.2f}M and {st.hi_fig:.2f}M), so the model leaves the list an edge the reported figures could resolve.")


def missing_words(need_per_op: float, rep_gap_ns: float, allocator: str) -> str:
    """What the models still leave out (return thunks on each call, cache lines not in L1: the clause before
    this one names them) would have to do for the reported gap between the list and ``allocator``
    (``rep_gap_ns``, :attr:`Gap.rep_gap_ns`), or that the model's edge needs none of it."""
    if need_per_op > 0:
        return (f"would have to cost about {need_per_op:.0f} cycles per {allocator} operation more than on the list's "
                f"paths to produce the reported {rep_gap_ns:.1f} ns")
    return f"is not needed for the reported gap: the model's edge already reaches the reported {rep_gap_ns:.1f} ns without it"


def closing_words(below_step: bool) -> str:
    return ("So, in the models: the private per-CPU list was a real answer to 6.19's kmalloc, and SLUB's sheaves — opt-in "
            "in 6.19, universal in 7.0 — answer the same problem for every cache, " +
            ("within the measurement precision of the private list for this workload. Whether the last nanosecond or two "
             "is real is a question for hardware, not for the models." if below_step else
             "but the list keeps an edge the figures could resolve; the experiment below would show whether it is real."))

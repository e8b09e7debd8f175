"""Calibration on anyone's figures: ``python -m allocsim calibrate FIGURES.csv``.

The IOPS chapter fits one number to the thread's six figures. Here the figures are the user's: any
``(kernel, allocator, IOPS)`` rows — kernels 6.18, 6.19, 7.0 (point releases and release candidates are
read as their version), allocators ``per-CPU list``, ``kmalloc``, ``sheaf-256`` (a dedicated cache with
``sheaf_capacity = 256``) and ``dedicated`` (a dedicated ``kmem_cache`` *without* ``sheaf_capacity``) —
and the fit predicts every other configuration (:data:`allocsim.analysis.runs.MODEL_KERNELS` ×
:data:`allocsim.analysis.runs.MODEL_ALLOCATORS`).

A measurement from another machine raises the question *which* single number is fitted. Both fits are
offered, each with its physical assumption:

* **base-ns fit** (the IOPS chapter's form, :func:`allocsim.analysis.iops.calibrate`'s arithmetic):
  ``time per IO = base_ns + allocator cycles / clock``. *Assumption:* the allocator's code runs on your
  machine as fast as the model's cycles at the stated clock (its ns per IO are carried over), and
  everything else an IO costs — device, block layer, io_uring, filesystem — is one unknown number of ns,
  the same for every configuration.
* **machine-speed fit**: ``time per IO = (base cycles + allocator cycles) / speed``, with the base in
  *cycles* carried over from the thread's calibration (:func:`allocsim.analysis.runs.reproduce` on the six
  reported figures) and ``speed`` (cycles per ns: clock × relative IPC) fitted. *Assumption:* your machine
  runs the same software path — the IO path outside the allocator costs as many cycles as on the
  thread's machine, and so does the allocator — and differs only in how fast it retires cycles.

They agree where the figures are the thread's own; elsewhere the speed fit scales the gaps between
allocators with the machine, the base-ns fit keeps them in ns.

The CSV needs a header with ``kernel``, ``allocator`` and ``miops`` (millions of IOPS) or ``iops``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from allocsim.analysis import iops, runs
from allocsim.facts import kconfig
from allocsim.facts.errors import AllocsimError

ALIASES = {"per-cpu list": "per-CPU list", "pcpu": "per-CPU list", "pcpu list": "per-CPU list",
           "per-cpu-list": "per-CPU list", "kmalloc": "kmalloc", "sheaf-256": "sheaf-256", "sheaf256": "sheaf-256",
           "dedicated": "dedicated", "dedicated cache": "dedicated", "kmem_cache": "dedicated"}
GRID = tuple((k, a) for k in runs.MODEL_KERNELS for a in runs.MODEL_ALLOCATORS)
ASSUMPTIONS = {
    "base-ns": "the allocator's ns per IO (model cycles at the stated clock) carry over to your machine; "
               "everything else an IO costs is one fitted number of ns, the same in every configuration",
    "speed": "the whole software path carries over in cycles (the thread's base, calibrated on its six figures, "
             "plus the allocator's); your machine differs only in how many cycles it retires per ns, one "
             "fitted number",
}


def read_figures(path) -> pd.DataFrame:
    """``kernel`` (a model version), ``allocator`` (canonical name) and ``miops`` per row; one sentence for
    every problem, naming the row."""
    p = Path(path)
    if not p.exists():
        raise AllocsimError(f"the figures file {p} does not exist")
    try:
        df = pd.read_csv(p, dtype=str, skipinitialspace=True, comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AllocsimError(f"the figures file {p} is not a CSV with a header ({str(exc).splitlines()[0]})") from None
    cols = {c.strip().lower(): c for c in df.columns}
    if "kernel" not in cols or "allocator" not in cols or not ({"miops", "iops"} & set(cols)):
        raise AllocsimError(f"the figures file {p} needs the columns kernel, allocator and miops (or iops); "
                            f"it has {', '.join(df.columns) or 'none'}")
    if len(df) == 0:
        raise AllocsimError(f"the figures file {p} has no rows")
    rows = []
    for i, r in enumerate(df.to_dict("records"), start=2):
        k_raw = str(r[cols["kernel"]]).strip()
        try:
            k = kconfig.check_version(k_raw)
        except AllocsimError:
            k = None
        if k not in runs.MODEL_KERNELS:
            raise AllocsimError(f"{p} line {i}: kernel must be one of {', '.join(runs.MODEL_KERNELS)}, not {k_raw!r}")
        a_raw = str(r[cols["allocator"]]).strip()
        a = ALIASES.get(a_raw.lower())
        if a is None:
            raise AllocsimError(f"{p} line {i}: allocator must be one of {', '.join(runs.MODEL_ALLOCATORS)}, "
                                f"not {a_raw!r}")
        key = "miops" if "miops" in cols else "iops"
        try:
            v = float(str(r[cols[key]]).strip())
        except ValueError:
            v = float("nan")
        if not np.isfinite(v) or v <= 0:
            raise AllocsimError(f"{p} line {i}: {key} must be a positive number, not {r[cols[key]]!r}")
        rows.append({"kernel": k, "allocator": a, "miops": v / 1e6 if key == "iops" else v})
    out = pd.DataFrame(rows)
    dup = out.duplicated(["kernel", "allocator"])
    if dup.any():
        r = out[dup].iloc[0]
        raise AllocsimError(f"{p}: the configuration {r['kernel']} {r['allocator']} appears twice; give one figure each")
    return out


@dataclass
class Calibrated:
    figures: pd.DataFrame
    clock_ghz: float
    base_ns: float  # the base-ns fit
    speed: float  # the speed fit: cycles per ns
    ref_base_cycles: float  # carried over in the speed fit
    table: pd.DataFrame  # every configuration of GRID, both predictions
    rms_ns: dict = field(default_factory=dict)  # fit -> RMS residual on the given figures (ns per IO)
    assumptions: dict = field(default_factory=lambda: dict(ASSUMPTIONS))


def _cycles(setup: runs.Setup, gap: int) -> pd.Series:
    return runs.cycles_series({c: runs.run_config(c[0], c[1], setup, gap) for c in GRID})


def calibrate(figures: pd.DataFrame, clock_ghz: float = 3.0, setup: runs.Setup | None = None,
              ref_base_cycles: float | None = None, max_iter: int = 8) -> Calibrated:
    """Both fits on ``figures`` (from :func:`read_figures`). ``ref_base_cycles``: the base carried over by
    the speed fit; default the thread's calibration at ``clock_ghz``."""
    if isinstance(clock_ghz, bool) or not isinstance(clock_ghz, (int, float)) or not clock_ghz > 0:
        raise AllocsimError(f"clock_ghz must be a number > 0, not {clock_ghz!r}")
    if len(figures) == 0:
        raise AllocsimError("the calibration needs at least one figure")
    setup = (setup or runs.Setup()).validate()
    keys = list(zip(figures["kernel"], figures["allocator"]))
    t_ns = pd.Series(iops.miops_to_ns(figures["miops"].to_numpy()), index=pd.MultiIndex.from_tuples(keys))
    # base-ns fit, with the workload carrying the base as in runs.reproduce (fixed point in whole cycles)
    gap = int(round(float(t_ns.mean()) * clock_ghz))
    seen = []
    for _ in range(max_iter):
        cyc_a = _cycles(setup, gap)
        base_ns = float(np.mean([t_ns[c] - cyc_a[c] / clock_ghz for c in keys]))
        new_gap = int(round(base_ns * clock_ghz))
        seen.append(gap)
        if new_gap == gap or new_gap in seen:
            break
        gap = new_gap
    # speed fit: the base in cycles comes from the thread
    if ref_base_cycles is None:
        ref_base_cycles = runs.reproduce(setup, clock_ghz).calibration.base_ns * clock_ghz
    cyc_b = _cycles(setup, int(round(ref_base_cycles)))
    c_tot = np.array([ref_base_cycles + cyc_b[c] for c in keys])
    t = np.array([t_ns[c] for c in keys])
    speed = float((c_tot @ c_tot) / (t @ c_tot))  # least squares in time: u = Σ t C / Σ C², speed = 1/u
    rows = []
    for c in GRID:
        given = c in t_ns.index
        pa = base_ns + cyc_a[c] / clock_ghz
        pb = (ref_base_cycles + cyc_b[c]) / speed
        rows.append({"kernel": c[0], "allocator": c[1], "alloc cycles/IO": float(cyc_a[c]),
                     "reported M IOPS": float(iops.ns_to_miops(t_ns[c])) if given else float("nan"),
                     "fitted on": given,
                     "base-ns fit M IOPS": float(iops.ns_to_miops(pa)),
                     "speed fit M IOPS": float(iops.ns_to_miops(pb)),
                     "time/IO base-ns vs speed %": float((pa / pb - 1.0) * 100.0)})
    table = pd.DataFrame(rows)
    fitted = table[table["fitted on"]]
    rms = {}
    for name, col in (("base-ns", "base-ns fit M IOPS"), ("speed", "speed fit M IOPS")):
        resid = iops.miops_to_ns(fitted[col].to_numpy()) - iops.miops_to_ns(fitted["reported M IOPS"].to_numpy())
        rms[name] = float(np.sqrt(np.mean(resid ** 2)))
    return Calibrated(figures, float(clock_ghz), base_ns, speed, float(ref_base_cycles), table, rms)


def thread_figures() -> pd.DataFrame:
    """The thread's six figures in :func:`read_figures`' form (a worked example and a test)."""
    s = runs.reported_miops()
    return pd.DataFrame([{"kernel": k, "allocator": a, "miops": float(v)} for (k, a), v in s.items()])


def main(args) -> int:
    figs = read_figures(args.figures)
    if isinstance(args.ios, bool) or args.ios < 4160:
        raise AllocsimError(f"--ios must be at least 4160 (4096 warm-up IOs plus two submit batches), not {args.ios}")
    cal = calibrate(figs, args.clock_ghz, runs.Setup(ios=args.ios))
    print(f"{len(figs)} figure(s) from {args.figures}; clock {cal.clock_ghz:g} GHz")
    print(f"\nbase-ns fit: base = {cal.base_ns:.1f} ns per IO (RMS residual {cal.rms_ns['base-ns']:.2f} ns)")
    print(f"  assumption: {ASSUMPTIONS['base-ns']}")
    print(f"speed fit:   speed = {cal.speed:.3f} cycles per ns with the thread's base of {cal.ref_base_cycles:.0f} "
          f"cycles (RMS residual {cal.rms_ns['speed']:.2f} ns)")
    print(f"  assumption: {ASSUMPTIONS['speed']}\n")
    t = cal.table.copy()
    t["fitted on"] = t["fitted on"].map({True: "yes", False: ""})
    for c in ("alloc cycles/IO",):
        t[c] = t[c].map(lambda v: f"{v:.1f}")
    for c in ("reported M IOPS", "base-ns fit M IOPS", "speed fit M IOPS"):
        t[c] = t[c].map(lambda v: "" if v != v else f"{v:.4f}")
    t["time/IO base-ns vs speed %"] = t["time/IO base-ns vs speed %"].map(lambda v: f"{v:+.2f}")
    print(t.to_string(index=False))
    return 0

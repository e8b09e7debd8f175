"""Time to execute chapter 5 ("Reproducing the IOPS comparison") with its default parameters. Target
(issue 5): under 2 minutes on a 2-core machine.

    python -m allocsim bench iops            # cold (empty numba cache) and warm execution
    python -m allocsim bench iops --warm     # warm only

The cold run points ``NUMBA_CACHE_DIR`` at an empty folder, so every jitted model compiles as on a fresh
clone; the warm run reuses that cache, as a rebuild does. Both execute the whole chapter with papermill
(``allocsim.book.runner.execute``), kernel start-up included. The in-process figures below them time the
chapter's main computations on their own (warm).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TARGET_S = 120.0


def _execute(out: Path) -> float:
    from allocsim.book import runner as book

    t = time.perf_counter()
    book.execute("iops", {}, out=out, force=True)
    return time.perf_counter() - t


def _parts() -> list[tuple[str, float]]:
    from allocsim.analysis import claims as claims_check
    from allocsim.analysis import runs as iops_runs

    out = []
    t = time.perf_counter()
    rep = iops_runs.reproduce()
    out.append(("six configurations + calibration (fixed point)", time.perf_counter() - t))
    t = time.perf_counter()
    iops_runs.tornado(rep.setup, "7.0", "sheaf-256", rep.calibration.base_ns, rep.clock_ghz)
    out.append(("tornado (every cost entry at both ends)", time.perf_counter() - t))
    t = time.perf_counter()
    claims_check.evaluate(rep)
    out.append(("claims table (incl. microbenchmarks)", time.perf_counter() - t))
    return out


def run(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="allocsim bench iops", description=__doc__.splitlines()[0])
    ap.add_argument("--warm", action="store_true", help="skip the cold (empty numba cache) run")
    args = ap.parse_args(argv or [])
    n_cpu = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="allocsim-bench-iops-") as d:
        old = os.environ.get("NUMBA_CACHE_DIR")
        try:
            if not args.warm:
                os.environ["NUMBA_CACHE_DIR"] = str(Path(d) / "numba-cache")
                cold = _execute(Path(d) / "cold.ipynb")
                print(f"chapter 5, defaults, empty numba cache ({n_cpu} CPUs): {cold:6.1f} s   target < {TARGET_S:.0f} s", flush=True)
                warm = _execute(Path(d) / "warm.ipynb")
            else:
                warm = _execute(Path(d) / "warm.ipynb")
            print(f"chapter 5, defaults, warm numba cache ({n_cpu} CPUs):  {warm:6.1f} s   target < {TARGET_S:.0f} s", flush=True)
        finally:
            if old is None:
                os.environ.pop("NUMBA_CACHE_DIR", None)
            else:
                os.environ["NUMBA_CACHE_DIR"] = old
    for name, dt in _parts():
        print(f"  in-process: {name:<48} {dt:6.2f} s")

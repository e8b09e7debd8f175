"""Build-time figures for the book: a build from a clean clone (installation excluded) and an unchanged
rebuild. Targets (issue 2): under 5 minutes and under 30 seconds on a 2-core machine.

    python -m allocsim bench book

The clone is made from this checkout's HEAD into a temporary folder and built with ``ALLOCSIM_ROOT``
pointing at it and an empty numba cache, so nothing from earlier builds is reused; the Python
environment (the installation) is this one's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from allocsim.facts.paths import ROOT


def _build(root: Path, env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "allocsim", "build"], cwd=root, env=env, text=True, capture_output=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return dt


def run(argv: list[str] | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="allocsim-bench-") as d:
        clone = Path(d) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = dict(os.environ, ALLOCSIM_ROOT=str(clone), NUMBA_CACHE_DIR=str(Path(d) / "numba-cache"))
        cold = _build(clone, env)
        warm = _build(clone, env)
        n_cpu = os.cpu_count()
        print(f"book build from a clean clone (HEAD, {n_cpu} CPUs, installation excluded): {cold:7.1f} s   target < 300 s")
        print(f"unchanged rebuild:                                               {warm:7.1f} s   target <  30 s")

"""The uncertainty sweep's throughput: samples per second on 1 and 2 local worker processes (target: at least
1.7× from 1 to 2 on 2 cores), the memory of each worker, and the same sweep through a scheduler address
(a `dask scheduler` and two `dask worker` processes started here on 127.0.0.1, then stopped).

    python -m allocsim bench sweep                 # 16 Sobol' base samples (160 full reproductions)
    python -m allocsim bench sweep --samples 32

Rates count samples from the moment every worker is warm (models compiled or loaded from numba's cache)
to the last result; the wall time, cluster start included, is printed beside them. On a machine shared
with other work the rates say little on their own: the CPU time the workers actually got (share of a core
each) and the samples per worker CPU-second are printed too, so starved workers show as such. Each run writes to
its own temporary folder, so nothing is reused.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SCALING = 1.7


def _line(name, r):
    mem = ", ".join(f"{v / 2**20:.0f}" for v in sorted(r.worker_rss.values())) or "?"
    share = r.worker_cpu / (r.compute_seconds * r.workers) if r.compute_seconds and r.workers else float("nan")
    per_cpu = r.computed / r.worker_cpu if r.worker_cpu else float("nan")
    print(f"{name:<34} {r.rate:7.2f} samples/s   ({r.computed} samples, {r.compute_seconds:5.1f} s warm, "
          f"{r.seconds:5.1f} s wall)   worker RSS MiB: {mem}   {per_cpu:.2f} samples per worker CPU-second; "
          f"the workers got {share:.0%} of a core each", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _through_scheduler(study, cache: Path):
    from allocsim.analysis import sweep

    dask = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([dask, "worker", addr, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                           "--no-dashboard", "--name", f"bench{i}"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        t0 = time.monotonic()
        while True:  # wait for the port, then for both workers
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() - t0 > 60:
                raise RuntimeError("the benchmark's dask scheduler did not start")
            time.sleep(0.2)
        from distributed import Client

        with Client(addr, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=120)
        return sweep.run(study, scheduler=addr, cache_dir=cache), addr
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run(argv: list[str] | None = None) -> None:
    from allocsim.analysis import sweep
    from allocsim.analysis import uncertainty as unc

    ap = argparse.ArgumentParser(prog="allocsim bench sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=16, help="Sobol' base samples (default 16)")
    args = ap.parse_args(argv or [])
    study = unc.Study(samples=args.samples).validate()
    print(f"sweep of {study.n_runs} samples ({args.samples} base samples), {study.setup.ios} IOs per configuration; "
          f"{os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="allocsim-bench-sweep-") as d:
        r1 = sweep.run(study, workers=1, cache_dir=Path(d) / "w1")
        _line("1 local worker", r1)
        r2 = sweep.run(study, workers=2, cache_dir=Path(d) / "w2")
        _line("2 local workers", r2)
        same = r1.frame.equals(r2.frame)
        scale = r2.rate / r1.rate if r1.rate else float("nan")
        print(f"scaling 1 → 2 workers: {scale:.2f}×   target ≥ {TARGET_SCALING}×   "
              f"results identical sample by sample: {same}", flush=True)
        r3, addr = _through_scheduler(study, Path(d) / "sched")
        _line(f"2 workers via {addr}", r3)
        print(f"through the scheduler address: {r3.rate / r2.rate:.2f}× the local rate; "
              f"identical to the local run: {r3.frame.equals(r2.frame)}", flush=True)

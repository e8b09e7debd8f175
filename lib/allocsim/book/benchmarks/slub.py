"""Simulated alloc/free operations per second of each SLUB model (numba) and of its pure-Python
reference, on the module microbenchmark and on the io_uring workload, and the time of a 400-point
K × capacity sweep of the microbenchmark (chapter 4's heat map).

    python -m allocsim bench slub [--scale S] [--repeat R] [--min-time S] [--sweep-threads T] [--hierarchy]

Models: the 6.19 cpu slab (kmalloc-256 / kmalloc-96), 6.19 opt-in sheaves over the cpu slab (a
dedicated cache with sheaf_capacity 256), 7.0 sheaves (kmalloc, default capacity). Workloads: the
microbenchmark with 4 threads, K = 128 (chapter 4), and the io_uring loop with its defaults
(t/io_uring -d128 -s32 -c32 -p0) and 2000 cycles of other work per submission. The numba figure is
:func:`allocsim.kernel.slub.run` end to end (state set-up included); the reference runs the same workload
``--scale`` times smaller (it is a rate: operations per second), best of at least ``--repeat`` runs for
numba and of two for the reference, and of as many more as fit in ``--min-time`` seconds (both sides; see
:data:`allocsim.book.benchmarks.pcpu.MIN_TIME`). Targets (issue 4): >= 10 M ops/s per model, >= 100× the reference, the
sweep in < 60 s. ``--hierarchy``: both sides, and the sweep, with the memory hierarchy of the default CPU
at 3 GHz (numba :mod:`allocsim.kernel.memory`, the reference :mod:`allocsim.kernel.oracle.memory`; issue 11's
targets: >= 10 M ops/s per SLUB model on the io_uring workload, >= 100× the reference, the sweep in < 60 s).
"""

from __future__ import annotations

import argparse
import inspect
import time

import pandas as pd

from allocsim.analysis import microbench as mb
from allocsim.workloads import iouring
from allocsim.kernel import slub
from allocsim.workloads.microbench import microbench as microbench_program
from allocsim.kernel.oracle import slub as ref
from allocsim.book.benchmarks.pcpu import MIN_TIME, _best

MODELS = (
    ("6.19 cpu slab (kmalloc)", dict(kernel="6.19")),
    ("6.19 sheaves 256 over the cpu slab", dict(kernel="6.19", kmalloc=False, sheaf_capacity=256)),
    ("7.0 sheaves (kmalloc, default capacity)", dict(kernel="7.0")),
)


def _workloads(scale: int):
    micro = lambda rounds: microbench_program(4, 128, rounds)
    io = lambda ios: iouring.program(iouring.IOUring(ios=ios, submit_gap=2000))
    return (
        ("microbench 4 threads, K=128", 256, micro(1000), micro(max(2, 1000 // scale))),
        ("io_uring -d128 -s32 -c32 -p0", 96, io(400_000), io(max(1024, 400_000 // scale))),
    )


def run(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="allocsim bench slub", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=20, help="the reference runs a workload this many times smaller")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions of each numba run at least; the best is reported")
    ap.add_argument("--min-time", type=float, default=MIN_TIME,
                    help=f"and as many more as fit in this many seconds, both sides (default {MIN_TIME}; 0: exactly --repeat)")
    ap.add_argument("--sweep-threads", type=int, default=1, help="threads of the 400-point sweep (chapter 4: 1 and 8)")
    ap.add_argument("--hierarchy", action="store_true",
                    help="run the models and the reference with the memory hierarchy (the default CPU)")
    args = ap.parse_args(argv or [])
    if args.hierarchy:
        print("memory hierarchy on (data/kernel/cpu.yaml at 3 GHz), numba and reference")
    worst_rate, worst_ratio, io_rate = float("inf"), float("inf"), float("inf")
    for wname, size, prog, small in _workloads(args.scale):
        print(f"{wname}: {prog.n_events} simulated alloc/free operations (reference: {small.n_events})")
        for mname, kw in MODELS:
            kw = dict(kw, object_size=size, hierarchy=args.hierarchy)
            slub.run(prog, **kw)  # compile / load the numba cache outside the timing
            t = _best(lambda: slub.run(prog, **kw), args.repeat, args.min_time)
            tr = _best(lambda: ref.run(small, **kw), 2, args.min_time)
            rate, rate_ref = prog.n_events / t, small.n_events / tr
            worst_rate, worst_ratio = min(worst_rate, rate), min(worst_ratio, rate / rate_ref)
            if wname.startswith("io_uring"):
                io_rate = min(io_rate, rate)
            print(f"  {mname:<42} numba {rate / 1e6:7.1f} M ops/s   reference {rate_ref / 1e6:6.3f} M ops/s"
                  f"   ratio {rate / rate_ref:6.0f}x")
    t_sweep, points = _timed_sweep(args.sweep_threads, args.hierarchy)
    print(f"K x capacity sweep (chapter 4 heat map{', hierarchy on' if args.hierarchy else ''}): {points} points, "
          f"{args.sweep_threads} thread(s), {t_sweep:.1f} s")
    if args.hierarchy:
        print(f"targets: >= 10 M ops/s per model on io_uring ({'met' if io_rate >= 10e6 else 'NOT met'}: slowest "
              f"{io_rate / 1e6:.1f}; over both workloads {worst_rate / 1e6:.1f}), >= 100x the reference "
              f"({'met' if worst_ratio >= 100 else 'NOT met'}: lowest {worst_ratio:.0f}x), sweep < 60 s "
              f"({'met' if t_sweep < 60 else 'NOT met'})")
        return
    print(f"targets: >= 10 M ops/s per model ({'met' if worst_rate >= 10e6 else 'NOT met'}: slowest "
          f"{worst_rate / 1e6:.1f}), >= 100x the reference ({'met' if worst_ratio >= 100 else 'NOT met'}: lowest "
          f"{worst_ratio:.0f}x), sweep < 60 s ({'met' if t_sweep < 60 else 'NOT met'})")


#: chapter 4's heat map setting (the page's defaults): 7.0, 256-byte objects, FIFO frees, a 64-CPU machine
SWEEP = dict(object_size=256, free_order="fifo", machine_cpus=64, cpus_per_node=None, seed=0)


def heat_sweep(threads: int, hierarchy: bool, ks=None, caps=None) -> pd.DataFrame:
    """Chapter 4's K × capacity sweep (:func:`allocsim.analysis.microbench.heat_sweep`, kernel 7.0) with the
    memory hierarchy on or off; where that function takes no ``hierarchy`` argument, the same points run here
    with :func:`allocsim.kernel.slub.run` as it runs them."""
    if "hierarchy" in inspect.signature(mb.heat_sweep).parameters:
        return mb.heat_sweep("7.0", threads, ks, caps, hierarchy=hierarchy, **SWEEP)
    if not hierarchy:
        return mb.heat_sweep("7.0", threads, ks, caps, **SWEEP)
    ks, caps = mb.heat_grid(ks, caps)
    rows = []
    for cap in caps:
        for k in ks:
            r = max(4, 4096 // (2 * k))
            r0, r1 = r // 2, r // 2 + r
            res = [slub.run(microbench_program(threads, k, n, SWEEP["free_order"], seed=SWEEP["seed"]), kernel="7.0",
                            object_size=SWEEP["object_size"], sheaf_capacity=cap, kmalloc=False,
                            ncpu_present=max(threads, SWEEP["machine_cpus"]), seed=SWEEP["seed"], hierarchy=True)
                   for n in (r0, r1)]
            rows.append({"K": k, "requested capacity": cap, "cycles": (res[1].cycles - res[0].cycles) / (threads * k * (r1 - r0))})
    return pd.DataFrame(rows)


def _timed_sweep(threads: int, hierarchy: bool) -> tuple[float, int]:
    ks, caps = mb.heat_grid()
    heat_sweep(threads, hierarchy, ks[:2], caps[:2])  # compile / load the numba cache outside the timing
    t0 = time.perf_counter()
    df = heat_sweep(threads, hierarchy)
    return time.perf_counter() - t0, len(df)

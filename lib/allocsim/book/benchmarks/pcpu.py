"""Simulated alloc/free operations per second of the per-CPU list model (numba) and of its pure-Python
reference, on the default io_uring workload (t/io_uring -d128 -s32 -c32 -p0, one submitter).

    python -m allocsim bench pcpu [--ios N] [--repeat R] [--min-time S] [--workload default|mixed] [--hierarchy]

Prints the figures; targets (issue 3, and issues 10 and 11 with the hierarchy on): >= 20 million simulated
ops/s for the numba model and >= 100× the reference. "numba front end" times
:func:`allocsim.kernel.pcpu_list.simulate` (the list itself, which also builds the fallback program); "numba
run()" adds the kmalloc stand-in backend and the combine. ``--hierarchy``: both sides with the memory
hierarchy of the default CPU at 3 GHz (numba :mod:`allocsim.kernel.cache`, the reference
:mod:`allocsim.kernel.oracle.cache`). Each figure is the best of at least ``--repeat`` calls and of as many
as fit in ``--min-time`` seconds (:data:`MIN_TIME`), the same rule for both sides (a reference call takes
longer than that: it is timed twice).
"""

from __future__ import annotations

import argparse
import time

from allocsim.workloads import iouring
from allocsim.kernel import pcpu_list
from allocsim.kernel.oracle import cache as oracle_cache
from allocsim.kernel.oracle.pcpu_list import run_reference

WORKLOADS = {
    "default": {},
    "mixed": dict(placement="independent", task_share=0.2, hardirq_share=0.5, softirq_share=0.3, cross_cpu_share=0.2, completion_order="random"),
}


#: seconds of timed calls the model benchmarks take at least (``--min-time``): a 2 ms call timed 5 times on a
#: shared machine reads a few per cent slow whenever one of those moments is busy; timing it for half a second
#: (about 250 calls) gives its undisturbed time, as ``timeit``'s autorange does. A call that takes longer is
#: timed ``--repeat`` times.
MIN_TIME = 0.5


def _best(fn, repeat: int, min_time: float = 0.0) -> float:
    """The shortest of at least ``repeat`` timed calls of ``fn``, and of as many more as fit in ``min_time``
    seconds of calls (at most 10 000)."""
    best, spent, n = float("inf"), 0.0, 0
    while n < repeat or (spent < min_time and n < 10_000):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def run(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="allocsim bench pcpu", description=__doc__.splitlines()[0])
    ap.add_argument("--ios", type=int, default=iouring.IOUring().ios, help="IOs per submitter (default: the workload's)")
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions at least; the best is reported")
    ap.add_argument("--min-time", type=float, default=MIN_TIME,
                    help=f"and as many more as fit in this many seconds (default {MIN_TIME}; 0: exactly --repeat)")
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="default")
    ap.add_argument("--hierarchy", action="store_true",
                    help="run the model and the reference with the memory hierarchy (the default CPU at 3 GHz)")
    args = ap.parse_args(argv or [])
    cfg = iouring.IOUring(ios=args.ios, **WORKLOADS[args.workload])
    prog = iouring.program(cfg)
    ops = prog.n_events
    h = args.hierarchy
    spec = oracle_cache.read_cpu(3.0) if h else None

    pcpu_list.run(prog, kmalloc="standin", hierarchy=h)  # compile / load the numba cache outside the timing
    t_front = _best(lambda: pcpu_list.simulate(prog, hierarchy=h), args.repeat, args.min_time)
    t_run = _best(lambda: pcpu_list.run(prog, kmalloc="standin", hierarchy=h), args.repeat, args.min_time)
    t_ref = _best(lambda: run_reference(prog, hierarchy=spec), max(1, min(args.repeat, 2)), args.min_time)

    rate_front, rate_run, rate_ref = ops / t_front, ops / t_run, ops / t_ref
    if h:
        print("memory hierarchy on (data/kernel/cpu.yaml at 3 GHz), numba and reference")
    print(f"workload: {args.workload}, {cfg.submitters} submitter(s), QD {cfg.queue_depth}, batches "
          f"{cfg.submit_batch}/{cfg.complete_batch}, {cfg.ios} IOs -> {ops} simulated alloc/free operations")
    print(f"numba front end (simulate):     {t_front * 1e3:9.2f} ms  {rate_front / 1e6:8.1f} M ops/s")
    print(f"numba run() with kmalloc stand-in: {t_run * 1e3:6.2f} ms  {rate_run / 1e6:8.1f} M ops/s")
    print(f"pure-Python reference:          {t_ref * 1e3:9.2f} ms  {rate_ref / 1e6:8.3f} M ops/s")
    print(f"ratio numba front end / reference: {rate_front / rate_ref:7.0f}x")
    print(f"ratio numba run() / reference:     {rate_run / rate_ref:7.0f}x")
    print(f"targets: >= 20 M ops/s numba ({'met' if rate_front >= 20e6 else 'NOT met'}), "
          f">= 100x reference ({'met' if rate_front / rate_ref >= 100 else 'NOT met'})")

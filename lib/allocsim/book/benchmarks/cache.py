"""Simulated memory accesses per second of the memory hierarchy (allocsim.kernel.cache, numba) and of its
pure-Python oracle, on the default CPU (data/kernel/cpu.yaml) and three seeded access streams:

* ``lifo``   — each CPU reuses a small hot set of lines (an allocator's per-CPU hits): mostly L1 hits;
* ``sweep``  — each CPU walks a FIFO batch of 4096 object lines (> L1): L1 misses, L2 hits;
* ``shared`` — 16 CPUs in two LLC domains write and read 4096 shared lines: transfers and invalidations.

    python -m allocsim bench cache [--accesses N] [--repeat R] [--stream lifo|sweep|shared|all] [--models]

Prints accesses/s and the mix of where the data came from. ``--models`` also times the models with the
hierarchy off and on, on the default io_uring workload (t/io_uring -d128 -s32 -c32 -p0, one submitter):
the per-CPU list's front end (issue 11's target: >= 20 M simulated ops/s) and SLUB 7.0 / 6.19 (>= 10 M).
"""

from __future__ import annotations

import argparse

import numpy as np

from allocsim.facts import cpu as cpufacts
from allocsim.kernel import cache
from allocsim.book.benchmarks.pcpu import _best
from allocsim.kernel.oracle import cache as oracle

NCPU = 16


def make_stream(name: str, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    cpus = rng.integers(0, NCPU, n)
    if name == "lifo":
        lines = cpus * 1_000_000 + rng.integers(0, 64, n)
        writes = rng.random(n) < 0.5
    elif name == "sweep":
        lines = cpus * 1_000_000 + (np.arange(n) // NCPU) % 4096
        writes = np.zeros(n, bool)
    elif name == "shared":
        lines = rng.integers(0, 4096, n)
        writes = rng.random(n) < 0.3
    else:
        raise ValueError(name)
    return cpus.astype(np.int64), lines.astype(np.int64), writes.astype(np.int64)


def run(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="allocsim bench cache", description=__doc__.splitlines()[0])
    ap.add_argument("--accesses", type=int, default=2_000_000, help="accesses per stream (default 2000000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is reported")
    ap.add_argument("--stream", choices=("lifo", "sweep", "shared", "all"), default="all")
    ap.add_argument("--models", action="store_true", help="also time the models with the hierarchy off and on")
    args = ap.parse_args(argv or [])
    g = cpufacts.geometry(3.0)
    names = ("lifo", "sweep", "shared") if args.stream == "all" else (args.stream,)
    n_ref = min(args.accesses, 100_000)
    print(f"default CPU: {cpufacts.load().machine}; {NCPU} simulated CPUs, clock 3.0 GHz")
    for name in names:
        cpus, lines, writes = make_stream(name, args.accesses)
        out = (np.zeros(len(lines)), np.zeros(len(lines), np.int64), np.zeros(len(lines), np.int64))
        CI, CF = cache.new_cache(NCPU, g)
        cache.run_stream(CI, CF, cpus[:10], lines[:10], writes[:10], *(a[:10] for a in out))  # compile / load

        def numba_run():
            CI, CF = cache.new_cache(NCPU, g)
            cache.run_stream(CI, CF, cpus, lines, writes, *out)
            return CI

        t = _best(numba_run, args.repeat)
        CI = numba_run()
        acc = list(zip(cpus[:n_ref].tolist(), lines[:n_ref].tolist(), writes[:n_ref].tolist()))
        spec = oracle.read_cpu(3.0)
        t_ref = _best(lambda: oracle.run_stream(NCPU, spec, acc), 1)
        rate, rate_ref = len(lines) / t, n_ref / t_ref
        mix = cache.counters(CI).sum(axis=0)
        shares = ", ".join(f"{k} {100 * v / len(lines):.1f} %" for k, v in zip(cache.COUNTER_NAMES, mix) if v)
        print(f"{name:6s}: numba {rate / 1e6:7.1f} M accesses/s ({len(lines)} in {t * 1e3:.1f} ms); "
              f"oracle {rate_ref / 1e6:6.3f} M/s; ratio {rate / rate_ref:5.0f}x")
        print(f"        mix: {shares}")
    if args.models:
        models(args.repeat)


def models(repeat: int) -> None:
    from allocsim.kernel import pcpu_list, slub
    from allocsim.workloads import iouring

    prog = iouring.program(iouring.IOUring())
    ops = prog.n_events
    runs = {
        "per-CPU list (front end)": lambda h: pcpu_list.simulate(prog, hierarchy=h),
        "SLUB 7.0 (sheaves)": lambda h: slub.run(prog, kernel="7.0", object_size=96, hierarchy=h),
        "SLUB 6.19 (cpu slab)": lambda h: slub.run(prog, kernel="6.19", object_size=96, hierarchy=h),
    }
    print(f"models on the default io_uring workload: {ops} simulated alloc/free operations")
    for name, fn in runs.items():
        rates = []
        for h in (False, True):
            fn(h)  # compile / load
            rates.append(ops / _best(lambda: fn(h), repeat))
        print(f"{name:26s}: hierarchy off {rates[0] / 1e6:6.1f} M ops/s, on {rates[1] / 1e6:6.1f} M ops/s")

"""Speed of the recorded-workload path: parsing tracefs text, loading a compact trace, and replaying it
through the numba models.

    python -m allocsim bench record [--lines N] [--repeat R]

Prints the figures; targets (issue 12): parsing >= 1 million trace lines/s; replay >= 10 million events/s
on the numba models. The tracefs text is rebuilt from the shipped trace in the kernel's own line format
(comm-pid, [cpu], irq-info flags, timestamp, event, call_site, ptr, bytes_req), repeated to ``--lines``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from allocsim.analysis import iops, runs
from allocsim.facts import tracefs
from allocsim.workloads import recorded

_FLAGS = {0: ".....", 1: "d.h1.", 2: "..s.."}


def tracefs_text(trace: recorded.Trace, lines: int) -> bytes:
    """The trace's events as tracefs ``trace_pipe`` lines, repeated (with later timestamps) to ``lines``."""
    ev = trace.events
    sites = trace.sites()
    comms = trace.meta.get("comms", {})
    out = []
    base_ptr = 0xFFFF888203700000
    reps = -(-lines // len(ev))
    t_end = int(ev["t_ns"].max()) + 1000
    for r in range(reps):
        for t, cpu, ctx, op, obj, pid, site in ev.itertuples(index=False):
            ts = t + r * t_end + 500_000_000_000
            comm = comms.get(str(pid), "<...>")
            head = f"{comm:>16}-{pid:<7} [{cpu:03d}] {_FLAGS[ctx]} {ts // 1_000_000_000:6d}.{(ts // 1000) % 1_000_000:06d}: "
            ptr = base_ptr + 96 * obj
            if op == 0:
                out.append(f"{head}kmalloc: call_site={sites[site]}+0xbb/0x8d0 ptr={ptr:016x} bytes_req=96 "
                           f"bytes_alloc=96 gfp_flags=GFP_KERNEL node=-1 accounted=false")
            else:
                out.append(f"{head}kfree: call_site={sites[site]}+0xbf/0x1d0 ptr={ptr:016x}")
            if len(out) >= lines:
                return ("\n".join(out) + "\n").encode()
    return ("\n".join(out) + "\n").encode()


def _best(fn, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (this process) over ``repeat`` runs. On a shared machine the CPU
    time is the cost of the work itself; the wall time also counts waiting for a core."""
    best, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return best, cpu


def _rate(n, t, unit):
    wall, cpu = t
    return f"{n / wall / 1e6:6.2f} M {unit}/s wall, {n / cpu / 1e6:6.2f} M {unit}/s CPU"


def run(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="allocsim bench record", description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="tracefs text lines to parse")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is reported")
    args = ap.parse_args(argv or [])
    tr = recorded.load()
    text = tracefs_text(tr, args.lines)
    n = text.count(b"\n")
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    t = _best(lambda: tracefs.parse_text(text), args.repeat)
    print(f"tracefs text parser:  {n:>9} lines:  {_rate(n, t, 'lines')}  (target >= 1 M lines/s)")
    t = _best(lambda: recorded.load(), args.repeat)
    print(f"compact trace loader: {len(tr.events):>9} rows:   {_rate(len(tr.events), t, 'rows')}")
    t = _best(lambda: recorded.to_program(tr), args.repeat)
    print(f"trace -> program:     {len(tr.events):>9} events: {_rate(len(tr.events), t, 'events')}")
    prog, _ = recorded.to_program(tr)
    setup = runs.Setup()
    print(f"replay of the shipped trace ({prog.n_events} events), numba models, after compilation:")
    total_ev, total_w, total_c = 0, 0.0, 0.0
    for k, a in iops.CONFIGS:
        fn = runs.model_fn(k, a, setup)
        fn(prog)  # compile / warm
        t = _best(lambda: fn(prog), args.repeat)
        total_ev += prog.n_events
        total_w += t[0]
        total_c += t[1]
        print(f"  {k:>4} {a:<13} {_rate(prog.n_events, t, 'events')}")
    print(f"  all six:           {_rate(total_ev, (total_w, total_c), 'events')}  (target >= 10 M events/s)")
    return None

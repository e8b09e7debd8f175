"""The model benchmarks (allocsim.book.benchmarks.pcpu / slub): the flags run, the lines they print carry
figures, and the per-CPU list's two compiled event loops (hierarchy off / on) give what one loop gave."""

import re

import numpy as np

from allocsim.book.benchmarks import pcpu as bench_pcpu
from allocsim.book.benchmarks import slub as bench_slub
from allocsim.analysis import microbench as mb
from allocsim.kernel import pcpu_list as pl
from allocsim.kernel.oracle import cache as oc
from allocsim.kernel.oracle.pcpu_list import run_reference
from allocsim.workloads import iouring


def test_bench_pcpu_hierarchy_flag_prints_rates_and_targets(capsys):
    bench_pcpu.run(["--ios", "300", "--repeat", "1", "--min-time", "0", "--hierarchy"])
    out = capsys.readouterr().out
    assert out.startswith("memory hierarchy on")
    assert re.search(r"numba front end \(simulate\): +[\d.]+ ms +[\d.]+ M ops/s", out)
    assert re.search(r"ratio numba front end / reference: +\d+x", out)
    assert re.search(r"targets: >= 20 M ops/s numba \((met|NOT met)\), >= 100x reference \((met|NOT met)\)", out)


def test_best_times_at_least_repeat_calls_and_fills_min_time():
    import time

    calls = []
    fn = lambda: (calls.append(1), time.sleep(0.002))
    t = bench_pcpu._best(fn, 3)  # no minimum time: exactly --repeat calls
    assert len(calls) == 3 and 0.002 <= t < 1
    calls.clear()
    bench_pcpu._best(fn, 2, min_time=0.05)  # then as many more as fit in min_time
    assert 5 <= len(calls) <= 26
    calls.clear()
    bench_pcpu._best(lambda: (calls.append(1), time.sleep(0.03)), 4, min_time=0.01)  # a long call: --repeat of them
    assert len(calls) == 4


def test_the_two_event_loops_agree_with_the_reference_on_and_off():
    prog = iouring.program(iouring.IOUring(ios=400, placement="independent", task_share=0.3, hardirq_share=0.4,
                                           softirq_share=0.3, cross_cpu_share=0.3, completion_order="random"))
    for hier in (False, True):
        front, fb, state = pl.simulate(prog, hierarchy=hier)
        ref = run_reference(prog, hierarchy=oc.read_cpu(3.0) if hier else None)
        assert [pl.PATHS[p] for p in front.event_path] == ref["event_path"]
        assert np.isclose(front.cycles, ref["cycles"])
        assert front.n_alloc + front.n_free == prog.n_events
        assert front.n_alloc == int((prog.op == pl.ALLOC).sum())
        assert (front.extra["event_memory"] is None) == (not hier)


def test_bench_slub_sweep_runs_with_and_without_the_hierarchy():
    """Small K stays in L1 (the hierarchy charges what the flat l1_hit does); the largest K of the grid
    sweeps more lines than L1 holds, so the hierarchy's sweep is dearer."""
    ks, caps = mb.heat_grid()
    pick = [ks[0], ks[-1]]
    off = bench_slub.heat_sweep(1, False, pick, caps[:1])
    on = bench_slub.heat_sweep(1, True, pick, caps[:1])
    assert list(off["K"]) == list(on["K"]) == pick
    assert np.isclose(on["cycles"].iloc[0], off["cycles"].iloc[0])
    assert on["cycles"].iloc[1] > off["cycles"].iloc[1] > 0

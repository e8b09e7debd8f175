"""Chapter 7's sections (allocsim.pages.workload: one function and one frozen dataclass each, glued by
field name) on a small hand-made trace, and the clauses whose wording follows the numbers."""

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from allocsim.analysis import iops, runs
from allocsim.analysis import workload as wl
from allocsim.kernel import pcpu_list
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK
from allocsim.pages import workload as views
from allocsim.pages.glue import Md
from allocsim.workloads import recorded


def _trace(free_ctx, n=48, meta=None):
    """``n`` objects allocated in task context on CPU 0, each freed 3 µs later on CPU ``i % 2`` in
    ``free_ctx(i)``; timestamps in ns."""
    rows = []
    for i in range(n):
        rows.append((1000 * i, 0, TASK, ALLOC, i % 8, 2, 0))
        rows.append((1000 * i + 500, i % 2, free_ctx(i), FREE, i % 8, 0, 0))
    f = pd.DataFrame(rows, columns=["t_ns", "cpu", "ctx", "op", "obj", "pid", "site"]).sort_values("t_ns", kind="stable")
    return recorded.from_frame(f.reset_index(drop=True), {"machine": {"ncpu": 2}, **(meta or {})})


@pytest.fixture(scope="module")
def soft():
    tr = _trace(lambda i: SOFTIRQ)
    prog, _ = recorded.to_program(tr, timing="none")
    return tr, wl.measure(tr), wl.replay(prog, object_size=96)


def test_recording_section(soft):
    tr, m, _ = soft
    r = views.recording(m, "the trace `t.csv.gz`")
    assert (r.n_events, r.n_allocs, r.n_frees) == (96, 48, 48)
    assert r.which_trace == "the trace `t.csv.gz`" and isinstance(r.which_trace, Md)
    assert r.rate == pytest.approx(m.allocs_per_second) and r.seconds == m.seconds
    assert r.edge_note == "Every allocation in the recording is matched to its free, and no free lacks its allocation."


def test_edge_words_capitalise_and_end_each_note():
    assert views.edge_words(["3 frees were left out", "2 objects stayed"]) == "3 frees were left out. 2 objects stayed."
    assert views.edge_words([]).startswith("Every allocation")


def test_assumptions_section(soft):
    _, m, _ = soft
    a = views.assumptions(m, runs.Setup())
    assert (a.soft_share, a.hard_share, a.task_share) == (100.0, 0.0, 0.0)
    assert a.cross_share == pytest.approx(50.0)  # every other free runs on CPU 1
    assert a.infl_max == 1 and a.qd == runs.Setup().queue_depth and a.batch_gap == wl.BATCH_GAP_US
    assert a.life_med == pytest.approx(0.5) and a.life_p99 == pytest.approx(0.5)
    assert a.dominant_ctx == "**softirq**" and a.vs_default == "where the book assumes `hardirq` by default"
    hard = views.assumptions(wl.measure(_trace(lambda i: HARDIRQ)), runs.Setup())
    assert hard.hard_share == 100.0 and hard.vs_default == "as the book assumes by default"


def test_default_words():
    assert views.default_words("task", "task") == "as the book assumes by default"
    assert views.default_words("task", "softirq") == "where the book assumes `softirq` by default"


def test_object_size_prefers_the_recorded_request():
    setup = runs.Setup()
    assert views.object_size(_trace(lambda i: TASK, n=2), setup) == setup.object_size
    assert views.object_size(_trace(lambda i: TASK, n=2, meta={"target": {"bytes_req": 200}}), setup) == 200


def test_replay_costs_name_every_configuration(soft):
    _, _, rp = soft
    ch5 = pd.Series({c: 10.0 * (i + 1) for i, c in enumerate(iops.CONFIGS)})
    ch5.index = pd.MultiIndex.from_tuples(ch5.index)
    c = views.replay_costs(rp, ch5)
    rc = rp.table.set_index(["kernel", "allocator"])["cycles/IO"]
    short = {"6.19": "619", "7.0": "70", "per-CPU list": "pcpu", "kmalloc": "kmalloc", "sheaf-256": "sheaf"}
    for i, (k, a) in enumerate(iops.CONFIGS):
        assert getattr(c, f"rc_{short[k]}_{short[a]}") == pytest.approx(rc[(k, a)])
        assert getattr(c, f"c5_{short[k]}_{short[a]}") == 10.0 * (i + 1)
    assert len(fields(c)) == 2 * len(iops.CONFIGS)


def test_pcpu_replay_on_softirq_frees(soft):
    _, _, rp = soft
    bypass, hits = wl.pcpu_front_shares(rp)
    assert bypass == 1.0 and hits == 0.0  # a softirq free goes straight to kfree(), so the lists stay empty
    p = views.pcpu_replay(rp, 96)
    assert (p.pcpu_bypass, p.pcpu_hits, p.size, p.n_configs) == (100.0, 0.0, 96, len(iops.CONFIGS))
    assert p.header == pcpu_list.header_size()
    assert p.pcpu_why.startswith("The reason is the context of the frees")
    t = rp.table.set_index(["kernel", "allocator"])["cycles/IO"]
    assert p.pcpu_vs_kmalloc == views.pcpu_vs_kmalloc_words(t[("7.0", "per-CPU list")], t[("7.0", "kmalloc")])


def test_pcpu_front_shares_with_task_frees():
    tr = _trace(lambda i: TASK)
    prog, _ = recorded.to_program(tr, timing="none")
    bypass, hits = wl.pcpu_front_shares(wl.replay(prog, object_size=96))
    assert bypass == 0.0 and 0.0 < hits <= 1.0
    assert views.pcpu_why_words(bypass).startswith("Most frees here run in task or hard-IRQ context")


def test_pcpu_vs_kmalloc_words():
    assert views.pcpu_vs_kmalloc_words(30.0, 20.04) == "costs **more** than plain kmalloc on 7.0 (30.0 against 20.0 cycles per IO)"
    assert views.pcpu_vs_kmalloc_words(20.0, 20.0).startswith("costs less than")
    assert views.pcpu_why_words(0.5).startswith("The reason") and views.pcpu_why_words(0.49).startswith("Most frees")


def test_worth_section_and_base():
    table = pd.DataFrame({"kernel": ["6.19", "6.19", "7.0", "7.0", "7.0"],
                          "allocator": ["per-CPU list", "kmalloc", "per-CPU list", "kmalloc", "sheaf-256"],
                          "ns/IO": [10.0, 20.0, 10.0, 15.0, 5.0]})
    w = wl.worth(table, 990.0)
    s = views.worth_section(w, 990.0, True)
    assert s.base == 990.0 and s.base_from == "your base cost"
    assert s.gain_619_k == pytest.approx(1.0) and s.gain_70_k == pytest.approx(0.5)
    assert s.gain_70_s == pytest.approx(100 * (995 / 1000 - 1))
    assert views.worth_section(w, 990.0, False).base_from.startswith("chapter 5's base cost")

    assert views.base_ns(50.0, 123.0) == 50.0 and views.base_ns(0.0, 123.0) == 123.0

"""A recorded trace as a workload: the parser against the shipped trace (golden counts), pointer → object
matching with its edges, conservation and determinism of the replay, and every bad trace file."""

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.analysis import iops, workload
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import slub
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK
from allocsim.workloads import recorded

from conftest import run_cli

SHIPPED = recorded.DEFAULT_TRACE


@pytest.fixture(scope="module")
def trace():
    return recorded.load()


def test_shipped_trace_golden_counts(trace):
    c = recorded.counts(trace)
    got = {(r.cpu, r.context, r.kind): r.events for r in c.itertuples()}
    assert got == {(0, "task", "alloc"): 50176, (1, "task", "alloc"): 70656, (1, "softirq", "free"): 120832}
    assert trace.meta["events"] == 241664 and trace.meta["machine"]["ncpu"] == 2
    assert trace.meta["target"]["alloc_sites"] == ["__iomap_dio_rw"]
    assert SHIPPED.stat().st_size < 2_000_000


def test_shipped_trace_matches_every_allocation_to_its_free(trace):
    ev, edges = recorded.match(trace)
    assert edges.freed_before_start == 0 and edges.alive_at_end == 0
    a = ev[ev.op == ALLOC].set_index("slot")
    f = ev[ev.op == FREE].set_index("slot")
    assert len(a) == len(f) == 120832
    assert set(a.index) == set(f.index) == set(range(120832))
    assert (f.loc[a.index, "t_ns"].to_numpy() >= a["t_ns"].to_numpy()).all()
    assert (f.loc[a.index, "obj"].to_numpy() == a["obj"].to_numpy()).all()


def _frame(rows):
    return recorded.from_frame(pd.DataFrame(rows, columns=["t_ns", "cpu", "ctx", "op", "obj", "pid", "site"]),
                               {"machine": {"ncpu": 2}})


def test_pointer_reuse_makes_new_objects_and_edges_are_reported():
    # pointer 5 is freed first (allocated before recording), then reused twice; pointer 7 stays alive
    tr = _frame([(0, 1, SOFTIRQ, FREE, 5, 1, 0), (1, 0, TASK, ALLOC, 5, 2, 0), (2, 0, TASK, ALLOC, 7, 2, 0),
                 (3, 1, HARDIRQ, FREE, 5, 1, 0), (4, 0, TASK, ALLOC, 5, 2, 0), (5, 0, TASK, FREE, 5, 2, 0)])
    ev, e = recorded.match(tr)
    assert e.freed_before_start == 1 and e.alive_at_end == 1 and len(e.notes) == 2
    assert ev["slot"].tolist() == [0, 1, 0, 2, 2]
    prog, _ = recorded.to_program(tr, timing="none")
    assert prog.n_slots == 3 and prog.start.tolist() == [0, 4, 5]
    assert prog.ctx.tolist() == [TASK, TASK, TASK, TASK, HARDIRQ]
    with pytest.raises(AllocsimError, match="1 frees of objects allocated before recording began"):
        recorded.match(tr, "strict")


def test_inconsistent_pointer_history_is_refused():
    tr = _frame([(0, 0, TASK, ALLOC, 5, 2, 0), (1, 0, TASK, ALLOC, 5, 2, 0)])
    with pytest.raises(AllocsimError, match="allocated twice without a free"):
        recorded.match(tr)
    tr = _frame([(0, 0, TASK, ALLOC, 5, 2, 0), (1, 0, TASK, FREE, 5, 2, 0), (2, 1, SOFTIRQ, FREE, 5, 2, 0)])
    with pytest.raises(AllocsimError, match="freed twice"):
        recorded.match(tr)


def test_recorded_timing_becomes_gaps():
    tr = _frame([(1000, 0, TASK, ALLOC, 1, 2, 0), (3000, 1, SOFTIRQ, FREE, 1, 0, 0), (4000, 0, TASK, ALLOC, 2, 2, 0)])
    prog, _ = recorded.to_program(tr, clock_ghz=2.0)
    assert prog.gap.tolist() == [2000, 6000, 6000]  # cpu 0: 1000 ns, then 3000 ns; cpu 1: 3000 ns from the start


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 2)), min_size=1, max_size=60),
       st.integers(0, 30))
def test_conversion_conserves_objects(ops, cut):
    """Random alloc/free histories of a few pointers, cut at a random start: every kept allocation is one
    slot, every kept free frees a slot allocated before it, nothing is lost or duplicated."""
    live, rows, t = set(), [], 0
    for cpu, ptr, ctx in ops:
        t += 1
        op = FREE if ptr in live else ALLOC
        (live.discard if op == FREE else live.add)(ptr)
        rows.append((t, cpu, ctx if op == FREE else TASK, op, ptr, 1, 0))
    rows = rows[min(cut, len(rows) - 1):]
    tr = _frame(rows)
    ev, e = recorded.match(tr)
    if e.events_out == 0:  # only frees of objects allocated before the cut
        with pytest.raises(AllocsimError, match="no event left to replay"):
            recorded.to_program(tr, timing="none")
        return
    prog, _ = recorded.to_program(tr, timing="none")
    allocs = prog.slot[prog.op == ALLOC]
    frees = prog.slot[prog.op == FREE]
    assert sorted(allocs.tolist()) == list(range(prog.n_slots))
    assert len(set(frees.tolist())) == len(frees)
    assert e.events_in == len(rows) and e.events_out == prog.n_events == len(rows) - e.freed_before_start
    assert e.alive_at_end == prog.n_slots - len(frees)
    # per CPU, the events keep the trace's order
    for c in range(prog.ncpu):
        want = ev[ev.cpu == c]["slot"].tolist()
        assert prog.slot[prog.start[c]:prog.start[c + 1]].tolist() == want


def test_replay_conserves_objects_in_every_slub_model(trace):
    prog, _ = recorded.to_program(trace)
    for kernel, kw in (("6.19", dict(kmalloc=True)), ("6.19", dict(kmalloc=False, sheaf_capacity=256)),
                       ("7.0", dict(kmalloc=True))):
        r = slub.run(prog, kernel=kernel, object_size=96, **kw)
        assert r.n_alloc == r.n_free == 120832
        summary = slub.audit(r)  # every object of every slab in exactly one place
        assert summary["allocated"] == 0
        objs = r.extra["slot_obj"]
        assert (objs >= 0).all()


def test_replay_is_deterministic_and_covers_every_configuration(trace):
    prog, _ = recorded.to_program(trace)
    a = workload.replay(prog)
    b = workload.replay(prog)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert [(r.kernel, r.allocator) for r in a.table.itertuples()] == list(iops.CONFIGS)
    t = a.table.set_index(["kernel", "allocator"])
    # the recorded frees all run in softirq context, which the per-CPU list hands straight to kfree
    front = a.results[("7.0", "per-CPU list")].extra["front"]
    assert front.stats["kfree_softirq"] == 120832 and front.stats["alloc_kmalloc"] == 120832
    assert t.loc[("7.0", "per-CPU list"), "cycles/IO"] > t.loc[("7.0", "kmalloc"), "cycles/IO"]
    assert (t["cycles/IO"] > 0).all()
    # the memory hierarchy is on by default (chapter 7's `hierarchy` parameter); off, no model keeps counters
    assert all(r.extra["hierarchy"] is not None for r in a.results.values())
    flat = workload.replay(prog, configs=[("7.0", "kmalloc")], hierarchy=False)
    assert flat.results[("7.0", "kmalloc")].extra["hierarchy"] is None


def test_measurement_of_the_shipped_trace(trace):
    m = workload.measure(trace)
    assert m.free_ctx == {"task": 0.0, "hardirq": 0.0, "softirq": 1.0}
    assert m.alloc_ctx["task"] == 1.0
    assert m.cross_cpu_share == pytest.approx(50176 / 120832)
    assert m.inflight_stats["max"] == 128  # fio --iodepth=128
    assert 1 <= m.batch_stats("submit")["max"] <= 128
    assert (m.lifetimes_us >= 0).all() and len(m.lifetimes_us) == 120832
    comp = workload.comparison(m)
    assert comp.set_index("quantity").loc["frees in hardirq context", "assumed"] == 1.0


def test_worth_in_iops():
    table = pd.DataFrame({"kernel": ["7.0", "7.0"], "allocator": ["per-CPU list", "kmalloc"], "ns/IO": [10.0, 20.0]})
    w = workload.worth(table, 990.0)
    assert w["M IOPS"].tolist() == pytest.approx([1.0, 1e3 / 1010])
    assert w.iloc[1]["per-CPU list gain %"] == pytest.approx(1.0)
    with pytest.raises(AllocsimError, match="base cost"):
        workload.worth(table, -1.0)


# --- the CLI and bad trace files ----------------------------------------------------------------------

def test_replay_cli_prints_measurement_and_replay():
    proc = run_cli("replay")
    assert proc.returncode == 0, proc.stderr
    assert "241664 events" in proc.stdout and "frees in softirq context" in proc.stdout
    for k, a in iops.CONFIGS:
        assert a in proc.stdout
    again = run_cli("replay").stdout
    strip = lambda s: [ln for ln in s.splitlines() if not ln.startswith("replay of")]  # wall time differs
    assert strip(proc.stdout) == strip(again)


def _copy(tmp_path, name="t.csv.gz"):
    dst = tmp_path / name
    shutil.copy(SHIPPED, dst)
    shutil.copy(recorded.meta_path(SHIPPED), recorded.meta_path(dst))
    return dst


def _err(proc):
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_bad_traces_are_one_sentence(tmp_path):
    assert "does not exist" in _err(run_cli("replay", str(tmp_path / "nope.csv.gz")))
    # empty
    e = tmp_path / "empty.csv.gz"
    with gzip.open(e, "wb"):
        pass
    shutil.copy(recorded.meta_path(SHIPPED), recorded.meta_path(e))
    assert "is empty" in _err(run_cli("replay", str(e)))
    # truncated gzip
    t = _copy(tmp_path, "trunc.csv.gz")
    t.write_bytes(SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 2])
    assert "truncated" in _err(run_cli("replay", str(t)))
    # truncated rows (a clean gzip of fewer lines than the metadata says)
    r = _copy(tmp_path, "rows.csv.gz")
    text = gzip.decompress(SHIPPED.read_bytes()).split(b"\n")
    r.write_bytes(gzip.compress(b"\n".join(text[:1000]) + b"\n"))
    assert "truncated or from another recording" in _err(run_cli("replay", str(r)))
    # no metadata
    n = tmp_path / "nometa.csv.gz"
    shutil.copy(SHIPPED, n)
    assert "no metadata" in _err(run_cli("replay", str(n)))
    # another call site
    o = _copy(tmp_path, "other.csv.gz")
    meta = json.loads(recorded.meta_path(o).read_text())
    meta["target"]["alloc_sites"] = ["alloc_skb"]
    recorded.meta_path(o).write_text(json.dumps(meta))
    assert "recorded for allocations from alloc_skb, not __iomap_dio_rw" in _err(run_cli("replay", str(o)))
    assert run_cli("replay", str(o), "--alloc-site", "any", "--no-replay").returncode == 0


def test_unmatched_frees_cli(tmp_path):
    """A trace that starts mid-flight: trim reports the early frees; strict refuses with one sentence."""
    u = tmp_path / "mid.csv.gz"
    lines = gzip.decompress(SHIPPED.read_bytes()).split(b"\n")
    body = [ln for ln in lines[1:] if ln]
    cut = 5000
    u.write_bytes(gzip.compress(b"\n".join([lines[0]] + body[cut:]) + b"\n"))
    meta = json.loads(recorded.meta_path(SHIPPED).read_text())
    meta["events"] = len(body) - cut
    recorded.meta_path(u).write_text(json.dumps(meta))
    proc = run_cli("replay", str(u), "--no-replay")
    assert proc.returncode == 0 and "frees of objects allocated before recording began were left out" in proc.stdout
    assert "allocated before recording began" in _err(run_cli("replay", str(u), "--edges", "strict"))
    tr = recorded.load(u)
    ev, e = recorded.match(tr)
    assert 0 < e.freed_before_start <= 128 and e.events_out == len(body) - cut - e.freed_before_start


def test_chapter_views_and_spec(trace):
    from allocsim.pages import params
    from allocsim.pages import workload as views

    tr, which = views.load_trace("data/traces/iomap_dio-fio-randread-qd128.csv.gz")
    assert which == "the trace shipped with the book" and len(tr.events) == 241664
    m = workload.measure(tr)
    c = views.counts_table(m)
    assert c["all"].sum() == 241664 and c["all"].dtype.kind == "i"
    t = views.machine_table(tr, m).set_index("")
    assert "-p0 -d128 -s32 -c32 -n1" in t.loc["load", "value"] and "4 KiB" in t.loc["load", "value"]
    with pytest.raises(AllocsimError, match="parameter trace must be 'live' or a trace"):
        params.spec("workload").validate({"trace": "no/such/trace.csv.gz"})
    assert params.spec("workload").validate({"trace": "live"}).trace == "live"

"""The uncertainty study (distributions, design, per-sample runs, Sobol' indices) and the sweep engine on
local Dask worker processes: identical results whatever the worker count, reuse, resume, bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from allocsim.analysis import runs, sweep
from allocsim.analysis import uncertainty as unc
from allocsim.facts import costs
from allocsim.facts.errors import AllocsimError, DataError
from conftest import run_cli

SMALL = unc.Study(setup=runs.Setup(ios=4224), samples=2)


# ---- distributions -------------------------------------------------------------------------------------

@given(u=st.floats(0, 1), lo=st.floats(0, 100), w=st.floats(0.1, 100), m=st.floats(0, 1))
def test_triangular_ppf_agrees_with_scipy(u, lo, w, m):
    d = unc.Dist("x", "triangular", lo, lo + w, lo + m * w)
    want = stats.triang(c=m, loc=lo, scale=w).ppf(u)
    assert d.ppf(u) == pytest.approx(want, rel=1e-9, abs=1e-9)


@given(us=st.lists(st.floats(0, 1), min_size=2, max_size=20))
def test_every_cost_stays_in_its_cited_range_and_groups_move_together(us):
    U = unc.load()
    unit = np.array([[u] * len(U.factors) for u in us])
    vals = U.values(unit)
    t = costs.load()
    for j, k in enumerate(costs.KEYS):
        assert (vals[:, j] >= t.rows[k]["low"]).all() and (vals[:, j] <= t.rows[k]["high"]).all()
    order = np.argsort(us, kind="stable")
    for f in U.factors:
        for k in f.members:  # every member is monotone in the group's one quantile
            col = vals[order, costs.IDX[k]]
            assert (np.diff(col) >= -1e-12).all()


def test_the_file_defines_groups_triangles_and_fixed_rows():
    U = unc.load()
    names = {f.name: f.members for f in U.factors}
    assert names["cache_latencies"] == ("l1_hit", "l2_hit", "l3_hit")
    # the sheaves' trylock is steps (preempt_pair + loads), not a row: preempt_pair is an input of its own
    assert "preempt_count" not in names and [f.members for f in U.factors if "preempt_pair" in f.members] == [("preempt_pair",)]
    assert U.dists["memcg_account"].kind == "triangular" and U.dists["memcg_account"].mode == 8.9
    assert U.dists["cacheline_transfer"].kind == "triangular" and U.dists["cacheline_transfer"].mode == 80
    assert U.dists["spin_lock_pair"].fixed and "spin_lock_pair" not in {k for f in U.factors for k in f.members}


@pytest.mark.parametrize("text, message", [
    ("costs:\n  cacheline_transfer: {distribution: triangular, mode: 500, why: x}\n",
     r"cost_uncertainty.yaml → costs → cacheline_transfer → mode is 500, outside the cost's cited range 68..440 in data/costs.csv"),
    ("costs:\n  l3_hit: {distribution: uniform, low: 10, why: x}\n",
     r"→ costs → l3_hit → low is 10, outside the cost's cited range 40..75"),
    ("costs:\n  l3_hit: {distribution: lognormal, why: x}\n", r"→ costs → l3_hit → distribution is 'lognormal'; allowed: uniform, triangular"),
    ("costs:\n  l3_hit: {distribution: uniform}\n", r"→ costs → l3_hit → why is empty"),
    ("costs:\n  l4_hit: {distribution: uniform, why: x}\n", r"→ costs → l4_hit names no cost"),
    ("groups:\n  g: {members: [l1_hit, nope], why: x}\n", r"→ groups → g → members names 'nope', which is no cost"),
    ("groups:\n  a: {members: [l1_hit, l2_hit], why: x}\n  b: {members: [l1_hit, l3_hit], why: x}\n",
     r"names 'l1_hit', which is already in group 'a'"),
    ("costs: [1, 2]\n", r"→ costs must be a mapping"),
])
def test_a_bad_distribution_row_is_one_sentence_naming_file_row_and_field(tmp_path, text, message):
    p = tmp_path / "cost_uncertainty.yaml"
    p.write_text(text)
    with pytest.raises(DataError, match=message) as e:
        unc.load(path=p)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("n", [0, 3, -4, 2 ** 17, True])
def test_sample_count_must_be_a_power_of_two(n):
    with pytest.raises(AllocsimError, match=r"the sample count must be a power of two from 2 to 65536"):
        unc.Study(samples=n).validate()


def test_the_design_is_a_pure_function_of_the_study():
    a, b = SMALL.design(), SMALL.design()
    assert a.equals(b) and len(a) == SMALL.n_runs == 2 * (len(SMALL.uncertainty().factors) + 2)
    assert not unc.Study(setup=SMALL.setup, samples=2, seed=1).design().equals(a)
    assert SMALL.key() == unc.Study(setup=runs.Setup(ios=4224), samples=2).key() != unc.Study(samples=2).key()


def test_the_sweep_cache_is_keyed_on_the_hierarchy_switch():
    """Chapter 6's `hierarchy` parameter: a sweep with it off is another file, never the one with it on."""
    off = unc.Study(setup=replace(SMALL.setup, hierarchy=False), samples=2)
    assert SMALL.setup.hierarchy is True and off.key() != SMALL.key()
    assert off.key(sweep.code_digest()) != SMALL.key(sweep.code_digest())


def test_the_cache_rows_price_only_slow_path_loads_with_the_hierarchy_on():
    """With the hierarchy on, l1_hit/l2_hit/l3_hit price only the loads the slow paths charge flat; off, every
    hot-path load (the 7.0 sheaf hit's among them)."""
    u = unc.cache_row_uses(SMALL.setup, 3.0, 2400)
    assert 0 <= u["on"] < 1 < u["off"]


def test_a_sample_at_the_cited_values_is_chapter_5s_reproduction():
    s = runs.Setup(ios=4224)
    rep = runs.reproduce(s)
    row = unc.nominal(unc.Study(setup=s))
    for c in runs.iops.CONFIGS:
        assert row[unc.column("M IOPS", c)] == rep.predicted_miops(*c)
    assert row["base_ns"] == rep.calibration.base_ns


def test_sobol_indices_find_the_one_input_an_output_depends_on():
    """A differential test of the wrapper: outputs built from one input's value by a formula."""
    study = unc.Study(setup=SMALL.setup, samples=64)
    d = study.design()
    f = d.copy()
    for c in runs.iops.CONFIGS:
        f[unc.column("cycles", c)] = 20.0
        f[unc.column("M IOPS", c)] = 1.19
    f[unc.column("cycles", ("7.0", "sheaf-256"))] = 20.0 + 3 * d["percpu_cmpxchg16b"]
    f[unc.column("M IOPS", ("6.19", "per-CPU list"))] = 1.19 + 0.001 * d["l3_hit"] ** 2
    sob = unc.sobol(f, study)
    edge = sob[sob["output"] == "edge ns/IO"].set_index("input")
    assert edge.index[0] == "percpu_cmpxchg16b" and edge.loc["percpu_cmpxchg16b", "ST"] == pytest.approx(1, abs=0.1)
    assert edge.drop("percpu_cmpxchg16b")["ST"].abs().max() < 1e-9
    gain = sob[sob["output"] == "patch gain %"].set_index("input")
    assert gain.index[0] == "cache_latencies"
    assert unc.ranking(sob, "edge ns/IO")["ranked"] == 1
    with pytest.raises(AllocsimError, match=f"need all {study.n_runs} runs"):
        unc.sobol(f.iloc[:-1], study)
    # the bootstrap intervals are seeded: the same runs give the same intervals, also for seed 0
    assert study.seed == 0 and unc.sobol(f, study).equals(sob)


# ---- the engine on local worker processes ----------------------------------------------------------------

def _serial(study):
    rows = [unc.run_sample(study.setup, study.clock_ghz, study.calibrate_on, r) for r in study.design().to_numpy()]
    return pd.DataFrame(rows)


def _children():
    """Child processes, less multiprocessing's resource tracker (one per interpreter, by design)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_local_workers_give_the_serial_results_sample_by_sample_and_leave_no_process(tmp_path):
    before = {p.pid for p in _children()}
    ref = _serial(SMALL)
    one = sweep.run(SMALL, workers=1, cache_dir=tmp_path / "one", chunk=8, batch=2)
    two = sweep.run(SMALL, workers=2, cache_dir=tmp_path / "two", chunk=8, batch=4)
    assert one.workers == 1 and two.workers == 2 and one.computed == two.computed == SMALL.n_runs
    for r in (one, two):
        assert (r.frame[ref.columns].to_numpy() == ref.to_numpy()).all()
        assert list(r.frame.index) == list(range(SMALL.n_runs))
        assert r.path.name == f"{SMALL.key(sweep.code_digest())}.parquet" and r.path.exists()
        assert not r.path.with_suffix(".parts").exists()
    assert {p.pid for p in _children()} <= before, "a Dask worker or nanny outlived the sweep"


def test_a_finished_sweep_is_reused_and_an_interrupted_one_resumes(tmp_path):
    part = sweep.run(SMALL, workers=1, cache_dir=tmp_path, chunk=4, batch=2, limit=2)
    assert not part.path.name.endswith(".parquet") and len(part.frame) == 8 and part.computed == 8
    full = sweep.run(SMALL, workers=1, cache_dir=tmp_path, chunk=4, batch=2)
    assert full.resumed == 8 and full.computed == SMALL.n_runs - 8 and any("resumed" in n for n in full.notes())
    again = sweep.run(SMALL, cache_dir=tmp_path, chunk=4, batch=2)
    assert again.reused and again.computed == 0 and again.frame.equals(full.frame)
    assert (full.frame[_serial(SMALL).columns].to_numpy() == _serial(SMALL).to_numpy()).all()


def test_a_broken_part_file_is_recomputed(tmp_path):
    sweep.run(SMALL, workers=1, cache_dir=tmp_path, chunk=4, batch=2, limit=1)
    parts = next(tmp_path.glob("*.parts"))
    (parts / "chunk-00000.parquet").write_bytes(b"not parquet")
    full = sweep.run(SMALL, workers=1, cache_dir=tmp_path, chunk=4, batch=2)
    assert full.resumed == 0 and full.computed == SMALL.n_runs


def test_workers_compile_once_each_not_per_task(tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as c, \
            Client(c) as client:
        client.register_plugin(sweep.WarmUp(), name=sweep.WarmUp.name)
        futs = client.map(sweep.run_batch, [SMALL.setup] * 6, [3.0] * 6, ["all"] * 6, [[i] for i in range(6)],
                          [SMALL.design().to_numpy()[[i]] for i in range(6)], pure=False)
        client.gather(futs)
        states = client.run(sweep.worker_state)
    assert len(states) == 2
    for s in states.values():
        assert s["warmed"]["pid"] == s["pid"] and s["warmed"]["count"] == 1 and s["warmed"]["seconds"] > 0


@pytest.mark.parametrize("kw, message", [
    ({"scheduler": "localhost:8786"}, r"--scheduler must be a Dask scheduler address such as tcp://HOST:PORT, not 'localhost:8786'"),
    ({"workers": 0}, r"the number of local workers must be an integer >= 1, not 0"),
    ({"chunk": 6, "batch": 4}, r"chunk \(6\) must be a multiple of batch \(4\)"),
])
def test_bad_engine_arguments_are_one_sentence(tmp_path, kw, message):
    with pytest.raises(AllocsimError, match=message):
        sweep.run(SMALL, cache_dir=tmp_path, **kw)


def test_the_environment_variable_names_the_scheduler(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    assert sweep.scheduler_address(None) == "tcp://127.0.0.1:9"
    assert sweep.scheduler_address("tcp://127.0.0.1:10") == "tcp://127.0.0.1:10"
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "nowhere")
    with pytest.raises(AllocsimError, match="DASK_SCHEDULER_ADDRESS must be a Dask scheduler address"):
        sweep.scheduler_address(None)


# ---- the command line ------------------------------------------------------------------------------------

def test_cli_sweep_runs_and_reuses(tmp_path):
    args = ("sweep", "--samples", "2", "--ios", "4224", "--workers", "2", "--cache-dir", str(tmp_path), "--quiet")
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr
    n = unc.Study(samples=2).n_runs  # 2 × (inputs + 2)
    assert f"{n} samples (2 Sobol' base samples): {n} computed on 2 local worker processes" in p.stdout
    assert "P(> one step)" in p.stdout and "Sobol' total indices of the edge" in p.stdout
    p2 = run_cli(*args)
    assert p2.returncode == 0 and "reused" in p2.stdout


@pytest.mark.parametrize("args, message", [
    (("--samples", "0"), "error: the sample count must be a power of two from 2 to 65536"),
    (("--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"), "error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s"),
    (("--ios", "100"), "error: io_uring ios (100) must exceed warmup (4096)"),
])
def test_cli_bad_input_is_one_sentence_and_exit_2(tmp_path, args, message):
    p = run_cli("sweep", "--quiet", "--cache-dir", str(tmp_path), *args)
    assert p.returncode == 2 and p.stderr.startswith(message) and p.stderr.count("\n") == 1, p.stderr


def test_cli_distribution_outside_its_range_is_one_sentence_and_exit_2(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("costs:\n  memcg_account: {distribution: triangular, mode: 200, why: x}\n")
    p = run_cli("sweep", "--quiet", "--distributions", str(f), "--cache-dir", str(tmp_path))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "memcg_account → mode is 200, outside the cost's cited range 8.7..12" in p.stderr

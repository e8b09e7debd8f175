"""The sweep on a real Dask cluster: a `dask scheduler` and two `dask worker` processes started on 127.0.0.1
(free ports, torn down after each test, and checked to be gone). The results through the address are the
local run's, sample by sample; a worker killed mid-sweep changes nothing; a cluster that loses every worker
stops with one sentence and resumes later."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from allocsim.analysis import runs, sweep
from allocsim.analysis import uncertainty as unc
from allocsim.facts.errors import AllocsimError
from conftest import run_cli

DASK = str(Path(sys.executable).with_name("dask"))
STUDY = unc.Study(setup=runs.Setup(ios=4224), samples=4)  # 40 runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("dask scheduler did not open its port")


class Cluster:
    def __init__(self, log_dir: Path):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.logs = []
        self.scheduler = self._start([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--dashboard-address", "127.0.0.1:0"], "scheduler")
        _wait_port(self.port, self.scheduler)
        self.workers = [self.add_worker(i) for i in range(2)]
        self.wait_workers(2)

    def _start(self, cmd, name):
        out = open(self.log_dir / f"{name}.log", "ab")
        self.logs.append(out)
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def add_worker(self, i):
        return self._start([DASK, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                            "--no-nanny", "--no-dashboard", "--name", f"w{i}", "--death-timeout", "30"], f"worker{i}")

    def wait_workers(self, n, timeout=120):
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(n, timeout=timeout)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for f in self.logs:
            f.close()


def _cluster(log_dir):
    c = Cluster(log_dir)
    try:
        yield c
    finally:
        c.close()
        alive = [p.pid for p in c.procs if psutil.pid_exists(p.pid) and psutil.Process(p.pid).status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"scheduler or worker processes still running: {alive}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the tests that leave it as they found it."""
    yield from _cluster(tmp_path_factory.mktemp("cluster"))


@pytest.fixture
def fresh_cluster(tmp_path):
    """A cluster of its own for a test that kills workers."""
    yield from _cluster(tmp_path)


@pytest.fixture(scope="module")
def local_result(tmp_path_factory):
    """The reference: the same study on local worker processes."""
    return sweep.run(STUDY, workers=2, cache_dir=tmp_path_factory.mktemp("local"), chunk=8, batch=2).frame


def test_a_sweep_through_the_scheduler_address_is_the_local_run(cluster, tmp_path, local_result):
    from distributed import Client

    def warm_counts():
        with Client(cluster.address, set_as_default=False) as c:
            return {s["pid"]: s["warmed"].get("count", 0) for s in c.run(sweep.worker_state).values()}

    before = warm_counts()
    res = sweep.run(STUDY, scheduler=cluster.address, cache_dir=tmp_path / "c", chunk=8, batch=2)
    assert res.engine == f"scheduler {cluster.address}" and res.workers == 2 and res.computed == STUDY.n_runs
    assert res.frame.equals(local_result)
    assert not res.lost_workers and not res.notes()
    # each worker warmed up (compiled the models) once for this sweep's 20 tasks, not once per task
    after = warm_counts()
    assert set(after) == set(before) and all(after[p] == before[p] + 1 for p in after)


def test_the_environment_variable_reaches_the_same_cluster(cluster, tmp_path, local_result, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.address)
    res = sweep.run(STUDY, cache_dir=tmp_path, chunk=8, batch=2)
    assert res.engine == f"scheduler {cluster.address}" and res.frame.equals(local_result)


def test_a_worker_killed_mid_sweep_loses_nothing_and_counts_nothing_twice(fresh_cluster, tmp_path, local_result):
    cluster = fresh_cluster
    killed = []
    seen = []

    def on_progress(done, total):
        seen.append(done)
        if not killed and done >= 6:
            os.kill(cluster.workers[0].pid, signal.SIGKILL)
            killed.append(done)

    res = sweep.run(STUDY, scheduler=cluster.address, cache_dir=tmp_path, chunk=8, batch=2, on_progress=on_progress)
    assert killed and cluster.workers[0].wait(timeout=10) == -signal.SIGKILL
    assert res.frame.equals(local_result)
    assert seen[-1] == STUDY.n_runs and seen == sorted(seen)  # the count never passes the total
    assert len(res.lost_workers) == 1
    assert any("1 worker left during the sweep" in n and "counted once" in n for n in res.notes())


def test_losing_every_worker_is_one_sentence_and_the_sweep_resumes(fresh_cluster, tmp_path, local_result):
    cluster = fresh_cluster
    killed = []

    def on_progress(done, total):
        if not killed and done >= 16:
            # let more tasks finish first: their results are then reported done but held by the workers killed
            # next, which the sweep must neither wait on for ever nor count (it once hung here in CI)
            time.sleep(1.0)
            for w in cluster.workers:
                os.kill(w.pid, signal.SIGKILL)
            killed.append(done)

    with pytest.raises(AllocsimError, match=r"every Dask worker has left \(\d lost\) and none came back within 3 s; "
                                            r"the sweep stopped and its \d+ finished chunks are kept for a resume") as e:
        sweep.run(STUDY, scheduler=cluster.address, cache_dir=tmp_path, chunk=8, batch=2, on_progress=on_progress,
                  no_worker_grace=3)
    assert "\n" not in str(e.value)
    kept = len(list(tmp_path.glob("*.parts/chunk-*.parquet")))
    assert f"its {kept} finished chunks" in str(e.value)
    cluster.add_worker(5)
    cluster.wait_workers(1)
    res = sweep.run(STUDY, scheduler=cluster.address, cache_dir=tmp_path, chunk=8, batch=2)
    assert res.resumed == 8 * kept and res.resumed + res.computed == STUDY.n_runs
    assert res.frame.equals(local_result)


def test_a_scheduler_without_workers_is_one_sentence(tmp_path):
    port = _free_port()
    p = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_port(port, p)
        with pytest.raises(AllocsimError, match=rf"the Dask scheduler at tcp://127.0.0.1:{port} has no workers after 2 s; "
                                                rf"start some with `dask worker tcp://127.0.0.1:{port}`"):
            sweep.run(STUDY, scheduler=f"tcp://127.0.0.1:{port}", cache_dir=tmp_path, no_worker_grace=2)
    finally:
        p.terminate()
        p.wait(timeout=20)
    assert p.poll() is not None


def test_an_unreachable_scheduler_is_one_sentence(tmp_path):
    addr = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(AllocsimError, match=rf"cannot reach the Dask scheduler at {addr} within 2 s \(\w+\); start one "
                                            r"with `dask scheduler` or leave --scheduler out to use local worker processes"):
        sweep.run(STUDY, scheduler=addr, cache_dir=tmp_path, connect_timeout=2)
    assert not list(tmp_path.iterdir()), "a failed start leaves nothing to resume, and no empty folder"


def test_cli_sweep_through_the_scheduler(cluster, tmp_path, local_result):
    p = run_cli("sweep", "--samples", "4", "--ios", "4224", "--scheduler", cluster.address, "--cache-dir", str(tmp_path),
                "--quiet")
    assert p.returncode == 0, p.stderr
    assert f"{unc.Study(samples=4).n_runs} computed on scheduler {cluster.address}" in p.stdout
    import pandas as pd

    out = pd.read_parquet(next(tmp_path.glob("*.parquet")))
    assert out.equals(local_result)

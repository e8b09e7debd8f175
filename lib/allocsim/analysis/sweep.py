"""The sweep engine: an uncertainty study's runs (:mod:`allocsim.analysis.uncertainty`) on Dask distributed.

    from allocsim.analysis import sweep, uncertainty
    res = sweep.run(uncertainty.Study(samples=64))                          # local worker processes, all cores
    res = sweep.run(study, scheduler="tcp://10.0.0.5:8786")               # an existing Dask cluster
    res.frame                                                             # one row per run, by sample number

**Engines.** The default is a ``distributed.LocalCluster`` of worker processes on 127.0.0.1, one worker per
core and one thread each. Given a scheduler address (``scheduler=`` or the ``DASK_SCHEDULER_ADDRESS``
variable, Dask's own convention), the engine is the workers of that cluster. Either way a task is a batch
of samples, and a sample's result is a pure function of its row of the design. So the results are
identical, sample by sample, whatever the engine and however many workers it has.

**Compiling once per worker.** A worker plugin (:class:`WarmUp`) runs one small sample when a worker
joins. The numba models are therefore compiled, or loaded from numba's on-disk cache, once per worker
process, and no task pays for it.

**Results and resuming.** Results go to ``_build/sweeps/<hash of the inputs>.parquet``. The hash covers
the study, the cost table, the distributions file, and the sources of the models and their data. A
finished file is reused. While a sweep runs, every finished chunk of samples is written to
``<hash>.parts/`` (each written under a temporary name and then renamed), so an interrupted sweep resumes
from its last chunk.

**A worker that dies.** The scheduler gives the lost worker's tasks to another worker. Each sample's
result is stored once, by its number: nothing is lost and nothing is counted twice, and the sweep reports
the loss in one sentence. A batch that kills workers again and again (Dask's ``allowed-failures``), or a
cluster left with no workers, stops the sweep with one sentence, and the finished chunks are kept for a
resume.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from allocsim.analysis import uncertainty
from allocsim.facts import costs as _costs
from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import BUILD, DATA

CACHE = BUILD / "sweeps"
BATCH = 4  # samples per task (a few tenths of a second of work)
CHUNK = 64  # samples per part file
NO_WORKER_GRACE_S = 60.0  # how long a cluster may have no worker before the sweep gives up
_ADDRESS = re.compile(r"^(tcp|tls)://\[?[A-Za-z0-9.\-:]+\]?:\d{1,5}$")

#: filled in each worker process by :class:`WarmUp`: {"pid": ..., "seconds": ..., "count": ...}
WARMED: dict = {}


def code_digest() -> str:
    """A digest of what a sample's numbers depend on besides the study: the model sources (facts, kernel,
    workloads, analysis) and the data files."""
    h = hashlib.sha256()
    pkg = Path(__file__).resolve().parents[1]
    files = [f for wing in ("facts", "kernel", "workloads", "analysis") for f in sorted((pkg / wing).rglob("*.py"))]
    files += sorted(f for f in DATA.rglob("*") if f.is_file())
    for f in files:
        if "__pycache__" in f.parts:
            continue
        h.update(str(f.relative_to(pkg.parent) if f.is_relative_to(pkg.parent) else f.relative_to(DATA)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


# ---- what a worker runs --------------------------------------------------------------------------------

def run_batch(setup, clock_ghz: float, calibrate_on: str, indices, rows, reported=None) -> list[tuple[int, dict]]:
    """A task: the samples ``indices`` with cost values ``rows`` (one row per sample), fitted on the
    ``reported`` figures."""
    return [(int(i), uncertainty.run_sample(setup, clock_ghz, calibrate_on, row, reported)) for i, row in zip(indices, rows)]


def warm_up() -> dict:
    """Run one short sample so every numba model is compiled (or loaded from the disk cache) in this
    process; later calls find the compiled code in memory."""
    from allocsim.analysis import runs

    if not WARMED:
        t = time.perf_counter()
        s = runs.Setup(ios=4160 + 64)
        table = _costs.load(s.cost_table)
        uncertainty.run_sample(s, 3.0, "all", [table.rows[k]["cycles"] for k in _costs.KEYS])
        WARMED.update(pid=os.getpid(), seconds=time.perf_counter() - t, count=0)
    WARMED["count"] += 1
    return dict(WARMED)


try:  # the plugin needs distributed; the rest of the module does not
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - distributed is in the lock
    _WorkerPlugin = object


class WarmUp(_WorkerPlugin):
    """Worker plugin: compile the models once when a worker starts (in a thread, so the worker keeps
    answering the scheduler's heartbeats)."""

    name = "allocsim-warm-up"

    async def setup(self, worker):
        await asyncio.get_running_loop().run_in_executor(None, warm_up)


def worker_state() -> dict:
    """This worker process: pid, resident memory (bytes), CPU seconds used, and the warm-up record."""
    import psutil

    p = psutil.Process()
    t = p.cpu_times()
    return {"pid": os.getpid(), "rss": p.memory_info().rss, "cpu": t.user + t.system, "warmed": dict(WARMED)}


# ---- the driver -------------------------------------------------------------------------------------------

@dataclass
class Result:
    frame: pd.DataFrame  # one row per run: the cost values and the outputs, index = sample number
    path: Path
    reused: bool  # the finished file was there already
    computed: int = 0  # samples computed by this call
    resumed: int = 0  # samples taken from the part files of an interrupted sweep
    seconds: float = 0.0
    engine: str = ""
    workers: int = 0
    lost_workers: list = field(default_factory=list)
    compute_seconds: float = 0.0  # from the workers being warm to the last sample
    worker_rss: dict = field(default_factory=dict)  # worker address -> resident memory (bytes) at the end
    worker_cpu: float = 0.0  # CPU seconds the workers spent from warm to the last sample

    @property
    def rate(self) -> float:
        """Samples per second computed by this call once the workers were warm (0 when nothing was computed)."""
        return self.computed / self.compute_seconds if self.computed and self.compute_seconds > 0 else 0.0

    def notes(self) -> list[str]:
        out = []
        if self.reused:
            out.append(f"reused the finished sweep {self.path.name} ({len(self.frame)} samples)")
        if self.resumed:
            out.append(f"resumed an interrupted sweep: {self.resumed} samples were already on disk")
        if self.lost_workers:
            n = len(self.lost_workers)
            out.append(f"{n} worker{'s' if n > 1 else ''} left during the sweep ({', '.join(self.lost_workers)}); "
                       "the scheduler re-ran their samples elsewhere and every sample is counted once")
        return out


def scheduler_address(scheduler: str | None) -> str | None:
    """``scheduler``, else ``DASK_SCHEDULER_ADDRESS``, else None (local workers); checked for form."""
    addr = scheduler if scheduler else os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if addr is not None and not _ADDRESS.match(addr):
        src = "--scheduler" if scheduler else "DASK_SCHEDULER_ADDRESS"
        raise AllocsimError(f"{src} must be a Dask scheduler address such as tcp://HOST:PORT, not {addr!r}")
    return addr


def _read_part(p: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(p)
    except Exception:  # a part cut short by a crash: recompute it
        p.unlink(missing_ok=True)
        return None


def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, engine="pyarrow", index=True)
    os.replace(tmp, path)


def _connect(addr: str | None, workers: int | None, connect_timeout: float):
    """(client, cluster or None, engine description)."""
    import logging

    from distributed import Client, LocalCluster

    if addr is not None:
        try:
            client = Client(addr, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise AllocsimError(f"cannot reach the Dask scheduler at {addr} within {connect_timeout:g} s "
                                f"({type(exc).__name__}); start one with `dask scheduler` or leave --scheduler out "
                                "to use local worker processes") from None
        return client, None, f"scheduler {addr}"
    n = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise AllocsimError(f"the number of local workers must be an integer >= 1, not {workers!r}")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
    client = Client(cluster, set_as_default=False)
    return client, cluster, f"{n} local worker process{'es' if n > 1 else ''}"


def _workers(client) -> set:
    """The addresses of the scheduler's workers now (asked directly: the client's cached identity may be
    refreshed in the background without the per-worker part)."""
    return set(client.sync(client.scheduler.identity, n_workers=-1).get("workers", {}))


def _wait_for_workers(client, addr, timeout):
    t0 = time.monotonic()
    while not _workers(client):
        if time.monotonic() - t0 > timeout:
            raise AllocsimError(f"the Dask scheduler at {addr} has no workers after {timeout:g} s; "
                                f"start some with `dask worker {addr}`")
        time.sleep(0.2)


def run(study: uncertainty.Study, *, scheduler: str | None = None, workers: int | None = None,
        cache_dir: Path | None = None, progress=False, on_progress=None, batch: int = BATCH, chunk: int = CHUNK,
        connect_timeout: float = 10.0, no_worker_grace: float = NO_WORKER_GRACE_S, limit: int | None = None) -> Result:
    """Run (or reuse, or resume) the sweep of ``study``.

    ``scheduler``: a Dask scheduler address (default: ``DASK_SCHEDULER_ADDRESS``, else local workers);
    ``workers``: local worker processes (default: one per core); ``progress``: show a progress bar
    (samples done, rate) on stderr; ``on_progress(done, total)``: called as samples finish;
    ``limit``: stop after this many chunks are on disk (for tests of resuming)."""
    study = study.validate()
    addr = scheduler_address(scheduler)
    for name, v in (("batch", batch), ("chunk", chunk)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise AllocsimError(f"{name} must be an integer >= 1, not {v!r}")
    if chunk % batch:
        raise AllocsimError(f"chunk ({chunk}) must be a multiple of batch ({batch})")
    cache_dir = Path(cache_dir) if cache_dir is not None else CACHE
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = study.key(code_digest())
    path = cache_dir / f"{key}.parquet"
    n = study.n_runs
    if path.exists():
        df = _read_part(path)
        if df is not None and len(df) == n and np.array_equal(df.index.to_numpy(), np.arange(n)):
            return Result(df, path, reused=True, engine="cache")
    design = study.design()
    parts = cache_dir / f"{key}.parts"
    parts.mkdir(exist_ok=True)
    n_chunks = -(-n // chunk)
    have: dict[int, pd.DataFrame] = {}
    for c in range(n_chunks):
        p = parts / f"chunk-{c:05d}.parquet"
        if p.exists():
            df = _read_part(p)
            if df is not None:
                have[c] = df
    resumed = sum(len(d) for d in have.values())
    todo = [c for c in range(n_chunks) if c not in have]
    if limit is not None:
        todo = todo[: max(0, limit - len(have))]
    t0 = time.perf_counter()
    lost: list[str] = []
    engine, n_workers, computed, info = "", 0, 0, {}
    if todo:
        try:
            computed, engine, n_workers = _compute(study, design, todo, chunk, batch, parts, have, addr, workers,
                                                   connect_timeout, no_worker_grace, progress, on_progress, resumed,
                                                   lost, info)
        except BaseException:
            if not any(parts.iterdir()):  # nothing to resume from: leave no empty folder behind
                parts.rmdir()
            raise
    seconds = time.perf_counter() - t0
    if len(have) < n_chunks:  # stopped early on purpose (limit)
        frame = pd.concat([have[c] for c in sorted(have)]) if have else design.iloc[:0]
        return Result(frame, parts, reused=False, computed=computed, resumed=resumed, seconds=seconds,
                      engine=engine, workers=n_workers, lost_workers=lost, **info)
    frame = pd.concat([have[c] for c in range(n_chunks)])
    frame.index.name = "sample"
    _write_atomic(frame, path)
    shutil.rmtree(parts, ignore_errors=True)
    return Result(frame, path, reused=False, computed=computed, resumed=resumed, seconds=seconds, engine=engine,
                  workers=n_workers, lost_workers=lost, **info)


#: seconds to wait for the result of a task reported finished: it is normally there at once; it is not when the
#: worker that held it has left in the meantime (killed, lost), and the sweep must not wait on it for ever
RESULT_WAIT = 1.0


def _compute(study, design, todo, chunk, batch, parts, have, addr, workers, connect_timeout, no_worker_grace,
             progress, on_progress, resumed, lost, info):
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    from allocsim.analysis import runs

    n = study.n_runs
    vals = design.to_numpy()
    reported = runs.reported_miops()  # read once here, sent with every task
    client, cluster, engine = _connect(addr, workers, connect_timeout)
    bar = None
    futures = {}
    try:
        if addr is not None:
            _wait_for_workers(client, addr, no_worker_grace)
        client.register_plugin(WarmUp(), name=WarmUp.name)
        t_warm = time.perf_counter()
        try:
            cpu0 = {w: st["cpu"] for w, st in client.run(worker_state).items()}
        except Exception:
            cpu0 = {}
        seen = _workers(client)
        n_workers = len(seen)
        key = study.key(code_digest())[:12]
        for c in todo:
            lo, hi = c * chunk, min(n, (c + 1) * chunk)
            for b in range(lo, hi, batch):
                idx = list(range(b, min(hi, b + batch)))
                f = client.submit(run_batch, study.setup, study.clock_ghz, study.calibrate_on, idx, vals[idx], reported,
                                  key=f"allocsim-sweep-{key}-{b}", pure=False)
                futures[f] = (c, idx)
        remaining = {c: set(range(c * chunk, min(n, (c + 1) * chunk))) for c in todo}
        results: dict[int, dict] = {}
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, initial=resumed, unit="sample", desc=f"sweep on {engine}", smoothing=0.1)
        done_count = resumed
        pending = set(futures)
        ac = as_completed(list(futures), loop=client.loop)
        no_worker_since = None
        last_check = 0.0
        while pending:
            finished = ac.next_batch(block=False)
            if not finished:
                time.sleep(0.05)
            for f in finished:
                pending.discard(f)
                c, idx = futures[f]
                try:
                    out = f.result(timeout=RESULT_WAIT)
                except TimeoutError:
                    # reported finished, but its result was held by a worker that has since left: the scheduler
                    # computes it again when a worker is there (it comes back through ``ac``), and the check of
                    # the workers below stops the sweep when none comes back
                    pending.add(f)
                    ac.add(f)
                    continue
                except KilledWorker:
                    raise AllocsimError(f"samples {idx[0]}–{idx[-1]} were lost with a dying worker more times than Dask "
                                        f"allows (distributed.scheduler.allowed-failures); the sweep stopped and its "
                                        f"{len(have)} finished chunks are kept for a resume") from None
                except FutureCancelledError:
                    raise AllocsimError(f"the Dask scheduler cancelled samples {idx[0]}–{idx[-1]}; the sweep stopped and "
                                        f"its {len(have)} finished chunks are kept for a resume") from None
                new = 0
                for i, row in out:
                    if i not in results:  # once per sample, whatever retries happened
                        results[i] = row
                        remaining[c].discard(i)
                        new += 1
                done_count += new
                if bar is not None:
                    bar.update(new)
                if on_progress is not None:
                    on_progress(done_count, n)
                if not remaining[c]:
                    lo, hi = c * chunk, min(n, (c + 1) * chunk)
                    out_df = design.iloc[lo:hi].copy()
                    res = pd.DataFrame([results.pop(i) for i in range(lo, hi)], index=out_df.index)
                    out_df = pd.concat([out_df, res], axis=1)
                    _write_atomic(out_df, parts / f"chunk-{c:05d}.parquet")
                    have[c] = out_df
            if time.monotonic() - last_check < 1.0 and pending:
                continue
            last_check = time.monotonic()
            current = _workers(client)
            for w in sorted(seen - current):
                if w not in lost:
                    lost.append(w)
            seen |= current
            n_workers = max(n_workers, len(current))
            if current:
                no_worker_since = None
            elif pending:
                no_worker_since = no_worker_since or time.monotonic()
                if time.monotonic() - no_worker_since > no_worker_grace:
                    raise AllocsimError(f"every Dask worker has left ({len(lost)} lost) and none came back within "
                                        f"{no_worker_grace:g} s; the sweep stopped and its {len(have)} finished chunks "
                                        "are kept for a resume")
        computed = done_count - resumed
        info["compute_seconds"] = time.perf_counter() - t_warm
        try:
            states = client.run(worker_state)
            info["worker_rss"] = {w: st["rss"] for w, st in states.items()}
            info["worker_cpu"] = sum(st["cpu"] - cpu0.get(w, 0.0) for w, st in states.items())
        except Exception:  # a worker leaving just now: the figures are optional
            pass
        return computed, engine, n_workers
    finally:
        if bar is not None:
            bar.close()
        try:
            if futures:
                client.cancel(list(futures), force=True)
        except Exception:
            pass
        client.close()
        if cluster is not None:
            cluster.close()

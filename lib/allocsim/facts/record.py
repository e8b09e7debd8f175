"""``python -m allocsim record``: record the running kernel's allocations and frees of one object kind
(default ``struct iomap_dio``) while a load runs, into a compact trace file plus metadata.

The load is one of

* **fio** (default): fio's ``io_uring`` engine doing ``O_DIRECT`` 4 KiB random reads on a file this
  command first fills with *written* data (random bytes, then ``fsync``) — on a file that is only
  ``fallocate``\\ d, the filesystem knows the blocks are unwritten and answers reads with zeros without
  going to the device, so no bio is ever submitted. The options mirror fio's ``t/io_uring``: ``-d``
  queue depth (``--iodepth``), ``-s`` submit batch (``--iodepth_batch_submit``), ``-c`` complete batch
  (``--iodepth_batch_complete_min``), ``-p1`` polled completions (``--hipri``), ``-n`` threads
  (``--numjobs`` with ``--thread``); the run lasts ``--seconds``;
* **a command** (``record -- CMD ARGS…``): recorded while it runs (``--seconds`` then caps the time);
* **nothing** (``--load none``): a fixed time.

Tracing is always switched off again: the tracefs instance is closed in a ``finally``, SIGTERM is turned
into the same exception path as Ctrl-C while recording, and a child load is terminated.

Output: ``PATH`` (a gzip-compressed CSV, one event per row — ``t_ns`` since the first event, ``cpu``,
``ctx`` (task / hardirq / softirq from the trace flags), ``op`` (alloc / free), ``obj`` (a pointer id:
equal ids are the same address; the addresses themselves are not stored), ``pid``, ``site`` (call-site
function id)) and ``PATH.json``: kernel release, CPUs, NUMA nodes, block device and its scheduler, the
load's command line, the filters, the tracefs format hash, counts, events lost.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import io
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from allocsim.facts import tracefs
from allocsim.facts.errors import AllocsimError

TRACE_VERSION = 1
COLUMNS = ("t_ns", "cpu", "ctx", "op", "obj", "pid", "site")
CTX_NAMES = ("task", "hardirq", "softirq")
OP_NAMES = ("alloc", "free")


def meta_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


# ---------------------------------------------------------------------------------------------------
# Loads

@dataclass(frozen=True)
class FioLoad:
    """fio's io_uring engine with t/io_uring's knobs (see the module docstring)."""

    depth: int = 128  # t/io_uring -d
    submit_batch: int = 32  # -s
    complete_batch: int = 32  # -c
    polled: bool = False  # -p1
    threads: int = 1  # -n
    block_size: int = 4096
    size_mb: int = 256  # the data file
    directory: str | None = None  # where the data file goes (default: beside the output)

    def validate(self) -> "FioLoad":
        for name, lo, hi in (("depth", 1, 65536), ("submit_batch", 1, 65536), ("complete_batch", 1, 65536),
                             ("threads", 1, 1024), ("block_size", 512, 1 << 20), ("size_mb", 1, 1 << 20)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise AllocsimError(f"fio {name} must be an integer from {lo} to {hi}, not {v!r}")
        if self.submit_batch > self.depth or self.complete_batch > self.depth:
            raise AllocsimError(f"fio submit and complete batches must not exceed the depth ({self.depth})")
        if self.block_size % 512:
            raise AllocsimError(f"fio block_size must be a multiple of 512 for O_DIRECT, not {self.block_size}")
        return self

    def t_io_uring(self) -> str:
        return (f"-p{1 if self.polled else 0} -d{self.depth} -s{self.submit_batch} -c{self.complete_batch} "
                f"-n{self.threads}")

    def command(self, fio: str, filename: Path, seconds: float) -> list[str]:
        cmd = [fio, "--name=allocsim-record", f"--filename={filename}", "--ioengine=io_uring", "--direct=1",
               "--rw=randread", f"--bs={self.block_size}", f"--size={self.size_mb}m",
               f"--iodepth={self.depth}", f"--iodepth_batch_submit={self.submit_batch}",
               f"--iodepth_batch_complete_min={self.complete_batch}", f"--numjobs={self.threads}", "--thread",
               "--time_based", f"--runtime={max(1, int(round(seconds)))}s", "--norandommap", "--randrepeat=0",
               "--group_reporting", "--output-format=terse"]
        if self.polled:
            cmd.append("--hipri")
        return cmd


def find_fio() -> str:
    fio = shutil.which("fio")
    if fio is None:
        raise AllocsimError("fio is not installed (it comes from the OS packages: apt-get install fio); "
                            "or record your own load with `record -- CMD`")
    return fio


def fill_file(path: Path, size_mb: int) -> None:
    """Write ``size_mb`` MiB of (seeded pseudo-random) data to ``path`` and fsync it, so the blocks are
    written extents that O_DIRECT reads must fetch from the device. Reused when already that size."""
    size = size_mb << 20
    if path.exists() and path.stat().st_size == size and path.stat().st_blocks * 512 >= size:
        return
    rng = np.random.default_rng(12)
    chunk = 4 << 20
    try:
        with open(path, "wb") as fh:
            for off in range(0, size, chunk):
                fh.write(rng.integers(0, 256, min(chunk, size - off), dtype=np.uint8).tobytes())
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise AllocsimError(f"cannot write the fio data file {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------------
# The machine

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def block_device(path: Path) -> dict:
    """The block device holding ``path`` (its whole disk) and that disk's I/O scheduler."""
    try:
        st = os.stat(path)
    except OSError:
        return {"device": None, "scheduler": None}
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    sysdev = Path(f"/sys/dev/block/{dev}")
    try:
        real = sysdev.resolve(strict=True)
    except OSError:
        return {"device": dev, "scheduler": None}
    disk = real.parent if (real / "partition").exists() else real
    sched = _read(str(disk / "queue" / "scheduler"))
    current = None
    if sched:
        for w in sched.split():
            if w.startswith("["):
                current = w.strip("[]")
    return {"device": disk.name, "major_minor": dev, "scheduler": current,
            "model": _read(str(disk / "device" / "model")), "rotational": _read(str(disk / "queue" / "rotational")),
            "nr_hw_queues": len(list((disk / "mq").glob("*"))) if (disk / "mq").is_dir() else None}


def machine() -> dict:
    return {"release": platform.release(), "machine": platform.machine(),
            "cpus_present": _read("/sys/devices/system/cpu/present"),
            "cpus_online": _read("/sys/devices/system/cpu/online"),
            "numa_nodes": _read("/sys/devices/system/node/online"),
            "ncpu": os.cpu_count()}


# ---------------------------------------------------------------------------------------------------
# Recording

class _Terminated(KeyboardInterrupt):
    """SIGTERM while recording: handled like Ctrl-C (tracing off, no output, exit 130)."""


@contextlib.contextmanager
def _sigterm_as_exception():
    """While recording, SIGTERM raises in the main thread, so the same ``finally`` switches tracing off."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class _PipeReader(threading.Thread):
    """Drains ``trace_pipe`` (non-blocking) into memory while recording."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.chunks: list[bytes] = []
        self.stopping = threading.Event()
        self.error: str | None = None

    def run(self):
        idle_after_stop = 0
        while True:
            try:
                data = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                data = None
            except OSError as exc:
                self.error = exc.strerror or str(exc)
                return
            if data:
                self.chunks.append(data)
                idle_after_stop = 0
                continue
            if self.stopping.is_set():
                idle_after_stop += 1
                if idle_after_stop >= 3:
                    return
            time.sleep(0.02)

    def finish(self) -> bytes:
        self.stopping.set()
        self.join(timeout=30)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        return b"".join(self.chunks)


def _run_load(cmd: list[str] | None, seconds: float | None) -> tuple[int | None, str]:
    """Run the load (or sleep) and return (exit status, last lines of its error output)."""
    if cmd is None:
        time.sleep(seconds)
        return None, ""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise AllocsimError(f"the load command {cmd[0]!r} was not found") from None
    except OSError as exc:
        raise AllocsimError(f"the load command {cmd[0]!r} could not start: {exc.strerror or exc}") from None
    try:
        _, err = proc.communicate(timeout=seconds + 30 if seconds else None)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate()
        return proc.returncode, err or ""
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    return proc.returncode, err or ""


def record(output: Path, seconds: float = 3.0, load: str = "fio", fio: FioLoad = FioLoad(),
           command: list[str] | None = None, target: tracefs.Target | None = None, root: Path = tracefs.TRACEFS,
           log=print) -> dict:
    """Record and write ``output`` and ``output.json``; return the metadata (see the module docstring)."""
    output = Path(output)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
        raise AllocsimError(f"--seconds must be a number from 0 (exclusive) to 3600, not {seconds!r}")
    if load not in ("fio", "command", "none"):
        raise AllocsimError(f"the load must be 'fio', 'command' or 'none', not {load!r}")
    if load == "command" and not command:
        raise AllocsimError("record -- CMD needs a command after the --")
    tracefs.require_root()
    try:
        ok = output.parent.is_dir()
    except OSError as exc:
        raise AllocsimError(f"the output directory {output.parent} cannot be used: {exc.strerror or exc}") from None
    if not ok:
        raise AllocsimError(f"the output directory {output.parent} does not exist")
    fio_path = find_fio() if load == "fio" else None
    if load == "fio":
        fio.validate()
    tracefs.ensure_mounted(root)
    if target is None:
        target = tracefs.iomap_dio_target()
    target.validate()
    formats = {ev: tracefs.read_format(ev, root) for ev in target.events}
    for ev, text in formats.items():
        tracefs.check_format(ev, text)
    data_file = None
    if load == "fio":
        data_dir = Path(fio.directory) if fio.directory else output.parent
        data_file = data_dir / "allocsim-record.data"
        log(f"writing {fio.size_mb} MiB of data to {data_file} (a written file, so reads reach the device) …")
        fill_file(data_file, fio.size_mb)
        cmd = fio.command(fio_path, data_file, seconds)
    elif load == "command":
        cmd = list(command)
    else:
        cmd = None
    try:
        started = _dt.datetime.now(_dt.timezone.utc)
        inst = tracefs.Instance(target, root)
        status, err, lost, raw = None, "", 0, b""
        with _sigterm_as_exception():
            reader = None
            try:
                inst.open()
                reader = _PipeReader(inst.pipe())
                reader.start()
                inst.start()
                log(f"recording {', '.join('kmem:' + e for e in target.events)} for "
                    + (f"{seconds:g} s" if load != "command" else "the command") + " …")
                t0 = time.monotonic()
                status, err = _run_load(cmd, seconds if load != "command" else None)
                elapsed = time.monotonic() - t0
                inst.stop()
                lost = inst.lost()
                raw = reader.finish()
                reader = None
            finally:
                if reader is not None:
                    with contextlib.suppress(Exception):
                        reader.finish()
                inst.close()
        if load == "fio" and status:
            last = [ln for ln in err.strip().splitlines() if ln.strip()]
            raise AllocsimError(f"fio failed (exit {status}): {last[-1] if last else 'no message'}")
        parsed = tracefs.parse_text(raw)
        if len(parsed) == 0:
            what = "fio" if load == "fio" else "the load"
            raise AllocsimError(f"no {target.events[0]} or {target.events[1]} event matched the filter while {what} ran "
                                f"(is the file on a filesystem that uses iomap direct IO, e.g. ext4 or xfs?)")
        meta = write_trace(output, parsed, {
            "trace_version": TRACE_VERSION,
            "recorded": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(elapsed, 3),
            "machine": machine(),
            "block": block_device(data_file if data_file else output.parent),
            "load": {"kind": load, "command": shlex.join(cmd) if cmd else None,
                     "t_io_uring": fio.t_io_uring() if load == "fio" else None,
                     "fio": asdict(fio) if load == "fio" else None,
                     "fio_version": _fio_version(fio_path) if fio_path else None, "exit_status": status},
            "target": target.describe(),
            "tracefs": {"formats_sha256": tracefs.format_hash(formats), "events_lost": lost,
                        "lines": int(parsed.lines), "other_lines": int(parsed.skipped)},
        })
    finally:
        if data_file is not None:  # the data file is scratch: removed on success and on every error
            with contextlib.suppress(OSError):
                data_file.unlink()
    return meta


def _fio_version(fio: str) -> str | None:
    try:
        return subprocess.run([fio, "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_trace(output: Path, p: tracefs.Parsed, meta: dict) -> dict:
    """Write the compact trace (gzip CSV) and its metadata; pointers become ids (first-seen order), call
    sites and tasks become small ids listed in the metadata."""
    order = np.argsort(p.t_ns, kind="stable")  # the kernel prints merged by time; keep that order
    t = p.t_ns[order]
    t0 = int(t[0])
    _, obj = np.unique(p.ptr[order], return_inverse=True)
    # renumber so ids follow first appearance
    first = np.full(obj.max() + 1, -1, np.int64)
    seen = np.unique(obj, return_index=True)
    rank = np.empty(len(seen[0]), np.int64)
    rank[np.argsort(seen[1], kind="stable")] = np.arange(len(seen[0]))
    first[seen[0]] = rank
    obj = first[obj]
    sites, site_id = np.unique(p.site[order].astype(str), return_inverse=True)
    comms = {}
    for pid, comm in zip(p.pid[order].tolist(), p.comm[order].tolist()):
        comms.setdefault(str(pid), comm)
    cols = np.column_stack([t - t0, p.cpu[order], p.ctx[order], p.op[order], obj, p.pid[order], site_id])
    buf = io.StringIO()
    buf.write(",".join(COLUMNS) + "\n")
    np.savetxt(buf, cols, fmt="%d", delimiter=",")
    with gzip.open(output, "wt", compresslevel=9) as fh:
        fh.write(buf.getvalue())
    n_alloc = int(np.count_nonzero(p.op == tracefs.OP_ALLOC))
    meta = {**meta, "columns": list(COLUMNS), "ctx_names": list(CTX_NAMES), "op_names": list(OP_NAMES),
            "sites": [str(s) for s in sites], "comms": comms, "t0_ns": t0,
            "events": int(len(p)), "allocs": n_alloc, "frees": int(len(p)) - n_alloc,
            "objects": int(obj.max() + 1), "cpus_seen": sorted(int(c) for c in np.unique(p.cpu))}
    meta_path(output).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


# ---------------------------------------------------------------------------------------------------
# CLI

def add_arguments(ap) -> None:
    ap.add_argument("--seconds", type=float, default=3.0, help="how long to record (default 3)")
    ap.add_argument("--output", "-o", default="trace.csv.gz", help="the trace file to write (and PATH.json)")
    ap.add_argument("--load", choices=("fio", "none"), default=None,
                    help="fio (default) or none (record for --seconds); a command after -- is the third choice")
    ap.add_argument("-d", "--depth", type=int, default=128, help="fio iodepth (t/io_uring -d)")
    ap.add_argument("-s", "--submit-batch", type=int, default=32, help="fio iodepth_batch_submit (t/io_uring -s)")
    ap.add_argument("-c", "--complete-batch", type=int, default=32, help="fio iodepth_batch_complete_min (-c)")
    ap.add_argument("-p", "--polled", type=int, choices=(0, 1), default=0, help="1: polled completions (--hipri)")
    ap.add_argument("-n", "--threads", type=int, default=1, help="fio numjobs (t/io_uring -n)")
    ap.add_argument("--size-mb", type=int, default=256, help="size of the data file fio reads (MiB)")
    ap.add_argument("--data-dir", default=None, help="where to write the data file (default: beside --output)")
    ap.add_argument("--alloc-site", action="append", default=None, help="record kmalloc from this function (repeatable)")
    ap.add_argument("--free-site", action="append", default=None, help="record kfree from this function (repeatable)")
    ap.add_argument("--bytes", type=int, default=None, help="only kmalloc of this many bytes (default: BTF's iomap_dio)")
    ap.add_argument("--cache", default=None, help="record kmem_cache_alloc/free of this cache instead")
    ap.add_argument("--tracefs", default=str(tracefs.TRACEFS), help="where tracefs is or gets mounted")
    ap.add_argument("command", nargs="*", help="after --: a command to record while it runs")


def main(args) -> int:
    custom = args.alloc_site or args.free_site or args.bytes is not None or args.cache
    if args.cache:  # every call site of that cache unless sites are given
        target = tracefs.Target(alloc_sites=tuple(args.alloc_site or ()), free_sites=tuple(args.free_site or ()),
                                bytes_req=args.bytes, cache=args.cache)
    elif custom:  # the iomap_dio sites stand for whatever is not given
        d = tracefs.Target()
        target = tracefs.Target(alloc_sites=tuple(args.alloc_site or d.alloc_sites),
                                free_sites=tuple(args.free_site or d.free_sites), bytes_req=args.bytes)
    else:
        target = None
    load = "command" if args.command else (args.load or "fio")
    if args.command and args.load:
        raise AllocsimError("give either --load or a command after --, not both")
    fio = FioLoad(depth=args.depth, submit_batch=args.submit_batch, complete_batch=args.complete_batch,
                  polled=bool(args.polled), threads=args.threads, size_mb=args.size_mb, directory=args.data_dir)
    meta = record(Path(args.output), seconds=args.seconds, load=load, fio=fio, command=args.command or None,
                  target=target, root=Path(args.tracefs), log=lambda m: print(m, flush=True))
    print(f"wrote {args.output} and {meta_path(Path(args.output)).name}: {meta['events']} events "
          f"({meta['allocs']} allocations, {meta['frees']} frees) in {meta['seconds']} s on CPUs "
          f"{', '.join(map(str, meta['cpus_seen']))}; events lost: {meta['tracefs']['events_lost']}")
    if meta["tracefs"]["events_lost"]:
        print("warning: the ring buffer dropped events; replay may find frees without allocations — record a "
              "shorter time or with fewer CPUs busy", flush=True)
    return 0

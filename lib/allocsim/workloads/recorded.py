"""A recorded trace (``python -m allocsim record``) as a workload :class:`~allocsim.kernel.program.Program`
the allocator models replay exactly as recorded.

* **Per-CPU order and contexts.** Each CPU's program is that CPU's events in the order the kernel wrote
  them into its per-CPU ring buffer (file order within a CPU is kept: a stable sort by CPU only), each
  with the context its trace flags gave (task, hardirq, softirq).
* **Pointer identity → object identity.** The kernel reuses addresses, so a pointer is not an object: an
  allocation of pointer ``p`` starts a new object (a new program *slot*), and the next free of ``p`` ends
  that object. Every slot is allocated once and freed at most once, as :class:`Program` requires.
* **Objects alive at the edges.** A free whose allocation happened before recording began has no slot;
  with ``edges="trim"`` (the default) such frees are left out and counted
  (:attr:`Edges.freed_before_start`), with ``edges="strict"`` the trace is refused. Objects allocated and
  still alive when recording stopped stay allocated at the end of the program (:attr:`Edges.alive_at_end`).
  A pointer allocated twice without a free between, or freed twice, means lost events or a filter that
  misses a free site: always refused.
* **Timing.** With ``timing="recorded"`` the time between two events of one CPU becomes that CPU's
  non-allocator ``gap`` cycles (at ``clock_ghz``), so the models interleave the CPUs as the machine did;
  with ``"none"`` events run back to back.

Loading is vectorised (pandas' C CSV reader, NumPy for the pointer → slot matching).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import DATA
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, Program

TRACES = DATA / "traces"
DEFAULT_TRACE = TRACES / "iomap_dio-fio-randread-qd128.csv.gz"
COLUMNS = ("t_ns", "cpu", "ctx", "op", "obj", "pid", "site")
EDGES = ("trim", "strict")
TIMINGS = ("recorded", "none")
CTX_LABELS = {TASK: "task", HARDIRQ: "hardirq", SOFTIRQ: "softirq"}


@dataclass
class Trace:
    """Events (a DataFrame with :data:`COLUMNS`, in file order) and the recorder's metadata."""

    events: pd.DataFrame
    meta: dict
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "trace"

    @property
    def ncpu(self) -> int:
        n = int(self.events["cpu"].max()) + 1 if len(self.events) else 1
        declared = self.meta.get("machine", {}).get("ncpu") or 0
        return max(n, int(declared))

    def sites(self) -> list[str]:
        return list(self.meta.get("sites", []))


@dataclass
class Edges:
    """What the conversion to a program did at the edges of the recording."""

    freed_before_start: int = 0  # frees left out: their objects were allocated before recording began
    alive_at_end: int = 0  # objects allocated and not freed when recording stopped
    events_in: int = 0
    events_out: int = 0
    notes: list = field(default_factory=list)


def meta_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".json")


def load(path: str | Path | None = None, expect_sites: tuple | None = None) -> Trace:
    """Read a trace written by ``record`` (and its ``.json``). ``expect_sites``: allocation call sites the
    trace must have been recorded for (e.g. ``("__iomap_dio_rw",)``) — a trace of another call site is
    refused. Raises :class:`AllocsimError` with one sentence for a missing, empty, truncated or malformed
    file."""
    p = Path(path) if path is not None else DEFAULT_TRACE
    if not p.exists():
        raise AllocsimError(f"the trace {p} does not exist")
    mp = meta_path(p)
    if not mp.exists():
        raise AllocsimError(f"the trace {p} has no metadata file {mp.name} beside it (record writes both)")
    try:
        meta = json.loads(mp.read_text())
    except (OSError, ValueError) as exc:
        raise AllocsimError(f"the trace metadata {mp} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("trace_version") != 1:
        raise AllocsimError(f"the trace metadata {mp} is not a version-1 allocsim trace description")
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(p, "rb") as fh:
            raw = fh.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise AllocsimError(f"the trace {p} is truncated or not a gzip file ({exc})") from None
    if not raw.strip():
        raise AllocsimError(f"the trace {p} is empty")
    header = raw.split(b"\n", 1)[0].decode(errors="replace").strip()
    if tuple(header.split(",")) != COLUMNS:
        raise AllocsimError(f"the trace {p} does not start with the header {','.join(COLUMNS)}")
    if not raw.endswith(b"\n"):
        raise AllocsimError(f"the trace {p} is truncated (its last line is incomplete)")
    try:
        import io

        df = pd.read_csv(io.BytesIO(raw), dtype=np.int64, engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise AllocsimError(f"the trace {p} has a malformed row ({str(exc).splitlines()[0]})") from None
    if len(df) == 0:
        raise AllocsimError(f"the trace {p} has no events")
    if len(df) != meta.get("events"):
        raise AllocsimError(f"the trace {p} has {len(df)} events but its metadata says {meta.get('events')}: "
                            f"it is truncated or from another recording")
    _check_values(df, meta, p)
    if expect_sites is not None:
        alloc_sites = set(meta.get("target", {}).get("alloc_sites") or [])
        if not set(expect_sites) <= alloc_sites:
            raise AllocsimError(f"the trace {p} was recorded for allocations from "
                                f"{', '.join(sorted(alloc_sites)) or 'a cache'}, not {', '.join(expect_sites)}")
    return Trace(df, meta, p)


def _check_values(df: pd.DataFrame, meta: dict, p: Path) -> None:
    if df["t_ns"].min() < 0:
        raise AllocsimError(f"the trace {p} has a negative time")
    if df["cpu"].min() < 0 or df["cpu"].max() > 8191:
        raise AllocsimError(f"the trace {p} has a CPU number outside 0..8191")
    if not df["ctx"].isin((TASK, HARDIRQ, SOFTIRQ)).all():
        raise AllocsimError(f"the trace {p} has a context other than 0 (task), 1 (hardirq), 2 (softirq)")
    if not df["op"].isin((ALLOC, FREE)).all():
        raise AllocsimError(f"the trace {p} has an op other than 0 (alloc) or 1 (free)")
    if df["obj"].min() < 0:
        raise AllocsimError(f"the trace {p} has a negative object id")
    nsites = len(meta.get("sites", []))
    if df["site"].min() < 0 or df["site"].max() >= max(nsites, 1):
        raise AllocsimError(f"the trace {p} names a call site its metadata does not list")


def from_frame(df: pd.DataFrame, meta: dict | None = None) -> Trace:
    """A trace from a DataFrame with :data:`COLUMNS` (generators, tests)."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise AllocsimError(f"a trace frame needs the columns {', '.join(COLUMNS)}; missing {', '.join(missing)}")
    df = df[list(COLUMNS)].astype(np.int64).reset_index(drop=True)
    meta = dict(meta or {})
    meta.setdefault("sites", ["site"] * (int(df["site"].max()) + 1 if len(df) else 1))
    meta.setdefault("events", len(df))
    _check_values(df, meta, Path("<frame>"))
    return Trace(df, meta, None)


def match(trace: Trace, edges: str = "trim") -> tuple[pd.DataFrame, Edges]:
    """The events with a ``slot`` column (object identity) and the edge report; events kept in file order.

    Vectorised: events are grouped by pointer id (stable, so each pointer's events stay in time order);
    within a pointer the ops must alternate, an allocation opening a new slot."""
    if edges not in EDGES:
        raise AllocsimError(f"edges must be one of {', '.join(map(repr, EDGES))}, not {edges!r}")
    df = trace.events
    n = len(df)
    rep = Edges(events_in=n)
    obj = df["obj"].to_numpy()
    op = df["op"].to_numpy()
    t = df["t_ns"].to_numpy()
    order = np.lexsort((t, obj))  # by object, then time (file order on ties: lexsort is stable)
    o_s, op_s = obj[order], op[order]
    new_obj = np.ones(n, bool)
    new_obj[1:] = o_s[1:] != o_s[:-1]
    prev_op = np.empty(n, np.int64)
    prev_op[1:] = op_s[:-1]
    # a free at the start of a pointer's history: allocated before recording began
    early_free = new_obj & (op_s == FREE)
    bad_same = ~new_obj & (op_s == prev_op)
    if bad_same.any():
        i = order[np.argmax(bad_same)]
        what = "allocated twice without a free" if op[i] == ALLOC else "freed twice without an allocation"
        raise AllocsimError(f"the trace {trace.name} is inconsistent: pointer id {int(obj[i])} is {what} between "
                            f"(event {int(i)}); events were lost or the filter misses a call site")
    n_early = int(early_free.sum())
    if n_early and edges == "strict":
        raise AllocsimError(f"the trace {trace.name} has {n_early} frees of objects allocated before recording "
                            f"began (use edges='trim' / --edges trim to leave them out)")
    keep_s = ~early_free
    slot_s = np.cumsum(op_s == ALLOC) - 1  # each allocation opens the next slot; its free carries it
    slot = np.full(n, -1, np.int64)
    slot[order] = slot_s
    keep = np.ones(n, bool)
    keep[order] = keep_s
    # renumber slots in order of allocation time (file order), so slot numbers read naturally
    out = df[keep].copy()
    out["slot"] = slot[keep]
    alloc_rows = out["op"].to_numpy() == ALLOC
    first = out["slot"].to_numpy()[alloc_rows]
    renum = np.empty(first.max() + 1 if len(first) else 0, np.int64)
    renum[first] = np.arange(len(first))
    out["slot"] = renum[out["slot"].to_numpy()]
    freed = np.zeros(len(first), bool)
    freed[out["slot"].to_numpy()[~alloc_rows]] = True
    rep.freed_before_start = n_early
    rep.alive_at_end = int((~freed).sum())
    rep.events_out = len(out)
    if n_early:
        rep.notes.append(f"{n_early} frees of objects allocated before recording began were left out")
    if rep.alive_at_end:
        rep.notes.append(f"{rep.alive_at_end} objects were still allocated when recording stopped; they stay "
                         f"allocated at the end of the replay")
    return out.reset_index(drop=True), rep


def to_program(trace: Trace, edges: str = "trim", timing: str = "recorded", clock_ghz: float = 3.0,
               ncpu: int | None = None) -> tuple[Program, Edges]:
    """The replayable program of ``trace`` (see the module docstring) and the edge report."""
    if timing not in TIMINGS:
        raise AllocsimError(f"timing must be one of {', '.join(map(repr, TIMINGS))}, not {timing!r}")
    if isinstance(clock_ghz, bool) or not isinstance(clock_ghz, (int, float)) or not clock_ghz > 0:
        raise AllocsimError(f"clock_ghz must be a number > 0, not {clock_ghz!r}")
    ev, rep = match(trace, edges)
    if len(ev) == 0:
        raise AllocsimError(f"the trace {trace.name} has no event left to replay")
    ncpu = trace.ncpu if ncpu is None else ncpu
    cpu = ev["cpu"].to_numpy()
    if cpu.max() >= ncpu:
        raise AllocsimError(f"the trace {trace.name} has events on CPU {int(cpu.max())} but ncpu is {ncpu}")
    idx = np.argsort(cpu, kind="stable")  # per CPU, file order
    cpu_s = cpu[idx]
    t = ev["t_ns"].to_numpy()[idx]
    if timing == "recorded":
        first = np.ones(len(idx), bool)
        first[1:] = cpu_s[1:] != cpu_s[:-1]
        dt = np.diff(t, prepend=0)
        dt[first] = t[first]  # a CPU's first event: time since the trace's start
        gap = np.round(np.maximum(dt, 0) * float(clock_ghz)).astype(np.int64)
    else:
        gap = np.zeros(len(idx), np.int64)
    counts = np.bincount(cpu_s, minlength=ncpu)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    slots = ev["slot"].to_numpy()[idx]
    n_slots = int(np.count_nonzero(ev["op"].to_numpy() == ALLOC))
    prog = Program(start, ev["op"].to_numpy()[idx].astype(np.int8), ev["ctx"].to_numpy()[idx].astype(np.int8),
                   slots.astype(np.int64), gap, n_slots)
    return prog.validate(), rep


def counts(trace: Trace) -> pd.DataFrame:
    """Events by CPU, context and op (the golden counts the tests hold the shipped trace to)."""
    df = trace.events
    g = df.groupby(["cpu", "ctx", "op"]).size().rename("events").reset_index()
    g["context"] = g["ctx"].map(CTX_LABELS)
    g["kind"] = g["op"].map({ALLOC: "alloc", FREE: "free"})
    return g[["cpu", "context", "kind", "events"]]


def shipped() -> list[Path]:
    """The traces in ``data/traces/``."""
    return sorted(TRACES.glob("*.csv.gz"))

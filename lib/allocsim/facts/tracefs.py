"""The running kernel's ``kmem`` tracepoints through tracefs: mount, a private trace instance, event
format checks, filters, and a vectorised parser of the text the kernel prints.

What the kernel provides (Documentation/trace/events.rst and Documentation/trace/ftrace.rst, upstream):

* tracefs is mounted at ``/sys/kernel/tracing`` (``mount -t tracefs nodev /sys/kernel/tracing``);
  writing a directory name under ``instances/`` creates a private ring buffer with its own
  ``events/*/enable``, ``events/*/filter``, ``options/`` and ``tracing_on``; removing the directory
  frees it. The recorder works in such an instance, so the global buffer and whatever else the machine
  traces are untouched;
* ``events/kmem/kmalloc`` (``include/trace/events/kmem.h``, ``TRACE_EVENT(kmalloc, ...)``) records
  ``call_site``, ``ptr``, ``bytes_req``, ``bytes_alloc``, ``gfp_flags`` and ``node`` of every
  ``kmalloc()``; ``events/kmem/kfree`` records ``call_site`` and ``ptr`` of every ``kfree()``;
  ``kmem_cache_alloc`` / ``kmem_cache_free`` also carry the cache ``name``. Each event's ``format`` file
  lists its fields; :func:`check_format` insists on the ones used here and :func:`format_hash` fingerprints
  them for the metadata;
* an event filter may compare ``call_site.function`` with a function name (the ``.function`` field
  modifier: Documentation/trace/events.rst, "Expression syntax"; exercised by the kernel selftest
  ``tools/testing/selftests/ftrace/test.d/filter/event-filter-function.tc``), so the kernel itself keeps
  only the calls of ``__iomap_dio_rw()`` / ``iomap_dio_complete()``. The filter parser wants blanks around
  the parentheses of such a predicate (found on Linux 6.18: ``(call_site.function == f)`` is refused,
  ``( call_site.function == f )`` accepted);
* with ``options/irq-info`` each line of ``trace`` / ``trace_pipe`` carries the latency-format flags:
  ``irqs-off``, ``need-resched``, ``hardirq/softirq``, ``preempt-depth``, ``migrate-disable``. The third
  character is ``h`` (hard IRQ), ``s`` (serving a softirq), ``H`` (hard IRQ that interrupted a softirq),
  ``z``/``Z`` (NMI) or ``.`` (task) — ``trace_print_lat_fmt()`` in ``kernel/trace/trace_output.c``.
  :func:`parse_text` maps ``h``, ``H``, ``z``, ``Z`` to hardirq, ``s`` to softirq and ``.`` to task.

Everything here raises :class:`TraceError` (an :class:`~allocsim.facts.errors.AllocsimError`) with one
sentence; :class:`Instance` always switches its events and its buffer off again in ``close()``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from allocsim.facts.errors import AllocsimError

TRACEFS = Path("/sys/kernel/tracing")
BTF_VMLINUX = Path("/sys/kernel/btf/vmlinux")
INSTANCE_PREFIX = "allocsim-record-"

#: The fields each event must have (name -> C type as the ``format`` file prints it).
EXPECTED_FIELDS = {
    "kmalloc": {"call_site": "unsigned long", "ptr": "const void *", "bytes_req": "size_t", "bytes_alloc": "size_t"},
    "kfree": {"call_site": "unsigned long", "ptr": "const void *"},
    "kmem_cache_alloc": {"call_site": "unsigned long", "ptr": "const void *", "name": "__data_loc char[]",
                         "bytes_req": "size_t"},
    "kmem_cache_free": {"call_site": "unsigned long", "ptr": "const void *", "name": "__data_loc char[]"},
}
COMMON_FIELDS = {"common_type": "unsigned short", "common_flags": "unsigned char",
                 "common_preempt_count": "unsigned char", "common_pid": "int"}

# the context codes of allocsim.kernel.program (TASK, HARDIRQ, SOFTIRQ) — repeated here because facts
# sits left of kernel in the layout; tests check they agree.
CTX_TASK, CTX_HARDIRQ, CTX_SOFTIRQ = 0, 1, 2
CTX_LETTERS = {".": CTX_TASK, "h": CTX_HARDIRQ, "H": CTX_HARDIRQ, "z": CTX_HARDIRQ, "Z": CTX_HARDIRQ,
               "s": CTX_SOFTIRQ}
OP_ALLOC, OP_FREE = 0, 1
_CTX_LUT = np.full(256, -1, np.int8)
for _letter, _code in CTX_LETTERS.items():
    _CTX_LUT[ord(_letter)] = _code


class TraceError(AllocsimError):
    """tracefs cannot be used, or what it printed is not what this reader expects."""


# ---------------------------------------------------------------------------------------------------
# What to record

@dataclass(frozen=True)
class Target:
    """Which allocations and frees to record. The default is ``struct iomap_dio``: ``kmalloc`` calls
    from ``__iomap_dio_rw()`` asking for ``sizeof(struct iomap_dio)`` bytes (read from BTF), and the
    ``kfree`` calls of ``iomap_dio_complete()`` (completion) and ``__iomap_dio_rw()`` (error path) —
    ``fs/iomap/direct-io.c`` in v6.18–v7.0. With ``cache`` set, the ``kmem_cache_alloc``/``_free`` events
    of that cache are recorded instead (every call site)."""

    alloc_sites: tuple = ("__iomap_dio_rw",)
    free_sites: tuple = ("iomap_dio_complete", "__iomap_dio_rw")
    bytes_req: int | None = None
    cache: str | None = None

    @property
    def events(self) -> tuple[str, str]:
        return ("kmem_cache_alloc", "kmem_cache_free") if self.cache else ("kmalloc", "kfree")

    def validate(self) -> "Target":
        name_re = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
        for s in self.alloc_sites + self.free_sites:
            if not isinstance(s, str) or not name_re.match(s):
                raise TraceError(f"a call site must be a kernel function name (letters, digits, _), not {s!r}")
        if self.cache is not None and not re.match(r"^[A-Za-z0-9_.:-]+$", self.cache):
            raise TraceError(f"a cache name must be a /sys/kernel/slab name, not {self.cache!r}")
        if self.bytes_req is not None and (isinstance(self.bytes_req, bool) or not isinstance(self.bytes_req, int)
                                           or self.bytes_req < 1):
            raise TraceError(f"bytes_req must be a positive integer, not {self.bytes_req!r}")
        if not self.cache and not self.alloc_sites:
            raise TraceError("recording kmalloc needs at least one allocation call site (or a cache name)")
        return self

    def filters(self) -> tuple[str, str]:
        """The filter expressions written to the alloc and the free event's ``filter`` file."""
        self.validate()
        a, f = [], []
        if self.cache:
            a.append(f'name == "{self.cache}"')
            f.append(f'name == "{self.cache}"')
        if self.alloc_sites:
            a.append(_any_site(self.alloc_sites))
        if self.bytes_req is not None:
            a.append(f"bytes_req == {self.bytes_req}")
        if self.free_sites:
            f.append(_any_site(self.free_sites))
        return " && ".join(a) or "0 == 0", " && ".join(f) or "0 == 0"

    def describe(self) -> dict:
        alloc_filter, free_filter = self.filters()
        return {"alloc_event": f"kmem:{self.events[0]}", "free_event": f"kmem:{self.events[1]}",
                "alloc_sites": list(self.alloc_sites), "free_sites": list(self.free_sites),
                "bytes_req": self.bytes_req, "cache": self.cache,
                "alloc_filter": alloc_filter, "free_filter": free_filter}


def _any_site(sites) -> str:
    # the kernel's filter parser wants blanks around the parentheses of a .function predicate
    expr = " || ".join(f"call_site.function == {s}" for s in sites)
    return f"( {expr} )" if len(sites) > 1 else expr


def iomap_dio_size(btf_path: Path = BTF_VMLINUX) -> int:
    """``sizeof(struct iomap_dio)`` of the running kernel, from its BTF (:mod:`allocsim.facts.btf`)."""
    from allocsim.facts import btf

    layout = btf.BTF.from_file(btf_path).struct_layout("iomap_dio")
    if layout is None:
        raise TraceError(f"{btf_path} has no struct iomap_dio (a kernel without fs/iomap direct IO?)")
    return int(layout.size)


def iomap_dio_target(btf_path: Path = BTF_VMLINUX) -> Target:
    return Target(bytes_req=iomap_dio_size(btf_path)).validate()


# ---------------------------------------------------------------------------------------------------
# tracefs

def require_root() -> None:
    if os.geteuid() != 0:
        raise TraceError("recording kernel events needs root (tracefs and its kmem events are root-only); "
                         "run it with sudo")


def mounted(root: Path = TRACEFS) -> bool:
    return (Path(root) / "events").is_dir() and (Path(root) / "instances").is_dir()


def ensure_mounted(root: Path = TRACEFS) -> bool:
    """Mount tracefs at ``root`` if it is not mounted yet. Returns True if this call mounted it."""
    root = Path(root)
    if mounted(root):
        return False
    if not root.is_dir():
        raise TraceError(f"{root} does not exist: this kernel has no tracefs (CONFIG_TRACING is off) or it is "
                         f"not Linux")
    mount = shutil.which("mount")
    if mount is None:
        raise TraceError(f"tracefs is not mounted at {root} and there is no mount command to mount it")
    r = subprocess.run([mount, "-t", "tracefs", "nodev", str(root)], capture_output=True, text=True)
    if r.returncode != 0 or not mounted(root):
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise TraceError(f"tracefs could not be mounted at {root}: {msg[-1] if msg else 'mount failed'}")
    return True


def read_format(event: str, root: Path = TRACEFS) -> str:
    path = Path(root) / "events" / "kmem" / event / "format"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise TraceError(f"this kernel has no kmem:{event} tracepoint ({path} is missing)") from None
    except PermissionError:
        raise TraceError(f"{path} is not readable (permission denied); recording needs root") from None


_FIELD_RE = re.compile(r"field:(.+?)\s*;\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);")


def parse_format(text: str) -> dict[str, tuple[str, int, int]]:
    """``{field name: (C type, offset, size)}`` of an event ``format`` file."""
    out = {}
    for decl, off, size, _ in _FIELD_RE.findall(text):
        m = re.match(r"^(.*?)([A-Za-z_][A-Za-z0-9_]*)(\[\d*\])?$", decl.strip())
        if not m:
            continue
        ctype = (m.group(1).strip() + (" " + "[]" if m.group(3) else "")).replace(" []", "[]")
        out[m.group(2)] = (ctype.strip(), int(off), int(size))
    return out


def check_format(event: str, text: str) -> dict:
    """Raise :class:`TraceError` unless the ``format`` of ``kmem:event`` has the fields this reader uses,
    with their types; return the parsed fields."""
    fields_ = parse_format(text)
    want = {**COMMON_FIELDS, **EXPECTED_FIELDS[event]}
    for name, ctype in want.items():
        if name not in fields_:
            raise TraceError(f"the kmem:{event} event format has no field {name!r}; this reader needs "
                             f"{', '.join(EXPECTED_FIELDS[event])}")
        if fields_[name][0].replace(" ", "") != ctype.replace(" ", ""):
            raise TraceError(f"the kmem:{event} field {name!r} is {fields_[name][0]!r}, not {ctype!r} as this "
                             f"reader expects")
    if "print fmt:" not in text or "call_site=%pS ptr=%p" not in text:
        raise TraceError(f"the kmem:{event} print format does not start with 'call_site=%pS ptr=%p' as this "
                         f"reader expects")
    return fields_


def format_hash(texts: dict[str, str]) -> str:
    """sha256 over the events' ``format`` files (sorted by event name): a fingerprint for the metadata."""
    h = hashlib.sha256()
    for name in sorted(texts):
        h.update(name.encode() + b"\0" + texts[name].encode() + b"\0")
    return "sha256:" + h.hexdigest()


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as exc:
        raise TraceError(f"writing {value.strip()!r} to {path} failed: {exc.strerror or exc}") from None


@dataclass
class Instance:
    """A private tracefs instance with the alloc and free events of ``target`` enabled and filtered.

    Use as a context manager (or call :meth:`close` in a ``finally``): leaving it always writes 0 to
    ``tracing_on`` and to both events' ``enable``, clears their filters and removes the instance."""

    target: Target
    root: Path = TRACEFS
    buffer_kb: int = 16384
    name: str = field(default_factory=lambda: f"{INSTANCE_PREFIX}{os.getpid()}")
    path: Path | None = None
    _events_on: bool = False

    def open(self) -> "Instance":
        self.target.validate()
        base = Path(self.root) / "instances"
        self.path = base / self.name
        if self.path.exists():  # a leftover of a killed run with our pid: reuse after switching it off
            self._switch_off()
        else:
            try:
                self.path.mkdir()
            except OSError as exc:
                raise TraceError(f"cannot create the trace instance {self.path}: {exc.strerror or exc}") from None
        try:
            _write(self.path / "tracing_on", "0")
            for opt, val in (("irq-info", "1"), ("hash-ptr", "0"), ("record-cmd", "1"), ("context-info", "1"),
                             ("overwrite", "0")):
                p = self.path / "options" / opt
                if p.exists():
                    _write(p, val)
            _write(self.path / "buffer_size_kb", str(int(self.buffer_kb)))
            _write(self.path / "trace", "")
            alloc_filter, free_filter = self.target.filters()
            for ev, flt in zip(self.target.events, (alloc_filter, free_filter)):
                d = self.path / "events" / "kmem" / ev
                if not d.is_dir():
                    raise TraceError(f"this kernel has no kmem:{ev} tracepoint")
                try:
                    _write(d / "filter", flt)
                except TraceError:
                    raise TraceError(f"the kernel rejected the kmem:{ev} filter {flt!r} (every call site must be a "
                                     f"function this kernel has, and its event filters must know the "
                                     f".function modifier)") from None
            self._events_on = True
            for ev in self.target.events:
                _write(self.path / "events" / "kmem" / ev / "enable", "1")
        except BaseException:
            self.close()
            raise
        return self

    def start(self) -> None:
        _write(self.path / "tracing_on", "1")

    def stop(self) -> None:
        if self.path is not None and self.path.exists():
            _write(self.path / "tracing_on", "0")

    def pipe(self) -> Path:
        return self.path / "trace_pipe"

    def lost(self) -> int:
        """Events the ring buffer dropped (``per_cpu/cpu*/stats``: ``overrun`` + ``dropped events``)."""
        total = 0
        for stats in sorted((self.path / "per_cpu").glob("cpu*/stats")):
            for line in stats.read_text().splitlines():
                k, _, v = line.partition(":")
                if k.strip() in ("overrun", "dropped events"):
                    try:
                        total += int(v.strip())
                    except ValueError:
                        pass
        return total

    def _switch_off(self) -> None:
        p = self.path
        for rel in ("tracing_on",):
            try:
                (p / rel).write_text("0")
            except OSError:
                pass
        for ev in ("kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free"):
            d = p / "events" / "kmem" / ev
            for name, val in (("enable", "0"), ("filter", "0")):
                try:
                    (d / name).write_text(val)
                except OSError:
                    pass

    def close(self) -> None:
        """Switch everything off and remove the instance; safe to call twice."""
        if self.path is None or not self.path.exists():
            return
        self._switch_off()
        self._events_on = False
        try:
            self.path.rmdir()
        except OSError:
            pass  # events are off; a reader still holding trace_pipe keeps the (idle) directory

    def __enter__(self) -> "Instance":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def leftover_instances(root: Path = TRACEFS) -> list[Path]:
    base = Path(root) / "instances"
    return sorted(base.glob(INSTANCE_PREFIX + "*")) if base.is_dir() else []


def events_enabled(root: Path = TRACEFS) -> dict[str, str]:
    """The ``enable`` files of the kmem events at top level and in every recorder instance (tests use it
    to check that nothing is left switched on)."""
    out = {}
    for base in [Path(root)] + leftover_instances(root):
        for ev in EXPECTED_FIELDS:
            p = base / "events" / "kmem" / ev / "enable"
            if p.exists():
                out[str(p)] = p.read_text().strip()
    return out


# ---------------------------------------------------------------------------------------------------
# The text the kernel prints: one event per line, parsed in bulk

@dataclass
class Parsed:
    """The events of a tracefs text dump, one array entry per event, in the order the kernel printed them."""

    t_ns: np.ndarray  # int64: timestamp in ns (trace_clock 'local' by default)
    cpu: np.ndarray  # int16
    ctx: np.ndarray  # int8: CTX_TASK / CTX_HARDIRQ / CTX_SOFTIRQ
    op: np.ndarray  # int8: OP_ALLOC / OP_FREE
    ptr: np.ndarray  # uint64
    pid: np.ndarray  # int32
    comm: np.ndarray  # object: task name
    site: np.ndarray  # object: call-site function
    bytes_req: np.ndarray  # int64, -1 for frees
    lines: int  # event lines read
    skipped: int  # non-comment lines that were not events of these kinds

    def __len__(self) -> int:
        return len(self.op)


def parse_text(data: bytes) -> Parsed:
    """Parse tracefs ``trace``/``trace_pipe`` text (with ``irq-info``) into arrays, without a Python loop
    per line: the buffer is one NumPy byte array; per line the positions of its anchors (the ``[`` of the
    CPU, the ``:`` after the timestamp and after the event name, ``call_site=``, ``ptr=``, ``bytes_req=``)
    come from ``searchsorted`` over the positions of those bytes, and each field is decoded from a
    fixed-width window (see ``python -m allocsim bench record`` for the rate).

    A line is ``COMM-PID [CPU] FLAGS SECONDS.MICROS: EVENT: call_site=FUNC+OFF/LEN ptr=HEX ...`` (the
    kernel's ``trace_print_context()`` / ``trace_print_lat_fmt()`` and the event's print format). Lines
    starting with ``#`` are comments; other lines that are not kmem alloc/free events are counted in
    ``skipped``. Large buffers are parsed in pieces of about :data:`CHUNK` bytes (cut at line ends), which
    keeps the per-line temporaries in cache."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) > CHUNK:
        parts, pos = [], 0
        while pos < len(data):
            cut = data.find(b"\n", min(pos + CHUNK, len(data)))
            cut = len(data) if cut < 0 else cut + 1
            parts.append(_parse_chunk(data[pos:cut]))
            pos = cut
        return _concat(parts)
    return _parse_chunk(data)


CHUNK = 4 << 20


def _concat(parts: list) -> Parsed:
    arrays = {f: np.concatenate([getattr(p, f) for p in parts]) for f in
              ("t_ns", "cpu", "ctx", "op", "ptr", "pid", "comm", "site", "bytes_req")}
    return Parsed(**arrays, lines=sum(p.lines for p in parts), skipped=sum(p.skipped for p in parts))


def _parse_chunk(data: bytes) -> Parsed:
    pad = 32  # NUL bytes before and after, so fixed windows never leave the buffer
    raw = b"\0" * pad + data + b"\n" + b"\0" * 128
    buf = np.frombuffer(raw, np.uint8)
    size = pad + len(data) + 1
    head = buf[:size]
    nl = np.flatnonzero(head == 10)
    starts = np.concatenate([[pad], nl[:-1] + 1]).astype(np.int64)
    ends = nl.astype(np.int64)
    first = _first_non_space(buf, starts, ends)
    real = (first < ends) & (buf[first] != ord("#"))
    starts, ends = first[real], ends[real]
    total = len(starts)
    if total == 0:
        return _empty(0)
    lb = _next(np.flatnonzero(head == ord("[")), starts)
    lb = np.minimum(lb, ends)
    cpu, cpu_len = _uint(buf, lb + 1, 6, with_len=True)
    rb = lb + 1 + cpu_len  # the ']'
    c1 = _next(np.flatnonzero(head == ord(":")), rb)  # end of the timestamp
    c1 = np.minimum(c1, ends)
    ok = (lb < ends) & (cpu_len > 0) & (buf[rb] == ord("]")) & (c1 < ends)
    kind = np.full(total, -1, np.int8)
    ev_len = np.zeros(total, np.int64)
    # bytes 2, 3 and 12 of the event name tell the four apart ("kma…", "kf…", "kmem_cache_a…/f…"); then
    # the candidates are checked whole
    b1, b2, b11 = buf[c1 + 3], buf[c1 + 4], buf[c1 + 13]
    for code, name, pick in ((0, b"kmalloc:", b2 == ord("a")), (1, b"kfree:", b1 == ord("f")),
                             (2, b"kmem_cache_alloc:", (b2 == ord("e")) & (b11 == ord("a"))),
                             (3, b"kmem_cache_free:", (b2 == ord("e")) & (b11 == ord("f")))):
        cand = np.flatnonzero(ok & pick)
        if len(cand) == 0:
            continue
        hit = cand[_equals(buf, c1[cand] + 2, name + b" call_site=")]
        kind[hit] = code
        ev_len[hit] = len(name)
    keep = kind >= 0
    starts, ends, lb, rb, c1, kind, cpu, ev_len = (a[keep] for a in (starts, ends, lb, rb, c1, kind, cpu, ev_len))
    n = len(starts)
    skipped = total - n
    if n == 0:
        return _empty(skipped)
    cs = c1 + 2 + ev_len + len(b" call_site=")  # first byte of the call-site function
    pid, dash = _pid_before(buf, lb)
    irq = buf[rb + 2 + 2]  # "] " then irqs-off, need-resched, hardirq/softirq
    ctx = _CTX_LUT[irq]
    if np.any(ctx < 0):
        bad = bytes([irq[np.argmax(ctx < 0)]]).decode(errors="replace")
        raise TraceError(f"an event's irq-info flags have {bad!r} in the hardirq/softirq column; expected one of "
                         f"{''.join(CTX_LETTERS)} (is options/irq-info on?)")
    back = _window(buf, c1 - 12, 12)
    dot = c1 - 12 + (11 - np.argmax(back[:, ::-1] == ord("."), axis=1))
    secs = _uint_backwards(buf, dot, 11)
    frac, digits = _uint(buf, dot + 1, 9, with_len=True)
    t_ns = secs * 1_000_000_000 + frac * (10 ** (9 - digits)).astype(np.int64)
    op = np.where((kind == 1) | (kind == 3), OP_FREE, OP_ALLOC).astype(np.int8)
    # the call-site token runs to the next blank; the function name to its '+'
    win = _window(buf, cs, 64)
    blank = win == ord(" ")
    tok_len = np.argmax(blank, axis=1)
    plus = win == ord("+")
    s_len = np.where(plus.any(axis=1), np.argmax(plus, axis=1), tok_len)
    if not blank.any(axis=1).all():
        raise TraceError("an event line has a call site longer than 64 characters; this reader does not expect that")
    pt = cs + tok_len + 1  # " ptr=" follows
    ptr_ok = _equals(buf, pt, b"ptr=")
    if not ptr_ok.all():
        raise TraceError("an event line has no 'ptr=' after its call site; the event format is not what this reader "
                         "expects")
    ptr, ptr_len = _hex(buf, pt + 4, 16)
    bytes_req = np.full(n, -1, np.int64)
    km = kind == 0
    br = pt + 4 + ptr_len + len(b" bytes_req=")
    if km.any():
        good = km & _equals(buf, br - len(b"bytes_req="), b"bytes_req=")
        bytes_req[good] = _uint(buf, br[good], 20)
    for i in np.flatnonzero(kind == 2):  # kmem_cache_alloc: "ptr=... name=NAME bytes_req=N ..."
        j = raw.find(b" bytes_req=", int(pt[i]), int(ends[i]))
        if j >= 0:
            bytes_req[i] = int(raw[j + 11:int(ends[i])].split(b" ", 1)[0])
    head8 = _window(buf, cs, 8).copy()
    head8[np.arange(8) >= s_len[:, None]] = 0
    tail8 = _window(buf, cs + np.maximum(s_len - 8, 0), 8).copy()
    tail8[np.arange(8) >= s_len[:, None]] = 0
    key = np.stack([s_len.astype(np.uint64), head8.view("<u8").ravel(), tail8.view("<u8").ravel()], axis=1)
    h = (key[:, 0] * np.uint64(0x9E3779B97F4A7C15)) ^ key[:, 1] ^ ((key[:, 2] << np.uint64(1)) | (key[:, 2] >> np.uint64(63)))
    site_id, first_i = _factorize(h)
    names = np.array([raw[cs[i]:cs[i] + s_len[i]].decode(errors="replace") for i in first_i], dtype=object)
    site = names[site_id]
    pid_id, first_idx = _factorize(pid)
    names_by_pid = np.array([raw[starts[i]:dash[i]].decode(errors="replace").strip() for i in first_idx],
                            dtype=object)
    comm = names_by_pid[pid_id]
    return Parsed(t_ns.astype(np.int64), cpu.astype(np.int16), ctx, op, ptr, pid.astype(np.int32), comm, site,
                  bytes_req, n, skipped)


def _pid_before(buf, lb):
    """``COMM-PID`` ends before the blanks in front of ``[``: the PID's digits and the position of its '-'."""
    width = 16
    w = _window(buf, lb - width, width)  # w[:, width - 1] is the byte just before '['
    n = len(w)
    pid = np.zeros(n, np.int64)
    scale = np.ones(n, np.int64)
    in_blanks = np.ones(n, bool)  # still walking over the blanks after the PID
    in_pid = np.zeros(n, bool)
    digits = np.zeros(n, np.int64)
    blanks = np.zeros(n, np.int64)
    for k in range(width - 1, -1, -1):
        c = w[:, k]
        blank = c == 32
        in_blanks &= blank
        blanks += in_blanks
        isd = (c >= 48) & (c <= 57)
        in_pid = (in_pid | ~in_blanks) & isd & (in_pid | (digits == 0))
        if not (in_blanks | in_pid).any():
            break
        pid += np.where(in_pid, (c.astype(np.int64) - 48) * scale, 0)
        scale = np.where(in_pid, scale * 10, scale)
        digits += in_pid
    return pid, lb - 1 - blanks - digits


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values`` (hash-based, O(n)) and the index of each code's first occurrence."""
    import pandas as pd

    codes, uniques = pd.factorize(values)
    first = np.full(len(uniques), -1, np.int64)
    # the first occurrence of each code: scatter in reverse so the smallest index wins
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes.astype(np.int64), first


def _empty(skipped: int) -> Parsed:
    e = np.empty(0)
    return Parsed(e.astype(np.int64), e.astype(np.int16), e.astype(np.int8), e.astype(np.int8), e.astype(np.uint64),
                  e.astype(np.int32), e.astype(object), e.astype(object), e.astype(np.int64), 0, skipped)


def _next(positions: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The first of ``positions`` (sorted) at or after each ``at``; a huge value where there is none."""
    i = np.searchsorted(positions, at, side="left")
    out = np.full(len(at), np.iinfo(np.int64).max // 2, np.int64)
    has = i < len(positions)
    out[has] = positions[i[has]]
    return out


def _first_non_space(buf, starts, ends):
    """Index of the first non-blank byte of each line (lines are right-aligned to the comm)."""
    w = _window(buf, starts, 32) != ord(" ")
    off = np.where(w.any(axis=1), np.argmax(w, axis=1), 32)
    return np.minimum(starts + off, ends)


def _window(buf, at, width):
    """``width`` bytes from each position ``at`` (an n × width copy; one gather over a strided view)."""
    return np.lib.stride_tricks.sliding_window_view(buf, width)[np.asarray(at, np.int64)]


def _equals(buf, at, word: bytes):
    """Whether ``word`` starts at each ``at``: compared eight bytes at a time."""
    k = len(word)
    m = -(-k // 8) * 8
    w = np.ascontiguousarray(_window(buf, at, m))
    if m > k:
        w[:, k:] = 0
    target = np.frombuffer(word + b"\0" * (m - k), "<u8")
    eq = w.view("<u8") == target
    return eq[:, 0] if m == 8 else np.logical_and.reduce(eq, axis=1)


def _uint(buf, at, width, with_len=False):
    """The unsigned decimal starting at each ``at`` (up to ``width`` digits): Horner, column by column."""
    w = _window(buf, at, width)
    val = np.zeros(len(w), np.int64)
    length = np.zeros(len(w), np.int64)
    active = np.ones(len(w), bool)
    for j in range(width):
        d = w[:, j].astype(np.int64) - 48
        active &= (d >= 0) & (d <= 9)
        if not active.any():
            break
        val = np.where(active, val * 10 + d, val)
        length += active
    return (val, length) if with_len else val


def _uint_backwards(buf, end, width):
    """The unsigned decimal ending just before each ``end``."""
    w = _window(buf, np.asarray(end) - width, width)
    val = np.zeros(len(w), np.int64)
    scale = np.ones(len(w), np.int64)
    active = np.ones(len(w), bool)
    for j in range(width - 1, -1, -1):
        d = w[:, j].astype(np.int64) - 48
        active &= (d >= 0) & (d <= 9)
        if not active.any():
            break
        val = np.where(active, val + d * scale, val)
        scale = np.where(active, scale * 10, scale)
    return val


_HEX = np.full(256, -1, np.int64)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def _hex(buf, at, width):
    """The hex number (no 0x) starting at each ``at``, up to ``width`` digits, as uint64."""
    w = _window(buf, at, width)
    val = np.zeros(len(w), np.uint64)
    length = np.zeros(len(w), np.int64)
    active = np.ones(len(w), bool)
    for j in range(width):
        d = _HEX[w[:, j]]
        active &= d >= 0
        if not active.any():
            break
        val = np.where(active, (val << np.uint64(4)) | d.astype(np.uint64), val)
        length += active
    return val, length

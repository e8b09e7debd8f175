"""Your kernel: read the running kernel's slab caches and struct layouts, and hold the models against them.

What is read (all of it plain files; nothing needs root on a usual distribution kernel):

- ``/proc/sys/kernel/osrelease`` — the kernel release;
- ``/sys/devices/system/cpu/{present,possible,online}`` — CPU lists (``0-1,4``), whose counts feed
  ``calculate_order()``'s ``min_objects``; ``/sys/devices/system/node/online`` — NUMA nodes (barns);
- ``/sys/kernel/slab/<cache>/{object_size,slab_size,objs_per_slab,order,cpu_partial,min_partial,
  sheaf_capacity,aliases}`` for the kmalloc caches (``kmalloc-8`` … ``kmalloc-8k``) and every cache whose
  ``sheaf_capacity`` is not 0 (``sheaf_capacity`` exists from 6.18 on);
- ``/sys/kernel/btf/vmlinux`` — ``struct iomap_dio``, ``slab_sheaf``, ``node_barn``,
  ``slub_percpu_sheaves`` (sizes and member offsets) through :mod:`allocsim.facts.btf`.

A reading keeps the *raw text* of every sysfs file, so a snapshot (``--json``) is parsed by the same code
as the live files, and content that is not what the kernel writes there is named in the output (never
read as 0). Missing files, permission errors, a kernel without BTF, a machine that is not Linux: each
becomes one sentence in ``Reading.notes`` and the comparison shows what could be read; :func:`load` falls
back to the shipped snapshot when the live kernel cannot be read at all.

The comparison (:func:`compare`) puts the models' predictions for that kernel version and CPU count
(:func:`allocsim.facts.kconfig.cache_geometry`, :func:`allocsim.facts.structs.load`) beside the kernel's values, one row
per quantity, each ``agree`` / ``differ`` / ``not compared`` (with the reason).

CLI: :func:`main` — ``python -m allocsim inspect [--snapshot PATH | --root DIR] [--json PATH] [--version V] [--all]``:
the summary first, then the rows that differ or were not compared (:func:`report`), within 100 columns.

A snapshot is checked against :data:`SNAPSHOT_SCHEMA` when it is read: a wrong JSON type stops with one
sentence naming the file, the cache or struct, and the field.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import re
import sys
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from allocsim.facts import paths
from allocsim.facts import versions
from allocsim.facts import kconfig
from allocsim.facts import structs as layout
from allocsim.facts.datafile import label
from allocsim.facts.errors import AllocsimError, DataError
from allocsim.facts.schema import Field, check_record


def snapshots_dir() -> Path:
    """``data/snapshots`` (read at call time, so tests can point :data:`allocsim.facts.paths.DATA` elsewhere)."""
    return paths.DATA / "snapshots"


def __getattr__(name):  # SNAPSHOTS follows paths.DATA
    if name == "SNAPSHOTS":
        return snapshots_dir()
    raise AttributeError(name)

SCHEMA = 1
#: sysfs attributes read for each cache (``sheaf_capacity`` exists from 6.18 on)
SLAB_ATTRS = ("object_size", "slab_size", "objs_per_slab", "order", "cpu_partial", "min_partial",
              "sheaf_capacity", "aliases")
#: structs read from BTF and compared with data/kernel/structs.yaml
STRUCTS = ("iomap_dio", "slab_sheaf", "node_barn", "slub_percpu_sheaves")
_KMALLOC_RE = re.compile(r"^kmalloc-(\d+)(k?)$")
_CPULIST_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
# The rows compared for each cache: quantity name, CacheGeometry attribute, sysfs attribute
_CACHE_ROWS = (("slab_size", "size", "slab_size"), ("order", "order", "order"),
               ("objs_per_slab", "objs_per_slab", "objs_per_slab"), ("cpu_partial", "cpu_partial", "cpu_partial"),
               ("min_partial", "min_partial", "min_partial"), ("sheaf_capacity", "sheaf_capacity", "sheaf_capacity"))


# ---------------------------------------------------------------------------------------------------
# Readings

@dataclass
class Reading:
    """One reading of a kernel, live or from a snapshot. ``caches[name][attr]`` is the raw text of the
    sysfs file (stripped), or None when the file is absent; ``structs[name]`` is
    ``{"size", "align", "fields": [[name, offset, size], ...]}`` from BTF, absent when the kernel lacks it."""

    source: str                 # "live" or "snapshot <path>"
    taken: str                  # ISO 8601 time of the reading
    release: str | None
    machine: str | None
    cpus: dict = field(default_factory=dict)       # present / possible / online: raw CPU-list text
    numa_nodes: str | None = None                   # raw text of /sys/devices/system/node/online
    caches: dict = field(default_factory=dict)
    structs: dict = field(default_factory=dict)
    btf: str = "not read"       # "read", or why not
    notes: list = field(default_factory=list)       # one sentence per problem met while reading

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return {"schema": SCHEMA, "tool": "python -m allocsim inspect --json", **d}

    @classmethod
    def from_json(cls, doc: dict, source: str) -> "Reading":
        """A reading from a snapshot document, checked against :data:`SNAPSHOT_SCHEMA` (and each cache, struct
        and CPU list against theirs): a wrong type names the file, the cache or struct, and the field."""
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise DataError(f"{source}: not an allocsim kernel snapshot (schema {SCHEMA})")
        missing = sorted(k for k in ("taken", "release", "caches") if k not in doc)
        if missing:
            raise DataError(f"{source}: snapshot field(s) {', '.join(missing)} missing")
        check_record(doc, SNAPSHOT_SCHEMA, source)
        check_record(doc["cpus"], CPUS_SCHEMA, f"{source}, cpus")
        for name, attrs in doc["caches"].items():
            check_record(attrs, CACHE_SCHEMA, f"{source}, cache {name!r}")
        for name, st in doc["structs"].items():
            check_record(st, STRUCT_SCHEMA, f"{source}, struct {name!r}")
        names = {f for f in cls.__dataclass_fields__} - {"source"}
        return cls(source=source, **{k: v for k, v in doc.items() if k in names})


def _iso_time(v):
    try:
        _dt.datetime.fromisoformat(v)
    except ValueError:
        return ", which is not an ISO 8601 time such as '2026-11-29T01:12:30+00:00'"
    return None


def _member(v):
    ok = (isinstance(v, list) and len(v) == 3 and isinstance(v[0], str)
          and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v[1:]))
    return None if ok else ", which is not [name, offset, size]"


_RAW = Field((str, type(None)), required=False)  # the text of a sysfs file as read, or null when absent

#: A snapshot file (``inspect --json``): raw sysfs text is kept as text, so that the same parser reads
#: snapshots and live files.
SNAPSHOT_SCHEMA = {
    "schema": Field((int,), allowed=(SCHEMA,)),
    "tool": Field((str,), required=False, default=""),
    "taken": Field((str,), check=_iso_time),
    "release": Field((str, type(None))),
    "machine": Field((str, type(None)), required=False),
    "cpus": Field((dict,), required=False, default={}),
    "numa_nodes": _RAW,
    "caches": Field((dict,)),
    "structs": Field((dict,), required=False, default={}),
    "btf": Field((str,), required=False, default="not read"),
    "notes": Field((list,), required=False, default=[], items=Field((str,))),
}
CPUS_SCHEMA = {k: _RAW for k in ("present", "possible", "online")}
CACHE_SCHEMA = {a: _RAW for a in SLAB_ATTRS}
STRUCT_SCHEMA = {"size": Field((int,), low=0), "align": Field((int,), low=1),
                 "fields": Field((list,), items=Field((list,), check=_member))}


def _read_text(path: Path, notes: list, what: str, missing_ok: bool = False) -> str | None:
    """The stripped text of a sysfs/procfs file, or None with one sentence in ``notes``."""
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        if not missing_ok:
            notes.append(f"{path} ({what}) does not exist")
    except PermissionError:
        notes.append(f"{path} ({what}) is not readable by this user (permission denied)")
    except OSError as exc:
        notes.append(f"{path} ({what}) could not be read: {exc.strerror or exc}")
    return None


def _kmalloc_size(name: str) -> int | None:
    m = _KMALLOC_RE.match(name)
    if not m:
        return None
    return int(m.group(1)) * (1024 if m.group(2) else 1)


def read_live(root: str | Path = "/", now: _dt.datetime | None = None) -> Reading:
    """Read the running kernel (``root`` prefixes every path, for tests on crafted trees). Never raises
    for a missing or unreadable file: each problem is one sentence in ``notes``."""
    root = Path(root)
    notes: list[str] = []
    taken = (now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0).isoformat()
    r = Reading(source="live", taken=taken, release=None, machine=platform.machine() or None, notes=notes)
    if sys.platform != "linux" and root == Path("/"):
        notes.append(f"this machine runs {platform.system() or sys.platform}, not Linux: there is no /sys/kernel/slab to read")
        r.btf = "not Linux"
        return r
    r.release = _read_text(root / "proc/sys/kernel/osrelease", notes, "kernel release")
    for kind in ("present", "possible", "online"):
        r.cpus[kind] = _read_text(root / f"sys/devices/system/cpu/{kind}", notes, f"{kind} CPUs")
    r.numa_nodes = _read_text(root / "sys/devices/system/node/online", notes, "NUMA nodes", missing_ok=True)
    slab = root / "sys/kernel/slab"
    try:
        entries = sorted(p for p in slab.iterdir() if p.is_dir() and not p.is_symlink())
    except FileNotFoundError:
        notes.append(f"{slab} does not exist (not a SLUB kernel, or sysfs is not mounted)")
        entries = []
    except PermissionError:
        notes.append(f"{slab} is not readable by this user (permission denied)")
        entries = []
    except OSError as exc:
        notes.append(f"{slab} could not be listed: {exc.strerror or exc}")
        entries = []
    for d in entries:
        is_kmalloc = _kmalloc_size(d.name) is not None
        if not is_kmalloc:
            sc = _read_text(d / "sheaf_capacity", [], "sheaf_capacity", missing_ok=True)
            if sc is None or sc.strip() == "0":
                continue
        r.caches[d.name] = {a: _read_text(d / a, notes, f"{d.name} {a}", missing_ok=(a == "sheaf_capacity"))
                            for a in SLAB_ATTRS}
    if entries and not any(_kmalloc_size(n) for n in r.caches):
        notes.append(f"{slab} has no kmalloc-<size> caches")
    _read_btf(r, root / "sys/kernel/btf/vmlinux")
    return r


def _read_btf(r: Reading, path: Path) -> None:
    from allocsim.facts.btf import BTF, BTFError

    try:
        b = BTF.from_file(path)
    except BTFError as exc:
        r.btf = str(exc)
        r.notes.append(f"BTF: {exc}")
        return
    r.btf = "read"
    for name in STRUCTS:
        try:
            s = b.struct_layout(name)
        except BTFError as exc:
            r.notes.append(f"BTF: struct {name}: {exc}")
            continue
        if s is not None:
            r.structs[name] = {"size": s.size, "align": s.align, "fields": [[f.name, f.offset, f.size] for f in s.fields]}


def read_snapshot(path: str | Path) -> Reading:
    """A snapshot written by ``inspect --json``, checked against :data:`SNAPSHOT_SCHEMA`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AllocsimError(f"snapshot {p} does not exist") from None
    except IsADirectoryError:
        raise AllocsimError(f"snapshot {p} is a directory; give the .json file written by `inspect --json`") from None
    except PermissionError:
        raise AllocsimError(f"snapshot {p} is not readable by this user (permission denied)") from None
    except UnicodeDecodeError:
        raise DataError(f"snapshot {label(p)} is not UTF-8 text, so not a snapshot written by `inspect --json`") from None
    except OSError as exc:
        raise AllocsimError(f"snapshot {p} could not be read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"snapshot {label(p)} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return Reading.from_json(doc, f"snapshot {label(p)}")


def shipped_snapshots() -> dict[Path, Reading]:
    """Every snapshot in ``data/snapshots/``, each checked."""
    return {p: read_snapshot(p) for p in sorted(snapshots_dir().glob("*.json"))}


def default_snapshot() -> Path:
    """The newest snapshot shipped in ``data/snapshots/`` (by the time it was taken); every one is checked."""
    found = sorted((r.taken, p) for p, r in shipped_snapshots().items())
    if not found:
        raise DataError("data/snapshots/ holds no kernel snapshot (*.json)")
    return found[-1][1]


def live_usable(r: Reading) -> bool:
    """Whether a live reading has what the comparison needs: the release, the CPU count and kmalloc caches."""
    return bool(r.release and r.cpus.get("present") and any(_kmalloc_size(n) for n in r.caches))


def load(source: str = "auto", snapshot: str | Path | None = None, root: str | Path = "/") -> tuple[Reading, str]:
    """The reading a page or the CLI shows, and one sentence saying which it is.

    ``"snapshot"``: the shipped snapshot (deterministic). ``"live"``/``"auto"``: this machine's kernel, or —
    if it cannot be read (not Linux, no ``/sys/kernel/slab``, permission denied) — the snapshot, saying why.
    """
    if source not in ("auto", "snapshot", "live"):
        raise AllocsimError(f"source must be one of 'auto', 'snapshot', 'live', not {source!r}")
    snap = Path(snapshot) if snapshot else None
    if source != "snapshot":
        live = read_live(root)
        if live_usable(live):
            return live, f"live: read from this machine's kernel {live.release} at {live.taken}"
        snap = snap or default_snapshot()
        why = "; ".join(live.notes) or "the kernel's files are incomplete"
        r = read_snapshot(snap)
        return r, (f"snapshot: this machine's kernel could not be read ({why}), so the page shows "
                   f"{r.source.removeprefix('snapshot ')} (kernel {r.release}, taken {r.taken})")
    r = read_snapshot(snap or default_snapshot())
    return r, f"snapshot: {r.source.removeprefix('snapshot ')} (kernel {r.release}, taken {r.taken})"


# ---------------------------------------------------------------------------------------------------
# Parsing the raw text

def parse_int(text: str | None, where: str, problems: list) -> int | None:
    """A sysfs number. None for an absent file; None plus one sentence in ``problems`` for text that is
    not a (non-negative) decimal integer, so unexpected content is never read as 0."""
    if text is None:
        return None
    t = text.strip()
    if re.fullmatch(r"\d+", t):
        return int(t)
    problems.append(f"{where}: expected a non-negative integer, found {t[:40]!r}")
    return None


def cpu_count(text: str | None, where: str, problems: list) -> int | None:
    """Number of CPUs in a kernel CPU list such as ``0-1,4-7`` (``cpulist_parse`` format)."""
    if text is None:
        return None
    t = text.strip()
    if not _CPULIST_RE.match(t):
        problems.append(f"{where}: expected a CPU list such as '0-3,8', found {t[:40]!r}")
        return None
    n = 0
    for part in t.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            problems.append(f"{where}: range {part!r} runs backwards")
            return None
        n += (int(hi) - int(lo) + 1) if hi else 1
    return n


@dataclass
class Facts:
    """A reading parsed: numbers, or None where a value is absent or unreadable (``problems`` says which)."""

    release: str | None
    cpus_present: int | None
    cpus_possible: int | None
    cpus_online: int | None
    numa_nodes: int | None
    caches: dict            # name -> {attr: int | None}
    structs: dict           # name -> StructLayout
    problems: list


def parse(r: Reading) -> Facts:
    problems: list[str] = []
    cpus = {k: cpu_count(r.cpus.get(k), f"{k} CPUs", problems) for k in ("present", "possible", "online")}
    nodes = cpu_count(r.numa_nodes, "NUMA nodes", problems) if r.numa_nodes is not None else None
    caches = {}
    for name, attrs in sorted(r.caches.items(), key=lambda kv: (_kmalloc_size(kv[0]) is None, _kmalloc_size(kv[0]) or 0, kv[0])):
        # every attribute read is printed with "%u\n" or "%d\n" by mm/slub.c's *_show() functions
        caches[name] = {a: parse_int(attrs.get(a), f"{name}/{a}", problems) for a in SLAB_ATTRS}
    structs = {}
    for name, s in r.structs.items():
        try:
            fields = tuple(layout.Field(str(n), int(o), int(sz)) for n, o, sz in s["fields"])
            structs[name] = layout.StructLayout(name, int(s["size"]), int(s["align"]), fields, "BTF")
        except (KeyError, TypeError, ValueError):
            problems.append(f"struct {name}: the reading's layout is malformed")
    return Facts(r.release, cpus["present"], cpus["possible"], cpus["online"], nodes, caches, structs, problems)


def model_version(release: str | None, override: str | None = None) -> tuple[str, str]:
    """The model version to compare a kernel with, and a sentence if it is not the kernel's own."""
    if override:
        return kconfig.check_version(override), f"model version {kconfig.check_version(override)} chosen by the caller"
    try:
        return kconfig.check_version(release or ""), ""
    except AllocsimError:
        pass
    m = re.match(r"^v?(\d+)\.(\d+)", release or "")
    newest, oldest = versions.VERSIONS[-1], versions.VERSIONS[0]
    if not m:
        return newest, f"kernel release {release!r} is not a version number; compared with the {newest} model"
    key = (int(m.group(1)), int(m.group(2)))
    if key < tuple(int(x) for x in oldest.split(".")):
        return oldest, (f"kernel {release} is older than the versions the models know ({', '.join(kconfig.VERSIONS)}); "
                        f"compared with the {oldest} model")
    return newest, (f"kernel {release} is newer than the versions the models know ({', '.join(kconfig.VERSIONS)}); "
                    f"compared with the {newest} model")


# ---------------------------------------------------------------------------------------------------
# The comparison

AGREE, DIFFER, NOT_COMPARED = "agree", "differ", "not compared"
INPUT = "input"  # a kernel value the model takes as given (the s->size of a dedicated cache)


def _row(group, item, quantity, model, kernel, note="", verdict=None):
    if verdict is None:
        verdict = NOT_COMPARED if model is None or kernel is None else (AGREE if model == kernel else DIFFER)
    return {"group": group, "item": item, "quantity": quantity, "model": model, "kernel": kernel,
            "verdict": verdict, "note": note}


def compare(r: Reading, version: str | None = None) -> tuple[list[dict], dict]:
    """Rows model-vs-kernel for a reading, and a summary dict (release, model version, CPU counts …)."""
    f = parse(r)
    v, vnote = model_version(f.release, version)
    ncpu = f.cpus_present
    rows: list[dict] = []
    summary = {"source": r.source, "taken": r.taken, "release": f.release, "model_version": v,
               "version_note": vnote, "cpus_present": f.cpus_present, "cpus_possible": f.cpus_possible,
               "cpus_online": f.cpus_online, "numa_nodes": f.numa_nodes, "btf": r.btf,
               "min_objects": None, "problems": list(r.notes) + f.problems}
    if ncpu is not None:
        summary["min_objects"] = kconfig.min_objects(ncpu, f.cpus_possible)
    # -- caches ---------------------------------------------------------------------------------------
    for name, k in f.caches.items():
        ksize = _kmalloc_size(name)
        group = "kmalloc caches" if ksize else "caches with sheaves"
        if ncpu is None:
            rows.append(_row(group, name, "all", None, None, "the number of present CPUs could not be read"))
            continue
        if ksize:
            try:
                g = kconfig.cache_geometry(ksize, ncpu, v, ncpu_possible=f.cpus_possible)
            except AllocsimError as exc:
                rows.append(_row(group, name, "all", None, None, str(exc)))
                continue
            notes = {}
        else:
            # a dedicated cache: the model takes the kernel's s->size (alignment and flags are the creator's)
            s_size = k["slab_size"]
            if s_size is None:
                rows.append(_row(group, name, "all", None, None, "slab_size could not be read"))
                continue
            g = kconfig.cache_geometry(s_size, ncpu, v, kmalloc=False, ncpu_possible=f.cpus_possible, name=name)
            notes = {"slab_size": "the model takes the kernel's s->size for a dedicated cache"}
        for quantity, gattr, kattr in _CACHE_ROWS:
            model, kernel = getattr(g, gattr), k[kattr]
            note = notes.get(quantity, "")
            verdict = None
            if quantity == "slab_size" and not ksize:
                verdict = INPUT
            if quantity == "sheaf_capacity":
                if r.caches[name].get("sheaf_capacity") is None:
                    note, verdict = "this kernel has no sheaf_capacity attribute (before 6.18: no sheaves)", NOT_COMPARED
                elif not ksize and versions.family(v).sheaves_opt_in:
                    model, note, verdict = None, (f"opt-in in {v}: the capacity is the creator's "
                                                  "kmem_cache_args.sheaf_capacity, taken verbatim"), NOT_COMPARED
                elif not ksize and kernel is not None and kernel > model:
                    note = "above the default: max() with an explicit kmem_cache_args.sheaf_capacity"
            if kernel is None and r.caches[name].get(kattr) is not None:
                note = f"unreadable: {r.caches[name][kattr][:40]!r}"
            rows.append(_row(group, name, quantity, model, kernel, note, verdict))
    # -- structs --------------------------------------------------------------------------------------
    for sname in STRUCTS:
        model_s = layout.load(sname, v)
        ks = f.structs.get(sname)
        if ks is None:
            why = (f"BTF not available ({r.btf})" if r.btf != "read"
                   else f"this kernel has no struct {sname}")
            rows.append(_row("structs", f"struct {sname}", "sizeof", model_s.size, None, why))
            continue
        rows.append(_row("structs", f"struct {sname}", "sizeof", model_s.size, ks.size))
        kf = {fl.name: fl for fl in ks.fields}
        mf = {fl.name: fl for fl in model_s.fields}
        for fname in list(mf) + [n for n in kf if n not in mf]:
            m, kk = mf.get(fname), kf.get(fname)
            note = "" if (m and kk) else ("only in the model" if m else "only in the kernel")
            rows.append(_row("structs", f"struct {sname}", f"offsetof({fname})", m.offset if m else None,
                             kk.offset if kk else None, note, DIFFER if not (m and kk) else None))
    # -- kmalloc classes of iomap_dio and of the patch's element ----------------------------------------
    buckets = sorted((f.caches[n]["object_size"], n) for n in f.caches
                     if _kmalloc_size(n) and f.caches[n]["object_size"] is not None)
    dio_model = layout.sizeof("iomap_dio", v)
    header = layout.sizeof("pcpu_cache_element", v)
    dio_kernel = f.structs["iomap_dio"].size if "iomap_dio" in f.structs else None
    for item, msize, ksize_, what in (
            ("kmalloc(sizeof(struct iomap_dio))", dio_model, dio_kernel, "iomap_dio"),
            (f"patch: kmalloc({header} + sizeof(struct iomap_dio))", dio_model + header,
             None if dio_kernel is None else dio_kernel + header, "pcpu_cache_element + iomap_dio")):
        model = kconfig.kmalloc_cache_name(msize)
        kernel = next((n for size, n in buckets if size >= ksize_), None) if ksize_ is not None else None
        note = (f"{what}: model {msize} bytes" + (f", kernel {ksize_} bytes (BTF)" if ksize_ is not None else
                                                  ", kernel size unknown without BTF"))
        if item.startswith("patch"):
            note += (f"; the {header}-byte header is the patch's struct pcpu_cache_element "
                     "(sizeof, data/kernel/structs.yaml; not in any released kernel)")
        rows.append(_row("kmalloc class", item, "cache", model, kernel, note))
    summary["agree"] = sum(r_["verdict"] == AGREE for r_ in rows)
    summary["differ"] = sum(r_["verdict"] == DIFFER for r_ in rows)
    summary["not_compared"] = sum(r_["verdict"] == NOT_COMPARED for r_ in rows)
    return rows, summary


def condense(rows: list[dict], limit: int = 12) -> list[dict]:
    """Rows for display: every row, except that when more than ``limit`` dedicated caches have sheaves (7.0
    gives sheaves to almost every cache) their agreeing rows become one row per quantity with the count."""
    dedicated = [r for r in rows if r["group"] == "caches with sheaves"]
    if len({r["item"] for r in dedicated}) <= limit:
        return rows
    out = [r for r in rows if r["group"] != "caches with sheaves"]
    for quantity, _, _ in _CACHE_ROWS:
        q = [r for r in dedicated if r["quantity"] == quantity]
        n_agree = sum(r["verdict"] == AGREE for r in q)
        out.append(_row("caches with sheaves", f"{n_agree} of {len(q)} caches", quantity, "—", "—",
                        "rows that agree, counted", AGREE if n_agree else NOT_COMPARED))
        out.extend(r for r in q if r["verdict"] != AGREE)
    return out


def table(rows: list[dict]):
    """The rows as a DataFrame (model and kernel as text, so that numbers and names share a column)."""
    import pandas as pd

    cols = ["group", "item", "quantity", "model", "kernel", "verdict", "note"]
    text = lambda x: "—" if x is None else str(x)  # noqa: E731 (ints stay ints: no float NaN column)
    return pd.DataFrame([[r[c] if c not in ("model", "kernel") else text(r[c]) for c in cols] for r in rows],
                        columns=cols, dtype=object)


def readings_table(r: Reading):
    """The caches as read: one row per cache, the sysfs attributes as columns (raw text)."""
    import pandas as pd

    rows = [{"cache": n, **{a: ("—" if v is None else v) for a, v in attrs.items() if a in SLAB_ATTRS}}
            for n, attrs in r.caches.items()]
    df = pd.DataFrame(rows, columns=["cache", *SLAB_ATTRS])
    key = df["cache"].map(lambda n: (_kmalloc_size(n) is None, _kmalloc_size(n) or 0, n))
    return df.iloc[sorted(range(len(df)), key=lambda i: key.iloc[i])].set_index("cache")


# ---------------------------------------------------------------------------------------------------
# CLI

#: Columns the command's output fits in.
WIDTH = 100


def wrap_table(headers: list[str], rows: list[list], width: int = WIDTH, gap: int = 2) -> list[str]:
    """Lines of a plain-text table no wider than ``width``: the widest columns are narrowed first and their
    cells wrapped onto several lines (headers wrap at ``_`` and spaces)."""
    cells = [[str(h).replace("_", " ") for h in headers]] + [["—" if c is None else str(c) for c in r] for r in rows]
    ncol = len(headers)
    values = [max([len(r[i]) for r in cells[1:]] or [0]) for i in range(ncol)]
    words = [max(len(w) for w in (cells[0][i].split() or [""])) for i in range(ncol)]
    widths = [max(len(cells[0][i]), values[i]) for i in range(ncol)]

    def too_wide():
        return sum(widths) + gap * (ncol - 1) > width

    # first let headers wrap onto more lines, then narrow the widest column (down to 6 characters)
    for floor in ([max(v, w) for v, w in zip(values, words)], [min(max(v, w), 6) for v, w in zip(values, words)]):
        while too_wide():
            wide = [i for i in range(ncol) if widths[i] > floor[i]]
            if not wide:
                break
            widths[max(wide, key=lambda i: widths[i] - floor[i])] -= 1
    out = []
    for k, row in enumerate(cells):
        parts = [textwrap.wrap(c, w, break_on_hyphens=False) or [""] for c, w in zip(row, widths)]
        for j in range(max(len(p) for p in parts)):
            out.append((" " * gap).join((p[j] if j < len(p) else "").ljust(w) for p, w in zip(parts, widths)).rstrip())
        if k == 0:
            out.append((" " * gap).join("-" * w for w in widths))
    return out


def _para(text: str, prefix: str = "") -> str:
    return textwrap.fill(text, WIDTH, initial_indent=prefix, subsequent_indent=" " * len(prefix),
                         break_on_hyphens=False, break_long_words=True)


def differences(rows: list[dict]) -> list[dict]:
    """The rows worth a reader's attention: those that differ or could not be compared."""
    return [r for r in rows if r["verdict"] in (DIFFER, NOT_COMPARED)]


def report(r: Reading, said: str, rows: list[dict], summary: dict, show_all: bool = False) -> str:
    """The text ``inspect`` prints: the summary first, then the reading, then the rows that differ or were
    not compared (every row, and the caches as read, with ``show_all``). No line is wider than :data:`WIDTH`."""
    n = len(rows)
    n_input = sum(x["verdict"] == INPUT for x in rows)
    taken = f", {n_input} taken as the model's input" if n_input else ""
    lines = [_para(f"Summary: {summary['agree']} agree, {summary['differ']} differ, {summary['not_compared']} not "
                   f"compared{taken} ({n} rows): kernel {summary['release']} against the "
                   f"{summary['model_version']} model."),
             _para(f"Reading: {said}"),
             _para(f"Kernel {summary['release']} ({r.machine or 'unknown machine'}): CPUs present "
                   f"{summary['cpus_present']}, possible {summary['cpus_possible']}, online {summary['cpus_online']}; "
                   f"NUMA nodes {summary['numa_nodes']}; BTF: {summary['btf']}"),
             _para(f"Model version {summary['model_version']}"
                   + (f" ({summary['version_note']})" if summary["version_note"] else "")
                   + f"; min_objects = {kconfig.min_objects_factor()} * (fls({summary['cpus_present']}) + 1) = "
                   f"{summary['min_objects']}")]
    lines += [_para(p, "problem: ") for p in summary["problems"]]
    if show_all:
        lines += ["", "Caches as read from /sys/kernel/slab:"]
        df = readings_table(r)
        lines += wrap_table(["cache", *df.columns], [[name, *vals] for name, vals in zip(df.index, df.values.tolist())])
        shown = rows
        lines += ["", f"Model vs kernel, all {n} rows:"]
    else:
        shown = differences(rows)
        if not shown:
            lines += ["", _para(f"No differences: every compared row agrees (--all lists all {n} rows).")]
        else:
            lines += ["", _para(f"Rows that differ or were not compared ({len(shown)} of {n}; --all lists every row):")]
    cols = ["item", "quantity", "model", "kernel", "verdict", "note"]
    for group in dict.fromkeys(x["group"] for x in shown):
        lines += ["", f"{group}:"]
        lines += wrap_table(cols, [[x[c] for c in cols] for x in shown if x["group"] == group])
    return "\n".join(lines) + "\n"


DESCRIPTION = """\
Read this machine's kernel slab caches (/sys/kernel/slab) and struct layouts (BTF), or a saved
snapshot, and compare them with the models of the same kernel version.

The output starts with a summary (how many rows agree, differ or were not compared), then
says what was read, then lists only the rows that differ or could not be compared. --all lists every
row and the caches as read. Lines fit in 100 columns."""

EPILOG = """\
examples:
  python -m allocsim inspect                            this machine's kernel
  python -m allocsim inspect --json mine.json           save the reading as a snapshot
  python -m allocsim inspect --snapshot mine.json --version 7.0
                                                        a snapshot against the 7.0 model

Bad input (a snapshot that is not one, a directory, a missing output directory) stops with one
sentence and exit status 2."""


def _check_output(path: str) -> Path:
    """Where ``--json`` writes, refused before anything is read if it cannot be written there."""
    p = Path(path)
    if p.is_dir():
        raise AllocsimError(f"--json {path} is a directory; give a file name such as {p / 'mine.json'}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise AllocsimError(f"cannot write the snapshot to {path}: the directory {parent} does not exist")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m allocsim inspect``: print the summary, the reading and the model-vs-kernel differences."""
    ap = argparse.ArgumentParser(prog="python -m allocsim inspect", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshot", metavar="PATH", help="compare this snapshot instead of the live kernel")
    ap.add_argument("--json", metavar="PATH", help="write the live reading as a snapshot to PATH")
    ap.add_argument("--root", metavar="DIR", default="/", help="read /proc and /sys below DIR (default /)")
    ap.add_argument("--version", metavar="V", help="compare with this model version (default: the kernel's)")
    ap.add_argument("--all", action="store_true", help="list every row (and the caches as read), not only differences")
    args = ap.parse_args(argv)
    out = sys.stdout
    try:
        if args.snapshot and args.json:
            raise AllocsimError("--json writes a live reading; it cannot be combined with --snapshot")
        if args.snapshot:
            r = read_snapshot(args.snapshot)
            said = f"snapshot: {r.source.removeprefix('snapshot ')} (kernel {r.release}, taken {r.taken})"
        else:
            target = _check_output(args.json) if args.json else None
            live = read_live(args.root)
            if target is not None:
                if not live_usable(live):
                    raise AllocsimError("the live kernel could not be read, so no snapshot was written: "
                                        + ("; ".join(live.notes) or "no kmalloc caches found"))
                try:
                    target.write_text(json.dumps(live.to_json(), indent=1, sort_keys=False) + "\n")
                except OSError as exc:
                    raise AllocsimError(f"cannot write the snapshot to {args.json}: {exc.strerror or exc}") from None
                print(_para(f"wrote {args.json} (kernel {live.release}, {len(live.caches)} caches, "
                            f"{len(live.structs)} structs from BTF)"), file=out)
            if live_usable(live):
                r, said = live, f"live: this machine's kernel {live.release}, read at {live.taken}"
            else:
                r, said = load("snapshot")
                print(_para("note: this machine's kernel could not be read (" + ("; ".join(live.notes) or "incomplete")
                            + "); showing the shipped snapshot instead"), file=out)
        rows, summary = compare(r, args.version)
    except AllocsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.write(report(r, said, rows, summary, show_all=args.all))
    return 0


if __name__ == "__main__":  # python -m allocsim.facts.inspect …
    sys.exit(main())

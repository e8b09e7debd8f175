"""Cost model v2: the hot paths as named steps read off the kernel code (``data/kernel/steps.yaml``), and
the kernel configuration switches that change them (``data/kernel/hooks.yaml``).

Every allocator is costed the same way: a kernel function's hot path is the sum of its steps (calls,
static keys, loads the code waits for, atomics, preempt and irq pairs, zeroing per 64-byte line), each
charged one row of ``data/costs.csv`` (:mod:`allocsim.facts.costs`). The rules that decide which load
counts are at the head of ``steps.yaml``; chapters show the expanded tables (:func:`frame`)::

    from allocsim.facts import steps
    book = steps.load()                                   # data/kernel/steps.yaml, validated
    hooks = steps.Hooks.default()                         # a distribution kernel's switches
    f = steps.Facts(hooks=hooks, sheaves=True, object_size=128)
    book.cycles("local_trylock", costs.load(), f)         # 23.0
    steps.slub_vector(costs.load(), book, f, kmalloc=True)  # what the SLUB models charge (SLUB_SEGMENTS)

``steps-v1.yaml`` states, in the same form, what the models charged before cost model v2 (one whole-call
figure for the 6.19 fast path, three primitives for a sheaf hit, no hooks); the model changelog of the
methods appendix runs both.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache

import numpy as np

from allocsim.facts import paths
from allocsim.facts.datafile import label, on_clear, read_yaml
from allocsim.facts.errors import AllocsimError, DataError
from allocsim.facts.schema import Field, check_record, fail

KINDS = ("call", "static_key", "load", "store", "preempt", "irq", "atomic", "zero", "memcg", "include")
LINES = ("object", "kmem_cache", "percpu_offset", "pcpu_struct", "sheaf", "sheaf_slot", "struct_page", "global",
         "descriptor")
#: What the memory hierarchy resolves (:mod:`allocsim.kernel.memory`): the lines above, and ``object_lines``
#: — every line of the object, which a ``zero`` step writes.
MEM_CLASSES = LINES + ("object_lines",)
#: Room per segment in a model's access table (:func:`access_table`).
MAX_ACCESSES = 16
#: Facts of a model a step may depend on (besides the hook switches).
MODEL_FACTS = ("sheaves", "account", "cpu_slab", "kmalloc")
#: What the SLUB models charge, in the order of their cost block (kernel/state.py ``SEG_*``).
SLUB_SEGMENTS = ("alloc_entry", "free_entry", "pcs_free_check", "local_trylock", "pcs_alloc", "pcs_free",
                 "cpu_slab_alloc", "cpu_slab_free", "sheaf_kmalloc")
#: The per-CPU list's paths (kernel/pcpu_list.py ``PATHS``) and the segment each one charges.
PCPU_SEGMENTS = {"alloc_hit": "pcpu_alloc_hit", "alloc_splice": "pcpu_alloc_splice",
                 "alloc_kmalloc": "pcpu_alloc_kmalloc", "free_task": "pcpu_free_task", "free_irq": "pcpu_free_irq",
                 "kfree_full": "pcpu_kfree_full", "kfree_softirq": "pcpu_kfree_softirq"}
#: The segments of a SLUB entry point: the entry function, then the hooks of slab_alloc_node() / slab_free().
ENTRY = {("alloc_entry", True): ("kmalloc_entry", "slab_alloc_hooks"),
         ("alloc_entry", False): ("kmem_cache_alloc_entry", "slab_alloc_hooks"),
         ("free_entry", True): ("kfree_entry", "slab_free_hooks"),
         ("free_entry", False): ("kmem_cache_free_entry", "slab_free_hooks")}
_NAME = re.compile(r"[a-z][a-z0-9_]*$")


# ------------------------------------------------------------------------------------------------
# The switches (data/kernel/hooks.yaml)

@dataclass(frozen=True)
class Hooks:
    """The kernel configuration switches of the hot paths (one field per entry of ``hooks.yaml``)."""

    memcg: bool = True
    init_on_alloc: bool = True
    init_on_free: bool = False
    kfence_sampling: bool = False
    alloc_tagging: bool = False
    preempt_voluntary: bool = True
    freelist_hardened: bool = True

    @classmethod
    def default(cls) -> "Hooks":
        """A distribution kernel's defaults, as ``hooks.yaml`` states them (with their sources)."""
        return cls(**{k: v["default"] for k, v in switches().items()})

    @classmethod
    def off(cls) -> "Hooks":
        """Every switch off: the leanest hot path a kernel can be configured to."""
        return cls(**{k: False for k in switches()})

    @classmethod
    def of(cls, value) -> "Hooks":
        """``None`` or ``"default"`` → :meth:`default`; ``"off"`` → :meth:`off`; a mapping of switches →
        the defaults with those changed; a :class:`Hooks` as it is. Anything else: one-sentence error."""
        if isinstance(value, Hooks):
            return value
        if value is None or value == "default":
            return cls.default()
        if value == "off":
            return cls.off()
        if isinstance(value, dict):
            names = tuple(switches())
            for k, v in value.items():
                if k not in names:
                    raise AllocsimError(f"unknown hook switch {k!r}; the switches are {', '.join(names)}")
                if not isinstance(v, bool):
                    raise AllocsimError(f"hook switch {k} must be true or false, not {v!r}")
            return replace(cls.default(), **value)
        raise AllocsimError(f"hooks must be 'default', 'off', a mapping of switch: true/false or a Hooks, not {value!r}")

    def changed(self) -> dict:
        """The switches that differ from the distribution defaults."""
        d = Hooks.default()
        return {k: v for k, v in asdict(self).items() if getattr(d, k) != v}

    def label(self) -> str:
        on = [k for k, v in asdict(self).items() if v]
        return ", ".join(on) if on else "all off"


_SWITCH = {"default": Field((bool,)), "what": Field((str,)), "source": Field((str,))}


@lru_cache(maxsize=None)
def switches() -> dict:
    """``hooks.yaml``'s switches, checked: each with a boolean default, what it changes and its source."""
    path = paths.DATA / "kernel" / "hooks.yaml"
    name = label(path)
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("switches"), dict):
        fail(name, None, "must be a mapping with a 'switches' mapping")
    want = [f.name for f in fields(Hooks)]
    got = list(doc["switches"])
    if sorted(got) != sorted(want):
        fail(name, "switches", f"must name exactly {', '.join(want)}, not {', '.join(map(str, got))}")
    return {k: check_record(dict(v) if isinstance(v, dict) else v, _SWITCH, f"{name}, switch {k!r}")
            for k, v in doc["switches"].items()}


# ------------------------------------------------------------------------------------------------
# The facts a step's condition reads

@dataclass(frozen=True)
class Facts:
    """What a model is: its switches, and the facts the conditions of ``steps.yaml`` read."""

    hooks: Hooks = field(default_factory=Hooks.default)
    sheaves: bool = False     # the cache has per-CPU sheaves
    account: bool = False     # SLAB_ACCOUNT / __GFP_ACCOUNT
    cpu_slab: bool = False    # the kernel has the cpu slab (6.18/6.19)
    kmalloc: bool = True      # a kmalloc cache (else a dedicated kmem_cache)
    object_size: int = 64     # s->object_size, bytes (zeroing is per 64-byte line)

    def value(self, name: str) -> bool:
        if name in MODEL_FACTS:
            return getattr(self, name)
        return getattr(self.hooks, name)

    @property
    def object_lines(self) -> int:
        return -(-int(self.object_size) // 64)


def _condition_names(when: str) -> list[str]:
    return [w for w in re.split(r"\s+", when.strip()) if w not in ("and", "not")]


def holds(when: str | None, facts: Facts) -> bool:
    """Evaluate a step's ``when``: ``X``, ``not X``, ``X and not Y`` …"""
    if when is None:
        return True
    for clause in when.split(" and "):
        words = clause.split()
        neg = words[0] == "not"
        if facts.value(words[-1]) == neg:
            return False
    return True


# ------------------------------------------------------------------------------------------------
# The step file

@dataclass(frozen=True)
class Step:
    """One expanded step: what runs, where in the code, and its charge."""

    segment: str
    step: str
    code: str
    kind: str
    cost: str | None
    n: float
    line: str | None

    def cycles(self, table) -> float:
        return 0.0 if self.cost is None or self.n == 0 else self.n * table.cycles(self.cost)


@dataclass(frozen=True)
class StepBook:
    """A checked step file: ``segments`` maps a segment to its ``what`` and raw steps."""

    name: str
    segments: dict = field(repr=False)

    def steps(self, segment: str, facts: Facts) -> list[Step]:
        """The steps ``segment`` runs for a model with ``facts``: includes expanded, conditions applied,
        ``object_lines`` resolved."""
        if segment not in self.segments:
            raise AllocsimError(f"unknown step segment {segment!r}; {self.name} defines: {', '.join(self.segments)}")
        out: list[Step] = []
        for raw in self.segments[segment]["steps"]:
            if not holds(raw.get("when"), facts):
                continue
            if "include" in raw:
                out.extend(self.steps(raw["include"], facts))
                continue
            n = raw.get("n", 1)
            n = facts.object_lines if n == "object_lines" else float(n)
            cost = None if raw["cost"] == "none" else raw["cost"]
            out.append(Step(segment, raw["step"], raw["code"], raw["kind"], cost, n, raw.get("line")))
        return out

    def cycles(self, segment: str, table, facts: Facts, memory: bool = True) -> float:
        """The segment's cycles; ``memory=False`` leaves out its loads and stores (what the memory hierarchy
        charges instead, when it is on)."""
        return float(sum(s.cycles(table) for s in self.steps(segment, facts)
                         if memory or s.kind not in ("load", "store")))

    def accesses(self, segment: str, facts: Facts) -> list[tuple[str, int, int]]:
        """The memory the segment touches, in order: ``(class, write, times)`` for every load and store that
        runs (``times`` > 0), and ``("object_lines", 1, lines)`` for a zeroing step."""
        out = []
        for s in self.steps(segment, facts):
            if s.kind in ("load", "store") and s.n > 0:
                out.append((s.line, int(s.kind == "store"), int(s.n)))
            elif s.kind == "zero" and s.n > 0:
                out.append(("object_lines", 1, int(s.n)))
        return out

    def frame(self, segments, table, facts: Facts):
        """The table a chapter shows: one row per step (step, kernel code, kind, cost row, times, cycles)."""
        import pandas as pd

        rows = []
        for seg in ([segments] if isinstance(segments, str) else segments):
            for s in self.steps(seg, facts):
                rows.append({"segment": seg, "step": s.step, "kernel code": s.code, "kind": s.kind,
                             "cost": s.cost or "—", "times": s.n, "cycles": s.cycles(table)})
        return pd.DataFrame(rows, columns=["segment", "step", "kernel code", "kind", "cost", "times", "cycles"])

    def keys(self) -> set:
        """Every cost row some step of the file charges."""
        return {s["cost"] for seg in self.segments.values() for s in seg["steps"]
                if "cost" in s and s["cost"] != "none"}


def _n_check(v):
    if v == "object_lines":
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        return ", which is neither a number of times >= 0 nor object_lines"
    return None


def _step_schema(cost_keys):
    return {
        "step": Field((str,)), "code": Field((str,)),
        "kind": Field((str,), allowed=KINDS[:-1], allowed_name="kinds"),
        "cost": Field((str,), allowed=tuple(cost_keys) + ("none",), allowed_name="cost rows (or none)"),
        "n": Field((int, float, str), required=False, default=1, check=_n_check),
        "line": Field((str,), required=False, allowed=LINES, allowed_name="lines"),
        "when": Field((str,), required=False),
    }


_INCLUDE = {"include": Field((str,)), "when": Field((str,), required=False)}


def step_file_names() -> list[str]:
    return ["default"] + sorted(p.stem[len("steps-"):] for p in (paths.DATA / "kernel").glob("steps-*.yaml"))


@lru_cache(maxsize=None)
def load(name: str = "default") -> StepBook:
    """Load and check ``data/kernel/steps.yaml`` (``"default"``) or ``data/kernel/steps-<name>.yaml``."""
    from allocsim.facts import costs as _costs

    if not isinstance(name, str) or name not in step_file_names():
        raise AllocsimError(f"unknown step file {name!r}; available: {', '.join(step_file_names())}")
    path = paths.DATA / "kernel" / ("steps.yaml" if name == "default" else f"steps-{name}.yaml")
    where = label(path)
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("segments"), dict) or not doc["segments"]:
        fail(where, None, "must be a mapping with a non-empty 'segments' mapping")
    schema = _step_schema(_costs.ALL_KEYS)
    names = set(switches()) | set(MODEL_FACTS)
    segments = {}
    for seg, body in doc["segments"].items():
        w = f"{where}, segment {seg!r}"
        if not isinstance(seg, str) or not _NAME.match(seg):
            fail(where, None, f"segment name {seg!r} must be lower-case letters, digits and _")
        check_record(body, {"what": Field((str,)), "steps": Field((list,))}, w)
        for i, raw in enumerate(body["steps"], start=1):
            ws = f"{w}, step {i}"
            check_record(raw, _INCLUDE if isinstance(raw, dict) and "include" in raw else schema, ws)
            when = raw.get("when")
            if when is not None:
                bad = [x for x in _condition_names(when) if x not in names]
                if bad or not re.fullmatch(r"(not )?[a-z_]+( and (not )?[a-z_]+)*", when.strip()):
                    fail(ws, "when", f"is {when!r}; a condition is 'X', 'not X' or 'X and Y' with X one of "
                                     f"{', '.join(sorted(names))}")
            if raw.get("kind") in ("load", "store") and raw.get("line") is None:
                fail(ws, "line", "is missing (a load or a store names the memory it touches)")
        segments[seg] = body
    for seg, body in segments.items():
        for i, raw in enumerate(body["steps"], start=1):
            inc = raw.get("include")
            if inc is not None and inc not in segments:
                fail(f"{where}, segment {seg!r}, step {i}", "include", f"names {inc!r}, which is not a segment")
    book = StepBook(name, segments)
    _no_cycles(book, where)
    return book


def _no_cycles(book: StepBook, where: str) -> None:
    def visit(seg, stack):
        if seg in stack:
            fail(where, None, f"segment {seg!r} includes itself ({' → '.join(stack + [seg])})")
        for raw in book.segments[seg]["steps"]:
            if "include" in raw:
                visit(raw["include"], stack + [seg])
    for seg in book.segments:
        visit(seg, [])


on_clear(load.cache_clear)
on_clear(switches.cache_clear)


# ------------------------------------------------------------------------------------------------
# What the models charge

def slub_parts(segment: str, kmalloc: bool) -> tuple[str, ...]:
    """The step-file segments one SLUB model segment sums."""
    return ENTRY.get((segment, kmalloc), (segment,))


def sheaf_facts(facts: Facts, sheaf_bytes: int) -> Facts:
    """The facts of the ``kzalloc()`` that allocates a sheaf (``alloc_empty_sheaf()``): a kmalloc cache of
    ``sheaf_bytes`` objects, zeroed whatever ``init_on_alloc`` says (``__GFP_ZERO``), not accounted."""
    return replace(facts, hooks=replace(facts.hooks, init_on_alloc=True), kmalloc=True, account=False,
                   object_size=max(int(sheaf_bytes), 1))


#: Step sums already computed, keyed by the cost values, the step file and the facts: a model run costs the
#: same segments again and again (a sweep, a benchmark), and expanding them is Python work.
_SUMS: dict = {}


def _memo(kind: str, table, book: "StepBook", *rest):
    key = (kind, tuple(sorted((k, r["cycles"]) for k, r in table.rows.items())), book.name, id(book.segments), rest)
    return key, _SUMS.get(key)


on_clear(_SUMS.clear)


def slub_vector(table, book: StepBook, facts: Facts, sheaf_bytes: int = 0, memory: bool = True) -> np.ndarray:
    """The cycles of :data:`SLUB_SEGMENTS` for a SLUB model with ``facts`` (float64); ``sheaf_kmalloc`` is
    costed with :func:`sheaf_facts` (``sheaf_bytes``: ``struct slab_sheaf`` with its ``objects[]``).
    ``memory=False``: without the loads and stores, which the memory hierarchy charges when it is on
    (``sheaf_kmalloc``, a rare path on another cache, keeps its flat charges)."""
    key, hit = _memo("slub", table, book, facts, sheaf_bytes, memory)
    if hit is not None:
        return hit.copy()
    out = []
    for seg in SLUB_SEGMENTS:
        f = sheaf_facts(facts, sheaf_bytes) if seg == "sheaf_kmalloc" else facts
        mem = memory or seg == "sheaf_kmalloc"
        out.append(sum(book.cycles(p, table, f, mem) for p in slub_parts(seg, f.kmalloc)))
    _SUMS[key] = np.array(out, np.float64)
    return _SUMS[key].copy()


def access_table(book: StepBook, facts: Facts, segments=SLUB_SEGMENTS, parts=None) -> np.ndarray:
    """What each model segment touches, for the compiled models: int64 ``[len(segments), MAX_ACCESSES, 3]``
    of (index in :data:`MEM_CLASSES`, write, times), unused rows -1. ``parts``: segment → the step-file
    segments it sums (default :func:`slub_parts`)."""
    key = ("slub", book.name, id(book.segments), facts, tuple(segments)) if parts is None else None
    if key is not None and key in _TABLES:
        return _TABLES[key].copy()
    out = np.full((len(segments), MAX_ACCESSES, 3), -1, np.int64)
    for i, seg in enumerate(segments):
        names = parts(seg) if parts is not None else slub_parts(seg, facts.kmalloc)
        acc = [a for p in names for a in book.accesses(p, facts)]
        if seg == "sheaf_kmalloc":
            acc = []
        if len(acc) > MAX_ACCESSES:
            raise DataError(f"segment {seg!r} touches memory {len(acc)} times; the models hold at most {MAX_ACCESSES}")
        for j, (cls, write, n) in enumerate(acc):
            out[i, j] = (MEM_CLASSES.index(cls), write, n)
    if key is not None:
        _TABLES[key] = out.copy()
    return out


#: Access tables already built (as :data:`_SUMS`: a model builds the same table on every run).
_TABLES: dict = {}
on_clear(_TABLES.clear)


def pcpu_access_table(book: StepBook, hooks: Hooks, paths_order) -> np.ndarray:
    """:func:`access_table` for the per-CPU list's paths (``paths_order``)."""
    key = ("pcpu", book.name, id(book.segments), hooks, tuple(paths_order))
    if key not in _TABLES:
        f = Facts(hooks=hooks)
        _TABLES[key] = access_table(book, f, tuple(paths_order), parts=lambda p: (PCPU_SEGMENTS[p],))
    return _TABLES[key].copy()


def pcpu_vector(table, book: StepBook, hooks: Hooks, paths_order, memory: bool = True) -> np.ndarray:
    """The cycles of the per-CPU list's paths (in ``paths_order``), SLUB's fall-back calls not included
    (``memory=False``: without the loads and stores)."""
    key, hit = _memo("pcpu", table, book, hooks, tuple(paths_order), memory)
    if hit is not None:
        return hit.copy()
    f = Facts(hooks=hooks)
    _SUMS[key] = np.array([book.cycles(PCPU_SEGMENTS[p], table, f, memory) for p in paths_order], np.float64)
    return _SUMS[key].copy()

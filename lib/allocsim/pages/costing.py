"""The "step — kernel code — cost" tables of chapters 2, 3 and 5 (cost model v2).

Every hot path the models charge is a sum of named steps read off the kernel code
(``data/kernel/steps.yaml``, checked by :mod:`allocsim.facts.steps`), each charged one row of
``data/costs.csv``. This module lays those steps out for a reader who audits them beside the source: one
row per step, the segment it belongs to, the cost row and how often it is charged, and the cycles. The
facts a step's condition reads (the hook switches, sheaves, ``SLAB_ACCOUNT``, the cpu slab, the object
size that zeroing covers) are the SLUB model's own (:func:`allocsim.kernel.slub.facts_of`), so a table
shows exactly what a run charges on that path.

Chapter 5's side-by-side (:func:`hot_path_totals`) puts the io_uring hot path of every allocator in one
table: the entry point, the slab hooks, the allocator proper, per direction — what the per-CPU list's
hits skip is the first two.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from allocsim.facts import costs as _costs
from allocsim.facts import kconfig
from allocsim.facts import steps as _steps
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import pcpu_list as pl
from allocsim.kernel import slub

#: Display formats of :func:`shown` (cycles are whole numbers of a row's cycles times how often it is charged).
STEP_FORMATS = {"cycles": ".0f"}


def slub_facts(kernel: str, object_size: int, kmalloc: bool = True, sheaf_capacity: int = 0,
               slab_account: bool = False, hooks=None, ncpu: int = 1) -> _steps.Facts:
    """The step facts of the SLUB model of ``kernel`` for this cache, exactly as :func:`allocsim.kernel.slub.run`
    derives them (:func:`allocsim.kernel.slub.facts_of` of the same configuration)."""
    version = kconfig.check_version(kernel)
    geo = kconfig.cache_geometry(object_size, ncpu, version, sheaf_capacity=sheaf_capacity, kmalloc=kmalloc)
    cfg = slub.SlubConfig(version=version, geometry=geo, ncpu=ncpu, cpus_per_node=ncpu, slab_account=slab_account,
                          hooks=_steps.Hooks.of(hooks), kmalloc=kmalloc)
    return slub.facts_of(cfg)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#-"})


def escape(text: str) -> str:
    """``text`` with Markdown's special characters escaped, so C such as ``__pa()`` or ``p[i]`` shows as
    written in a Markdown table cell."""
    return text.translate(_MD_SPECIAL)


def step_table(parts, facts: _steps.Facts, table=None, book=None, shared=()) -> pd.DataFrame:
    """One row per step of ``parts`` (``{label: segment}``, in order): ``part`` (the label), ``step`` (a code
    span: the C as written, wrapping anywhere in a narrow column),
    ``kernel code``, ``cost`` (the row of ``data/costs.csv``, ``—`` for a store), ``times`` and ``cycles``,
    under ``facts``. Segments named in ``shared`` are included by several parts (``pcpu_get_cpu``): their
    steps are listed once, under their own part, and left out of the parts that include them."""
    table = _costs.load() if table is None else table
    book = _steps.load() if book is None else book
    rows = []
    for label, seg in parts.items():
        for s in book.steps(seg, facts):
            if s.segment in shared and s.segment != seg:
                continue
            rows.append({"part": label, "step": f"`{s.step}`", "kernel code": escape(s.code), "cost": s.cost or "—",
                         "times": s.n, "cycles": s.cycles(table)})
    return pd.DataFrame(rows, columns=["part", "step", "kernel code", "cost", "times", "cycles"])


def charged(cost: str, times: float) -> str:
    """How a step is charged, in one cell: ``l1_hit``, ``2 × zero_line``, ``0 × l1_hit`` (a field read with a
    line already loaded), or ``—`` (a store: nothing)."""
    if cost == "—":
        return "—"
    return cost if times == 1 else f"{times:g} × {cost}"


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`step_table` as a page shows it, four columns wide: each part opens with a row naming it (in
    bold) with the cycles of its rows, then its steps — the step, the kernel code, how it is charged
    (:func:`charged`) and the cycles."""
    rows = []
    for part, g in table.groupby("part", sort=False):
        rows.append({"step": f"**{escape(part)}**", "kernel code": "", "charged": "", "cycles": g["cycles"].sum()})
        for step, code, cost, times, cyc in zip(g["step"], g["kernel code"], g["cost"], g["times"], g["cycles"]):
            rows.append({"step": step, "kernel code": code, "charged": charged(cost, times), "cycles": cyc})
    return pd.DataFrame(rows, columns=["step", "kernel code", "charged", "cycles"])


def part_totals(parts, facts: _steps.Facts, table=None, book=None) -> dict:
    """``{label: cycles}``: each part's whole step sum (included segments counted in full)."""
    table = _costs.load() if table is None else table
    book = _steps.load() if book is None else book
    return {label: book.cycles(seg, table, facts) for label, seg in parts.items()}


# ------------------------------------------------------------------------------------------------
# The per-CPU list (chapter 2)

#: The list's paths on the io_uring hot path with interrupt completions (and polled ones), with
#: ``pcpu_get_cpu`` — ``per_cpu_ptr(..., get_cpu())`` … ``put_cpu()``, which every path runs — first.
PCPU_PARTS = {"get_cpu() … put_cpu(), every call": "pcpu_get_cpu", "alloc_hit": "pcpu_alloc_hit",
              "free_irq": "pcpu_free_irq", "free_task": "pcpu_free_task", "alloc_splice": "pcpu_alloc_splice"}


def pcpu_step_table(hooks=None, table=None, book=None) -> pd.DataFrame:
    """The per-CPU list's hot-path steps (:data:`PCPU_PARTS`); the shared ``get_cpu()`` part once."""
    return step_table(PCPU_PARTS, _steps.Facts(hooks=_steps.Hooks.of(hooks)), table, book, shared=("pcpu_get_cpu",))


# ------------------------------------------------------------------------------------------------
# The SLUB hot paths (chapters 3 and 5)

#: The segments of one SLUB operation on its fast path, by kernel family and direction: the entry point,
#: the hooks, the allocator proper (a sheaf hit, or the 6.19 cpu slab's fast path).
def slub_parts(facts: _steps.Facts, direction: str) -> dict:
    """``{"entry": …, "hooks": …, "allocator": (segments…)}`` of one ``alloc`` or ``free`` on its fast path."""
    if direction not in ("alloc", "free"):
        raise AllocsimError(f"direction must be 'alloc' or 'free', not {direction!r}")
    entry, hooks = _steps.ENTRY[(f"{direction}_entry", facts.kmalloc)]
    if facts.sheaves:
        proper = ("local_trylock", "pcs_alloc") if direction == "alloc" else ("pcs_free_check", "local_trylock", "pcs_free")
    elif facts.cpu_slab:
        proper = ("cpu_slab_alloc",) if direction == "alloc" else ("cpu_slab_free",)
    else:
        raise AllocsimError("a SLUB cache without sheaves and without a cpu slab has no fast path")
    return {"entry": entry, "hooks": hooks, "allocator": proper}


def slub_step_table(facts: _steps.Facts, table=None, book=None) -> pd.DataFrame:
    """Every step of one allocation and one free on the fast path of the cache ``facts`` describe,
    ``part`` naming the segment (``kmalloc_entry``, ``slab_alloc_hooks``, ``cpu_slab_alloc`` …)."""
    segs = {}
    for d in ("alloc", "free"):
        p = slub_parts(facts, d)
        for seg in (p["entry"], p["hooks"], *p["allocator"]):
            segs[seg] = seg
    return step_table(segs, facts, table, book)


@dataclass(frozen=True)
class Direction:
    """One operation's fast path split as chapter 5 shows it (cycles)."""

    entry: float
    hooks: float
    allocator: float

    @property
    def total(self) -> float:
        return self.entry + self.hooks + self.allocator


def slub_direction(facts: _steps.Facts, direction: str, table=None, book=None) -> Direction:
    table = _costs.load() if table is None else table
    book = _steps.load() if book is None else book
    p = slub_parts(facts, direction)
    return Direction(book.cycles(p["entry"], table, facts), book.cycles(p["hooks"], table, facts),
                     sum(book.cycles(s, table, facts) for s in p["allocator"]))


def pcpu_direction(direction: str, hooks=None, table=None, book=None) -> Direction:
    """A list hit (``alloc_hit``) or a free onto the interrupt list (``free_irq``): no entry, no hooks."""
    table = _costs.load() if table is None else table
    book = _steps.load() if book is None else book
    seg = {"alloc": "pcpu_alloc_hit", "free": "pcpu_free_irq"}[direction]
    return Direction(0.0, 0.0, book.cycles(seg, table, _steps.Facts(hooks=_steps.Hooks.of(hooks))))


#: Chapter 5's columns: the per-CPU list's hit, and SLUB's fast path of each cache the thread measured.
HOT_COLUMNS = ("per-CPU list (hit)", "6.19 kmalloc (cpu slab)", "7.0 kmalloc (sheaf)", "sheaf-256 (sheaf)")


def hot_path_facts(setup) -> dict:
    """``{column: Facts}`` of the SLUB columns of :data:`HOT_COLUMNS` for a chapter 5 ``setup``
    (:class:`allocsim.analysis.runs.Setup`)."""
    ncpu = setup.workload(0).n_cpus
    kw = dict(hooks=setup.hooks, ncpu=ncpu)
    return {HOT_COLUMNS[1]: slub_facts("6.19", setup.object_size, True, **kw),
            HOT_COLUMNS[2]: slub_facts("7.0", setup.object_size, True, **kw),
            HOT_COLUMNS[3]: slub_facts("7.0", setup.object_size, False, setup.sheaf_capacity, setup.slab_account, **kw)}


def hot_path_directions(setup, table=None, book=None) -> dict:
    """``{column: {"alloc": Direction, "free": Direction}}`` for every column of :data:`HOT_COLUMNS`."""
    table = setup.costs() if table is None else table
    book = _steps.load(setup.steps) if book is None else book
    out = {HOT_COLUMNS[0]: {d: pcpu_direction(d, setup.hooks, table, book) for d in ("alloc", "free")}}
    for col, f in hot_path_facts(setup).items():
        out[col] = {d: slub_direction(f, d, table, book) for d in ("alloc", "free")}
    return out


#: The rows of :func:`hot_path_totals`.
HOT_ROWS = (("alloc", "entry", "allocation: entry point (kmalloc / kmem_cache_alloc)"),
            ("alloc", "hooks", "allocation: slab_alloc_node() hooks"),
            ("alloc", "allocator", "allocation: the allocator proper"),
            ("free", "entry", "free: entry point and the object's slab (kfree lookup)"),
            ("free", "hooks", "free: slab_free() hooks"),
            ("free", "allocator", "free: the allocator proper"))


def hot_path_totals(setup, table=None, book=None) -> pd.DataFrame:
    """Chapter 5's side-by-side: cycles of each part of one allocation and one free on each allocator's
    hot path (:data:`HOT_ROWS` × :data:`HOT_COLUMNS`), and the pair's total."""
    dirs = hot_path_directions(setup, table, book)
    rows = []
    for d, part, label in HOT_ROWS:
        rows.append({"step sum": label, **{c: getattr(dirs[c][d], part) for c in HOT_COLUMNS}})
    rows.append({"step sum": "**alloc + free**", **{c: dirs[c]["alloc"].total + dirs[c]["free"].total
                                                      for c in HOT_COLUMNS}})
    return pd.DataFrame(rows)


def standin_words(hooks=None) -> str:
    """What the per-CPU list chapter's fixed-cost stand-in charges, in words (its two step sums)."""
    a, f = pl.standin_charges(hooks=hooks)
    return f"{a:.0f} cycles per `kmalloc` and {f:.0f} per `kfree`"

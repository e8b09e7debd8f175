"""Where the SLUB models' memory accesses go: addresses that behave like the kernel's, and the memory hierarchy
of :mod:`allocsim.kernel.cache` in the model's state (issue 11; cost model v2's steps say which lines).

Off (the default of :func:`allocsim.kernel.slub.run`, ``hierarchy=False``), a model charges every load step of
``data/kernel/steps.yaml`` as ``l1_hit`` and every store as nothing, summed into the segment costs
(``F[SEG_*]``). On, the segment costs leave the loads and stores out, and the model calls :func:`touch` at the
same point with what the step touches — the object, the sheaf slot, the CPU — so each load costs what the
hierarchy says (L1, L2, LLC, another core's cache, memory) and each store what it costs beyond an L1 hit
(nothing, unless the line had to be fetched or taken from another core).

Addresses (line numbers, ``address >> 6``; one region per kind of memory, far apart):

* an object: ``slab_base + index × s->size``; slabs of ``PAGE_SIZE << order`` bytes at increasing addresses
  in slab-number order; its free pointer at ``s->offset`` (the middle of the object, word-aligned: v6.19
  ``calculate_sizes()``, commit 3202fa62fb43 "slub: relocate freelist pointer to middle of object");
* ``struct slab`` (``struct page``): one 64-byte line per slab;
* ``struct kmem_cache``: one line (every field the hot paths read: ``cpu_sheaves``, ``cpu_slab``,
  ``sheaf_capacity``, ``offset``, ``random``, ``flags``, ``ctor``);
* per CPU: the per-CPU area line (``this_cpu_off``, ``cpu_number``, ``__preempt_count``) and the allocator's
  per-CPU struct (``struct kmem_cache_cpu`` or ``struct slub_percpu_sheaves``), one line each;
* a sheaf: its header line (``size``) and ``objects[]`` in the lines after it (``struct_size(sheaf, objects,
  capacity)`` bytes per sheaf);
* globals: one read-mostly line per step that reads one.

The oracles (``kernel/oracle/memory.py``, ``kernel/oracle/cache.py``) compute the same addresses and
accesses from these rules and ``steps.yaml`` themselves; the differential tests compare them access for access
(``tests/test_cache_slub_oracle.py``, ``tests/test_cache_pcpu.py``).

Simplifications: the object's contents written by the allocator's caller are not modelled (rule 7 of
``steps.yaml``: the allocator touches the object only where its code does); the slow paths' list and lock
steps keep their flat ``l1_hit`` charges, except the objects a refill or flush moves (their free pointers and
sheaf slots are touched); the ``kzalloc()`` of a new sheaf is charged flat.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from allocsim.facts import cpu as _cpu
from allocsim.facts import steps as _steps
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import cache as _cache
from allocsim.kernel.state import (
    CFG, CF_ACC_ROWS, CF_CAP, CF_FP_OFFSET, CF_HIER, CF_OBJS, CF_SHEAF_HDR, CF_SHEAF_LINES, CF_SIZE, CF_SLAB_BYTES,
    H_ACC, H_MEM, H_MEMF
)

# the classes of steps.yaml's `line:` (allocsim.facts.steps.MEM_CLASSES), as the compiled code numbers them
(X_OBJECT, X_KMEM_CACHE, X_PERCPU, X_PCPU_STRUCT, X_SHEAF, X_SHEAF_SLOT, X_STRUCT_PAGE, X_GLOBAL, X_DESCRIPTOR,
 X_OBJECT_LINES) = range(10)
assert _steps.MEM_CLASSES == ("object", "kmem_cache", "percpu_offset", "pcpu_struct", "sheaf", "sheaf_slot",
                              "struct_page", "global", "descriptor", "object_lines")
MAXACC = _steps.MAX_ACCESSES

# regions (in lines): far apart, so no two kinds of memory share a line. Each starts COLOUR lines past a
# power of two, a different multiple for each region, so that the regions' first lines fall into different
# sets at every level (aligned bases would put the kmem_cache, the per-CPU lines, the first struct slab, the
# first sheaf and the first global into set 0 of every cache, a conflict no kernel layout makes: these
# structures are allocated separately). Slabs stay page-aligned, as the kernel's are.
COLOUR = 97
R_GLOBAL = (1 << 20) + 1 * COLOUR
R_KMEM_CACHE = (2 << 20) + 2 * COLOUR
R_PERCPU = (3 << 20) + 3 * COLOUR
R_PCPU_STRUCT = (4 << 20) + 4 * COLOUR
R_DESCRIPTOR = (5 << 20) + 5 * COLOUR
R_STRUCT_PAGE = (6 << 20) + 6 * COLOUR
R_SHEAF = (1 << 28) + 7 * COLOUR
R_OBJECT = 1 << 34


@njit(cache=True, _nrt=False, inline="always")
def object_line(I, obj, byte):
    """The line of byte ``byte`` of object ``obj`` (slab ``obj // objs``, index ``obj % objs``)."""
    objs = I[CFG + CF_OBJS]
    slab = obj // objs
    addr = slab * I[CFG + CF_SLAB_BYTES] + (obj - slab * objs) * I[CFG + CF_SIZE] + byte
    return R_OBJECT + (addr >> 6)


@njit(cache=True, _nrt=False, inline="always")
def sheaf_line(I, sheaf, byte):
    """The line of byte ``byte`` of sheaf ``sheaf`` (its header, then ``objects[]``; ``CF_SHEAF_LINES`` lines a
    sheaf, :func:`attach`)."""
    return R_SHEAF + sheaf * I[CFG + CF_SHEAF_LINES] + (byte >> 6)


@njit(cache=True, _nrt=False, inline="always")
def access(I, F, cpu, line, write):
    """One load (cycles from the hierarchy) or store (cycles beyond an L1 hit) of ``line`` by ``cpu``."""
    c = _cache.access_at(I, I[H_MEM], F, I[H_MEMF], cpu, line, write)
    if write:
        return c - F[I[H_MEMF] + _cache.K_L1]
    return c


@njit(cache=True, _nrt=False, inline="always")
def touch(I, F, cpu, seg, obj, sheaf, slot):
    """Every load and store of model segment ``seg`` (its rows of the access table), in order; returns their
    cycles. ``obj``/``sheaf``/``slot``: the object, the sheaf and the ``objects[]`` index the step works on.
    Inlined, and :func:`_touch` with it: with the hierarchy off it is one test; on, the step's accesses in
    line, with no call (a call cost the io_uring runs about a sixth of their time)."""
    if I[CFG + CF_HIER] == 0:
        return 0.0
    return _touch(I, F, cpu, seg, obj, sheaf, slot)


# How _touch finds an access's line (the access table as :func:`resolve_rows` gives it to the state: per segment one
# row per load or store, (kind, line or region or offset, write)): a fixed line (a global, ``struct kmem_cache``, the
# descriptor), a per-CPU line (region + cpu), the sheaf's header line, its ``objects[slot]`` line, the object's
# free-pointer line, the object's k-th line (offset k), its slab's ``struct slab`` line. The first two are ``line =
# arg + cpu × kind``.
RK_FIXED, RK_CPU, RK_SHEAF, RK_SLOT, RK_OBJECT, RK_OBJECT_LINES, RK_STRUCT_PAGE = range(7)


def resolve_rows(acc: np.ndarray) -> np.ndarray:
    """The access table (:func:`allocsim.facts.steps.access_table`: per segment rows of (class, write, times))
    as :func:`_touch` reads it: per segment one row per load or store, in order (a row done ``times`` times is
    that many rows; an ``object_lines`` row of n lines is n rows, offsets 0 … n-1), each (kind ``RK_*``, line or
    region or offset, write 0/1); after a segment's last access a row of -1 (``[segments, most accesses + 1,
    3]``). Every line that depends on nothing but the row (and the CPU) is computed here, once (per distinct
    table: memoized; the result is shared, copy it before changing it). A flat loop over accesses was about a
    tenth faster on the io_uring workload than a loop over the table's rows and their repeats."""
    return once_per_table(acc, _resolve_rows)


_ROWS: dict = {}


def once_per_table(acc: np.ndarray, resolve) -> np.ndarray:
    """``resolve(acc)`` computed once per distinct access table and resolver (a model resolves the same table on
    every run); the result is shared: copy it before changing it."""
    acc = np.ascontiguousarray(acc, np.int64)
    key = (resolve.__module__, resolve.__qualname__, acc.shape, acc.tobytes())
    if key not in _ROWS:
        _ROWS[key] = resolve(acc)
    return _ROWS[key]


def _resolve_rows(acc: np.ndarray) -> np.ndarray:
    fixed = {X_KMEM_CACHE: R_KMEM_CACHE, X_DESCRIPTOR: R_DESCRIPTOR}
    kinds = {X_SHEAF: RK_SHEAF, X_SHEAF_SLOT: RK_SLOT, X_OBJECT: RK_OBJECT, X_OBJECT_LINES: RK_OBJECT_LINES,
             X_STRUCT_PAGE: RK_STRUCT_PAGE}
    segs = []  # per segment its accesses (kind, line or region or offset, write)
    for seg in range(acc.shape[0]):
        rows = []
        for j in range(acc.shape[1]):
            cls, write, times = (int(x) for x in acc[seg, j])
            if cls < 0:
                break
            if cls in (X_PERCPU, X_PCPU_STRUCT):
                kind, arg = RK_CPU, R_PERCPU if cls == X_PERCPU else R_PCPU_STRUCT
            elif cls in kinds:
                kind, arg = kinds[cls], 0
            else:
                kind, arg = RK_FIXED, fixed.get(cls, R_GLOBAL + seg * MAXACC + j)
            w = 1 if write == 1 else 0
            rows += [(kind, k if kind == RK_OBJECT_LINES else arg, w) for k in range(times)]
        segs.append(rows)
    out = np.full((acc.shape[0], max(len(r) for r in segs) + 1, 3), -1, np.int64)  # + 1: every segment ends in -1
    for seg, rows in enumerate(segs):
        if rows:
            out[seg, :len(rows)] = rows
    return out


@njit(cache=True, _nrt=False, inline="always")
def _touch(I, F, cpu, seg, obj, sheaf, slot):
    """:func:`touch` with the hierarchy on.

    The line of each class (``k``: the k-th line of an ``object_lines`` row): ``object`` the free pointer's
    line (:func:`object_line` at ``s->offset``), ``object_lines`` the object's first line + k, ``sheaf`` the
    sheaf's header line, ``sheaf_slot`` the line of ``objects[slot]``, ``struct_page`` the slab's ``struct
    slab`` line, ``percpu_offset`` / ``pcpu_struct`` the CPU's lines, ``kmem_cache`` and ``descriptor`` one
    line each, a global one line per access row (the rows as :func:`resolve_rows` gives them: the fixed lines
    already computed, one row per access). The object's slab is computed once per call (one division), the
    hierarchy's header read once, and the accesses done as :func:`allocsim.kernel.cache.l1_entry` says; an
    access to the line the previous one found as a plain L1 hit reuses that entry (the L1 has not changed in
    between), unless it is a store to a copy that is not modified."""
    base = np.uint64(I[H_ACC] + seg * I[CFG + CF_ACC_ROWS] * 3)
    o = I[H_MEM]
    fo = I[H_MEMF]
    h = _cache.handle(I, o)
    l1 = F[np.uint64(fo + _cache.K_L1)]
    slab = -1  # the object's slab and address, computed by the first row that needs them
    addr = 0
    clock = I[np.uint64(o + _cache.H_CLOCK)]
    hits = 0
    last_hit = False
    t = 0.0
    prev = -1  # the line of the previous access when it was a plain L1 hit, and its L1 entry
    pe = np.uint64(0)
    X1 = np.uint64(h[5])
    R1 = np.uint64(h[4])
    r = base
    while True:
        kind = I[r]
        if kind < 0:
            break
        x = I[r + np.uint64(1)]
        write = I[r + np.uint64(2)] == 1
        r += np.uint64(3)
        if kind <= RK_CPU:
            x += cpu * kind
        elif kind <= RK_SLOT:
            x = sheaf_line(I, sheaf, 0 if kind == RK_SHEAF else I[CFG + CF_SHEAF_HDR] + 8 * slot)
        else:
            if slab < 0:
                objs = I[CFG + CF_OBJS]
                slab = obj // objs
                addr = slab * I[CFG + CF_SLAB_BYTES] + (obj - slab * objs) * I[CFG + CF_SIZE]
            if kind == RK_OBJECT:
                x = R_OBJECT + ((addr + I[CFG + CF_FP_OFFSET]) >> 6)
            elif kind == RK_OBJECT_LINES:
                x += R_OBJECT + (addr >> 6)
            else:
                x = R_STRUCT_PAGE + slab
        clock += 1
        if x == prev and (not write or I[X1 + pe] == _cache.S_MOD):
            e = np.int64(pe)
        else:
            e = _cache.l1_entry(I, cpu, x, write, h)
        if e >= 0:  # a plain L1 hit: a load costs l1, a store nothing beyond it
            I[R1 + np.uint64(e)] = clock
            hits += 1
            last_hit = True
            if not write:
                t += l1
            prev = x
            pe = np.uint64(e)
        else:
            c = _cache.access_clocked(I, o, F, fo, cpu, x, write, clock, e)
            last_hit = False
            if write:
                c -= l1
            t += c
            prev = -1
    _cache.commit(I, o, h, cpu, clock, hits, last_hit)
    return t


@njit(cache=True, _nrt=False, inline="always")
def touch_object(I, F, cpu, obj, write):
    """A slow path reads or writes an object's free pointer (a refill walking a freelist, a flush linking one);
    flat (nothing beyond the path's own charges) when the hierarchy is off."""
    if I[CFG + CF_HIER] == 0:
        return 0.0
    return access(I, F, cpu, object_line(I, obj, I[CFG + CF_FP_OFFSET]), write)


@njit(cache=True, _nrt=False, inline="always")
def touch_slot(I, F, cpu, sheaf, slot, write):
    """A refill writes, a flush reads, ``objects[slot]`` of a sheaf."""
    if I[CFG + CF_HIER] == 0:
        return 0.0
    return access(I, F, cpu, sheaf_line(I, sheaf, I[CFG + CF_SHEAF_HDR] + 8 * slot), write)


# ------------------------------------------------------------------------------------------------
# Setting it up (Python)

def geometry(clock_ghz: float = 3.0) -> _cpu.Geometry:
    """The default CPU's hierarchy (``data/kernel/cpu.yaml``) at the book's clock."""
    return _cpu.geometry(clock_ghz=clock_ghz)


def geometry_of(hierarchy, clock_ghz: float, who: str) -> _cpu.Geometry | None:
    """A model's ``hierarchy`` argument as a cache geometry, or None (off): ``True`` is the default CPU at
    ``clock_ghz``, a :class:`allocsim.facts.cpu.Geometry` is used as it is. ``who`` names the model in the
    one-sentence error."""
    if hierarchy is None or hierarchy is False:
        return None
    if hierarchy is True:
        return geometry(clock_ghz)
    if isinstance(hierarchy, _cpu.Geometry):
        return hierarchy
    raise AllocsimError(f"{who} hierarchy must be true, false or an allocsim.facts.cpu.Geometry, not {hierarchy!r}")


def sizes(ncpu: int, g: _cpu.Geometry | None) -> tuple[int, int, tuple[int, int]]:
    """int64 words and float64 values the hierarchy of ``ncpu`` CPUs takes in a model's state (0, 0 when off),
    and the range of those words that need not be zero (:func:`allocsim.kernel.cache.lazy_range`)."""
    if g is None:
        return 0, 0, (0, 0)
    return _cache.size_of(ncpu, g), _cache.NF, _cache.lazy_range(ncpu, g)


def attach(I: np.ndarray, F: np.ndarray, ncpu: int, g: _cpu.Geometry | None, size: int, slab_bytes: int,
           sheaf_header: int) -> None:
    """Switch the hierarchy on in a fresh state (room reserved by ``new_state(mem_words=…, mem_floats=…)``, the
    access table given as :func:`resolve_rows` resolves it) and
    record the address geometry: ``s->size``, the slab size in bytes, the free pointer's offset
    (``ALIGN_DOWN(s->size / 2, sizeof(void *))``) and the sheaf header's size."""
    I[CFG + CF_SIZE] = size
    I[CFG + CF_SLAB_BYTES] = slab_bytes
    I[CFG + CF_FP_OFFSET] = (size // 2) // 8 * 8
    I[CFG + CF_SHEAF_HDR] = sheaf_header
    cap = int(I[CFG + CF_CAP])
    I[CFG + CF_SHEAF_LINES] = (sheaf_header + 8 * max(cap, 1) + 63) >> 6  # lines a sheaf takes: struct_size(sheaf, objects, capacity)
    if g is None:
        I[CFG + CF_HIER] = 0
        return
    I[CFG + CF_HIER] = 1
    _cache.init_at(I, int(I[H_MEM]), F, int(I[H_MEMF]), ncpu, g)


def counters(I: np.ndarray) -> np.ndarray | None:
    """Per CPU, where the hierarchy's data came from (``cache.COUNTER_NAMES``), or None when it was off."""
    if I[CFG + CF_HIER] == 0:
        return None
    return _cache.counters(I, int(I[H_MEM]))

"""The patch: a private per-CPU free list for ``struct iomap_dio`` ("[PATCH v3] iomap: add allocation
cache for iomap_dio", guzebing, 2026-01-15, as quoted in ``data/thread/thread.txt`` lines 22–420), copied from
the block layer's per-CPU bio cache (``block/bio.c`` of v6.18.2/v6.19/v7.0: ``struct bio_alloc_cache`` lines 27–35,
``bio_alloc_percpu_cache()``, ``bio_put_percpu_cache()``).

Kernel state, per CPU (``struct pcpu_cache``)::

    struct pcpu_cache_element *free_list;      /* task-context frees; allocations pop here   */
    struct pcpu_cache_element *free_list_irq;  /* hardirq-context frees; spliced onto free_list */
    int nr, nr_irq;

Both lists are singly linked through an 8-byte header (``struct pcpu_cache_element``) in front of
each payload, LIFO. The model keeps each list as a stack of element ids (top = last), so tests can
check exactly which object is cached where.

Constants, with their source (both are parameters of :func:`run`):

* ``PCPU_CACHE_IRQ_THRESHOLD`` = 16 — ``#define PCPU_CACHE_IRQ_THRESHOLD 16`` in the patch
  (``fs/iomap/direct-io.c``, v3), the bio cache's ``ALLOC_CACHE_THRESHOLD`` (``block/bio.c``
  lines 27-35 in v6.18.2, v6.19, v7.0);
* ``DIO_ALLOC_CACHE_MAX`` = 256 — ``#define DIO_ALLOC_CACHE_MAX 256`` in the patch, passed as
  ``max_nr`` to ``pcpu_cache_list_create()``; the bio cache's ``ALLOC_CACHE_MAX``.

Model functions and the kernel functions they mirror:

* allocation — ``pcpu_cache_list_alloc()``: ``get_cpu()``; if ``free_list`` is empty and
  ``READ_ONCE(nr_irq) >= PCPU_CACHE_IRQ_THRESHOLD``, ``irq_cache_splice()`` moves the whole IRQ list
  onto ``free_list`` under ``local_irq_save``; if the list is still empty, ``put_cpu()`` and
  ``kmalloc(sizeof(struct pcpu_cache_element) + element_size, GFP_KERNEL)`` (v3 calls it outside
  the ``get_cpu`` section); otherwise pop the head, ``nr--``, ``put_cpu()``.
* free — ``pcpu_cache_list_free()``: ``get_cpu()``; if ``nr_irq + nr >= max_nr`` → ``kfree``;
  else ``in_task()`` → push on ``free_list``; ``in_hardirq()`` → push on ``free_list_irq``;
  otherwise (softirq) → ``kfree``.

Cycle charges per path (cost model v2): the step sums ``pcpu_<path>`` of ``data/kernel/steps.yaml``
(:func:`allocsim.facts.steps.pcpu_vector`) — ``dio_pcpu_cache_list``, ``->cache``, the CPU number and
``__per_cpu_offset[cpu]`` (``per_cpu_ptr(…, get_cpu())``), the ``get_cpu()``/``put_cpu()`` preempt pair, the
``struct pcpu_cache`` line, the element's ``next`` word when one is popped, ``max_nr`` and ``preempt_count()``
on a free, ``local_irq_save`` around the splice; ``pcpu_cache_list_alloc()``/``_free()`` are static
functions of ``direct-io.c`` and are taken as inlined (the rules at the head of ``steps.yaml``). The
``kmalloc`` / ``kfree`` the list falls back to are the *backend*'s: the model emits them as a second
:class:`~allocsim.kernel.program.Program` (the *fallback program*: same CPUs; one slot per element the
list got from kmalloc; each event's ``gap`` is the front-end time since the previous fallback event
on that CPU) and the backend — any callable ``Program -> Result`` — runs it. The total is
``front.combine(backend_result)``.

Backends: :func:`kmalloc_standin`, a fixed cost per call (the 6.19 cpu slab's hot-path step sums); or
``kmalloc="slub"``, which calls ``allocsim.kernel.slub.run`` on the fallback program with
``object_size = element_size + 8`` (kmalloc-128 for ``struct iomap_dio``) for the chosen kernel.
Switching the default is the one line :data:`DEFAULT_KMALLOC`.

Memory hierarchy (issue 11; ``simulate``/``run`` ``hierarchy=True`` or a geometry): each path's loads and
stores (the ``line:`` of its steps, :func:`allocsim.facts.steps.pcpu_access_table`) go through
:mod:`allocsim.kernel.cache` instead of the flat ``l1_hit`` — the element's header (element ``e`` at
``element_stride() × e`` in the object region of :mod:`allocsim.kernel.memory`), this CPU's ``struct
pcpu_cache``, the ``struct pcpu_cache_list`` descriptor, the per-CPU area, the two globals — so a pop after a
push on the same CPU hits L1 and a free of an element another CPU last wrote pays a transfer. The backend
runs afterwards with its own hierarchy (``slub.run(hierarchy=…)``): lines the two share are not carried over.

Simplifications: the front end's clock does not include the backend's cycles (the fallback program
carries the front-end timing in its gaps instead); a failed ``kmalloc`` (``-ENOMEM``) is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from allocsim.facts import costs as _costs
from allocsim.facts import steps as _steps
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import cache as _cache
from allocsim.kernel import memory as _memory
from allocsim.kernel import state as _state
from allocsim.kernel.result import Result
from allocsim.kernel.sim import next_cpu
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, Program

#: ``PCPU_CACHE_IRQ_THRESHOLD`` of the patch (v3, fs/iomap/direct-io.c; data/thread/thread.txt line 262), = bio's
#: ALLOC_CACHE_THRESHOLD.
PCPU_CACHE_IRQ_THRESHOLD = 16
#: ``DIO_ALLOC_CACHE_MAX`` of the patch (v3, fs/iomap/direct-io.c; data/thread/thread.txt line 383), = bio's
#: ALLOC_CACHE_MAX.
DIO_ALLOC_CACHE_MAX = 256
#: The kmalloc model the fallback calls go to by default: "standin" (fixed cost) or "slub".
DEFAULT_KMALLOC = "slub"
KMALLOC_CHOICES = ("standin", "slub")

# Path codes (Result.event_path), in the order of PATHS.
P_ALLOC_HIT, P_ALLOC_SPLICE, P_ALLOC_KMALLOC, P_FREE_TASK, P_FREE_IRQ, P_KFREE_FULL, P_KFREE_SOFTIRQ = range(7)
PATHS = ("alloc_hit", "alloc_splice", "alloc_kmalloc", "free_task", "free_irq", "kfree_full", "kfree_softirq")
PATH_DOC = {
    "alloc_hit": "pop free_list",
    "alloc_splice": "free_list empty, nr_irq >= threshold: splice free_list_irq under local_irq_save, then pop",
    "alloc_kmalloc": "free_list empty, nr_irq < threshold: put_cpu, then kmalloc(size + 8)",
    "free_task": "in_task(): push on free_list",
    "free_irq": "in_hardirq(): push on free_list_irq",
    "kfree_full": "nr + nr_irq >= max_nr: put_cpu, then kfree",
    "kfree_softirq": "softirq context: put_cpu, then kfree",
}
#: Counters (Result.stats), in the order of the jitted counter vector.
COUNTERS = ("alloc", "alloc_hit", "alloc_miss", "alloc_splice", "splice_objects", "alloc_kmalloc",
            "free", "free_task", "free_irq", "kfree_full", "kfree_softirq")
(K_ALLOC, K_ALLOC_HIT, K_ALLOC_MISS, K_ALLOC_SPLICE, K_SPLICE_OBJECTS, K_ALLOC_KMALLOC,
 K_FREE, K_FREE_TASK, K_FREE_IRQ, K_KFREE_FULL, K_KFREE_SOFTIRQ) = range(len(COUNTERS))
# sim.next_cpu itself, inlined into the event loop: a native call per event (with six array arguments)
# cost more than the model's own work. Same source, same decisions.
_next_cpu = njit(inline="always")(next_cpu.py_func)

# Where an element is (State.where).
W_NONE, W_LIVE, W_TASK, W_IRQ, W_KFREED = 0, 1, 2, 3, 4


def path_costs(table=None, hooks=None, steps="default", memory: bool = True) -> np.ndarray:
    """Cycles per path (float64[len(PATHS)]): the step sums of ``data/kernel/steps.yaml`` (or the named
    step file) costed with the cost table (default ``data/costs.csv``) under the hook switches
    (``memory=False``: without the loads and stores, which the memory hierarchy charges when it is on)."""
    table = _costs.load() if table is None else table
    book = steps if isinstance(steps, _steps.StepBook) else _steps.load(steps)
    return _steps.pcpu_vector(table, book, _steps.Hooks.of(hooks), PATHS, memory)


def access_table(hooks=None, steps="default") -> np.ndarray:
    """What each path touches (:func:`allocsim.facts.steps.pcpu_access_table`, rows in :data:`PATHS` order)."""
    book = steps if isinstance(steps, _steps.StepBook) else _steps.load(steps)
    return _steps.pcpu_access_table(book, _steps.Hooks.of(hooks), PATHS)


def element_stride() -> int:
    """Bytes from one element to the next in the simulated address space: ``struct pcpu_cache_element``
    (the ``next`` pointer) and ``struct iomap_dio`` behind it, rounded up to 8."""
    return (header_size() + element_size() + 7) // 8 * 8


def _rows(acc: np.ndarray) -> np.ndarray:
    """The access table (:func:`access_table`) as :func:`_touch` reads it: per path, one row per load or store, in
    order (a table row done ``times`` times is that many rows), each ``(line, per CPU, per element, write)``: the
    access's line is ``line``, plus the CPU number when ``per CPU`` is 1, plus the line of the element's header
    when ``per element`` is 1; after a path's last access a row with ``write`` = -1. The lines (the classes and
    regions of :mod:`allocsim.kernel.memory`): ``object`` is the element's header (its ``next`` pointer, at the
    element's start: ``line`` 0) and ``object_lines`` the element's lines from there (``line`` 0, 1, …);
    ``pcpu_struct`` the CPU's ``struct pcpu_cache``; ``percpu_offset`` the CPU's per-CPU area line; ``descriptor``
    the ``struct pcpu_cache_list``; a global one line per access row ``j``: every path begins with the steps of
    ``pcpu_get_cpu`` (``dio_pcpu_cache_list``, ``__per_cpu_offset[]``), so those are the same lines in every path,
    and no later step of a path reads a global. Every line but the element's is computed here, once (per distinct
    table: :func:`allocsim.kernel.memory.once_per_table`). One flat loop over accesses whose lines need no
    decision was about an eighth faster than a loop over the table's rows and their repeats."""
    return _memory.once_per_table(acc, _resolve)


def _resolve(acc: np.ndarray) -> np.ndarray:
    m = _memory
    fixed = {m.X_DESCRIPTOR: m.R_DESCRIPTOR, m.X_KMEM_CACHE: m.R_KMEM_CACHE}
    per_cpu = {m.X_PCPU_STRUCT: m.R_PCPU_STRUCT, m.X_PERCPU: m.R_PERCPU}
    paths = []  # per path its accesses (line, per CPU, per element, write)
    for p in range(acc.shape[0]):
        rows = []
        for j in range(acc.shape[1]):
            cls, write, times = (int(x) for x in acc[p, j])
            if cls < 0:
                break
            w = 1 if write == 1 else 0
            for k in range(times):
                if cls == m.X_OBJECT:
                    rows.append((0, 0, 1, w))
                elif cls == m.X_OBJECT_LINES:
                    rows.append((k, 0, 1, w))
                elif cls in per_cpu:
                    rows.append((per_cpu[cls], 1, 0, w))
                else:
                    rows.append((fixed.get(cls, m.R_GLOBAL + j), 0, 0, w))
        paths.append(rows)
    out = np.full((acc.shape[0], max(len(r) for r in paths) + 1, 4), -1, np.int64)  # + 1: every path ends in a -1 row
    for p, rows in enumerate(paths):
        if rows:
            out[p, :len(rows)] = rows
    return out


@njit(cache=True, _nrt=False, inline="always")
def _touch(CI, CF, acc, p, cpu, e, stride, log, i):
    """Every load and store of path ``p`` (its rows of :func:`_rows`) on element ``e``: a load costs what
    the hierarchy says, a store what it costs beyond an L1 hit (as :func:`allocsim.kernel.memory.access`).
    ``log[i, n]``: the n-th access's kind × 4 + invalidation class."""
    t = 0.0
    h = _cache.handle_inline(CI, 0)
    l1 = CF[_cache.K_L1]
    clock = CI[_cache.H_CLOCK]
    misses = 0  # the accesses that were not plain L1 hits (the hits: the others, counted once at the end)
    up = np.uint64(p)  # unsigned indices: no wraparound test per load or store
    ui = np.uint64(i)
    prev = -1  # the line of the previous access when it was a plain L1 hit, and its L1 entry
    px = np.uint64(0)
    X1 = np.uint64(h[5])
    R1 = np.uint64(h[4])
    header = _memory.R_OBJECT + ((e * stride) >> 6)
    n = 0
    while True:
        un = np.uint64(n)
        wt = acc[up, un, 3]
        if wt < 0:
            break
        write = wt == 1
        line = acc[up, un, 0] + (cpu if acc[up, un, 1] != 0 else 0) + (header if acc[up, un, 2] != 0 else 0)
        clock += 1
        # the same line as the previous access, found then as a plain hit: the L1 has not changed since
        if line == prev and (not write or CI[X1 + px] == _cache.S_MOD):
            x = np.int64(px)
        else:
            x = _cache.l1_entry_inline(CI, cpu, line, write, h)
        if x >= 0:  # a plain L1 hit (cache.l1_entry): kind L1, no invalidation
            CI[R1 + np.uint64(x)] = clock
            if not write:
                t += l1
            log[ui, un] = _cache.K_L1 * 4 + _cache.INV_NONE
            prev = line
            px = np.uint64(x)
        else:
            c = _cache.access_clocked(CI, 0, CF, 0, cpu, line, write, clock, x)
            misses += 1
            if write:
                c -= l1
            t += c
            log[ui, un] = CI[_cache.H_LAST_KIND] * 4 + CI[_cache.H_LAST_INV]
            prev = -1
        n += 1
    _cache.commit_inline(CI, 0, h, cpu, clock, n - misses, prev >= 0)  # prev >= 0: the last access was a plain hit
    return t


def charges_frame(table=None, hooks=None, steps="default"):
    """The per-path charges as a table: path, what it does, cycles, and the backend call it makes."""
    import pandas as pd

    table = _costs.load() if table is None else table
    pc = path_costs(table, hooks, steps)
    rows = []
    for i, p in enumerate(PATHS):
        backend = "kmalloc" if p == "alloc_kmalloc" else "kfree" if p.startswith("kfree") else ""
        rows.append({"path": p, "what": PATH_DOC[p], "step segment": _steps.PCPU_SEGMENTS[p], "cycles": pc[i],
                     "backend call": backend})
    return pd.DataFrame(rows)


@dataclass
class State:
    """The per-CPU caches after a run, plus where every element is (for invariant checks)."""

    free_list: list  # per CPU: element ids, bottom first (the head is the last one)
    free_list_irq: list
    nr: np.ndarray
    nr_irq: np.ndarray
    where: np.ndarray  # per element: W_LIVE, W_TASK, W_IRQ or W_KFREED
    where_cpu: np.ndarray  # the CPU whose list holds it (W_TASK/W_IRQ), else -1
    n_elements: int  # elements ever obtained from kmalloc
    slot_obj: np.ndarray  # per program slot: the element its ALLOC got (-1: never allocated)

    def cached(self) -> np.ndarray:
        """Elements cached per CPU (nr + nr_irq)."""
        return self.nr + self.nr_irq


@njit(cache=True)
def _program_allocs(start, op, ctx, slot, gap, n_slots):
    """One pass over a program: its number of ALLOC events if it satisfies every check of
    ``Program.validate``, else -1."""
    n = len(op)
    if len(ctx) != n or len(slot) != n or len(gap) != n or len(start) < 2 or start[0] != 0 or start[-1] != n:
        return -1
    for c in range(len(start) - 1):
        if start[c + 1] < start[c]:
            return -1
    allocs = np.zeros(n_slots, np.int8)
    frees = np.zeros(n_slots, np.int8)
    n_alloc = 0
    for i in range(n):
        s = slot[i]
        if s < 0 or s >= n_slots or gap[i] < 0 or ctx[i] < TASK or ctx[i] > SOFTIRQ:
            return -1
        if op[i] == ALLOC:
            if allocs[s]:
                return -1
            allocs[s] = 1
            n_alloc += 1
        elif op[i] == FREE:
            if frees[s]:
                return -1
            frees[s] = 1
        else:
            return -1
    for s in range(n_slots):
        if frees[s] and not allocs[s]:
            return -1
    return n_alloc


def _checked_allocs(program: Program) -> int:
    """:func:`check_program`'s checks; returns the program's number of ALLOC events."""
    _state.refresh_numba_cache()
    n_alloc = _program_allocs(*program.arrays())
    if n_alloc < 0:
        program.validate()
        raise AllocsimError("the program is malformed")  # unreachable: validate() names the problem
    return int(n_alloc)


def check_program(program: Program) -> Program:
    """The checks of :meth:`Program.validate` in one jitted pass (``np.unique`` there took longer
    than the model itself); on any failure, ``Program.validate`` raises its own one-sentence error."""
    _checked_allocs(program)
    return program


def _validate(program: Program, threshold, max_nr):
    if not isinstance(program, Program):
        raise AllocsimError(f"the per-CPU list model needs an allocsim.kernel.program.Program, not {type(program).__name__}")
    for name, v in (("max_nr", max_nr), ("threshold", threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise AllocsimError(f"per-CPU list {name} must be an integer >= 1, not {v!r}")
    if threshold > max_nr:
        raise AllocsimError(f"per-CPU list threshold ({threshold}) must not exceed max_nr ({max_nr}): the IRQ list could never reach it")
    return _checked_allocs(program)


def _event_loop(hier: bool):
    """The compiled event loop :func:`_simulate` for the hierarchy on (``hier`` True) or off. ``hier`` is a
    constant of the closure, frozen into the machine code: the loop with the hierarchy off carries none of
    its code (numba keys its on-disk cache on the closure's values too, so the two are cached apart)."""

    @njit(cache=True, _nrt=False)
    def _simulate(start, op, ctx, slot, gap, n_slots, threshold, max_nr, pc,
                  task, irq, nr, nr_irq, where, where_cpu, slot_obj,
                  counters, path_count, path_cycles, event_path, clock,
                  fb_cpu, fb_op, fb_ctx, fb_obj, fb_time, CI, CF, acc, stride, ev_mem, log, pos, slot_time,
                  addr, freed_next, freed_head):
        """The event loop. Returns (number of elements from kmalloc, number of fallback events), or
        (-1, -1) if the program deadlocks. ``hier`` (the factory's constant): the memory hierarchy ``CI``/``CF`` is on, each path touching
        its rows of ``acc`` (``ev_mem[i]``: the cycles event ``i`` spent in the hierarchy). ``pos``/``slot_time``:
        each CPU's next event and each slot's allocation time (-1 before it), from the caller: the loop allocates
        nothing and is compiled without numba's reference counting, ``_touch`` inlined into it.

        ``addr[e]`` (hierarchy on): the address, in elements, element ``e`` occupies. kmalloc hands back the
        object most recently kfree()d on the allocating CPU (``freed_head[cpu]``, chained by ``freed_next``), as
        SLUB's per-CPU LIFO does (7.0: ``free_to_pcs()`` pushes on the freeing CPU's main sheaf and
        ``alloc_from_pcs()`` pops its top; 6.19: the cpu freelist); when this CPU has kfree()d nothing, the object
        the lowest-numbered CPU that has kfree()d one freed last (7.0: a full sheaf of another CPU's frees reaches
        this one through the barn; 6.19: through the slabs' freelists), else memory never used before.
        Simplifications: on 6.19 an object freed on a CPU other than its cpu slab's goes back to its slab, not to
        that CPU's freelist; which other CPU's objects come first, and in which order, is the model's choice."""
        n_obj = 0
        n_addr = 0
        n_fb = 0
        while True:
            cpu = _next_cpu(clock, pos, start, op, slot, slot_time, gap)
            if cpu == -1:
                break
            if cpu < 0:
                return -1, -1
            i = pos[cpu]
            pos[cpu] += 1
            clock[cpu] += gap[i]
            s = slot[i]
            if op[i] == ALLOC:
                counters[K_ALLOC] += 1
                if nr[cpu] > 0:
                    p = P_ALLOC_HIT
                    counters[K_ALLOC_HIT] += 1
                elif nr_irq[cpu] >= threshold:
                    # irq_cache_splice(): free_list = free_list_irq (order kept), nr += nr_irq
                    p = P_ALLOC_SPLICE
                    counters[K_ALLOC_MISS] += 1
                    counters[K_ALLOC_SPLICE] += 1
                    counters[K_SPLICE_OBJECTS] += nr_irq[cpu]
                    for j in range(nr_irq[cpu]):
                        e = irq[cpu, j]
                        task[cpu, j] = e
                        where[e] = W_TASK
                    nr[cpu] = nr_irq[cpu]
                    nr_irq[cpu] = 0
                else:
                    p = P_ALLOC_KMALLOC
                    counters[K_ALLOC_MISS] += 1
                    counters[K_ALLOC_KMALLOC] += 1
                if p == P_ALLOC_KMALLOC:
                    e = n_obj
                    n_obj += 1
                    if hier:
                        c = cpu
                        if freed_head[c] < 0:  # nothing kfree()d here: what another CPU kfree()d, if any
                            c = 0
                            while c < freed_head.shape[0] and freed_head[c] < 0:
                                c += 1
                        if c < freed_head.shape[0]:
                            a = freed_head[c]
                            freed_head[c] = freed_next[a]
                        else:
                            a = n_addr
                            n_addr += 1
                        addr[e] = a
                    fb_cpu[n_fb] = cpu
                    fb_op[n_fb] = ALLOC
                    fb_ctx[n_fb] = ctx[i]
                    fb_obj[n_fb] = e
                    fb_time[n_fb] = clock[cpu]
                    n_fb += 1
                else:
                    nr[cpu] -= 1
                    e = task[cpu, nr[cpu]]
                where[e] = W_LIVE
                where_cpu[e] = -1
                slot_obj[s] = e
            else:
                if slot_time[s] > clock[cpu]:
                    clock[cpu] = slot_time[s]
                counters[K_FREE] += 1
                e = slot_obj[s]
                if nr_irq[cpu] + nr[cpu] >= max_nr:
                    p = P_KFREE_FULL
                    counters[K_KFREE_FULL] += 1
                elif ctx[i] == TASK:
                    p = P_FREE_TASK
                    counters[K_FREE_TASK] += 1
                    task[cpu, nr[cpu]] = e
                    nr[cpu] += 1
                    where[e] = W_TASK
                    where_cpu[e] = cpu
                elif ctx[i] == HARDIRQ:
                    p = P_FREE_IRQ
                    counters[K_FREE_IRQ] += 1
                    irq[cpu, nr_irq[cpu]] = e
                    nr_irq[cpu] += 1
                    where[e] = W_IRQ
                    where_cpu[e] = cpu
                else:
                    p = P_KFREE_SOFTIRQ
                    counters[K_KFREE_SOFTIRQ] += 1
                if p == P_KFREE_FULL or p == P_KFREE_SOFTIRQ:
                    where[e] = W_KFREED
                    where_cpu[e] = -1
                    fb_cpu[n_fb] = cpu
                    fb_op[n_fb] = FREE
                    fb_ctx[n_fb] = ctx[i]
                    fb_obj[n_fb] = e
                    fb_time[n_fb] = clock[cpu]
                    n_fb += 1
            event_path[i] = p
            path_count[p] += 1
            m = 0.0
            if hier:
                m = _touch(CI, CF, acc, p, cpu, addr[e], stride, log, i)
                ev_mem[i] = m
                if p == P_KFREE_FULL or p == P_KFREE_SOFTIRQ:  # kfree(): back on this CPU's LIFO
                    freed_next[addr[e]] = freed_head[cpu]
                    freed_head[cpu] = addr[e]
            path_cycles[p] += pc[p] + m
            clock[cpu] += pc[p] + m
            if op[i] == ALLOC:
                slot_time[s] = clock[cpu]
        return n_obj, n_fb

    return _simulate


#: the event loop with the hierarchy off (flat ``l1_hit`` charges) and on
_simulate_flat = _event_loop(False)
_simulate_memory = _event_loop(True)


def fallback_program(ncpu: int, cpu, op, ctx, obj, time, n_elements: int) -> Program:
    """The kmalloc/kfree calls of the list, as a program: per CPU in the order they happened, slot =
    element id, gap = front-end cycles since the previous fallback call on that CPU (each CPU's first call: the
    cycles since that CPU started), rounded to the nearest integer (half to even)."""
    start, op, ctx, obj, gap = _fallback_arrays(int(ncpu), np.asarray(cpu, np.int64), np.asarray(op, np.int8),
                                                np.asarray(ctx, np.int8), np.asarray(obj, np.int64),
                                                np.asarray(time, np.float64))
    # valid by construction (each element kmalloc'ed once, kfreed at most once, after its kmalloc);
    # the tests validate it, and backends check what they are given
    return Program(start, op, ctx, obj, gap, int(n_elements))


@njit(cache=True)
def _fallback_arrays(ncpu, cpu, op, ctx, obj, time):
    """:func:`fallback_program`'s arrays: the calls grouped by CPU, each CPU's in the order they happened (a
    stable counting sort), and the gaps."""
    n = len(cpu)
    start = np.zeros(ncpu + 1, np.int64)
    for i in range(n):
        start[cpu[i] + 1] += 1
    for c in range(ncpu):
        start[c + 1] += start[c]
    at = start[:-1].copy()
    s_op = np.empty(n, np.int8)
    s_ctx = np.empty(n, np.int8)
    s_obj = np.empty(n, np.int64)
    gap = np.empty(n, np.int64)
    last = np.zeros(ncpu, np.float64)
    for i in range(n):
        c = cpu[i]
        j = at[c]
        at[c] += 1
        s_op[j] = op[i]
        s_ctx[j] = ctx[i]
        s_obj[j] = obj[i]
        gap[j] = np.int64(np.rint(time[i] - last[c]))
        last[c] = time[i]
    return start, s_op, s_ctx, s_obj, gap


def simulate(program: Program, threshold: int = PCPU_CACHE_IRQ_THRESHOLD, max_nr: int = DIO_ALLOC_CACHE_MAX,
             costs=None, hooks=None, steps="default", hierarchy=False,
             clock_ghz: float = 3.0) -> tuple[Result, Program, State]:
    """Run the per-CPU list (the front end only) over ``program``. Returns its :class:`Result`
    (cycles of the list itself), the fallback program for the backend, and the final :class:`State`.

    ``hierarchy``: the memory hierarchy (:mod:`allocsim.kernel.cache`) on — ``True`` for the default CPU at
    ``clock_ghz``, or a :class:`allocsim.facts.cpu.Geometry` — each path then touching the lines its steps
    name (element ``e`` at ``element_stride() × e`` in the object region of :mod:`allocsim.kernel.memory`)
    instead of charging its loads ``l1_hit``. The front end's hierarchy is its own: the kmalloc backend runs
    afterwards, on the fallback program, with a hierarchy of its own (a simplification: the lines the two
    share, the elements, are not carried from one to the other). ``extra["hierarchy"]``: per CPU, where the
    data came from (``cache.COUNTER_NAMES``); ``extra["event_memory"]``: each event's cycles in it;
    ``extra["access_log"]``: per event, each access's kind × 4 + invalidation class (-1 past its last)."""
    n_alloc = _validate(program, threshold, max_nr)
    geo = _memory.geometry_of(hierarchy, clock_ghz, "the per-CPU list's")
    pc = path_costs(costs, hooks, steps, memory=geo is None)
    ncpu, n = program.ncpu, program.n_events
    task = np.zeros((ncpu, max_nr), np.int64)
    irq = np.zeros((ncpu, max_nr), np.int64)
    nr = np.zeros(ncpu, np.int64)
    nr_irq = np.zeros(ncpu, np.int64)
    where = np.zeros(n_alloc, np.int64)
    where_cpu = np.full(n_alloc, -1, np.int64)
    slot_obj = np.full(program.n_slots, -1, np.int64)
    counters = np.zeros(len(COUNTERS), np.int64)
    path_count = np.zeros(len(PATHS), np.int64)
    path_cycles = np.zeros(len(PATHS), np.float64)
    event_path = np.full(n, -1, np.int8)
    clock = np.zeros(ncpu, np.float64)
    fb_cpu = np.empty(n, np.int64)  # only the first n_fb are written and read
    fb_op = np.empty(n, np.int8)
    fb_ctx = np.empty(n, np.int8)
    fb_obj = np.empty(n, np.int64)
    fb_time = np.empty(n, np.float64)
    start, op, ctx, slot, gap, n_slots = program.arrays()
    if geo is None:
        CI, CF, acc = np.zeros(1, np.int64), np.zeros(1, np.float64), np.full((len(PATHS), 1, 3), -1, np.int64)
        log = np.zeros((1, 1), np.int8)
        ev_mem = np.zeros(1, np.float64)
        reuse = (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64))
    else:
        CI, CF = _cache.new_cache(ncpu, geo)
        acc = _rows(access_table(hooks, steps))
        log = np.full((n, max(acc.shape[1] - 1, 1)), -1, np.int8)  # the most accesses of a path (_rows: + 1 row)
        ev_mem = np.zeros(n, np.float64)
        # element addresses: addr, freed_next (one per address; there are at most as many as elements), freed_head
        reuse = (np.empty(max(n_alloc, 1), np.int64), np.empty(max(n_alloc, 1), np.int64), np.full(ncpu, -1, np.int64))
    try:
        loop = _simulate_flat if geo is None else _simulate_memory
        n_obj, n_fb = loop(start, op, ctx, slot, gap, n_slots, int(threshold), int(max_nr), pc,
                           task, irq, nr, nr_irq, where, where_cpu, slot_obj,
                           counters, path_count, path_cycles, event_path, clock,
                           fb_cpu, fb_op, fb_ctx, fb_obj, fb_time, CI, CF, acc,
                           element_stride(), ev_mem, log, start[:-1].copy(), np.full(n_slots, -1.0),
                           *reuse)
    except IndexError:  # only with NUMBA_BOUNDSCHECK=1 (the test suite); without it the write corrupts memory
        raise AllocsimError(
            f"the per-CPU list model indexed outside its state: each of the {ncpu} CPUs' free_list and free_list_irq "
            f"holds at most max_nr = {int(max_nr)} elements, and the element table holds the {n_alloc} elements the "
            f"program can allocate; a model step went past one of them (a bug in the model, not in the program)") from None
    if n_obj < 0:
        raise AllocsimError("the program deadlocks: a CPU frees a slot before any CPU can allocate it")
    fb = fallback_program(ncpu, fb_cpu[:n_fb], fb_op[:n_fb], fb_ctx[:n_fb], fb_obj[:n_fb], fb_time[:n_fb], n_obj)
    state = State([task[c, :nr[c]].tolist() for c in range(ncpu)], [irq[c, :nr_irq[c]].tolist() for c in range(ncpu)],
                  nr, nr_irq, where[:n_obj], where_cpu[:n_obj], int(n_obj), slot_obj)
    front = Result(
        model="pcpu-list", n_alloc=n_alloc, n_free=n - n_alloc, cycles=float(path_cycles.sum()),
        clock=clock, stats={k: int(v) for k, v in zip(COUNTERS, counters)},
        paths={p: (int(path_count[j]), float(path_cycles[j])) for j, p in enumerate(PATHS)},
        event_path=event_path, extra={"threshold": int(threshold), "max_nr": int(max_nr), "state": state,
                                      "hierarchy": None if geo is None else _cache.counters(CI),
                                      "event_memory": None if geo is None else ev_mem,
                                      "access_log": None if geo is None else log,
                                      "cache": None if geo is None else CI},
    )
    return front, fb, state


# ----------------------------------------------------------------------------------------------
# The kmalloc backend

def standin_charges(costs=None, hooks=None, steps="default") -> tuple[float, float]:
    """The stand-in's cycles per kmalloc and per kfree: the hot-path step sums of the 6.19 cpu slab for the
    kmalloc bucket of ``struct iomap_dio`` plus its header (``kmalloc_entry`` + ``slab_alloc_hooks`` +
    ``cpu_slab_alloc``; ``kfree_entry`` + ``slab_free_hooks`` + ``cpu_slab_free``)."""
    from allocsim.facts import kconfig

    table = _costs.load() if costs is None else costs
    book = steps if isinstance(steps, _steps.StepBook) else _steps.load(steps)
    f = _steps.Facts(hooks=_steps.Hooks.of(hooks), cpu_slab=True, kmalloc=True,
                     object_size=kconfig.kmalloc_size(element_size() + header_size()))
    v = dict(zip(_steps.SLUB_SEGMENTS, _steps.slub_vector(table, book, f)))
    return v["alloc_entry"] + v["cpu_slab_alloc"], v["free_entry"] + v["cpu_slab_free"]


def kmalloc_standin(program: Program, costs=None, hooks=None, steps="default") -> Result:
    """A fixed-cost stand-in for kmalloc/kfree: every call costs what the 6.19 cpu slab's fast path costs
    (:func:`standin_charges`).

    It never takes a slow path, has no per-slab state, and ignores the CPU an object came from —
    so it flatters kmalloc under cross-CPU frees (where real SLUB takes ``__slab_free`` with a
    locked cmpxchg) and is independent of the kernel version. Chapters say when they use it."""
    check_program(program)
    c_alloc, c_free = standin_charges(costs, hooks, steps)
    n_alloc = int((program.op == ALLOC).sum())
    n_free = int((program.op == FREE).sum())
    cost = np.where(program.op == ALLOC, c_alloc, c_free)
    clock = np.zeros(program.ncpu)
    for c in range(program.ncpu):
        s, e = program.start[c], program.start[c + 1]
        clock[c] = float(program.gap[s:e].sum() + cost[s:e].sum())
    return Result(model="kmalloc-standin", n_alloc=n_alloc, n_free=n_free, cycles=n_alloc * c_alloc + n_free * c_free,
                  clock=clock, stats={"kmalloc": n_alloc, "kfree": n_free},
                  paths={"kmalloc": (n_alloc, n_alloc * c_alloc), "kfree": (n_free, n_free * c_free)},
                  event_path=np.where(program.op == ALLOC, 0, 1).astype(np.int8))


def element_size() -> int:
    """``sizeof(struct iomap_dio)`` from the struct layout (data/kernel/structs.yaml)."""
    from allocsim.facts import structs as layout

    return layout.sizeof("iomap_dio")


def header_size() -> int:
    """``sizeof(struct pcpu_cache_element)``: the 8-byte ``next`` pointer in front of each payload."""
    from allocsim.facts import structs as layout

    return layout.sizeof("pcpu_cache_element")


def backend_for(kmalloc: str = DEFAULT_KMALLOC, kernel: str = "7.0", costs=None, object_size: int | None = None,
                hooks=None, steps="default", hierarchy=False, clock_ghz: float = 3.0):
    """The callable ``Program -> Result`` for the kmalloc the list falls back to (``hierarchy``: the SLUB
    backend runs with the memory hierarchy, as :func:`allocsim.kernel.slub.run` takes it; the stand-in has none)."""
    if kmalloc not in KMALLOC_CHOICES:
        raise AllocsimError(f"kmalloc must be one of {', '.join(map(repr, KMALLOC_CHOICES))}, not {kmalloc!r}")
    if kmalloc == "standin":
        return lambda prog: kmalloc_standin(prog, costs=costs, hooks=hooks, steps=steps)
    try:
        from allocsim.kernel import slub
    except ImportError:
        raise AllocsimError("kmalloc='slub' needs the SLUB models (allocsim.kernel.slub), which are not available in this "
                            "checkout; use kmalloc='standin'") from None
    size = element_size() + header_size() if object_size is None else object_size
    return lambda prog: slub.run(prog, kernel=kernel, object_size=size, kmalloc=True, costs=costs, hooks=hooks,
                                 steps=steps, hierarchy=hierarchy, clock_ghz=clock_ghz)


def run(program: Program, threshold: int = PCPU_CACHE_IRQ_THRESHOLD, max_nr: int = DIO_ALLOC_CACHE_MAX,
        costs=None, backend=None, kmalloc: str | None = None, kernel: str = "7.0", hooks=None,
        steps="default", hierarchy=False, clock_ghz: float = 3.0) -> Result:
    """The per-CPU list over ``program`` with its kmalloc/kfree calls run by ``backend`` (any
    callable ``Program -> Result``; default: :func:`backend_for` ``(kmalloc or DEFAULT_KMALLOC,
    kernel)``). ``hooks`` and ``steps``: the kernel switches and the step file of cost model v2
    (:mod:`allocsim.facts.steps`), for the list and its kmalloc alike. Returns
    ``front.combine(backend_result)``; ``extra`` holds the fallback program, the front-end result and the
    final state."""
    if backend is not None and kmalloc is not None:
        raise AllocsimError("give either backend= (a callable) or kmalloc= (a name), not both")
    if backend is None:
        backend = backend_for(kmalloc or DEFAULT_KMALLOC, kernel, costs, hooks=hooks, steps=steps,
                              hierarchy=hierarchy, clock_ghz=clock_ghz)
    elif not callable(backend):
        raise AllocsimError(f"backend must be a callable taking a Program and returning a Result, not {backend!r}")
    front, fb, state = simulate(program, threshold, max_nr, costs, hooks, steps, hierarchy, clock_ghz)
    back = backend(fb)
    out = front.combine(back)
    out.event_path = front.event_path
    out.extra.update({"front": front, "fallback": fb, "state": state, "threshold": int(threshold), "max_nr": int(max_nr)})
    return out


def kmalloc_only(program: Program, costs=None, kmalloc: str | None = None, kernel: str = "7.0", backend=None,
                 hooks=None, steps="default") -> Result:
    """The baseline without the patch: every allocation and free of ``program`` goes straight to the
    kmalloc model (``kmalloc(sizeof(struct iomap_dio))``, kmalloc-96)."""
    if backend is None:
        backend = backend_for(kmalloc or DEFAULT_KMALLOC, kernel, costs, object_size=element_size(), hooks=hooks,
                              steps=steps)
    return backend(program)

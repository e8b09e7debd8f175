"""The patch: a private per-CPU free list for ``struct iomap_dio`` ("[PATCH v3] iomap: add allocation
cache for iomap_dio", guzebing, 2026-01-15, as quoted in ``seed/thread.txt``), copied from the block
layer's per-CPU bio cache (``block/bio.c``, reference/kernel.md §5).

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

Cycle charges per path (:data:`PATH_CHARGES`; every entry a row of ``data/costs.csv``):

* ``preempt_pair`` — ``get_cpu()`` / ``put_cpu()`` (preempt_disable/enable), once per call;
* ``l1_hit`` — reading ``cache->free_list`` (with ``nr``, ``nr_irq``: the 24-byte ``struct
  pcpu_cache`` is one per-CPU line, hot in L1), and, when an element is popped or pushed, its
  first word (``element->next``), which the caller is about to write (alloc) or has just written
  (free) anyway;
* ``irq_save_restore`` — ``local_irq_save``/``local_irq_restore`` around the splice.

Not charged: the call into ``pcpu_cache_list_alloc``/``_free`` themselves (static functions in
``direct-io.c``; whether gcc inlines them is not known, and their cost would be the same on
every path), ``lockdep_assert_irqs_disabled()`` (empty without lockdep), and the ``kmalloc`` /
``kfree`` the list falls back to: those are the *backend*'s. The model emits them as a second
:class:`~allocsim.kernel.program.Program` (the *fallback program*: same CPUs; one slot per element the
list got from kmalloc; each event's ``gap`` is the front-end time since the previous fallback event
on that CPU) and the backend — any callable ``Program -> Result`` — runs it. The total is
``front.combine(backend_result)``.

Backends: :func:`kmalloc_standin` (default until the SLUB models land), a fixed cost per call from
the cost table; or ``kmalloc="slub"``, which calls ``allocsim.kernel.slub.run`` on the fallback program with
``object_size = element_size + 8`` (kmalloc-128 for ``struct iomap_dio``) for the chosen kernel.
Switching the default is the one line :data:`DEFAULT_KMALLOC`.

Simplifications: the front end's clock does not include the backend's cycles (the fallback program
carries the front-end timing in its gaps instead); a failed ``kmalloc`` (``-ENOMEM``) is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from allocsim.facts import bypass
from allocsim.facts import costs as _costs
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.result import Result
from allocsim.kernel.sim import next_cpu
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, Program

#: ``PCPU_CACHE_IRQ_THRESHOLD`` of the patch (v3, fs/iomap/direct-io.c), = bio's ALLOC_CACHE_THRESHOLD.
PCPU_CACHE_IRQ_THRESHOLD = 16
#: ``DIO_ALLOC_CACHE_MAX`` of the patch (v3, fs/iomap/direct-io.c), = bio's ALLOC_CACHE_MAX.
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
#: What each path executes, as (cost-table key, times) pairs; the backend's kmalloc/kfree come on top.
PATH_CHARGES = {
    "alloc_hit": (("preempt_pair", 1), ("l1_hit", 2)),
    "alloc_splice": (("preempt_pair", 1), ("l1_hit", 2), ("irq_save_restore", 1)),
    "alloc_kmalloc": (("preempt_pair", 1), ("l1_hit", 1)),
    "free_task": (("preempt_pair", 1), ("l1_hit", 2)),
    "free_irq": (("preempt_pair", 1), ("l1_hit", 2)),
    "kfree_full": (("preempt_pair", 1), ("l1_hit", 1)),
    "kfree_softirq": (("preempt_pair", 1), ("l1_hit", 1)),
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


def path_costs(table=None) -> np.ndarray:
    """Cycles per path (float64[len(PATHS)]) from the cost table (default ``data/costs.csv``)."""
    table = _costs.load() if table is None else table
    return np.array([sum(table.cycles(k) * n for k, n in PATH_CHARGES[p]) for p in PATHS], np.float64)


def charges_frame(table=None):
    """The per-path charges as a table: path, what it does, the sum of primitives, cycles."""
    import pandas as pd

    table = _costs.load() if table is None else table
    pc = path_costs(table)
    rows = []
    for i, p in enumerate(PATHS):
        parts = " + ".join(f"{n}×{k} ({table.cycles(k):g})" if n > 1 else f"{k} ({table.cycles(k):g})"
                           for k, n in PATH_CHARGES[p])
        backend = "kmalloc" if p == "alloc_kmalloc" else "kfree" if p.startswith("kfree") else ""
        rows.append({"path": p, "what": PATH_DOC[p], "charges": parts, "cycles": pc[i], "backend call": backend})
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
def _program_ok(start, op, ctx, slot, gap, n_slots):
    """One pass over a program: True if it satisfies every check of ``Program.validate``."""
    n = len(op)
    if len(ctx) != n or len(slot) != n or len(gap) != n or len(start) < 2 or start[0] != 0 or start[-1] != n:
        return False
    for c in range(len(start) - 1):
        if start[c + 1] < start[c]:
            return False
    allocs = np.zeros(n_slots, np.int8)
    frees = np.zeros(n_slots, np.int8)
    for i in range(n):
        s = slot[i]
        if s < 0 or s >= n_slots or gap[i] < 0 or ctx[i] < TASK or ctx[i] > SOFTIRQ:
            return False
        if op[i] == ALLOC:
            if allocs[s]:
                return False
            allocs[s] = 1
        elif op[i] == FREE:
            if frees[s]:
                return False
            frees[s] = 1
        else:
            return False
    for s in range(n_slots):
        if frees[s] and not allocs[s]:
            return False
    return True


def check_program(program: Program) -> Program:
    """The checks of :meth:`Program.validate` in one jitted pass (``np.unique`` there took longer
    than the model itself); on any failure, ``Program.validate`` raises its own one-sentence error."""
    if not _program_ok(*program.arrays()):
        program.validate()
        raise AllocsimError("the program is malformed")  # unreachable: validate() names the problem
    return program


def _validate(program: Program, threshold, max_nr):
    if not isinstance(program, Program):
        raise AllocsimError(f"the per-CPU list model needs an allocsim.kernel.program.Program, not {type(program).__name__}")
    for name, v in (("max_nr", max_nr), ("threshold", threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise AllocsimError(f"per-CPU list {name} must be an integer >= 1, not {v!r}")
    if threshold > max_nr:
        raise AllocsimError(f"per-CPU list threshold ({threshold}) must not exceed max_nr ({max_nr}): the IRQ list could never reach it")
    check_program(program)


@njit(cache=True)
def _simulate(start, op, ctx, slot, gap, n_slots, threshold, max_nr, pc,
              task, irq, nr, nr_irq, where, where_cpu, slot_obj,
              counters, path_count, path_cycles, event_path, clock,
              fb_cpu, fb_op, fb_ctx, fb_obj, fb_time):
    """The event loop. Returns (number of elements from kmalloc, number of fallback events), or
    (-1, -1) if the program deadlocks."""
    ncpu = len(start) - 1
    pos = start[:-1].copy()
    slot_time = np.full(n_slots, -1.0)
    n_obj = 0
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
        path_cycles[p] += pc[p]
        clock[cpu] += pc[p]
        if op[i] == ALLOC:
            slot_time[s] = clock[cpu]
    return n_obj, n_fb


def fallback_program(ncpu: int, cpu, op, ctx, obj, time, n_elements: int) -> Program:
    """The kmalloc/kfree calls of the list, as a program: per CPU in the order they happened, slot =
    element id, gap = front-end cycles since the previous fallback call on that CPU."""
    cpu = np.asarray(cpu, np.int64)
    order = np.argsort(cpu, kind="stable")
    cpu, op, ctx, obj = cpu[order], np.asarray(op)[order], np.asarray(ctx)[order], np.asarray(obj)[order]
    time = np.asarray(time, np.float64)[order]
    counts = np.bincount(cpu, minlength=ncpu) if len(cpu) else np.zeros(ncpu, np.int64)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    gap = np.diff(time, prepend=0.0)
    firsts = start[:-1][counts > 0]
    gap[firsts] = time[firsts]  # each CPU's first call: the time since that CPU started
    gap = np.rint(gap).astype(np.int64)
    # valid by construction (each element kmalloc'ed once, kfreed at most once, after its kmalloc);
    # the tests validate it, and backends check what they are given
    return Program(start, op.astype(np.int8), ctx.astype(np.int8), obj.astype(np.int64), gap, int(n_elements))


def simulate(program: Program, threshold: int = PCPU_CACHE_IRQ_THRESHOLD, max_nr: int = DIO_ALLOC_CACHE_MAX,
             costs=None) -> tuple[Result, Program, State]:
    """Run the per-CPU list (the front end only) over ``program``. Returns its :class:`Result`
    (cycles of the list itself), the fallback program for the backend, and the final :class:`State`."""
    _validate(program, threshold, max_nr)
    pc = path_costs(costs)
    ncpu, n = program.ncpu, program.n_events
    n_alloc = int((program.op == ALLOC).sum())
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
    fb_cpu = np.zeros(n, np.int64)
    fb_op = np.zeros(n, np.int8)
    fb_ctx = np.zeros(n, np.int8)
    fb_obj = np.zeros(n, np.int64)
    fb_time = np.zeros(n, np.float64)
    start, op, ctx, slot, gap, n_slots = program.arrays()
    n_obj, n_fb = _simulate(start, op, ctx, slot, gap, n_slots, int(threshold), int(max_nr), pc,
                            task, irq, nr, nr_irq, where, where_cpu, slot_obj,
                            counters, path_count, path_cycles, event_path, clock,
                            fb_cpu, fb_op, fb_ctx, fb_obj, fb_time)
    if n_obj < 0:
        raise AllocsimError("the program deadlocks: a CPU frees a slot before any CPU can allocate it")
    fb = fallback_program(ncpu, fb_cpu[:n_fb], fb_op[:n_fb], fb_ctx[:n_fb], fb_obj[:n_fb], fb_time[:n_fb], n_obj)
    state = State([task[c, :nr[c]].tolist() for c in range(ncpu)], [irq[c, :nr_irq[c]].tolist() for c in range(ncpu)],
                  nr, nr_irq, where[:n_obj], where_cpu[:n_obj], int(n_obj), slot_obj)
    front = Result(
        model="pcpu-list", n_alloc=n_alloc, n_free=int((program.op == FREE).sum()), cycles=float(path_cycles.sum()),
        clock=clock, stats={k: int(v) for k, v in zip(COUNTERS, counters)},
        paths={p: (int(path_count[j]), float(path_cycles[j])) for j, p in enumerate(PATHS)},
        event_path=event_path, extra={"threshold": int(threshold), "max_nr": int(max_nr), "state": state},
    )
    return front, fb, state


# ----------------------------------------------------------------------------------------------
# The kmalloc backend

#: The stand-in's charge per call: Brouer's measured SLUB fast-path alloc+free pair (42–43 cycles,
#: kernel commit fbd02630c6e3), half per call — the ``percpu_cmpxchg16b`` row of data/costs.csv.
STANDIN_CHARGES = {"kmalloc": (("percpu_cmpxchg16b", 1),), "kfree": (("percpu_cmpxchg16b", 1),)}


def kmalloc_standin(program: Program, costs=None) -> Result:
    """A fixed-cost stand-in for kmalloc/kfree (used until the SLUB models are wired in): every
    call costs what one operation of SLUB's measured fast path costs (:data:`STANDIN_CHARGES`).

    It never takes a slow path, has no per-slab state, and ignores the CPU an object came from —
    so it flatters kmalloc under cross-CPU frees (where real SLUB takes ``__slab_free`` with a
    locked cmpxchg) and is independent of the kernel version. Chapters say when they use it."""
    check_program(program)
    table = _costs.load() if costs is None else costs
    c_alloc = sum(table.cycles(k) * n for k, n in STANDIN_CHARGES["kmalloc"])
    c_free = sum(table.cycles(k) * n for k, n in STANDIN_CHARGES["kfree"])
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


def backend_for(kmalloc: str = DEFAULT_KMALLOC, kernel: str = "7.0", costs=None, object_size: int | None = None):
    """The callable ``Program -> Result`` for the kmalloc the list falls back to."""
    if kmalloc not in KMALLOC_CHOICES:
        raise AllocsimError(f"kmalloc must be one of {', '.join(map(repr, KMALLOC_CHOICES))}, not {kmalloc!r}")
    if kmalloc == "standin":
        return lambda prog: kmalloc_standin(prog, costs=costs)
    try:
        from allocsim.kernel import slub
    except ImportError:
        raise AllocsimError("kmalloc='slub' needs the SLUB models (allocsim.kernel.slub), which are not available in this "
                            "checkout; use kmalloc='standin'") from None
    size = element_size() + header_size() if object_size is None else object_size
    return lambda prog: slub.run(prog, kernel=kernel, object_size=size, kmalloc=True, costs=costs)


def run(program: Program, threshold: int = PCPU_CACHE_IRQ_THRESHOLD, max_nr: int = DIO_ALLOC_CACHE_MAX,
        costs=None, backend=None, kmalloc: str | None = None, kernel: str = "7.0") -> Result:
    """The per-CPU list over ``program`` with its kmalloc/kfree calls run by ``backend`` (any
    callable ``Program -> Result``; default: :func:`backend_for` ``(kmalloc or DEFAULT_KMALLOC,
    kernel)``). Returns ``front.combine(backend_result)``; ``extra`` holds the fallback program,
    the front-end result and the final state."""
    if backend is not None and kmalloc is not None:
        raise AllocsimError("give either backend= (a callable) or kmalloc= (a name), not both")
    if backend is None:
        backend = backend_for(kmalloc or DEFAULT_KMALLOC, kernel, costs)
    elif not callable(backend):
        raise AllocsimError(f"backend must be a callable taking a Program and returning a Result, not {backend!r}")
    front, fb, state = simulate(program, threshold, max_nr, costs)
    back = backend(fb)
    out = front.combine(back)
    out.event_path = front.event_path
    out.extra.update({"front": front, "fallback": fb, "state": state, "threshold": int(threshold), "max_nr": int(max_nr)})
    return out


def kmalloc_only(program: Program, costs=None, kmalloc: str | None = None, kernel: str = "7.0", backend=None) -> Result:
    """The baseline without the patch: every allocation and free of ``program`` goes straight to the
    kmalloc model (``kmalloc(sizeof(struct iomap_dio))``, kmalloc-96)."""
    if backend is None:
        backend = backend_for(kmalloc or DEFAULT_KMALLOC, kernel, costs, object_size=element_size())
    return backend(program)


# ----------------------------------------------------------------------------------------------
# Memory the list keeps, and what it bypasses

def memory(max_nr: int = DIO_ALLOC_CACHE_MAX, kernel: str = "7.0", ncpu_present: int = 2) -> dict:
    """What one CPU's list can keep, from the struct layout and the kmalloc size classes:

    * ``element_size``: ``sizeof(struct iomap_dio)``; ``header``: ``sizeof(struct pcpu_cache_element)``;
    * ``request``: what ``pcpu_cache_list_alloc`` kmallocs (element + header) and ``kmalloc_class``,
      the object size of the kmalloc cache that request lands in (``kmalloc_slab()``);
    * ``plain_class``: the class of the plain ``kmalloc(sizeof(*dio))`` the patch replaces;
    * ``per_cpu_bytes``: ``max_nr`` cached objects of ``kmalloc_class`` bytes, plus the per-CPU
      ``struct pcpu_cache`` (``alloc_percpu``), the most one CPU's list ever holds;
    * for comparison, what SLUB itself may hold per CPU for the plain kmalloc cache in ``kernel``:
      7.0 — main and spare sheaf full (``2 × sheaf_capacity`` objects); 6.18/6.19 (no sheaves on
      kmalloc caches) — the cpu partial list's object limit ``cpu_partial``. Both are bounds, and
      both are returned by ``kmem_cache_shrink``/CPU hotplug (kernel.md §1.8), unlike the list's.
    Slab-page overhead (the page holding a cached object cannot be freed) is not counted.
    """
    from allocsim.facts import kconfig
    from allocsim.facts import structs as layout

    if isinstance(max_nr, bool) or not isinstance(max_nr, (int, np.integer)) or max_nr < 1:
        raise AllocsimError(f"per-CPU list max_nr must be an integer >= 1, not {max_nr!r}")
    size, header = element_size(), header_size()
    request = size + header
    geo = kconfig.cache_geometry(size, ncpu_present, kernel)
    slub_objects = 2 * geo.sheaf_capacity if geo.sheaf_capacity else geo.cpu_partial
    return {
        "element_size": size, "header": header, "request": request,
        "kmalloc_class": kconfig.kmalloc_size(request), "kmalloc_cache": kconfig.kmalloc_cache_name(request),
        "plain_class": kconfig.kmalloc_size(size), "plain_cache": kconfig.kmalloc_cache_name(size),
        "pcpu_cache_struct": layout.sizeof("pcpu_cache"), "max_nr": int(max_nr),
        "per_cpu_bytes": int(max_nr) * kconfig.kmalloc_size(request) + layout.sizeof("pcpu_cache"),
        "kernel": geo.version, "slub_per_cpu_objects": slub_objects,
        "slub_per_cpu_bytes": slub_objects * geo.size,
        "slub_per_cpu_what": (f"main + spare sheaf of {geo.name} (capacity {geo.sheaf_capacity})" if geo.sheaf_capacity
                              else f"cpu partial list of {geo.name} (cpu_partial {geo.cpu_partial} objects)"),
    }


def memory_table(cpus=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), max_nr: int = DIO_ALLOC_CACHE_MAX,
                 kernel: str = "7.0"):
    """Machine-wide bytes the lists can keep for each CPU count in ``cpus`` (every CPU that ever
    ran direct IO keeps up to ``max_nr`` objects), next to SLUB's own per-CPU bound."""
    import pandas as pd

    rows = []
    for n in cpus:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise AllocsimError(f"CPU counts must be integers >= 1, not {n!r}")
        m = memory(max_nr, kernel, ncpu_present=int(n))
        rows.append({"cpus": int(n), "per-CPU list": n * m["per_cpu_bytes"],
                     f"SLUB {m['kernel']} per-CPU caching (bound)": n * m["slub_per_cpu_bytes"]})
    return pd.DataFrame(rows)


BYPASS_COLUMNS = bypass.CACHES


def bypass_table(columns=("patch", "bio", "slub")):
    """``data/bypass.yaml`` as a table, one row per item: for each of ``columns`` (``patch``, ``bio``,
    ``slub``) what that cache does, followed by its source in brackets."""
    import pandas as pd

    for c in columns:
        if c not in BYPASS_COLUMNS:
            raise AllocsimError(f"bypass table column must be one of {', '.join(BYPASS_COLUMNS)}, not {c!r}")
    rows = []
    for it in bypass.load():
        row = {"item": it["item"]}
        for c in columns:
            row[BYPASS_COLUMNS[c]] = f"{it[c]} [{it[c + '_source']}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("item")

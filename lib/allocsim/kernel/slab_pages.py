"""The backing layer every SLUB model shares: slabs (``struct slab``) with their own freelists and
``inuse`` counts, the per-node partial list under ``list_lock`` (``struct kmem_cache_node``), new slabs
from the page allocator and the discard of empty ones beyond ``min_partial``; plus the 7.0 slab paths
that no longer have a cpu slab above them (kernel.md §2.5: ``___slab_alloc()``, ``refill_objects()``,
``get_partial_node_bulk()``, ``__slab_free()``).

State. A model's whole state lives in two flat NumPy arrays, ``I`` (int64) and ``F`` (float64), so
the jitted functions pass two arrays around (a tuple of many arrays costs numba an atomic reference
count per array per call). :func:`new_state` builds them; :func:`view` returns named views for tests
and charts. ``I`` holds, each at the offset recorded in its header:

* ``cfg`` (fixed offset :data:`CFG`) — the cache geometry and model switches (``CF_*``);
* ``g`` (fixed offset :data:`G`) — bookkeeping of slab and sheaf numbers (not kernel state);
* ``stats`` (fixed offset :data:`ST`) — SLUB_STATS counters (:mod:`allocsim.kernel.stats`);
* ``sl`` — one row of ``NSL`` per slab: ``freelist`` (first free object, -1 = NULL), ``inuse``,
  ``frozen``, where it is (``W_*``), owning CPU, node, and the ``prev``/``next`` links of the list it
  is on (node partial list, cpu partial list, pool of unused slab numbers);
* ``onext`` — the free pointer stored in each free object (``get_freepointer()``). Object ``o``
  belongs to slab ``o // objs_per_slab``; a slab's freelist, the cpu freelist (6.19) and a detached
  freelist are all linked through it, as in the kernel;
* ``nd`` — per node: partial list head/tail, ``nr_partial``, ``nr_slabs``;
* ``cc`` — ``struct kmem_cache_cpu`` per CPU (6.19, :mod:`allocsim.kernel.cpu_slab`); ``sh``/``shobj``/``pcs``/
  ``barn`` — sheaves (size, next), their object arrays, ``struct slub_percpu_sheaves`` and
  ``struct node_barn`` (:mod:`allocsim.kernel.sheaves`, :mod:`allocsim.kernel.barn`);
* ``lo`` — the last holder of each shared lock (``list_lock`` of node ``n`` is lock ``n``, the barn
  lock of node ``n`` is lock ``nnodes + n``);
* ``scratch`` — the on-stack array of ``sheaf_flush_main()``.

``F`` holds the cost vector of :mod:`allocsim.facts.costs` at offset 0 (so ``F[C_L1]`` is ``l1_hit``), the
accumulators ``AC_*`` (lock waiting, transfers), the locks' free-at clocks and the per-CPU interrupt
placement bookkeeping of :mod:`allocsim.kernel.sheaves`.

Every function takes the current time ``t`` of the CPU doing the work and returns the time after it,
having charged the primitives it executes (named in each docstring, cycles from ``data/costs.csv``).

Simplifications (all models): one slab page allocation per slab whatever its order (``page_alloc_free``
charged per slab, half at ``new_slab()`` and half at ``discard_slab()``, since the cited figure is an
alloc+free pair); freelists in address order (no ``CONFIG_SLAB_FREELIST_RANDOM``); no debug, KASAN,
KFENCE or memcg hooks (not in the cost table; they would cost the same in every model that has them);
no pfmemalloc slabs; one cache-line read (``l1_hit``) per list or pointer step.

Capacity. Slab and sheaf tables have a fixed number of rows plus one spare row; when a run needs more,
``g[G_ERR]`` is set, the spare row absorbs the rest of the event, and the caller reruns the program
with larger tables (:func:`allocsim.kernel.slub.run`). Results never come from a run that overflowed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from allocsim.facts import costs as _costs
from allocsim.kernel import stats as _st
from allocsim.kernel.sim import lock_acquire as _sim_lock_acquire
from allocsim.kernel.sim import lock_release as _sim_lock_release

#: :func:`allocsim.kernel.sim.lock_acquire` / ``lock_release`` themselves, compiled inline and without
#: reference counting into the model's functions (the same Python functions; only the options differ).
_lock_acquire = njit(_nrt=False, inline="always")(_sim_lock_acquire.py_func)
_lock_release = njit(_nrt=False, inline="always")(_sim_lock_release.py_func)

#: The modules whose jitted functions call into one another (``allocsim.kernel.slub.event_loop`` inlines and
#: links code from all of them, and from ``allocsim.kernel.sim``).
_MODEL_MODULES = ("slab_pages", "cpu_slab", "barn", "sheaves", "slub")
_MODEL_SOURCES = _MODEL_MODULES + ("sim", "stats", "program", "../facts/costs")


def _refresh_numba_cache() -> None:
    """Drop the cached machine code of the SLUB model modules when any of their sources changed.

    numba's ``cache=True`` keys a function's cache on its own source file only, so a caller cached in
    ``slub.py`` would keep running an old copy of a callee edited in ``sheaves.py``. A digest of all the
    sources involved, kept next to the cache files, catches that. Errors (read-only checkout) are
    ignored: numba then simply compiles in memory."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _MODEL_SOURCES:
        try:
            digest.update((here / f"{name}.py").read_bytes())
        except OSError:
            return
    stamp = here / "__pycache__" / "slub-models.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        for f in stamp.parent.glob("*.nb[ic]"):
            if f.name.split(".")[0] in _MODEL_MODULES:
                f.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass


_refresh_numba_cache()

# --- cost indices into F (the cost vector sits at F[0:len(KEYS)])
C_L1 = _costs.C_L1_HIT
C_SPIN = _costs.C_SPIN_LOCK_PAIR
C_IRQSAVE = _costs.C_IRQ_SAVE_RESTORE
C_XFER = _costs.C_CACHELINE_TRANSFER
C_LOCKED_CX = _costs.C_LOCKED_CMPXCHG16B
C_PAGE = _costs.C_PAGE_ALLOC_FREE
C_BULK = _costs.C_BULK_OBJECT
C_CALL = _costs.C_FUNCTION_CALL
NCOST = len(_costs.KEYS)

# --- header of I: offsets of the variable-size segments
H_SL, H_ONEXT, H_ND, H_CC, H_SH, H_SHOBJ, H_PCS, H_BARN, H_LO, H_LF, H_IRQ, H_SCRATCH = range(12)
NH = 12
#: room for the on-stack ``void *objects[PCS_BATCH_MAX]`` of ``sheaf_flush_main()``
SCRATCH = 32

# --- configuration (I[CFG + CF_*])
(CF_OBJS, CF_MIN_PARTIAL, CF_CPU_PARTIAL_SLABS, CF_CAP, CF_VERSION, CF_NNODES, CF_CPUS_PER_NODE, CF_SHEAVES,
 CF_NOWAIT_FAILS, CF_MAX_FULL, CF_SHEAF_LINES, CF_DEFRAG_RATIO, CF_MAX_SLABS, CF_MAX_SHEAVES, CF_NCPU,
 CF_ACCOUNT) = range(16)
NCF = 16
CFG = NH
V_CPU_SLAB = 0  # SLUB <= 6.19: a cpu slab and cpu partial list (with or without opt-in sheaves above)
V_70 = 1        # 7.0: sheaves on every cache, no cpu slab

# --- bookkeeping (I[G + G_*])
G_FREE_HEAD, G_NEXT_NEW, G_ERR, G_SHEAF_NEXT_NEW, G_SHEAF_FREE_HEAD = range(5)
NG = 5
G = CFG + NCF
ERR_SLABS = 1
ERR_SHEAVES = 2

# --- SLUB_STATS counters (I[ST + S_*])
ST = G + NG
FIXED_I = ST + _st.N_STATS

# --- slab rows
SL_FREELIST, SL_INUSE, SL_FROZEN, SL_WHERE, SL_CPU, SL_NODE, SL_PREV, SL_NEXT = range(8)
NSL = 8
W_POOL = 0          # not a slab: an unused number in the pool
W_NONE = 1          # on no list: full, or taken by a CPU as its cpu slab, or detached by a bulk refill
W_NODE_PARTIAL = 2  # on its node's partial list
W_CPU_PARTIAL = 3   # on a CPU's partial list (6.19), SL_CPU says which
W_CPU_SLAB = 4      # some CPU's cpu slab (6.19), SL_CPU says which; always frozen

# --- node rows
ND_HEAD, ND_TAIL, ND_NR_PARTIAL, ND_NR_SLABS = range(4)
NND = 4

# --- accumulators (F[AC + AC_*])
AC = NCOST
(AC_WAIT_LIST, AC_WAIT_BARN, AC_XFER_LIST, AC_XFER_BARN, AC_TAKEN_LIST, AC_TAKEN_BARN) = range(6)
NAC = 6
FIXED_F = AC + NAC
LOCK_LIST = 0
LOCK_BARN = 1

#: ``s->remote_node_defrag_ratio = 1000`` in ``kmem_cache_open()`` (v6.19/v7.0 ``mm/slub.c``), used by
#: ``get_any_partial()`` / ``__refill_objects_any()``.
REMOTE_NODE_DEFRAG_RATIO = 1000

# per-CPU and per-sheaf row widths owned by the other modules (kept here so the layout is in one place)
NCC = 4   # allocsim.kernel.cpu_slab: CC_FREELIST, CC_SLAB, CC_PARTIAL, CC_PARTIAL_SLABS
NSH = 2   # allocsim.kernel.barn: SH_SIZE, SH_NEXT
NPCS = 2  # allocsim.kernel.sheaves: PCS_MAIN, PCS_SPARE
NB = 4    # allocsim.kernel.barn: B_FULL_HEAD, B_NR_FULL, B_EMPTY_HEAD, B_NR_EMPTY
NIQ = 5   # allocsim.kernel.sheaves: IQ_* (floats)


def new_state(ncpu: int, nnodes: int, cpus_per_node: int, objs_per_slab: int, min_partial: int,
              cpu_partial_slabs: int, capacity: int, version: int, sheaves: bool, max_slabs: int, max_sheaves: int,
              cost: np.ndarray, max_full: int = 10, nowait_fails: bool = False, sheaf_lines: int = 1,
              slab_account: bool = False):
    """A fresh ``(I, F)``: no slabs, empty partial lists, empty barns, every CPU with an empty main
    sheaf (``init_percpu_sheaves()``) when ``sheaves``."""
    cap = max(capacity, 1)
    sizes = [
        (H_SL, (max_slabs + 1) * NSL), (H_ONEXT, (max_slabs + 1) * objs_per_slab), (H_ND, nnodes * NND),
        (H_CC, ncpu * NCC), (H_SH, (max_sheaves + 1) * NSH), (H_SHOBJ, (max_sheaves + 1) * cap),
        (H_PCS, ncpu * NPCS), (H_BARN, nnodes * NB), (H_LO, 2 * nnodes), (H_SCRATCH, SCRATCH),
    ]
    off = FIXED_I
    header = {}
    for h, n in sizes:
        header[h] = off
        off += n
    I = np.zeros(off, np.int64)
    for h, o in header.items():
        I[h] = o
    F = np.zeros(FIXED_F + 2 * nnodes + ncpu * NIQ, np.float64)
    F[:NCOST] = cost
    I[H_LF] = FIXED_F
    I[H_IRQ] = FIXED_F + 2 * nnodes
    cfg = I[CFG:CFG + NCF]
    cfg[CF_OBJS] = objs_per_slab
    cfg[CF_MIN_PARTIAL] = min_partial
    cfg[CF_CPU_PARTIAL_SLABS] = cpu_partial_slabs
    cfg[CF_CAP] = capacity
    cfg[CF_VERSION] = version
    cfg[CF_NNODES] = nnodes
    cfg[CF_CPUS_PER_NODE] = cpus_per_node
    cfg[CF_SHEAVES] = 1 if sheaves else 0
    cfg[CF_NOWAIT_FAILS] = 1 if nowait_fails else 0
    cfg[CF_MAX_FULL] = max_full
    cfg[CF_SHEAF_LINES] = sheaf_lines
    cfg[CF_DEFRAG_RATIO] = REMOTE_NODE_DEFRAG_RATIO
    cfg[CF_MAX_SLABS] = max_slabs
    cfg[CF_MAX_SHEAVES] = max_sheaves
    cfg[CF_NCPU] = ncpu
    cfg[CF_ACCOUNT] = 1 if slab_account else 0
    v = view(I, F)
    v["sl"][:, SL_WHERE] = W_POOL
    v["sl"][:, [SL_FREELIST, SL_PREV, SL_NEXT, SL_CPU]] = -1
    v["onext"][:] = -1
    v["nd"][:, [ND_HEAD, ND_TAIL]] = -1
    v["cc"][:, :3] = -1  # freelist, slab, partial: none; partial count 0
    v["sh"][:, 1] = -1   # SH_NEXT
    v["shobj"][:] = -1
    v["pcs"][:] = -1
    v["barn"][:, [0, 2]] = -1  # B_FULL_HEAD, B_EMPTY_HEAD
    v["lo"][:] = -1
    v["g"][G_FREE_HEAD] = -1
    v["g"][G_SHEAF_FREE_HEAD] = -1
    if sheaves:  # init_percpu_sheaves(): an empty main per CPU (made with the cache: not counted)
        for cpu in range(ncpu):
            sheaf = int(v["g"][G_SHEAF_NEXT_NEW])
            v["g"][G_SHEAF_NEXT_NEW] += 1
            v["pcs"][cpu, 0] = sheaf
            v["sh"][sheaf, 0] = 0
    return I, F


def view(I: np.ndarray, F: np.ndarray) -> dict:
    """Named NumPy views of a state (shared memory, not copies): ``cfg``, ``g``, ``stats``, ``sl``,
    ``onext``, ``nd``, ``cc``, ``sh``, ``shobj``, ``pcs``, ``barn``, ``lo``, ``cost``, ``acc``, ``lf``,
    ``irq``."""
    cfg = I[CFG:CFG + NCF]
    ncpu, nnodes = int(cfg[CF_NCPU]), int(cfg[CF_NNODES])
    max_slabs, max_sheaves = int(cfg[CF_MAX_SLABS]), int(cfg[CF_MAX_SHEAVES])
    cap = max(int(cfg[CF_CAP]), 1)
    objs = int(cfg[CF_OBJS])

    def seg(h, rows, cols):
        o = int(I[h])
        return I[o:o + rows * cols].reshape(rows, cols)

    return {
        "cfg": cfg, "g": I[G:G + NG], "stats": I[ST:ST + _st.N_STATS],
        "sl": seg(H_SL, max_slabs + 1, NSL), "onext": I[int(I[H_ONEXT]):int(I[H_ONEXT]) + (max_slabs + 1) * objs],
        "nd": seg(H_ND, nnodes, NND), "cc": seg(H_CC, ncpu, NCC), "sh": seg(H_SH, max_sheaves + 1, NSH),
        "shobj": seg(H_SHOBJ, max_sheaves + 1, cap), "pcs": seg(H_PCS, ncpu, NPCS), "barn": seg(H_BARN, nnodes, NB),
        "lo": I[int(I[H_LO]):int(I[H_LO]) + 2 * nnodes],
        "cost": F[:NCOST], "acc": F[AC:AC + NAC], "lf": F[int(I[H_LF]):int(I[H_LF]) + 2 * nnodes],
        "irq": F[int(I[H_IRQ]):int(I[H_IRQ]) + ncpu * NIQ].reshape(ncpu, NIQ),
    }


@njit(cache=True, _nrt=False, inline='always')
def node_of_cpu(I, cpu):
    """``numa_mem_id()`` of ``cpu``: CPUs are numbered node by node, ``cpus_per_node`` each."""
    if I[CFG + CF_NNODES] == 1:
        return 0
    return cpu // I[CFG + CF_CPUS_PER_NODE]


@njit(cache=True, _nrt=False, inline='always')
def slb(I, slab):
    """Offset of ``slab``'s row in ``I`` (add an ``SL_*`` column)."""
    return I[H_SL] + slab * NSL


@njit(cache=True, _nrt=False, inline='always')
def ndb(I, node):
    """Offset of ``node``'s row in ``I`` (add an ``ND_*`` column)."""
    return I[H_ND] + node * NND


@njit(cache=True, _nrt=False, inline='always')
def onext_at(I, obj):
    """Offset of object ``obj``'s free pointer in ``I``."""
    return I[H_ONEXT] + obj


@njit(cache=True, _nrt=False, inline='always')
def slab_of(I, obj):
    return obj // I[CFG + CF_OBJS]


# ------------------------------------------------------------------------------------------------
# Shared locks (the clocks of allocsim.kernel.sim, kept in F)

@njit(cache=True, _nrt=False)
def spin_lock_irqsave(I, F, lock, kind, cpu, t):
    """``spin_lock_irqsave()`` of a shared lock (``list_lock`` or a barn lock): ``irq_save_restore``
    first (interrupts are disabled before spinning and restored after the unlock, so that cost does not
    hold the lock), then :func:`allocsim.kernel.sim.lock_acquire` — wait until the lock is free, pay a
    cache-line transfer if another CPU held it last — and ``spin_lock_pair`` (the atomic acquire and the
    release, charged here) inside the critical section. Waiting and transfers are added up per kind."""
    t += F[C_IRQSAVE]
    n = 2 * I[CFG + CF_NNODES]
    t, waited, transferred = _lock_acquire(F[I[H_LF]:I[H_LF] + n], I[I[H_LO]:I[H_LO] + n], lock, cpu, t, F[C_XFER])
    if kind == LOCK_LIST:
        F[AC + AC_WAIT_LIST] += waited
        F[AC + AC_XFER_LIST] += transferred
        F[AC + AC_TAKEN_LIST] += 1.0
    else:
        F[AC + AC_WAIT_BARN] += waited
        F[AC + AC_XFER_BARN] += transferred
        F[AC + AC_TAKEN_BARN] += 1.0
    return t + F[C_SPIN]


@njit(cache=True, _nrt=False)
def spin_unlock_irqrestore(I, F, lock, cpu, t):
    """:func:`allocsim.kernel.sim.lock_release`: later acquirers wait until ``t`` (its cost was charged with
    the lock)."""
    n = 2 * I[CFG + CF_NNODES]
    _lock_release(F[I[H_LF]:I[H_LF] + n], I[I[H_LO]:I[H_LO] + n], lock, cpu, t)
    return t


@njit(cache=True, _nrt=False)
def list_lock(I, F, node, cpu, t):
    return spin_lock_irqsave(I, F, node, LOCK_LIST, cpu, t)


@njit(cache=True, _nrt=False)
def list_unlock(I, F, node, cpu, t):
    return spin_unlock_irqrestore(I, F, node, cpu, t)


# ------------------------------------------------------------------------------------------------
# Slabs and partial lists

@njit(cache=True, _nrt=False)
def take_number(I, g_head, g_next, limit, err, seg, width, next_col):
    """A row number for a new slab or sheaf (not kernel state): the most recently released one, linked
    through column ``next_col`` of segment ``seg`` (rows of ``width``), else the next never used; at
    ``limit`` the error bit ``err`` is set and the spare row ``limit`` is returned."""
    n = I[G + g_head]
    if n >= 0:
        I[G + g_head] = I[I[seg] + n * width + next_col]
        return n
    n = I[G + g_next]
    if n >= limit:
        I[G + G_ERR] |= err
        return limit  # the spare row absorbs the rest of this event
    I[G + g_next] += 1
    return n


@njit(cache=True, _nrt=False)
def new_slab(I, F, node, t):
    """``new_slab()`` → ``allocate_slab()``: a slab from the page allocator on ``node`` with every
    object on its freelist in address order, ``inuse = 0``. Charges half of ``page_alloc_free`` and one
    ``l1_hit`` per object (``set_freepointer()`` while building the freelist). Bumps ``nr_slabs``.
    Returns ``(slab, t)``."""
    slab = take_number(I, G_FREE_HEAD, G_NEXT_NEW, I[CFG + CF_MAX_SLABS], ERR_SLABS, H_SL, NSL, SL_NEXT)
    objs = I[CFG + CF_OBJS]
    base = slab * objs
    on = I[H_ONEXT]
    for i in range(objs - 1):
        I[on + base + i] = base + i + 1
    I[on + base + objs - 1] = -1
    b = slb(I, slab)
    I[b + SL_FREELIST] = base
    I[b + SL_INUSE] = 0
    I[b + SL_FROZEN] = 0
    I[b + SL_WHERE] = W_NONE
    I[b + SL_CPU] = -1
    I[b + SL_NODE] = node
    I[b + SL_PREV] = -1
    I[b + SL_NEXT] = -1
    I[ndb(I, node) + ND_NR_SLABS] += 1
    return slab, t + 0.5 * F[C_PAGE] + objs * F[C_L1]


@njit(cache=True, _nrt=False)
def discard_slab(I, F, slab, t):
    """``discard_slab()`` → ``free_slab()``: the slab's pages go back to the page allocator (half of
    ``page_alloc_free``), ``nr_slabs`` drops (``free_slab``), the slab number returns to the pool."""
    b = slb(I, slab)
    I[ndb(I, I[b + SL_NODE]) + ND_NR_SLABS] -= 1
    I[b + SL_WHERE] = W_POOL
    I[b + SL_FREELIST] = -1
    I[b + SL_INUSE] = 0
    I[b + SL_FROZEN] = 0
    I[b + SL_CPU] = -1
    I[b + SL_PREV] = -1
    if slab < I[CFG + CF_MAX_SLABS]:
        I[b + SL_NEXT] = I[G + G_FREE_HEAD]
        I[G + G_FREE_HEAD] = slab
    I[ST + _st.S_FREE_SLAB] += 1
    return t + 0.5 * F[C_PAGE]


@njit(cache=True, _nrt=False)
def add_partial(I, slab, tail):
    """``add_partial(n, slab, DEACTIVATE_TO_TAIL / _HEAD)``: link ``slab`` into its node's partial
    list (the caller holds ``list_lock`` and charges one ``l1_hit``)."""
    b = slb(I, slab)
    n = ndb(I, I[b + SL_NODE])
    I[n + ND_NR_PARTIAL] += 1
    I[b + SL_WHERE] = W_NODE_PARTIAL
    I[b + SL_CPU] = -1
    if I[n + ND_HEAD] < 0:
        I[b + SL_PREV] = -1
        I[b + SL_NEXT] = -1
        I[n + ND_HEAD] = slab
        I[n + ND_TAIL] = slab
    elif tail:
        last = I[n + ND_TAIL]
        I[b + SL_PREV] = last
        I[b + SL_NEXT] = -1
        I[slb(I, last) + SL_NEXT] = slab
        I[n + ND_TAIL] = slab
    else:
        first = I[n + ND_HEAD]
        I[b + SL_PREV] = -1
        I[b + SL_NEXT] = first
        I[slb(I, first) + SL_PREV] = slab
        I[n + ND_HEAD] = slab


@njit(cache=True, _nrt=False)
def remove_partial(I, slab):
    """``remove_partial()``: unlink ``slab`` from its node's partial list (the caller holds
    ``list_lock``)."""
    b = slb(I, slab)
    n = ndb(I, I[b + SL_NODE])
    p = I[b + SL_PREV]
    q = I[b + SL_NEXT]
    if p >= 0:
        I[slb(I, p) + SL_NEXT] = q
    else:
        I[n + ND_HEAD] = q
    if q >= 0:
        I[slb(I, q) + SL_PREV] = p
    else:
        I[n + ND_TAIL] = p
    I[b + SL_PREV] = -1
    I[b + SL_NEXT] = -1
    I[b + SL_WHERE] = W_NONE
    I[n + ND_NR_PARTIAL] -= 1


@njit(cache=True, _nrt=False)
def build_detached_freelist(I, p, size):
    """Port of ``build_detached_freelist()`` (``__kmem_cache_free_bulk()``, 6.19 and 7.0): take
    ``I[p + size - 1]``, then walk down the array at ``I[p:]`` collecting every object of the same slab
    into one chain (linked through the free pointers, newest first), compacting the others to the
    front, and stopping after 3 consecutive objects of other slabs (``lookahead = 3``). Returns
    ``(remaining, slab, head, tail, cnt)``; ``I[p:p + remaining]`` still has to be freed."""
    on = I[H_ONEXT]
    objs = I[CFG + CF_OBJS]
    lookahead = 3
    size -= 1
    obj = I[p + size]
    slab = obj // objs
    tail = obj
    head = obj
    cnt = 1
    I[on + obj] = -1
    same = size
    while size > 0:
        size -= 1
        obj = I[p + size]
        if obj // objs == slab:
            I[on + obj] = head
            head = obj
            cnt += 1
            same -= 1
            if size != same:
                tmp = I[p + size]
                I[p + size] = I[p + same]
                I[p + same] = tmp
            continue
        lookahead -= 1
        if lookahead == 0:
            break
    return same, slab, head, tail, cnt


# ------------------------------------------------------------------------------------------------
# 7.0: the slab layer without a cpu slab (kernel.md §2.5)

@njit(cache=True, _nrt=False)
def discard_empty_slab(I, F, slab, node, on_list, cpu, t):
    """The ``slab_empty:`` tail of ``__slab_free()`` (6.19 and 7.0), ``list_lock`` held: take the slab
    off the partial list if it is on it (``l1_hit``, ``free_remove_partial``), unlock, discard it."""
    if on_list:
        remove_partial(I, slab)
        t += F[C_L1]
        I[ST + _st.S_FREE_REMOVE_PARTIAL] += 1
    t = list_unlock(I, F, node, cpu, t)
    return discard_slab(I, F, slab, t)


@njit(cache=True, _nrt=False)
def slab_free_70(I, F, slab, head, tail, cnt, cpu, t):
    """``__slab_free()`` of v7.0: push the chain ``head..tail`` (``cnt`` objects, linked through their
    free pointers) onto ``slab->freelist`` with one ``LOCK cmpxchg16b`` (``locked_cmpxchg16b``). Takes
    ``list_lock`` only when the slab was full (it goes to the tail of the partial list,
    ``free_add_partial``) or becomes empty (discarded when ``nr_partial >= min_partial``,
    ``free_remove_partial`` + ``free_slab``). No frozen slabs, no cpu partial list. Counts
    ``free_slowpath``. Returns ``(t, path)``: ``free_partial`` (cmpxchg only) or ``free_list_lock``.

    In the kernel a slab with free objects may be off the partial list for a moment (detached by a
    racing refill); here calls do not overlap, so such a slab is always on the list."""
    I[ST + _st.S_FREE_SLOWPATH] += 1
    b = slb(I, slab)
    prior = I[b + SL_FREELIST]
    new_inuse = I[b + SL_INUSE] - cnt
    node = I[b + SL_NODE]
    need_lock = new_inuse == 0 or prior < 0
    if need_lock:
        t = list_lock(I, F, node, cpu, t)
    I[onext_at(I, tail)] = prior
    I[b + SL_FREELIST] = head
    I[b + SL_INUSE] = new_inuse
    t += F[C_LOCKED_CX]
    if not need_lock:
        return t, _st.P_FREE_PARTIAL
    if new_inuse == 0 and I[ndb(I, node) + ND_NR_PARTIAL] >= I[CFG + CF_MIN_PARTIAL]:
        return discard_empty_slab(I, F, slab, node, prior >= 0, cpu, t), _st.P_FREE_LIST_LOCK
    if prior < 0:
        add_partial(I, slab, True)
        t += F[C_L1]
        I[ST + _st.S_FREE_ADD_PARTIAL] += 1
    t = list_unlock(I, F, node, cpu, t)
    return t, _st.P_FREE_LIST_LOCK


@njit(cache=True, _nrt=False)
def free_bulk_70(I, F, p, size, cpu, t):
    """``__kmem_cache_free_bulk()`` of v7.0 on the ``size`` objects at ``I[p:]``:
    ``build_detached_freelist()`` groups, each freed with ``__slab_free()``. Charges ``bulk_object``
    per object on top of each group's ``__slab_free``."""
    t += size * F[C_BULK]
    while size > 0:
        size, slab, head, tail, cnt = build_detached_freelist(I, p, size)
        t, _ = slab_free_70(I, F, slab, head, tail, cnt, cpu, t)
    return t


@njit(cache=True, _nrt=False)
def refill_objects_node(I, F, node, dst, lo_min, hi_max, cpu, t):
    """``__refill_objects_node()`` → ``get_partial_node_bulk()``: a racy ``nr_partial`` check
    (``l1_hit``), then under ``list_lock`` detach whole slabs from the head of the partial list until
    their free objects reach ``lo_min`` without going over ``hi_max`` (``l1_hit`` each; the kernel
    ``list_add()``s them to a private list, so they are emptied last-detached first). Each slab's
    freelist is taken with ``get_freelist_nofreeze()`` (``LOCK cmpxchg16b``: ``inuse = objects``, not
    frozen); ``bulk_object`` per object written to ``I[dst:]``; a surplus goes back with
    ``__slab_free()`` (``l1_hit`` per object walked to find its tail). Slabs left over (the
    last-detached slab alone can cover the request) go back to the head of the partial list under
    ``list_lock``, or are discarded when empty and ``nr_partial >= min_partial``. Returns
    ``(refilled, t)``."""
    n = ndb(I, node)
    t += F[C_L1]
    if I[n + ND_NR_PARTIAL] == 0:
        return 0, t
    t = list_lock(I, F, node, cpu, t)
    objs = I[CFG + CF_OBJS]
    on = I[H_ONEXT]
    total_free = 0
    private = -1  # head of the private list (linked through SL_NEXT, newest first)
    slab = I[n + ND_HEAD]
    while slab >= 0:
        nxt = I[slb(I, slab) + SL_NEXT]
        slab_free = objs - I[slb(I, slab) + SL_INUSE]
        if total_free >= lo_min and total_free + slab_free > hi_max:
            break
        remove_partial(I, slab)
        t += F[C_L1]
        I[slb(I, slab) + SL_NEXT] = private
        private = slab
        total_free += slab_free
        if total_free >= hi_max:
            break
        slab = nxt
    t = list_unlock(I, F, node, cpu, t)
    refilled = 0
    slab = private
    while slab >= 0:
        b = slb(I, slab)
        nxt = I[b + SL_NEXT]
        I[b + SL_NEXT] = -1
        obj = I[b + SL_FREELIST]  # get_freelist_nofreeze()
        I[b + SL_FREELIST] = -1
        I[b + SL_INUSE] = objs
        t += F[C_LOCKED_CX]
        while obj >= 0 and refilled < hi_max:
            I[dst + refilled] = obj
            obj = I[on + obj]
            refilled += 1
            t += F[C_BULK]
        if obj >= 0:
            head = obj
            tail = obj
            cnt = 0
            while obj >= 0:
                tail = obj
                cnt += 1
                obj = I[on + obj]
                t += F[C_L1]
            t, _ = slab_free_70(I, F, slab, head, tail, cnt, cpu, t)
        slab = nxt
        if refilled >= hi_max:
            break
    if slab >= 0:
        t = list_lock(I, F, node, cpu, t)
        discard = -1
        while slab >= 0:
            b = slb(I, slab)
            nxt = I[b + SL_NEXT]
            t += F[C_L1]
            if I[b + SL_INUSE] == 0 and I[n + ND_NR_PARTIAL] >= I[CFG + CF_MIN_PARTIAL]:
                I[b + SL_NEXT] = discard
                discard = slab
            else:
                add_partial(I, slab, False)
            slab = nxt
        t = list_unlock(I, F, node, cpu, t)
        while discard >= 0:
            nxt = I[slb(I, discard) + SL_NEXT]
            t = discard_slab(I, F, discard, t)
            discard = nxt
    return refilled, t


@njit(cache=True, _nrt=False)
def alloc_from_new_slab(I, F, slab, dst, count, cpu, t):
    """``alloc_from_new_slab()``: take up to ``count`` objects off a fresh slab into ``I[dst:]``
    (``bulk_object`` each); if objects remain, the slab goes to the head of the partial list under
    ``list_lock``. Returns ``(allocated, t)``."""
    b = slb(I, slab)
    on = I[H_ONEXT]
    allocated = 0
    obj = I[b + SL_FREELIST]
    while obj >= 0 and allocated < count:
        I[dst + allocated] = obj
        obj = I[on + obj]
        I[b + SL_INUSE] += 1
        allocated += 1
        t += F[C_BULK]
    I[b + SL_FREELIST] = obj
    if obj >= 0:
        node = I[b + SL_NODE]
        t = list_lock(I, F, node, cpu, t)
        add_partial(I, slab, False)
        t += F[C_L1]
        t = list_unlock(I, F, node, cpu, t)
    return allocated, t


@njit(cache=True, _nrt=False)
def refill_objects(I, F, dst, lo_min, hi_max, cpu, t):
    """``refill_objects()`` (v7.0) into ``I[dst:]``: the local node's partial list, then other nodes
    (``__refill_objects_any()``: skipped when ``get_cycles() % 1024 > remote_node_defrag_ratio`` — the
    CPU's clock stands in for the TSC — and only nodes with ``nr_partial > min_partial``, in node order
    after the local one), then new slabs (``alloc_slab``) until ``lo_min`` objects are there. Returns
    ``(refilled, t)``."""
    local = node_of_cpu(I, cpu)
    refilled, t = refill_objects_node(I, F, local, dst, lo_min, hi_max, cpu, t)
    if refilled >= lo_min:
        return refilled, t
    nn = I[CFG + CF_NNODES]
    if nn > 1 and not (np.int64(t) % 1024 > I[CFG + CF_DEFRAG_RATIO]):
        for k in range(1, nn):
            node = (local + k) % nn
            if I[ndb(I, node) + ND_NR_PARTIAL] <= I[CFG + CF_MIN_PARTIAL]:
                continue
            r, t = refill_objects_node(I, F, node, dst + refilled, lo_min - refilled, hi_max - refilled, cpu, t)
            refilled += r
            if refilled >= lo_min:
                return refilled, t
    while refilled < lo_min:
        slab, t = new_slab(I, F, local, t)
        I[ST + _st.S_ALLOC_SLAB] += 1
        r, t = alloc_from_new_slab(I, F, slab, dst + refilled, hi_max - refilled, cpu, t)
        refilled += r
    return refilled, t


@njit(cache=True, _nrt=False)
def alloc_single_70(I, F, cpu, t):
    """``___slab_alloc()`` of v7.0 for one object (no cpu slab): ``get_from_partial()`` takes one
    object from the first slab on the local node's partial list under ``list_lock`` with a
    ``LOCK cmpxchg16b`` (a slab that becomes full leaves the list); else a new slab gives one object
    and goes on the partial list. Counts ``alloc_slowpath`` (and ``alloc_slab``). Returns
    ``(obj, t, path)``. Simplifies: other nodes' partial lists are not tried."""
    I[ST + _st.S_ALLOC_SLOWPATH] += 1
    node = node_of_cpu(I, cpu)
    n = ndb(I, node)
    t += F[C_L1]
    if I[n + ND_NR_PARTIAL] > 0:
        t = list_lock(I, F, node, cpu, t)
        slab = I[n + ND_HEAD]
        b = slb(I, slab)
        obj = I[b + SL_FREELIST]
        I[b + SL_FREELIST] = I[onext_at(I, obj)]
        I[b + SL_INUSE] += 1
        t += F[C_LOCKED_CX]
        if I[b + SL_FREELIST] < 0:
            remove_partial(I, slab)
            t += F[C_L1]
        t = list_unlock(I, F, node, cpu, t)
        return obj, t, _st.P_ALLOC_SLAB_PARTIAL
    slab, t = new_slab(I, F, node, t)
    I[ST + _st.S_ALLOC_SLAB] += 1
    b = slb(I, slab)
    obj = I[b + SL_FREELIST]
    I[b + SL_FREELIST] = I[onext_at(I, obj)]
    I[b + SL_INUSE] = 1
    t += F[C_BULK]
    if I[b + SL_FREELIST] >= 0:
        t = list_lock(I, F, node, cpu, t)
        add_partial(I, slab, False)
        t += F[C_L1]
        t = list_unlock(I, F, node, cpu, t)
    return obj, t, _st.P_ALLOC_SLAB_NEW

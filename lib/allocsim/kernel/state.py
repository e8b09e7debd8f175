"""The state every SLUB model works on, the locks it simulates, and the numba on-disk cache of the models.

Lock order (the simulated locks, what each protects, and how they nest as the models take them; in the
style of the header comment of ``mm/slub.c``)::

    1. cpu_sheaves->lock   (local_trylock_t, per CPU; struct slub_percpu_sheaves)
    2. barn->lock          (spinlock, per node; struct node_barn)
    3. node->list_lock     (spinlock, per node; struct kmem_cache_node)
    4. cpu_slab->lock      (local_lock, per CPU; struct kmem_cache_cpu, SLUB <= 6.19 only)

  1. ``cpu_sheaves->lock`` (:mod:`allocsim.kernel.sheaves`, ``pcs_lock`` / ``pcs_unlock``) protects a
     CPU's ``main`` and ``spare`` sheaf pointers and the objects in them. Taken with
     ``local_trylock()``: it never waits; an interrupt that finds it held (the interrupted task holds
     it) fails and takes the slab path instead. Not a shared lock: no clock, no cache-line transfer,
     only the steps of ``local_trylock`` (``data/kernel/steps.yaml``). The barn lock may be taken inside it
     (``barn_replace_empty_sheaf()``, ``barn_get_empty_sheaf()``, ``barn_replace_full_sheaf()``,
     ``barn_put_*_sheaf()`` under ``__pcs_install_empty_sheaf()``). It is dropped before any slab is
     touched (refill, flush): the models never take ``list_lock`` while holding it.
  2. ``barn->lock`` (:mod:`allocsim.kernel.barn`) protects the barn's full and empty sheaf lists and
     ``nr_full`` / ``nr_empty`` (the counts are also read racily, outside it). Innermost of the sheaf
     locks: nothing is taken inside it. A shared lock with a clock: lock ``nnodes + n`` of the lock
     arrays below.
  3. ``node->list_lock`` (:mod:`allocsim.kernel.slab_pages`) protects a node's partial list and
     ``nr_partial`` (``nr_slabs`` is atomic in the kernel and counted under it here). A shared lock
     with a clock: lock ``n``. Taken with no sheaf lock held.
  4. ``cpu_slab->lock`` (:mod:`allocsim.kernel.cpu_slab`, 6.18/6.19): ``local_lock_irqsave()`` around
     the cpu slab's slow paths and the cpu partial list (``put_cpu_partial()``); charged as
     ``irq_save_restore``, no clock (per CPU, and a call runs to completion). ``get_partial_node()``
     calls ``put_cpu_partial()`` with ``list_lock`` held, so it nests inside 3. The cpu slab's fast paths
     take no lock: ``c->freelist`` and ``c->tid`` change together with one ``this_cpu_try_cmpxchg128``
     (``percpu_cmpxchg16b``), which in simulated time never fails.

Sources: v7.0 ``mm/slub.c``, the "Lock order" comment at the head of the file (``slab_mutex``, then
``cpu_sheaves->lock``, ``barn->lock``, ``node->list_lock``; then ``slab_lock(slab)`` and
``object_map_lock``, which the models do not need); v6.19 ``mm/slub.c`` ``get_partial_node()`` →
``put_cpu_partial()`` for 4 inside 3; "slab: determine barn status racily outside of lock" (merged for
v6.18 with commit 2d517aa09bbc "slab: add opt-in caching layer of percpu sheaves") for the racy barn reads.

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

``F`` holds the cost vector of :mod:`allocsim.facts.costs` at offset 0 (so ``F[C_L1]`` is ``l1_hit``), then
the hot paths' step sums (``SEG_*``: :func:`allocsim.facts.steps.slub_vector`, what each entry point, hook block,
sheaf hit and cpu-slab fast path executes, summed from ``data/kernel/steps.yaml``), the
accumulators ``AC_*`` (lock waiting, transfers), the locks' free-at clocks and the per-CPU interrupt
placement bookkeeping of :mod:`allocsim.kernel.sheaves`.

Capacity. Slab and sheaf tables have a fixed number of rows plus one spare row; when a run needs more,
``g[G_ERR]`` is set, the spare row absorbs the rest of the event, and the caller reruns the program
with larger tables (:func:`allocsim.kernel.slub.run`). Results never come from a run that overflowed.

The numba cache. The models are compiled with ``cache=True``; :func:`refresh_numba_cache`, which the
model entry points call once per process before their first compilation, keeps that cache sound.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from pathlib import Path

import numpy as np

from allocsim.facts import costs as _costs
from allocsim.kernel import stats as _st

# ------------------------------------------------------------------------------------------------
# The numba on-disk cache

#: Groups of model modules whose jitted functions call into one another, with the sources their
#: machine code depends on. numba's ``cache=True`` keys a function's cache on its own source file only,
#: so a caller cached in ``slub.py`` would keep running an old copy of a callee edited in ``sheaves.py``;
#: a digest of all the sources of a group, kept beside the cache files, catches that.
CACHE_GROUPS = {
    "slub-models": (("memory", "slab_pages", "cpu_slab", "barn", "sheaves", "slub"),
                    ("state", "cache", "memory", "slab_pages", "cpu_slab", "barn", "sheaves", "slub", "sim", "stats",
                     "program", "../facts/costs", "../facts/steps")),
    "pcpu-list": (("pcpu_list",), ("pcpu_list", "cache", "memory", "sim", "program")),
}
_HERE = Path(__file__).resolve().parent
_refreshed = False


def cache_dir() -> Path:
    """Where numba keeps the machine code of the modules in this folder: ``NUMBA_CACHE_DIR`` (numba's
    ``UserProvidedCacheLocator``: a sub-folder named after this folder) when it is set, else the
    ``__pycache__`` beside the sources (``InTreeCacheLocator``)."""
    from numba.core import config
    from numba.core.caching import _CacheLocator

    if config.CACHE_DIR:
        return Path(config.CACHE_DIR) / _CacheLocator.get_suitable_cache_subpath(str(_HERE / "state.py"))
    return _HERE / "__pycache__"


def _damaged(path: Path) -> bool:
    """Whether numba would fail to read a cache file. An index (``.nbi``) is read as numba reads it
    (``IndexDataCacheFile._load_index``: a pickled numba version, then a pickled ``(stamp, overloads)``);
    a data file (``.nbc``, one pickle) must at least be a whole pickle: the protocol mark first and the
    STOP opcode last (unpickling every data file would cost more than the check is worth)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if path.suffix == ".nbc":
        return not (data[:1] == b"\x80" and data[-1:] == b".")
    try:
        f = io.BytesIO(data)
        version = pickle.load(f)
        if not isinstance(version, str):
            return True
        import numba

        if version != numba.__version__:
            return False  # numba ignores another version's index without unpickling the rest
        stamp, overloads = pickle.loads(f.read())
        return not isinstance(overloads, dict)
    except Exception:  # noqa: BLE001 — UnpicklingError, EOFError, ValueError …: whatever garbage makes pickle raise
        return True


def _module_of(path: Path) -> str:
    return path.name.split(".")[0]


def refresh_numba_cache(force: bool = False) -> None:
    """Make the models' numba cache safe to load; runs once per process (``force`` repeats it).

    1. Damaged cache files (garbage or a truncated write in a ``.nbi`` index or ``.nbc`` data file,
       which would make every later run fail with ``UnpicklingError`` / ``EOFError``) are deleted, and
       one line on stderr says so; numba then compiles those functions again and rewrites the files.
    2. When any source of a group in :data:`CACHE_GROUPS` changed since the cache was written, the
       group's cached machine code is dropped.

    Errors of the file system (a read-only checkout) are ignored: numba then compiles in memory."""
    global _refreshed
    if _refreshed and not force:
        return
    _refreshed = True
    where = cache_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    kernel_modules = {p.stem for p in _HERE.glob("*.py")}
    try:
        files = [p for p in where.glob("*.nb[ic]") if _module_of(p) in kernel_modules]
    except OSError:
        return
    damaged = [p for p in files if _damaged(p)]
    removed = 0
    for p in damaged:
        try:
            p.unlink()
            removed += 1
        except OSError:
            pass
    if damaged:
        mods = sorted({_module_of(p) for p in damaged})
        print(f"allocsim: discarded {removed} damaged numba cache file(s) of {', '.join(mods)} in {where}; "
              f"those functions are compiled again", file=sys.stderr)
    for group, (modules, sources) in CACHE_GROUPS.items():
        digest = hashlib.sha256()
        try:
            for name in sources:
                digest.update((_HERE / f"{name}.py").read_bytes())
        except OSError:
            continue
        stamp = where / f"{group}.sha256"
        try:
            if stamp.exists() and stamp.read_text() == digest.hexdigest():
                continue
            for f in where.glob("*.nb[ic]"):
                if _module_of(f) in modules:
                    f.unlink(missing_ok=True)
            stamp.write_text(digest.hexdigest())
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------
# The state arrays

# --- cost indices into F (the cost vector sits at F[0:len(KEYS)])
C_L1 = _costs.C_L1_HIT
C_SPIN = _costs.C_SPIN_LOCK_PAIR
C_SPIN_IRQSAVE = _costs.C_SPIN_LOCK_IRQSAVE_PAIR
C_IRQSAVE = _costs.C_IRQ_SAVE_RESTORE
C_XFER = _costs.C_CACHELINE_TRANSFER
C_LOCKED_CX = _costs.C_LOCKED_CMPXCHG16B
C_PAGE = _costs.C_PAGE_ALLOC_FREE
C_BULK = _costs.C_BULK_OBJECT
C_CALL = _costs.C_FUNCTION_CALL
NCOST = len(_costs.KEYS)
# --- the hot-path step sums (cost model v2: allocsim.facts.steps.SLUB_SEGMENTS, in that order) at F[SEG + k]
SEG = NCOST
(SEG_ALLOC_ENTRY, SEG_FREE_ENTRY, SEG_PCS_FREE_CHECK, SEG_LOCK, SEG_PCS_ALLOC, SEG_PCS_FREE, SEG_CS_ALLOC,
 SEG_CS_FREE, SEG_SHEAF_KMALLOC) = range(SEG, SEG + 9)
NSEG = 9
#: the same segments as rows of the access table (allocsim.kernel.memory.touch)
(K_ALLOC_ENTRY, K_FREE_ENTRY, K_PCS_FREE_CHECK, K_LOCK, K_PCS_ALLOC, K_PCS_FREE, K_CS_ALLOC, K_CS_FREE,
 K_SHEAF_KMALLOC) = range(NSEG)

# --- header of I: offsets of the variable-size segments
H_SL, H_ONEXT, H_ND, H_CC, H_SH, H_SHOBJ, H_PCS, H_BARN, H_LO, H_LF, H_IRQ, H_SCRATCH, H_ACC, H_MEM, H_MEMF = range(15)
NH = 15
#: room for the on-stack ``void *objects[PCS_BATCH_MAX]`` of ``sheaf_flush_main()``
SCRATCH = 32

# --- configuration (I[CFG + CF_*])
(CF_OBJS, CF_MIN_PARTIAL, CF_CPU_PARTIAL_SLABS, CF_CAP, CF_VERSION, CF_NNODES, CF_CPUS_PER_NODE, CF_SHEAVES,
 CF_NOWAIT_FAILS, CF_MAX_FULL, CF_DEFRAG_RATIO, CF_MAX_SLABS, CF_MAX_SHEAVES, CF_NCPU, CF_HIER, CF_SIZE,
 CF_SLAB_BYTES, CF_FP_OFFSET, CF_SHEAF_HDR, CF_SHEAF_LINES, CF_ACC_ROWS) = range(21)
NCF = 21
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
AC = SEG + NSEG
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


#: words of a host cache line (64 bytes): the memory hierarchy's blocks start at multiples of it
LINE_WORDS = 8


def line_start(words: int) -> int:
    """The first offset from ``words`` on (in int64 words) that starts a host cache line."""
    return -(-words // LINE_WORDS) * LINE_WORDS


def aligned_empty(n: int) -> np.ndarray:
    """``n`` int64 words (uninitialized) whose first word starts a 64-byte host cache line. numpy's allocator
    gives 16-byte alignment; the hierarchy's sets (8 tags of an L1 or L2 set, 16 of an LLC set) are laid out to
    start host lines (:func:`allocsim.kernel.cache.layout`), so a set's tag scan reads one or two host lines
    instead of two or three."""
    raw = np.empty(n + LINE_WORDS, np.int64)
    skip = (-raw.ctypes.data // 8) % LINE_WORDS
    return raw[skip:skip + n]


def zeros_except(n: int, lazy: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``n`` int64 words, zero except ``[lazy[0], lazy[1])``, left as the allocator gives them: the memory
    hierarchy's LLC slots, zeroed one set at a time as they are used (``allocsim.kernel.cache.lazy_range``). A
    fresh ``np.zeros`` of the LLC's tens of megabytes is a memset on every run once the C allocator reuses the
    memory, which cost more than a whole short run."""
    a, b = lazy
    I = aligned_empty(n)
    I[:a] = 0
    I[b:] = 0
    return I


def new_state(ncpu: int, nnodes: int, cpus_per_node: int, objs_per_slab: int, min_partial: int,
              cpu_partial_slabs: int, capacity: int, version: int, sheaves: bool, max_slabs: int, max_sheaves: int,
              cost: np.ndarray, max_full: int = 10, nowait_fails: bool = False,
              access: np.ndarray | None = None, mem_words: int = 0, mem_floats: int = 0,
              mem_lazy: tuple[int, int] = (0, 0)):
    """A fresh ``(I, F)``: no slabs, empty partial lists, empty barns, every CPU with an empty main
    sheaf (``init_percpu_sheaves()``) when ``sheaves``. ``access`` (the segments' memory accesses as
    :func:`allocsim.kernel.memory.resolve_rows` gives them, ``[NSEG, rows, 3]``) and ``mem_words``/``mem_floats`` (room for the memory
    hierarchy, which :func:`allocsim.kernel.memory.attach` writes) are reserved when the hierarchy is on;
    ``mem_lazy``: the words of that room (relative to its start) that need not be zero."""
    cap = max(capacity, 1)
    acc = np.full((NSEG, 1, 3), -1, np.int64) if access is None else access
    sizes = [
        (H_SL, (max_slabs + 1) * NSL), (H_ONEXT, (max_slabs + 1) * objs_per_slab), (H_ND, nnodes * NND),
        (H_CC, ncpu * NCC), (H_SH, (max_sheaves + 1) * NSH), (H_SHOBJ, (max_sheaves + 1) * cap),
        (H_PCS, ncpu * NPCS), (H_BARN, nnodes * NB), (H_LO, 2 * nnodes), (H_SCRATCH, SCRATCH),
        (H_ACC, acc.size), (H_MEM, mem_words),
    ]
    off = FIXED_I
    header = {}
    for h, n in sizes:
        if h == H_MEM:  # the hierarchy starts a host cache line (its blocks are laid out relative to it)
            off = line_start(off)
        header[h] = off
        off += n
    m = header[H_MEM]
    I = zeros_except(off, (m + mem_lazy[0], m + mem_lazy[1]) if mem_lazy[1] > mem_lazy[0] else (0, 0))
    for h, o in header.items():
        I[h] = o
    F = np.zeros(FIXED_F + 2 * nnodes + ncpu * NIQ + mem_floats, np.float64)
    I[I[H_ACC]:I[H_ACC] + acc.size] = acc.ravel()
    I[H_MEMF] = FIXED_F + 2 * nnodes + ncpu * NIQ
    if len(cost) != NCOST + NSEG:
        raise ValueError(f"new_state needs the cost vector and the {NSEG} step sums ({NCOST + NSEG} values), not {len(cost)}")
    F[:NCOST + NSEG] = cost
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
    cfg[CF_ACC_ROWS] = acc.shape[1]  # rows per segment of the access table
    cfg[CF_MAX_FULL] = max_full
    cfg[CF_DEFRAG_RATIO] = REMOTE_NODE_DEFRAG_RATIO
    cfg[CF_MAX_SLABS] = max_slabs
    cfg[CF_MAX_SHEAVES] = max_sheaves
    cfg[CF_NCPU] = ncpu
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
        "cost": F[:NCOST], "seg": F[SEG:SEG + NSEG], "acc": F[AC:AC + NAC], "lf": F[int(I[H_LF]):int(I[H_LF]) + 2 * nnodes],
        "irq": F[int(I[H_IRQ]):int(I[H_IRQ]) + ncpu * NIQ].reshape(ncpu, NIQ),
    }

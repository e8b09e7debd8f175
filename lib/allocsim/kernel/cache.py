"""The memory hierarchy: per simulated CPU a set-associative L1d and L2, one shared LLC per LLC domain, and a
coherence rule that makes a line written on one CPU cost a transfer when another CPU touches it.

Compiled (numba ``@njit(cache=True)``), all state in one flat int64 array and one float64 array, no Python
objects in the loop::

    from allocsim.facts import cpu
    from allocsim.kernel import cache
    CI, CF = cache.new_cache(ncpu=4, geometry=cpu.geometry(clock_ghz=3.0))
    cycles = cache.access(CI, CF, cpu, line, write)   # line = address >> 6, an int64 >= 0
    cache.counters(CI)                                 # per CPU: hits per level, transfers, invalidations

The functions ending in ``_at`` take the offsets of the hierarchy inside larger arrays (``access_at(I, o, F,
fo, …)``) so a model can keep it inside its own ``I``/``F`` state.

The model (parameters: ``data/kernel/cpu.yaml``, read by :mod:`allocsim.facts.cpu`)
------------------------------------------------------------------------------------
* **Levels.** Per CPU an L1d and an L2, per LLC domain (``cpus_per_llc`` consecutive CPUs) an LLC; every
  level is set-associative with true LRU, the set of line ``x`` is ``x mod sets``; an empty way is filled
  before the least recently used line is evicted. L1 ⊆ L2 (AMD's guide: the L2 is inclusive of L1) and
  L2 ⊆ LLC of the CPU's domain (an inclusive LLC, whose entries double as the domain's snoop filter: the
  CPUs holding the line, which of them holds it modified, and whether the domain's copy is dirty). Zen 3's
  L3 is a victim cache with shadow tags rather than inclusive; inclusion is the model's simplification.
  A level's LRU stamp moves when the access reaches that level (an L1 hit does not refresh the L2).
* **States.** A private (L1/L2) copy is *shared* (S) or *modified* (M); E is not kept separately: a write
  to an S copy that no other CPU holds costs nothing extra, as a silent E→M upgrade would.
* **Coherence.** At most one CPU holds a line M, and then no other CPU holds it. A write invalidates every
  other copy (other CPUs of the domain: their L1/L2; other domains: their LLC entry and their CPUs' copies).
  A read of a line another CPU holds M downgrades that copy to S. A read in another domain of a line dirty
  in domain ``d`` takes the data from ``d`` and leaves it clean there (written back).
* **Evictions.** Dropping a line from L2 drops it from L1 (inclusion) and clears the CPU from the LLC
  entry's sharers (an M copy is written back into the LLC: the entry stays dirty). Dropping a line from
  an LLC drops it from every private cache of the domain. Write-backs cost nothing here.
* **Empty ways.** A way is empty when its tag is 0. Emptying a way (an eviction, an invalidation) zeroes its tag
  alone: the other fields of an empty way are never read (a lookup matches tags, :func:`_victim` takes the first
  empty way before it compares stamps) until an install writes them all. So a miss stores only into the host
  cache lines it must read anyway.

Cost of one access: ``max(data, invalidate)`` cycles, where ``data`` is the latency of where the data came
from — kind ``L1``, ``L2``, ``LLC`` (hit), ``XSAME`` (from another CPU of the same LLC that held it M),
``XLLC`` / ``XNODE`` (from another LLC domain of the same / another node that held it dirty), ``MEM``
(memory, also when other domains hold clean copies) — and ``invalidate`` the transfer latency to the
farthest copy a write had to invalidate (``INV_SAME`` / ``INV_LLC`` / ``INV_NODE``; 0 when none).

Layout of ``CI`` (int64, at offset ``o``): the header ``H_*``, then one block per field of every level
(structure of arrays, so that a set's tags are contiguous): for L1 and L2 (``ncpu × sets × ways`` entries
each) tag = line + 1 (0 = empty), LRU stamp, state; entry ``(owner × sets + set) × ways + way`` of a level
is at the same index in each of its blocks; L2 keeps two words per entry, interleaved set by set (entry ``(owner ×
sets + set) × 2 × ways + way`` is the tag, + ways its stamp and state, ``stamp << 2 | state``). Then the LLC's set map (``nllc × llc_sets``: 0 = the set is
empty and has no storage yet, else its slot + 1), the counters (``ncpu × NCNT``), and last the LLC slots:
``nllc × llc_sets`` sets of ``5 × llc_ways`` words: a set's tags (way ``w``'s at ``slot × 5 × ways + w``), then
one record of ``NREC`` = 4 words per way (LRU stamp, sharer bit mask over the domain's CPUs, writer + 1 (0 =
none), dirty; way ``w``'s at + ways + 4 × w), so that a found entry's fields share one host cache line. A set gets the next free
slot, its tags zeroed, the first time a line is installed in it (:func:`_e3_alloc`), so a run pays for the LLC sets it
uses, not for the 32 MiB it models: the slot blocks (:func:`lazy_range`) need not be zero when the hierarchy
is created. Everything else starts at zero. ``CF`` (float64, at ``fo``): the seven latencies in cycles, in
kind order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from allocsim.facts.cpu import Geometry
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import state as _state

# header of CI: geometry, the clock (LRU stamps), block offsets (relative to o), last access
(H_NCPU, H_S1, H_W1, H_S2, H_W2, H_S3, H_W3, H_CPL, H_LPN, H_NLLC, H_CLOCK, H_CNT, H_LAST_KIND, H_LAST_INV,
 H_SIZE, H_M1, H_M2, H_M3, H_T1, H_R1, H_X1, H_T2, H_R2, H_X2, H_T3, H_R3, H_SH3, H_WR3, H_DT3, H_MAP3,
 H_NSLOT) = range(31)
NH = 31
S_SHARED, S_MOD = 1, 2
# kinds of access (where the data came from) = index of its latency in CF
K_L1, K_L2, K_LLC, K_XSAME, K_XLLC, K_XNODE, K_MEM = range(7)
KINDS = ("L1", "L2", "LLC", "XSAME", "XLLC", "XNODE", "MEM")
NK = 7
# invalidation classes (distance of the farthest copy a write invalidated)
INV_NONE, INV_SAME, INV_LLC, INV_NODE = 0, 1, 2, 3
INVS = ("none", "same-LLC", "cross-LLC", "cross-node")
# counters per CPU: NK kinds, then INV_SAME..INV_NODE
NCNT = NK + 3
COUNTER_NAMES = KINDS + ("INV_SAME", "INV_LLC", "INV_NODE")
NF = 7
#: The blocks of CI in order: (the header fields of its fields, entries per field as a function of the layout's
#: counts); the LLC slots last (:func:`lazy_range`). L1's fields are a block each (its tags of all CPUs, then
#: its stamps, its states); L2's are interleaved set by set (a set's tags, then its stamp-and-state words, then
#: the next set's): a miss reads and writes several fields of one set, and these then share a few host cache
#: lines and one page instead of one far-apart page per field. An LLC set is its tags, then one record per way
#: (stamp, sharers, writer, dirty: ``NREC`` words), so that the entry a miss finds has its four fields in one
#: host cache line.
_BLOCKS = (((H_T1,), "p1"), ((H_R1,), "p1"), ((H_X1,), "p1"), ((H_T2, H_R2), "p2"),
           ((H_MAP3,), "map"), ((H_CNT,), "cnt"),
           ((H_T3, H_R3, H_SH3, H_WR3, H_DT3), "l3"))
#: fields per set of the interleaved levels: L2 (tag, stamp, state), the LLC (tag, stamp, sharers, writer, dirty)
NF2, NF3 = 2, 5
#: An L2 entry's stamp and state share a word, ``stamp << X2_SHIFT | state`` (``H_X2`` is ``H_R2``): stamps are
#: distinct within a set, so the words order the ways as the stamps do, and an L2 hit or install writes one word.
X2_STATE, X2_SHIFT = 3, 2
#: words of an LLC way's record (its fields but the tag), and each field's place in it (``H_R3`` … ``H_DT3`` are
#: the offsets of way 0's fields in slot 0: field of way ``w`` of the set at ``b`` is ``I[o + I[o + H_SH3] + b +
#: NREC × w]``)
NREC = NF3 - 1


@lru_cache(maxsize=256)
def layout(ncpu: int, g: Geometry) -> dict:
    """Sizes and offsets (relative to the hierarchy's start) of every block of ``CI`` (memoized: read it, do not
    change it)."""
    nllc = -(-ncpu // g.cpus_per_llc)
    n = {"p1": ncpu * g.l1_sets * g.l1_ways, "p2": ncpu * g.l2_sets * g.l2_ways, "map": nllc * g.llc_sets,
         "cnt": ncpu * NCNT, "l3": nllc * g.llc_sets * g.llc_ways}
    ways = {"p1": g.l1_ways, "p2": g.l2_ways, "l3": g.llc_ways, "map": 0, "cnt": 0}
    off, at = {}, NH
    for fields, kind in _BLOCKS:
        at = _state.line_start(at)  # each block starts a host cache line
        for k, h in enumerate(fields):  # interleaved: field k of set s at s × fields × ways + k × ways
            off[h] = at + k * ways[kind] if kind != "l3" or k == 0 else at + ways[kind] + k - 1  # the LLC: records
        if kind == "p2":
            off[H_X2] = off[H_R2]  # the L2's state is in its stamp word (X2_SHIFT)
        at += n[kind] * len(fields)
    return {"nllc": nllc, "offsets": off, "size": at, "lazy": (off[H_T3], at)}


def lazy_range(ncpu: int, g: Geometry) -> tuple[int, int]:
    """The words of ``CI`` (relative to its start) that need not be zero when the hierarchy is created: the LLC
    slots, each set's tags zeroed when it is first used. The rest must be zero."""
    return layout(ncpu, g)["lazy"]



def size_of(ncpu: int, g: Geometry) -> int:
    """int64 words of ``CI`` a hierarchy of ``ncpu`` CPUs takes (to embed it in a larger array)."""
    return layout(ncpu, g)["size"]


def _mask(sets: int) -> int:
    """``sets - 1`` when ``sets`` is a power of two (the set index is then ``line & mask``), else -1 (``line % sets``)."""
    return sets - 1 if sets & (sets - 1) == 0 else -1


def init_at(I: np.ndarray, o: int, F: np.ndarray, fo: int, ncpu: int, g: Geometry) -> None:
    """Write an empty hierarchy into ``I[o:o+size_of()]`` (which must be zero outside :func:`lazy_range`) and its
    latencies into ``F[fo:fo+NF]``."""
    if not isinstance(ncpu, (int, np.integer)) or ncpu < 1:
        raise AllocsimError(f"the cache model needs at least one CPU, not {ncpu!r}")
    g.check()
    lay = layout(int(ncpu), g)
    hdr = {H_NCPU: ncpu, H_S1: g.l1_sets, H_W1: g.l1_ways, H_S2: g.l2_sets, H_W2: g.l2_ways, H_S3: g.llc_sets,
           H_W3: g.llc_ways, H_CPL: g.cpus_per_llc, H_LPN: g.llcs_per_node, H_NLLC: lay["nllc"], H_CLOCK: 0,
           H_LAST_KIND: -1, H_LAST_INV: 0, H_SIZE: lay["size"], H_M1: _mask(g.l1_sets), H_M2: _mask(g.l2_sets),
           H_M3: _mask(g.llc_sets), H_NSLOT: 0, **lay["offsets"]}
    for k, v in hdr.items():
        I[o + k] = v
    F[fo:fo + NF] = (g.lat_l1, g.lat_l2, g.lat_llc, g.lat_same_llc, g.lat_cross_llc, g.lat_cross_node, g.lat_memory)


def new_cache(ncpu: int, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """An empty hierarchy for ``ncpu`` CPUs: ``(CI, CF)``."""
    g = geometry
    g.check()
    CI = _state.zeros_except(size_of(int(ncpu), g), lazy_range(int(ncpu), g))
    CF = np.zeros(NF, np.float64)
    init_at(CI, 0, CF, 0, ncpu, g)
    _state.refresh_numba_cache()
    return CI, CF


# ---------------------------------------------------------------------------------------------------------
# jitted helpers. ``e`` is an entry's index within its level; ``I[o + I[o + H_T1] + e]`` its L1 tag, etc. (the
# hot ones index with unsigned integers: no wraparound test per access)

@njit(cache=True, _nrt=False, inline="always")
def _find(I, tb, W, tag):
    """The way of ``tag`` in the set whose first tag is at ``tb``, or -1."""
    ub = np.uint64(tb)  # unsigned indices: no wraparound test per way
    for w in range(W):
        if I[ub + np.uint64(w)] == tag:
            return w
    return -1


@njit(cache=True, _nrt=False, inline="always")
def _victim(I, tb, rb, W, rs):
    """The way to fill: the first empty one, else the least recently used (tags at ``tb``, way ``w``'s stamp at
    ``rb + rs × w``)."""
    ut = np.uint64(tb)  # unsigned indices: no wraparound test per way
    ur = np.uint64(rb)
    us = np.uint64(rs)
    best = 0
    oldest = I[ur]
    for w in range(W):
        uw = np.uint64(w)
        if I[ut + uw] == 0:
            return w
        s = I[ur + us * uw]
        best = w if s < oldest else best  # selects, not a branch: the stamps' order is not predictable
        oldest = min(s, oldest)
    return best


@njit(cache=True, _nrt=False, inline="always")
def _e1(I, o, cpu, line):
    """First entry of ``line``'s set in ``cpu``'s L1."""
    m = I[o + H_M1]
    S = I[o + H_S1]
    return (cpu * S + (line & m if m >= 0 else line % S)) * I[o + H_W1]


@njit(cache=True, _nrt=False, inline="always")
def _e2(I, o, cpu, line):
    """First entry (the tag of way 0) of ``line``'s set in ``cpu``'s L2 (sets interleaved: ``NF2`` fields each)."""
    m = I[o + H_M2]
    S = I[o + H_S2]
    return (cpu * S + (line & m if m >= 0 else line % S)) * (NF2 * I[o + H_W2])


@njit(cache=True, _nrt=False, inline="always")
def _e3(I, o, d, line):
    """First entry of ``line``'s set in domain ``d``'s LLC, or -1 when that set is empty (has no slot yet)."""
    m = I[o + H_M3]
    S = I[o + H_S3]
    slot = I[np.uint64(o + I[o + H_MAP3] + d * S + (line & m if m >= 0 else line % S))]
    if slot == 0:
        return -1
    return (slot - 1) * (NF3 * I[o + H_W3])


@njit(cache=True, _nrt=False)
def _e3_alloc(I, o, d, line):
    """:func:`_e3` for an install: an empty set first gets the next slot, its tags zeroed (its ways empty)."""
    m = I[o + H_M3]
    S = I[o + H_S3]
    at = o + I[o + H_MAP3] + d * S + (line & m if m >= 0 else line % S)
    W = I[o + H_W3]
    if I[at] == 0:
        slot = I[o + H_NSLOT]
        I[o + H_NSLOT] = slot + 1
        I[at] = slot + 1
        b = o + I[o + H_T3] + slot * NF3 * W  # the set's tags (its other fields follow)
        for k in range(W):
            I[b + k] = 0
    return (I[at] - 1) * (NF3 * W)


@njit(cache=True, _nrt=False, inline="always")
def _clear_private(I, o, T, e):
    """Empty entry ``e`` of a private level (``T``: its tag field): the tag alone (see "Empty ways" above)."""
    I[np.uint64(o + I[o + T] + e)] = 0


@njit(cache=True, _nrt=False)
def _priv_drop(I, o, cpu, line):
    """Remove ``line`` from the L1 and L2 of ``cpu`` (no LLC bookkeeping)."""
    e = _e1(I, o, cpu, line)
    w = _find(I, o + I[o + H_T1] + e, I[o + H_W1], line + 1)
    if w >= 0:
        _clear_private(I, o, H_T1, e + w)
    e = _e2(I, o, cpu, line)
    w = _find(I, o + I[o + H_T2] + e, I[o + H_W2], line + 1)
    if w >= 0:
        _clear_private(I, o, H_T2, e + w)


@njit(cache=True, _nrt=False)
def _priv_state(I, o, cpu, line, st):
    """Set the state of ``cpu``'s private copies of ``line`` (L1 and L2)."""
    e = _e1(I, o, cpu, line)
    w = _find(I, o + I[o + H_T1] + e, I[o + H_W1], line + 1)
    if w >= 0:
        I[np.uint64(o + I[o + H_X1] + e + w)] = st
    e = _e2(I, o, cpu, line)
    w = _find(I, o + I[o + H_T2] + e, I[o + H_W2], line + 1)
    if w >= 0:
        x = np.uint64(o + I[o + H_X2] + e + w)
        I[x] = (I[x] & ~np.int64(X2_STATE)) | st  # the stamp stays


@njit(cache=True, _nrt=False, inline="always")
def _l3(I, o, field, b, w):
    """Absolute index of ``field`` (an H_*3 header field) of way ``w`` of the LLC set whose first entry is ``b``
    (unsigned: no wraparound test): its tag, or a field of its record."""
    return np.uint64(o + I[o + field] + b + (w if field == H_T3 else NREC * w))


@njit(cache=True, _nrt=False)
def _drop_domain_entry(I, o, d, b, w, line):
    """Remove way ``w`` of the LLC set at ``b`` of domain ``d`` and every private copy of its line in the domain."""
    cpl = I[o + H_CPL]
    sh = I[_l3(I, o, H_SH3, b, w)]
    k = 0
    while sh != 0:
        if sh & 1:
            _priv_drop(I, o, d * cpl + k, line)
        sh >>= 1
        k += 1
    I[_l3(I, o, H_T3, b, w)] = 0  # empty: the tag alone (see "Empty ways" above)


@njit(cache=True, _nrt=False, inline="always")
def _dist(I, o, d, e):
    if d == e:
        return INV_SAME
    lpn = I[o + H_LPN]
    if d // lpn == e // lpn:
        return INV_LLC
    return INV_NODE


@njit(cache=True, _nrt=False)
def _claim(I, o, cpu, line, b3, w3):
    """``cpu`` writes ``line`` (way ``w3`` of the LLC set at ``b3`` of its domain): invalidate every other copy,
    make ``cpu`` the writer. Returns the invalidation class (distance of the farthest copy invalidated)."""
    cpl = I[o + H_CPL]
    d = cpu // cpl
    lc = cpu - d * cpl
    inv = INV_NONE
    sh = I[_l3(I, o, H_SH3, b3, w3)] & ~(np.int64(1) << lc)
    k = 0
    while sh != 0:
        if sh & 1:
            _priv_drop(I, o, d * cpl + k, line)
            inv = INV_SAME
        sh >>= 1
        k += 1
    t3 = o + I[o + H_T3]
    W3 = I[o + H_W3]
    for e in range(I[o + H_NLLC]):
        if e == d:
            continue
        b = _e3(I, o, e, line)
        if b < 0:
            continue
        w = _find(I, t3 + b, W3, line + 1)
        if w >= 0:
            _drop_domain_entry(I, o, e, b, w, line)
            c = _dist(I, o, d, e)
            if c > inv:
                inv = c
    I[_l3(I, o, H_SH3, b3, w3)] = np.int64(1) << lc
    I[_l3(I, o, H_WR3, b3, w3)] = lc + 1
    I[_l3(I, o, H_DT3, b3, w3)] = 1
    return inv


@njit(cache=True, _nrt=False)
def _evict_l2(I, o, cpu, e2):
    """L2 entry ``e2`` of ``cpu`` leaves: drop it from L1, clear ``cpu`` from the LLC entry's sharers. The entry
    itself is left to the caller, which installs the new line in it."""
    line = I[np.uint64(o + I[o + H_T2] + e2)] - 1
    e = _e1(I, o, cpu, line)
    w = _find(I, o + I[o + H_T1] + e, I[o + H_W1], line + 1)
    if w >= 0:
        _clear_private(I, o, H_T1, e + w)
    cpl = I[o + H_CPL]
    d = cpu // cpl
    lc = cpu - d * cpl
    e = _e3(I, o, d, line)
    w = _find(I, o + I[o + H_T3] + e, I[o + H_W3], line + 1) if e >= 0 else -1
    if w >= 0:
        I[_l3(I, o, H_SH3, e, w)] &= ~(np.int64(1) << lc)
        if I[_l3(I, o, H_WR3, e, w)] == lc + 1:
            I[_l3(I, o, H_WR3, e, w)] = 0  # written back into the LLC, which stays dirty


@njit(cache=True, _nrt=False)
def _install_l2(I, o, cpu, line, st, clock):
    e = _e2(I, o, cpu, line)
    w = _victim(I, o + I[o + H_T2] + e, o + I[o + H_R2] + e, I[o + H_W2], 1)
    e += w
    if I[np.uint64(o + I[o + H_T2] + e)] != 0:
        _evict_l2(I, o, cpu, e)
    I[np.uint64(o + I[o + H_T2] + e)] = line + 1
    I[np.uint64(o + I[o + H_R2] + e)] = (clock << X2_SHIFT) | st


@njit(cache=True, _nrt=False)
def _install_l1(I, o, cpu, line, st, clock):
    e = _e1(I, o, cpu, line)
    e += _victim(I, o + I[o + H_T1] + e, o + I[o + H_R1] + e, I[o + H_W1], 1)
    I[np.uint64(o + I[o + H_T1] + e)] = line + 1  # an L1 victim stays in L2 with the same state
    I[np.uint64(o + I[o + H_R1] + e)] = clock
    I[np.uint64(o + I[o + H_X1] + e)] = st


@njit(cache=True, _nrt=False, inline="always")
def _finish(I, o, F, fo, cpu, kind, inv):
    cyc = F[fo + kind]
    if inv != INV_NONE:
        x = F[fo + K_XSAME + inv - 1]
        if x > cyc:
            cyc = x
    c = o + I[o + H_CNT] + cpu * NCNT
    I[c + kind] += 1
    if inv != INV_NONE:
        I[c + NK + inv - 1] += 1
    I[o + H_LAST_KIND] = kind
    I[o + H_LAST_INV] = inv
    return cyc


@njit(cache=True, _nrt=False)
def _upgrade(I, o, cpu, line):
    """A write hit on an S copy: claim the line (its LLC entry exists by inclusion), set the copies M."""
    d = cpu // I[o + H_CPL]
    e = _e3(I, o, d, line)
    w = _find(I, o + I[o + H_T3] + e, I[o + H_W3], line + 1)
    inv = _claim(I, o, cpu, line, e, w)
    _priv_state(I, o, cpu, line, S_MOD)
    return inv


@njit(cache=True, _nrt=False)
def handle(I, o):
    """The header fields an L1 lookup needs, read once (a model reads them once per step, see :func:`l1_entry`):
    L1 set mask, sets, ways, and the absolute indices of the L1 tag, LRU and state blocks and of the counters.
    They never change after :func:`init_at`."""
    u = np.uint64(o)  # unsigned indices: no wraparound test per header word
    return (I[u + np.uint64(H_M1)], I[u + np.uint64(H_S1)], I[u + np.uint64(H_W1)], o + I[u + np.uint64(H_T1)],
            o + I[u + np.uint64(H_R1)], o + I[u + np.uint64(H_X1)], o + I[u + np.uint64(H_CNT)])


@njit(cache=True, _nrt=False)
def l1_entry(I, cpu, line, write, h):
    """The index of ``cpu``'s L1 entry for ``line`` (within the level) when the access is a plain L1 hit (the line
    is there, and a store finds it modified: no coherence action); ``-2 - entry`` when a store finds the line
    there but not modified; -1 when the line is not in the L1. Changes nothing.

    A model's step (``memory.touch``, the per-CPU list's ``_touch``) does its accesses as: ``clock += 1``;
    ``e = l1_entry(…)``; if ``e >= 0`` the hit is ``I[h[4] + e] = clock`` (the LRU stamp) and one more L1 hit
    for ``cpu``, else :func:`access_clocked` with ``e``; at the end :func:`commit` writes the clock and the hits back.
    That is :func:`access_at` access for access (same stamps, same counters), with the clock, the counter and
    the header kept in registers for the step."""
    m1, S1, W1, T1, R1, X1, CNT = h
    e = (cpu * S1 + (line & m1 if m1 >= 0 else line % S1)) * W1
    tb = T1 + e
    tag = line + 1
    w = 0
    ub = np.uint64(tb)  # an unsigned index: no wraparound test per way
    while w < W1:
        if I[ub + np.uint64(w)] == tag:
            break
        w += 1
    if w == W1:
        return -1
    e += w
    if write and I[np.uint64(X1 + e)] != S_MOD:
        return -2 - e
    return e


@njit(cache=True, _nrt=False)
def commit(I, o, h, cpu, clock, hits, last_hit):
    """End of a step done with :func:`l1_entry`: the LRU clock, ``hits`` L1 hits of ``cpu``, and (``last_hit``:
    the step's last access was such a hit) the last access's kind and invalidation class."""
    uo = np.uint64(o)  # unsigned indices: no wraparound test
    I[uo + np.uint64(H_CLOCK)] = clock
    I[np.uint64(h[6] + cpu * NCNT + K_L1)] += hits
    if last_hit:
        I[uo + np.uint64(H_LAST_KIND)] = K_L1
        I[uo + np.uint64(H_LAST_INV)] = INV_NONE


#: :func:`handle`, :func:`l1_entry` and :func:`commit` inlined where they are called (numba IR inlining), for the
#: per-CPU list, whose step is inlined once into its event loop. The SLUB models call the plain ones: their step
#: (``memory._touch``) is itself inlined at a dozen call sites, and inlining these into each made the models'
#: first compilation half as long again, for no measurable speed.
handle_inline = njit(_nrt=False, inline="always")(handle.py_func)
l1_entry_inline = njit(_nrt=False, inline="always")(l1_entry.py_func)
commit_inline = njit(_nrt=False, inline="always")(commit.py_func)


@njit(cache=True, _nrt=False)
def access_clocked(I, o, F, fo, cpu, line, write, clock, found):
    """:func:`access_at` with its LRU clock value ``clock`` already taken (the header's clock is not read or
    written) and the L1 looked up (``found``: what :func:`l1_entry` returned, < 0): a store to a copy that is not
    modified (``-2 - entry``: the copy is upgraded), or everything past an L1 miss (-1)."""
    if found == -1:
        return _access_miss(I, o, F, fo, cpu, line, write, clock)
    e = -2 - found
    I[o + I[o + H_R1] + e] = clock
    inv = INV_NONE
    if write and I[o + I[o + H_X1] + e] != S_MOD:
        inv = _upgrade(I, o, cpu, line)
    return _finish(I, o, F, fo, cpu, K_L1, inv)


@njit(cache=True, _nrt=False, inline="always")
def access_at(I, o, F, fo, cpu, line, write):
    """One load (``write`` false) or store of ``line`` by ``cpu``; returns its cycles (see the module text).

    Inlined where it is called (numba IR inlining): a plain L1 hit costs no call; everything else is one call
    to :func:`access_clocked`."""
    clock = I[o + H_CLOCK] + 1
    I[o + H_CLOCK] = clock
    h = handle(I, o)
    e = l1_entry(I, cpu, line, write, h)
    if e < 0:
        return access_clocked(I, o, F, fo, cpu, line, write, clock, e)
    I[h[4] + e] = clock
    I[h[6] + cpu * NCNT + K_L1] += 1
    I[o + H_LAST_KIND] = K_L1
    I[o + H_LAST_INV] = INV_NONE
    return F[fo + K_L1]


@njit(cache=True, _nrt=False)
def _access_miss(I, o, F, fo, cpu, line, write, clock):
    """The part of :func:`access_at` past an L1 miss."""
    tag = line + 1
    # L2
    e2 = _e2(I, o, cpu, line)
    w = _find(I, o + I[o + H_T2] + e2, I[o + H_W2], tag)
    if w >= 0:
        e2 += w
        r2 = np.uint64(o + I[o + H_R2] + e2)  # stamp and state (X2_SHIFT)
        st = I[r2] & X2_STATE
        I[r2] = (clock << X2_SHIFT) | st
        inv = INV_NONE
        if write and st != S_MOD:
            inv = _upgrade(I, o, cpu, line)
            st = S_MOD
        _install_l1(I, o, cpu, line, st, clock)
        return _finish(I, o, F, fo, cpu, K_L2, inv)
    # LLC of the CPU's domain
    cpl = I[o + H_CPL]
    d = cpu // cpl
    lc = cpu - d * cpl
    W3 = I[o + H_W3]
    t3 = o + I[o + H_T3]
    b3 = _e3(I, o, d, line)
    w = _find(I, t3 + b3, W3, tag) if b3 >= 0 else -1
    inv = INV_NONE
    if w >= 0:
        I[_l3(I, o, H_R3, b3, w)] = clock
        wr = I[_l3(I, o, H_WR3, b3, w)] - 1
        kind = K_LLC
        if wr >= 0 and wr != lc:
            kind = K_XSAME  # another CPU of the domain holds it modified: cache-to-cache transfer
            if write:
                _priv_drop(I, o, d * cpl + wr, line)
                I[_l3(I, o, H_SH3, b3, w)] &= ~(np.int64(1) << wr)
            else:
                _priv_state(I, o, d * cpl + wr, line, S_SHARED)
            I[_l3(I, o, H_WR3, b3, w)] = 0
        if write:
            inv = _claim(I, o, cpu, line, b3, w)
        else:
            I[_l3(I, o, H_SH3, b3, w)] |= np.int64(1) << lc
    else:
        # other domains: is the line dirty in one of them?
        src = -1
        bs = -1
        ws = -1
        for e in range(I[o + H_NLLC]):
            if e == d:
                continue
            b = _e3(I, o, e, line)
            if b < 0:
                continue
            we = _find(I, t3 + b, W3, tag)
            if we >= 0 and I[_l3(I, o, H_DT3, b, we)] != 0:
                src = e
                bs = b
                ws = we
                break
        if src >= 0:
            kind = K_XLLC if _dist(I, o, d, src) == INV_LLC else K_XNODE
            if not write:  # the source writes the line back and keeps a clean shared copy
                wr = I[_l3(I, o, H_WR3, bs, ws)] - 1
                if wr >= 0:
                    _priv_state(I, o, src * cpl + wr, line, S_SHARED)
                I[_l3(I, o, H_WR3, bs, ws)] = 0
                I[_l3(I, o, H_DT3, bs, ws)] = 0
        else:
            kind = K_MEM
        if b3 < 0:
            b3 = _e3_alloc(I, o, d, line)
        w = _victim(I, t3 + b3, o + I[o + H_R3] + b3, W3, NREC)
        if I[_l3(I, o, H_T3, b3, w)] != 0:
            _drop_domain_entry(I, o, d, b3, w, I[_l3(I, o, H_T3, b3, w)] - 1)
        I[_l3(I, o, H_T3, b3, w)] = tag
        I[_l3(I, o, H_R3, b3, w)] = clock
        I[_l3(I, o, H_SH3, b3, w)] = np.int64(1) << lc
        I[_l3(I, o, H_WR3, b3, w)] = 0
        I[_l3(I, o, H_DT3, b3, w)] = 0
        if write:
            inv = _claim(I, o, cpu, line, b3, w)
    st = S_MOD if write else S_SHARED
    _install_l2(I, o, cpu, line, st, clock)
    _install_l1(I, o, cpu, line, st, clock)
    return _finish(I, o, F, fo, cpu, kind, inv)


@njit(cache=True, _nrt=False)
def access(CI, CF, cpu, line, write):
    """:func:`access_at` on a hierarchy of its own (``new_cache``)."""
    return access_at(CI, 0, CF, 0, cpu, line, write)


@njit(cache=True, _nrt=False)
def run_stream(CI, CF, cpus, lines, writes, cycles, kinds, invs):
    """Apply a stream of accesses; per access its cycles, kind and invalidation class. Returns the total."""
    tot = 0.0
    for i in range(len(lines)):
        c = access_at(CI, 0, CF, 0, cpus[i], lines[i], writes[i] != 0)
        cycles[i] = c
        kinds[i] = CI[H_LAST_KIND]
        invs[i] = CI[H_LAST_INV]
        tot += c
    return tot


def stream(CI, CF, cpus, lines, writes):
    """:func:`run_stream` on Python sequences: ``(cycles, kinds, invs)`` arrays. Checks the inputs first."""
    cpus = np.ascontiguousarray(cpus, np.int64)
    lines = np.ascontiguousarray(lines, np.int64)
    writes = np.ascontiguousarray(writes, np.int64)
    if not len(cpus) == len(lines) == len(writes):
        raise AllocsimError("an access stream needs one CPU, one line and one write flag per access")
    ncpu = int(CI[H_NCPU])
    if len(cpus) and (cpus.min() < 0 or cpus.max() >= ncpu):
        raise AllocsimError(f"an access's CPU must be from 0 to {ncpu - 1}")
    if len(lines) and (lines.min() < 0 or lines.max() >= np.iinfo(np.int64).max):
        raise AllocsimError("a cache line number must be >= 0 (an address >> 6)")
    n = len(lines)
    cycles = np.zeros(n, np.float64)
    kinds = np.zeros(n, np.int64)
    invs = np.zeros(n, np.int64)
    run_stream(CI, CF, cpus, lines, writes, cycles, kinds, invs)
    return cycles, kinds, invs


# ---------------------------------------------------------------------------------------------------------
# views for tests and pages (Python, not jitted)

def counters(CI, o: int = 0) -> np.ndarray:
    """Per CPU (rows) the counters ``COUNTER_NAMES`` (columns)."""
    n = int(CI[o + H_NCPU])
    c = o + int(CI[o + H_CNT])
    return CI[c:c + n * NCNT].reshape(n, NCNT).copy()


def _block(CI, o, h, owners, S, W, nf=1):
    """Field ``h`` of a level, one row per owner (``nf``: fields interleaved per set)."""
    at = o + int(CI[o + h])
    rows = at + np.arange(owners * S)[:, None] * (nf * W) + np.arange(W)[None, :]
    return CI[rows].reshape(owners, S * W)


def contents(CI, o: int = 0) -> dict:
    """Every level's contents: ``{"l1": {cpu: {line: state}}, "l2": …, "llc": {domain: {line: (sharers, writer,
    dirty)}}}`` with ``writer`` a CPU number or -1 and ``sharers`` a set of CPU numbers."""
    n = int(CI[o + H_NCPU])
    out = {"l1": {}, "l2": {}, "llc": {}}
    for name, T, X, S, W, nf in (("l1", H_T1, H_X1, H_S1, H_W1, 1), ("l2", H_T2, H_X2, H_S2, H_W2, NF2)):
        S, W = int(CI[o + S]), int(CI[o + W])
        tags, sts = _block(CI, o, T, n, S, W, nf), _block(CI, o, X, n, S, W, nf)
        for cpu in range(n):
            keep = tags[cpu] != 0
            out[name][cpu] = {int(t) - 1: int(x) & (X2_STATE if name == "l2" else -1)
                              for t, x in zip(tags[cpu][keep], sts[cpu][keep])}
    S, W, cpl, nllc = (int(CI[o + k]) for k in (H_S3, H_W3, H_CPL, H_NLLC))
    tags, shs, wrs, dts = (_llc_block(CI, o, h) for h in (H_T3, H_SH3, H_WR3, H_DT3))
    for d, slots in enumerate(_llc_slots(CI, o)):
        out["llc"][d] = {int(tags[s, i]) - 1: ({d * cpl + k for k in range(cpl) if (int(shs[s, i]) >> k) & 1},
                                                d * cpl + int(wrs[s, i]) - 1 if wrs[s, i] else -1, bool(dts[s, i]))
                         for s in slots for i in np.flatnonzero(tags[s])}
    return out


def _llc_slots(CI, o: int = 0) -> list:
    """Per LLC domain, the slots its non-empty sets use."""
    S, nllc = int(CI[o + H_S3]), int(CI[o + H_NLLC])
    at = o + int(CI[o + H_MAP3])
    smap = CI[at:at + nllc * S].reshape(nllc, S)
    return [smap[d][smap[d] != 0] - 1 for d in range(nllc)]


def _llc_block(CI, o, h):
    """LLC field ``h`` of the slots in use, one row per slot (the tags, or a field of the ways' records)."""
    W, n = int(CI[o + H_W3]), int(CI[o + H_NSLOT])
    at = o + int(CI[o + h])
    return CI[at + np.arange(n)[:, None] * (NF3 * W) + np.arange(W)[None, :] * (1 if h == H_T3 else NREC)]


def set_occupancy(CI, o: int = 0) -> dict:
    """Per level the largest number of lines in any one set (must be <= ways) and whether a set repeats a line."""
    n = int(CI[o + H_NCPU])
    res = {}
    for name, T, S, W, owners, nf in (("l1", H_T1, H_S1, H_W1, n, 1), ("l2", H_T2, H_S2, H_W2, n, NF2),
                                      ("llc", H_T3, H_S3, H_W3, int(CI[o + H_NLLC]), NF3)):
        S, W = int(CI[o + S]), int(CI[o + W])
        # the LLC's empty sets have no slot: its rows are the sets in use
        tags = _llc_block(CI, o, T) if name == "llc" else _block(CI, o, T, owners, S, W, nf).reshape(owners * S, W)
        full = (tags != 0).sum(axis=1)
        dup = any(len(set(r[r != 0].tolist())) != int((r != 0).sum()) for r in tags[full > 1])
        res[name] = (int(full.max()) if len(full) else 0, W, dup)
    return res

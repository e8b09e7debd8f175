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

Cost of one access: ``max(data, invalidate)`` cycles, where ``data`` is the latency of where the data came
from — kind ``L1``, ``L2``, ``LLC`` (hit), ``XSAME`` (from another CPU of the same LLC that held it M),
``XLLC`` / ``XNODE`` (from another LLC domain of the same / another node that held it dirty), ``MEM``
(memory, also when other domains hold clean copies) — and ``invalidate`` the transfer latency to the
farthest copy a write had to invalidate (``INV_SAME`` / ``INV_LLC`` / ``INV_NODE``; 0 when none).

Layout of ``CI`` (int64, at offset ``o``): the header ``H_*``; the L1 entries (``ncpu × l1_sets × l1_ways``
of ``PF`` fields: tag = line + 1 with 0 = empty, LRU stamp, state), the L2 entries (same fields), the LLC
entries (``nllc × llc_sets × llc_ways`` of ``LF`` fields: tag, LRU stamp, sharer bit mask over the domain's
CPUs, writer + 1 (0 = none), dirty), and the counters (``ncpu × NCNT``). Empty is all zeros, so the large
LLC arrays cost only the pages an access touches. ``CF`` (float64, at ``fo``): the seven latencies in
cycles, in kind order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from allocsim.facts.cpu import Geometry
from allocsim.facts.errors import AllocsimError
from allocsim.kernel import state as _state

# header of CI
(H_NCPU, H_S1, H_W1, H_S2, H_W2, H_S3, H_W3, H_CPL, H_LPN, H_NLLC, H_CLOCK, H_L1, H_L2, H_L3, H_CNT,
 H_LAST_KIND, H_LAST_INV, H_SIZE, H_M1, H_M2, H_M3) = range(21)
NH = 21
# private entry fields
PF = 3
P_TAG, P_LRU, P_ST = 0, 1, 2
S_SHARED, S_MOD = 1, 2
# LLC entry fields
LF = 5
L_TAG, L_LRU, L_SH, L_WR, L_DT = 0, 1, 2, 3, 4
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


def layout(ncpu: int, g: Geometry) -> dict:
    """Sizes and offsets (relative to the hierarchy's start) of every block of ``CI``."""
    nllc = -(-ncpu // g.cpus_per_llc)
    l1 = NH
    l2 = l1 + ncpu * g.l1_sets * g.l1_ways * PF
    l3 = l2 + ncpu * g.l2_sets * g.l2_ways * PF
    cnt = l3 + nllc * g.llc_sets * g.llc_ways * LF
    return {"nllc": nllc, "l1": l1, "l2": l2, "l3": l3, "cnt": cnt, "size": cnt + ncpu * NCNT}


def size_of(ncpu: int, g: Geometry) -> int:
    """int64 words of ``CI`` a hierarchy of ``ncpu`` CPUs takes (to embed it in a larger array)."""
    return layout(ncpu, g)["size"]


def _mask(sets: int) -> int:
    """``sets - 1`` when ``sets`` is a power of two (the set index is then ``line & mask``), else -1 (``line % sets``)."""
    return sets - 1 if sets & (sets - 1) == 0 else -1


def init_at(I: np.ndarray, o: int, F: np.ndarray, fo: int, ncpu: int, g: Geometry) -> None:
    """Write an empty hierarchy into ``I[o:o+size_of()]`` (which must be zero) and its latencies into ``F[fo:fo+NF]``."""
    if not isinstance(ncpu, (int, np.integer)) or ncpu < 1:
        raise AllocsimError(f"the cache model needs at least one CPU, not {ncpu!r}")
    g.check()
    lay = layout(int(ncpu), g)
    hdr = {H_NCPU: ncpu, H_S1: g.l1_sets, H_W1: g.l1_ways, H_S2: g.l2_sets, H_W2: g.l2_ways, H_S3: g.llc_sets,
           H_W3: g.llc_ways, H_CPL: g.cpus_per_llc, H_LPN: g.llcs_per_node, H_NLLC: lay["nllc"], H_CLOCK: 0,
           H_L1: lay["l1"], H_L2: lay["l2"], H_L3: lay["l3"], H_CNT: lay["cnt"], H_LAST_KIND: -1, H_LAST_INV: 0,
           H_SIZE: lay["size"], H_M1: _mask(g.l1_sets), H_M2: _mask(g.l2_sets), H_M3: _mask(g.llc_sets)}
    for k, v in hdr.items():
        I[o + k] = v
    F[fo:fo + NF] = (g.lat_l1, g.lat_l2, g.lat_llc, g.lat_same_llc, g.lat_cross_llc, g.lat_cross_node, g.lat_memory)


def new_cache(ncpu: int, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """An empty hierarchy for ``ncpu`` CPUs: ``(CI, CF)``."""
    g = geometry
    g.check()
    CI = np.zeros(size_of(int(ncpu), g), np.int64)
    CF = np.zeros(NF, np.float64)
    init_at(CI, 0, CF, 0, ncpu, g)
    _state.refresh_numba_cache()
    return CI, CF


# ---------------------------------------------------------------------------------------------------------
# jitted helpers

@njit(cache=True, inline="always")
def _find(I, b, W, stride, tag):
    for w in range(W):
        if I[b + w * stride] == tag:
            return w
    return -1


@njit(cache=True, inline="always")
def _victim(I, b, W, stride):
    """The way to fill: the first empty one, else the least recently used."""
    best = 0
    for w in range(W):
        e = b + w * stride
        if I[e] == 0:
            return w
        if I[e + 1] < I[b + best * stride + 1]:
            best = w
    return best


@njit(cache=True, inline="always")
def _pbase(I, o, lvl, cpu, line):
    """Start of the set of ``line`` in the private cache ``lvl`` (H_L1 or H_L2) of ``cpu``."""
    if lvl == H_L1:
        S = I[o + H_S1]
        W = I[o + H_W1]
        m = I[o + H_M1]
    else:
        S = I[o + H_S2]
        W = I[o + H_W2]
        m = I[o + H_M2]
    s = line & m if m >= 0 else line % S
    return o + I[o + lvl] + (cpu * S + s) * W * PF


@njit(cache=True, inline="always")
def _lbase(I, o, d, line):
    S = I[o + H_S3]
    m = I[o + H_M3]
    s = line & m if m >= 0 else line % S
    return o + I[o + H_L3] + (d * S + s) * I[o + H_W3] * LF


@njit(cache=True)
def _priv_drop(I, o, cpu, line):
    """Remove ``line`` from the L1 and L2 of ``cpu`` (no LLC bookkeeping)."""
    tag = line + 1
    b = _pbase(I, o, H_L1, cpu, line)
    w = _find(I, b, I[o + H_W1], PF, tag)
    if w >= 0:
        e = b + w * PF
        I[e] = 0
        I[e + 1] = 0
        I[e + 2] = 0
    b = _pbase(I, o, H_L2, cpu, line)
    w = _find(I, b, I[o + H_W2], PF, tag)
    if w >= 0:
        e = b + w * PF
        I[e] = 0
        I[e + 1] = 0
        I[e + 2] = 0


@njit(cache=True)
def _priv_state(I, o, cpu, line, st):
    """Set the state of ``cpu``'s private copies of ``line`` (L1 and L2)."""
    tag = line + 1
    b = _pbase(I, o, H_L1, cpu, line)
    w = _find(I, b, I[o + H_W1], PF, tag)
    if w >= 0:
        I[b + w * PF + P_ST] = st
    b = _pbase(I, o, H_L2, cpu, line)
    w = _find(I, b, I[o + H_W2], PF, tag)
    if w >= 0:
        I[b + w * PF + P_ST] = st


@njit(cache=True)
def _drop_domain_entry(I, o, d, e3, line):
    """Remove an LLC entry of domain ``d`` and every private copy of its line in the domain."""
    cpl = I[o + H_CPL]
    sh = I[e3 + L_SH]
    k = 0
    while sh != 0:
        if sh & 1:
            _priv_drop(I, o, d * cpl + k, line)
        sh >>= 1
        k += 1
    for f in range(LF):
        I[e3 + f] = 0


@njit(cache=True, inline="always")
def _dist(I, o, d, e):
    if d == e:
        return INV_SAME
    lpn = I[o + H_LPN]
    if d // lpn == e // lpn:
        return INV_LLC
    return INV_NODE


@njit(cache=True)
def _claim(I, o, cpu, line, e3):
    """``cpu`` writes ``line`` (LLC entry ``e3`` in its domain): invalidate every other copy, make ``cpu`` the
    writer. Returns the invalidation class (distance of the farthest copy invalidated)."""
    cpl = I[o + H_CPL]
    d = cpu // cpl
    lc = cpu - d * cpl
    inv = INV_NONE
    sh = I[e3 + L_SH] & ~(np.int64(1) << lc)
    k = 0
    while sh != 0:
        if sh & 1:
            _priv_drop(I, o, d * cpl + k, line)
            inv = INV_SAME
        sh >>= 1
        k += 1
    tag = line + 1
    for e in range(I[o + H_NLLC]):
        if e == d:
            continue
        b = _lbase(I, o, e, line)
        w = _find(I, b, I[o + H_W3], LF, tag)
        if w >= 0:
            _drop_domain_entry(I, o, e, b + w * LF, line)
            c = _dist(I, o, d, e)
            if c > inv:
                inv = c
    I[e3 + L_SH] = np.int64(1) << lc
    I[e3 + L_WR] = lc + 1
    I[e3 + L_DT] = 1
    return inv


@njit(cache=True)
def _evict_l2(I, o, cpu, e2):
    """The L2 entry ``e2`` of ``cpu`` leaves: drop it from L1, clear ``cpu`` from the LLC entry's sharers."""
    line = I[e2 + P_TAG] - 1
    b = _pbase(I, o, H_L1, cpu, line)
    w = _find(I, b, I[o + H_W1], PF, line + 1)
    if w >= 0:
        e = b + w * PF
        I[e] = 0
        I[e + 1] = 0
        I[e + 2] = 0
    cpl = I[o + H_CPL]
    d = cpu // cpl
    lc = cpu - d * cpl
    b = _lbase(I, o, d, line)
    w = _find(I, b, I[o + H_W3], LF, line + 1)
    if w >= 0:
        e3 = b + w * LF
        I[e3 + L_SH] &= ~(np.int64(1) << lc)
        if I[e3 + L_WR] == lc + 1:
            I[e3 + L_WR] = 0  # written back into the LLC, which stays dirty
    for f in range(PF):
        I[e2 + f] = 0


@njit(cache=True)
def _install_l2(I, o, cpu, line, st, clock):
    b = _pbase(I, o, H_L2, cpu, line)
    w = _victim(I, b, I[o + H_W2], PF)
    e = b + w * PF
    if I[e] != 0:
        _evict_l2(I, o, cpu, e)
    I[e + P_TAG] = line + 1
    I[e + P_LRU] = clock
    I[e + P_ST] = st


@njit(cache=True)
def _install_l1(I, o, cpu, line, st, clock):
    b = _pbase(I, o, H_L1, cpu, line)
    w = _victim(I, b, I[o + H_W1], PF)
    e = b + w * PF
    I[e + P_TAG] = line + 1  # an L1 victim stays in L2 with the same state
    I[e + P_LRU] = clock
    I[e + P_ST] = st


@njit(cache=True, inline="always")
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


@njit(cache=True)
def _upgrade(I, o, cpu, line):
    """A write hit on an S copy: claim the line (its LLC entry exists by inclusion), set the copies M."""
    cpl = I[o + H_CPL]
    d = cpu // cpl
    b = _lbase(I, o, d, line)
    w = _find(I, b, I[o + H_W3], LF, line + 1)
    inv = _claim(I, o, cpu, line, b + w * LF)
    _priv_state(I, o, cpu, line, S_MOD)
    return inv


@njit(cache=True, inline="always")
def access_at(I, o, F, fo, cpu, line, write):
    """One load (``write`` false) or store of ``line`` by ``cpu``; returns its cycles (see the module text).

    Inlined where it is called (numba IR inlining): an L1 hit then costs no call, and no reference counting
    of the two arrays; everything past L1 is one call to :func:`_access_miss`."""
    clock = I[o + H_CLOCK] + 1
    I[o + H_CLOCK] = clock
    b1 = _pbase(I, o, H_L1, cpu, line)
    w = _find(I, b1, I[o + H_W1], PF, line + 1)
    if w < 0:
        return _access_miss(I, o, F, fo, cpu, line, write, clock)
    e1 = b1 + w * PF
    I[e1 + P_LRU] = clock
    inv = INV_NONE
    if write and I[e1 + P_ST] != S_MOD:
        inv = _upgrade(I, o, cpu, line)
    return _finish(I, o, F, fo, cpu, K_L1, inv)


@njit(cache=True)
def _access_miss(I, o, F, fo, cpu, line, write, clock):
    """The part of :func:`access_at` past an L1 miss."""
    tag = line + 1
    # L2
    b2 = _pbase(I, o, H_L2, cpu, line)
    w = _find(I, b2, I[o + H_W2], PF, tag)
    if w >= 0:
        e2 = b2 + w * PF
        I[e2 + P_LRU] = clock
        inv = INV_NONE
        if write and I[e2 + P_ST] != S_MOD:
            inv = _upgrade(I, o, cpu, line)
        _install_l1(I, o, cpu, line, I[e2 + P_ST], clock)
        return _finish(I, o, F, fo, cpu, K_L2, inv)
    # LLC of the CPU's domain
    cpl = I[o + H_CPL]
    d = cpu // cpl
    lc = cpu - d * cpl
    W3 = I[o + H_W3]
    b3 = _lbase(I, o, d, line)
    w = _find(I, b3, W3, LF, tag)
    inv = INV_NONE
    if w >= 0:
        e3 = b3 + w * LF
        I[e3 + L_LRU] = clock
        wr = I[e3 + L_WR] - 1
        kind = K_LLC
        if wr >= 0 and wr != lc:
            kind = K_XSAME  # another CPU of the domain holds it modified: cache-to-cache transfer
            if write:
                _priv_drop(I, o, d * cpl + wr, line)
                I[e3 + L_SH] &= ~(np.int64(1) << wr)
            else:
                _priv_state(I, o, d * cpl + wr, line, S_SHARED)
            I[e3 + L_WR] = 0
        if write:
            inv = _claim(I, o, cpu, line, e3)
        else:
            I[e3 + L_SH] |= np.int64(1) << lc
    else:
        # other domains: is the line dirty in one of them?
        src = -1
        for e in range(I[o + H_NLLC]):
            if e == d:
                continue
            b = _lbase(I, o, e, line)
            we = _find(I, b, W3, LF, tag)
            if we >= 0 and I[b + we * LF + L_DT] != 0:
                src = e
                break
        if src >= 0:
            kind = K_XLLC if _dist(I, o, d, src) == INV_LLC else K_XNODE
            if not write:  # the source writes the line back and keeps a clean shared copy
                b = _lbase(I, o, src, line)
                es = b + _find(I, b, W3, LF, tag) * LF
                wr = I[es + L_WR] - 1
                if wr >= 0:
                    _priv_state(I, o, src * cpl + wr, line, S_SHARED)
                I[es + L_WR] = 0
                I[es + L_DT] = 0
        else:
            kind = K_MEM
        w = _victim(I, b3, W3, LF)
        e3 = b3 + w * LF
        if I[e3] != 0:
            _drop_domain_entry(I, o, d, e3, I[e3] - 1)
        I[e3 + L_TAG] = tag
        I[e3 + L_LRU] = clock
        I[e3 + L_SH] = np.int64(1) << lc
        I[e3 + L_WR] = 0
        I[e3 + L_DT] = 0
        if write:
            inv = _claim(I, o, cpu, line, e3)
    st = S_MOD if write else S_SHARED
    _install_l2(I, o, cpu, line, st, clock)
    _install_l1(I, o, cpu, line, st, clock)
    return _finish(I, o, F, fo, cpu, kind, inv)


@njit(cache=True)
def access(CI, CF, cpu, line, write):
    """:func:`access_at` on a hierarchy of its own (``new_cache``)."""
    return access_at(CI, 0, CF, 0, cpu, line, write)


@njit(cache=True)
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


def contents(CI, o: int = 0) -> dict:
    """Every level's contents: ``{"l1": {cpu: {line: state}}, "l2": …, "llc": {domain: {line: (sharers, writer,
    dirty)}}}`` with ``writer`` a CPU number or -1 and ``sharers`` a set of CPU numbers."""
    n = int(CI[o + H_NCPU])
    out = {"l1": {}, "l2": {}, "llc": {}}
    for name, lvl, S, W in (("l1", H_L1, H_S1, H_W1), ("l2", H_L2, H_S2, H_W2)):
        S, W = int(CI[o + S]), int(CI[o + W])
        blk = CI[o + int(CI[o + lvl]): o + int(CI[o + lvl]) + n * S * W * PF].reshape(n, S * W, PF)
        for cpu in range(n):
            out[name][cpu] = {int(t) - 1: int(s) for t, _, s in blk[cpu] if t != 0}
    S, W, cpl, nllc = (int(CI[o + k]) for k in (H_S3, H_W3, H_CPL, H_NLLC))
    blk = CI[o + int(CI[o + H_L3]): o + int(CI[o + H_L3]) + nllc * S * W * LF].reshape(nllc, S * W, LF)
    for d in range(nllc):
        ent = {}
        for t, _, sh, wr, dt in blk[d][blk[d][:, 0] != 0]:
            ent[int(t) - 1] = ({d * cpl + k for k in range(cpl) if (int(sh) >> k) & 1}, d * cpl + int(wr) - 1 if wr else -1,
                               bool(dt))
        out["llc"][d] = ent
    return out


def set_occupancy(CI, o: int = 0) -> dict:
    """Per level the largest number of lines in any one set (must be <= ways) and whether a set repeats a line."""
    n = int(CI[o + H_NCPU])
    res = {}
    for name, lvl, S, W, nb, F in (("l1", H_L1, H_S1, H_W1, n, PF), ("l2", H_L2, H_S2, H_W2, n, PF),
                                   ("llc", H_L3, H_S3, H_W3, int(CI[o + H_NLLC]), LF)):
        S, W = int(CI[o + S]), int(CI[o + W])
        tags = CI[o + int(CI[o + lvl]): o + int(CI[o + lvl]) + nb * S * W * F].reshape(nb * S, W, F)[:, :, 0]
        full = (tags != 0).sum(axis=1)
        dup = any(len(set(r[r != 0].tolist())) != int((r != 0).sum()) for r in tags[full > 1])
        res[name] = (int(full.max()) if len(full) else 0, W, dup)
    return res

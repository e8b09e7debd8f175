"""The backing layer every SLUB model shares: slabs (``struct slab``) with their own freelists and
``inuse`` counts, the per-node partial list under ``list_lock`` (``struct kmem_cache_node``), new slabs
from the page allocator and the discard of empty ones beyond ``min_partial``; plus the 7.0 slab paths
that no longer have a cpu slab above them (v7.0 ``mm/slub.c``: ``___slab_alloc()`` line 4374, ``refill_objects()``
line 7152, ``get_partial_node_bulk()``, ``__slab_free()`` line 5470).

State. The arrays ``I`` / ``F`` and their layout (offset constants, :func:`~allocsim.kernel.state.new_state`,
:func:`~allocsim.kernel.state.view`) are in :mod:`allocsim.kernel.state`, with the lock order.

Every function takes the current time ``t`` of the CPU doing the work and returns the time after it,
having charged the primitives it executes (named in each docstring, cycles from ``data/costs.csv``).

Simplifications (all models): one slab page allocation per slab whatever its order (``page_alloc_free``
charged per slab, half at ``new_slab()`` and half at ``discard_slab()``, since the cited figure is an
alloc+free pair); freelists in address order (no ``CONFIG_SLAB_FREELIST_RANDOM``); no debug, KASAN,
KFENCE or memcg hooks (not in the cost table; they would cost the same in every model that has them);
no pfmemalloc slabs; one cache-line read (``l1_hit``) per list or pointer step.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from allocsim.kernel import stats as _st
from allocsim.kernel.sim import lock_acquire as _sim_lock_acquire
from allocsim.kernel.sim import lock_release as _sim_lock_release
from allocsim.kernel.state import (
    AC, AC_TAKEN_BARN, AC_TAKEN_LIST, AC_WAIT_BARN, AC_WAIT_LIST, AC_XFER_BARN, AC_XFER_LIST, CFG, CF_CPUS_PER_NODE,
    CF_DEFRAG_RATIO, CF_MAX_SLABS, CF_MIN_PARTIAL, CF_NNODES, CF_OBJS, C_BULK, C_L1, C_LOCKED_CX, C_PAGE,
    C_SPIN, C_SPIN_IRQSAVE, C_XFER, ERR_SLABS, G, G_ERR, G_FREE_HEAD, G_NEXT_NEW, H_LF, H_LO, H_ND, H_ONEXT, H_SL, LOCK_LIST,
    ND_HEAD, ND_NR_PARTIAL, ND_NR_SLABS, ND_TAIL, NND, NSL, SL_CPU, SL_FREELIST, SL_FROZEN, SL_INUSE, SL_NEXT,
    SL_NODE, SL_PREV, SL_WHERE, ST, W_NODE_PARTIAL, W_NONE, W_POOL
)

#: :func:`allocsim.kernel.sim.lock_acquire` / ``lock_release`` themselves, compiled inline and without
#: reference counting into the model's functions (the same Python functions; only the options differ).
_lock_acquire = njit(_nrt=False, inline="always")(_sim_lock_acquire.py_func)
_lock_release = njit(_nrt=False, inline="always")(_sim_lock_release.py_func)

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
    """``spin_lock_irqsave()`` of a shared lock (``list_lock`` or a barn lock). The measured pair
    ``spin_lock_irqsave_pair`` is split: its excess over ``spin_lock_pair`` (saving and restoring the
    interrupt flag) first, outside the lock, then :func:`allocsim.kernel.sim.lock_acquire` — wait until the
    lock is free, pay a cache-line transfer if another CPU held it last — and ``spin_lock_pair`` (the atomic
    acquire and the release, charged here) inside the critical section. Waiting and transfers are added up
    per kind."""
    t += F[C_SPIN_IRQSAVE] - F[C_SPIN]
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
# 7.0: the slab layer without a cpu slab (v7.0 mm/slub.c)

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

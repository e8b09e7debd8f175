"""SLUB up to 6.19: the per-CPU ``struct kmem_cache_cpu`` — a lockless freelist + tid fast path, the
cpu slab, and the cpu partial list — on top of :mod:`allocsim.kernel.slab_pages` (v6.19
``mm/slub.c``: ``struct kmem_cache_cpu`` lines 413–436, ``___slab_alloc()`` line 4461; the same design since the 6.8 "delay freezing of partial slabs" rework).

Mirrors, function by function:

* :func:`slab_alloc` — ``__slab_alloc_node()``: pop ``c->freelist`` with
  ``this_cpu_try_cmpxchg128`` on ``{freelist, tid}`` (``alloc_fastpath``), else ``___slab_alloc()``;
* :func:`slab_alloc_slow` — ``___slab_alloc()``: ``get_freelist()`` of the cpu slab
  (``alloc_refill``), else (``deactivate_bypass``) the next slab from the cpu partial list
  (``cpu_partial_alloc``), else ``get_partial()`` → ``get_partial_node()`` (``alloc_from_partial``,
  moving up to ``cpu_partial_slabs / 2`` more slabs to the cpu partial list, ``cpu_partial_node``)
  and ``freeze_slab()``, else ``new_slab()`` (``alloc_slab``);
* :func:`do_slab_free` — the free fast path, only when the object's slab **is this CPU's cpu slab**
  (``free_fastpath``); otherwise :func:`slab_free_619` — ``__slab_free()`` with a ``LOCK cmpxchg16b``
  on the slab: ``free_frozen`` when the slab is some CPU's cpu slab, ``put_cpu_partial()`` when it
  was full (``cpu_partial_free``; draining the list to the node when it already holds
  ``cpu_partial_slabs``, ``cpu_partial_drain``), ``list_lock`` when it became empty;
* :func:`alloc_bulk` / :func:`free_bulk` — ``__kmem_cache_alloc_bulk()`` /
  ``__kmem_cache_free_bulk()``, through which 6.18/6.19 sheaves are refilled and flushed
  (:mod:`allocsim.kernel.sheaves`): the bulk alloc drains ``c->freelist`` — the "double caching".

Costs (``data/costs.csv``, cost model v2): the fast paths charge the step sums ``cpu_slab_alloc`` and
``cpu_slab_free`` of ``data/kernel/steps.yaml`` (``s->cpu_slab``, ``this_cpu_off``, the
``kmem_cache_cpu`` line, the object's free pointer, one ``percpu_cmpxchg16b`` instruction); the entry
point and hooks come from :func:`allocsim.kernel.sheaves.kmem_cache_alloc` (``SEG_ALLOC_ENTRY``); the slow
paths add one ``function_call`` per out-of-line call; slab-side cmpxchg ``locked_cmpxchg16b``;
``local_lock_irqsave`` of the cpu slab lock ``irq_save_restore``; ``list_lock``
``spin_lock_irqsave_pair`` (+ wait and cache-line transfer); one ``l1_hit`` per list or pointer step;
``page_alloc_free`` per slab.

Simplifications: every allocation is ``NUMA_NO_NODE`` with no pfmemalloc slabs, so
``deactivate_slab()`` (node mismatch) and the ``CPUSLAB_FLUSH`` race never happen; operations are
atomic in simulated time, so the tid ``cmpxchg`` never fails and never retries; an interrupt cannot
split a fast path (it is lockless anyway, and the slow path runs with interrupts off).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from allocsim.kernel import stats as _st
from allocsim.kernel.memory import touch, touch_object
from allocsim.kernel.slab_pages import (
    add_partial, build_detached_freelist, discard_empty_slab, discard_slab, list_lock, list_unlock, ndb, new_slab,
    node_of_cpu, onext_at, remove_partial, slb
)
from allocsim.kernel.state import (
    CFG, CF_CPU_PARTIAL_SLABS, CF_DEFRAG_RATIO, CF_MIN_PARTIAL, CF_NNODES, CF_OBJS, C_BULK, C_CALL, C_IRQSAVE, C_L1,
    C_LOCKED_CX, H_CC, H_ONEXT, NCC, ND_HEAD, ND_NR_PARTIAL, SL_CPU, SL_FREELIST, SL_FROZEN, SL_INUSE, SL_NEXT,
    K_CS_ALLOC, K_CS_FREE, SEG_CS_ALLOC, SEG_CS_FREE, SL_NODE, SL_WHERE, ST, W_CPU_PARTIAL, W_CPU_SLAB, W_NODE_PARTIAL, W_NONE
)

# kmem_cache_cpu columns (NCC of them, allocsim.kernel.slab_pages lays the rows out)
CC_FREELIST, CC_SLAB, CC_PARTIAL, CC_PARTIAL_SLABS = range(4)
assert NCC == 4


@njit(cache=True, _nrt=False, inline='always')
def ccb(I, cpu):
    """Offset of ``cpu``'s ``kmem_cache_cpu`` row in ``I``."""
    return I[H_CC] + cpu * NCC


@njit(cache=True, _nrt=False)
def get_freelist(I, F, slab, t):
    """``get_freelist()``: move the slab's whole freelist to the caller with a ``LOCK cmpxchg16b``,
    ``inuse = objects``; the slab stays frozen only if it had free objects. Returns ``(head, t)``."""
    b = slb(I, slab)
    head = I[b + SL_FREELIST]
    I[b + SL_FREELIST] = -1
    I[b + SL_INUSE] = I[CFG + CF_OBJS]
    I[b + SL_FROZEN] = 1 if head >= 0 else 0
    return head, t + F[C_LOCKED_CX]


@njit(cache=True, _nrt=False)
def put_partials(I, F, first, cpu, t):
    """``__put_partials()``: move a detached cpu partial list (``first``, linked through ``SL_NEXT``)
    to the node partial lists, taking each node's ``list_lock`` (``l1_hit`` per slab); empty slabs
    beyond ``min_partial`` are discarded afterwards (``deactivate_empty``, ``free_slab``), the rest go
    to the tail (``free_add_partial``)."""
    cur_node = -1
    discard = -1
    slab = first
    while slab >= 0:
        b = slb(I, slab)
        nxt = I[b + SL_NEXT]
        node = I[b + SL_NODE]
        if node != cur_node:
            if cur_node >= 0:
                t = list_unlock(I, F, cur_node, cpu, t)
            cur_node = node
            t = list_lock(I, F, node, cpu, t)
        t += F[C_L1]
        if I[b + SL_INUSE] == 0 and I[ndb(I, node) + ND_NR_PARTIAL] >= I[CFG + CF_MIN_PARTIAL]:
            I[b + SL_WHERE] = W_NONE
            I[b + SL_CPU] = -1
            I[b + SL_NEXT] = discard
            discard = slab
        else:
            add_partial(I, slab, True)
            I[ST + _st.S_FREE_ADD_PARTIAL] += 1
        slab = nxt
    if cur_node >= 0:
        t = list_unlock(I, F, cur_node, cpu, t)
    while discard >= 0:
        nxt = I[slb(I, discard) + SL_NEXT]
        I[ST + _st.S_DEACTIVATE_EMPTY] += 1
        t = discard_slab(I, F, discard, t)
        discard = nxt
    return t


@njit(cache=True, _nrt=False)
def put_cpu_partial(I, F, slab, drain, cpu, t):
    """``put_cpu_partial(s, slab, drain)``: prepend ``slab`` to this CPU's partial list under the cpu
    slab lock (``irq_save_restore``, ``l1_hit``). With ``drain`` and a list already holding
    ``cpu_partial_slabs`` slabs, the old list is first detached and given to :func:`put_partials`
    (``cpu_partial_drain``). Returns ``(t, drained)``."""
    c = ccb(I, cpu)
    t += F[C_IRQSAVE] + F[C_L1]
    old = I[c + CC_PARTIAL]
    slabs = 0
    to_put = -1
    if old >= 0:
        if drain and I[c + CC_PARTIAL_SLABS] >= I[CFG + CF_CPU_PARTIAL_SLABS]:
            to_put = old
            old = -1
        else:
            slabs = I[c + CC_PARTIAL_SLABS]
    b = slb(I, slab)
    I[b + SL_NEXT] = old
    I[b + SL_WHERE] = W_CPU_PARTIAL
    I[b + SL_CPU] = cpu
    I[c + CC_PARTIAL] = slab
    I[c + CC_PARTIAL_SLABS] = slabs + 1
    if to_put >= 0:
        t = put_partials(I, F, to_put, cpu, t)
        I[ST + _st.S_CPU_PARTIAL_DRAIN] += 1
        return t, True
    return t, False


@njit(cache=True, _nrt=False)
def get_partial_node(I, F, node, cpu, t):
    """``get_partial_node()``: racy ``nr_partial`` check (``l1_hit``), then under ``list_lock`` the first
    partial slab becomes the caller's (``alloc_from_partial``) and further ones move to this CPU's partial
    list with ``put_cpu_partial(s, slab, 0)`` (``cpu_partial_node``) until more than
    ``cpu_partial_slabs / 2`` were moved. Returns ``(slab or -1, t)``."""
    n = ndb(I, node)
    t += F[C_L1]
    if I[n + ND_NR_PARTIAL] == 0:
        return -1, t
    t = list_lock(I, F, node, cpu, t)
    partial = -1
    partial_slabs = 0
    slab = I[n + ND_HEAD]
    while slab >= 0:
        nxt = I[slb(I, slab) + SL_NEXT]
        remove_partial(I, slab)
        t += F[C_L1]
        if partial < 0:
            partial = slab
            I[ST + _st.S_ALLOC_FROM_PARTIAL] += 1
            if I[CFG + CF_CPU_PARTIAL_SLABS] == 0:
                break
        else:
            t, _ = put_cpu_partial(I, F, slab, False, cpu, t)
            I[ST + _st.S_CPU_PARTIAL_NODE] += 1
            partial_slabs += 1
            if partial_slabs > I[CFG + CF_CPU_PARTIAL_SLABS] // 2:
                break
        slab = nxt
    t = list_unlock(I, F, node, cpu, t)
    return partial, t


@njit(cache=True, _nrt=False)
def get_partial(I, F, cpu, t):
    """``get_partial()``: the local node, then ``get_any_partial()`` — other nodes with
    ``nr_partial > min_partial``, skipped when ``get_cycles() % 1024 > remote_node_defrag_ratio`` (the
    CPU clock stands in for the TSC). Returns ``(slab or -1, t)``."""
    local = node_of_cpu(I, cpu)
    slab, t = get_partial_node(I, F, local, cpu, t)
    if slab >= 0:
        return slab, t
    nn = I[CFG + CF_NNODES]
    if nn > 1 and not (np.int64(t) % 1024 > I[CFG + CF_DEFRAG_RATIO]):
        for k in range(1, nn):
            node = (local + k) % nn
            if I[ndb(I, node) + ND_NR_PARTIAL] > I[CFG + CF_MIN_PARTIAL]:
                slab, t = get_partial_node(I, F, node, cpu, t)
                if slab >= 0:
                    return slab, t
    return -1, t


@njit(cache=True, _nrt=False)
def _install(I, F, cpu, slab, obj, t):
    """``load_freelist``: ``slab`` is this CPU's (frozen) cpu slab; hand out ``obj``, keep the rest of
    its chain as ``c->freelist`` (``l1_hit``)."""
    b = slb(I, slab)
    c = ccb(I, cpu)
    I[b + SL_WHERE] = W_CPU_SLAB
    I[b + SL_CPU] = cpu
    I[c + CC_SLAB] = slab
    I[c + CC_FREELIST] = I[onext_at(I, obj)]
    return t + F[C_L1]


@njit(cache=True, _nrt=False)
def slab_alloc_slow(I, F, cpu, t):
    """``___slab_alloc()`` for one object. Returns ``(obj, t, path)``; charges as in the module
    docstring (the cpu slab lock once per critical section the kernel takes)."""
    I[ST + _st.S_ALLOC_SLOWPATH] += 1
    c = ccb(I, cpu)
    slab = I[c + CC_SLAB]
    if slab >= 0:
        t += F[C_IRQSAVE]  # local_lock_cpu_slab(); c->freelist is empty here, so get_freelist()
        obj, t = get_freelist(I, F, slab, t)
        if obj >= 0:
            I[ST + _st.S_ALLOC_REFILL] += 1
            return obj, _install(I, F, cpu, slab, obj, t), _st.P_ALLOC_REFILL
        # the cpu slab is exhausted: it leaves, full and unfrozen
        b = slb(I, slab)
        I[b + SL_WHERE] = W_NONE
        I[b + SL_CPU] = -1
        I[c + CC_SLAB] = -1
        I[ST + _st.S_DEACTIVATE_BYPASS] += 1
    # new_slab: the cpu partial list
    part = I[c + CC_PARTIAL]
    if part >= 0:
        t += F[C_IRQSAVE] + F[C_L1]
        b = slb(I, part)
        I[c + CC_PARTIAL] = I[b + SL_NEXT]
        I[c + CC_PARTIAL_SLABS] -= 1
        I[b + SL_NEXT] = -1
        obj, t = get_freelist(I, F, part, t)
        I[ST + _st.S_CPU_PARTIAL_ALLOC] += 1
        return obj, _install(I, F, cpu, part, obj, t), _st.P_ALLOC_CPU_PARTIAL
    # new_objects: the node partial lists, then a new slab
    slab, t = get_partial(I, F, cpu, t)
    path = _st.P_ALLOC_FROM_PARTIAL
    if slab >= 0:
        obj, t = get_freelist(I, F, slab, t)  # freeze_slab(): the same cmpxchg, always freezes
        I[slb(I, slab) + SL_FROZEN] = 1
    else:
        slab, t = new_slab(I, F, node_of_cpu(I, cpu), t)
        I[ST + _st.S_ALLOC_SLAB] += 1
        b = slb(I, slab)
        obj = I[b + SL_FREELIST]
        I[b + SL_FREELIST] = -1
        I[b + SL_INUSE] = I[CFG + CF_OBJS]
        I[b + SL_FROZEN] = 1
        path = _st.P_ALLOC_SLAB
    t += F[C_IRQSAVE]  # retry_load_slab: local_lock_cpu_slab()
    return obj, _install(I, F, cpu, slab, obj, t), path


@njit(cache=True, _nrt=False, inline='always')
def slab_alloc(I, F, cpu, t):
    """``slab_alloc_node()`` → ``__slab_alloc_node()`` without sheaves: pop ``c->freelist``
    (``alloc_fastpath``, the steps of ``cpu_slab_alloc`` in ``data/kernel/steps.yaml``) or call ``___slab_alloc()`` (``function_call``).
    Returns ``(obj, t, path)``."""
    c = ccb(I, cpu)
    obj = I[c + CC_FREELIST]
    if obj >= 0 and I[c + CC_SLAB] >= 0:
        I[c + CC_FREELIST] = I[onext_at(I, obj)]
        I[ST + _st.S_ALLOC_FASTPATH] += 1
        return obj, t + F[SEG_CS_ALLOC] + touch(I, F, cpu, K_CS_ALLOC, obj, -1, -1), _st.P_ALLOC_FASTPATH
    obj, t, path = slab_alloc_slow(I, F, cpu, t + F[C_CALL])
    return obj, t + touch_object(I, F, cpu, obj, False), path


@njit(cache=True, _nrt=False)
def slab_free_619(I, F, slab, head, tail, cnt, cpu, t):
    """``__slab_free()`` of v6.19 (chain ``head..tail`` of ``cnt`` objects of ``slab``, see the module
    docstring). Counts ``free_slowpath``. Returns ``(t, path)``."""
    I[ST + _st.S_FREE_SLOWPATH] += 1
    b = slb(I, slab)
    prior = I[b + SL_FREELIST]
    was_frozen = I[b + SL_FROZEN] == 1
    new_inuse = I[b + SL_INUSE] - cnt
    node = I[b + SL_NODE]
    locked = False
    on_node_partial = False
    if (new_inuse == 0 or prior < 0) and not was_frozen:
        if prior >= 0:  # with cpu partial lists only a slab that had free objects needs the lock
            t = list_lock(I, F, node, cpu, t)
            locked = True
            on_node_partial = I[b + SL_WHERE] == W_NODE_PARTIAL
    I[onext_at(I, tail)] = prior
    I[b + SL_FREELIST] = head
    I[b + SL_INUSE] = new_inuse
    t += F[C_LOCKED_CX]
    if not locked:
        if was_frozen:
            I[ST + _st.S_FREE_FROZEN] += 1
            return t, _st.P_FREE_FROZEN
        if prior < 0:
            t, drained = put_cpu_partial(I, F, slab, True, cpu, t)
            I[ST + _st.S_CPU_PARTIAL_FREE] += 1
            if drained:
                return t, _st.P_FREE_CPU_PARTIAL_DRAIN
            return t, _st.P_FREE_CPU_PARTIAL
        return t, _st.P_FREE_PARTIAL
    if not on_node_partial:  # on some CPU's partial list: leave it there
        t = list_unlock(I, F, node, cpu, t)
        return t, _st.P_FREE_LIST_LOCK
    if new_inuse == 0 and I[ndb(I, node) + ND_NR_PARTIAL] >= I[CFG + CF_MIN_PARTIAL]:
        return discard_empty_slab(I, F, slab, node, True, cpu, t), _st.P_FREE_LIST_LOCK
    t = list_unlock(I, F, node, cpu, t)
    return t, _st.P_FREE_LIST_LOCK


@njit(cache=True, _nrt=False, inline='always')
def do_slab_free(I, F, slab, head, tail, cnt, cpu, t):
    """``do_slab_free()``: if ``slab`` is this CPU's cpu slab, push the chain onto ``c->freelist`` with
    ``this_cpu_try_cmpxchg128`` (``free_fastpath``, the steps of ``cpu_slab_free``), else ``__slab_free()``
    (``function_call``). Returns ``(t, path)``."""
    c = ccb(I, cpu)
    if I[c + CC_SLAB] == slab:
        I[onext_at(I, tail)] = I[c + CC_FREELIST]
        I[c + CC_FREELIST] = head
        I[ST + _st.S_FREE_FASTPATH] += 1
        return t + F[SEG_CS_FREE] + touch(I, F, cpu, K_CS_FREE, head, -1, -1), _st.P_FREE_FASTPATH
    return slab_free_619(I, F, slab, head, tail, cnt, cpu, t + F[C_CALL])


@njit(cache=True, _nrt=False, inline='always')
def slab_free(I, F, obj, cpu, t):
    """``slab_free()`` of one object without sheaves: ``do_slab_free()`` on its slab. The cpu-slab test
    is done on the object's address range, as the kernel compares ``slab == c->slab`` without a
    division. Returns ``(t, path)``."""
    c = ccb(I, cpu)
    cs = I[c + CC_SLAB]
    objs = I[CFG + CF_OBJS]
    if cs >= 0 and 0 <= obj - cs * objs < objs:
        return do_slab_free(I, F, cs, obj, obj, 1, cpu, t)
    t += touch_object(I, F, cpu, obj, True)  # set_freepointer(): the object joins its slab's freelist
    return slab_free_619(I, F, obj // objs, obj, obj, 1, cpu, t + F[C_CALL])


@njit(cache=True, _nrt=False)
def alloc_bulk(I, F, dst, size, cpu, t):
    """``__kmem_cache_alloc_bulk()`` (v6.19) into ``I[dst:dst + size]``: under the cpu slab lock
    (``irq_save_restore``) pop ``c->freelist`` object by object (``alloc_fastpath``, ``bulk_object``
    each); when it is empty, drop the lock and take one object through ``___slab_alloc()``, which
    reloads ``c->freelist``, then relock. Returns ``t``."""
    c = ccb(I, cpu)
    on = I[H_ONEXT]
    t += F[C_IRQSAVE]
    for i in range(size):
        obj = I[c + CC_FREELIST]
        if obj < 0:
            obj, t, _ = slab_alloc_slow(I, F, cpu, t + F[C_CALL])
            I[dst + i] = obj
            t += F[C_IRQSAVE]
            continue
        I[c + CC_FREELIST] = I[on + obj]
        I[dst + i] = obj
        I[ST + _st.S_ALLOC_FASTPATH] += 1
        t += F[C_BULK]
    return t


@njit(cache=True, _nrt=False)
def free_bulk(I, F, p, size, cpu, t):
    """``__kmem_cache_free_bulk()`` (v6.19) of the ``size`` objects at ``I[p:]``:
    ``build_detached_freelist()`` groups, each through ``do_slab_free()`` (the fast path for the cpu
    slab's group). ``bulk_object`` per object. Returns ``t``."""
    t += size * F[C_BULK]
    while size > 0:
        size, slab, head, tail, cnt = build_detached_freelist(I, p, size)
        t, _ = do_slab_free(I, F, slab, head, tail, cnt, cpu, t)
    return t

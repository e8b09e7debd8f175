"""SLUB per-CPU sheaves (``struct slub_percpu_sheaves``: ``main`` and ``spare``; v6.18/v6.19 and v7.0 ``mm/slub.c``) and
the two kernel entry points every model shares, :func:`kmem_cache_alloc` and :func:`kmem_cache_free`.

Two kernels:

* **6.18/6.19** (``V_CPU_SLAB``): sheaves only on caches created with ``sheaf_capacity`` (opt-in), sitting
  *on top of* the cpu slab of :mod:`allocsim.kernel.cpu_slab` — a sheaf is refilled with
  ``__kmem_cache_alloc_bulk()`` (which drains ``c->freelist``: objects are cached twice) and flushed
  with ``__kmem_cache_free_bulk()``. Without sheaves the same entry points are the plain 6.19 cpu slab.
* **7.0** (``V_70``): sheaves on every cache; refill from the node partial lists
  (``refill_objects()``), flush and fallbacks straight to the slabs (``__slab_free()`` without frozen
  slabs), no cpu slab (:mod:`allocsim.kernel.slab_pages`).

Functions mirror ``alloc_from_pcs()``, ``__pcs_replace_empty_main()``, ``free_to_pcs()``,
``__pcs_replace_full_main()``, ``__pcs_install_empty_sheaf()``, ``refill_sheaf()``,
``alloc_empty_sheaf()``, ``sheaf_flush_unused()`` and ``sheaf_flush_main()`` (v6.19 ``mm/slub.c``:
``alloc_from_pcs()`` line 5078, ``__pcs_replace_empty_main()`` line 4976, ``free_to_pcs()`` line 6183,
``__pcs_replace_full_main()`` line 6076; v7.0 ``mm/slub.c``: lines 4672, 4561, 5764, 5641); the barn helpers are in :mod:`allocsim.kernel.barn`. Steps the kernel takes only to recover from a
race (a migration or an interrupt between unlock and relock) cannot happen when each call runs to
completion, and are left out where the docstrings say so.

Costs (``data/costs.csv``): ``local_trylock`` + ``local_unlock`` ``local_trylock_pair``; a sheaf array
slot or a pointer swap ``l1_hit``; the ``kmem_cache_alloc``/``kfree`` call itself ``function_call``
(for a cache with sheaves; without them the measured cpu-slab fast-path cost includes the call); a new
sheaf (``kzalloc`` of ``32 + 8·capacity`` bytes) a kmalloc fast path (6.19: ``percpu_cmpxchg16b``; 7.0:
``local_trylock_pair`` + ``l1_hit``) plus ``function_call`` and one ``l1_hit`` per 64-byte line zeroed;
``sheaf_flush_main()`` copies 8 pointers per ``l1_hit``.

**Interrupts and ``local_trylock``.** The workload says in which context each call runs
(:mod:`allocsim.kernel.program`); the model decides, deterministically, whether an interrupt-context call found
the CPU's ``cpu_sheaves`` lock held by the task it interrupted (then ``local_trylock()`` fails and the
call takes the slab path, as the kernel does). Placement rule: a maximal run of consecutive
HARDIRQ/SOFTIRQ events in a CPU's program is *one interrupt*; it arrives at an instant uniformly
distributed over the CPU's time since the previous interrupt ended, so it lands inside a task-context
locked section with probability ``held / window`` — the cycles the task held the lock in that window
over the window's length. The draw is a pre-generated seeded uniform (the same array feeds the
pure-Python reference); if it lands inside, *every* call of that interrupt fails the trylock (the
interrupted holder cannot run until the handler returns). Softirqs are treated like hardirqs (they run
on interrupt exit and can interrupt the task the same way).

Allocation in interrupt context uses ``GFP_ATOMIC``: in 6.19 a sheaf is then not refilled
(``gfpflags_allow_blocking()`` is false) and the allocation falls back to the cpu slab; in 7.0
``gfpflags_allow_spinning()`` is true and the refill happens.
"""

from __future__ import annotations

from numba import njit

from allocsim.facts import costs as _costs
from allocsim.kernel import cpu_slab as _cpu
from allocsim.kernel import stats as _st
from allocsim.kernel.barn import (
    E2BIG, SH_NEXT, SH_SIZE, barn_get_empty_sheaf, barn_put_empty_sheaf, barn_put_full_sheaf,
    barn_replace_empty_sheaf, barn_replace_full_sheaf, shb,
)
from allocsim.kernel.slab_pages import (
    alloc_single_70, free_bulk_70, node_of_cpu, refill_objects, slab_free_70, slab_of, slb, take_number
)
from allocsim.kernel.state import (
    CFG, CF_CAP, CF_MAX_SHEAVES, CF_NNODES, CF_NOWAIT_FAILS, CF_SHEAVES, CF_VERSION,
    ERR_SHEAVES, G_SHEAF_FREE_HEAD, G_SHEAF_NEXT_NEW, H_IRQ, H_PCS, H_SCRATCH, H_SH, H_SHOBJ, NIQ, NPCS, NSH,
    CF_HIER, K_ALLOC_ENTRY, K_FREE_ENTRY, K_LOCK, K_PCS_ALLOC, K_PCS_FREE, K_PCS_FREE_CHECK,
    SEG_ALLOC_ENTRY, SEG_FREE_ENTRY, SEG_LOCK, SEG_PCS_ALLOC, SEG_PCS_FREE, SEG_PCS_FREE_CHECK, SEG_SHEAF_KMALLOC,
    SL_NODE, ST, V_70
)
from allocsim.kernel.memory import touch, touch_object, touch_slot
from allocsim.kernel.program import TASK

C_L1 = _costs.C_L1_HIT
C_CALL = _costs.C_FUNCTION_CALL

#: ``#define PCS_BATCH_MAX 32U`` (v6.19 / v7.0 ``mm/slub.c``, beside ``struct slub_percpu_sheaves``).
PCS_BATCH_MAX = 32

# struct slub_percpu_sheaves columns
PCS_MAIN, PCS_SPARE = range(2)
assert NPCS == 2
# interrupt-placement bookkeeping, per CPU (in F)
IQ_WIN_START, IQ_HELD, IQ_LOCKED_AT, IQ_FAIL, IQ_IN_IRQ = range(5)
assert NIQ == 5


@njit(cache=True, _nrt=False, inline='always')
def pcb(I, cpu):
    """Offset of ``cpu``'s ``slub_percpu_sheaves`` row in ``I``."""
    return I[H_PCS] + cpu * NPCS


@njit(cache=True, _nrt=False, inline='always')
def objs_at(I, sheaf):
    """Offset of ``sheaf->objects[0]`` in ``I``."""
    cap = I[CFG + CF_CAP]
    return I[H_SHOBJ] + sheaf * (cap if cap > 0 else 1)


@njit(cache=True, _nrt=False, inline='always')
def iqb(I, cpu):
    """Offset of ``cpu``'s interrupt bookkeeping in ``F``."""
    return I[H_IRQ] + cpu * NIQ


# ------------------------------------------------------------------------------------------------
# local_trylock on cpu_sheaves->lock, and where interrupts land

@njit(cache=True, _nrt=False, inline='always')
def pcs_lock(I, F, cpu, t):
    """``local_trylock()`` that succeeds (the caller knows it can), with its ``local_unlock()``: the steps
    of ``local_trylock`` in ``data/kernel/steps.yaml`` (``s->cpu_sheaves``, ``this_cpu_off``, the preempt
    pair, ``tl->acquired``)."""
    t += F[SEG_LOCK] + touch(I, F, cpu, K_LOCK, -1, -1, -1)
    F[iqb(I, cpu) + IQ_LOCKED_AT] = t
    return t


@njit(cache=True, _nrt=False, inline='always')
def pcs_unlock(I, F, cpu, ctx, t):
    """``local_unlock()``; a task-context holder adds its holding time to the interrupt window."""
    if ctx == TASK:
        q = iqb(I, cpu)
        F[q + IQ_HELD] += t - F[q + IQ_LOCKED_AT]
    return t


@njit(cache=True, _nrt=False, inline='always')
def trylock_ok(I, F, cpu, ctx, u, now):
    """Whether ``local_trylock()`` succeeds for a call in context ``ctx`` at time ``now`` (see the
    module docstring): always in task context; for the first call of an interrupt, a draw ``u`` against
    the share of the window the task held the lock; later calls of the same interrupt repeat it."""
    q = iqb(I, cpu)
    if ctx == TASK:
        F[q + IQ_IN_IRQ] = 0.0
        return True
    if F[q + IQ_IN_IRQ] == 0.0:
        window = now - F[q + IQ_WIN_START]
        p = F[q + IQ_HELD] / window if window > 0.0 else 0.0
        F[q + IQ_FAIL] = 1.0 if u < p else 0.0
        F[q + IQ_HELD] = 0.0
        F[q + IQ_IN_IRQ] = 1.0
    return F[q + IQ_FAIL] == 0.0


@njit(cache=True, _nrt=False, inline='always')
def irq_event_done(I, F, cpu, ctx, t):
    """After an interrupt-context call: the next window starts when it ends."""
    if ctx != TASK:
        F[iqb(I, cpu) + IQ_WIN_START] = t


# ------------------------------------------------------------------------------------------------
# Sheaves from and to slabs

@njit(cache=True, _nrt=False)
def alloc_empty_sheaf(I, F, cpu, nowait, t):
    """``alloc_empty_sheaf()``: a zeroed sheaf from kmalloc (``sheaf_alloc``), or -1 for a
    ``GFP_NOWAIT`` request when the model is told such allocations fail (memory pressure). Returns
    ``(sheaf, t)``."""
    if nowait and I[CFG + CF_NOWAIT_FAILS] == 1:
        return -1, t + F[C_CALL]  # the kmalloc call, failing
    sheaf = take_number(I, G_SHEAF_FREE_HEAD, G_SHEAF_NEXT_NEW, I[CFG + CF_MAX_SHEAVES], ERR_SHEAVES, H_SH, NSH,
                        SH_NEXT)
    s = shb(I, sheaf)
    I[s + SH_SIZE] = 0
    I[s + SH_NEXT] = -1
    I[ST + _st.S_SHEAF_ALLOC] += 1
    t += F[SEG_SHEAF_KMALLOC]  # kzalloc() on its kmalloc cache's fast path, zeroing included (steps.yaml sheaf_kmalloc)
    return sheaf, t


@njit(cache=True, _nrt=False)
def refill_sheaf(I, F, sheaf, cpu, t):
    """``refill_sheaf()``: fill the sheaf up to capacity (``sheaf_refill`` counts the objects) —
    6.19 through ``__kmem_cache_alloc_bulk()`` (the cpu slab), 7.0 through ``refill_objects()``."""
    s = shb(I, sheaf)
    size = I[s + SH_SIZE]
    to_fill = I[CFG + CF_CAP] - size
    if to_fill == 0:
        return t
    dst = objs_at(I, sheaf) + size
    if I[CFG + CF_VERSION] == V_70:
        filled, t = refill_objects(I, F, dst, to_fill, to_fill, cpu, t)
    else:
        t = _cpu.alloc_bulk(I, F, dst, to_fill, cpu, t)
        filled = to_fill
    I[s + SH_SIZE] = size + filled
    I[ST + _st.S_SHEAF_REFILL] += filled
    if I[CFG + CF_HIER] == 1:  # each object's free pointer was read off a freelist, and written into a slot
        for i in range(size, size + filled):
            t += touch_object(I, F, cpu, I[objs_at(I, sheaf) + i], False) + touch_slot(I, F, cpu, sheaf, i, True)
    return t


@njit(cache=True, _nrt=False)
def free_bulk(I, F, p, size, cpu, t):
    """``__kmem_cache_free_bulk()`` of the kernel version modelled, on the objects at ``I[p:]``."""
    if I[CFG + CF_VERSION] == V_70:
        return free_bulk_70(I, F, p, size, cpu, t)
    return _cpu.free_bulk(I, F, p, size, cpu, t)


@njit(cache=True, _nrt=False)
def sheaf_flush_unused(I, F, sheaf, cpu, t):
    """``sheaf_flush_unused()``: bulk-free every object of a detached sheaf to the slabs
    (``sheaf_flush``)."""
    s = shb(I, sheaf)
    size = I[s + SH_SIZE]
    if I[CFG + CF_HIER] == 1:  # each slot read, each object's free pointer written (the detached freelist)
        for i in range(size):
            t += touch_slot(I, F, cpu, sheaf, i, False) + touch_object(I, F, cpu, I[objs_at(I, sheaf) + i], True)
    t = free_bulk(I, F, objs_at(I, sheaf), size, cpu, t)
    I[ST + _st.S_SHEAF_FLUSH] += size
    I[s + SH_SIZE] = 0
    return t


@njit(cache=True, _nrt=False)
def sheaf_flush_main(I, F, cpu, ctx, t):
    """``sheaf_flush_main()``: empty the main sheaf in batches of up to ``PCS_BATCH_MAX`` pointers — each
    batch copied to an on-stack array under the lock (8 pointers per ``l1_hit``), then bulk-freed
    outside it (``sheaf_flush``)."""
    buf = I[H_SCRATCH]
    while True:
        t = pcs_lock(I, F, cpu, t)
        main = I[pcb(I, cpu) + PCS_MAIN]
        s = shb(I, main)
        o = objs_at(I, main)
        size = I[s + SH_SIZE]
        batch = min(PCS_BATCH_MAX, size)
        size -= batch
        for i in range(batch):
            I[buf + i] = I[o + size + i]
        I[s + SH_SIZE] = size
        if I[CFG + CF_HIER] == 1:
            for i in range(batch):
                t += touch_slot(I, F, cpu, main, size + i, False)
        else:
            t += ((batch + 7) // 8) * F[C_L1]
        t = pcs_unlock(I, F, cpu, ctx, t)
        if I[CFG + CF_HIER] == 1:
            for i in range(batch):
                t += touch_object(I, F, cpu, I[buf + i], True)
        t = free_bulk(I, F, buf, batch, cpu, t)
        I[ST + _st.S_SHEAF_FLUSH] += batch
        if size == 0:
            return t


# ------------------------------------------------------------------------------------------------
# Allocation: alloc_from_pcs() and __pcs_replace_empty_main()

@njit(cache=True, _nrt=False)
def pcs_replace_empty_main(I, F, cpu, ctx, t):
    """``__pcs_replace_empty_main()`` with the lock held and ``main`` empty: swap in a non-empty
    ``spare``; else ``barn_replace_empty_sheaf()`` (``barn_get`` / ``barn_get_fail``); else — if the gfp
    allows (6.19: blocking, i.e. task context; 7.0: always) — unlock, refill the spare or an empty sheaf
    from the barn (or a new sheaf, ``alloc_full_sheaf()``) from the slabs, relock and install it as
    ``main`` (the old empty main going to the barn in 6.19, becoming the spare in 7.0 if there is none).
    Returns ``(ok, t, path)``; when not ok the lock is released and the caller uses the slab path.

    After the relock ``main`` is still empty (nothing ran in between), so the kernel's other install
    branches — there for races — are not reachable here."""
    p = pcb(I, cpu)
    main = I[p + PCS_MAIN]
    spare = I[p + PCS_SPARE]
    if spare >= 0 and I[shb(I, spare) + SH_SIZE] > 0:
        I[p + PCS_MAIN] = spare
        I[p + PCS_SPARE] = main
        return True, t + F[C_L1], _st.P_ALLOC_SHEAF_SPARE
    node = node_of_cpu(I, cpu)
    full, t = barn_replace_empty_sheaf(I, F, node, main, cpu, t)
    if full >= 0:
        I[ST + _st.S_BARN_GET] += 1
        I[p + PCS_MAIN] = full
        return True, t, _st.P_ALLOC_SHEAF_BARN
    I[ST + _st.S_BARN_GET_FAIL] += 1
    v70 = I[CFG + CF_VERSION] == V_70
    allow = v70 or ctx == TASK
    empty = -1
    if allow:
        if spare >= 0:
            empty = spare
            I[p + PCS_SPARE] = -1
        else:
            empty, t = barn_get_empty_sheaf(I, F, node, cpu, t)
    t = pcs_unlock(I, F, cpu, ctx, t)
    if not allow:
        return False, t, -1
    if empty < 0:
        empty, t = alloc_empty_sheaf(I, F, cpu, False, t)  # alloc_full_sheaf(): GFP_KERNEL
    t = refill_sheaf(I, F, empty, cpu, t)
    t = pcs_lock(I, F, cpu, t)
    main = I[p + PCS_MAIN]
    if v70 and I[p + PCS_SPARE] < 0:
        I[p + PCS_SPARE] = main
    else:
        t = barn_put_empty_sheaf(I, F, node, main, cpu, t)
    I[p + PCS_MAIN] = empty
    return True, t, _st.P_ALLOC_SHEAF_REFILL


@njit(cache=True, _nrt=False, inline='always')
def alloc_from_pcs(I, F, cpu, ctx, t):
    """``alloc_from_pcs()`` once ``local_trylock()`` succeeded: pop ``main->objects[--size]`` (LIFO,
    ``l1_hit``), replacing an empty main first. Counts ``alloc_cpu_sheaf`` (6.19) / ``alloc_fastpath``
    (7.0). Returns ``(obj or -1, t, path)``."""
    t = pcs_lock(I, F, cpu, t)
    path = _st.P_ALLOC_SHEAF
    p = pcb(I, cpu)
    main = I[p + PCS_MAIN]
    if I[shb(I, main) + SH_SIZE] == 0:
        ok, t, path = pcs_replace_empty_main(I, F, cpu, ctx, t)
        if not ok:
            return -1, t, path
        main = I[p + PCS_MAIN]
    s = shb(I, main)
    size = I[s + SH_SIZE] - 1
    obj = I[objs_at(I, main) + size]
    I[s + SH_SIZE] = size
    t += F[SEG_PCS_ALLOC] + touch(I, F, cpu, K_PCS_ALLOC, obj, main, size)
    t = pcs_unlock(I, F, cpu, ctx, t)
    if I[CFG + CF_VERSION] == V_70:
        I[ST + _st.S_ALLOC_FASTPATH] += 1
    else:
        I[ST + _st.S_ALLOC_CPU_SHEAF] += 1
    return obj, t, path


# ------------------------------------------------------------------------------------------------
# Free: free_to_pcs() and __pcs_replace_full_main()

@njit(cache=True, _nrt=False)
def pcs_install_empty_sheaf(I, F, cpu, empty, node, t):
    """``__pcs_install_empty_sheaf()`` with the lock held and ``main`` full: with no spare, main
    becomes the spare; otherwise (the spare is full too: the barn had no empty sheaf to trade) the full
    main goes into the barn *ignoring MAX_FULL_SHEAVES* (``barn_put``). Then ``main = empty``
    (``l1_hit``). The kernel's branches for a main or spare that is no longer full (races) are not
    reachable here."""
    p = pcb(I, cpu)
    main = I[p + PCS_MAIN]
    if I[p + PCS_SPARE] < 0:
        I[p + PCS_SPARE] = main
    else:
        t = barn_put_full_sheaf(I, F, node, main, cpu, t)
        I[ST + _st.S_BARN_PUT] += 1
    I[p + PCS_MAIN] = empty
    return t + F[C_L1]


@njit(cache=True, _nrt=False)
def pcs_replace_full_main(I, F, cpu, ctx, t):
    """``__pcs_replace_full_main()`` with the lock held and ``main`` full (v6.19 ``mm/slub.c`` line 6076):

    1. no spare: an empty sheaf from the barn becomes main, main the spare — else step 4;
    2. a spare that is not full: swap;
    3. a full spare: ``barn_replace_full_sheaf()`` (``barn_put``); on ``-E2BIG`` (the barn holds
       ``MAX_FULL_SHEAVES``): ``barn_put_fail``, detach the spare, unlock, ``sheaf_flush_unused()`` it to
       the slabs and install it as the new empty main; on ``-ENOMEM`` step 4 with ``put_fail``;
    4. unlock, ``alloc_empty_sheaf(GFP_NOWAIT)`` and install it; if that fails, ``sheaf_flush_main()``.

    Returns ``(t, path)`` with the lock held and room in ``main``."""
    p = pcb(I, cpu)
    node = node_of_cpu(I, cpu)
    main = I[p + PCS_MAIN]
    spare = I[p + PCS_SPARE]
    put_fail = False
    if spare < 0:
        empty, t = barn_get_empty_sheaf(I, F, node, cpu, t)
        if empty >= 0:
            I[p + PCS_SPARE] = main
            I[p + PCS_MAIN] = empty
            return t + F[C_L1], _st.P_FREE_SHEAF_BARN_EMPTY
    elif I[shb(I, spare) + SH_SIZE] < I[CFG + CF_CAP]:
        I[p + PCS_MAIN] = spare
        I[p + PCS_SPARE] = main
        return t + F[C_L1], _st.P_FREE_SHEAF_SPARE
    else:
        empty, t = barn_replace_full_sheaf(I, F, node, main, cpu, t)
        if empty >= 0:
            I[ST + _st.S_BARN_PUT] += 1
            I[p + PCS_MAIN] = empty
            return t + F[C_L1], _st.P_FREE_SHEAF_BARN_PUT
        if empty == E2BIG:
            I[ST + _st.S_BARN_PUT_FAIL] += 1
            I[p + PCS_SPARE] = -1
            t = pcs_unlock(I, F, cpu, ctx, t)
            t = sheaf_flush_unused(I, F, spare, cpu, t)
            t = pcs_lock(I, F, cpu, t)
            t = pcs_install_empty_sheaf(I, F, cpu, spare, node, t)
            return t, _st.P_FREE_SHEAF_FLUSH
        put_fail = True
    # alloc_empty:
    t = pcs_unlock(I, F, cpu, ctx, t)
    empty, t = alloc_empty_sheaf(I, F, cpu, True, t)
    if empty >= 0:
        t = pcs_lock(I, F, cpu, t)
        t = pcs_install_empty_sheaf(I, F, cpu, empty, node, t)
        return t, _st.P_FREE_SHEAF_ALLOC_EMPTY
    if put_fail:
        I[ST + _st.S_BARN_PUT_FAIL] += 1
    t = sheaf_flush_main(I, F, cpu, ctx, t)
    t = pcs_lock(I, F, cpu, t)
    return t, _st.P_FREE_SHEAF_FLUSH_MAIN


@njit(cache=True, _nrt=False, inline='always')
def free_to_pcs(I, F, obj, cpu, ctx, t):
    """``free_to_pcs()`` once ``local_trylock()`` succeeded: ``main->objects[size++] = obj``
    (``l1_hit``), replacing a full main first. Counts ``free_cpu_sheaf`` (6.19) / ``free_fastpath``
    (7.0). Returns ``(t, path)``."""
    t = pcs_lock(I, F, cpu, t)
    path = _st.P_FREE_SHEAF
    p = pcb(I, cpu)
    main = I[p + PCS_MAIN]
    if I[shb(I, main) + SH_SIZE] == I[CFG + CF_CAP]:
        t, path = pcs_replace_full_main(I, F, cpu, ctx, t)
        main = I[p + PCS_MAIN]
    s = shb(I, main)
    size = I[s + SH_SIZE]
    I[objs_at(I, main) + size] = obj
    I[s + SH_SIZE] = size + 1
    t += F[SEG_PCS_FREE] + touch(I, F, cpu, K_PCS_FREE, obj, main, size)
    t = pcs_unlock(I, F, cpu, ctx, t)
    if I[CFG + CF_VERSION] == V_70:
        I[ST + _st.S_FREE_FASTPATH] += 1
    else:
        I[ST + _st.S_FREE_CPU_SHEAF] += 1
    return t, path


# ------------------------------------------------------------------------------------------------
# The entry points: kmem_cache_alloc() / kfree() → slab_alloc_node() / slab_free()

@njit(cache=True, _nrt=False, inline='always')
def kmem_cache_alloc(I, F, cpu, ctx, lock_ok, t):
    """``kmalloc()`` / ``kmem_cache_alloc()`` → ``slab_alloc_node()``: the entry point and the hooks
    around the allocator (``SEG_ALLOC_ENTRY``: ``kmalloc_entry`` or ``kmem_cache_alloc_entry``, then
    ``slab_alloc_hooks`` of ``data/kernel/steps.yaml`` — the call, ``slab_pre_alloc_hook()``,
    ``kfence_alloc()``, ``slab_post_alloc_hook()`` with its zeroing and memcg work as the hook switches
    say, charged on whichever path served the object); sheaves first when the cache has them, then the
    slab path of the kernel version (6.19 ``__slab_alloc_node()``; 7.0 ``___slab_alloc()``). ``lock_ok`` is
    :func:`trylock_ok` for this call (a failed ``local_trylock()`` runs the steps of ``local_trylock``).
    Returns ``(obj, t, path)``."""
    t += F[SEG_ALLOC_ENTRY]
    bypass = False
    if I[CFG + CF_SHEAVES] == 1:
        if lock_ok:
            obj, t, path = alloc_from_pcs(I, F, cpu, ctx, t)
            if obj >= 0:
                return obj, t + touch(I, F, cpu, K_ALLOC_ENTRY, obj, -1, -1), path
        else:
            t += F[SEG_LOCK] + touch(I, F, cpu, K_LOCK, -1, -1, -1)
            bypass = True
    if I[CFG + CF_VERSION] == V_70:
        obj, t, path = alloc_single_70(I, F, cpu, t + F[C_CALL])
        t += touch_object(I, F, cpu, obj, False)  # the free pointer of the object taken off the slab
    else:
        obj, t, path = _cpu.slab_alloc(I, F, cpu, t)
    if bypass:
        path = _st.P_ALLOC_BYPASS_TRYLOCK
    return obj, t + touch(I, F, cpu, K_ALLOC_ENTRY, obj, -1, -1), path


@njit(cache=True, _nrt=False, inline='always')
def kmem_cache_free(I, F, obj, cpu, ctx, lock_ok, t):
    """``kfree()`` / ``kmem_cache_free()`` → ``slab_free()``: the entry point, the lookup of the
    object's slab and cache and the free hooks (``SEG_FREE_ENTRY``: ``kfree_entry`` or
    ``kmem_cache_free_entry``, then ``slab_free_hooks``), then into the sheaves when the cache has them
    (after ``pcs_free_check``) and the object's slab is on this CPU's node (remote objects bypass them,
    ``free_remote_node``), else ``do_slab_free()`` (6.19) / ``__slab_free()`` (7.0). Returns ``(t, path)``."""
    t += F[SEG_FREE_ENTRY] + touch(I, F, cpu, K_FREE_ENTRY, obj, -1, -1)
    override = -1
    if I[CFG + CF_SHEAVES] == 1:
        t += F[SEG_PCS_FREE_CHECK] + touch(I, F, cpu, K_PCS_FREE_CHECK, obj, -1, -1)
        local = I[CFG + CF_NNODES] == 1 or I[slb(I, slab_of(I, obj)) + SL_NODE] == node_of_cpu(I, cpu)
        if local:
            if lock_ok:
                return free_to_pcs(I, F, obj, cpu, ctx, t)
            t += F[SEG_LOCK] + touch(I, F, cpu, K_LOCK, -1, -1, -1)
            override = _st.P_FREE_BYPASS_TRYLOCK
        else:
            override = _st.P_FREE_REMOTE_NODE
    if I[CFG + CF_VERSION] == V_70:
        t += touch_object(I, F, cpu, obj, True)  # set_freepointer(): the object joins the slab's freelist
        t, path = slab_free_70(I, F, slab_of(I, obj), obj, obj, 1, cpu, t + F[C_CALL])
    else:
        t, path = _cpu.slab_free(I, F, obj, cpu, t)
    if override >= 0:
        path = override
    return t, path

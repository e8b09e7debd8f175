"""Pure-Python reference of :mod:`allocsim.kernel.sheaves` and :mod:`allocsim.kernel.barn`: a sheaf is a Python list
(a stack of objects), a barn two Python lists (stacks of sheaves), ``main``/``spare`` per CPU."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from allocsim.kernel.oracle import cpu_slab as cs
from allocsim.kernel.oracle.memory import touch, touch_object, touch_slot
from allocsim.kernel.oracle.slab_pages import State, alloc_single_70, free_bulk_70, refill_objects, slab_free_70

PCS_BATCH_MAX = 32


class Sheaf:
    """A sheaf; ``id`` its number (the CPUs' first mains 0 … ncpu-1, then in the order they are made), which
    places it in memory."""

    def __init__(self, id: int):
        self.id = id
        self.objects: list = []


@dataclass
class Barn:
    full: list = field(default_factory=list)  # stacks: the end is the list head
    empty: list = field(default_factory=list)


@dataclass
class Pcs:
    main: Sheaf
    spare: Sheaf | None = None


@dataclass
class IrqWindow:
    start: float = 0.0
    held: float = 0.0
    locked_at: float = 0.0
    fail: bool = False
    in_irq: bool = False


def attach(m: State):
    m.barns = [Barn() for _ in range(m.nnodes)]
    m.pcs = [Pcs(Sheaf(cpu)) for cpu in range(m.ncpu)] if m.sheaves else []
    m.irq = [IrqWindow() for _ in range(m.ncpu)]
    m.n_sheaves = m.ncpu if m.sheaves else 0


# ---------------------------------------------------------------- local lock and interrupts

def pcs_lock(m, cpu, t):
    t += m.hot["lock"] + touch(m, cpu, "local_trylock")
    m.irq[cpu].locked_at = t
    return t


def pcs_unlock(m, cpu, ctx, t):
    if ctx == 0:
        m.irq[cpu].held += t - m.irq[cpu].locked_at
    return t


def trylock_ok(m, cpu, ctx, u, now):
    w = m.irq[cpu]
    if ctx == 0:
        w.in_irq = False
        return True
    if not w.in_irq:
        window = now - w.start
        p = w.held / window if window > 0 else 0.0
        w.fail = u < p
        w.held = 0.0
        w.in_irq = True
    return not w.fail


def irq_event_done(m, cpu, ctx, t):
    if ctx != 0:
        m.irq[cpu].start = t


# ---------------------------------------------------------------- barn

def barn_get_empty_sheaf(m, node, cpu, t):
    t += m.c["l1_hit"]
    b = m.barns[node]
    if not b.empty:
        return None, t
    t = m.lock("barn", node, cpu, t)
    sheaf = b.empty.pop()
    t += m.c["l1_hit"]
    return sheaf, m.unlock("barn", node, cpu, t)


def _barn_put(m, node, sheaf, which, cpu, t):
    t = m.lock("barn", node, cpu, t)
    getattr(m.barns[node], which).append(sheaf)
    t += m.c["l1_hit"]
    return m.unlock("barn", node, cpu, t)


def barn_put_empty_sheaf(m, node, sheaf, cpu, t):
    return _barn_put(m, node, sheaf, "empty", cpu, t)


def barn_put_full_sheaf(m, node, sheaf, cpu, t):
    return _barn_put(m, node, sheaf, "full", cpu, t)


def barn_replace_empty_sheaf(m, node, empty, cpu, t):
    t += m.c["l1_hit"]
    b = m.barns[node]
    if not b.full:
        return None, t
    t = m.lock("barn", node, cpu, t)
    full = b.full.pop()
    b.empty.append(empty)
    t += 2 * m.c["l1_hit"]
    return full, m.unlock("barn", node, cpu, t)


def barn_replace_full_sheaf(m, node, full, cpu, t):
    t += m.c["l1_hit"]
    b = m.barns[node]
    if len(b.full) >= m.max_full:
        return "E2BIG", t
    if not b.empty:
        return "ENOMEM", t
    t = m.lock("barn", node, cpu, t)
    empty = b.empty.pop()
    b.full.append(full)
    t += 2 * m.c["l1_hit"]
    return empty, m.unlock("barn", node, cpu, t)


# ---------------------------------------------------------------- sheaves and slabs

def alloc_empty_sheaf(m, cpu, nowait, t):
    if nowait and m.nowait_fails:
        return None, t + m.c["function_call"]
    sheaf = Sheaf(m.n_sheaves)
    m.n_sheaves += 1
    m.stat("sheaf_alloc")
    t += m.hot["sheaf_kmalloc"]
    return sheaf, t


def refill_sheaf(m, sheaf, cpu, t):
    to_fill = m.capacity - len(sheaf.objects)
    if to_fill == 0:
        return t
    got = []
    if m.v70:
        filled, t = refill_objects(m, got, to_fill, to_fill, cpu, t)
    else:
        t = cs.alloc_bulk(m, got, to_fill, cpu, t)
        filled = to_fill
    sheaf.objects.extend(got)
    m.stat("sheaf_refill", filled)
    if m.memory is not None:  # each object's free pointer read off a freelist, then written into its slot
        for i in range(len(sheaf.objects) - filled, len(sheaf.objects)):
            t += touch_object(m, cpu, sheaf.objects[i], False) + touch_slot(m, cpu, sheaf.id, i, True)
    return t


def free_bulk(m, p, size, cpu, t):
    return free_bulk_70(m, p, size, cpu, t) if m.v70 else cs.free_bulk(m, p, size, cpu, t)


def sheaf_flush_unused(m, sheaf, cpu, t):
    n = len(sheaf.objects)
    if m.memory is not None:  # each slot read, each object's free pointer written (the detached freelist)
        for i in range(n):
            t += touch_slot(m, cpu, sheaf.id, i, False) + touch_object(m, cpu, sheaf.objects[i], True)
    t = free_bulk(m, list(sheaf.objects), n, cpu, t)
    m.stat("sheaf_flush", n)
    sheaf.objects = []
    return t


def sheaf_flush_main(m, cpu, ctx, t):
    while True:
        t = pcs_lock(m, cpu, t)
        main = m.pcs[cpu].main
        batch = min(PCS_BATCH_MAX, len(main.objects))
        buf = main.objects[len(main.objects) - batch:]
        del main.objects[len(main.objects) - batch:]
        if m.memory is None:
            t += math.ceil(batch / 8) * m.c["l1_hit"]
        else:  # the slots copied to the on-stack array
            for i in range(batch):
                t += touch_slot(m, cpu, main.id, len(main.objects) + i, False)
        t = pcs_unlock(m, cpu, ctx, t)
        if m.memory is not None:  # the free pointers linked by the bulk free
            for obj in buf:
                t += touch_object(m, cpu, obj, True)
        t = free_bulk(m, buf, batch, cpu, t)
        m.stat("sheaf_flush", batch)
        if not main.objects:
            return t


# ---------------------------------------------------------------- allocation

def pcs_replace_empty_main(m, cpu, ctx, t):
    p = m.pcs[cpu]
    if p.spare is not None and p.spare.objects:
        p.main, p.spare = p.spare, p.main
        return True, t + m.c["l1_hit"], "alloc_sheaf_spare"
    node = m.node_of_cpu(cpu)
    full, t = barn_replace_empty_sheaf(m, node, p.main, cpu, t)
    if full is not None:
        m.stat("barn_get")
        p.main = full
        return True, t, "alloc_sheaf_barn"
    m.stat("barn_get_fail")
    allow = m.v70 or ctx == 0
    empty = None
    if allow:
        if p.spare is not None:
            empty, p.spare = p.spare, None
        else:
            empty, t = barn_get_empty_sheaf(m, node, cpu, t)
    t = pcs_unlock(m, cpu, ctx, t)
    if not allow:
        return False, t, None
    if empty is None:
        empty, t = alloc_empty_sheaf(m, cpu, False, t)
    t = refill_sheaf(m, empty, cpu, t)
    t = pcs_lock(m, cpu, t)
    if m.v70 and p.spare is None:
        p.spare = p.main
    else:
        t = barn_put_empty_sheaf(m, node, p.main, cpu, t)
    p.main = empty
    return True, t, "alloc_sheaf_refill"


def alloc_from_pcs(m, cpu, ctx, t):
    t = pcs_lock(m, cpu, t)
    path = "alloc_sheaf"
    if not m.pcs[cpu].main.objects:
        ok, t, path = pcs_replace_empty_main(m, cpu, ctx, t)
        if not ok:
            return None, t, path
    main = m.pcs[cpu].main
    obj = main.objects.pop()
    t += m.hot["pcs_alloc"] + touch(m, cpu, "pcs_alloc", obj, main.id, len(main.objects))
    t = pcs_unlock(m, cpu, ctx, t)
    m.stat("alloc_fastpath" if m.v70 else "alloc_cpu_sheaf")
    return obj, t, path


# ---------------------------------------------------------------- free

def pcs_install_empty_sheaf(m, cpu, empty, node, t):
    p = m.pcs[cpu]
    if p.spare is None:
        p.spare = p.main
    else:
        t = barn_put_full_sheaf(m, node, p.main, cpu, t)
        m.stat("barn_put")
    p.main = empty
    return t + m.c["l1_hit"]


def pcs_replace_full_main(m, cpu, ctx, t):
    p = m.pcs[cpu]
    node = m.node_of_cpu(cpu)
    put_fail = False
    if p.spare is None:
        empty, t = barn_get_empty_sheaf(m, node, cpu, t)
        if empty is not None:
            p.spare, p.main = p.main, empty
            return t + m.c["l1_hit"], "free_sheaf_barn_empty"
    elif len(p.spare.objects) < m.capacity:
        p.main, p.spare = p.spare, p.main
        return t + m.c["l1_hit"], "free_sheaf_spare"
    else:
        empty, t = barn_replace_full_sheaf(m, node, p.main, cpu, t)
        if isinstance(empty, Sheaf):
            m.stat("barn_put")
            p.main = empty
            return t + m.c["l1_hit"], "free_sheaf_barn_put"
        if empty == "E2BIG":
            m.stat("barn_put_fail")
            to_flush, p.spare = p.spare, None
            t = pcs_unlock(m, cpu, ctx, t)
            t = sheaf_flush_unused(m, to_flush, cpu, t)
            t = pcs_lock(m, cpu, t)
            t = pcs_install_empty_sheaf(m, cpu, to_flush, node, t)
            return t, "free_sheaf_flush"
        put_fail = True
    t = pcs_unlock(m, cpu, ctx, t)
    empty, t = alloc_empty_sheaf(m, cpu, True, t)
    if empty is not None:
        t = pcs_lock(m, cpu, t)
        return pcs_install_empty_sheaf(m, cpu, empty, node, t), "free_sheaf_alloc_empty"
    if put_fail:
        m.stat("barn_put_fail")
    t = sheaf_flush_main(m, cpu, ctx, t)
    return pcs_lock(m, cpu, t), "free_sheaf_flush_main"


def free_to_pcs(m, obj, cpu, ctx, t):
    t = pcs_lock(m, cpu, t)
    path = "free_sheaf"
    if len(m.pcs[cpu].main.objects) == m.capacity:
        t, path = pcs_replace_full_main(m, cpu, ctx, t)
    main = m.pcs[cpu].main
    main.objects.append(obj)
    t += m.hot["pcs_free"] + touch(m, cpu, "pcs_free", obj, main.id, len(main.objects) - 1)
    t = pcs_unlock(m, cpu, ctx, t)
    m.stat("free_fastpath" if m.v70 else "free_cpu_sheaf")
    return t, path


# ---------------------------------------------------------------- entry points

def kmem_cache_alloc(m, cpu, ctx, lock_ok, t):
    t += m.hot["alloc_entry"]
    bypass = False
    if m.sheaves:
        if lock_ok:
            obj, t, path = alloc_from_pcs(m, cpu, ctx, t)
            if obj is not None:
                return obj, t + touch(m, cpu, "alloc_entry", obj), path
        else:
            t += m.hot["lock"] + touch(m, cpu, "local_trylock")
            bypass = True
    if m.v70:
        obj, t, path = alloc_single_70(m, cpu, t + m.c["function_call"])
        t += touch_object(m, cpu, obj, False)  # the free pointer of the object taken off the slab
    else:
        obj, t, path = cs.slab_alloc(m, cpu, t)
    return obj, t + touch(m, cpu, "alloc_entry", obj), ("alloc_bypass_trylock" if bypass else path)


def kmem_cache_free(m, obj, cpu, ctx, lock_ok, t):
    slab = m.slab_of(obj)
    override = None
    t += m.hot["free_entry"] + touch(m, cpu, "free_entry", obj)
    if m.sheaves:
        t += m.hot["pcs_free_check"] + touch(m, cpu, "pcs_free_check", obj)
        if slab.node == m.node_of_cpu(cpu):
            if lock_ok:
                return free_to_pcs(m, obj, cpu, ctx, t)
            t += m.hot["lock"] + touch(m, cpu, "local_trylock")
            override = "free_bypass_trylock"
        else:
            override = "free_remote_node"
    if m.v70:
        t += touch_object(m, cpu, obj, True)  # set_freepointer(): the object joins its slab's freelist
        t, path = slab_free_70(m, slab, [obj], cpu, t + m.c["function_call"])
    else:
        if m.cpu[cpu].slab is not slab:
            t += touch_object(m, cpu, obj, True)  # set_freepointer(): the object joins its slab's freelist
        t, path = cs.do_slab_free(m, slab, [obj], cpu, t)
    return t, (override or path)

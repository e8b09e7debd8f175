"""Pure-Python reference of :mod:`allocsim.kernel.cpu_slab` (SLUB <= 6.19): per CPU a freelist (a Python
list, head first), a cpu slab and a cpu partial list (a Python list, head first)."""

from __future__ import annotations

from dataclasses import dataclass, field

from allocsim.kernel.oracle.slab_pages import (
    CPU_PARTIAL, CPU_SLAB, NODE_PARTIAL, NONE, Slab, State, add_partial, discard_slab, new_slab, remove_partial,
)
from allocsim.kernel.oracle.slab_pages import free_bulk as sp_free_bulk
from allocsim.kernel.oracle.memory import touch, touch_object


@dataclass
class KmemCacheCpu:
    freelist: list = field(default_factory=list)
    slab: Slab | None = None
    partial: list = field(default_factory=list)


def attach(m: State):
    m.cpu = [KmemCacheCpu() for _ in range(m.ncpu)]


def get_freelist(m: State, slab: Slab, t):
    objs = slab.freelist
    slab.freelist = []
    slab.inuse = m.objs
    slab.frozen = bool(objs)
    return objs, t + m.c["locked_cmpxchg16b"]


def put_partials(m: State, slabs: list, cpu, t):
    cur = -1
    discard = []
    for slab in slabs:
        if slab.node != cur:
            if cur >= 0:
                t = m.unlock("list", cur, cpu, t)
            cur = slab.node
            t = m.lock("list", cur, cpu, t)
        t += m.c["l1_hit"]
        if slab.inuse == 0 and len(m.nodes[slab.node].partial) >= m.min_partial:
            slab.where, slab.cpu = NONE, -1
            discard.insert(0, slab)
        else:
            add_partial(m, slab, True)
            m.stat("free_add_partial")
    if cur >= 0:
        t = m.unlock("list", cur, cpu, t)
    for slab in discard:
        m.stat("deactivate_empty")
        t = discard_slab(m, slab, t)
    return t


def put_cpu_partial(m: State, slab: Slab, drain: bool, cpu, t):
    t += m.c["irq_save_restore"] + m.c["l1_hit"]
    c = m.cpu[cpu]
    to_put = None
    if c.partial and drain and len(c.partial) >= m.cpu_partial_slabs:
        to_put = c.partial
        c.partial = []
    c.partial.insert(0, slab)
    slab.where, slab.cpu = CPU_PARTIAL, cpu
    if to_put is not None:
        t = put_partials(m, to_put, cpu, t)
        m.stat("cpu_partial_drain")
        return t, True
    return t, False


def get_partial_node(m: State, node, cpu, t):
    t += m.c["l1_hit"]
    n = m.nodes[node]
    if not n.partial:
        return None, t
    t = m.lock("list", node, cpu, t)
    partial = None
    moved = 0
    for slab in list(n.partial):
        remove_partial(m, slab)
        t += m.c["l1_hit"]
        if partial is None:
            partial = slab
            m.stat("alloc_from_partial")
            if m.cpu_partial_slabs == 0:
                break
        else:
            t, _ = put_cpu_partial(m, slab, False, cpu, t)
            m.stat("cpu_partial_node")
            moved += 1
            if moved > m.cpu_partial_slabs // 2:
                break
    t = m.unlock("list", node, cpu, t)
    return partial, t


def get_partial(m: State, cpu, t):
    local = m.node_of_cpu(cpu)
    slab, t = get_partial_node(m, local, cpu, t)
    if slab is not None:
        return slab, t
    if m.nnodes > 1 and not (int(t) % 1024 > m.defrag_ratio):
        for k in range(1, m.nnodes):
            node = (local + k) % m.nnodes
            if len(m.nodes[node].partial) > m.min_partial:
                slab, t = get_partial_node(m, node, cpu, t)
                if slab is not None:
                    return slab, t
    return None, t


def _load(c: KmemCacheCpu, objs: list):
    c.freelist = objs[1:]
    return objs[0]


def slab_alloc_slow(m: State, cpu, t):
    m.stat("alloc_slowpath")
    c = m.cpu[cpu]
    if c.slab is not None:
        t += m.c["irq_save_restore"]
        objs, t = get_freelist(m, c.slab, t)
        if objs:
            m.stat("alloc_refill")
            return _load(c, objs), t + m.c["l1_hit"], "alloc_refill"
        c.slab.where, c.slab.cpu = NONE, -1
        c.slab = None
        m.stat("deactivate_bypass")
    if c.partial:
        t += m.c["irq_save_restore"] + m.c["l1_hit"]
        slab = c.partial.pop(0)
        slab.where, slab.cpu = CPU_SLAB, cpu
        c.slab = slab
        objs, t = get_freelist(m, slab, t)
        m.stat("cpu_partial_alloc")
        return _load(c, objs), t + m.c["l1_hit"], "alloc_cpu_partial"
    slab, t = get_partial(m, cpu, t)
    path = "alloc_from_partial"
    if slab is not None:
        objs, t = get_freelist(m, slab, t)
        slab.frozen = True
    else:
        slab, t = new_slab(m, m.node_of_cpu(cpu), t)
        m.stat("alloc_slab")
        objs = slab.freelist
        slab.freelist = []
        slab.inuse = m.objs
        slab.frozen = True
        path = "alloc_slab"
    t += m.c["irq_save_restore"]
    slab.where, slab.cpu = CPU_SLAB, cpu
    c.slab = slab
    return _load(c, objs), t + m.c["l1_hit"], path


def slab_alloc(m: State, cpu, t):
    c = m.cpu[cpu]
    if c.freelist and c.slab is not None:
        obj = c.freelist.pop(0)
        m.stat("alloc_fastpath")
        return obj, t + m.hot["cs_alloc"] + touch(m, cpu, "cpu_slab_alloc", obj), "alloc_fastpath"
    obj, t, path = slab_alloc_slow(m, cpu, t + m.c["function_call"])
    return obj, t + touch_object(m, cpu, obj, False), path


def slab_free_619(m: State, slab: Slab, chain: list, cpu, t):
    m.stat("free_slowpath")
    was_full = not slab.freelist
    was_frozen = slab.frozen
    new_inuse = slab.inuse - len(chain)
    locked = on_node_partial = False
    # the kernel's "(!new.inuse || !prior) && !was_frozen", and with cpu partial lists only "prior":
    if new_inuse == 0 and not was_frozen and not was_full:
        t = m.lock("list", slab.node, cpu, t)
        locked = True
        on_node_partial = slab.where == NODE_PARTIAL
    slab.freelist = chain + slab.freelist
    slab.inuse = new_inuse
    t += m.c["locked_cmpxchg16b"]
    if not locked:
        if was_frozen:
            m.stat("free_frozen")
            return t, "free_frozen"
        if was_full:
            t, drained = put_cpu_partial(m, slab, True, cpu, t)
            m.stat("cpu_partial_free")
            return t, "free_cpu_partial_drain" if drained else "free_cpu_partial"
        return t, "free_partial"
    if not on_node_partial:
        return m.unlock("list", slab.node, cpu, t), "free_list_lock"
    if new_inuse == 0 and len(m.nodes[slab.node].partial) >= m.min_partial:
        remove_partial(m, slab)
        t += m.c["l1_hit"]
        m.stat("free_remove_partial")
        t = m.unlock("list", slab.node, cpu, t)
        return discard_slab(m, slab, t), "free_list_lock"
    return m.unlock("list", slab.node, cpu, t), "free_list_lock"


def do_slab_free(m: State, slab: Slab, chain: list, cpu, t):
    c = m.cpu[cpu]
    if c.slab is slab:
        c.freelist = chain + c.freelist
        m.stat("free_fastpath")
        return t + m.hot["cs_free"] + touch(m, cpu, "cpu_slab_free", chain[0]), "free_fastpath"
    return slab_free_619(m, slab, chain, cpu, t + m.c["function_call"])


def alloc_bulk(m: State, dst: list, size, cpu, t):
    c = m.cpu[cpu]
    t += m.c["irq_save_restore"]
    for _ in range(size):
        if not c.freelist:
            obj, t, _ = slab_alloc_slow(m, cpu, t + m.c["function_call"])
            dst.append(obj)
            t += m.c["irq_save_restore"]
            continue
        dst.append(c.freelist.pop(0))
        m.stat("alloc_fastpath")
        t += m.c["bulk_object"]
    return t


def free_bulk(m: State, p: list, size, cpu, t):
    return sp_free_bulk(m, p, size, cpu, t, do_slab_free)

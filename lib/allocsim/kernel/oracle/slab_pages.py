"""Pure-Python reference of :mod:`allocsim.kernel.slab_pages`: slabs as objects with Python-list freelists
(``freelist[0]`` is the head), node partial lists as Python lists, and the 7.0 slab paths.

Written for obviousness, not speed: the tests run it beside the numba model and require the same
path for every event, the same counters and the same cycles. Slab numbers and object numbers are
assigned exactly as the model assigns them (a new slab reuses the most recently discarded number,
else the next unused one; object ``o`` belongs to slab ``o // objs_per_slab``), so the two can also be
compared state for state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

NONE, NODE_PARTIAL, CPU_PARTIAL, CPU_SLAB = "none", "node_partial", "cpu_partial", "cpu_slab"


@dataclass
class Slab:
    id: int
    node: int
    freelist: list  # free objects, head first
    inuse: int = 0
    frozen: bool = False
    where: str = NONE
    cpu: int = -1


@dataclass
class Node:
    partial: list = field(default_factory=list)  # slabs, head first
    nr_slabs: int = 0


@dataclass
class Lock:
    free_at: float = 0.0
    owner: int = -1


class State:
    """The whole machine: slabs, nodes, locks, counters, costs (by name), and what the CPU-level
    modules add (``cpu`` for 6.19, ``pcs``/``barn`` for sheaves)."""

    def __init__(self, ncpu, nnodes, cpus_per_node, objs, min_partial, cpu_partial_slabs, capacity, v70, sheaves,
                 cost: dict, max_full=10, nowait_fails=False, defrag_ratio=1000):
        self.ncpu, self.nnodes, self.cpus_per_node = ncpu, nnodes, cpus_per_node
        self.objs, self.min_partial, self.cpu_partial_slabs = objs, min_partial, cpu_partial_slabs
        self.capacity, self.v70, self.sheaves = capacity, v70, sheaves
        self.max_full, self.nowait_fails, self.defrag_ratio = max_full, nowait_fails, defrag_ratio
        self.c = cost
        self.slabs: dict[int, Slab] = {}
        self.pool: list[int] = []  # discarded slab numbers, most recent last
        self.next_new = 0
        self.nodes = [Node() for _ in range(nnodes)]
        self.list_locks = [Lock() for _ in range(nnodes)]
        self.barn_locks = [Lock() for _ in range(nnodes)]
        self.stats: Counter = Counter()  # SLUB_STATS counters by their sysfs names, as they are reached
        self.wait = {"list": 0.0, "barn": 0.0}
        self.transfers = {"list": 0, "barn": 0}
        self.taken = {"list": 0, "barn": 0}
        self.memory = None  # the memory hierarchy (allocsim.kernel.oracle.memory.Memory) when it is on

    def stat(self, name, n=1):
        self.stats[name] += n

    def node_of_cpu(self, cpu):
        return cpu // self.cpus_per_node

    def slab_of(self, obj) -> Slab:
        return self.slabs[obj // self.objs]

    # ---- shared locks (allocsim.kernel.sim.lock_acquire / lock_release)
    def lock(self, kind, node, cpu, t):
        t += self.c["spin_lock_irqsave_pair"] - self.c["spin_lock_pair"]  # saving the flags, outside the lock
        lk = (self.list_locks if kind == "list" else self.barn_locks)[node]
        if lk.free_at > t:
            self.wait[kind] += lk.free_at - t
            t = lk.free_at
        if lk.owner >= 0 and lk.owner != cpu:
            t += self.c["cacheline_transfer"]
            self.transfers[kind] += 1
        self.taken[kind] += 1
        return t + self.c["spin_lock_pair"]

    def unlock(self, kind, node, cpu, t):
        lk = (self.list_locks if kind == "list" else self.barn_locks)[node]
        lk.free_at = t
        lk.owner = cpu
        return t


def new_slab(m: State, node, t):
    if m.pool:
        sid = m.pool.pop()
    else:
        sid = m.next_new
        m.next_new += 1
    base = sid * m.objs
    slab = Slab(sid, node, list(range(base, base + m.objs)))
    m.slabs[sid] = slab
    m.nodes[node].nr_slabs += 1
    return slab, t + 0.5 * m.c["page_alloc_free"] + m.objs * m.c["l1_hit"]


def discard_slab(m: State, slab: Slab, t):
    m.nodes[slab.node].nr_slabs -= 1
    del m.slabs[slab.id]
    m.pool.append(slab.id)
    m.stat("free_slab")
    return t + 0.5 * m.c["page_alloc_free"]


def add_partial(m: State, slab: Slab, tail: bool):
    lst = m.nodes[slab.node].partial
    if tail:
        lst.append(slab)
    else:
        lst.insert(0, slab)
    slab.where = NODE_PARTIAL
    slab.cpu = -1


def remove_partial(m: State, slab: Slab):
    m.nodes[slab.node].partial.remove(slab)
    slab.where = NONE


def build_detached_freelist(m: State, p: list, size: int):
    """Same walk as the kernel's (see the model); returns (remaining, slab, chain head-first)."""
    size -= 1
    obj = p[size]
    slab = obj // m.objs
    chain = [obj]
    same = size
    lookahead = 3
    while size > 0:
        size -= 1
        obj = p[size]
        if obj // m.objs == slab:
            chain.insert(0, obj)
            same -= 1
            if size != same:
                p[size], p[same] = p[same], p[size]
            continue
        lookahead -= 1
        if lookahead == 0:
            break
    return same, m.slabs[slab], chain


# ---------------------------------------------------------------- 7.0 slab layer

def slab_free_70(m: State, slab: Slab, chain: list, cpu, t):
    m.stat("free_slowpath")
    was_full = not slab.freelist
    new_inuse = slab.inuse - len(chain)
    need_lock = new_inuse == 0 or was_full
    if need_lock:
        t = m.lock("list", slab.node, cpu, t)
    slab.freelist = chain + slab.freelist
    slab.inuse = new_inuse
    t += m.c["locked_cmpxchg16b"]
    if not need_lock:
        return t, "free_partial"
    if new_inuse == 0 and len(m.nodes[slab.node].partial) >= m.min_partial:
        if not was_full:
            remove_partial(m, slab)
            t += m.c["l1_hit"]
            m.stat("free_remove_partial")
        t = m.unlock("list", slab.node, cpu, t)
        t = discard_slab(m, slab, t)
        return t, "free_list_lock"
    if was_full:
        add_partial(m, slab, True)
        t += m.c["l1_hit"]
        m.stat("free_add_partial")
    t = m.unlock("list", slab.node, cpu, t)
    return t, "free_list_lock"


def free_bulk(m: State, p: list, size, cpu, t, free_group):
    """``__kmem_cache_free_bulk()``: detached freelists, each given to ``free_group`` (the version's
    ``__slab_free`` / ``do_slab_free``)."""
    t += size * m.c["bulk_object"]
    while size > 0:
        size, slab, chain = build_detached_freelist(m, p, size)
        t, _ = free_group(m, slab, chain, cpu, t)
    return t


def free_bulk_70(m: State, p: list, size, cpu, t):
    return free_bulk(m, p, size, cpu, t, slab_free_70)


def refill_objects_node(m: State, node, dst: list, lo_min, hi_max, cpu, t):
    """Appends up to hi_max objects to dst; returns (refilled, t)."""
    t += m.c["l1_hit"]
    n = m.nodes[node]
    if not n.partial:
        return 0, t
    t = m.lock("list", node, cpu, t)
    total_free = 0
    private = []
    for slab in list(n.partial):
        slab_free = m.objs - slab.inuse
        if total_free >= lo_min and total_free + slab_free > hi_max:
            break
        remove_partial(m, slab)
        t += m.c["l1_hit"]
        private.insert(0, slab)
        total_free += slab_free
        if total_free >= hi_max:
            break
    t = m.unlock("list", node, cpu, t)
    refilled = 0
    while private:
        slab = private.pop(0)
        objs = slab.freelist
        slab.freelist = []
        slab.inuse = m.objs
        t += m.c["locked_cmpxchg16b"]
        take = min(len(objs), hi_max - refilled)
        dst.extend(objs[:take])
        refilled += take
        t += take * m.c["bulk_object"]
        rest = objs[take:]
        if rest:
            t += len(rest) * m.c["l1_hit"]
            t, _ = slab_free_70(m, slab, rest, cpu, t)
        if refilled >= hi_max:
            break
    if private:
        t = m.lock("list", node, cpu, t)
        discard = []
        for slab in private:
            t += m.c["l1_hit"]
            if slab.inuse == 0 and len(n.partial) >= m.min_partial:
                discard.insert(0, slab)
            else:
                add_partial(m, slab, False)
        t = m.unlock("list", node, cpu, t)
        for slab in discard:
            t = discard_slab(m, slab, t)
    return refilled, t


def alloc_from_new_slab(m: State, slab: Slab, dst: list, count, cpu, t):
    take = min(count, len(slab.freelist))
    dst.extend(slab.freelist[:take])
    slab.freelist = slab.freelist[take:]
    slab.inuse += take
    t += take * m.c["bulk_object"]
    if slab.freelist:
        t = m.lock("list", slab.node, cpu, t)
        add_partial(m, slab, False)
        t += m.c["l1_hit"]
        t = m.unlock("list", slab.node, cpu, t)
    return take, t


def refill_objects(m: State, dst: list, lo_min, hi_max, cpu, t):
    local = m.node_of_cpu(cpu)
    refilled, t = refill_objects_node(m, local, dst, lo_min, hi_max, cpu, t)
    if refilled >= lo_min:
        return refilled, t
    if m.nnodes > 1 and not (int(t) % 1024 > m.defrag_ratio):
        for k in range(1, m.nnodes):
            node = (local + k) % m.nnodes
            if len(m.nodes[node].partial) <= m.min_partial:
                continue
            r, t = refill_objects_node(m, node, dst, lo_min - refilled, hi_max - refilled, cpu, t)
            refilled += r
            if refilled >= lo_min:
                return refilled, t
    while refilled < lo_min:
        slab, t = new_slab(m, local, t)
        m.stat("alloc_slab")
        r, t = alloc_from_new_slab(m, slab, dst, hi_max - refilled, cpu, t)
        refilled += r
    return refilled, t


def alloc_single_70(m: State, cpu, t):
    m.stat("alloc_slowpath")
    node = m.node_of_cpu(cpu)
    t += m.c["l1_hit"]
    n = m.nodes[node]
    if n.partial:
        t = m.lock("list", node, cpu, t)
        slab = n.partial[0]
        obj = slab.freelist.pop(0)
        slab.inuse += 1
        t += m.c["locked_cmpxchg16b"]
        if not slab.freelist:
            remove_partial(m, slab)
            t += m.c["l1_hit"]
        t = m.unlock("list", node, cpu, t)
        return obj, t, "alloc_slab_partial"
    slab, t = new_slab(m, node, t)
    m.stat("alloc_slab")
    buf = []
    _, t = alloc_from_new_slab(m, slab, buf, 1, cpu, t)
    return buf[0], t, "alloc_slab_new"

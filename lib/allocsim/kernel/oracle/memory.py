"""The SLUB oracles' memory hierarchy (issue 11), written again from the address rules the numba side documents
(:mod:`allocsim.kernel.memory`'s docstring) and its own reading of ``data/kernel/steps.yaml``: which lines each
hot-path segment loads and stores, where those lines are, and the caches of
:mod:`allocsim.kernel.oracle.cache` that say what each access costs. Nothing is imported from the numba side or
from :mod:`allocsim.facts.steps`.

Addresses (64-byte line numbers; one region per kind of memory, each ``97 × k`` lines past its power of two so
that the regions' first lines fall into different cache sets):

* object ``o`` (slab ``o // objs``, index ``o % objs``) at ``slab × slab_bytes + index × s->size`` in the object
  region (slabs of ``PAGE_SIZE << order`` bytes, page-aligned); its free pointer at
  ``s->offset = ALIGN_DOWN(s->size / 2, sizeof(void *))`` (v6.19 ``calculate_sizes()``); a zeroing step writes
  every line from the object's first;
* ``struct slab`` of slab ``n``: line ``n`` of its region;
* ``struct kmem_cache`` and the descriptor: one line each;
* per CPU: the per-CPU area line and the allocator's per-CPU struct, line ``cpu`` of their regions;
* sheaf ``k``: ``ceil((header + 8 × max(capacity, 1)) / 64)`` lines from line ``k × that`` of the sheaf region,
  its header in the first, ``objects[i]`` at byte ``header + 8 i``; sheaves are numbered as they are made
  (the CPUs' first mains ``0 … ncpu-1``, then each ``alloc_empty_sheaf()``; none is ever freed);
* a global: one line per (model segment, access row), ``segment × 16 + row`` of the global region.

The model segments, in the numba models' order, and the step-file segments each one sums.
"""

from __future__ import annotations

import math

from allocsim.kernel.oracle import cache as oc
from allocsim.kernel.oracle import steps as st

COLOUR = 97
REGION = {
    "global": (1 << 20) + 1 * COLOUR,
    "kmem_cache": (2 << 20) + 2 * COLOUR,
    "percpu_offset": (3 << 20) + 3 * COLOUR,
    "pcpu_struct": (4 << 20) + 4 * COLOUR,
    "descriptor": (5 << 20) + 5 * COLOUR,
    "struct_page": (6 << 20) + 6 * COLOUR,
    "sheaf": (1 << 28) + 7 * COLOUR,
    "object": 1 << 34,
}
#: access rows per segment in the global-line numbering (the models hold at most this many per segment)
ROWS = 16
SEGMENTS = ("alloc_entry", "free_entry", "pcs_free_check", "local_trylock", "pcs_alloc", "pcs_free",
            "cpu_slab_alloc", "cpu_slab_free", "sheaf_kmalloc")


def parts(seg: str, kmalloc: bool) -> tuple:
    if seg == "alloc_entry":
        return ("kmalloc_entry" if kmalloc else "kmem_cache_alloc_entry", "slab_alloc_hooks")
    if seg == "free_entry":
        return ("kfree_entry" if kmalloc else "kmem_cache_free_entry", "slab_free_hooks")
    return (seg,)


def _walk(segs, seg, env):
    for step in segs[seg]["steps"]:
        if not st._true(step.get("when"), env):
            continue
        if "include" in step:
            yield from _walk(segs, step["include"], env)
        else:
            yield step


def accesses(name: str, env: dict, kmalloc: bool) -> dict:
    """Per model segment, its loads and stores (and a zeroing step's lines) in order: ``(class, write, times)``
    with times > 0; the ``kzalloc()`` of a sheaf (``sheaf_kmalloc``) stays flat."""
    segs = st.segments(name)
    out = {}
    for seg in SEGMENTS:
        rows = []
        if seg != "sheaf_kmalloc":
            for p in parts(seg, kmalloc):
                for step in _walk(segs, p, env):
                    n = step.get("n", 1)
                    if n == "object_lines":
                        n = math.ceil(env["object_size"] / 64)
                    n = int(n)
                    if n <= 0:
                        continue
                    if step["kind"] in ("load", "store"):
                        rows.append((step["line"], step["kind"] == "store", n))
                    elif step["kind"] == "zero":
                        rows.append(("object_lines", True, n))
        assert len(rows) <= ROWS, f"segment {seg} touches memory {len(rows)} times"
        out[seg] = rows
    return out


def spec_of(g) -> dict:
    """An :class:`allocsim.facts.cpu.Geometry` as the oracle cache's spec."""
    return {"l1": (g.l1_sets, g.l1_ways), "l2": (g.l2_sets, g.l2_ways), "llc": (g.llc_sets, g.llc_ways),
            "cpus_per_llc": g.cpus_per_llc, "llcs_per_node": g.llcs_per_node,
            "latency": dict(zip(oc.KINDS, (g.lat_l1, g.lat_l2, g.lat_llc, g.lat_same_llc, g.lat_cross_llc,
                                           g.lat_cross_node, g.lat_memory)))}


class Memory:
    """The addresses of one cache and the hierarchy of its CPUs; ``log`` collects ``(cpu, line, write, cycles,
    kind, invalidated)`` of every access when it is a list."""

    def __init__(self, ncpu, spec, acc, size, slab_bytes, objs, header, capacity):
        self.h = oc.Hierarchy(ncpu, spec)
        self.l1 = spec["latency"]["L1"]
        self.acc = acc
        self.size, self.slab_bytes, self.objs = size, slab_bytes, objs
        self.fp = (size // 2) // 8 * 8
        self.header = header
        self.stride = -(-(header + 8 * max(capacity, 1)) // 64)
        self.log = None

    def object_byte(self, obj, byte):
        slab = obj // self.objs
        return REGION["object"] + ((slab * self.slab_bytes + (obj - slab * self.objs) * self.size + byte) >> 6)

    def sheaf_byte(self, sheaf, byte):
        return REGION["sheaf"] + sheaf * self.stride + (byte >> 6)

    def line(self, cls, k, cpu, obj, sheaf, slot, seg_no, row):
        if cls == "object":
            return self.object_byte(obj, self.fp)
        if cls == "object_lines":
            return self.object_byte(obj, 0) + k
        if cls == "sheaf":
            return self.sheaf_byte(sheaf, 0)
        if cls == "sheaf_slot":
            return self.sheaf_byte(sheaf, self.header + 8 * slot)
        if cls == "struct_page":
            return REGION["struct_page"] + obj // self.objs
        if cls in ("percpu_offset", "pcpu_struct"):
            return REGION[cls] + cpu
        if cls in ("kmem_cache", "descriptor"):
            return REGION[cls]
        return REGION["global"] + seg_no * ROWS + row

    def access(self, cpu, line, write):
        c, kind, inv = self.h.access(cpu, line, write)
        if write:
            c -= self.l1
        if self.log is not None:
            self.log.append((cpu, line, write, c, kind, inv))
        return c


def touch(m, cpu, seg, obj=-1, sheaf=-1, slot=-1):
    """Every load and store of model segment ``seg`` by ``cpu``, in order; their cycles (0 without the
    hierarchy)."""
    mem = m.memory
    if mem is None:
        return 0.0
    seg_no = SEGMENTS.index(seg)
    t = 0.0
    for row, (cls, write, times) in enumerate(mem.acc[seg]):
        for k in range(times):
            t += mem.access(cpu, mem.line(cls, k, cpu, obj, sheaf, slot, seg_no, row), write)
    return t


def touch_object(m, cpu, obj, write):
    """A slow path reads (a freelist walk) or writes (``set_freepointer()``) an object's free pointer."""
    mem = m.memory
    if mem is None:
        return 0.0
    return mem.access(cpu, mem.object_byte(obj, mem.fp), write)


def touch_slot(m, cpu, sheaf, slot, write):
    """A refill writes, a flush reads, ``objects[slot]`` of sheaf number ``sheaf``."""
    mem = m.memory
    if mem is None:
        return 0.0
    return mem.access(cpu, mem.sheaf_byte(sheaf, mem.header + 8 * slot), write)

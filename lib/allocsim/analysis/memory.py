"""Chapter 2's memory and bypass analysis of the patch ("[PATCH v3] iomap: add allocation cache for
iomap_dio"): what one CPU's private list can keep (:func:`memory`, :func:`memory_table`), next to what
SLUB itself caches per CPU, and what the list bypasses that the kmalloc path does (:func:`bypass_table`,
``data/bypass.yaml``). The model of the list itself is :mod:`allocsim.kernel.pcpu_list`.
"""

from __future__ import annotations

import numpy as np

from allocsim.facts import bypass, kconfig
from allocsim.facts import structs as layout
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.pcpu_list import DIO_ALLOC_CACHE_MAX, element_size, header_size


def memory(max_nr: int = DIO_ALLOC_CACHE_MAX, kernel: str = "7.0", ncpu_present: int = 2) -> dict:
    """What one CPU's list can keep, from the struct layout and the kmalloc size classes:

    * ``element_size``: ``sizeof(struct iomap_dio)``; ``header``: ``sizeof(struct pcpu_cache_element)``;
    * ``request``: what ``pcpu_cache_list_alloc`` kmallocs (element + header) and ``kmalloc_class``,
      the object size of the kmalloc cache that request lands in (``kmalloc_slab()``);
    * ``plain_class``: the class of the plain ``kmalloc(sizeof(*dio))`` the patch replaces;
    * ``per_cpu_bytes``: ``max_nr`` cached objects of ``kmalloc_class`` bytes, plus the per-CPU
      ``struct pcpu_cache`` (``alloc_percpu``), the most one CPU's list ever holds;
    * for comparison, what SLUB itself may hold per CPU for the plain kmalloc cache in ``kernel``:
      7.0 — main and spare sheaf full (``2 × sheaf_capacity`` objects); 6.18/6.19 (no sheaves on
      kmalloc caches) — the cpu partial list's object limit ``cpu_partial``. Both are bounds, and
      both are returned by ``kmem_cache_shrink()`` (``barn_shrink()``) and CPU hotplug (``slub_cpu_dead()``,
      v6.19/v7.0 ``mm/slub.c``), unlike the list's.
    Slab-page overhead (the page holding a cached object cannot be freed) is not counted.
    """
    if isinstance(max_nr, bool) or not isinstance(max_nr, (int, np.integer)) or max_nr < 1:
        raise AllocsimError(f"per-CPU list max_nr must be an integer >= 1, not {max_nr!r}")
    size, header = element_size(), header_size()
    request = size + header
    geo = kconfig.cache_geometry(size, ncpu_present, kernel)
    slub_objects = 2 * geo.sheaf_capacity if geo.sheaf_capacity else geo.cpu_partial
    return {
        "element_size": size, "header": header, "request": request,
        "kmalloc_class": kconfig.kmalloc_size(request), "kmalloc_cache": kconfig.kmalloc_cache_name(request),
        "plain_class": kconfig.kmalloc_size(size), "plain_cache": kconfig.kmalloc_cache_name(size),
        "pcpu_cache_struct": layout.sizeof("pcpu_cache"), "max_nr": int(max_nr),
        "per_cpu_bytes": int(max_nr) * kconfig.kmalloc_size(request) + layout.sizeof("pcpu_cache"),
        "kernel": geo.version, "slub_per_cpu_objects": slub_objects,
        "slub_per_cpu_bytes": slub_objects * geo.size,
        "slub_per_cpu_what": (f"main + spare sheaf of {geo.name} (capacity {geo.sheaf_capacity})" if geo.sheaf_capacity
                              else f"cpu partial list of {geo.name} (cpu_partial {geo.cpu_partial} objects)"),
    }


def memory_table(cpus=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), max_nr: int = DIO_ALLOC_CACHE_MAX,
                 kernel: str = "7.0"):
    """Machine-wide bytes the lists can keep for each CPU count in ``cpus`` (every CPU that ever
    ran direct IO keeps up to ``max_nr`` objects), next to SLUB's own per-CPU bound."""
    import pandas as pd

    rows = []
    for n in cpus:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise AllocsimError(f"CPU counts must be integers >= 1, not {n!r}")
        m = memory(max_nr, kernel, ncpu_present=int(n))
        rows.append({"cpus": int(n), "per-CPU list": n * m["per_cpu_bytes"],
                     f"SLUB {m['kernel']} per-CPU caching (bound)": n * m["slub_per_cpu_bytes"]})
    return pd.DataFrame(rows)


BYPASS_COLUMNS = bypass.CACHES


def bypass_table(columns=("patch", "bio", "slub")):
    """``data/bypass.yaml`` (read and checked by :mod:`allocsim.facts.bypass`) as a table, one row per item:
    for each of ``columns`` (``patch``, ``bio``, ``slub``) what that cache does, followed by its source in
    brackets."""
    import pandas as pd

    for c in columns:
        if c not in BYPASS_COLUMNS:
            raise AllocsimError(f"bypass table column must be one of {', '.join(BYPASS_COLUMNS)}, not {c!r}")
    rows = []
    for it in bypass.load():
        row = {"item": it["item"]}
        for c in columns:
            row[BYPASS_COLUMNS[c]] = f"{it[c]} [{it[c + '_source']}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("item")

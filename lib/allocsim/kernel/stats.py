"""SLUB's event counters (``CONFIG_SLUB_STATS``, ``enum stat_item`` in ``mm/slub.c``) and the names of
the model paths every SLUB model reports per event.

Counters use the names sysfs shows under ``/sys/kernel/slab/<cache>/`` on a kernel built with
``CONFIG_SLUB_STATS`` (v6.19 ``mm/slub.c``, ``enum stat_item`` and the ``STAT_ATTR()`` list;
v6.18 sheaf items from commit 2d517aa09bbc "slab: add opt-in caching layer of percpu sheaves"): ``ALLOC_PCS`` is shown as ``alloc_cpu_sheaf``, ``FREE_PCS`` as
``free_cpu_sheaf``; every other item is its lower-case name. A model increments a counter exactly where
the kernel calls ``stat()`` / ``stat_add()`` for it; counters the models never reach (NUMA node mismatch,
``kfree_rcu`` sheaves, prefill, ``cmpxchg`` failures that need true concurrency) are absent.

7.0 ("mm/slub: cleanup and repurpose some stat items", in the series "slab: replace cpu (partial) slabs with
sheaves", Message-Id 20260123-sheaves-for-all-v4-0-041323d506f7@suse.cz): an allocation served by
a sheaf counts ``alloc_fastpath`` (v7.0 ``mm/slub.c`` ``alloc_from_pcs()``, line 4672); the models count
a free into a sheaf as ``free_fastpath`` by symmetry [INFERRED], and the ``deactivate_*``,
``cpu_partial_*`` and ``cpuslab_flush`` items no longer exist.

Paths. Besides the kernel's counters, each model labels every program event with the *path* it took
(the deepest slow path reached during that call), so that a result's cycles split into a sum over
paths (:attr:`allocsim.kernel.result.Result.paths`) and the differential tests can compare a model with its
pure-Python reference event for event (:attr:`allocsim.kernel.result.Result.event_path`).
"""

from __future__ import annotations

from allocsim.facts import versions

#: Counter names in index order (models index an int64 vector with the ``S_*`` constants below).
STATS = (
    "alloc_cpu_sheaf",        # ALLOC_PCS (6.18/6.19): object taken from a sheaf
    "free_cpu_sheaf",         # FREE_PCS (6.18/6.19): object put into a sheaf
    "alloc_fastpath",         # ALLOC_FASTPATH: cpu freelist (6.19) / sheaf (7.0) / each object of a bulk alloc from the cpu freelist
    "alloc_slowpath",         # ALLOC_SLOWPATH: ___slab_alloc()
    "free_fastpath",          # FREE_FASTPATH: do_slab_free() onto this CPU's cpu slab (6.19) / sheaf (7.0)
    "free_slowpath",          # FREE_SLOWPATH: __slab_free()
    "free_frozen",            # FREE_FROZEN: __slab_free() to a frozen (some CPU's cpu) slab
    "free_add_partial",       # FREE_ADD_PARTIAL: slab put on a node partial list when freeing
    "free_remove_partial",    # FREE_REMOVE_PARTIAL: empty slab taken off the node partial list to be discarded
    "alloc_from_partial",     # ALLOC_FROM_PARTIAL: cpu slab (6.19) / object (7.0) taken from the node partial list
    "alloc_slab",             # ALLOC_SLAB: new slab from the page allocator
    "alloc_refill",           # ALLOC_REFILL: cpu freelist refilled from the cpu slab's own freelist (get_freelist)
    "free_slab",              # FREE_SLAB: slab given back to the page allocator
    "deactivate_empty",       # DEACTIVATE_EMPTY: empty slab discarded while draining the cpu partial list
    "deactivate_bypass",      # DEACTIVATE_BYPASS: cpu slab found exhausted, dropped without deactivate_slab()
    "cpu_partial_alloc",      # CPU_PARTIAL_ALLOC: cpu slab taken from the cpu partial list
    "cpu_partial_free",       # CPU_PARTIAL_FREE: a full slab put on the cpu partial list by __slab_free()
    "cpu_partial_node",       # CPU_PARTIAL_NODE: node partial slab moved to the cpu partial list (get_partial_node)
    "cpu_partial_drain",      # CPU_PARTIAL_DRAIN: cpu partial list full, moved to the node partial list
    "sheaf_flush",            # SHEAF_FLUSH: objects flushed from sheaves to slabs
    "sheaf_refill",           # SHEAF_REFILL: objects refilled into sheaves from slabs
    "sheaf_alloc",            # SHEAF_ALLOC: sheaf structures allocated
    "barn_get",               # BARN_GET: full sheaf taken from the barn
    "barn_get_fail",          # BARN_GET_FAIL: the barn had no full sheaf
    "barn_put",               # BARN_PUT: full sheaf put into the barn
    "barn_put_fail",          # BARN_PUT_FAIL: the barn was over MAX_FULL_SHEAVES (or had no empty sheaf)
)
for _i, _n in enumerate(STATS):
    globals()["S_" + _n.upper()] = _i
del _i, _n
N_STATS = len(STATS)

#: Counters that do not exist in 7.0 (removed with the cpu slab) and those only 6.18/6.19 have.
STATS_NOT_IN_70 = frozenset({"alloc_cpu_sheaf", "free_cpu_sheaf", "alloc_refill", "free_frozen", "deactivate_empty",
                             "deactivate_bypass", "cpu_partial_alloc", "cpu_partial_free", "cpu_partial_node",
                             "cpu_partial_drain"})

#: Path names in code order. ``A_*`` are allocation paths, ``F_*`` free paths. The cpu-slab paths are
#: those of SLUB <= 6.19 (v6.19 ``mm/slub.c``); the sheaf paths those of v6.19 and v7.0 ``mm/slub.c``; the slab
#: paths of 7.0 those of v7.0 ``mm/slub.c`` (``___slab_alloc()`` and ``__slab_free()`` without a cpu slab).
PATHS = (
    # 6.19 cpu slab (v6.19 mm/slub.c: __slab_alloc_node, ___slab_alloc, do_slab_free, __slab_free)
    "alloc_fastpath",          # c->freelist pop with this_cpu_try_cmpxchg128
    "alloc_refill",            # ___slab_alloc: get_freelist() of the cpu slab
    "alloc_cpu_partial",       # ___slab_alloc: cpu slab from the cpu partial list
    "alloc_from_partial",      # ___slab_alloc: get_partial_node() under list_lock
    "alloc_slab",              # ___slab_alloc: new_slab() from the page allocator
    "free_fastpath",           # do_slab_free onto the cpu slab
    "free_frozen",             # __slab_free to a frozen slab (another CPU's cpu slab, or this CPU's old one)
    "free_cpu_partial",        # __slab_free of a full slab: put_cpu_partial()
    "free_cpu_partial_drain",  # ... and the cpu partial list was full: __put_partials() under list_lock
    "free_partial",            # __slab_free to a slab with free objects: the cmpxchg only
    "free_list_lock",          # __slab_free that took list_lock (slab empty or, in 7.0, newly partial)
    # sheaves (v6.19 / v7.0 mm/slub.c: alloc_from_pcs, __pcs_replace_empty_main, free_to_pcs, __pcs_replace_full_main)
    "alloc_sheaf",             # alloc_from_pcs: main sheaf not empty
    "alloc_sheaf_spare",       # __pcs_replace_empty_main: swap with a non-empty spare
    "alloc_sheaf_barn",        # __pcs_replace_empty_main: barn_replace_empty_sheaf() got a full sheaf
    "alloc_sheaf_refill",      # __pcs_replace_empty_main: refill_sheaf() / alloc_full_sheaf() from slabs
    "free_sheaf",              # free_to_pcs: main sheaf not full
    "free_sheaf_spare",        # __pcs_replace_full_main: swap with a non-full spare
    "free_sheaf_barn_empty",   # __pcs_replace_full_main: no spare, barn_get_empty_sheaf()
    "free_sheaf_barn_put",     # __pcs_replace_full_main: barn_replace_full_sheaf()
    "free_sheaf_flush",        # __pcs_replace_full_main: barn over MAX_FULL_SHEAVES, sheaf_flush_unused(spare)
    "free_sheaf_alloc_empty",  # __pcs_replace_full_main: alloc_empty_sheaf() + __pcs_install_empty_sheaf()
    "free_sheaf_flush_main",   # __pcs_replace_full_main: alloc_empty_sheaf failed, sheaf_flush_main()
    # 7.0 slab layer (v7.0 mm/slub.c: ___slab_alloc, __slab_free), and the sheaf bypass in any version
    "alloc_slab_partial",      # 7.0 ___slab_alloc: one object from a node partial slab
    "alloc_slab_new",          # 7.0 ___slab_alloc: new slab, one object
    "alloc_bypass_trylock",    # local_trylock failed (an interrupt hit a holder): the allocation took the slab path
    "free_bypass_trylock",     # local_trylock failed (an interrupt hit a holder): the free took the slab path
    "free_remote_node",        # any version with sheaves: object of another NUMA node bypasses the sheaves
)
for _i, _n in enumerate(PATHS):
    globals()["P_" + _n.upper()] = _i
del _i, _n
N_PATHS = len(PATHS)


def stats_dict(vec, version: str) -> dict:
    """The counters as ``{name: int}``; for 7.0 without the items 7.0 no longer has."""
    out = {}
    for i, name in enumerate(STATS):
        if versions.family(version).drops_cpu_slab_stats and name in STATS_NOT_IN_70:
            continue
        out[name] = int(vec[i])
    return out

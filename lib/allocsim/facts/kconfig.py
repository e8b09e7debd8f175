"""Kernel configuration facts the models need, loaded once from ``data/kernel/`` (each file names its
source: file and kernel version). Mirrors the kernel functions named in each docstring.

- kmalloc size classes (``kmalloc_slab()`` / ``kmalloc_size_roundup()``), ``data/kernel/kmalloc.yaml``;
- kernel versions (:data:`VERSIONS`, :func:`check_version`);
- slab cache geometry (``calculate_order()``, ``set_cpu_partial()``, ``min_partial``), ``data/kernel/slub.yaml``;
- sheaf capacity (``calculate_sheaf_capacity()``), ``data/kernel/sheaves.yaml``;
- :func:`cache_geometry`, which puts them together the way ``kmem_cache_open()`` / ``calculate_sizes()`` do.

Only what the kernel computes without debug options is modelled: no ``slub_debug`` (red zones, tracking),
no KASAN metadata, no ``slab_min_order=`` / ``slab_max_order=`` / ``slab_min_objects=`` boot parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


from allocsim.facts.errors import AllocsimError
from allocsim.facts.datafile import kernel_yaml
from allocsim.facts import structs as layout
from allocsim.facts.versions import VERSIONS, check_version, family  # noqa: F401  (kconfig.VERSIONS, kconfig.check_version)


_yaml = kernel_yaml


def kmalloc_sizes() -> tuple[int, ...]:
    """The object sizes of the kmalloc caches ``create_kmalloc_caches()`` creates (``data/kernel/kmalloc.yaml``)."""
    return tuple(_yaml("kmalloc.yaml")["sizes"])


def kmalloc_size(size: int) -> int:
    """The object size of the kmalloc cache a request of ``size`` bytes lands in — mirrors
    ``kmalloc_slab()`` (mm/slab.h): sizes up to ``small_rule_max`` (192) through the
    ``kmalloc_size_index[]`` table, i.e. the smallest cache that fits (8, 16, 32, 64, 96, 128, 192), larger
    sizes to the next power of two (``fls(size - 1)``). Raises for sizes above ``KMALLOC_MAX_CACHE_SIZE``
    (those bypass slab: ``__kmalloc_large_node``)."""
    doc = _yaml("kmalloc.yaml")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise AllocsimError(f"kmalloc size must be a positive integer number of bytes, not {size!r}")
    if size > doc["kmalloc_max_cache_size"]:
        raise AllocsimError(f"kmalloc size {size} is above KMALLOC_MAX_CACHE_SIZE ({doc['kmalloc_max_cache_size']}); such requests bypass the slab caches")
    if size <= doc["small_rule_max"]:
        return next(s for s in kmalloc_sizes() if s >= size)
    return 1 << (size - 1).bit_length()


def kmalloc_size_roundup(size: int) -> int:
    """Bytes actually reserved by ``kmalloc(size)`` — mirrors ``kmalloc_size_roundup()``: the kmalloc
    bucket for sizes up to ``KMALLOC_MAX_CACHE_SIZE``, else whole pages (``PAGE_SIZE << get_order(size)``)."""
    doc = _yaml("kmalloc.yaml")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise AllocsimError(f"kmalloc size must be a positive integer number of bytes, not {size!r}")
    if size <= doc["kmalloc_max_cache_size"]:
        return kmalloc_size(size)
    order = _get_order(size)
    if order > _slub()["max_page_order"]:
        raise AllocsimError(f"kmalloc size {size} is above KMALLOC_MAX_SIZE ({_page_size() << _slub()['max_page_order']} bytes)")
    return _page_size() << order


def kmalloc_cache_name(size: int) -> str:
    """``kmalloc-96``, ``kmalloc-1k`` … as the kernel names the cache for a request of ``size``."""
    s = kmalloc_size(size)
    return f"kmalloc-{s // 1024}k" if s >= 1024 else f"kmalloc-{s}"


# ---------------------------------------------------------------------------------------------------
# Kernel versions

def _slub() -> dict:
    """``data/kernel/slub.yaml``, checked against its schema (:data:`allocsim.facts.datafile.KERNEL_SCHEMAS`)."""
    return _yaml("slub.yaml")


def _sheaves() -> dict:
    return _yaml("sheaves.yaml")


# ---------------------------------------------------------------------------------------------------
# Slab geometry: mm/slub.c calculate_order(), calc_slab_order(), set_cpu_partial(), kmem_cache_open()

def nr_cpus_max() -> int:
    """The most CPUs an x86-64 kernel can be built for (``NR_CPUS_RANGE_END``, ``data/kernel/slub.yaml``):
    the upper bound of every CPU count the models and the chapters accept."""
    return _slub()["nr_cpus_max"]


def page_size() -> int:
    """``PAGE_SIZE`` (``data/kernel/slub.yaml``)."""
    return _slub()["page_size"]


_page_size = page_size


def _fls(x: int) -> int:
    """``fls()``: 1-based index of the most significant set bit, 0 for 0."""
    return x.bit_length()


def _get_order(size: int) -> int:
    """``get_order()``: the smallest order with ``PAGE_SIZE << order >= size``."""
    order, page = 0, _page_size()
    while (page << order) < size:
        order += 1
    return order


def _order_objects(order: int, size: int) -> int:
    """``order_objects()``: objects of ``size`` bytes in a slab of ``PAGE_SIZE << order`` bytes."""
    return (_page_size() << order) // size


def _check_size(size, what: str = "slab object size") -> int:
    doc = _slub()
    limit = doc["page_size"] << doc["max_page_order"]
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= limit:
        raise AllocsimError(f"{what} must be an integer number of bytes from 1 to {limit} (PAGE_SIZE << MAX_PAGE_ORDER), not {size!r}")
    return size


def _check_cpus(n, what: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= nr_cpus_max():
        raise AllocsimError(f"{what} must be an integer from 1 to {nr_cpus_max()}, not {n!r}")
    return n


def min_objects_factor() -> int:
    """The 4 of ``calculate_order()``'s ``min_objects = 4 * (fls(nr_cpus) + 1)`` (``data/kernel/slub.yaml``)."""
    return _slub()["min_objects_factor"]


def min_objects(ncpu_present: int, ncpu_possible: int | None = None) -> int:
    """``calculate_order()``'s ``min_objects = 4 * (fls(nr_cpus) + 1)``, where ``nr_cpus`` is
    ``num_present_cpus()``, or ``nr_cpu_ids`` (``ncpu_possible``) if only one CPU is present."""
    nr_cpus = _check_cpus(ncpu_present, "the number of present CPUs")
    if nr_cpus <= 1 and ncpu_possible is not None:
        nr_cpus = _check_cpus(ncpu_possible, "the number of possible CPUs")
    return min_objects_factor() * (_fls(nr_cpus) + 1)


def _calc_slab_order(size: int, min_order: int, max_order: int, fract_leftover: int) -> int:
    """Port of ``calc_slab_order()``: the smallest order from ``min_order`` up to ``max_order`` whose
    leftover ``slab_size % size`` is at most ``slab_size / fract_leftover``; ``max_order + 1`` if none."""
    order = min_order
    while order <= max_order:
        slab_size = _page_size() << order
        if slab_size % size <= slab_size // fract_leftover:
            break
        order += 1
    return order


def calculate_order(size: int, ncpu_present: int, ncpu_possible: int | None = None) -> tuple[int, int]:
    """``(order, objs_per_slab)`` for slab objects of ``size`` bytes (``s->size``) on a machine with
    ``ncpu_present`` CPUs — port of ``calculate_order()`` (identical in v6.19 and v7.0 ``mm/slub.c``):

    - ``min_objects = 4 * (fls(nr_cpus) + 1)``, capped at what fits in a ``slub_max_order`` (3) slab;
    - ``min_order = get_order(min_objects * size)``;
    - the smallest order from ``min_order`` to 3 that wastes at most 1/16 of the slab, else 1/8, 1/4, 1/2;
    - otherwise ``get_order(size)`` (objects too large for an order-3 slab).

    ``objs_per_slab`` is ``oo_objects(s->oo) = (PAGE_SIZE << order) / size``. Simplifies: no
    ``slab_min_order=`` / ``slab_max_order=`` / ``slab_min_objects=`` boot parameters.
    """
    doc = _slub()
    size = _check_size(size)
    max_order, min_slub_order = doc["slub_max_order"], doc["slub_min_order"]
    min_obj = min_objects(ncpu_present, ncpu_possible)
    max_objects = max(_order_objects(max_order, size), 1)
    min_obj = min(min_obj, max_objects)
    min_order = max(min_slub_order, _get_order(min_obj * size))
    if _order_objects(min_order, size) > doc["max_objs_per_page"]:
        order = _get_order(size * doc["max_objs_per_page"]) - 1
        return order, _order_objects(order, size)
    for fraction in doc["waste_fractions"]:
        order = _calc_slab_order(size, min_order, max_order, fraction)
        if order <= max_order:
            return order, _order_objects(order, size)
    order = _get_order(size)
    if order > doc["max_page_order"]:  # unreachable after _check_size; kept to mirror -ENOSYS
        raise AllocsimError(f"slab object size {size} does not fit in an order-{doc['max_page_order']} slab")
    return order, _order_objects(order, size)


def min_partial(size: int) -> int:
    """``s->min_partial = clamp(ilog2(s->size) / 2, MIN_PARTIAL, MAX_PARTIAL)`` (``kmem_cache_open()``):
    slabs kept on each node's partial list before empty ones are discarded."""
    doc = _slub()
    size = _check_size(size)
    return max(doc["min_partial"], min(doc["max_partial"], (size.bit_length() - 1) // 2))


def _tier(tiers: list, size: int, key: str) -> int:
    """The first tier with ``size >= min_size`` (the schema makes the tiers fall and end at 0)."""
    return next(row[key] for row in tiers if size >= row["min_size"])


def set_cpu_partial(size: int, objs_per_slab: int, version: str) -> tuple[int, int]:
    """``(cpu_partial, cpu_partial_slabs)`` — ``set_cpu_partial()`` + ``slub_set_cpu_partial()``
    (v6.18/v6.19): objects by ``s->size`` (6 / 24 / 52 / 120), slabs
    ``DIV_ROUND_UP(cpu_partial * 2, objs_per_slab)`` ("we assume that the slabs will be half-full").
    ``(0, 0)`` for 7.0, which removed ``CONFIG_SLUB_CPU_PARTIAL``. Debug caches (also 0) are not modelled."""
    v = check_version(version)
    size = _check_size(size)
    if not isinstance(objs_per_slab, int) or isinstance(objs_per_slab, bool) or objs_per_slab < 1:
        raise AllocsimError(f"objects per slab must be a positive integer, not {objs_per_slab!r}")
    if not family(v).cpu_slab:
        return 0, 0
    nr = _tier(_slub()["cpu_partial_tiers"], size, "objects")
    return nr, math.ceil(nr * 2 / objs_per_slab)


# ---------------------------------------------------------------------------------------------------
# Sheaves: mm/slub.c calculate_sheaf_capacity() (7.0), do_kmem_cache_create() (6.18, 6.19)

def sheaf_header() -> int:
    """``struct_size_t(struct slab_sheaf, objects, 0)``: computed from ``data/kernel/structs.yaml``."""
    return layout.offsetof("slab_sheaf", "objects")


def pointer_size() -> int:
    """``sizeof(void *)`` on x86-64: the ``pointer`` scalar of ``data/kernel/structs.yaml``."""
    return layout.scalar_size("pointer")


_pointer_size = pointer_size


def sheaf_capacity_base(size: int) -> int:
    """The 7.0 base capacity by ``s->size``: 4 (>= PAGE_SIZE), 12 (>= 1024), 26 (>= 256), else 60."""
    return _tier(_sheaves()["capacity_tiers"], _check_size(size), "capacity")


def _max_request() -> int:
    return ((_page_size() << _slub()["max_page_order"]) - sheaf_header()) // _pointer_size()


def sheaf_alloc_size(capacity: int) -> int:
    """Bytes a sheaf of ``capacity`` pointers really occupies: ``kmalloc_size_roundup(32 + 8 * capacity)``
    (a sheaf is one ``kzalloc`` — ``__alloc_empty_sheaf()``)."""
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= _max_request():
        raise AllocsimError(f"sheaf capacity must be an integer from 1 to {_max_request()}, not {capacity!r}")
    return kmalloc_size_roundup(sheaf_header() + _pointer_size() * capacity)


def calculate_sheaf_capacity(size: int, requested: int = 0, version: str = "7.0") -> int:
    """``s->sheaf_capacity`` for a cache whose objects occupy ``size`` bytes (``s->size``).

    7.0 (``calculate_sheaf_capacity()``): the base tier, raised so that the sheaf ``32 + 8 * cap`` fills
    its kmalloc bucket exactly, then ``max()`` with an explicit request (60 / 28 / 12 / 4 by default).
    6.18 and 6.19 (``do_kmem_cache_create()``): the request verbatim, 0 when none was made (no sheaves).
    Simplifies: ``SLUB_TINY``, debug caches, ``SLAB_NO_OBJ_EXT`` / ``SLAB_NOLEAKTRACE`` (all 0) are not modelled.
    """
    v = check_version(version)
    size = _check_size(size)
    if not isinstance(requested, int) or isinstance(requested, bool) or not 0 <= requested <= _max_request():
        raise AllocsimError(f"requested sheaf_capacity must be an integer from 0 to {_max_request()}, not {requested!r}")
    if not family(v).sheaves_by_default:
        return requested
    header, ptr = sheaf_header(), _pointer_size()
    cap = (kmalloc_size_roundup(header + ptr * sheaf_capacity_base(size)) - header) // ptr
    return max(cap, requested)


# ---------------------------------------------------------------------------------------------------
# A cache, as kmem_cache_open() / calculate_sizes() set it up

@dataclass(frozen=True)
class CacheGeometry:
    """What ``/sys/kernel/slab/<cache>/`` would show for a cache without debug options."""

    name: str
    object_size: int       # requested object size (sysfs object_size for a dedicated cache)
    size: int              # s->size (sysfs slab_size): kmalloc bucket, or ALIGN(object_size, 8)
    order: int
    objs_per_slab: int
    cpu_partial: int       # objects (sysfs cpu_partial); 0 in 7.0
    cpu_partial_slabs: int  # the enforced limit, in slabs; 0 in 7.0
    min_partial: int
    sheaf_capacity: int    # 0: no sheaves
    version: str


def cache_geometry(object_size: int, ncpu_present: int, version: str, sheaf_capacity: int = 0,
                   kmalloc: bool = True, ncpu_possible: int | None = None, name: str | None = None) -> CacheGeometry:
    """The geometry of the cache serving ``object_size``-byte objects on ``ncpu_present`` CPUs.

    ``kmalloc=True``: the kmalloc cache a ``kmalloc(object_size)`` lands in (``kmalloc-96`` …); its
    ``s->size`` is the bucket; it takes no ``sheaf_capacity`` request (in 7.0 it gets the default through
    ``bootstrap_kmalloc_sheaves()``; in 6.18/6.19 none). ``kmalloc=False``: a dedicated
    ``kmem_cache_create()`` cache, ``s->size = ALIGN(object_size, sizeof(void *))`` (no ``SLAB_HWCACHE_ALIGN``,
    no debug), with ``sheaf_capacity`` as ``kmem_cache_args.sheaf_capacity``.
    """
    v = check_version(version)
    if kmalloc:
        kmalloc_size(object_size)  # validates: positive and <= KMALLOC_MAX_CACHE_SIZE
        if sheaf_capacity:
            raise AllocsimError(f"a kmalloc cache takes no sheaf_capacity request (got {sheaf_capacity!r}); "
                                f"use kmalloc=False for a dedicated cache")
        size = kmalloc_size(object_size)
        cname = name or kmalloc_cache_name(object_size)
    else:
        _check_size(object_size, "object size")
        ptr = _pointer_size()  # sizeof(void *): calculate_sizes() rounds to the next word
        size = (object_size + ptr - 1) // ptr * ptr
        _check_size(size)
        cname = name or f"cache-{object_size}"
    order, objs = calculate_order(size, ncpu_present, ncpu_possible)
    cpu_partial, cpu_partial_slabs = set_cpu_partial(size, objs, v)
    return CacheGeometry(
        name=cname, object_size=size if kmalloc else object_size, size=size, order=order, objs_per_slab=objs,
        cpu_partial=cpu_partial, cpu_partial_slabs=cpu_partial_slabs, min_partial=min_partial(size),
        sheaf_capacity=calculate_sheaf_capacity(size, sheaf_capacity, v), version=v)

"""Kernel configuration facts the models need, loaded once from ``data/kernel/`` (each file names its
source: file and kernel version). Mirrors the kernel functions named in each docstring.

So far: the kmalloc size classes (``kmalloc_slab()`` / ``kmalloc_size_roundup()``).
"""

from __future__ import annotations

from functools import lru_cache

import yaml

from .errors import AllocsimError, DataError
from .paths import DATA


@lru_cache(maxsize=None)
def _yaml(name: str) -> dict:
    path = DATA / "kernel" / name
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(f"data/kernel/{name} is missing") from None
    except yaml.YAMLError as exc:
        raise DataError(f"data/kernel/{name} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not str(doc.get("source", "")).strip():
        raise DataError(f"data/kernel/{name}: field 'source' is missing; every kernel constant needs its file and version")
    return doc


def kmalloc_sizes() -> tuple[int, ...]:
    doc = _yaml("kmalloc.yaml")
    sizes = doc.get("sizes")
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s > 0 for s in sizes) or sizes != sorted(sizes):
        raise DataError("data/kernel/kmalloc.yaml: field 'sizes' must be a rising list of positive integers")
    return tuple(sizes)


def kmalloc_size(size: int) -> int:
    """The object size of the kmalloc cache a request of ``size`` bytes lands in — mirrors
    ``kmalloc_slab()`` (sizes <= 192 through ``kmalloc_size_index``, larger to the next power of
    two). Raises for sizes above ``KMALLOC_MAX_CACHE_SIZE`` (those bypass slab: ``__kmalloc_large_node``)."""
    doc = _yaml("kmalloc.yaml")
    if not isinstance(size, int) or size < 1:
        raise AllocsimError(f"kmalloc size must be a positive integer number of bytes, not {size!r}")
    if size > doc["kmalloc_max_cache_size"]:
        raise AllocsimError(f"kmalloc size {size} is above KMALLOC_MAX_CACHE_SIZE ({doc['kmalloc_max_cache_size']}); such requests bypass the slab caches")
    for s in kmalloc_sizes():
        if s >= size:
            return s
    raise AssertionError("unreachable: sizes end at kmalloc_max_cache_size")


def kmalloc_cache_name(size: int) -> str:
    """``kmalloc-96``, ``kmalloc-1k`` … as the kernel names the cache for a request of ``size``."""
    s = kmalloc_size(size)
    return f"kmalloc-{s // 1024}k" if s >= 1024 else f"kmalloc-{s}"

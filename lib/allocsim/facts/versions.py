"""The kernel versions the models know, read from ``data/kernel/slub.yaml`` (``versions``), and what a
version string given by a user, a snapshot or ``uname -r`` stands for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from allocsim.facts.datafile import kernel_yaml
from allocsim.facts.errors import AllocsimError, DataError


def _versions() -> tuple[str, ...]:
    """``data/kernel/slub.yaml`` ``versions`` (its schema: "MAJOR.MINOR" strings, oldest first, each once),
    refused unless every version has what the models need: a row in :data:`FAMILY_OF`."""
    vs = tuple(kernel_yaml("slub.yaml")["versions"])
    for v in vs:
        if FAMILY_OF.get(v) not in FAMILIES:
            raise DataError(f"data/kernel/slub.yaml: field 'versions' lists {v}, which has no row in "
                            f"allocsim.facts.versions.FAMILY_OF (a version needs one: its model family, one of "
                            f"{', '.join(FAMILIES)})")
    return vs

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:-rc\d+)?(?:[-+_~].*)?$")


def check_version(v) -> str:
    """The known version ``v`` stands for: ``"7.0-rc4"`` → ``"7.0"``, ``"6.18.44"`` (or a ``uname -r``
    string such as ``"6.18.44-fc-v595"``) → ``"6.18"``. Raises :class:`AllocsimError` otherwise."""
    known = ", ".join(VERSIONS)
    m = _VERSION_RE.match(v.strip()) if isinstance(v, str) else None
    base = f"{int(m.group(1))}.{int(m.group(2))}" if m else None
    if base not in VERSIONS:
        raise AllocsimError(f"unknown kernel version {v!r}; the known versions are {known} "
                            f"(point releases such as 6.18.44 and release candidates such as 7.0-rc4 are accepted)")
    return base


# ---------------------------------------------------------------------------------------------------
# Model families: what a kernel version's SLUB looks like to the models. One row per version below.

@dataclass(frozen=True)
class Family:
    """The SLUB design of a group of kernel versions, as the models need to know it."""

    name: str
    #: ``struct kmem_cache_cpu`` with its lockless freelist fast path and the per-CPU partial list
    #: (``CONFIG_SLUB_CPU_PARTIAL``): mm/slub.c up to v6.19; removed by "slab: remove SLUB_CPU_PARTIAL"
    #: (the sheaves-for-all series merged for v7.0).
    cpu_slab: bool
    #: Every cache gets per-CPU sheaves by default, sized by ``calculate_sheaf_capacity()`` (mm/slub.c v7.0);
    #: kmalloc caches included.
    sheaves_by_default: bool
    #: Sheaves only for caches created with ``kmem_cache_args.sheaf_capacity`` (mm/slub.c v6.18, v6.19,
    #: ``do_kmem_cache_create()``), refilled through the cpu slab below them.
    sheaves_opt_in: bool
    #: The counters of ``enum stat_item`` (mm/slub.c) that this family no longer has.
    drops_cpu_slab_stats: bool


FAMILIES: dict[str, Family] = {
    "cpu-slab": Family("cpu-slab", cpu_slab=True, sheaves_by_default=False, sheaves_opt_in=True,
                       drops_cpu_slab_stats=False),
    "sheaves": Family("sheaves", cpu_slab=False, sheaves_by_default=True, sheaves_opt_in=False,
                      drops_cpu_slab_stats=True),
}

#: Each known version's family. Adding a version: its data in ``data/kernel/`` (``slub.yaml`` ``versions``)
#: and one row here.
FAMILY_OF: dict[str, str] = {
    "6.18": "cpu-slab",
    "6.19": "cpu-slab",
    "7.0": "sheaves",
}


#: The kernel versions the models know (``data/kernel/slub.yaml``), oldest first.
VERSIONS: tuple[str, ...] = _versions()


def reload() -> tuple[str, ...]:
    """Read the versions again (after a test pointed :data:`allocsim.facts.paths.DATA` elsewhere or added a
    :data:`FAMILY_OF` row); modules that imported ``VERSIONS`` by name keep their copy."""
    global VERSIONS
    VERSIONS = _versions()
    return VERSIONS


def family(v) -> Family:
    """The model family of kernel version ``v`` (any form :func:`check_version` accepts)."""
    base = check_version(v)
    name = FAMILY_OF.get(base)
    if name not in FAMILIES:
        raise DataError(f"kernel version {base} is listed in data/kernel/slub.yaml but has no row in "
                        f"allocsim.facts.versions.FAMILY_OF (known families: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def versions_where(**want: bool) -> tuple[str, ...]:
    """The known versions whose family has every given attribute, e.g. ``versions_where(cpu_slab=True)``."""
    return tuple(v for v in VERSIONS if all(getattr(family(v), k) == val for k, val in want.items()))


def newest() -> str:
    """The newest known version (the models' default)."""
    return VERSIONS[-1]

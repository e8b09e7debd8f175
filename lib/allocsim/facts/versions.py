"""The kernel versions the models know, read from ``data/kernel/slub.yaml`` (``versions``), and what a
version string given by a user, a snapshot or ``uname -r`` stands for.
"""

from __future__ import annotations

import re

from allocsim.facts.datafile import kernel_yaml
from allocsim.facts.errors import AllocsimError, DataError


def _versions() -> tuple[str, ...]:
    vs = kernel_yaml("slub.yaml").get("versions")
    if not isinstance(vs, list) or not vs or not all(isinstance(v, str) and re.fullmatch(r"\d+\.\d+", v) for v in vs):
        raise DataError("data/kernel/slub.yaml: field 'versions' must be a non-empty list of \"MAJOR.MINOR\" strings")
    return tuple(vs)


#: The kernel versions the models know (``data/kernel/slub.yaml``), oldest first.
VERSIONS: tuple[str, ...] = _versions()

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

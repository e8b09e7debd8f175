"""Reading the project's data files with one kind of error: a missing, unparsable or malformed file stops
with a :class:`~allocsim.facts.errors.DataError` that names it (as ``data/...`` when it lies in the data
folder), the row and the field.

The kernel constants (``data/kernel/*.yaml``) are read here, once each, and checked against the schemas
below (:mod:`allocsim.facts.schema`) before any model sees them. Modules that keep their own caches of
data register them with :func:`on_clear`, so that :func:`clear_cache` forgets everything read so far.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import yaml

from allocsim.facts import paths
from allocsim.facts.errors import DataError
from allocsim.facts.schema import Field, check_record, fail, int_list, integer, tiers


def label(path: Path) -> str:
    """How a message names a file: ``data/...`` inside the data folder, else relative to the repository."""
    p = Path(path).resolve()
    for base, prefix in ((paths.DATA, "data"), (paths.ROOT, "")):
        try:
            rel = p.relative_to(Path(base).resolve())
        except ValueError:
            continue
        return f"{prefix}/{rel}" if prefix else str(rel)
    return str(path)


def read_text(path: Path) -> str:
    """A data file's text; DataError naming the file when it is missing, a directory or unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{label(path)} is missing") from None
    except IsADirectoryError:
        raise DataError(f"{label(path)} is a directory, not a data file") from None
    except PermissionError:
        raise DataError(f"{label(path)} is not readable by this user (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{label(path)} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{label(path)} could not be read: {exc.strerror or exc}") from None


def read_yaml(path: Path):
    """Parse a YAML file; DataError naming the file when it is missing or not valid YAML."""
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"{label(path)} is not valid YAML ({str(exc).splitlines()[0]})") from None


# ---------------------------------------------------------------------------------------------------
# data/kernel/*.yaml: one schema per file

def _version_list(v):
    if not all(isinstance(x, str) and re.fullmatch(r"\d+\.\d+", x) for x in v):
        return ', which is not a list of "MAJOR.MINOR" strings such as "7.0"'
    keys = [tuple(map(int, x.split("."))) for x in v]
    if not v or any(a >= b for a, b in zip(keys, keys[1:])):
        return ", which is not a non-empty list of versions, oldest first, each once"
    return None


def _power_of_two(v):
    return None if v > 0 and v & (v - 1) == 0 else ", which is not a power of two"


_SOURCE = Field((str,))

KERNEL_SCHEMAS: dict[str, dict[str, Field]] = {
    "kmalloc.yaml": {
        "source": _SOURCE,
        "kmalloc_max_cache_size": Field((int,), low=1, check=_power_of_two),
        "sizes": int_list(low=1, rising=True),
        "small_rule_max": integer(1),
    },
    "slub.yaml": {
        "source": _SOURCE,
        "versions": Field((list,), check=_version_list),
        "page_size": Field((int,), low=512, check=_power_of_two),
        "nr_cpus_max": integer(1),
        "slub_max_order": integer(0),
        "slub_min_order": integer(0),
        "max_page_order": integer(0, 20),
        "max_objs_per_page": integer(1),
        "min_objects_factor": integer(1),
        "waste_fractions": int_list(low=2, falling=True),
        "min_partial": integer(0),
        "max_partial": integer(0),
        "cpu_partial_tiers": tiers("objects"),
    },
    "sheaves.yaml": {
        "source": _SOURCE,
        "capacity_tiers": tiers("capacity"),
    },
    "structs.yaml": {
        "source": _SOURCE,
        "scalars": Field((dict,)),
        "structs": Field((dict,)),
    },
}


def _cross_checks(name: str, doc: dict, where: str) -> None:
    """What one field says about another in the same file."""
    if name == "kmalloc.yaml":
        sizes = doc["sizes"]
        if sizes[-1] != doc["kmalloc_max_cache_size"]:
            fail(where, "sizes", f"ends at {sizes[-1]}, not at kmalloc_max_cache_size ({doc['kmalloc_max_cache_size']})")
        if doc["small_rule_max"] not in sizes:
            fail(where, "small_rule_max", f"is {doc['small_rule_max']}, which is not one of the sizes")
        big = [s for s in sizes if s > doc["small_rule_max"]]
        if any(s & (s - 1) for s in big):
            fail(where, "sizes", f"above small_rule_max must be powers of two (kmalloc_slab() rounds them with fls()), not {big}")
    elif name == "slub.yaml":
        if not doc["slub_min_order"] <= doc["slub_max_order"] <= doc["max_page_order"]:
            fail(where, "slub_max_order", f"is {doc['slub_max_order']}; it must lie from slub_min_order "
                                          f"({doc['slub_min_order']}) to max_page_order ({doc['max_page_order']})")
        if doc["max_partial"] < doc["min_partial"]:
            fail(where, "max_partial", f"is {doc['max_partial']}, below min_partial ({doc['min_partial']})")


_KERNEL_CACHE: dict[str, dict] = {}
_CLEARERS: list[Callable[[], None]] = []


def kernel_yaml(name: str) -> dict:
    """``data/kernel/<name>``, read once and checked against its schema in :data:`KERNEL_SCHEMAS` (every such
    file names its ``source``: file and kernel version)."""
    if name not in _KERNEL_CACHE:
        path = paths.DATA / "kernel" / name
        doc = read_yaml(path)
        where = label(path)
        if not isinstance(doc, dict):
            fail(where, None, "must be a mapping of field: value at the top level")
        if "source" not in doc or not str(doc.get("source") or "").strip():
            fail(where, "source", "is missing; every kernel constant needs its file and version")
        # a file without a schema here is checked for its source only (its reader checks the rest)
        check_record(doc, KERNEL_SCHEMAS.get(name, {"source": _SOURCE}), where, extra_ok=name not in KERNEL_SCHEMAS)
        _cross_checks(name, doc, where)
        _KERNEL_CACHE[name] = doc
    return _KERNEL_CACHE[name]


def on_clear(fn: Callable[[], None]) -> Callable[[], None]:
    """Register a function that forgets a module's cached data (called by :func:`clear_cache`)."""
    _CLEARERS.append(fn)
    return fn


def clear_cache() -> None:
    """Forget the data files read so far (tests that point the project at other data call this)."""
    _KERNEL_CACHE.clear()
    for fn in _CLEARERS:
        fn()

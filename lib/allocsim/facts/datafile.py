"""Reading the project's data files with one kind of error: a missing or unparsable file stops with a
:class:`~allocsim.facts.errors.DataError` that names it (as ``data/...`` when it lies in the repository)."""

from __future__ import annotations

from pathlib import Path

import yaml

from allocsim.facts.errors import DataError
from allocsim.facts.paths import ROOT


def label(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path):
    """Parse a YAML file; DataError naming the file when it is missing or not valid YAML."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{label(path)} is missing") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{label(path)} is not valid YAML ({str(exc).splitlines()[0]})") from None


_KERNEL_CACHE: dict[str, dict] = {}


def kernel_yaml(name: str) -> dict:
    """``data/kernel/<name>``, read once; every such file must name its ``source`` (file and kernel version)."""
    from allocsim.facts.paths import DATA

    if name not in _KERNEL_CACHE:
        doc = read_yaml(DATA / "kernel" / name)
        if not isinstance(doc, dict) or not str(doc.get("source", "")).strip():
            raise DataError(f"data/kernel/{name}: field 'source' is missing; every kernel constant needs its file and version")
        _KERNEL_CACHE[name] = doc
    return _KERNEL_CACHE[name]


def clear_cache() -> None:
    """Forget the data files read so far (tests that point the project at other data call this)."""
    _KERNEL_CACHE.clear()

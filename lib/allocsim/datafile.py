"""Reading the project's data files with one kind of error: a missing or unparsable file stops with a
:class:`~allocsim.errors.DataError` that names it (as ``data/...`` when it lies in the repository)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import DataError
from .paths import ROOT


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

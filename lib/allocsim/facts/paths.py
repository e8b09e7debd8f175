"""Where things live. The package is installed in editable mode from the repository, so the
repository root is two levels above this file; ``ALLOCSIM_ROOT`` overrides it."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("ALLOCSIM_ROOT", Path(__file__).resolve().parents[3]))
DATA = ROOT / "data"
BUILD = ROOT / "_build"

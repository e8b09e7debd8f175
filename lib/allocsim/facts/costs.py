"""The cycle-cost table: one row per primitive, each with a cited source (``data/costs.csv``).

Models charge cycles by index into a NumPy vector so the jitted code stays plain::

    from allocsim.facts import costs
    table = costs.load()            # the default table, validated
    c = table.vector                # float64[len(KEYS)], index with costs.IDX["spin_lock_pair"]

Variants (for sensitivity analysis) are made with :func:`CostTable.with_overrides` or
:func:`CostTable.at` (every entry at its ``low`` or ``high`` end).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from allocsim.facts.errors import DataError
from allocsim.facts.paths import DATA

COLUMNS = ("key", "cycles", "low", "high", "what", "machine", "source", "tag")
TAGS = {"V", "I"}  # V: verified in the cited source; I: inferred from cited sources (the row says how)

#: The keys every table must define, in vector order. Models use ``IDX[key]``; numba sees these
#: as compile-time constants when bound to module-level names (see :data:`C_*` below).
KEYS = (
    "preempt_pair",
    "local_trylock_pair",
    "irq_save_restore",
    "irq_disable_enable",
    "percpu_cmpxchg16b",
    "locked_cmpxchg16b",
    "spin_lock_pair",
    "cacheline_transfer",
    "l1_hit",
    "l2_hit",
    "l3_hit",
    "function_call",
    "page_alloc_free",
    "bulk_object",
    "memcg_charge",
)
IDX = {k: i for i, k in enumerate(KEYS)}
# Module-level integer constants for use inside @njit code: costs.C_SPIN_LOCK_PAIR etc.
for _k, _i in IDX.items():
    globals()["C_" + _k.upper()] = _i
del _k, _i


@dataclass(frozen=True)
class CostTable:
    name: str
    rows: dict = field(repr=False)  # key -> dict of the CSV fields (numbers as float)

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.rows[k]["cycles"] for k in KEYS], dtype=np.float64)

    def cycles(self, key: str) -> float:
        if key not in self.rows:
            raise DataError(f"unknown cost '{key}'; the cost table defines: {', '.join(KEYS)}")
        return self.rows[key]["cycles"]

    def with_overrides(self, **cycles: float) -> "CostTable":
        rows = {k: dict(v) for k, v in self.rows.items()}
        for k, v in cycles.items():
            if k not in rows:
                raise DataError(f"unknown cost '{k}'; the cost table defines: {', '.join(KEYS)}")
            rows[k]["cycles"] = float(v)
        return CostTable(self.name + "+overrides", rows)

    def at(self, end: str, keys=None) -> "CostTable":
        """Every entry (or those in ``keys``) moved to its ``low`` or ``high`` end."""
        if end not in ("low", "high"):
            raise DataError(f"cost-table end must be 'low' or 'high', not {end!r}")
        keys = KEYS if keys is None else keys
        return self.with_overrides(**{k: self.rows[k][end] for k in keys})

    def frame(self):
        import pandas as pd

        return pd.DataFrame([{"key": k, **self.rows[k]} for k in KEYS])


def _parse(path: Path) -> dict:
    rows: dict = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise DataError(f"{path.name}: the header must be {','.join(COLUMNS)}, not {','.join(reader.fieldnames or [])}")
        for lineno, raw in enumerate(reader, start=2):
            where = f"{path.name} line {lineno}"
            key = (raw["key"] or "").strip()
            if key not in IDX:
                raise DataError(f"{where}: field 'key' is {key!r}; allowed keys are {', '.join(KEYS)}")
            if key in rows:
                raise DataError(f"{where}: field 'key' repeats {key!r}")
            vals = {}
            for col in ("cycles", "low", "high"):
                try:
                    vals[col] = float(raw[col])
                except (TypeError, ValueError):
                    raise DataError(f"{where}: field '{col}' is {raw[col]!r}, which is not a number of cycles") from None
                if vals[col] < 0:
                    raise DataError(f"{where}: field '{col}' is negative ({raw[col]}); cycles must be >= 0")
            if not vals["low"] <= vals["cycles"] <= vals["high"]:
                raise DataError(f"{where}: field 'cycles' ({vals['cycles']}) must lie within low..high ({vals['low']}..{vals['high']})")
            for col in ("what", "source"):
                if not (raw[col] or "").strip():
                    raise DataError(f"{where}: field '{col}' is empty; every cost needs a description and a cited source")
            if raw["tag"] not in TAGS:
                raise DataError(f"{where}: field 'tag' is {raw['tag']!r}; allowed: V (verified) or I (inferred)")
            rows[key] = {**vals, "what": raw["what"], "machine": raw["machine"], "source": raw["source"], "tag": raw["tag"]}
    missing = [k for k in KEYS if k not in rows]
    if missing:
        raise DataError(f"{path.name}: no row for {', '.join(missing)}; every key in costs.KEYS needs a cited cost")
    return rows


def table_names() -> list[str]:
    names = ["default"] + sorted(p.stem[len("costs-"):] for p in DATA.glob("costs-*.csv"))
    return names


@lru_cache(maxsize=None)
def load(name: str = "default") -> CostTable:
    """Load and validate ``data/costs.csv`` (``name='default'``) or ``data/costs-<name>.csv``."""
    path = DATA / ("costs.csv" if name == "default" else f"costs-{name}.csv")
    if not path.exists():
        raise DataError(f"unknown cost table {name!r}; available: {', '.join(table_names())}")
    return CostTable(name, _parse(path))

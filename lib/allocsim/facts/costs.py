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
import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from allocsim.facts import paths
from allocsim.facts.datafile import label, on_clear, read_text
from allocsim.facts.errors import DataError
from allocsim.facts.schema import Field, check_record, fail, row_name

COLUMNS = ("key", "cycles", "low", "high", "what", "machine", "source", "tag")
TAGS = {"V", "I"}  # V: verified in the cited source; I: inferred from cited sources (the row says how)

#: The keys every table must define, in vector order. Models use ``IDX[key]``; numba sees these
#: as compile-time constants when bound to module-level names (see :data:`C_*` below).
KEYS = (
    "preempt_pair",
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
    "static_key",
    "spin_lock_irqsave_pair",
    "zero_line",
    "memcg_account",
)
#: Rows only the pre-v2 table (``data/costs-v1.csv``) has: v1 charged a sheaf lock as one
#: ``local_trylock_pair`` and an accounted allocation as Gushchin's ``memcg_charge``; cost model v2 charges
#: the steps of ``data/kernel/steps.yaml`` instead. A table may define them; the models' vector never holds them.
LEGACY_KEYS = ("local_trylock_pair", "memcg_charge")
ALL_KEYS = KEYS + LEGACY_KEYS
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
            if key in LEGACY_KEYS:
                raise DataError(f"the cost table {self.name!r} has no row '{key}' (a row of the pre-v2 table, "
                                f"data/costs-v1.csv, charged by data/kernel/steps-v1.yaml only)")
            raise DataError(f"unknown cost '{key}'; the cost table defines: {', '.join(self.rows)}")
        return self.rows[key]["cycles"]

    def with_overrides(self, **cycles: float) -> "CostTable":
        rows = {k: dict(v) for k, v in self.rows.items()}
        for k, v in cycles.items():
            if k not in rows:
                raise DataError(f"unknown cost '{k}'; the cost table defines: {', '.join(rows)}")
            rows[k]["cycles"] = float(v)
        return CostTable(self.name + "+overrides", rows)

    def at(self, end: str, keys=None) -> "CostTable":
        """Every entry (or those in ``keys``) moved to its ``low`` or ``high`` end."""
        if end not in ("low", "high"):
            raise DataError(f"cost-table end must be 'low' or 'high', not {end!r}")
        keys = tuple(self.rows) if keys is None else keys
        return self.with_overrides(**{k: self.rows[k][end] for k in keys})

    def frame(self):
        import pandas as pd

        return pd.DataFrame([{"key": k, **self.rows[k]} for k in ALL_KEYS if k in self.rows])


def _cycles(v):
    try:
        x = float(v)
    except ValueError:
        return ", which is not a number of cycles"
    return None if x >= 0 and x == x and x != float("inf") else ", which is not a number of cycles >= 0"


#: The schema of one row of a cost table (all CSV cells are text).
ROW_SCHEMA = {
    "key": Field((str,), allowed=ALL_KEYS, allowed_name="keys"),
    "cycles": Field((str,), check=_cycles), "low": Field((str,), check=_cycles), "high": Field((str,), check=_cycles),
    "what": Field((str,)), "machine": Field((str,), required=False, default=""),
    "source": Field((str,)), "tag": Field((str,), allowed=tuple(sorted(TAGS)), allowed_name="tags (V verified, I inferred)"),
}


def _parse(path: Path) -> dict:
    """Read and check one cost table: the header, every row against :data:`ROW_SCHEMA`, low <= cycles <= high,
    each key once and every key of :data:`KEYS` present."""
    name = label(path)
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        fail(name, None, f"the header must be {','.join(COLUMNS)}, not {','.join(reader.fieldnames or [])}")
    rows: dict = {}
    for lineno, raw in enumerate(reader, start=2):
        extra = raw.pop(None, None) or []          # cells beyond the header (csv's restkey)
        short = [k for k, v in raw.items() if v is None]  # cells the line lacks (csv's restval)
        raw = {k: v.strip() for k, v in raw.items() if v is not None}
        where = row_name(name, lineno, raw, "key", "line")
        if extra or short:
            fail(where, None, f"has {len(COLUMNS) + len(extra) - len(short)} cells, not {len(COLUMNS)} ({','.join(COLUMNS)})")
        check_record(raw, ROW_SCHEMA, where)
        key = raw["key"]
        if key in rows:
            fail(where, "key", f"repeats {key!r}")
        vals = {col: float(raw[col]) for col in ("cycles", "low", "high")}
        if not vals["low"] <= vals["cycles"] <= vals["high"]:
            fail(where, "cycles", f"({vals['cycles']}) must lie within low..high ({vals['low']}..{vals['high']})")
        rows[key] = {**vals, "what": raw["what"], "machine": raw["machine"], "source": raw["source"], "tag": raw["tag"]}
    missing = [k for k in KEYS if k not in rows]
    if missing:
        fail(name, None, f"no row for {', '.join(missing)}; every key in costs.KEYS needs a cited cost")
    return rows


def table_names() -> list[str]:
    """``default`` (``data/costs.csv``) and the ``<name>`` of every ``data/costs-<name>.csv``."""
    return ["default"] + sorted(p.stem[len("costs-"):] for p in paths.DATA.glob("costs-*.csv"))


def path_of(name: str = "default") -> Path:
    return paths.DATA / ("costs.csv" if name == "default" else f"costs-{name}.csv")


@lru_cache(maxsize=None)
def load(name: str = "default") -> CostTable:
    """Load and validate ``data/costs.csv`` (``name='default'``) or ``data/costs-<name>.csv``."""
    path = path_of(name)
    if not path.exists():
        raise DataError(f"unknown cost table {name!r}; available: {', '.join(table_names())}")
    return CostTable(name, _parse(path))


on_clear(load.cache_clear)

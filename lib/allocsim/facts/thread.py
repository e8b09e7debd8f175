"""The thread as data: participants, timeline and every quantitative claim (``data/thread/``).

Loading validates every row (types, units, required provenance fields) and stops at the first problem
with a :class:`~allocsim.facts.errors.DataError` naming the file, the row and the field. Quotes are checked
to be verbatim against the thread text (``data/thread/thread.txt``, a copy of the seed).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from allocsim.facts.datafile import read_yaml
from allocsim.facts.errors import DataError
from allocsim.facts.paths import DATA

THREAD_DIR = DATA / "thread"
UNITS = ("%", "x", "objects", "M IOPS")
ALLOCATORS = ("per-CPU list", "kmalloc", "sheaf-256")
KINDS = ("commit", "patch", "review", "reply", "report", "merge")

# field -> (python types, required non-empty)
PEOPLE_SCHEMA = {
    "id": (str, True), "name": (str, True), "affiliation": (str, False), "role": (str, True), "source": (str, True),
}
TIMELINE_SCHEMA = {
    "id": (str, True), "date": (dt.date, True), "author": (str, True), "kind": (str, True),
    "argued": (str, True), "link": (str, False),
}
CLAIM_SCHEMA = {
    "id": (str, True), "message": (str, True), "author": (str, True), "date": (dt.date, True),
    "kernel": (str, True), "setup": (str, True), "quantity": (str, True), "value": ((int, float), True),
    "low": ((int, float, type(None)), False), "high": ((int, float, type(None)), False), "unit": (str, True),
    "quote": (str, True), "tested_in": (str, True), "note": (str, False), "allocator": (str, False),
}


def _load_rows(path: Path, schema: dict) -> list[dict]:
    name = f"data/thread/{path.name}" if path.parent == THREAD_DIR else str(path)
    doc = read_yaml(path)
    if not isinstance(doc, list) or not doc:
        raise DataError(f"{name} must be a non-empty list of records")
    seen = set()
    for i, row in enumerate(doc, start=1):
        where = f"{name}, row {i}" + (f" (id {row.get('id')!r})" if isinstance(row, dict) and row.get("id") else "")
        if not isinstance(row, dict):
            raise DataError(f"{where}: each row must be a mapping of field: value")
        for field, (types, required) in schema.items():
            if field not in row:
                if required:
                    raise DataError(f"{where}: field '{field}' is missing")
                row[field] = None if field in ("low", "high") else ""
                continue
            v = row[field]
            if isinstance(v, bool) or not isinstance(v, types if isinstance(types, tuple) else (types,)):
                want = {dt.date: "a date (YYYY-MM-DD)", str: "text"}.get(types, "a number")
                raise DataError(f"{where}: field '{field}' is {v!r}, which is not {want}")
            if required and isinstance(v, str) and not v.strip():
                raise DataError(f"{where}: field '{field}' is empty")
        unknown = set(row) - set(schema)
        if unknown:
            raise DataError(f"{where}: unknown field '{sorted(unknown)[0]}'; allowed fields are {', '.join(schema)}")
        if row["id"] in seen:
            raise DataError(f"{where}: field 'id' repeats {row['id']!r}")
        seen.add(row["id"])
    return doc


def _normalise(text: str) -> str:
    lines = [re.sub(r"^[>\s]+", "", line) for line in text.splitlines()]
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


@lru_cache(maxsize=1)
def thread_text() -> str:
    """The thread, with quote markers and line breaks folded, for verbatim-quote checks."""
    return _normalise((THREAD_DIR / "thread.txt").read_text())


def quote_in_thread(quote: str) -> bool:
    return _normalise(quote) in thread_text()


def people(path: Path | None = None) -> pd.DataFrame:
    return pd.DataFrame(_load_rows(path or THREAD_DIR / "people.yaml", PEOPLE_SCHEMA)).set_index("id", drop=False)


def timeline(path: Path | None = None) -> pd.DataFrame:
    rows = _load_rows(path or THREAD_DIR / "timeline.yaml", TIMELINE_SCHEMA)
    ppl = people()
    name = path.name if path else "timeline.yaml"
    for i, r in enumerate(rows, start=1):
        if r["author"] not in ppl.index:
            raise DataError(f"data/thread/{name}, row {i} (id {r['id']!r}): field 'author' is {r['author']!r}; known people: {', '.join(ppl.index)}")
        if r["kind"] not in KINDS:
            raise DataError(f"data/thread/{name}, row {i} (id {r['id']!r}): field 'kind' is {r['kind']!r}; allowed: {', '.join(KINDS)}")
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    df = df.join(ppl[["name", "affiliation", "role"]], on="author")
    return df.sort_values("date", kind="stable").reset_index(drop=True)


def claims(path: Path | None = None) -> pd.DataFrame:
    """Every quantitative claim, validated: unit allowed, low <= value <= high, quote verbatim, the
    message and author known."""
    path = path or THREAD_DIR / "claims.yaml"
    rows = _load_rows(path, CLAIM_SCHEMA)
    name = f"data/thread/{path.name}" if path.parent == THREAD_DIR else str(path)
    msgs = set(timeline()["id"])
    ppl = set(people().index)
    for i, r in enumerate(rows, start=1):
        where = f"{name}, row {i} (id {r['id']!r})"
        if r["unit"] not in UNITS:
            raise DataError(f"{where}: field 'unit' is {r['unit']!r}; allowed units: {', '.join(UNITS)}")
        if r["message"] not in msgs:
            raise DataError(f"{where}: field 'message' is {r['message']!r}, which is not an id in timeline.yaml")
        if r["author"] not in ppl:
            raise DataError(f"{where}: field 'author' is {r['author']!r}; known people: {', '.join(sorted(ppl))}")
        if r["allocator"] and r["allocator"] not in ALLOCATORS:
            raise DataError(f"{where}: field 'allocator' is {r['allocator']!r}; allowed: {', '.join(ALLOCATORS)}")
        lo, hi = r["low"], r["high"]
        if (lo is None) != (hi is None) or (lo is not None and not lo <= r["value"] <= hi):
            raise DataError(f"{where}: fields 'low' and 'high' must both be empty or bracket 'value' ({r['value']})")
        if not quote_in_thread(r["quote"]):
            raise DataError(f"{where}: field 'quote' does not appear verbatim in data/thread/thread.txt")
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    return df


def iops_figures() -> pd.DataFrame:
    """The six IOPS figures as a tidy table: kernel, allocator, M IOPS, and the time per IO they imply."""
    c = claims()
    c = c[c["unit"] == "M IOPS"].copy()
    out = pd.DataFrame({
        "claim": c["id"].values,
        "kernel": c["kernel"].values,
        "allocator": c["allocator"].values,
        "miops": c["value"].astype(float).values,
    })
    out["ns_per_io"] = 1e3 / out["miops"]  # 1 / (M IOPS * 1e6) seconds = 1000 / M IOPS nanoseconds
    return out

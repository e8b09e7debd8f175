"""A small schema checker for the project's data files: required fields, types, allowed values, ranges.

Every file in ``data/`` is checked with it when it is loaded, and the first problem stops with one
:class:`~allocsim.facts.errors.DataError` sentence that names the file, the row and the field::

    data/thread/claims.yaml, row 8 (id 'iops-619-kmalloc'): field 'kernel' is '6.20'; ...

A schema is a mapping ``field name -> Field``. :func:`check_record` checks one mapping (a row, or a whole
file whose top level is a mapping); :func:`check_rows` checks a list of rows and that their key is unique.
Checks that involve several fields or files (a claim's message must be in the timeline) stay with the
loader, which raises through :func:`fail` so that every message has the same shape.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Callable

from allocsim.facts.errors import DataError

_MISSING = object()

#: How a Python type is named in a message.
TYPE_NAMES = {
    bool: "true or false", int: "an integer", float: "a number", str: "text", dt.date: "a date (YYYY-MM-DD)",
    list: "a list", dict: "a mapping", type(None): "empty (null)",
}


def _type_name(types: tuple) -> str:
    if set(types) >= {int, float}:
        types = tuple(t for t in types if t is not int)
    return " or ".join(TYPE_NAMES.get(t, t.__name__) for t in types)


def _show(v) -> str:
    """A value as a message shows it: repr, cut to 60 characters."""
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


@dataclass(frozen=True)
class Field:
    """What one field must hold.

    ``types``: the allowed Python types (``bool`` is never an ``int`` here); ``required``: the field must be
    present (and, for text, not blank); ``default``: the value an absent optional field gets;
    ``allowed``: the only values allowed (``allowed_name``, a plural, says what they are in the message);
    ``low``/``high``: an inclusive range for numbers; ``items``: a :class:`Field` every list element must
    satisfy; ``check``: a function returning ``None`` or the problem, worded to follow "field 'x' is V".
    """

    types: tuple = (str,)
    required: bool = True
    default: Any = None
    allowed: tuple | None = None
    allowed_name: str = ""
    low: float | None = None
    high: float | None = None
    items: "Field | None" = None
    check: Callable[[Any], str | None] | None = None

    def problem(self, v) -> str | None:
        """Why ``v`` does not fit (the words after "field 'x' is V"), or None."""
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
            return f", which is not {_type_name(types)}"
        if isinstance(v, float) and not math.isfinite(v):
            return ", which is not a finite number"
        if self.allowed is not None and v not in self.allowed:
            shown = [str(a) if a != "" else "empty" for a in self.allowed]
            return f"; allowed {self.allowed_name or 'values'}: " + ", ".join(shown)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if self.low is not None and v < self.low:
                return f", below the smallest allowed value {self.low:g}"
            if self.high is not None and v > self.high:
                return f", above the largest allowed value {self.high:g}"
        if isinstance(v, list) and self.items is not None:
            for i, item in enumerate(v, start=1):
                p = self.items.problem(item)
                if p is not None:
                    return f"; its item {i} is {_show(item)}{p}"
        if self.check is not None:
            return self.check(v)
        return None


def fail(where: str, field: str | None, what: str):
    """Raise the one-sentence DataError: ``"<where>: field '<field>' <what>"``."""
    raise DataError(f"{where}: field '{field}' {what}" if field else f"{where}: {what}")


def check_record(rec, schema: dict[str, Field], where: str, *, extra_ok: bool = False) -> dict:
    """Check one mapping against ``schema``; fill absent optional fields with their default. Returns ``rec``."""
    if not isinstance(rec, dict):
        fail(where, None, f"must be a mapping of field: value, not {_show(rec)}")
    for name, f in schema.items():
        v = rec.get(name, _MISSING)
        if v is _MISSING or (v is None and f.required and type(None) not in f.types):
            if f.required:
                fail(where, name, "is missing")
            rec[name] = copy.deepcopy(f.default)
            continue
        p = f.problem(v)
        if p is not None:
            fail(where, name, f"is {_show(v)}{p}")
        if f.required and isinstance(v, str) and not v.strip():
            fail(where, name, "is empty")
    if not extra_ok:
        unknown = sorted(set(rec) - set(schema), key=str)
        if unknown:
            fail(where, None, f"unknown field '{unknown[0]}'; allowed fields are {', '.join(schema)}")
    return rec


def check_rows(rows, schema: dict[str, Field], name: str, *, key: str | None = "id", noun: str = "row",
               start: int = 1, extra_ok: bool = False) -> list[dict]:
    """Check a non-empty list of rows; each row is named ``"<name>, <noun> <i> (<key> '<value>')"`` and the
    ``key`` field must not repeat. Returns the rows."""
    if not isinstance(rows, list) or not rows:
        fail(name, None, f"must be a non-empty list of records, not {_show(rows)}")
    seen = set()
    for i, row in enumerate(rows, start=start):
        where = row_name(name, i, row, key, noun)
        check_record(row, schema, where, extra_ok=extra_ok)
        if key is not None:
            if row[key] in seen:
                fail(where, key, f"repeats {_show(row[key])}")
            seen.add(row[key])
    return rows


def row_name(name: str, i: int, row, key: str | None = "id", noun: str = "row") -> str:
    """``"data/x.yaml, row 3 (id 'a')"``: how a message names a row."""
    label = f" ({key} {_show(row.get(key))})" if key and isinstance(row, dict) and row.get(key) not in (None, "") else ""
    return f"{name}, {noun} {i}{label}"


# -- reusable field checks ------------------------------------------------------------------------------

def nonempty_text(required: bool = True, default: str = "") -> Field:
    return Field((str,), required=required, default=default)


def integer(low: int | None = None, high: int | None = None, required: bool = True) -> Field:
    return Field((int,), required=required, low=low, high=high)


def int_list(low: int | None = None, rising: bool = False, falling: bool = False, strict: bool = True) -> Field:
    """A non-empty list of integers (each >= ``low``), optionally strictly rising or falling."""
    def order(v):
        if not v:
            return ", an empty list"
        pairs = list(zip(v, v[1:]))
        if rising and not all(a < b if strict else a <= b for a, b in pairs):
            return ", which is not a rising list"
        if falling and not all(a > b if strict else a >= b for a, b in pairs):
            return ", which is not a falling list"
        return None
    return Field((list,), items=Field((int,), low=low), check=order)


def tiers(value_key: str) -> Field:
    """``[{min_size, <value_key>}, ...]`` with falling ``min_size`` ending at 0 (the kernel's if/else chains)."""
    row = {"min_size": integer(0), value_key: integer(0)}

    def ok(v):
        if not v:
            return ", an empty list"
        for i, r in enumerate(v, start=1):
            try:
                check_record(dict(r) if isinstance(r, dict) else r, row, f"tier {i}")
            except DataError as exc:
                return f"; {exc}"
        sizes = [r["min_size"] for r in v]
        if any(a <= b for a, b in zip(sizes, sizes[1:])) or sizes[-1] != 0:
            return f"; the tiers' min_size must fall and end at 0, not {sizes}"
        return None
    return Field((list,), check=ok)

"""The thread as data: participants, timeline and every quantitative claim (``data/thread/``).

Loading validates every row (types, units, required provenance fields) and stops at the first problem
with a :class:`~allocsim.facts.errors.DataError` naming the file, the row and the field. Quotes are checked
to be verbatim against the thread text (``data/thread/thread.txt``).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from allocsim.facts import paths
from allocsim.facts.datafile import label, on_clear, read_text, read_yaml
from allocsim.facts.errors import AllocsimError
from allocsim.facts.schema import Field, check_rows, fail, row_name
from allocsim.facts import versions
from allocsim.facts.versions import check_version

UNITS = ("%", "x", "objects", "M IOPS")
ALLOCATORS = ("per-CPU list", "kmalloc", "sheaf-256")
KINDS = ("commit", "patch", "review", "reply", "report", "merge")
#: What a claim's ``kernel`` says when the message names no kernel.
NOT_STATED = "not stated"


def thread_dir() -> Path:
    """``data/thread`` (read at call time, so tests can point :data:`allocsim.facts.paths.DATA` elsewhere)."""
    return paths.DATA / "thread"


def __getattr__(name):  # THREAD_DIR follows paths.DATA
    if name == "THREAD_DIR":
        return thread_dir()
    raise AttributeError(name)


def _link(v):
    """A message's address: a public archive (``https://``), or where ``data/thread/thread.txt`` quotes it."""
    if v == "" or v.startswith("https://") or re.fullmatch(r"data/thread/thread\.txt,? lines? \d.*", v):
        return None
    return ", which is neither an https:// address nor 'data/thread/thread.txt lines N-M' (nor empty)"


def _kernel(v):
    """A claim's kernel: ``not stated``, or a version the models know, optionally followed by a note in
    parentheses (``6.19 (inferred)``, ``7.0-rc (inferred)``)."""
    if v == NOT_STATED:
        return None
    head = v.split(" (", 1)[0].strip()
    try:
        check_version(head)
    except AllocsimError:
        return (f", which is not a kernel version the models know ({', '.join(versions.VERSIONS)}; 7.0-rc4 or 6.18.44 "
                f"stand for 7.0 and 6.18) nor '{NOT_STATED}'")
    if " (" in v and not v.endswith(")"):
        return ", whose note after the version is not in parentheses"
    return None


TEXT = Field((str,))
OPTIONAL_TEXT = Field((str,), required=False, default="")
DATE = Field((dt.date,))
NUMBER = Field((int, float))

PEOPLE_SCHEMA = {
    "id": TEXT, "name": TEXT, "affiliation": OPTIONAL_TEXT, "role": TEXT, "source": TEXT,
}
TIMELINE_SCHEMA = {
    "id": TEXT, "date": DATE, "author": TEXT, "kind": Field((str,), allowed=KINDS, allowed_name="kinds"),
    "argued": TEXT, "link": Field((str,), required=False, default="", check=_link),
}
CLAIM_SCHEMA = {
    "id": TEXT, "message": TEXT, "author": TEXT, "date": DATE,
    "kernel": Field((str,), check=_kernel), "setup": TEXT, "quantity": TEXT, "value": NUMBER,
    "low": Field((int, float, type(None)), required=False), "high": Field((int, float, type(None)), required=False),
    "unit": Field((str,), allowed=UNITS, allowed_name="units"),
    "quote": TEXT, "tested_in": TEXT, "note": OPTIONAL_TEXT,
    "allocator": Field((str,), required=False, default="", allowed=ALLOCATORS + ("",), allowed_name="allocators"),
}


def _load_rows(path: Path, schema: dict) -> list[dict]:
    return check_rows(read_yaml(path), schema, label(path))


def _normalise(text: str) -> str:
    lines = [re.sub(r"^[>\s]+", "", line) for line in text.splitlines()]
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


@lru_cache(maxsize=1)
def thread_text() -> str:
    """The thread, with quote markers and line breaks folded, for verbatim-quote checks."""
    return _normalise(read_text(thread_dir() / "thread.txt"))


def quote_in_thread(quote: str) -> bool:
    return _normalise(quote) in thread_text()


_CITE_RE = re.compile(r"data/thread/thread\.txt,?\s+lines?\s+(\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*)")


def check_cited_lines(text: str, where: str, field: str) -> None:
    """Every ``data/thread/thread.txt line(s) N[-M], ...`` that ``text`` cites must exist in the thread file."""
    nlines = None
    for m in _CITE_RE.finditer(text):
        nlines = nlines or len(read_text(thread_dir() / "thread.txt").splitlines())
        cited = [int(n) for n in re.findall(r"\d+", m.group(1))]
        if not all(1 <= n <= nlines for n in cited):
            fail(where, field, f"cites lines {cited}, but data/thread/thread.txt has {nlines}")


def people(path: Path | None = None) -> pd.DataFrame:
    """``data/thread/people.yaml``: who took part, validated."""
    path = path or thread_dir() / "people.yaml"
    rows = _load_rows(path, PEOPLE_SCHEMA)
    for i, r in enumerate(rows, start=1):
        check_cited_lines(r["source"], row_name(label(path), i, r), "source")
    return pd.DataFrame(rows).set_index("id", drop=False)


def timeline(path: Path | None = None) -> pd.DataFrame:
    """``data/thread/timeline.yaml``: the messages and events, validated, oldest first."""
    path = path or thread_dir() / "timeline.yaml"
    rows = _load_rows(path, TIMELINE_SCHEMA)
    ppl = people()
    for i, r in enumerate(rows, start=1):
        if r["author"] not in ppl.index:
            fail(row_name(label(path), i, r), "author", f"is {r['author']!r}; known people: {', '.join(ppl.index)}")
        check_cited_lines(r["link"], row_name(label(path), i, r), "link")
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    df = df.join(ppl[["name", "affiliation", "role"]], on="author")
    return df.sort_values("date", kind="stable").reset_index(drop=True)


def claims(path: Path | None = None) -> pd.DataFrame:
    """Every quantitative claim, validated: unit allowed, low <= value <= high, quote verbatim, the
    message and author known, the kernel one the models know (or ``not stated``), and for the reported
    throughputs one figure per allocator on each kernel."""
    path = path or thread_dir() / "claims.yaml"
    rows = _load_rows(path, CLAIM_SCHEMA)
    name = label(path)
    msgs = set(timeline()["id"])
    ppl = set(people().index)
    iops: dict[str, dict[str, str]] = {}
    for i, r in enumerate(rows, start=1):
        where = row_name(name, i, r)
        if r["message"] not in msgs:
            fail(where, "message", f"is {r['message']!r}, which is not an id in data/thread/timeline.yaml")
        if r["author"] not in ppl:
            fail(where, "author", f"is {r['author']!r}; known people: {', '.join(sorted(ppl))}")
        lo, hi = r["low"], r["high"]
        if (lo is None) != (hi is None) or (lo is not None and not lo <= r["value"] <= hi):
            fail(where, None, f"fields 'low' and 'high' must both be empty or bracket 'value' ({r['value']})")
        if r["unit"] == "M IOPS":
            # a reported throughput: the chapters compare allocators on one kernel, so each names both
            if not r["allocator"]:
                fail(where, "allocator", f"is missing; an M IOPS figure needs one of {', '.join(ALLOCATORS)}")
            if r["kernel"] == NOT_STATED:
                fail(where, "kernel", f"is '{NOT_STATED}'; an M IOPS figure needs the kernel it was measured on")
            mine = iops.setdefault(check_version(r["kernel"].split(" (", 1)[0]), {})
            if r["allocator"] in mine:
                fail(where, "allocator", f"repeats {r['allocator']!r} on kernel {r['kernel']} (row id {mine[r['allocator']]!r})")
            mine[r["allocator"]] = r["id"]
        if not quote_in_thread(r["quote"]):
            fail(where, "quote", "does not appear verbatim in data/thread/thread.txt")
    for kernel, have in iops.items():
        missing = [a for a in ALLOCATORS if a not in have]
        if missing:
            fail(f"{name} (M IOPS figures of kernel {kernel})", None,
                 f"no figure for {', '.join(missing)}; each kernel's figures must cover {', '.join(ALLOCATORS)}")
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    return df


@on_clear
def _forget() -> None:
    thread_text.cache_clear()


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

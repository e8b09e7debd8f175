"""Published allocator measurements the book compares its models with — validation only, never fitted
(``data/published/*.yaml``; one file per measurement, each naming its source: Message-Id, URL, benchmark).

:func:`bulk_fallback` is Brouer's 2015 per-object alloc+free cost of SLUB against the number of objects
allocated before they are freed (``data/published/slub_bulk_fallback_2015.yaml``), which chapter 4 sets
beside the microbenchmark with the memory hierarchy; :func:`sheaves_v6` the sheaves series' own benchmark
(``sheaves_v6_2025.yaml``) and :func:`fastpath_pair` measured whole-call cpu-slab pairs
(``slub_fastpath_pair.yaml``), both of chapter 4's validation of the hot pair. A malformed file stops with one
:class:`~allocsim.facts.errors.DataError` sentence naming the file, the row and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from allocsim.facts import paths
from allocsim.facts.datafile import label, on_clear, read_yaml
from allocsim.facts.schema import Field, check_record, check_rows, fail, integer

#: What every published file says of its source: the mail (or page) a reader can open.
SOURCE_SCHEMA = {
    "id": Field((str,)), "title": Field((str,)), "author": Field((str,)), "date": Field((str,)),
    "message_id": Field((str,)), "url": Field((str,)),
}
FILE_SCHEMA = {
    **SOURCE_SCHEMA, "benchmark": Field((str,)), "machine": Field((str,)),
    "cpus": integer(low=1), "kernel": Field((str,)), "object_size": integer(low=8),
    "object_size_source": Field((str,)), "free_order": Field((str,), allowed=("fifo", "lifo", "random"),
                                                               allowed_name="free orders"),
    "unit": Field((str,)), "baseline_pair": Field((int, float), low=0), "rows": Field((list,)),
}
ROW_SCHEMA = {"bulk": integer(low=1), "cycles": Field((int, float), low=0)}


@dataclass(frozen=True)
class Source:
    """Where a published measurement comes from (:data:`SOURCE_SCHEMA`)."""

    id: str
    title: str
    author: str
    date: str
    message_id: str
    url: str


@dataclass(frozen=True)
class Measurement(Source):
    """One published series: per-object cycles (``cycles``) for each batch size (``bulk``), with its source."""

    benchmark: str
    machine: str
    cpus: int
    kernel: str
    object_size: int
    object_size_source: str
    free_order: str
    unit: str
    baseline_pair: float
    rows: tuple = field(repr=False)

    def frame(self):
        import pandas as pd

        return pd.DataFrame([dict(r) for r in self.rows])


def path():
    return paths.DATA / "published" / "slub_bulk_fallback_2015.yaml"


def _check(doc, where: str) -> Measurement:
    if not isinstance(doc, dict):
        fail(where, None, "must be a mapping of field: value at the top level")
    check_record(doc, FILE_SCHEMA, where)
    rows = check_rows(doc["rows"], ROW_SCHEMA, where, key="bulk")
    bulks = [r["bulk"] for r in rows]
    if bulks != sorted(bulks):
        fail(where, "rows", f"must list the batch sizes rising, not {bulks}")
    return Measurement(**{k: doc[k] for k in FILE_SCHEMA if k != "rows"}, rows=tuple(rows))


@lru_cache(maxsize=None)
def bulk_fallback() -> Measurement:
    """``data/published/slub_bulk_fallback_2015.yaml``, read and checked."""
    p = path()
    return _check(read_yaml(p), label(p))


on_clear(bulk_fallback.cache_clear)


V6_SCHEMA = {
    **SOURCE_SCHEMA, "machine": Field((str,)), "kernel": Field((str,)),
    "capacity": integer(low=1), "free_order": Field((str,), allowed=("fifo", "lifo", "random"), allowed_name="free orders"),
    "unit": Field((str,)), "rows": Field((list,)),
}
V6_ROW = {"batch": integer(low=1), "memcg": Field((bool,)), "without": Field((int, float), low=0),
          "with_sheaves": Field((int, float), low=0)}


@dataclass(frozen=True)
class SheavesV6(Source):
    """The sheaves series' benchmark rows (``batch``, ``memcg``, ``without``, ``with_sheaves``) and their source."""

    machine: str
    kernel: str
    capacity: int
    free_order: str
    unit: str
    rows: tuple = field(repr=False)

    @property
    def source(self) -> str:
        """The source in one line (cover letter, date, Message-Id, machine, kernel, unit)."""
        return (f"'{self.title}', {self.author}, {self.date}, Message-Id {self.message_id} (RESULTS): {self.machine}, "
                f"{self.kernel}, a cache with sheaves (capacity {self.capacity}) against one without, "
                f"{self.free_order.upper()} frees; {self.unit}")


@lru_cache(maxsize=None)
def sheaves_v6() -> SheavesV6:
    """``data/published/sheaves_v6_2025.yaml``, read and checked."""
    p = paths.DATA / "published" / "sheaves_v6_2025.yaml"
    where = label(p)
    doc = read_yaml(p)
    if not isinstance(doc, dict):
        fail(where, None, "must be a mapping of field: value at the top level")
    check_record(doc, V6_SCHEMA, where)
    rows = check_rows(doc["rows"], V6_ROW, where, key=None)
    seen = set()
    for i, r in enumerate(rows, start=1):
        if (r["batch"], r["memcg"]) in seen:
            fail(f"{where}, row {i}", "batch", f"repeats batch {r['batch']} with memcg {r['memcg']}")
        seen.add((r["batch"], r["memcg"]))
    return SheavesV6(**{k: doc[k] for k in V6_SCHEMA if k != "rows"}, rows=tuple(rows))


PAIR_ROW = {"id": Field((str,)), "cycles": Field((int, float), low=0), "machine": Field((str,)),
            "source": Field((str,)), "quote": Field((str,), required=False, default="")}


@lru_cache(maxsize=None)
def fastpath_pair() -> tuple[dict, ...]:
    """``data/published/slub_fastpath_pair.yaml``: measured whole-call cpu-slab alloc+free pairs (cycles), each
    with its machine and source."""
    p = paths.DATA / "published" / "slub_fastpath_pair.yaml"
    where = label(p)
    doc = read_yaml(p)
    if not isinstance(doc, dict):
        fail(where, None, "must be a mapping of field: value at the top level")
    return tuple(check_rows(doc.get("rows"), PAIR_ROW, where, key="id"))


on_clear(sheaves_v6.cache_clear)
on_clear(fastpath_pair.cache_clear)

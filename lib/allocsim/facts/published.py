"""Published allocator measurements the book compares its models with — validation only, never fitted
(``data/published/*.yaml``; one file per measurement, each naming its source: Message-Id, URL, benchmark).

:func:`bulk_fallback` is Brouer's 2015 per-object alloc+free cost of SLUB against the number of objects
allocated before they are freed (``data/published/slub_bulk_fallback_2015.yaml``), which chapter 4 sets
beside the microbenchmark with the memory hierarchy. A malformed file stops with one
:class:`~allocsim.facts.errors.DataError` sentence naming the file, the row and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from allocsim.facts import paths
from allocsim.facts.datafile import label, on_clear, read_yaml
from allocsim.facts.schema import Field, check_record, check_rows, fail, integer

FILE_SCHEMA = {
    "id": Field((str,)), "title": Field((str,)), "author": Field((str,)), "date": Field((str,)),
    "message_id": Field((str,)), "url": Field((str,)), "benchmark": Field((str,)), "machine": Field((str,)),
    "cpus": integer(low=1), "kernel": Field((str,)), "object_size": integer(low=8),
    "object_size_source": Field((str,)), "free_order": Field((str,), allowed=("fifo", "lifo", "random"),
                                                               allowed_name="free orders"),
    "unit": Field((str,)), "baseline_pair": Field((int, float), low=0), "rows": Field((list,)),
}
ROW_SCHEMA = {"bulk": integer(low=1), "cycles": Field((int, float), low=0)}


@dataclass(frozen=True)
class Measurement:
    """One published series: per-object cycles (``cycles``) for each batch size (``bulk``), with its source."""

    id: str
    title: str
    author: str
    date: str
    message_id: str
    url: str
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

"""What the iomap_dio per-CPU list bypasses (``data/bypass.yaml``): one item per kernel facility, for each of
the three caches (the patch's list, the bio cache it copied, SLUB) what it does and where that is read.

:func:`load` checks the file against :data:`ITEM_SCHEMA` (every cell text, every cell with its source; the
lines of ``data/thread/thread.txt`` a source cites must exist) and returns the items; the table is drawn by :func:`allocsim.kernel.pcpu_list.bypass_table`.
"""

from __future__ import annotations

from allocsim.facts import paths
from allocsim.facts.datafile import label, read_yaml
from allocsim.facts.schema import Field, check_record, check_rows, row_name
from allocsim.facts.thread import check_cited_lines

#: The caches compared, in column order: key -> column title.
CACHES = {"patch": "per-CPU list (patch v3)", "bio": "bio cache (block/bio.c)", "slub": "SLUB (kmalloc / sheaves)"}

ITEM_SCHEMA = {"item": Field((str,)), **{k: Field((str,)) for c in CACHES for k in (c, f"{c}_source")}}
FILE_SCHEMA = {"source": Field((str,)), "items": Field((list,))}


def load() -> list[dict]:
    """The items of ``data/bypass.yaml``, checked: each names its item and, for every cache, a text and a source."""
    path = paths.DATA / "bypass.yaml"
    name = label(path)
    doc = check_record(read_yaml(path), FILE_SCHEMA, name)
    check_cited_lines(doc["source"], name, "source")
    items = check_rows(doc["items"], ITEM_SCHEMA, name, key="item", noun="item")
    for i, it in enumerate(items, start=1):
        for c in CACHES:
            check_cited_lines(it[f"{c}_source"], row_name(name, i, it, "item", "item"), f"{c}_source")
    return items

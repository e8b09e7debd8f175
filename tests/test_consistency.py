"""The book agrees with itself: glued values that name the same quantity on different pages are equal.

The groups are declared once, in :mod:`allocsim.pages.same_quantities`; this test reads the executed
notebooks of the book built once per session (the ``built_book`` fixture) through
:mod:`allocsim.book.numbers`, the same reader as ``python -m allocsim numbers``.
"""

import math

import pytest

from allocsim.book import numbers
from allocsim.book.runner import EXECUTED
from allocsim.pages import params, same_quantities


def _same(a: str, b: str) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    except ValueError:
        return a == b


def disagreements(rows: list[dict]) -> list[str]:
    """One line per group whose members do not all have one value (or are missing from the book)."""
    values = {(r["chapter"], r["name"]): r["value"] for r in rows}
    chapters = {r["chapter"] for r in rows}
    out = []
    for quantity, members in same_quantities.GROUPS:
        present = [(m, values[m]) for m in members if m in values]
        missing = [m for m in members if m not in values and m[0] in chapters]
        if missing:
            out.append(f"{quantity}: not glued on the page: {', '.join(f'{c}::{k}' for c, k in missing)}")
        if present and not all(_same(present[0][1], v) for _, v in present[1:]):
            out.append(f"{quantity}: " + ", ".join(f"{c}::{k} = {v}" for (c, k), v in present))
    return out


def test_the_groups_name_distinct_keys():
    assert len(same_quantities.keys()) == len(set(same_quantities.keys()))
    assert all(len(members) >= 2 for _, members in same_quantities.GROUPS)


def test_a_disagreement_is_reported():
    rows = [{"chapter": "02-pcpu", "name": "irq_kmalloc", "value": "42.97"},
            {"chapter": "05-iops", "name": "cyc_7.0_kmalloc", "value": "24.25"},
            {"chapter": "03-cpu-slab", "name": "m_kmalloc_70", "value": "24.25"}]
    found = disagreements(rows)
    assert any("02-pcpu::irq_kmalloc = 42.97" in line for line in found)
    rows[0]["value"] = "24.25"
    assert not [line for line in disagreements(rows) if "7.0 kmalloc" in line]


def test_a_key_missing_from_a_built_page_is_reported():
    rows = [{"chapter": "02-pcpu", "name": "something_else", "value": "1"}]
    assert any("02-pcpu::irq_kmalloc" in line for line in disagreements(rows))


def test_every_chapter_with_a_clock_has_the_same_default():
    defaults = {s.slug: p.default for s in params.specs().values() for p in s.params if p.name == "clock_ghz"}
    assert len(defaults) >= 4 and len(set(defaults.values())) == 1, defaults


@pytest.mark.book
def test_the_built_book_agrees_with_itself(built_book):
    rows = numbers.collect(EXECUTED)
    assert {r["chapter"] for r in rows} >= {c for c, _ in same_quantities.keys()}
    assert disagreements(rows) == []

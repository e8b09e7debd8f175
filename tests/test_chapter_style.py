"""Chapters read like lectures: short code cells that call the package, glue keys by name, and no cache
name or patch constant typed into the prose (they come from data through code)."""

import re

import pytest

from conftest import ROOT

from allocsim.pages.toc import chapter_pages

#: Every executable chapter in _toc.yml (a new chapter is checked without being listed here).
CHAPTERS = tuple(p.stem for p in chapter_pages().values())
CELL = re.compile(r"```\{code-cell\} ipython3\n(.*?)```", re.S)
MAX_LINES = 10


def _cells(name):
    return CELL.findall((ROOT / "chapters" / f"{name}.md").read_text())


@pytest.mark.parametrize("name", CHAPTERS)
def test_code_cells_are_short(name):
    for body in _cells(name):
        if "parameters" in body.splitlines()[0]:
            continue  # papermill's parameters cell lists every parameter, one a line
        lines = [x for x in body.splitlines() if x.strip() and not x.startswith(":tags:")]
        assert len(lines) <= MAX_LINES, f"{name}: a code cell of {len(lines)} lines:\n{body}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_glue_keys_are_names_not_positions(name):
    code = "\n".join(_cells(name))
    assert not re.search(r'glue\(f"', code), f"{name} builds glue keys from values or positions"
    assert not re.search(r"\[\d+\]\[\d+\]", code), f"{name} indexes nested lists by position"


@pytest.mark.parametrize("name", CHAPTERS)
def test_no_typed_cache_names_or_patch_limits_in_prose(name):
    prose = CELL.sub("", (ROOT / "chapters" / f"{name}.md").read_text())
    prose = re.sub(r"^>.*$", "", prose, flags=re.M)  # quotes from the thread are typed, verbatim
    assert not re.search(r"`kmalloc-\d+k?`", prose), f"{name} types a kmalloc cache name"
    assert not re.search(r"at least 16|at most 256|\d+-byte header", prose), f"{name} types a patch constant"

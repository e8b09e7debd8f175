"""The re-run examples in the README and in the chapters change something: no example sets a parameter to
its default, and every example names a parameter the chapter has, with a value it accepts."""

import re

import pytest

from allocsim.pages import params
from conftest import ROOT

RUN = re.compile(r"run ([a-z]+)((?: -p \S+ \S+)+)")


def examples() -> list[tuple[str, str, list[tuple[str, str]]]]:
    out = []
    for f in [ROOT / "README.md", *sorted((ROOT / "chapters").glob("*.md"))]:
        for m in RUN.finditer(f.read_text()):
            pairs = re.findall(r"-p (\S+) (\S+)", m.group(2))
            out.append((f.name, m.group(1), [(n, v.strip("`")) for n, v in pairs]))
    return out


def test_there_are_examples():
    assert len(examples()) >= 10


@pytest.mark.parametrize("where,slug,pairs", examples(), ids=lambda x: x if isinstance(x, str) else None)
def test_example_changes_a_parameter(where, slug, pairs):
    spec = params.spec(slug)
    for name, raw in pairs:
        p = spec.param(name)
        assert p.coerce(raw) != p.default, f"{where}: `run {slug} -p {name} {raw}` sets {name} to its default"

"""python -m allocsim numbers: every glued value of a built book as CSV, and the difference of two exports."""

import json

import nbformat
import pytest

from allocsim.book import numbers
from allocsim.facts.errors import AllocsimError
from conftest import run_cli

P = numbers.PREFIX


def _glue(name, data):
    return nbformat.v4.new_output("display_data", data={P + k: v for k, v in data.items()},
                                  metadata={"scrapbook": {"name": name, "mime_prefix": P}})


def _book(folder, chapters):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, outputs in chapters.items():
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("glue(...)")
        cell.outputs = outputs + [nbformat.v4.new_output("stream", text="not glue\n")]
        nb.cells = [cell]
        nbformat.write(nb, str(folder / f"{stem}.ipynb"))
    return folder


CHART = '<div id="altair-viz-{}"></div><script>vegaEmbed("#altair-viz-{}", {{"mark": "point"}})</script>'


def test_collect_reads_numbers_markdown_and_charts(tmp_path):
    book = _book(tmp_path / "ex", {
        "02-pcpu": [_glue("irq_kmalloc", {"text/plain": "24.25"}),
                    _glue("m_class", {"text/markdown": "`kmalloc-128`", "text/plain": "<IPython.core.display.Markdown object>"}),
                    _glue("fig", {"text/html": CHART.format("ab12", "ab12"), "text/plain": "alt.Chart(...)"}),
                    _glue("irq_kmalloc", {"text/plain": "24.5"})],  # glued twice: the page shows the last value
        "01-thread": [_glue("clock", {"text/plain": "3.0"})],
        "03-cpu-slab.partial": [_glue("x", {"text/plain": "1"})]})
    (book / "03-cpu-slab.FAILED.ipynb").write_text("{}")
    rows = numbers.collect(book)
    assert [(r["chapter"], r["name"]) for r in rows] == [
        ("01-thread", "clock"), ("02-pcpu", "m_class"), ("02-pcpu", "fig"), ("02-pcpu", "irq_kmalloc")]
    values = {r["name"]: r["value"] for r in rows}
    assert values["irq_kmalloc"] == "24.5" and values["m_class"] == "`kmalloc-128`"
    assert values["fig"].startswith("<text/html sha256:")
    # the same chart with another random element id is the same value; another chart is not
    other = _book(tmp_path / "ex2", {"02-pcpu": [_glue("fig", {"text/html": CHART.format("ff00", "ff00")})]})
    assert numbers.collect(other)[0]["value"] == values["fig"]
    changed = _book(tmp_path / "ex3", {"02-pcpu": [_glue("fig", {"text/html": CHART.format("ab12", "ab12").replace("point", "bar")})]})
    assert numbers.collect(changed)[0]["value"] != values["fig"]


def test_csv_round_trip_and_diff(tmp_path):
    old = [{"chapter": "a", "name": "x", "value": "1"}, {"chapter": "a", "name": "gone", "value": "2"},
           {"chapter": "b", "name": "same", "value": "`k`"}]
    new = [{"chapter": "a", "name": "x", "value": "1.5"}, {"chapter": "b", "name": "same", "value": "`k`"},
           {"chapter": "b", "name": "new, with a comma", "value": "3, 4"}]
    f = tmp_path / "old.csv"
    f.write_text(numbers.to_csv(old))
    assert numbers.read_csv(f) == old
    ch = numbers.diff(numbers.read_csv(f), new)
    assert [(c.kind, c.name, c.old, c.new) for c in ch] == [
        ("changed", "x", "1", "1.5"), ("added", "new, with a comma", None, "3, 4"), ("removed", "gone", "2", None)]
    text = numbers.diff_text(ch, 3, 3)
    assert text.splitlines()[0] == "3 values before, 3 after: 1 changed, 1 added, 1 removed"
    assert "changed  a::x: 1 -> 1.5" in text
    assert numbers.diff(old, old) == [] and "no number changed" in numbers.diff_text([], 3, 3)


def test_bad_inputs_are_one_sentence(tmp_path):
    with pytest.raises(AllocsimError, match="no built book"):
        numbers.collect(tmp_path / "missing")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(AllocsimError, match="not a numbers export"):
        numbers.read_csv(bad)
    broken = tmp_path / "ex"
    broken.mkdir()
    (broken / "01-thread.ipynb").write_text("{not json")
    with pytest.raises(AllocsimError, match="cannot read the executed notebook"):
        numbers.collect(broken)


def test_cli_exports_and_diffs(tmp_path):
    book = _book(tmp_path / "ex", {"01-thread": [_glue("clock", {"text/plain": "3.0"})]})
    out = tmp_path / "n.csv"
    proc = run_cli("numbers", "--executed", str(book), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "chapter,name,value\n01-thread,clock,3.0\n"
    proc = run_cli("numbers", "--executed", str(book))
    assert proc.stdout == out.read_text()
    _book(book, {"01-thread": [_glue("clock", {"text/plain": "4.0"})]})
    proc = run_cli("numbers", "--executed", str(book), "--diff", str(out))
    assert proc.returncode == 0 and "changed  01-thread::clock: 3.0 -> 4.0" in proc.stdout


def test_cli_without_a_built_book_says_so(tmp_path):
    proc = run_cli("numbers", "--executed", str(tmp_path / "nothing"))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: no built book") and len(proc.stderr.strip().splitlines()) == 1

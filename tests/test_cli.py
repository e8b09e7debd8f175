"""The re-run command checks parameters before starting a kernel and leaves nothing that looks finished."""

import json
import tempfile
from pathlib import Path

import jupytext
import papermill as pm
import pytest

from allocsim.book import runner as book
from allocsim.pages import params
from allocsim.facts.errors import AllocsimError

from conftest import ROOT, run_cli


def _one_line_error(proc):
    err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(err) == 1, proc.stderr
    assert err[0].startswith("error: ")
    return err[0]


def test_unknown_parameter_is_rejected_before_running(tmp_path):
    out = tmp_path / "x.ipynb"
    proc = run_cli("run", "thread", "-p", "no_such_thing", "3", "-o", str(out))
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert "chapter 'thread' has no parameter 'no_such_thing'; its parameters are: baseline, clock_ghz" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_out_of_range_and_wrong_type_values(tmp_path):
    out = tmp_path / "x.ipynb"
    proc = run_cli("run", "thread", "-p", "clock_ghz", "99", "-o", str(out))
    assert proc.returncode == 2
    assert "parameter clock_ghz must be a number from 0.5 to 6.0, not 99.0" in _one_line_error(proc)
    proc = run_cli("run", "thread", "-p", "clock_ghz", "fast", "-o", str(out))
    assert proc.returncode == 2
    assert "parameter clock_ghz must be a number from 0.5 to 6.0, not 'fast'" in _one_line_error(proc)
    proc = run_cli("run", "thread", "-p", "baseline", "slab", "-o", str(out))
    assert "parameter baseline must be one of 'kmalloc', 'sheaf-256', 'per-CPU list', not 'slab'" in _one_line_error(proc)
    assert not list(tmp_path.iterdir())


def test_unknown_chapter():
    proc = run_cli("run", "nochapter")
    assert proc.returncode == 2
    assert "unknown chapter 'nochapter'" in _one_line_error(proc)


def test_params_lists_every_chapter_parameter():
    proc = run_cli("params")
    assert proc.returncode == 0
    for spec in params.specs().values():
        for p in spec.params:
            assert p.name in proc.stdout
            assert p.help.split()[0] in proc.stdout


def test_run_executes_with_parameters(tmp_path):
    out = tmp_path / "thread.ipynb"
    proc = run_cli("run", "thread", "-p", "clock_ghz", "4.5", "-p", "baseline", "sheaf-256", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    nb = json.loads(out.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0]["metadata"]["tags"]
    assert "clock_ghz = 4.5" in "".join(injected[0]["source"])
    # the page's parameter table records the change
    text = json.dumps(nb)
    assert "4.5" in text and "sheaf-256" in text


@pytest.mark.parametrize("slug", list(params.specs()))
def test_notebook_parameters_cell_matches_its_spec(slug):
    spec = params.spec(slug)
    nb = jupytext.read(ROOT / spec.source)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "nb.ipynb"
        jupytext.write(nb, p)
        found = {x["name"]: x for x in pm.inspect_notebook(str(p)).values()}
    assert set(found) == {p.name for p in spec.params}, f"{spec.source}: parameters cell and spec disagree"
    for prm in spec.params:
        assert eval(found[prm.name]["default"]) == prm.default, f"{spec.source}: default of {prm.name}"


def test_every_notebook_page_has_a_spec():
    pages = book.chapter_pages()
    assert "thread" in pages
    sources = {s.source for s in params.specs().values()}
    for p in book.pages():
        if p.notebook:
            assert p.path in sources


def test_param_checks_in_python():
    s = params.spec("thread")
    with pytest.raises(AllocsimError, match="parameter clock_ghz must be a number from 0.5 to 6.0, not True"):
        s.validate({"clock_ghz": True})
    assert s.validate({"clock_ghz": 4}).clock_ghz == 4.0

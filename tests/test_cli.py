"""The re-run command checks parameters before starting a kernel and leaves nothing that looks finished."""

import json
import re
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


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "1e999"])
def test_non_finite_numbers_are_rejected(tmp_path, value):
    out = tmp_path / "x.ipynb"
    proc = run_cli("run", "thread", "-p", "clock_ghz", value, "-o", str(out))
    assert proc.returncode == 2
    assert f"parameter clock_ghz must be a number from 0.5 to 6.0, not {value!r}" in _one_line_error(proc)
    assert not list(tmp_path.iterdir())


def test_non_finite_numbers_are_rejected_inside_the_chapter_too():
    with pytest.raises(AllocsimError, match="not '-inf'"):
        params.spec("thread").param("clock_ghz").coerce("-inf")
    with pytest.raises(params.ParameterError, match="parameter clock_ghz must be a number from 0.5 to 6.0, not nan"):
        params.validate("thread", {"clock_ghz": float("nan")})
    with pytest.raises(params.ParameterError, match="irq_same_llc_share must be a number from 0.0 to 1.0, not inf"):
        params.validate("pcpu", {"irq_same_llc_share": float("inf")})


def test_a_repeated_parameter_is_rejected(tmp_path):
    out = tmp_path / "x.ipynb"
    proc = run_cli("run", "thread", "-p", "clock_ghz", "4.0", "-p", "clock_ghz", "4.5", "-o", str(out))
    assert proc.returncode == 2
    assert "parameter clock_ghz is given twice" in _one_line_error(proc)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("slug", list(params.specs()))
def test_parameters_cell_is_generated_from_the_spec(slug):
    """One home: the spec. The chapter's parameters cell is exactly `params.cell_source(slug)` (write
    it with `python -m allocsim params --write-cells`)."""
    spec = params.spec(slug)
    text = (ROOT / spec.source).read_text()
    assert params.parameters_cell(text) == params.cell_source(slug)


def test_papermill_help_notebook_shows_type_default_and_meaning(tmp_path):
    nb = tmp_path / "02-pcpu.ipynb"
    jupytext.write(jupytext.read(ROOT / "chapters" / "02-pcpu.md"), nb)
    found = pm.inspect_notebook(str(nb))
    q = found["queue_depth"]
    assert (q["inferred_type_name"], q["default"]) == ("int", "128")
    assert q["help"].startswith("IOs in flight per submitter")
    for p in params.spec("pcpu").params:
        assert found[p.name]["inferred_type_name"] == p.type.__name__
        assert found[p.name]["help"].startswith(" ".join(p.help.split())[:30])


def _papermill(tmp_path, chapter, *args):
    import shutil
    import subprocess
    import sys

    bin_ = Path(sys.executable).parent
    cmd = (f"{bin_ / 'jupytext'} --to ipynb {chapter} -o - | "
           f"{bin_ / 'papermill'} - {tmp_path / 'out.ipynb'} {' '.join(args)}")
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=ROOT, text=True, capture_output=True, timeout=600)


def test_the_documented_plain_papermill_route_runs_a_chapter(tmp_path):
    proc = _papermill(tmp_path, "chapters/01-thread.md", "-p", "clock_ghz", "4.2", "-p", "baseline", "sheaf-256")
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert "clock_ghz = 4.2" in "".join(injected[0]["source"])
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_plain_papermill_bad_value_ends_in_one_clear_line(tmp_path):
    """The documented route (`papermill --engine allocsim`, the engine registered by the package under
    papermill's `papermill.engine` entry point): a rejected value ends the run with ONE line, status 1,
    no traceback at all, and an output notebook marked failed at the top (papermill's error banner)."""
    proc = _papermill(tmp_path, "chapters/01-thread.md", "--engine", "allocsim", "-p", "clock_ghz", "9")
    assert proc.returncode == 1, proc.stderr[-2000:]
    tail = [line for line in proc.stderr.splitlines() if line.strip()]
    assert tail[-1] == "ParameterError: parameter clock_ghz must be a number from 0.5 to 6.0, not 9.0", tail[-5:]
    assert "Traceback" not in proc.stderr and "Exception encountered" not in proc.stderr
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    assert "An Exception was encountered" in "".join(nb["cells"][0]["source"])


def test_papermill_without_the_engine_still_fails_on_a_bad_value(tmp_path):
    """Plain papermill (its default engine) cannot be made quiet by the package, but it still stops
    with a non-zero status and the chapter's one-line error last in the notebook's traceback."""
    proc = _papermill(tmp_path, "chapters/01-thread.md", "-p", "clock_ghz", "9")
    assert proc.returncode != 0
    assert "ParameterError: parameter clock_ghz must be a number from 0.5 to 6.0, not 9.0" in proc.stderr


def test_the_engine_folds_an_error_into_one_line():
    import nbformat

    from allocsim.book import engine

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    assert engine.first_error(nb) is None
    nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="SystemExit", evalue="0", traceback=[]),
                           nbformat.v4.new_output("error", ename="DataError", evalue="bad  row\n 3", traceback=[])]
    assert engine.one_line(*engine.first_error(nb)) == "DataError: bad row 3"
    assert engine.one_line("KeyboardInterrupt", "") == "KeyboardInterrupt"


def test_run_keeps_each_run_in_its_own_folder_and_lists_them(tmp_path):
    env = {"ALLOCSIM_BUILD": str(tmp_path / "build")}
    a = run_cli("run", "thread", "-p", "clock_ghz", "4.5", env=env)
    b = run_cli("run", "thread", "-p", "clock_ghz", "5.0", env=env)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    folders = sorted(p.name for p in (tmp_path / "build" / "runs").iterdir())
    assert len(folders) == 2 and all(f.startswith("thread-") for f in folders)
    assert folders[0] != folders[1]
    assert book.run_id("thread", {"clock_ghz": 4.5}) in folders  # named by chapter and parameter hash
    for f in folders:
        nb = tmp_path / "build" / "runs" / f / "01-thread.ipynb"
        meta = json.loads(nb.read_text())["metadata"]["allocsim"]
        assert meta["status"] == "ok" and meta["chapter"] == "thread" and meta["run"] == f
    listing = run_cli("run", "--list", env=env)
    assert listing.returncode == 0
    assert "clock_ghz=4.5" in listing.stdout and "clock_ghz=5.0" in listing.stdout
    assert listing.stdout.count(" ok ") == 2


@pytest.mark.parametrize("slug", list(params.specs()))
def test_every_chapter_has_an_estimate_at_least_the_kernel_start_up(slug):
    est = book.estimate(slug, {})
    assert est is not None and est[0] >= params.STARTUP[0] and est[1] >= params.STARTUP[1]


@pytest.mark.parametrize("slug, big", [
    ("pcpu", {"ios": 2_000_000}),
    ("sheaves", {"threads": 64, "k_large": 4096}),
    ("iops", {"ios": 200_000, "submitters": 16}),
    ("uncertainty", {"samples": 65536}),
])
def test_estimate_prints_over_a_minute_for_a_large_parameter_without_running(slug, big, tmp_path):
    """`run --estimate` prints time and memory for a large parameter and starts no kernel."""
    args = [a for k, v in big.items() for a in ("-p", k, str(v))]
    proc = run_cli("run", slug, *args, "--estimate", env={"ALLOCSIM_BUILD": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert re.search(r": about [0-9.]+ (min|h)", proc.stdout) and "GB of memory — over a minute" in proc.stdout, proc.stdout
    assert not list(tmp_path.iterdir())  # nothing executed, nothing written
    assert book.estimate(slug, big)[0] > max(60, book.estimate(slug, {})[0])
    default = run_cli("run", slug, "--estimate")
    assert default.returncode == 0 and "about" in default.stdout
    assert ("over a minute" in default.stdout) == (book.estimate(slug, {})[0] > 60)


def test_the_estimate_warns_before_a_long_run(tmp_path):
    """A run estimated over a minute says so (time and memory) before it starts; a default one does not."""
    est = book.estimate("pcpu", {"ios": 2_000_000})
    assert est is not None and est[0] > 60 and est[1] > 1000
    small = book.estimate("pcpu", {})
    assert small is not None and small[0] < 60
    proc = run_cli("run", "pcpu", "-p", "ios", "2000000", "--estimate")
    assert proc.returncode == 0
    # minutes from the chapter spec's measured runs (lib/allocsim/pages/specs/02_pcpu.py), over a quarter hour
    assert re.search(r"about (1[5-9]|[2-9]\d)\.\d min and 2\.\d GB of memory", proc.stdout), proc.stdout
    proc = run_cli("run", "pcpu", "-p", "ios", "2000000", "-p", "warmup", "0", "-o", str(tmp_path / "x.ipynb"))
    assert proc.returncode == 2  # warmup 0 is out of range: stops before the estimate and the kernel
    assert "estimated" not in proc.stdout and not list(tmp_path.iterdir())

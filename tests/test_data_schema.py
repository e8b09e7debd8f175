"""Every data file is checked against its schema when it is loaded: a broken copy of each stops with one
DataError sentence that names the file, the row and the field; the shipped files all pass; and the command
line turns a broken file into one line and exit status 2 before any kernel starts."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from allocsim.facts import bypass, costs, datafile, inspect, kconfig, paths, structs, thread, versions
from allocsim.facts.errors import DataError
from allocsim.facts.schema import Field, check_record, check_rows
from allocsim.facts.validate import validate_all
from conftest import run_cli


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A copy of data/ that the package reads instead of the repository's."""
    d = tmp_path / "data"
    shutil.copytree(paths.DATA, d)
    monkeypatch.setattr(paths, "DATA", d)
    datafile.clear_cache()
    yield d
    monkeypatch.undo()
    datafile.clear_cache()
    versions.reload()


def _edit_yaml(path, fn):
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def _edit_text(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _claim(doc, cid):
    return next(r for r in doc if r["id"] == cid)


CASES = {
    # file: [(edit, loader, message)]
    "thread/claims.yaml": [
        (lambda d: _claim(d, "iops-619-kmalloc").update(kernel="6.20"), thread.claims,
         r"^data/thread/claims\.yaml, row 12 \(id 'iops-619-kmalloc'\): field 'kernel' is '6\.20', which is not a "
         r"kernel version the models know \(6\.18, 6\.19, 7\.0;"),
        (lambda d: _claim(d, "module-10pct").update(kernel="5.4 (inferred)"), thread.claims,
         r"^data/thread/claims\.yaml, row 3 \(id 'module-10pct'\): field 'kernel' is '5\.4 \(inferred\)'"),
        (lambda d: _claim(d, "iops-70-kmalloc").pop("allocator"), thread.claims,
         r"^data/thread/claims\.yaml, row 9 \(id 'iops-70-kmalloc'\): field 'allocator' is missing; an M IOPS figure"),
        (lambda d: _claim(d, "iops-70-kmalloc").update(allocator="per-CPU list"), thread.claims,
         r"^data/thread/claims\.yaml, row 9 \(id 'iops-70-kmalloc'\): field 'allocator' repeats 'per-CPU list' on "
         r"kernel 7\.0-rc4 \(row id 'iops-70-pcpu'\)"),
        (lambda d: _claim(d, "iops-70-kmalloc").update(allocator="slab"), thread.claims,
         r"row 9 \(id 'iops-70-kmalloc'\): field 'allocator' is 'slab'; allowed allocators: per-CPU list, kmalloc"),
        (lambda d: d.remove(_claim(d, "iops-70-sheaf256")), thread.claims,
         r"^data/thread/claims\.yaml \(M IOPS figures of kernel 7\.0\): no figure for sheaf-256; each kernel's figures"),
        (lambda d: _claim(d, "iops-70-pcpu").update(value=float("nan")), thread.claims,
         r"row 8 \(id 'iops-70-pcpu'\): field 'value' is nan, which is not a finite number"),
    ],
    "thread/people.yaml": [
        (lambda d: d[1].update(name=42), thread.people,
         r"^data/thread/people\.yaml, row 2 \(id 'fengnan'\): field 'name' is 42, which is not text"),
        (lambda d: d[0].pop("source"), thread.people,
         r"^data/thread/people\.yaml, row 1 \(id 'guzebing'\): field 'source' is missing"),
    ],
    "thread/timeline.yaml": [
        (lambda d: d[0].update(date="soon"), thread.timeline,
         r"^data/thread/timeline\.yaml, row 1 \(id 'sheaves-commit'\): field 'date' is 'soon', which is not a date"),
        (lambda d: d[1].update(link="ftp://example.org/x"), thread.timeline,
         r"^data/thread/timeline\.yaml, row 2 \(id 'v1'\): field 'link' is 'ftp://example\.org/x', which is neither an https://"),
        (lambda d: d[-1].update(link="data/thread/thread.txt lines 1-5, 990-999"), thread.timeline,
         r"^data/thread/timeline\.yaml, row \d+ \(id 'fengnan-numbers'\): field 'link' cites lines \[1, 5, 990, 999\], but "
         r"data/thread/thread\.txt has 4\d\d"),
        (lambda d: d[2].update(author="torvalds"), thread.timeline,
         r"^data/thread/timeline\.yaml, row 3 \(id 'hch-v1'\): field 'author' is 'torvalds'; known people"),
    ],
    "kernel/kmalloc.yaml": [
        (lambda d: d.pop("kmalloc_max_cache_size"), lambda: kconfig.kmalloc_size(96),
         r"^data/kernel/kmalloc\.yaml: field 'kmalloc_max_cache_size' is missing$"),
        (lambda d: d.update(sizes=[8, 16, 64, 32]), lambda: kconfig.kmalloc_size(96),
         r"^data/kernel/kmalloc\.yaml: field 'sizes' is \[8, 16, 64, 32\], which is not a rising list"),
        (lambda d: d.update(small_rule_max=100), lambda: kconfig.kmalloc_size(96),
         r"^data/kernel/kmalloc\.yaml: field 'small_rule_max' is 100, which is not one of the sizes"),
        (lambda d: d.update(page_size=4096), lambda: kconfig.kmalloc_size(96),
         r"^data/kernel/kmalloc\.yaml: unknown field 'page_size'"),
    ],
    "kernel/slub.yaml": [
        (lambda d: d.update(min_partial="five"), lambda: kconfig.min_partial(256),
         r"^data/kernel/slub\.yaml: field 'min_partial' is 'five', which is not an integer"),
        (lambda d: d.update(nr_cpus_max=0), lambda: kconfig.min_objects(2),
         r"^data/kernel/slub\.yaml: field 'nr_cpus_max' is 0, below the smallest allowed value 1"),
        (lambda d: d["cpu_partial_tiers"][-1].update(min_size=8), lambda: kconfig.min_partial(256),
         r"^data/kernel/slub\.yaml: field 'cpu_partial_tiers' is .*; the tiers' min_size must fall and end at 0"),
        (lambda d: d.update(slub_max_order=11), lambda: kconfig.min_partial(256),
         r"^data/kernel/slub\.yaml: field 'slub_max_order' is 11; it must lie from slub_min_order"),
        (lambda d: d.update(page_size=4000), lambda: kconfig.min_partial(256),
         r"^data/kernel/slub\.yaml: field 'page_size' is 4000, which is not a power of two"),
    ],
    "kernel/sheaves.yaml": [
        (lambda d: d["capacity_tiers"][1].update(capacity=-1), lambda: kconfig.sheaf_capacity_base(1024),
         r"^data/kernel/sheaves\.yaml: field 'capacity_tiers' is .*; tier 2: field 'capacity' is -1, below"),
        (lambda d: d.pop("source"), lambda: kconfig.sheaf_capacity_base(1024),
         r"^data/kernel/sheaves\.yaml: field 'source' is missing; every kernel constant needs its file and version"),
    ],
    "kernel/structs.yaml": [
        (lambda d: d["structs"]["iomap_dio"]["fields"][3].update(type="loff_tt"), lambda: structs.load("slab_sheaf"),
         r"^data/kernel/structs\.yaml: struct iomap_dio field 'size' has unknown type 'loff_tt'"),
        (lambda d: d["scalars"].update(pointer=[8, 3]), lambda: structs.load("list_head"),
         r"^data/kernel/structs\.yaml: scalar 'pointer' must be \[size, alignment\]"),
    ],
    "bypass.yaml": [
        (lambda d: d["items"][2].update(slub_source=""), bypass.load,
         r"^data/bypass\.yaml, item 3 \(item 'Tear-down'\): field 'slub_source' is empty"),
        (lambda d: d["items"][3].update(patch_source="patch v3, data/thread/thread.txt lines 327-351, 500 (CODE)"), bypass.load,
         r"^data/bypass\.yaml, item 4 \(item 'memcg accounting'\): field 'patch_source' cites lines \[327, 351, 500\], but"),
        (lambda d: d["items"][0].pop("bio"), bypass.load,
         r"^data/bypass\.yaml, item 1 \(item 'CPU hotplug'\): field 'bio' is missing"),
    ],
}


@pytest.mark.parametrize("name, edit, loader, message",
                         [(name, e, loader, m) for name, cases in CASES.items() for e, loader, m in cases],
                         ids=[f"{name}-{i}" for name, cases in CASES.items() for i in range(len(cases))])
def test_a_broken_copy_names_file_row_and_field(data, name, edit, loader, message):
    _edit_yaml(data / name, edit)
    with pytest.raises(DataError, match=message) as exc:
        loader()
    assert "\n" not in str(exc.value)
    with pytest.raises(DataError, match=message):  # and the whole-data check says the same
        validate_all()


@pytest.mark.parametrize("old, new, message", [
    ('"cycles"', '"cycles"', None),
    ("preempt_pair,11,10.6,11", "preempt_pair,11,10.6,10.8",
     r"^data/costs\.csv, line 4 \(key 'preempt_pair'\): field 'cycles' \(11\.0\) must lie within low\.\.high"),
    (",i7-2620M; i7-4790K,", ",i7-2620M; i7-4790K,,,", r"^data/costs\.csv, line 2 \(key 'function_call'\): has 10 cells, not 8"),
])
def test_costs_csv(data, old, new, message):
    if message is None:
        assert costs.load().cycles("l2_hit") == 10
        return
    _edit_text(data / "costs.csv", old, new)
    with pytest.raises(DataError, match=message):
        costs.load()


def _snapshot(data):
    return next((data / "snapshots").glob("*.json"))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["caches"]["kmalloc-96"].update(order=0),
     r"^snapshot data/snapshots/.*\.json, cache 'kmalloc-96': field 'order' is 0, which is not text or empty"),
    (lambda d: d.update(release=6.18), r"^snapshot data/snapshots/.*\.json: field 'release' is 6\.18, which is not text"),
    (lambda d: d.update(cpus="0-1"), r"^snapshot data/snapshots/.*\.json: field 'cpus' is '0-1', which is not a mapping"),
    (lambda d: d.update(numa_nodes=1), r"^snapshot data/snapshots/.*\.json: field 'numa_nodes' is 1, which is not text"),
    (lambda d: d.update(notes="cannot read BTF"), r"field 'notes' is 'cannot read BTF', which is not a list"),
    (lambda d: d["cpus"].update(present=2), r", cpus: field 'present' is 2, which is not text"),
    (lambda d: d["structs"]["iomap_dio"].update(size="96"), r", struct 'iomap_dio': field 'size' is '96', which is not an integer"),
    (lambda d: d["structs"]["iomap_dio"]["fields"].append(["x", -1, 8]), r", struct 'iomap_dio': field 'fields' is .*its item \d+ is \['x', -1, 8\], which is not \[name, offset, size\]"),
    (lambda d: d["caches"]["kmalloc-96"].update(colour="red"), r", cache 'kmalloc-96': unknown field 'colour'"),
    (lambda d: d.update(taken="yesterday"), r"field 'taken' is 'yesterday', which is not an ISO 8601 time"),
])
def test_a_broken_snapshot_names_file_row_and_field(data, edit, message):
    p = _snapshot(data)
    doc = json.loads(p.read_text())
    edit(doc)
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message):
        inspect.read_snapshot(p)
    with pytest.raises(DataError, match=message):  # the shipped snapshot is checked when it is chosen
        inspect.default_snapshot()


def test_every_shipped_file_passes():
    checked = validate_all()
    for f in ("data/thread/claims.yaml", "data/thread/people.yaml", "data/thread/timeline.yaml",
              "data/kernel/kmalloc.yaml", "data/kernel/slub.yaml", "data/kernel/sheaves.yaml",
              "data/kernel/structs.yaml", "data/costs.csv", "data/bypass.yaml"):
        assert f in checked
    assert any(f.startswith("data/snapshots/") for f in checked)


def test_the_schema_helper():
    schema = {"id": Field((str,)), "n": Field((int,), low=1, high=3), "kind": Field((str,), allowed=("a", "b")),
              "opt": Field((list,), required=False, default=[], items=Field((int,)))}
    rows = check_rows([{"id": "x", "n": 2, "kind": "a"}], schema, "f.yaml")
    assert rows[0]["opt"] == []
    rows[0]["opt"].append(1)
    assert check_rows([{"id": "y", "n": 1, "kind": "b"}], schema, "f.yaml")[0]["opt"] == []  # defaults are copies
    for row, msg in [({"id": "x", "n": True, "kind": "a"}, "field 'n' is True, which is not an integer"),
                     ({"id": "x", "n": 4, "kind": "a"}, "field 'n' is 4, above the largest allowed value 3"),
                     ({"id": "x", "n": 1, "kind": "c"}, "field 'kind' is 'c'; allowed values: a, b"),
                     ({"id": "x", "n": 1, "kind": "a", "opt": [1, "2"]}, "field 'opt' is \\[1, '2'\\]; its item 2 is '2', which is not an integer"),
                     ({"id": " ", "n": 1, "kind": "a"}, "field 'id' is empty"),
                     ({"n": 1, "kind": "a"}, "f.yaml, row 1: field 'id' is missing")]:
        with pytest.raises(DataError, match=msg):
            check_rows([row], schema, "f.yaml")
    with pytest.raises(DataError, match="f.yaml, row 2 \\(id 'x'\\): field 'id' repeats 'x'"):
        check_rows([{"id": "x", "n": 1, "kind": "a"}, {"id": "x", "n": 1, "kind": "a"}], schema, "f.yaml")
    with pytest.raises(DataError, match="must be a non-empty list"):
        check_rows({}, schema, "f.yaml")
    with pytest.raises(DataError, match="must be a mapping"):
        check_record([1], schema, "f.yaml")


# --- the command line -------------------------------------------------------------------------------------

def _project_copy(tmp_path):
    """A copy of what `run` reads (data, chapters, the table of contents), for ALLOCSIM_ROOT."""
    root = tmp_path / "root"
    shutil.copytree(paths.DATA, root / "data")
    shutil.copytree(paths.ROOT / "chapters", root / "chapters")
    for f in ("_toc.yml", "_config.yml", "intro.md", "execution.md", "references.md", "references.bib"):
        shutil.copy(paths.ROOT / f, root / f)
    return root


def test_run_with_a_broken_claims_file_is_one_line_and_exit_2(tmp_path):
    root = _project_copy(tmp_path)
    env = {"ALLOCSIM_ROOT": str(root)}
    _edit_yaml(root / "data/thread/claims.yaml", lambda d: _claim(d, "iops-619-kmalloc").update(kernel="6.20"))
    out = tmp_path / "thread.ipynb"
    proc = run_cli("run", "thread", "-p", "clock_ghz", "4.2", "-o", str(out), env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: data/thread/claims.yaml, row 12 (id 'iops-619-kmalloc'): field 'kernel' is '6.20'")
    assert "executing" not in proc.stdout and not out.exists()  # stopped before papermill started
    # the same copy, repaired: the next run executes the chapter
    _edit_yaml(root / "data/thread/claims.yaml", lambda d: _claim(d, "iops-619-kmalloc").update(kernel="6.19"))
    ok = run_cli("run", "thread", "-p", "clock_ghz", "4.2", "-o", str(out), env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert out.exists() and f"wrote {out}" in ok.stdout


def test_build_with_a_broken_kernel_file_is_one_line_and_exit_2(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(paths.DATA, root / "data")
    _edit_yaml(root / "data/kernel/kmalloc.yaml", lambda d: d.pop("kmalloc_max_cache_size"))
    proc = run_cli("build", env={"ALLOCSIM_ROOT": str(root)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: data/kernel/kmalloc.yaml: field 'kmalloc_max_cache_size' is missing"

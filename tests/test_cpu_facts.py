"""data/kernel/cpu.yaml (allocsim.facts.cpu): the shipped file passes and every number has a source; a broken
copy stops with one DataError sentence naming the file, the row and the field, and the whole-data check
(and so `run`/`build`) says the same."""

from __future__ import annotations

import shutil

import pytest
import yaml

from allocsim.facts import cpu, datafile, paths
from allocsim.facts.errors import AllocsimError, DataError
from allocsim.facts.validate import validate_all


@pytest.fixture
def data(tmp_path, monkeypatch):
    d = tmp_path / "data"
    shutil.copytree(paths.DATA, d)
    monkeypatch.setattr(paths, "DATA", d)
    datafile.clear_cache()
    yield d
    monkeypatch.undo()
    datafile.clear_cache()


def _row(doc, key):
    return next(r for r in doc["params"] if r["key"] == key)


def _edit(data, fn):
    p = data / "kernel" / "cpu.yaml"
    doc = yaml.safe_load(p.read_text())
    fn(doc)
    p.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_the_shipped_file_passes_with_a_source_machine_and_status_for_every_key():
    c = cpu.load()
    assert set(c.rows) == set(cpu.KEYS)
    for k, row in c.rows.items():
        assert row["source"].strip() and row["machine"].strip() and row["status"] in ("V", "I"), k
        assert row["unit"] == cpu.KEYS[k]
        if row["status"] == "I":
            assert row["note"].strip(), f"{k}: an inferred value must say how in its note"
    assert "data/kernel/cpu.yaml" in validate_all()


def test_geometry_of_the_default_cpu():
    g = cpu.geometry(3.0)
    assert (g.l1_sets, g.l1_ways, g.l2_sets, g.l2_ways, g.llc_sets, g.llc_ways) == (64, 8, 1024, 8, 32768, 16)
    assert (g.cpus_per_llc, g.llcs_per_node, g.line_bytes) == (8, 6, 64)
    assert (g.lat_same_llc, g.lat_cross_llc, g.lat_cross_node, g.lat_memory) == (69.0, 321.0, 591.0, 198.0)
    with pytest.raises(AllocsimError, match="clock_ghz must be a number from 0.1 to 10"):
        cpu.geometry(0)


CASES = [
    (lambda d: _row(d, "l1d_ways").update(unit="sets"),
     r"^data/kernel/cpu\.yaml, row 3 \(key 'l1d_ways'\): field 'unit' is 'sets'; l1d_ways is given in ways$"),
    (lambda d: _row(d, "memory").update(value=50),
     r"^data/kernel/cpu\.yaml, row 16 \(key 'memory'\): field 'value' \(50\) must lie within low\.\.high \(66\.\.74\)$"),
    (lambda d: _row(d, "l2_ways").update(value=7.5, low=7.5, high=7.5),
     r"^data/kernel/cpu\.yaml, row 6 \(key 'l2_ways'\): field 'value' is 7\.5, which is not a whole number of ways$"),
    (lambda d: _row(d, "llc_ways").update(value=12, low=12, high=12),
     r"^data/kernel/cpu\.yaml, key 'llc_size': field 'value' \(32768 KiB\) is not a whole number of sets of 12 ways x 64 B$"),
    (lambda d: d["params"].pop(), r"^data/kernel/cpu\.yaml: field 'params' has no row for memory;"),
    (lambda d: _row(d, "transfer_same_llc").update(status="verified"),
     r"^data/kernel/cpu\.yaml, row 13 \(key 'transfer_same_llc'\): field 'status' is 'verified'; allowed statuses"),
    (lambda d: _row(d, "transfer_same_llc").pop("source"),
     r"^data/kernel/cpu\.yaml, row 13 \(key 'transfer_same_llc'\): field 'source' is missing$"),
    (lambda d: _row(d, "l2_latency").update(value=50, high=50),
     r"^data/kernel/cpu\.yaml, key 'l2_latency': field 'value' \(50\) must lie from the L1d latency \(4\) to the LLC latency \(46\)$"),
    (lambda d: _row(d, "cpus_per_llc").update(value=64, high=64),
     r"^data/kernel/cpu\.yaml, key 'cpus_per_llc': field 'value' is 64; the model holds at most 62 CPUs per LLC$"),
    (lambda d: d["params"].append(dict(_row(d, "memory"))),
     r"^data/kernel/cpu\.yaml, row 17 \(key 'memory'\): field 'key' repeats 'memory'$"),
    (lambda d: d.pop("machine"), r"^data/kernel/cpu\.yaml: field 'machine' is missing$"),
]


@pytest.mark.parametrize("edit, message", CASES, ids=range(len(CASES)))
def test_a_broken_copy_names_file_row_and_field(data, edit, message):
    _edit(data, edit)
    with pytest.raises(DataError, match=message) as exc:
        cpu.load()
    assert "\n" not in str(exc.value)
    with pytest.raises(DataError, match=message):
        validate_all()


def test_a_missing_or_unparsable_file(data):
    p = data / "kernel" / "cpu.yaml"
    p.write_text("params: [\n")
    with pytest.raises(DataError, match=r"^data/kernel/cpu\.yaml is not valid YAML"):
        cpu.load()
    datafile.clear_cache()
    p.unlink()
    with pytest.raises(DataError, match=r"^data/kernel/cpu\.yaml is missing$"):
        cpu.load()


def test_the_methods_table_of_the_hierarchy():
    from allocsim.pages import methods

    t = methods.hierarchy_frame(2.0)
    by = t.set_index("key")
    assert by.loc["transfer_cross_llc", "cycles"] == 214.0 and by.loc["l2_latency", "cycles"] == 12.0
    assert by.loc["l1d_size", "cycles"] != by.loc["l1d_size", "cycles"]  # a size has no cycles (NaN)
    rows = methods.hierarchy_rows(t).set_index("parameter")
    assert rows.loc["`memory`", "value (range)"] == "66 ns (66–74)" and rows.loc["`memory`", "cycles"] == "132"
    assert rows.loc["`l1d_ways`", "value (range)"] == "8 ways" and rows.loc["`l1d_ways`", "cycles"] == ""
    assert rows.loc["`memory`", "source [V verified / I inferred]"].endswith("for the default machine.")
    assert methods.cpu_machine().startswith("AMD EPYC 7R13")

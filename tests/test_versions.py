"""Kernel versions: derived from data/kernel/slub.yaml, each with a model family; adding one is one data
entry plus one family-table row (this test does exactly that and runs a model on the new version)."""

from __future__ import annotations

import importlib
import shutil

import pytest
import yaml

from allocsim.facts import datafile, paths, versions
from allocsim.facts.errors import AllocsimError, DataError


def test_versions_come_from_the_data():
    doc = yaml.safe_load((paths.DATA / "kernel" / "slub.yaml").read_text())
    assert versions.VERSIONS == tuple(doc["versions"])


def test_every_version_has_a_family():
    for v in versions.VERSIONS:
        assert versions.family(v).name in versions.FAMILIES


def test_families_of_the_known_versions():
    assert versions.family("6.19").cpu_slab and versions.family("6.18.44").sheaves_opt_in
    assert versions.family("7.0-rc4").sheaves_by_default and not versions.family("7.0").cpu_slab
    assert versions.versions_where(cpu_slab=True) == ("6.18", "6.19")
    assert versions.newest() == "7.0"


def test_unknown_version_is_one_sentence():
    with pytest.raises(AllocsimError, match=r"unknown kernel version '5.4'; the known versions are 6.18, 6.19, 7.0"):
        versions.family("5.4")


@pytest.fixture
def data_with_71(tmp_path, monkeypatch):
    """A copy of data/ where 7.1 is one more entry of slub.yaml's `versions` list (nothing else added)."""
    data = tmp_path / "data"
    shutil.copytree(paths.DATA, data)
    slub = data / "kernel" / "slub.yaml"
    slub.write_text(slub.read_text().replace('versions: ["6.18", "6.19", "7.0"]', 'versions: ["6.18", "6.19", "7.0", "7.1"]'))
    monkeypatch.setattr(paths, "DATA", data)
    datafile.clear_cache()
    yield data
    monkeypatch.undo()
    datafile.clear_cache()
    versions.reload()


def test_a_version_without_a_family_row_is_refused_at_load(data_with_71):
    with pytest.raises(DataError, match=r"^data/kernel/slub.yaml: field 'versions' lists 7.1, which has no row in "
                                        r"allocsim.facts.versions.FAMILY_OF \(a version needs one: its model family"):
        versions.reload()
    with pytest.raises(DataError, match="lists 7.1"):  # a fresh import refuses it too
        importlib.reload(versions)


def test_a_version_without_a_family_row_stops_the_cli(data_with_71):
    """`params` reads the versions (chapter 2's `kernel` choices): one sentence, exit 2, no traceback."""
    from conftest import run_cli

    proc = run_cli("params", "pcpu", env={"ALLOCSIM_ROOT": str(data_with_71.parent)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: data/kernel/slub.yaml: field 'versions' lists 7.1")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('["6.18", "6.19", "7.0"]', '["6.18", "7.0", "6.19"]'), "oldest first"),
    (lambda s: s.replace('["6.18", "6.19", "7.0"]', '["6.18", "6.19", "7"]'), '"MAJOR.MINOR"'),
    (lambda s: s.replace('["6.18", "6.19", "7.0"]', '["6.18", "6.19", "6.19"]'), "each once"),
])
def test_malformed_version_lists(data_with_71, edit, message):
    slub = data_with_71 / "kernel" / "slub.yaml"
    slub.write_text(edit(slub.read_text().replace('"7.0", "7.1"]', '"7.0"]')))
    datafile.clear_cache()
    with pytest.raises(DataError, match=f"data/kernel/slub.yaml: field 'versions' is .*{message}"):
        versions.reload()


def test_a_new_version_is_one_data_entry_and_one_family_row(data_with_71, monkeypatch):
    monkeypatch.setitem(versions.FAMILY_OF, "7.1", "sheaves")
    versions.reload()
    # the rest of the package reads versions through the module, so reload the users of it
    from allocsim.facts import kconfig
    from allocsim.kernel import slub
    from allocsim.workloads import iouring

    importlib.reload(kconfig)
    importlib.reload(slub)
    try:
        assert "7.1" in versions.VERSIONS and versions.family("7.1").sheaves_by_default
        assert kconfig.check_version("7.1-rc2") == "7.1"
        g = kconfig.cache_geometry(256, 4, "7.1", kmalloc=True)
        assert g.sheaf_capacity == kconfig.cache_geometry(256, 4, "7.0", kmalloc=True).sheaf_capacity
        prog = iouring.program(iouring.IOUring(submitters=1, queue_depth=8, submit_batch=4, complete_batch=4, ios=256, warmup=0))
        r71 = slub.run(prog, kernel="7.1", object_size=96)
        r70 = slub.run(prog, kernel="7.0", object_size=96)
        assert r71.cycles == r70.cycles and r71.paths == r70.paths
        assert "7.1" in r71.model
    finally:
        monkeypatch.undo()
        datafile.clear_cache()
        versions.reload()
        importlib.reload(kconfig)
        importlib.reload(slub)

"""inspect / btf: parsing the shipped snapshot, crafted sysfs trees and BTF blobs (well-formed and not),
the model-vs-kernel comparison, the CLI, and the live kernel when it is readable."""

import json
import struct
import sys
from pathlib import Path

import pytest

from allocsim.facts import btf
from allocsim.facts import inspect
from allocsim.facts import kconfig
from allocsim.facts import structs as layout
from allocsim.facts.errors import AllocsimError, DataError

SNAP = inspect.default_snapshot()


# --- the shipped snapshot ---------------------------------------------------------------------------------

def test_snapshot_is_shipped_and_parses():
    r = inspect.read_snapshot(SNAP)
    assert r.release and r.taken and r.source.startswith("snapshot ")
    assert SNAP.parent == inspect.SNAPSHOTS and r.release in SNAP.name and r.taken[:10] in SNAP.name
    f = inspect.parse(r)
    assert f.problems == []
    assert f.cpus_present >= 1 and {"kmalloc-96", "kmalloc-128", "kmalloc-256"} <= set(f.caches)
    assert "iomap_dio" in f.structs


def test_snapshot_rows_where_the_models_must_agree():
    r = inspect.read_snapshot(SNAP)
    rows, summary = inspect.compare(r)
    assert summary["model_version"] == kconfig.check_version(r.release)
    by = {(x["item"], x["quantity"]): x for x in rows}
    kmalloc = [n for n in r.caches if n.startswith("kmalloc-")]
    assert len(kmalloc) == 13
    for name in kmalloc:
        for q in ("order", "objs_per_slab", "slab_size", "min_partial"):
            assert by[(name, q)]["verdict"] == "agree", (name, q, by[(name, q)])
    assert by[("struct iomap_dio", "sizeof")]["model"] == by[("struct iomap_dio", "sizeof")]["kernel"] == 96
    assert by[("kmalloc(sizeof(struct iomap_dio))", "cache")]["kernel"] == "kmalloc-96"
    assert by[("patch: kmalloc(8 + sizeof(struct iomap_dio))", "cache")]["kernel"] == "kmalloc-128"
    assert summary["differ"] == 0 and summary["problems"] == []
    # the snapshot's kernel computed these itself; the model must reproduce them from the CPU count alone
    f = inspect.parse(r)
    for name in kmalloc:
        c = f.caches[name]
        assert kconfig.calculate_order(c["slab_size"], f.cpus_present) == (c["order"], c["objs_per_slab"])


def test_snapshot_against_the_7_0_model_shows_the_changes():
    rows, summary = inspect.compare(inspect.read_snapshot(SNAP), "7.0")
    by = {(x["item"], x["quantity"]): x for x in rows}
    assert by[("kmalloc-96", "cpu_partial")]["model"] == 0 and by[("kmalloc-96", "cpu_partial")]["verdict"] == "differ"
    assert by[("kmalloc-96", "sheaf_capacity")]["model"] == 60 and by[("kmalloc-96", "sheaf_capacity")]["kernel"] == 0
    assert by[("kmalloc-96", "order")]["verdict"] == "agree"
    assert summary["model_version"] == "7.0" and summary["differ"] > 0


def test_load_snapshot_and_fallback(monkeypatch, tmp_path):
    r, said = inspect.load("snapshot")
    assert said.startswith("snapshot:") and r.release in said
    monkeypatch.setattr(inspect.sys, "platform", "darwin")
    r2, said2 = inspect.load("auto")
    assert r2.source.startswith("snapshot") and "not Linux" in said2
    with pytest.raises(AllocsimError, match="source must be one of"):
        inspect.load("cache")


# --- crafted sysfs trees ----------------------------------------------------------------------------------

def _tree(root: Path, release="6.19.3", present="0-3", caches=None, btf_blob=None):
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    cpu = root / "sys/devices/system/cpu"
    cpu.mkdir(parents=True)
    for k in ("present", "possible", "online"):
        (cpu / k).write_text(present + "\n")
    (root / "sys/devices/system/node").mkdir(parents=True)
    (root / "sys/devices/system/node/online").write_text("0\n")
    slab = root / "sys/kernel/slab"
    slab.mkdir(parents=True)
    for name, attrs in (caches or {}).items():
        (slab / name).mkdir()
        for a, v in attrs.items():
            (slab / name / a).write_text(v + "\n")
    if btf_blob is not None:
        (root / "sys/kernel/btf").mkdir(parents=True)
        (root / "sys/kernel/btf/vmlinux").write_bytes(btf_blob)
    return root


def _cache(size, ncpu, version, **over):
    g = kconfig.cache_geometry(size, ncpu, version)
    attrs = {"object_size": str(size), "slab_size": str(g.size), "objs_per_slab": str(g.objs_per_slab),
             "order": str(g.order), "cpu_partial": str(g.cpu_partial), "min_partial": str(g.min_partial),
             "sheaf_capacity": str(g.sheaf_capacity), "aliases": "0"}
    attrs.update(over)
    return {k: v for k, v in attrs.items() if v is not None}


def test_crafted_tree_agrees(tmp_path):
    caches = {f"kmalloc-{s}": _cache(s, 4, "6.19") for s in (64, 96, 128, 256)}
    caches["kmalloc-1k"] = _cache(1024, 4, "6.19")
    caches["kmalloc-rnd-01-96"] = _cache(96, 4, "6.19")           # a random copy: not read
    caches["dentry"] = _cache(192, 4, "6.19", sheaf_capacity="0")  # no sheaves: not read
    caches["maple_node"] = _cache(256, 4, "6.19", sheaf_capacity="32")
    r = inspect.read_live(_tree(tmp_path, caches=caches))
    assert set(r.caches) == {"kmalloc-64", "kmalloc-96", "kmalloc-128", "kmalloc-256", "kmalloc-1k", "maple_node"}
    assert r.release == "6.19.3" and r.cpus["present"] == "0-3"
    assert any("btf/vmlinux does not exist" in n for n in r.notes)
    rows, summary = inspect.compare(r)
    assert summary["cpus_present"] == 4 and summary["min_objects"] == 4 * (3 + 1)
    assert summary["differ"] == 0
    by = {(x["item"], x["quantity"]): x for x in rows}
    assert by[("maple_node", "sheaf_capacity")]["verdict"] == "not compared"
    assert by[("maple_node", "slab_size")]["verdict"] == "input"
    assert by[("struct iomap_dio", "sizeof")]["verdict"] == "not compared"
    assert "BTF not available" in by[("struct iomap_dio", "sizeof")]["note"]
    assert by[("kmalloc(sizeof(struct iomap_dio))", "cache")]["verdict"] == "not compared"
    assert inspect.live_usable(r)


def test_unexpected_content_is_named_not_zero(tmp_path):
    caches = {"kmalloc-96": _cache(96, 2, "6.18", order="zero", objs_per_slab="-42", cpu_partial="")}
    r = inspect.read_live(_tree(tmp_path, release="6.18.44", present="0-1", caches=caches))
    f = inspect.parse(r)
    assert f.caches["kmalloc-96"]["order"] is None and f.caches["kmalloc-96"]["objs_per_slab"] is None
    assert any("kmalloc-96/order" in p and "'zero'" in p for p in f.problems)
    assert any("kmalloc-96/objs_per_slab" in p and "'-42'" in p for p in f.problems)
    assert any("kmalloc-96/cpu_partial" in p for p in f.problems)
    rows, summary = inspect.compare(r)
    by = {(x["item"], x["quantity"]): x for x in rows}
    assert by[("kmalloc-96", "order")]["verdict"] == "not compared" and by[("kmalloc-96", "order")]["kernel"] is None
    assert "unreadable" in by[("kmalloc-96", "order")]["note"]
    assert by[("kmalloc-96", "slab_size")]["verdict"] == "agree"
    assert any("kmalloc-96/order" in p for p in summary["problems"])


def test_old_kernel_without_sheaf_capacity(tmp_path):
    caches = {"kmalloc-96": _cache(96, 8, "6.18", sheaf_capacity=None)}
    r = inspect.read_live(_tree(tmp_path, release="6.8.0-45-generic", present="0-7", caches=caches))
    assert r.caches["kmalloc-96"]["sheaf_capacity"] is None
    assert not any("sheaf_capacity" in n for n in r.notes)  # absent before 6.18: not a problem
    rows, summary = inspect.compare(r)
    assert summary["model_version"] == "6.18" and "older than" in summary["version_note"]
    by = {(x["item"], x["quantity"]): x for x in rows}
    assert by[("kmalloc-96", "sheaf_capacity")]["verdict"] == "not compared"
    assert by[("kmalloc-96", "objs_per_slab")]["verdict"] == "agree"


def test_bad_cpu_lists(tmp_path):
    probs = []
    assert inspect.cpu_count("0-1,4-7", "x", probs) == 6 and inspect.cpu_count("3", "x", probs) == 1
    assert inspect.cpu_count("0-", "present CPUs", probs) is None and "present CPUs" in probs[-1]
    assert inspect.cpu_count("3-1", "x", probs) is None and "backwards" in probs[-1]
    r = inspect.read_live(_tree(tmp_path, present="all", caches={"kmalloc-96": _cache(96, 2, "6.18")}))
    rows, summary = inspect.compare(r)
    assert summary["cpus_present"] is None and any("'all'" in p for p in summary["problems"])
    assert all(x["verdict"] == "not compared" for x in rows if x["group"] == "kmalloc caches")


def test_missing_and_unreadable(tmp_path, monkeypatch):
    root = tmp_path / "empty"
    root.mkdir()
    r = inspect.read_live(root)
    assert not inspect.live_usable(r)
    assert any("osrelease" in n and "does not exist" in n for n in r.notes)
    assert any("sys/kernel/slab does not exist" in n for n in r.notes)
    rows, summary = inspect.compare(r)  # never raises
    assert summary["release"] is None
    r2, said = inspect.load("live", root=root)
    assert r2.source.startswith("snapshot") and "could not be read" in said

    tree = _tree(tmp_path / "t", caches={"kmalloc-96": _cache(96, 4, "6.19")})
    real_iterdir = Path.iterdir

    def deny(self):
        if self.name == "slab":
            raise PermissionError(13, "Permission denied")
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", deny)
    r3 = inspect.read_live(tree)
    assert any("permission denied" in n for n in r3.notes) and r3.caches == {}


def test_not_linux(monkeypatch):
    monkeypatch.setattr(inspect.sys, "platform", "win32")
    r = inspect.read_live("/")
    assert r.btf == "not Linux" and "not Linux" in r.notes[0] and r.caches == {}


def test_snapshot_roundtrip_and_malformed(tmp_path):
    tree = _tree(tmp_path / "t", caches={"kmalloc-96": _cache(96, 4, "6.19")}, btf_blob=_mini_btf())
    live = inspect.read_live(tree)
    p = tmp_path / "snap.json"
    p.write_text(json.dumps(live.to_json()))
    back = inspect.read_snapshot(p)
    assert back.caches == live.caches and back.structs == live.structs and back.release == live.release
    assert inspect.compare(back)[0] == inspect.compare(live)[0]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        inspect.read_snapshot(bad)
    bad.write_text(json.dumps({"schema": 99}))
    with pytest.raises(DataError, match="not an allocsim kernel snapshot"):
        inspect.read_snapshot(bad)
    bad.write_text(json.dumps({"schema": 1, "taken": "x"}))
    with pytest.raises(DataError, match="missing"):
        inspect.read_snapshot(bad)
    with pytest.raises(AllocsimError, match="does not exist"):
        inspect.read_snapshot(tmp_path / "nope.json")


# --- BTF ----------------------------------------------------------------------------------------------------

def _members(*ms):
    """btf_member records: (name, type id, bit offset)."""
    return lambda off: b"".join(struct.pack("<III", off(n), t, bit) for n, t, bit in ms)


def _mini_btf(dio_size=96):
    """A minimal BTF blob: struct iomap_dio with an anonymous union of two structs, through typedefs,
    const, an array and a pointer, plus kinds a reader must skip (FUNC_PROTO, ENUM, FWD, DECL_TAG)."""
    K = btf
    types = [
        (K.INT, "int", 0, False, 4, struct.pack("<I", (32 << 0) | (1 << 24))),          # 1 int
        (K.INT, "long long", 0, False, 8, struct.pack("<I", 64 | (1 << 24))),          # 2
        (K.PTR, "", 0, False, 0, b""),                                                   # 3 void *
        (K.TYPEDEF, "loff_t", 0, False, 2, b""),                                        # 4
        (K.CONST, "", 0, False, 4, b""),                                                 # 5 const loff_t
        (K.INT, "_Bool", 0, False, 1, struct.pack("<I", 8 | (4 << 24))),                 # 6
        (K.FUNC_PROTO, "", 2, False, 1, struct.pack("<IIII", 0, 1, 0, 3)),              # 7 skipped
        (K.ENUM, "e", 2, False, 4, lambda off: struct.pack("<IiIi", off("A"), 0, off("B"), 1)),  # 8
        (K.FWD, "task_struct", 0, False, 0, b""),                                        # 9
        (K.STRUCT, "", 2, False, 16, _members(("iter", 3, 0), ("waiter", 3, 64))),       # 10 submit
        (K.ARRAY, "", 0, False, 0, struct.pack("<III", 3, 1, 4)),                        # 11 void *[4]
        (K.STRUCT, "", 1, False, 32, _members(("work", 11, 0))),                         # 12 aio
        (K.UNION, "", 2, False, 32, _members(("submit", 10, 0), ("aio", 12, 0))),        # 13
        (K.STRUCT, "iomap_dio", 10, False, dio_size, _members(
            ("iocb", 3, 0), ("dops", 3, 64), ("i_size", 5, 128), ("size", 4, 192), ("ref", 1, 256),
            ("flags", 1, 288), ("error", 1, 320), ("done_before", 2, 384), ("wait_for_completion", 6, 448),
            ("", 13, 512))),                                                              # 14
        (K.DECL_TAG, "tag", 0, False, 14, struct.pack("<i", -1)),                        # 15 (no size)
        (K.STRUCT, "bits", 2, True, 4, _members(("a", 1, (3 << 24) | 0), ("b", 1, (5 << 24) | 3))),  # 16
    ]
    return btf.build(types)


def test_btf_reader_on_a_crafted_blob():
    b = btf.BTF(_mini_btf(), "crafted")
    assert len(b) == 16
    s = b.struct_layout("iomap_dio")
    m = layout.load("iomap_dio")
    assert (s.size, s.align) == (96, 8)
    assert [(f.name, f.offset, f.size) for f in s.fields] == [(f.name, f.offset, f.size) for f in m.fields]
    assert s.offsetof("submit.waiter") == 72
    assert b.size(11) == 32 and b.size(5) == 8 and b.size(8) == 4
    assert b.kind(9) == "FWD" and b.find("loff_t", "typedef") == 4
    bits = b.struct_layout("bits")
    assert bits.size == 4 and [f.offset for f in bits.fields] == [0, 0]  # bitfield bit offsets 0 and 3
    assert b.struct_layout("slab_sheaf") is None
    with pytest.raises(btf.BTFError, match="has no size"):
        b.size(9)
    with pytest.raises(btf.BTFError, match="does not exist"):
        b.size(99)


@pytest.mark.parametrize("mangle,match", [
    (lambda d: d[:10], "too short"),
    (lambda d: b"\x00\x00" + d[2:], "magic"),
    (lambda d: b"\xeb\x9f" + d[2:], "big-endian"),
    (lambda d: d[:2] + b"\x02" + d[3:], "version 2"),
    (lambda d: d[:-5], "past the end"),
    (lambda d: d[:24 + 4] + struct.pack("<I", 31 << 24) + d[24 + 8:], "unknown kind"),
])
def test_btf_malformed(mangle, match):
    with pytest.raises(btf.BTFError, match=match):
        btf.BTF(mangle(_mini_btf()), "crafted")


def test_btf_truncated_type_section():
    data = bytearray(_mini_btf())
    hdr = list(btf.HEADER.unpack_from(data))
    hdr[5] -= 3  # type_len no longer ends on a record boundary
    data[:btf.HEADER.size] = btf.HEADER.pack(*hdr)
    with pytest.raises(btf.BTFError):
        btf.BTF(bytes(data), "crafted")


def test_btf_file_errors(tmp_path):
    with pytest.raises(btf.BTFError, match="does not exist"):
        btf.BTF.from_file(tmp_path / "vmlinux")


def test_crafted_btf_through_the_comparison(tmp_path):
    caches = {f"kmalloc-{s}": _cache(s, 2, "7.0") for s in (64, 96, 128)}
    r = inspect.read_live(_tree(tmp_path, release="7.0.0-rc4", present="0-1", caches=caches, btf_blob=_mini_btf(104)))
    assert r.btf == "read" and set(r.structs) == {"iomap_dio"}
    rows, summary = inspect.compare(r)
    by = {(x["item"], x["quantity"]): x for x in rows}
    assert by[("struct iomap_dio", "sizeof")]["verdict"] == "differ"  # a lockdep-sized kernel struct
    assert by[("kmalloc(sizeof(struct iomap_dio))", "cache")]["kernel"] == "kmalloc-128"
    assert by[("struct slab_sheaf", "sizeof")]["note"] == "this kernel has no struct slab_sheaf"
    assert by[("kmalloc-96", "sheaf_capacity")]["verdict"] == "agree" and by[("kmalloc-96", "sheaf_capacity")]["model"] == 60


# --- the CLI --------------------------------------------------------------------------------------------

def test_cli_snapshot(capsys):
    assert inspect.main(["--snapshot", str(SNAP)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows, summary = inspect.compare(inspect.read_snapshot(SNAP))
    # the summary first, with the counts of the comparison
    assert lines[0].startswith(f"Summary: {summary['agree']} agree, 0 differ, {summary['not_compared']} not compared")
    assert "Reading: snapshot" in out
    # differences only: the snapshot's kmalloc caches and structs all agree, so none of them is listed; the two
    # opt-in sheaf caches' capacities cannot be compared, so they are
    listed = [x for x in rows if x["verdict"] == "not compared"]
    assert len(listed) == summary["not_compared"] == 2 and summary["differ"] == 0
    assert f"({len(listed)} of {len(rows)}; --all lists every row)" in out
    assert "kmalloc-96 " not in out and "offsetof(" not in out and "  agree" not in out
    for x in listed:
        assert any(ln.startswith(f"{x['item']} ") and x["quantity"] in ln for ln in lines)
    assert max(map(len, lines)) <= 100 and len(lines) < 25


def test_no_differences_says_so():
    r = inspect.read_snapshot(SNAP)
    rows, summary = inspect.compare(r)
    agreeing = [x for x in rows if x["verdict"] == "agree"]
    text = inspect.report(r, "a test", agreeing, summary)
    assert f"No differences: every compared row agrees (--all lists all {len(agreeing)} rows)." in text.replace("\n", " ")


def test_cli_all_lists_every_row_in_100_columns(capsys):
    assert inspect.main(["--snapshot", str(SNAP), "--all"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows, summary = inspect.compare(inspect.read_snapshot(SNAP))
    assert lines[0].startswith("Summary:") and max(map(len, lines)) <= 100
    assert "Caches as read from /sys/kernel/slab:" in out and f"Model vs kernel, all {len(rows)} rows:" in out
    for x in rows:  # every row's item and quantity appear (an item may wrap onto two lines)
        assert x["quantity"] in out and x["item"].split()[0] in out
    table_rows = [ln for ln in lines if ln.split()[-1:] in (["agree"], ["differ"], ["input"])
                  or " agree " in ln or " input " in ln]
    assert len(table_rows) >= summary["agree"] - 1


def test_cli_differences_against_another_model(capsys):
    assert inspect.main(["--snapshot", str(SNAP), "--version", "7.0"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows, summary = inspect.compare(inspect.read_snapshot(SNAP), "7.0")
    assert summary["differ"] > 0 and lines[0].startswith(f"Summary: {summary['agree']} agree, {summary['differ']} differ")
    listed = [x for x in rows if x["verdict"] in ("differ", "not compared")]
    assert f"({len(listed)} of {len(rows)}; --all lists every row)" in out
    assert sum(ln.startswith("kmalloc-96 ") for ln in lines) == 2  # cpu_partial and sheaf_capacity differ
    assert not any("  agree" in ln for ln in lines)
    assert max(map(len, lines)) <= 100


def test_wrap_table_fits_any_width():
    rows = [["a" * 40, "b" * 50, "word " * 30], ["x", "y", "z"]]
    for width in (60, 80, 100):
        lines = inspect.wrap_table(["first_column", "second", "note"], rows, width=width)
        assert max(map(len, lines)) <= width
        text = "\n".join(lines)
        assert (text.count("a"), text.count("b"), text.count("word")) == (40, 50, 30)  # wrapped, nothing lost
        assert lines[0].startswith("first") and set(lines[1 if "column" in lines[0] else 2]) <= {"-", " "}


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exc:
        inspect.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--all" in out and "differ" in out and max(map(len, out.splitlines())) <= 100
    for rest in ("``", ":func:", ":mod:", ":data:"):
        assert rest not in out


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["caches"]["kmalloc-96"].update(order=0), "cache 'kmalloc-96': field 'order' is 0, which is not text"),
    (lambda d: d.update(release=6.18), "field 'release' is 6.18, which is not text"),
    (lambda d: d.update(cpus="0-1"), "field 'cpus' is '0-1', which is not a mapping"),
    (lambda d: d.update(numa_nodes=1), "field 'numa_nodes' is 1, which is not text"),
    (lambda d: d.update(notes="no BTF"), "field 'notes' is 'no BTF', which is not a list"),
])
def test_cli_snapshot_with_wrong_types_is_one_sentence(tmp_path, capsys, edit, message):
    doc = json.loads(SNAP.read_text())
    edit(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    assert inspect.main(["--snapshot", str(p)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.startswith(f"error: snapshot {p}") and message in cap.err
    assert len(cap.err.strip().splitlines()) == 1
    assert inspect.main(["--snapshot", str(SNAP)]) == 0  # the next normal run works


def test_cli_path_faults_are_one_sentence(tmp_path, capsys):
    assert inspect.main(["--snapshot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: snapshot {tmp_path} is a directory; give the .json file written by `inspect --json`\n"
    tree = _tree(tmp_path / "t", caches={"kmalloc-96": _cache(96, 4, "6.19")})
    missing = tmp_path / "no" / "such" / "mine.json"
    assert inspect.main(["--root", str(tree), "--json", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot write the snapshot to {missing}: the directory {missing.parent} does not exist\n"
    assert inspect.main(["--root", str(tree), "--json", str(tmp_path)]) == 2
    assert "is a directory; give a file name" in capsys.readouterr().err
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    assert inspect.main(["--snapshot", str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_cli_faults_through_the_command_line(tmp_path):
    """The same faults through `python -m allocsim inspect`: one line on stderr, exit 2, no traceback."""
    from conftest import run_cli

    doc = json.loads(SNAP.read_text())
    doc["notes"] = "a string, not a list"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    for args in (["--snapshot", str(bad)], ["--snapshot", str(tmp_path)],
                 ["--root", str(tmp_path), "--json", str(tmp_path / "no" / "x.json")]):
        proc = run_cli("inspect", *args, timeout=120)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr and "problem:" not in proc.stdout


def test_cli_json_and_errors(tmp_path, capsys):
    tree = _tree(tmp_path / "t", caches={"kmalloc-96": _cache(96, 4, "6.19")})
    out_json = tmp_path / "mine.json"
    assert inspect.main(["--root", str(tree), "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["release"] == "6.19.3"
    assert "Reading: live" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert inspect.main(["--root", str(empty), "--json", str(tmp_path / "x.json")]) == 2
    assert "no snapshot was written" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
    assert inspect.main(["--root", str(empty)]) == 0  # falls back to the snapshot
    assert "showing the shipped snapshot" in capsys.readouterr().out
    assert inspect.main(["--snapshot", str(SNAP), "--version", "5.4"]) == 2
    assert "unknown kernel version" in capsys.readouterr().err


# --- the live kernel ------------------------------------------------------------------------------------

def _live_readable():
    return (sys.platform == "linux" and Path("/sys/kernel/slab/kmalloc-96/order").exists()
            and inspect.live_usable(inspect.read_live("/")))


@pytest.mark.skipif(not _live_readable(), reason="/sys/kernel/slab is not readable on this machine")
def test_live_kernel():
    r = inspect.read_live("/")
    f = inspect.parse(r)
    assert f.problems == [] and f.cpus_present >= 1
    rows, summary = inspect.compare(r)
    for x in rows:
        if x["group"] == "kmalloc caches" and x["quantity"] in ("order", "objs_per_slab"):
            assert x["verdict"] == "agree", x
    if r.btf == "read":
        assert "iomap_dio" in f.structs and f.structs["iomap_dio"].size >= 96


# --- the appendix's views -------------------------------------------------------------------------------

def test_views_on_a_7_0_tree_with_many_sheaf_caches(tmp_path):
    from allocsim.pages import kernel as views

    caches = {f"kmalloc-{s}": _cache(s, 2, "7.0") for s in (96, 128, 256)}
    for i in range(20):
        caches[f"cache_{i:02d}"] = _cache(192, 2, "7.0")                       # default capacity: agrees
    caches["maple_node"] = _cache(256, 2, "7.0", sheaf_capacity="32")           # explicit request: above
    r = inspect.read_live(_tree(tmp_path, release="7.0.0", present="0-1", caches=caches))
    rows, summary = inspect.compare(r)
    f = inspect.parse(r)
    t = views.cache_table(rows, "caches with sheaves")
    assert list(t.index) == ["maple_node", "20 other caches"]  # condensed: agreeing caches counted
    assert t.loc["maple_node", "sheaf_capacity"] == "model 28 ≠ kernel 32"
    assert "explicit" in t.loc["maple_node", "notes"]
    k = views.cache_table(rows, "kmalloc caches")
    assert set(k["verdict"]) == {"all agree"} and "notes" not in k.columns
    assert views.sheaf_256_text(summary, f.caches["kmalloc-256"]["sheaf_capacity"]).endswith("28, which agrees with the model's 28.")
    assert "3 of 3 kmalloc caches have sheaves, with capacities 28, 60" == views.kmalloc_sheaves_text(f)
    assert views.sheaf_caches_text(f) == "21 caches, with capacities 60 (20 caches), 32 (1 cache)"
    f.caches = {n: c for n, c in f.caches.items() if not n.startswith("cache_")}
    assert views.sheaf_caches_text(f) == "`maple_node` (capacity 32)"
    curves = views.geometry_curves("7.0")
    assert curves.query("size == 256 and cpus == 192").objs_per_slab.iloc[0] == 64
    views.geometry_chart(rows, summary, "7.0").to_dict()  # a valid Vega-Lite spec

import pytest

from allocsim.facts import costs, datafile, paths
from allocsim.facts.errors import DataError


def test_default_table_is_complete_and_cited():
    t = costs.load()
    assert list(t.frame()["key"]) == list(costs.KEYS)
    for k in costs.KEYS:
        row = t.rows[k]
        assert row["source"].strip() and row["what"].strip()
        assert row["low"] <= row["cycles"] <= row["high"]
    assert t.vector.shape == (len(costs.KEYS),)
    assert t.vector[costs.C_SPIN_LOCK_PAIR] == t.cycles("spin_lock_pair")


def test_variants():
    t = costs.load()
    hi = t.at("high")
    assert all(hi.cycles(k) == t.rows[k]["high"] for k in costs.KEYS)
    o = t.with_overrides(spin_lock_pair=50)
    assert o.cycles("spin_lock_pair") == 50 and t.cycles("spin_lock_pair") != 50
    with pytest.raises(DataError, match="unknown cost 'nope'"):
        t.with_overrides(nope=1)
    with pytest.raises(DataError, match="unknown cost table 'nope'"):
        costs.load("nope")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("preempt_pair,11,10.6,11", "preempt_pair,x,10.6,11"), "line 4 \\(key 'preempt_pair'\\): field 'cycles' is 'x', which is not a number"),
    (lambda s: s.replace("preempt_pair,11,10.6,11", "preempt_pair,-1,-2,11"), "line 4 \\(key 'preempt_pair'\\): field 'cycles' is '-1', which is not a number of cycles >= 0"),
    (lambda s: s.replace("preempt_pair,11,10.6,11", "preempt_pair,9,10.6,11"), "line 4 \\(key 'preempt_pair'\\): field 'cycles' \\(9.0\\) must lie within"),
    (lambda s: s.replace("preempt_pair,", "preempt_pairs,"), "line 4 \\(key 'preempt_pairs'\\): field 'key' is 'preempt_pairs'; allowed keys"),
    (lambda s: s, None),  # the unchanged copy loads
    (lambda s: "\n".join(line for line in s.splitlines() if not line.startswith("l2_hit")), "costs-bad.csv: no row for l2_hit"),
    (lambda s: s.replace("Nehalem,same source as l1_hit,V", "Nehalem,same source as l1_hit,X", 1), "line 13 \\(key 'l2_hit'\\): field 'tag' is 'X'; allowed tags"),
    (lambda s: s.replace("Nehalem,same source as l1_hit,V", "Nehalem,,V", 1), "line 13 \\(key 'l2_hit'\\): field 'source' is empty"),
    (lambda s: s.replace("Nehalem,same source as l1_hit,V", "Nehalem", 1), "line 13 \\(key 'l2_hit'\\): has 6 cells, not 8"),
    (lambda s: s.replace("key,cycles", "name,cycles", 1), "costs-bad.csv: the header must be"),
])
def test_malformed_cost_rows(tmp_path, monkeypatch, edit, message):
    text = (paths.DATA / "costs.csv").read_text()
    (tmp_path / "costs-bad.csv").write_text(edit(text))
    monkeypatch.setattr(paths, "DATA", tmp_path)
    datafile.clear_cache()
    try:
        if message is None:
            assert costs.load("bad").cycles("l2_hit") == 10
            return
        with pytest.raises(DataError, match="^data/costs-bad.csv" + ("" if message.startswith("costs-bad") else ", ") + message.removeprefix("costs-bad.csv")):
            costs.load("bad")
    finally:
        monkeypatch.undo()
        datafile.clear_cache()

import pytest

from allocsim.facts import costs
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
    (lambda s: s.replace("preempt_pair,1,0,3", "preempt_pair,x,0,3"), "line 2: field 'cycles' is 'x'"),
    (lambda s: s.replace("preempt_pair,1,0,3", "preempt_pair,9,0,3"), "line 2: field 'cycles' \\(9.0\\) must lie within"),
    (lambda s: s.replace("preempt_pair,", "preempt_pairs,"), "line 2: field 'key' is 'preempt_pairs'"),
    (lambda s: "\n".join(line for line in s.splitlines() if not line.startswith("l2_hit")), "no row for l2_hit"),
])
def test_malformed_cost_rows(tmp_path, monkeypatch, edit, message):
    text = (costs.DATA / "costs.csv").read_text()
    (tmp_path / "costs-bad.csv").write_text(edit(text))
    monkeypatch.setattr(costs, "DATA", tmp_path)
    costs.load.cache_clear()
    try:
        with pytest.raises(DataError, match=message):
            costs.load("bad")
    finally:
        costs.load.cache_clear()

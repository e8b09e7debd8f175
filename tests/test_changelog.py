"""The model changelog (allocsim.analysis.changelog) and its appendix views (allocsim.pages.methods)."""

import json

import pandas as pd
import pytest

from allocsim.analysis import changelog as cg
from allocsim.analysis import runs
from allocsim.facts import steps
from allocsim.facts.errors import AllocsimError
from allocsim.pages import methods as views


def test_the_states_are_cumulative_and_end_at_the_shipped_model():
    names = [s.name for s in cg.STATES]
    assert names[0] == "before v2" and len(set(names)) == len(names)
    first, last = cg.STATES[0].run_setup(), cg.STATES[-1].run_setup()
    assert (first.cost_table, first.steps, first.hooks) == ("v1", "v1", steps.Hooks.off())
    d = runs.Setup()
    assert (last.cost_table, last.steps, last.hooks, last.hierarchy) == (d.cost_table, d.steps, d.hooks, d.hierarchy)
    for a, b in zip(cg.STATES, cg.STATES[1:]):  # each state changes something
        assert a.run_setup() != b.run_setup()


def test_a_state_with_an_unknown_field_is_one_sentence():
    with pytest.raises(AllocsimError, match=r"changelog state 'x' sets colour, which is not a field of analysis.runs.Setup"):
        cg.State("x", "y", {"colour": "blue"}).run_setup()
    with pytest.raises(AllocsimError, match="at least one model state"):
        cg.history(())


def _outcome(name, miops, statuses, base=830.0):
    pred = pd.DataFrame({"kernel": ["6.19", "7.0"], "allocator": ["kmalloc", "kmalloc"], "reported M IOPS": [1.17, 1.19],
                         "predicted M IOPS": miops, "residual ns/IO": [1e3 / m - 1e3 / r for m, r in zip(miops, [1.17, 1.19])],
                         "alloc cycles/IO": [60.0, 20.0]})
    rms = float((pred["residual ns/IO"] ** 2).mean() ** 0.5)
    cl = pd.DataFrame({"id": ["a", "b"], "label": ["claim A", "claim B"], "status": statuses, "modelled": ["1", "2"]})
    return cg.Outcome(cg.State(name, f"change {name}"), pred, base, rms, cl)


def test_changes_report_moves_and_status_changes():
    o = [_outcome("s0", [1.17, 1.19], ["reproduced", "partly"]), _outcome("s1", [1.16, 1.19], ["reproduced", "not reproduced"], 840.0)]
    (c,) = cg.changes(o)
    assert c.step == 1 and c.name == "s1" and c.base_before == 830.0 and c.base_after == 840.0
    assert c.moved == [("6.19 kmalloc", 1.17, 1.16), ("7.0 kmalloc", 1.19, 1.19)]
    assert c.status_changes == [("b", "claim B", "partly", "not reproduced")]
    w = views.change_words(c)
    assert "6.19 kmalloc (1.17000M → 1.16000M)" in w and "1 claim changes status: claim B (partly → not reproduced)." in w
    same = cg.changes([o[0], _outcome("s2", [1.17, 1.19], ["reproduced", "partly"])])
    assert same[0].status_changes == [] and views.change_words(same[0]).endswith("No claim changes status.")
    assert "; no prediction moves (to five decimals). " in views.change_words(same[0])
    st = views.changelog_statuses(o)
    assert list(st["s1"]) == ["reproduced", "**not reproduced**"] and list(st["s0"]) == ["reproduced", "partly"]
    pr = views.changelog_predictions(o)
    assert pr.iloc[-1]["configuration"].startswith("**RMS residual**") and len(pr) == 3
    assert pr.iloc[0]["s1"].startswith("1.16000M (")
    assert views.changelog_chart(o).to_dict()["mark"]["type"] == "line"


@pytest.fixture(scope="module")
def before(tmp_path_factory):
    d = tmp_path_factory.mktemp("changelog")
    mp = pytest.MonkeyPatch()
    mp.setattr(cg, "CACHE", d)
    cg._MEMO.clear()
    out = cg.evaluate(cg.STATES[0])
    yield out, d
    mp.undo()
    cg._MEMO.clear()


def test_before_v2_reproduces_the_earlier_book(before):
    """State 0 is the pre-v2 model: the per-CPU list at 1.19488M, as the book had it."""
    o, _ = before
    p = o.predictions.set_index(["kernel", "allocator"])["predicted M IOPS"]
    assert round(p[("6.19", "per-CPU list")], 5) == 1.19488 and round(p[("7.0", "per-CPU list")], 5) == 1.19488
    rep = runs.reproduce(cg.STATES[0].run_setup())
    assert list(o.predictions["predicted M IOPS"]) == pytest.approx(list(rep.table["predicted M IOPS"]))
    assert set(o.claims["status"]) <= {"reproduced", "partly", "not reproduced"} and len(o.claims) > 6
    assert o.claims["label"].is_unique  # the kernel in the label tells the two IOPS rows of an allocator apart


def test_the_disk_cache_is_keyed_and_read_back(before, monkeypatch):
    o, d = before
    files = list(d.glob("*.json"))
    assert len(files) == 1
    raw = json.loads(files[0].read_text())
    assert raw["base_ns"] == o.base_ns
    cg._MEMO.clear()
    monkeypatch.setattr(cg, "_compute", lambda *a: pytest.fail("recomputed although cached"))
    again = cg.evaluate(cg.STATES[0])
    assert again.rms_ns == o.rms_ns and (again.claims["status"] == o.claims["status"]).all()
    # another clock is another entry, not the cached one
    monkeypatch.setattr(cg, "_compute", lambda *a: {"predictions": raw["predictions"], "base_ns": 1.0, "claims": raw["claims"]})
    assert cg.evaluate(cg.STATES[0], clock_ghz=2.0).base_ns == 1.0


def test_hooks_frame_lists_every_switch():
    h = views.hooks_frame()
    assert list(h["switch"]) == [f"`{k}`" for k in steps.switches()]
    assert set(h["default"]) <= {"on", "off"} and h["source of the default"].str.len().min() > 20


def test_the_placement_change_joins_when_setup_has_the_field():
    fields = set(runs.Setup.__dataclass_fields__) - {"hierarchy"}
    base = cg.sequence(fields - {"placement"})
    assert base == cg.V2_STATES and [s.name for s in base] == ["before v2", "steps", "hooks", "costs"]
    more = cg.sequence(fields | {"placement"})
    assert [s.name for s in more] == ["before v2", "steps", "hooks", "costs", "blk-mq"]
    assert all(s.setup["placement"] == "independent" for s in more[:-1])
    assert more[-1].setup == {**cg.V2_STATES[-1].setup, "placement": "blkmq"}
    assert cg.STATES == cg.sequence()


def test_the_hierarchy_change_comes_last_and_every_earlier_state_runs_without_it():
    seq = cg.sequence(set(runs.Setup.__dataclass_fields__) | {"hierarchy", "placement"})
    assert [s.name for s in seq] == ["before v2", "steps", "hooks", "costs", "blk-mq", "hierarchy"]
    assert all(s.setup["hierarchy"] is False and s.run_setup().hierarchy is False for s in seq[:-1])
    assert seq[-1].setup == {**seq[-2].setup, "hierarchy": True}
    assert cg.STATES[-1].run_setup() == runs.Setup()  # the last state is the shipped default model
    # without the field (an older Setup) the sequence is the one before the hierarchy
    assert [s.name for s in cg.sequence(set(runs.Setup.__dataclass_fields__) - {"hierarchy"})][-1] == "blk-mq"


def test_the_hierarchy_state_s_claims_run_the_microbenchmark_with_the_hierarchy(monkeypatch):
    """claims.evaluate takes the hierarchy switch and clock from the reproduction the changelog gives it."""
    from allocsim.analysis import claims

    seen = []
    real = claims.MicroSetup.cycles

    def spy(self, *a, **kw):
        seen.append((self.hierarchy, self.clock_ghz))
        return real(self, *a, **kw)

    monkeypatch.setattr(claims.MicroSetup, "cycles", spy)
    for state, want in ((cg.STATES[-1], True), (cg.STATES[-2], False)):
        seen.clear()
        cg._compute(state, 2.5)
        assert seen and set(seen) == {(want, 2.5)}


@pytest.fixture(scope="module")
def accesses():
    setup = runs.Setup(ios=4160 + 64 * 4)
    return cg.hierarchy_accesses(setup, 2400, 3.0), setup


def test_hierarchy_accesses_add_up_per_configuration(accesses):
    from allocsim.analysis import iops
    from allocsim.kernel import cache

    a, _ = accesses
    assert [(k, al) for k, al in zip(a["kernel"], a["allocator"])] == list(iops.CONFIGS)
    kinds = a[list(cache.KINDS)]
    assert (kinds >= 0).all().all() and (a["accesses"] > 0).all()
    assert a["accesses"].to_numpy() == pytest.approx(kinds.sum(axis=1).to_numpy())
    assert a["beyond L1"].to_numpy() == pytest.approx((a["accesses"] - a["L1"]).to_numpy())


def test_hierarchy_accesses_match_a_direct_run_of_the_two_lengths(accesses):
    """The per-IO counts are the long program's counters minus the short one's, over the window's IOs."""
    from dataclasses import replace

    from allocsim.workloads import iouring

    a, setup = accesses
    s = runs.clocked(setup.validate(), 3.0)
    cfg = s.workload(2400)
    first, end = iouring.steady_window(cfg)
    run = runs.model_fn("7.0", "sheaf-256", s)
    long = run(iouring.program(replace(cfg, ios=end, drain=False))).extra["hierarchy"].sum(axis=0)
    short = run(iouring.program(replace(cfg, ios=first, drain=False))).extra["hierarchy"].sum(axis=0)
    row = a[(a["kernel"] == "7.0") & (a["allocator"] == "sheaf-256")].iloc[0]
    assert row["L1"] == pytest.approx((long[0] - short[0]) / (end - first))


def test_hierarchy_paths_list_only_what_moved_and_words_say_it():
    p = cg.hierarchy_paths(runs.Setup(ios=4160 + 64 * 4), 2400, 3.0)
    assert (p["change cycles/IO"].abs() + (p["count on"] - p["count off"]).abs() > 0).all()
    assert views.moved_paths_words(p.iloc[0:0]).startswith("No path")
    if len(p):
        w = views.moved_paths_words(p)
        assert w.startswith("The paths whose charge changed: ") and f"`{p.iloc[0]['path']}`" in w


def test_preempt_effect_moves_every_preempt_counting_pair_by_two_preempt_pairs():
    from allocsim.facts import costs

    e = cg.preempt_effect()
    d = costs.load().cycles("preempt_pair") - costs.load("v1").cycles("preempt_pair")
    ch = dict(zip(e.frame["hot alloc+free pair"], e.frame["change"]))
    # the list: get_cpu()/put_cpu() once per call; sheaves: local_trylock on alloc and on free; 6.19: none
    assert ch["per-CPU list hit (pop, hardirq push)"] == 2 * d
    assert ch["7.0 kmalloc (sheaves)"] == ch["sheaf-256 (dedicated cache)"] == 2 * d
    assert ch["6.19 kmalloc (cpu slab)"] == 0
    assert (e.lock_v1, e.lock_now) == (3, 23)


def test_the_hierarchy_paragraph_glues_every_key_a2_pastes(monkeypatch):
    """glue_hierarchy_effect on a two-state history (flat, then hierarchy) glues the hx_* keys of A2's section,
    from the outcomes' predictions, access counters and moved paths."""
    import re
    from pathlib import Path

    import allocsim.pages.glue as G

    got = {}
    fake = lambda key, value, display=False: got.__setitem__(key, value)  # noqa: E731
    monkeypatch.setattr(G, "glue", fake)
    monkeypatch.setattr(views, "glue", fake)
    a = _outcome("blk-mq", [1.17, 1.19], ["reproduced", "partly"])
    b = _outcome("hierarchy", [1.16, 1.19], ["reproduced", "partly"], 831.0)
    acc = pd.DataFrame({"kernel": ["6.19", "7.0"], "allocator": ["kmalloc", "kmalloc"], "L1": [15.0, 27.0],
                        "accesses": [16.0, 27.0], "beyond L1": [1.0, 0.0]})
    paths = pd.DataFrame([{"kernel": "6.19", "allocator": "kmalloc", "path": "alloc_cpu_partial", "count off": 10,
                           "count on": 10, "cycles/IO off": 1.0, "cycles/IO on": 1.5, "change cycles/IO": 0.5,
                           "change per call": 4.0, "ios": 80}])
    b = cg.Outcome(b.state, b.predictions, b.base_ns, b.rms_ns, b.claims, acc, paths)
    rows = views.glue_hierarchy_effect([a, b])
    assert list(rows["L1 hits"]) == ["93.8 %", "100.0 %"]
    assert got["hx_top"] == "6.19 kmalloc" and got["hx_top_before"] == 1.17 and got["hx_top_after"] == 1.16
    assert got["hx_l1_words"].startswith("at least 93.8 % of them hit L1 (at most 1.000 per IO")
    assert "`alloc_cpu_partial`" in got["hx_paths"] and "get_freepointer()" in got["hx_paths"]
    text = (Path(__file__).resolve().parents[1] / "chapters" / "A2-methods.md").read_text()
    pasted = set(re.findall(r"\{glue:(?:text|md)\}`(hx_[^`:]+)", text))
    assert pasted and pasted <= set(got)
    with pytest.raises(ValueError, match="no 'hierarchy' state"):
        views.glue_hierarchy_effect([a])

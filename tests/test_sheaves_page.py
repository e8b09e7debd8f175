"""Chapter 4 ("Sheaves and the barn"): its arithmetic (allocsim.analysis.microbench) and its page module
(allocsim.pages.sheaves) — the claims come from the book's one evaluator."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from allocsim.analysis import claims as C
from allocsim.analysis import microbench as mb
from allocsim.facts import costs
from allocsim.facts.errors import AllocsimError
from allocsim.pages import params
from allocsim.pages import sheaves as sv

P4 = SimpleNamespace(**params.spec("sheaves").defaults())
FAST = C.MicroSetup(rounds=(5, 10))


def test_capacity_table_and_default_capacity():
    ct = sv.capacity_table("7.0").set_index("s->size")
    # v7.0 calculate_sheaf_capacity(): 60 for 8-192, 28 for 256-1023 (base 26: 240 bytes -> kmalloc-256), 12, 4
    assert ct.loc[96, "capacity"] == 60 and ct.loc[256, "capacity"] == 28 and ct.loc[512, "capacity"] == 28
    assert ct.loc[1024, "capacity"] == 12 and ct.loc[4096, "capacity"] == 4
    assert (sv.capacity_table("6.19")["capacity"] == 0).all()  # opt-in: no default
    dc = mb.default_capacity(256, 64, 32, 128)
    assert (dc.cap_size, dc.cap_base, dc.cap_bytes, dc.cap_bucket, dc.cap_final) == (256, 26, 240, 256, 28)
    assert (dc.cap_base2, dc.cap_final2) == (52, 56) and dc.same_side
    assert not mb.default_capacity(256, 64, 54, 128).same_side  # 54 > 52 but <= 56
    assert mb.same_side_words(True) == "on the same side of both"
    assert mb.same_side_words(False) == "on different sides of the two"


def test_microbench_barn_traffic_starts_just_above_twice_the_capacity():
    quiet = mb.microbench("7.0", 56, 1, None)   # 2 x 28: fits main + spare
    busy = mb.microbench("7.0", 64, 1, None)
    assert quiet["capacity"] == 28 and quiet["barn"] == 0 and quiet["slab objects"] == 0
    assert busy["barn"] > 0 and busy["cycles"] > quiet["cycles"]
    with pytest.raises(AllocsimError, match="rounds"):
        mb.microbench("7.0", 8, 1, None, rounds=(5, 5))


def test_cliff_and_its_summary():
    df = sv.heat_sweep(P4, ks=[20, 40, 56, 64, 100, 128], caps=[28, 40])
    c = mb.cliff(df).set_index("capacity")
    assert c.loc[28, "first K with barn traffic"] == 64 and c.loc[28, "last K without barn traffic"] == 56
    assert c.loc[40, "first K with barn traffic"] == 100
    s = mb.cliff_summary(df)
    assert (s.cliff_k_before, s.cliff_k_after, s.cliff_n) == (56, 64, 2)
    assert s.cliff_lo == pytest.approx(64 / 28) and s.cliff_hi == pytest.approx(100 / 40)
    quiet = sv.heat_sweep(P4, ks=[8, 16], caps=[28])
    q = mb.cliff_summary(quiet)
    assert q.cliff_n == 0 and q.cliff_k_after == 0 and q.cliff_k_before == 16
    h = mb.heat_extremes(df)
    assert h.heat_worst == df["cycles"].max() and h.heat_floor == df["cycles"].min()


def test_threads_sweep_and_contention():
    ts = mb.threads_sweep("7.0", 128, 256, threads=(1, 2, 16))
    assert list(ts["threads"]) == [1, 1, 2, 2, 16, 16]
    sp = ts.groupby("threads")["speed-up"].first()
    assert mb.threads_in_range(ts, 3, 4) == [int(n) for n, x in sp.items() if 3 <= x <= 4]
    c = mb.contention(ts, 128, costs.load())
    t = costs.load()
    assert c.hold == t.cycles("spin_lock_pair") + t.cycles("cacheline_transfer") + 2 * t.cycles("l1_hit")
    assert c.barn_per_round == pytest.approx(c.barn_per_pair * 128) and c.max_threads == 16
    assert c.one_cycles > c.one_fast
    assert mb.flush_words(None) == "no thread count in the sweep" and mb.flush_words(32) == "32 threads"


def test_hidden_overhead_and_the_619_gap():
    x = mb.hidden_overhead(42.0, 24.0, 10.0)
    assert mb.improvement(42.0 + x, 24.0 + x) == pytest.approx(10.0)
    g = mb.gap_619(256, 256, 32, 128, 10.0, costs.load())
    assert g.m619 == pytest.approx(mb.improvement(g.p619, g.s619)) and g.c_fast == costs.load().cycles("percpu_cmpxchg16b")
    # cost model v2: the model's sheaf hit costs more than the cpu slab's fast path (the validation's miss),
    # so no common overhead turns the loss into the claimed gain and none is computed
    assert g.s619 > g.p619 and g.m619 < 0 and math.isnan(g.x_overhead) and math.isnan(g.k128_diluted)
    assert "validation's miss" in sv.gap_words(g, 10.0, 12.0, 128)
    # with the charges before v2 the sheaves were the faster, and the overhead reading applies
    faster = mb.Gap619(42.0, 100.0, 24.0, mb.improvement(42, 24), x, 5.0, 21.0)
    w = sv.gap_words(faster, 10.0, 12.0, 128)
    assert f"about {x:.0f} cycles" in w and "5.0%" in w and "12%" in w


def test_saving_words():
    assert sv.saving_words(4.0) == "save 4.0 % of the time"
    assert sv.saving_words(-12.21) == "cost 12.2 % more time"


def test_range_words():
    assert sv.range_words([12, 16], [1, 2, 32]) == "reached at 12, 16 threads of the sweep below"
    assert sv.range_words([], [1, 2, 32]) == "not reached at any thread count of the sweep below (1 to 32)"


def test_claims_table_is_the_evaluator_with_labels():
    cl = sv.claims_table(P4, micro=FAST)
    assert set(cl.index) == set(C.MICRO_CLAIMS)
    assert not cl["label"].isin(C.MICRO_CLAIMS).any()  # labels, not slugs
    assert cl.loc["default-capacity-26", "value"] == 28
    same = C.micro_claims(FAST).set_index("id")
    assert (cl["status"] == same["status"]).all()
    mt = cl.loc["k128-multithread"]
    assert mt["verdict"].startswith(C.status_phrase(mt["status"])) and len(mt["values"]) == len(C.MULTI_THREADS)
    assert "k128-multithread" not in " ".join(sv.results_table(cl)["claim"])
    assert list(sv.quotes_table(cl).columns) == ["claim", "quote", "claimed"]


def test_status_words():
    assert sv.status_words({"status": "reproduced", "note": ""}) == "reproduced"
    assert sv.status_words({"status": "partly", "note": "in the interval at 16 threads"}) == \
        "partly reproduced (in the interval at 16 threads)"
    assert sv.status_words({"status": "not reproduced", "note": ""}) == "not reproduced"


def test_micro_setup_follows_the_page():
    p = SimpleNamespace(**{**vars(P4), "capacity": 64, "cpus_per_node": 0, "object_size": 512})
    ms = sv.micro_setup(p)
    assert ms.capacity == 64 and ms.cpus_per_node is None and ms.object_size == 512
    assert ms.threads == C.MULTI_THREADS


def test_charts_build_and_the_heat_map_marks_are_visible():
    heat = sv.heat_chart(sv.heat_sweep(P4, ks=[8, 64], caps=[28]), "t").to_dict()
    marks = [layer["mark"] for layer in heat["layer"]]
    point = next(m for m in marks if isinstance(m, dict) and m.get("type") == "point")
    assert point["stroke"] != point["fill"] and point["strokeWidth"] >= 2 and point["size"] >= 80
    color = heat["layer"][0]["encoding"]["color"]
    assert color["field"] == "extra" and color["scale"]["type"] == "sqrt"
    ts = mb.threads_sweep("7.0", 64, 256, threads=(1, 2))
    for ch in (sv.sheaves_diagram(28), sv.threads_chart(ts, 64)):
        d = ch.to_dict()
        assert d["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert "K = 64" in str(sv.threads_chart(ts, 64).to_dict()["title"])
    assert isinstance(sv.lineage_table(), pd.DataFrame)


def test_every_key_chapter_4_pastes_is_glued_by_the_page_module(monkeypatch):
    import re
    from pathlib import Path

    import allocsim.pages.glue as G

    got = {}
    fake = lambda key, value, display=False: got.__setitem__(key, value)  # noqa: E731
    monkeypatch.setattr(G, "glue", fake)
    monkeypatch.setattr(sv, "glue", fake)
    sv.glue_design(P4)
    sv.glue_capacity(P4)
    ts = mb.threads_sweep("7.0", 128, 256, threads=(1, 2, 16))
    cl = sv.claims_table(P4, micro=FAST)
    sv.glue_claims(P4, cl, ts)
    heat = sv.heat_sweep(P4, ks=[20, 64, 128], caps=[28, 64])
    sv.glue_heat(heat, heat)
    sv.glue_contention(P4, ts)
    sv.glue_619(P4)
    sv.glue_validation(P4, *sv.validation(P4))
    on, off = sv.order_tables(P4)
    sv.glue_order(P4, on, off, sv.order_sweep(P4, ks=[8, 128], caps=[28]))
    sv.glue_compare(sv.claims_compare(P4, cl))
    sv.glue_bulk(P4, *sv.bulk_validation(P4))
    got.update({k: None for k in ("fig_design", "fig_heat1", "fig_heatn", "fig_threads", "fig_validation", "fig_order",
                                  "fig_bulk")})  # glued by the cells
    text = (Path(__file__).resolve().parents[1] / "chapters" / "04-sheaves.md").read_text()
    keys = set(re.findall(r"\{glue:(?:text|md)\}`([^`:]+)", text)) | set(re.findall(r"```\{glue:figure\} (\S+)", text))
    assert not keys - set(got), sorted(keys - set(got))
    assert got["v_k128_n"].data.startswith(C.status_phrase(cl.loc["k128-multithread", "status"]))


def test_node_words_follow_the_parameters():
    assert sv.nodes_words(0) == "on one node" and "nodes of 4 CPUs" in sv.nodes_words(4)
    assert sv.barn_words(8, 0) == "sharing one barn" and sv.barn_words(4, 8) == "sharing one barn"
    assert sv.barn_words(16, 4) == "spread over 4 barns (4 CPUs per node)"
    ts = mb.threads_sweep("7.0", 16, 256, threads=(1, 2))
    title = sv.threads_chart(ts, 16, 4).to_dict()["vconcat"][0]["encoding"]["x"]["title"]
    assert "nodes of 4 CPUs" in title and "one node" in sv.threads_chart(ts, 16).to_dict()["vconcat"][0]["encoding"]["x"]["title"]

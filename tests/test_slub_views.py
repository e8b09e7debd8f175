"""The analyses behind chapters 3 and 4 (allocsim.pages.slub): what they compute, checked against
the kernel facts and the models' own mechanics."""

from types import SimpleNamespace

import pandas as pd
import pytest

from allocsim.pages import params
from allocsim.pages import slub as sv
from allocsim.facts.errors import AllocsimError

P3 = SimpleNamespace(**params.spec("cpuslab").defaults())
P4 = SimpleNamespace(**params.spec("sheaves").defaults())


def test_capacity_table_matches_the_worked_values_of_kernel_md():
    ct = sv.capacity_table("7.0").set_index("s->size")
    # kernel.md §2.3: 60 for 8-192, 28 for 256-1023 (base 26: 240 bytes -> kmalloc-256), 12, 4
    assert ct.loc[96, "capacity"] == 60 and ct.loc[256, "capacity"] == 28 and ct.loc[512, "capacity"] == 28
    assert ct.loc[256, "base capacity"] == 26 and ct.loc[256, "sheaf bytes at base"] == 240
    assert ct.loc[256, "kmalloc bucket"] == 256
    assert ct.loc[1024, "capacity"] == 12 and ct.loc[4096, "capacity"] == 4 and ct.loc[8192, "capacity"] == 4
    assert (sv.capacity_table("6.19")["capacity"] == 0).all()  # opt-in: no default


def test_microbench_barn_traffic_starts_just_above_twice_the_capacity():
    quiet = sv.microbench("7.0", 56, 1, None)   # 2 x 28: fits main + spare
    busy = sv.microbench("7.0", 64, 1, None)
    assert quiet["capacity"] == 28 and quiet["barn"] == 0 and quiet["slab objects"] == 0
    assert busy["barn"] > 0 and busy["cycles"] > quiet["cycles"]
    big = sv.microbench("7.0", 64, 1, 256)
    assert big["capacity"] == 256 and big["barn"] == 0


def test_microbench_rounds_are_checked():
    with pytest.raises(AllocsimError, match="rounds"):
        sv.microbench("7.0", 8, 1, None, rounds=(5, 5))


def test_cliff_finds_the_first_k_with_barn_traffic():
    df = sv.heat_sweep(P4, ks=[20, 40, 56, 64, 100, 128], caps=[28, 40])
    c = sv.cliff(df).set_index("capacity")
    assert c.loc[28, "first K with barn traffic"] == 64 and c.loc[28, "last K without barn traffic"] == 56
    assert c.loc[40, "first K with barn traffic"] == 100
    assert (c["first K / capacity"] > 2).all() and (c["first K / capacity"] < 3).all()


def test_claims_table_evaluates_every_chapter_claim():
    p = SimpleNamespace(**{**vars(P4), "threads": 4})
    sweep = pd.DataFrame({"threads": [2, 16], "cache": ["default (28)", "default (28)"], "speed-up": [1.2, 3.5]})
    cl = sv.claims_table(p, sweep)
    assert set(cl.index) == {"default-capacity-26", "k32-no-difference", "k128-single", "k128-multithread",
                             "module-10pct"}
    assert cl.loc["default-capacity-26", "value"] == 28
    assert cl.loc["k128-multithread", "verdict"] == "reproduced at 16 threads"
    assert cl.loc["k32-no-difference", "verdict"] == "reproduced"  # both caches fit K = 32 in main + spare


def test_hidden_overhead_solves_for_the_stated_improvement():
    x = sv.hidden_overhead(42.0, 24.0, 10.0)
    assert sv.improvement(42.0 + x, 24.0 + x) == pytest.approx(10.0)


def test_io_split_and_queue_depth_sweep():
    st = sv.io_steady(P3)
    sp = sv.split(st)
    assert 0 < sp["free fast share"] < sp["alloc fast share"] <= 1
    pt = sv.path_table(st)
    assert pt["share of cycles"].sum() == pytest.approx(1.0)
    assert pt["cycles/IO"].sum() == pytest.approx(st.cycles_per_io)
    qd = sv.qd_sweep(P3, depths=(8, 256), orders=("fifo",)).set_index("queue depth")
    assert qd.loc[8, "free fast share"] == 1.0 and qd.loc[256, "free fast share"] < 0.5


def test_compare_caches_orders_the_thread_caches():
    cmp = sv.compare_caches(P3, gap=2000)
    assert list(cmp.index) == [label for label, _ in sv.IO_CACHES]
    assert cmp.iloc[0]["cycles per IO"] > cmp.iloc[1]["cycles per IO"]


def test_diagrams_and_charts_build():
    for ch in (sv.cpu_slab_diagram(42, 6, 5), sv.sheaves_diagram(28),
               sv.heat_chart(sv.heat_sweep(P4, ks=[8, 64], caps=[28]), "t")):
        assert ch.to_dict()["$schema"].startswith("https://vega.github.io/schema/vega-lite/")

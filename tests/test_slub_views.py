"""The analyses behind chapter 3 (allocsim.pages.slub; chapter 4's are in tests/test_sheaves_page.py): what they compute, checked against
the kernel facts and the models' own mechanics."""

from types import SimpleNamespace

import pytest

from allocsim.pages import params
from allocsim.pages import slub as sv

P3 = SimpleNamespace(**params.spec("cpuslab").defaults())


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
    for ch in (sv.cpu_slab_diagram(42, 6, 5),):
        assert ch.to_dict()["$schema"].startswith("https://vega.github.io/schema/vega-lite/")

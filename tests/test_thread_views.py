"""Chapter 1's tables, arithmetic and charts (allocsim.pages.thread), and the landing page's claims table."""

import pandas as pd
import pytest

from allocsim.analysis import claims as claims_check
from allocsim.facts import thread
from allocsim.kernel import pcpu_list
from allocsim.pages import thread as views


def _rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()[2:]]


def test_claims_table_links_each_claim_and_marks_missing_chapters_pending():
    c = thread.claims()
    md = views.claims_markdown(c)
    rows = _rows(md)
    assert len(rows) == len(c)
    links = views.chapter_links()
    for r, cells in zip(c.itertuples(), rows):
        assert cells[-1] == links[r.tested_in]
    fake = c.assign(tested_in="no-such-chapter")
    assert all(cells[-1] == "pending" for cells in _rows(views.claims_markdown(fake)))


def test_each_quote_is_shown_once():
    c = thread.claims()
    md = views.claims_markdown(c)
    for q in c["quote"].unique():
        assert md.count(f"“{q}”") == 1
    repeats = int((c["quote"] == c["quote"].shift()).sum())
    assert md.count("(the same message as above)") == repeats > 0


def test_status_column_shows_the_given_status_of_each_claim():
    c = thread.claims()
    st = {cid: claims_check.STATUSES[i % 3] for i, cid in enumerate(c["id"])}
    md = views.claims_markdown(c, base="chapters/", statuses=st)
    head = [h.strip() for h in md.splitlines()[0].strip("|").split("|")]
    assert head == ["claim", "who, when", "kernel", "value", "status", "quote", "tested in"]
    assert [cells[4] for cells in _rows(md)] == [st[i] for i in c["id"]]
    assert "chapters/" in md
    with pytest.raises(KeyError, match="no status for claim"):
        views.claims_markdown(c, statuses={})


def test_pending_sentence():
    assert views.pending_sentence(13, 0) == "There are 13 claims, and a chapter of this book tests each of them."
    assert "1 of them is still pending" in views.pending_sentence(13, 1)
    assert "2 of them are still pending" in views.pending_sentence(13, 2)


def test_gain_and_time_per_io():
    assert views.pct_gain(1.20, 1.17) == pytest.approx(2.564, abs=1e-3)
    assert views.ns_saved(1.20, 1.17) == pytest.approx(1e3 / 1.17 - 1e3 / 1.20)
    assert views.ns_saved(1.0, 1.0) == 0


def test_arithmetic_from_the_six_figures():
    a = views.arithmetic(3.0)
    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    assert a.r_619_pcpu == f["6.19", "per-CPU list"] and a.ns_per_io_120 == pytest.approx(1e3 / a.r_619_pcpu)
    assert a.gain_619_pcpu == pytest.approx(views.pct_gain(f["6.19", "per-CPU list"], f["6.19", "kmalloc"]))
    assert a.ns_70_pcpu == pytest.approx(1e3 / f["7.0-rc4", "kmalloc"] - 1e3 / f["7.0-rc4", "per-CPU list"])
    assert a.cyc_pcpu_vs_sheaf == pytest.approx(3.0 * a.ns_pcpu_vs_sheaf)
    assert a.half_step == pytest.approx(0.005) and a.clock == 3.0
    assert views.arithmetic(4.0).cyc_pcpu_vs_sheaf == pytest.approx(4.0 * a.ns_pcpu_vs_sheaf)


def test_patch_limits_come_from_the_model():
    lim = views.patch_limits()
    assert (lim.irq_threshold, lim.max_nr) == (pcpu_list.PCPU_CACHE_IRQ_THRESHOLD, pcpu_list.DIO_ALLOC_CACHE_MAX)


def test_comparisons_against_each_baseline():
    for base in ("kmalloc", "sheaf-256", "per-CPU list"):
        df = views.comparisons(base, 3.0)
        assert len(df) == 4 and (df["allocator"] != base).all()
        assert list(df["cycles saved per IO"]) == pytest.approx(list(3.0 * df["ns saved per IO"]))
    assert views.comparisons_table("kmalloc", 3.0).to_html()


def test_timeline_labels_are_names_and_never_cut():
    spec = views.timeline_chart().to_dict()
    enc = spec["encoding"] if "encoding" in spec else spec["layer"][0]["encoding"]
    assert enc["y"]["field"] == "name" and enc["y"]["axis"]["labelLimit"] == 0
    assert "role" in [t["field"] for t in enc["tooltip"]]


def test_iops_chart_builds():
    assert views.iops_chart().to_dict()["hconcat"]


def test_short_quote_is_a_verbatim_prefix():
    q = "I wrote a simple kernel modules to test the performance difference by creating a normal memcache"
    s = views.short_quote(q, 40)
    assert s.endswith(" …") and q.startswith(s[:-2]) and len(s) <= 42
    assert views.short_quote("short", 40) == "short"


def test_compact_table_for_the_landing_page():
    c = thread.claims()
    st = {cid: "partly" for cid in c["id"]}
    md = views.compact_claims_markdown(c, base="chapters/", statuses=st)
    rows = _rows(md)
    assert len(rows) == len(c) and all(cells[2] == "partly" for cells in rows)
    assert all(cells[3].startswith("{doc}") and "chapters/" in cells[3] for cells in rows)
    repeats = int((c["quote"] == c["quote"].shift()).sum())
    assert md.count("same message") == repeats
    assert max(len(line) for line in md.splitlines()) < 400  # compact: no full quotes

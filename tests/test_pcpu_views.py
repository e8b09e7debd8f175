"""Chapter 2's analysis helpers (allocsim.pages.pcpu), memory figures and the bypass table."""

import numpy as np
import pandas as pd
import pytest

from allocsim.workloads import adapter, iouring
from allocsim.pages import params
from allocsim.kernel import pcpu_list as pl
from allocsim.analysis import memory as mem
from allocsim.pages import pcpu as views
from allocsim.pages import costing
from allocsim.facts import costs as C
from allocsim.facts.errors import AllocsimError, DataError


@pytest.fixture(scope="module")
def P():
    return params.validate("pcpu", {"ios": 3072, "warmup": 1024})


def test_break_even_interpolates_the_crossing():
    df = pd.DataFrame({"share": [0.0, 0.5, 1.0], views.LIST: [10.0, 30.0, 50.0], views.KMALLOC: [40.0, 40.0, 40.0]})
    assert views.break_even(df) == pytest.approx(0.75)
    df[views.KMALLOC] = 60.0
    assert views.break_even(df) is None


def test_list_lengths_replay_ends_in_the_models_final_state():
    cfg = iouring.IOUring(ios=1000, irq_same_cpu_share=0.5, irq_same_llc_share=0.3, irq_other_llc_share=0.2, seed=3)
    prog = iouring.program(cfg)
    r = pl.run(prog)
    df = views.list_lengths(prog, r.event_path)
    state = r.extra["state"]
    assert (df["nr"].iloc[-1], df["nr_irq"].iloc[-1]) == (state.nr[0], state.nr_irq[0])
    assert df["nr"].min() >= 0 and df["nr_irq"].min() >= 0


def test_steady_scenarios(P):
    sc = views.scenarios(P)
    assert sc.loc[views.POLLED, "hit rate"] == 1.0 and sc.loc[views.POLLED, "splices per IO"] == 0
    assert sc.loc[views.IRQ, "splices per IO"] == pytest.approx(1 / 32)
    assert sc.loc[views.CROSS100, "hit rate"] == 0.0
    # a single hardware queue: every completion in BLOCK_SOFTIRQ (on the submitting CPU here), never cached
    assert sc.loc[views.SINGLEQ, "hit rate"] == 0.0 and sc.loc[views.SINGLEQ, "kfree (softirq) per IO"] == 1.0
    assert sc.loc[views.CROSS100, "cached after run, most on one CPU"] == P.max_nr
    # the list pays with polled and interrupt completions, not when every completion is elsewhere
    assert sc.loc[views.IRQ, "saved cycles per IO"] > 0 > sc.loc[views.CROSS100, "saved cycles per IO"]


def test_sweep_hit_rate_falls_with_interrupts_in_another_llc(P):
    # an interrupt in another LLC is sent back by IPI: BLOCK_SOFTIRQ on the submitter, which the list frees
    df = views.sweep(P, "irq_other_llc_share", [0.0, 0.5, 1.0])
    assert df["hit rate"].iloc[0] == 1.0 and df["hit rate"].iloc[-1] == 0.0
    assert df[views.LIST].is_monotonic_increasing
    be = views.break_even(df)
    assert be is not None and 0.0 < be < 1.0
    # the list is cheaper with no softirq completions and dearer with all of them: the crossing lies between
    assert df[views.LIST].iloc[0] < df[views.KMALLOC].iloc[0] and df[views.LIST].iloc[-1] > df[views.KMALLOC].iloc[-1]


def test_memory_from_layout_and_size_classes():
    m = mem.memory()
    assert (m["element_size"], m["header"], m["request"]) == (96, 8, 104)
    assert (m["kmalloc_cache"], m["plain_cache"]) == ("kmalloc-128", "kmalloc-96")
    assert m["per_cpu_bytes"] == 256 * 128 + 24
    assert mem.memory(max_nr=16)["per_cpu_bytes"] == 16 * 128 + 24
    assert m["slub_per_cpu_objects"] == 120  # 7.0: main + spare of kmalloc-96 (capacity 60)
    assert mem.memory(kernel="6.19")["slub_per_cpu_objects"] == 120  # 6.19: cpu_partial of kmalloc-96
    t = mem.memory_table(cpus=(1, 8))
    assert t["per-CPU list"].tolist() == [m["per_cpu_bytes"], 8 * m["per_cpu_bytes"]]
    with pytest.raises(AllocsimError, match="max_nr"):
        mem.memory(max_nr=0)
    with pytest.raises(AllocsimError, match="CPU counts"):
        mem.memory_table(cpus=(0,))


def test_bypass_table_every_cell_has_a_source():
    t = mem.bypass_table()
    assert len(t) >= 8
    assert {"CPU hotplug", "memcg accounting", "KASAN", "KFENCE", "Freelist hardening"} <= set(t.index)
    for col in t.columns:
        assert t[col].str.contains(r"\[.+\]$").all()
    assert list(mem.bypass_table(("slub",)).columns) == ["SLUB (kmalloc / sheaves)"]
    with pytest.raises(AllocsimError, match="column"):
        mem.bypass_table(("slab",))


def test_bypass_table_names_a_missing_source(tmp_path, monkeypatch):
    (tmp_path / "bypass.yaml").write_text(
        "source: x\nitems:\n  - {item: a, patch: p, patch_source: s, bio: b, bio_source: '', slub: c, slub_source: s}\n")
    monkeypatch.setattr("allocsim.facts.paths.DATA", tmp_path)
    with pytest.raises(DataError, match=r"^data/bypass.yaml, item 1 \(item 'a'\): field 'bio_source' is empty"):
        mem.bypass_table()


def test_chapter_spec_rejects_inconsistent_parameters():
    with pytest.raises(AllocsimError, match="add up to 1"):
        params.validate("pcpu", {"irq_other_llc_share": 0.5})
    with pytest.raises(AllocsimError, match="rq_affinity"):
        params.validate("pcpu", {"rq_affinity": 3})
    with pytest.raises(AllocsimError, match="threshold"):
        params.validate("pcpu", {"threshold": 300})
    with pytest.raises(AllocsimError, match="submit_batch"):
        params.validate("pcpu", {"queue_depth": 16})
    with pytest.raises(AllocsimError, match="kmalloc"):
        params.validate("pcpu", {"kmalloc": "slab"})


def test_charts_build(P):
    assert views.mechanism_chart(16, 256).to_dict()["layer"]
    df = views.sweep(P, "irq_same_llc_share", [0.0, 1.0])
    assert views.cached_chart(df, 256).to_dict()
    assert views.memory_chart(mem.memory_table(cpus=(1, 4)), 2).to_dict()
    assert views.sweep_chart(df, "x", "t", views.break_even(df)).to_dict()
    assert np.isfinite(df[views.LIST]).all()


def test_notes_follow_the_backend():
    standin = params.validate("pcpu", {"kmalloc": "standin"})
    slub = params.validate("pcpu", {"kmalloc": "slub", "kernel": "6.19"})
    a, f = pl.standin_charges()  # the 6.19 cpu slab's fast-path step sums, entry and hooks included
    note = views.backend_note(standin)
    assert "stand-in" in note and f"`kmalloc` {a:.0f} cycles and every `kfree` {f:.0f}" in note
    assert a == pytest.approx(sum(costing.slub_direction(costing.slub_facts("6.19", 128), "alloc").__dict__.values()))
    assert "SLUB model of 6.19" in views.backend_note(slub) and "kmalloc-128" in views.backend_note(slub)
    # the thread's 6.19 figures: 1.17M -> 1.20M IOPS is 21.4 ns per IO, 64 cycles at 3 GHz
    assert "50% of the 6.19 difference" in views.thread_note(standin, 32.05)
    assert "SLUB model of 6.19" in views.thread_note(slub, 32.05)
    no_figures = params.validate("pcpu", {"kmalloc": "slub", "kernel": "6.18"})
    assert "no IOPS figures for 6.18" in views.thread_note(no_figures, 10.0)


def test_workload_in_words_follows_the_parameters():
    cfg = iouring.IOUring()
    assert views.workload_words(cfg) == ("one submitter thread with 128 IOs in flight, submitted in batches of 32 "
                                         "and reaped in batches of 32, completed in submission order")
    assert views.completion_words(cfg).startswith("in the completion interrupt")
    assert views.topology_words(cfg) == ("every interrupt lands on the submitting CPU, on a device with one hardware "
                                         "queue per CPU and `rq_affinity` 1 (the default)")
    polled = iouring.IOUring(polled=True, submitters=4, completion_order="random")
    assert views.completion_words(polled).startswith("in the submitting task")
    assert views.topology_words(polled).startswith("the IO is polled")
    assert views.workload_words(polled).startswith("4 submitter threads") and "random order" in views.workload_words(polled)
    # the coupling: 50 % same CPU (hardirq there), 25 % same LLC (hardirq on that CPU), 25 % other LLC (softirq back home)
    mixed = iouring.IOUring(irq_same_cpu_share=0.5, irq_same_llc_share=0.25, irq_other_llc_share=0.25)
    text = views.completion_words(mixed)
    assert "75 % in the completion interrupt" in text and "25 % in the block softirq" in text
    assert text.endswith("25 % of them on another CPU than the submitter's")
    assert views.topology_words(mixed).startswith("the interrupts land 50 % on the submitting CPU, 25 % on another CPU")
    old = iouring.IOUring(placement="independent", hardirq_share=0.75, softirq_share=0.25, cross_cpu_share=0.5)
    assert views.completion_words(old).endswith("50 % of them on another CPU than the submitter's")
    assert "pre-v2" in views.topology_words(old)


def test_sections_agree_with_the_scenarios(P):
    sc = views.scenarios(P)
    st = views.steady_section(P, sc)
    assert st.irq_kmalloc == sc.loc[views.IRQ, "kmalloc cycles per IO"]
    assert st.irq_saved == pytest.approx(st.irq_kmalloc - st.irq_cyc)
    assert st.irq_saved_ns == pytest.approx(st.irq_saved / P.clock_ghz)
    assert st.irq_splice_per == pytest.approx(32)
    t = views.thread_saving(P, st.irq_saved)
    assert t.t_cyc70 == pytest.approx(t.t_ns70 * P.clock_ghz) and "7.0-rc4" in str(t.thread_note)
    w = views.workload_section(P, events=200)
    assert (w.d_qd, w.d_sb, w.d_cb) == (iouring.IOUring().queue_depth, iouring.IOUring().submit_batch,
                                        iouring.IOUring().complete_batch)
    assert str(w.t_opts) == "`t/io_uring -p0 -d128 -s32 -c32 -n1`" and w.base_gap > 0
    assert w.irq_first_splice > 0 and w._irq["path"].iloc[w.irq_first_splice] == "alloc_splice"
    m = views.memory_section(P)
    assert m.m_request == m.m_size + m.m_header and m.m_machine_mib == pytest.approx(P.ncpu * m.m_percpu_kib / 1024)
    assert list(views.struct_fields("iomap_dio")["bytes"])
    costs = views.path_costs(P)
    assert costs.c_splice > 0 and str(costs.kernel_v) == f"`{P.kernel}`"
    t = C.load()
    # every path runs per_cpu_ptr(..., get_cpu()) ... put_cpu(): four loads the code waits for and the preempt pair
    assert costs.c_get_cpu == 4 * t.cycles("l1_hit") + t.cycles("preempt_pair") == costs.c_preempt + 4 * costs.c_l1
    # a hit then reads free_list and the element's next word; a free reads the counts, max_nr and preempt_count()
    assert costs.c_hit == costs.c_get_cpu + 2 * costs.c_l1
    assert costs.c_free == costs.c_free_task == costs.c_get_cpu + 3 * costs.c_l1
    assert costs.c_splice == t.cycles("irq_save_restore") + 3 * costs.c_l1


def test_thread_kernel_labels():
    assert views.thread_kernel("7.0") == "7.0-rc4" and views.thread_kernel("6.19") == "6.19"
    assert views.thread_kernel("6.18") is None


def test_break_even_words():
    assert str(views.pct_or_none(0.314)) == "31%" and str(views.pct_or_none(None)) == "nowhere in the sweep"


def test_base_work_moves_7_0_kmalloc_to_the_iops_chapters_value(P):
    """With the book's base work the page's 7.0 kmalloc cost per IO is the one chapter 5 reports; without
    it, completions that interrupt the allocating task find the sheaves' trylock taken."""
    irq = views.SCENARIOS[views.IRQ]
    with_base = iouring.steady_state(views.kmalloc_model(P), adapter.io_uring(P, **irq))
    without = iouring.steady_state(views.kmalloc_model(P), adapter.io_uring(P, submit_gap=0, **irq))
    assert "free_bypass_trylock" not in {k for k, (n, _) in with_base.paths.items() if n}
    assert without.paths["free_bypass_trylock"][0] > 0
    assert with_base.cycles_per_io < without.cycles_per_io

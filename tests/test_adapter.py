"""The one mapping from chapter parameters to the io_uring workload (allocsim.workloads.adapter)."""

from dataclasses import fields
from types import SimpleNamespace

import pytest

from allocsim.facts import thread
from allocsim.facts.errors import AllocsimError
from allocsim.pages import params
from allocsim.workloads import adapter, iouring


def test_defaults_are_iourings_own():
    assert adapter.defaults() == iouring.IOUring()
    # a page that declares nothing gets t/io_uring's defaults, plus the base work of its clock
    cfg = adapter.io_uring(SimpleNamespace(clock_ghz=3.0))
    assert cfg == iouring.IOUring(submit_gap=adapter.base_work_cycles(3.0))


def test_base_work_is_the_threads_619_kmalloc_time_per_io():
    f = thread.iops_figures().set_index(["kernel", "allocator"])
    ns = 1e3 / f.loc[("6.19", "kmalloc"), "miops"]  # 1/IOPS, written out independently
    assert adapter.base_work_ns() == pytest.approx(ns)
    assert adapter.base_work_cycles(3.0) == round(ns * 3.0)
    assert adapter.base_work_cycles(1.0) == round(ns)
    with pytest.raises(AllocsimError, match="clock_ghz"):
        adapter.base_work_cycles(float("nan"))


@pytest.mark.parametrize("slug", ["pcpu", "cpuslab"])
def test_chapter_parameters_pass_through(slug):
    P = params.validate(slug, {"queue_depth": 64, "submit_batch": 16, "complete_batch": 8, "polled": True,
                               "nr_hw_queues": 1, "rq_affinity": 2, "irq_same_cpu_share": 0.5,
                               "irq_other_llc_share": 0.5, "completion_order": "random", "seed": 3})
    cfg = adapter.io_uring(P)
    for name in adapter.PARAMETERS:
        if hasattr(P, name):
            assert getattr(cfg, name) == getattr(P, name), name
        elif name == "llc_cpus" and getattr(P, "hierarchy", False):  # the memory hierarchy's LLCs
            assert cfg.llc_cpus == adapter.hierarchy_llc_cpus(True)
        else:  # not a chapter parameter (the pre-v2 placement): the workload's default
            assert getattr(cfg, name) == getattr(iouring.IOUring(), name), name
    assert cfg.submit_gap == adapter.base_work_cycles(P.clock_ghz)
    assert cfg.ncpu == 0  # never the chapter's machine size


def test_a_chapters_ncpu_is_not_the_workloads():
    P = SimpleNamespace(ncpu=64, irq_same_cpu_share=0.0, irq_same_llc_share=1.0, clock_ghz=3.0)
    assert adapter.io_uring(P).n_cpus == 2
    P = SimpleNamespace(ncpu=64, irq_same_cpu_share=0.0, irq_same_llc_share=0.5, irq_other_llc_share=0.5, clock_ghz=3.0)
    assert adapter.io_uring(P).n_cpus == 3


def test_with_the_hierarchy_on_the_llcs_are_the_hierarchys():
    """The hierarchy puts CPU c in LLC c // cpus_per_llc (data/kernel/cpu.yaml: 8): with it on, "another CPU of
    the LLC" is one of CPUs 1..7 and "another LLC" CPU 8; off, the automatic numbering (submitters plus one)."""
    from allocsim.facts import cpu as cpufacts

    per_llc = cpufacts.geometry().cpus_per_llc
    assert per_llc == 8 and adapter.hierarchy_llc_cpus(True) == per_llc and adapter.hierarchy_llc_cpus(False) == 0
    assert adapter.hierarchy_llc_cpus(cpufacts.geometry().with_(cpus_per_llc=4)) == 4
    base = dict(irq_same_cpu_share=0.0, irq_same_llc_share=0.5, irq_other_llc_share=0.5, rq_affinity=0, clock_ghz=3.0)
    on = adapter.io_uring(SimpleNamespace(hierarchy=True, **base))
    off = adapter.io_uring(SimpleNamespace(hierarchy=False, **base))
    assert (on.llc_cpus, on.n_cpus) == (per_llc, per_llc + 1) and (off.llc_cpus, off.n_cpus) == (0, 3)
    _, cpu = iouring.placement(on, 0)
    assert set(cpu.tolist()) == set(range(1, per_llc + 1))  # 1..7 in the LLC, 8 beyond it
    # a page that sets llc_cpus keeps it; the pre-v2 placement has no LLCs
    assert adapter.io_uring(SimpleNamespace(hierarchy=True, **base), llc_cpus=2).llc_cpus == 2
    old = adapter.io_uring(SimpleNamespace(hierarchy=True, clock_ghz=3.0), placement="independent")
    assert old.llc_cpus == 0
    with pytest.raises(AllocsimError, match="^hierarchy must be true, false or an allocsim.facts.cpu.Geometry, not 'on'$"):
        adapter.io_uring(SimpleNamespace(hierarchy="on", clock_ghz=3.0))


def test_overrides_and_base_work_switch():
    P = params.validate("pcpu", {})
    assert adapter.io_uring(P, submit_gap=7).submit_gap == 7
    assert adapter.io_uring(P, base_work=False).submit_gap == 0
    assert adapter.io_uring(P, queue_depth=32, submit_batch=8).queue_depth == 32
    with pytest.raises(AllocsimError, match="no field 'depth'"):
        adapter.io_uring(P, depth=3)
    with pytest.raises(AllocsimError, match="clock_ghz"):
        adapter.io_uring(SimpleNamespace(queue_depth=8))


def test_a_bad_combination_is_an_error_not_a_clamp():
    P = params.validate("pcpu", {})
    with pytest.raises(AllocsimError, match=r"submit_batch \(64\) must not exceed queue_depth \(32\)"):
        adapter.io_uring(P, queue_depth=32, submit_batch=64)
    with pytest.raises(AllocsimError, match="warmup"):
        adapter.io_uring(P, warmup=16)
    with pytest.raises(AllocsimError, match="ios"):
        adapter.io_uring(P, ios=P.warmup)
    # the chapter spec uses the same mapping, so the page rejects what the workload cannot run
    with pytest.raises(AllocsimError, match="submit_batch"):
        params.validate("cpuslab", {"queue_depth": 16})


def test_t_io_uring_options():
    assert adapter.t_io_uring(iouring.IOUring()) == "-p0 -d128 -s32 -c32 -n1"
    polled = iouring.IOUring(polled=True, submitters=2, queue_depth=64)
    assert adapter.t_io_uring(polled) == "-p1 -d64 -s32 -c32 -n2"
    old = iouring.IOUring(placement="independent", task_share=1.0, hardirq_share=0.0, submitters=2, queue_depth=64)
    assert adapter.t_io_uring(old) == "-p1 -d64 -s32 -c32 -n2"


def test_parameters_are_workload_fields():
    names = {f.name for f in fields(iouring.IOUring)}
    assert set(adapter.PARAMETERS) <= names and "ncpu" not in adapter.PARAMETERS

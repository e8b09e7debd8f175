"""The six configurations through the models (allocsim.analysis.runs): which model runs what, the one-parameter
calibration with its fixed point, determinism, the SLAB_ACCOUNT overlay, the sensitivity helpers, errors."""

import numpy as np
import pandas as pd
import pytest

from allocsim.facts import costs
from allocsim.analysis import iops
from allocsim.analysis import runs as R
from allocsim.kernel import pcpu_list
from allocsim.workloads import iouring
from allocsim.facts.errors import AllocsimError

SMALL = R.Setup(ios=6000)  # 4096 warm-up IOs + a short steady-state window: fast, and enough for every path


@pytest.fixture(scope="module")
def rep():
    return R.reproduce(SMALL, clock_ghz=3.0)


def test_each_configuration_runs_on_the_right_model():
    models = {c: R.run_config(c[0], c[1], SMALL, 2500).model for c in iops.CONFIGS}
    assert models[("6.19", "kmalloc")] == "6.19 cpu slab (kmalloc-96)"
    assert models[("6.19", "sheaf-256")] == "6.19 sheaves on cpu slab (cache-96, capacity 256)"
    assert models[("7.0", "kmalloc")] == "7.0 sheaves (kmalloc-96, capacity 60)"
    assert models[("7.0", "sheaf-256")] == "7.0 sheaves (cache-96, capacity 256)"
    # the per-CPU list falls back to kmalloc(96 + 8) = kmalloc-128 of the same kernel
    assert models[("6.19", "per-CPU list")].startswith("pcpu-list+6.19 cpu slab (kmalloc-128)")
    assert models[("7.0", "per-CPU list")].startswith("pcpu-list+7.0 sheaves (kmalloc-128")
    d = R.describe_config("7.0", "per-CPU list", SMALL)
    assert "kmalloc-128" in d["cache"] and str(pcpu_list.DIO_ALLOC_CACHE_MAX) in d["cache"]


def test_calibration_fits_exactly_one_parameter(rep):
    t, cal = rep.table, rep.calibration
    assert cal.n_params == 1
    # one shared base: predicted time minus allocator time is the same number for all six configurations
    base = t["predicted ns/IO"] - t["alloc ns/IO"]
    assert np.allclose(base, cal.base_ns, atol=1e-9)
    # the clock was given, not fitted; a least-squares fit of one constant leaves residuals summing to zero
    assert rep.clock_ghz == 3.0
    assert t["residual ns/IO"].sum() == pytest.approx(0, abs=1e-9)
    # the workload carried the fitted base (the fixed point), to a whole cycle
    assert abs(rep.base_cycles - cal.base_ns * 3.0) <= 1.0
    assert len(rep.iterations) >= 1


def test_calibration_on_one_figure_reproduces_it_exactly():
    r = R.reproduce(SMALL, 3.0, on="7.0 kmalloc")
    assert r.on == (("7.0", "kmalloc"),)
    row = r.row("7.0", "kmalloc")
    assert row["residual ns/IO"] == pytest.approx(0, abs=1e-9) and row["rounds to reported"]
    assert r.calibration.n_params == 1


def test_predictions_are_deterministic(rep):
    again = R.reproduce(SMALL, clock_ghz=3.0)
    pd.testing.assert_frame_equal(rep.table, again.table)
    assert rep.iterations == again.iterations
    for c in iops.CONFIGS:
        assert rep.runs[c].paths == again.runs[c].paths


def test_reported_figures_map_to_model_kernels():
    rm = R.reported_miops()
    assert set(rm.index) == set(iops.CONFIGS)
    assert rm[("7.0", "per-CPU list")] == 1.20 and rm[("6.19", "kmalloc")] == 1.17


def test_slab_account_charges_only_the_dedicated_cache():
    table = costs.load()
    plain = R.run_all(SMALL, 2500)
    acct = R.run_all(R.scenario(SMALL, slab_account=True), 2500)
    memcg = table.cycles("memcg_account")
    assert SMALL.hooks.memcg  # the distribution default: memcg_kmem_online() is on
    for c in iops.CONFIGS:
        if c[1] == "sheaf-256":
            # __memcg_slab_post_alloc_hook() on the allocation and __memcg_slab_free_hook() on the free of each
            # IO (memcg_account per direction), the paths otherwise unchanged
            assert acct[c].cycles_per_io == pytest.approx(plain[c].cycles_per_io + 2 * memcg, abs=0.5)
            assert "SLAB_ACCOUNT" in acct[c].model
        else:
            assert acct[c].cycles_per_io == plain[c].cycles_per_io
    assert "SLAB_ACCOUNT" in R.describe_config("7.0", "sheaf-256", R.scenario(SMALL, slab_account=True))["cache"]


def test_polled_and_interrupt_completions_differ_for_the_list():
    hard = R.run_config("7.0", "per-CPU list", SMALL, 2500)
    task = R.run_config("7.0", "per-CPU list", R.scenario(SMALL, polled=True), 2500)
    assert "free_irq" in hard.paths and hard.paths["free_irq"][0] > 0
    assert task.paths.get("free_irq", (0, 0))[0] == 0 and task.paths["free_task"][0] == task.ios
    soft = R.run_config("7.0", "per-CPU list", R.scenario(SMALL, irq_same_cpu_share=0.0, irq_other_llc_share=1.0), 2500)
    assert soft.paths["kfree_softirq"][0] == soft.ios  # the patch kfree()s every softirq completion


def test_workload_carries_the_base_cost():
    w = SMALL.workload(2500)
    assert (w.submit_gap, w.complete_gap) == (2500, 0)
    w = R.scenario(SMALL, irq_work_share=0.5).workload(2500)
    assert (w.submit_gap, w.complete_gap) == (1250, 1250)
    assert R.Setup(polled=True).workload(0).polled
    assert R.Setup(polled=True).completion_shares()["task"] == 1.0
    # the pre-v2 independent placement stays reachable, explicitly
    old = R.Setup(placement="independent", completion="task").workload(0)
    assert (old.placement, old.task_share) == ("independent", 1.0)
    assert R.Setup(submitters=4, queue_depth=64).t_io_uring() == "-p0 -d64 -s32 -c32 -n4"


def test_primitive_uses_add_up_and_count_what_the_list_executes():
    u = R.primitive_uses("7.0", "per-CPU list", SMALL, 2500)
    total = R.run_config("7.0", "per-CPU list", SMALL, 2500).cycles_per_io
    assert u["cycles per IO"].sum() == pytest.approx(total)
    by = u.set_index("primitive")["uses per IO"]
    assert by["preempt_pair"] == pytest.approx(2.0)  # get_cpu()/put_cpu() once per alloc and once per free
    # the list's hits skip SLUB's entry points and hooks: no call, no zeroing, no static key
    assert by["function_call"] == pytest.approx(0.0) and by["zero_line"] == pytest.approx(0.0)
    s = R.primitive_uses("7.0", "sheaf-256", SMALL, 2500).set_index("primitive")["uses per IO"]
    # local_trylock() ... local_unlock() is a preempt pair around the sheaf, once per alloc and once per free
    assert s["preempt_pair"] == pytest.approx(2.0, abs=0.05)
    # init_on_alloc (a distribution default) zeroes the 96-byte object: two 64-byte lines per allocation
    assert s["zero_line"] == pytest.approx(2.0, abs=0.05)
    # kmem_cache_alloc(), might_resched(), should_failslab(), memset() and kmem_cache_free(): five calls per IO
    assert s["function_call"] == pytest.approx(5.0, abs=0.1)


def test_tornado_and_extremes(rep):
    tor = R.tornado(SMALL, "7.0", "sheaf-256", rep.calibration.base_ns, 3.0)
    assert set(tor["key"]) == set(costs.KEYS)
    assert list(tor["swing"]) == sorted(tor["swing"], reverse=True)
    table = costs.load()
    fixed = [k for k in costs.KEYS if table.rows[k]["low"] == table.rows[k]["high"]]
    assert (tor.set_index("key").loc[fixed, "swing"] == 0).all()
    g0 = tor["gap at default"].iloc[0]
    assert g0 == pytest.approx(R.gap_ns(rep.runs, "7.0", "sheaf-256", 3.0), abs=0.05)
    ext = R.extreme_gap(SMALL, "7.0", "sheaf-256", rep.calibration.base_ns, 3.0, tor)
    assert ext["min"] <= tor[["gap at low", "gap at high"]].min().min() + 1e-9
    assert ext["max"] >= tor[["gap at low", "gap at high"]].max().max() - 1e-9


def test_predict_uses_the_given_base():
    p = R.predict(SMALL, 830.0, 3.0)
    assert np.allclose(p["predicted M IOPS"], 1e3 / (830.0 + p["alloc cycles/IO"] / 3.0))
    assert R.edge_pct(8.3, 830.0, 0.0) == pytest.approx(1.0)


@pytest.mark.parametrize("kw, message", [
    (dict(completion="nmi"), "completion must be one of 'hardirq', 'task', 'softirq', not 'nmi'"),
    (dict(completion="task"), "belongs to placement='independent'"),
    (dict(irq_same_cpu_share=0.4), "must add up to 1"),
    (dict(rq_affinity=7), "rq_affinity"),
    (dict(placement="random"), "placement must be one of"),
    (dict(object_size=4), "object_size must be an integer from 8 to"),
    (dict(sheaf_capacity=0), "sheaf_capacity must be an integer from 1 to 4096"),
    (dict(slab_account="yes"), "slab_account must be true or false"),
    (dict(irq_work_share=1.0), "irq_work_share must be a number from 0 to below 1"),
    (dict(cost_table="nope"), "cost_table must be one of 'default'"),
    (dict(submit_batch=256), "submit_batch \\(256\\) must not exceed queue_depth \\(128\\)"),
])
def test_bad_setup(kw, message):
    with pytest.raises(AllocsimError, match=message):
        R.Setup(**kw).validate()


def test_bad_arguments():
    with pytest.raises(AllocsimError, match="kernel must be one of '6.18', '6.19', '7.0', not '6.1'"):
        R.run_config("6.1", "kmalloc", SMALL, 0)
    with pytest.raises(AllocsimError, match="allocator must be one of"):
        R.model_fn("7.0", "slab", SMALL)
    with pytest.raises(AllocsimError, match="calibration target must be 'all' or one of"):
        R.parse_on("7.0 slab")
    with pytest.raises(AllocsimError, match="clock_ghz must be a number > 0"):
        R.reproduce(SMALL, clock_ghz=0)
    with pytest.raises(AllocsimError, match="base cost per IO must be >= 0"):
        SMALL.workload(-1)
    assert R.parse_on("all") == tuple(iops.CONFIGS)
    assert R.calibration_targets()[0] == "all" and len(R.calibration_targets()) == 7


def test_the_hierarchy_runs_every_model_at_the_reproduction_clock():
    """Setup.hierarchy runs the front end and SLUB with the memory hierarchy; the clock that turns cycles
    into IOPS is the one its nanosecond transfers are converted at (one clock per run)."""
    on = R.Setup(ios=6_000, hierarchy=True, irq_same_cpu_share=0.0, irq_other_llc_share=1.0, rq_affinity=0).validate()
    pair = [("6.19", "per-CPU list"), ("6.19", "kmalloc")]
    runs = R.run_all(on, 2000, configs=pair)
    off = R.run_all(R.scenario(on, hierarchy=False), 2000, configs=pair)
    # completions in another LLC (rq_affinity 0: where the interrupt lands): the objects' lines move between
    # the LLCs, which only the hierarchy charges
    for c in pair:
        assert runs[c].cycles_per_io > off[c].cycles_per_io, c
        assert runs[c].hierarchy["XLLC"] > 0 and runs[c].hierarchy["XSAME"] == 0 and off[c].hierarchy is None, c
    assert R.clocked(on, 2.0).clock_ghz == 2.0 and R.clocked(on, 3.0) is on
    slow = R.run_all(R.clocked(on, 2.0), 2000, configs=[("6.19", "kmalloc")])
    # the core-to-core transfers are nanoseconds: fewer cycles at a slower clock
    assert slow[("6.19", "kmalloc")].cycles_per_io < runs[("6.19", "kmalloc")].cycles_per_io
    with pytest.raises(AllocsimError, match="hierarchy must be true or false, not 'yes'"):
        R.Setup(hierarchy="yes").validate()


def test_with_the_hierarchy_the_workload_numbers_cpus_as_the_hierarchy_does():
    """issue 11: an interrupt in another LLC lands on CPU 8, which the hierarchy (8 CPUs per LLC) puts in LLC 1,
    so a completion there (rq_affinity 0) pays the cross-LLC latency on 6.19: do_slab_free() writes the free
    pointer inside the object the submitting CPU last wrote."""
    from allocsim.facts import cpu as cpufacts

    g = cpufacts.geometry(3.0)
    far = R.Setup(ios=6_000, hierarchy=True, irq_same_cpu_share=0.0, irq_other_llc_share=1.0, rq_affinity=0).validate()
    w = far.workload(0)
    assert w.llc_cpus == g.cpus_per_llc and w.n_cpus == g.cpus_per_llc + 1
    prog = iouring.program(w)
    frees = prog.op == iouring.FREE
    cpu_of = np.repeat(np.arange(prog.ncpu), np.diff(prog.start))
    assert set(cpu_of[frees].tolist()) == {g.cpus_per_llc}  # every free on CPU 8, LLC 1 of the hierarchy
    near = R.scenario(far, irq_other_llc_share=0.0, irq_same_llc_share=1.0)
    a = R.run_config("6.19", "kmalloc", far, 2000)
    b = R.run_config("6.19", "kmalloc", near, 2000)
    assert a.hierarchy["XLLC"] > 0 and a.hierarchy["XSAME"] == 0
    assert b.hierarchy["XSAME"] > 0 and b.hierarchy["XLLC"] == 0
    # the same accesses, only farther: each IO's transfers cost the cross-LLC latency instead of the same-LLC one
    assert a.hierarchy["XLLC"] == b.hierarchy["XSAME"]
    assert a.cycles_per_io > b.cycles_per_io + a.transfers_per_io * (g.lat_cross_llc - g.lat_same_llc) - 1e-9
    # off, the numbering is the automatic one (the submitter plus one CPU): the workload as before the hierarchy
    assert R.scenario(far, hierarchy=False).workload(0).n_cpus == 2

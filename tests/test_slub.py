"""The facade allocsim.kernel.slub.run: model choice, validation, results that add up, determinism, the
io_uring workload against the reference, and the invariants after whole runs."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.facts import costs
from allocsim.workloads import iouring
from allocsim.kernel import slub
from allocsim.workloads.microbench import microbench
from allocsim.facts.errors import AllocsimError
from slub_programs import both, random_program

PROG = microbench(2, 40, 3)


@pytest.mark.parametrize("kw, model, cap", [
    (dict(kernel="6.19"), "6.19 cpu slab (kmalloc-256)", 0),
    (dict(kernel="6.18.44"), "6.18 cpu slab (kmalloc-256)", 0),
    (dict(kernel="6.19", kmalloc=False, sheaf_capacity=256), "6.19 sheaves on cpu slab (cache-256, capacity 256)", 256),
    (dict(kernel="7.0-rc4"), "7.0 sheaves (kmalloc-256, capacity 28)", 28),
    (dict(kernel="7.0", object_size=96), "7.0 sheaves (kmalloc-96, capacity 60)", 60),
    (dict(kernel="7.0", kmalloc=False, sheaf_capacity=256), "7.0 sheaves (cache-256, capacity 256)", 256),
    (dict(kernel="7.0", kmalloc=False, sheaf_capacity=10), "7.0 sheaves (cache-256, capacity 28)", 28),  # max()
    (dict(kernel="7.0", slab_account=True), "7.0 sheaves (kmalloc-256, capacity 28, SLAB_ACCOUNT)", 28),
])
def test_model_choice_and_capacity(kw, model, cap):
    r = slub.run(PROG, **kw)
    assert r.model == model and r.extra["geometry"].sheaf_capacity == cap


@pytest.mark.parametrize("kw, words", [
    (dict(kernel="5.4"), "unknown kernel version"),
    (dict(object_size=0), "kmalloc size"),
    (dict(object_size=10_000), "KMALLOC_MAX_CACHE_SIZE"),
    (dict(sheaf_capacity=256), "needs kmalloc=False"),
    (dict(sheaf_capacity=-1, kmalloc=False), "sheaf_capacity must be an integer"),
    (dict(sheaf_capacity=1.5, kmalloc=False), "sheaf_capacity must be an integer"),
    (dict(kmalloc="yes"), "kmalloc must be True"),
    (dict(ncpu_present=1), "ncpu_present must be an integer from 2"),
    (dict(cpus_per_node=0), "cpus_per_node must be an integer from 1 to 2"),
    (dict(cpus_per_node=3), "cpus_per_node must be an integer from 1 to 2"),
    (dict(seed=-1), "seed must be an integer"),
    (dict(costs="default"), "costs must be an allocsim.facts.costs.CostTable"),
    (dict(gfp_nowait_fails=1), "gfp_nowait_fails must be True or False"),
    (dict(slab_account="no"), "slab_account must be True or False"),
])
def test_bad_arguments_give_one_sentence(kw, words):
    with pytest.raises(AllocsimError) as e:
        slub.run(PROG, **kw)
    msg = str(e.value)
    assert words in msg and "\n" not in msg and "Traceback" not in msg


def test_program_must_be_a_program():
    with pytest.raises(AllocsimError, match="allocsim.kernel.program.Program"):
        slub.run([[(0, 0, 0)]])


@pytest.mark.parametrize("kernel", ["6.19", "7.0"])
def test_results_add_up(kernel):
    r = slub.run(microbench(3, 100, 4, "random", seed=1), kernel=kernel)
    assert r.n_alloc == r.n_free == 1200
    assert sum(c for c, _ in r.paths.values()) == 2400
    assert sum(cy for _, cy in r.paths.values()) == pytest.approx(r.cycles)
    assert np.bincount(r.event_path, minlength=len(slub._st.PATHS)).sum() == 2400
    assert (r.event_path >= 0).all()
    # the busiest CPU's clock is at least its share of the cycles; lock waiting is part of the cycles
    assert r.clock.max() <= r.cycles + 1e-6
    assert r.lock_wait == pytest.approx(r.extra["list_lock_wait"] + r.extra["barn_lock_wait"])
    assert slub.audit(r)["allocated"] == 0


def test_same_parameters_same_numbers_and_the_seed_matters_only_for_interrupts():
    prog = iouring.program(iouring.IOUring(ios=3000))
    a, b = slub.run(prog, kernel="7.0", object_size=96), slub.run(prog, kernel="7.0", object_size=96)
    assert a.cycles == b.cycles and a.event_path.tolist() == b.event_path.tolist() and a.stats == b.stats
    draws = {slub.run(prog, kernel="7.0", object_size=96, seed=s).cycles for s in range(4)}
    assert len(draws) > 1  # the interrupt placement depends on the seed
    task = microbench(1, 64, 5)
    assert len({slub.run(task, kernel="7.0", seed=s).cycles for s in range(3)}) == 1  # no interrupts: no effect


def test_slab_account_adds_memcg_account_per_allocation_and_per_free():
    prog = microbench(1, 32, 5)
    plain, acct = slub.run(prog, kernel="7.0"), slub.run(prog, kernel="7.0", slab_account=True)
    assert acct.cycles - plain.cycles == pytest.approx(prog.n_events * costs.load().cycles("memcg_account"))
    # with the memcg switch off (no memory cgroup in use) accounting costs nothing
    off = dict(hooks={"memcg": False})
    assert slub.run(prog, kernel="7.0", slab_account=True, **off).cycles == slub.run(prog, kernel="7.0", **off).cycles


def test_costs_table_is_used():
    prog = microbench(1, 32, 5)
    base = slub.run(prog, kernel="6.19")
    dear = slub.run(prog, kernel="6.19", costs=costs.load().with_overrides(percpu_cmpxchg16b=100))
    n_fast = base.paths["alloc_fastpath"][0] + base.paths.get("free_fastpath", (0, 0))[0]
    assert dear.cycles - base.cycles == pytest.approx(n_fast * (100 - costs.load().cycles("percpu_cmpxchg16b")))


def test_lock_contention_grows_with_threads_on_one_barn():
    waits = [slub.run(microbench(n, 128, 20), kernel="7.0").extra["barn_lock_taken"] for n in (1, 4)]
    assert waits[1] > 4 * waits[0] * 0.9
    r = slub.run(microbench(4, 128, 20), kernel="7.0")
    assert r.extra["barn_lock_transfers"] > 0 and r.extra["barn_lock_wait"] > 0


@pytest.mark.parametrize("kw", [
    dict(kernel="6.19", object_size=96),
    dict(kernel="6.19", object_size=96, kmalloc=False, sheaf_capacity=256),
    dict(kernel="7.0", object_size=96),
    dict(kernel="7.0", object_size=96, kmalloc=False, sheaf_capacity=256),
])
def test_io_uring_workload_matches_the_reference(kw):
    cfg = iouring.IOUring(placement="independent", ios=1500, submitters=2, cross_cpu_share=0.3, hardirq_share=0.7, softirq_share=0.1,
                          task_share=0.2, completion_order="random", submit_gap=200)
    both(iouring.program(cfg), **kw)


def test_io_uring_steady_state_helper_accepts_slub_run():
    cfg = iouring.IOUring(ios=3000, warmup=1024)
    ss = iouring.steady_state(lambda p: slub.run(p, kernel="6.19", object_size=96), cfg)
    assert ss.ios > 0 and ss.cycles_per_io > 0 and "alloc_fastpath" in ss.paths


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 5), st.sampled_from(["6.19", "7.0"]),
       st.sampled_from([(96, True, None), (256, True, None), (256, False, 256), (1024, False, 20)]),
       st.sampled_from([None, 1, 2]))
def test_any_run_keeps_the_invariants_and_matches_the_reference(seed, ncpu, kernel, cache, per_node):
    size, kmalloc, cap = cache
    prog = random_program(seed, ncpu=ncpu, n=300, cross=0.4, irq=0.4, gap_max=30)
    per_node = None if per_node is None else min(per_node, ncpu)
    both(prog, kernel=kernel, object_size=size, kmalloc=kmalloc, sheaf_capacity=cap, cpus_per_node=per_node,
         seed=seed % 7)

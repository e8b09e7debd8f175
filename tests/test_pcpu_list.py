"""The per-CPU list model of the patch (allocsim.kernel.pcpu_list) and its pure-Python reference."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from allocsim.facts import costs
from allocsim.workloads import iouring
from allocsim.kernel import pcpu_list as pl
from allocsim.facts.errors import AllocsimError
from allocsim.kernel.oracle.pcpu_list import run_reference
from allocsim.kernel.result import Result
from allocsim.kernel.program import ALLOC, FREE, HARDIRQ, SOFTIRQ, TASK, from_lists

A, F = ALLOC, FREE
T, H, S = TASK, HARDIRQ, SOFTIRQ
P = {name: i for i, name in enumerate(pl.PATHS)}


def paths(result):
    return [pl.PATHS[p] for p in result.event_path]


def run(per_cpu, **kw):
    prog = from_lists(per_cpu)
    front, fb, state = pl.simulate(prog, **kw)
    return front, fb, state


# --- unit tests, one per path -------------------------------------------------------------------

def test_miss_then_hit_task_context():
    # alloc (empty cache: kmalloc), free in task context (task list), alloc again: a hit on the same element
    front, fb, state = run([[(A, T, 0), (F, T, 0), (A, T, 1), (F, T, 1)]])
    assert paths(front) == ["alloc_kmalloc", "free_task", "alloc_hit", "free_task"]
    assert state.slot_obj.tolist() == [0, 0]  # slot 1 got the element slot 0 had
    assert state.free_list == [[0]] and state.nr.tolist() == [1] and state.nr_irq.tolist() == [0]
    assert front.stats["alloc_kmalloc"] == 1 and front.stats["alloc_hit"] == 1
    # the backend sees exactly one kmalloc and no kfree
    assert fb.op.tolist() == [A] and fb.n_slots == 1


def test_lifo_order():
    ev = [(A, T, s) for s in range(3)] + [(F, T, 0), (F, T, 1), (F, T, 2)] + [(A, T, s) for s in range(3, 6)]
    front, _, state = run([ev])
    # freed 0,1,2 (elements 0,1,2): the last freed comes back first
    assert state.slot_obj[3:].tolist() == [2, 1, 0]


def test_hardirq_frees_go_to_irq_list_and_splice_at_threshold():
    threshold = 4
    ev = [(A, T, s) for s in range(4)] + [(F, H, s) for s in range(4)] + [(A, T, 4), (A, T, 5)]
    front, _, state = run([ev], threshold=threshold, max_nr=8)
    p = paths(front)
    assert p[4:8] == ["free_irq"] * 4
    assert p[8] == "alloc_splice" and p[9] == "alloc_hit"
    assert front.stats["alloc_splice"] == 1 and front.stats["splice_objects"] == 4
    # the splice keeps the IRQ list's order: the last one freed in hardirq is allocated first
    assert state.slot_obj[4:].tolist() == [3, 2]
    assert state.nr.tolist() == [2] and state.nr_irq.tolist() == [0] and state.free_list == [[0, 1]]


def test_below_threshold_falls_back_to_kmalloc_and_keeps_irq_list():
    ev = [(A, T, s) for s in range(3)] + [(F, H, s) for s in range(3)] + [(A, T, 3)]
    front, fb, state = run([ev], threshold=4, max_nr=8)
    assert paths(front)[-1] == "alloc_kmalloc"
    assert state.nr_irq.tolist() == [3] and state.free_list_irq == [[0, 1, 2]]
    assert fb.op.tolist() == [A, A, A, A]


def test_task_list_used_before_splice():
    # one object on the task list, many on the IRQ list: allocation takes the task list first
    ev = [(A, T, s) for s in range(6)] + [(F, H, s) for s in range(5)] + [(F, T, 5), (A, T, 6), (A, T, 7)]
    front, _, state = run([ev], threshold=4, max_nr=16)
    assert paths(front)[-2:] == ["alloc_hit", "alloc_splice"]
    assert state.slot_obj[6] == 5 and state.slot_obj[7] == 4


def test_kfree_on_full_counts_both_lists():
    # max_nr 3: two frees in task context, one in hardirq, the fourth (any context) goes to kfree
    ev = [(A, T, s) for s in range(5)] + [(F, T, 0), (F, T, 1), (F, H, 2), (F, H, 3), (F, T, 4)]
    front, fb, state = run([ev], threshold=1, max_nr=3)
    assert paths(front)[5:] == ["free_task", "free_task", "free_irq", "kfree_full", "kfree_full"]
    assert state.cached().tolist() == [3]
    assert front.stats["kfree_full"] == 2
    assert fb.op.tolist() == [A] * 5 + [F, F] and fb.slot[-2:].tolist() == [3, 4]


def test_kfree_on_softirq_and_full_check_comes_first():
    ev = [(A, T, 0), (A, T, 1), (F, S, 0), (F, T, 1), (A, T, 2), (F, S, 2)]
    front, fb, state = run([ev], threshold=1, max_nr=1)
    # slot 0 in softirq: kfree; slot 1 in task: cached (now full); slot 2 reuses it; its softirq free
    # finds the list empty again, so it is a softirq kfree (not full)
    assert paths(front) == ["alloc_kmalloc", "alloc_kmalloc", "kfree_softirq", "free_task", "alloc_hit", "kfree_softirq"]
    front, _, _ = run([[(A, T, 0), (A, T, 1), (F, T, 0), (F, S, 1)]], threshold=1, max_nr=1)
    assert paths(front)[-1] == "kfree_full"  # nr + nr_irq >= max_nr is tested before the context


def test_cross_cpu_free_fills_the_completing_cpus_list():
    # CPU 0 allocates, CPU 1 frees in hardirq: CPU 0's list stays empty, CPU 1's fills
    front, fb, state = run([[(A, T, s) for s in range(4)] + [(A, T, 4)], [(F, H, s) for s in range(4)]],
                           threshold=2, max_nr=3)
    p = paths(front)
    assert p[:5] == ["alloc_kmalloc"] * 5
    assert p[5:] == ["free_irq"] * 3 + ["kfree_full"]
    assert state.nr_irq.tolist() == [0, 3]
    # the kfree of CPU 1 is in CPU 1's fallback program and frees an element CPU 0 got from kmalloc
    assert fb.ncpu == 2 and fb.op[fb.start[1]:].tolist() == [F]


def test_costs_per_path_are_the_sum_of_their_steps():
    t = costs.load()
    pc = dict(zip(pl.PATHS, pl.path_costs(t)))
    pre, l1, irq = t.cycles("preempt_pair"), t.cycles("l1_hit"), t.cycles("irq_save_restore")
    # per_cpu_ptr(dio_pcpu_cache_list->cache, get_cpu()): four loads and the preempt pair
    get_cpu = pre + 4 * l1
    assert pc["alloc_hit"] == get_cpu + 2 * l1                       # free_list, element->next
    assert pc["alloc_splice"] == get_cpu + 5 * l1 + irq              # free_list, nr_irq, free_list_irq, again, next
    assert pc["alloc_kmalloc"] == get_cpu + 2 * l1                   # free_list, nr_irq
    assert pc["kfree_full"] == get_cpu + 2 * l1                      # the counts, max_nr
    assert pc["kfree_softirq"] == pc["free_task"] == pc["free_irq"] == get_cpu + 3 * l1  # and preempt_count()
    # and a cheaper table changes the result accordingly
    front, _, _ = run([[(A, T, 0), (F, T, 0), (A, T, 1)]], costs=t.with_overrides(l1_hit=0, preempt_pair=0))
    assert front.cycles == 0


def test_total_cycles_and_clock():
    ev = [(A, T, 0, 100), (F, T, 0, 50), (A, T, 1, 10)]
    front, fb, _ = run([ev])
    pc = dict(zip(pl.PATHS, pl.path_costs()))
    assert front.cycles == pc["alloc_kmalloc"] + pc["free_task"] + pc["alloc_hit"]
    assert front.clock[0] == 160 + front.cycles
    assert fb.gap.tolist() == [100]  # the kmalloc happened after 100 cycles of gap


def test_fallback_gaps_are_front_end_time_between_calls():
    ev = [(A, T, 0, 10), (A, T, 1, 20), (F, S, 0, 30), (F, S, 1, 40)]
    front, fb, _ = run([ev])
    pc = dict(zip(pl.PATHS, pl.path_costs()))
    k, f = pc["alloc_kmalloc"], pc["kfree_softirq"]
    assert fb.gap.tolist() == [10, k + 20, k + 30, f + 40]
    assert fb.slot.tolist() == [0, 1, 0, 1] and fb.ctx.tolist() == [T, T, S, S]


# --- run(): backends ----------------------------------------------------------------------------

def test_run_combines_with_the_standin_backend():
    prog = from_lists([[(A, T, 0), (F, S, 0), (A, T, 1), (F, T, 1)]])
    r = pl.run(prog, kmalloc="standin")
    c_alloc, c_free = pl.standin_charges()
    front = r.extra["front"]
    assert r.model == "pcpu-list+kmalloc-standin"
    assert r.cycles == front.cycles + 2 * c_alloc + c_free  # 2 kmalloc + 1 kfree
    assert r.paths["kmalloc-standin:kmalloc"] == (2, 2 * c_alloc)
    assert r.paths["kmalloc-standin:kfree"] == (1, c_free)
    assert r.n_alloc == 2 and r.n_free == 2
    assert np.array_equal(r.event_path, front.event_path)


def test_run_with_a_custom_backend():
    seen = []

    def backend(prog):
        seen.append(prog)
        return Result(model="null", n_alloc=0, n_free=0, cycles=1000.0, clock=np.zeros(prog.ncpu))

    r = pl.run(from_lists([[(A, T, 0), (F, T, 0)]]), backend=backend)
    assert r.model == "pcpu-list+null" and r.cycles == r.extra["front"].cycles + 1000.0
    assert seen and seen[0].n_events == 1


def test_kmalloc_only_baseline():
    prog = iouring.program(iouring.IOUring(ios=320))
    r = pl.kmalloc_only(prog, kmalloc="standin")
    c_alloc, c_free = pl.standin_charges()
    assert r.cycles == 320 * (c_alloc + c_free)


def test_slub_backend_is_reported_clearly_when_missing():
    try:
        import allocsim.kernel.slub  # noqa: F401
    except ImportError:
        with pytest.raises(AllocsimError, match="SLUB models"):
            pl.run(from_lists([[(A, T, 0)]]), kmalloc="slub")
    else:
        r = pl.run(from_lists([[(A, T, 0), (F, S, 0)]]), kmalloc="slub")
        assert r.extra["backend"].n_alloc == 1


@pytest.mark.parametrize("kw, word", [
    (dict(threshold=0), "threshold"),
    (dict(threshold=-3), "threshold"),
    (dict(max_nr=0), "max_nr"),
    (dict(threshold=300, max_nr=256), "must not exceed max_nr"),
    (dict(threshold=2.5), "threshold"),
    (dict(kmalloc="slab"), "kmalloc must be one of"),
    (dict(backend=42), "backend must be a callable"),
    (dict(backend=pl.kmalloc_standin, kmalloc="standin"), "not both"),
])
def test_invalid_parameters(kw, word):
    with pytest.raises(AllocsimError, match=word):
        pl.run(from_lists([[(A, T, 0), (F, T, 0)]]), **kw)


def test_unknown_context_and_bad_program():
    prog = from_lists([[(A, T, 0), (F, T, 0)]])
    bad = type(prog)(prog.start, prog.op, np.array([0, 7], np.int8), prog.slot, prog.gap, prog.n_slots)
    with pytest.raises(AllocsimError, match="ctx"):
        pl.run(bad)
    with pytest.raises(AllocsimError, match="Program"):
        pl.run([[(A, T, 0)]])
    # a CPU that frees its own slot before allocating it can never run
    with pytest.raises(AllocsimError, match="deadlock"):
        pl.run(from_lists([[(F, T, 0), (A, T, 0)]]))


# --- the io_uring workload: the scenarios of the chapter ----------------------------------------

def test_polled_io_always_hits_after_warmup():
    ss = iouring.steady_state(pl.run, iouring.IOUring(polled=True, ios=2048, warmup=512))
    assert ss.stats["alloc_hit"] == ss.ios and ss.stats["alloc_kmalloc"] == 0


def test_hardirq_completions_splice_once_per_batch():
    ss = iouring.steady_state(pl.run, iouring.IOUring(ios=2048, warmup=512))
    assert ss.stats["alloc_kmalloc"] == 0
    assert ss.stats["alloc_splice"] == ss.ios // 32


def test_softirq_completions_all_miss():
    ss = iouring.steady_state(pl.run, iouring.IOUring(irq_same_cpu_share=0.0, irq_other_llc_share=1.0, ios=2048, warmup=512))
    assert ss.stats["alloc_kmalloc"] == ss.ios and ss.stats["kfree_softirq"] == ss.ios


def test_cross_cpu_completion_cpu_fills_to_max_then_overflows():
    cfg = iouring.IOUring(placement="independent", cross_cpu_share=1.0, ios=4096, warmup=1024)
    r = pl.run(iouring.program(cfg))
    state = r.extra["state"]
    assert state.cached().tolist() == [0, 256]  # the submitter's list never refills; CPU 1 is full
    assert r.stats["kfree_full"] == 4096 - 256
    ss = iouring.steady_state(pl.run, cfg)
    assert ss.stats["alloc_kmalloc"] == ss.ios and ss.stats["kfree_full"] == ss.ios


# --- invariants on random programs ----------------------------------------------------------------

@st.composite
def programs(draw, max_cpus=3, max_steps=120):
    """A random valid program: a global sequence of actions (alloc a new slot on some CPU, or free a
    live slot on some CPU in some context), split per CPU. The global order is a valid schedule, so
    the program never deadlocks."""
    ncpu = draw(st.integers(1, max_cpus))
    steps = draw(st.integers(0, max_steps))
    per_cpu = [[] for _ in range(ncpu)]
    live = []
    n = 0
    for _ in range(steps):
        cpu = draw(st.integers(0, ncpu - 1))
        gap = draw(st.sampled_from([0, 0, 3, 50]))
        if live and draw(st.booleans()):
            s = live.pop(draw(st.integers(0, len(live) - 1)))
            per_cpu[cpu].append((F, draw(st.sampled_from([T, T, H, H, S])), s, gap))
        else:
            per_cpu[cpu].append((A, T, n, gap))
            live.append(n)
            n += 1
    return from_lists(per_cpu, n_slots=max(n, 1))


def check_invariants(prog, threshold, max_nr):
    front, fb, state = pl.simulate(prog, threshold=threshold, max_nr=max_nr)
    allocated = np.isin(np.arange(prog.n_slots), prog.slot[prog.op == A])
    freed = np.isin(np.arange(prog.n_slots), prog.slot[prog.op == F])
    live_slots = np.flatnonzero(allocated & ~freed)
    live_elems = state.slot_obj[live_slots]
    # no object handed out twice: live slots hold distinct elements, none of them cached or kfreed
    assert len(np.unique(live_elems)) == len(live_elems)
    assert np.all(state.where[live_elems] == pl.W_LIVE)
    # none lost: every element from kmalloc is live, cached on exactly one list, or returned to kmalloc
    cached = [e for c in range(prog.ncpu) for e in state.free_list[c] + state.free_list_irq[c]]
    assert len(cached) == len(set(cached))
    assert not set(cached) & set(live_elems.tolist())
    kfreed = int((state.where == pl.W_KFREED).sum())
    assert state.n_elements == len(live_elems) + len(cached) + kfreed
    assert kfreed == front.stats["kfree_full"] + front.stats["kfree_softirq"]
    assert state.n_elements == front.stats["alloc_kmalloc"]
    for c in range(prog.ncpu):
        assert state.nr[c] == len(state.free_list[c]) and state.nr_irq[c] == len(state.free_list_irq[c])
        assert state.nr[c] + state.nr_irq[c] <= max_nr
        for e in state.free_list[c]:
            assert state.where[e] == pl.W_TASK and state.where_cpu[e] == c
        for e in state.free_list_irq[c]:
            assert state.where[e] == pl.W_IRQ and state.where_cpu[e] == c
    # the backend program: the same elements, each kmalloc'ed once and kfreed at most once
    fb.validate()
    assert (fb.op == A).sum() == state.n_elements and (fb.op == F).sum() == kfreed
    return front, fb, state


@settings(max_examples=150, deadline=None)
@given(prog=programs(), threshold=st.integers(1, 6), extra=st.integers(0, 6))
def test_property_invariants(prog, threshold, extra):
    check_invariants(prog, threshold, threshold + extra)


def assert_same(prog, threshold, max_nr):
    front, fb, state = pl.simulate(prog, threshold=threshold, max_nr=max_nr)
    ref = run_reference(prog, threshold=threshold, max_nr=max_nr)
    assert [pl.PATHS[p] for p in front.event_path] == ref["event_path"]
    assert front.stats == ref["stats"]
    assert front.paths == ref["paths"]  # same charges added in the same order: exactly equal
    assert front.cycles == pytest.approx(ref["cycles"], rel=1e-12)
    assert front.clock.tolist() == ref["clock"]
    assert state.n_elements == ref["n_elements"]
    assert state.slot_obj[np.isin(np.arange(prog.n_slots), prog.slot[prog.op == A])].tolist() == \
        [ref["slot_obj"][s] for s in range(prog.n_slots) if s in ref["slot_obj"]]
    for c in range(prog.ncpu):
        assert state.free_list[c] == ref["caches"][c].free_list
        assert state.free_list_irq[c] == ref["caches"][c].free_list_irq
    for a, b in zip(fb.arrays()[:5], ref["fallback"].arrays()[:5]):
        assert np.array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(prog=programs(), threshold=st.integers(1, 6), extra=st.integers(0, 6))
def test_numba_matches_reference_on_random_programs(prog, threshold, extra):
    assert_same(prog, threshold, threshold + extra)


@pytest.mark.parametrize("cfg", [
    iouring.IOUring(ios=3000),
    iouring.IOUring(placement="independent", ios=3000, task_share=0.3, hardirq_share=0.4, softirq_share=0.3, completion_order="random", seed=2),
    iouring.IOUring(placement="independent", submitters=2, ncpu=3, ios=1500, cross_cpu_share=0.4, complete_gap=40, submit_gap=100, seed=4),
])
def test_numba_matches_reference_on_io_uring(cfg):
    assert_same(iouring.program(cfg), 16, 256)
    assert_same(iouring.program(cfg), 4, 40)


@settings(max_examples=60, deadline=None)
@given(prog=programs(max_steps=30), field=st.sampled_from(["op", "ctx", "slot", "gap"]), i=st.integers(0, 100),
       value=st.integers(-2, 40))
def test_fast_program_check_agrees_with_validate(prog, field, i, value):
    """check_program (the jitted check the model runs) rejects exactly what Program.validate rejects."""
    arrays = {k: getattr(prog, k).copy() for k in ("op", "ctx", "slot", "gap")}
    if prog.n_events:
        arrays[field][i % prog.n_events] = value
    bad = type(prog)(prog.start, arrays["op"], arrays["ctx"], arrays["slot"], arrays["gap"], prog.n_slots)
    try:
        bad.validate()
        valid = True
    except AllocsimError:
        valid = False
    if valid:
        assert pl.check_program(bad) is bad
    else:
        with pytest.raises(AllocsimError):
            pl.check_program(bad)


def test_determinism():
    prog = iouring.program(iouring.IOUring(placement="independent", ios=2000, softirq_share=0.4, hardirq_share=0.6, cross_cpu_share=0.2, seed=9))
    a, b = pl.run(prog), pl.run(prog)
    assert a.cycles == b.cycles and np.array_equal(a.event_path, b.event_path) and a.stats == b.stats


def test_combine_adds_the_backends_hierarchy_counters():
    """The per-CPU list's result counts the memory accesses of its front end and of its kmalloc backend."""
    from allocsim.workloads.iouring import IOUring, program as iouring_program

    prog = iouring_program(IOUring(ios=600, warmup=128, irq_same_cpu_share=0.5, irq_same_llc_share=0.5, llc_cpus=2))
    r = pl.run(prog, kernel="6.19", hierarchy=True)
    front, back = r.extra["front"].extra["hierarchy"], r.extra["backend"].extra["hierarchy"]
    assert front.shape == back.shape and (r.extra["hierarchy"] == front + back).all()
    off = pl.run(prog, kernel="6.19")
    assert off.extra["hierarchy"] is None
    standin = pl.run(prog, kmalloc="standin", hierarchy=True)  # the stand-in has no hierarchy: the front end's
    assert (standin.extra["hierarchy"] == standin.extra["front"].extra["hierarchy"]).all()

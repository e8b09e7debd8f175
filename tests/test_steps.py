"""Cost model v2: the step file, the hook switches, and what the models charge from them."""

import math

import numpy as np
import pytest

from allocsim.facts import costs, datafile, paths, steps
from allocsim.facts.errors import AllocsimError, DataError
from allocsim.kernel import pcpu_list, slub
from allocsim.kernel.oracle import pcpu_list as opcpu
from allocsim.kernel.oracle import slub as oslub
from allocsim.workloads.microbench import microbench

T = costs.load()


def test_every_step_charges_a_cited_row_of_the_default_table():
    book = steps.load()
    assert book.keys() <= set(T.rows)
    for k in book.keys():
        assert T.rows[k]["source"].strip()


def test_local_trylock_by_hand():
    # s->cpu_sheaves, this_cpu_off, tl->acquired: three L1 loads; one preempt pair; the two stores are free
    f = steps.Facts()
    assert steps.load().cycles("local_trylock", T, f) == 3 * T.cycles("l1_hit") + T.cycles("preempt_pair")


def test_slab_alloc_hooks_by_hand_with_switches():
    book, c = steps.load(), T.cycles
    off = steps.Facts(hooks=steps.Hooks.off(), object_size=128)
    # gfp_allowed_mask (load) + should_failslab (call); every static key costs 0
    assert book.cycles("slab_alloc_hooks", T, off) == c("l1_hit") + c("function_call")
    on = steps.Facts(hooks=steps.Hooks.of({"init_on_alloc": True, "preempt_voluntary": False, "memcg": False}),
                     object_size=128)
    # init_on_alloc adds s->ctor/flags, the memset call and two 64-byte lines of a 128-byte object
    assert book.cycles("slab_alloc_hooks", T, on) == 2 * c("l1_hit") + 2 * c("function_call") + 2 * c("zero_line")
    acct = steps.Facts(hooks=steps.Hooks.of({"memcg": True}), object_size=100, account=True)
    plain = steps.Facts(hooks=steps.Hooks.of({"memcg": True}), object_size=100)
    assert book.cycles("slab_alloc_hooks", T, acct) - book.cycles("slab_alloc_hooks", T, plain) == pytest.approx(c("memcg_account"))


def test_object_lines_round_up():
    assert steps.Facts(object_size=64).object_lines == 1
    assert steps.Facts(object_size=65).object_lines == 2


def test_v1_step_file_reproduces_the_pre_v2_charges():
    v1, t1 = steps.load("v1"), costs.load("v1")
    f = steps.Facts(hooks=steps.Hooks.off(), sheaves=True)
    # v1: a sheaf hit was a call, local_trylock_pair and one L1 access; the cpu slab one whole-call half pair
    assert (v1.cycles("kmalloc_entry", t1, f) + v1.cycles("local_trylock", t1, f) + v1.cycles("pcs_alloc", t1, f)
            == 5 + 3 + 4)
    assert v1.cycles("cpu_slab_alloc", t1, f) == 21
    pc = dict(zip(pcpu_list.PATHS, pcpu_list.path_costs(t1, "off", "v1")))
    assert pc == {"alloc_hit": 9, "alloc_splice": 46, "alloc_kmalloc": 5, "free_task": 9, "free_irq": 9,
                  "kfree_full": 5, "kfree_softirq": 5}


def test_the_v2_table_cannot_cost_the_v1_steps():
    with pytest.raises(DataError, match="no row 'local_trylock_pair'"):
        steps.load("v1").cycles("local_trylock", T, steps.Facts())


@pytest.mark.parametrize("value, message", [
    ("nope", "hooks must be 'default', 'off'"),
    ({"memcgg": True}, "unknown hook switch 'memcgg'"),
    ({"memcg": float("nan")}, "hook switch memcg must be true or false"),
    (3, "hooks must be"),
])
def test_bad_hooks(value, message):
    with pytest.raises(AllocsimError, match=message):
        steps.Hooks.of(value)


def test_unknown_step_file():
    with pytest.raises(AllocsimError, match="unknown step file 'v9'"):
        steps.load("v9")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("cost: preempt_pair}", "cost: preempt_pairs}", 1), "field 'cost' is 'preempt_pairs'"),
    (lambda s: s.replace("when: kfence_sampling}", "when: kfence}", 1), "field 'when' is 'kfence'"),
    (lambda s: s.replace("{include: pcpu_get_cpu}", "{include: pcpu_get_cpus}", 1), "names 'pcpu_get_cpus', which is not a segment"),
    (lambda s: s.replace("kind: load, cost: l1_hit, line: global}", "kind: load, cost: l1_hit}", 1), "field 'line' is missing"),
    (lambda s: s.replace("n: object_lines", "n: -1", 1), "field 'n' is -1"),
    (lambda s: s.replace("kind: call", "kind: jump", 1), "field 'kind' is 'jump'"),
    (lambda s: s + "  loop:\n    what: x\n    steps:\n      - {include: loop}\n", "includes itself"),
    (lambda s: s.replace("segments:", "segmentz:", 1), "must be a mapping with a non-empty 'segments'"),
])
def test_malformed_step_file(tmp_path, monkeypatch, edit, message):
    (tmp_path / "kernel").mkdir()
    for name in ("hooks.yaml",):
        (tmp_path / "kernel" / name).write_text((paths.DATA / "kernel" / name).read_text())
    (tmp_path / "kernel" / "steps-bad.yaml").write_text(edit((paths.DATA / "kernel" / "steps.yaml").read_text()))
    (tmp_path / "costs.csv").write_text((paths.DATA / "costs.csv").read_text())
    monkeypatch.setattr(paths, "DATA", tmp_path)
    datafile.clear_cache()
    try:
        with pytest.raises(DataError, match=message):
            steps.load("bad")
    finally:
        monkeypatch.undo()
        datafile.clear_cache()


def test_hooks_file_must_name_every_switch(tmp_path, monkeypatch):
    (tmp_path / "kernel").mkdir()
    text = (paths.DATA / "kernel" / "hooks.yaml").read_text().replace("  alloc_tagging:", "  alloc_taggin:")
    (tmp_path / "kernel" / "hooks.yaml").write_text(text)
    monkeypatch.setattr(paths, "DATA", tmp_path)
    datafile.clear_cache()
    try:
        with pytest.raises(DataError, match="must name exactly"):
            steps.switches()
    finally:
        monkeypatch.undo()
        datafile.clear_cache()


# ---- the models charge the sums, and the oracles (their own reading of the YAML) agree

@pytest.mark.parametrize("kernel, kmalloc, cap", [("6.19", True, None), ("6.19", False, 32), ("7.0", True, None)])
def test_hot_pair_charges_the_step_sums(kernel, kmalloc, cap):
    p = microbench(threads=1, k=1, rounds=500)
    r = slub.run(p, kernel=kernel, object_size=96, kmalloc=kmalloc, sheaf_capacity=cap)
    cfg = slub.configure(p, kernel, 96, cap, kmalloc)
    v = dict(zip(steps.SLUB_SEGMENTS, steps.slub_vector(T, steps.load(), slub.facts_of(cfg))))
    if cfg.sheaves:
        alloc = v["alloc_entry"] + v["local_trylock"] + v["pcs_alloc"]
        free = v["free_entry"] + v["pcs_free_check"] + v["local_trylock"] + v["pcs_free"]
        a, f = r.paths["alloc_sheaf"], r.paths["free_sheaf"]
    else:
        alloc, free = v["alloc_entry"] + v["cpu_slab_alloc"], v["free_entry"] + v["cpu_slab_free"]
        a, f = r.paths["alloc_fastpath"], r.paths["free_fastpath"]
    assert a[1] == pytest.approx(a[0] * alloc) and f[1] == pytest.approx(f[0] * free)


HOOKS = [None, "off", {"kfence_sampling": True, "alloc_tagging": True, "init_on_free": True, "memcg": True}]


@pytest.mark.parametrize("hooks", HOOKS, ids=["default", "off", "all-on"])
@pytest.mark.parametrize("kernel, kmalloc, cap, account", [("6.19", True, None, False), ("6.19", False, 16, True),
                                                           ("7.0", True, None, False), ("7.0", False, 40, True)])
def test_models_agree_with_the_oracle_under_every_switch(hooks, kernel, kmalloc, cap, account):
    p = microbench(threads=2, k=40, rounds=6, free_order="random", seed=3)
    h = steps.Hooks.of(hooks)
    r = slub.run(p, kernel=kernel, object_size=200, kmalloc=kmalloc, sheaf_capacity=cap, slab_account=account, hooks=h)
    o = oslub.run(p, kernel=kernel, object_size=200, kmalloc=kmalloc, sheaf_capacity=cap, slab_account=account,
                  hooks=vars(h) if hasattr(h, "__dict__") else None)
    assert r.cycles == pytest.approx(o.cycles)


def test_models_agree_with_the_oracle_on_the_v1_steps():
    p = microbench(threads=2, k=40, rounds=6)
    t1 = costs.load("v1")
    for kernel in ("6.19", "7.0"):
        r = slub.run(p, kernel=kernel, object_size=200, costs=t1, steps="v1", hooks="off", slab_account=True)
        o = oslub.run(p, kernel=kernel, object_size=200, costs=t1, steps="v1", slab_account=True,
                      hooks={k: False for k in steps.switches()})
        assert r.cycles == pytest.approx(o.cycles)


@pytest.mark.parametrize("hooks", HOOKS, ids=["default", "off", "all-on"])
def test_pcpu_path_costs_agree_with_the_oracle(hooks):
    h = steps.Hooks.of(hooks)
    ours = dict(zip(pcpu_list.PATHS, pcpu_list.path_costs(T, h)))
    theirs = opcpu.charges(None, vars(h))
    assert ours == pytest.approx(theirs)


def test_v2_hot_paths_by_hand():
    """The io_uring hot paths of cost model v2 worked out by hand from data/costs.csv (function_call 5,
    l1_hit 4, preempt_pair 11, percpu_cmpxchg16b 9, zero_line 8, static keys 0) and the distribution-default
    switches (memcg on, init_on_alloc on, voluntary preemption; KFENCE sampling, alloc tagging, init_on_free
    off), for kmalloc-96 (two 64-byte lines zeroed)."""
    assert (T.cycles("function_call"), T.cycles("l1_hit"), T.cycles("preempt_pair"), T.cycles("percpu_cmpxchg16b"),
            T.cycles("zero_line"), T.cycles("static_key")) == (5, 4, 11, 9, 8, 0)
    v = dict(zip(steps.SLUB_SEGMENTS, steps.slub_vector(T, steps.load(), steps.Facts(object_size=96, sheaves=True))))
    # kmalloc: call 5 + kmalloc_caches 4; hooks: gfp_allowed_mask 4, might_resched call 5 + preempt count 4,
    # should_failslab 5, s->ctor 4, memset call 5 + 2 lines 16, s->flags for memcg 4: 9 + 47 = 56
    assert v["alloc_entry"] == 56
    # kfree: call 5, vmemmap_base 4, the struct page line 4; kfence_free's pool compare 4: 17
    assert v["free_entry"] == 17
    # local_trylock: s->cpu_sheaves 4, this_cpu_off 4, preempt pair 11, tl->acquired 4: 23
    assert (v["local_trylock"], v["pcs_alloc"], v["pcs_free"], v["pcs_free_check"]) == (23, 8, 4, 4)
    # 6.19 cpu slab: s line 4, this_cpu_off 4, c line 4, free pointer 4, cmpxchg16b 9 = 25; free without the
    # object load: 21
    assert (v["cpu_slab_alloc"], v["cpu_slab_free"]) == (25, 21)
    # so a 7.0 kmalloc+kfree pair is 56 + 23 + 8 + 17 + 4 + 23 + 4 = 135, a 6.19 one 56 + 25 + 17 + 21 = 119
    assert v["alloc_entry"] + v["local_trylock"] + v["pcs_alloc"] + v["free_entry"] + v["pcs_free_check"] \
        + v["local_trylock"] + v["pcs_free"] == 135
    pc = dict(zip(pcpu_list.PATHS, pcpu_list.path_costs(T)))
    # the list: global 4, ->cache 4, cpu_number 4, __per_cpu_offset 4, preempt pair 11 = 27; a pop reads
    # free_list 4 and element->next 4 (35); a hardirq push reads the counts 4, max_nr 4, preempt_count 4 (39)
    assert (pc["alloc_hit"], pc["free_irq"], pc["free_task"]) == (35, 39, 39)

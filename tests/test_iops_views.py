"""Chapter 5's page module (allocsim.pages.iops): tables, charts, command lines and the clauses it glues."""

from dataclasses import replace

import pandas as pd
import pytest

from allocsim.analysis import comparison as cmp
from allocsim.analysis import runs as R
from allocsim.pages import iops as views
from allocsim.facts import steps as steps_mod


@pytest.fixture(scope="module")
def rep():
    return R.reproduce(R.Setup(ios=6000), clock_ghz=3.0)


def test_command_lines_follow_the_setup():
    d = views.t_io_uring_block(R.Setup())
    assert "t/io_uring -p0 -d128 -s32 -c32" in d and "-n1 " in d and d.startswith("```bash")
    c = R.Setup(polled=True, submitters=4, queue_depth=64, submit_batch=16, complete_batch=8)
    t, f = views.t_io_uring_block(c), views.fio_block(c)
    assert "-p1 -d64 -s16 -c8" in t and "-n4 " in t
    assert "--iodepth=64" in f and "--iodepth_batch_submit=16" in f and "--iodepth_batch_complete_min=8" in f
    assert "--hipri=1" in f and "--numjobs=4" in f
    assert "--hipri=0" in views.fio_block(R.Setup())


def test_prediction_table_is_narrow(rep):
    t = views.prediction_table(rep)
    assert len(t.columns) <= 8 and len(t) == 6
    assert set(views.PREDICTION_FORMATS) <= set(t.columns)
    assert t["configuration"].str.contains("7.0-rc4").sum() == 3
    assert (t["rounds to it"] == "yes").sum() == int(rep.table["rounds to reported"].sum())
    # the verdict and the ns to the interval's edge agree: inside ⇔ a non-negative margin (|z| <= 1)
    assert ((t["rounds to it"] == "yes") == (t["to the edge (ns)"] >= -1e-9)).all()
    assert ((t["z"].abs() <= 1 + 1e-9) == (t["rounds to it"] == "yes")).all()


def _table(pred, fig=(1.20, 1.17, 1.19, 1.20, 1.19, 1.19)):
    """A synthetic fit table: predictions ``pred`` against figures ``fig`` (M IOPS)."""
    import numpy as np

    from allocsim.analysis import iops

    p, f = np.asarray(pred, float), np.asarray(fig, float)
    z = iops.half_interval_z(p, f)
    return pd.DataFrame({"kernel": [k for k, _ in iops.CONFIGS], "allocator": [a for _, a in iops.CONFIGS],
                         "predicted M IOPS": p, "reported M IOPS": f, "z": z, "edge ns/IO": iops.edge_margin_ns(p, f),
                         "rounds to reported": iops.inside(z)})


def test_knife_words_branches():
    # the example: 1.19488M against 1.20M misses by 0.08 ns per IO (0.25 cycles at 3 GHz)
    w = views.knife_words(_table([1.19488, 1.17, 1.19, 1.20, 1.19, 1.19]), 3.0)
    assert w.startswith("6.19 · per-CPU list misses 1.20M by 0.08 ns per IO (0.25 cycles): that verdict says nothing")
    two = views.knife_words(_table([1.19488, 1.17, 1.19, 1.2049, 1.19, 1.19]), 3.0)
    assert "7.0-rc4 · per-CPU list rounds to 1.20M with 0.07 ns per IO to spare" in two and "those verdicts say" in two
    none = views.knife_words(_table([1.20, 1.17, 1.19, 1.20, 1.19, 1.192]), 3.0)
    assert none.startswith("No verdict is that close to an edge: the nearest, 7.0-rc4 · sheaf-256, is 2.11 ns")  # 1000/1.192 − 1000/1.195 = 2.106


def test_miss_words_branches(rep):
    f = cmp.fit(rep)
    assert views.miss_words(replace(f, missed=())) == "Every prediction rounds to the reported figure."
    only_pcpu = views.miss_words(replace(f, missed=(("6.19", "per-CPU list", 1.19, 1.20, 3.5),)))
    assert only_pcpu.startswith("The per-CPU list is predicted slower")
    ahead = views.miss_words(replace(f, missed=(("7.0", "per-CPU list", 1.21, 1.20, -6.2),)))
    assert ahead.startswith("The per-CPU list is predicted faster") and "skip the entry points and slab hooks" in ahead
    other = views.miss_words(replace(f, missed=(("7.0", "kmalloc", 1.18, 1.19, 4.2), ("6.19", "sheaf-256", 1.2, 1.19, -2.0))))
    assert "7.0-rc4 kmalloc is predicted 4.2 ns per IO slower" in other and "6.19 sheaf-256 is predicted 2.0 ns per IO faster" in other


def test_mechanism_and_barn_words(rep):
    assert "local_trylock()" in views.mechanism_words("7.0", "kmalloc")
    assert "local_trylock()" in views.mechanism_words("6.19", "sheaf-256")
    assert "cmpxchg16b" in views.mechanism_words("6.19", "kmalloc")
    assert views.barn_sentence(rep, "7.0", "per-CPU list") == ""  # the list has no sheaf paths
    assert views.barn_sentence(rep, "6.19", "kmalloc") == ""  # neither has 6.19's kmalloc
    s = views.barn_sentence(rep, "7.0", "sheaf-256")
    assert s.startswith("In the steady state") or s.startswith("Beyond the fast path")
    uses = R.primitive_uses("7.0", "sheaf-256", rep.setup, rep.base_cycles)
    uses = pd.concat([uses, R.primitive_uses("7.0", "per-CPU list", rep.setup, rep.base_cycles)], ignore_index=True)
    assert views.mechanism_sentence(uses, "sheaf-256", 3.0).startswith("The largest differences per IO, sheaf-256")
    assert views.mechanism_sentence(uses[uses["allocator"] == "sheaf-256"], "sheaf-256", 3.0) == ""


def test_mechanism_uses_take_the_hierarchy_s_charge_out_of_the_remainder(rep):
    """With the hierarchy on, `memory` is the remainder's change against the same runs with it off; the rest of
    the remainder is the flat runs' own; the total per allocator is still the run's cycles per IO."""
    assert rep.setup.hierarchy is True
    u = views.mechanism_uses("7.0", "sheaf-256", rep.setup, rep.base_cycles)
    flat = views.mechanism_uses("7.0", "sheaf-256", replace(rep.setup, hierarchy=False), rep.base_cycles)
    assert "memory" not in set(flat["primitive"]) and "memory" in set(u["primitive"])
    for a in ("per-CPU list", "sheaf-256"):
        mine, off = u[u["allocator"] == a], flat[flat["allocator"] == a]
        assert mine["cycles per IO"].sum() == pytest.approx(rep.runs[("7.0", a)].cycles_per_io)
        other = lambda f: float(f.loc[f["primitive"] == "other", "cycles per IO"].iloc[0])  # noqa: E731
        assert other(mine) == pytest.approx(other(off))
        # every load the flat runs charge as l1_hit hits L1 here: the hierarchy charges the same cycles
        l1 = float(off.loc[off["primitive"] == "l1_hit", "cycles per IO"].iloc[0])
        assert float(mine.loc[mine["primitive"] == "memory", "cycles per IO"].iloc[0]) == pytest.approx(l1)
    assert views.MECHANISM["memory"].startswith("loads and stores")


def test_glue_hierarchy_words_follow_the_switch(rep, monkeypatch):
    got = _collect(monkeypatch)
    views.glue_hierarchy(rep)
    assert "switch on" in got["hier_words"].data and "hits L1" in got["hier_words"].data
    assert got["hier_leftout"].data.startswith("(cache lines outside L1")
    off = R.reproduce(replace(rep.setup, hierarchy=False), clock_ghz=3.0)
    views.glue_hierarchy(off)
    assert "switch off" in got["hier_words"].data and "`l1_hit`" in got["hier_words"].data
    assert got["hier_leftout"].data.startswith("and cache lines that are not in L1")
    assert views.l1_words(100.0, 0.0).startswith("every one of them hits L1")
    assert views.l1_words(99.0, 0.25).startswith("at least 99.0 % of them hit L1 (at most 0.250 per IO")


def test_edges_table_and_gains_display(rep):
    sc = cmp.scenarios(rep)
    e = views.edges_table(sc)
    assert list(e["scenario"]) == [label for label, _ in cmp.SCENARIOS.values()]
    assert {"6.19 kmalloc", "7.0-rc4 sheaf-256"} <= set(e.columns)
    g = views.gains_display(cmp.gains_table(rep, {"patch-gain": "partly"}))
    assert "key" not in g.columns and g["gain"].str.contains("7.0-rc4").any()


def test_expected_counters_and_claims_table(rep):
    text = views.expected_counters_words(rep)
    assert "kmalloc-128" in text and "| counter |" in text
    assert "`alloc_fastpath`" in views.counters_words() and "`barn_put_fail`" in views.counters_words()
    checks = pd.DataFrame([{"quantity": "q", "kernel": "7.0", "claimed": "1", "modelled": "1", "status": "partly",
                            "how": "h", "note": ""}])
    assert views.claims_table(checks)["status"].iloc[0] == "partly"


def test_charts_build(rep):
    loo, _ = cmp.leave_one_out(rep, rerun=False)
    nf, _ = cmp.noise(rep, "7.0", "sheaf-256", 0.005)
    from allocsim.analysis import agreement, iops

    a = agreement.evaluate(rep.table, loo, draws=2000)
    charts = [views.cycles_chart(rep), views.z_chart(rep, loo), views.loo_chart(loo),
              views.loo_perfect_chart(agreement.loo_distribution(rep.table["reported M IOPS"], draws=2000), a),
              views.clock_chart(cmp.clock_profile(rep, clocks=[2.5, 3.0]), 3.0, 1.9), views.noise_chart(nf, 0.005),
              views.paths_chart(R.paths_frame(rep.runs, 3.0), "7.0", "sheaf-256")]
    for ch in charts:
        assert ch.to_dict()["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert views.label("7.0", "kmalloc") == "7.0-rc4 kmalloc" and views.label("6.19") == "6.19"


def _collect(monkeypatch):
    """Replace myst-nb's glue by a dict, for the page module and for glue_fields."""
    import allocsim.pages.glue as G

    got = {}
    fake = lambda key, value, display=False: got.__setitem__(key, value)  # noqa: E731
    monkeypatch.setattr(G, "glue", fake)
    monkeypatch.setattr(views, "glue", fake)
    return got


def _keys_used(chapter: str) -> set:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "chapters" / chapter).read_text()
    keys = set(re.findall(r"\{glue:(?:text|md)\}`([^`:]+)", text)) | set(re.findall(r"```\{glue:figure\} (\S+)", text))
    return {k for k in keys if "::" not in k}


def test_every_key_chapter_5_pastes_is_glued_by_the_page_module(rep, monkeypatch):
    """The glue_* functions, run as the chapter runs them, glue every key the chapter's prose pastes."""
    from allocsim.analysis import claims as C

    got = _collect(monkeypatch)
    s = views.glue_setting(rep.setup)
    views.glue_switches(rep.setup)
    views.glue_costs(rep, s)
    views.glue_hierarchy(rep)
    views.glue_hot_paths(rep)
    got["fig_cycles"] = None
    views.glue_fit(rep)
    views.glue_agreement(rep)
    views.glue_clock(rep)
    views.glue_loo(rep)
    checks = C.evaluate(rep, micro=C.MicroSetup(rounds=(5, 10)))
    gains = views.glue_gains(rep, dict(zip(checks["id"], checks["status"])))
    gap = views.glue_gap(rep, "7.0", "sheaf-256")
    noise = views.glue_noise(rep, "7.0", "sheaf-256", 0.005, 0)
    sens = views.glue_sensitivity(rep, "7.0", "sheaf-256")
    sc = views.glue_scenarios(rep, "7.0")
    views.glue_slab_account(rep, "all")
    views.glue_switch_sensitivity(rep, "all")
    views.glue_verdict(rep, "7.0", "sheaf-256", sc, gains, noise, sens, gap)
    views.glue_experiment(rep, noise)
    views.glue_claims(checks, rep)
    missing = _keys_used("05-iops.md") - set(got)
    assert not missing, f"chapter 5 pastes keys nothing glues: {sorted(missing)}"
    assert got["loo_rerun"].data.startswith("changes no configuration")
    assert got["patch_status"].data in ("reproduced", "partly reproduced", "not reproduced")


def test_the_agreement_sections_keys_are_glued(rep, monkeypatch):
    """Every key the fit, 'How close is close?' and leave-one-out sections paste is glued by their
    glue_* calls (checked on its own, so a failure further down the chapter does not hide it)."""
    import re
    from pathlib import Path

    from allocsim.analysis import agreement

    text = (Path(__file__).resolve().parents[1] / "chapters" / "05-iops.md").read_text()
    part = text[text.index("## From cycles to IOPS"):text.index("## The patch's gain")]
    used = set(re.findall(r"\{glue:(?:text|md)\}`([^`:]+)", part)) | set(re.findall(r"```\{glue:figure\} (\S+)", part))
    got = _collect(monkeypatch)
    views.glue_setting(rep.setup)  # submitters_words
    views.glue_fit(rep)
    a = views.glue_agreement(rep)
    views.glue_clock(rep)
    views.glue_loo(rep)
    assert not used - set(got), sorted(used - set(got))
    assert isinstance(a, agreement.Agreement) and got["loo_ok"] == a.loo_ok and got["loo_n"] == a.loo_n
    # the clauses are plain text (the landing page pastes them with {glue:text} from another document)
    for k in ("rms_words", "loo_words", "knife_words", "knife_count_words", "loo_knife_words"):
        assert type(got[k]) is str and "`" not in got[k]
    assert got["rms_noise"] == pytest.approx(a.rms_perfect_med)


def test_every_cost_row_has_a_mechanism():
    from allocsim.facts import costs

    assert set(costs.KEYS) <= set(views.MECHANISM)


def test_switch_parameters_become_the_setups_hooks():
    from allocsim.facts import steps
    from allocsim.pages.costing import escape as costing_escape
    from allocsim.pages import params

    P = params.validate("iops", {})
    assert views.setup_of(P).hooks == steps.Hooks.default()
    assert views.switches_words(steps.Hooks.default()) == "This page runs every switch at its distribution default."
    P = params.validate("iops", {"init_on_alloc": False, "kfence_sampling": True})
    s = views.setup_of(P)
    assert s.hooks == replace(steps.Hooks.default(), init_on_alloc=False, kfence_sampling=True)
    assert views.switches_words(s.hooks) == ("This page changes `init_on_alloc` to off, `kfence_sampling` to on from "
                                             "the distribution defaults.")
    t = views.switches_table(s.hooks).set_index("switch")
    assert list(t.index) == [costing_escape(k) for k in steps.switches()]
    assert t.loc["init\\_on\\_alloc", "this page (default)"] == "off (on)" and t.loc["memcg", "this page (default)"] == "on (on)"
    from allocsim.pages import costing

    assert t.loc["memcg", "what it changes; the default's source"].endswith(
        "*Default:* " + costing.escape(steps.switches()["memcg"]["source"]))


def test_hot_paths_are_what_the_runs_charge_per_call(rep):
    """The side-by-side step sums are what the models charge a fast-path call: a list hit, a sheaf hit."""
    t, h = views.hot_paths(rep)
    lst, sheaf = rep.runs[("7.0", "per-CPU list")], rep.runs[("7.0", "sheaf-256")]
    per_call = lambda r, p: r.paths[p][1] / r.paths[p][0]  # noqa: E731
    d = views.costing.hot_path_directions(rep.setup)
    assert per_call(lst, "alloc_hit") == pytest.approx(d["per-CPU list (hit)"]["alloc"].total)
    assert per_call(lst, "free_irq") == pytest.approx(d["per-CPU list (hit)"]["free"].total)
    assert per_call(sheaf, "alloc_sheaf") == pytest.approx(d["sheaf-256 (sheaf)"]["alloc"].total)
    assert per_call(sheaf, "free_sheaf") == pytest.approx(d["sheaf-256 (sheaf)"]["free"].total)
    k619 = rep.runs[("6.19", "kmalloc")]
    assert per_call(k619, "alloc_fastpath") == pytest.approx(d["6.19 kmalloc (cpu slab)"]["alloc"].total)
    assert per_call(k619, "free_fastpath") == pytest.approx(d["6.19 kmalloc (cpu slab)"]["free"].total)
    # the list skips the entry points and hooks; its total row is its own steps
    assert t.set_index("step sum").loc["**alloc + free**", "per-CPU list (hit)"] == h.hp_list == h.hp_own_list
    assert h.hp_skip == pytest.approx(h.hp_sheaf - h.hp_own_sheaf) and h.hp_skip > 0
    assert h.hp_own_word == ("more" if h.hp_own_list > h.hp_own_sheaf else "fewer")


def test_iops_claims_and_switch_words(rep):
    checks = pd.DataFrame({"id": [f"iops-{i}" for i in range(6)] + ["patch-gain"],
                           "status": ["reproduced"] * 6 + ["partly"]})
    assert views.iops_claims_words(checks, rep) == "Of the six IOPS figures, 6 are reproduced, 0 partly and 0 not."
    checks.loc[:5, "status"] = ["partly"] * 5 + ["reproduced"]
    w = views.iops_claims_words(checks, rep)
    assert w.startswith("Of the six IOPS figures, 1 are reproduced, 5 partly and 0 not.")
    assert "skip the entry points and slab hooks" in w and f"{rep.predicted_miops('7.0', 'per-CPU list'):.3f}M" in w
    s = views.SwitchSensitivity("`init_on_alloc` off", 5.0, 3.0, 7.0, 7.5, 800, 805, 19.0, 15.0, 25.0, "`memcg`", 4.0)
    assert views.switch_words(s).startswith("The reported figures sit closer to the flipped setting")
    assert views.switch_words(replace(s, sw_rms_flip=6.0)) == "The reported figures sit closer to this page's setting."
    assert views.switch_words(replace(s, sw_rms_flip=5.01)).startswith("The reported figures do not tell")


def test_switch_sensitivity_flips_init_on_alloc(rep):
    t, s = views.switch_sensitivity(rep)
    assert str(s.sw_flip) == "`init_on_alloc` off" and len(t) == 6
    # zeroing is the memset call, the s->ctor/s->flags load and two 64-byte lines of the 96-byte object
    from allocsim.facts import costs

    c = costs.load()
    assert s.sw_zero_cycles == pytest.approx(c.cycles("function_call") + c.cycles("l1_hit") + 2 * c.cycles("zero_line"), abs=0.5)
    assert s.sw_edge_flip < s.sw_edge_page  # the list's hits skip the zeroing, so removing it narrows its edge
    eff = views.switch_effects(rep.setup)
    assert list(eff) == sorted(eff, reverse=True) and set(eff.index) == set(steps_mod.switches())
    assert eff["init_on_alloc"] == pytest.approx(s.sw_zero_cycles, abs=0.5)  # the step sums' zeroing is what the runs charged
    assert str(s.sw_largest) == f"`{eff.index[0]}`" and s.sw_largest_cycles == eff.iloc[0]

"""Chapter 6 ("How sure is the verdict?") executes with a small sweep, pastes its numbers from the sweep, and
rejects bad parameters with one sentence before any kernel starts."""

import json

import nbformat
import pytest

from allocsim.book import runner as book
from allocsim.facts.errors import AllocsimError
from test_iops_chapter import _glued


def test_chapter_executes_with_a_small_sweep(tmp_path):
    values = {"samples": 2, "ios": 4224, "workers": 1, "seed": 3}
    path, reused = book.execute("uncertainty", values, out=tmp_path / "06-uncertainty.ipynb", force=True)
    assert not reused
    nb = nbformat.read(str(path), as_version=4)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    g = _glued(nb)
    assert g["n_base"] == "2" and g["n_runs"] == str(2 * (int(g["n_inputs"]) + 2))
    for k in ("p_all_six", "p_half", "p_step", "gain_med", "sob_top_st", "sob_max_ci"):
        assert k in g
    assert "0.01M step with probability" in g["verdict"]
    assert g["hier_note"].startswith("This sweep runs the models with the memory hierarchy on")
    text = json.dumps(nb)
    assert "Which costs the answer depends on" in text and "4 changed" in text


@pytest.mark.parametrize("pairs, message", [
    ([("samples", "0")], "parameter samples must be an integer from 2 to 65536, not 0"),
    ([("samples", "48")], "parameter samples must be a power of two \\(Sobol' base samples\\), not 48"),
    ([("ios", "100")], "parameter ios must be an integer from 4160 to 200000, not 100"),
])
def test_bad_parameters_are_one_sentence(pairs, message):
    with pytest.raises(AllocsimError, match=message):
        book.parse_overrides("uncertainty", pairs)


# --- the chapter's sections (allocsim.pages.uncertainty), on small inputs ---------------------------------

import pandas as pd  # noqa: E402

from allocsim.analysis import runs  # noqa: E402
from allocsim.analysis import uncertainty as unc  # noqa: E402
from allocsim.pages import uncertainty as views  # noqa: E402
from allocsim.pages.glue import Md  # noqa: E402


def test_inputs_section_counts_the_cost_table():
    study = unc.Study(samples=4)
    u = study.uncertainty()
    s = views.inputs(study, u)
    assert s.n_inputs == len(u.factors) and s.n_base == 4 and s.n_runs == 4 * (len(u.factors) + 2)
    assert s.n_fixed == sum(d.fixed for d in u.dists.values())
    assert isinstance(s.tri_rows, Md) and isinstance(s.groups, Md)
    assert views.inputs(study) == s


def test_tri_and_groups_words():
    assert views.tri_words([]) == "No row is"
    assert views.tri_words(["l1_hit"]) == "1 row is (`l1_hit`)"
    assert views.tri_words(["a", "b"]) == "2 rows are (`a`, `b`)"
    f = [unc.Factor("solo", ("x",)), unc.Factor("pair", ("a", "b"))]
    assert views.groups_words(f) == "The one group is `pair` (`a`, `b`)."
    assert views.groups_words(f + [unc.Factor("two", ("c", "d"))]) == "The groups are `pair` (`a`, `b`); `two` (`c`, `d`)."
    assert views.groups_words(f[:1]) == "No rows are grouped."


def test_engine_words():
    assert views.engine_words(True, "dask", 3.0) == "a sweep already on disk (the same inputs), reused"
    assert views.engine_words(False, "2 local Dask workers", 12.345) == "2 local Dask workers, at 12.3 samples per second"


def test_sweep_section_compares_with_chapter_5():
    setup = runs.Setup(ios=4224)
    study = unc.Study(setup=setup, samples=2)
    ch5 = runs.reproduce(setup, study.clock_ghz, study.calibrate_on)
    s = views.sweep_section(study, False, "local", 2.0, unc.nominal(study), ch5)
    assert s.nom_diff == pytest.approx(0.0, abs=1e-9)  # the same setup at the cited values is chapter 5
    assert (s.ios, s.ch5_ios) == (4224, 4224) and s.engine == "local, at 2.0 samples per second"


def _figs():
    return pd.DataFrame({"kernel": ["6.19", "7.0", "7.0"], "allocator": ["kmalloc", "per-CPU list", "sheaf-256"],
                         "P(reproduced)": [0.5, 0.904, 0.25]})


def _p():
    return {"p_all_six": 0.125, "p_edge_half": 0.02, "p_edge_step": 0.01, "edge_median": 0.001,
            "edge_interval": (-0.002, 0.004), "edge_ns_median": 0.5, "edge_ns_interval": (-1.0, 2.0),
            "gain_median": 1.5, "gain_interval": (1.0, 2.0), "gain_span": (0.9, 2.1), "p_gain_in_span": 0.75}


def test_figures_section_names_best_and_worst():
    f = views.figures_section(_figs(), _p())
    assert f == views.Figures(0.125, "7.0-rc4 per-CPU list (0.90)", "7.0-rc4 sheaf-256 (0.25)")


def test_probabilities_section_maps_every_number():
    s = views.probabilities_section(_p())
    assert (s.edge_med, s.edge_lo, s.edge_hi) == (0.001, -0.002, 0.004)
    assert (s.edge_ns_med, s.edge_ns_lo, s.edge_ns_hi) == (0.5, -1.0, 2.0)
    assert (s.p_half, s.p_step, s.cred_pct) == (0.02, 0.01, pytest.approx(100 * unc.CREDIBLE))
    assert (s.gain_med, s.gain_lo, s.gain_hi, s.p_gain_span, s.span_lo, s.span_hi) == (1.5, 1.0, 2.0, 0.75, 0.9, 2.1)


def _sob(st_edge, ci_edge):
    rows = [{"output": "edge ns/IO", "input": f"in{i}", "ST": st, "ST ±": ci}
            for i, (st, ci) in enumerate(zip(st_edge, ci_edge))]
    rows += [{"output": "patch gain %", "input": "g0", "ST": 0.7, "ST ±": 0.05},
             {"output": "patch gain %", "input": "g1", "ST": 0.1, "ST ±": 0.05}]
    return pd.DataFrame(rows)


def test_sensitivity_ranks_separated_intervals():
    s = views.sensitivity(_sob([0.6, 0.3, 0.001, 0.0], [0.05, 0.05, 0.002, 0.001]))
    assert (s.sob_top, s.sob_top_st, s.sob_top_ci) == ("`in0`", 0.6, 0.05)
    assert (s.sob_matter, s.sob_ranked, s.sob_max_ci, s.sob_small) == (2, 2, 0.05, 2)
    assert s.sob_rank_words.startswith("the intervals of `in0`, `in1` lie wholly above")
    assert (s.gain_top, s.gain_top_st, s.gain_top_ci, s.matters) == ("`g0`", 0.7, 0.05, 0.01)


def test_sensitivity_with_overlapping_intervals_asks_for_more_samples():
    s = views.sensitivity(_sob([0.5, 0.45, 0.0], [0.1, 0.1, 0.001]))
    assert (s.sob_matter, s.sob_ranked) == (2, 0)
    assert "needs a larger sweep" in s.sob_rank_words


def test_rank_words_one_input():
    assert views.rank_words({"ranked": 1, "matter": 1, "top": ["x"]}).startswith("the interval of `x` lies wholly")
    assert "needs a larger sweep" in views.rank_words({"ranked": 0, "matter": 0, "top": []})


def test_verdict_words_hold_or_open():
    held = views.verdict(_p()).verdict
    assert "stays below one 0.01M step with probability 0.990, and below half a step with probability 0.980" in held
    assert "verdict therefore holds" in held
    opened = views.verdict_words(0.05, 0.2)
    assert "by more than one 0.01M step with probability 0.050" in opened and "leave chapter 5's verdict open" in opened


def test_hierarchy_section_follows_the_switch():
    on = unc.Study(setup=runs.Setup(ios=4224), samples=2).validate()
    h = views.hierarchy_section(on, 2400)
    assert h.lat_uses_on < 1 < h.lat_uses_off and "are not sampled" in h.hier_note
    off = unc.Study(setup=runs.Setup(ios=4224, hierarchy=False), samples=2).validate()
    h2 = views.hierarchy_section(off, 2400)
    assert h2.hier_note.startswith("This sweep runs the models with the memory hierarchy off")
    assert (h2.lat_uses_on, h2.lat_uses_off) == pytest.approx((h.lat_uses_on, h.lat_uses_off))


def test_cache_rows_words_quote_the_group_s_total_index():
    sob = pd.DataFrame({"output": ["edge ns/IO", "patch gain %", "edge ns/IO"],
                        "input": ["cache_latencies", "cache_latencies", "static_key"],
                        "ST": [1.2e-26, 2e-5, 0.7]})
    w = views.cache_rows_words(sob, True)
    assert w.startswith("The cache-latency rows (`cache_latencies`) have a total index of 1.2e-26 for the edge and 2e-05")
    assert "slow paths' flat loads" in w and "every load" in views.cache_rows_words(sob, False)
    assert views.cache_rows_words(sob[sob["input"] != "cache_latencies"], True) == ""

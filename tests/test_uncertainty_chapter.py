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

"""Chapter 5 ("Reproducing the IOPS comparison") executes with non-default parameters, and rejects bad ones
with one sentence before any kernel starts."""

import json

import nbformat
import pytest

from allocsim.book import runner as book
from allocsim.pages import params
from allocsim.facts.errors import AllocsimError


def _glued(nb) -> dict:
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = o["data"]
                key = next((k for k in data if k.endswith("text/markdown")), None) or next(k for k in data if k.endswith("text/plain"))
                out[name] = data[key]
    return out


def test_chapter_executes_with_polled_completions_and_four_submitters(tmp_path):
    values = {"polled": True, "submitters": 4, "ios": 6000, "kernel": "6.19", "allocator": "kmalloc",
              "calibrate_on": "7.0 kmalloc", "slab_account": True, "cv": 0.01, "clock_ghz": 2.5, "init_on_alloc": False}
    path, reused = book.execute("iops", values, out=tmp_path / "05-iops.ipynb", force=True)
    assert not reused and path.exists()
    nb = nbformat.read(str(path), as_version=4)
    g = _glued(nb)
    assert g["n_params"] == "1"
    assert "t/io_uring -p1 -d128 -s32 -c32 -n4" in g["t_opts"]
    assert "the 7.0-rc4 kmalloc figure alone" in g["cal_on"]
    assert int(g["n_claims"]) == 13
    # prose that describes the setting is generated from the parameters (a custom run never says the default's)
    assert "-p1" in g["completion_where"] and "interrupt" not in g["completion_where"]
    assert g["submitters_words"].startswith("4 CPU-bound submitters")
    assert "not the book's default reading" in g["command_whose"] and "-p0 -d128 -s32 -c32 -n1" in g["command_whose"]
    assert "-p1 -d128 -s32 -c32" in g["cmd_t_io_uring"] and "-n4" in g["cmd_t_io_uring"]
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    # the verdict and the claims table were rendered, and the parameter table records what was changed
    text = json.dumps(nb)
    assert "The patch's edge on 7.0-rc4" in text and "not reproduced" in text
    table = next(o for c in nb.cells for o in c.get("outputs", []) if "changed" in json.dumps(o.get("data", {})))
    assert "10 changed" in json.dumps(table["data"]) and "polled" in json.dumps(table["data"])
    # the kernel switch reached the runs: the page says it changed it, and its sensitivity flips it back on
    assert g["switches_words"] == "This page changes `init_on_alloc` to off from the distribution defaults."
    assert g["sw_flip"] == "`init_on_alloc` on" and float(g["sw_zero_cycles"]) > 0


@pytest.mark.parametrize("pairs, message", [
    ([("rq_affinity", "3")], "parameter rq_affinity must be one of 0, 1, 2, not 3"),
    ([("irq_same_cpu_share", "0.5")], "must add up to 1"),
    ([("submit_batch", "256")], "parameter submit_batch \\(256\\) must not exceed queue_depth \\(128\\)"),
    ([("ios", "4000")], "parameter ios must be an integer from 4160 to 200000, not 4000"),
    ([("ios", "4200"), ("submit_batch", "64")], "parameter ios \\(4200\\) must be at least 4224"),
    ([("calibrate_on", "8.0 kmalloc")], "parameter calibrate_on must be one of 'all'"),
    ([("slab_account", "maybe")], "parameter slab_account must be true or false, not 'maybe'"),
    ([("cv", "0.5")], "parameter cv must be a number from 0.0005 to 0.05, not 0.5"),
    ([("memcg", "maybe")], "parameter memcg must be true or false, not 'maybe'"),
])
def test_bad_parameters_are_one_sentence(pairs, message):
    with pytest.raises(AllocsimError, match=message):
        book.parse_overrides("iops", pairs)


def test_spec_defaults_validate():
    ns = params.spec("iops").validate({})
    assert ns.kernel == "7.0" and ns.queue_depth == 128 and ns.polled is False and ns.slab_account is False
    from allocsim.facts import steps

    # one bool parameter per kernel switch, defaulting to the distribution default hooks.yaml gives (with its source)
    for k, sw in steps.switches().items():
        assert getattr(ns, k) is sw["default"]
        assert sw["source"] in next(p.help for p in params.spec("iops").params if p.name == k)

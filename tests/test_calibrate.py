"""Calibration on anyone's figures: reading the CSV, both fits, and what each assumes."""

import numpy as np
import pandas as pd
import pytest

from allocsim.analysis import calibrate as cal
from allocsim.analysis import iops, runs
from allocsim.facts.errors import AllocsimError

from conftest import run_cli


@pytest.fixture(scope="module")
def thread_fit():
    return cal.calibrate(cal.thread_figures(), 3.0)


def test_on_the_threads_figures_both_fits_agree_with_the_chapter(thread_fit):
    rep = runs.reproduce(runs.Setup(), 3.0)
    assert thread_fit.base_ns == pytest.approx(rep.calibration.base_ns, abs=0.2)
    # the speed fit then finds the stated clock again: same software, same machine
    assert thread_fit.speed == pytest.approx(3.0, rel=2e-3)
    t = thread_fit.table
    assert t["fitted on"].sum() == 6 and len(t) == len(cal.GRID) == 12
    assert t["time/IO base-ns vs speed %"].abs().max() < 0.2


def test_speed_fit_recovers_a_known_machine_speed(thread_fit):
    """Figures made under the speed fit's own assumption (same cycles, speed 2.0 cycles/ns) give 2.0 back,
    while the base-ns fit, fitted on them, predicts the other configurations differently."""
    t = thread_fit.table.set_index(["kernel", "allocator"])
    chosen = [("6.18", "kmalloc"), ("7.0", "sheaf-256"), ("6.19", "dedicated")]
    # rebuild those configurations' cycles as the fit saw them (workload gap = the carried-over base)
    cyc = cal._cycles(runs.Setup(), int(round(thread_fit.ref_base_cycles)))
    figs = pd.DataFrame([{"kernel": k, "allocator": a,
                          "miops": float(iops.ns_to_miops((thread_fit.ref_base_cycles + cyc[(k, a)]) / 2.0))}
                         for k, a in chosen])
    fit = cal.calibrate(figs, 3.0, ref_base_cycles=thread_fit.ref_base_cycles)
    assert fit.speed == pytest.approx(2.0, rel=1e-9)
    assert fit.rms_ns["speed"] == pytest.approx(0.0, abs=1e-6)
    assert fit.rms_ns["base-ns"] > 0
    assert not np.allclose(fit.table["base-ns fit M IOPS"], fit.table["speed fit M IOPS"])
    assert t.shape[0] == 12


def test_base_ns_fit_is_the_mean_difference():
    figs = pd.DataFrame([{"kernel": "7.0", "allocator": "kmalloc", "miops": 1.0},
                         {"kernel": "6.19", "allocator": "kmalloc", "miops": 0.9}])
    fit = cal.calibrate(figs, 3.0, ref_base_cycles=2500.0)
    t = fit.table.set_index(["kernel", "allocator"])
    ns = [1e3 / 1.0 - t.loc[("7.0", "kmalloc"), "alloc cycles/IO"] / 3.0,
          1e3 / 0.9 - t.loc[("6.19", "kmalloc"), "alloc cycles/IO"] / 3.0]
    assert fit.base_ns == pytest.approx(np.mean(ns))


def test_read_figures_forms_and_errors(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("kernel,allocator,iops\n7.0-rc4,per-CPU list,1200000\n6.18.44,Dedicated cache,950000\n")
    f = cal.read_figures(p)
    assert f.to_dict("records") == [{"kernel": "7.0", "allocator": "per-CPU list", "miops": 1.2},
                                    {"kernel": "6.18", "allocator": "dedicated", "miops": 0.95}]
    bad = {
        "kernel,allocator\n7.0,kmalloc\n": "needs the columns kernel, allocator and miops",
        "kernel,allocator,miops\n5.10,kmalloc,1\n": "line 2: kernel must be one of 6.18, 6.19, 7.0",
        "kernel,allocator,miops\n7.0,slab,1\n": "line 2: allocator must be one of",
        "kernel,allocator,miops\n7.0,kmalloc,-1\n": "line 2: miops must be a positive number",
        "kernel,allocator,miops\n7.0,kmalloc,1\n7.0,kmalloc,1.1\n": "appears twice",
        "kernel,allocator,miops\n": "has no rows",
        "": "not a CSV with a header",
    }
    for text, msg in bad.items():
        p.write_text(text)
        with pytest.raises(AllocsimError, match=msg):
            cal.read_figures(p)
    with pytest.raises(AllocsimError, match="does not exist"):
        cal.read_figures(tmp_path / "none.csv")


def test_calibrate_cli(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("kernel,allocator,miops\n6.18,kmalloc,0.95\n7.0,dedicated,0.99\n")
    proc = run_cli("calibrate", str(p))
    assert proc.returncode == 0, proc.stderr
    assert "base-ns fit: base =" in proc.stdout and "speed fit:   speed =" in proc.stdout
    assert "assumption:" in proc.stdout and "dedicated" in proc.stdout
    p.write_text("kernel,allocator,miops\n9.9,kmalloc,1\n")
    proc = run_cli("calibrate", str(p))
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1


def test_runs_model_fn_takes_the_new_configurations():
    from allocsim.kernel.program import microbench

    prog = microbench(1, 32, 8)
    r = runs.model_fn("6.18", "dedicated", runs.Setup())(prog)
    assert r.model.startswith("6.18 cpu slab (") and "kmalloc" not in r.model
    r7 = runs.model_fn("7.0", "dedicated", runs.Setup())(prog)
    assert "sheaves" in r7.model
    with pytest.raises(AllocsimError, match="allocator must be one of"):
        runs.model_fn("7.0", "slab", runs.Setup())

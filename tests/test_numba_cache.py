"""The numba on-disk cache of the models (allocsim.kernel.state.refresh_numba_cache): damaged cache files are
discarded with one line on stderr and the next run succeeds; a source change drops a group's cache."""

import os
import subprocess
import sys

from conftest import ROOT, outer_env

SCRIPT = """
from allocsim.kernel import pcpu_list
from allocsim.workloads.microbench import microbench
print(pcpu_list.run(microbench(2, 8, 3), kmalloc="standin").cycles)
"""


def _run(cache):
    env = outer_env()
    env["NUMBA_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, text=True, capture_output=True, env=env,
                          timeout=600)


def test_garbage_in_the_cache_files_is_discarded_with_one_line_and_the_run_succeeds(tmp_path):
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    files = [p for p in tmp_path.rglob("pcpu_list.*") if p.suffix in (".nbi", ".nbc")]
    assert {p.suffix for p in files} == {".nbi", ".nbc"}, "the first run should have written index and data files"
    for i, p in enumerate(files):
        # garbage of both kinds: random bytes, and a truncated pickle
        p.write_bytes(os.urandom(64) if i % 2 else p.read_bytes()[: len(p.read_bytes()) // 2])
    second = _run(tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout  # same numbers
    lines = [line for line in second.stderr.splitlines() if "damaged numba cache" in line]
    assert len(lines) == 1 and "pcpu_list" in lines[0] and "compiled again" in lines[0], second.stderr
    assert "Traceback" not in second.stderr
    third = _run(tmp_path)  # the recompiled files are sound again
    assert third.returncode == 0 and third.stdout == first.stdout
    assert "damaged" not in third.stderr


def test_damage_detection_reads_files_as_numba_does(tmp_path):
    from allocsim.kernel import state

    good = [p for p in state.cache_dir().glob("*.nb[ic]")]
    assert good and not any(state._damaged(p) for p in good)
    bad = tmp_path / "slub.simulate-1.py311.nbi"
    bad.write_bytes(b"\x80\x04garbage")
    assert state._damaged(bad)
    bad.write_bytes(b"")
    assert state._damaged(bad)
    data = tmp_path / "slub.simulate-1.py311.1.nbc"
    data.write_bytes(good[0].read_bytes()[:-1])
    assert state._damaged(data)


def test_the_test_session_checks_bounds_in_a_cache_of_its_own_and_the_book_does_not():
    from numba.core import config

    from allocsim.kernel import state

    assert config.BOUNDSCHECK  # NUMBA_BOUNDSCHECK=1, set by conftest.py before numba was imported
    assert state.cache_dir().is_relative_to(ROOT / ".pytest_cache" / "numba-boundscheck")
    env = outer_env()  # what run_cli gives `python -m allocsim build` / `run` / `bench`
    assert env.get("NUMBA_BOUNDSCHECK") != "1" and ".pytest_cache" not in env.get("NUMBA_CACHE_DIR", "")


def test_an_out_of_range_step_is_one_sentence_naming_the_model_state(monkeypatch):
    """With bounds checking, a model step past its arrays is an AllocsimError naming the state, not a crash:
    here the per-CPU list is handed a push past max_nr by a state made too small on purpose."""
    import numpy as np
    import pytest

    from allocsim.facts.errors import AllocsimError
    from allocsim.kernel import pcpu_list as pl
    from allocsim.kernel.program import FREE, TASK, ALLOC, from_lists

    real_zeros = np.zeros

    def short_lists(shape, dtype=float):  # the task/IRQ lists one entry short of max_nr
        if isinstance(shape, tuple) and len(shape) == 2 and shape[1] == 4:
            return real_zeros((shape[0], 3), dtype)
        return real_zeros(shape, dtype)

    prog = from_lists([[(ALLOC, TASK, s) for s in range(4)] + [(FREE, TASK, s) for s in range(4)]])
    pl.simulate(prog, threshold=2, max_nr=4)  # compiled before numpy is patched (same types, smaller arrays after)
    monkeypatch.setattr(pl.np, "zeros", short_lists)
    with pytest.raises(AllocsimError) as e:
        pl.simulate(prog, threshold=2, max_nr=4)
    msg = str(e.value)
    assert "indexed outside its state" in msg and "max_nr = 4" in msg and "\n" not in msg

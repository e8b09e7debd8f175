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

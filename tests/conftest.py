import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The test session runs the numba models with bounds checking on, so that an out-of-range index in a
# model is an IndexError (turned into an AllocsimError naming the model state) instead of memory
# corruption. numba reads both variables when it is first imported, so they are set before anything
# imports it. numba 0.68 keys a cached function on its signature, the target machine and the hash of its
# bytecode (numba/core/caching.py, Cache._index_key), not on the boundscheck flag: the checked machine
# code therefore lives in a cache folder of its own, never mixed with the unchecked code of the book and
# the benchmarks (which keep the default cache in lib/allocsim/kernel/__pycache__).
TEST_NUMBA_ENV = {"NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(ROOT / ".pytest_cache" / "numba-boundscheck")}
_OUTER_ENV = {k: os.environ.get(k) for k in TEST_NUMBA_ENV}
os.environ.update(TEST_NUMBA_ENV)

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from allocsim.kernel import state as _kernel_state  # noqa: E402

# Tests call model functions directly (not only through slub.run / pcpu_list.run): refresh the cache first.
_kernel_state.refresh_numba_cache()

# Property tests: no per-example deadline (numba compiles on first call); in CI the examples are
# derandomized, so a CI run is reproducible.
settings.register_profile("book", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("book"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "book")



def outer_env() -> dict:
    """``os.environ`` as it was outside the test session: without the test session's numba bounds checking
    and cache folder (the book and the benchmarks a test builds run as ``make book`` runs them)."""
    e = dict(os.environ)
    for k, v in _OUTER_ENV.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def run_cli(*args, env=None, timeout=900):
    """Run ``python -m allocsim ARGS`` and return the CompletedProcess (text)."""
    e = outer_env()
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "allocsim", *args], cwd=ROOT, text=True,
                          capture_output=True, env=e, timeout=timeout)


def git_status():
    """`git status --porcelain` of the checkout (None outside a git checkout)."""
    if not (ROOT / ".git").exists():
        return None
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, text=True,
                          capture_output=True).stdout


@pytest.fixture(scope="session")
def status_before_build():
    return git_status()


@pytest.fixture(scope="session")
def built_book(status_before_build):
    """Build the whole book once per test session (the README's build, into _build/html)."""
    proc = run_cli("build")
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    html = ROOT / "_build" / "html"
    assert (html / "index.html").exists()
    return html


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")

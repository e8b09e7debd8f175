import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests: no per-example deadline (numba compiles on first call); in CI the examples are
# derandomized, so a CI run is reproducible.
settings.register_profile("book", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("book"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "book")

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, timeout=900):
    """Run ``python -m allocsim ARGS`` and return the CompletedProcess (text)."""
    e = dict(os.environ)
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

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, timeout=900):
    """Run ``python -m allocsim ARGS`` and return the CompletedProcess (text)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "allocsim", *args], cwd=ROOT, text=True,
                          capture_output=True, env=e, timeout=timeout)


@pytest.fixture(scope="session")
def built_book():
    """Build the whole book once per test session (the README's build, into _build/html)."""
    proc = run_cli("build")
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    html = ROOT / "_build" / "html"
    assert (html / "index.html").exists()
    return html


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")

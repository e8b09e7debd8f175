"""The book builds; a chapter that raises, or a Sphinx warning, fails the build; nothing is left modified."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

pytestmark = pytest.mark.book


def test_book_builds_and_pages_exist(built_book):
    html = built_book
    from allocsim.book import runner as book

    for page in book.pages():
        assert (html / Path(page.path).with_suffix(".html")).exists(), page.path
    index = (html / "index.html").read_text()
    assert "pending" in index or "{doc}" not in index  # the claims table is rendered, not raw MyST
    assert "_generated" not in index


def test_glued_numbers_reach_the_page(built_book):
    text = (built_book / "chapters" / "01-thread.html").read_text()
    assert '<span class="pasted-text">2.56</span>%' in text  # the patch's "about 2.6%": 1.20 / 1.17 - 1, computed and glued
    assert "{glue" not in text
    # the landing page pastes the verdict's numbers from chapter 5 (cross-document glue)
    intro = (built_book / "intro.html").read_text()
    finds = intro[intro.index('id="what-it-finds"'):intro.index('id="how-to-read-it"')]
    assert finds.count('class="pasted-text"') >= 7 and "{glue" not in finds


def test_unchanged_rebuild_reuses_executed_chapters(built_book):
    proc = run_cli("build")
    assert proc.returncode == 0, proc.stderr
    assert "executed in" not in proc.stdout
    assert "reused" in proc.stdout


def test_build_leaves_the_checkout_clean(built_book, status_before_build):
    """Building writes only to ignored folders: git status is the same after the build as before."""
    from conftest import git_status

    if status_before_build is None:
        pytest.skip("not a git checkout")
    assert git_status() == status_before_build


def _scratch_book(tmp_path, chapter_edit):
    """A copy of the book with one chapter (thread) edited, sharing lib/ and data/ by symlink."""
    root = tmp_path / "book"
    root.mkdir()
    for name in ("_config.yml", "intro.md", "requirements.lock"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "_ext", root / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("lib", "data"):
        (root / name).symlink_to(ROOT / name)
    (root / "chapters").mkdir()
    src = (ROOT / "chapters" / "01-thread.md").read_text()
    (root / "chapters" / "01-thread.md").write_text(chapter_edit(src))
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/01-thread\n")
    return root


def test_a_chapter_that_raises_fails_the_build(tmp_path):
    def add_error(src):
        return src + "\n```{code-cell} ipython3\nraise RuntimeError('deliberate failure for the test')\n```\n"

    root = _scratch_book(tmp_path, add_error)
    proc = run_cli("build", env={"ALLOCSIM_ROOT": str(root)})
    assert proc.returncode == 1
    assert "chapter 'thread' failed: RuntimeError: deliberate failure for the test" in proc.stderr
    assert not (root / "_build" / "executed" / "01-thread.ipynb").exists()
    assert (root / "_build" / "executed" / "01-thread.FAILED.ipynb").exists()
    assert not (root / "_build" / "html" / "index.html").exists()


def test_a_sphinx_warning_fails_the_build(tmp_path):
    def broken_ref(src):
        return src + "\nSee {doc}`a chapter that does not exist <99-nowhere>`.\n"

    root = _scratch_book(tmp_path, broken_ref)
    proc = run_cli("build", env={"ALLOCSIM_ROOT": str(root)})
    assert proc.returncode == 2
    assert "jupyter-book build failed" in proc.stderr
    assert "99-nowhere" in proc.stderr


def test_a_bad_parameter_inside_the_chapter_stops_with_one_sentence(tmp_path):
    def bad_default(src):
        return src.replace("clock_ghz = 3.0", "clock_ghz = -1.0")

    root = _scratch_book(tmp_path, bad_default)
    proc = run_cli("build", env={"ALLOCSIM_ROOT": str(root)})
    assert proc.returncode == 1
    assert "AllocsimError: parameter clock_ghz must be a number from 0.5 to 6.0, not -1.0" in proc.stderr

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


def test_index_redirect_carries_the_landing_pages_icon(built_book):
    import re

    index = (built_book / "index.html").read_text()
    url = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', index).group(1)
    landing = (built_book / url).read_text()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', landing).group(1)
    assert f'<link rel="icon" href="{icon}" />' in index and (built_book / icon).is_file()


def test_index_redirect_icon_is_taken_from_the_landing_page(tmp_path):
    from allocsim.book.runner import _redirect_with_icon

    bare = '<meta http-equiv="Refresh" content="0; url=chapters/start.html" />\n'
    (tmp_path / "chapters").mkdir()
    (tmp_path / "index.html").write_text(bare)
    (tmp_path / "chapters" / "start.html").write_text('<head><link rel="icon" href="../_static/logo.png"/></head>')
    _redirect_with_icon(tmp_path / "index.html")
    out = (tmp_path / "index.html").read_text()
    assert '<link rel="icon" href="_static/logo.png" />' in out  # relative to index.html, not to the landing page
    assert 'content="0; url=chapters/start.html"' in out and '<a href="chapters/start.html">' in out
    # a landing page without an icon, or an index.html that is not the bare redirect: left as it is
    (tmp_path / "chapters" / "start.html").write_text("<head></head>")
    (tmp_path / "index.html").write_text(bare)
    _redirect_with_icon(tmp_path / "index.html")
    assert (tmp_path / "index.html").read_text() == bare
    (tmp_path / "index.html").write_text(out)
    _redirect_with_icon(tmp_path / "index.html")
    assert (tmp_path / "index.html").read_text() == out


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
    for name in ("_config.yml", "intro.md", "requirements.lock", "references.bib"):
        shutil.copy(ROOT / name, root / name)
    for name in ("_ext", "_static"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("lib", "data"):
        (root / name).symlink_to(ROOT / name)
    (root / "chapters").mkdir()
    src = (ROOT / "chapters" / "01-thread.md").read_text()
    (root / "chapters" / "01-thread.md").write_text(chapter_edit(src))
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/01-thread\n")
    return root


def _build_failing_on(tmp_path, cell: str):
    """Build a scratch book whose thread chapter ends with ``cell``; expect the failure's exit status, one
    stderr line, a FAILED notebook and no rendered book. Returns the book's root and that line."""
    root = _scratch_book(tmp_path, lambda src: src + f"\n```{{code-cell}} ipython3\n{cell}\n```\n")
    proc = run_cli("build", env={"ALLOCSIM_ROOT": str(root)})
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    executed = root / "_build" / "executed"
    assert (executed / "01-thread.FAILED.ipynb").exists()
    assert not (executed / "01-thread.ipynb").exists() and not list(executed.glob("*.partial.ipynb"))
    assert not (root / "_build" / "html" / "index.html").exists()
    return root, lines[0]


def test_a_chapter_that_raises_fails_the_build(tmp_path):
    _, line = _build_failing_on(tmp_path, "raise RuntimeError('deliberate failure for the test')")
    assert "chapter 'thread' failed: RuntimeError: deliberate failure for the test" in line


def test_the_kernel_process_output_goes_to_its_log_and_a_cells_stderr_stays_on_the_page(tmp_path):
    """What the chapter's kernel process writes to its own descriptors (here a cell writing to fd 1 and 2,
    as a C library or libzmq's shutdown abort does) never reaches the build's terminal: it goes to the
    kernel log beside the notebook. A cell's stderr output (``print(…, file=sys.stderr)``) stays on the
    page (a cell with stderr output once crashed the notebook's finishing step)."""
    def add_writes(src):
        return src + ("\n```{code-cell} ipython3\nimport os, sys\nos.write(1, b'fd one from the kernel\\n')\n"
                      "os.write(2, b'fd two from the kernel\\n')\nprint('a cell warns', file=sys.stderr)\n```\n")

    root = _scratch_book(tmp_path, add_writes)
    out = tmp_path / "run" / "thread.ipynb"
    proc = run_cli("run", "thread", "--output", str(out), env={"ALLOCSIM_ROOT": str(root)})
    assert proc.returncode == 0, proc.stderr
    assert "from the kernel" not in proc.stdout + proc.stderr
    assert proc.stderr.strip() == ""
    log = out.with_name("thread.kernel.log").read_text()
    assert "fd one from the kernel" in log and "fd two from the kernel" in log
    import nbformat

    last = nbformat.read(str(out), as_version=4).cells[-1]
    stderr = "".join(o.get("text", "") for o in last.outputs if o.get("name") == "stderr")
    assert "a cell warns" in stderr


def test_a_chapter_whose_kernel_dies_is_one_sentence_and_leaves_nothing_running(tmp_path):
    root, line = _build_failing_on(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert line.startswith("error: chapter 'thread' failed: its kernel was killed by SIGKILL"), line
    assert "partial output: _build/executed/01-thread.FAILED.ipynb" in line
    record = (root / "_build" / "executed" / "01-thread.FAILED.run.json").read_text()
    assert "its kernel was killed by SIGKILL" in record
    assert not _processes_in(root), "a chapter's kernel is still running"


def test_chapters_run_side_by_side_and_a_failure_leaves_nothing_running(tmp_path):
    """With two jobs, a chapter that fails stops the build with its one line, the chapter running beside it
    finishes (its notebook complete, no partial file, no kernel left), and nothing is rendered."""
    def add_error(src):
        return src + "\n```{code-cell} ipython3\nraise RuntimeError('deliberate failure for the test')\n```\n"

    root = _scratch_book(tmp_path, add_error)
    from allocsim.pages.toc import chapter_pages

    appendix = Path(chapter_pages()["kernel"].path)  # the short "Your kernel" appendix beside it
    shutil.copy(ROOT / appendix, root / appendix)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/01-thread\n"
                                   f"  - file: {appendix.with_suffix('')}\n")
    proc = run_cli("build", "--jobs", "2", env={"ALLOCSIM_ROOT": str(root)})
    assert proc.returncode == 1
    assert "executing 2 chapters, 2 at a time" in proc.stdout
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        next(line for line in proc.stderr.splitlines() if "chapter 'thread' failed: RuntimeError" in line)]
    executed = root / "_build" / "executed"
    assert (executed / f"{appendix.stem}.ipynb").exists() and (executed / f"{appendix.stem}.key").exists()
    assert (executed / "01-thread.FAILED.ipynb").exists()
    assert not list(executed.glob("*.partial.ipynb"))
    assert not (root / "_build" / "html" / "index.html").exists()
    assert not _processes_in(root), "a chapter's kernel is still running"


def _processes_in(root: Path) -> list[int]:
    """Processes whose working folder is inside ``root`` (a chapter's kernel runs in its chapter's folder)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if Path(os.readlink(d / "cwd")).is_relative_to(root):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


def test_a_bad_jobs_value_is_one_sentence(tmp_path):
    for value in ("0", "two", "-1"):
        proc = run_cli("build", "--jobs", value, env={"ALLOCSIM_BUILD": str(tmp_path / "b")})
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0
        assert f"ALLOCSIM_JOBS (--jobs) is the number of chapters to execute at once, a whole number from 1 up, not {value!r}" in proc.stderr
        assert not (tmp_path / "b" / "executed").exists()


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
        assert "clock_ghz: float = 3.0" in src
        return src.replace("clock_ghz: float = 3.0", "clock_ghz: float = -1.0")

    root = _scratch_book(tmp_path, bad_default)
    proc = run_cli("build", env={"ALLOCSIM_ROOT": str(root)})
    assert proc.returncode == 1
    assert "ParameterError: parameter clock_ghz must be a number from 0.5 to 6.0, not -1.0" in proc.stderr


# ------------------------------------------------------------------ the ordinary habits (issue 14)

def _jupyter_book(*args, env=None, cwd=ROOT, timeout=1200):
    import sys

    e = dict(os.environ)
    e.update(env or {})
    jb = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run([str(jb), *args], cwd=cwd, text=True, capture_output=True, env=e, timeout=timeout)


def _pages_text(html):
    """Every page's text, with docutils' generated ids (``id12``; sphinxcontrib-bibtex numbers its
    citations in reading order, which a fresh Sphinx environment may assign differently) and static
    files' cache-busting suffixes normalised."""
    import re

    # Sphinx appends ?v=<checksum> to a static file only when the file is already in the output folder
    # when the page is written; a first render into an empty folder writes some (myst-nb's css, the vega
    # bundle) only afterwards, so the same book's links differ in that suffix alone.
    def norm(text):
        return re.sub(r"\?v=[0-9a-f]{8}\b", "", re.sub(r"\bid\d+\b", "idN", text))

    return {p.relative_to(html): norm(p.read_text()) for p in sorted(html.rglob("*.html"))}


def test_plain_jupyter_book_build_renders_the_same_book(built_book):
    """`jupyter-book build .` on the checkout runs the papermill stage first (reusing the executed
    chapters) and renders exactly the book `python -m allocsim build` rendered; no warning."""
    before = _pages_text(built_book)
    proc = _jupyter_book("build", ".", "-W", "-n", "--keep-going")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "executing the chapters with papermill first" in proc.stderr
    assert "executed in" not in proc.stderr  # every chapter was reused
    assert "WARNING" not in proc.stdout + proc.stderr
    after = _pages_text(built_book)
    assert after.keys() == before.keys()
    differ = [str(k) for k in before if before[k] != after[k]]
    assert differ == [], f"pages differ from the allocsim build: {differ}"


def test_plain_jupyter_book_build_of_one_chapter_stops_with_one_sentence(built_book):
    index = built_book / "index.html"
    mtime = index.stat().st_mtime_ns
    proc = _jupyter_book("build", "chapters/05-iops.md")
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: a single chapter cannot be rendered on its own"), proc.stderr
    assert index.stat().st_mtime_ns == mtime
    assert not (ROOT / "chapters" / "_build").exists()


def test_cell_tags_follow_the_rule():
    """Compute and plot cells are shown behind a toggle, plumbing removed (allocsim.book.celltags)."""
    from allocsim.book import celltags

    assert celltags.main(["--check"]) == 0


def test_code_cells_are_shown_behind_a_toggle(built_book):
    text = (built_book / "chapters" / "05-iops.html").read_text()
    assert text.count("Show code cell source") >= 10
    assert "params.validate" not in text  # plumbing is removed


def test_no_url_in_any_script(built_book):
    """No <script> of the built HTML, inline ones included, names an http(s) URL (thebe is off, charts
    are embedded without Altair's CDN fallback loader)."""
    import re

    found = {}
    for path in built_book.rglob("*.html"):
        for m in re.finditer(r"<script\b[^>]*>.*?</script>", path.read_text(), re.S):
            if re.search(r"https?://", m.group(0)):
                found.setdefault(str(path.relative_to(built_book)), m.group(0)[:200])
    assert found == {}


def test_execution_report_and_footers(built_book):
    report = (built_book / "execution.html").read_text()
    assert report.count("pass") >= 7
    assert "lock" in report and "commit" in report
    from allocsim.book import runner

    jobs = min(runner.jobs(), len(runner.chapter_pages()))
    assert (f"The chapters executed {jobs} at a time" in report) == (jobs > 1)
    page = (built_book / "chapters" / "02-pcpu.html").read_text()
    assert 'class="allocsim-executed"' in page and "Executed 20" in page and "default parameters" in page
    assert "allocsim-custom-run" not in page


def test_references_page_links_mails_and_commits(built_book):
    import html

    text = html.unescape((built_book / "references.html").read_text())
    assert "https://lore.kernel.org/r/aWh06YoiJrR3-J-X@dread.disaster.area" in text
    assert "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id=2d517aa09bbc" in text
    assert "Bonwick" in text and "magazines and vmem" in text.lower()


def _seeded_build_dir(tmp_path, built_book):
    """A build folder that already holds the session's executed chapters (their keys still match)."""
    build = tmp_path / "build"
    shutil.copytree(built_book.parent / "executed", build / "executed")
    return build


def test_custom_run_is_announced_on_its_page_and_the_landing_page(tmp_path, built_book):
    build = _seeded_build_dir(tmp_path, built_book)
    proc = run_cli("run", "thread", "-p", "clock_ghz", "4.2", "--book", env={"ALLOCSIM_BUILD": str(build)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (build / "html" / "chapters" / "01-thread.html").read_text()
    assert "Custom run: this page does not show the default book" in page
    assert "<code>clock_ghz = 4.2</code> (default 3.0)" in page
    run = next((build / "runs").iterdir()).name
    assert run.startswith("thread-") and run in page
    intro = (build / "html" / "intro.html").read_text()
    assert "Custom runs: this book does not show the default parameters everywhere" in intro
    assert "The thread" in intro[intro.index("Custom runs"):intro.index("Custom runs") + 2000]
    other = (build / "html" / "chapters" / "05-iops.html").read_text()
    assert "allocsim-custom-run" not in other
    assert "custom parameters" in page  # the footer says so too
    listing = run_cli("run", "--list", env={"ALLOCSIM_BUILD": str(build)})
    assert run in listing.stdout and "clock_ghz=4.2" in listing.stdout and "ok" in listing.stdout


def test_build_dir_option_and_read_only_checkout(tmp_path):
    """Where the build folder cannot be written, `build` and `run` say so in one sentence, naming the
    folder and how to build elsewhere (exit 2), before executing anything."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    mounted = False
    if os.access(ro, os.W_OK):  # root ignores permissions: use a read-only tmpfs if we may mount
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                                 capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("cannot make a read-only folder here (running as root without mount)")
    try:
        env = {"ALLOCSIM_BUILD": str(ro / "_build")}
        for args, hint in ((["build"], "set ALLOCSIM_BUILD=DIR or pass --build-dir DIR"),
                           (["run", "thread"], "pass --output FILE, or set ALLOCSIM_BUILD=DIR or --build-dir DIR")):
            proc = run_cli(*args, env=env)
            assert proc.returncode == 2, proc.stderr
            err = [line for line in proc.stderr.splitlines() if line.strip()]
            assert len(err) == 1 and str(ro / "_build") in err[0] and "read-only" in err[0] and hint in err[0], proc.stderr
            assert "executing" not in proc.stdout
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)])
        ro.chmod(0o755)


def _interrupt_when(args, marker, env, timeout=600):
    """Start the CLI in its own process group, send SIGINT (what Ctrl-C in a terminal does to the whole
    group) once ``marker`` appears on stdout; return (returncode, stdout, stderr)."""
    import signal
    import sys
    import threading
    import time

    e = dict(os.environ)
    e.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "allocsim", *args], cwd=ROOT, env=e, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out = []

    def read():
        for line in proc.stdout:
            out.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    deadline = time.time() + timeout
    while not any(marker in line for line in out):
        assert proc.poll() is None, f"ended before {marker!r}: {''.join(out)} {proc.stderr.read()}"
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    t.join(timeout=10)
    return proc.returncode, "".join(out), err


@pytest.mark.parametrize("stage", ["execution", "rendering"])
def test_ctrl_c_prints_one_line_and_keeps_the_previous_book(tmp_path, built_book, stage):
    build = _seeded_build_dir(tmp_path, built_book)
    env = {"ALLOCSIM_BUILD": str(build)}
    first = run_cli("build", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    index = build / "html" / "intro.html"
    before = index.read_text()
    if stage == "execution":
        rc, out, err = _interrupt_when(["build", "--force"], "executing", env)
    else:
        rc, out, err = _interrupt_when(["build"], "rendering with jupyter-book", env)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 130 and lines == ["interrupted"], err
    assert index.read_text() == before
    leftovers = [p.name for p in build.rglob("*") if ".partial" in p.name]
    assert leftovers == []
    again = run_cli("build", env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (build / "html" / "intro.html").exists()

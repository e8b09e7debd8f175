"""Execute the chapters with papermill and render the book with Jupyter Book 1.x.

Pipeline (DESIGN §3): ``chapters/*.md`` (MyST notebooks, text) → papermill executes each with its
parameters into ``_build/executed/`` (build output, never committed) → a staging copy of the book
(``_build/stage``: config, toc, pages, the executed notebooks) → ``jupyter-book build -W -n
--keep-going`` with execution off → ``_build/html``.

An executed notebook is reused while its *key* is unchanged: a hash of the chapter source, its
parameters, every file of ``lib/allocsim`` and ``data/``, and the lock file. So an unchanged rebuild
executes nothing, and any change to a model re-executes every chapter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from allocsim.pages import params as params_mod
from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import BUILD, ROOT
from allocsim.pages.toc import Page, chapter_pages, is_notebook, pages  # noqa: F401  (re-exported for the CLI)

EXECUTED = BUILD / "executed"
RUNS = BUILD / "runs"
STAGE = BUILD / "stage"
HTML = BUILD / "html"
# Book files copied to the stage as they are (besides the toc's pages).
STAGE_FILES = ("_config.yml", "_toc.yml")
STAGE_DIRS = ("_ext", "_static")


class ChapterFailed(AllocsimError):
    """A chapter raised while executing; the message is the chapter and the error in one line."""


def _tree_hash() -> str:
    h = hashlib.sha256()
    for base in (ROOT / "lib" / "allocsim", ROOT / "data"):
        for f in sorted(base.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(ROOT)).encode())
                h.update(f.read_bytes())
    lock = ROOT / "requirements.lock"
    if lock.exists():
        h.update(lock.read_bytes())
    return h.hexdigest()


def _key(page: Page, parameters: dict, tree: str) -> str:
    h = hashlib.sha256()
    h.update((ROOT / page.path).read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    h.update(tree.encode())
    return h.hexdigest()


def parse_overrides(slug: str, pairs: list[tuple[str, str]]) -> dict:
    """``-p NAME VALUE`` pairs → typed, checked values; raises one sentence for an unknown name or a
    bad value, before any kernel starts."""
    spec = params_mod.spec(slug)
    values = {}
    for name, raw in pairs:
        values[name] = spec.param(name).coerce(raw)
    spec.validate(values)  # cross-parameter checks
    return values


def execute(slug: str, parameters: dict | None = None, out: Path | None = None, *, force: bool = False,
            tree: str | None = None, log=print) -> tuple[Path, bool]:
    """Execute one chapter with papermill. Returns ``(path, reused)``.

    The notebook is written to a ``.partial`` file and renamed only on success; on failure the
    partial result is kept as ``<name>.FAILED.ipynb`` (so nothing that looks finished is left) and
    :class:`ChapterFailed` is raised with the chapter's own one-line error."""
    import jupytext
    import papermill as pm

    page = chapter_pages().get(slug)
    if page is None:
        known = ", ".join(chapter_pages()) or "none"
        raise AllocsimError(f"unknown chapter {slug!r}; chapters in _toc.yml are: {known}")
    parameters = dict(parameters or {})
    out = out or EXECUTED / f"{page.stem}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    key = _key(page, parameters, tree or _tree_hash())
    keyfile = out.with_suffix(".key")
    failed = out.with_name(out.stem + ".FAILED.ipynb")
    if not force and out.exists() and keyfile.exists() and keyfile.read_text() == key:
        return out, True
    for stale in (out, keyfile, failed):
        stale.unlink(missing_ok=True)
    partial = out.with_name(out.stem + ".partial.ipynb")
    nb = jupytext.read(ROOT / page.path)
    env_before = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    try:
        pm.execute_notebook(nb, str(partial), parameters=parameters, kernel_name="python3",
                            cwd=str((ROOT / page.path).parent), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as exc:
        partial.replace(failed)
        detail = str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ""
        raise ChapterFailed(f"chapter {slug!r} failed: {exc.ename}: {detail} (partial output: {failed.relative_to(ROOT) if failed.is_relative_to(ROOT) else failed})") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if env_before is None:
            os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
    _hide_injected(partial)
    partial.replace(out)
    keyfile.write_text(key)
    return out, False


def _hide_injected(path: Path) -> None:
    """Papermill's injected-parameters cell stays in the notebook (a re-run page records what it ran
    with) but is removed from the rendered page; the chapter shows a parameters table instead."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            cell["metadata"]["tags"] = tags
    nbformat.write(nb, str(path))


def _sync(src: Path, dst: Path) -> None:
    """Copy only when the content differs, so Sphinx rebuilds only what changed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def stage(executed: dict[str, Path]) -> Path:
    """Lay out the book to render: config, toc, extensions, plain pages, executed notebooks."""
    wanted = set()
    for name in STAGE_FILES:
        _sync(ROOT / name, STAGE / name)
        wanted.add(STAGE / name)
    for d in STAGE_DIRS:
        if (ROOT / d).is_dir():
            for f in (ROOT / d).rglob("*"):
                if f.is_file() and "__pycache__" not in f.parts:
                    _sync(f, STAGE / f.relative_to(ROOT))
                    wanted.add(STAGE / f.relative_to(ROOT))
    slug_of = {p.path: s for s, p in chapter_pages().items()}
    for page in pages():
        if page.notebook:
            dst = STAGE / Path(page.path).with_suffix(".ipynb")
            _sync(executed[slug_of[page.path]], dst)
        else:
            dst = STAGE / page.path
            _sync(ROOT / page.path, dst)
        wanted.add(dst)
    # generated includes: the landing page's claims table, computed from data/thread/claims.yaml
    from allocsim.pages.thread import landing_claims_markdown

    gen = STAGE / "_generated" / "claims.md"
    gen.parent.mkdir(parents=True, exist_ok=True)
    text = landing_claims_markdown() + "\n"
    if not gen.exists() or gen.read_text() != text:
        gen.write_text(text)
    wanted.add(gen)
    # assets next to pages (images referenced by chapters)
    for f in (ROOT / "chapters").glob("*"):
        if f.suffix.lower() in (".png", ".svg", ".jpg", ".gif"):
            _sync(f, STAGE / f.relative_to(ROOT))
            wanted.add(STAGE / f.relative_to(ROOT))
    for f in STAGE.rglob("*"):
        if f.is_file() and f not in wanted and "__pycache__" not in f.parts:
            f.unlink()
    return STAGE


def render(log=print) -> Path:
    """Run Jupyter Book on the stage, warnings as errors. Raises AllocsimError on failure."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(STAGE), "--path-output", str(ROOT),
           "-W", "-n", "--keep-going", "-q"]
    proc = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True)
    out = (proc.stdout + proc.stderr).strip()
    noise = ("Kernel is running over TCP without encryption",)
    lines = [line for line in out.splitlines() if line.strip() and not any(n in line for n in noise)]
    if proc.returncode != 0:
        tail = "\n".join(lines[-40:])
        raise AllocsimError(f"jupyter-book build failed (exit {proc.returncode}); its output:\n{tail}")
    return HTML


def build(overrides: dict[str, dict] | None = None, replace: dict[str, Path] | None = None, *,
          force: bool = False, log=print) -> Path:
    """Execute every chapter (reusing unchanged results) and render the book. ``replace`` maps a slug
    to an already-executed notebook (a reader's re-run) to show instead of the default one."""
    overrides = overrides or {}
    replace = replace or {}
    chapters = chapter_pages()
    tree = _tree_hash()
    executed: dict[str, Path] = {}
    t0 = time.perf_counter()
    n = len(chapters)
    for i, slug in enumerate(chapters, start=1):
        if slug in replace:
            executed[slug] = replace[slug]
            log(f"[{i}/{n}] {slug:<10} using {replace[slug]}")
            continue
        log(f"[{i}/{n}] {slug:<10} executing {chapters[slug].path} …")
        t = time.perf_counter()
        path, reused = execute(slug, overrides.get(slug), force=force, tree=tree)
        msg = "unchanged since the last build, reused" if reused else f"executed in {time.perf_counter() - t:.1f} s"
        log(f"[{i}/{n}] {slug:<10} {msg}")
        executed[slug] = path
    log("rendering with jupyter-book (-W -n --keep-going) …")
    t = time.perf_counter()
    stage(executed)
    html = render(log=log)
    log(f"rendered in {time.perf_counter() - t:.1f} s; total {time.perf_counter() - t0:.1f} s")
    log(f"open {html / 'index.html'}")
    return html

"""Execute the chapters with papermill and render the book with Jupyter Book 1.x.

Pipeline: ``chapters/*.md`` (MyST notebooks, text) → papermill executes each with its
parameters into ``<build>/executed/`` (build output, never committed) → a staging copy of the book
(``<build>/stage``: config, toc, pages, the executed notebooks, generated pages) → ``jupyter-book build
-W -n --keep-going`` with execution off → ``<build>/html``.

``<build>`` is ``_build`` in the checkout, or the folder named by ``ALLOCSIM_BUILD`` (the CLI's
``--build-dir`` sets it), so a read-only checkout can still be built elsewhere.

An executed notebook is reused while its *key* is unchanged: a hash of the chapter source, its
parameters, every file of ``lib/allocsim`` and ``data/``, and the lock file. So an unchanged rebuild
executes nothing, and any change to a model re-executes every chapter.

Rendering is atomic: the Sphinx extension ``_ext/allocsim_book.py`` renders into a temporary folder next
to ``<build>/html`` and swaps it in only when the build finished without a warning; an interrupted or
failed render leaves the previous book. Plain ``jupyter-book build .`` goes through the same extension,
which runs :func:`prepare` (the papermill stage, reusing cached executions) first, so it renders the
same book as ``python -m allocsim build``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from allocsim.pages import params as params_mod
from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import BUILD, ROOT
from allocsim.pages.toc import Page, chapter_pages, is_notebook, pages  # noqa: F401  (re-exported for the CLI)

# Book files copied to the stage as they are (besides the toc's pages).
STAGE_FILES = ("_config.yml", "_toc.yml", "references.bib")
STAGE_DIRS = ("_ext", "_static")
#: Marks a folder as a stage written by :func:`stage` (the Sphinx extension renders it as it is).
STAGE_MARK = ".allocsim-stage"
#: Kernel options for papermill: ipykernel's own log lines (the TCP-without-encryption warning, the
#: KeyboardInterrupt it logs while shutting down) are not for the reader; errors reach us as messages.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]
#: What a chapter's kernel process writes to its own stdout and stderr goes to this file beside the
#: executed notebook (not to the build's terminal): what reaches those descriptors is not a cell's
#: output but the process's (a C library's message, libzmq's abort while the kernel shuts down, a
#: crash's last words). It is kept only when something was written.
KERNEL_LOG = ".kernel.log"
#: papermill's and nbclient's log records ("Kernel died while waiting for execute reply" …) say again what
#: :func:`execute` reports in its one sentence; this handler on the ``papermill`` logger keeps Python's
#: last-resort handler from printing them on stderr when nothing else is configured.
_PAPERMILL_LOG = logging.NullHandler()


class ChapterFailed(AllocsimError):
    """A chapter raised while executing; the message is the chapter and the error in one line."""


# --------------------------------------------------------------------------------------------- places

def build_root() -> Path:
    """The build folder: ``ALLOCSIM_BUILD`` if set, else ``_build`` in the checkout."""
    env = os.environ.get("ALLOCSIM_BUILD")
    return Path(env).expanduser().absolute() if env else BUILD


def executed_dir() -> Path:
    return build_root() / "executed"


def runs_dir() -> Path:
    return build_root() / "runs"


def stage_dir() -> Path:
    return build_root() / "stage"


def html_dir() -> Path:
    return build_root() / "html"


def _rel(path: Path) -> str:
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_absolute() and path.is_relative_to(ROOT) else str(path)


def writable_problem(path: Path) -> str | None:
    """Why ``path`` (a folder to create or write into) cannot be written, or None when it can."""
    p = Path(path).absolute()
    while not p.exists():
        if p.parent == p:
            return "no existing parent folder"
        p = p.parent
    if not p.is_dir():
        return f"{p} is not a folder"
    if not os.access(p, os.W_OK | os.X_OK):
        return "read-only" if p == Path(path).absolute() else f"{_rel(p)} is read-only"
    return None


def check_writable(path: Path, what: str, elsewhere: str) -> None:
    """One sentence when ``path`` cannot be written: where the output would go and how to move it."""
    why = writable_problem(path)
    if why:
        raise AllocsimError(f"cannot write {what} to {path} ({why}); {elsewhere}")


BUILD_ELSEWHERE = "set ALLOCSIM_BUILD=DIR or pass --build-dir DIR to build in another folder"


# ------------------------------------------------------------------------------------------ hashing

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


def run_id(slug: str, parameters: dict) -> str:
    """``<chapter>-<8 hex digits>``: the folder of a re-run, named by chapter and a hash of its
    parameters (the same parameters always land in the same folder: same parameters, same numbers)."""
    spec = params_mod.spec(slug)
    changed = {k: v for k, v in sorted(parameters.items()) if spec.param(k).default != v}
    digest = hashlib.sha256(json.dumps([slug, changed], sort_keys=True).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def parse_overrides(slug: str, pairs: list[tuple[str, str]]) -> dict:
    """``-p NAME VALUE`` pairs → typed, checked values; raises one sentence for an unknown name, a
    repeated name or a bad value (NaN and infinities included), before any kernel starts."""
    spec = params_mod.spec(slug)
    values = {}
    for name, raw in pairs:
        if name in values:
            raise AllocsimError(f"parameter {name} is given twice (-p {name} …); give each parameter once")
        values[name] = spec.param(name).coerce(raw)
    spec.validate(values)  # cross-parameter checks
    return values


# ------------------------------------------------------------------------------------ provenance

def _git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """Where and with what a chapter is executed: commit, lock hash, CPU, system, Python."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit and _git("status", "--porcelain", "--", "lib", "data", "chapters"):
        commit += " (with local changes)"
    lock = ROOT / "requirements.lock"
    return {
        "commit": commit or "unknown (not a git checkout)",
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest()[:12] if lock.exists() else "none",
        "cpu": f"{_cpu()} ({os.cpu_count()} CPUs)",
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def record_path(notebook: Path) -> Path:
    """The JSON record kept next to an executed notebook (parameters, time, provenance, status)."""
    return Path(notebook).with_name(Path(notebook).stem + ".run.json")


def read_record(notebook: Path) -> dict | None:
    try:
        return json.loads(record_path(notebook).read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------------------- estimate

def estimate(slug: str, values: dict) -> tuple[float, float] | None:
    """(seconds, peak MiB) a run with these parameters is expected to take: a straight line, in the
    spec's work measure (events simulated), through two measured executions of the chapter
    (:func:`allocsim.pages.params.extrapolate`). None when the chapter declares no work measure."""
    return params_mod.extrapolate(params_mod.spec(slug), values)


# ---------------------------------------------------------------------------------------- execute

def _peak_rss_mib() -> float | None:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return None


def execute(slug: str, parameters: dict | None = None, out: Path | None = None, *, force: bool = False,
            tree: str | None = None, log=print, progress: bool = False, run: str | None = None,
            jobs: int = 1) -> tuple[Path, bool]:
    """Execute one chapter with papermill. Returns ``(path, reused)``.

    The notebook is written to a ``.partial`` file and renamed only on success; on failure the
    partial result is kept as ``<name>.FAILED.ipynb`` (so nothing that looks finished is left) and
    :class:`ChapterFailed` is raised with the chapter's own one-line error. An interrupt (Ctrl-C)
    removes the partial file and leaves any previous result as it was. Next to the notebook,
    ``<name>.run.json`` records parameters, time, duration, provenance and status (and ``jobs``: how many
    chapters executed at once, so durations can be read: :func:`prepare` passes it)."""
    import jupytext
    import papermill as pm
    from nbclient.exceptions import DeadKernelError

    page = chapter_pages().get(slug)
    if page is None:
        known = ", ".join(chapter_pages()) or "none"
        raise AllocsimError(f"unknown chapter {slug!r}; chapters in _toc.yml are: {known}")
    parameters = dict(parameters or {})
    out = Path(out or executed_dir() / f"{page.stem}.ipynb")
    check_writable(out.parent, f"the executed chapter {slug!r}",
                   BUILD_ELSEWHERE if out.parent == executed_dir() else "choose another --output FILE")
    out.parent.mkdir(parents=True, exist_ok=True)
    key = _key(page, parameters, tree or _tree_hash())
    keyfile = out.with_suffix(".key")
    failed = out.with_name(out.stem + ".FAILED.ipynb")
    if not force and out.exists() and keyfile.exists() and keyfile.read_text() == key:
        return out, True
    partial = out.with_name(out.stem + ".partial.ipynb")
    log = kernel_log(out)
    log.unlink(missing_ok=True)
    logging.getLogger("papermill").addHandler(_PAPERMILL_LOG)  # once: a handler already there is not added again
    manager = _kernel_manager(log)
    nb = jupytext.read(ROOT / page.path)
    spec = params_mod.spec(slug)
    record = {
        "chapter": slug, "page": page.path, "run": run, "parameters": spec.validate(parameters).__dict__,
        "changed": {k: v for k, v in parameters.items() if spec.param(k).default != v},
        "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "status": "running", "jobs": int(jobs), **provenance(),
    }
    record = json.loads(json.dumps(record, default=str))
    env_before = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    progress_before = os.environ.get("ALLOCSIM_PROGRESS")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    if progress:  # long run: the kernel's simulations report every 10 s on stderr, streamed here
        os.environ.setdefault("ALLOCSIM_PROGRESS", "10")
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(nb, str(partial), parameters=parameters, kernel_name="python3",
                            cwd=str((ROOT / page.path).parent), progress_bar=progress, log_output=False,
                            stderr_file=sys.stderr if progress else None, extra_arguments=KERNEL_ARGS,
                            kernel_manager_class=manager)
    except pm.PapermillExecutionError as exc:
        partial.replace(failed)
        detail = str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ""
        record.update(status="failed", duration_s=round(time.perf_counter() - t0, 1),
                      error=f"{exc.ename}: {detail}")
        _write_json(record_path(failed), record)
        raise ChapterFailed(f"chapter {slug!r} failed: {exc.ename}: {detail} (partial output: {_rel(failed)})") from None
    except DeadKernelError:
        how, words = _death(manager), _last_words(log)
        if partial.exists():
            partial.replace(failed)
        record.update(status="failed", duration_s=round(time.perf_counter() - t0, 1),
                      error=f"its kernel {how}" + (f": {words}" if words else ""))
        _write_json(record_path(failed), record)
        kept = [f"kernel output: {_rel(log)}, first line {words!r}"] if words else []
        kept += [f"partial output: {_rel(failed)}"] if failed.exists() else []
        raise ChapterFailed(f"chapter {slug!r} failed: its kernel {how}"
                            + (f" ({'; '.join(kept)})" if kept else "")) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if log.exists() and not log.stat().st_size:
            log.unlink()
        if env_before is None:
            os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
        if progress_before is None:
            os.environ.pop("ALLOCSIM_PROGRESS", None)
    for stale in (failed, record_path(failed)):
        stale.unlink(missing_ok=True)
    record.update(status="ok", duration_s=round(time.perf_counter() - t0, 1), peak_rss_mib=_peak_rss_mib())
    _finish_notebook(partial, record)
    keyfile.unlink(missing_ok=True)
    partial.replace(out)
    _write_json(record_path(out), record)
    keyfile.write_text(key)
    return out, False


def kernel_log(notebook: Path) -> Path:
    """The file that receives the chapter kernel's own stdout and stderr (:data:`KERNEL_LOG`)."""
    return Path(notebook).with_name(Path(notebook).stem + KERNEL_LOG)


def _kernel_manager(log: Path):
    """A kernel manager class for papermill that starts the kernel with its stdout and stderr in
    ``log`` (appended). nbclient creates, starts and shuts the kernel down as with its default class;
    the class keeps the kernel's process (``processes``) so a death can be explained (:func:`_death`)."""
    from jupyter_client.manager import AsyncKernelManager

    class ChapterKernelManager(AsyncKernelManager):
        processes: list = []  # a new list for each call: the class is made per chapter run

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log, "ab") as fh:  # the kernel holds its own copy of the descriptor
                await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": fh, "stderr": fh})
            type(self).processes.append(self.provisioner.process)

    return ChapterKernelManager


def _death(manager) -> str:
    """How a chapter's kernel died, as far as its process tells: "was killed by SIGKILL", "exited with
    status 1", or "died" when the process cannot say."""
    import signal

    for proc in manager.processes:
        try:
            code = proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 (still running, or not waitable: nothing to say)
            continue
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        if code:
            return f"exited with status {code}"
    return "died"


def _last_words(log: Path) -> str:
    """The kernel log's first line that says something (a dead kernel's reason), or ''."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in lines if line.strip()), "")


def _without_heartbeat(outputs: list) -> list:
    """A cell's outputs without the progress heartbeat of a long run (``progress: …`` lines on stderr,
    :func:`allocsim.workloads.iouring._report_progress`): it is for the terminal, not the page.
    Whatever else a cell wrote to stderr stays."""
    import nbformat

    out = []
    for o in outputs:
        if o.get("output_type") == "stream" and o.get("name") == "stderr":
            text = o.get("text", "")
            text = "".join(t for t in (text if isinstance(text, list) else text.splitlines(keepends=True))
                           if not t.startswith("progress: "))
            if not text:
                continue
            o = nbformat.from_dict(dict(o, text=text))
        out.append(o)
    return out


def _finish_notebook(path: Path, record: dict) -> None:
    """Papermill's injected-parameters cell stays in the notebook (a re-run page records what it ran
    with) but is removed from the rendered page; the chapter shows a parameters table instead. The
    run's record goes into the notebook's metadata (``allocsim``)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            cell["metadata"]["tags"] = tags
        if cell.get("cell_type") == "code":
            cell["outputs"] = _without_heartbeat(cell.get("outputs", []))
    nb.metadata["allocsim"] = record
    nbformat.write(nb, str(path))


def runs() -> list[dict]:
    """Every kept re-run (``<build>/runs/<chapter>-<hash>/``), newest first, from their records."""
    out = []
    base = runs_dir()
    if not base.is_dir():
        return out
    for folder in base.iterdir():
        if not folder.is_dir():
            continue
        recs = sorted(folder.glob("*.run.json"))
        for f in recs:
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            rec["folder"] = str(folder)
            out.append(rec)
        if not recs and any(folder.glob("*.partial.ipynb")):
            out.append({"chapter": folder.name.rsplit("-", 1)[0], "folder": str(folder), "status": "interrupted"})
    return sorted(out, key=lambda r: r.get("started", ""), reverse=True)


# ------------------------------------------------------------------------------------------- stage

def _sync(src: Path, dst: Path) -> None:
    """Copy only when the content differs, so Sphinx rebuilds only what changed."""
    _sync_text(src.read_bytes(), dst)


def _sync_text(data: bytes | str, dst: Path) -> None:
    data = data.encode() if isinstance(data, str) else data
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != data:
        dst.write_bytes(data)


def run_info(executed: dict[str, Path]) -> dict:
    """Per page (docname): the record of the notebook the book shows, with what differs from the
    defaults — read by the Sphinx extension for the custom-run banners, the footers and the report."""
    info = {}
    chapters = chapter_pages()
    for slug, nb in executed.items():
        rec = read_record(nb) or {}
        spec = params_mod.spec(slug)
        values = rec.get("parameters") or spec.defaults()
        changed = {p.name: [values.get(p.name), p.default] for p in spec.params
                   if p.name in values and values.get(p.name) != p.default}
        docname = str(Path(chapters[slug].path).with_suffix(""))
        info[docname] = {**rec, "slug": slug, "title": spec.title, "changed": changed,
                         "notebook": _rel(nb), "custom": bool(changed)}
    return info


def execution_report(info: dict) -> str:
    """The execution report page's table (Markdown), one row per chapter."""
    from allocsim.pages.mdtable import markdown
    import pandas as pd

    rows = []
    for docname, r in info.items():
        changed = ", ".join(f"`{k} = {v[0]!r}`" for k, v in r["changed"].items()) or "defaults"
        rows.append({
            "chapter": f"{{doc}}`{r['title']} </{docname}>`",
            "status": "pass" if r.get("status") == "ok" else r.get("status", "unknown"),
            "executed": r.get("started", "?"),
            "duration": f"{r['duration_s']:.1f} s" if isinstance(r.get("duration_s"), (int, float)) else "?",
            "parameters": changed,
            "run": r.get("run") or "default build",
            "commit": r.get("commit", "?"),
            "lock": r.get("lock_sha256", "?"),
            "CPU": r.get("cpu", "?"),
        })
    systems = sorted({f"{r.get('system', '?')}, Python {r.get('python', '?')}" for r in info.values()})
    jobs = max((int(r.get("jobs") or 1) for r in info.values()), default=1)
    side = (f" The chapters executed {jobs} at a time (one per CPU, `--jobs` / `ALLOCSIM_JOBS`), each in its own "
            f"kernel: their durations overlap, and on an empty numba cache the first ones include compiling the models."
            if jobs > 1 else "")
    return (markdown(pd.DataFrame(rows)) + "\n\nSystem: " + "; ".join(systems) +
            ". `lock` is the first 12 hex digits of the SHA-256 of `requirements.lock`." + side + "\n")


def stage(executed: dict[str, Path]) -> Path:
    """Lay out the book to render: config, toc, extensions, plain pages, executed notebooks, and the
    generated pages (claims table, run records, execution report)."""
    base = stage_dir()
    wanted = set()
    for name in STAGE_FILES:
        if (ROOT / name).exists():
            _sync(ROOT / name, base / name)
            wanted.add(base / name)
    for d in STAGE_DIRS:
        if (ROOT / d).is_dir():
            for f in (ROOT / d).rglob("*"):
                if f.is_file() and "__pycache__" not in f.parts:
                    _sync(f, base / f.relative_to(ROOT))
                    wanted.add(base / f.relative_to(ROOT))
    slug_of = {p.path: s for s, p in chapter_pages().items()}
    for page in pages():
        if page.notebook:
            dst = base / Path(page.path).with_suffix(".ipynb")
            _sync(executed[slug_of[page.path]], dst)
        else:
            dst = base / page.path
            _sync(ROOT / page.path, dst)
        wanted.add(dst)
    # generated includes: the landing page's claims table, computed from data/thread/claims.yaml
    from allocsim.pages.thread import landing_claims_markdown

    gen = base / "_generated"
    info = run_info(executed)
    generated = {
        "claims.md": landing_claims_markdown() + "\n",
        "runs.json": json.dumps(info, indent=1, sort_keys=True, default=str) + "\n",
        "execution.md": execution_report(info),
    }
    for name, text in generated.items():
        _sync_text(text, gen / name)
        wanted.add(gen / name)
    # assets next to pages (images referenced by chapters)
    for f in (ROOT / "chapters").glob("*"):
        if f.suffix.lower() in (".png", ".svg", ".jpg", ".gif"):
            _sync(f, base / f.relative_to(ROOT))
            wanted.add(base / f.relative_to(ROOT))
    _sync_text("written by allocsim.book.runner.stage\n", base / STAGE_MARK)
    wanted.add(base / STAGE_MARK)
    for f in base.rglob("*"):
        if f.is_file() and f not in wanted and "__pycache__" not in f.parts:
            f.unlink()
    return base


def _remove_partial_renders() -> None:
    html = html_dir()
    for stale in list(html.parent.glob(f".{html.name}.partial-*")) + list(html.parent.glob(f".{html.name}.old-*")):
        shutil.rmtree(stale, ignore_errors=True)


def render(log=print) -> Path:
    """Run Jupyter Book on the stage, warnings as errors. Raises AllocsimError on failure. The
    extension renders into a temporary folder and swaps it in as ``<build>/html`` only on success."""
    jb = Path(sys.executable).with_name("jupyter-book")
    scratch = build_root() / ".jb"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(stage_dir()), "--path-output", str(scratch),
           "-W", "-n", "--keep-going", "-q"]
    env = dict(os.environ, ALLOCSIM_HTML=str(html_dir()), ALLOCSIM_DOCTREES=str(build_root() / ".doctrees"))
    proc = subprocess.Popen(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        out, _ = proc.communicate()
    except KeyboardInterrupt:
        # Ctrl-C reached Jupyter Book too (same process group): let it stop, then make sure no
        # half-rendered folder is left; the previous book was never touched.
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _remove_partial_renders()
        raise
    proc.returncode = proc.wait()
    out = (out or "").strip()
    noise = ("Kernel is running over TCP without encryption",)
    lines = [line for line in out.splitlines() if line.strip() and not any(n in line for n in noise)]
    if proc.returncode != 0:
        tail = "\n".join(lines[-40:])
        raise AllocsimError(f"jupyter-book build failed (exit {proc.returncode}); {_rel(html_dir())} was left "
                            f"as it was; its output:\n{tail}")
    _redirect_with_icon(html_dir() / "index.html")
    return html_dir()


def _redirect_with_icon(index: Path) -> None:
    """Jupyter Book writes ``index.html`` as a bare ``<meta http-equiv="Refresh">`` to the landing page; a browser
    that opens it may ask for ``/favicon.ico`` (a 404 in its console) before it follows the redirect. Give that page
    the icon link of the landing page it redirects to (``_config.yml``'s ``html.favicon`` as Sphinx wrote it), its
    address made relative to ``index.html``; nothing is changed when the landing page has no icon."""
    text = index.read_text(encoding="utf-8") if index.exists() else ""
    m = re.fullmatch(r'\s*<meta http-equiv="Refresh" content="0; url=([^"]+)" />\s*', text)
    if m is None:
        return
    url = m.group(1)
    landing = index.parent / url.split("#")[0]
    page = landing.read_text(encoding="utf-8") if landing.is_file() else ""
    icon = re.search(r'<link rel="icon" href="([^"]+)"\s*/?>', page)
    if icon is None:
        return
    href = icon.group(1)
    if "://" not in href and not href.startswith("/"):  # relative to the landing page: make it relative to index
        href = Path(os.path.relpath(landing.parent / href, index.parent)).as_posix()
    index.write_text(f'<!DOCTYPE html>\n<html><head><meta charset="utf-8" />\n<meta http-equiv="Refresh" content="0; '
                     f'url={url}" />\n<link rel="icon" href="{href}" />\n<title>Redirecting</title></head>'
                     f'\n<body><a href="{url}">{url}</a></body></html>\n', encoding="utf-8")


def jobs() -> int:
    """How many chapters :func:`prepare` executes at once: ``ALLOCSIM_JOBS`` (the CLI's ``--jobs``), else one per
    CPU this process may run on. Each chapter runs in its own kernel process, so on two cores two chapters
    take about the time of the longer one plus half the rest; the results do not depend on it."""
    v = os.environ.get("ALLOCSIM_JOBS", "").strip()
    if not v:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
        return max(1, len(cpus))
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise AllocsimError(f"ALLOCSIM_JOBS (--jobs) is the number of chapters to execute at once, a whole number "
                            f"from 1 up, not {v!r}")
    return n


def _expected_seconds(slug: str, parameters: dict | None) -> float:
    """The chapter's expected execution time (:func:`estimate`; 0 when it declares no work measure): the
    longest chapters start first, so the last one to finish is not a long one started late."""
    try:
        e = estimate(slug, dict(parameters or {}))
    except AllocsimError:
        return 0.0
    return e[0] if e else 0.0


def _side_by_side(todo: list[str], n_jobs: int, one) -> dict:
    """``one(slug)`` for every chapter of ``todo`` in that order, ``n_jobs`` at a time (threads: each chapter's
    work is in its own kernel process). The first failure starts no other chapter and lets the running ones
    finish; it is raised once they have (the first in ``todo`` order when two fail). Ctrl-C (a
    ``KeyboardInterrupt`` in the main thread) is raised in every running chapter too, so each stops its
    kernel and removes its partial notebook as a chapter executed alone does, and then here. (The main thread
    waits on an event, not ``Thread.join``: a join interrupted by Ctrl-C can mark a running thread finished.)"""
    import ctypes
    import queue
    import threading

    if n_jobs <= 1 or len(todo) <= 1:
        return {slug: one(slug) for slug in todo}
    waiting: queue.SimpleQueue = queue.SimpleQueue()
    for slug in todo:
        waiting.put(slug)
    results: dict = {}
    errors: dict = {}
    stop = threading.Event()
    finished = threading.Event()
    lock = threading.Lock()
    running: set = set()  # idents of the workers not yet finished

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    slug = waiting.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[slug] = one(slug)
                except BaseException as exc:  # noqa: BLE001 (re-raised by the main thread)
                    errors[slug] = exc
                    stop.set()
                    return
        finally:
            with lock:
                running.discard(threading.get_ident())
                if not running:
                    finished.set()

    with lock:  # a worker that ends at once must not find the set empty before every worker is in it
        for k in range(min(n_jobs, len(todo))):
            t = threading.Thread(target=worker, name=f"chapter-{k}", daemon=True)
            t.start()
            running.add(t.ident)
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        stop.set()
        with lock:
            for ident in running:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
        while not finished.wait(0.2):
            pass
        # the interrupted chapters' event loops die with their pending tasks; asyncio would log each at exit
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        raise
    if errors:
        raise errors[min(errors, key=todo.index)]
    return results


def prepare(overrides: dict[str, dict] | None = None, replace: dict[str, Path] | None = None, *,
            force: bool = False, log=print) -> Path:
    """Execute every chapter (reusing unchanged results), :func:`jobs` at a time, longest first
    (:func:`_side_by_side`), and stage the book; returns the stage."""
    check_writable(build_root(), "the book", BUILD_ELSEWHERE)
    overrides = overrides or {}
    replace = replace or {}
    chapters = chapter_pages()
    tree = _tree_hash()
    n_jobs = jobs()
    executed: dict[str, Path] = {}
    number = {slug: i for i, slug in enumerate(chapters, start=1)}
    n = len(chapters)
    for slug in chapters:
        if slug in replace:
            executed[slug] = replace[slug]
            log(f"[{number[slug]}/{n}] {slug:<10} using {_rel(replace[slug])}")
    todo = sorted((s for s in chapters if s not in replace), key=lambda s: -_expected_seconds(s, overrides.get(s)))
    at_once = max(1, min(n_jobs, len(todo)))

    def one(slug: str) -> Path:
        i = number[slug]
        log(f"[{i}/{n}] {slug:<10} executing {chapters[slug].path} …")
        t = time.perf_counter()
        path, reused = execute(slug, overrides.get(slug), force=force, tree=tree, jobs=at_once)
        msg = "unchanged since the last build, reused" if reused else f"executed in {time.perf_counter() - t:.1f} s"
        log(f"[{i}/{n}] {slug:<10} {msg}")
        return path

    if at_once > 1:
        log(f"executing {len(todo)} chapters, {at_once} at a time (ALLOCSIM_JOBS / --jobs)")
    # set once for every kernel (execute() restores what it found: concurrent restores would race)
    before = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    try:
        executed.update(_side_by_side(todo, at_once, one))
    finally:
        if before is None:
            os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
    return stage({s: executed[s] for s in chapters})


def build(overrides: dict[str, dict] | None = None, replace: dict[str, Path] | None = None, *,
          force: bool = False, log=print) -> Path:
    """Execute every chapter (reusing unchanged results) and render the book. ``replace`` maps a slug
    to an already-executed notebook (a reader's re-run) to show instead of the default one."""
    t0 = time.perf_counter()
    prepare(overrides, replace, force=force, log=log)
    log("rendering with jupyter-book (-W -n --keep-going) …")
    t = time.perf_counter()
    html = render(log=log)
    log(f"rendered in {time.perf_counter() - t:.1f} s; total {time.perf_counter() - t0:.1f} s")
    log(f"open {html / 'index.html'}")
    return html


# Backwards-compatible names (module constants of the default build folder).
EXECUTED = BUILD / "executed"
RUNS = BUILD / "runs"
STAGE = BUILD / "stage"
HTML = BUILD / "html"

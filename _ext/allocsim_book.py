"""The book's Sphinx extension: one pipeline whichever command renders the book.

* ``python -m allocsim build`` stages the executed chapters (``<build>/stage``) and runs Jupyter Book
  on the stage; this extension renders it as it is.
* Plain ``jupyter-book build .`` on the checkout: before Sphinx reads anything, this extension runs the
  papermill stage (:func:`allocsim.book.runner.prepare`, reusing cached executions) and points Sphinx
  at the stage — the same book as ``make book``. A failed chapter or bad input stops it with one
  sentence, before ``_build/html`` is touched.
* ``jupyter-book build chapters/<page>.md`` (one page on its own): the chapters are executed notebooks
  that paste numbers from and link to each other, so it stops with one sentence.

In every case the HTML is rendered into a temporary folder next to the output folder and swapped in
only when the build finished without a warning, so an interrupted (Ctrl-C) or failed render leaves the
previous book as it was; a warning also makes the command exit non-zero.

Pages also get: a banner at the top of every page that shows a non-default run (what changed, from which
run; on the landing page a list of such chapters), a footer saying when, where and how long the page's
chapter was executed, and thebe switched off (it would add inline scripts naming a CDN).
"""

from __future__ import annotations

import atexit
import html
import json
import os
import shutil
import sys
from pathlib import Path

STAGE_MARK = ".allocsim-stage"
_state: dict = {}


def _say(message: str) -> None:
    print(f"allocsim: {message}", file=sys.stderr, flush=True)


def _stop(message: str, code: int = 2) -> None:
    """One sentence, then exit (SystemExit passes through Sphinx's and Jupyter Book's handlers)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _mode(app) -> str:
    src = Path(app.srcdir)
    if (src / STAGE_MARK).exists():
        return "stage"
    from allocsim.facts.paths import ROOT

    if src.resolve() == Path(ROOT).resolve():
        return "book"
    return "page"


def _writable_problem(path: Path) -> str | None:
    from allocsim.book.runner import writable_problem

    return writable_problem(path)


def setup(app):
    mode = _mode(app)
    _state["mode"] = mode
    if mode == "page":
        _stop("a single chapter cannot be rendered on its own (the chapters are executed notebooks that paste "
              "numbers from and link to each other); build the whole book with `jupyter-book build .` or "
              "`python -m allocsim build`, or re-run one chapter with `python -m allocsim run SLUG`")
    out = Path(os.environ.get("ALLOCSIM_HTML") or app.outdir) if mode == "stage" else Path(app.outdir)
    problem = _writable_problem(out)
    if problem:
        hint = ("set ALLOCSIM_BUILD=DIR or pass --build-dir DIR to build in another folder" if mode == "stage"
                else "pass --path-output DIR to jupyter-book to build in another folder")
        _stop(f"cannot write the book to {out} ({problem}); {hint}")
    _state["final"] = out
    app.add_css_file("allocsim.css")
    app.add_js_file("allocsim.js", priority=210)  # after the vega bundle (altair_offline: 201)
    app.connect("config-inited", _config_inited, priority=100)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def _config_inited(app, config):
    # thebe: Jupyter Book always loads sphinx-thebe, which adds inline scripts naming unpkg.com and
    # a binder repository to every page (and declares THEBE_JS_URL twice). The book has no thebe.
    for event, listeners in list(app.events.listeners.items()):
        app.events.listeners[event] = [lsn for lsn in listeners
                                       if getattr(lsn.handler, "__module__", "") != "sphinx_thebe"]
    app.registry.css_files = [(name, attrs) for name, attrs in app.registry.css_files if "thebe" not in name]
    # pydata theme: sphinx-book-theme has no default_mode option, so the page starts with an empty
    # mode and the theme's script logs "Got invalid theme mode"; _static/allocsim.js sets "auto" first.

    if _state["mode"] == "book":
        os.environ["ALLOCSIM_BUILD"] = str(Path(app.outdir).parent)
        from allocsim.book import runner
        from allocsim.facts.errors import AllocsimError

        _say("executing the chapters with papermill first (cached executions are reused) …")
        try:
            stage = runner.prepare(log=_say)
        except runner.ChapterFailed as exc:
            _stop(str(exc), 1)
        except AllocsimError as exc:
            _stop(str(exc), 2)
        except KeyboardInterrupt:
            _stop(f"interrupted; {app.outdir} was left as it was", 130)
        app.srcdir = type(app.srcdir)(stage)
    elif _state["mode"] == "stage" and os.environ.get("ALLOCSIM_DOCTREES"):
        app.doctreedir = type(app.doctreedir)(os.environ["ALLOCSIM_DOCTREES"])

    final = _state["final"]
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    _state["tmp"] = tmp
    if final.is_dir():
        # start from the previous book (mtimes kept), so Sphinx writes only the pages that changed
        shutil.copytree(final, tmp, symlinks=True)
    app.outdir = type(app.outdir)(tmp)
    atexit.register(shutil.rmtree, tmp, True)
    _state["runs"] = _read_runs(Path(app.srcdir))


def _read_runs(srcdir: Path) -> dict:
    try:
        return json.loads((srcdir / "_generated" / "runs.json").read_text())
    except (OSError, ValueError):
        return {}


def _fmt(value) -> str:
    return html.escape(repr(value))


def _changes(info: dict) -> str:
    return ", ".join(f"<code>{html.escape(k)} = {_fmt(v[0])}</code> (default {_fmt(v[1])})"
                     for k, v in info["changed"].items())


def banner(docname: str, runs: dict, root_doc: str) -> str:
    """The custom-run banner for a page ('' when the page shows the default book)."""
    info = runs.get(docname)
    if info and info.get("custom"):
        source = info.get("run") or info.get("notebook", "")
        where = f"run <code>{html.escape(source)}</code>" if info.get("run") else f"<code>{html.escape(source)}</code>"
        return ('<div class="admonition warning allocsim-custom-run" role="note"><p class="admonition-title">'
                'Custom run: this page does not show the default book</p>'
                f"<p>Changed from the defaults: {_changes(info)}. From {where}, executed {html.escape(info.get('started', '?'))}. "
                "Text and figures on this page follow these parameters; <code>python -m allocsim build</code> "
                "renders the default book.</p></div>")
    if docname == root_doc:
        custom = [(d, i) for d, i in runs.items() if i.get("custom")]
        if custom:
            items = "".join(f"<li>{html.escape(i['title'])}: {_changes(i)} (run <code>{html.escape(i.get('run') or i.get('notebook', ''))}</code>)</li>"
                            for d, i in custom)
            return ('<div class="admonition warning allocsim-custom-run" role="note"><p class="admonition-title">'
                    'Custom runs: this book does not show the default parameters everywhere</p>'
                    f"<ul>{items}</ul><p>Numbers on this page that come from these chapters follow their parameters; "
                    "<code>python -m allocsim build</code> renders the default book.</p></div>")
    return ""


def footer(docname: str, runs: dict, pathto) -> str:
    info = runs.get(docname)
    if not info:
        return ""
    dur = info.get("duration_s")
    dur = f" in {dur:.1f} s" if isinstance(dur, (int, float)) else ""
    params = "custom parameters" if info.get("custom") else "default parameters"
    report = pathto("execution")
    return ('<div class="allocsim-executed"><p>'
            f"Executed {html.escape(info.get('started', '?'))}{dur} on {html.escape(info.get('cpu', '?'))}, "
            f"{html.escape(info.get('system', '?'))}, Python {html.escape(info.get('python', '?'))}; "
            f"commit {html.escape(info.get('commit', '?'))}, lock {html.escape(info.get('lock_sha256', '?'))}, "
            f'{params}. <a href="{report}">Execution report</a>.</p></div>')


def _page_context(app, pagename, templatename, context, doctree):
    if "body" not in context:
        return
    runs = _state.get("runs") or {}
    top = banner(pagename, runs, app.config.root_doc)
    bottom = footer(pagename, runs, lambda doc: context["pathto"](doc))
    if top or bottom:
        context["body"] = top + context["body"] + bottom


def _build_finished(app, exception):
    tmp, final = _state.get("tmp"), _state.get("final")
    if tmp is None or app.builder.format != "html":
        return
    if exception is None and app._warncount == 0 and tmp.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        app.outdir = type(app.outdir)(final)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
        if exception is None:
            app.statuscode = 1
            _say(f"{app._warncount} warning(s); {final} was left as it was")

"""Chapter parameters: one declaration per parameter (type, default, allowed values, meaning),
used three ways — the CLI checks ``-p NAME VALUE`` before starting a kernel, ``allocsim params``
lists them, and each chapter validates its ``parameters`` cell at the top with :func:`validate`.

A chapter's spec lives in ``allocsim/pages/specs/<slug>.py`` as ``SPEC = ChapterSpec(...)``; a test checks
that the notebook's ``parameters`` cell defines exactly these names with these defaults.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from allocsim.facts.errors import AllocsimError

_TYPE_WORD = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


class ParameterError(AllocsimError):
    """A chapter parameter that is not allowed. Inside a kernel (a chapter run by papermill, Jupyter or
    IPython) it is shown as ONE line — IPython calls ``_render_traceback_`` instead of printing the
    traceback — so a plain-papermill run with a bad ``-p`` ends in the sentence, not 30 lines of frames."""

    def _render_traceback_(self):
        return [f"ParameterError: {self}"]


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        word = _TYPE_WORD[self.type]
        if self.low is not None and self.high is not None:
            return f"{word} from {self.low} to {self.high}"
        if self.low is not None:
            return f"{word} >= {self.low}"
        if self.high is not None:
            return f"{word} <= {self.high}"
        return word

    def coerce(self, raw: str) -> Any:
        """Turn a command-line string into a value of this parameter's type (then :meth:`check`)."""
        try:
            if self.type is bool:
                low = raw.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = low in ("true", "1", "yes")
            elif self.type is int:
                value = int(raw)
            elif self.type is float:
                value = float(raw)
                if not math.isfinite(value):
                    raise ValueError
            else:
                value = raw
        except ValueError:
            raise ParameterError(f"parameter {self.name} must be {self.allowed()}, not {raw!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        ok_type = (
            isinstance(value, bool) if self.type is bool
            else isinstance(value, (int, float)) and not isinstance(value, bool) if self.type is float
            else isinstance(value, int) and not isinstance(value, bool) if self.type is int
            else isinstance(value, str)
        )
        if not ok_type:
            raise ParameterError(f"parameter {self.name} must be {self.allowed()}, not {value!r}")
        if self.type is float:
            value = float(value)
            if not math.isfinite(value):
                raise ParameterError(f"parameter {self.name} must be {self.allowed()}, not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"parameter {self.name} must be {self.allowed()}, not {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ParameterError(f"parameter {self.name} must be {self.allowed()}, not {value!r}")
        return value


@dataclass(frozen=True)
class ChapterSpec:
    slug: str  # the short name used on the command line: `allocsim run <slug>`
    source: str  # path of the chapter source relative to the repository root
    title: str
    params: tuple[Param, ...] = field(default_factory=tuple)
    #: optional cross-parameter check: a function(namespace) raising AllocsimError
    check: Any = None
    #: work measure for the CLI's time and memory estimate: a function(namespace) → events simulated
    #: (e.g. IOs × submitters; 1 for a chapter whose work does not depend on its parameters);
    #: :attr:`measured` gives one or two measured executions of the whole chapter,
    #: ``((events, seconds, peak MiB), …)``, through which time and memory are extrapolated
    #: (:func:`extrapolate`; with one, the other point is the kernel start-up :data:`STARTUP`).
    work: Any = None
    measured: tuple = ()
    #: with one measured execution, the memory a further event costs (MiB per event); 0 when memory
    #: does not grow with the work (a straight line through the start-up would overstate it)
    mib_per_event: float = 0.0

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise AllocsimError(f"chapter {self.slug!r} has no parameter {name!r}; its parameters are: {known}")

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def validate(self, values: dict) -> SimpleNamespace:
        ns = SimpleNamespace(**{p.name: p.check(values[p.name]) if p.name in values else p.default for p in self.params})
        if self.check is not None:
            self.check(ns)
        return ns


def specs() -> dict[str, ChapterSpec]:
    """Every chapter spec, in book order (``allocsim/pages/specs/NN_slug.py``)."""
    from allocsim.pages import specs as pkg

    out = {}
    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        spec = importlib.import_module(f"{pkg.__name__}.{mod}").SPEC
        out[spec.slug] = spec
    return out


def spec(slug: str) -> ChapterSpec:
    all_specs = specs()
    if slug not in all_specs:
        raise AllocsimError(f"unknown chapter {slug!r}; chapters are: {', '.join(all_specs)}")
    return all_specs[slug]


def validate(slug: str, namespace: dict) -> SimpleNamespace:
    """Called at the top of a chapter with ``globals()``: checks every declared parameter's value
    and returns them as a namespace. Raises :class:`ParameterError` (an :class:`AllocsimError`) with
    one sentence, shown by IPython as one line."""
    s = spec(slug)
    try:
        return s.validate({p.name: namespace[p.name] for p in s.params if p.name in namespace})
    except ParameterError:
        raise
    except AllocsimError as exc:
        raise ParameterError(str(exc)) from None


#: What any chapter costs before it simulates anything: papermill starting a kernel that imports the
#: package (numba, pandas, altair), (seconds, peak MiB). Measured on the build machine (shared 2-CPU
#: AMD EPYC, Python 3.11) with ``/usr/bin/time papermill`` on a one-cell notebook importing
#: ``allocsim.pages.charts`` and ``allocsim.kernel.sim``: 3.17 s and 3.57 s, 212 MiB.
STARTUP = (3.4, 212.0)


def extrapolate(spec: ChapterSpec, values: dict) -> tuple[float, float] | None:
    """(seconds, peak MiB) of executing the chapter with ``values``: a straight line in the spec's
    work measure (events simulated) through its measured executions — the first two when it has two;
    with one, the time runs from :data:`STARTUP` (no work) through it and the memory grows from it by
    ``mib_per_event``. A chapter whose work does not depend on its parameters measures ``work`` as 1,
    so its estimate is its measured run. None without a work measure."""
    if spec.work is None or not spec.measured:
        return None
    w = float(spec.work(spec.validate(values)))
    if len(spec.measured) >= 2:
        (w0, s0, m0), (w1, s1, m1) = spec.measured[:2]
        f = (w - w0) / (w1 - w0)
        return max(s0 + f * (s1 - s0), STARTUP[0]), max(m0 + f * (m1 - m0), STARTUP[1])
    (w1, s1, m1) = spec.measured[0]
    seconds = STARTUP[0] + (s1 - STARTUP[0]) * w / w1
    return max(seconds, STARTUP[0]), max(m1 + spec.mib_per_event * (w - w1), STARTUP[1])


_PY_TYPE = {int: "int", float: "float", str: "str", bool: "bool"}


def cell_source(slug: str) -> str:
    """The chapter's ``parameters`` cell, generated from its spec (the one home of names, types,
    defaults and meanings): one annotated line per parameter, ``name: type = default  # meaning``,
    which is what ``papermill --help-notebook`` shows. ``allocsim params --write-cells`` writes it into
    the chapter; a test checks that every chapter's cell is exactly this text."""
    s = spec(slug)
    lines = [f"# Parameters (papermill -p NAME VALUE). Generated from lib/allocsim/pages/specs — "
             f"`python -m allocsim params --write-cells` rewrites this cell."]
    for p in s.params:
        meaning = " ".join(f"{p.help} [{p.allowed()}]".split())
        # papermill's parser reads an '=' in the comment as a second assignment
        meaning = meaning.replace(">= ", "at least ").replace("<= ", "at most ").replace("=", " is ")
        lines.append(f"{p.name}: {_PY_TYPE[p.type]} = {p.default!r}  # {meaning}")
    return "\n".join(lines)


def table(slug: str, ns: SimpleNamespace):
    """The parameters a chapter ran with, next to their defaults, as a Markdown table for the page (so
    a reader of a re-run page sees at once what was changed)."""
    import pandas as pd

    from IPython.display import Markdown

    from allocsim.pages.mdtable import markdown

    s = spec(slug)
    rows = []
    for p in s.params:
        v = getattr(ns, p.name)
        changed = v != p.default
        rows.append({"parameter": f"`{p.name}`", "value": f"**{v!r}**" if changed else repr(v),
                     "default": repr(p.default), "meaning": p.help})
    import html

    changed = [f"<code>{html.escape(f'{p.name} = {getattr(ns, p.name)!r}')}</code>" for p in s.params
               if getattr(ns, p.name) != p.default]
    title = ("Parameters of this page: " + (f"{len(changed)} changed from the defaults ({', '.join(changed)})"
                                             if changed else "all at their defaults"))
    body = markdown(pd.DataFrame(rows))
    opened = " open" if changed else ""
    return Markdown(f'<details class="allocsim-params"{opened}><summary>{title}</summary>\n\n{body}\n\n'
                    f"Re-run with `python -m allocsim run {slug} -p NAME VALUE`.\n\n</details>\n")


def _parameters_cell_span(text: str) -> tuple[int, int] | None:
    """(start, end) character offsets of the body of the ``parameters`` code cell in a MyST notebook."""
    import re

    for m in re.finditer(r"^```\{code-cell\}[^\n]*\n((?::[^\n]*\n)*)", text, flags=re.M):
        if re.search(r"^:tags:.*\bparameters\b", m.group(1), flags=re.M):
            start = m.end()
            end = text.index("\n```", start - 1)
            return start, end + 1
    return None


def parameters_cell(text: str) -> str | None:
    """The body of the ``parameters`` cell of a MyST notebook's text (None when it has none)."""
    span = _parameters_cell_span(text)
    return None if span is None else text[span[0]:span[1]].rstrip("\n")


def write_cell(slug: str, root=None) -> bool:
    """Rewrite the chapter's ``parameters`` cell from its spec (:func:`cell_source`); only that cell's
    body changes. Returns True when the file changed."""
    from pathlib import Path

    from allocsim.facts.paths import ROOT

    s = spec(slug)
    path = Path(root or ROOT) / s.source
    text = path.read_text()
    span = _parameters_cell_span(text)
    if span is None:
        raise AllocsimError(f"{s.source} has no code cell tagged 'parameters'")
    new = text[:span[0]] + cell_source(slug) + "\n" + text[span[1]:]
    if new != text:
        path.write_text(new)
        return True
    return False

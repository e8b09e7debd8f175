"""Chapter parameters: one declaration per parameter (type, default, allowed values, meaning),
used three ways — the CLI checks ``-p NAME VALUE`` before starting a kernel, ``allocsim params``
lists them, and each chapter validates its ``parameters`` cell at the top with :func:`validate`.

A chapter's spec lives in ``allocsim/pages/specs/<slug>.py`` as ``SPEC = ChapterSpec(...)``; a test checks
that the notebook's ``parameters`` cell defines exactly these names with these defaults.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from allocsim.facts.errors import AllocsimError

_TYPE_WORD = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


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
            else:
                value = raw
        except ValueError:
            raise AllocsimError(f"parameter {self.name} must be {self.allowed()}, not {raw!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        ok_type = (
            isinstance(value, bool) if self.type is bool
            else isinstance(value, (int, float)) and not isinstance(value, bool) if self.type is float
            else isinstance(value, int) and not isinstance(value, bool) if self.type is int
            else isinstance(value, str)
        )
        if not ok_type:
            raise AllocsimError(f"parameter {self.name} must be {self.allowed()}, not {value!r}")
        if self.type is float:
            value = float(value)
        if self.choices is not None and value not in self.choices:
            raise AllocsimError(f"parameter {self.name} must be {self.allowed()}, not {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise AllocsimError(f"parameter {self.name} must be {self.allowed()}, not {value!r}")
        return value


@dataclass(frozen=True)
class ChapterSpec:
    slug: str  # the short name used on the command line: `allocsim run <slug>`
    source: str  # path of the chapter source relative to the repository root
    title: str
    params: tuple[Param, ...] = field(default_factory=tuple)
    #: optional cross-parameter check: a function(namespace) raising AllocsimError
    check: Any = None

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
    and returns them as a namespace. Raises :class:`AllocsimError` with one sentence."""
    s = spec(slug)
    return s.validate({p.name: namespace[p.name] for p in s.params if p.name in namespace})


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

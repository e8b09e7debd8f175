"""Every glued value of a built book, as rows ``(chapter, name, value)``, and the difference between two
such exports: ``python -m allocsim numbers [--executed DIR] [-o FILE] [--diff OTHER.csv]``.

A chapter's numbers are the values it pastes into its prose and figures with myst-nb's ``glue``; papermill
records each as a display output whose metadata carries ``{"scrapbook": {"name": …}}`` and whose data
holds the value under ``application/papermill.record/<mime type>``. The export reads them from the
executed notebooks (:data:`allocsim.book.runner.EXECUTED`, or another folder of executed notebooks):

* a number or a string is its ``text/plain`` form (``24.25``, ``'7.0'``);
* a Markdown value (``glue(key, Markdown(...))``) is its Markdown text, whitespace collapsed;
* a chart or any other rich value is ``<mime type sha256:…>`` of its content (Altair's random element
  ids left out), so a changed figure shows as a changed row without its kilobytes of JSON.

The CSV has the header ``chapter,name,value``; rows are in the book's reading order and, within a
chapter, in the order the notebook glues them (a name glued twice keeps its last value, as the page does).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from allocsim.facts.errors import AllocsimError

PREFIX = "application/papermill.record/"
#: Mime types read as the value itself, in order of preference.
TEXT_TYPES = ("text/markdown", "text/plain")
FIELDS = ("chapter", "name", "value")
#: Parts of a rich output that change on every execution without the figure changing (Altair's random
#: element ids), left out of its hash.
_VOLATILE = re.compile(r"altair-viz-[0-9a-f]+")


def _value(data: dict) -> str:
    """One glued output's ``data`` (with or without papermill's record prefix) → the exported value."""
    plain = {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in data.items()}
    rich = [k for k in plain if k not in TEXT_TYPES]
    if rich:
        kind = sorted(rich)[0]
        content = plain[kind]
        blob = json.dumps(content, sort_keys=True) if not isinstance(content, (str, list)) else "".join(content)
        blob = _VOLATILE.sub("altair-viz", blob)
        return f"<{kind} sha256:{hashlib.sha256(blob.encode()).hexdigest()[:16]}>"
    for kind in TEXT_TYPES:
        if kind in plain:
            text = plain[kind]
            text = "".join(text) if isinstance(text, list) else str(text)
            return " ".join(text.split())
    return "<no value>"


def notebook_values(path: Path) -> dict[str, str]:
    """``{name: value}`` of every glue in one executed notebook, in glue order."""
    try:
        nb = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AllocsimError(f"cannot read the executed notebook {path}: {exc}") from None
    out: dict[str, str] = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []) or []:
            name = (o.get("metadata") or {}).get("scrapbook", {}).get("name")
            if name:
                out.pop(name, None)
                out[name] = _value(o.get("data") or {})
    return out


def _order(executed: Path) -> list[Path]:
    """The executed notebooks of a folder, in the book's reading order where the toc knows them."""
    found = sorted(p for p in Path(executed).glob("*.ipynb")
                   if not p.name.endswith((".partial.ipynb", ".FAILED.ipynb")))
    try:
        from allocsim.pages.toc import chapter_pages

        rank = {p.stem: i for i, p in enumerate(chapter_pages().values())}
    except Exception:  # noqa: BLE001 - a folder from another checkout may not match this toc
        rank = {}
    return sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def collect(executed: Path | None = None) -> list[dict]:
    """Rows ``{"chapter", "name", "value"}`` of every executed notebook in ``executed`` (default: the
    book's :data:`~allocsim.book.runner.EXECUTED`). Raises :class:`AllocsimError` in one sentence when
    the folder holds no executed notebook."""
    if executed is None:
        from allocsim.book.runner import EXECUTED

        executed = EXECUTED
    executed = Path(executed)
    books = _order(executed) if executed.is_dir() else []
    if not books:
        raise AllocsimError(f"no built book: {executed} holds no executed notebook (run `make book` first, "
                            "or point --executed at a folder of executed notebooks)")
    return [{"chapter": nb.stem, "name": k, "value": v} for nb in books for k, v in notebook_values(nb).items()]


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_csv(path: Path) -> list[dict]:
    """Rows of an export written by :func:`to_csv`; one sentence if the file is not such an export."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise AllocsimError(f"cannot read {path}: {exc.strerror or exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != FIELDS:
        raise AllocsimError(f"{path} is not a numbers export: its header must be {','.join(FIELDS)}, "
                            f"not {','.join(reader.fieldnames or ()) or 'empty'}")
    return list(reader)


@dataclass(frozen=True)
class Change:
    chapter: str
    name: str
    kind: str  # "added", "removed" or "changed"
    old: str | None
    new: str | None


def diff(old: list[dict], new: list[dict]) -> list[Change]:
    """What changed from ``old`` to ``new``: rows added, removed, and whose value changed (book order of
    ``new``, then the removed ones in the order of ``old``)."""
    before = {(r["chapter"], r["name"]): r["value"] for r in old}
    after = {(r["chapter"], r["name"]): r["value"] for r in new}
    out = []
    for key, v in after.items():
        if key not in before:
            out.append(Change(*key, "added", None, v))
        elif before[key] != v:
            out.append(Change(*key, "changed", before[key], v))
    out += [Change(*key, "removed", v, None) for key, v in before.items() if key not in after]
    return out


def diff_text(changes: list[Change], n_old: int, n_new: int) -> str:
    """The changes as lines for a terminal, with a one-line summary first."""
    counts = {k: sum(c.kind == k for c in changes) for k in ("changed", "added", "removed")}
    head = (f"{n_old} values before, {n_new} after: {counts['changed']} changed, {counts['added']} added, "
            f"{counts['removed']} removed")
    lines = [head if changes else head + " — no number changed"]
    for c in changes:
        if c.kind == "changed":
            lines.append(f"changed  {c.chapter}::{c.name}: {c.old} -> {c.new}")
        elif c.kind == "added":
            lines.append(f"added    {c.chapter}::{c.name}: {c.new}")
        else:
            lines.append(f"removed  {c.chapter}::{c.name}: {c.old}")
    return "\n".join(lines)

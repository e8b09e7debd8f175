"""Which code cells a page shows: one rule for every chapter, applied to the cells' tags.

The landing page promises short code cells that call the library and that every number is computed by
the code on the page, so the code that computes and plots is shown, collapsed behind a toggle
(myst-nb's ``hide-input``: the output shows, "Show code cell source" opens the code). Only plumbing
is removed. The rule, by what a cell's code is (read with :mod:`ast`):

* the ``parameters`` cell → ``remove-cell`` (the page shows the parameters table instead; papermill
  needs the tag ``parameters``);
* plumbing — only imports and set-up calls (``params.validate``, ``charts.enable``, display options) →
  ``remove-cell``;
* the cell that only shows the parameters table (``params.table(...)``) → ``remove-input``;
* every other cell (it computes, glues, tabulates or plots) → ``hide-input``.

Other tags (``raises-exception``, ``hide-output`` …) are kept. Apply it with::

    python -m allocsim.book.celltags            # rewrite the tags of chapters/*.md (tags only)
    python -m allocsim.book.celltags --check    # list the cells whose tags differ; exit 1 if any

``tests/test_book.py`` runs the check, so a new cell gets the rule too.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

MANAGED = ("remove-cell", "remove-input", "hide-input", "hide-cell", "remove-output")
#: Calls that set a chapter up without computing anything the reader needs to see.
SETUP_CALLS = ("params.validate", "charts.enable", "pd.set_option", "warnings.filterwarnings",
               "warnings.simplefilter", "alt.data_transformers.disable_max_rows")

_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n((?::[^\n]*\n)*)(.*?)^```\s*$", re.M | re.S)


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _is_setup(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return True
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
    return isinstance(value, ast.Call) and _call_name(value) in SETUP_CALLS


def visibility(source: str, tags: list[str]) -> str:
    """The managed tag a cell with this source and these tags should carry."""
    if "parameters" in tags:
        return "remove-cell"
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics: shown like any computing cell
        return "hide-input"
    if body and all(_is_setup(s) for s in body):
        return "remove-cell"
    if len(body) == 1 and isinstance(body[0], ast.Expr) and _call_name(body[0].value) == "params.table":
        return "remove-input"
    return "hide-input"


def _tags(header: str) -> tuple[list[str], re.Match | None]:
    m = re.search(r"^:tags:[ \t]*\[(.*?)\][ \t]*$", header, re.M)
    if not m:
        return [], None
    return [t.strip().strip("'\"") for t in m.group(1).split(",") if t.strip()], m


def retag(text: str) -> tuple[str, list[str]]:
    """The MyST notebook text with every code cell's tags following the rule, and a list of the cells
    that changed (their first line)."""
    out, pos, changed = [], 0, []
    for cell in _CELL.finditer(text):
        header, source = cell.group(1), cell.group(2)
        tags, m = _tags(header)
        want = visibility(source, tags)
        new_tags = [t for t in tags if t not in MANAGED] + [want]
        if new_tags != tags:
            first = next((line for line in source.splitlines() if line.strip()), "")
            changed.append(f"{first[:60]!r}: {tags} -> {new_tags}")
            line = f":tags: [{', '.join(new_tags)}]"
            if m:
                new_header = header[:m.start()] + line + header[m.end():]
            else:
                new_header = line + "\n" + header
            start = cell.start(1)
            out.append(text[pos:start] + new_header)
            pos = cell.end(1)
    out.append(text[pos:])
    return "".join(out), changed


def main(argv: list[str] | None = None) -> int:
    from allocsim.facts.paths import ROOT
    from allocsim.pages.toc import pages

    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    bad = 0
    for page in pages():
        if not page.notebook or not page.path.endswith(".md"):
            continue
        path = ROOT / page.path
        text = path.read_text()
        new, changed = retag(text)
        for c in changed:
            print(f"{page.path}: {c}")
        bad += len(changed)
        if changed and not check:
            path.write_text(new)
    if check and bad:
        print(f"{bad} cell(s) do not follow the rule; `python -m allocsim.book.celltags` retags them")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

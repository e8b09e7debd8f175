"""The book's pages in reading order, read from ``_toc.yml``, and which of them are executable chapters.

Both the page modules (links between chapters) and the runner (what to execute) read the book's
structure from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import ROOT
from allocsim.pages import params as params_mod


@dataclass(frozen=True)
class Page:
    path: str  # relative to ROOT, with extension
    notebook: bool  # a MyST notebook (executed by papermill) or a plain page

    @property
    def stem(self) -> str:
        return Path(self.path).stem


def _toc_files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                out.append(node[key])
        for v in node.values():
            if isinstance(v, (list, dict)):
                out.extend(_toc_files(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_toc_files(v))
    return out


def is_notebook(path: Path) -> bool:
    head = path.read_text().split("\n---", 1)[0] if path.suffix == ".md" else ""
    return path.suffix == ".ipynb" or ("jupytext:" in head and "kernelspec:" in head)


def pages() -> list[Page]:
    """Every page of the book in reading order, from ``_toc.yml``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    result = []
    for f in _toc_files(toc):
        matches = [ROOT / (f + ext) for ext in (".md", ".ipynb")] if not Path(f).suffix else [ROOT / f]
        found = [m for m in matches if m.exists()]
        if not found:
            raise AllocsimError(f"_toc.yml names {f!r}, but no such .md or .ipynb file exists")
        result.append(Page(str(found[0].relative_to(ROOT)), is_notebook(found[0])))
    return result


def chapter_pages() -> dict[str, Page]:
    """slug -> page, for every executable chapter (each must have a spec in allocsim/pages/specs)."""
    by_source = {s.source: s for s in params_mod.specs().values()}
    out = {}
    for p in pages():
        if p.notebook:
            if p.path not in by_source:
                raise AllocsimError(f"chapter {p.path} has no parameter spec in lib/allocsim/pages/specs (ChapterSpec with source={p.path!r})")
            out[by_source[p.path].slug] = p
    return out

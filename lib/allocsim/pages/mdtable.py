"""Render a DataFrame as a MyST Markdown table (myst-nb renders Markdown outputs as MyST).

Unlike a DataFrame's HTML, a Markdown table wraps long text within the page's column, so tables with
sources and quotes stay readable; cells may hold MyST (links, ``{doc}`` roles, code)."""

from __future__ import annotations

import pandas as pd


def _cell(v, fmt: str | None) -> str:
    if fmt is not None and v is not None and not (isinstance(v, float) and pd.isna(v)):
        s = format(v, fmt)
    elif v is None or (isinstance(v, float) and pd.isna(v)):
        s = ""
    else:
        s = str(v)
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(df: pd.DataFrame, formats: dict | None = None, index: bool = False) -> str:
    formats = formats or {}
    d = df.reset_index() if index else df
    cols = list(d.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in d.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, formats.get(c)) for c, v in zip(cols, row)) + " |")
    return "\n".join(lines)


def show(df: pd.DataFrame, formats: dict | None = None, index: bool = False):
    """The table as an IPython Markdown object, for the last line of a cell."""
    from IPython.display import Markdown

    return Markdown(markdown(df, formats, index))

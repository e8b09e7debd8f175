"""``glue`` for chapters: myst-nb's glue, with NumPy scalars turned into plain Python numbers first.

NumPy 2 prints ``np.float64(2.56)`` as the text/plain of a scalar, which myst-nb's ``{glue:text}`key:.2f```
cannot format. Chapters therefore use::

    from allocsim.pages.glue import glue
    glue("gain", value)            # display=False by default: the value appears only where the prose pastes it
"""

from __future__ import annotations

import numbers

import numpy as np


def plain(value):
    """NumPy scalars → Python int/float/bool; anything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def glue(key: str, value, display: bool = False):
    from myst_nb import glue as _glue

    value = glue_markdown(plain(value))
    return _glue(key, value, display=display)


class Md(str):
    """Text glued as Markdown (pasted with ``{glue:md}``): a cache name in backticks, a sentence with a link."""


def glue_markdown(value):
    """``value`` as myst-nb should record it: :class:`Md` → an IPython ``Markdown`` object."""
    if isinstance(value, Md):
        from IPython.display import Markdown

        return Markdown(str(value))
    return value


def glue_all(section, prefix: str = "", skip=()):
    """Glue every field of a dataclass under its own name (``prefix`` + field name), so a chapter's
    section is one call: the keys are the dataclass's field names, never list positions. Fields whose
    name starts with ``_`` or is in ``skip`` are not glued. Returns ``section``."""
    from dataclasses import fields

    for f in fields(section):
        if not f.name.startswith("_") and f.name not in skip:
            glue(prefix + f.name, glue_markdown(getattr(section, f.name)))
    return section


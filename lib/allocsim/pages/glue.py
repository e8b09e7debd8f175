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

    value = plain(value)
    return _glue(key, value, display=display)

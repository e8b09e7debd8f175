"""A papermill engine for the chapters: ``papermill --engine allocsim``.

It is papermill's own engine (nbclient) with one change in how a failed run ends. Papermill's CLI lets
:class:`papermill.exceptions.PapermillExecutionError` escape, so a rejected parameter ends in a
Python traceback of papermill's frames plus the notebook's. This engine, when a cell failed, writes
the output notebook the way papermill does on failure (the red "An Exception was encountered" cell
at the top, so it never looks finished), then prints the chapter's error as ONE line,
``ParameterError: parameter queue_depth must be …``, and exits with status 1.

Registered under the ``papermill.engine`` entry point in pyproject.toml (papermill loads every
engine of that group when it is imported).
"""

from __future__ import annotations

import sys

from papermill.engines import NBClientEngine
from papermill.exceptions import PapermillExecutionError


def first_error(nb) -> tuple[str, str] | None:
    """(ename, evalue) of the first error output in an executed notebook, papermill's rule:
    ``SystemExit`` with status 0 or empty is not an error."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                if out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0"):
                    continue
                return out.get("ename", "Error"), out.get("evalue", "")
    return None


def one_line(ename: str, evalue: str) -> str:
    """The error as one line: ``ename: evalue`` with the value's whitespace folded."""
    text = " ".join(str(evalue).split())
    return f"{ename}: {text}" if text else ename


class AllocsimEngine(NBClientEngine):
    """nbclient execution; a failed cell ends the process with one line on stderr and status 1."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, **kwargs):
        nb = super().execute_notebook(nb, kernel_name, output_path=output_path, **kwargs)
        error = first_error(nb)
        if error is None:
            return nb
        if output_path:
            # imported here: papermill.execute imports the engines, which load this module
            from papermill.execute import raise_for_execution_errors

            try:  # papermill's own failure notebook: the error banner at the top, an anchor at the cell
                raise_for_execution_errors(nb, output_path)
            except PapermillExecutionError:
                pass
        sys.stderr.flush()
        print(one_line(*error), file=sys.stderr, flush=True)
        raise SystemExit(1)

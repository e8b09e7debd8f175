"""Check every data file at once: what ``run`` and ``build`` do before a kernel starts, so that a malformed
file stops them with one sentence (exit status 2) instead of failing inside a chapter.

Each file is checked by the module that reads it, against its schema (:mod:`allocsim.facts.schema`):

========================================  ==============================================
``data/thread/{people,timeline,claims}``  :mod:`allocsim.facts.thread`
``data/kernel/*.yaml``                    :mod:`allocsim.facts.datafile` (and ``versions``, ``structs``)
``data/costs.csv``, ``data/costs-*.csv``  :mod:`allocsim.facts.costs`
``data/kernel/cpu.yaml``                  :mod:`allocsim.facts.cpu`
``data/bypass.yaml``                      :mod:`allocsim.facts.bypass`
``data/snapshots/*.json``                 :mod:`allocsim.facts.inspect`
========================================  ==============================================
"""

from __future__ import annotations

from allocsim.facts import bypass, costs, cpu, datafile, inspect, structs, thread, versions


def validate_all() -> list[str]:
    """Load and check every data file; raise the first :class:`~allocsim.facts.errors.DataError`. Returns the
    files checked (as ``data/...``)."""
    checked = []
    for name in datafile.KERNEL_SCHEMAS:
        datafile.kernel_yaml(name)
        checked.append(f"data/kernel/{name}")
    versions.reload()
    structs.names()
    for name in ("people", "timeline", "claims"):
        getattr(thread, name)()
        checked.append(f"data/thread/{name}.yaml")
    for name in costs.table_names():
        costs.load(name)
        checked.append(datafile.label(costs.path_of(name)))
    cpu.load()
    checked.append("data/kernel/cpu.yaml")
    bypass.load()
    checked.append("data/bypass.yaml")
    for path in inspect.shipped_snapshots():
        checked.append(datafile.label(path))
    return checked

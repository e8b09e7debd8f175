"""What every allocator model returns, so chapters and the IOPS analysis treat them alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Result:
    """The outcome of running one workload program through one model.

    ``cycles`` counts only what the allocator charged (not the program's ``gap`` cycles); ``paths``
    maps a path name (e.g. ``"alloc_fastpath"``, ``"barn_get"``) to ``(count, cycles)`` so every
    total is explainable as a sum; ``stats`` uses the kernel's SLUB_STATS names where one exists.
    ``event_path`` (one path code per program event, in program order) is what the differential tests
    compare against the pure-Python reference.
    """

    model: str
    n_alloc: int
    n_free: int
    cycles: float
    clock: np.ndarray  # per-CPU final clock (cycles), gaps included
    stats: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)  # name -> (count, cycles)
    lock_wait: float = 0.0
    event_path: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_ops(self) -> int:
        return self.n_alloc + self.n_free

    def paths_frame(self) -> pd.DataFrame:
        rows = [{"model": self.model, "path": k, "count": int(c), "cycles": float(cy)} for k, (c, cy) in self.paths.items()]
        return pd.DataFrame(rows, columns=["model", "path", "count", "cycles"])

    def combine(self, other: "Result", model: str | None = None) -> "Result":
        """Add a backend's result (e.g. the kmalloc calls a per-CPU list fell back to) to this one.
        Counts of alloc/free stay those of the front end; cycles, paths and stats add up (paths of
        the backend are prefixed with its model name), and so do the memory hierarchy's per-CPU counters
        (``extra["hierarchy"]``, None when neither had the hierarchy on; the front end's own stay in its
        result)."""
        paths = dict(self.paths)
        for k, (c, cy) in other.paths.items():
            paths[f"{other.model}:{k}"] = (c, cy)
        stats = dict(self.stats)
        for k, v in other.stats.items():
            stats[f"{other.model}:{k}"] = v
        return Result(
            model=model or f"{self.model}+{other.model}", n_alloc=self.n_alloc, n_free=self.n_free,
            cycles=self.cycles + other.cycles, clock=self.clock, stats=stats, paths=paths,
            lock_wait=self.lock_wait + other.lock_wait,
            extra={**self.extra, "backend": other, "hierarchy": _add(self.extra.get("hierarchy"), other.extra.get("hierarchy"))},
        )


def _add(a, b):
    """Two per-CPU counter arrays (``ncpu × counters``) summed; None stands for a model without the hierarchy."""
    if a is None or b is None:
        return b if a is None else a
    return np.asarray(a) + np.asarray(b)

from allocsim.facts import costs
from allocsim.facts.errors import AllocsimError
from allocsim.pages.params import ChapterSpec, Param

_TARGETS = ("all",) + tuple(f"{k} {a}" for k in ("6.19", "7.0") for a in ("per-CPU list", "kmalloc", "sheaf-256"))


def _check(ns):
    """Cross-parameter checks, one sentence each."""
    n = ns.samples
    if n & (n - 1):
        raise AllocsimError(f"parameter samples must be a power of two (Sobol' base samples), not {n}")


SPEC = ChapterSpec(
    slug="uncertainty",
    source="chapters/06-uncertainty.md",
    title="How sure is the verdict?",
    params=(
        Param("samples", int, 64,
              "Sobol' base samples N, a power of two: the sweep runs N × (uncertain inputs + 2) full reproductions "
              "(six configurations and a refit each)", low=2, high=65536),
        Param("seed", int, 0, "seed of the sample design (SALib's scrambled Sobol' points)", low=0, high=2**32 - 1),
        Param("ios", int, 8000, "IOs per configuration simulated in each sample (the first 4096 are warm-up)",
              low=4160, high=200_000),
        Param("clock_ghz", float, 3.0, "CPU clock that turns model cycles into ns", low=1.0, high=6.0),
        Param("calibrate_on", str, "all", "the reported figure(s) each sample's base cost is fitted to",
              choices=_TARGETS),
        Param("hierarchy", bool, True,
              "charge the models' loads and stores through the memory hierarchy (data/kernel/cpu.yaml: per-CPU L1d and "
              "L2, a shared LLC, core-to-core transfers, at clock_ghz); false: the flat l1_hit row per load and nothing per "
              "store, the model before the hierarchy"),
        Param("cost_table", str, "default", "which cycle-cost table the ranges come from",
              choices=tuple(costs.table_names())),
        Param("workers", int, 0, "local worker processes (0: one per core); ignored with a scheduler", low=0, high=512),
        Param("scheduler", str, "",
              "address of an existing Dask scheduler (tcp://HOST:PORT) to run the sweep on; empty: "
              "DASK_SCHEDULER_ADDRESS if set, else local worker processes"),
    ),
    check=_check,
    # The sweep runs samples × (inputs + 2) reproductions of `ios` IOs each: work = samples × ios.
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11, 2 local workers, other jobs
    # running): `/usr/bin/time -v python -m allocsim run uncertainty` (defaults, 8 inputs) took 131.9 s
    # wall, 505 MiB maximum resident set; with cost model v2's 11 inputs (832 reproductions) the runner's
    # record of the same command is 137.5 s. Memory is per worker and does not grow with the samples.
    work=lambda ns: ns.samples * ns.ios,
    # With the memory hierarchy on (the default since it was switched on), the runner's record of the same
    # command, load average about 2.5: 176.5 s, 502 MiB; with `-p hierarchy false` 125.2 s. The difference is
    # the hierarchy's fixed cost per model run (allocating and zeroing its tag arrays), not the accesses.
    measured=((64 * 8000, 176.5, 505.0),),
)

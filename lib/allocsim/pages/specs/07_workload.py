from pathlib import Path

from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import ROOT
from allocsim.pages.params import ChapterSpec, Param

SHIPPED = "data/traces/iomap_dio-fio-randread-qd128.csv.gz"


def _check(ns):
    if ns.trace != "live":
        p = Path(ns.trace)
        p = p if p.is_absolute() else ROOT / p
        if not p.exists():
            raise AllocsimError(f"parameter trace must be 'live' or a trace written by `python -m allocsim record` "
                                f"(a path, relative to the repository or absolute); {str(p)!r} does not exist")


SPEC = ChapterSpec(
    slug="workload",
    source="chapters/07-workload.md",
    title="Your workload",
    params=(
        Param("trace", str, SHIPPED,
              "the recorded trace the page measures and replays: a file written by `python -m allocsim record` "
              "(default: the one shipped in data/traces/), or 'live' to record 2 s of fio here now (needs root, "
              "tracefs and fio; otherwise the page says why and uses the shipped trace)"),
        Param("live_seconds", float, 2.0, "how long a live recording runs", low=0.5, high=30.0),
        Param("edges", str, "trim",
              "objects allocated before recording began: 'trim' leaves their frees out and reports them; 'strict' "
              "refuses such a trace", choices=("trim", "strict")),
        Param("timing", str, "recorded",
              "'recorded': the time between a CPU's events becomes non-allocator cycles, so the models interleave "
              "the CPUs as the machine did; 'none': events back to back", choices=("recorded", "none")),
        Param("clock_ghz", float, 3.0, "CPU clock that turns recorded ns into cycles and model cycles into ns",
              low=1.0, high=6.0),
        Param("base_ns", float, 0.0,
              "your base cost per IO in ns (everything but the allocator) for the IOPS comparison; 0 = chapter 5's "
              "base, calibrated on the thread's six figures", low=0.0, high=1_000_000.0),
        Param("hierarchy", bool, True,
              "charge the models' loads and stores through the memory hierarchy (data/kernel/cpu.yaml: per-CPU L1d and "
              "L2, a shared LLC, core-to-core transfers, at clock_ghz); false: the flat l1_hit row per load and nothing per "
              "store, the model before the hierarchy"),
        Param("seed", int, 0, "seed of the interrupt placement in the replay", low=0, high=2**31 - 1),
    ),
    check=_check,
    # Measures and replays one trace (the shipped one; 'live' adds live_seconds of recording): fixed work.
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11): the runner's record of a default
    # `make book` execution (`_build/executed/<page>.run.json`: duration_s, peak_rss_mib; the memory is the
    # largest kernel of the build so far, an upper bound).
    work=lambda ns: 1,
    # With the memory hierarchy on: the runner's record of `python -m allocsim run workload`, 6.4 s, 666 MiB
    # (4.6 s, 537 MiB with `-p hierarchy false`).
    measured=((1, 6.4, 666.0),),
)

import importlib

from allocsim.facts import costs
from allocsim.facts import steps
from allocsim.facts.errors import AllocsimError
from allocsim.pages.params import ChapterSpec, Param

#: The blk-mq topology parameters: chapter 2's (one definition).
_PCPU = importlib.import_module("allocsim.pages.specs.02_pcpu").SPEC
_TOPOLOGY = ("polled", "irq_same_cpu_share", "irq_same_llc_share", "irq_other_llc_share", "nr_hw_queues", "rq_affinity")


def _switch(name: str, sw: dict) -> Param:
    """One kernel hot-path switch of data/kernel/hooks.yaml as a bool parameter; the default is a distribution
    kernel's, and the help text says whose (the source of the default)."""
    return Param(name, bool, sw["default"],
                 f"kernel switch: {sw['what']}. Default {'on' if sw['default'] else 'off'}, a distribution kernel's: "
                 f"{sw['source']}")


#: The kernel's hot-path switches (cost model v2), one parameter each, in hooks.yaml's order.
SWITCHES = tuple(_switch(k, sw) for k, sw in steps.switches().items())

_TARGETS = ("all",) + tuple(f"{k} {a}" for k in ("6.19", "7.0") for a in ("per-CPU list", "kmalloc", "sheaf-256"))


def _check(ns):
    """Cross-parameter checks, one sentence each (the io_uring loop's own rules)."""
    for name in ("submit_batch", "complete_batch"):
        if getattr(ns, name) > ns.queue_depth:
            raise AllocsimError(f"parameter {name} ({getattr(ns, name)}) must not exceed queue_depth ({ns.queue_depth})")
    if ns.ios < 4096 + 2 * ns.submit_batch:
        raise AllocsimError(f"parameter ios ({ns.ios}) must be at least {4096 + 2 * ns.submit_batch}: "
                            f"4096 warm-up IOs plus two submit batches")
    total = ns.irq_same_cpu_share + ns.irq_same_llc_share + ns.irq_other_llc_share
    if abs(total - 1.0) > 1e-9:
        raise AllocsimError("parameters irq_same_cpu_share + irq_same_llc_share + irq_other_llc_share must add up to 1, "
                            f"not {total:g}")


SPEC = ChapterSpec(
    slug="iops",
    source="chapters/05-iops.md",
    title="Reproducing the IOPS comparison",
    params=(
        Param("kernel", str, "7.0",
              "the kernel whose per-CPU-list edge the breakdown, the tornado chart and the verdict examine "
              "(7.0 stands for the thread's 7.0-rc4)", choices=("6.19", "7.0")),
        Param("allocator", str, "sheaf-256",
              "the allocator the per-CPU list is compared with there: the dedicated cache with sheaves "
              "(Dave Chinner's proposal) or plain kmalloc", choices=("sheaf-256", "kmalloc")),
        Param("queue_depth", int, 128, "t/io_uring -d: IOs in flight per submitter", low=1, high=1024),
        Param("submit_batch", int, 32, "t/io_uring -s: IOs submitted per io_uring_enter (32 is t/io_uring's own default and the book's assumption: the thread gives no command line)", low=1, high=1024),
        Param("complete_batch", int, 32, "t/io_uring -c: completions waited for per io_uring_enter (32 likewise the book's assumption)", low=1, high=1024),
        *(_PCPU.param(name) for name in _TOPOLOGY),
        Param("submitters", int, 1, "t/io_uring -n: submitter threads, one CPU each", low=1, high=16),
        Param("object_size", int, 96, "bytes per iomap_dio (sizeof(struct iomap_dio) is 96 without lockdep); "
              "the per-CPU list's kmalloc fallback asks for 8 more", low=8, high=4096),
        Param("sheaf_capacity", int, 256, "sheaf_capacity of the dedicated iomap_dio cache", low=1, high=1024),
        Param("slab_account", bool, False,
              "create the dedicated cache with SLAB_ACCOUNT (as in Dave Chinner's snippet); the thread does not say "
              "whether the tested cache had it — the page shows both"),
        *SWITCHES,
        Param("hierarchy", bool, True,
              "charge the models' loads and stores through the memory hierarchy (data/kernel/cpu.yaml: per-CPU L1d and "
              "L2, a shared LLC, core-to-core transfers, at clock_ghz); false: the flat l1_hit row per load and nothing per "
              "store, the model before the hierarchy"),
        Param("cost_table", str, "default", "which cycle-cost table (data/costs.csv or data/costs-<name>.csv)",
              choices=tuple(costs.table_names())),
        Param("cv", float, 0.005, "run-to-run coefficient of variation of one t/io_uring IOPS figure (noise model)",
              low=0.0005, high=0.05),
        Param("calibrate_on", str, "all",
              "the reported figure(s) the base cost is fitted to: all six (least squares) or one configuration",
              choices=_TARGETS),
        Param("clock_ghz", float, 3.0, "CPU clock that turns model cycles into ns (the thread does not state one)",
              low=1.0, high=6.0),
        Param("ios", int, 20_000, "IOs per submitter simulated (the first 4096 are warm-up)", low=4160, high=200_000),
        Param("seed", int, 0, "seed of the workload's random draws (interrupt CPUs, completion order)",
              low=0, high=2**31 - 1),
    ),
    check=_check,
    # Every allocator's run simulates `ios` IOs per submitter.
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11): the runner's record of a default
    # `make book` execution (`_build/executed/<page>.run.json`: duration_s, peak_rss_mib; the memory is the
    # largest kernel of the build so far, an upper bound).
    work=lambda ns: ns.ios * ns.submitters,
    # With the memory hierarchy on (the default since it was switched on): the runner's record of
    # `python -m allocsim run iops` on the same machine under a load average of about 2 — 16.5 s, 519 MiB
    # (with `-p hierarchy false` the same record says 10.0 s, 380 MiB; before it, a `make book` 11.4 s).
    measured=((20_000, 16.5, 519.0),),
    # memory per simulated IO as chapter 2 measured it (the same per-IO event arrays): (461 − 268) MiB / 180,000 IOs
    mib_per_event=(461.0 - 268.0) / 180_000,
)

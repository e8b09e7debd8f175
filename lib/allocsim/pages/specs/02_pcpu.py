from allocsim.facts import kconfig
from allocsim.facts.errors import AllocsimError
from allocsim.pages.params import ChapterSpec, Param
from allocsim.pages.specs import CLOCK_GHZ


def _check(ns):
    total = ns.irq_same_cpu_share + ns.irq_same_llc_share + ns.irq_other_llc_share
    if abs(total - 1.0) > 1e-9:
        raise AllocsimError("parameters irq_same_cpu_share + irq_same_llc_share + irq_other_llc_share must add up to 1, "
                            f"not {total:g}")
    for name in ("submit_batch", "complete_batch"):
        if getattr(ns, name) > ns.queue_depth:
            raise AllocsimError(f"parameter {name} ({getattr(ns, name)}) must not exceed queue_depth ({ns.queue_depth})")
    if ns.warmup < ns.queue_depth:
        raise AllocsimError(f"parameter warmup ({ns.warmup}) must be at least queue_depth ({ns.queue_depth})")
    if ns.ios < ns.warmup + ns.submit_batch:
        raise AllocsimError(f"parameter ios ({ns.ios}) must exceed warmup ({ns.warmup}) by at least submit_batch ({ns.submit_batch})")
    if ns.threshold > ns.max_nr:
        raise AllocsimError(f"parameter threshold ({ns.threshold}) must not exceed max_nr ({ns.max_nr})")


SPEC = ChapterSpec(
    slug="pcpu",
    source="chapters/02-pcpu.md",
    title="The per-CPU cache patch",
    params=(
        Param("ncpu", int, 64, "CPUs of the machine, for the machine-wide memory figures", low=1, high=kconfig.nr_cpus_max()),
        Param("submitters", int, 1, "io_uring submitter threads, one per CPU (t/io_uring -n)", low=1, high=64),
        Param("queue_depth", int, 128, "IOs in flight per submitter (t/io_uring -d)", low=1, high=4096),
        Param("submit_batch", int, 32, "IOs submitted per io_uring_enter (t/io_uring -s; 32 is t/io_uring's own default and the book's assumption: the thread gives no command line)", low=1, high=4096),
        Param("complete_batch", int, 32, "completions waited for per io_uring_enter (t/io_uring -c; 32 likewise the book's assumption)", low=1, high=4096),
        Param("polled", bool, False, "polled I/O (REQ_POLLED, t/io_uring -p1): every completion in task context on the "
              "submitter; false: interrupts (-p0), placed by the shares below"),
        Param("irq_same_cpu_share", float, 1.0, "share of interrupts on the submitting CPU (completed there in hardirq "
              "context)", low=0.0, high=1.0),
        Param("irq_same_llc_share", float, 0.0, "share of interrupts on another CPU sharing the submitter's LLC "
              "(completed in hardirq context on that CPU)", low=0.0, high=1.0),
        Param("irq_other_llc_share", float, 0.0, "share of interrupts on a CPU in another LLC (sent back by IPI: "
              "BLOCK_SOFTIRQ on the submitter)", low=0.0, high=1.0),
        Param("nr_hw_queues", int, 0, "hardware queues of the device: 0 for one per CPU (NVMe), 1 for a single queue "
              "(completions then raise BLOCK_SOFTIRQ on the IRQ CPU)", low=0, high=4096),
        Param("rq_affinity", int, 1, "/sys/block/<dev>/queue/rq_affinity: 0 completes where the interrupt lands, 1 "
              "sends back across LLCs (QUEUE_FLAG_SAME_COMP, the default), 2 sends back from any other CPU "
              "(QUEUE_FLAG_SAME_FORCE)", choices=(0, 1, 2)),
        Param("completion_order", str, "fifo", "order in which the device completes in-flight IOs", choices=("fifo", "random")),
        Param("threshold", int, 16, "PCPU_CACHE_IRQ_THRESHOLD: IRQ-list length that allows a splice", low=1, high=65536),
        Param("max_nr", int, 256, "DIO_ALLOC_CACHE_MAX: objects one CPU may cache", low=1, high=65536),
        Param("kmalloc", str, "slub", "the kmalloc model behind the list's misses: fixed-cost stand-in or the SLUB models",
              choices=("standin", "slub")),
        Param("kernel", str, "7.0", "kernel version for the SLUB models and the memory comparison", choices=kconfig.VERSIONS),
        Param("ios", int, 20000, "IOs per submitter in each simulated run", low=512, high=2_000_000),
        Param("warmup", int, 4096, "IOs per submitter left out of the steady-state figures", low=1, high=1_000_000),
        Param("seed", int, 0, "seed of the random interrupt CPUs and completion order", low=0),
        Param("hierarchy", bool, True, "the memory hierarchy (data/kernel/cpu.yaml: L1, L2, shared LLC, transfers between "
              "CPUs) charges the models' loads and stores, and the workload's CPUs are numbered as its LLCs are; false: "
              "the flat model (every load an l1_hit)"),
        Param("clock_ghz", float, CLOCK_GHZ, "CPU clock: expresses cycles as nanoseconds and sets the base work per IO (the thread's time per IO in cycles)", low=0.5, high=6.0),
    ),
    check=_check,
    # Time and memory of `run pcpu` scale with the IOs simulated (every sweep of the chapter runs
    # `ios` IOs per submitter): two executions of the whole chapter measured with `run pcpu -p ios N`
    # on a shared 2-CPU machine (AMD EPYC, Python 3.11, load about 5), with the memory hierarchy on and the
    # cross-CPU section, (IOs simulated, seconds, peak MiB).
    work=lambda ns: ns.ios * ns.submitters,
    measured=((20_000, 22.3, 488.0), (200_000, 123.7, 655.0)),
)

from allocsim.errors import AllocsimError
from allocsim.params import ChapterSpec, Param


def _check(ns):
    total = ns.task_share + ns.hardirq_share + ns.softirq_share
    if abs(total - 1.0) > 1e-9:
        raise AllocsimError(f"parameters task_share + hardirq_share + softirq_share must add up to 1, not {total:g}")
    for name in ("submit_batch", "complete_batch"):
        if getattr(ns, name) > ns.queue_depth:
            raise AllocsimError(f"parameter {name} ({getattr(ns, name)}) must not exceed queue_depth ({ns.queue_depth})")
    if ns.warmup < ns.queue_depth:
        raise AllocsimError(f"parameter warmup ({ns.warmup}) must be at least queue_depth ({ns.queue_depth})")
    if ns.ios < ns.warmup + ns.submit_batch:
        raise AllocsimError(f"parameter ios ({ns.ios}) must exceed warmup ({ns.warmup}) by at least submit_batch ({ns.submit_batch})")
    if ns.machine_cpus < ns.submitters + (1 if ns.cross_cpu_share > 0 else 0):
        raise AllocsimError(f"parameter machine_cpus ({ns.machine_cpus}) must be at least the CPUs the workload uses")


SPEC = ChapterSpec(
    slug="cpuslab",
    source="chapters/03-cpu-slab.md",
    title="kmalloc before sheaves",
    params=(
        Param("kernel", str, "6.19", "kernel with the cpu slab (sheaves appeared for every cache in 7.0)",
              choices=("6.18", "6.19")),
        Param("object_size", int, 96, "bytes requested from kmalloc (sizeof(struct iomap_dio) is 96: kmalloc-96)",
              low=1, high=8192),
        Param("machine_cpus", int, 64, "CPUs present, which sets the slab order and objects per slab (calculate_order)",
              low=1, high=8192),
        Param("submitters", int, 1, "io_uring submitter threads, one per CPU (t/io_uring -n)", low=1, high=64),
        Param("queue_depth", int, 128, "IOs in flight per submitter (t/io_uring -d)", low=1, high=4096),
        Param("submit_batch", int, 32, "IOs submitted per io_uring_enter (t/io_uring -s)", low=1, high=4096),
        Param("complete_batch", int, 32, "completions waited for per io_uring_enter (t/io_uring -c)", low=1, high=4096),
        Param("task_share", float, 0.0, "share of completions in task context (polled IO, t/io_uring -p1)", low=0.0, high=1.0),
        Param("hardirq_share", float, 1.0, "share of completions in hardirq context (interrupts, -p0)", low=0.0, high=1.0),
        Param("softirq_share", float, 0.0, "share of completions in softirq context", low=0.0, high=1.0),
        Param("cross_cpu_share", float, 0.0, "share of completions that run on another CPU than the submitter's",
              low=0.0, high=1.0),
        Param("completion_order", str, "fifo", "order in which the device completes in-flight IOs",
              choices=("fifo", "random")),
        Param("ios", int, 20000, "IOs per submitter in each simulated run", low=512, high=2_000_000),
        Param("warmup", int, 4096, "IOs per submitter left out of the steady-state figures", low=1, high=1_000_000),
        Param("seed", int, 0, "seed of the random completion contexts, CPUs and order", low=0),
        Param("clock_ghz", float, 3.0, "CPU clock, only to express cycles as nanoseconds", low=0.5, high=6.0),
    ),
    check=_check,
)

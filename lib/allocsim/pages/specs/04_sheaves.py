from allocsim.facts import kconfig
from allocsim.facts.errors import AllocsimError
from allocsim.pages.params import ChapterSpec, Param


def _check(ns):
    if ns.k_small >= ns.k_large:
        raise AllocsimError(f"parameter k_small ({ns.k_small}) must be smaller than k_large ({ns.k_large})")
    if ns.cpus_per_node and ns.cpus_per_node > ns.machine_cpus:
        raise AllocsimError(f"parameter cpus_per_node ({ns.cpus_per_node}) must not exceed machine_cpus ({ns.machine_cpus})")
    if ns.threads > ns.machine_cpus:
        raise AllocsimError(f"parameter threads ({ns.threads}) must not exceed machine_cpus ({ns.machine_cpus})")


SPEC = ChapterSpec(
    slug="sheaves",
    source="chapters/04-sheaves.md",
    title="Sheaves and the barn",
    params=(
        Param("object_size", int, 256, "bytes per object of the module's dedicated cache (the thread: 256)",
              low=8, high=4096),
        Param("capacity", int, 256, "the explicit sheaf_capacity compared with the default (the thread: 256)",
              low=1, high=1024),
        Param("k_small", int, 32, "objects each thread allocates then frees per round, the small case (the thread: 32)",
              low=1, high=4096),
        Param("k_large", int, 128, "the large case (the thread: 128)", low=2, high=4096),
        Param("threads", int, 8, "threads (one per CPU) of the 'multithreaded environment' (the thread does not say)",
              low=2, high=64),
        Param("free_order", str, "fifo", "order of each round's frees (the thread does not say)",
              choices=("fifo", "lifo", "random")),
        Param("kernel", str, "7.0", "kernel for the capacity sweep, the heat maps and the threads sweep",
              choices=kconfig.VERSIONS),
        Param("cpus_per_node", int, 0, "CPUs per NUMA node, one barn each (0: all CPUs on one node)", low=0, high=kconfig.nr_cpus_max()),
        Param("machine_cpus", int, 64, "CPUs present, which sets the slab order and objects per slab (calculate_order)",
              low=1, high=kconfig.nr_cpus_max()),
        Param("seed", int, 0, "seed of the random free order", low=0),
        Param("hierarchy", bool, True, "charge every load and store through the memory hierarchy of the default CPU "
              "(L1, L2, LLC, transfers between cores; data/kernel/cpu.yaml); false: every load an L1 hit"),
        Param("bench_kernel", str, "6.18", "cpu-slab kernel of the single-object validation (the sheaves series was "
              "measured on v6.17-rc3 with the series, which 6.18 merged)", choices=("6.18", "6.19")),
        Param("bench_object_size", int, 64, "object size of the sheaves series' benchmark cache (the cover letter "
              "does not say)", low=8, high=4096),
    ),
    check=_check,
    # The microbenchmark's rounds scale with the threads and the objects per round (K small + K large).
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11): the runner's record of a default
    # execution (`<build>/runs/<page>/….run.json`: duration_s, peak_rss_mib; the memory is the largest
    # kernel of the build so far, an upper bound) — with the single-object validation, 23.1 s at a load
    # average of about 4 (13.1 s before it, on a quieter machine); with the memory hierarchy on, the order map
    # and the batch-size validation, 35.0 s and 561 MiB at a load average of about 4.
    work=lambda ns: ns.threads * (ns.k_small + ns.k_large),
    measured=((8 * (32 + 128), 35.0, 561.0),),
)

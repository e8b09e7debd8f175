"""Chapter 3's parameters. The io_uring workload's parameters are the ones chapter 2 declares (same
names, defaults and ranges: one definition, taken from that spec); the cross-checks are the workload's
own, through the one mapping from parameters to the workload (:func:`allocsim.workloads.adapter.io_uring`)."""

import importlib

from allocsim.facts import kconfig
from allocsim.workloads import adapter
from allocsim.facts.errors import AllocsimError
from allocsim.pages.params import ChapterSpec, Param

_PCPU = importlib.import_module("allocsim.pages.specs.02_pcpu").SPEC
_IO = ("submitters", "queue_depth", "submit_batch", "complete_batch", "polled", "irq_same_cpu_share",
       "irq_same_llc_share", "irq_other_llc_share", "nr_hw_queues", "rq_affinity", "completion_order", "ios", "warmup",
       "seed", "clock_ghz", "hierarchy")


def _check(ns):
    if ns.machine_cpus < adapter.io_uring(ns).n_cpus:
        raise AllocsimError(f"parameter machine_cpus ({ns.machine_cpus}) must be at least the CPUs the workload uses")


SPEC = ChapterSpec(
    slug="cpuslab",
    source="chapters/03-cpu-slab.md",
    title="kmalloc before sheaves",
    params=(
        Param("kernel", str, "6.19", "kernel with the cpu slab (sheaves appeared for every cache in 7.0)",
              choices=("6.18", "6.19")),
        Param("object_size", int, 96, "bytes requested from kmalloc (sizeof(struct iomap_dio) is 96: kmalloc-96)",
              low=1, high=kconfig.nr_cpus_max()),
        Param("machine_cpus", int, 64, "CPUs present, which sets the slab order and objects per slab (calculate_order)",
              low=1, high=kconfig.nr_cpus_max()),
        *(_PCPU.param(name) for name in _IO),
    ),
    check=_check,
    # One walk of the 6.19 cpu slab per configuration on the page: fixed work.
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11): the runner's record of a default
    # `make book` execution (`_build/executed/<page>.run.json`: duration_s, peak_rss_mib; the memory is the
    # largest kernel of the build so far, an upper bound).
    work=lambda ns: 1,
    measured=((1, 8.2, 388.0),),
)

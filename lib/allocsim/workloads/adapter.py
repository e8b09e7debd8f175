"""From a chapter's parameters to the io_uring workload: the one mapping every page uses.

A chapter's parameter namespace ``P`` (``allocsim.pages.params.validate`` returns one) carries some of
the fields of :class:`allocsim.workloads.iouring.IOUring` under the same names (:data:`PARAMETERS`:
``submitters``, ``queue_depth``, ``submit_batch``, ``complete_batch``, ``ios``, ``warmup``, the blk-mq
topology — ``polled``, ``irq_same_cpu_share``, ``irq_same_llc_share``, ``irq_other_llc_share``,
``nr_hw_queues``, ``rq_affinity``, ``llc_cpus``, from which the completion's context and CPU follow
(:mod:`allocsim.workloads.blkmq`) — ``completion_order``, ``seed``; and, for the pre-v2 model only,
``placement`` with the independent shares). :func:`io_uring` passes those through, leaves every field the chapter does
not declare at ``IOUring``'s default (the one place the t/io_uring defaults live), applies the caller's
overrides, and validates the result (with the memory hierarchy on — a ``hierarchy`` attribute of ``P`` that is
true — the LLCs are the hierarchy's, :func:`hierarchy_llc_cpus`): a combination the workload cannot run (``submit_batch`` above
``queue_depth``, a warm-up shorter than the queue, interrupt shares that do not add up to one) stops with one
sentence naming the parameters — nothing is clamped or adjusted behind the reader's back.

**The batches are the book's assumption.** The defaults ``-d128 -s32 -c32`` follow t/io_uring's own
defaults; the thread names the tool and the completion mode but never gives the batch options, so
``submit_batch = complete_batch = 32`` is what the book assumes, not the authors' stated command line.

**Base work.** Every page that runs the io_uring loop through an allocator model puts the same
non-allocator work before each submission (``submit_gap``): :func:`base_work_cycles`, the thread's own
time per IO with plain ``kmalloc`` on 6.19 (``1 / IOPS``, ``data/thread/claims.yaml``) at the page's
clock. Without it the completion interrupts of a whole batch arrive back to back, and on 7.0 a free in
interrupt context finds the per-CPU sheaves lock taken far more often than a real task would make it; with
it the same quantity (say, 7.0 ``kmalloc`` cycles per IO) has the same value on every page. The IOPS
chapter calibrates this base cost instead of reading it off the thread; the allocator cycles it reports
for the default workload are the same.
"""

from __future__ import annotations

from dataclasses import fields, replace
from functools import lru_cache

from allocsim.facts import cpu as _cpu
from allocsim.facts import thread
from allocsim.facts.datafile import on_clear
from allocsim.facts.errors import AllocsimError
from allocsim.workloads.iouring import INDEPENDENT, TOPOLOGY, IOUring, steady_window

#: The IOUring fields, in declaration order (what an override may set).
FIELDS = tuple(f.name for f in fields(IOUring))
#: The fields a chapter parameter of the same name sets. Not ``ncpu`` (a chapter's ``ncpu`` is the
#: machine's CPU count, not the CPUs the workload runs on), nor the gaps and ``drain`` (set here or by
#: overrides).
PARAMETERS = ("submitters", "queue_depth", "submit_batch", "complete_batch", "ios", "warmup", *TOPOLOGY,
              "placement", *INDEPENDENT, "completion_order", "seed")
#: The thread's figure whose time per IO stands for the non-allocator work of one IO.
BASE_WORK_FIGURE = ("6.19", "kmalloc")


def defaults() -> IOUring:
    """t/io_uring as the book models it when a page sets nothing (``IOUring()``)."""
    return IOUring()


@lru_cache(maxsize=1)
def base_work_ns() -> float:
    """Non-allocator time per IO, in ns: the thread's 6.19 ``kmalloc`` time per IO (1/IOPS). Read once (a page
    builds its workload for every run; ``allocsim.facts.datafile.clear_cache`` forgets it)."""
    f = thread.iops_figures().set_index(["kernel", "allocator"])
    return float(f.loc[BASE_WORK_FIGURE, "ns_per_io"])


on_clear(base_work_ns.cache_clear)


def base_work_cycles(clock_ghz: float) -> int:
    """:func:`base_work_ns` at ``clock_ghz``, in whole cycles (the workload's ``submit_gap``)."""
    if isinstance(clock_ghz, bool) or not isinstance(clock_ghz, (int, float)) or not clock_ghz > 0:
        raise AllocsimError(f"clock_ghz must be a number > 0, not {clock_ghz!r}")
    return int(round(base_work_ns() * clock_ghz))


def io_uring(P, *, base_work: bool = True, **overrides) -> IOUring:
    """The io_uring run chapter parameters ``P`` describe, with ``overrides`` replacing fields.

    ``base_work`` (default) puts :func:`base_work_cycles` of ``P.clock_ghz`` before each submission
    unless ``submit_gap`` is overridden. Raises :class:`AllocsimError` (one sentence) for an override
    that is not a workload field, a page without ``clock_ghz`` that asks for base work, or a combination
    the workload cannot measure (see :func:`allocsim.workloads.iouring.steady_window`)."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise AllocsimError(f"the io_uring workload has no field {unknown[0]!r}; its fields are {', '.join(FIELDS)}")
    given = {name: getattr(P, name) for name in PARAMETERS if hasattr(P, name)}
    if base_work and "submit_gap" not in overrides:
        if not hasattr(P, "clock_ghz"):
            raise AllocsimError("the io_uring base work per IO needs the page's clock_ghz parameter")
        given["submit_gap"] = base_work_cycles(P.clock_ghz)
    fields_ = {**given, **overrides}
    llc = hierarchy_llc_cpus(getattr(P, "hierarchy", False))
    if llc and not fields_.get("llc_cpus") and fields_.get("placement", "blkmq") == "blkmq":
        fields_["llc_cpus"] = llc
    cfg = replace(defaults(), **fields_).validate()
    _measurable(cfg)
    return cfg


def hierarchy_llc_cpus(hierarchy) -> int:
    """CPUs per last-level cache of the memory hierarchy a page runs its models with — ``cpus_per_llc`` of the
    default CPU (``data/kernel/cpu.yaml``) for ``True``, of the geometry itself for an
    :class:`allocsim.facts.cpu.Geometry` — or 0 when the hierarchy is off.

    :func:`io_uring` makes it the workload's ``llc_cpus`` (unless the page sets ``llc_cpus`` itself): the
    hierarchy puts CPU ``c`` in LLC ``c // cpus_per_llc``, so an interrupt "on another CPU of the LLC" must land
    on a CPU of that group and one "in another LLC" beyond it — with the automatic numbering (the submitters
    plus one CPU per LLC) CPU 1 would be "another LLC" to the workload and the same LLC to the cache model."""
    if hierarchy is None or hierarchy is False:
        return 0
    if hierarchy is True:
        return _cpu.geometry().cpus_per_llc
    if isinstance(hierarchy, _cpu.Geometry):
        return hierarchy.cpus_per_llc
    raise AllocsimError(f"hierarchy must be true, false or an allocsim.facts.cpu.Geometry, not {hierarchy!r}")


def _measurable(cfg: IOUring) -> None:
    """The steady-state window must exist: a warm-up at least a queue long, and at least one batch after it."""
    steady_window(cfg)


def t_io_uring(cfg: IOUring) -> str:
    """The t/io_uring options a workload stands for (``-p0 -d128 -s32 -c32 -n1``); ``-p1`` for polled I/O
    (with ``placement='independent'``: when every completion is in task context)."""
    p = int(cfg.polled) if cfg.placement == "blkmq" else int(cfg.task_share == 1.0)
    return f"-p{p} -d{cfg.queue_depth} -s{cfg.submit_batch} -c{cfg.complete_batch} -n{cfg.submitters}"

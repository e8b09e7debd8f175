"""The six configurations of the thread's IOPS measurements, run through the allocator models.

Each configuration is a (kernel, allocator) pair of :data:`allocsim.analysis.iops.CONFIGS`; this module says which
model runs it and on which cache (kernel sources: v6.19 and v7.0 ``mm/slub.c``, ``fs/iomap/direct-io.c``;
the thread: ``data/thread/thread.txt``):

=================  =======================================================================================
kmalloc            ``kmalloc(sizeof(struct iomap_dio), GFP_KERNEL)`` (``__iomap_dio_rw()`` in
                   ``fs/iomap/direct-io.c``): the kmalloc cache of that size — on 6.19 the cpu slab
                   (``slab_alloc_node()``/``do_slab_free()`` of v6.19 ``mm/slub.c``), on 7.0 sheaves with the
                   default capacity of ``calculate_sheaf_capacity()`` (v7.0 ``mm/slub.c``);
                   :func:`allocsim.kernel.slub.run` with ``kmalloc=True``.
sheaf-256          Dave Chinner's proposal: a dedicated ``kmem_cache_create("iomap_dio", ...)`` with
                   ``.sheaf_capacity = 256`` — on 6.19 opt-in sheaves on top of the cpu slab
                   (``do_kmem_cache_create()``, ``alloc_from_pcs()``, ``free_to_pcs()`` of v6.19
                   ``mm/slub.c``), on 7.0 ``max(default, 256)`` (``calculate_sheaf_capacity()``); ``slub.run``
                   with ``kmalloc=False, sheaf_capacity=256``. ``SLAB_ACCOUNT`` (in Dave's snippet; the thread
                   does not say whether the tested cache had it) is :attr:`Setup.slab_account`, see below.
per-CPU list       the patch (v3): :func:`allocsim.kernel.pcpu_list.run`, whose misses fall back to
                   ``kmalloc(sizeof(struct iomap_dio) + 8)`` — the next kmalloc cache of the same kernel's
                   SLUB model.
=================  =======================================================================================

The workload is the io_uring direct-read loop of :mod:`allocsim.workloads.iouring` (t/io_uring defaults), measured
in the steady state by :func:`allocsim.workloads.iouring.steady_state`.

**The base cost is part of the workload.** One CPU-bound submitter spends ``base`` ns per IO outside the
allocator (:mod:`allocsim.analysis.iops`). The models need that time too: whether an interrupt-context ``kfree`` finds the
sheaves' ``local_trylock`` held depends on the share of the task's time spent holding it
(:mod:`allocsim.kernel.sheaves`), so the program carries ``base`` as ``submit_gap`` cycles before each
allocation (task context). ``base`` is the one calibrated parameter (:mod:`allocsim.analysis.iops`), so
:func:`reproduce` solves for it as a fixed point: run the six configurations with a gap, calibrate ``base``
on the reported figures, and repeat with the new gap until the gap (whole cycles) no longer changes.
It is still one fitted number; the fixed point only keeps the workload consistent with it.

**SLAB_ACCOUNT** (:attr:`Setup.slab_account`) is passed to the SLUB model of the dedicated cache
(``slub.run(..., slab_account=True)``): with the ``memcg`` hook switch on, every allocation and every free
from it pays the ``memcg_account`` row of ``data/costs.csv`` (``__memcg_slab_post_alloc_hook()`` /
``__memcg_slab_free_hook()``). kmalloc's ``GFP_KERNEL`` allocation and the per-CPU list are not accounted,
so the flag changes only the dedicated-cache configurations.

**Cost model v2** (:mod:`allocsim.facts.steps`): :attr:`Setup.hooks` are the kernel configuration switches
of the hot paths (default: a distribution kernel's, ``data/kernel/hooks.yaml``) and :attr:`Setup.steps`
the step file (``"v1"`` with ``cost_table="v1"`` runs the models as they were before v2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from allocsim.facts import versions
from allocsim.facts import costs as _costs
from allocsim.facts import steps as _steps
from allocsim.analysis import iops
from allocsim.workloads import adapter
from allocsim.workloads import iouring
from allocsim.facts import kconfig
from allocsim.kernel import pcpu_list
from allocsim.kernel import slub
from allocsim.facts.errors import AllocsimError

COMPLETIONS = ("hardirq", "task", "softirq")
#: The pre-v2 completion modes (``placement='independent'`` only): -p0 interrupts complete in hardirq
#: context, -p1 polling in task context; "softirq" a completion redirected through BLOCK_SOFTIRQ
#: (``iomap_dio_done()`` completes inline from the bio's end_io, in whatever context that runs: v6.19
#: ``fs/iomap/direct-io.c``). With the default ``placement='blkmq'`` the context and CPU follow from the
#: topology fields instead (:mod:`allocsim.workloads.blkmq`).
_SHARES = {"hardirq": (0.0, 1.0, 0.0), "task": (1.0, 0.0, 0.0), "softirq": (0.0, 0.0, 1.0)}
#: The blk-mq topology fields of :class:`Setup` (same names as the workload's).
TOPOLOGY = ("polled", "irq_same_cpu_share", "irq_same_llc_share", "irq_other_llc_share", "nr_hw_queues", "rq_affinity")


@dataclass(frozen=True)
class Setup:
    """Everything that fixes the six runs except the base cost: the t/io_uring workload (defaults: the
    book's assumption ``-p0 -d128 -s32 -c32 -n1`` — t/io_uring's own defaults; the thread never gives the
    authors' options — with every interrupt on the submitting CPU of a device with one queue per CPU), the
    caches and the cost table. ``completion`` and ``cross_cpu_share`` are the pre-v2 independent
    placement, used only with ``placement='independent'``."""

    queue_depth: int = 128
    submit_batch: int = 32
    complete_batch: int = 32
    polled: bool = False  # REQ_POLLED, t/io_uring -p1
    irq_same_cpu_share: float = 1.0  # interrupts on the submitting CPU
    irq_same_llc_share: float = 0.0  # ... on another CPU of its LLC
    irq_other_llc_share: float = 0.0  # ... on a CPU of another LLC
    nr_hw_queues: int = 0  # 0: one per CPU
    rq_affinity: int = 1
    placement: str = "blkmq"  # or 'independent' (pre-v2, with completion and cross_cpu_share)
    completion: str = "hardirq"  # placement='independent' only
    cross_cpu_share: float = 0.0  # placement='independent' only
    submitters: int = 1
    ios: int = 20_000
    object_size: int = 96  # sizeof(struct iomap_dio), data/kernel/structs.yaml
    sheaf_capacity: int = 256  # Dave Chinner's .sheaf_capacity
    slab_account: bool = False
    cost_table: str = "default"
    hooks: _steps.Hooks = field(default_factory=_steps.Hooks.default)  # the kernel's hot-path switches
    steps: str = "default"  # the step file of cost model v2 ("v1": the charges before it)
    irq_work_share: float = 0.0  # share of the base cost spent in the completion handler (see workload())
    hierarchy: bool = True  # the memory hierarchy of allocsim.kernel.memory (data/kernel/cpu.yaml at clock_ghz)
    clock_ghz: float = 3.0  # the clock the hierarchy's nanosecond latencies are turned into cycles at
    seed: int = 0

    #: The fields chapter 5's parameters set (same names); the rest keep their defaults.
    PARAMS = ("queue_depth", "submit_batch", "complete_batch", *TOPOLOGY, "submitters", "ios",
              "object_size", "sheaf_capacity", "slab_account", "cost_table", "seed")

    @classmethod
    def from_params(cls, P) -> "Setup":
        """The setup of chapter 5's validated parameters ``P`` (a namespace with the :data:`PARAMS` names)."""
        return cls(**{k: getattr(P, k) for k in cls.PARAMS}).validate()

    def validate(self) -> "Setup":
        if self.completion not in COMPLETIONS:
            raise AllocsimError(f"completion must be one of {', '.join(map(repr, COMPLETIONS))}, not {self.completion!r}")
        if self.placement != "independent" and self.completion != "hardirq":
            raise AllocsimError(f"completion {self.completion!r} belongs to placement='independent' (the pre-v2 model); "
                                "with blk-mq placement set polled or the interrupt shares instead")
        for name, lo, hi in (("object_size", 8, kconfig.kmalloc_sizes()[-1] - 8), ("sheaf_capacity", 1, 4096)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise AllocsimError(f"{name} must be an integer from {lo} to {hi}, not {v!r}")
        if not isinstance(self.slab_account, bool):
            raise AllocsimError(f"slab_account must be true or false, not {self.slab_account!r}")
        v = self.irq_work_share
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
            raise AllocsimError(f"irq_work_share must be a number from 0 to below 1, not {v!r}")
        if not isinstance(self.hierarchy, bool):
            raise AllocsimError(f"hierarchy must be true or false, not {self.hierarchy!r}")
        v = self.clock_ghz
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise AllocsimError(f"clock_ghz must be a number > 0, not {v!r}")
        if not isinstance(self.hooks, _steps.Hooks):
            raise AllocsimError(f"hooks must be an allocsim.facts.steps.Hooks, not {self.hooks!r}")
        self.costs()
        _steps.load(self.steps)
        self.workload(0)
        return self

    def costs(self) -> _costs.CostTable:
        if self.cost_table not in _costs.table_names():
            raise AllocsimError(f"cost_table must be one of {', '.join(map(repr, _costs.table_names()))}, not {self.cost_table!r}")
        return _costs.load(self.cost_table)

    def workload(self, base_cycles: float) -> iouring.IOUring:
        """The io_uring run with ``base_cycles`` of non-allocator work per IO: ``(1 − irq_work_share)`` of
        it before each submission (task context), the rest before each completion's free. Built by the
        book's one adapter (:func:`allocsim.workloads.adapter.io_uring`) from this setup's workload fields
        (the blk-mq topology; with ``placement='independent'`` the shares of :attr:`completion`) and the base
        cost as the gaps (the calibrated base replaces the adapter's base work). With :attr:`hierarchy` on, the
        workload numbers its CPUs as the hierarchy does (``cpus_per_llc`` of ``data/kernel/cpu.yaml`` to an LLC,
        :func:`allocsim.workloads.adapter.hierarchy_llc_cpus`), so an interrupt on another CPU of the LLC and
        one in another LLC are that to the cache model too."""
        if not base_cycles >= 0:
            raise AllocsimError(f"the base cost per IO must be >= 0 cycles, not {base_cycles!r}")
        shares = {}
        if self.placement == "independent":
            task, hard, soft = _SHARES[self.completion]
            shares = dict(task_share=task, hardirq_share=hard, softirq_share=soft)
        sub = int(round(base_cycles * (1.0 - self.irq_work_share)))
        comp = int(round(base_cycles * self.irq_work_share))
        return adapter.io_uring(self, base_work=False, submit_gap=sub, complete_gap=comp, **shares)

    def completion_shares(self) -> dict:
        """Expected share of completions in task, hardirq and softirq context and on another CPU
        (:meth:`allocsim.workloads.iouring.IOUring.completion_shares`)."""
        return self.workload(0).completion_shares()

    def t_io_uring(self) -> str:
        """The t/io_uring options this setup models (the rest of the command line is the device)."""
        return adapter.t_io_uring(self.workload(0))


def _check_config(kernel: str, allocator: str, kernels=iops.KERNELS, allocators=iops.ALLOCATORS):
    if kernel not in kernels:
        raise AllocsimError(f"kernel must be one of {', '.join(map(repr, kernels))}, not {kernel!r}")
    if allocator not in allocators:
        raise AllocsimError(f"allocator must be one of {', '.join(map(repr, allocators))}, not {allocator!r}")


#: Every (kernel, allocator) :func:`model_fn` runs: the thread's six plus 6.18 and ``dedicated`` — a
#: ``kmem_cache_create("iomap_dio", ...)`` cache *without* ``sheaf_capacity`` (6.18/6.19: the cpu slab of
#: its own cache; 7.0: the default sheaves every cache gets).
MODEL_KERNELS = ("6.18", "6.19", "7.0")
MODEL_ALLOCATORS = iops.ALLOCATORS + ("dedicated",)


def model_fn(kernel: str, allocator: str, setup: Setup, costs: _costs.CostTable | None = None,
             threshold: int = pcpu_list.PCPU_CACHE_IRQ_THRESHOLD, max_nr: int = pcpu_list.DIO_ALLOC_CACHE_MAX):
    """The callable ``Program -> Result`` that runs configuration ``(kernel, allocator)`` (any of
    :data:`MODEL_KERNELS` × :data:`MODEL_ALLOCATORS`); ``threshold`` and ``max_nr``: the per-CPU list's
    ``PCPU_CACHE_IRQ_THRESHOLD`` and ``DIO_ALLOC_CACHE_MAX`` (the patch's by default)."""
    _check_config(kernel, allocator, MODEL_KERNELS, MODEL_ALLOCATORS)
    table = setup.costs() if costs is None else costs
    size, seed = setup.object_size, setup.seed
    # cost model v2: the switches and the step file; the memory hierarchy when it is on
    v2 = dict(hooks=setup.hooks, steps=setup.steps, hierarchy=setup.hierarchy, clock_ghz=setup.clock_ghz)
    if allocator == "kmalloc":
        return lambda p: slub.run(p, kernel=kernel, object_size=size, kmalloc=True, costs=table, seed=seed, **v2)
    if allocator == "sheaf-256":
        return lambda p: slub.run(p, kernel=kernel, object_size=size, kmalloc=False, sheaf_capacity=setup.sheaf_capacity,
                                  slab_account=setup.slab_account, costs=table, seed=seed, **v2)
    if allocator == "dedicated":
        return lambda p: slub.run(p, kernel=kernel, object_size=size, kmalloc=False, slab_account=setup.slab_account,
                                  costs=table, seed=seed, **v2)
    element = size + pcpu_list.header_size()  # kmalloc(sizeof(struct pcpu_cache_element) + element_size)

    def backend(fb):
        return slub.run(fb, kernel=kernel, object_size=element, kmalloc=True, costs=table, seed=seed, **v2)

    return lambda p: pcpu_list.run(p, threshold=threshold, max_nr=max_nr, costs=table, backend=backend, **v2)


def describe_config(kernel: str, allocator: str, setup: Setup) -> dict:
    """What runs configuration ``(kernel, allocator)``: the model and the cache as sysfs would show it."""
    _check_config(kernel, allocator)
    ncpu = setup.workload(0).n_cpus
    if allocator == "per-CPU list":
        g = kconfig.cache_geometry(setup.object_size + pcpu_list.header_size(), ncpu, kernel, kmalloc=True)
        what = f"per-CPU list (max {pcpu_list.DIO_ALLOC_CACHE_MAX}, splice at {pcpu_list.PCPU_CACHE_IRQ_THRESHOLD}); misses to {g.name}"
    elif allocator == "kmalloc":
        g = kconfig.cache_geometry(setup.object_size, ncpu, kernel, kmalloc=True)
        what = g.name
    else:
        g = kconfig.cache_geometry(setup.object_size, ncpu, kernel, sheaf_capacity=setup.sheaf_capacity, kmalloc=False)
        what = f"kmem_cache 'iomap_dio' (sheaf_capacity={setup.sheaf_capacity}" + (", SLAB_ACCOUNT)" if setup.slab_account else ")")
    if versions.family(kernel).sheaves_by_default:
        layer = f"sheaves of {g.sheaf_capacity}, barn, node partial list"
    elif g.sheaf_capacity:
        layer = f"sheaves of {g.sheaf_capacity} on top of the cpu slab (cpu_partial_slabs {g.cpu_partial_slabs})"
    else:
        layer = f"cpu slab, cpu partial list of {g.cpu_partial_slabs} slabs"
    return {"kernel": kernel, "allocator": allocator, "cache": what, "SLUB layer": layer,
            "objects per slab": g.objs_per_slab}


def run_config(kernel: str, allocator: str, setup: Setup, base_cycles: float,
               costs: _costs.CostTable | None = None) -> iouring.SteadyState:
    """Steady-state allocator cost of configuration ``(kernel, allocator)`` with ``base_cycles`` of other
    work per IO."""
    table = setup.costs() if costs is None else costs
    return iouring.steady_state(model_fn(kernel, allocator, setup, table), setup.workload(base_cycles))


def run_all(setup: Setup, base_cycles: float, costs: _costs.CostTable | None = None,
            configs=iops.CONFIGS) -> dict:
    """``{(kernel, allocator): SteadyState}`` for ``configs`` (default: all six)."""
    setup.validate()
    return {c: run_config(c[0], c[1], setup, base_cycles, costs) for c in configs}


def cycles_series(runs: dict) -> pd.Series:
    """Allocator cycles per IO of each configuration, as :func:`allocsim.analysis.iops.table` takes them."""
    return pd.Series({c: float(r.cycles_per_io) for c, r in runs.items()}, dtype=float)


def reported_miops() -> pd.Series:
    """The six reported figures (``data/thread/claims.yaml``) indexed by (kernel, allocator), with the
    thread's "7.0-rc4" as the model's "7.0"."""
    from allocsim.facts import thread

    f = thread.iops_figures()
    return pd.Series({(kconfig.check_version(r.kernel), r.allocator): float(r.miops) for r in f.itertuples()}, dtype=float)


@dataclass
class Reproduction:
    """The chapter's main result: the six runs at the self-consistent base cost and the calibrated table."""

    setup: Setup
    clock_ghz: float
    on: tuple  # configurations the base was fitted on
    table: pd.DataFrame  # iops.table(...)
    calibration: iops.Calibration
    runs: dict  # (kernel, allocator) -> SteadyState
    base_cycles: int  # the gap the final runs used (= round(base_ns * clock_ghz))
    iterations: list = field(default_factory=list)  # (gap cycles, fitted base ns) per pass

    @property
    def alloc_cycles(self) -> pd.Series:
        return cycles_series(self.runs)

    def row(self, kernel: str, allocator: str) -> dict:
        t = self.table
        return t[(t.kernel == kernel) & (t.allocator == allocator)].iloc[0].to_dict()

    def predicted_miops(self, kernel: str, allocator: str) -> float:
        return float(self.row(kernel, allocator)["predicted M IOPS"])


def parse_on(on) -> tuple:
    """A calibration target: ``"all"`` (or None) → all six; ``"7.0 kmalloc"`` → that configuration; or
    an iterable of (kernel, allocator) pairs."""
    if on is None or on == "all":
        return tuple(iops.CONFIGS)
    if isinstance(on, str):
        for c in iops.CONFIGS:
            if on == f"{c[0]} {c[1]}":
                return (c,)
        names = ", ".join(repr(f"{k} {a}") for k, a in iops.CONFIGS)
        raise AllocsimError(f"the calibration target must be 'all' or one of {names}, not {on!r}")
    out = tuple(tuple(c) for c in on)
    for c in out:
        _check_config(*c)
    if not out:
        raise AllocsimError("the calibration needs at least one configuration to fit the base cost on")
    return out


def calibration_targets() -> tuple[str, ...]:
    return ("all",) + tuple(f"{k} {a}" for k, a in iops.CONFIGS)


def reproduce(setup: Setup = Setup(), clock_ghz: float = 3.0, on="all", reported: pd.Series | None = None,
              max_iter: int = 8, costs: _costs.CostTable | None = None) -> Reproduction:
    """Run the six configurations and calibrate the base cost (the one fitted parameter) on ``on``,
    iterating until the base cost the workload carries equals the fitted one (to a whole cycle).
    ``costs``: a cost table to use instead of ``setup.cost_table`` (one sample of the uncertainty sweep)."""
    setup = clocked(setup.validate(), clock_ghz)
    targets = parse_on(on)
    reported = reported_miops() if reported is None else reported
    # start from the reported time per IO of the calibration targets (as if the allocator were free)
    base_ns = float(np.mean([1e3 / reported[c] for c in targets]))
    gap = int(round(base_ns * clock_ghz))
    seen = []
    costs = setup.costs() if costs is None else costs
    for _ in range(max_iter):
        runs = run_all(setup, gap, costs)
        table, cal = iops.table(reported, cycles_series(runs), clock_ghz, on=targets)
        seen.append((gap, cal.base_ns))
        new_gap = int(round(cal.base_ns * clock_ghz))
        if new_gap == gap:
            break
        if any(g == new_gap for g, _ in seen):  # a two-cycle oscillation of the rounding: settle on this gap
            break
        gap = new_gap
    return Reproduction(setup, float(clock_ghz), targets, table, cal, runs, gap, seen)


def predict(setup: Setup, base_ns: float, clock_ghz: float, costs: _costs.CostTable | None = None,
            configs=iops.CONFIGS) -> pd.DataFrame:
    """Counterfactual runs (other workload, cache or costs) with a base cost already calibrated: allocator
    cycles and ns per IO and the IOPS of one submitter thread, per configuration."""
    setup = clocked(setup, clock_ghz)
    runs = run_all(setup, int(round(base_ns * clock_ghz)), costs, configs)
    rows = []
    for (k, a), r in runs.items():
        ns = r.cycles_per_io / clock_ghz
        rows.append({"kernel": k, "allocator": a, "alloc cycles/IO": r.cycles_per_io, "alloc ns/IO": ns,
                     "predicted ns/IO": base_ns + ns, "predicted M IOPS": 1e3 / (base_ns + ns)})
    return pd.DataFrame(rows)


def gap_ns(runs: dict, kernel: str, allocator: str, clock_ghz: float) -> float:
    """How many ns per IO ``allocator`` costs more than the per-CPU list on ``kernel``."""
    return (runs[(kernel, allocator)].cycles_per_io - runs[(kernel, "per-CPU list")].cycles_per_io) / clock_ghz


def edge_pct(gap: float, base_ns: float, pcpu_alloc_ns: float) -> float:
    """The per-CPU list's IOPS gain over an allocator that costs ``gap`` ns per IO more."""
    t_pcpu = base_ns + pcpu_alloc_ns
    return (gap / t_pcpu) * 100.0  # (t_x / t_pcpu - 1) * 100


def tornado(setup: Setup, kernel: str, allocator: str, base_ns: float, clock_ghz: float,
            costs: _costs.CostTable | None = None) -> pd.DataFrame:
    """The verdict quantity — the per-CPU list's edge over ``allocator`` on ``kernel`` in ns per IO — with
    each cost-table entry moved to the low and to the high end of its cited range (the others at their
    defaults). Entries without a range (low = high) are listed with zero swing."""
    _check_config(kernel, allocator)
    setup = clocked(setup, clock_ghz)
    table = setup.costs() if costs is None else costs
    gap_cycles = int(round(base_ns * clock_ghz))
    pair = ((kernel, "per-CPU list"), (kernel, allocator))
    base_runs = run_all(setup, gap_cycles, table, pair)
    g0 = gap_ns(base_runs, kernel, allocator, clock_ghz)
    rows = []
    for key in _costs.KEYS:
        r = table.rows[key]
        out = {"key": key, "default": r["cycles"], "low": r["low"], "high": r["high"], "gap at default": g0}
        for end in ("low", "high"):
            if r[end] == r["cycles"]:
                out[f"gap at {end}"] = g0
                continue
            runs = run_all(setup, gap_cycles, table.with_overrides(**{key: r[end]}), pair)
            out[f"gap at {end}"] = gap_ns(runs, kernel, allocator, clock_ghz)
        out["swing"] = abs(out["gap at high"] - out["gap at low"])
        out["source"] = r["source"]
        rows.append(out)
    return pd.DataFrame(rows).sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def primitive_uses(kernel: str, allocator: str, setup: Setup, base_cycles: float,
                   costs: _costs.CostTable | None = None, delta: float = 1.0) -> pd.DataFrame:
    """How often each cost-table primitive is paid per IO, by finite difference: the change in cycles per
    IO when that entry costs ``delta`` more. A run's cycles are the sum of its primitives' charges plus
    lock waiting, so ``uses × cycles`` splits the total by primitive; the remainder (waiting, and any
    path that changed with the perturbation) is the row ``other``."""
    table = setup.costs() if costs is None else costs
    base = run_config(kernel, allocator, setup, base_cycles, table).cycles_per_io
    rows = []
    for key in _costs.KEYS:
        bumped = table.with_overrides(**{key: table.cycles(key) + delta})
        uses = (run_config(kernel, allocator, setup, base_cycles, bumped).cycles_per_io - base) / delta
        rows.append({"kernel": kernel, "allocator": allocator, "primitive": key, "uses per IO": uses,
                     "cycles per IO": uses * table.cycles(key)})
    df = pd.DataFrame(rows)
    rest = base - df["cycles per IO"].sum()
    df = pd.concat([df, pd.DataFrame([{"kernel": kernel, "allocator": allocator, "primitive": "other",
                                       "uses per IO": np.nan, "cycles per IO": rest}])], ignore_index=True)
    return df


def paths_frame(runs: dict, clock_ghz: float) -> pd.DataFrame:
    """Every configuration's steady-state paths: count and cycles per IO (``Result.paths`` in the window)."""
    frames = []
    for (k, a), r in runs.items():
        f = r.paths_frame()
        f = f[f["count"] > 0].copy()
        f.insert(0, "allocator", a)
        f.insert(0, "kernel", k)
        f["ns_per_io"] = f["cycles_per_io"] / clock_ghz
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def clocked(setup: Setup, clock_ghz: float) -> Setup:
    """``setup`` at ``clock_ghz``: the clock that turns cycles into IOPS is also the one the memory hierarchy
    turns its nanosecond latencies into cycles at (one clock per run)."""
    if isinstance(clock_ghz, bool) or not isinstance(clock_ghz, (int, float)) or not clock_ghz > 0:
        raise AllocsimError(f"clock_ghz must be a number > 0, not {clock_ghz!r}")
    return setup if setup.clock_ghz == clock_ghz else replace(setup, clock_ghz=float(clock_ghz))


def scenario(setup: Setup, **changes) -> Setup:
    """``setup`` with some fields changed (validated)."""
    return replace(setup, **changes).validate()


def extreme_gap(setup: Setup, kernel: str, allocator: str, base_ns: float, clock_ghz: float,
                tor: pd.DataFrame, costs: _costs.CostTable | None = None) -> dict:
    """The verdict quantity with *every* cost entry at once at the end of its range that widens the
    per-CPU list's edge (``max``) and at the end that narrows it (``min``), from a :func:`tornado` table."""
    setup = clocked(setup, clock_ghz)
    table = setup.costs() if costs is None else costs
    gap_cycles = int(round(base_ns * clock_ghz))
    pair = ((kernel, "per-CPU list"), (kernel, allocator))
    out = {}
    for name, pick in (("max", max), ("min", min)):
        over = {}
        for r in tor.to_dict("records"):
            if r["gap at low"] == r["gap at high"]:
                continue
            end = "low" if pick(r["gap at low"], r["gap at high"]) == r["gap at low"] else "high"
            over[r["key"]] = r[end]
        runs = run_all(setup, gap_cycles, table.with_overrides(**over) if over else table, pair)
        out[name] = gap_ns(runs, kernel, allocator, clock_ghz)
    return out

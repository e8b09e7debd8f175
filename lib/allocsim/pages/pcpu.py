"""Analysis and charts for chapter 2 ("The per-CPU cache patch"): the io_uring scenarios run through
:mod:`allocsim.kernel.pcpu_list`, the point where the private list stops paying, memory, and the pictures.
The chapter calls one function per section and glues the dataclass it returns
(:func:`allocsim.pages.glue.glue_all`: each glue key is a field name); everything here takes the chapter's
parameter namespace ``P`` (see ``allocsim/pages/specs/02_pcpu.py``) or plain values.

Every run is the io_uring workload of :func:`allocsim.workloads.adapter.io_uring` — the same mapping and
the same base work per IO as chapters 3 and 5, so a quantity such as 7.0 ``kmalloc`` cycles per IO has
one value in the book.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import SimpleNamespace

import altair as alt
import numpy as np
import pandas as pd

from allocsim.facts import costs as _costs
from allocsim.facts import structs
from allocsim.facts import thread
from allocsim.kernel import pcpu_list as pl
from allocsim.analysis import memory as pcpu_memory
from allocsim.pages import charts
from allocsim.pages.glue import Md
from allocsim.workloads import adapter
from allocsim.workloads import iouring

LIST, KMALLOC = "per-CPU list", "kmalloc"


def _two_colors(field: str = "allocator") -> alt.Color:
    """The book's colours for the two allocators this chapter compares (no legend entry for sheaves)."""
    return alt.Color(f"{field}:N", title="allocator", scale=alt.Scale(
        domain=[LIST, KMALLOC], range=[charts.COLORS[LIST], charts.COLORS[KMALLOC]]))


# ------------------------------------------------------------------------------------------------
# The workload in words (chapters 2 and 3 describe the run their parameters set up)


def _share_pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def completion_words(cfg: iouring.IOUring) -> str:
    """Where the frees of ``cfg`` run, in words: one context when a single share is 1, else each share
    (the shares blk-mq's placement gives, :meth:`allocsim.workloads.iouring.IOUring.completion_shares`)."""
    sh = cfg.completion_shares()
    kinds = [(sh["hardirq"], "in the completion interrupt (hardirq context, as with `t/io_uring -p0`)"),
             (sh["task"], "in the submitting task, which polls for its completions (`-p1`)"),
             (sh["softirq"], "in the block softirq (`BLOCK_SOFTIRQ`)")]
    used = [(s, w) for s, w in kinds if s > 0]
    text = used[0][1] if len(used) == 1 else "; ".join(f"{_share_pct(s)} {w}" for s, w in used)
    if sh["other_cpu"] > 0:
        text += f" — and {_share_pct(sh['other_cpu'])} of them on another CPU than the submitter's"
    return text


def topology_words(cfg: iouring.IOUring) -> str:
    """The blk-mq topology of ``cfg`` in words: polled or where the interrupts land, the queues and
    ``rq_affinity``."""
    if cfg.placement == "independent":
        return "completion contexts and CPUs are drawn independently (the book's pre-v2 model)"
    queues = {0: "one hardware queue per CPU", 1: "a single hardware queue"}.get(cfg.nr_hw_queues,
                                                                             f"{cfg.nr_hw_queues} hardware queues")
    aff = {0: "`rq_affinity` 0 (no completion is sent back)", 1: "`rq_affinity` 1 (the default)",
           2: "`rq_affinity` 2 (every completion on another CPU is sent back)"}[cfg.rq_affinity]
    if cfg.polled:
        return f"the IO is polled (`REQ_POLLED`) on a device with {queues}"
    where = [(cfg.irq_same_cpu_share, "on the submitting CPU"),
             (cfg.irq_same_llc_share, "on another CPU of the submitter's last-level cache"),
             (cfg.irq_other_llc_share, "on a CPU of another last-level cache")]
    used = [(s, w) for s, w in where if s > 0]
    lands = (f"every interrupt lands {used[0][1]}" if len(used) == 1 else
             "the interrupts land " + ", ".join(f"{_share_pct(s)} {w}" for s, w in used))
    return f"{lands}, on a device with {queues} and {aff}"


def workload_words(cfg: iouring.IOUring) -> str:
    """The run ``cfg`` sets up, as a clause: submitters, depth, batches and completion order."""
    who = "one submitter thread" if cfg.submitters == 1 else f"{cfg.submitters} submitter threads, one per CPU,"
    order = "in submission order" if cfg.completion_order == "fifo" else "in random order"
    return (f"{who} with {cfg.queue_depth} IOs in flight, submitted in batches of {cfg.submit_batch} and reaped "
            f"in batches of {cfg.complete_batch}, completed {order}")


# ------------------------------------------------------------------------------------------------
# Running the model

def list_model(P):
    """``Program -> Result``: the patch with the chapter's threshold, max_nr and kmalloc backend, with the memory
    hierarchy when ``P.hierarchy`` is on (at the page's clock; the fixed-cost stand-in has none)."""
    return lambda prog: pl.run(prog, threshold=P.threshold, max_nr=P.max_nr, kmalloc=P.kmalloc, kernel=P.kernel,
                               hierarchy=P.hierarchy, clock_ghz=P.clock_ghz)


def kmalloc_model(P):
    """``Program -> Result``: the same workload without the patch (plain ``kmalloc(sizeof(*dio))``, the model
    :func:`allocsim.kernel.pcpu_list.kmalloc_only` runs), with the hierarchy as in :func:`list_model`."""
    return pl.backend_for(P.kmalloc, P.kernel, object_size=pl.element_size(), hierarchy=P.hierarchy,
                          clock_ghz=P.clock_ghz)


def backend_note(P) -> str:
    """A paragraph (Markdown) saying which kmalloc model this page used and what that implies."""
    if P.kmalloc == "standin":
        a, f = pl.standin_charges()
        return (f"This page sends the misses and the refused frees to **the fixed-cost kmalloc stand-in**. It "
                f"charges every `kmalloc` {a:.0f} cycles and every `kfree` {f:.0f}: the step sums of the 6.19 cpu "
                "slab's fast path with its entry point and slab hooks ({doc}`chapter 3 <03-cpu-slab>` lists the "
                "steps), the same discipline as the list's own paths. It never takes a slow path and "
                "does not care which CPU frees an object, so it flatters `kmalloc` wherever SLUB would take its "
                "remote-free path; with the stand-in the `kernel` parameter only changes the memory comparison "
                "below. Re-run with `kmalloc=\"slub\"` to send the misses through the SLUB model of the kernel "
                "`kernel` names.")
    return (f"This page sends the misses and the refused frees to **the SLUB model of {P.kernel}** "
            f"(`allocsim.kernel.slub`, `kmalloc-{pcpu_memory.memory(P.max_nr, P.kernel)['kmalloc_class']}` for the list's "
            f"{pl.element_size() + pl.header_size()}-byte elements, `{pcpu_memory.memory(P.max_nr, P.kernel)['plain_cache']}` "
            "for the plain `kmalloc` without the patch), with its slow paths and remote frees, and with the entry "
            "point and slab hooks every `kmalloc` and `kfree` runs (a distribution kernel's configuration, "
            "`data/kernel/hooks.yaml`).")


def thread_note(P, saved_cycles: float) -> str:
    """A sentence (Markdown) setting the modelled saving per IO (interrupt completions) against the
    thread's IOPS figures for the kernel this page models (6.19 with the stand-in)."""
    from allocsim.pages import thread as thread_views

    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    kern = thread_kernel(P.kernel if P.kmalloc == "slub" else "6.19")
    if kern is None:
        return (f"The thread has no IOPS figures for {P.kernel}, so the modelled saving of {saved_cycles:.0f} "
                "cycles per IO has nothing to be set against here.")
    ns = thread_views.ns_saved(f[kern, "per-CPU list"], f[kern, "kmalloc"])
    share = 100 * saved_cycles / (ns * P.clock_ghz)
    if P.kmalloc == "standin":
        return (f"A `kmalloc` that always took SLUB's measured fast path — the stand-in — leaves the list "
                f"{saved_cycles:.0f} cycles to save per IO with interrupt completions, {share:.0f}% of the "
                f"{kern} difference. Either the {kern} `kmalloc` spent more than its fast path on this workload, "
                "or the difference is not all allocator time; chapter 3 (SLUB's cpu slab) models the first "
                "possibility, and the final chapter compares all six figures with the models.")
    return (f"With the SLUB model of {P.kernel} behind both, the list saves {saved_cycles:.0f} cycles per IO with "
            f"interrupt completions, {share:.0f}% of the {kern} difference at {P.clock_ghz:g} GHz; the final "
            "chapter compares all six figures with the models.")


def thread_kernel(version: str) -> str | None:
    """The thread's label for the kernel the models call ``version`` ("7.0" → "7.0-rc4"), or None if the
    thread has no IOPS figures for it."""
    from allocsim.facts import kconfig

    labels = {kconfig.check_version(k): k for k in thread.iops_figures()["kernel"].unique()}
    return labels.get(version)


def steady(P, cached: bool = True, **overrides) -> dict:
    """Steady-state figures per IO for one scenario: hit rate, splices, kmalloc/kfree calls, cycles
    per IO with the list and without it, and (``cached``) the objects left cached once every IO has completed
    (a third run, drained; without it those four figures are 0)."""
    cfg = adapter.io_uring(P, **overrides)
    ss = iouring.steady_state(list_model(P), cfg)
    base = iouring.steady_state(kmalloc_model(P), cfg)
    st = ss.stats
    io = ss.ios
    if cached:
        left = list_model(P)(iouring.program(replace(cfg, drain=True))).extra["state"].cached()
    else:
        left = np.zeros(cfg.n_cpus, np.int64)
    return {
        "hit rate": 1.0 - st["alloc_kmalloc"] / st["alloc"],
        "splices per IO": st["alloc_splice"] / io,
        "kmalloc per IO": st["alloc_kmalloc"] / io,
        "kfree per IO": (st["kfree_full"] + st["kfree_softirq"]) / io,
        "kfree (full) per IO": st["kfree_full"] / io,
        "kfree (softirq) per IO": st["kfree_softirq"] / io,
        "list cycles per IO": ss.cycles_per_io,
        "kmalloc cycles per IO": base.cycles_per_io,
        "saved cycles per IO": base.cycles_per_io - ss.cycles_per_io,
        "cached after run": int(left.sum()),
        "cached after run, most on one CPU": int(left.max()),
        "cached on submitting CPUs": int(left[:cfg.submitters].sum()),
        "cached on other CPUs": int(left[cfg.submitters:].sum()),
        "steady IOs": io,
        "_steady": ss,
    }


POLLED, IRQ = "polled (-p1)", "interrupts (-p0)"
SOFT25, SINGLEQ = "25% of IRQs in another LLC", "single hardware queue"
CROSS25, CROSS100, THIS = "25% of IRQs on another CPU of the LLC", "all IRQs on another CPU of the LLC", "this page"
#: The interrupt topology of the default run: every interrupt on the submitting CPU, one queue per CPU,
#: rq_affinity 1, not polled (hardirq completions on the submitter).
_LOCAL = dict(polled=False, irq_same_cpu_share=1.0, irq_same_llc_share=0.0, irq_other_llc_share=0.0, nr_hw_queues=0,
              rq_affinity=1)
#: The chapter's named scenarios: blk-mq topologies (everything else from the parameters). The completion's
#: context and CPU follow from each (allocsim.workloads.blkmq): polled → task on the submitter; an IRQ in
#: another LLC → BLOCK_SOFTIRQ on the submitter; an IRQ on another CPU of the LLC → hardirq on that CPU; a
#: single queue → BLOCK_SOFTIRQ on the IRQ CPU.
SCENARIOS = {
    POLLED: {**_LOCAL, "polled": True},
    IRQ: dict(_LOCAL),
    SOFT25: {**_LOCAL, "irq_same_cpu_share": 0.75, "irq_other_llc_share": 0.25},
    SINGLEQ: {**_LOCAL, "nr_hw_queues": 1},
    CROSS25: {**_LOCAL, "irq_same_cpu_share": 0.75, "irq_same_llc_share": 0.25},
    CROSS100: {**_LOCAL, "irq_same_cpu_share": 0.0, "irq_same_llc_share": 1.0},
}
#: The two interrupt shares the chapter sweeps; the share on the submitting CPU is what they leave.
SWEPT = ("irq_other_llc_share", "irq_same_llc_share")


def scenarios(P) -> pd.DataFrame:
    """The named scenarios of the chapter, plus the one the parameters describe."""
    rows = []
    named = dict(SCENARIOS)
    named[THIS] = {}
    for name, kw in named.items():
        r = steady(P, **kw)
        rows.append({"scenario": name, **{k: v for k, v in r.items() if not k.startswith("_")}})
    return pd.DataFrame(rows).set_index("scenario")


def breakdown(P, **overrides) -> pd.DataFrame:
    """Per-path counts and cycles per IO in the steady state (the list's paths and the backend's)."""
    ss = steady(P, **overrides)["_steady"]
    df = ss.paths_frame()
    df = df[df["count"] > 0].copy()
    desc = {**pl.PATH_DOC}
    df["what"] = [desc.get(p, "the kmalloc model behind the list") for p in df["path"]]
    return df[["path", "what", "per_io", "cycles_per_io"]].rename(
        columns={"per_io": "calls per IO", "cycles_per_io": "cycles per IO"}).set_index("path")


def sweep(P, field: str, values, cached: bool = True, **fixed) -> pd.DataFrame:
    """Steady-state figures as one field varies (the others as in ``fixed``, else the page's). Sweeping
    one of the interrupt shares of :data:`SWEPT` leaves the rest of the interrupts on the submitting CPU.
    ``cached`` false leaves out the drained runs (the objects left cached are then 0)."""
    rows = []
    for v in values:
        kw = dict(fixed)
        kw[field] = float(v)
        if field in SWEPT:
            rest = sum(kw.get(f, getattr(P, f)) for f in SWEPT)
            kw["irq_same_cpu_share"] = round(1.0 - rest, 12)
        r = steady(P, cached=cached, **kw)
        rows.append({"share": float(v), "hit rate": r["hit rate"], LIST: r["list cycles per IO"],
                     KMALLOC: r["kmalloc cycles per IO"], "kmalloc per IO": r["kmalloc per IO"],
                     "kfree per IO": r["kfree per IO"], "splices per IO": r["splices per IO"],
                     "cached on submitting CPUs": r["cached on submitting CPUs"],
                     "cached on other CPUs": r["cached on other CPUs"]})
    return pd.DataFrame(rows)


def break_even(df: pd.DataFrame) -> float | None:
    """The share at which the list's cycles per IO reach kmalloc's, by linear interpolation between
    the sweep's points; ``None`` if the list is cheaper (or dearer) across the whole sweep."""
    d = (df[LIST] - df[KMALLOC]).to_numpy()
    x = df["share"].to_numpy()
    for i in range(len(d) - 1):
        if d[i] <= 0 < d[i + 1] or d[i] < 0 <= d[i + 1]:
            return float(x[i] + (x[i + 1] - x[i]) * (-d[i]) / (d[i + 1] - d[i]))
    return None


def list_lengths(program, event_path, cpu: int = 0, events: int | None = None) -> pd.DataFrame:
    """``nr`` and ``nr_irq`` of ``cpu`` after each of its events, replayed from the model's event
    paths (each path changes the lists in one known way)."""
    s, e = int(program.start[cpu]), int(program.start[cpu + 1])
    if events is not None:
        e = min(e, s + events)
    nr = nr_irq = 0
    rows = []
    for k, i in enumerate(range(s, e)):
        p = pl.PATHS[event_path[i]]
        if p == "alloc_hit":
            nr -= 1
        elif p == "alloc_splice":
            nr, nr_irq = nr + nr_irq - 1, 0
        elif p == "free_task":
            nr += 1
        elif p == "free_irq":
            nr_irq += 1
        rows.append({"event": k, "path": p, "op": "alloc" if program.op[i] == 0 else "free", "nr": nr, "nr_irq": nr_irq})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# The chapter's sections: one function each, returning what the prose pastes


@dataclass(frozen=True)
class PathCosts:
    """What the list's paths cost (cycles: their step sums), the parts of them the prose names, and the
    kernel of the backend."""

    c_hit: float
    c_free: float
    c_free_task: float
    c_splice: float
    c_get_cpu: float
    c_preempt: float
    c_l1: float
    kernel_v: Md


def path_costs(P) -> PathCosts:
    """From the step sums of ``data/kernel/steps.yaml`` (:func:`allocsim.kernel.pcpu_list.path_costs`)."""
    from allocsim.facts import steps as _steps

    pc = dict(zip(pl.PATHS, pl.path_costs()))
    t = _costs.load()
    get_cpu = _steps.load().cycles("pcpu_get_cpu", t, _steps.Facts())
    return PathCosts(pc["alloc_hit"], pc["free_irq"], pc["free_task"], pc["alloc_splice"] - pc["alloc_hit"], get_cpu,
                     t.cycles("preempt_pair"), t.cycles("l1_hit"), Md(f"`{P.kernel}`"))


@dataclass(frozen=True)
class Workload:
    """The io_uring run of the page: t/io_uring's defaults as the book assumes them, this page's run in
    words, its size, its warm-up and the first splice with interrupt completions."""

    d_n: int
    d_qd: int
    d_sb: int
    d_cb: int
    t_opts: Md
    w_words: Md
    w_topology: Md
    w_completion: Md
    base_gap: int
    n_events: int
    ios_total: int
    warm_misses: int
    w_first: int
    w_end: int
    irq_first_splice: int
    _irq: pd.DataFrame = None
    _polled: pd.DataFrame = None


def workload_section(P, events: int = 480) -> Workload:
    d0 = adapter.defaults()
    cfg = adapter.io_uring(P)
    prog = iouring.program(cfg)
    run = list_model(P)(prog)
    first, end = iouring.steady_window(cfg)
    traces = {}
    for name in (IRQ, POLLED):
        p = iouring.program(adapter.io_uring(P, **SCENARIOS[name]))
        traces[name] = list_lengths(p, list_model(P)(p).event_path, events=events)
    irq = traces[IRQ]
    splices = irq.index[irq["path"] == "alloc_splice"]
    return Workload(d0.submitters, d0.queue_depth, d0.submit_batch, d0.complete_batch,
                    Md(f"`t/io_uring {adapter.t_io_uring(cfg)}`"), Md(workload_words(cfg)), Md(topology_words(cfg)),
                    Md(completion_words(cfg)),
                    cfg.submit_gap, prog.n_events, cfg.ios * cfg.submitters, run.stats["alloc_kmalloc"], first, end,
                    int(splices[0]) if len(splices) else -1, irq, traces[POLLED])


@dataclass(frozen=True)
class Steady:
    """Steady-state figures of the named scenarios: interrupt completions, polled, and this page's."""

    irq_hit: float
    irq_cyc: float
    irq_kmalloc: float
    irq_saved: float
    irq_saved_ns: float
    irq_splice_per: float
    p1_cyc: float
    p1_saved: float
    me_hit: float
    me_cyc: float
    me_saved: float
    ghz: float


def steady_section(P, sc: pd.DataFrame) -> Steady:
    """From :func:`scenarios`."""
    d, p1, me = sc.loc[IRQ], sc.loc[POLLED], sc.loc[THIS]
    return Steady(100 * d["hit rate"], d["list cycles per IO"], d["kmalloc cycles per IO"], d["saved cycles per IO"],
                  d["saved cycles per IO"] / P.clock_ghz, 1 / d["splices per IO"] if d["splices per IO"] else 0,
                  p1["list cycles per IO"], p1["saved cycles per IO"], 100 * me["hit rate"], me["list cycles per IO"],
                  me["saved cycles per IO"], P.clock_ghz)


#: The columns of the scenario table and their headers on the page.
SCENARIO_COLUMNS = {"hit rate": "hit rate", "kmalloc per IO": "kmalloc calls /IO", "kfree per IO": "kfree calls /IO",
                    "list cycles per IO": "cycles /IO, list", "kmalloc cycles per IO": "cycles /IO, kmalloc",
                    "saved cycles per IO": "saved /IO"}
SCENARIO_FORMATS = {"hit rate": ".1%", "kmalloc calls /IO": ".3f", "kfree calls /IO": ".3f", "cycles /IO, list": ".1f",
                    "cycles /IO, kmalloc": ".1f", "saved /IO": ".1f"}


def scenario_table(sc: pd.DataFrame) -> pd.DataFrame:
    """:func:`scenarios` as the page shows it."""
    return sc[list(SCENARIO_COLUMNS)].rename(columns=SCENARIO_COLUMNS)


@dataclass(frozen=True)
class ThreadSaving:
    """What the thread's figures say the list saved per IO, and the modelled saving against it."""

    t_ns619: float
    t_ns70: float
    t_cyc619: float
    t_cyc70: float
    thread_note: Md


def thread_saving(P, saved_cycles: float) -> ThreadSaving:
    from allocsim.pages import thread as thread_views

    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    ns = {k: thread_views.ns_saved(f[k, "per-CPU list"], f[k, "kmalloc"]) for k in ("6.19", thread_kernel("7.0"))}
    ns619, ns70 = ns["6.19"], ns[thread_kernel("7.0")]
    return ThreadSaving(ns619, ns70, ns619 * P.clock_ghz, ns70 * P.clock_ghz, Md(thread_note(P, saved_cycles)))


def pct_or_none(x: float | None) -> Md:
    """A break-even share for the prose: ``87%``, or "nowhere in the sweep"."""
    return Md(f"{100 * x:.0f}%" if x is not None else "nowhere in the sweep")


@dataclass(frozen=True)
class Sweeps:
    """Softirq and cross-CPU sweeps: where the list stops paying and what is left cached."""

    be_soft: Md
    be_cross: Md
    full_soft: float
    full_soft_k: float
    cross_left: int
    cross_left_kib: float
    cross_cpus: int  # CPUs the interrupts elsewhere in the LLC land on
    cross_all: int  # objects left on all of them
    half_share: float
    half_hit: float
    fresh_mem: float  # list elements' header lines missed to memory per IO, 25% of IRQs in another LLC
    fresh_cyc: float  # ... what they cost per IO beyond an L1 hit
    be_note: Md  # with the hierarchy on: the flat model's break-evens on the same programs, and the memory misses left
    _soft: pd.DataFrame = None
    _cross: pd.DataFrame = None
    _be_soft: float | None = None
    _be_cross: float | None = None


def sweeps(P, sc: pd.DataFrame, points: int = 11) -> Sweeps:
    """Move the interrupts from the submitting CPU to another LLC (their completions then run in
    BLOCK_SOFTIRQ on the submitter, with the page's rq_affinity 1) and, separately, to another CPU of the
    submitter's LLC (hardirq there), from none to all that the page's other share leaves, everything else
    as on the page."""
    grid = [i / (points - 1) for i in range(points)]
    room_soft, room_cross = 1.0 - P.irq_same_llc_share, 1.0 - P.irq_other_llc_share
    soft = sweep(P, "irq_other_llc_share", [g * room_soft for g in grid], irq_same_llc_share=P.irq_same_llc_share)
    cross = sweep(P, "irq_same_llc_share", [g * room_cross for g in grid], irq_other_llc_share=P.irq_other_llc_share)
    be_s, be_c = break_even(soft), break_even(cross)
    left = int(sc.loc[CROSS100, "cached after run, most on one CPU"])
    cfg = adapter.io_uring(P, **SCENARIOS[CROSS100])
    half = soft.iloc[(soft["share"] - 0.5 * room_soft).abs().argmin()]
    fresh, fresh_cyc = fresh_elements(P, **SCENARIOS[SOFT25])
    note = ""
    if P.hierarchy:
        # the same programs (the hierarchy's CPU numbering) through the flat model
        flat = SimpleNamespace(**{**vars(P), "hierarchy": False, "llc_cpus": adapter.hierarchy_llc_cpus(True)})
        fs = break_even(sweep(flat, "irq_other_llc_share", [g * room_soft for g in grid], cached=False,
                              irq_same_llc_share=P.irq_same_llc_share))
        fc = break_even(sweep(flat, "irq_same_llc_share", [g * room_cross for g in grid], cached=False,
                              irq_other_llc_share=P.irq_other_llc_share))
        _, cross_cyc = fresh_elements(P, **SCENARIOS[CROSS25])
        same = "the same point as" if pct_or_none(fs) == pct_or_none(be_s) else "where the hierarchy puts it at"
        note = (f"The flat model, on the same programs, puts the two points at {pct_or_none(fs)} and {pct_or_none(fc)}. "
                "With the interrupts in another LLC no line moves between CPUs (every completion runs on the "
                f"submitter): {same} {pct_or_none(be_s)}. Elsewhere in the LLC the remote frees of the next section "
                "move the elements' lines between caches, which only the hierarchy charges; of that, the elements "
                "the list takes from `kmalloc` that are memory never used before (no CPU has one waiting) cost "
                f"{cross_cyc:.0f} cycles per IO at a quarter (see *What the model leaves out*).")
    return Sweeps(pct_or_none(be_s), pct_or_none(be_c), soft[LIST].iloc[-1], soft[KMALLOC].iloc[-1], left,
                  left * pcpu_memory.memory(P.max_nr, P.kernel)["kmalloc_class"] / 1024, cfg.n_cpus - cfg.submitters,
                  int(sc.loc[CROSS100, "cached on other CPUs"]), 100 * half["share"], 100 * half["hit rate"], fresh,
                  fresh_cyc, Md(note), soft, cross, be_s, be_c)


def fresh_elements(P, **overrides) -> tuple[float, float]:
    """Accesses per IO of the list's front end that the memory hierarchy (on, whatever ``P.hierarchy`` says)
    served from memory, and what they cost per IO beyond an L1 hit. In the steady state the list's own lines stay in
    cache; what misses is the header of an element the list just got from ``kmalloc`` when no CPU had kfree()d one
    for it to be handed back (:mod:`allocsim.kernel.pcpu_list`): memory never used before."""
    from allocsim.analysis import crosscpu as cc

    on = SimpleNamespace(**{**vars(P), "hierarchy": True})
    cfg = adapter.io_uring(on, **overrides)
    ss = iouring.steady_state(lambda prog: list_model(on)(prog).extra["front"], cfg)
    mem = ss.hierarchy_per_io()["MEM"]
    lat = cc.latencies(P.clock_ghz)
    return mem, mem * (lat["memory"] - lat["l1"])


@dataclass(frozen=True)
class CrossCPU:
    """What completions on another CPU cost the list and the sheaves through the memory hierarchy, beside the
    flat model (:mod:`allocsim.analysis.crosscpu`): the numbers the prose names."""

    cc_l1: float  # the hierarchy's L1 hit, in cycles
    cc_lat_same: float  # a transfer from another CPU of the LLC, in cycles at the page's clock
    cc_lat_cross: float  # ... from another LLC
    cc_per_llc: int
    cc_last_in_llc: int  # the last CPU of the submitter's LLC (cc_per_llc - 1)
    hier_words: Md  # whether the rest of the page runs with the hierarchy
    cc_n_same: int  # CPUs in the program when the interrupts land elsewhere in the LLC
    cc_n_far: int  # ... in another LLC
    cc_local_added: float  # the most the hierarchy adds to any model with every completion on the submitting CPU
    cc619_same: float  # 6.19 kmalloc cycles per IO, same LLC, hierarchy
    cc619_same_flat: float
    cc619_same_added: float
    cc619_same_xfer: float
    cc619_far: float
    cc619_far_added: float
    cc619_charges: float  # transfer latencies one IO pays (distance_cost)
    cc70_same: float
    cc70_same_flat: float
    cc70_same_added: float
    cc70_same_xfer: float
    cc70_far_added: float
    cc70_cap: int  # the 7.0 kmalloc-96 sheaf capacity
    cc70_lines: float  # lines a sheaf brings with it (transfers per IO x capacity)
    cc_list619_same: float
    cc_list70_same: float
    cc_list619_over: float  # what the list costs more than kmalloc, 6.19, same LLC, hierarchy
    cc_list70_over: float
    cc_list_local: float  # the list, every completion on the submitting CPU (6.19 and 7.0 alike)
    cc_list70_gain_same: float  # kmalloc minus list on 7.0 with every completion in the LLC (hierarchy)
    cc_sent_xfer: float  # transfers per IO when the interrupts in another LLC are sent back (all models, max)
    cc_minobj_1: int
    cc_minobj_far: int
    cc_order_words: Md  # what the CPUs present do to the two caches' slabs
    _df: pd.DataFrame = None
    _summary: pd.DataFrame = None
    _orders: pd.DataFrame = None


def cross_cpu_section(P) -> CrossCPU:
    """Every model × placement × hierarchy on/off (:func:`allocsim.analysis.crosscpu.table`) and the numbers the
    section's prose names."""
    from allocsim.analysis import crosscpu as cc
    from allocsim.facts import kconfig

    df = cc.table(P)
    summ = cc.summary(df)
    lat = cc.latencies(P.clock_ghz)

    def v(k, a, where, h="on", col="cycles per IO"):
        return cc.value(df, k, a, where, h, col)

    n_same, n_far = cc.workload(P, "same LLC").n_cpus, cc.workload(P, "other LLC").n_cpus
    orders = pd.concat([cc.slab_order_note(pl.element_size(), "6.19", (1, n_same, n_far)),
                        cc.slab_order_note(cc.element_size(), "6.19", (1, n_same, n_far))], ignore_index=True)
    local = summ.xs("same CPU", level="where")["added by the hierarchy"].abs().max()
    sent = summ.xs("other LLC, sent back", level="where")["transfers per IO"].max()
    cap = kconfig.cache_geometry(pl.element_size(), n_same, "7.0", kmalloc=True).sheaf_capacity
    x70 = v("7.0", "kmalloc", "same LLC", col="transfers per IO")
    hier = ("it is on, so every figure of the page is charged by it and the workload numbers its CPUs the same way"
            if P.hierarchy else "it is off, so the rest of the page uses the flat model and the workload's own CPU "
            "numbering; this section runs both")
    return CrossCPU(
        lat["l1"], lat["same_llc"], lat["cross_llc"], lat["cpus_per_llc"], lat["cpus_per_llc"] - 1, Md(hier),
        n_same, n_far, float(local),
        v("6.19", "kmalloc", "same LLC"), v("6.19", "kmalloc", "same LLC", "off"),
        v("6.19", "kmalloc", "same LLC") - v("6.19", "kmalloc", "same LLC", "off"),
        v("6.19", "kmalloc", "same LLC", col="transfers per IO"), v("6.19", "kmalloc", "other LLC"),
        v("6.19", "kmalloc", "other LLC") - v("6.19", "kmalloc", "other LLC", "off"),
        cc.distance_cost(df, "6.19", "kmalloc", P.clock_ghz),
        v("7.0", "kmalloc", "same LLC"), v("7.0", "kmalloc", "same LLC", "off"),
        v("7.0", "kmalloc", "same LLC") - v("7.0", "kmalloc", "same LLC", "off"), x70,
        v("7.0", "kmalloc", "other LLC") - v("7.0", "kmalloc", "other LLC", "off"), int(cap), x70 * cap,
        v("6.19", "per-CPU list", "same LLC"), v("7.0", "per-CPU list", "same LLC"),
        v("6.19", "per-CPU list", "same LLC") - v("6.19", "kmalloc", "same LLC"),
        v("7.0", "per-CPU list", "same LLC") - v("7.0", "kmalloc", "same LLC"),
        v("6.19", "per-CPU list", "same CPU"),
        v("7.0", "kmalloc", "same LLC") - v("7.0", "per-CPU list", "same LLC"),
        float(sent), int(kconfig.min_objects(1)), int(kconfig.min_objects(n_far)), Md(order_words(orders)), df, summ,
        orders)


def order_words(orders: pd.DataFrame) -> str:
    """What :func:`allocsim.analysis.crosscpu.slab_order_note` shows, as a clause: the slabs of each cache stay as
    they are, or how they change with the CPUs present."""
    parts, same = [], True
    for cache, g in orders.groupby("cache", sort=False):
        if g["objects per slab"].nunique() == 1 and g["order"].nunique() == 1:
            parts.append(f"`{cache}` keeps order-{int(g['order'].iloc[0])} slabs of {int(g['objects per slab'].iloc[0])} objects")
        else:
            same = False
            parts.append(f"`{cache}` goes from " + " to ".join(
                f"order {int(r.order)} ({int(r['objects per slab'])} objects) with {int(r.CPUs)} CPUs" for _, r in g.iterrows()))
    lead = "an order-0 slab of either size already holds at least that many, so " if same else ""
    return lead + " and ".join(parts)


#: The cross-CPU table's columns on the page and their formats.
CROSS_COLUMNS = {"CPUs": "CPUs", "cycles per IO, flat": "cycles /IO, flat", "cycles per IO, hierarchy": "cycles /IO, hierarchy",
                 "added by the hierarchy": "added", "transfers per IO": "transfers /IO"}
CROSS_FORMATS = {"CPUs": "d", "cycles /IO, flat": ".1f", "cycles /IO, hierarchy": ".1f", "added": ".1f",
                 "transfers /IO": ".2f"}


def cross_cpu_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`allocsim.analysis.crosscpu.summary` as the page shows it."""
    return summary[list(CROSS_COLUMNS)].rename(columns=CROSS_COLUMNS)


def cross_cpu_chart(df: pd.DataFrame) -> alt.VConcatChart:
    """Cycles per IO of each model with every completion in one place, flat and with the hierarchy (one panel per
    model), and the lines each IO takes from another CPU's cache (from :func:`allocsim.analysis.crosscpu.table`)."""
    from allocsim.analysis import crosscpu as cc

    where = list(cc.PLACEMENTS)
    d = df.copy()
    d["model run"] = np.where(d["hierarchy"] == "on", "memory hierarchy", "flat (every load an L1 hit)")
    tip = ["model:N", "where:N", "model run:N", alt.Tooltip("cycles per IO:Q", format=".1f"),
           alt.Tooltip("transfers per IO:Q", format=".2f")]
    bars = alt.Chart(d).mark_bar().encode(
        x=alt.X("where:N", sort=where, title=None, axis=alt.Axis(labelAngle=-30, labelLimit=140)),
        xOffset=alt.XOffset("model run:N"),
        y=alt.Y("cycles per IO:Q", title=charts.axis("allocator cost per IO", "cycles")),
        color=alt.Color("model run:N", title=None, legend=alt.Legend(orient="top", labelLimit=0),
                        scale=alt.Scale(domain=["flat (every load an L1 hit)", "memory hierarchy"],
                                        range=["#bbbbbb", charts.ACCENT])),
        tooltip=tip,
    ).properties(width=150, height=150).facet(  # two panels a row that fit a phone's text column
        facet=alt.Facet("model:N", title=None, sort=[cc.label(*c) for c in cc.CONFIGS]), columns=2)
    on = d[d["hierarchy"] == "on"]
    xfer = alt.Chart(on).mark_bar().encode(
        x=alt.X("where:N", sort=where, title=None, axis=alt.Axis(labelAngle=-30, labelLimit=140)),
        xOffset=alt.XOffset("model:N", sort=[cc.label(*c) for c in cc.CONFIGS]),
        y=alt.Y("transfers per IO:Q", title=charts.axis("lines from another CPU per IO")),
        color=alt.Color("model:N", title=None, sort=[cc.label(*c) for c in cc.CONFIGS],
                        legend=alt.Legend(orient="top", labelLimit=0, columns=1),  # one per line: fits a phone
                        scale=alt.Scale(range=[charts.COLORS[KMALLOC], "#56B4E9", charts.COLORS[LIST], "#CC79A7"])),
        tooltip=tip,
    ).properties(width=320, height=150)
    return alt.vconcat(bars, xfer).resolve_scale(color="independent").properties(
        title=alt.Title("What a completion on another CPU costs", subtitle="hover a bar for its figures"))


@dataclass(frozen=True)
class Memory:
    """The memory the patch keeps: object and element sizes, kmalloc classes, per CPU and per machine,
    against what SLUB keeps per CPU for the plain cache."""

    m_size: int
    m_header: int
    m_request: int
    m_class: Md
    m_plain: Md
    m_overhead: float
    m_percpu_kib: float
    m_max_nr: int
    m_ncpu: int
    m_machine_mib: float
    m_slub_kib: float
    m_slub_what: Md
    m_src: Md


def memory_section(P) -> Memory:
    mem = pcpu_memory.memory(P.max_nr, P.kernel)
    dio = structs.load("iomap_dio")
    return Memory(mem["element_size"], mem["header"], mem["request"], Md(f"`{mem['kmalloc_cache']}`"),
                  Md(f"`{mem['plain_cache']}`"), 100 * (mem["kmalloc_class"] - mem["plain_class"]) / mem["plain_class"],
                  mem["per_cpu_bytes"] / 1024, mem["max_nr"], P.ncpu, P.ncpu * mem["per_cpu_bytes"] / 2**20,
                  mem["slub_per_cpu_bytes"] / 1024, Md(mem["slub_per_cpu_what"]), Md(dio.source))


def struct_fields(name: str = "iomap_dio") -> pd.DataFrame:
    """The struct's members with their offsets and sizes, as the C layout rules place them."""
    s = structs.load(name)
    return pd.DataFrame([{"offset": f.offset, "member": f.name, "bytes": f.size} for f in s.fields])


# ------------------------------------------------------------------------------------------------
# Charts

def mechanism_chart(threshold: int, max_nr: int) -> alt.LayerChart:
    """The two lists, when each is used, and the splice: boxes and labelled arrows (hover for the code)."""
    W, H, XMAX, YMAX = charts.WIDTH + 120, 300, 100, 60  # pixels and data units
    w, h = 12, 5  # half a box, in data units
    boxes = pd.DataFrame([
        {"id": "kmalloc", "x": 12, "y": 50, "label": f"kmalloc(size + {pl.header_size()})", "sub": "the backend",
         "code": "kmalloc(PCPU_CACHE_ELEMENT_SIZE(pcpu_cache_list), GFP_KERNEL)"},
        {"id": "alloc", "x": 46, "y": 50, "label": "pcpu_cache_list_alloc()", "sub": "task context, at submission",
         "code": "cache = per_cpu_ptr(pcpu_cache_list->cache, get_cpu()); ... put_cpu();"},
        {"id": "list", "x": 80, "y": 50, "label": "free_list, nr", "sub": "per CPU, LIFO",
         "code": "struct pcpu_cache_element *free_list; int nr;"},
        {"id": "kfree", "x": 12, "y": 10, "label": "kfree()", "sub": "the backend", "code": "kfree(cache_element);"},
        {"id": "free", "x": 46, "y": 10, "label": "pcpu_cache_list_free()", "sub": "at completion, any context",
         "code": "cache = per_cpu_ptr(pcpu_cache_list->cache, get_cpu()); ... put_cpu();"},
        {"id": "irq", "x": 80, "y": 10, "label": "free_list_irq, nr_irq", "sub": "per CPU, LIFO",
         "code": "struct pcpu_cache_element *free_list_irq; int nr_irq;"},
    ]).set_index("id")
    boxes["x0"], boxes["x1"] = boxes["x"] - w, boxes["x"] + w
    boxes["y0"], boxes["y1"] = boxes["y"] - h, boxes["y"] + h
    # (from, to, label, label position, code)
    edges = [
        ("list", "alloc", "pop: a hit", (63, 57.5),
         "cache_element = cache->free_list; cache->free_list = cache_element->next; cache->nr--;"),
        ("alloc", "kmalloc", f"miss: free_list\nempty, nr_irq < {threshold}", (29, 39),
         "if (!cache->free_list) { ... put_cpu(); cache_element = kmalloc(...); }"),
        ("irq", "list", f"splice:\nfree_list empty\nand nr_irq ≥ {threshold}", (91, 30),
         "local_irq_save(flags); cache->free_list = cache->free_list_irq; cache->free_list_irq = NULL; "
         "cache->nr += cache->nr_irq; cache->nr_irq = 0; local_irq_restore(flags);"),
        ("free", "list", "in_task():\npush", (54, 32),
         "cache_element->next = cache->free_list; cache->free_list = cache_element; cache->nr++;"),
        ("free", "irq", "in_hardirq():\npush", (63, 20),
         "cache_element->next = cache->free_list_irq; cache->free_list_irq = cache_element; cache->nr_irq++;"),
        ("free", "kfree", f"softirq, or\nnr + nr_irq ≥ {max_nr}:\nkfree", (29, 20),
         "if (READ_ONCE(cache->nr_irq) + cache->nr >= pcpu_cache_list->max_nr) goto out_free; ... else goto out_free;"),
    ]
    rows, heads, labels = [], [], []
    for a, b, text, (lx, ly), code in edges:
        xa, ya, xb, yb = boxes.loc[a, "x"], boxes.loc[a, "y"], boxes.loc[b, "x"], boxes.loc[b, "y"]
        dx, dy = xb - xa, yb - ya
        t = min(w / abs(dx) if dx else math.inf, h / abs(dy) if dy else math.inf)  # leave/enter at the border
        x0, y0, x1, y1 = xa + dx * t, ya + dy * t, xb - dx * t, yb - dy * t
        plain = text.replace("\n", " ")
        rows.append({"x": x0, "y": y0, "x2": x1, "y2": y1, "when": plain, "code": code})
        # a triangle's angle is clockwise from "up", in screen pixels
        ang = math.degrees(math.atan2(dx * W / XMAX, dy * H / YMAX))
        heads.append({"x": x1, "y": y1, "angle": ang, "when": plain, "code": code})
        labels.append({"x": lx, "y": ly, "text": text, "when": plain, "code": code})
    xs = alt.X("x:Q", scale=alt.Scale(domain=[0, XMAX]), axis=None)
    ys = alt.Y("y:Q", scale=alt.Scale(domain=[0, YMAX]), axis=None)
    tip = [alt.Tooltip("when:N", title="when"), alt.Tooltip("code:N", title="code")]
    b = boxes.reset_index()
    rect = alt.Chart(b).mark_rect(fill="#f4f4f4", stroke="#555", cornerRadius=4).encode(
        x=alt.X("x0:Q", scale=alt.Scale(domain=[0, XMAX]), axis=None), x2="x1:Q",
        y=alt.Y("y0:Q", scale=alt.Scale(domain=[0, YMAX]), axis=None), y2="y1:Q",
        tooltip=[alt.Tooltip("label:N", title="part"), alt.Tooltip("code:N", title="code")])
    title = alt.Chart(b).mark_text(fontWeight="bold", fontSize=10.5, dy=-6).encode(
        x=xs, y=ys, text="label:N", tooltip=[alt.Tooltip("label:N", title="part"), alt.Tooltip("code:N", title="code")])
    sub = alt.Chart(b).mark_text(fontSize=9.5, color="#555", dy=8).encode(x=xs, y=ys, text="sub:N")
    lines = alt.Chart(pd.DataFrame(rows)).mark_rule(strokeWidth=1.6, color="#333").encode(
        x=xs, y=ys, x2="x2:Q", y2="y2:Q", tooltip=tip)
    arrow = alt.Chart(pd.DataFrame(heads)).mark_point(shape="triangle", filled=True, size=60, color="#333", opacity=1).encode(
        x=xs, y=ys, angle=alt.Angle("angle:Q", scale=None), tooltip=tip)
    text = alt.Chart(pd.DataFrame(labels)).mark_text(fontSize=10.5, lineBreak="\n", color=charts.COLORS[LIST]).encode(
        x=xs, y=ys, text="text:N", tooltip=tip)
    return (rect + title + sub + lines + arrow + text).properties(
        width=W, height=H,
        title=alt.Title("The patch's two per-CPU lists", subtitle="hover a box or an arrow for the code it stands for"))


def trace_chart(df: pd.DataFrame, title: str) -> alt.Chart:
    """``nr`` and ``nr_irq`` after each event (from :func:`list_lengths`)."""
    long = df.melt(id_vars=["event", "path", "op"], value_vars=["nr", "nr_irq"], var_name="list", value_name="objects")
    return alt.Chart(long).mark_line(interpolate="step-after").encode(
        x=alt.X("event:Q", title=charts.axis("event on the submitting CPU")),
        y=alt.Y("objects:Q", title=charts.axis("objects on the list")),
        color=alt.Color("list:N", title="list", scale=alt.Scale(domain=["nr", "nr_irq"], range=[charts.COLORS[LIST], "#56B4E9"])),
        tooltip=["event:Q", "op:N", "path:N", "list:N", "objects:Q"],
    ).properties(title=title, height=180)


def sweep_chart(df: pd.DataFrame, xtitle: str, title: str, crossing: float | None) -> alt.LayerChart:
    """Cycles per IO with and without the list as a share varies; a rule where they cross."""
    long = df.melt(id_vars=["share", "hit rate"], value_vars=[LIST, KMALLOC], var_name="allocator", value_name="cycles")
    base = alt.Chart(long).encode(
        x=alt.X("share:Q", title=xtitle, axis=alt.Axis(format="%")),
        y=alt.Y("cycles:Q", title=charts.axis("allocator cost per IO", "cycles")),
        color=_two_colors(),
        tooltip=[alt.Tooltip("share:Q", format=".0%"), "allocator:N", alt.Tooltip("cycles:Q", format=".1f"),
                 alt.Tooltip("hit rate:Q", format=".1%", title="list hit rate")],
    )
    layers = base.mark_line() + base.mark_point(filled=True, size=30)
    if crossing is not None:
        rule = alt.Chart(pd.DataFrame({"share": [crossing], "label": [f"break-even {crossing:.0%}"]})).mark_rule(
            strokeDash=[4, 3], color="#555").encode(x="share:Q", tooltip=["label:N"])
        layers = layers + rule
    return layers.properties(title=title)


def cached_chart(df: pd.DataFrame, max_nr: int) -> alt.LayerChart:
    """Objects left on the lists once every IO has completed, on the submitting CPU(s) and on the
    others, against the cross-CPU share (from :func:`sweep`)."""
    long = df.melt(id_vars=["share"], value_vars=["cached on submitting CPUs", "cached on other CPUs"],
                   var_name="where", value_name="objects")
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("share:Q", title=charts.axis("interrupts on another CPU of the LLC"), axis=alt.Axis(format="%")),
        y=alt.Y("objects:Q", title=charts.axis("objects left on the lists")),
        color=alt.Color("where:N", title=None, legend=alt.Legend(labelLimit=0), scale=alt.Scale(
            domain=["cached on submitting CPUs", "cached on other CPUs"], range=[charts.COLORS[LIST], "#56B4E9"])),
        tooltip=[alt.Tooltip("share:Q", format=".0%"), "where:N", "objects:Q"],
    )
    rule = alt.Chart(pd.DataFrame({"objects": [max_nr], "label": [f"max_nr = {max_nr}"]})).mark_rule(
        strokeDash=[4, 3], color="#555").encode(y="objects:Q", tooltip=["label:N"])
    return (lines + rule).properties(title="Objects left cached when the IO stops", height=200)


def memory_chart(df: pd.DataFrame, ncpu: int) -> alt.LayerChart:
    """Machine-wide bytes the caches can hold, against the CPU count (log-log), with a rule at ``ncpu``."""
    cols = [c for c in df.columns if c != "cpus"]
    long = df.melt(id_vars=["cpus"], value_vars=cols, var_name="what", value_name="bytes")
    long["MiB"] = long["bytes"] / 2**20
    long["allocator"] = np.where(long["what"] == LIST, LIST, KMALLOC)
    base = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("cpus:Q", title=charts.axis("CPUs that ran direct IO"), scale=alt.Scale(type="log", base=2),
                axis=alt.Axis(values=[v for v in (1, 4, 16, 64, 256, 1024, 4096) if v <= df["cpus"].max()])),
        y=alt.Y("MiB:Q", title=charts.axis("memory the caches keep per machine, at most", "MiB"), scale=alt.Scale(type="log")),
        color=_two_colors(),
        tooltip=["what:N", "cpus:Q", alt.Tooltip("MiB:Q", format=".2f")],
    )
    rule = alt.Chart(pd.DataFrame({"cpus": [ncpu], "label": [f"this page: {ncpu} CPUs"]})).mark_rule(
        strokeDash=[4, 3], color="#555").encode(x="cpus:Q", tooltip=["label:N"])
    return (base + rule).properties(title="Memory the per-CPU caches can keep")

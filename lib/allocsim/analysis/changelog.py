"""The model changelog: what each change of cost model v2 did to the book's six predictions and to every
claim's status, computed, not typed (the methods appendix shows it).

A :class:`State` is a model state — the cost table, the step file, the hook switches (and any other
:class:`allocsim.analysis.runs.Setup` field a later change adds) — and :data:`STATES` is the cumulative
sequence, each state one change on top of the one before:

0. ``before v2``: the charges before cost model v2 (``data/costs-v1.csv``, ``data/kernel/steps-v1.yaml``,
   every hook switch off) — the book's earlier numbers;
1. ``steps``: one costing discipline — every hot path charged as the steps read off the code
   (``data/kernel/steps.yaml``), still at the v1 prices and without hooks;
2. ``hooks``: the kernel configuration switches at a distribution kernel's defaults
   (``data/kernel/hooks.yaml``);
3. ``costs``: the re-sourced cost table (``data/costs.csv``);
4. ``blk-mq`` (when :class:`~allocsim.analysis.runs.Setup` has a ``placement`` field): completion CPU
   and context coupled as blk-mq places them;
5. ``hierarchy`` (when :class:`~allocsim.analysis.runs.Setup` has a ``hierarchy`` field): the memory
   hierarchy of :mod:`allocsim.kernel.memory` (``data/kernel/cpu.yaml`` at the reproduction's clock) charges
   every load and store the models' steps make, instead of the flat ``l1_hit`` row per load — the last
   state is the model as the book ships it. Every earlier state runs with ``hierarchy=False``.

For each state :func:`evaluate` runs :func:`allocsim.analysis.runs.reproduce` (the six configurations,
the one base cost calibrated on all six) and :func:`allocsim.analysis.claims.evaluate` on that
reproduction (its microbenchmark claims run with the same switches, step file, cost table, hierarchy
switch and clock), and :func:`changes` says,
per change, how each prediction moved and which claims changed status. :func:`hierarchy_accesses` says
where the hierarchy state's loads and stores found their lines, per IO of each configuration (the
counters ``Result.extra["hierarchy"]`` of :mod:`allocsim.kernel.memory`), which is why that change moves
the predictions as much as it does.

A later change is one more :class:`State` at the end of :func:`sequence`, with the
:class:`~allocsim.analysis.runs.Setup` fields it sets; the earlier states then set the field's old value.

**Cache.** A state costs a reproduction (a few seconds) and the microbenchmark claims (tens of
seconds). :func:`evaluate` keeps each state's result in memory and on disk
(``_build/changelog/<digest>.json``), keyed by the state and a digest of the model sources and data
files (:func:`allocsim.analysis.sweep.code_digest`), so a changed model or data file is recomputed and
nothing stale is read. A cache that cannot be written (a read-only checkout) is skipped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from allocsim.analysis import claims as _claims
from allocsim.analysis import runs
from allocsim.analysis import sweep
from allocsim.facts import steps as _steps
from allocsim.facts.errors import AllocsimError
from allocsim.facts.paths import BUILD

CACHE = BUILD / "changelog"


@dataclass(frozen=True)
class State:
    """One model state: ``setup`` holds the :class:`~allocsim.analysis.runs.Setup` fields that differ
    from its defaults (``hooks`` as ``"off"``/``"default"`` or a mapping, see
    :meth:`allocsim.facts.steps.Hooks.of`)."""

    name: str
    change: str  # what this state changes, relative to the previous one
    setup: dict = field(default_factory=dict)

    def run_setup(self) -> runs.Setup:
        kw = dict(self.setup)
        if "hooks" in kw:
            kw["hooks"] = _steps.Hooks.of(kw["hooks"])
        bad = [k for k in kw if k not in runs.Setup.__dataclass_fields__]
        if bad:
            raise AllocsimError(f"changelog state {self.name!r} sets {', '.join(bad)}, which "
                                f"{'is not a field' if len(bad) == 1 else 'are not fields'} of analysis.runs.Setup")
        return runs.Setup(**kw).validate()

    def key(self) -> str:
        return json.dumps({"name": self.name, "setup": self.setup}, sort_keys=True)


#: The changes of cost model v2 to the hot paths, cumulative (see the module docstring).
V2_STATES = (
    State("before v2", "the charges before cost model v2: one measured whole-call figure for the 6.19 fast path, "
          "three primitives for a sheaf hit, no hooks (costs-v1.csv, steps-v1.yaml, every switch off)",
          {"cost_table": "v1", "steps": "v1", "hooks": "off"}),
    State("steps", "one costing discipline: every hot path is the sum of the steps read off the code "
          "(steps.yaml), still at the v1 prices and with every hook switch off",
          {"cost_table": "v1", "steps": "default", "hooks": "off"}),
    State("hooks", "the hook switches at a distribution kernel's defaults (hooks.yaml): memcg, init_on_alloc, "
          "the voluntary-preemption might_resched() call, hardened freelists",
          {"cost_table": "v1", "steps": "default", "hooks": "default"}),
    State("costs", "the re-sourced cost table (costs.csv): preempt_pair 11, percpu_cmpxchg16b the instruction alone, "
          "bulk_object per direction, memcg_account",
          {"cost_table": "default", "steps": "default", "hooks": "default"}),
)
#: The completion-placement change: completion CPU and context coupled as blk-mq places them, against
#: the pre-v2 independent draws. It applies when :class:`~allocsim.analysis.runs.Setup` has a
#: ``placement`` field (``'independent'`` the pre-v2 draws); :func:`sequence` then runs every earlier
#: state with ``placement='independent'`` and adds this one last.
PLACEMENT = State("blk-mq", "completion CPU and context coupled as blk-mq places them (blk_mq_complete_need_ipi(): "
                  "another LLC completes in BLOCK_SOFTIRQ on the submitting CPU, the same LLC in hardirq there), "
                  "instead of drawn independently; the book's default topology puts every interrupt on the "
                  "submitting CPU, where both place the completion in hardirq", {"placement": "blkmq"})


#: The memory hierarchy switched on (issue 11): hit, miss and transfer latencies of
#: ``data/kernel/cpu.yaml`` charge every load and store of the models' steps, at the reproduction's clock.
#: It applies when :class:`~allocsim.analysis.runs.Setup` has a ``hierarchy`` field; :func:`sequence` then
#: runs every earlier state with ``hierarchy=False`` and adds this one last.
HIERARCHY = State("hierarchy", "the memory hierarchy on (data/kernel/cpu.yaml: per-CPU L1d and L2, a shared LLC, "
                  "core-to-core transfers): every load and store of a step costs what the cache holding its line "
                  "says, instead of one flat l1_hit per load and nothing per store", {"hierarchy": True})


def sequence(setup_fields=None) -> tuple:
    """The model states for a :class:`~allocsim.analysis.runs.Setup` with ``setup_fields`` (default: its
    fields now): :data:`V2_STATES`; when ``placement`` is a field, the same with
    ``placement='independent'`` followed by :data:`PLACEMENT` on top of the last; when ``hierarchy`` is a
    field, every one of those with ``hierarchy=False`` followed by :data:`HIERARCHY` on top of the last."""
    fields = set(runs.Setup.__dataclass_fields__ if setup_fields is None else setup_fields)
    out = V2_STATES
    if "placement" in fields:
        before = tuple(replace(s, setup={**s.setup, "placement": "independent"}) for s in V2_STATES)
        out = before + (replace(PLACEMENT, setup={**V2_STATES[-1].setup, **PLACEMENT.setup}),)
    if "hierarchy" in fields:
        before = tuple(replace(s, setup={**s.setup, "hierarchy": False}) for s in out)
        out = before + (replace(HIERARCHY, setup={**out[-1].setup, **HIERARCHY.setup}),)
    return out


#: The book's sequence of model states.
STATES = sequence()


@dataclass(frozen=True)
class Outcome:
    """One state's results: the six predictions and every claim's status."""

    state: State
    predictions: pd.DataFrame  # kernel, allocator, reported M IOPS, predicted M IOPS, residual ns/IO, alloc cycles/IO
    base_ns: float
    rms_ns: float  # RMS of the six residuals, ns per IO
    claims: pd.DataFrame  # id, label (with the claim's kernel where two share a label), kernel, status, modelled
    accesses: pd.DataFrame | None = None  # hierarchy on: hierarchy_accesses() at the state's base cost
    moved_paths: pd.DataFrame | None = None  # hierarchy on: hierarchy_paths() at the state's base cost


_MEMO: dict = {}


def _digest(state: State) -> str:
    return hashlib.sha256((sweep.code_digest() + state.key()).encode()).hexdigest()[:32]


def _compute(state: State, clock_ghz: float) -> dict:
    rep = runs.reproduce(state.run_setup(), clock_ghz=clock_ghz)
    t = rep.table
    pred = pd.DataFrame({"kernel": t["kernel"], "allocator": t["allocator"], "reported M IOPS": t["reported M IOPS"],
                         "predicted M IOPS": t["predicted M IOPS"], "residual ns/IO": t["residual ns/IO"],
                         "alloc cycles/IO": t["alloc cycles/IO"]})
    ev = _claims.evaluate(rep)  # the microbenchmark claims with the reproduction's switches, hierarchy and clock
    cl = ev[["id", "label", "kernel", "status", "modelled"]].copy()
    twice = cl["label"].duplicated(keep=False)  # the IOPS rows of one allocator on both kernels: name the kernel
    cl["label"] = [f"{lab} ({k})" if d else lab for lab, k, d in zip(cl["label"], cl["kernel"], twice)]
    out = {"predictions": pred.to_dict("records"), "base_ns": float(rep.calibration.base_ns),
           "claims": cl.to_dict("records")}
    if rep.setup.hierarchy:  # where its accesses found their lines, and which paths it moved
        out["hierarchy"] = {"accesses": hierarchy_accesses(rep.setup, rep.base_cycles, clock_ghz).to_dict("records"),
                            "paths": hierarchy_paths(rep.setup, rep.base_cycles, clock_ghz).to_dict("records")}
    return out


def evaluate(state: State, clock_ghz: float = 3.0, cache: bool = True) -> Outcome:
    """The six predictions and the claims' statuses in ``state`` (memoised in memory and on disk)."""
    key = (state.key(), float(clock_ghz))
    if key not in _MEMO:
        raw = None
        path = CACHE / f"{_digest(state)}-{clock_ghz:g}.json"
        if cache and path.exists():
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError):
                raw = None
        if raw is None:
            raw = _compute(state, clock_ghz)
            if cache:
                try:
                    CACHE.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(raw))
                    tmp.replace(path)
                except OSError:
                    pass
        pred = pd.DataFrame(raw["predictions"])
        rms = float(np.sqrt(np.mean(np.square(pred["residual ns/IO"]))))
        h = raw.get("hierarchy")
        _MEMO[key] = Outcome(state, pred, float(raw["base_ns"]), rms, pd.DataFrame(raw["claims"]),
                             None if h is None else pd.DataFrame(h["accesses"]),
                             None if h is None else pd.DataFrame(h["paths"]))
    return _MEMO[key]


def history(states=STATES, clock_ghz: float = 3.0, cache: bool = True) -> list[Outcome]:
    """:func:`evaluate` for every state of the sequence."""
    if not states:
        raise AllocsimError("the changelog needs at least one model state")
    return [evaluate(s, clock_ghz, cache) for s in states]


def predictions_frame(outcomes: list[Outcome]) -> pd.DataFrame:
    """One row per (state, configuration): predicted M IOPS and residual ns per IO, with the state's RMS."""
    rows = []
    for i, o in enumerate(outcomes):
        for r in o.predictions.to_dict("records"):
            rows.append({"step": i, "state": o.state.name, "configuration": f"{r['kernel']} {r['allocator']}",
                         "reported M IOPS": r["reported M IOPS"], "predicted M IOPS": r["predicted M IOPS"],
                         "residual ns/IO": r["residual ns/IO"], "alloc cycles/IO": r["alloc cycles/IO"],
                         "RMS ns/IO": o.rms_ns, "base ns/IO": o.base_ns})
    return pd.DataFrame(rows)


def status_frame(outcomes: list[Outcome]) -> pd.DataFrame:
    """Claims × states: each claim's status in each state (columns in the order of the states)."""
    cols = {}
    labels = None
    for o in outcomes:
        c = o.claims.set_index("id")
        cols[o.state.name] = c["status"]
        labels = c["label"] if labels is None else labels
    df = pd.DataFrame(cols)
    df.insert(0, "claim", labels)
    return df


@dataclass(frozen=True)
class Change:
    """What one change (state i−1 → state i) did."""

    step: int
    name: str
    change: str
    rms_before: float
    rms_after: float
    base_before: float
    base_after: float
    moved: list  # [(configuration, predicted M IOPS before, after)]
    status_changes: list  # [(claim id, label, status before, status after)]


def changes(outcomes: list[Outcome]) -> list[Change]:
    """Per change of the sequence: the RMS residual and the base cost before and after, each prediction
    before and after, and the claims whose status changed."""
    out = []
    for i in range(1, len(outcomes)):
        a, b = outcomes[i - 1], outcomes[i]
        pa = a.predictions.set_index(["kernel", "allocator"])["predicted M IOPS"]
        pb = b.predictions.set_index(["kernel", "allocator"])["predicted M IOPS"]
        moved = [(f"{k} {al}", float(pa[(k, al)]), float(pb[(k, al)])) for (k, al) in pb.index]
        ca, cb = a.claims.set_index("id"), b.claims.set_index("id")
        st = [(cid, str(cb.loc[cid, "label"]), str(ca.loc[cid, "status"]), str(cb.loc[cid, "status"]))
              for cid in cb.index if cid in ca.index and ca.loc[cid, "status"] != cb.loc[cid, "status"]]
        out.append(Change(i, b.state.name, b.state.change, a.rms_ns, b.rms_ns, a.base_ns, b.base_ns, moved, st))
    return out


# ---------------------------------------------------------------------------------------------------------
# Where the hierarchy state's accesses found their lines

def _access_counts(result) -> np.ndarray:
    """The hierarchy's counters of one run (``cache.COUNTER_NAMES``), summed over the CPUs, of the model and
    — for the per-CPU list — of its kmalloc backend, which runs with a hierarchy of its own."""
    from allocsim.kernel import cache as _cache

    total = np.zeros(len(_cache.COUNTER_NAMES))
    for r in (result, result.extra.get("backend")):
        c = None if r is None else r.extra.get("hierarchy")
        if c is not None:
            total += np.asarray(c, dtype=float).sum(axis=0)
    return total


def hierarchy_accesses(setup: runs.Setup, base_cycles: float, clock_ghz: float = 3.0) -> pd.DataFrame:
    """Per configuration of the six, where the memory hierarchy found the lines of the loads and stores of
    the steady state, per IO: the counters of ``Result.extra["hierarchy"]`` (``L1``, ``L2``, ``LLC``: a hit
    there; ``XSAME``/``XLLC``/``XNODE``: a transfer from another core of the same LLC, another LLC, another
    node; ``MEM``: memory), in the window :func:`allocsim.workloads.iouring.steady_state` measures (the long
    program's counts minus the short one's), with ``base_cycles`` of other work per IO. ``beyond L1``: the
    accesses per IO that did not hit L1 — the only ones the hierarchy charges differently from the flat
    ``l1_hit`` row (an L1 hit costs the L1d latency, a store hitting L1 nothing, as the flat model)."""
    from allocsim.analysis import iops
    from allocsim.kernel import cache as _cache
    from allocsim.workloads import iouring

    setup = runs.clocked(replace(setup, hierarchy=True).validate(), clock_ghz)
    cfg = setup.workload(base_cycles)
    first, end = iouring.steady_window(cfg)
    short = iouring.program(replace(cfg, ios=first, drain=False))
    long = iouring.program(replace(cfg, ios=end, drain=False))
    ios = (end - first) * cfg.submitters
    rows = []
    for kernel, allocator in iops.CONFIGS:
        run = runs.model_fn(kernel, allocator, setup)
        d = (_access_counts(run(long)) - _access_counts(run(short))) / ios
        row = {"kernel": kernel, "allocator": allocator}
        row.update({k: float(v) for k, v in zip(_cache.COUNTER_NAMES, d)})
        row["accesses"] = float(d[:len(_cache.KINDS)].sum())
        row["beyond L1"] = row["accesses"] - row["L1"]
        rows.append(row)
    return pd.DataFrame(rows)


def hierarchy_paths(setup: runs.Setup, base_cycles: float, clock_ghz: float = 3.0) -> pd.DataFrame:
    """Per configuration of the six and per path, what switching the hierarchy on changed, at the same
    ``base_cycles``: the path's count and cycles per IO with the hierarchy off and on, and the change per
    call of the path (``Result.paths`` in the steady-state window). Only the paths whose cycles moved."""
    from allocsim.analysis import iops

    on = runs.clocked(replace(setup, hierarchy=True).validate(), clock_ghz)
    off = replace(on, hierarchy=False)
    rows = []
    for kernel, allocator in iops.CONFIGS:
        a = runs.run_config(kernel, allocator, off, base_cycles)
        b = runs.run_config(kernel, allocator, on, base_cycles)
        for path in sorted(set(a.paths) | set(b.paths)):
            (ca, ya), (cb, yb) = a.paths.get(path, (0, 0.0)), b.paths.get(path, (0, 0.0))
            if ya == yb and ca == cb:
                continue
            rows.append({"kernel": kernel, "allocator": allocator, "path": path, "count off": int(ca),
                         "count on": int(cb), "cycles/IO off": ya / a.ios, "cycles/IO on": yb / b.ios,
                         "change cycles/IO": yb / b.ios - ya / a.ios,
                         "change per call": (yb / cb if cb else 0.0) - (ya / ca if ca else 0.0),
                         "ios": int(b.ios)})
    cols = ["kernel", "allocator", "path", "count off", "count on", "cycles/IO off", "cycles/IO on",
            "change cycles/IO", "change per call", "ios"]
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------------------------
# The preempt count and the sheaves' lock, changed together

def preempt_effect() -> "PreemptEffect":
    """What the re-sourced ``preempt_pair`` (``data/costs-v1.csv``'s value → ``data/costs.csv``'s) does to each
    allocator's hot alloc+free pair, everything else as shipped (the steps of ``steps.yaml``, the default
    switches), and what v1 charged the sheaves' lock (``local_trylock_pair``) against what the steps charge
    now (``local_trylock``: the preempt pair and three loads). The two changed together: the lock's cost is
    the preempt pair plus its loads by construction. Cycles per alloc+free pair."""
    from allocsim.facts import costs as _costs
    from allocsim.kernel import pcpu_list

    v2, v1 = _costs.load(), _costs.load("v1")
    old = v2.with_overrides(preempt_pair=v1.cycles("preempt_pair"))
    book = _steps.load()

    def pairs(table):
        pc = dict(zip(pcpu_list.PATHS, pcpu_list.path_costs(table)))
        out = {"per-CPU list hit (pop, hardirq push)": pc["alloc_hit"] + pc["free_irq"]}
        for label, cpu_slab, kmalloc in (("6.19 kmalloc (cpu slab)", True, True), ("7.0 kmalloc (sheaves)", False, True),
                                         ("sheaf-256 (dedicated cache)", False, False)):
            f = _steps.Facts(sheaves=not cpu_slab or not kmalloc, cpu_slab=cpu_slab, kmalloc=kmalloc, object_size=96)
            v = dict(zip(_steps.SLUB_SEGMENTS, _steps.slub_vector(table, book, f)))
            if f.sheaves:
                out[label] = (v["alloc_entry"] + v["free_entry"] + v["pcs_free_check"] + 2 * v["local_trylock"]
                              + v["pcs_alloc"] + v["pcs_free"])
            else:
                out[label] = v["alloc_entry"] + v["free_entry"] + v["cpu_slab_alloc"] + v["cpu_slab_free"]
        return out

    before, after = pairs(old), pairs(v2)
    p1, p2 = v1.cycles("preempt_pair"), v2.cycles("preempt_pair")
    frame = pd.DataFrame([{"hot alloc+free pair": k, f"preempt_pair {p1:g}": before[k], f"preempt_pair {p2:g}": after[k],
                           "change": after[k] - before[k]} for k in before])
    return PreemptEffect(frame, p1, p2, v1.cycles("local_trylock_pair"),
                         book.cycles("local_trylock", v2, _steps.Facts()))


@dataclass(frozen=True)
class PreemptEffect:
    """:func:`preempt_effect`'s table and the figures its sentence quotes."""

    frame: pd.DataFrame
    preempt_v1: float
    preempt_v2: float
    lock_v1: float   # v1's local_trylock_pair row
    lock_now: float  # the local_trylock steps, as shipped

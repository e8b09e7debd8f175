"""Pure-Python reference of :func:`allocsim.kernel.slub.run`: the same scheduler (earliest clock first, a FREE
waits for its ALLOC), the same interrupt placement, and the reference models of
:mod:`allocsim.kernel.oracle.cpu_slab`, :mod:`allocsim.kernel.oracle.sheaves` and
:mod:`allocsim.kernel.oracle.slab_pages`. Used only by the tests (and the benchmark's speed ratio)."""

from __future__ import annotations

import numpy as np

from allocsim.facts import versions
from allocsim.facts import costs as _costs
from allocsim.kernel import slub as _slub
from allocsim.kernel.result import Result
from allocsim.kernel.program import ALLOC, Program
from allocsim.kernel.oracle import cpu_slab as cs
from allocsim.kernel.oracle import sheaves as shv
from allocsim.kernel.oracle.slab_pages import State


def new_state(cfg: _slub.SlubConfig, costs: _costs.CostTable) -> State:
    g = cfg.geometry
    cap = g.sheaf_capacity
    m = State(cfg.ncpu, cfg.nnodes, cfg.cpus_per_node, g.objs_per_slab, g.min_partial, g.cpu_partial_slabs, cap,
              not versions.family(cfg.version).cpu_slab, cfg.sheaves, {k: costs.cycles(k) for k in _costs.KEYS},
              nowait_fails=cfg.gfp_nowait_fails, sheaf_lines=_slub._sheaf_lines(cap) if cap else 1)
    m.slab_account = cfg.slab_account
    cs.attach(m)
    shv.attach(m)
    return m


def next_cpu(clock, pos, ends, program, slot_time):
    best = None
    for c in range(len(clock)):
        i = pos[c]
        if i >= ends[c]:
            continue
        if program.op[i] != ALLOC and slot_time.get(int(program.slot[i])) is None:
            continue
        if best is None or clock[c] + float(program.gap[i]) < clock[best] + float(program.gap[pos[best]]):
            best = c
    return best


def run(program: Program, kernel="7.0", object_size=256, sheaf_capacity=None, kmalloc=True, ncpu_present=None,
        cpus_per_node=None, costs=None, seed=0, gfp_nowait_fails=False, slab_account=False) -> Result:
    cfg = _slub.configure(program, kernel, object_size, sheaf_capacity, kmalloc, ncpu_present, cpus_per_node,
                          gfp_nowait_fails, slab_account)
    costs = costs or _costs.load()
    m = new_state(cfg, costs)
    u = _slub.irq_draws(program, seed)
    ncpu = program.ncpu
    clock = [0.0] * ncpu
    pos = [int(program.start[c]) for c in range(ncpu)]
    ends = [int(program.start[c + 1]) for c in range(ncpu)]
    slot_time: dict[int, float] = {}
    slot_obj: dict[int, int] = {}
    live: set[int] = set()
    event_path = np.full(program.n_events, -1, np.int64)
    paths: dict[str, list] = {}
    total = 0.0
    while True:
        cpu = next_cpu(clock, pos, ends, program, slot_time)
        if cpu is None:
            if pos != ends:
                raise RuntimeError("reference: deadlock")
            break
        i = pos[cpu]
        pos[cpu] += 1
        t = clock[cpu] + float(program.gap[i])
        s = int(program.slot[i])
        if program.op[i] != ALLOC:
            t = max(t, slot_time[s])
        ctx = int(program.ctx[i])
        ok = shv.trylock_ok(m, cpu, ctx, float(u[i]), t)
        t0 = t
        if program.op[i] == ALLOC:
            obj, t, path = shv.kmem_cache_alloc(m, cpu, ctx, ok, t)
            assert obj not in live, f"object {obj} handed out twice"
            live.add(obj)
            slot_obj[s] = obj
            slot_time[s] = t
        else:
            obj = slot_obj[s]
            live.remove(obj)
            t, path = shv.kmem_cache_free(m, obj, cpu, ctx, ok, t)
        shv.irq_event_done(m, cpu, ctx, t)
        clock[cpu] = t
        event_path[i] = _slub._st.PATHS.index(path)
        c = paths.setdefault(path, [0, 0.0])
        c[0] += 1
        c[1] += t - t0
        total += t - t0
    n_alloc = int(np.count_nonzero(program.op == ALLOC))
    objs = np.full(program.n_slots, -1, np.int64)
    for k, o in slot_obj.items():
        objs[k] = o
    return Result(model="reference " + cfg.model, n_alloc=n_alloc, n_free=program.n_events - n_alloc, cycles=total,
                  clock=np.asarray(clock), stats=_slub._st.stats_dict(np.array([m.stats[k] for k in _slub._st.STATS]), cfg.version),
                  paths={k: (v[0], v[1]) for k, v in paths.items()}, lock_wait=m.wait["list"] + m.wait["barn"],
                  event_path=event_path, extra={"state": m, "live": live, "config": cfg, "slot_obj": objs})

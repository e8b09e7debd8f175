"""The oracles' own reading of cost model v2: the step sums of ``data/kernel/steps.yaml`` (or
``steps-<name>.yaml``) under the switches of ``data/kernel/hooks.yaml``, computed again from the YAML with
plain dictionaries — no code shared with :mod:`allocsim.facts.steps`, which the numba models use."""

from __future__ import annotations

import math
from functools import lru_cache

import yaml

from allocsim.facts import paths
from allocsim.facts.datafile import on_clear


@lru_cache(maxsize=None)
def _hooks_doc() -> dict:
    return yaml.safe_load((paths.DATA / "kernel" / "hooks.yaml").read_text())


def hook_defaults() -> dict:
    doc = _hooks_doc()
    return {name: bool(sw["default"]) for name, sw in doc["switches"].items()}


@lru_cache(maxsize=None)
def segments(name: str = "default") -> dict:
    """The parsed step file (read once per process: a benchmark times the oracle's simulation, not YAML parsing)."""
    fname = "steps.yaml" if name == "default" else f"steps-{name}.yaml"
    return yaml.safe_load((paths.DATA / "kernel" / fname).read_text())["segments"]


def _true(cond, env) -> bool:
    if cond is None:
        return True
    ok = True
    for part in cond.split(" and "):
        tokens = part.split()
        want = tokens[0] != "not"
        ok = ok and (bool(env[tokens[-1]]) == want)
    return ok


def total(segs: dict, seg: str, cost: dict, env: dict, memory: bool = True) -> float:
    """Cycles of segment ``seg``: the sum over its steps whose condition holds in ``env`` (the switches and
    the model facts sheaves/account/cpu_slab/kmalloc, plus object_size), includes followed; ``memory=False``
    leaves the loads and stores out (the memory hierarchy charges them)."""
    out = 0.0
    for st in segs[seg]["steps"]:
        if not _true(st.get("when"), env):
            continue
        if "include" in st:
            out += total(segs, st["include"], cost, env, memory)
            continue
        if st["cost"] == "none" or (not memory and st["kind"] in ("load", "store")):
            continue
        times = st.get("n", 1)
        if times == "object_lines":
            times = math.ceil(env["object_size"] / 64)
        out += times * cost[st["cost"]]
    return out


def slub_env(hooks: dict | None, *, sheaves: bool, account: bool, cpu_slab: bool, kmalloc: bool,
             zero_size: int) -> dict:
    """The conditions a SLUB model's steps are read under."""
    env = dict(hook_defaults() if hooks is None else hooks)
    env.update(sheaves=sheaves, account=account, cpu_slab=cpu_slab, kmalloc=kmalloc, object_size=zero_size)
    return env


def slub_costs(name: str, cost: dict, hooks: dict | None, *, sheaves: bool, account: bool, cpu_slab: bool,
               kmalloc: bool, zero_size: int, sheaf_bytes: int, memory: bool = True) -> dict:
    """What the oracle models charge at each hot-path point, keyed as the oracle uses them; ``memory=False``:
    without the loads and stores, which the memory hierarchy charges (the ``kzalloc()`` of a sheaf keeps them)."""
    segs = segments(name)
    env = dict(hook_defaults() if hooks is None else hooks)
    env.update(sheaves=sheaves, account=account, cpu_slab=cpu_slab, kmalloc=kmalloc, object_size=zero_size)
    entry_a = "kmalloc_entry" if kmalloc else "kmem_cache_alloc_entry"
    entry_f = "kfree_entry" if kmalloc else "kmem_cache_free_entry"
    senv = dict(env, init_on_alloc=True, kmalloc=True, account=False, object_size=max(sheaf_bytes, 1))
    mem = memory
    return {
        "alloc_entry": total(segs, entry_a, cost, env, mem) + total(segs, "slab_alloc_hooks", cost, env, mem),
        "free_entry": total(segs, entry_f, cost, env, mem) + total(segs, "slab_free_hooks", cost, env, mem),
        "pcs_free_check": total(segs, "pcs_free_check", cost, env, mem),
        "lock": total(segs, "local_trylock", cost, env, mem),
        "pcs_alloc": total(segs, "pcs_alloc", cost, env, mem),
        "pcs_free": total(segs, "pcs_free", cost, env, mem),
        "cs_alloc": total(segs, "cpu_slab_alloc", cost, env, mem),
        "cs_free": total(segs, "cpu_slab_free", cost, env, mem),
        "sheaf_kmalloc": total(segs, "sheaf_kmalloc", cost, senv),
    }


def pcpu_costs(name: str, cost: dict, hooks: dict | None) -> dict:
    """Cycles per path of the per-CPU list (keyed by the path names of the patch model)."""
    segs = segments(name)
    env = dict(hook_defaults() if hooks is None else hooks)
    env.update(sheaves=False, account=False, cpu_slab=False, kmalloc=True, object_size=0)
    return {p: total(segs, "pcpu_" + p, cost, env)
            for p in ("alloc_hit", "alloc_splice", "alloc_kmalloc", "free_task", "free_irq", "kfree_full",
                      "kfree_softirq")}


on_clear(_hooks_doc.cache_clear)
on_clear(segments.cache_clear)

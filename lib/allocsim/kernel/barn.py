"""The per-node barn of SLUB sheaves (``struct node_barn``, v6.18/v6.19/v7.0 ``mm/slub.c``,
v6.19 lines 458–490; ``barn_*()`` helpers): a spin lock, a list of full sheaves and a list of empty sheaves with their
counts ``nr_full`` / ``nr_empty``. Bonwick's *depot*, per NUMA node (J. Bonwick and J. Adams, "Magazines and Vmem:
Extending the Slab Allocator to Many CPUs and Arbitrary Resources", USENIX Annual Technical Conference 2001).

``MAX_FULL_SHEAVES`` = 10 is enforced only by :func:`barn_replace_full_sheaf` among the paths modelled
here (v6.19 / v7.0 ``mm/slub.c`` also enforce it in ``rcu_free_sheaf()`` and ``kmem_cache_return_sheaf()``, which the workloads
never reach). ``MAX_EMPTY_SHEAVES`` = 10 is enforced only in ``rcu_free_sheaf()``, so nowhere here:
:func:`barn_put_empty_sheaf`, :func:`barn_put_full_sheaf` and :func:`barn_replace_empty_sheaf`
ignore both limits by design, as in the kernel.

The three "get or replace" helpers first read the counts racily without the lock
("slab: determine barn status racily outside of lock"), charged one ``l1_hit``; a helper that takes the
lock pays ``spin_lock_pair`` + ``irq_save_restore`` (``spin_lock_irqsave``), any waiting for another
CPU's critical section and a ``cacheline_transfer`` when another CPU held the lock last
(:func:`allocsim.kernel.slab_pages.spin_lock_irqsave`), and one ``l1_hit`` per list operation.

The lists are kept as stacks (``list_add()`` at the head, ``list_first_entry()`` to take)
[INFERRED: the order among sheaves changes which objects are reused first, not any count or cost].
Sheaves are numbers; their ``SH_NEXT`` field links them.
"""

from __future__ import annotations

from numba import njit

from allocsim.facts import costs as _costs
from allocsim.kernel.slab_pages import spin_lock_irqsave, spin_unlock_irqrestore
from allocsim.kernel.state import CFG, CF_MAX_FULL, CF_NNODES, H_BARN, H_SH, LOCK_BARN, NB, NSH

#: ``#define MAX_FULL_SHEAVES 10`` and ``#define MAX_EMPTY_SHEAVES 10`` (v6.19 ``mm/slub.c`` lines 458–459,
#: same in v6.18.2 and v7.0).
MAX_FULL_SHEAVES = 10
MAX_EMPTY_SHEAVES = 10

C_L1 = _costs.C_L1_HIT

# barn columns
B_FULL_HEAD, B_NR_FULL, B_EMPTY_HEAD, B_NR_EMPTY = range(4)
assert NB == 4
# sheaf columns (shared with allocsim.kernel.sheaves)
SH_SIZE, SH_NEXT = range(2)
assert NSH == 2
# barn_replace_full_sheaf() errors
ENOMEM = -1
E2BIG = -2


@njit(cache=True, _nrt=False, inline='always')
def bnb(I, node):
    """Offset of ``node``'s barn row in ``I``."""
    return I[H_BARN] + node * NB


@njit(cache=True, _nrt=False, inline='always')
def shb(I, sheaf):
    """Offset of ``sheaf``'s row (``SH_SIZE``, ``SH_NEXT``) in ``I``."""
    return I[H_SH] + sheaf * NSH


@njit(cache=True, _nrt=False)
def _lock(I, F, node, cpu, t):
    return spin_lock_irqsave(I, F, I[CFG + CF_NNODES] + node, LOCK_BARN, cpu, t)


@njit(cache=True, _nrt=False)
def _unlock(I, F, node, cpu, t):
    return spin_unlock_irqrestore(I, F, I[CFG + CF_NNODES] + node, cpu, t)


@njit(cache=True, _nrt=False)
def _push(I, b, head_col, count_col, sheaf):
    I[shb(I, sheaf) + SH_NEXT] = I[b + head_col]
    I[b + head_col] = sheaf
    I[b + count_col] += 1


@njit(cache=True, _nrt=False)
def _pop(I, b, head_col, count_col):
    sheaf = I[b + head_col]
    s = shb(I, sheaf)
    I[b + head_col] = I[s + SH_NEXT]
    I[s + SH_NEXT] = -1
    I[b + count_col] -= 1
    return sheaf


@njit(cache=True, _nrt=False)
def barn_get_empty_sheaf(I, F, node, cpu, t):
    """``barn_get_empty_sheaf()``: an empty sheaf from the barn, or -1 (racy check first).
    Returns ``(sheaf, t)``."""
    b = bnb(I, node)
    t += F[C_L1]
    if I[b + B_NR_EMPTY] == 0:
        return -1, t
    t = _lock(I, F, node, cpu, t)
    sheaf = _pop(I, b, B_EMPTY_HEAD, B_NR_EMPTY)
    t += F[C_L1]
    t = _unlock(I, F, node, cpu, t)
    return sheaf, t


@njit(cache=True, _nrt=False)
def _put(I, F, node, sheaf, head_col, count_col, cpu, t):
    t = _lock(I, F, node, cpu, t)
    _push(I, bnb(I, node), head_col, count_col, sheaf)
    t += F[C_L1]
    return _unlock(I, F, node, cpu, t)


@njit(cache=True, _nrt=False)
def barn_put_empty_sheaf(I, F, node, sheaf, cpu, t):
    """``barn_put_empty_sheaf()``: no limit checked."""
    return _put(I, F, node, sheaf, B_EMPTY_HEAD, B_NR_EMPTY, cpu, t)


@njit(cache=True, _nrt=False)
def barn_put_full_sheaf(I, F, node, sheaf, cpu, t):
    """``barn_put_full_sheaf()``: no limit checked (the callers undo a race or finish a job)."""
    return _put(I, F, node, sheaf, B_FULL_HEAD, B_NR_FULL, cpu, t)


@njit(cache=True, _nrt=False)
def barn_replace_empty_sheaf(I, F, node, empty, cpu, t):
    """``barn_replace_empty_sheaf()``: trade the empty ``empty`` for a full sheaf in one critical
    section, or -1 when the barn has no full sheaf (racy check first; the empty limit is ignored, "as
    the number of sheaves doesn't change"). Returns ``(full, t)``."""
    b = bnb(I, node)
    t += F[C_L1]
    if I[b + B_NR_FULL] == 0:
        return -1, t
    t = _lock(I, F, node, cpu, t)
    full = _pop(I, b, B_FULL_HEAD, B_NR_FULL)
    _push(I, b, B_EMPTY_HEAD, B_NR_EMPTY, empty)
    t += 2 * F[C_L1]
    t = _unlock(I, F, node, cpu, t)
    return full, t


@njit(cache=True, _nrt=False)
def barn_replace_full_sheaf(I, F, node, full, cpu, t):
    """``barn_replace_full_sheaf()``: trade the full ``full`` for an empty sheaf. Returns
    ``(empty, t)``, or ``(E2BIG, t)`` when ``nr_full >= MAX_FULL_SHEAVES`` and ``(ENOMEM, t)`` when the
    barn has no empty sheaf (both decided by the racy reads, before the lock)."""
    b = bnb(I, node)
    t += F[C_L1]
    if I[b + B_NR_FULL] >= I[CFG + CF_MAX_FULL]:
        return E2BIG, t
    if I[b + B_NR_EMPTY] == 0:
        return ENOMEM, t
    t = _lock(I, F, node, cpu, t)
    empty = _pop(I, b, B_EMPTY_HEAD, B_NR_EMPTY)
    _push(I, b, B_FULL_HEAD, B_NR_FULL, full)
    t += 2 * F[C_L1]
    t = _unlock(I, F, node, cpu, t)
    return empty, t

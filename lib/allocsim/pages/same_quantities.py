"""Glued values that name the same quantity on different pages, declared once.

Each group is a quantity in words and the ``(chapter, glue key)`` pairs that paste it; the chapter is the
executed notebook's stem (``02-pcpu``). ``tests/test_consistency.py`` reads the executed notebooks of a
built book (:mod:`allocsim.book.numbers`) and requires every group to hold one value, so the book cannot
say two things about one number. Pages whose setting differs on purpose name the quantity differently
and do not belong in a group. Add a group when two pages paste the same thing.
"""

from __future__ import annotations

#: (quantity, ((chapter, key), …)): every key of a group must have the same value in a default build.
GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("the book's clock (GHz)",
     (("01-thread", "clock"), ("02-pcpu", "ghz"), ("03-cpu-slab", "ghz"), ("05-iops", "clock"), ("A2-methods", "ghz"))),
    ("7.0 kmalloc, allocator cycles per IO, default io_uring workload (-p0, base work)",
     (("02-pcpu", "irq_kmalloc"), ("03-cpu-slab", "m_kmalloc_70"), ("05-iops", "cyc_7.0_kmalloc"))),
    ("7.0 per-CPU list, allocator cycles per IO, default io_uring workload",
     (("02-pcpu", "irq_cyc"), ("05-iops", "cyc_7.0_per-CPU list"))),
    ("6.19 kmalloc, allocator cycles per IO, default io_uring workload",
     (("03-cpu-slab", "cyc_io"), ("03-cpu-slab", "m_kmalloc"), ("05-iops", "cyc_6.19_kmalloc"))),
    ("6.19 dedicated cache with sheaf_capacity 256, allocator cycles per IO, default io_uring workload",
     (("03-cpu-slab", "m_sheaf"), ("05-iops", "cyc_6.19_sheaf-256"))),
    ("the queue depth of the default io_uring workload",
     (("02-pcpu", "d_qd"), ("03-cpu-slab", "qd"), ("05-iops", "qd"))),
    ("IOs of warm-up left out of the steady state",
     (("02-pcpu", "w_first"), ("03-cpu-slab", "w_first"), ("05-iops", "warmup"))),
    ("the base work per IO before each submission, cycles (chapters that read it off the thread)",
     (("02-pcpu", "base_gap"), ("03-cpu-slab", "gap_cycles"))),
    ("the thread's 6.19 per-CPU list IOPS (M)", (("01-thread", "r_619_pcpu"), ("03-cpu-slab", "t_pcpu"))),
    ("the thread's 6.19 kmalloc IOPS (M)", (("01-thread", "r_619_kmalloc"), ("03-cpu-slab", "t_kmalloc"))),
    ("ns per IO the list saved over kmalloc on 6.19, from the thread's figures",
     (("01-thread", "ns_619_pcpu"), ("02-pcpu", "t_ns619"))),
    ("ns per IO the list saved over kmalloc on 7.0-rc4, from the thread's figures",
     (("01-thread", "ns_70_pcpu"), ("02-pcpu", "t_ns70"))),
    ("sizeof(struct iomap_dio), bytes", (("02-pcpu", "m_size"), ("A1-your-kernel", "dio_model"))),
    ("sizeof(struct pcpu_cache_element), bytes", (("02-pcpu", "m_header"), ("A1-your-kernel", "hdr"))),
) + tuple(
    # one status per claim: chapter 4 shows the microbenchmark claims for its parameters, chapter 5 all claims,
    # both from allocsim.analysis.claims (the landing page's status column calls claims.statuses())
    (f"the status of claim {cid}", (("04-sheaves", f"status_{cid}"), ("05-iops", f"status_{cid}")))
    for cid in ("default-capacity-26", "k32-no-difference", "k128-single", "k128-multithread", "module-10pct")
)


def keys() -> list[tuple[str, str]]:
    """Every ``(chapter, key)`` named in a group."""
    return [k for _, members in GROUPS for k in members]

"""Tables and charts for the appendix "Your kernel" (chapter A1, `chapters/A1-your-kernel`); the readings and the
comparison themselves are :mod:`allocsim.facts.inspect`."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from allocsim.facts import versions
from allocsim.pages import charts
from allocsim.facts import inspect
from allocsim.facts import kconfig
from allocsim.facts import structs
from allocsim.pages.glue import Md

#: CPU counts the geometry chart sweeps (present CPUs; 1 stands for a machine whose nr_cpu_ids is also 1)
CPU_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 512, 1024)
#: kmalloc sizes shown in the chart: the thread's objects (iomap_dio 96, 96 + 8 -> 128, 256) and neighbours
CHART_SIZES = (64, 96, 128, 192, 256, 512, 1024)


def spaced(df: pd.DataFrame) -> pd.DataFrame:
    """Column headers with spaces for underscores (``objs per slab``), so a narrow page can wrap them."""
    return df.rename(columns=lambda c: str(c).replace("_", " ")).rename_axis(
        index=lambda n: None if n is None else str(n).replace("_", " "))


def summary_table(summary: dict, r: inspect.Reading) -> pd.DataFrame:
    """What was read about the machine, one row per fact."""
    rows = [
        ("kernel release", summary["release"]),
        ("reading", r.source),
        ("taken", r.taken),
        ("machine", r.machine),
        ("CPUs present / possible / online",
         f"{summary['cpus_present']} / {summary['cpus_possible']} / {summary['cpus_online']}"),
        ("NUMA nodes (one barn each)", summary["numa_nodes"]),
        ("min_objects = 4 * (fls(present) + 1)", summary["min_objects"]),
        ("BTF (/sys/kernel/btf/vmlinux)", summary["btf"]),
        ("model version compared", summary["model_version"] + (f" — {summary['version_note']}" if summary["version_note"] else "")),
    ]
    return pd.DataFrame(rows, columns=["fact", "value"]).astype({"value": str}).set_index("fact")


def sheaf_caches_text(facts: inspect.Facts, limit: int = 6) -> str:
    """The non-kmalloc caches of a reading that have sheaves: each by name when there are few, else counted
    by capacity (7.0 gives nearly every cache sheaves)."""
    items = [(n, c["sheaf_capacity"]) for n, c in facts.caches.items() if not inspect._kmalloc_size(n)]
    if not items:
        return "none"
    if len(items) <= limit:
        return ", ".join(f"`{n}` (capacity {cap})" for n, cap in items)
    counts: dict = {}
    for _, cap in items:
        counts[cap] = counts.get(cap, 0) + 1
    return f"{len(items)} caches, with capacities " + ", ".join(
        f"{cap} ({k} {'cache' if k == 1 else 'caches'})" for cap, k in sorted(counts.items(), key=lambda kv: -kv[1]))


def kmalloc_sheaves_text(facts: inspect.Facts) -> str:
    """How many of the reading's kmalloc caches have sheaves, and with which capacities."""
    caps = [c["sheaf_capacity"] for n, c in facts.caches.items() if inspect._kmalloc_size(n)]
    known = [c for c in caps if c is not None]
    if not known:
        return "this kernel reports no sheaf capacity for its kmalloc caches (the attribute exists from 6.18 on)"
    with_sheaves = [c for c in known if c > 0]
    if not with_sheaves:
        return f"all {len(known)} kmalloc caches read a sheaf capacity of 0"
    return (f"{len(with_sheaves)} of {len(known)} kmalloc caches have sheaves, with capacities "
            + ", ".join(str(c) for c in sorted(set(with_sheaves))))


def sheaf_256_text(summary: dict, k256: int | None) -> str:
    """Whether a reading can settle the "26" of the thread: only a kernel with default sheaves (7.0) can."""
    model = kconfig.calculate_sheaf_capacity(256, 0, versions.newest())
    try:
        v = kconfig.check_version(summary["release"] or "")
    except Exception:  # noqa: BLE001 - any release the models do not know
        v = None
    if k256 is None:
        return "This reading has no `kmalloc-256` sheaf capacity, so it cannot settle the question."
    if (v is not None and versions.family(v).sheaves_by_default) or (v is None and k256 > 0):
        verdict = "agrees with" if k256 == model else "differs from"
        return (f"This kernel has default sheaves, so its reading settles the question: {k256}, which "
                f"{verdict} the model's {model}.")
    return (f"This reading is of a {v or summary['release']} kernel, which has no default sheaves, so it cannot "
            "settle the question: run this page with `source = \"live\"` on a 7.0 machine and this paragraph "
            "shows that kernel's value.")


def group_table(rows: list[dict], group: str) -> pd.DataFrame:
    """The comparison rows of one group, without the group column."""
    df = inspect.table([r for r in inspect.condense(rows) if r["group"] == group]).drop(columns=["group"])
    return df.reset_index(drop=True) if df["note"].astype(bool).any() else df.drop(columns=["note"]).reset_index(drop=True)


def cache_table(rows: list[dict], group: str, limit: int = 15) -> pd.DataFrame:
    """One row per cache, one column per quantity: the value where model and kernel agree, ``model ≠ kernel``
    where they differ, ``— (kernel: x)`` where the model makes no prediction; and a verdict column. With
    more than ``limit`` caches (7.0 gives sheaves to nearly every cache) the caches where everything agrees
    are counted in one row instead of listed."""
    quantities = [q for q, _, _ in inspect._CACHE_ROWS]
    table, notes = {}, {}
    for r in rows:
        if r["group"] != group:
            continue
        cell = table.setdefault(r["item"], {})
        m, k = ("—" if r[x] is None else r[x] for x in ("model", "kernel"))
        if r["verdict"] == inspect.AGREE:
            cell[r["quantity"]] = str(k)
        elif r["verdict"] == inspect.INPUT:
            cell[r["quantity"]] = f"{k} (input)"
            continue
        elif r["verdict"] == inspect.DIFFER:
            cell[r["quantity"]] = f"model {m} ≠ kernel {k}"
        else:
            cell[r["quantity"]] = f"{m} (kernel: {k})"
        cell.setdefault("_v", []).append(r["verdict"])
        if r["note"]:
            notes.setdefault(r["item"], []).append(f"{r['quantity']}: {r['note']}" if r["quantity"] != "all" else r["note"])
    out = []
    for item, cell in table.items():
        v = cell.pop("_v", [])
        n_d, n_n = v.count(inspect.DIFFER), v.count(inspect.NOT_COMPARED)
        verdict = ("all agree" if not n_d and not n_n else
                   ", ".join(x for x in (f"{n_d} differ" if n_d else "", f"{n_n} not compared" if n_n else "") if x))
        out.append({"cache": item, **{q: cell.get(q, "") for q in quantities}, "verdict": verdict,
                    "notes": "; ".join(dict.fromkeys(notes.get(item, [])))})
    if len(out) > limit:
        agreeing = [o for o in out if o["verdict"] == "all agree"]
        out = [o for o in out if o["verdict"] != "all agree"]
        if agreeing:
            out.append({"cache": f"{len(agreeing)} other caches", **{q: "" for q in quantities},
                        "verdict": "all agree", "notes": ", ".join(o["cache"] for o in agreeing[:8])
                        + (" …" if len(agreeing) > 8 else "")})
    df = pd.DataFrame(out, columns=["cache", *quantities, "verdict", "notes"], dtype=object).set_index("cache")
    return df if df["notes"].astype(bool).any() else df.drop(columns=["notes"])


def geometry_curves(version: str, sizes=CHART_SIZES, cpus=CPU_SWEEP) -> pd.DataFrame:
    """Objects per slab and order from ``calculate_order()`` for each kmalloc size and CPU count."""
    rows = []
    for size in sizes:
        for n in cpus:
            g = kconfig.cache_geometry(size, n, version)
            rows.append({"cache": g.name, "size": size, "cpus": n, "objs_per_slab": g.objs_per_slab,
                         "order": g.order, "slab_kib": (kconfig.page_size() << g.order) // 1024,
                         "min_objects": kconfig.min_objects(n)})
    return pd.DataFrame(rows)


def geometry_chart(rows: list[dict], summary: dict, version: str) -> alt.Chart:
    """Model curves (objects per slab against present CPUs) with the kernel's readings as points."""
    curves = geometry_curves(version)
    names = list(dict.fromkeys(curves["cache"]))
    kernel = pd.DataFrame([
        {"cache": r["item"], "cpus": summary["cpus_present"], "objs_per_slab": r["kernel"]}
        for r in rows if r["group"] == "kmalloc caches" and r["quantity"] == "objs_per_slab"
        and r["item"] in names and isinstance(r["kernel"], int)])
    color = alt.Color("cache:N", title="kmalloc cache", sort=names, legend=alt.Legend(columns=4))
    x = alt.X("cpus:Q", title=charts.axis("present CPUs (log scale)"), scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(values=[1, 4, 16, 64, 256, 1024]))
    y = alt.Y("objs_per_slab:Q", title=charts.axis("objects per slab"), scale=alt.Scale(type="log", base=2))
    lines = alt.Chart(curves).mark_line(point=True, interpolate="step-after").encode(
        x=x, y=y, color=color,
        tooltip=["cache", "cpus", "min_objects", "order", alt.Tooltip("slab_kib", title="slab (KiB)"), "objs_per_slab"])
    layers = [lines]
    if not kernel.empty:
        layers.append(alt.Chart(kernel).mark_point(shape="diamond", size=160, filled=True, color="black").encode(
            x=x, y=y, tooltip=["cache", alt.Tooltip("cpus", title="present CPUs (kernel)"),
                               alt.Tooltip("objs_per_slab", title="objects per slab (kernel)")]))
    return alt.layer(*layers).properties(
        title=alt.TitleParams(f"calculate_order() ({version} model) and the kernel's readings",
                              subtitle="lines: model; black diamonds: /sys/kernel/slab/<cache>/objs_per_slab"))


#: The object size of the thread's module benchmark ("When I tested 256-byte objects").
THREAD_OBJECT_SIZE = 256


@dataclass(frozen=True)
class SheafSizes:
    """The 7.0 default sheaf capacities the section quotes, and the arithmetic behind the thread's "26"."""

    header_bytes: int
    pointer_bytes: int
    dio_cache: Md
    cap96_70: int
    big_size: int
    big_cache: Md
    cap256_70: int
    base256: int
    sheaf_bytes_26: int
    sheaf_bucket_26: int


def sheaf_sizes(dio_size: int, big: int = THREAD_OBJECT_SIZE, version: str | None = None) -> SheafSizes:
    """``dio_size``: the model's ``sizeof(struct iomap_dio)``; ``big``: the thread's benchmark object."""
    v = version or versions.newest()
    base = kconfig.sheaf_capacity_base(big)
    ptr = kconfig.pointer_size()
    return SheafSizes(kconfig.sheaf_header(), ptr, Md(f"`{kconfig.kmalloc_cache_name(dio_size)}`"),
                      kconfig.calculate_sheaf_capacity(dio_size, 0, v), big, Md(f"`{kconfig.kmalloc_cache_name(big)}`"),
                      kconfig.calculate_sheaf_capacity(big, 0, v), base, kconfig.sheaf_header() + ptr * base,
                      kconfig.sheaf_alloc_size(base))


@dataclass(frozen=True)
class Dio:
    """``struct iomap_dio`` in the model and in the reading, and the kmalloc class of the patch's element."""

    dio_model: int
    dio_kernel: Md
    hdr: int
    elem: int
    elem_bucket: int
    elem_slack: int
    dio_class: Md
    elem_class: Md


def dio_section(facts: inspect.Facts, version: str) -> Dio:
    k = facts.structs["iomap_dio"].size if "iomap_dio" in facts.structs else None
    m, hdr = structs.sizeof("iomap_dio", version), structs.sizeof("pcpu_cache_element")
    bucket = kconfig.kmalloc_size(m + hdr)
    return Dio(m, Md(f"{k} bytes" if k is not None else "unknown (no BTF in this reading)"), hdr, m + hdr, bucket,
               bucket - (m + hdr), Md(f"`{kconfig.kmalloc_cache_name(m)}`"), Md(f"`{kconfig.kmalloc_cache_name(m + hdr)}`"))


@dataclass(frozen=True)
class ReadingSummary:
    """Which kernel the page shows and how the comparison came out, for the prose."""

    said: Md
    release: Md
    model_v: Md
    ncpu: int
    min_objects: int
    n_rows: int
    n_agree: int
    n_differ: int
    n_not: int


def reading_summary(said: str, summary: dict, rows: list[dict]) -> ReadingSummary:
    """From :func:`allocsim.facts.inspect.load` and :func:`allocsim.facts.inspect.compare`."""
    return ReadingSummary(Md(said), Md(f"`{summary['release']}`"), Md(summary["model_version"]), summary["cpus_present"],
                          summary["min_objects"], len(rows), summary["agree"], summary["differ"], summary["not_compared"])

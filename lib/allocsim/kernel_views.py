"""Tables and charts for the appendix "Your kernel" (chapters/A1-your-kernel.md); the readings and the
comparison themselves are :mod:`allocsim.inspect`."""

from __future__ import annotations

import altair as alt
import pandas as pd

from . import charts, inspect, kconfig

#: CPU counts the geometry chart sweeps (present CPUs; 1 stands for a machine whose nr_cpu_ids is also 1)
CPU_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 512, 1024)
#: kmalloc sizes shown in the chart: the thread's objects (iomap_dio 96, 96 + 8 -> 128, 256) and neighbours
CHART_SIZES = (64, 96, 128, 192, 256, 512, 1024)


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


def group_table(rows: list[dict], group: str) -> pd.DataFrame:
    """The comparison rows of one group, without the group column."""
    df = inspect.table([r for r in inspect.condense(rows) if r["group"] == group])
    return df.drop(columns=["group"]).reset_index(drop=True)


def geometry_curves(version: str, sizes=CHART_SIZES, cpus=CPU_SWEEP) -> pd.DataFrame:
    """Objects per slab and order from ``calculate_order()`` for each kmalloc size and CPU count."""
    rows = []
    for size in sizes:
        for n in cpus:
            g = kconfig.cache_geometry(size, n, version)
            rows.append({"cache": g.name, "size": size, "cpus": n, "objs_per_slab": g.objs_per_slab,
                         "order": g.order, "slab_kib": (4096 << g.order) // 1024,
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
    color = alt.Color("cache:N", title="kmalloc cache", sort=names)
    x = alt.X("cpus:Q", title=charts.axis("present CPUs (log scale)"), scale=alt.Scale(type="log", base=2))
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

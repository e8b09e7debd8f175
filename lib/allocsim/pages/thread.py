"""Tables, arithmetic and charts for chapter 1 ("The thread"), so the notebook only calls them."""

from __future__ import annotations

import altair as alt
import pandas as pd

from allocsim.pages import charts
from allocsim.facts import thread
from allocsim.pages.params import specs
from allocsim.pages.toc import chapter_pages


def chapter_links(base: str = "") -> dict[str, str]:
    """slug -> the MyST doc role linking to that chapter, for chapters that exist in the book.
    ``base`` is the path from the linking page to the chapters folder ("" from a chapter,
    "chapters/" from the landing page)."""
    pages = chapter_pages()
    titles = {s.slug: s.title for s in specs().values()}
    return {slug: f"{{doc}}`{titles[slug]} <{base}{page.stem}>`" for slug, page in pages.items()}


def claims_markdown(claims: pd.DataFrame | None = None, base: str = "") -> str:
    """Every claim as a Markdown table (MyST), with where it is tested: a link to the chapter, or
    "pending" while no chapter tests it yet."""
    c = thread.claims() if claims is None else claims
    ppl = thread.people()
    links = chapter_links(base)
    rows = ["| claim | who, when | kernel | value | quote | tested in |", "|---|---|---|---|---|---|"]
    for r in c.itertuples():
        fmt = ".2f" if r.unit == "M IOPS" else "g"
        value = f"{r.value:{fmt}} {r.unit}" if r.low is None or pd.isna(r.low) else f"{r.low:g}–{r.high:g} {r.unit}"
        quantity = f"{r.quantity}, {r.allocator}" if r.allocator else r.quantity
        where = links.get(r.tested_in, "pending")
        who = f"{ppl.loc[r.author, 'name']}, {r.date:%Y-%m-%d}"
        rows.append(f"| {quantity} | {who} | {r.kernel} | {value} | “{r.quote}” | {where} |")
    return "\n".join(rows)


def timeline_chart(tl: pd.DataFrame | None = None) -> alt.Chart:
    tl = thread.timeline() if tl is None else tl
    d = tl.assign(date_str=tl["date"].dt.strftime("%Y-%m-%d"), who=tl["name"] + " (" + tl["role"] + ")")
    order = list(dict.fromkeys(d.sort_values("date")["who"]))
    base = alt.Chart(d).encode(
        x=alt.X("date:T", title=charts.axis("date"), axis=alt.Axis(format="%b %Y")),
        y=alt.Y("who:N", title=None, sort=order, axis=alt.Axis(labelLimit=260)),
    )
    points = base.mark_point(filled=True, size=140).encode(
        color=alt.Color("kind:N", title="message"),
        shape=alt.Shape("kind:N", title="message"),
        tooltip=[alt.Tooltip("date_str:N", title="date"), alt.Tooltip("name:N", title="who"),
                 alt.Tooltip("kind:N"), alt.Tooltip("argued:N", title="argued")],
    )
    return points.properties(title=alt.Title("The thread and its context", subtitle="hover a point for what the message argued"),
                             width=400, height=230)


def iops_table() -> pd.DataFrame:
    return thread.iops_figures()


def pct_gain(iops_a: float, iops_b: float) -> float:
    """How much faster ``a`` is than ``b``, in percent of ``b``'s IOPS."""
    return (iops_a / iops_b - 1.0) * 100.0


def ns_saved(iops_a: float, iops_b: float) -> float:
    """Time per IO saved by ``a`` relative to ``b``, in nanoseconds (1/IOPS is the time per IO)."""
    return 1e3 / iops_b - 1e3 / iops_a  # IOPS in millions -> ns


def comparisons(baseline: str = "kmalloc", clock_ghz: float = 3.0) -> pd.DataFrame:
    """Each allocator against ``baseline`` on each kernel: percent gain and ns (and cycles) per IO."""
    f = thread.iops_figures()
    rows = []
    for kernel, g in f.groupby("kernel", sort=False):
        base = g.loc[g["allocator"] == baseline, "miops"].iloc[0]
        for r in g.itertuples():
            if r.allocator == baseline:
                continue
            ns = ns_saved(r.miops, base)
            rows.append({"kernel": kernel, "allocator": r.allocator, "vs": baseline, "M IOPS": r.miops,
                         f"{baseline} M IOPS": base, "gain %": pct_gain(r.miops, base),
                         "ns saved per IO": ns, "cycles saved per IO": ns * clock_ghz})
    return pd.DataFrame(rows)


def iops_chart() -> alt.Chart:
    """The six reported figures as a dot plot, as throughput and as the time per IO they imply."""
    f = thread.iops_figures()
    common = dict(
        y=alt.Y("allocator:N", title=None, sort=list(charts.ALLOCATORS)),
        row=alt.Row("kernel:N", title=None, sort=["6.19", "7.0-rc4"], header=alt.Header(labelFontWeight="bold", labelAngle=0, labelAlign="left")),
        color=charts.allocator_color(),
        tooltip=[alt.Tooltip("kernel:N"), alt.Tooltip("allocator:N"),
                 alt.Tooltip("miops:Q", title="M IOPS", format=".2f"),
                 alt.Tooltip("ns_per_io:Q", title="ns per IO", format=".1f")],
    )
    iops = alt.Chart(f).mark_point(filled=True, size=160, opacity=1).encode(
        x=alt.X("miops:Q", title=charts.axis("reported throughput", "M IOPS"), scale=alt.Scale(domain=[1.16, 1.21], zero=False)),
        **common).properties(width=200, height=70)
    ns = alt.Chart(f).mark_point(filled=True, size=160, shape="diamond", opacity=1).encode(
        x=alt.X("ns_per_io:Q", title=charts.axis("time per IO = 1/IOPS", "ns"), scale=alt.Scale(domain=[825, 860], zero=False)),
        **common).properties(width=200, height=70)
    return alt.hconcat(iops, ns).properties(title=alt.Title(
        "The six figures of the thread", subtitle="axes do not start at zero: the differences are 1–3%"))

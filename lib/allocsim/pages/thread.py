"""Tables, arithmetic and charts for chapter 1 ("The thread"), so the notebook only calls them."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from allocsim.analysis import iops as _iops
from allocsim.facts import thread
from allocsim.kernel import pcpu_list
from allocsim.pages import charts
from allocsim.pages.params import specs
from allocsim.pages.toc import chapter_pages


def chapter_links(base: str = "") -> dict[str, str]:
    """slug -> the MyST doc role linking to that chapter, for chapters that exist in the book.
    ``base`` is the path from the linking page to the chapters folder ("" from a chapter,
    "chapters/" from the landing page)."""
    pages = chapter_pages()
    titles = {s.slug: s.title for s in specs().values()}
    return {slug: f"{{doc}}`{titles[slug]} <{base}{page.stem}>`" for slug, page in pages.items()}


def _value(r) -> str:
    fmt = ".2f" if r.unit == "M IOPS" else "g"
    return f"{r.value:{fmt}} {r.unit}" if r.low is None or pd.isna(r.low) else f"{r.low:g}–{r.high:g} {r.unit}"


def claims_markdown(claims: pd.DataFrame | None = None, base: str = "", statuses: dict | None = None) -> str:
    """Every claim as a Markdown table (MyST), with where it is tested: a link to the chapter, or
    "pending" while no chapter tests it yet. With ``statuses`` (``{claim_id: status}``, one status per
    claim from :func:`allocsim.analysis.claims.statuses`) a status column is added. Each quote is shown
    once: a claim quoting the same words as the row above says so instead of repeating them."""
    c = thread.claims() if claims is None else claims
    ppl = thread.people()
    links = chapter_links(base)
    head = ["claim", "who, when", "kernel", "value"] + (["status"] if statuses is not None else []) + ["quote", "tested in"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    last_quote = None
    for r in c.itertuples():
        quantity = f"{r.quantity}, {r.allocator}" if r.allocator else r.quantity
        where = links.get(r.tested_in, "pending")
        who = f"{ppl.loc[r.author, 'name']}, {r.date:%Y-%m-%d}"
        quote = "(the same message as above)" if r.quote == last_quote else f"“{r.quote}”"
        last_quote = r.quote
        cells = [quantity, who, r.kernel, _value(r)]
        if statuses is not None:
            if r.id not in statuses:
                raise KeyError(f"no status for claim {r.id!r}")
            cells.append(statuses[r.id])
        rows.append("| " + " | ".join(cells + [quote, where]) + " |")
    return "\n".join(rows)


def short_quote(quote: str, limit: int = 80) -> str:
    """The quote's first words, cut at a word boundary before ``limit`` characters (with "…")."""
    q = " ".join(quote.split())
    if len(q) <= limit:
        return q
    cut = q[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + " …"


def compact_claims_markdown(claims: pd.DataFrame | None = None, base: str = "", statuses: dict | None = None) -> str:
    """The claims in four columns for the landing page: the claim with who said it, a short quote (each
    message's words once; the full quotes are in chapter 1), the value, the status and the chapter."""
    c = thread.claims() if claims is None else claims
    ppl = thread.people()
    links = chapter_links(base)
    statuses = statuses or {}
    rows = ["| claim | value | status | tested in |", "|---|---|---|---|"]
    last_quote = None
    for r in c.itertuples():
        quantity = f"{r.quantity}, {r.allocator}" if r.allocator else r.quantity
        said = "same message" if r.quote == last_quote else f"“{short_quote(r.quote)}”"
        last_quote = r.quote
        who = f"{ppl.loc[r.author, 'name']}, {r.date:%Y-%m-%d}, {r.kernel}"
        rows.append(f"| **{quantity}** — {said} ({who}) | {_value(r)} | {statuses.get(r.id, '')} | "
                    f"{links.get(r.tested_in, 'pending')} |")
    return "\n".join(rows)


def landing_claims_markdown() -> str:
    """The landing page's claims table: every claim with its one status (the book's default setup) and
    a link to the chapter that tests it."""
    from allocsim.analysis import claims as _claims

    return compact_claims_markdown(base="chapters/", statuses=_claims.statuses())


def pending_sentence(n_claims: int, n_pending: int) -> str:
    """The sentence after chapter 1's claims table: how many claims are still without a chapter."""
    if n_pending == 0:
        return f"There are {n_claims} claims, and a chapter of this book tests each of them."
    return f"There are {n_claims} claims; {n_pending} of them {'is' if n_pending == 1 else 'are'} still pending a chapter."


def timeline_chart(tl: pd.DataFrame | None = None) -> alt.Chart:
    tl = thread.timeline() if tl is None else tl
    d = tl.assign(date_str=tl["date"].dt.strftime("%Y-%m-%d"))
    order = list(dict.fromkeys(d.sort_values("date")["name"]))
    base = alt.Chart(d).encode(
        x=alt.X("date:T", title=charts.axis("date"), axis=alt.Axis(format="%b %Y")),
        # names only (the role is in the tooltip), never cut: a label is as long as it needs to be
        y=alt.Y("name:N", title=None, sort=order, axis=alt.Axis(labelLimit=0)),
    )
    points = base.mark_point(filled=True, size=140).encode(
        color=alt.Color("kind:N", title="message"),
        shape=alt.Shape("kind:N", title="message"),
        tooltip=[alt.Tooltip("date_str:N", title="date"), alt.Tooltip("name:N", title="who"),
                 alt.Tooltip("role:N"), alt.Tooltip("kind:N"), alt.Tooltip("argued:N", title="argued")],
    )
    return points.properties(title=alt.Title("The thread and its context", subtitle="hover a point for what the message argued"),
                             width=400, height=230)


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


@dataclass(frozen=True)
class PatchLimits:
    """The v3 patch's two constants, as the model holds them."""

    irq_threshold: int
    max_nr: int


def patch_limits() -> PatchLimits:
    return PatchLimits(pcpu_list.PCPU_CACHE_IRQ_THRESHOLD, pcpu_list.DIO_ALLOC_CACHE_MAX)


@dataclass(frozen=True)
class Arithmetic:
    """What the six IOPS figures say per IO, in % and ns (and cycles at ``clock``)."""

    gain_619_pcpu: float
    ns_619_pcpu: float
    ns_70_pcpu: float
    gain_70_pcpu: float
    ns_619_sheaf: float
    ns_pcpu_vs_sheaf: float
    cyc_pcpu_vs_sheaf: float
    ns_kmalloc_619_70: float
    clock: float
    r_619_pcpu: float
    r_619_kmalloc: float
    ns_per_io_120: float
    half_step: float
    ns_rounding: float
    gap_70_pct: float


def arithmetic(clock_ghz: float) -> Arithmetic:
    """The arithmetic section of chapter 1 (the thread's 7.0-rc4 is the figures' "7.0-rc4")."""
    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    new = [k for k in f.index.get_level_values(0).unique() if k != "6.19"][0]
    pc, km, sh = "per-CPU list", "kmalloc", "sheaf-256"
    half = _iops.PRECISION_MIOPS / 2  # the figures are rounded to one step of their precision
    ns_ps = ns_saved(f[new, pc], f[new, sh])
    return Arithmetic(pct_gain(f["6.19", pc], f["6.19", km]), ns_saved(f["6.19", pc], f["6.19", km]),
                      ns_saved(f[new, pc], f[new, km]), pct_gain(f[new, pc], f[new, km]), ns_saved(f["6.19", sh], f["6.19", km]),
                      ns_ps, ns_ps * clock_ghz, ns_saved(f[new, km], f["6.19", km]), clock_ghz, f["6.19", pc], f["6.19", km],
                      1e3 / f["6.19", pc], half, ns_saved(f[new, pc] + half, f[new, pc]), pct_gain(f[new, pc], f[new, sh]))


def comparisons_table(baseline: str, clock_ghz: float):
    """:func:`comparisons` styled for the page."""
    return comparisons(baseline, clock_ghz).style.format({
        "M IOPS": "{:.2f}", f"{baseline} M IOPS": "{:.2f}", "gain %": "{:+.2f}", "ns saved per IO": "{:+.1f}",
        "cycles saved per IO": "{:+.0f}"}).hide(axis="index")


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

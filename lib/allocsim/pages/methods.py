"""Tables and charts for the methods appendix: the cost table, every chapter's parameters, the environment."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import version

import altair as alt
import pandas as pd

from allocsim.pages import charts
from allocsim.pages.glue import Md, glue
from allocsim.facts import costs, cpu, steps
from allocsim.pages import params
from allocsim.pages.specs import CLOCK_GHZ

KEY_PACKAGES = ("numba", "numpy", "pandas", "altair", "papermill", "jupytext", "jupyter-book", "myst-nb", "Sphinx",
                "vl-convert-python", "hypothesis", "pytest", "playwright")


def cost_frame(name: str = "default", clock_ghz: float = CLOCK_GHZ) -> pd.DataFrame:
    f = costs.load(name).frame()
    f["ns"] = f["cycles"] / clock_ghz
    return f[["key", "cycles", "low", "high", "ns", "what", "machine", "source", "tag"]]


def cost_rows(tbl: pd.DataFrame) -> pd.DataFrame:
    """The cost table in three readable columns for the page (full detail stays in data/costs.csv)."""
    return pd.DataFrame({
        "primitive": "`" + tbl["key"] + "`: " + tbl["what"],
        "cycles (range)": tbl["cycles"].map("{:g}".format) + " (" + tbl["low"].map("{:g}".format) + "–" + tbl["high"].map("{:g}".format) + ")",
        "ns": tbl["ns"].map("{:.2f}".format),
        "source [V verified / I inferred]": tbl["source"] + "; measured on " + tbl["machine"] + " [" + tbl["tag"] + "]",
    })


def log_ticks(high: float) -> list[float]:
    """Tick values for a (symmetric) log axis from 0 up to ``high``: 0, 1, 2, 5, 10, 20, 50, … — so the
    small costs, where most entries lie, have ticks too."""
    ticks, decade = [0.0], 1.0
    while decade <= high:
        ticks += [v * decade for v in (1, 2, 5) if v * decade <= high * 2]
        decade *= 10
    return ticks


def cost_chart(name: str = "default") -> alt.Chart:
    """Each primitive's cost (point) and cited range (bar), on a symmetric log axis with ticks at 1-2-5."""
    f = costs.load(name).frame()
    ticks = log_ticks(float(f["high"].max()))
    base = alt.Chart(f).encode(y=alt.Y("key:N", title=None, sort=list(costs.KEYS), axis=alt.Axis(labelLimit=200)))
    tooltip = [alt.Tooltip("key:N"), alt.Tooltip("cycles:Q"), alt.Tooltip("low:Q"), alt.Tooltip("high:Q"),
               alt.Tooltip("what:N"), alt.Tooltip("machine:N"), alt.Tooltip("source:N")]
    rng = base.mark_rule(strokeWidth=3, color="#bbb").encode(
        x=alt.X("low:Q", title=charts.axis("cost per operation, log scale", "cycles"),
                scale=alt.Scale(type="symlog", domain=[0, ticks[-1]]), axis=alt.Axis(values=ticks, format="d")),
        x2="high:Q", tooltip=tooltip)
    pt = base.mark_point(filled=True, size=90, color=charts.ACCENT).encode(x="cycles:Q", tooltip=tooltip)
    return (rng + pt).properties(title=alt.Title(f"Cost table '{name}'", subtitle="point: value used; bar: cited range"),
                                 width=380, height=320)


def parameters_frame() -> pd.DataFrame:
    rows = []
    for s in params.specs().values():
        for p in s.params:
            rows.append({"chapter": s.slug, "parameter": p.name, "type": p.type.__name__, "default": repr(p.default),
                         "allowed": p.allowed(), "meaning": p.help})
    return pd.DataFrame(rows)


def environment_frame() -> pd.DataFrame:
    rows = [{"component": "Python", "version": sys.version.split()[0]},
            {"component": "platform", "version": platform.platform()}]
    rows += [{"component": name, "version": version(name)} for name in KEY_PACKAGES]
    return pd.DataFrame(rows)


def hierarchy_frame(clock_ghz: float = CLOCK_GHZ) -> pd.DataFrame:
    """The memory hierarchy's parameters (``data/kernel/cpu.yaml``), with the nanosecond rows in cycles at
    ``clock_ghz`` (``ns x GHz``, as :func:`allocsim.facts.cpu.geometry` converts them)."""
    f = cpu.load().frame()
    f["cycles"] = [v * clock_ghz if u == "ns" else (v if u == "cycles" else float("nan"))
                   for v, u in zip(f["value"], f["unit"])]
    return f[["key", "value", "low", "high", "unit", "cycles", "machine", "source", "status", "note"]]


def hierarchy_rows(tbl: pd.DataFrame) -> pd.DataFrame:
    """The hierarchy's parameters in four readable columns for the page (full detail in data/kernel/cpu.yaml)."""
    def num(v):
        return f"{v:g}"

    return pd.DataFrame({
        "parameter": "`" + tbl["key"] + "`",
        "value (range)": [f"{num(v)} {u} ({num(lo)}–{num(hi)})" if lo != hi else f"{num(v)} {u}"
                          for v, lo, hi, u in zip(tbl["value"], tbl["low"], tbl["high"], tbl["unit"])],
        "cycles": [num(c) if c == c else "" for c in tbl["cycles"]],
        "source [V verified / I inferred]": tbl["source"] + "; " + tbl["machine"] + " [" + tbl["status"] + "]"
        + tbl["note"].map(lambda n: f" — {n}" if n else ""),
    })


def cpu_machine() -> str:
    """The machine the hierarchy's default CPU describes (``data/kernel/cpu.yaml``)."""
    return Md(cpu.load().machine)


def hooks_frame() -> pd.DataFrame:
    """The hot-path switches of cost model v2 (``data/kernel/hooks.yaml``): default, what it changes, source."""
    return pd.DataFrame([{"switch": f"`{k}`", "default": "on" if v["default"] else "off", "what it changes": v["what"],
                          "source of the default": v["source"]} for k, v in steps.switches().items()])


# ------------------------------------------------------------------------------------------------
# The model changelog (allocsim.analysis.changelog)

def changelog_history(clock_ghz: float = CLOCK_GHZ):
    """Every state of :data:`allocsim.analysis.changelog.STATES` evaluated at ``clock_ghz`` (cached)."""
    from allocsim.analysis import changelog

    return changelog.history(clock_ghz=clock_ghz)


def changes_markdown(outcomes):
    """:func:`change_words` for every change of the sequence, one paragraph each (IPython Markdown)."""
    from IPython.display import Markdown

    from allocsim.analysis import changelog

    return Markdown("\n\n".join(change_words(c) for c in changelog.changes(outcomes)))


def changelog_states(outcomes) -> pd.DataFrame:
    """The sequence of model states: step, name, what it changes."""
    return pd.DataFrame([{"step": i, "state": o.state.name, "what changes": o.state.change}
                         for i, o in enumerate(outcomes)])


def changelog_predictions(outcomes) -> pd.DataFrame:
    """Configurations × states: predicted M IOPS (residual ns per IO), the reported figure, and a last row
    with each state's RMS residual and calibrated base cost."""
    from allocsim.analysis import changelog

    f = changelog.predictions_frame(outcomes)
    first = f[f["step"] == 0]
    out = pd.DataFrame({"configuration": first["configuration"].to_list(),
                        "reported": [f"{x:.2f}M" for x in first["reported M IOPS"]]})
    for o in outcomes:
        g = f[f["state"] == o.state.name]
        out[o.state.name] = [f"{m:.5f}M ({r:+.2f} ns)" for m, r in zip(g["predicted M IOPS"], g["residual ns/IO"])]
    rms = {"configuration": "**RMS residual** (base cost)", "reported": ""}
    for o in outcomes:
        rms[o.state.name] = f"**{o.rms_ns:.2f} ns** ({o.base_ns:.1f} ns)"
    return pd.concat([out, pd.DataFrame([rms])], ignore_index=True)


def changelog_statuses(outcomes) -> pd.DataFrame:
    """Claims × states: each claim's status, bold where it differs from the state before."""
    from allocsim.analysis import changelog

    df = changelog.status_frame(outcomes)
    names = [o.state.name for o in outcomes]
    out = pd.DataFrame({"claim": df["claim"].to_list()})
    for i, n in enumerate(names):
        col = df[n].to_list()
        prev = df[names[i - 1]].to_list() if i else col
        out[n] = [f"**{s}**" if i and s != p else s for s, p in zip(col, prev)]
    return out


def change_words(c) -> str:
    """One change of :func:`allocsim.analysis.changelog.changes` in a sentence or two of Markdown."""
    moved = max(c.moved, key=lambda m: abs(m[2] - m[1]))
    if round(moved[1], 5) == round(moved[2], 5):
        what = "no prediction moves (to five decimals)"
    else:
        what = f"the prediction that moves most is {moved[0]} ({moved[1]:.5f}M → {moved[2]:.5f}M)"
    s = (f"**{c.step}. {c.name}** — {c.change}. The RMS residual goes from {c.rms_before:.2f} to "
         f"{c.rms_after:.2f} ns per IO and the calibrated base cost from {c.base_before:.1f} to "
         f"{c.base_after:.1f} ns; {what}. ")
    if not c.status_changes:
        return s + "No claim changes status."
    parts = [f"{label} ({a} → {b})" for _, label, a, b in c.status_changes]
    return s + f"{len(parts)} claim{'s' if len(parts) > 1 else ''} change{'' if len(parts) > 1 else 's'} status: " + "; ".join(parts) + "."


def changelog_chart(outcomes) -> alt.Chart:
    """Each configuration's residual (ns per IO) in each state, in the order of the changes."""
    from allocsim.analysis import changelog

    f = changelog.predictions_frame(outcomes)
    order = [o.state.name for o in outcomes]
    return alt.Chart(f).mark_line(point=True).encode(
        x=alt.X("state:N", sort=order, title=charts.axis("model state (cumulative)"), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("residual ns/IO:Q", title=charts.axis("residual", "ns per IO")),
        color=alt.Color("configuration:N", title="configuration", legend=alt.Legend(direction="vertical", columns=2)),
        tooltip=["state:N", "configuration:N", alt.Tooltip("predicted M IOPS:Q", format=".5f"),
                 alt.Tooltip("residual ns/IO:Q", format="+.2f"), alt.Tooltip("RMS ns/IO:Q", format=".2f")],
    ).properties(title=alt.Title("The six residuals, change by change",
                                 subtitle="each state adds one change to the one before"),
                  width=charts.WIDTH, height=260)


def glue_preempt_effect():
    """The preempt count and the sheaves' lock, changed together: glue the figures, return the table."""
    from allocsim.analysis import changelog as _cl

    e = _cl.preempt_effect()
    glue("pe_p1", e.preempt_v1)
    glue("pe_p2", e.preempt_v2)
    glue("pe_lock_v1", e.lock_v1)
    glue("pe_lock_now", e.lock_now)
    glue("pe_list", float(e.frame["change"].iloc[0]))
    glue("pe_lock_loads", int(sum(s.n for s in steps.load().steps("local_trylock", steps.Facts())
                                  if s.kind == "load")))
    return e.frame


# ------------------------------------------------------------------------------------------------
# What switching the memory hierarchy on did (the changelog's last change)

def hierarchy_outcomes(outcomes):
    """The changelog's hierarchy change: ``(before, after)`` outcomes, or None when the sequence has no
    ``hierarchy`` state."""
    names = [o.state.name for o in outcomes]
    if "hierarchy" not in names:
        return None
    i = names.index("hierarchy")
    return (outcomes[i - 1], outcomes[i]) if i else None


def hierarchy_access_rows(after) -> pd.DataFrame:
    """Per configuration, the hierarchy state's loads and stores per IO and where they found their lines."""
    a = after.accesses
    out = pd.DataFrame({"configuration": a["kernel"] + " " + a["allocator"],
                        "accesses per IO": a["accesses"].map("{:.2f}".format),
                        "L1 hits": (100 * a["L1"] / a["accesses"]).map("{:.1f} %".format),
                        "beyond L1 per IO": a["beyond L1"].map("{:.3f}".format)})
    return out


def glue_hierarchy_effect(outcomes) -> pd.DataFrame:
    """Glue what switching the hierarchy on did to the six predictions and why (the accesses that left L1,
    the paths whose charge changed); returns the access table. Keys ``hx_*``."""
    pair = hierarchy_outcomes(outcomes)
    if pair is None:
        raise ValueError("the changelog has no 'hierarchy' state")
    before, after = pair
    pa = before.predictions.set_index(["kernel", "allocator"])
    pb = after.predictions.set_index(["kernel", "allocator"])
    dm = (pb["predicted M IOPS"] - pa["predicted M IOPS"]).abs()
    dc = pb["alloc cycles/IO"] - pa["alloc cycles/IO"]
    top = dm.idxmax()
    glue("hx_rms_before", before.rms_ns)
    glue("hx_rms_after", after.rms_ns)
    glue("hx_base_before", before.base_ns)
    glue("hx_base_after", after.base_ns)
    glue("hx_top", Md(f"{top[0]} {top[1]}"))
    glue("hx_top_before", float(pa.loc[top, "predicted M IOPS"]))
    glue("hx_top_after", float(pb.loc[top, "predicted M IOPS"]))
    glue("hx_max_dcyc", float(dc.abs().max()))
    glue("hx_n_same", int((dc.abs() < 1e-9).sum()))
    a = after.accesses
    l1, beyond = float((100 * a["L1"] / a["accesses"]).min()), float(a["beyond L1"].max())
    glue("hx_l1_words", Md("every one of them hits L1" if beyond == 0 else
                           f"at least {l1:.1f} % of them hit L1 (at most {beyond:.3f} per IO do not)"))
    glue("hx_acc_lo", float(a["accesses"].min()))
    glue("hx_acc_hi", float(a["accesses"].max()))
    glue("hx_paths", Md(moved_paths_words(after.moved_paths)))
    from allocsim.analysis import claims as _claims

    glue("hx_micro", Md("The thread's microbenchmark claims are evaluated with the hierarchy on in this state too."
                        if "hierarchy" in _claims.MicroSetup.__dataclass_fields__ else
                        "The thread's microbenchmark claims are evaluated without it in every state: the "
                        "microbenchmark model of this build has no hierarchy switch."))
    return hierarchy_access_rows(after)


#: Why a path's charge changes with the hierarchy on although its accesses hit L1: an access the flat model's
#: path leaves out (allocsim.kernel.memory.touch_object: "flat (nothing beyond the path's own charges) when the
#: hierarchy is off"), which the hierarchy charges.
PATH_WHY = {
    "alloc_cpu_partial": "6.19's refill of the cpu slab from the cpu partial list in `___slab_alloc()`, whose read of "
                         "the first free object's free pointer (`get_freepointer()` in `load_freelist`) the hierarchy "
                         "charges as the access it is and the flat model's slow path leaves out",
    "alloc_refill": "6.19's refill of the cpu slab from its own slab's freelist in `___slab_alloc()`, whose read of "
                    "the first free object's free pointer the hierarchy charges and the flat model's slow path leaves out",
}


def moved_paths_words(paths: pd.DataFrame) -> str:
    """The paths whose cycles moved when the hierarchy was switched on, in a sentence (Markdown), with the
    reason where :data:`PATH_WHY` knows it."""
    if paths is None or paths.empty:
        return "No path of the six configurations costs a cycle more or less with the hierarchy on."
    parts = []
    for r in paths.sort_values("change cycles/IO", key=abs, ascending=False).to_dict("records"):
        why = PATH_WHY.get(r["path"])
        parts.append(f"{r['kernel']} {r['allocator']}'s `{r['path']}` path ({r['count on']:,} calls in the "
                     f"{r['ios']:,} IOs of the window, {r['change per call']:+.1f} cycles per call, "
                     f"{r['change cycles/IO']:+.3f} cycles per IO" + (f": {why})" if why else ")"))
    return ("The paths whose charge changed: " + "; ".join(parts) + ".")

"""A box-and-arrow diagram with the kernel code behind each box and arrow as a tooltip (chapters 3 and 4
draw their mechanism with it)."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from allocsim.pages import charts


def box_diagram(boxes: list[dict], edges: list[tuple], title: str, subtitle: str, xmax=100, ymax=60,
                width=None, height=320, w=11, h=5) -> alt.LayerChart:
    """Boxes (``id``, ``x``, ``y``, ``label``, ``sub``, ``code``; optional ``w``/``h`` half sizes and
    ``fill``) joined by arrows ``(from, to, label, (label_x, label_y), code[, shift])``; ``shift`` moves
    an arrow to its left (data units, seen along its direction), so that two opposite arrows between the
    same boxes, both shifted, do not overlap. Hovering a
    box or an arrow shows the kernel code it stands for."""
    W = width or charts.WIDTH + 120
    b = pd.DataFrame(boxes).set_index("id")
    b["w"] = b["w"].fillna(w) if "w" in b else w
    b["h"] = b["h"].fillna(h) if "h" in b else h
    b["fill"] = b["fill"].fillna("#f4f4f4") if "fill" in b else "#f4f4f4"
    b["x0"], b["x1"], b["y0"], b["y1"] = b["x"] - b["w"], b["x"] + b["w"], b["y"] - b["h"], b["y"] + b["h"]
    rows, heads, labels = [], [], []
    for edge in edges:
        a, z, text, (lx, ly), code = edge[:5]
        shift = edge[5] if len(edge) > 5 else 0.0
        xa, ya, xb, yb = b.loc[a, "x"], b.loc[a, "y"], b.loc[z, "x"], b.loc[z, "y"]
        dx, dy = xb - xa, yb - ya
        if shift:
            norm = math.hypot(dx, dy)
            px, py = -dy / norm * shift, dx / norm * shift
            xa, ya, xb, yb = xa + px, ya + py, xb + px, yb + py
        ta = min(b.loc[a, "w"] / abs(dx) if dx else math.inf, b.loc[a, "h"] / abs(dy) if dy else math.inf)
        tb = min(b.loc[z, "w"] / abs(dx) if dx else math.inf, b.loc[z, "h"] / abs(dy) if dy else math.inf)
        x0, y0, x1, y1 = xa + dx * ta, ya + dy * ta, xb - dx * tb, yb - dy * tb
        plain = text.replace("\n", " ")
        rows.append({"x": x0, "y": y0, "x2": x1, "y2": y1, "when": plain, "code": code})
        heads.append({"x": x1, "y": y1, "angle": math.degrees(math.atan2(dx * W / xmax, dy * height / ymax)),
                      "when": plain, "code": code})
        labels.append({"x": lx, "y": ly, "text": text, "when": plain, "code": code})
    xs = alt.X("x:Q", scale=alt.Scale(domain=[0, xmax]), axis=None)
    ys = alt.Y("y:Q", scale=alt.Scale(domain=[0, ymax]), axis=None)
    tip = [alt.Tooltip("when:N", title="path"), alt.Tooltip("code:N", title="kernel")]
    bt = b.reset_index()
    box_tip = [alt.Tooltip("label:N", title="part"), alt.Tooltip("code:N", title="kernel")]
    rect = alt.Chart(bt).mark_rect(stroke="#555", cornerRadius=4).encode(
        x=alt.X("x0:Q", scale=alt.Scale(domain=[0, xmax]), axis=None), x2="x1:Q",
        y=alt.Y("y0:Q", scale=alt.Scale(domain=[0, ymax]), axis=None), y2="y1:Q",
        fill=alt.Fill("fill:N", scale=None), tooltip=box_tip)
    name = alt.Chart(bt).mark_text(fontWeight="bold", fontSize=10.5, dy=-6).encode(x=xs, y=ys, text="label:N",
                                                                                   tooltip=box_tip)
    sub = alt.Chart(bt).mark_text(fontSize=9.5, color="#555", dy=8).encode(x=xs, y=ys, text="sub:N", tooltip=box_tip)
    lines = alt.Chart(pd.DataFrame(rows)).mark_rule(strokeWidth=1.6, color="#333").encode(
        x=xs, y=ys, x2="x2:Q", y2="y2:Q", tooltip=tip)
    arrow = alt.Chart(pd.DataFrame(heads)).mark_point(shape="triangle", filled=True, size=60, color="#333",
                                                      opacity=1).encode(
        x=xs, y=ys, angle=alt.Angle("angle:Q", scale=None), tooltip=tip)
    text = alt.Chart(pd.DataFrame(labels)).mark_text(fontSize=10, lineBreak="\n", color="#8a5a00").encode(
        x=xs, y=ys, text="text:N", tooltip=tip)
    return (rect + name + sub + lines + arrow + text).properties(
        width=W, height=height, title=alt.Title(title, subtitle=subtitle))

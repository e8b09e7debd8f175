"""The methods appendix (allocsim.pages.methods): cost table, parameters, environment, the cost chart."""

import sys

import pytest

from allocsim.facts import costs
from allocsim.pages import methods as views
from allocsim.pages import params
from allocsim.pages.specs import CLOCK_GHZ


def test_cost_frame_converts_at_the_books_clock():
    tbl = views.cost_frame()
    t = costs.load()
    assert len(tbl) == len(t.frame())
    row = tbl.set_index("key").loc["irq_save_restore"]
    assert row["ns"] == pytest.approx(t.cycles("irq_save_restore") / CLOCK_GHZ)
    assert views.cost_frame(clock_ghz=2.0).set_index("key").loc["irq_save_restore", "ns"] == pytest.approx(
        t.cycles("irq_save_restore") / 2.0)


def test_cost_rows_are_readable():
    rows = views.cost_rows(views.cost_frame())
    first = views.cost_frame().iloc[0]
    assert rows.iloc[0]["primitive"].startswith(f"`{first['key']}`: ")
    assert rows.iloc[0]["cycles (range)"] == f"{first['cycles']:g} ({first['low']:g}–{first['high']:g})"
    assert rows.iloc[0]["source [V verified / I inferred]"].endswith(f"[{first['tag']}]")


def test_log_ticks_cover_the_small_costs():
    assert views.log_ticks(440) == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert views.log_ticks(0.5) == [0]
    ticks = views.log_ticks(float(costs.load().frame()["high"].max()))
    assert min(t for t in ticks if t > 0) < 50  # the cost chart has ticks below 50
    axis = views.cost_chart().to_dict()["layer"][0]["encoding"]["x"]["axis"]
    assert axis["values"] == ticks


def test_parameters_frame_lists_every_parameter_of_every_chapter():
    df = views.parameters_frame()
    expected = sum(len(s.params) for s in params.specs().values())
    assert len(df) == expected
    clocks = df[df["parameter"] == "clock_ghz"]["default"]
    assert set(clocks) == {repr(CLOCK_GHZ)}  # one clock for the book
    cost = df[(df["chapter"] == "methods") & (df["parameter"] == "cost_table")]["meaning"].iloc[0]
    assert "`data/costs-<name>.csv`" in cost  # in code, so Markdown does not eat <name>


def test_environment_frame():
    env = views.environment_frame().set_index("component")["version"]
    assert env["Python"] == sys.version.split()[0]
    assert set(views.KEY_PACKAGES) <= set(env.index)

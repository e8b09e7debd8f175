from allocsim.facts import costs
from allocsim.pages.params import ChapterSpec, Param
from allocsim.pages.specs import CLOCK_GHZ

SPEC = ChapterSpec(
    slug="methods",
    source="chapters/A2-methods.md",
    title="Methods: costs, validation, environment",
    params=(
        Param("cost_table", str, "default", "which cost table to show (`data/costs.csv` or `data/costs-<name>.csv`)",
              choices=tuple(costs.table_names())),
        Param("clock_ghz", float, CLOCK_GHZ, "clock used to show each cost in nanoseconds as well as cycles", low=0.5, high=6.0),
    ),
)

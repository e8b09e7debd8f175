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
    # Tables of the data and the model changelog (five model states, each a reproduction with its claims):
    # fixed work. Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11, load average 1.2)
    # with an empty changelog cache: 3.9 s for analysis.changelog.history, plus the 3 s the tables took
    # before (under a load average of 14 the same history took 50 s). Memory: the largest kernel of the
    # build so far, an upper bound.
    work=lambda ns: 1,
    measured=((1, 7.0, 415.0),),
)

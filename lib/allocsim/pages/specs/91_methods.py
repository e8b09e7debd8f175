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
    # Tables of the data: fixed work.
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11): the runner's record of a default
    # `make book` execution (`_build/executed/<page>.run.json`: duration_s, peak_rss_mib; the memory is the
    # largest kernel of the build so far, an upper bound).
    work=lambda ns: 1,
    measured=((1, 3.0, 415.0),),
)

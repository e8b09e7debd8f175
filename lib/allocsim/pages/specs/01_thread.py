from allocsim.pages.params import ChapterSpec, Param
from allocsim.pages.specs import CLOCK_GHZ

SPEC = ChapterSpec(
    slug="thread",
    source="chapters/01-thread.md",
    title="The thread",
    params=(
        Param("baseline", str, "kmalloc", "the allocator the gains are measured against in the arithmetic section",
              choices=("kmalloc", "sheaf-256", "per-CPU list")),
        Param("clock_ghz", float, CLOCK_GHZ, "CPU clock used only to express ns-per-IO differences in cycles (the thread does not state one)",
              low=0.5, high=6.0),
    ),
    # The chapter reads the thread's data and does arithmetic: its time does not depend on its parameters.
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11): the runner's record of a default
    # `make book` execution (`_build/executed/<page>.run.json`: duration_s, peak_rss_mib; the memory is the
    # largest kernel of the build so far, an upper bound).
    work=lambda ns: 1,
    measured=((1, 2.7, 190.0),),
)

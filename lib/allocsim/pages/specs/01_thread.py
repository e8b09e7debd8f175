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
)

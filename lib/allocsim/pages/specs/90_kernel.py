from allocsim.facts import versions
from allocsim.pages.params import ChapterSpec, Param

SPEC = ChapterSpec(
    slug="kernel",
    source="chapters/A1-your-kernel.md",
    title="Your kernel",
    params=(
        Param("source", str, "snapshot",
              "which kernel reading the page shows: 'snapshot' (the default: the reading shipped in "
              "data/snapshots/, so the book renders the same whoever builds it), 'live' (this machine's "
              "/sys/kernel/slab and BTF; falls back to the snapshot with a warning when they cannot be read) or "
              "'auto' (this machine's kernel when readable, else the snapshot, without a warning)",
              choices=("auto", "snapshot", "live")),
        Param("model_version", str, "kernel",
              "the model version to compare with: 'kernel' (the reading's own version; the nearest known one "
              "for other releases) or one of the known versions",
              choices=("kernel",) + versions.VERSIONS),
    ),
    # Reads the snapshot or this machine's kernel: fixed work.
    # Measured on the build machine (shared 2-CPU AMD EPYC, Python 3.11): the runner's record of a default
    # `make book` execution (`_build/executed/<page>.run.json`: duration_s, peak_rss_mib; the memory is the
    # largest kernel of the build so far, an upper bound).
    work=lambda ns: 1,
    measured=((1, 3.7, 415.0),),
)

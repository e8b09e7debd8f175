"""allocsim: executable models of the allocators argued about in the 2026 iomap_dio thread.

Modules map one-to-one to kernel mechanisms (see the README for the map). Every constant comes
from ``data/`` (loaded once, with its source); every cycle cost from ``data/costs.csv``.
"""

__version__ = "0.1.0"

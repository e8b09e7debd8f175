"""One module per chapter, ``NN_slug.py``, each defining ``SPEC`` (see :mod:`allocsim.pages.params`)."""

#: The book's one clock default (GHz), for every chapter that turns cycles into nanoseconds. The thread
#: states no clock; change it per run with ``-p clock_ghz``.
CLOCK_GHZ = 3.0

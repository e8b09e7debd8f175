"""One module per chapter, ``NN_slug.py``, each defining ``SPEC`` (see :mod:`allocsim.pages.params`)."""

"""Pure-Python reference implementations of the models: obviously correct, slow, used only by the
tests (the numba models must agree with them event for event)."""

"""One exception type for every user-facing mistake, so CLIs and chapters can print one sentence."""


class AllocsimError(ValueError):
    """Bad input: a chapter parameter, a data file row, a kernel version. The message is one
    sentence naming the thing and what is allowed."""


class DataError(AllocsimError):
    """A malformed file in ``data/``: the message names the file, the row and the field."""

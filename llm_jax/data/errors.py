"""`DataError`: bad input data, always named by file and line (or file and field)."""


class DataError(Exception):
    """A problem with the user's data or tokenizer; the message names where it is."""

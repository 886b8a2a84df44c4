"""The one exception type the command line turns into a one-line error."""


class LTHError(Exception):
    """Bad input or a missing resource, reported to the user as one line (no traceback)."""

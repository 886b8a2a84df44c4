"""The one exception type the command line turns into a one-line error."""

# Every character str.splitlines() breaks at, written as an escape (e.g. in a file's name).
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode() for c in
                "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


class LTHError(Exception):
    """Bad input or a missing resource, reported to the user as one line (no traceback): any
    line break in the message (a file name may hold one) is written as its escape."""

    def __init__(self, message="", *args):
        super().__init__(str(message).translate(_LINE_BREAKS), *args)

"""The one exception type users see."""

__all__ = ["CapsuleError"]


class CapsuleError(Exception):
    """A user-facing error with a one-line message naming the problem.

    Every function in :mod:`capsule_lib` raises this (never a raw library
    exception) for bad input: corrupt or oversized MIDI, out-of-range
    parameters, broken model archives, invalid tags.  The command line prints
    ``str(error)`` on one line and exits with status 2.
    """

    def __init__(self, message: str):
        # One line, always: callers print it as-is.
        super().__init__(" ".join(str(message).split()))

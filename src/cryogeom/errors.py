"""The exceptions a user sees as one line, without a traceback.

Library code raises :class:`InputError` with a one-line message naming the file or argument and
what was expected; the command line prints it as ``cryogeom <command>: error: <message>`` and
exits with status 2. :class:`WriteError` is a file that could not be written (disk full, no
permission): printed the same way, exit status 1; the file's previous contents are unchanged.
"""


class InputError(ValueError):
    """Bad input from the user: a file, a field or an argument that is not what was expected."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)


class WriteError(OSError):
    """A file could not be written; what was there before is unchanged."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))

    def __str__(self) -> str:
        return self.args[0]

"""The one exception type for bad user input.

Library code raises :class:`InputError` with a one-line message naming the file or argument and
what was expected. The command line prints it as ``cryogeom <command>: error: <message>`` and
exits with status 2, without a traceback.
"""


class InputError(ValueError):
    """Bad input from the user: a file, a field or an argument that is not what was expected."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)

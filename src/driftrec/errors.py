"""The errors driftrec raises for bad input, kept apart from bugs.

Anything a user can fix (a malformed file, an unknown id, a parameter out of range) raises an
`InputError` whose one-line message names the file, row, field or parameter. The CLI turns it into
exit code 2 and the service into a 4xx. Every other exception is a bug in driftrec and is reported
as an internal error, never as bad input.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input, described in one line that names the file, row, field or parameter.

    A subclass of ValueError, so code written against the usual Python convention still catches it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DataFormatError(InputError):
    """A file or directory that cannot be used as a whole (no user column, a corrupted model)."""


class UnknownIdError(InputError, KeyError):
    """A user or item id the model or dataset does not know (also a KeyError, as a look-up)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


__all__ = ["DataFormatError", "InputError", "UnknownIdError"]

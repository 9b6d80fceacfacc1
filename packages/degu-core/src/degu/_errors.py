"""``ParseError``: a refused message, carrying the status to answer it with.

And ``EmptyPreambleError``, a connection closed before any preamble byte.

Raised where the problem is found (``degu._parsing``, ``degu._targets``,
``degu._reader``), so the status a server sends never depends on how an error
message happens to be worded.  Pure: no I/O here.
"""

from __future__ import annotations

__all__ = ["STATUSES", "EmptyPreambleError", "ParseError"]

#: The statuses a refused request may carry (RFC 9110 §15.5, §15.6; RFC 6585 §5).
STATUSES = frozenset([400, 413, 431, 501, 505])


class ParseError(ValueError):
    """An HTTP message Degu refuses to read; ``status`` is the answer to send.

    A ``ValueError`` like every other grammar error, so code that catches
    ``ValueError`` (a client reading a response) is unaffected.  For a response,
    ``status`` still says what a server would have answered; nothing sends it.
    """

    def __init__(self, status: int, message: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status: need one of {sorted(STATUSES)}; got {status!r}")
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type[ParseError], tuple[int, str]]:
        # Pickle (e.g. across processes) with both arguments, not just args.
        return (type(self), (self.status, str(self)))


class EmptyPreambleError(ConnectionError):
    """The peer closed the connection before sending any preamble byte."""

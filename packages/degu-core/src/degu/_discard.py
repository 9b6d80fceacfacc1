"""Reading and dropping a request body an app does not want (applib helpers).

The server refuses to answer a request whose body was not consumed
(docs/explanation/rgi.rst): it closes the connection, so a client that PUTs
to a read-only ``FilesApp`` would never learn it got a 405.  The applib apps
therefore read and drop such a body before answering, but only up to
:data:`MAX_DISCARD` bytes: reading an attacker's endless upload would tie up
a connection slot for nothing.  Past that limit the body is left unread and
the app answers ``413 Content Too Large`` with ``connection: close``
(:func:`refuse_body`): the server lets an unread body pass when the response
closes the connection.
"""

from __future__ import annotations

from typing import Any

from degu._bodies import BODY_CONSUMED

__all__ = ("MAX_DISCARD", "discard_body", "refuse_body")

#: Most request-body bytes an applib app reads and drops to answer cleanly.
MAX_DISCARD = 1048576

_READ_SIZE = 65536


def refuse_body(body: Any, response: tuple[Any, ...]) -> tuple[Any, ...]:
    """The app's bodiless *response*, after dropping an unwanted *body*.

    A body over :data:`MAX_DISCARD` is left unread, and the answer becomes
    ``413 Content Too Large`` with ``connection: close`` instead.
    """
    if discard_body(body):
        return response
    return (
        413,
        "Content Too Large",
        {"connection": "close", "content-length": 0},
        None,
    )


def discard_body(body: Any) -> bool:
    """Read and drop ``body`` when it holds at most :data:`MAX_DISCARD` bytes.

    Returns ``True`` when the body is now consumed (or was ``None``), ``False``
    when it is larger than the limit and was left (partly) unread.
    """
    if body is None or body.state == BODY_CONSUMED:
        return True
    if body.chunked:
        total = 0
        # Bounded: every chunk but the last carries >= 1 byte, and we stop
        # as soon as MAX_DISCARD is passed.
        while True:
            _ext, data = body.readchunk()
            if not data:
                return True
            total += len(data)
            if total > MAX_DISCARD:
                return False
    if body.content_length > MAX_DISCARD:
        # Known too big before reading a byte: leave the connection alone.
        return False
    # Bounded by content_length <= MAX_DISCARD; the final read returns b''
    # and marks the body consumed (docs/reference/base.rst).
    while body.read(_READ_SIZE):
        pass
    return True

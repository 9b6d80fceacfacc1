"""Types for programs that use Degu and are checked with ``mypy --strict``.

Nothing here changes what Degu does at run time: the server and client still
check every argument and option themselves, with the same errors.  These names
let a type checker catch the same mistakes before the program runs
(docs/reference/typehints.rst).

Only a program that imports this module pays for importing :mod:`typing`;
Degu's own modules import it when type-checked, never at run time.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol, TypeAlias, TypedDict

from degu.base import (
    API,
    Body,
    BodyIter,
    ChunkedBody,
    ChunkedBodyIter,
    Connection,
    Request,
    Session,
)

__all__ = [
    "Address",
    "ClientOnConnect",
    "ClientOptions",
    "Headers",
    "InputBody",
    "OnConnect",
    "OutputBody",
    "RGIApp",
    "ResponseTuple",
    "SSLClientOptions",
    "ServerAddress",
    "ServerOptions",
]

#: Where a server listens or a client connects, and ``Session.address``:
#: ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6,
#: or a Unix socket (an absolute filename as ``str``, an abstract name as
#: ``bytes``).
Address: TypeAlias = tuple[str, int] | tuple[str, int, int, int] | str | bytes
#: What a ``Server`` accepts: an :data:`Address` or an already bound socket.
ServerAddress: TypeAlias = Address | socket.socket
#: Header names (lowercase ``str``) to values.  The values are ``Any`` because
#: a ``dict`` is invariant: a ``dict[str, str]`` of the caller's must still be
#: accepted, and Degu itself puts ``int`` and range objects there.
Headers: TypeAlias = dict[str, Any]
#: A body Degu reads from the wire: ``Request.body`` and ``Response.body``.
InputBody: TypeAlias = Body | ChunkedBody | None
#: A body Degu writes: a request body given to ``Connection.request()`` or
#: the body of an app's response.  A ``str`` is not one: encode it first.
OutputBody: TypeAlias = bytes | Body | BodyIter | ChunkedBody | ChunkedBodyIter | None
#: What an RGI app returns: ``(status, reason, headers, body)``.
ResponseTuple: TypeAlias = tuple[int, str, Headers, OutputBody]


class RGIApp(Protocol):
    """An RGI application: ``app(session, request, api)`` returns a response.

    Any callable with this shape matches, a function or an object with a
    ``__call__`` method; the parameter names are free.  An app may also have an
    ``on_connect`` attribute (see :class:`OnConnect`), which a protocol cannot
    express as optional: the server looks it up at run time.
    """

    def __call__(
        self, session: Session, request: Request, api: API, /
    ) -> ResponseTuple: ...


class OnConnect(Protocol):
    """A server app's ``on_connect(session, sock)``: ``True`` keeps the connection."""

    def __call__(self, session: Session, sock: socket.socket, /) -> bool: ...


class ClientOnConnect(Protocol):
    """A client's ``on_connect`` option: ``on_connect(conn)`` must return ``True``."""

    def __call__(self, conn: Connection, /) -> bool: ...


class ServerOptions(TypedDict, total=False):
    """The keyword options of ``Server`` and ``SSLServer``."""

    max_connections: int
    max_requests: int
    timeout: float
    max_open_connections: int | None
    min_rate: float


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``Client``."""

    authorization: str | None
    host: str | None
    min_rate: float
    on_connect: ClientOnConnect | None
    timeout: float | None


class SSLClientOptions(ClientOptions, total=False):
    """The keyword options of ``SSLClient``: those of ``Client`` and ``ssl_host``."""

    ssl_host: str | None

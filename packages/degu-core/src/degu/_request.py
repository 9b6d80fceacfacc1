"""``Request`` and ``Session``: the objects an RGI app receives.

Both are documented in docs/reference/base.rst.

Plain values with read-only attributes; no I/O here.
"""

from __future__ import annotations

from degu._checks import TYPE_ERROR2, check_int, check_tuple, type_error
from degu._common import TYPE_CHECKING
from degu._limits import METHODS
from degu._targets import encode_segment

if TYPE_CHECKING:
    from typing import Any

    from degu.typehints import Address, Headers, InputBody

__all__ = ["DEFAULT_MAX_REQUESTS", "MAX_REQUESTS_LIMIT", "Request", "Session"]

#: Session(max_requests=None) means this many requests per connection.
DEFAULT_MAX_REQUESTS = 500
#: Largest max_requests a Session (and so a Server) accepts.
MAX_REQUESTS_LIMIT = 75000


def _check_list(name: str, obj: object) -> list[str]:
    if type(obj) is not list:
        raise TypeError(TYPE_ERROR2.format(name, list, type(obj)))
    return obj


class Request:
    """One HTTP request as handed to an RGI app."""

    __slots__ = ("_body", "_headers", "_method", "_mount", "_path", "_query", "_uri")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers,
        body: InputBody,
        mount: list[str],
        path: list[str],
        query: str | None,
    ) -> None:
        if type(method) is not str or method not in METHODS:
            if type(method) is not str:  # b'GET', a str subclass: as Degu 0.19
                type_error("method", str, method)
            raise ValueError(f"bad method: {method!r}")
        self._method = method
        self._uri = uri
        self._headers = headers
        self._body = body
        self._mount = _check_list("mount", mount)
        self._path = _check_list("path", path)
        self._query = query

    @classmethod
    def _new(
        cls,
        method: str,
        uri: str,
        headers: Headers,
        body: InputBody,
        path: list[str],
        query: str | None,
    ) -> Request:
        """Internal interface of degu._serving: a request its parser built.

        Skips ``__init__``'s checks, which the parser has already made.
        """
        self = cls.__new__(cls)
        self._method = method
        self._uri = uri
        self._headers = headers
        self._body = body
        self._mount = []
        self._path = path
        self._query = query
        return self

    @property
    def method(self) -> str:
        """One of the seven methods Degu knows, e.g. ``'GET'`` or ``'PATCH'``."""
        return self._method

    @property
    def uri(self) -> str:
        """The request URI exactly as received (still percent-encoded)."""
        return self._uri

    @property
    def headers(self) -> Headers:
        """Lowercase names to values (parsed per docs/explanation/limits.rst)."""
        return self._headers

    @property
    def body(self) -> InputBody:
        """``None``, a ``Body`` or a ``ChunkedBody``."""
        return self._body

    @property
    def mount(self) -> list[str]:
        """Path components already routed (see ``shift_path``)."""
        return self._mount

    @property
    def path(self) -> list[str]:
        """Path components not yet routed, percent-decoded (see the RGI page)."""
        return self._path

    @property
    def query(self) -> str | None:
        """Text after the first ``?``, or ``None`` when there was no ``?``."""
        return self._query

    def shift_path(self) -> str | None:
        """Move ``path[0]`` to the end of ``mount`` and return it."""
        if not self._path:
            return None
        component = self._path.pop(0)
        self._mount.append(component)
        return component

    def build_proxy_uri(self) -> str:
        """The URI of the unrouted rest: ``'/' + '/'.join(path)`` plus the query.

        Each component is percent-encoded again (``' '`` becomes ``%20``), so
        the result is a valid target whatever the decoded path holds.
        """
        uri = "/" + "/".join(map(encode_segment, self._path))
        if self._query is not None:
            return f"{uri}?{self._query}"
        return uri

    def __repr__(self) -> str:
        return (
            f"Request(method={self._method!r}, uri={self._uri!r}, "
            f"headers={self._headers!r}, body={self._body!r}, "
            f"mount={self._mount!r}, path={self._path!r}, query={self._query!r})"
        )


class Session:
    """Per-connection state shared by ``on_connect`` and every request."""

    __slots__ = (
        "_address",
        "_closed",
        "_credentials",
        "_max_requests",
        "_message",
        "_requests",
        "_store",
    )

    def __init__(
        self,
        address: Address,
        credentials: tuple[int, int, int] | None = None,
        max_requests: int | None = None,
    ) -> None:
        if credentials is not None:
            check_tuple("credentials", credentials, 3)
        if max_requests is None:
            max_requests = DEFAULT_MAX_REQUESTS
        else:
            check_int("max_requests", max_requests, 0, MAX_REQUESTS_LIMIT)
        self._address = address
        self._credentials = credentials
        self._max_requests = max_requests
        self._requests = 0
        self._store: dict[str, Any] = {}
        self._closed = False
        self._message: str | None = None

    @property
    def address(self) -> Address:
        """The peer address as returned by ``accept()``."""
        return self._address

    @property
    def credentials(self) -> tuple[int, int, int] | None:
        """``(pid, uid, gid)`` of an ``AF_UNIX`` peer, else ``None``."""
        return self._credentials

    @property
    def max_requests(self) -> int:
        """The connection closes after this many requests."""
        return self._max_requests

    @property
    def requests(self) -> int:
        """Requests completed on this connection so far."""
        return self._requests

    @property
    def store(self) -> dict[str, Any]:
        """A dict for the app's per-connection state (always the same object)."""
        return self._store

    @property
    def closed(self) -> bool:
        """True once the connection is to end after the current response."""
        return self._closed

    @property
    def message(self) -> str | None:
        """Why the session closed, or ``None`` while open."""
        return self._message

    # The server's side of a Session, called only by degu._serving and
    # degu._loop: _close() marks the connection to end after the current
    # response (and why), _count_request() counts a completed response, and
    # those modules read _closed directly on the per-request path, where a
    # property call would cost more than the test itself.

    def _close(self, message: str) -> None:
        """End the connection after the current response, for *message*."""
        if not self._closed:
            self._closed = True
            self._message = message

    def _count_request(self) -> None:
        """Count a completed response; close at ``max_requests``."""
        self._requests += 1
        if self._requests >= self._max_requests:
            self._close("max_requests")

    def __str__(self) -> str:
        if self._credentials is None:
            return repr(self._address)
        return f"{self._address!r} {self._credentials!r}"

    def __repr__(self) -> str:
        if self._credentials is None:
            return f"Session({self._address!r})"
        return f"Session({self._address!r}, {self._credentials!r})"

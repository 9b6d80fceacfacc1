"""Reusable RGI components: method filters, a router, a proxy, a file server.

docs/reference/applib.rst (0.19 marked these "not API stable").  Every
component is a plain RGI app or middleware; the static file server lives in
``degu._files``.

Beyond 0.19: when one of these components answers with an error status
(405 from ``MethodFilter``, 410 from ``Router``) it first reads and drops a
request body of at most ``MAX_DISCARD`` bytes, so the client sees the status
instead of a closed connection (see ``degu._discard``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from degu._checks import TYPE_ERROR
from degu._discard import MAX_DISCARD as MAX_DISCARD
from degu._discard import refuse_body
from degu._files import FilesApp as FilesApp
from degu._middleware import Middleware as _Middleware
from degu.base import Connection, Request, Session

if TYPE_CHECKING:
    from degu.base import API
    from degu.typehints import ResponseTuple, RGIApp

# As in 0.19, FilesApp (and our MAX_DISCARD, ROUTER_MAX_DEPTH) are public
# without being listed here.
__all__ = ("AllowedMethods", "MethodFilter", "Router", "ProxyApp")  # noqa: RUF022

#: The request methods Degu knows, in documentation order.
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH")
#: How many levels of nested dicts a Router appmap may have, the top one included.
ROUTER_MAX_DEPTH = 10

App = Callable[..., Any]


class AllowedMethods:
    """The set of request methods a ``MethodFilter`` lets through.

    >>> AllowedMethods('GET', 'HEAD').isallowed('PUT')
    False
    """

    def __init__(self, *methods: str) -> None:
        for m in methods:
            if m not in METHODS:
                raise ValueError(f"bad method: {m!r}")
        self.methods = methods

    def __repr__(self) -> str:
        return "{}({})".format(type(self).__name__, ", ".join(map(repr, self.methods)))

    def isallowed(self, method: str) -> bool:
        """Return ``True`` when ``method`` is one of the allowed methods."""
        return method in self.methods

    def __call__(self, app: RGIApp) -> MethodFilter:
        """Wrap ``app`` in a ``MethodFilter``; usable as a decorator."""
        return MethodFilter(app, self)


class MethodFilter(_Middleware):
    """Middleware answering ``405 Method Not Allowed`` for other methods."""

    def __init__(self, app: RGIApp, allowed_methods: AllowedMethods) -> None:
        super().__init__(app)
        if type(allowed_methods) is not AllowedMethods:
            raise TypeError(
                TYPE_ERROR.format(
                    "allowed_methods",
                    AllowedMethods,
                    type(allowed_methods),
                    allowed_methods,
                )
            )
        self.allowed_methods = allowed_methods

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r}, {self.allowed_methods!r})"

    def __call__(self, session: Session, request: Request, api: API) -> ResponseTuple:
        """Forward an allowed request to the app, refuse the others."""
        if self.allowed_methods.isallowed(request.method):
            return self.app(session, request, api)
        return refuse_body(request.body, (405, "Method Not Allowed", {}, None))


def _check_appmap(label: str, appmap: object, depth: int) -> None:
    if type(appmap) is not dict:
        raise TypeError(TYPE_ERROR.format(label, dict, type(appmap), appmap))
    if depth > ROUTER_MAX_DEPTH:
        raise ValueError(f"Router: max appmap depth {ROUTER_MAX_DEPTH} exceeded")
    for key, value in appmap.items():
        if key is not None:
            if type(key) is not str:
                raise TypeError(TYPE_ERROR.format(f"{label} key", str, type(key), key))
            # Keys match percent-decoded segments ('my file', 'é'), which
            # never contain '/' or a control character (docs/explanation/rgi.rst).
            if "/" in key or not key.isprintable():
                raise ValueError(f"{label}: bad key: {key!r}")
        if type(value) is dict:
            _check_appmap(f"{label}[{key!r}]", value, depth + 1)
        elif not callable(value):
            # The message names only the key whose value is bad, at any depth.
            raise TypeError(f"appmap[{key!r}]: value not callable: {value!r}")


class Router:
    """Route requests by path component through a (nested) dict of apps.

    Key ``None`` matches "no more components", ``''`` a trailing slash; a
    missing key answers ``410 Gone``.
    """

    def __init__(self, appmap: dict[str | None, Any]) -> None:
        _check_appmap("appmap", appmap, 1)
        self.appmap = appmap

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.appmap!r})"

    def __call__(self, session: Session, request: Request, api: API) -> ResponseTuple:
        """Shift path components until they lead to an app, and call it."""
        if type(request) is not Request:
            raise TypeError(
                TYPE_ERROR.format("request", Request, type(request), request)
            )
        handler: Any = self.appmap
        # The map may have changed since __init__ checked it (even into a
        # cycle), so the depth is counted again on every request, as in 0.19.
        depth = 1
        while type(handler) is dict:
            if depth > ROUTER_MAX_DEPTH:
                raise ValueError(
                    f"Router: max appmap depth {ROUTER_MAX_DEPTH} exceeded"
                )
            key = request.shift_path()
            if key not in handler:
                return refuse_body(request.body, (410, "Gone", {}, None))
            handler = handler[key]
            depth += 1
        return handler(session, request, api)  # type: ignore[no-any-return]


def _upstream_failed(client: Any, error: OSError) -> tuple[Any, ...]:
    """Log why the upstream failed; answer 504 for a timeout, else 502."""
    import logging  # only a failing proxy pays for it

    logging.getLogger("degu.applib").warning(
        "upstream %r failed: %s: %s", client, type(error).__name__, error
    )
    if isinstance(error, TimeoutError):
        status, reason = 504, "Gateway Timeout"  # RFC 9110 §15.6.5
    else:
        status, reason = 502, "Bad Gateway"  # RFC 9110 §15.6.3
    # Any unread request body is left behind: ``connection: close`` tells the
    # server to answer anyway and then close.
    return (status, reason, {"content-length": 0, "connection": "close"}, None)


class ProxyApp:
    """Reverse-proxy leaf app: forward each request over one upstream connection.

    The upstream ``Connection`` is kept in ``session.store[key]`` so a
    downstream keep-alive connection reuses one upstream connection.  Bodies
    stream both ways: the request body is sent upstream as it is read, and
    the upstream ``Response`` (whose body reads from the upstream socket) is
    returned as is for the server to stream.
    """

    def __init__(self, client: Any, key: str = "conn") -> None:
        if not callable(getattr(client, "connect", None)):
            raise TypeError(
                f"client: need an object with a connect() method; got {client!r}"
            )
        if type(key) is not str:
            raise TypeError(TYPE_ERROR.format("key", str, type(key), key))
        self.client = client
        self.key = key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r}, {self.key!r})"

    def _connection(self, session: Session) -> Connection:
        conn = session.store.get(self.key)
        if conn is None or (type(conn) is Connection and conn.closed):
            # First request, or the upstream closed the previous connection
            # (e.g. after an error status): open a fresh one.
            conn = self.client.connect()
            session.store[self.key] = conn
        if type(conn) is not Connection:
            raise TypeError(
                TYPE_ERROR.format(
                    f"session.store[{self.key!r}]", Connection, type(conn), conn
                )
            )
        return conn

    def __call__(self, session: Session, request: Request, api: API) -> ResponseTuple:
        """Forward the request upstream and return the upstream response."""
        if type(session) is not Session:
            raise TypeError(
                TYPE_ERROR.format("session", Session, type(session), session)
            )
        if type(request) is not Request:
            raise TypeError(
                TYPE_ERROR.format("request", Request, type(request), request)
            )
        uri = request.build_proxy_uri()
        try:
            conn = self._connection(session)
            try:
                return conn.request(request.method, uri, request.headers, request.body)
            except ConnectionError:
                # An idle upstream connection may have been closed by the
                # upstream server (its timeout) without us noticing.  Retrying
                # is only safe for an idempotent method (RFC 9110 §9.2.2; PATCH
                # is not, RFC 5789 §2) with no request body (partly) sent; then
                # try once more on a fresh connection.
                if request.body is not None or request.method in ("POST", "PATCH"):
                    raise
                session.store.pop(self.key, None)
                conn = self._connection(session)
                return conn.request(request.method, uri, request.headers, None)
        except OSError as e:
            # The upstream cannot be reached, timed out, or went away before
            # answering: the client gets a gateway error, not a dropped line.
            session.store.pop(self.key, None)
            return _upstream_failed(self.client, e)

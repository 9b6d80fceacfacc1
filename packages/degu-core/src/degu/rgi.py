"""RGI validation middleware: a strict, slow checker for servers and apps.

Wrap an app in :class:`Validator` while developing or testing it: every
session, request and response that passes through is checked against the RGI
contract (docs/explanation/rgi.rst), and the first violation raises a
``TypeError`` (wrong type) or ``ValueError`` (wrong value) naming the offending item.

This module must not import any other Degu module (docs/reference/rgi.rst):
the body classes it recognises come from the ``bodies``/``api`` argument of
each call, so it also validates servers that are not Degu.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ("Validator",)

# The format of docs/explanation/wire.rst.  degu._checks defines it for the
# rest of degu-core; this copy stays because this module imports no other Degu
# module, so that it can validate any RGI server (docs/reference/rgi.rst).
TYPE_ERROR = "{}: need a {!r}; got a {!r}: {!r}"
REQUEST_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH")
#: Methods whose requests may carry a body (RFC 9110 §9.3; RFC 5789 §2).
BODY_METHODS = ("PUT", "POST", "PATCH")
_RANGE_NAMES = ("Range", "OpenRange", "SuffixRange")
_NO_CONTENT = (204, 304)
LENGTH = "content-length"
ENCODING = "transfer-encoding"

# Body states (docs/reference/base.rst): a body handed to the app must be fresh, and the
# request body must be fully read by the time the app returns.
_BODY_READY = 0
_BODY_CONSUMED = 2


def _getattr(label: str, obj: object, name: str) -> Any:
    """Return ``obj.name`` or raise the "no attribute" ``ValueError``."""
    if not hasattr(obj, name):
        raise ValueError(
            f"{label}: {type(obj).__name__!r} object has no attribute {name!r}"
        )
    return getattr(obj, name)


def _check_type(label: str, obj: object, kind: type | tuple[type, ...]) -> None:
    """Raise TYPE_ERROR unless ``obj`` is an instance of ``kind``.

    ``bool`` never counts as an ``int`` here (docs/explanation/wire.rst).
    """
    if isinstance(obj, bool) and kind is int:
        raise TypeError(TYPE_ERROR.format(label, kind, type(obj), obj))
    if not isinstance(obj, kind):
        raise TypeError(TYPE_ERROR.format(label, kind, type(obj), obj))


def _check_str_list(label: str, value: object) -> None:
    _check_type(label, value, list)
    assert isinstance(value, list)
    for i, item in enumerate(value):
        _check_type(f"{label}[{i}]", item, str)


def _validate_session(session: object) -> None:
    address = _getattr("session", session, "address")
    if isinstance(address, tuple):
        if len(address) not in (2, 4):
            raise ValueError(
                "session.address: need a 2-tuple or 4-tuple; "
                f"got a {len(address)}-tuple"
            )
    else:
        _check_type("session.address", address, (tuple, str, bytes))
    requests = _getattr("session", session, "requests")
    _check_type("session.requests", requests, int)
    if requests < 0:
        raise ValueError(f"session.requests: need >= 0; got {requests}")
    store = _getattr("session", session, "store")
    _check_type("session.store", store, dict)
    for key in store:
        _check_type("session.store key", key, str)


def _validate_headers(label: str, headers: object, bodies: object) -> None:
    """Check a header dict: lowercase str keys, typed values, sane framing."""
    _check_type(label, headers, dict)
    assert isinstance(headers, dict)
    # Range and ContentRange come from the api namedtuple (docs/reference/rgi.rst);
    # an older api without them simply admits only str values.
    # The one-sided forms (RFC 9110 §14.1.2) came later: an api without them
    # admits only a Range (or a str) as a request's range value.
    range_kinds = tuple(
        kind
        for kind in (getattr(bodies, n, None) for n in _RANGE_NAMES)
        if isinstance(kind, type)
    )
    range_types = {
        "range": range_kinds or None,
        "content-range": getattr(bodies, "ContentRange", None),
    }
    for key, value in headers.items():
        _check_type(f"{label} key", key, str)
        if key != key.casefold():
            raise ValueError(f"{label} key: non-casefolded {key!r}")
        vlabel = f"{label}[{key!r}]"
        if key == LENGTH:
            _check_type(vlabel, value, int)
            if value < 0:
                raise ValueError(f"{vlabel}: need >= 0; got {value}")
        elif key in range_types and range_types[key] is not None:
            kind = range_types[key]
            kinds = kind if isinstance(kind, tuple) else (kind,)
            assert all(isinstance(k, type) for k in kinds)
            _check_type(vlabel, value, (str, *kinds))
        else:
            _check_type(vlabel, value, str)
    if LENGTH in headers and ENCODING in headers:
        raise ValueError(f"{label}: cannot have both {LENGTH!r} and {ENCODING!r}")
    if ENCODING in headers and headers[ENCODING] != "chunked":
        raise ValueError(
            f"{label}[{ENCODING!r}]: need 'chunked'; got {headers[ENCODING]!r}"
        )


def _decoded_uri(uri: str) -> tuple[list[str], str | None]:
    """Split a request URI into percent-decoded path segments and raw query.

    The RGI rule (docs/explanation/rgi.rst): ``mount + path`` holds the
    segments of ``uri`` decoded as UTF-8, and ``query`` is the raw text
    after the first ``?``.
    """
    from urllib.parse import unquote  # only a validating app pays for it

    path_src, sep, query = uri.partition("?")
    if not path_src.startswith("/"):
        raise ValueError(f"request.uri: need a leading '/'; got {uri!r}")
    segments = path_src[1:].split("/") if len(path_src) > 1 else []
    try:
        decoded = [unquote(s, errors="strict") for s in segments]
    except UnicodeDecodeError:
        raise ValueError(f"request.uri: path is not UTF-8: {uri!r}") from None
    return decoded, (query if sep else None)


def _check_uri_invariant(request: object, when: str) -> None:
    uri = _getattr("request", request, "uri")
    _check_type("request.uri", uri, str)
    mount = _getattr("request", request, "mount")
    path = _getattr("request", request, "path")
    query = _getattr("request", request, "query")
    _check_str_list("request.mount", mount)
    _check_str_list("request.path", path)
    if query is not None:
        _check_type("request.query", query, str)
    if (mount + path, query) != _decoded_uri(uri):
        expected = "/" + "/".join(mount + path)
        if query is not None:
            expected += f"?{query}"
        raise ValueError(
            f"{when}: request.uri {uri!r} != mount + path + query {expected!r}"
        )


def _validate_request(request: object, bodies: object) -> None:
    method = _getattr("request", request, "method")
    _check_type("request.method", method, str)
    if method not in REQUEST_METHODS:
        raise ValueError(f"request.method: bad method: {method!r}")
    _check_uri_invariant(request, "before app()")
    headers = _getattr("request", request, "headers")
    _validate_headers("request.headers", headers, bodies)
    body = _getattr("request", request, "body")
    if body is None:
        for name in (LENGTH, ENCODING):
            if name in headers:
                raise ValueError(
                    f"request.body is None, but {name!r} in request.headers"
                )
        return
    if method not in BODY_METHODS:
        raise ValueError(f"request.method is {method!r}, but request.body is not None")
    body_cls = _getattr("bodies", bodies, "Body")
    chunked_cls = _getattr("bodies", bodies, "ChunkedBody")
    if isinstance(body, body_cls):
        if _getattr("request.body", body, "chunked") is not False:
            raise ValueError("request.body.chunked must be False for a Body")
        if ENCODING in headers:
            raise ValueError(f"{ENCODING!r} in request.headers with a Body")
        content_length = _getattr("request.body", body, "content_length")
        if headers.get(LENGTH) != content_length:
            raise ValueError(
                f"request.headers[{LENGTH!r}] != request.body.content_length: "
                f"{headers.get(LENGTH)!r} != {content_length!r}"
            )
    elif isinstance(body, chunked_cls):
        if _getattr("request.body", body, "chunked") is not True:
            raise ValueError("request.body.chunked must be True for a ChunkedBody")
        if LENGTH in headers:
            raise ValueError(f"{LENGTH!r} in request.headers with a ChunkedBody")
        if ENCODING not in headers:
            raise ValueError(f"{ENCODING!r} not in request.headers with a ChunkedBody")
    else:
        raise TypeError(
            f"request.body: need a Body or ChunkedBody; got a {type(body)!r}: {body!r}"
        )
    state = _getattr("request.body", body, "state")
    if state != _BODY_READY:
        raise ValueError(f"request.body.state: need {_BODY_READY}; got {state!r}")


def _check_length_body(label: str, headers: dict[Any, Any], length: int) -> None:
    if ENCODING in headers:
        raise ValueError(f"{ENCODING!r} in response.headers with a length body")
    if LENGTH in headers and headers[LENGTH] != length:
        raise ValueError(
            f"response.headers[{LENGTH!r}] != {label} length: "
            f"{headers[LENGTH]!r} != {length!r}"
        )


def _check_fresh(label: str, body: object, chunked: bool) -> None:
    if _getattr(label, body, "chunked") is not chunked:
        raise ValueError(f"{label}.chunked must be {chunked}")
    state = _getattr(label, body, "state")
    if state != _BODY_READY:
        raise ValueError(f"{label}.state: need {_BODY_READY}; got {state!r}")


def _validate_response_body(
    method: str, status: int, headers: dict[Any, Any], body: object, bodies: object
) -> None:
    label = "response.body"
    if method == "HEAD":
        # A 204 or 304 has no content to describe (RFC 9110 §8.6, §15.4.5).
        framed = LENGTH in headers or ENCODING in headers
        if not framed and status not in _NO_CONTENT:
            raise ValueError(
                f"response to HEAD: need {LENGTH!r} or {ENCODING!r} in headers"
            )
        if body is not None:
            raise TypeError(
                f"request method is HEAD, but response body is not None: {type(body)!r}"
            )
        return
    if body is None:
        # content-length: 0 still frames "no body" exactly, and is what the
        # RGI page asks of a bodiless answer that keeps the connection open.
        for name in (LENGTH, ENCODING):
            if name in headers and not (name == LENGTH and headers[name] == 0):
                raise ValueError(f"response.body is None, but {name!r} in headers")
        return
    if isinstance(body, (bytes, bytearray)):
        _check_length_body(label, headers, len(body))
        return
    length_types = (
        _getattr("bodies", bodies, "Body"),
        _getattr("bodies", bodies, "BodyIter"),
    )
    chunked_types = (
        _getattr("bodies", bodies, "ChunkedBody"),
        _getattr("bodies", bodies, "ChunkedBodyIter"),
    )
    if isinstance(body, length_types):
        _check_fresh(label, body, False)
        length = _getattr(label, body, "content_length")
        _check_length_body(label, headers, length)
    elif isinstance(body, chunked_types):
        _check_fresh(label, body, True)
        if LENGTH in headers:
            raise ValueError(f"{LENGTH!r} in response.headers with a chunked body")
        if hasattr(body, "content_length"):
            raise ValueError(f"{label}: chunked body has a 'content_length'")
    else:
        raise TypeError(f"{label}: bad response body type: {type(body)!r}: {body!r}")


def _validate_response(method: str, response: object, bodies: object) -> None:
    _check_type("response", response, tuple)
    assert isinstance(response, tuple)
    if len(response) != 4:
        raise ValueError(f"response: need a 4-tuple; got a {len(response)}-tuple")
    status, reason, headers, body = response
    _check_type("response.status", status, int)
    if not 100 <= status <= 599:
        raise ValueError(f"need 100 <= response.status <= 599; got {status}")
    _check_type("response.reason", reason, str)
    if not reason:
        raise ValueError("response.reason cannot be empty")
    _validate_headers("response.headers", headers, bodies)
    _validate_response_body(method, status, headers, body, bodies)


class Validator:
    """Middleware that checks every RGI call against the contract.

    The contract is explained in docs/explanation/rgi.rst.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        if not callable(app):
            raise TypeError(f"app: not callable: {app!r}")
        on_connect = getattr(app, "on_connect", None)
        if on_connect is not None and not callable(on_connect):
            raise TypeError(f"app.on_connect: not callable: {app!r}")
        self.app = app
        self._on_connect: Callable[..., Any] | None = on_connect

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"

    def on_connect(self, session: Any, sock: Any) -> bool:
        """Validate a fresh session, then defer to the app's ``on_connect``."""
        _validate_session(session)
        if session.requests != 0:
            raise ValueError(
                f"session.requests must be 0 in on_connect(); got {session.requests}"
            )
        if self._on_connect is None:
            return True
        result = self._on_connect(session, sock)
        if not isinstance(result, bool):
            raise TypeError(
                TYPE_ERROR.format("app.on_connect() result", bool, type(result), result)
            )
        return result

    def __call__(self, session: Any, request: Any, bodies: Any) -> Any:
        """Validate the call, run the app, validate and return its response."""
        _validate_session(session)
        _validate_request(request, bodies)
        response = self.app(session, request, bodies)
        _check_uri_invariant(request, "after app()")
        body = request.body
        if body is not None:
            state = _getattr("request.body", body, "state")
            if state != _BODY_CONSUMED:
                raise ValueError(f"request body not consumed: {body!r}")
        _validate_response(request.method, response, bodies)
        return response

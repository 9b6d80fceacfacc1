"""The per-connection request loop of the server (SPEC §3, §4.6, §14 10/13).

One call of ``serve_requests`` serves one accepted connection until the
session closes, the peer goes away, or something fails.  Grammar lives in
``_parsing``/``_rendering``; here we only sequence reading, the app call,
response validation and writing.  Every response is fully validated before
its first byte is sent, so a bad one can still be answered with a 500.
"""

from __future__ import annotations

import socket
from time import monotonic

from degu._bodies import Body, ChunkedBody, api, set_output_framing
from degu._common import (
    BODY_CONSUMED,
    JOIN_BODY_MAX,
    TYPE_ERROR2,
    Response,
    wants_close,
)
from degu._errors import ParseError
from degu._parsing import CHUNKED, parse_request, request_body_framing
from degu._reader import Reader
from degu._rendering import render_error_response, render_response
from degu._request import Request, Session
from degu._timeouts import KernelWriter, set_kernel_timeouts

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~6 ms
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ConnectionState", "RequestRefused", "serve_requests"]

#: After these statuses the session stays open; other >= 400 close it (0.19).
KEEP_OPEN_ERRORS = frozenset([404, 409, 412])
#: Statuses that never carry a body (RFC 9110 §15.3.5, §15.4.5).
NO_BODY_STATUSES = frozenset([204, 304])

#: Lingering close after an error response: at most this long / this much.
LINGER_TIME = 1.0
LINGER_BYTES = 1048576

_ERRORS = {s: render_error_response(s) for s in (400, 413, 431, 500, 501, 505)}


class RequestRefused(ValueError):
    """A request the server refused on the wire (400/413/431/501/505).

    The peer's mistake, not ours: the server logs it as one line, without a
    traceback, so a misbehaving client cannot fill the log with stack traces.
    """


class ConnectionState:
    """What the server's shutdown needs to know about one live connection."""

    __slots__ = ("busy", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        #: True from a complete request preamble until its response is written.
        self.busy = False


class _SendallWriter:
    __slots__ = ("_sendall",)

    def __init__(self, sock: Any) -> None:
        self._sendall = sock.sendall

    def write(self, buf: Any) -> int:
        self._sendall(buf)
        return len(buf)


def linger_close(sock: Any) -> None:
    """Half-close, then discard what the peer still sends, briefly.

    Closing a socket with unread input makes the kernel send RST, which can
    destroy a response before the peer reads it.  So for plain sockets:
    shut down our side, then drain for at most LINGER_TIME / LINGER_BYTES
    (RFC 9112 §9.6).  The caller closes the socket afterwards.
    """
    if type(sock) is not socket.socket:
        return
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = monotonic() + LINGER_TIME
        drained = 0
        while drained < LINGER_BYTES and (left := deadline - monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            drained += len(data)
    except OSError:
        pass


def send_error(sock: Any, status: int) -> None:
    """Best-effort refusal, then a lingering close."""
    try:
        sock.sendall(_ERRORS[status])
    except OSError:
        return
    linger_close(sock)


def _check_response(
    response: object, method: str, req_body: Body | ChunkedBody | None
) -> tuple[Any, ...]:
    """Validate an app's response (SPEC §3.3, §14 item 13); return it as a tuple."""
    if type(response) is not tuple and type(response) is not Response:
        raise TypeError(TYPE_ERROR2.format("response", tuple, type(response)))
    if len(response) != 4:
        raise ValueError(f"response: need a 4-tuple; got a {len(response)}-tuple")
    status, _reason, headers, body = response
    if type(status) is int and 100 <= status < 200:
        raise ValueError(f"response status {status} is not a final status")
    # An app may leave the request body unread if it also closes the connection.
    if (
        req_body is not None
        and req_body._state != BODY_CONSUMED
        and (type(headers) is not dict or not wants_close(headers))
    ):
        raise ValueError(f"request body not consumed: {req_body!r}")
    if body is not None:
        if method == "HEAD":
            raise TypeError(
                f"request method is HEAD, but response body is not None: {type(body)!r}"
            )
        if status in NO_BODY_STATUSES:
            raise ValueError(f"a {status} response cannot have a body")
    elif (
        type(headers) is dict
        and "content-length" in headers
        and "transfer-encoding" in headers
    ):
        raise ValueError("response has both content-length and transfer-encoding")
    return response


def serve_requests(
    app: Any,
    sock: Any,
    session: Session,
    timeout: float,
    state: ConnectionState,
    stopping: Any,
) -> None:
    """Serve requests on *sock* until the session closes or an error ends it.

    *stopping* is a callable returning True once the server shuts down.
    Raises whatever ended the connection abnormally (after sending an error
    response when nothing had been written for the current request yet).
    """
    # Plain sockets get kernel timeouts: a small request is then one recv and
    # one send, without a poll() before each (see set_kernel_timeouts).
    kernel = type(sock) is socket.socket
    if kernel:
        set_kernel_timeouts(sock, timeout)
    reader = Reader(sock, timeout, kernel_timeouts=kernel)
    read_preamble = reader.read_preamble
    writer: Any = KernelWriter(sock, timeout) if kernel else _SendallWriter(sock)
    write = writer.write
    # On AF_UNIX, SO_SNDTIMEO restarts for every buffer (<= 64 KiB) the
    # kernel allocates within one send(), so it cannot bound a big write: big
    # bodies there use Python's timeout, which bounds each whole sendall
    # (SPEC §14 item 13); a small response (<= JOIN_BODY_MAX + preamble) stays
    # within a few timeouts.  On TCP one blocking send() is bounded as a whole.
    toggle = kernel and sock.family == socket.AF_UNIX
    big_writer = _SendallWriter(sock) if toggle else writer
    new_request = Request._new
    new_body = Body._new
    while not session._closed:
        state.busy = False
        if stopping():
            session._close("server shutdown")
            return
        try:
            preamble = read_preamble("request preamble is empty")
        except ValueError as e:
            status = e.status if isinstance(e, ParseError) else 400
            send_error(sock, status)
            raise RequestRefused(f"{status}: {e}") from e
        state.busy = True
        try:
            method, uri, path, query, headers = parse_request(preamble)
            if "content-length" in headers or "transfer-encoding" in headers:
                n = request_body_framing(method, headers)
            else:
                n = None
        except ValueError as e:
            status = e.status if isinstance(e, ParseError) else 400
            send_error(sock, status)
            raise RequestRefused(f"{status}: {e}") from e
        if n is None:
            body: Body | ChunkedBody | None = None
        elif n == CHUNKED:
            body = ChunkedBody(reader)
        else:
            body = new_body(reader, n)
        try:
            request = new_request(method, uri, headers, body, path, query)
            response = app(session, request, api)
            status, reason, rheaders, rbody = _check_response(response, method, body)
            set_output_framing(rheaders, rbody)
            out = render_response(status, reason, rheaders)
        except Exception:
            if not reader.closed:
                send_error(sock, 500)
            raise
        # From here on bytes reach the wire: a failure can only close.
        if rbody is None:
            write(out)
        elif type(rbody) is bytes and len(rbody) <= JOIN_BODY_MAX:
            write(out + rbody)
        else:
            if toggle:
                sock.settimeout(timeout)
            big_writer.write(out)
            if type(rbody) is bytes:
                big_writer.write(rbody)
            else:
                rbody.write_to(big_writer)
            if toggle:
                sock.settimeout(None)
        if wants_close(rheaders):
            # The app ends the connection; what is left of an unread request
            # body is drained briefly so our response is not lost to a RST.
            session._close("connection: close")
            if body is not None and body._state != BODY_CONSUMED:
                linger_close(sock)
        elif wants_close(headers):
            # RFC 9112 §9.6: answer, then read nothing more (SPEC §14 item 13).
            session._close("connection: close")
        elif status >= 400 and status not in KEEP_OPEN_ERRORS:
            session._close(f"{status} {reason}")
        session._count_request()

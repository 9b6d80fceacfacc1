"""One server connection, and a worker's turn serving its requests.

A :class:`ServerConnection` is what the server knows of an open connection.
It moves between the I/O loop (``degu._loop``), which holds it while no
request runs, and a worker thread, which runs :func:`serve_turn`: requests
whose preamble (and small body) is already buffered, one after another, then
hands the connection back with a :class:`Verdict`.

Grammar lives in ``_parsing``/``_rendering``; here we only sequence parsing,
the app call, response validation and writing.  Every response is fully
validated before its first byte is sent, so a bad one can still be answered
with a 500 (docs/reference/server.rst).
"""

from __future__ import annotations

from time import monotonic

from degu._bodies import (
    BODY_CONSUMED,
    Body,
    ChunkedBody,
    Response,
    api,
    framing_without_body,
    set_output_framing,
)
from degu._checks import TYPE_ERROR2
from degu._common import TYPE_CHECKING
from degu._errors import ParseError
from degu._limits import BUF_LEN
from degu._parsing import (
    CHUNKED,
    parse_framed_request,
    wants_close,
)
from degu._reader import Reader
from degu._rendering import render_error_response, render_response, send_message
from degu._request import Request, Session
from degu._stream import Budget

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from degu._stream import Stream

__all__ = [
    "HOT_BUSY_MAX",
    "HOT_WAIT",
    "KEEP_OPEN_ERRORS",
    "NO_BODY_STATUSES",
    "RequestRefused",
    "ServerConnection",
    "ServingRules",
    "Verdict",
    "advance",
    "chunked_body_buffered",
    "serve_turn",
]

#: After these statuses the session stays open; other >= 400 close it (0.19).
KEEP_OPEN_ERRORS = frozenset([404, 409, 412])
#: Statuses that never carry a body (RFC 9110 §15.3.5, §15.4.5).
NO_BODY_STATUSES = frozenset([204, 304])
#: After a response, a worker waits this long for the next request on the same
#: connection before handing it back to the I/O loop: a client that sends its
#: next request at once (most of them) costs no hand-over between threads.
HOT_WAIT = 0.005
#: ... and only while at most this many connections are busy (this one
#: included) and were handed out lately (``degu._loop``, per HOT_WAIT).
#: Threads hot-waiting under load contend for the GIL, and the unlucky ones
#: starve: at wrk -c128 (bench/bench_concurrency.py), p99
#: was 70-125 ms with every worker hot-waiting; 13-18 ms allowing 1, 7-8 ms
#: allowing 2, 8-9 ms allowing 4 (and 3-10% more requests/s than 2).
HOT_BUSY_MAX = 2

_ERRORS = {s: render_error_response(s) for s in (400, 413, 431, 500, 501, 505)}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Verdict:
    """Where a connection goes when a worker (or the loop) is done with it."""

    #: No request in progress: wait in the I/O loop (evictable).
    IDLE = 0
    #: Part of a request is buffered: the loop keeps reading it.
    READING = 1
    #: A complete request is buffered: a worker should run it.
    READY = 2
    #: An error reply went out: drain what the peer still sends, then close.
    LINGER = 3
    #: Close now.
    CLOSE = 4


class RequestRefused(ValueError):
    """A request the server refused on the wire (400/413/431/501/505).

    The peer's mistake, not ours: the server logs it as one line, without a
    traceback, so a misbehaving client cannot fill the log with stack traces.
    """

    def __init__(self, status: int, message: str, *, after_app: bool = False) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        #: Raised while the app read the body: the app saw the request.
        self.after_app = after_app


class ServingRules:
    """What every connection of one server is served with."""

    __slots__ = ("app", "crowded", "min_rate", "on_connect", "stopping", "timeout")

    def __init__(
        self,
        app: Callable[..., Any],
        on_connect: Callable[..., Any] | None,
        timeout: float,
        min_rate: float,
        stopping: Callable[[], bool],
    ) -> None:
        self.app = app
        self.on_connect = on_connect
        self.timeout = timeout
        self.min_rate = min_rate
        #: True once the server shuts down.
        self.stopping = stopping
        #: True under load (set by the loop, ``HOT_BUSY_MAX``): no thread
        #: hot-waits.  A leader it lets hot-wait has handed the leadership over.
        self.crowded: Callable[[], bool] = lambda: False


class ServerConnection:
    """What the server knows about one open connection."""

    __slots__ = (
        "armed",
        "body_budget",
        "body_scan",
        "body_since",
        "connected",
        "drained",
        "pending",
        "reader",
        "run_anyway",
        "send_budget",
        "session",
        "since",
        "sock",
        "state",
        "stream",
    )

    def __init__(self, sock: Any, session: Session) -> None:
        #: The accepted socket (an SSLSocket once wrapped for TLS).
        self.sock = sock
        self.session = session
        self.stream: Stream | None = None
        self.reader: Reader | None = None
        #: Whether ``app.on_connect`` has accepted the connection (or is none).
        self.connected = False
        #: The parsed request whose small body is still arriving.
        self.pending: tuple[Any, ...] | None = None
        #: How far a buffered chunked body has been checked for its end.
        self.body_scan = 0
        #: When ``pending`` was parsed: the time its body has had so far
        #: (0.0: the body came whole with the preamble).
        self.body_since = 0.0
        #: Run ``pending`` although its body is not buffered (the peer
        #: stalled or closed: the app answers, its body reads fail).
        self.run_anyway = False
        #: The loop's state for this connection (a ``Verdict``, or -1 busy).
        self.state = -1
        #: When the current loop state began (monotonic seconds).
        self.since = 0.0
        #: Bytes dropped while lingering.
        self.drained = 0
        #: The events the loop's epoll reports for it (0: none).
        self.armed = 0
        #: The budgets of every request body read and every response sent
        #: on this connection, reset for each: a reset costs 29 ns, a new
        #: Budget 126 ns (timeit, best of 7, 2-vCPU VM).
        self.body_budget: Budget | None = None
        self.send_budget: Budget | None = None

    def attach(self, stream: Stream) -> None:
        """Start reading from *stream* (after accept, or after a handshake)."""
        self.stream = stream
        self.reader = Reader(stream)
        # A broken body is answered by the server before it closes.
        self.reader.defer_close = True

    def __repr__(self) -> str:
        return f"<ServerConnection {self.session}>"


def chunked_body_buffered(buf: bytearray, start: int, stop: int, scan: int) -> int:
    """Whether ``buf[start:stop]`` holds a whole chunked body.

    Returns -1 when it does, else the offset (from *start*) to resume the
    scan at next time.  Malformed framing counts as whole: the worker's
    parser refuses it properly.
    """
    pos = start + scan
    while True:
        eol = buf.find(b"\r\n", pos, stop)
        if eol < 0:
            return pos - start
        size_src = bytes(buf[pos:eol]).partition(b";")[0]
        try:
            size = int(size_src, 16)
        except ValueError:
            return -1
        if size == 0:
            return -1 if eol + 4 <= stop else pos - start
        end = eol + 2 + size + 2
        if end > stop:
            return pos - start
        pos = end


def advance(conn: ServerConnection) -> int:
    """Look at what is buffered: is a request ready to run?

    Parses a complete preamble (once) into ``conn.pending``; a body that fits
    the buffer must be buffered whole first, so a peer trickling a small body
    holds no worker.  Returns ``Verdict.READY``, ``Verdict.READING`` (more
    bytes needed) or ``Verdict.IDLE`` (nothing buffered).

    Raises:
        RequestRefused: the request is refused; the caller answers it.
    """
    reader = conn.reader
    assert reader is not None
    pending = conn.pending
    if pending is None:
        preamble = reader.next_preamble()
        if preamble is None:
            if reader.full():
                raise RequestRefused(431, "request preamble exceeds BUF_LEN")
            return Verdict.READING if reader.buffered else Verdict.IDLE
        try:
            conn.pending = pending = parse_framed_request(preamble)
        except ValueError as e:
            status = e.status if isinstance(e, ParseError) else 400
            raise RequestRefused(status, str(e)) from e
        framing = pending[5]
        if framing is None:
            return Verdict.READY
        headers = pending[4]
        if "expect" in headers and _expects_continue(headers):
            # The client waits for this before it sends the body
            # (RFC 9110 §10.1.1); an app can still refuse with its
            # final response.
            assert conn.stream is not None
            conn.stream.send_nowait(_CONTINUE)
        if framing != CHUNKED:
            buffered = reader.buffered
            if buffered >= framing or buffered >= BUF_LEN:
                # It came with the preamble, so it spent no time arriving:
                # no clock read here or in _respond.
                conn.body_since = 0.0
                return Verdict.READY
        conn.body_scan = 0
        conn.body_since = monotonic()
    else:
        framing = pending[5]
        if framing is None:
            return Verdict.READY
    if framing == CHUNKED:
        if reader.full() or conn.run_anyway:
            return Verdict.READY
        buf, start, stop = reader.buffered_span()
        scan = chunked_body_buffered(buf, start, stop, conn.body_scan)
        if scan < 0:
            return Verdict.READY
        conn.body_scan = scan
        return Verdict.READING
    # A full buffer holds at least min(framing, BUF_LEN) bytes.
    buffered = reader.buffered
    if buffered >= framing or buffered >= BUF_LEN or conn.run_anyway:
        return Verdict.READY
    return Verdict.READING


def _expects_continue(headers: dict[str, Any]) -> bool:
    value = headers.get("expect")
    return type(value) is str and value.lower() == "100-continue"


def send_error(stream: Stream, status: int) -> None:
    """Best-effort refusal (the caller lingers, then closes)."""
    stream.send_nowait(_ERRORS[status])


def _check_response(
    response: object, method: str, req_body: Body | ChunkedBody | None
) -> tuple[Any, ...]:
    """Validate an app's response; return it as a tuple (docs/reference/rgi.rst)."""
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
    elif type(headers) is dict and (
        "content-length" in headers or "transfer-encoding" in headers
    ):
        _check_bodiless_framing(headers, method, status)
    return response


def _check_bodiless_framing(
    headers: dict[str, Any], method: str, status: object
) -> None:
    # Framing headers without a body would make the peer wait for bytes that
    # never come, or read our next response as this one's body.  They only
    # mean something without a body in a response to HEAD and in a 304, where
    # they describe the representation (RFC 9110 §8.6, §9.3.2, §15.4.5).
    if "content-length" in headers and "transfer-encoding" in headers:
        raise ValueError("response has both content-length and transfer-encoding")
    if method == "HEAD" or status == 304:
        return
    found = framing_without_body(headers)
    if found is not None:
        raise ValueError(f"response has {found} but no body")


def _respond(conn: ServerConnection, rules: ServingRules) -> int:
    """Run the app on ``conn.pending`` and write its response.

    Returns ``Verdict.IDLE`` to go on with the connection, else how to end it.
    """
    reader = conn.reader
    stream = conn.stream
    session = conn.session
    assert reader is not None and stream is not None and conn.pending is not None
    method, uri, path, query, headers, framing = conn.pending
    conn.pending = None
    conn.run_anyway = False
    body: Body | ChunkedBody | None
    if framing is None:
        body = None
    else:
        budget = conn.body_budget
        if budget is None:
            budget = conn.body_budget = Budget(rules.timeout, rules.min_rate)
        else:
            budget.moved = 0
        # The body's budget counts the time it has already spent arriving.
        since = conn.body_since
        budget.waited = monotonic() - since if since else 0.0
        reader.budget = budget
        body = ChunkedBody(reader) if framing == CHUNKED else Body._new(reader, framing)
    try:
        request = Request._new(method, uri, headers, body, path, query)
        response = rules.app(session, request, api)
        status, reason, rheaders, rbody = _check_response(response, method, body)
        set_output_framing(rheaders, rbody)
        out = render_response(status, reason, rheaders)
    except Exception as e:
        if reader.broken:
            # The app failed reading the body: the peer's fault or its loss.
            status = reader.error_status or 0
            if status:
                send_error(stream, status)
                raise RequestRefused(
                    status, f"request body: {e}", after_app=True
                ) from e
            session._close(f"request body: {type(e).__name__}: {e}")
            return Verdict.CLOSE
        send_error(stream, 500)
        raise
    # From here on bytes reach the wire: a failure can only close.
    budget = conn.send_budget
    if budget is None:
        budget = conn.send_budget = Budget(rules.timeout, rules.min_rate)
    else:
        budget.moved = 0
        budget.waited = 0.0
    send_message(stream, out, rbody, budget)
    verdict = Verdict.IDLE
    if "connection" in rheaders and wants_close(rheaders):
        # The app ends the connection; what is left of an unread request
        # body is drained briefly so our response is not lost to a RST.
        session._close("connection: close")
        if body is not None and body.state != BODY_CONSUMED:
            verdict = Verdict.LINGER
    elif "connection" in headers and wants_close(headers):
        # RFC 9112 §9.6: answer, then read nothing more.
        session._close("connection: close")
    elif status >= 400 and status not in KEEP_OPEN_ERRORS:
        session._close(f"{status} {reason}")
    if reader.broken:
        session._close("request body failed")
    session._count_request()
    if session._closed and verdict == Verdict.IDLE:
        return Verdict.CLOSE
    return verdict


def serve_turn(conn: ServerConnection, rules: ServingRules) -> int:
    """Serve the requests *conn* has ready; return where it goes next.

    Runs on a worker thread.  Raises what ended the connection abnormally
    (``RequestRefused`` after its error reply went out, or an app's
    exception after a 500); the caller logs it and lingers or closes.
    """
    reader = conn.reader
    assert reader is not None
    # Whether advance() has anything to look at (else it would say IDLE):
    # known without asking the reader again after a receive.
    ready = conn.pending is not None or reader.buffered > 0
    while True:
        pending = conn.pending
        if not ready:
            verdict = Verdict.IDLE
        else:
            if pending is not None and pending[5] is None:
                verdict = Verdict.READY  # parsed, with no body to wait for
            else:
                try:
                    verdict = advance(conn)
                except RequestRefused as e:
                    assert conn.stream is not None
                    send_error(conn.stream, e.status)
                    raise
            if verdict == Verdict.READY:
                verdict = _respond(conn, rules)
                if verdict == Verdict.CLOSE:
                    # Send our FIN now, not when the loop gets the connection
                    # back: a client about to reuse it sees it closing.
                    assert conn.stream is not None
                    conn.stream.shutdown()
                if verdict != Verdict.IDLE:
                    return verdict
                ready = reader.buffered > 0  # a pipelined request
                continue
        if conn.session._closed or rules.stopping():
            return Verdict.CLOSE
        if verdict == Verdict.READING or rules.crowded():
            return verdict
        # Nothing buffered: wait a moment for the client's next request here
        # rather than paying a hand-over to the loop and back; not under
        # load (HOT_BUSY_MAX).
        try:
            n = reader.fill_within(HOT_WAIT)
        except TimeoutError:
            return Verdict.IDLE
        if n == 0:
            conn.session._close("peer closed the connection")
            return Verdict.CLOSE
        ready = True

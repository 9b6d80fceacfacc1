"""A corpus of hostile requests, each sent raw over a real socket.

Every case names where it comes from (an RFC 9112 section or a public
advisory) and the exact answer docs/reference/server.rst (Error responses) prescribes: a bare status
line, ``connection: close`` and ``content-length: 0``, then the server closes
the connection, the app is never called, and the same server goes on serving
a good request on a new connection.

Chunked-body violations are found only while the app reads the body, so they
have a table of their own: the read fails, nothing is written, and the
connection is closed (docs/reference/base.rst, Body states).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from degu.base import Request, Session

REASONS = {
    400: b"Bad Request",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    505: b"HTTP Version Not Supported",
}
GOOD = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
BUF_LEN = 32768  # max preamble, CRLFCRLF included
MAX_INCOMING_HEADERS = 100  # max header lines in a request (431 beyond)


def error_reply(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\nconnection: close\r\ncontent-length: 0\r\n\r\n" % (
        status,
        REASONS[status],
    )


def preamble_of_size(size: int) -> bytes:
    """A GET preamble of exactly *size* bytes, CRLFCRLF included."""
    head = b"GET / HTTP/1.1\r\nx: "
    return head + b"v" * (size - len(head) - 4) + b"\r\n\r\n"


def n_headers(count: int, value_len: int = 1) -> bytes:
    """A GET preamble with *count* distinct headers of *value_len* bytes each."""
    lines = [b"GET / HTTP/1.1"] + [
        b"h%d: " % i + b"v" * value_len for i in range(count)
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def many_headers(total: int) -> bytes:
    """A GET preamble of at least *total* bytes made of distinct short headers."""
    lines = [b"GET / HTTP/1.1"]
    size = len(lines[0]) + 4
    i = 0
    while size < total:
        line = b"h%d: v" % i
        lines.append(line)
        size += len(line) + 2
        i += 1
    return b"\r\n".join(lines) + b"\r\n\r\n"


def family_of(address: Any) -> socket.AddressFamily:
    if isinstance(address, str | bytes):
        return socket.AF_UNIX
    return socket.AF_INET6 if len(address) == 4 else socket.AF_INET


def exchange(
    address: Any, data: bytes, *, half_close: bool, timeout: float = 5
) -> bytes:
    """Send *data*, read until the server closes; a reset counts as a close."""
    with socket.socket(family_of(address), socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking everything
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


# (name, raw request, expected status, source)
CORPUS: list[tuple[str, bytes, int, str]] = [
    # --- message framing: request smuggling (RFC 9112 §6.1, §6.3) ---
    ("cl-and-te",
     b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
     400, "RFC 9112 §6.1 (CL.TE smuggling), §6.3 item 3"),
    ("te-and-cl",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
     b"5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
     400, "RFC 9112 §6.1 (TE.CL smuggling), §6.3 item 3"),
    ("duplicate-cl-same",
     b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
     400, "RFC 9112 §6.3 item 5; RFC 9110 §8.6"),
    ("duplicate-cl-differ",
     b"PUT / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 13\r\n\r\nabc",
     400, "RFC 9112 §6.3 item 5"),
    ("cl-list", b"PUT / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
     400, "RFC 9110 §8.6 (list form refused)"),
    ("cl-plus-sign", b"PUT / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
     400, "RFC 9110 §8.6 (1*DIGIT)"),
    ("cl-minus-sign", b"PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
     400, "RFC 9110 §8.6 (1*DIGIT)"),
    ("cl-leading-space", b"PUT / HTTP/1.1\r\nContent-Length:  3\r\n\r\nabc",
     400, "RFC 9112 §5.1 OWS; docs/explanation/limits.rst (exactly one space)"),
    ("cl-trailing-space", b"PUT / HTTP/1.1\r\nContent-Length: 3 \r\n\r\nabc",
     400, "RFC 9112 §5.1 OWS; docs/explanation/limits.rst"),
    ("cl-leading-zero", b"PUT / HTTP/1.1\r\nContent-Length: 03\r\n\r\nabc",
     400, "docs/explanation/limits.rst (no leading zero); octal/decimal confusion"),
    ("cl-hex", b"PUT / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc",
     400, "RFC 9110 §8.6 (1*DIGIT)"),
    ("cl-empty-value", b"PUT / HTTP/1.1\r\nContent-Length: \r\n\r\n",
     400, "RFC 9110 §8.6"),
    ("cl-17-digits", b"PUT / HTTP/1.1\r\nContent-Length: 10000000000000000\r\n\r\n",
     413, "docs/explanation/limits.rst (16 digits); RFC 9110 §15.5.14"),
    ("cl-40-digits", b"PUT / HTTP/1.1\r\nContent-Length: " + b"9" * 40 + b"\r\n\r\n",
     413, "RFC 9110 §8.6 (anticipate large numerals, prevent overflow)"),
    ("te-chunked-identity",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
     400, "RFC 9112 §6.3 item 4 (chunked must be final); docs/explanation/limits.rst"),
    ("te-identity-chunked",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
     400, "RFC 9112 §6.1 (identity removed); docs/explanation/limits.rst"),
    ("te-capitalised",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
     400, "docs/explanation/limits.rst (exactly 'chunked'); PortSwigger TE.TE obfuscation"),
    ("te-gzip", b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
     400, "RFC 9112 §6.3 item 4; only chunked is supported"),
    ("te-duplicate",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n0\r\n\r\n",
     400, "RFC 9112 §6.1 TE.TE obfuscation"),
    ("te-leading-cr",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: \rchunked\r\n\r\n0\r\n\r\n",
     400, "CVE-2022-1705 (Go net/http, golang/go#53188)"),
    ("te-vertical-tab",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
     400, "CVE-2019-18277 (HAProxy)"),
    ("te-tab-after",
     b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
     400, "RFC 9112 §5.1 OWS; docs/explanation/limits.rst (no TAB)"),
    ("te-on-get", b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "RFC 9110 §9.3.1 (GET body has no semantics); docs/explanation/limits.rst"),
    ("cl-on-get", b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
     400, "RFC 9110 §9.3.1; docs/explanation/limits.rst"),
    ("cl-zero-on-head", b"HEAD / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
     400, "docs/explanation/limits.rst (any CL on HEAD)"),
    ("cl-on-delete", b"DELETE / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
     400, "docs/explanation/limits.rst"),
    # --- header field syntax (RFC 9112 §5) ---
    ("space-before-colon-te",
     b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
     400, "RFC 9112 §5.1; CVE-2019-16276 (Go), CVE-2019-16869 (Netty)"),
    ("space-before-colon-cl", b"PUT / HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc",
     400, "RFC 9112 §5.1 (MUST respond 400)"),
    ("leading-space-name",
     b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     400, "CVE-2020-7238 (Netty); RFC 9112 §5.2"),
    ("obs-fold",
     b"GET / HTTP/1.1\r\nX-Foo: a\r\n b\r\n\r\n",
     400, "RFC 9112 §5.2 (obs-fold: reject with 400)"),
    ("obs-fold-te",
     b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
     400, "RFC 9112 §5.2; CVE-2022-32215 (llhttp multi-line TE)"),
    ("no-space-after-colon", b"GET / HTTP/1.1\r\nHost:x\r\n\r\n",
     400, "docs/explanation/limits.rst (exactly ': ')"),
    ("no-colon", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, "RFC 9112 §5"),
    ("empty-name", b"GET / HTTP/1.1\r\n: x\r\n\r\n", 400, "RFC 9110 §5.1 (token)"),
    ("empty-value", b"GET / HTTP/1.1\r\nX: \r\n\r\n",
     400, "docs/explanation/limits.rst (value >= 1 byte)"),
    ("padded-value-leading", b"GET / HTTP/1.1\r\nX:  v\r\n\r\n",
     400, "RFC 9112 §5.1 OWS (a stripping proxy reads 'v')"),
    ("padded-value-trailing", b"GET / HTTP/1.1\r\nX: v \r\n\r\n",
     400, "RFC 9112 §5.1 OWS"),
    ("padded-value-tab", b"GET / HTTP/1.1\r\nX: \tv\r\n\r\n",
     400, "RFC 9112 §5.1 OWS"),
    ("padded-host", b"GET / HTTP/1.1\r\nHost: a \r\n\r\n",
     400, "RFC 9112 §5.1 OWS (host confusion)"),
    ("padded-range", b"GET / HTTP/1.1\r\nRange: bytes=0-1 \r\n\r\n",
     400, "RFC 9112 §5.1 OWS"),
    ("bare-lf-in-header", b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
     400, "RFC 9112 §2.2; CVE-2022-32214 (llhttp bare LF)"),
    ("bare-cr-in-header", b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
     400, "RFC 9112 §2.2 (bare CR: reject)"),
    ("bare-lf-everywhere", b"GET / HTTP/1.1\nHost: a\n\n",
     400, "RFC 9112 §2.2 (a recipient MAY accept LF; Degu does not)"),
    ("nul-in-value", b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
     400, "RFC 9110 §5.5 (NUL MUST be rejected)"),
    ("nul-in-name", b"GET / HTTP/1.1\r\nX\x00: a\r\n\r\n", 400, "RFC 9110 §5.1"),
    ("del-in-value", b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
     400, "RFC 9110 §5.5 (CTL)"),
    ("esc-in-value", b"GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n",
     400, "RFC 9110 §5.5 (CTL; terminal injection into logs)"),
    ("high-bit-value", b"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
     400, "RFC 9110 §5.5 obs-text; docs/explanation/limits.rst"),
    ("underscore-name", b"GET / HTTP/1.1\r\nX_Forwarded_For: a\r\n\r\n",
     400, "docs/explanation/limits.rst (names A-Za-z0-9-); header spoofing via '_' normalisation"),
    ("header-name-33", b"GET / HTTP/1.1\r\n" + b"n" * 33 + b": v\r\n\r\n",
     400, "docs/explanation/limits.rst SCRATCH_LEN=32"),
    ("range-multi-bad-part", b"GET / HTTP/1.1\r\nRange: bytes=0-1,4-3\r\n\r\n",
     400, "RFC 9110 §14.1.1 (every range-spec valid)"),
    ("range-empty-part", b"GET / HTTP/1.1\r\nRange: bytes=0-1,,3-4\r\n\r\n",
     400, "RFC 9110 §14.1.1 (1#range-spec)"),
    ("range-leading-zero", b"GET / HTTP/1.1\r\nRange: bytes=00-1\r\n\r\n",
     400, "docs/explanation/limits.rst (no leading zero, as content-length)"),
    ("range-reversed", b"GET / HTTP/1.1\r\nRange: bytes=5-4\r\n\r\n",
     400, "RFC 9110 §14.1.1"),
    ("range-with-cl",
     b"PUT / HTTP/1.1\r\nRange: bytes=0-1\r\nContent-Length: 1\r\n\r\nx",
     400, "docs/explanation/limits.rst combination rules"),
    ("content-range-in-request",
     b"PUT / HTTP/1.1\r\nContent-Range: bytes 0-0/1\r\nContent-Length: 1\r\n\r\nx",
     400, "RFC 9110 §14.4 (PUT with Content-Range: MUST 400)"),
    # --- request line (RFC 9112 §3) ---
    ("nul-in-uri", b"GET /a\x00b HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3.2; RFC 3986 §2"),
    ("space-in-uri", b"GET /a b HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3 (one SP each)"),
    ("tab-separator", b"GET\t/ HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3 (SP only)"),
    ("double-space", b"GET  / HTTP/1.1\r\n\r\n", 501,
     "RFC 9112 §3; docs/explanation/limits.rst (method is all before ' /': 'GET ' is unknown)"),
    ("crlf-in-uri", b"GET /a\rb HTTP/1.1\r\n\r\n", 400, "RFC 9112 §2.2 bare CR"),
    ("dotdot", b"GET /a/../etc/passwd HTTP/1.1\r\n\r\n",
     400, "path traversal; docs/explanation/limits.rst"),
    ("percent-in-path", b"GET /%2e%2e/x HTTP/1.1\r\n\r\n",
     400, "encoded traversal: a segment decoding to '..'; RFC 3986 §2.1"),
    ("percent-dotdot-upper", b"GET /a/%2E%2E/x HTTP/1.1\r\n\r\n",
     400, "encoded traversal, upper-case hex"),
    ("percent-dot-dot-mixed", b"GET /a/.%2e/x HTTP/1.1\r\n\r\n",
     400, "encoded traversal, half encoded (CVE-2021-41773 Apache)"),
    ("percent-nul", b"GET /a%00.txt HTTP/1.1\r\n\r\n",
     400, "NUL truncation of file names; RFC 9110 §5.5"),
    ("percent-slash", b"GET /a%2fb HTTP/1.1\r\n\r\n",
     400, "encoded '/' (CVE-2007-0450 Tomcat)"),
    ("percent-slash-upper", b"GET /..%2F..%2Fetc HTTP/1.1\r\n\r\n",
     400, "encoded '/' with traversal"),
    ("percent-crlf", b"GET /a%0d%0aSet-Cookie:%20x HTTP/1.1\r\n\r\n",
     400, "CRLF injection through a decoded path (CWE-113)"),
    ("percent-overlong-slash", b"GET /a%c0%afb HTTP/1.1\r\n\r\n",
     400, "overlong UTF-8 '/' (CVE-2000-0884 IIS); RFC 3629 §3"),
    ("percent-overlong-dot", b"GET /%c0%ae%c0%ae/x HTTP/1.1\r\n\r\n",
     400, "overlong UTF-8 '..'; RFC 3629 §3"),
    ("percent-surrogate", b"GET /%ed%a0%80 HTTP/1.1\r\n\r\n",
     400, "UTF-8 encoded surrogate; RFC 3629 §3"),
    ("percent-latin1", b"GET /caf%e9 HTTP/1.1\r\n\r\n",
     400, "not UTF-8 (RFC 3986 §2.5 asks for UTF-8)"),
    ("percent-no-hex", b"GET /a%zz HTTP/1.1\r\n\r\n", 400, "RFC 3986 §2.1"),
    ("percent-one-hex", b"GET /a%2 HTTP/1.1\r\n\r\n", 400, "RFC 3986 §2.1"),
    ("percent-at-end", b"GET /a% HTTP/1.1\r\n\r\n", 400, "RFC 3986 §2.1"),
    ("percent-bad-in-query", b"GET /a?x=%g0 HTTP/1.1\r\n\r\n",
     400, "RFC 3986 §2.1, §3.4"),
    ("backslash-in-path", b"GET /a\\b HTTP/1.1\r\n\r\n",
     400, "RFC 3986 §3.3 (not a pchar); Windows-style traversal"),
    ("quote-in-path", b'GET /a"b HTTP/1.1\r\n\r\n', 400, "RFC 3986 §3.3"),
    ("double-slash", b"GET //evil HTTP/1.1\r\n\r\n", 400, "docs/explanation/limits.rst"),
    ("fragment", b"GET /a#b HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3.2 (no fragment)"),
    ("absolute-form", b"GET http://example.com/ HTTP/1.1\r\n\r\n",
     400, "RFC 9112 §3.2.2 (absolute-form: Degu is no proxy)"),
    ("authority-form", b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
     400, "RFC 9112 §3.2.3"),
    ("asterisk-form", b"OPTIONS * HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3.2.4"),
    ("empty-line-first", b"\r\n\r\n", 400, "RFC 9112 §2.2"),
    ("short-line", b"GET / HTTP/1\r\n\r\n", 400, "docs/explanation/limits.rst (>= 14 bytes)"),
    ("http-1.0", b"GET / HTTP/1.0\r\n\r\n",
     505, "RFC 9110 §15.6.6; docs/explanation/limits.rst (only HTTP/1.1)"),
    ("http-0.9-style", b"GET / HTTP/0.9\r\n\r\n", 505, "RFC 9110 §15.6.6"),
    ("http-1.10", b"GET / HTTP/1.10\r\n\r\n",
     505, "RFC 9112 §2.3 (HTTP-version grammar)"),
    ("lowercase-version", b"GET / http/1.1\r\n\r\n",
     505, "RFC 9112 §2.3 (case-sensitive)"),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
     505, "RFC 9113 §3.4 (connection preface over HTTP/1.1)"),
    ("connect", b"CONNECT / HTTP/1.1\r\n\r\n", 501, "RFC 9110 §9.3.6 (no tunnels)"),
    ("patch-lowercase", b"patch / HTTP/1.1\r\n\r\n",
     501, "RFC 9110 §9.1 (case-sensitive)"),
    ("patch-cl-and-te",
     b"PATCH / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n",
     400, "RFC 9112 §6.1 (CL.TE smuggling through PATCH)"),
    ("options-with-body", b"OPTIONS / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
     400, "docs/explanation/limits.rst (only PUT, POST and PATCH carry a body)"),
    ("trace", b"TRACE / HTTP/1.1\r\n\r\n", 501, "RFC 9110 §9.3.8 (XST)"),
    ("lowercase-method", b"get / HTTP/1.1\r\n\r\n",
     501, "RFC 9110 §9.1 (case-sensitive)"),
    ("binary-method", b"\x16\x03\x01 / HTTP/1.1\r\n\r\n",
     501, "TLS bytes sent to plain HTTP"),
    # --- size limits (docs/explanation/limits.rst, RFC 9112 §2.3 / RFC 6585 §5) ---
    ("preamble-32769", preamble_of_size(BUF_LEN + 1),
     431, "docs/explanation/limits.rst BUF_LEN; RFC 6585 §5"),
    ("preamble-1mib", preamble_of_size(1 << 20), 431, "RFC 6585 §5 (slowloris-size)"),
    ("many-headers", many_headers(BUF_LEN + 1), 431,
     "RFC 6585 §5; header-count DoS (docs/explanation/limits.rst)"),
    ("headers-101", n_headers(MAX_INCOMING_HEADERS + 1), 431,
     "RFC 6585 §5; header-count DoS (docs/explanation/limits.rst)"),
    ("no-terminator-eof", b"GET / HTTP/1.1\r\nHost: a\r\n", 400,
     "RFC 9112 §8 (incomplete message)"),
]  # fmt: skip


def counting_app() -> tuple[list[Request], Any]:
    calls: list[Request] = []

    def app(session: Session, request: Request, api: Any) -> Any:
        calls.append(request)
        if request.body is not None:
            request.body.read()
        return (200, "OK", {}, b"ok")

    return calls, app


def test_corpus_names_are_unique() -> None:
    names = [case[0] for case in CORPUS]
    assert len(names) == len(set(names))
    assert all(case[3] for case in CORPUS)


@pytest.mark.parametrize(
    ("raw", "status"),
    [pytest.param(raw, status, id=name) for (name, raw, status, _src) in CORPUS],
)
def test_hostile_request_is_refused(live_server: Any, raw: bytes, status: int) -> None:
    calls, app = counting_app()
    live = live_server(("127.0.0.1", 0), app, timeout=5)
    # Without CRLFCRLF in the first BUF_LEN bytes the server needs to see EOF.
    half_close = b"\r\n\r\n" not in raw[:BUF_LEN]
    reply = exchange(live.address, raw, half_close=half_close)
    assert reply == error_reply(status)
    assert calls == []
    last = GOOD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    ok = exchange(live.address, last, half_close=False)
    assert ok == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert [r.uri for r in calls] == ["/ok"]


def test_hostile_request_after_good_one_on_same_connection(live_server: Any) -> None:
    """A refused request ends a keep-alive connection after earlier answers."""
    calls, app = counting_app()
    live = live_server(("127.0.0.1", 0), app, timeout=5)
    raw = GOOD + b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    reply = exchange(live.address, raw + GOOD, half_close=False)
    assert reply == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" + error_reply(400)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(preamble_of_size(BUF_LEN), id="preamble-32768"),
        pytest.param(n_headers(MAX_INCOMING_HEADERS, 300), id="headers-100-fit"),
        pytest.param(b"GET / HTTP/1.1\r\n" + b"n" * 32 + b": v\r\n\r\n",
                     id="header-name-32"),
        pytest.param(b"PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", id="cl-0"),
        pytest.param(b"GET / HTTP/1.1\r\nRange: bytes=0-9999999999999998\r\n\r\n",
                     id="range-max"),
    ],
)  # fmt: skip
def test_limit_edges_are_accepted(live_server: Any, raw: bytes) -> None:
    calls, app = counting_app()
    live = live_server(("127.0.0.1", 0), app, timeout=5)
    assert len(raw) <= BUF_LEN
    # Half-close: the server answers, then sees EOF where the next request would be.
    reply = exchange(live.address, raw, half_close=True)
    assert reply == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert len(calls) == 1


# (name, raw request, what the app sees as (method, path, a header or None))
RELAXED: list[tuple[str, bytes, tuple[str, list[str], Any]]] = [
    ("range-multi", b"GET / HTTP/1.1\r\nRange: bytes=0-1,3-4\r\n\r\n",
     ("GET", [], "bytes=0-1,3-4")),
    ("range-suffix", b"GET / HTTP/1.1\r\nRange: bytes=-5\r\n\r\n",
     ("GET", [], "bytes=-5")),
    ("range-open", b"GET / HTTP/1.1\r\nRange: bytes=5-\r\n\r\n",
     ("GET", [], "bytes=5-")),
    ("range-other-unit", b"GET / HTTP/1.1\r\nRange: items=1-2\r\n\r\n",
     ("GET", [], "items=1-2")),
    ("patch", b"PATCH / HTTP/1.1\r\n\r\n", ("PATCH", [], None)),
    ("options", b"OPTIONS / HTTP/1.1\r\n\r\n", ("OPTIONS", [], None)),
    ("options-cl-zero", b"OPTIONS / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
     ("OPTIONS", [], None)),
    ("double-percent-dotdot", b"GET /%252e%252e/x HTTP/1.1\r\n\r\n",
     ("GET", ["%2e%2e", "x"], None)),
    ("percent-space-utf8", b"GET /my%20file%20%C3%A9.txt HTTP/1.1\r\n\r\n",
     ("GET", ["my file é.txt"], None)),
    ("sec-ch-ua", b'GET / HTTP/1.1\r\nRange: bytes=0-0\r\n'
     b'Sec-Ch-Ua: "Not!A Brand";v="8"\r\n\r\n', ("GET", [], "bytes=0-0")),
    ("cookie-json", b'GET / HTTP/1.1\r\nCookie: a={"x":1}; b=$y\r\n\r\n',
     ("GET", [], None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "seen"),
    [pytest.param(raw, seen, id=name) for (name, raw, seen) in RELAXED],
)
def test_relaxed_grammar_reaches_the_app(
    live_server: Any, raw: bytes, seen: Any
) -> None:
    """What RFC 9110/9112 allow and real clients send is no longer refused."""
    calls, app = counting_app()
    live = live_server(("127.0.0.1", 0), app, timeout=5)
    reply = exchange(live.address, raw, half_close=True)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    [request] = calls
    rng = request.headers.get("range")
    assert (request.method, request.path, None if rng is None else str(rng)) == seen


def test_huge_but_legal_content_length_reaches_the_app(live_server: Any) -> None:
    """16 digits is within MAX_LENGTH: the app sees it; leaving it unread is a 500."""
    seen: list[int] = []

    def app(session: Session, request: Request, api: Any) -> Any:
        seen.append(request.body.content_length)
        request.body.read(1)
        return (413, "Content Too Large", {}, None)

    live = live_server(("127.0.0.1", 0), app, timeout=5)
    raw = b"PUT / HTTP/1.1\r\nContent-Length: 9999999999999999\r\n\r\nx"
    reply = exchange(live.address, raw, half_close=True)
    # A body not consumed is an invalid response (docs/explanation/rgi.rst).
    assert reply == (
        b"HTTP/1.1 500 Internal Server Error\r\n"
        b"connection: close\r\ncontent-length: 0\r\n\r\n"
    )
    assert seen == [9999999999999999]


# (name, chunked body bytes, source)
CHUNK_CORPUS: list[tuple[str, bytes, str]] = [
    ("size-hex-overflow", b"f" * 17 + b"\r\n",
     "CVE-2013-2028 (nginx chunk-size overflow)"),
    ("size-8-digits", b"10000000\r\n" + b"x" * 64, "docs/explanation/limits.rst (1-7 hex digits)"),
    ("size-over-max-io", b"1000001\r\n", "docs/explanation/limits.rst (<= MAX_IO_SIZE)"),
    ("size-leading-zero", b"05\r\nhello\r\n0\r\n\r\n", "docs/explanation/limits.rst (no leading zero)"),
    ("size-0x", b"0x5\r\nhello\r\n0\r\n\r\n", "RFC 9112 §7.1 (chunk-size = 1*HEXDIG)"),
    ("size-negative", b"-5\r\nhello\r\n0\r\n\r\n", "RFC 9112 §7.1"),
    ("size-leading-space", b" 5\r\nhello\r\n0\r\n\r\n", "RFC 9112 §7.1"),
    ("size-trailing-space", b"5 \r\nhello\r\n0\r\n\r\n", "RFC 9112 §7.1"),
    ("size-empty", b"\r\nhello\r\n0\r\n\r\n", "RFC 9112 §7.1"),
    ("size-bare-lf", b"5\nhello\r\n0\r\n\r\n",
     "CVE-2025-22871 (Go: bare LF in chunk-size line)"),
    ("ext-bare-lf", b"5;a=b\nhello\r\n0\r\n\r\n",
     "CVE-2025-55315 (Kestrel: LF in chunk-ext)"),
    ("ext-bare-cr", b"5;a=b\rc\r\nhello\r\n0\r\n\r\n",
     "RFC 9112 §2.2; CVE-2025-22871 advisory"),
    ("ext-empty", b"5;\r\nhello\r\n0\r\n\r\n", "docs/explanation/limits.rst (non-empty key and value)"),
    ("ext-two", b"5;a=b;c=d\r\nhello\r\n0\r\n\r\n",
     "docs/explanation/limits.rst (at most one extension)"),
    ("ext-quoted-crlf", b'5;a="\r\n"\r\nhello\r\n0\r\n\r\n',
     "RFC 9112 §7.1.1 quoted-string"),
    ("line-over-4096", b"5;a=" + b"b" * 5000 + b"\r\n", "docs/explanation/limits.rst MAX_LINE_LEN=4096"),
    ("data-bad-terminator", b"5\r\nhelloXX0\r\n\r\n",
     "RFC 9112 §7.1 (CRLF after data)"),
    ("data-bare-lf", b"5\r\nhello\n0\r\n\r\n", "RFC 9112 §2.2"),
    ("data-too-long", b"3\r\nhello\r\n0\r\n\r\n",
     "RFC 9112 §7.1 (size disagrees with data)"),
    ("data-eof", b"5\r\nhel", "RFC 9112 §8 (incomplete message)"),
    ("last-chunk-trailer", b"0\r\nX-Trailer: a\r\n\r\n",
     "docs/explanation/limits.rst (no trailers); RFC 9112 §7.1.2"),
    ("last-chunk-missing-crlf", b"0\r\n", "RFC 9112 §7.1 (last-chunk CRLF)"),
]  # fmt: skip


@pytest.mark.parametrize(
    "chunks", [pytest.param(body, id=name) for (name, body, _src) in CHUNK_CORPUS]
)
def test_bad_chunked_body_is_answered_400_then_closed(
    live_server: Any, chunks: bytes
) -> None:
    """Bad framing gets 400 and a close; a body cut short by EOF just a close."""
    errors: list[Exception] = []
    done = threading.Event()

    def app(session: Session, request: Request, api: Any) -> Any:
        if request.body is None:
            return (200, "OK", {}, b"ok")
        try:
            request.body.read()
        except ValueError as e:
            errors.append(e)
            raise
        finally:
            done.set()
        return (200, "OK", {}, b"read")

    live = live_server(("127.0.0.1", 0), app, timeout=5)
    raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    # Half-close so that a truncated body ends in EOF, not in the timeout.
    truncated = chunks in (b"5\r\nhel", b"0\r\n")
    expected = b"" if truncated else error_reply(400)
    assert exchange(live.address, raw, half_close=True) == expected
    assert done.wait(5)
    assert len(errors) == 1
    ok = exchange(live.address, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
                  half_close=False)  # fmt: skip
    assert ok == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_good_chunked_body_control(live_server: Any) -> None:
    """The control case for CHUNK_CORPUS: the same shape, well formed."""

    def app(session: Session, request: Request, api: Any) -> Any:
        return (200, "OK", {}, repr(list(request.body)).encode())

    live = live_server(("127.0.0.1", 0), app, timeout=5)
    body = b"5;a=b\r\nhello\r\nA\r\n0123456789\r\n0;end=x\r\n\r\n"
    raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    reply = exchange(live.address, raw + body, half_close=False)
    expected = repr(
        [(("a", "b"), b"hello"), (None, b"0123456789"), (("end", "x"), b"")]
    )
    assert reply.endswith(b"\r\n\r\n" + expected.encode())

"""Tests for degu.applib.ProxyApp in front of a real upstream server."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from degu.applib import ProxyApp
from degu.base import Connection, Request, Session, api
from degu.client import Client
from degu.server import Server

MiB = 1024 * 1024


@contextlib.contextmanager
def serving(app: Any, address: Any = ("127.0.0.1", 0)) -> Iterator[Server]:
    server = Server(address, app, timeout=10)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown(5)
        thread.join(10)
        assert not thread.is_alive()


def upstream_app(session: Any, request: Any, api: Any) -> Any:
    """Echo facts about the request; stream a download of /bytes/N."""
    if request.path[:1] == ["bytes"]:
        size = int(request.path[1])

        def pieces() -> Iterator[bytes]:
            left = size
            while left:
                n = min(left, MiB)
                yield b"d" * n
                left -= n

        return (200, "OK", {}, api.BodyIter(pieces(), size))
    if request.path == ["fail"]:
        return (400, "Bad Request", {}, None)  # the upstream closes after this
    digest = hashlib.sha256()
    total = 0
    if request.body is not None:
        for piece in request.body:
            if request.body.chunked:
                piece = piece[1]
            digest.update(piece)
            total += len(piece)
    text = (
        f"{request.method} {request.uri} host={request.headers.get('host')} "
        f"n={total} sha={digest.hexdigest()[:16]} req#{session.requests} "
        f"port={session.address[1]}"
    )
    return (200, "OK", {"x-upstream": "yes"}, text.encode())


@pytest.fixture
def chain() -> Iterator[tuple[Server, Server]]:
    with serving(upstream_app) as upstream:
        with serving(ProxyApp(Client(upstream.address))) as front:
            yield upstream, front


def test_ProxyApp_attributes_and_validation() -> None:
    client = Client(("127.0.0.1", 9))
    p = ProxyApp(client)
    assert (p.client, p.key) == (client, "conn")
    assert ProxyApp(client, "up").key == "up"
    with pytest.raises(TypeError):
        ProxyApp(object())
    request = Request("GET", "/", {}, None, [], [], None)
    with pytest.raises(TypeError) as e:
        p(object(), request, api)
    assert str(e.value).startswith(f"session: need a {Session!r}; got a ")
    with pytest.raises(TypeError) as e:
        p(Session(("127.0.0.1", 1)), object(), api)
    assert str(e.value).startswith(f"request: need a {Request!r}; got a ")
    session = Session(("127.0.0.1", 1))
    session.store["conn"] = "not a connection"
    with pytest.raises(TypeError) as e:
        p(session, request, api)
    assert str(e.value) == (
        f"session.store['conn']: need a {Connection!r}; got a <class 'str'>: "
        "'not a connection'"
    )


def test_ProxyApp_forwards_and_reuses_one_upstream_connection(chain: Any) -> None:
    upstream, front = chain
    with Client(front.address).connect() as conn:
        r1 = conn.get("/a/b?x=1", {})
        t1 = r1.body.read().decode()
        t2 = conn.get("/c", {}).body.read().decode()
    assert r1.status == 200 and r1.headers["x-upstream"] == "yes"
    # The upstream client's base header overrides the incoming host.
    assert t1.startswith(f"GET /a/b?x=1 host=127.0.0.1:{upstream.address[1]} n=0")
    assert "req#0" in t1 and "req#1" in t2
    assert t1.split("port=")[1] == t2.split("port=")[1]


def test_ProxyApp_streams_large_bodies_both_ways(chain: Any) -> None:
    """20 MiB each way: more than any single read Degu allows (16 MiB)."""
    _upstream, front = chain
    size = 20 * MiB
    payload = b"u" * MiB

    def upload() -> Iterator[bytes]:
        for _ in range(20):
            yield payload

    with Client(front.address).connect() as conn:
        r = conn.put("/up", {}, api.BodyIter(upload(), size))
        text = r.body.read().decode()
        expected = hashlib.sha256(payload * 20).hexdigest()[:16]
        assert f"n={size} sha={expected}" in text
        r = conn.get(f"/bytes/{size}", {})
        assert r.headers["content-length"] == size
        got = sum(len(piece) for piece in r.body)
        assert got == size


def test_ProxyApp_relays_chunks_as_they_come() -> None:
    """The proxy hands over the first chunk before the upstream has the second."""
    release = threading.Event()

    def slow(session: Any, request: Any, api: Any) -> Any:
        def chunks() -> Iterator[tuple[Any, bytes]]:
            yield (None, b"first")
            # If the proxy buffered the whole body, the client would never
            # see "first" and never set the event: fail instead of hanging.
            if not release.wait(10):
                raise TimeoutError("proxy did not stream the first chunk")
            yield (("k", "v"), b"second")
            yield (None, b"")

        return (200, "OK", {}, api.ChunkedBodyIter(chunks()))

    with (
        serving(slow) as upstream,
        serving(ProxyApp(Client(upstream.address))) as front,
    ):
        with Client(front.address).connect() as conn:
            r = conn.get("/", {})
            assert r.body.readchunk() == (None, b"first")
            release.set()
            assert r.body.readchunk() == (("k", "v"), b"second")
            assert r.body.readchunk() == (None, b"")


def test_ProxyApp_streams_chunked_upload(chain: Any) -> None:
    _upstream, front = chain
    chunks = [(None, b"abc"), (("x", "y"), b"defg"), (None, b"")]
    with Client(front.address).connect() as conn:
        r = conn.post("/", {}, api.ChunkedBodyIter(iter(chunks)))
        text = r.body.read().decode()
    assert "POST / " in text and "n=7 " in text


def test_ProxyApp_reconnects_after_the_upstream_closed(chain: Any) -> None:
    _upstream, front = chain
    with Client(front.address).connect() as conn:
        first = conn.get("/x", {}).body.read().decode()
        r = conn.get("/fail", {})
        assert r.status == 400
    # A 400 closes the downstream connection too; a new one works.
    with Client(front.address).connect() as conn:
        again = conn.get("/x", {}).body.read().decode()
    assert first.startswith("GET /x ") and again.startswith("GET /x ")


def test_ProxyApp_retries_an_idempotent_request_on_a_stale_connection(
    chain: Any,
) -> None:
    upstream, _front = chain
    proxy = ProxyApp(Client(upstream.address))
    session = Session(("127.0.0.1", 1))
    request = Request("GET", "/fail", {}, None, [], ["fail"], None)
    assert proxy(session, request, api)[0] == 400
    stale = session.store["conn"]
    # The upstream closed after its 400, but our Connection cannot know yet.
    request = Request("GET", "/ok", {}, None, [], ["ok"], None)
    response = proxy(session, request, api)
    assert response[0] == 200 and response[3].read().startswith(b"GET /ok ")
    assert session.store["conn"] is not stale
    session.store["conn"].close()


def test_ProxyApp_answers_502_when_the_upstream_refuses(tmp_path: Any) -> None:
    """An unreachable upstream is a gateway error, and the body is not awaited."""
    missing = str(tmp_path / "nobody-listens.sock")
    with serving(ProxyApp(Client(missing))) as proxy:
        with Client(proxy.address).connect() as conn:
            response = conn.put("/x", {}, b"never read")
            assert response[:3] == (
                502,
                "Bad Gateway",
                {"content-length": 0, "connection": "close"},
            )
            assert response.body.read() == b""
            assert conn.closed


def test_ProxyApp_answers_504_when_the_upstream_times_out() -> None:
    """An upstream that accepts but never answers is a gateway timeout."""

    def slow(session: Any, request: Any, api: Any) -> Any:
        release.wait(10)
        return (200, "OK", {}, b"too late")

    release = threading.Event()
    with serving(slow) as upstream:
        client = Client(upstream.address, timeout=0.3)
        try:
            with serving(ProxyApp(client)) as proxy:
                with Client(proxy.address).connect() as conn:
                    response = conn.get("/", {})
                    assert response[:2] == (504, "Gateway Timeout")
                    assert response.headers["connection"] == "close"
        finally:
            release.set()


def test_ProxyApp_forwards_encoded_paths_PATCH_and_OPTIONS(chain: Any) -> None:
    """Decoded components are encoded again on the way upstream."""
    from degu.base import ChunkedBodyIter

    upstream, front = chain
    with Client(front.address).connect() as conn:
        text = conn.get("/my%20file%20%C3%A9?q=%20", {}).body.read().decode()
        assert text.startswith("GET /my%20file%20%C3%A9?q=%20 ")
        text = conn.options("/a", {}).body.read().decode()
        assert text.startswith("OPTIONS /a ") and " n=0 " in text
        body = ChunkedBodyIter([(None, b"abc"), (None, b"")])
        text = conn.patch("/a", {}, body).body.read().decode()
        assert text.startswith("PATCH /a ") and " n=3 " in text


@pytest.mark.parametrize(("method", "retried"), [("PATCH", False), ("OPTIONS", True)])
def test_ProxyApp_retries_OPTIONS_but_not_PATCH_on_a_stale_connection(
    chain: Any, method: str, retried: bool
) -> None:
    """PATCH is not idempotent (RFC 5789 §2): it is never sent twice."""
    upstream, _front = chain
    proxy = ProxyApp(Client(upstream.address))
    session = Session(("127.0.0.1", 1))
    request = Request("GET", "/fail", {}, None, [], ["fail"], None)
    assert proxy(session, request, api)[0] == 400
    request = Request(method, "/ok", {}, None, [], ["ok"], None)
    response = proxy(session, request, api)
    if retried:
        assert response[0] == 200 and response[3].read().startswith(b"OPTIONS /ok ")
        session.store["conn"].close()
    else:
        assert response[0] == 502

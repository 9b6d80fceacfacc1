"""Tests for examples/reverse_proxy.py: a proxy in front of a real upstream."""

from __future__ import annotations

import json
import socket
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import reverse_proxy  # noqa: E402
from reverse_proxy import build_proxy_app, pieces, serve, upstream_app  # noqa: E402

from degu.base import BodyIter, ChunkedBodyIter  # noqa: E402
from degu.client import Client  # noqa: E402


@pytest.fixture
def proxy() -> Iterator[tuple[Any, Any]]:
    """Start upstream and proxy; yield (proxy address, upstream address)."""
    upstream, upstream_thread = serve(upstream_app)
    proxy, proxy_thread = serve(build_proxy_app(upstream.address))
    try:
        yield proxy.address, upstream.address
    finally:
        proxy.shutdown()
        upstream.shutdown()
        proxy_thread.join(10)
        upstream_thread.join(10)


def seen(response: Any) -> Any:
    assert response.status == 200
    return json.loads(response.body.read())


def test_main_runs_through_the_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    reverse_proxy.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "health: b'proxy is up\\n'"
    assert "'uri': '/hello?lang=en'" in out[1]
    assert "'body_size': 4194304" in out[2]
    assert out[3] == "downloaded: 4194304 bytes"


def test_prefix_is_stripped_and_host_is_the_upstreams(proxy: Any) -> None:
    proxy_address, upstream_address = proxy
    with Client(proxy_address, host="public.example").connect() as conn:
        got = seen(conn.get("/api/a/b?x=1", {}))
    assert got["uri"] == "/a/b?x=1"
    # ProxyApp's Client sends its own base headers, host included.
    assert got["host"] == f"127.0.0.1:{upstream_address[1]}"


def test_chunked_upload_goes_through(proxy: Any) -> None:
    chunks = [(None, b"abc"), (("part", "2"), b"defg"), (None, b"")]
    with Client(proxy[0]).connect() as conn:
        got = seen(conn.post("/api/up", {}, ChunkedBodyIter(chunks)))
    assert (got["method"], got["body_size"]) == ("POST", 7)


def test_one_upstream_connection_per_downstream_connection(proxy: Any) -> None:
    for _ in range(2):
        with Client(proxy[0]).connect() as conn:
            counts = [
                seen(conn.get("/api/again", {}))["earlier_requests"] for _ in "abc"
            ]
        # The same upstream connection served all three; a new downstream
        # connection gets a new upstream connection.
        assert counts == [0, 1, 2]


def test_32_MiB_each_way_without_holding_it(proxy: Any) -> None:
    total = 32 * 1024 * 1024
    tracemalloc.start()
    try:
        with Client(proxy[0]).connect() as conn:
            got = seen(conn.put("/api/up", {}, BodyIter(pieces(total), total)))
            assert got["body_size"] == total
            r = conn.get("/api/blob", {})
            assert sum(len(data) for data in r.body) == reverse_proxy.BLOB_SIZE
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Both servers and the client live in this process: a copy of the upload
    # anywhere would show up here.  Pieces are at most 1 MiB.
    assert peak < total // 4


def test_upstream_down_gives_502(proxy: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()  # bound, not listening: connect is refused
        server, thread = serve(build_proxy_app(nobody))
        try:
            with Client(server.address).connect() as conn:
                r = conn.get("/api/x", {})
                assert (r.status, r.headers["connection"]) == (502, "close")
        finally:
            server.shutdown()
            thread.join(10)

"""A reverse proxy in front of a real upstream Degu server, with ProxyApp.

Needs the degu-core distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core`` (docs/installation.rst).

Two servers run on free loopback ports:

* the upstream, an application that reports what it received and can send
  back a large body, and
* the proxy, a Router that answers /health itself and forwards everything
  under /api/ to the upstream with degu.applib.ProxyApp.

Running this file starts both, sends a few requests through the proxy
(including a 4 MiB upload and download that are streamed, not held whole),
prints what the upstream saw, and stops both.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

try:
    from degu.applib import ProxyApp, Router
    from degu.base import BodyIter
    from degu.client import Client
    from degu.server import Server
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-core ({e}): install it with "
        "python3 -m pip install ./packages/degu-core (docs/installation.rst)"
    ) from None

#: Size of the body /api/blob sends, in bytes.
BLOB_SIZE = 4 * 1024 * 1024
PIECE = 65536


# --- upstream -----------------------------------------------------------------
def pieces(total: int) -> Iterator[bytes]:
    """Generate *total* bytes in PIECE-sized pieces (never all at once)."""
    for start in range(0, total, PIECE):
        yield b"x" * min(PIECE, total - start)


def upstream_app(session: Any, request: Any, api: Any) -> Any:
    """Report what arrived; /blob answers with BLOB_SIZE streamed bytes."""
    if request.path == ["blob"]:
        return (200, "OK", {}, api.BodyIter(pieces(BLOB_SIZE), BLOB_SIZE))
    digest = hashlib.sha256()
    size = 0
    body = request.body
    if body is not None:
        # Iterating reads the body piece by piece: a Body yields bytes (at
        # most 1 MiB each), a ChunkedBody yields (extension, data) pairs.
        for item in body:
            data = item[1] if body.chunked else item
            digest.update(data)
            size += len(data)
    seen = {
        "method": request.method,
        "uri": request.uri,
        "host": request.headers.get("host"),
        "body_size": size,
        "body_sha256": digest.hexdigest()[:16],
        # Requests served before this one on the same upstream connection.
        "earlier_requests": session.requests,
    }
    return (200, "OK", {"content-type": "application/json"}, json.dumps(seen).encode())


# --- end of upstream ----------------------------------------------------------


# --- proxy --------------------------------------------------------------------
def health(session: Any, request: Any, api: Any) -> Any:
    return (200, "OK", {}, b"proxy is up\n")


def build_proxy_app(upstream_address: Any) -> Router:
    """/health is answered here; /api/... goes to the upstream as /...."""
    upstream = Client(upstream_address, timeout=30)
    return Router({"health": health, "api": ProxyApp(upstream)})


# --- end of proxy -------------------------------------------------------------


def serve(app: Any) -> tuple[Server, threading.Thread]:
    """Start *app* on a free loopback port in a thread."""
    server = Server(("127.0.0.1", 0), app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def main() -> None:
    """Run upstream and proxy, send requests through the proxy, stop both."""
    upstream, upstream_thread = serve(upstream_app)
    proxy, proxy_thread = serve(build_proxy_app(upstream.address))
    try:
        with Client(proxy.address).connect() as conn:
            print("health:", conn.get("/health", {}).body.read())
            r = conn.get("/api/hello?lang=en", {})
            print("upstream saw:", json.loads(r.body.read()))
            upload = BodyIter(pieces(BLOB_SIZE), BLOB_SIZE)
            r = conn.put("/api/upload", {}, upload)
            print("upstream saw:", json.loads(r.body.read()))
            r = conn.get("/api/blob", {})
            received = sum(len(data) for data in r.body)
            print("downloaded:", received, "bytes")
    finally:
        proxy.shutdown()
        upstream.shutdown()
        proxy_thread.join(10)
        upstream_thread.join(10)


if __name__ == "__main__":
    main()

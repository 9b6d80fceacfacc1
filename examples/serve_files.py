"""Serve static files with degu.applib.FilesApp, including Range requests.

Needs the degu-core distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core`` (docs/installation.rst).

Running this file writes a few files into a temporary directory, serves the
directory under /static/ next to a small API on a free loopback port, fetches
whole files, parts of a file and a few refusals, prints what came back, and
cleans up.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any

try:
    from degu.applib import FilesApp, Router
    from degu.client import Client
    from degu.server import Server
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-core ({e}): install it with "
        "python3 -m pip install ./packages/degu-core (docs/installation.rst)"
    ) from None


def make_site(root: str) -> None:
    """Write the files the example serves below *root*."""
    os.mkdir(os.path.join(root, "docs"))
    files = {
        "index.html": b"<h1>Hello</h1>\n",
        "data.bin": bytes(range(256)) * 4,  # 1024 bytes
        "docs/index.html": b"<p>docs</p>\n",
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)


# --- app ----------------------------------------------------------------------
def build_app(root: str) -> Router:
    """FilesApp for *root* under /static/, next to a tiny API."""

    def version(session: Any, request: Any, api: Any) -> Any:
        return (200, "OK", {"content-type": "text/plain"}, b"1.0\n")

    # FilesApp needs an absolute, normalized path (os.path.abspath gives one).
    return Router({"static": FilesApp(os.path.abspath(root)), "version": version})


# --- end of app ---------------------------------------------------------------


def show(conn: Any, method: str, uri: str, **kw: Any) -> None:
    """Make one request and print the status, interesting headers and body size."""
    if "start" in kw:
        r = conn.get_range(uri, {}, kw["start"], kw["stop"])
    else:
        r = conn.request(method, uri, {}, None)
    data = b"" if r.body is None else r.body.read()
    wanted = ("content-type", "content-range", "location")
    extra = " ".join(f"{k}={r.headers[k]}" for k in wanted if k in r.headers)
    length = r.headers.get("content-length")
    print(f"{method} {uri} -> {r.status} {r.reason} length={length} {extra}".rstrip())
    if data and len(data) <= 16:
        print(f"    {data!r}")


def main() -> None:
    """Serve a temporary site on 127.0.0.1 and show a few requests."""
    with tempfile.TemporaryDirectory() as root:
        make_site(root)
        server = Server(("127.0.0.1", 0), build_app(root))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with Client(server.address).connect() as conn:
                show(conn, "GET", "/static/")
                show(conn, "HEAD", "/static/data.bin")
                show(conn, "GET", "/static/data.bin", start=0, stop=8)
                show(conn, "GET", "/static/data.bin", start=1020, stop=1024)
                show(conn, "GET", "/static/docs")
                show(conn, "GET", "/static/missing.txt")
                show(conn, "GET", "/static/data.bin", start=1020, stop=2000)
                show(conn, "GET", "/static/data.bin", start=1024, stop=1025)
        finally:
            server.shutdown()
            thread.join(10)


if __name__ == "__main__":
    main()

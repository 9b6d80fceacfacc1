"""Route requests with degu.applib.Router, and filter methods.

Needs the degu-core distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core`` (docs/installation.rst).

The routing table (nested dicts of path components):

    /                  home        GET, HEAD
    /api/v1/status     status      GET
    /api/v1/echo       echo        POST (answers with the request body)
    /api/v1/users/...  users       GET (sees the rest of the path)
    /static/           home        the trailing slash gives the key ''

Anything else gets 410 Gone from the Router, and a method a handler does not
allow gets 405 Method Not Allowed from its MethodFilter.  Running this file
serves the table on a free loopback port, asks for a few URIs and prints the
answers.
"""

from __future__ import annotations

import threading
from typing import Any

try:
    from degu.applib import AllowedMethods, MethodFilter, Router
    from degu.client import Client
    from degu.server import Server
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-core ({e}): install it with "
        "python3 -m pip install ./packages/degu-core (docs/installation.rst)"
    ) from None


def text(status: int, reason: str, message: str) -> tuple[Any, ...]:
    """A plain-text response (bytes bodies get their content-length for free)."""
    return (status, reason, {"content-type": "text/plain"}, message.encode())


# --- handlers -----------------------------------------------------------------
@AllowedMethods("GET", "HEAD")
def home(session: Any, request: Any, api: Any) -> Any:
    if request.method == "HEAD":
        return (200, "OK", {"content-length": 5, "content-type": "text/plain"}, None)
    return text(200, "OK", "home\n")


def status(session: Any, request: Any, api: Any) -> Any:
    return text(200, "OK", "ok\n")


def echo(session: Any, request: Any, api: Any) -> Any:
    data = b"" if request.body is None else request.body.read()
    return (200, "OK", {"content-type": "application/octet-stream"}, data)


@AllowedMethods("GET")
def users(session: Any, request: Any, api: Any) -> Any:
    # The Router moved "api", "v1", "users" into request.mount; request.path
    # holds whatever followed, unrouted.
    mount = "/".join(request.mount)
    rest = "/".join(request.path)
    return text(200, "OK", f"mount={mount} path={rest} query={request.query}\n")


# --- end of handlers ----------------------------------------------------------


# --- routing table ------------------------------------------------------------
def build_app() -> Router:
    """The whole application: one Router over nested dicts."""
    return Router(
        {
            None: home,  # "/": no component left
            "api": {
                "v1": {
                    "status": MethodFilter(status, AllowedMethods("GET")),
                    "echo": AllowedMethods("POST")(echo),
                    "users": users,
                },
            },
            "static": {"": home},  # "/static/" only: '' is the trailing slash
        }
    )


# --- end of routing table -----------------------------------------------------

URIS = [
    ("GET", "/"),
    ("GET", "/api/v1/status"),
    ("DELETE", "/api/v1/status"),
    ("POST", "/api/v1/echo"),
    ("GET", "/api/v1/users/ada/keys?limit=2"),
    ("GET", "/static/"),
    ("GET", "/static"),
    ("GET", "/nowhere"),
]


def main() -> None:
    """Serve build_app() on 127.0.0.1, print the answer to each of URIS, stop."""
    server = Server(("127.0.0.1", 0), build_app())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = Client(server.address)
    try:
        for method, uri in URIS:
            body = b"hello\n" if method == "POST" else None
            # A new connection each time: the server closes the connection
            # after a 405 or 410, as after most error statuses.
            with client.connect() as conn:
                r = conn.request(method, uri, {}, body)
                data = b"" if r.body is None else r.body.read()
            print(f"{method} {uri} -> {r.status} {r.reason} {data!r}")
    finally:
        server.shutdown()
        thread.join(10)


if __name__ == "__main__":
    main()

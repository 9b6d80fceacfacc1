"""A tiny RGI app, runnable on its own or with ``python -m degu.server --app``.

Needs the degu-core distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core`` (docs/installation.rst).

Serve it from this directory with::

    python3 -m degu.server --app hello_app:app

Running this file directly starts the app on a free loopback port, asks it
two questions with ``degu.client``, prints the answers and stops.
"""

from __future__ import annotations

import threading
from typing import Any

try:
    from degu.applib import AllowedMethods
    from degu.client import Client
    from degu.server import Server
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-core ({e}): install it with "
        "python3 -m pip install ./packages/degu-core (docs/installation.rst)"
    ) from None


@AllowedMethods("GET", "HEAD")
def app(session: Any, request: Any, api: Any) -> Any:
    """Greet the world at ``/``, or the name in ``/NAME``."""
    if request.path == []:
        name = "world"
    elif len(request.path) == 1 and request.path[0] != "":
        name = request.path[0]
    else:
        return (404, "Not Found", {}, None)
    body = f"Hello, {name}!\n".encode()
    headers = {"content-length": len(body), "content-type": "text/plain"}
    if request.method == "HEAD":
        return (200, "OK", headers, None)
    return (200, "OK", headers, body)


def main() -> None:
    """Start the app on 127.0.0.1, make two requests, and stop the server."""
    server = Server(("127.0.0.1", 0), app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(server.address).connect() as conn:
            for uri in ("/", "/Degu"):
                response = conn.get(uri, {})
                print(uri, response.status, response.body.read().decode(), end="")
    finally:
        server.shutdown()
        thread.join(10)


if __name__ == "__main__":
    main()

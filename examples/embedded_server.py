"""Embed a Degu server in a program: start it, talk to it, shut it down.

Needs the degu-embed distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core ./packages/degu-embed`` (docs/installation.rst).

The server runs in its own process (``degu.EmbeddedServer``); this program
talks to it with ``degu.client`` over the loopback interface and then
terminates it.  Works under every multiprocessing start method:

    python examples/embedded_server.py
    python examples/embedded_server.py --start-method spawn
"""

from __future__ import annotations

import argparse
import multiprocessing
from typing import Any

try:
    from degu import EmbeddedServer, IPv4_LOOPBACK
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-embed ({e}): install it with "
        "python3 -m pip install ./packages/degu-core ./packages/degu-embed (docs/installation.rst)"
    ) from None


def build_app(greeting: str) -> Any:
    """Build the RGI app, in the server process.

    Defined at module level so that spawn and forkserver can pickle it by
    name; the closure it returns never crosses the process boundary.
    """

    def app(session: Any, request: Any, api: Any) -> Any:
        if request.method != "GET":
            return (405, "Method Not Allowed", {}, None)
        name = "/".join(request.path) or "world"
        body = f"{greeting}, {name}!\n".encode()
        return (200, "OK", {"content-type": "text/plain"}, body)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--start-method",
        choices=multiprocessing.get_all_start_methods(),
        help="multiprocessing start method (default: the platform's)",
    )
    args = parser.parse_args(argv)
    if args.start_method:
        multiprocessing.set_start_method(args.start_method)

    from degu.client import Client  # the parent needs the client only

    with EmbeddedServer(IPv4_LOOPBACK, build_app, "Hello", timeout=5) as server:
        print(f"serving on {server.address} (pid {server.process.pid})")
        with Client(server.address).connect() as conn:
            for uri in ("/", "/Degu"):
                response = conn.get(uri, {})
                print(uri, response.status, response.body.read().decode().strip())
            response = conn.delete("/", {})
            print("DELETE /", response.status, response.reason)
    # Leaving the with block terminated the server process.
    print(f"server exit code {server.process.exitcode}")


if __name__ == "__main__":
    main()

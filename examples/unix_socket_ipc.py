"""Fast local IPC over a Unix socket, with access control by peer credentials.

Needs the degu-core distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core`` (docs/installation.rst).

The same small service is served twice:

* on a socket file in a private temporary directory (a ``str`` address), and
* on an abstract name chosen by the kernel (``b''``), which lives only in
  the kernel's namespace: no file, nothing to clean up.

``on_connect`` admits only peers whose user id is in an allow-list, using
``session.credentials`` (the peer's ``(pid, uid, gid)``, which the kernel
reports for Unix sockets).  Running this file serves both, calls each with
degu.client, shows that a peer outside the allow-list is refused, and stops.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Any

try:
    from degu.client import Client
    from degu.server import Server
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-core ({e}): install it with "
        "python3 -m pip install ./packages/degu-core (docs/installation.rst)"
    ) from None


# --- app ----------------------------------------------------------------------
class WhoAmI:
    """Tell a local peer who the kernel says it is; admit listed users only."""

    def __init__(self, allowed_uids: set[int]) -> None:
        self.allowed_uids = allowed_uids

    def on_connect(self, session: Any, sock: Any) -> bool:
        # Called once per connection, before any request is read.  On a Unix
        # socket the server fills in session.credentials from SO_PEERCRED:
        # the kernel vouches for it, the peer cannot forge it.
        if session.credentials is None:
            return False  # not a Unix socket: refuse
        _pid, uid, _gid = session.credentials
        return uid in self.allowed_uids

    def __call__(self, session: Any, request: Any, api: Any) -> Any:
        pid, uid, gid = session.credentials
        answer = {"pid": pid, "uid": uid, "gid": gid, "path": request.path}
        return (
            200,
            "OK",
            {"content-type": "application/json"},
            json.dumps(answer).encode(),
        )


# --- end of app ---------------------------------------------------------------


def serve(address: Any, app: Any) -> tuple[Server, threading.Thread]:
    server = Server(address, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def ask(address: Any) -> Any:
    """GET /whoami from the server at *address*; return the JSON answer."""
    with Client(address).connect() as conn:
        return json.loads(conn.get("/whoami", {}).body.read())


def main() -> None:
    """Serve on a socket file and an abstract name, call both, stop."""
    me = os.getuid()
    app = WhoAmI({me})
    with tempfile.TemporaryDirectory() as tmp:
        # --- addresses ----------------------------------------------------------
        path = os.path.join(tmp, "service.sock")  # absolute: Degu requires it
        file_server, t1 = serve(path, app)
        abstract_server, t2 = serve(b"", app)  # the kernel picks a free name
        # --- end of addresses ---------------------------------------------------
        try:
            print("socket file:", ask(file_server.address))
            print("abstract name is bytes:", type(abstract_server.address).__name__)
            answer = ask(abstract_server.address)
            print(
                "same process:",
                answer["pid"] == os.getpid(),
                "same uid:",
                answer["uid"] == me,
            )
            # A service that admits nobody: the connection is closed before
            # any request is read, so the client sees it closed.
            closed, t3 = serve(b"", WhoAmI(set()))
            try:
                ask(closed.address)
            except ConnectionError:
                # EmptyPreambleError, or a reset when the request was sent
                # before the server closed: both are ConnectionErrors.
                print("refused: the server closed the connection")
            finally:
                closed.shutdown()
                t3.join(10)
        finally:
            file_server.shutdown()
            abstract_server.shutdown()
            t1.join(10)
            t2.join(10)
        print("socket file removed:", not os.path.exists(path))


if __name__ == "__main__":
    main()

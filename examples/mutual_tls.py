"""Two devices, mutual TLS: each side proves who it is with a certificate.

Needs the degu-core distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core`` (docs/installation.rst).

Device A runs an SSLServer; device B connects with an SSLClient. Each has its
own key, named by the hash of its public key (its *id*), and a certificate
whose common name is that id. The TLS handshake checks both certificates
against the CAs each side trusts; then each side checks that the peer is the
very device it expects, by id, not by host name.

Everything runs on the loopback interface and the program exits by itself.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

try:
    from degu.client import SSLClient
    from degu.misc import TempPKI
    from degu.server import SSLServer
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-core ({e}): install it with "
        "python3 -m pip install ./packages/degu-core (docs/installation.rst)"
    ) from None


def peer_id(sock: ssl.SSLSocket) -> str | None:
    """Return the common name of the peer's certificate: its key's id."""
    cert = sock.getpeercert()
    if not cert:
        return None
    for rdn in cert["subject"]:
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class GreetingApp:
    """An RGI app that serves only the devices it knows."""

    def __init__(self, allowed_ids: set[str]) -> None:
        self.allowed_ids = allowed_ids

    def on_connect(self, session: Any, sock: ssl.SSLSocket) -> bool:
        # The handshake already proved the client holds the key of a
        # certificate our client CA signed; now decide whether this
        # particular device may talk to us. Keys added by on_connect start
        # with '_' (docs/reference/server.rst).
        session.store["_peer_id"] = peer_id(sock)
        return session.store["_peer_id"] in self.allowed_ids

    def __call__(self, session: Any, request: Any, api: Any) -> tuple[Any, ...]:
        body = f"hello, device {session.store['_peer_id'][:8]}\n".encode()
        return (200, "OK", {"content-type": "text/plain"}, body)


def main() -> None:
    # One TempPKI plays both devices' parts: a server CA and certificate for
    # device A, a client CA and certificate for device B.
    pki = TempPKI()
    app = GreetingApp({pki.client_id})
    server = SSLServer(pki.server_sslconfig, ("127.0.0.1", 0), app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # Device B also checks that it reached device A, by id.
        def is_device_a(conn: Any) -> bool:
            return peer_id(conn.sock) == pki.server_id

        client = SSLClient(pki.client_sslconfig, server.address, on_connect=is_device_a)
        conn = client.connect()
        try:
            response = conn.get("/", {})
            print(response.status, response.reason)
            print(response.body.read().decode(), end="")
            print("TLS version:", conn.sock.version())
        finally:
            conn.close()
    finally:
        server.shutdown()
        thread.join(10)


if __name__ == "__main__":
    main()

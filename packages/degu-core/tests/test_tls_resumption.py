"""SSLClient resumes TLS sessions; identities survive it (docs/reference/tls.rst).

Real SSLServer/SSLClient pairs on loopback.  A resumed TLS 1.3 handshake
skips the certificates (RFC 8446 section 2.2), so these tests pin that both
sides still see the peer's certificate, that a ticket is offered only once
(RFC 8446 appendix C.4), and that a ticket a server cannot use falls back to
a full handshake rather than failing.
"""

from __future__ import annotations

import ssl

import pytest

from degu._sslctx import (
    MAX_SESSIONS,
    SERVER_TICKETS,
    ResumableSSLSocket,
    TLSSessions,
    build_client_sslctx,
    build_server_sslctx,
)
from degu._temppki import TempPKI
from degu.client import SSLClient


@pytest.fixture(scope="module")
def pki():
    return TempPKI()


def common_name(cert):
    return dict(rdn[0] for rdn in cert["subject"])["commonName"]


class PeerApp:
    """Records, per connection, whether it resumed and whom it saw."""

    def __init__(self):
        self.seen = []

    def on_connect(self, session, sock):
        self.seen.append((sock.session_reused, common_name(sock.getpeercert())))
        return True

    def __call__(self, session, request, api):
        return (200, "OK", {}, b"hello")


@pytest.fixture
def serve(pki, live_sslserver):
    """``serve(app=None)``: a running SSLServer with the test PKI."""

    def start(app=None):
        return live_sslserver(
            pki.server_sslconfig, ("127.0.0.1", 0), app or PeerApp()
        ).server

    return start


def get(client):
    """One connection, one GET; returns (client saw resumption, server CN)."""
    with client.connect() as conn:
        response = conn.get("/", {})
        assert response.body.read() == b"hello"
        return conn.sock.session_reused, common_name(conn.sock.getpeercert())


def test_build_server_sslctx_sends_one_ticket(pki):
    assert SERVER_TICKETS == 1
    assert build_server_sslctx(pki.server_sslconfig).num_tickets == 1


def test_build_client_sslctx_makes_resumable_sockets(pki):
    sslctx = build_client_sslctx(pki.client_sslconfig)
    assert sslctx.sslsocket_class is ResumableSSLSocket
    assert issubclass(ResumableSSLSocket, ssl.SSLSocket)


def test_second_connection_resumes_and_both_sides_still_see_certificates(pki, serve):
    app = PeerApp()
    server = serve(app)
    client = SSLClient(pki.client_sslconfig, server.address)
    assert len(client.tls_sessions) == 0
    assert get(client) == (False, pki.server_id)
    assert len(client.tls_sessions) == 1
    assert get(client) == (True, pki.server_id)
    assert get(client) == (True, pki.server_id)
    # The server's on_connect gets the client's identity either way.
    assert app.seen == [
        (False, pki.client_id),
        (True, pki.client_id),
        (True, pki.client_id),
    ]


def test_a_session_is_offered_on_one_connection_only(pki, serve):
    server = serve()
    client = SSLClient(pki.client_sslconfig, server.address)
    get(client)
    assert len(client.tls_sessions) == 1
    first = client.connect()
    second = client.connect()  # nothing left to offer: full handshake
    try:
        assert len(client.tls_sessions) == 0
        assert first.sock.session_reused is True
        assert second.sock.session_reused is False
        for conn in (first, second):
            assert conn.get("/", {}).body.read() == b"hello"
    finally:
        first.close()
        second.close()
    assert len(client.tls_sessions) == 2


def test_sessions_kept_are_bounded(pki, serve):
    server = serve()
    client = SSLClient(pki.client_sslconfig, server.address)
    conns = [client.connect() for _ in range(MAX_SESSIONS + 3)]
    for conn in conns:
        conn.get("/", {}).body.read()
        conn.close()
    assert len(client.tls_sessions) == MAX_SESSIONS


def test_connection_closed_before_any_ticket_keeps_nothing(pki, serve):
    server = serve()
    client = SSLClient(pki.client_sslconfig, server.address)
    # Under TLS 1.3 the ticket comes after the handshake: a connection
    # closed unread has none to keep.
    client.connect().close()
    assert len(client.tls_sessions) == 0
    assert get(client)[0] is False


def test_ticket_from_another_server_falls_back_to_a_full_handshake(pki, serve):
    server = serve()
    client = SSLClient(pki.client_sslconfig, server.address)
    get(client)
    assert len(client.tls_sessions) == 1
    # Same PKI, same client object, new server (new ticket keys).
    server = serve()
    client.address = server.address
    assert get(client) == (False, pki.server_id)
    assert get(client) == (True, pki.server_id)


def test_clear_forgets_the_sessions(pki, serve):
    server = serve()
    client = SSLClient(pki.client_sslconfig, server.address)
    get(client)
    client.tls_sessions.clear()
    assert len(client.tls_sessions) == 0
    assert get(client)[0] is False


def test_client_with_its_own_context_handshakes_in_full(pki, serve):
    sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    sslctx.options |= ssl.OP_NO_COMPRESSION
    sslctx.minimum_version = ssl.TLSVersion.TLSv1_2
    sslctx.load_verify_locations(pki.client_sslconfig["ca_file"])
    sslctx.load_cert_chain(
        pki.client_sslconfig["cert_file"], pki.client_sslconfig["key_file"]
    )
    sslctx.check_hostname = False
    server = serve()
    client = SSLClient(sslctx, server.address)
    assert get(client)[0] is False
    assert get(client)[0] is False
    assert len(client.tls_sessions) == 0
    assert sslctx.sslsocket_class is ssl.SSLSocket  # left as it was


def test_refused_client_keeps_no_session(pki, serve):
    other = TempPKI()
    config = other.client_sslconfig
    config["ca_file"] = pki.client_sslconfig["ca_file"]  # trusts the server
    server = serve()
    client = SSLClient(config, server.address)
    for _ in range(2):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            get(client)
        assert len(client.tls_sessions) == 0


def test_TLSSessions_keep_ignores_sessions_without_a_ticket():
    sessions = TLSSessions()
    sessions.keep(None)
    assert len(sessions) == 0

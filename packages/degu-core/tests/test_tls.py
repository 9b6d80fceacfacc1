"""Live TLS: SSLServer and SSLClient against each other and independent peers.

Peers: Degu's own SSLClient, Python's ssl + http.client, ``openssl s_client``
and ``curl``, over 127.0.0.1, ::1, Unix socket paths and abstract names.
Refused cases: no client certificate, a certificate from another CA, TLS 1.1,
TLS 1.2 without ECDHE+AEAD, a wrong host name with hostname checking on.
Every server runs in a thread of this process and is shut down by its test.
"""

import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from degu._sslctx import build_client_sslctx, build_server_sslctx
from degu._temppki import TempPKI
from degu.client import SSLClient
from degu.server import SSLServer

TIMEOUT = 15  # bound for every subprocess, socket and join
GET_CLOSE = b"GET /peer HTTP/1.1\r\nconnection: close\r\n\r\n"

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")


def _has_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


FAMILIES = ["ipv4", "ipv6", "unix", "abstract"]
HAS_IPV6 = _has_ipv6()


@pytest.fixture(scope="module")
def pki():
    return TempPKI()


@pytest.fixture(scope="module")
def rsa_pki():
    """The same PKI with RSA keys, TempPKI's other key type."""
    return TempPKI(bits=2048)


@pytest.fixture(scope="module")
def other_pki():
    """An unrelated PKI: its certificates mean nothing to ``pki``'s CAs."""
    return TempPKI()


def make_address(family, tmp_path):
    if family == "ipv4":
        return ("127.0.0.1", 0)
    if family == "ipv6":
        if not HAS_IPV6:
            pytest.skip("no IPv6 loopback")
        return ("::1", 0, 0, 0)
    if family == "unix":
        return str(tmp_path / "tls.sock")
    return b""


def peer_cn(sock):
    cert = sock.getpeercert()
    if not cert:
        return None
    return dict(rdn[0] for rdn in cert["subject"])["commonName"]


class PeerApp:
    """Answers every request with what the TLS layer told on_connect."""

    def __init__(self):
        self.sockets = []

    def on_connect(self, session, sock):
        self.sockets.append(sock)
        session.store["_peer_id"] = peer_cn(sock)
        session.store["_version"] = sock.version()
        session.store["_cipher"] = sock.cipher()[0]
        return True

    def __call__(self, session, request, api):
        if request.body is not None:
            request.body.read()
        info = {
            "peer_id": session.store["_peer_id"],
            "version": session.store["_version"],
            "cipher": session.store["_cipher"],
            "requests": session.requests,
        }
        body = json.dumps(info).encode()
        return (200, "OK", {"content-type": "application/json"}, body)


@contextlib.contextmanager
def serving(sslctx, address, app=None, **options):
    """Run an SSLServer in a thread; shut it down and join it on exit."""
    server = SSLServer(sslctx, address, app or PeerApp(), **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown(1)
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def get_json(conn, uri="/peer"):
    response = conn.get(uri, {})
    assert (response.status, response.reason) == (200, "OK")
    return json.loads(response.body.read())


def run(*cmd, stdin=b""):
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=TIMEOUT)


def s_client_target(server):
    if isinstance(server.address, str):
        return ["-unix", server.address]
    return ["-connect", f"127.0.0.1:{server.address[1]}"]


def s_client(server, *args):
    """``openssl s_client`` sending one GET with connection: close."""
    return run(
        "openssl", "s_client", *s_client_target(server), "-ign_eof", *args,
        stdin=GET_CLOSE,
    )  # fmt: skip


def s_client_auth(pki, *, cert=True):
    args = ["-CAfile", pki.path(pki.server_ca_id, "ca"), "-verify_return_error"]
    if cert:
        args += [
            "-cert", pki.path(pki.client_id, "cert"),
            "-key", pki.path(pki.client_id, "key"),
        ]  # fmt: skip
    return args


def http_body(stdout):
    """The JSON body after the response preamble in a peer's output."""
    head, sep, body = stdout.partition(b"\r\n\r\n")
    assert sep, stdout
    assert b"HTTP/1.1 200 OK" in head
    return json.loads(body[: body.index(b"}") + 1])


# --------------------------------------------------------------------------
# SSLServer <-> SSLClient


@pytest.mark.parametrize("family", FAMILIES)
def test_SSLClient_mutual_tls_over_every_family(pki, tmp_path, family):
    with serving(pki.server_sslconfig, make_address(family, tmp_path)) as server:
        client = SSLClient(pki.client_sslconfig, server.address)
        with client.connect() as conn:
            assert isinstance(conn.sock, ssl.SSLSocket)
            assert peer_cn(conn.sock) == pki.server_id
            for i in range(3):  # keep-alive: one handshake, several requests
                info = get_json(conn)
                assert info["peer_id"] == pki.client_id
                assert info["version"] == "TLSv1.3"
                assert info["requests"] == i


def test_SSLServer_builds_context_from_sslconfig(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        assert type(server.sslctx) is ssl.SSLContext
        assert server.sslctx.verify_mode == ssl.CERT_REQUIRED
        assert server.sslctx.minimum_version == ssl.TLSVersion.TLSv1_2
        app_name = f"{PeerApp.__module__}.PeerApp(<...>)"
        assert repr(server) == f"SSLServer(<sslctx>, {server.address!r}, {app_name})"


def test_SSLServer_and_SSLClient_use_a_given_context(pki):
    server_ctx = build_server_sslctx(pki.server_sslconfig)
    client_ctx = build_client_sslctx(pki.client_sslconfig)
    with serving(server_ctx, ("127.0.0.1", 0)) as server:
        assert server.sslctx is server_ctx
        client = SSLClient(client_ctx, server.address)
        assert client.sslctx is client_ctx
        with client.connect() as conn:
            assert get_json(conn)["peer_id"] == pki.client_id


def test_on_connect_receives_the_SSLSocket(pki):
    app = PeerApp()
    with serving(pki.server_sslconfig, ("127.0.0.1", 0), app) as server:
        with SSLClient(pki.client_sslconfig, server.address).connect() as conn:
            get_json(conn)
    assert len(app.sockets) == 1
    assert isinstance(app.sockets[0], ssl.SSLSocket)


def test_SSLServer_refuses_weak_context_before_binding(pki, tmp_path):
    address = str(tmp_path / "never.sock")
    ctx = build_server_sslctx(pki.server_sslconfig)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    with pytest.raises(ValueError) as e:
        SSLServer(ctx, address, PeerApp())
    assert str(e.value) == "sslctx.verify_mode cannot be ssl.CERT_OPTIONAL"
    with pytest.raises(TypeError) as e:
        SSLServer("sslctx", address, PeerApp())
    assert str(e.value) == "sslctx must be an ssl.SSLContext"
    config = pki.server_sslconfig
    del config["ca_file"]
    with pytest.raises(ValueError) as e:
        SSLServer(config, address, PeerApp())
    assert str(e.value).startswith("must include ca_file or ca_path")
    assert not os.path.exists(address)


def test_SSLClient_refuses_weak_context(pki):
    ctx = build_client_sslctx(pki.client_sslconfig)
    ctx.options &= ~ssl.OP_NO_COMPRESSION
    with pytest.raises(ValueError) as e:
        SSLClient(ctx, ("127.0.0.1", 443))
    assert str(e.value) == "sslctx.options must include ssl.OP_NO_COMPRESSION"
    with pytest.raises(TypeError) as e:
        SSLClient(None, ("127.0.0.1", 443))
    assert str(e.value) == "sslctx must be an ssl.SSLContext"


def test_anonymous_SSLServer_warns_and_serves_clients_without_certificate(pki, caplog):
    with caplog.at_level(logging.WARNING, logger="degu.server"):
        with serving(pki.anonymous_server_sslconfig, ("127.0.0.1", 0)) as server:
            client = SSLClient(pki.anonymous_client_sslconfig, server.address)
            with client.connect() as conn:
                assert get_json(conn)["peer_id"] is None
    messages = [r.getMessage() for r in caplog.records if r.name == "degu.server"]
    assert "Security concern: sslctx allows unauthenticated clients!" in messages


@pytest.mark.parametrize("key", ["ECDSA", "RSA"])
def test_SSLClient_limited_to_tls12_gets_ecdhe_aead(request, key):
    pki = request.getfixturevalue("pki" if key == "ECDSA" else "rsa_pki")
    client_ctx = build_client_sslctx(pki.client_sslconfig)
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        with SSLClient(client_ctx, server.address).connect() as conn:
            info = get_json(conn)
    assert info["version"] == "TLSv1.2"
    assert info["cipher"] in {
        f"ECDHE-{key}-AES256-GCM-SHA384",
        f"ECDHE-{key}-AES128-GCM-SHA256",
        f"ECDHE-{key}-CHACHA20-POLY1305",
    }


def assert_still_serving(pki, server):
    with SSLClient(pki.client_sslconfig, server.address).connect() as conn:
        assert get_json(conn)["peer_id"] == pki.client_id


@pytest.mark.parametrize("family", ["ipv4", "unix"])
def test_SSLClient_without_certificate_is_refused(pki, tmp_path, family):
    with serving(pki.server_sslconfig, make_address(family, tmp_path)) as server:
        client = SSLClient(pki.anonymous_client_sslconfig, server.address)
        # TLS 1.3: the server's verdict on the client certificate arrives
        # after the client's handshake is done, on the first read.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with client.connect() as conn:
                conn.get("/peer", {})
        assert_still_serving(pki, server)


def test_SSLClient_with_certificate_from_another_CA_is_refused(pki, other_pki):
    config = other_pki.client_sslconfig
    config["ca_file"] = pki.client_sslconfig["ca_file"]  # trusts our server
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with SSLClient(config, server.address).connect() as conn:
                conn.get("/peer", {})
        assert_still_serving(pki, server)


def test_SSLClient_refuses_server_from_another_CA(pki, other_pki):
    with serving(other_pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        client = SSLClient(pki.client_sslconfig, server.address)
        with pytest.raises(ssl.SSLCertVerificationError):
            client.connect()


def test_SSLClient_hostname_checking(pki):
    config = pki.client_sslconfig
    config["check_hostname"] = True
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        # The server certificate's name is the server id: it matches...
        client = SSLClient(config, server.address, ssl_host=pki.server_id)
        with client.connect() as conn:
            assert get_json(conn)["peer_id"] == pki.client_id
        # ...as does the loopback address connected to (TempPKI's default
        # hostnames), and nothing else does.
        with SSLClient(config, server.address).connect() as conn:
            assert get_json(conn)["peer_id"] == pki.client_id
        client = SSLClient(config, server.address, ssl_host="wrong.example")
        with pytest.raises(ssl.SSLCertVerificationError) as e:
            client.connect()
        assert e.value.verify_message.startswith("Hostname mismatch")
        assert_still_serving(pki, server)


def test_SSLClient_hostname_checking_without_loopback_names():
    """A certificate made with hostnames=() names only its id, not the address."""
    pki = TempPKI(hostnames=())
    config = pki.client_sslconfig
    config["check_hostname"] = True
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        with pytest.raises(ssl.SSLCertVerificationError) as e:
            SSLClient(config, server.address).connect()
        assert e.value.verify_message.startswith("IP address mismatch")
        client = SSLClient(config, server.address, ssl_host=pki.server_id)
        with client.connect() as conn:
            assert get_json(conn)["peer_id"] == pki.client_id


def test_SSLClient_with_hostname_checking_needs_an_ssl_host(pki, tmp_path):
    """A Unix address has no host name to check: say so when the client is made."""
    config = pki.client_sslconfig
    config["check_hostname"] = True
    with pytest.raises(ValueError) as e:
        SSLClient(config, str(tmp_path / "s.sock"))
    assert str(e.value).startswith("ssl_host: None, but sslctx.check_hostname is True")
    client = SSLClient(config, str(tmp_path / "s.sock"), ssl_host=pki.server_id)
    assert client.ssl_host == pki.server_id
    config["check_hostname"] = False
    assert SSLClient(config, str(tmp_path / "s.sock")).ssl_host is None


# --------------------------------------------------------------------------
# The handshake runs in the connection's thread, bounded by the timeout


def wait_closed_by_peer(sock, deadline):
    """Read until the server closes *sock*; False if the deadline passes first."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        if data == b"":
            return True
    return False


def test_silent_clients_cannot_block_the_accept_loop(pki):
    """Clients that never speak TLS hold their own threads, nobody else's."""
    with serving(pki.server_sslconfig, ("127.0.0.1", 0), timeout=30) as server:
        silent = [socket.create_connection(server.address, TIMEOUT) for _ in range(5)]
        try:
            client = SSLClient(pki.client_sslconfig, server.address, timeout=5)
            for _ in range(3):
                with client.connect() as conn:
                    assert get_json(conn)["peer_id"] == pki.client_id
        finally:
            for sock in silent:
                sock.close()


def test_silent_client_is_closed_after_the_server_timeout(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0), timeout=0.5) as server:
        with socket.create_connection(server.address, TIMEOUT) as silent:
            start = time.monotonic()
            assert wait_closed_by_peer(silent, start + TIMEOUT)
            assert time.monotonic() - start >= 0.4
        assert_still_serving(pki, server)


def test_trickling_client_is_cut_off_by_the_server_timeout(pki):
    """A ClientHello dribbled a byte at a time does not keep a slot forever."""
    client_ctx = build_client_sslctx(pki.client_sslconfig)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    with serving(pki.server_sslconfig, ("127.0.0.1", 0), timeout=0.5) as server:
        with socket.create_connection(server.address, TIMEOUT) as sock:
            deadline = time.monotonic() + TIMEOUT
            closed = False
            for byte in hello:
                try:
                    sock.sendall(bytes([byte]))
                except ConnectionError:
                    closed = True
                    break
                if wait_closed_by_peer(sock, time.monotonic() + 0.05):
                    closed = True
                    break
                assert time.monotonic() < deadline
            assert closed or wait_closed_by_peer(sock, deadline)


def test_plain_http_to_tls_port_is_dropped_and_server_goes_on(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        with socket.create_connection(server.address, TIMEOUT) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert wait_closed_by_peer(sock, time.monotonic() + TIMEOUT)
        assert_still_serving(pki, server)


# --------------------------------------------------------------------------
# Python's ssl + http.client


class UnixHTTPSConnection(http.client.HTTPSConnection):
    """http.client over a Unix socket path."""

    def __init__(self, path, context):
        super().__init__("localhost", context=context, timeout=TIMEOUT)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = self._context.wrap_socket(sock, server_hostname=None)


def python_client_context(pki, *, cert=True):
    ctx = ssl.create_default_context(cafile=pki.path(pki.server_ca_id, "ca"))
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(
            pki.path(pki.client_id, "cert"), pki.path(pki.client_id, "key")
        )
    return ctx


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "unix"])
def test_http_client_with_certificate(pki, tmp_path, family):
    ctx = python_client_context(pki)
    with serving(pki.server_sslconfig, make_address(family, tmp_path)) as server:
        if family == "unix":
            conn = UnixHTTPSConnection(server.address, ctx)
        else:
            host, port = server.address[:2]
            conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=TIMEOUT)
        try:
            for _ in range(2):
                conn.request("POST", "/peer", body=b"some data")
                response = conn.getresponse()
                assert response.status == 200
                info = json.loads(response.read())
                assert info["peer_id"] == pki.client_id
                assert info["version"] == "TLSv1.3"
        finally:
            conn.close()


def test_http_client_strict_x509_verification_accepts_our_pki(pki):
    """The TempPKI chain passes VERIFY_X509_STRICT (Python 3.13's default)."""
    ctx = python_client_context(pki)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        conn = http.client.HTTPSConnection(
            *server.address, context=ctx, timeout=TIMEOUT
        )
        try:
            conn.request("GET", "/peer")
            assert conn.getresponse().status == 200
        finally:
            conn.close()


def test_http_client_without_certificate_is_refused(pki):
    ctx = python_client_context(pki, cert=False)
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        conn = http.client.HTTPSConnection(
            *server.address, context=ctx, timeout=TIMEOUT
        )
        try:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                conn.request("GET", "/peer")
                conn.getresponse()
        finally:
            conn.close()


# --------------------------------------------------------------------------
# openssl s_client


@pytest.mark.parametrize("family", ["ipv4", "unix"])
def test_openssl_s_client_with_certificate(pki, tmp_path, family):
    with serving(pki.server_sslconfig, make_address(family, tmp_path)) as server:
        result = s_client(server, *s_client_auth(pki))
    assert b"New, TLSv1.3, Cipher is TLS_" in result.stdout
    assert b"Verify return code: 0 (ok)" in result.stdout
    info = http_body(result.stdout)
    assert info["peer_id"] == pki.client_id
    assert info["version"] == "TLSv1.3"


@pytest.mark.parametrize("family", ["ipv4", "unix"])
def test_openssl_s_client_without_certificate_is_refused(pki, tmp_path, family):
    with serving(pki.server_sslconfig, make_address(family, tmp_path)) as server:
        result = s_client(server, *s_client_auth(pki, cert=False))
        assert b"HTTP/1.1" not in result.stdout
        assert b"alert certificate required" in result.stderr
        assert_still_serving(pki, server)


def test_openssl_s_client_with_certificate_from_another_CA_is_refused(pki, other_pki):
    args = [
        "-CAfile", pki.path(pki.server_ca_id, "ca"), "-verify_return_error",
        "-cert", other_pki.path(other_pki.client_id, "cert"),
        "-key", other_pki.path(other_pki.client_id, "key"),
    ]  # fmt: skip
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        result = s_client(server, *args)
    assert b"HTTP/1.1" not in result.stdout
    assert b"alert unknown ca" in result.stderr


def test_openssl_s_client_on_anonymous_server_without_certificate(pki):
    with serving(pki.anonymous_server_sslconfig, ("127.0.0.1", 0)) as server:
        result = s_client(server, *s_client_auth(pki, cert=False))
    assert http_body(result.stdout)["peer_id"] is None


@pytest.mark.parametrize("family", ["ipv4", "unix"])
def test_openssl_s_client_tls11_is_refused(pki, tmp_path, family):
    # SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all, so that the refusal
    # observed is the server's (a protocol_version alert).
    with serving(pki.server_sslconfig, make_address(family, tmp_path)) as server:
        result = s_client(server, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        assert result.returncode != 0
        assert b"alert protocol version" in result.stderr
        assert_still_serving(pki, server)


@pytest.mark.parametrize("key", ["ECDSA", "RSA"])
def test_openssl_s_client_tls12_gets_ecdhe_aead(request, key):
    pki = request.getfixturevalue("pki" if key == "ECDSA" else "rsa_pki")
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        result = s_client(server, "-tls1_2", *s_client_auth(pki))
    # The server's preference order puts AES-256-GCM first.
    expected = f"New, TLSv1.2, Cipher is ECDHE-{key}-AES256-GCM-SHA384".encode()
    assert expected in result.stdout
    assert http_body(result.stdout)["version"] == "TLSv1.2"


@pytest.mark.parametrize(
    "cipher",
    [
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "DHE-RSA-AES128-GCM-SHA256",
    ],
)
def test_openssl_s_client_tls12_without_ecdhe_aead_is_refused(pki, cipher):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        result = s_client(server, "-tls1_2", "-cipher", cipher, *s_client_auth(pki))
    assert b"HTTP/1.1" not in result.stdout
    assert b"alert handshake failure" in result.stderr


def test_openssl_s_client_checks_server_name(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        good = s_client(server, *s_client_auth(pki), "-verify_hostname", pki.server_id)
        bad = s_client(server, *s_client_auth(pki), "-verify_hostname", "wrong.example")
    assert http_body(good.stdout)["peer_id"] == pki.client_id
    assert b"HTTP/1.1" not in bad.stdout
    assert b"hostname mismatch" in bad.stdout + bad.stderr


# --------------------------------------------------------------------------
# curl


def curl(pki, url, *args, cert=True):
    options = ["--silent", "--show-error", "--max-time", str(TIMEOUT)]
    options += ["--cacert", pki.path(pki.server_ca_id, "ca")]
    if cert:
        options += [
            "--cert", pki.path(pki.client_id, "cert"),
            "--key", pki.path(pki.client_id, "key"),
        ]  # fmt: skip
    return run("curl", *options, *args, url)


@needs_curl
def test_curl_with_certificate_over_tcp(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        port = server.address[1]
        # curl checks the host name: reach 127.0.0.1 under the server's id.
        result = curl(
            pki, f"https://{pki.server_id}:{port}/peer",
            "--resolve", f"{pki.server_id}:{port}:127.0.0.1",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["peer_id"] == pki.client_id
    assert info["version"] == "TLSv1.3"


@needs_curl
def test_curl_with_certificate_over_unix_socket(pki, tmp_path):
    with serving(pki.server_sslconfig, str(tmp_path / "curl.sock")) as server:
        result = curl(
            pki, f"https://{pki.server_id}/peer", "--unix-socket", server.address
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["peer_id"] == pki.client_id


@needs_curl
def test_curl_post_with_tls12(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        port = server.address[1]
        result = curl(
            pki, f"https://{pki.server_id}:{port}/peer",
            "--resolve", f"{pki.server_id}:{port}:127.0.0.1",
            "--tlsv1.2", "--tls-max", "1.2", "--data-binary", "x" * 10000,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] == "TLSv1.2"


@needs_curl
@pytest.mark.parametrize("family", ["ipv4", "unix"])
def test_curl_without_certificate_is_refused(pki, tmp_path, family):
    with serving(pki.server_sslconfig, make_address(family, tmp_path)) as server:
        if family == "unix":
            args = ["--unix-socket", server.address]
            url = f"https://{pki.server_id}/peer"
        else:
            port = server.address[1]
            args = ["--resolve", f"{pki.server_id}:{port}:127.0.0.1"]
            url = f"https://{pki.server_id}:{port}/peer"
        result = curl(pki, url, *args, cert=False)
        assert result.returncode != 0
        assert result.stdout == b""
        assert_still_serving(pki, server)


@needs_curl
def test_curl_refuses_wrong_server_name(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        port = server.address[1]
        result = curl(
            pki, f"https://wrong.example:{port}/peer",
            "--resolve", f"wrong.example:{port}:127.0.0.1",
        )  # fmt: skip
    assert result.returncode == 60  # CURLE_PEER_FAILED_VERIFICATION
    assert b"matches target host name 'wrong.example'" in result.stderr


@needs_curl
def test_curl_tls11_is_refused(pki):
    with serving(pki.server_sslconfig, ("127.0.0.1", 0)) as server:
        result = curl(
            pki, f"https://127.0.0.1:{server.address[1]}/peer",
            "--insecure", "--tlsv1.1", "--tls-max", "1.1",
            "--ciphers", "DEFAULT@SECLEVEL=0",
        )  # fmt: skip
    assert result.returncode == 35  # CURLE_SSL_CONNECT_ERROR
    assert b"alert protocol version" in result.stderr

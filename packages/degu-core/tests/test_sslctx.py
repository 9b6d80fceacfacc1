"""Tests for degu._sslctx: sslconfig validation and the TLS policy.

The handshake tests pair the built contexts over a socketpair, without any
Degu server or client, so that the policy is checked on its own; the tests
with real servers and independent peers are in test_tls.py.
"""

import logging
import os
import socket
import ssl
import subprocess
import threading
import warnings

import pytest

from degu._sslctx import (
    TLS12_CIPHERS,
    build_client_sslctx,
    build_server_sslctx,
    get_client_sslctx,
    get_server_sslctx,
)
from degu._temppki import TempPKI

TIMEOUT = 10
PATH_KEYS = ("cert_file", "key_file", "ca_file", "ca_path")


@pytest.fixture(scope="module")
def pki():
    return TempPKI()


@pytest.fixture(scope="module")
def other_pki():
    """A second, unrelated PKI: its CAs are strangers to ``pki``'s."""
    return TempPKI()


def type_error(name, T, obj):
    return f"{name}: need a {T!r}; got a {type(obj)!r}: {obj!r}"


def deprecated(fn, *args):
    """Call fn(*args), which uses deprecated TLS settings on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(*args)


def handshake(server_ctx, client_ctx, server_hostname=None):
    """Handshake over a socketpair, exchange one message each way.

    Returns (server_outcome, client_outcome): each a dict describing the
    session, or the exception that side saw.
    """
    a, b = socket.socketpair()
    a.settimeout(TIMEOUT)
    b.settimeout(TIMEOUT)
    outcome = {}

    def serve():
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                assert s.recv(4) == b"ping"
                s.sendall(b"pong")
                outcome["server"] = describe(s)
        except Exception as e:
            outcome["server"] = e

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=server_hostname) as c:
            c.sendall(b"ping")
            # Under TLS 1.3 a refused client certificate shows up here, on
            # the first read after the handshake.
            data = c.recv(4)
            if data != b"pong":
                raise ConnectionError(f"got {data!r}")
            outcome["client"] = describe(c)
    except Exception as e:
        outcome["client"] = e
    finally:
        thread.join(TIMEOUT)
        a.close()
        b.close()
    assert not thread.is_alive()
    return outcome["server"], outcome["client"]


def describe(s):
    cert = s.getpeercert()
    cn = None
    if cert:
        cn = dict(rdn[0] for rdn in cert["subject"])["commonName"]
    return {"version": s.version(), "cipher": s.cipher()[0], "peer_cn": cn}


# --------------------------------------------------------------------------
# build_server_sslctx


def test_build_server_sslctx_policy(pki):
    ctx = build_server_sslctx(pki.server_sslconfig)
    assert type(ctx) is ssl.SSLContext
    assert ctx.protocol == ssl.PROTOCOL_TLS_SERVER
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    for option in (
        ssl.OP_NO_COMPRESSION,
        ssl.OP_SINGLE_ECDH_USE,
        ssl.OP_CIPHER_SERVER_PREFERENCE,
        ssl.OP_NO_RENEGOTIATION,
    ):
        assert ctx.options & option == option  # OP_SINGLE_ECDH_USE is 0 now
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_build_server_sslctx_tls12_suites_are_ecdhe_aead(pki):
    ctx = build_server_sslctx(pki.server_sslconfig)
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert {c["kea"] for c in tls12} == {"kx-ecdhe"}
    assert all(c["aead"] for c in tls12)
    assert {c["auth"] for c in tls12} == {"auth-rsa", "auth-ecdsa"}
    names = {c["name"] for c in tls12}
    assert "ECDHE-RSA-AES128-GCM-SHA256" in names
    assert "ECDHE-RSA-AES256-GCM-SHA384" in names
    assert "ECDHE-RSA-CHACHA20-POLY1305" in names
    assert "ECDHE-ECDSA-CHACHA20-POLY1305" in names
    tls13 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"]
    assert tls13 and all(c["aead"] for c in tls13)
    assert TLS12_CIPHERS == "ECDHE+AESGCM:ECDHE+CHACHA20"


def test_build_server_sslctx_anonymous(pki):
    ctx = build_server_sslctx(pki.anonymous_server_sslconfig)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("bad", [None, [], "cert", (("cert_file", "/x"),)])
def test_build_server_sslctx_needs_a_dict(bad):
    with pytest.raises(TypeError) as e:
        build_server_sslctx(bad)
    assert str(e.value) == type_error("sslconfig", dict, bad)


def test_build_server_sslctx_rejects_dict_subclass(pki):
    class Config(dict):
        pass

    bad = Config(pki.server_sslconfig)
    with pytest.raises(TypeError) as e:
        build_server_sslctx(bad)
    assert str(e.value) == type_error("sslconfig", dict, bad)


@pytest.mark.parametrize("key", ["cert_file", "key_file"])
def test_build_server_sslctx_requires_cert_and_key(pki, key):
    config = pki.server_sslconfig
    del config[key]
    with pytest.raises(KeyError) as e:
        build_server_sslctx(config)
    assert e.value.args == (key,)


@pytest.mark.parametrize("key", PATH_KEYS)
@pytest.mark.parametrize("value", ["relative.pem", "/tmp/../tmp/x.pem", "/tmp//x.pem"])
def test_build_server_sslctx_paths_must_be_absolute_normalized(pki, key, value):
    config = pki.server_sslconfig
    config[key] = value
    with pytest.raises(ValueError) as e:
        build_server_sslctx(config)
    assert (
        str(e.value)
        == f"sslconfig[{key!r}] is not an absulute, normalized path: {value!r}"
    )


@pytest.mark.parametrize("key", PATH_KEYS)
def test_build_server_sslctx_paths_must_be_str(pki, key):
    config = pki.server_sslconfig
    config[key] = b"/tmp/x.pem"
    with pytest.raises(TypeError) as e:
        build_server_sslctx(config)
    assert str(e.value) == type_error(f"sslconfig[{key!r}]", str, b"/tmp/x.pem")


@pytest.mark.parametrize("value", [False, 1, "True", None])
def test_build_server_sslctx_allow_unauthenticated_clients_must_be_True(pki, value):
    config = pki.anonymous_server_sslconfig
    config["allow_unauthenticated_clients"] = value
    with pytest.raises(ValueError) as e:
        build_server_sslctx(config)
    assert (
        str(e.value) == "True is only allowed value for allow_unauthenticated_clients"
    )


@pytest.mark.parametrize("key", ["ca_file", "ca_path"])
def test_build_server_sslctx_anonymous_excludes_ca(pki, key):
    config = pki.anonymous_server_sslconfig
    config[key] = os.path.dirname(pki.server_sslconfig["ca_file"])
    with pytest.raises(ValueError) as e:
        build_server_sslctx(config)
    assert str(e.value) == "ca_file/ca_path with allow_unauthenticated_clients"


def test_build_server_sslctx_requires_a_client_ca(pki):
    config = pki.server_sslconfig
    del config["ca_file"]
    with pytest.raises(ValueError) as e:
        build_server_sslctx(config)
    assert (
        str(e.value)
        == "must include ca_file or ca_path (or allow_unauthenticated_clients)"
    )


def test_build_server_sslctx_ignores_unknown_keys(pki):
    config = pki.server_sslconfig
    config["check_hostname"] = "ignored on the server"
    config["whatever"] = object()
    assert build_server_sslctx(config).verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("key", ["cert_file", "key_file", "ca_file"])
def test_build_server_sslctx_missing_file_names_the_key(pki, tmp_path, key):
    config = pki.server_sslconfig
    config[key] = str(tmp_path / "missing.pem")
    with pytest.raises(FileNotFoundError) as e:
        build_server_sslctx(config)
    assert e.value.filename == config[key]
    assert f"sslconfig[{key!r}]" in str(e.value)


def test_build_server_sslctx_key_not_matching_cert(pki):
    config = pki.server_sslconfig
    config["key_file"] = pki.path(pki.client_id, "key")
    with pytest.raises(ssl.SSLError) as e:
        build_server_sslctx(config)
    assert any("sslconfig['key_file']" in note for note in e.value.__notes__)


def test_build_server_sslctx_with_ca_path(pki, tmp_path):
    """ca_path alone works: a hashed directory of client CAs (openssl rehash)."""
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    with open(pki.path(pki.client_ca_id, "ca"), "rb") as f:
        (ca_dir / "client.pem").write_bytes(f.read())
    subprocess.run(["openssl", "rehash", str(ca_dir)], check=True, timeout=TIMEOUT)
    config = pki.server_sslconfig
    del config["ca_file"]
    config["ca_path"] = str(ca_dir)
    server_ctx = build_server_sslctx(config)
    assert server_ctx.verify_mode == ssl.CERT_REQUIRED
    server, client = handshake(server_ctx, build_client_sslctx(pki.client_sslconfig))
    assert server["peer_cn"] == pki.client_id
    assert client["peer_cn"] == pki.server_id


# --------------------------------------------------------------------------
# build_client_sslctx


def test_build_client_sslctx_policy(pki):
    ctx = build_client_sslctx(pki.client_sslconfig)
    assert type(ctx) is ssl.SSLContext
    assert ctx.protocol == ssl.PROTOCOL_TLS_CLIENT
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.cert_store_stats()["x509_ca"] == 1
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12)


def test_build_client_sslctx_empty_is_browser_like():
    ctx = build_client_sslctx({})
    assert ctx.check_hostname is True
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_build_client_sslctx_anonymous(pki):
    ctx = build_client_sslctx(pki.anonymous_client_sslconfig)
    assert ctx.check_hostname is False
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_build_client_sslctx_check_hostname_true_with_ca(pki):
    config = pki.client_sslconfig
    config["check_hostname"] = True
    assert build_client_sslctx(config).check_hostname is True


@pytest.mark.parametrize("bad", [None, [], "ca_file"])
def test_build_client_sslctx_needs_a_dict(bad):
    with pytest.raises(TypeError) as e:
        build_client_sslctx(bad)
    assert str(e.value) == type_error("sslconfig", dict, bad)


@pytest.mark.parametrize("bad", [0, 1, "True", None])
def test_build_client_sslctx_check_hostname_must_be_bool(bad):
    with pytest.raises(TypeError) as e:
        build_client_sslctx({"check_hostname": bad})
    assert str(e.value) == type_error("sslconfig['check_hostname']", bool, bad)


def test_build_client_sslctx_key_without_cert():
    # Checked before the paths: the relative path is not what is reported.
    with pytest.raises(ValueError) as e:
        build_client_sslctx({"key_file": "relative.key"})
    assert (
        str(e.value) == "sslconfig['key_file'] provided without sslconfig['cert_file']"
    )


def test_build_client_sslctx_check_order():
    """check_hostname's type is checked before key-without-cert."""
    with pytest.raises(TypeError):
        build_client_sslctx({"check_hostname": 1, "key_file": "/k"})


@pytest.mark.parametrize("key", PATH_KEYS)
def test_build_client_sslctx_paths_must_be_absolute_normalized(pki, key):
    config = pki.client_sslconfig
    config[key] = "foo/../bar.pem"
    with pytest.raises(ValueError) as e:
        build_client_sslctx(config)
    assert (
        str(e.value)
        == f"sslconfig[{key!r}] is not an absulute, normalized path: 'foo/../bar.pem'"
    )


def test_build_client_sslctx_default_paths_need_check_hostname(pki):
    with pytest.raises(ValueError) as e:
        build_client_sslctx({"check_hostname": False})
    assert str(e.value) == "check_hostname must be True when using default verify paths"
    config = pki.client_sslconfig
    del config["ca_file"]
    with pytest.raises(ValueError) as e:
        build_client_sslctx(config)
    assert str(e.value) == "check_hostname must be True when using default verify paths"


def test_build_client_sslctx_cert_without_key_reads_key_from_cert_file(pki, tmp_path):
    combined = tmp_path / "combined.pem"
    with open(pki.path(pki.client_id, "cert"), "rb") as c:
        with open(pki.path(pki.client_id, "key"), "rb") as k:
            combined.write_bytes(c.read() + k.read())
    config = pki.client_sslconfig
    del config["key_file"]
    config["cert_file"] = str(combined)
    client_ctx = build_client_sslctx(config)
    server, client = handshake(build_server_sslctx(pki.server_sslconfig), client_ctx)
    assert server["peer_cn"] == pki.client_id
    assert client["peer_cn"] == pki.server_id


def test_build_client_sslctx_cert_without_key_fails_if_no_key_inside(pki):
    config = pki.client_sslconfig
    del config["key_file"]
    with pytest.raises(ssl.SSLError):
        build_client_sslctx(config)


def test_build_client_sslctx_missing_ca_file(pki, tmp_path):
    config = pki.anonymous_client_sslconfig
    config["ca_file"] = str(tmp_path / "nope.ca")
    with pytest.raises(FileNotFoundError) as e:
        build_client_sslctx(config)
    assert e.value.filename == config["ca_file"]
    assert "sslconfig['ca_file']" in str(e.value)


# --------------------------------------------------------------------------
# get_server_sslctx / get_client_sslctx


def test_get_server_sslctx_builds_from_dict(pki, caplog):
    with caplog.at_level(logging.WARNING, logger="degu.server"):
        ctx = get_server_sslctx(pki.server_sslconfig)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert caplog.records == []


def test_get_server_sslctx_returns_the_given_context(pki):
    ctx = build_server_sslctx(pki.server_sslconfig)
    assert get_server_sslctx(ctx) is ctx


@pytest.mark.parametrize("bad", [None, "sslctx", 17, ssl])
def test_get_server_sslctx_needs_a_context(bad):
    with pytest.raises(TypeError) as e:
        get_server_sslctx(bad)
    assert str(e.value) == "sslctx must be an ssl.SSLContext"


def test_get_server_sslctx_dict_errors_come_from_build(pki):
    config = pki.server_sslconfig
    del config["ca_file"]
    with pytest.raises(ValueError) as e:
        get_server_sslctx(config)
    assert str(e.value).startswith("must include ca_file or ca_path")


def test_get_server_sslctx_refuses_client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(ValueError) as e:
        get_server_sslctx(ctx)
    assert (
        str(e.value) == "sslctx.protocol cannot be ssl.PROTOCOL_TLS_CLIENT in a server"
    )


@pytest.mark.parametrize("get", [get_server_sslctx, get_client_sslctx])
@pytest.mark.parametrize("name", ["TLSv1", "TLSv1_1"])
def test_get_sslctx_refuses_minimum_below_tls12(get, name):
    protocol = ssl.PROTOCOL_TLS_CLIENT
    if get is get_server_sslctx:
        protocol = ssl.PROTOCOL_TLS_SERVER
    ctx = ssl.SSLContext(protocol)
    deprecated(setattr, ctx, "minimum_version", getattr(ssl.TLSVersion, name))
    with pytest.raises(ValueError) as e:
        get(ctx)
    assert str(e.value) == (
        "sslctx.minimum_version must be at least ssl.TLSVersion.TLSv1_2; "
        f"got ssl.TLSVersion.{name}"
    )


@pytest.mark.parametrize("get", [get_server_sslctx, get_client_sslctx])
def test_get_sslctx_refuses_minimum_supported(get):
    protocol = ssl.PROTOCOL_TLS_CLIENT
    if get is get_server_sslctx:
        protocol = ssl.PROTOCOL_TLS_SERVER
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with pytest.raises(ValueError) as e:
        get(ctx)
    assert str(e.value).endswith("got ssl.TLSVersion.MINIMUM_SUPPORTED")


@pytest.mark.parametrize("get", [get_server_sslctx, get_client_sslctx])
@pytest.mark.parametrize("name", ["PROTOCOL_TLSv1", "PROTOCOL_TLSv1_1"])
def test_get_sslctx_refuses_old_fixed_protocols(get, name):
    ctx = deprecated(ssl.SSLContext, getattr(ssl, name))
    with pytest.raises(ValueError) as e:
        get(ctx)
    assert str(e.value) == (
        f"sslctx.protocol must allow only TLS 1.2 or newer; got ssl.{name}"
    )


def test_get_server_sslctx_accepts_0_19_style_tls12_context(pki, caplog):
    """A PROTOCOL_TLSv1_2 context as 0.19 built it meets the floor exactly."""
    ctx = deprecated(ssl.SSLContext, ssl.PROTOCOL_TLSv1_2)
    ctx.load_cert_chain(
        pki.server_sslconfig["cert_file"], pki.server_sslconfig["key_file"]
    )
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(pki.server_sslconfig["ca_file"])
    assert get_server_sslctx(ctx) is ctx
    server, client = handshake(ctx, build_client_sslctx(pki.client_sslconfig))
    assert server["version"] == client["version"] == "TLSv1.2"


def test_get_sslctx_accepts_legacy_no_flags_floor(pki):
    """minimum_version unset but OP_NO_SSLv3/TLSv1/TLSv1_1 all set: a 1.2 floor."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    flags = ssl.OP_NO_SSLv3 | ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1
    deprecated(setattr, ctx, "options", ctx.options | flags)
    assert get_client_sslctx(ctx) is ctx
    # One flag short of the floor is refused.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    deprecated(setattr, ctx, "options", ctx.options | ssl.OP_NO_SSLv3 | ssl.OP_NO_TLSv1)
    with pytest.raises(ValueError):
        get_client_sslctx(ctx)


def test_get_sslctx_accepts_tls13_only(pki):
    ctx = build_server_sslctx(pki.server_sslconfig)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    assert get_server_sslctx(ctx) is ctx
    ctx.minimum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert get_server_sslctx(ctx) is ctx


def test_get_server_sslctx_refuses_cert_optional(pki):
    ctx = build_server_sslctx(pki.server_sslconfig)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    with pytest.raises(ValueError) as e:
        get_server_sslctx(ctx)
    assert str(e.value) == "sslctx.verify_mode cannot be ssl.CERT_OPTIONAL"


@pytest.mark.parametrize("get", [get_server_sslctx, get_client_sslctx])
def test_get_sslctx_refuses_compression(pki, get):
    if get is get_server_sslctx:
        ctx = build_server_sslctx(pki.server_sslconfig)
    else:
        ctx = build_client_sslctx(pki.client_sslconfig)
    ctx.options &= ~ssl.OP_NO_COMPRESSION
    with pytest.raises(ValueError) as e:
        get(ctx)
    assert str(e.value) == "sslctx.options must include ssl.OP_NO_COMPRESSION"


def test_get_server_sslctx_warns_about_cert_none(pki, caplog):
    with caplog.at_level(logging.WARNING, logger="degu.server"):
        ctx = get_server_sslctx(pki.anonymous_server_sslconfig)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "degu.server",
            logging.WARNING,
            "Security concern: sslctx allows unauthenticated clients!",
        )
    ]


def test_get_client_sslctx_builds_from_dict(pki):
    ctx = get_client_sslctx(pki.client_sslconfig)
    assert ctx.protocol == ssl.PROTOCOL_TLS_CLIENT
    assert get_client_sslctx(ctx) is ctx


def test_get_client_sslctx_accepts_default_context():
    ctx = ssl.create_default_context()
    assert get_client_sslctx(ctx) is ctx


@pytest.mark.parametrize("bad", [None, b"", 1.5])
def test_get_client_sslctx_needs_a_context(bad):
    with pytest.raises(TypeError) as e:
        get_client_sslctx(bad)
    assert str(e.value) == "sslctx must be an ssl.SSLContext"


def test_get_client_sslctx_refuses_server_context():
    with pytest.raises(ValueError) as e:
        get_client_sslctx(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert (
        str(e.value) == "sslctx.protocol cannot be ssl.PROTOCOL_TLS_SERVER in a client"
    )


@pytest.mark.parametrize("mode", [ssl.CERT_NONE, ssl.CERT_OPTIONAL])
def test_get_client_sslctx_requires_cert_required(mode):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = mode
    with pytest.raises(ValueError) as e:
        get_client_sslctx(ctx)
    assert str(e.value) == "sslctx.verify_mode must be ssl.CERT_REQUIRED"


# --------------------------------------------------------------------------
# Handshakes between the built contexts


def test_mutual_tls_negotiates_tls13_and_both_sides_see_ids(pki):
    server, client = handshake(
        build_server_sslctx(pki.server_sslconfig),
        build_client_sslctx(pki.client_sslconfig),
    )
    assert server["version"] == client["version"] == "TLSv1.3"
    assert server["peer_cn"] == pki.client_id
    assert client["peer_cn"] == pki.server_id
    assert client["peer_cn"] == pki.server_id


def test_client_limited_to_tls12_gets_ecdhe_aead(pki):
    client_ctx = build_client_sslctx(pki.client_sslconfig)
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    server, client = handshake(build_server_sslctx(pki.server_sslconfig), client_ctx)
    assert client["version"] == "TLSv1.2"
    assert client["cipher"].startswith("ECDHE-ECDSA-")  # TempPKI's default keys
    assert "GCM" in client["cipher"] or "CHACHA20" in client["cipher"]
    assert server["peer_cn"] == pki.client_id
    assert client["peer_cn"] == pki.server_id


def test_client_with_only_weak_tls12_suites_is_refused(pki):
    client_ctx = build_client_sslctx(pki.client_sslconfig)
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    client_ctx.set_ciphers("AES128-SHA:AES256-GCM-SHA384")  # RSA key exchange
    server, client = handshake(build_server_sslctx(pki.server_sslconfig), client_ctx)
    assert isinstance(server, ssl.SSLError)
    assert isinstance(client, ssl.SSLError)


@pytest.mark.parametrize("with_tls12", [False, True])
def test_client_without_certificate_is_refused(pki, with_tls12):
    client_ctx = build_client_sslctx(pki.anonymous_client_sslconfig)
    if with_tls12:
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    server, client = handshake(build_server_sslctx(pki.server_sslconfig), client_ctx)
    assert isinstance(server, ssl.SSLError)
    assert "certificate" in str(server).lower()
    assert isinstance(client, (ssl.SSLError, ConnectionError))


def test_client_certificate_from_another_ca_is_refused(pki, other_pki):
    config = other_pki.client_sslconfig
    config["ca_file"] = pki.client_sslconfig["ca_file"]  # trusts the server
    server, client = handshake(
        build_server_sslctx(pki.server_sslconfig), build_client_sslctx(config)
    )
    assert isinstance(server, ssl.SSLCertVerificationError)
    assert isinstance(client, (ssl.SSLError, ConnectionError))


def test_server_certificate_from_another_ca_is_refused(pki, other_pki):
    config = pki.client_sslconfig
    config["ca_file"] = other_pki.client_sslconfig["ca_file"]
    server, client = handshake(
        build_server_sslctx(pki.server_sslconfig), build_client_sslctx(config)
    )
    assert isinstance(client, ssl.SSLCertVerificationError)
    assert isinstance(server, (ssl.SSLError, ConnectionError))


def test_anonymous_server_accepts_client_without_certificate(pki):
    server, client = handshake(
        build_server_sslctx(pki.anonymous_server_sslconfig),
        build_client_sslctx(pki.anonymous_client_sslconfig),
    )
    assert server["peer_cn"] is None
    assert client["peer_cn"] == pki.server_id


def test_check_hostname_matches_the_id_and_refuses_another_name(pki):
    config = pki.client_sslconfig
    config["check_hostname"] = True
    client_ctx = build_client_sslctx(config)
    server_ctx = build_server_sslctx(pki.server_sslconfig)
    # The certificate's CN is the server id: hostname checking passes for it
    # (case-insensitively, as DNS names compare).
    server, client = handshake(server_ctx, client_ctx, pki.server_id.lower())
    assert client["peer_cn"] == pki.server_id
    server, client = handshake(server_ctx, client_ctx, "wrong.example")
    assert isinstance(client, ssl.SSLCertVerificationError)
    assert "hostname mismatch" in str(client).lower()
    assert isinstance(server, (ssl.SSLError, ConnectionError))

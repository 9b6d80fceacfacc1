"""A throw-away PKI for tests and demos, made with the ``openssl`` CLI.

Not for production: keys are written unencrypted, certificates are valid for
:data:`DAYS` days, and nothing is revocable. What it gives is a realistic
Degu-style PKI in well under a second: every key is named by the hash of its
public key (an *id*), and that id is also the certificate's common name, so
two peers can authenticate each other by key rather than by host name.

Keys are ECDSA (:func:`create_ec_key`, fast) or RSA (:func:`create_key`).
A certificate issued through :meth:`PKI.issue_cert` also lists its id, plus any
host names and IP addresses the caller names, in a subjectAltName extension,
so clients that check host names the standard way (RFC 6125, RFC 5280
§4.2.1.6: curl, requests, :mod:`ssl` with ``check_hostname``) accept it too.

Every key and certificate operation runs ``openssl`` in a subprocess and
returns PEM ``bytes``. Each call is bounded by :data:`OPENSSL_TIMEOUT`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import secrets
import subprocess
from collections.abc import Iterable

from degu._checks import TYPE_ERROR

__all__ = [
    "DAYS",
    "KEY_BITS",
    "KEY_CURVES",
    "PKI",
    "b32enc",
    "create_ca",
    "create_csr",
    "create_ec_key",
    "create_key",
    "get_cert_pubkey",
    "get_csr_pubkey",
    "get_pubkey",
    "hash_pubkey",
    "issue_cert",
    "make_alt_names",
    "make_subject",
    "random_id",
    "safe_write",
]

#: Validity of the certificates made here, in days.
DAYS = 3650

#: RSA key sizes :func:`create_key` accepts.
KEY_BITS = (1024, 2048, 3072, 4096)

#: Elliptic curves :func:`create_ec_key` accepts (NIST names, as OpenSSL spells them).
KEY_CURVES = ("P-256", "P-384")

#: Seconds one ``openssl`` run may take (a 4096-bit key takes a few seconds).
OPENSSL_TIMEOUT = 60

#: Bounds on the byte length :func:`b32enc` and :func:`random_id` accept.
MIN_B32_BYTES = 5
MAX_B32_BYTES = 60

#: How many leading bytes of a SHA-512 digest make an id (48 Base32 chars).
ID_DIGEST_BYTES = 30

# One config for every openssl run, so that the result never depends on the
# system's openssl.cnf. The extensions make the chain pass strict X.509
# checking (OpenSSL -x509_strict, Python 3.13's VERIFY_X509_STRICT).
_OPENSSL_CNF = b"""\
[req]
distinguished_name = dn
x509_extensions = ca_ext
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""
# keyUsage is digitalSignature alone: it is all TLS 1.3 and ECDHE use
# (RFC 8446 §4.4.3), and RFC 5480 §3 forbids keyEncipherment on an EC key.

# RFC 1123 §2.1 host name labels: letters, digits and inner hyphens.
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Longest DNS name :func:`make_alt_names` accepts (RFC 1035 §2.3.4).
_MAX_DNS_NAME = 253


def _openssl(*args: str, stdin: bytes = b"") -> bytes:
    """Run ``openssl *args`` feeding *stdin*; return its standard output."""
    cmd = ["openssl", *args]
    try:
        return subprocess.check_output(
            cmd, input=stdin, stderr=subprocess.PIPE, timeout=OPENSSL_TIMEOUT
        )
    except subprocess.CalledProcessError as e:
        # The exception's message shows only the exit status; openssl's own
        # explanation is on stderr.
        e.add_note(e.stderr.decode("utf-8", "replace").strip())
        raise


def _check_str(name: str, value: object) -> str:
    if type(value) is not str:
        raise TypeError(TYPE_ERROR.format(name, str, type(value), value))
    return value


def _check_bytes(name: str, value: object) -> bytes:
    if type(value) is not bytes:
        raise TypeError(TYPE_ERROR.format(name, bytes, type(value), value))
    return value


def _check_b32_size(name: str, size: int) -> None:
    if not MIN_B32_BYTES <= size <= MAX_B32_BYTES:
        raise ValueError(
            f"need {MIN_B32_BYTES} <= {name} <= {MAX_B32_BYTES}; got {size}"
        )
    # Base32 packs 5 bytes into 8 characters; other lengths would need '='.
    if size % 5 != 0:
        raise ValueError(f"{name} must be a multiple of 5; got {size}")


def safe_write(filename: str, data: bytes) -> None:
    """Create *filename* (it must not exist), make it read-only, write *data*."""
    with open(filename, "xb") as f:
        # Read-only before the first byte lands: a key is never readable by
        # others nor writable, even for a moment.
        os.fchmod(f.fileno(), 0o400)
        f.write(data)


def b32enc(data: bytes) -> str:
    """Return the RFC 4648 Base32 text of *data* (5 to 60 bytes, a multiple of 5)."""
    _check_bytes("data", data)
    _check_b32_size("len(data)", len(data))
    return base64.b32encode(data).decode("ascii")


def random_id(numbytes: int = 15) -> str:
    """Return *numbytes* random bytes as Base32 text (24 characters by default)."""
    if type(numbytes) is not int:
        raise TypeError(TYPE_ERROR.format("numbytes", int, type(numbytes), numbytes))
    _check_b32_size("numbytes", numbytes)
    return b32enc(os.urandom(numbytes))


def hash_pubkey(pubkey_data: bytes) -> str:
    """Return the id of a PEM public key: Base32 of a truncated SHA-512 (48 chars)."""
    _check_bytes("pubkey_data", pubkey_data)
    return b32enc(hashlib.sha512(pubkey_data).digest()[:ID_DIGEST_BYTES])


def make_subject(cn: str) -> str:
    """Return the ``openssl -subj`` value for common name *cn*."""
    return "/CN=" + _check_str("cn", cn)


def check_bits(bits: object) -> int:
    """Return *bits* when :func:`create_key` accepts it, else raise.

    Internal interface, absent from ``__all__``: ``degu._temppki`` calls it
    (and :func:`checked_hostnames`) to refuse a bad argument before its first
    ``openssl`` run.
    """
    if type(bits) is not int:
        raise TypeError(TYPE_ERROR.format("bits", int, type(bits), bits))
    if bits not in KEY_BITS:
        raise ValueError(f"bits must be one of {KEY_BITS!r}; got {bits!r}")
    return bits


def create_key(bits: int) -> bytes:
    """Return a new unencrypted RSA private key (PEM) of *bits* bits."""
    check_bits(bits)
    return _openssl(
        "genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"
    )


def create_ec_key(curve: str = "P-256") -> bytes:
    """Return a new unencrypted ECDSA private key (PEM, PKCS #8) on *curve*.

    Far faster to make than an RSA key (milliseconds, not a second), and
    accepted by every TLS 1.2 and 1.3 client Degu supports.
    """
    if type(curve) is not str:
        raise TypeError(TYPE_ERROR.format("curve", str, type(curve), curve))
    if curve not in KEY_CURVES:
        raise ValueError(f"curve must be one of {KEY_CURVES!r}; got {curve!r}")
    return _openssl(
        "genpkey", "-quiet", "-algorithm", "EC",
        "-pkeyopt", f"ec_paramgen_curve:{curve}",
        "-pkeyopt", "ec_param_enc:named_curve",
    )  # fmt: skip


def make_alt_names(names: Iterable[str]) -> str:
    """Return the OpenSSL ``subjectAltName`` value listing *names*.

    Each name is an IPv4 or IPv6 address (an ``IP:`` entry) or a DNS host
    name (a ``DNS:`` entry); duplicates are dropped, the order is kept.

    >>> make_alt_names(['localhost', '127.0.0.1', '::1'])
    'DNS:localhost, IP:127.0.0.1, IP:::1'

    Raises:
        TypeError: *names* is a ``str`` or holds something else than ``str``.
        ValueError: *names* is empty, or a name is neither an IP address nor
            a valid host name.
    """
    return _alt_names("names", names)


def _alt_names(argname: str, names: Iterable[str]) -> str:
    if isinstance(names, str | bytes):
        raise TypeError(f"{argname}: need an iterable of {str!r}; got {names!r}")
    entries: dict[str, None] = {}
    for name in names:
        if type(name) is not str:
            got = f"{type(name)!r}: {name!r}"
            raise TypeError(f"{argname}: need {str!r} items; got a {got}")
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            address = None
        if address is not None:
            entries[f"IP:{address}"] = None
            continue
        labels = name.split(".")
        if len(name) > _MAX_DNS_NAME or not all(map(_DNS_LABEL.fullmatch, labels)):
            raise ValueError(f"{argname}: not a host name nor an IP address: {name!r}")
        entries[f"DNS:{name}"] = None
    if not entries:
        raise ValueError(f"{argname}: need at least one name; got none")
    return ", ".join(entries)


def create_ca(key_file: str, subject: str) -> bytes:
    """Return a self-signed CA certificate (PEM, SHA-384, :data:`DAYS` days)."""
    return _openssl(
        "req", "-new", "-x509", "-sha384", "-days", str(DAYS),
        "-config", "/dev/stdin", "-key", _check_str("key_file", key_file),
        "-subj", _check_str("subject", subject),
        stdin=_OPENSSL_CNF,
    )  # fmt: skip


def create_csr(key_file: str, subject: str) -> bytes:
    """Return a certificate signing request (PEM, SHA-384)."""
    return _openssl(
        "req", "-new", "-sha384",
        "-config", "/dev/stdin", "-key", _check_str("key_file", key_file),
        "-subj", _check_str("subject", subject),
        stdin=_OPENSSL_CNF,
    )  # fmt: skip


def issue_cert(
    csr_file: str,
    ca_file: str,
    key_file: str,
    srl_file: str,
    alt_names: Iterable[str] = (),
) -> bytes:
    """Return the certificate for *csr_file* signed by the CA (*ca_file*, *key_file*).

    *srl_file* holds the CA's serial number; it is created when missing.
    The certificate may serve both as a server and as a client certificate.
    With *alt_names* (host names and IP addresses, see :func:`make_alt_names`)
    it carries a subjectAltName extension listing them.
    """
    config = _OPENSSL_CNF
    if isinstance(alt_names, str | bytes):
        raise TypeError(f"alt_names: need an iterable of {str!r}; got {alt_names!r}")
    names = tuple(alt_names)
    if names:
        value = _alt_names("alt_names", names)
        config += f"subjectAltName = {value}\n".encode("ascii")
    serial = _next_serial(_check_str("srl_file", srl_file))
    # `req -x509 -CA` signs a CSR as `x509 -req` does, in a fraction of the
    # time (no trust-store set-up); it keeps no serial file, so Python does.
    cert = _openssl(
        "req", "-x509", "-sha384", "-days", str(DAYS),
        "-in", _check_str("csr_file", csr_file),
        "-CA", _check_str("ca_file", ca_file),
        "-CAkey", _check_str("key_file", key_file),
        "-set_serial", f"0x{serial:X}",
        "-config", "/dev/stdin", "-extensions", "leaf_ext",
        stdin=config,
    )  # fmt: skip
    with open(srl_file, "w") as f:
        f.write(f"{serial:X}\n")
    return cert


# Bits of the random first serial number of a CA (RFC 5280 §4.1.2.2 allows
# up to 20 octets and needs a positive number).
_SERIAL_BITS = 159


def _next_serial(srl_file: str) -> int:
    """The serial after the one in *srl_file* (hex, as OpenSSL writes it).

    A missing file starts the CA at a random positive serial.
    """
    try:
        with open(srl_file) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return secrets.randbits(_SERIAL_BITS) | 1
    try:
        return int(text, 16) + 1
    except ValueError:
        raise ValueError(f"srl_file: not a hex serial number: {text!r}") from None


def get_pubkey(key_data: bytes) -> bytes:
    """Return the PEM public key of the PEM private key *key_data*.

    An ECDSA key in the PKCS #8 form :func:`create_ec_key` writes carries its
    public key, which is read out here in Python; any other key goes through
    ``openssl pkey -pubout``.  Both give the same bytes (a test checks it).
    """
    _check_bytes("key_data", key_data)
    pubkey = _ec_pubkey(key_data)
    if pubkey is not None:
        return pubkey
    return _openssl("pkey", "-pubout", stdin=key_data)


# DER (X.690) of the id-ecPublicKey OID, 1.2.840.10045.2.1 (RFC 5480 §2.1.1).
_EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")
_PEM_PRIVATE = (b"-----BEGIN PRIVATE KEY-----\n", b"-----END PRIVATE KEY-----\n")
_PEM_PUBLIC = (b"-----BEGIN PUBLIC KEY-----\n", b"-----END PUBLIC KEY-----\n")


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """The DER item at *pos*: ``(tag, content start, end)``; ValueError if cut."""
    tag, size = data[pos], data[pos + 1]
    start = pos + 2
    if size & 0x80:
        count = size & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + size > len(data):
        raise ValueError("truncated DER item")
    return tag, start, start + size


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _ec_pubkey(key_data: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo PEM of a PKCS #8 EC key, or None if not one.

    PrivateKeyInfo (RFC 5208 §5) holds the algorithm identifier and, inside
    its privateKey octets, an ECPrivateKey (RFC 5915 §3) whose optional [1]
    field is the public key.  SubjectPublicKeyInfo (RFC 5480 §2) is that same
    algorithm identifier followed by that same BIT STRING.
    """
    begin, end = _PEM_PRIVATE
    if not (key_data.startswith(begin) and key_data.endswith(end)):
        return None
    try:
        der = base64.b64decode(key_data[len(begin) : -len(end)], validate=False)
        tag, pos, _ = _der_item(der, 0)  # PrivateKeyInfo
        if tag != 0x30:
            return None
        _, _, pos = _der_item(der, pos)  # version
        tag, algid_start, pos = _der_item(der, pos)  # AlgorithmIdentifier
        if tag != 0x30 or not der[algid_start:pos].startswith(_EC_PUBLIC_KEY_OID):
            return None
        algid = b"\x30" + _der_length(pos - algid_start) + der[algid_start:pos]
        tag, inner, _ = _der_item(der, pos)  # privateKey OCTET STRING
        if tag != 0x04:
            return None
        tag, pos, stop = _der_item(der, inner)  # ECPrivateKey
        if tag != 0x30:
            return None
        while pos < stop:
            tag, start, pos = _der_item(der, pos)
            if tag == 0xA1:  # [1] publicKey
                btag, _, bend = _der_item(der, start)
                if btag != 0x03:
                    return None
                bitstring = der[start:bend]
                body = algid + bitstring
                spki = b"\x30" + _der_length(len(body)) + body
                text = base64.b64encode(spki)
                lines = [text[i : i + 64] + b"\n" for i in range(0, len(text), 64)]
                return _PEM_PUBLIC[0] + b"".join(lines) + _PEM_PUBLIC[1]
    except (ValueError, IndexError):
        return None
    return None


def get_csr_pubkey(csr_data: bytes) -> bytes:
    """Return the PEM public key inside the PEM CSR *csr_data*."""
    return _openssl(
        "req", "-pubkey", "-noout", stdin=_check_bytes("csr_data", csr_data)
    )


def get_cert_pubkey(cert_data: bytes) -> bytes:
    """Return the PEM public key inside the PEM certificate *cert_data*."""
    return _openssl(
        "x509", "-pubkey", "-noout", stdin=_check_bytes("cert_data", cert_data)
    )


def checked_hostnames(hostnames: Iterable[str]) -> tuple[str, ...]:
    """*hostnames* as a tuple, each checked as :func:`make_alt_names` does.

    Internal interface, absent from ``__all__`` (see :func:`check_bits`).
    """
    if isinstance(hostnames, str | bytes):
        raise TypeError(f"hostnames: need an iterable of {str!r}; got {hostnames!r}")
    names = tuple(hostnames)
    if names:
        _alt_names("hostnames", names)
    return names


class PKI:
    """Keys and certificates in one directory, each file named ``{id}.{ext}``.

    An *id* is :func:`hash_pubkey` of a key's public key; it is also the
    common name of the certificate made for that key. Extensions: ``key``,
    ``ca`` (a self-signed CA certificate), ``csr``, ``cert``, ``srl``.
    """

    def __init__(self, ssldir: str) -> None:
        _check_str("ssldir", ssldir)
        if not os.path.isdir(ssldir):
            raise ValueError(f"ssldir: not a directory: {ssldir!r}")
        self.ssldir = ssldir

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.ssldir!r})"

    def path(self, id: str, ext: str) -> str:
        """Return the path of ``{id}.{ext}`` in :attr:`ssldir`."""
        return os.path.join(self.ssldir, f"{id}.{ext}")

    def create_key(self, bits: int = 4096) -> str:
        """Write a new RSA key as ``{id}.key`` and return its id."""
        return self._save_key(create_key(bits))

    def create_ec_key(self, curve: str = "P-256") -> str:
        """Write a new ECDSA key as ``{id}.key`` and return its id."""
        return self._save_key(create_ec_key(curve))

    def _save_key(self, key_data: bytes) -> str:
        id = hash_pubkey(get_pubkey(key_data))
        safe_write(self.path(id, "key"), key_data)
        return id

    def create_ca(self, id: str) -> str:
        """Write the self-signed CA certificate ``{id}.ca``; return its path."""
        ca_file = self.path(id, "ca")
        safe_write(ca_file, create_ca(self.path(id, "key"), make_subject(id)))
        return ca_file

    def create_csr(self, id: str) -> str:
        """Write a CSR ``{id}.csr`` for key *id*; return its path."""
        csr_file = self.path(id, "csr")
        safe_write(csr_file, create_csr(self.path(id, "key"), make_subject(id)))
        return csr_file

    def issue_cert(self, id: str, ca_id: str, hostnames: Iterable[str] = ()) -> str:
        """Sign ``{id}.csr`` with CA *ca_id*, write ``{id}.cert``; return its path.

        The certificate's subjectAltName lists *id* (its common name) and then
        *hostnames*: host names and IP addresses a client may reach it under.
        """
        names = (_check_str("id", id), *checked_hostnames(hostnames))
        cert_data = issue_cert(
            self.path(id, "csr"),
            self.path(ca_id, "ca"),
            self.path(ca_id, "key"),
            self.path(ca_id, "srl"),
            names,
        )
        cert_file = self.path(id, "cert")
        safe_write(cert_file, cert_data)
        return cert_file

    def get_server_sslconfig(self, server_id: str, client_ca_id: str) -> dict[str, str]:
        """Return a server sslconfig requiring client certs from *client_ca_id*."""
        return {
            "cert_file": self.path(server_id, "cert"),
            "key_file": self.path(server_id, "key"),
            "ca_file": self.path(client_ca_id, "ca"),
        }

    def get_anonymous_server_sslconfig(self, server_id: str) -> dict[str, object]:
        """Return a server sslconfig that lets clients connect without a certificate."""
        return {
            "cert_file": self.path(server_id, "cert"),
            "key_file": self.path(server_id, "key"),
            "allow_unauthenticated_clients": True,
        }

    def get_client_sslconfig(
        self, server_ca_id: str, client_id: str
    ) -> dict[str, object]:
        """Return a client sslconfig presenting *client_id*'s certificate."""
        return {
            "ca_file": self.path(server_ca_id, "ca"),
            "check_hostname": False,
            "cert_file": self.path(client_id, "cert"),
            "key_file": self.path(client_id, "key"),
        }

    def get_anonymous_client_sslconfig(self, server_ca_id: str) -> dict[str, object]:
        """Return a client sslconfig trusting *server_ca_id*, without a certificate."""
        return {"ca_file": self.path(server_ca_id, "ca"), "check_hostname": False}

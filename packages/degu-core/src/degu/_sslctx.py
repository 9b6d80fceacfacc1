"""Build and check the ``ssl.SSLContext`` behind SSLServer and SSLClient.

An *sslconfig* is a plain dict so that it can cross a process
boundary; this module turns one into a context and decides whether a context
handed in by an application is strong enough to serve or speak HTTPS with.

Protocol policy (docs/reference/tls.rst): TLS 1.3 is preferred and TLS 1.2 is the
floor; TLS 1.2 is limited to forward-secret ECDHE key exchange with AEAD
ciphers; TLS compression is off. The sslconfig keys, their validation and the
client-certificate rules are those of Degu 0.19 (docs/explanation/departures.rst).

No sockets here: wrapping and handshaking belong to degu.server/degu.client,
but for the socket class that hands a client's TLS session back to it for
resumption (TLSSessions, docs/reference/tls.rst).
Nothing here may emit a DeprecationWarning, so the deprecated ``OP_NO_TLSv1*``
flags are only ever *read* (to judge contexts built by others), never set.
"""

from __future__ import annotations

import errno
import os
import ssl
from collections import deque

from degu._checks import TYPE_ERROR
from degu._common import TYPE_CHECKING
from degu._log import LazyLogger

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "TLS12_CIPHERS",
    "ResumableSSLSocket",
    "TLSSessions",
    "build_client_sslctx",
    "build_server_sslctx",
    "get_client_sslctx",
    "get_server_sslctx",
]

# The CERT_NONE warning goes to the server's logger (docs/reference/tls.rst).
log = LazyLogger("degu.server")

#: Lowest protocol version a Degu context allows (docs/reference/tls.rst).
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

#: OpenSSL cipher string for TLS 1.2: ECDHE key exchange (forward secrecy) with
#: AES-GCM or ChaCha20-Poly1305, RSA or ECDSA certificates. TLS 1.3 suites are
#: configured separately by OpenSSL and are all AEAD already.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

#: Server options: 0.19's set plus no client-initiated TLS 1.2
#: renegotiation, a cheap way for a client to make the server burn CPU.
SERVER_OPTIONS = (
    ssl.OP_NO_COMPRESSION
    | ssl.OP_SINGLE_ECDH_USE
    | ssl.OP_CIPHER_SERVER_PREFERENCE
    | ssl.OP_NO_RENEGOTIATION
)

#: Session tickets a server sends after each handshake (OpenSSL's default is
#: 2).  Degu clients resume with the newest one only, and each ticket costs
#: the server an encryption and the client a decoding on every connection:
#: ~0.18 ms of a 1.5 ms full mutual-TLS handshake (both ends in one process
#: over a socketpair, OpenSSL 3.0, medians of 7 interleaved rounds).
SERVER_TICKETS = 1

#: Resumable sessions one SSLClient keeps, newest first (docs/reference/tls.rst).
MAX_SESSIONS = 8

#: sslconfig keys holding paths: each must be absolute and normalized.
PATH_KEYS = ("cert_file", "key_file", "ca_file", "ca_path")

# Fixed-version methods that allow something below TLS 1.2 (names, so that
# no deprecated constant is touched; some may be absent from this OpenSSL).
_OLD_PROTOCOLS = frozenset(
    {"PROTOCOL_SSLv2", "PROTOCOL_SSLv3", "PROTOCOL_TLSv1", "PROTOCOL_TLSv1_1"}
)


def _check_sslconfig_type(sslconfig: object) -> dict[str, Any]:
    if type(sslconfig) is not dict:
        raise TypeError(
            TYPE_ERROR.format("sslconfig", dict, type(sslconfig), sslconfig)
        )
    return sslconfig


def _check_paths(sslconfig: dict[str, Any]) -> None:
    """Every path key present must be an absolute, normalized ``str``."""
    for key in PATH_KEYS:
        if key not in sslconfig:
            continue
        value = sslconfig[key]
        if type(value) is not str:
            name = f"sslconfig[{key!r}]"
            raise TypeError(TYPE_ERROR.format(name, str, type(value), value))
        if os.path.abspath(value) != value:
            # The misspelling is 0.19's and is kept (docs/reference/tls.rst), so callers
            # matching on the message keep working.
            raise ValueError(
                f"sslconfig[{key!r}] is not an absulute, normalized path: {value!r}"
            )


def _require_exists(sslconfig: dict[str, Any], *keys: str) -> None:
    # OpenSSL reports a missing file as a bare ENOENT without its name; say
    # which sslconfig key points nowhere instead.
    for key in keys:
        value = sslconfig.get(key)
        if value is not None and not os.path.exists(value):
            raise FileNotFoundError(
                errno.ENOENT, f"sslconfig[{key!r}]: no such file or directory", value
            )


def _load(
    load: Callable[[Any, Any], object],
    keys: tuple[str, str],
    first: str | None,
    second: str | None,
) -> None:
    # ssl.SSLError does not say which file it could not use: the note names
    # the two sslconfig keys and their values.
    try:
        load(first, second)
    except ssl.SSLError as e:
        e.add_note(
            f"while loading sslconfig[{keys[0]!r}]={first!r}, "
            f"sslconfig[{keys[1]!r}]={second!r}"
        )
        raise


def _load_cert_chain(
    sslctx: ssl.SSLContext, cert_file: str, key_file: str | None
) -> None:
    _load(sslctx.load_cert_chain, ("cert_file", "key_file"), cert_file, key_file)


def _load_verify_locations(sslctx: ssl.SSLContext, sslconfig: dict[str, Any]) -> None:
    ca_file, ca_path = sslconfig.get("ca_file"), sslconfig.get("ca_path")
    _load(sslctx.load_verify_locations, ("ca_file", "ca_path"), ca_file, ca_path)


def _apply_protocol_policy(sslctx: ssl.SSLContext) -> None:
    """TLS 1.3 preferred, TLS 1.2 the floor, TLS 1.2 limited to ECDHE+AEAD."""
    sslctx.minimum_version = MINIMUM_VERSION
    # No maximum_version: whatever newer version OpenSSL gains is welcome.
    sslctx.set_ciphers(TLS12_CIPHERS)
    sslctx.options |= ssl.OP_NO_COMPRESSION


def build_server_sslctx(sslconfig: dict[str, Any]) -> ssl.SSLContext:
    """Build the server ``ssl.SSLContext`` described by *sslconfig*.

    Client certificates signed by ``ca_file``/``ca_path`` are required unless
    ``allow_unauthenticated_clients`` is ``True`` (and no CA is given).

    Raises:
        TypeError: *sslconfig* is not a dict, or a path value is not a str.
        KeyError: ``cert_file`` or ``key_file`` is missing.
        ValueError: a path is not absolute and normalized, or the client
            authentication keys are inconsistent (messages in docs/reference/tls.rst).
        FileNotFoundError: a path key names a file that does not exist.
    """
    _check_sslconfig_type(sslconfig)
    _check_paths(sslconfig)
    cert_file = sslconfig["cert_file"]
    key_file = sslconfig["key_file"]
    # Decide how clients are authenticated before touching any file, so a
    # config mistake is reported as such rather than as an OpenSSL error.
    has_ca = "ca_file" in sslconfig or "ca_path" in sslconfig
    if "allow_unauthenticated_clients" in sslconfig:
        if sslconfig["allow_unauthenticated_clients"] is not True:
            raise ValueError(
                "True is only allowed value for allow_unauthenticated_clients"
            )
        if has_ca:
            raise ValueError("ca_file/ca_path with allow_unauthenticated_clients")
        anonymous = True
    elif not has_ca:
        raise ValueError(
            "must include ca_file or ca_path (or allow_unauthenticated_clients)"
        )
    else:
        anonymous = False

    _require_exists(sslconfig, "cert_file", "key_file", "ca_file", "ca_path")
    sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_protocol_policy(sslctx)
    sslctx.options |= SERVER_OPTIONS
    sslctx.num_tickets = SERVER_TICKETS
    _load_cert_chain(sslctx, cert_file, key_file)
    if anonymous:
        # get_server_sslctx() logs the warning when a server adopts it.
        sslctx.verify_mode = ssl.CERT_NONE
    else:
        # Client-certificate authentication: the handshake fails for a
        # client without a certificate issued by one of these CAs.
        sslctx.verify_mode = ssl.CERT_REQUIRED
        _load_verify_locations(sslctx, sslconfig)
    return sslctx


def build_client_sslctx(sslconfig: dict[str, Any]) -> ssl.SSLContext:
    """Build the client ``ssl.SSLContext`` described by *sslconfig*.

    The server certificate is always verified: against ``ca_file``/``ca_path``
    when given, else against the system CAs (then with hostname checking).
    ``{}`` therefore behaves like a browser.

    Raises:
        TypeError: *sslconfig* is not a dict, ``check_hostname`` is not a
            bool, or a path value is not a str.
        ValueError: ``key_file`` without ``cert_file``, a path that is not
            absolute and normalized, or ``check_hostname`` False with the
            system CAs (messages in docs/reference/tls.rst).
        FileNotFoundError: a path key names a file that does not exist.
    """
    _check_sslconfig_type(sslconfig)
    check_hostname = sslconfig.get("check_hostname", True)
    if type(check_hostname) is not bool:
        name = "sslconfig['check_hostname']"
        raise TypeError(
            TYPE_ERROR.format(name, bool, type(check_hostname), check_hostname)
        )
    if "key_file" in sslconfig and "cert_file" not in sslconfig:
        raise ValueError(
            "sslconfig['key_file'] provided without sslconfig['cert_file']"
        )
    _check_paths(sslconfig)
    has_ca = "ca_file" in sslconfig or "ca_path" in sslconfig
    if not has_ca and not check_hostname:
        # Any certificate from any public CA would then do: refuse.
        raise ValueError("check_hostname must be True when using default verify paths")

    _require_exists(sslconfig, "cert_file", "key_file", "ca_file", "ca_path")
    sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_protocol_policy(sslctx)
    # Lets an SSLClient resume its sessions (TLSSessions below).
    sslctx.sslsocket_class = ResumableSSLSocket
    sslctx.check_hostname = check_hostname
    # Always, whatever check_hostname says: P2P peers skip the hostname but
    # never the certificate chain (docs/reference/tls.rst).
    sslctx.verify_mode = ssl.CERT_REQUIRED
    if has_ca:
        _load_verify_locations(sslctx, sslconfig)
    else:
        sslctx.set_default_verify_paths()
    if "cert_file" in sslconfig:
        _load_cert_chain(sslctx, sslconfig["cert_file"], sslconfig.get("key_file"))
    return sslctx


def _check_floor(sslctx: ssl.SSLContext) -> None:
    """Refuse a context that would negotiate anything below TLS 1.2."""
    protocol = sslctx.protocol
    if protocol.name in _OLD_PROTOCOLS:
        raise ValueError(
            f"sslctx.protocol must allow only TLS 1.2 or newer; got ssl.{protocol.name}"
        )
    if protocol.name == "PROTOCOL_TLSv1_2":
        # A fixed TLS 1.2 method, as 0.19 built: it meets the floor exactly.
        return
    minimum = sslctx.minimum_version
    if minimum == ssl.TLSVersion.MAXIMUM_SUPPORTED or minimum >= MINIMUM_VERSION:
        return
    # An old-style context may rely on OP_NO_* flags instead of
    # minimum_version; OpenSSL honours both, so does this check.
    legacy = ssl.OP_NO_SSLv3 | ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1
    if sslctx.options & legacy == legacy:
        return
    raise ValueError(
        "sslctx.minimum_version must be at least ssl.TLSVersion.TLSv1_2; "
        f"got ssl.TLSVersion.{minimum.name}"
    )


def _check_no_compression(sslctx: ssl.SSLContext) -> None:
    if not sslctx.options & ssl.OP_NO_COMPRESSION:
        raise ValueError("sslctx.options must include ssl.OP_NO_COMPRESSION")


def _checked_context(
    sslctx: ssl.SSLContext | dict[str, Any],
    build: Callable[[dict[str, Any]], ssl.SSLContext],
    other_side: ssl._SSLMethod,
    side: str,
) -> ssl.SSLContext:
    """*sslctx* (built first when a dict) with the checks both sides share."""
    if isinstance(sslctx, dict):
        sslctx = build(sslctx)
    if not isinstance(sslctx, ssl.SSLContext):
        raise TypeError("sslctx must be an ssl.SSLContext")
    if sslctx.protocol == other_side:
        # Python would only refuse it at the first wrap_socket(), in a
        # connection thread; say it at construction instead.
        raise ValueError(f"sslctx.protocol cannot be ssl.{other_side.name} in a {side}")
    _check_floor(sslctx)
    _check_no_compression(sslctx)
    return sslctx


def get_server_sslctx(sslctx: ssl.SSLContext | dict[str, Any]) -> ssl.SSLContext:
    """Return the context an SSLServer will use, refusing weak ones.

    A dict is first built with :func:`build_server_sslctx`. A context that
    does not authenticate clients (``CERT_NONE``) is accepted with a warning
    on the ``degu.server`` logger.
    """
    sslctx = _checked_context(
        sslctx, build_server_sslctx, ssl.PROTOCOL_TLS_CLIENT, "server"
    )
    # CERT_OPTIONAL lets a client choose whether it is authenticated: a grey
    # area an application would have to re-check on every connection.
    if sslctx.verify_mode == ssl.CERT_OPTIONAL:
        raise ValueError("sslctx.verify_mode cannot be ssl.CERT_OPTIONAL")
    if sslctx.verify_mode == ssl.CERT_NONE:
        log.warning("Security concern: sslctx allows unauthenticated clients!")
    return sslctx


def get_client_sslctx(sslctx: ssl.SSLContext | dict[str, Any]) -> ssl.SSLContext:
    """Return the context an SSLClient will use, refusing weak ones.

    A dict is first built with :func:`build_client_sslctx`.
    """
    sslctx = _checked_context(
        sslctx, build_client_sslctx, ssl.PROTOCOL_TLS_SERVER, "client"
    )
    if sslctx.verify_mode != ssl.CERT_REQUIRED:
        raise ValueError("sslctx.verify_mode must be ssl.CERT_REQUIRED")
    return sslctx


class ResumableSSLSocket(ssl.SSLSocket):
    """An ``SSLSocket`` that hands its session to a :class:`TLSSessions` on close.

    Under TLS 1.3 the server's session tickets arrive after the handshake
    (RFC 8446 section 4.6.1), so the session is worth keeping only once the
    connection has been used: when it is closed.
    """

    #: Where to put the session; set by :meth:`TLSSessions.wrap`.
    keeper: TLSSessions | None = None

    def close(self) -> None:
        keeper, self.keeper = self.keeper, None
        if keeper is not None:
            keeper.keep(self.session)
        super().close()


class TLSSessions:
    """The resumable TLS sessions of one SSLClient, each offered once.

    A resumed handshake skips the certificates and their signatures, so it
    costs about half of a full one (bench/bench_tls.py).  The session carries
    the identities both peers proved in the full handshake (RFC 8446 section
    2.2), and only the server that issued a ticket can decrypt it: a new
    server process, or a new context, means a full handshake again.  Each
    ticket is offered on one connection only (RFC 8446 appendix C.4).
    """

    def __init__(self) -> None:
        # deque.append() and pop() are atomic: connections on several
        # threads share one SSLClient without a lock.
        self._sessions: deque[ssl.SSLSession] = deque(maxlen=MAX_SESSIONS)

    def __len__(self) -> int:
        return len(self._sessions)

    def keep(self, session: ssl.SSLSession | None) -> None:
        """Keep *session* if it holds a ticket (else it cannot be resumed)."""
        if session is not None and session.has_ticket:
            self._sessions.append(session)

    def clear(self) -> None:
        """Forget every session: the next connections handshake in full."""
        self._sessions.clear()

    def wrap(
        self, sslctx: ssl.SSLContext, sock: Any, server_hostname: str | None
    ) -> ssl.SSLSocket:
        """``sslctx.wrap_socket(sock)``, resuming the newest kept session.

        Only a context whose ``sslsocket_class`` is :class:`ResumableSSLSocket`
        (as :func:`build_client_sslctx` makes) gives sessions back; with any
        other, every handshake is a full one.
        """
        try:
            session: ssl.SSLSession | None = self._sessions.pop()
        except IndexError:
            session = None
        tls = sslctx.wrap_socket(sock, server_hostname=server_hostname, session=session)
        if isinstance(tls, ResumableSSLSocket):
            tls.keeper = self
        return tls

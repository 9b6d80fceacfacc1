"""Constants, type-check helpers and small shared types of the HTTP engine.

Everything here is pure: no socket calls, no I/O.  The numeric limits are the
values docs/explanation/limits.rst documents; every other module imports them
from here so a limit is defined exactly once.
"""

from __future__ import annotations

from collections import namedtuple

# Every module a plain server or client loads imports this TYPE_CHECKING
# instead of typing's (mypy honours any name TYPE_CHECKING), so typing is never
# imported at run time: it would add ~4 ms to the ~10 ms of
# ``import degu.server`` and ~0.5 MiB to an idle server's RSS (measured with
# bench/bench_import.py and bench/bench_http.py).  One typing import anywhere
# on those paths undoes the gain for all.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


def _check_namespace_owner() -> None:
    """Refuse to run on top of the unrelated ``degu`` distribution from PyPI.

    PyPI's ``degu`` (0.18 and older) is a different, older project whose files
    have the same paths as degu-core's (``degu/server.py``, ``degu/base.py``...)
    plus a regular ``degu/__init__.py``; installed alongside, the two overwrite
    each other (docs/installation.rst).  Here ``degu`` must be either a PEP 420
    namespace (no ``__file__``) or degu-embed's package, which carries the
    ``_DISTRIBUTION`` marker.  A look at ``sys.modules`` costs nothing, unlike
    reading the installed metadata.
    """
    import sys  # already loaded by every interpreter

    package = sys.modules.get("degu")
    origin = getattr(package, "__file__", None)
    if origin is None or getattr(package, "_DISTRIBUTION", None) == "degu-embed":
        return
    version = getattr(package, "__version__", "unknown")
    raise ImportError(
        f"degu/__init__.py at {origin!r} (version {version!r}) is not degu-embed's: "
        "the unrelated 'degu' distribution from PyPI seems to be installed "
        "alongside degu-core, and the two overwrite each other's files. "
        "Run 'python -m pip uninstall degu', then reinstall degu-core "
        "(and degu-embed if you use it)."
    )


_check_namespace_owner()

__all__ = [
    "BODY_CONSUMED",
    "BODY_ERROR",
    "BODY_READY",
    "BODY_STARTED",
    "BUF_LEN",
    "CHUNK_DATA_PER_FRAMING_BYTE",
    "CHUNK_FRAMING_ALLOWANCE",
    "DEFAULT_MIN_RATE",
    "IO_SIZE",
    "MAX_CL_LEN",
    "MAX_HEADER_COUNT",
    "MAX_INCOMING_HEADERS",
    "MAX_IO_SIZE",
    "MAX_LENGTH",
    "MAX_LINE_LEN",
    "METHODS",
    "SCRATCH_LEN",
    "EmptyPreambleError",
    "Response",
]

#: Max preamble size, read and write; on read it includes the CRLFCRLF.
BUF_LEN = 32768
#: Max chunk-size line, including its CRLF.
MAX_LINE_LEN = 4096
#: Max header-name length, incoming and outgoing.
SCRATCH_LEN = 32
#: Max digits in a content-length.
MAX_CL_LEN = 16
#: Max content-length / Range / ContentRange value: the largest 16-digit number.
MAX_LENGTH = 9999999999999999
#: Max headers in an outgoing preamble.
MAX_HEADER_COUNT = 20
#: Max header lines in an incoming preamble (a request gets 431 beyond it):
#: parsing costs per header, so this, not BUF_LEN alone, bounds what one
#: preamble costs (Apache's LimitRequestFields default is the same).
MAX_INCOMING_HEADERS = 100
#: Piece size used when iterating or streaming a Body.
IO_SIZE = 1048576
#: Bytes bodies up to this size go out in the same send as their preamble
#: (one syscall, and no Nagle/delayed-ACK stall between two small writes).
JOIN_BODY_MAX = 65536
#: Bytes of chunk framing (size lines and CRLFs) any chunked body may use ...
CHUNK_FRAMING_ALLOWANCE = 65536
#: ... and beyond it, one framing byte per this many bytes of chunk data.
#: So a long body keeps to chunks of 448 bytes or more, whose per-chunk
#: Python work stays within 3x the CPU of the same data in one chunk (at 16,
#: 96-byte chunks cost 4.4x: docs/explanation/limits.rst, bench_peers.py).
CHUNK_DATA_PER_FRAMING_BYTE = 64
#: Max single read, chunk size, bytes body, and ChunkedBody.read() total.
MAX_IO_SIZE = 16777216
#: Default ``min_rate`` of servers and clients: bytes per second a body must
#: average once its ``timeout`` is spent (docs/explanation/limits.rst).
DEFAULT_MIN_RATE = 16384

BODY_READY = 0
BODY_STARTED = 1
BODY_CONSUMED = 2
BODY_ERROR = 3
STATE_NAMES = ("BODY_READY", "BODY_STARTED", "BODY_CONSUMED", "BODY_ERROR")

#: The only request methods Degu knows; others get 501 (RFC 9110 §9.1).
METHODS = frozenset(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"])
#: Only these may carry a request body (RFC 9110 §9.3; RFC 5789 §2).
BODY_METHODS = frozenset(["PUT", "POST", "PATCH"])

# The error message formats of docs/explanation/wire.rst.
TYPE_ERROR = "{}: need a {!r}; got a {!r}: {!r}"
TYPE_ERROR2 = "{}: need a {!r}; got a {!r}"


class EmptyPreambleError(ConnectionError):
    """The peer closed the connection before sending any preamble byte."""


if TYPE_CHECKING:
    # Typed fields for a type checker, declared at the public home.
    from degu.base import Response
else:
    #: One HTTP response: what Connection.request() returns
    #: (docs/reference/base.rst).
    Response = namedtuple("Response", "status reason headers body")
    Response.__doc__ = "An HTTP response: ``(status, reason, headers, body)``."


def type_error(name: str, need: Any, obj: object) -> NoReturn:
    """Raise the ``TYPE_ERROR`` of docs/explanation/wire.rst, value included."""
    raise TypeError(TYPE_ERROR.format(name, need, type(obj), obj))


def check_int(name: str, obj: object, lo: int, hi: int) -> int:
    """Return *obj* when it is an exact ``int`` with ``lo <= obj <= hi``."""
    if type(obj) is not int:
        type_error(name, int, obj)
    if not lo <= obj <= hi:
        raise ValueError(f"need {lo} <= {name} <= {hi}; got {obj}")
    return obj


def check_length(name: str, obj: object) -> int:
    """Validate a length-like value: exact ``int`` in ``0..MAX_LENGTH``."""
    return check_int(name, obj, 0, MAX_LENGTH)


def check_tuple(name: str, obj: object, size: int) -> tuple[Any, ...]:
    """Return *obj* when it is an exact ``tuple`` of *size* items."""
    if type(obj) is not tuple:
        raise TypeError(TYPE_ERROR2.format(name, tuple, type(obj)))
    if len(obj) != size:
        raise ValueError(f"{name}: need a {size}-tuple; got a {len(obj)}-tuple")
    return obj


def check_positive(name: str, value: object) -> float:
    """Return *value*, a seconds or bytes-per-second option, when finite and > 0.

    One rule for ``timeout`` and ``min_rate`` of servers and clients
    (docs/explanation/limits.rst): an exact ``int`` or ``float``, so neither
    ``bool`` nor a numeric str passes.
    """
    if type(value) is not int and type(value) is not float:
        type_error(name, (int, float), value)
    if not 0 < value < float("inf"):
        raise ValueError(f"need 0 < {name} < inf; got {value!r}")
    return value


def address_family(address: object) -> int:
    """Return the socket family *address* selects, or raise naming what is wrong.

    A 2-tuple is IPv4, a 4-tuple IPv6 (``host`` a ``str``, ``port`` an
    ``int``); a ``str`` is an absolute, normalized Unix socket path and a
    ``bytes`` an abstract Unix socket name (docs/reference/server.rst).
    Servers and clients take the same addresses.
    """
    # Imported here, not at the top: most importers of this module (the
    # parsers and renderers) never need them, and both are loaded already
    # by the server and the client that call this.
    import os
    import socket

    if type(address) is tuple:
        if len(address) not in (2, 4):
            raise ValueError(f"address: must have 2 or 4 items; got {address!r}")
        host, port = address[0], address[1]
        if not isinstance(host, str):
            type_error("host", str, host)
        if not isinstance(port, int):
            type_error("port", int, port)
        return socket.AF_INET6 if len(address) == 4 else socket.AF_INET
    if type(address) is str:
        if address != os.path.abspath(address):
            raise ValueError(f"address: bad socket filename: {address!r}")
        return socket.AF_UNIX
    if type(address) is bytes:
        return socket.AF_UNIX
    type_error("address", (tuple, str, bytes), address)


def state_error(cls_name: str, state: int) -> ValueError:
    """The error for a body used in the wrong *state* (docs/reference/base.rst)."""
    if state == BODY_STARTED:
        what = "cannot start another operation"
    elif state == BODY_CONSUMED:
        what = "already consumed"
    else:
        what = "cannot be used"
    return ValueError(f"{cls_name}.state == {STATE_NAMES[state]}, {what}")


def wants_close(headers: dict[str, Any]) -> bool:
    """Whether a ``connection`` header asks to close the connection.

    Connection options are case-insensitive tokens in a comma-separated list
    (RFC 9110 §7.6.1), so ``Close`` and ``keep-alive, close`` count too.
    """
    value = headers.get("connection")
    if value == "close":  # the usual spelling, without splitting
        return True
    if type(value) is not str:
        return False
    return "close" in (token.strip().lower() for token in value.split(","))

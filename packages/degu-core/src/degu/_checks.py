"""Argument checks and the type-error format every degu-core module shares.

The messages are the ones docs/explanation/wire.rst specifies, so a bad
argument is refused with the same words wherever it is passed.  Pure: no I/O.
"""

from __future__ import annotations

from degu._common import TYPE_CHECKING
from degu._limits import MAX_LENGTH

if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = [
    "TYPE_ERROR",
    "TYPE_ERROR2",
    "address_family",
    "check_int",
    "check_length",
    "check_positive",
    "check_tuple",
    "refuse_method",
    "type_error",
]

# The error message formats of docs/explanation/wire.rst.
TYPE_ERROR = "{}: need a {!r}; got a {!r}: {!r}"
TYPE_ERROR2 = "{}: need a {!r}; got a {!r}"


def type_error(name: str, need: Any, obj: object) -> NoReturn:
    """Raise the ``TYPE_ERROR`` of docs/explanation/wire.rst, value included."""
    raise TypeError(TYPE_ERROR.format(name, need, type(obj), obj))


def refuse_method(method: object) -> NoReturn:
    """Raise the error for a request *method* outside ``METHODS``.

    Callers test ``type(method) is not str or method not in METHODS`` inline
    first, so a good method costs no call; the messages live here.
    """
    if type(method) is not str:  # b'GET', a str subclass: as Degu 0.19
        type_error("method", str, method)
    raise ValueError(f"bad method: {method!r}")


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

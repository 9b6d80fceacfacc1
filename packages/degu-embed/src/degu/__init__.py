"""Degu: run an embedded HTTP/1.1 server in its own process.

This module belongs to the degu-embed distribution and is the only
``__init__.py`` in the shared ``degu`` namespace.  Importing it must stay
cheap: it imports nothing at module level but :mod:`os` and :mod:`sys`, which
every interpreter has loaded before it runs any code (no socket, ssl,
threading, multiprocessing or logging), and of degu-core only
``degu._lifetime``, which imports nothing.  The process machinery
(``degu._processes``) is imported when a server is started, and the server
modules only inside the child.
"""

# Keep the namespace open: degu-core and degu-controller install their modules
# as PEP 420 portions, possibly on other sys.path entries (editable installs).
# This is pkgutil.extend_path for plain directories; pkgutil itself would pull
# in typing, re and importlib.util, about 10 ms of an otherwise free import.
__path__ = [
    *__path__,
    *{
        portion: None
        for portion in (
            __import__("os").path.join(entry, __name__)
            for entry in __import__("sys").path
            if isinstance(entry, str)
        )
        if portion not in __path__ and __import__("os").path.isdir(portion)
    },
]

# mypy treats any name TYPE_CHECKING as true; importing typing here would
# only cost time at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.process import BaseProcess
    from typing import Any, Unpack

    from degu.typehints import Address, RGIApp, ServerOptions
del TYPE_CHECKING

__version__ = "0.3.0"

# degu-core checks this marker on import: a regular degu/__init__.py without it
# belongs to PyPI's unrelated, older "degu" (docs/installation.rst).
_DISTRIBUTION = "degu-embed"

IPv6_LOOPBACK = ("::1", 0, 0, 0)
IPv6_ANY = ("::", 0, 0, 0)
IPv4_LOOPBACK = ("127.0.0.1", 0)
IPv4_ANY = ("0.0.0.0", 0)
ADDRESS_CONSTANTS = (IPv6_LOOPBACK, IPv6_ANY, IPv4_LOOPBACK, IPv4_ANY)

# The one degu-core module imported here: it imports nothing itself, and it
# holds what EmbeddedServer shares with degu.misc.TempServer.  degu-embed pins
# degu-core to the release series this private interface comes from.
from degu._lifetime import START_TIMEOUT, ServerProcessOwner  # noqa: E402

__all__ = [
    "ADDRESS_CONSTANTS",
    "START_TIMEOUT",
    "EmbeddedSSLServer",
    "EmbeddedServer",
    "IPv4_ANY",
    "IPv4_LOOPBACK",
    "IPv6_ANY",
    "IPv6_LOOPBACK",
    "start_server",
    "start_sslserver",
]


def start_server(
    address: "Address",
    build_func: "Callable[..., RGIApp]",
    *build_args: "Any",
    **options: "Unpack[ServerOptions]",
) -> "tuple[BaseProcess, Address]":
    """Start a ``degu.server.Server`` in a new process.

    In the child, ``build_func(*build_args)`` builds the app and
    ``Server(address, app, **options)`` serves it.

    Returns:
        ``(process, address)``: the daemon ``multiprocessing.Process`` and the
        address the server is bound to.
    """
    from degu._processes import ServerRecipe, start_server_process

    recipe = ServerRecipe(None, address, build_func, build_args, options)
    return start_server_process(recipe, timeout=START_TIMEOUT)


def start_sslserver(
    sslconfig: "dict[str, Any]",
    address: "Address",
    build_func: "Callable[..., RGIApp]",
    *build_args: "Any",
    **options: "Unpack[ServerOptions]",
) -> "tuple[BaseProcess, Address]":
    """Start a ``degu.server.SSLServer`` in a new process.

    ``sslconfig`` must be a ``dict`` (checked here, before the process starts);
    the child builds its ``ssl.SSLContext`` from it.
    """
    from degu._processes import ServerRecipe, check_sslconfig, start_server_process

    check_sslconfig(sslconfig)
    recipe = ServerRecipe(sslconfig, address, build_func, build_args, options)
    return start_server_process(recipe, timeout=START_TIMEOUT)


class _Embedded(ServerProcessOwner):
    # Attributes shared by EmbeddedServer and EmbeddedSSLServer, which
    # docs/reference/degu.rst keeps apart (neither is a subclass of the
    # other); stopping lives in degu._lifetime, shared with TempServer.
    address: "Address"
    build_func: "Callable[..., RGIApp]"
    build_args: "tuple[Any, ...]"
    options: "ServerOptions"


class EmbeddedServer(_Embedded):
    """A ``degu.server.Server`` running in its own process.

    ``address`` and the keyword ``options`` go unchanged to the ``Server``;
    ``build_func(*build_args)`` builds the app in the child.
    """

    def __init__(
        self,
        address: "Address",
        build_func: "Callable[..., RGIApp]",
        *build_args: "Any",
        **options: "Unpack[ServerOptions]",
    ) -> None:
        self.build_func = build_func
        self.build_args = build_args
        self.options = options
        self.process, self.address = start_server(
            address, build_func, *build_args, **options
        )

    def __repr__(self) -> str:
        return f"EmbeddedServer({self.address!r}, {self.build_func!r})"


class EmbeddedSSLServer(_Embedded):
    """A ``degu.server.SSLServer`` running in its own process.

    Like :class:`EmbeddedServer`, plus ``sslconfig`` (a ``dict``) from which
    the child builds its TLS context.
    """

    def __init__(
        self,
        sslconfig: "dict[str, Any]",
        address: "Address",
        build_func: "Callable[..., RGIApp]",
        *build_args: "Any",
        **options: "Unpack[ServerOptions]",
    ) -> None:
        from degu._processes import check_sslconfig

        check_sslconfig(sslconfig)
        self.sslconfig = sslconfig
        self.build_func = build_func
        self.build_args = build_args
        self.options = options
        self.process, self.address = start_sslserver(
            sslconfig, address, build_func, *build_args, **options
        )

    def __repr__(self) -> str:
        return f"EmbeddedSSLServer(<sslconfig>, {self.address!r}, {self.build_func!r})"

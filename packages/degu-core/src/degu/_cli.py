"""The main job: ``python -m degu.server`` (docs/reference/server.rst).

With no arguments it serves the current directory through
``degu.applib.FilesApp`` on ``127.0.0.1:8000`` (the port ``python -m
http.server`` uses; a positional port, as ``python -m http.server 8080``, or
``--address 127.0.0.1:0`` picks another) and prints the URL to open.
``--app module:callable`` serves any RGI app instead (``--factory``: call it
to get the app, as uvicorn does).  Each request is logged to stderr in Common
Log Format by ``degu.misc.AccessLogger``, because ``Server`` itself logs per
connection only (docs/reference/server.rst, "Logging"); ``--log-level``
sets the threshold.
SIGINT (Ctrl-C) and SIGTERM stop the server cleanly and exit with status 0.

Exit status: 0 after a clean stop, 1 when the server cannot start (e.g. the
port is taken), 2 for usage errors (bad option, bad ``--app``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import ssl
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TextIO

__all__ = ("main",)

#: Address served when ``--address`` is not given.
DEFAULT_ADDRESS = "127.0.0.1:8000"
#: Seconds requests in progress may take to finish after SIGINT/SIGTERM.
SHUTDOWN_GRACE = 0.5
#: ``--log-level`` choices, as the :mod:`logging` level names.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

access_log = logging.getLogger("degu.access")


class UsageError(Exception):
    """A bad option value: reported as ``error: ...`` with exit status 2."""


def parse_address(text: str) -> tuple[Any, ...] | str:
    """Turn ``host:port``, ``[ipv6]:port`` or ``/abs/path`` into a Server address.

    >>> parse_address('[::1]:8080')
    ('::1', 8080, 0, 0)
    """
    if text.startswith("/"):
        if text != os.path.abspath(text):
            raise UsageError(f"--address: not an absolute, normalized path: {text!r}")
        return text
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise UsageError(
            f"--address: need HOST:PORT, [IPV6]:PORT or /socket/path; got {text!r}"
        )
    if not (port_text.isdigit() and port_text.isascii() and int(port_text) <= 65535):
        raise UsageError(f"--address: bad port {port_text!r} in {text!r}")
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        return (host[1:-1], port, 0, 0)
    if ":" in host or "[" in host or "]" in host:
        raise UsageError(f"--address: put an IPv6 host in brackets: {text!r}")
    return (host, port)


def load_app(spec: str) -> Callable[..., Any]:
    """Import ``module:callable`` (the attribute may be dotted) and return it."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--app: need MODULE:CALLABLE; got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        # `python -m` puts the working directory first; do the same when
        # main() is called from elsewhere, so `--app myapp:app` finds ./myapp.py.
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            raise UsageError(f"--app: no module named {module_name!r}") from None
        raise UsageError(
            f"--app: importing {module_name!r} failed:\n{traceback.format_exc()}"
        ) from None
    except Exception:
        raise UsageError(
            f"--app: importing {module_name!r} failed:\n{traceback.format_exc()}"
        ) from None
    for name in attr.split("."):
        if not hasattr(obj, name):
            raise UsageError(f"--app: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, name)
    if not callable(obj):
        raise UsageError(f"--app: {spec} is not callable: {obj!r}")
    return obj  # type: ignore[no-any-return]


def load_factory(spec: str) -> Callable[..., Any]:
    """Import ``module:callable`` with :func:`load_app`, call it, return its app."""
    factory = load_app(spec)
    try:
        app = factory()
    except Exception:
        raise UsageError(
            f"--factory: calling {spec}() failed:\n{traceback.format_exc()}"
        ) from None
    if not callable(app):
        raise UsageError(f"--factory: {spec}() returned a non-callable: {app!r}")
    return app  # type: ignore[no-any-return]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"degu-core {version('degu-core')}"
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "degu-core (not installed: no version metadata)"


def _port(text: str) -> int:
    if not (text.isdigit() and text.isascii() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"need 0 to 65535; got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m degu.server`` argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m degu.server",
        description=(
            "Serve files from a directory (default: the current one), or any RGI "
            "app, over HTTP/1.1 (or HTTPS with --cert/--key). Stop with Ctrl-C."
        ),
        epilog=(
            "Each request is logged to stderr in Common Log Format. "
            "Exit status: 0 after Ctrl-C/SIGTERM, 1 if the server cannot start, "
            "2 for usage errors."
        ),
    )
    p.add_argument(
        "port",
        nargs="?",
        type=_port,
        help="listen on 127.0.0.1:PORT (as python -m http.server PORT); "
        "0 picks a free port; not with --address",
    )
    p.add_argument(
        "--version",
        action="version",
        version=_version(),
        help="print degu-core's version and exit",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--app",
        metavar="MODULE:CALLABLE",
        help="serve this RGI app, e.g. 'hello_app:app' (the module is imported "
        "from the current directory or sys.path) instead of files",
    )
    what.add_argument(
        "-d",
        "--directory",
        metavar="DIR",
        help="serve the files below DIR (default: the current directory)",
    )
    p.add_argument(
        "--factory",
        action="store_true",
        help="with --app: MODULE:CALLABLE is an app factory; call it with no "
        "arguments to get the RGI app",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="where to listen: HOST:PORT, [IPV6]:PORT or an absolute Unix socket "
        f"path; port 0 picks a free port (default: {DEFAULT_ADDRESS})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="most concurrent connections, one thread each (default: 50)",
    )
    p.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="requests served per connection before closing it (default: 1000)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="socket timeout, including the keep-alive idle wait (default: 30)",
    )
    p.add_argument(
        "--cert",
        metavar="FILE",
        help="serve HTTPS with this PEM server certificate (needs --key)",
    )
    p.add_argument("--key", metavar="FILE", help="PEM private key for --cert")
    p.add_argument(
        "--ca",
        metavar="FILE",
        help="require client certificates issued by this PEM CA (with --cert); "
        "without it any client may connect",
    )
    p.add_argument(
        "--dotfiles",
        action="store_true",
        help="also serve and list names starting with '.' (hidden by default, "
        "so .git or .env in the served directory stay private)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="do not log requests (errors are still logged)",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.lower,
        metavar="LEVEL",
        help="show degu's messages from LEVEL up: one of "
        f"{', '.join(LOG_LEVELS)}; requests are logged at info (default: "
        "requests, and the server's warnings)",
    )
    return p


def _sslconfig(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.cert is None and args.key is None:
        if args.ca is not None:
            raise UsageError("--ca needs --cert and --key")
        return None
    if args.cert is None or args.key is None:
        raise UsageError("--cert and --key go together")
    config: dict[str, Any] = {
        "cert_file": os.path.abspath(args.cert),
        "key_file": os.path.abspath(args.key),
    }
    if args.ca is not None:
        config["ca_file"] = os.path.abspath(args.ca)
    else:
        config["allow_unauthenticated_clients"] = True
    return config


def _server_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("max_connections", "max_requests", "timeout"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    return options


def url_for(address: Any, tls: bool) -> str:
    """The URL to print for a bound server address."""
    scheme = "https" if tls else "http"
    if isinstance(address, tuple):
        host = address[0]
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{address[1]}/"
    # A Unix socket has no URL of its own; curl can still reach it.
    return f"{scheme}://localhost/ (curl --unix-socket {address} {scheme}://localhost/)"


@contextlib.contextmanager
def _logging_to(
    stream: TextIO, quiet: bool, level: str | None = None
) -> Iterator[None]:
    """Send access lines and server warnings to ``stream`` while serving.

    *level* (a ``--log-level`` choice) replaces both defaults: INFO for the
    access lines, WARNING for the rest of ``degu``.  Everything is put back
    afterwards, so calling ``main()`` in a process that has its own logging
    set up (a test) leaves no handler behind.
    """
    server_log = logging.getLogger("degu")
    saved = [(log, log.level, log.propagate) for log in (access_log, server_log)]
    access_handler = logging.StreamHandler(stream)
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    # Connection-level server messages are noise here; by default keep the
    # warnings of every degu logger (server, TLS, applib).
    server_handler = logging.StreamHandler(stream)
    server_handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    threshold = None if level is None else logging.getLevelNamesMapping()[level.upper()]
    access_level = logging.INFO if threshold is None else threshold
    access_log.addHandler(access_handler)
    access_log.setLevel(max(access_level, logging.WARNING) if quiet else access_level)
    access_log.propagate = False
    server_log.addHandler(server_handler)
    server_log.setLevel(logging.WARNING if threshold is None else threshold)
    try:
        yield
    finally:
        access_log.removeHandler(access_handler)
        server_log.removeHandler(server_handler)
        for log, saved_level, propagate in saved:
            log.setLevel(saved_level)
            log.propagate = propagate


def _make_server(args: argparse.Namespace) -> tuple[Any, str]:
    from degu._sslctx import build_server_sslctx
    from degu.applib import FilesApp
    from degu.server import Server, SSLServer

    if args.port is not None and args.address is not None:
        raise UsageError(
            f"give the port once: positional {args.port} or --address {args.address}"
        )
    if args.factory and args.app is None:
        raise UsageError("--factory needs --app MODULE:CALLABLE")
    if args.port is not None:
        address: tuple[Any, ...] | str = ("127.0.0.1", args.port)
    else:
        address = parse_address(args.address or DEFAULT_ADDRESS)
    if args.app is not None:
        app = load_factory(args.app) if args.factory else load_app(args.app)
        what = args.app
    else:
        directory = os.path.abspath(args.directory or os.getcwd())
        try:
            # Listings on: the printed URL shows the directory in a browser.
            app = FilesApp(directory, listing=True, dotfiles=args.dotfiles)
        except OSError as e:
            raise UsageError(f"--directory: cannot open {directory!r}: {e}") from None
        what = directory
    if not args.quiet:
        from degu.misc import AccessLogger

        app = AccessLogger(app, access_log)
    options = _server_options(args)
    sslconfig = _sslconfig(args)
    sslctx = None
    if sslconfig is not None:
        # Built here, not inside SSLServer, so an unreadable or mismatched
        # certificate is reported as such rather than as a listen failure.
        try:
            sslctx = build_server_sslctx(sslconfig)
        except (OSError, ValueError, ssl.SSLError) as e:
            raise UsageError(f"--cert/--key/--ca: {e}") from None
    try:
        if sslctx is None:
            server = Server(address, app, **options)
        else:
            server = SSLServer(sslctx, address, app, **options)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    return server, what


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with _logging_to(sys.stderr, args.quiet, args.log_level):
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        server, what = _make_server(args)
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers are in place (e.g. while a
        # slow --app module imports): exit quietly, as the shell expects.
        return 130
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {e}", file=sys.stderr, flush=True)
        return 2
    except OSError as e:
        print(
            f"{parser.prog}: error: cannot listen on {_where(args)}: {e}\n"
            "(use --address 127.0.0.1:0 to pick a free port)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    tls = args.cert is not None
    print(f"Serving {what} at {url_for(server.address, tls)}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    return _serve(server)


def _where(args: argparse.Namespace) -> str:
    if args.port is not None:
        return f"127.0.0.1:{args.port}"
    return str(args.address or DEFAULT_ADDRESS)


def _serve(server: Any) -> int:
    stopper: list[threading.Thread] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for requests in progress; run it in a thread so
        # the signal handler returns at once and serve_forever() keeps
        # running until shutdown() tells it to return.
        if not stopper:
            t = threading.Thread(
                target=server.shutdown, args=(SHUTDOWN_GRACE,), name="degu-shutdown"
            )
            stopper.append(t)
            t.start()

    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    try:
        server.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for t in stopper:
            t.join()
    print("Stopped.", file=sys.stderr, flush=True)
    return 0

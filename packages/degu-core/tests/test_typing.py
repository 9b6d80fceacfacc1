"""A user's ``mypy --strict`` sees Degu's real types (docs/reference/typehints.rst).

One mypy run checks three programs: a correct one that must draw no error, one
whose every line marked ``# E: <code>`` is a deliberate mistake that must be
reported with that error code (and nothing else may be), and one that pins
what ``reveal_type`` names.  The correct program is also run, so its typed
view of Degu (field names, attributes, option names) is the one that works.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from degu.base import API, Request, Session
from degu.typehints import ResponseTuple

# The correct program: an RGI app class with on_connect, a function app, the
# applib middleware, Server and Client with options, request and response
# bodies of every kind.  Run as a script, it serves itself and checks answers.
GOOD = '''
from __future__ import annotations

import socket
import threading

from degu.applib import AllowedMethods, Router
from degu.base import API, BodyIter, Request, Response, Session
from degu.client import Client, Connection, SSLClient
from degu.misc import AccessLogger
from degu.server import Server, SSLServer
from degu.typehints import (
    Address, ClientOptions, Headers, OnConnect, ResponseTuple, RGIApp, ServerOptions,
)


class Echo:
    """A class-based app: echoes request bodies, greets otherwise."""

    def __call__(self, session: Session, request: Request, api: API) -> ResponseTuple:
        session.store["requests"] = session.requests + 1
        if request.body is not None:
            data = request.body.read()
            return (200, "OK", {"x-method": request.method}, data)
        name = request.shift_path() or "world"
        return (200, "OK", {"content-type": "text/plain"}, f"Hello, {name}!".encode())

    def on_connect(self, session: Session, sock: socket.socket) -> bool:
        peer: Address = session.address
        return peer is not None


def chunks(session: Session, request: Request, api: API) -> ResponseTuple:
    body = api.ChunkedBodyIter([(None, b"Hel"), (None, b"lo"), (None, b"")])
    return (200, "OK", {}, body)


def is_open(conn: Connection) -> bool:
    return not conn.closed


def read_text(response: Response) -> str:
    assert response.body is not None
    return response.body.read().decode()


def secure(sslconfig: dict[str, object], app: RGIApp) -> None:
    # Type-checked only: TLS needs certificates (see degu.misc.TempPKI).
    SSLServer(sslconfig, ("127.0.0.1", 0), app, max_requests=10)
    SSLClient(sslconfig, ("127.0.0.1", 443), ssl_host="example.com", timeout=None)


def main() -> None:
    echo = Echo()
    hook: OnConnect = echo.on_connect
    app = Router({None: echo, "chunks": AllowedMethods("GET")(chunks)})
    options: ServerOptions = {"max_connections": 4, "timeout": 10}
    server = Server(("127.0.0.1", 0), AccessLogger(app), **options)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        client_options: ClientOptions = {"timeout": 10, "on_connect": is_open}
        client = Client(server.address, **client_options)
        with client.connect() as conn:
            headers: Headers = {}
            r = conn.get("/", headers)
            status: int = r.status
            reason: str = r.reason
            assert (status, reason, read_text(r)) == (200, "OK", "Hello, world!")
            r = conn.put("/", {}, b"put")
            assert (r.headers["x-method"], read_text(r)) == ("PUT", "put")
            r = conn.post("/", {}, BodyIter([b"po", b"st"], 4))
            assert read_text(r) == "post"
            r = conn.request("GET", "/chunks", {}, None)
            assert read_text(r) == "Hello"
            r = conn.delete("/chunks", {})
            assert (r.status, r.body) == (405, None)
    finally:
        server.shutdown()
        thread.join()
    with socket.socket() as sock:
        assert hook(Session(("127.0.0.1", 1)), sock)
    print("served")


if __name__ == "__main__":
    main()
'''

# Each marked line is one mistake: mypy must report it with that code.
MISTAKES = """
from degu.base import API, Request, Session
from degu.client import Client
from degu.misc import TempServer
from degu.server import Server
from degu.typehints import ResponseTuple


def wrong_signature(request: Request) -> ResponseTuple:
    return (200, "OK", {}, None)


def text_body(session: Session, request: Request, api: API) -> ResponseTuple:
    return (200, "OK", {}, "hello")  # E: return-value


def unchecked_body(session: Session, request: Request, api: API) -> ResponseTuple:
    return (200, "OK", {}, request.body.read())  # E: union-attr


def quiet(session: Session, request: Request, api: API) -> ResponseTuple:
    return (204, "No Content", {}, None)


def peer(session: Session) -> str:
    return session.address  # E: return-value


Server(("127.0.0.1", 0), wrong_signature)  # E: arg-type
Server(("127.0.0.1", 0), quiet, max_conections=10)  # E: call-arg
Server(("127.0.0.1", 0), quiet, timeout="30")  # E: arg-type
Server(8080, quiet)  # E: arg-type
TempServer(("127.0.0.1", 0), quiet, max_request=10)  # E: call-arg
Client(("127.0.0.1", 8080), timout=5)  # E: call-arg
Client(("127.0.0.1", 8080), ssl_host="example.com")  # E: call-arg
Client(("127.0.0.1", 8080), on_connect=print)  # E: arg-type
Client(("127.0.0.1", "8080"))  # E: arg-type
conn = Client(("127.0.0.1", 8080)).connect()
conn.request("POST", "/", {}, "text")  # E: arg-type
conn.put("/", {}, 42)  # E: arg-type
conn.get("/")  # E: call-arg
n: str = conn.get("/", {}).status  # E: assignment
conn.get("/", {}).body.read()  # E: union-attr
"""

# What reveal_type names: the namedtuples under their public home, degu.base,
# and the client's Connection under degu.client, where it is defined.
REVEALS = """
from degu.base import api
from degu.client import Client

reveal_type(Client(("127.0.0.1", 80)).connect().get("/", {}))
reveal_type(api)
reveal_type(Client(("127.0.0.1", 80)).connect())
"""
REVEALED = [
    'Revealed type is "tuple[int, str, dict[str, Any], '
    "degu._bodies.Body | degu._bodies.ChunkedBody | None, "
    'fallback=degu.base.Response]"',
    'Revealed type is "tuple[type[degu._bodies.Body], ',
    'fallback=degu.base.API]"',
    'Revealed type is "degu.client.Connection"',
]

ERROR = re.compile(r"^(\w+)\.py:(\d+): error: .*\[([\w-]+)\]$")
MARK = re.compile(r"# E: ([\w-]+)$")

needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="needs mypy"
)


def _marked(source: str) -> dict[int, str]:
    """Line number -> the error code its ``# E:`` mark expects."""
    marks = {}
    for number, line in enumerate(source.splitlines(), 1):
        found = MARK.search(line)
        if found:
            marks[number] = found.group(1)
    return marks


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """mypy --strict over the three programs, in one run (a few seconds)."""
    where = tmp_path_factory.mktemp("typing")
    for name, source in (("good", GOOD), ("mistakes", MISTAKES), ("reveals", REVEALS)):
        (where / f"{name}.py").write_text(source)
    proc = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--config-file=",
            "--cache-dir", str(where / ".mypy_cache"), "--show-error-codes",
            "--no-error-summary", "--no-pretty", "--hide-error-context",
            "good.py", "mistakes.py", "reveals.py",
        ],
        capture_output=True, text=True, timeout=300, cwd=where,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "import-untyped" not in proc.stdout, proc.stdout
    return proc.stdout.splitlines()


@needs_mypy
def test_a_correct_program_draws_no_error(mypy_output: list[str]) -> None:
    assert [line for line in mypy_output if line.startswith("good.py:")] == []


@needs_mypy
def test_each_deliberate_mistake_is_reported_with_its_code(
    mypy_output: list[str],
) -> None:
    found: dict[int, set[str]] = {}
    for line in mypy_output:
        match = ERROR.match(line)
        if match and match.group(1) == "mistakes":
            found.setdefault(int(match.group(2)), set()).add(match.group(3))
    expected = _marked(MISTAKES)
    assert len(expected) == 17
    missed = {n: code for n, code in expected.items() if code not in found.get(n, ())}
    unmarked = {n: codes for n, codes in found.items() if n not in expected}
    assert (missed, unmarked) == ({}, {}), "\n".join(mypy_output)


@needs_mypy
def test_revealed_namedtuples_name_their_public_module(
    mypy_output: list[str],
) -> None:
    reveals = "\n".join(line for line in mypy_output if line.startswith("reveals.py:"))
    for fragment in REVEALED:
        assert fragment in reveals
    # Never under their private home (the body classes may be named there).
    assert "degu._bodies.Response" not in reveals
    assert "degu._bodies.API" not in reveals


def test_the_correct_program_runs(tmp_path: Path) -> None:
    """The program mypy accepts also works: the types describe run time."""
    program = tmp_path / "good.py"
    program.write_text(GOOD)
    proc = subprocess.run(
        [sys.executable, str(program)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (0, "served\n"), proc.stderr


def test_every_mistake_is_also_refused_at_run_time() -> None:
    """What mypy reports, the constructors refuse with a precise error when the
    caller is not type-checked (typing changed no run-time check)."""
    from degu.client import Client
    from degu.server import Server

    server: Any = Server  # as an untyped caller sees it
    client: Any = Client

    def app(session: Session, request: Request, api: API) -> ResponseTuple:
        raise AssertionError("never called")

    unsupported = r"^unsupported {}\(\) \*\*options: {}$"
    with pytest.raises(TypeError, match=unsupported.format("Server", "max_conections")):
        server(("127.0.0.1", 0), app, max_conections=10)
    with pytest.raises(TypeError, match="^timeout: need a "):
        server(("127.0.0.1", 0), app, timeout="30")
    with pytest.raises(TypeError, match="^address: need a "):
        server(8080, app)
    with pytest.raises(TypeError, match=unsupported.format("Client", "timout")):
        client(("127.0.0.1", 8080), timout=5)
    with pytest.raises(TypeError, match=unsupported.format("Client", "ssl_host")):
        client(("127.0.0.1", 8080), ssl_host="example.com")
    with pytest.raises(TypeError, match="^port: need a "):
        client(("127.0.0.1", "8080"))
    # A URL is a str, and a str is a valid address (a Unix socket filename),
    # so only the run-time check can refuse it.
    with pytest.raises(ValueError, match="^address: bad socket filename: 'http://"):
        client("http://localhost:8080")


def test_the_option_types_name_exactly_the_options_checked_at_run_time() -> None:
    from degu import client, server
    from degu.typehints import ClientOptions, ServerOptions, SSLClientOptions

    assert ServerOptions.__optional_keys__ == set(server.DEFAULT_OPTIONS)
    assert ClientOptions.__optional_keys__ == set(client._OPTIONS)
    extra = SSLClientOptions.__optional_keys__ - ClientOptions.__optional_keys__
    assert extra == set(client.SSLClient._extra_options)
    for options in (ServerOptions, ClientOptions, SSLClientOptions):
        assert options.__required_keys__ == frozenset()


def test_importing_degu_typehints_is_what_imports_typing() -> None:
    """Degu's modules import typing only when type-checked (it costs ~6 ms)."""
    code = (
        "import sys\n"
        "import degu.server, degu.client\n"
        "before = 'typing' in sys.modules\n"
        "import degu.typehints\n"
        "print(before, 'typing' in sys.modules)\n"
    )
    # Without coverage's variables: measuring a child imports typing.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.stdout == "False True\n", proc.stderr


def test_no_core_module_shadows_a_standard_library_module() -> None:
    """``python .../degu/server.py`` puts degu/ first on sys.path: a degu/typing.py
    would then be imported as ``typing`` by the standard library."""
    import degu.base

    core = Path(degu.base.__file__).parent
    names = {p.stem for p in core.glob("*.py")} | {p.name for p in core.iterdir()}
    assert names & sys.stdlib_module_names == set()


def test_server_module_runs_as_a_script() -> None:
    import degu.server

    proc = subprocess.run(
        [sys.executable, degu.server.__file__, "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr

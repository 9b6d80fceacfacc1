"""Tests for ``python -m degu.server`` (degu._cli), run as a user runs it."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from degu import _cli

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")
DATA = bytes(range(256)) * 16  # 4096 bytes
CLF = re.compile(
    r"^(\S+) - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
    r'"(GET|HEAD|PUT|POST|DELETE|OPTIONS|PATCH) (\S+) HTTP/1\.1" (\d{3}|-) (\d+|-)$'
)


class Running:
    """A ``python -m degu.server`` child process and the URL it printed."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "degu.server", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr_lines: list[str] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        line = self._first_line(timeout=30)
        match = re.search(r" at (\S+)", line)
        assert match, line
        self.url = match.group(1)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def _first_line(self, timeout: float) -> str:
        result: list[str] = []
        assert self.proc.stdout is not None
        reader = threading.Thread(
            target=lambda: result.append(self.proc.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            self.proc.kill()
            self.proc.wait(10)
            self._drain.join(10)
            raise AssertionError(f"no URL printed; stderr: {self.stderr_lines}")
        return result[0]

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, float, str]:
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(10)
        elapsed = time.monotonic() - start
        assert self.proc.stdout is not None
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        self._drain.join(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code, elapsed, rest

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None and not f.closed:
                f.close()
        self._drain.join(10)


@pytest.fixture
def www(tmp_path: Path) -> Path:
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_bytes(b"<p>hello</p>")
    (d / "data.bin").write_bytes(DATA)
    return d


@pytest.fixture
def run(www: Path) -> Iterator[Any]:
    started: list[Running] = []

    def start(*args: str, cwd: Path = www) -> Running:
        r = Running(list(args), cwd)
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "degu.server", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "-sS", "--max-time", "10", *args], capture_output=True, timeout=30
    )


# --- as a user runs it ---------------------------------------------------


@needs_curl
def test_cli_serves_the_current_directory_and_stops_on_SIGINT(run: Any) -> None:
    server = run("--address", "127.0.0.1:0")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url)
    assert curl(server.url).stdout == b"<p>hello</p>"
    assert curl(server.url + "data.bin").stdout == DATA
    ranged = curl("-r", "10-19", "-D", "-", server.url + "data.bin").stdout
    head, _, body = ranged.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206 Partial Content")
    assert b"content-range: bytes 10-19/4096" in head
    assert body == DATA[10:20]
    assert curl(
        "-o", "/dev/null", "-w", "%{http_code}", server.url + "nope"
    ).stdout == (b"404")
    code, elapsed, rest = server.stop(signal.SIGINT)
    assert code == 0
    assert rest == "Press Ctrl-C to stop.\n"
    assert elapsed < 5, elapsed  # the goal is < 1 s; the bound allows a busy CI
    stderr = "\n".join(server.stderr_lines)
    assert "Traceback" not in stderr
    access = [m for m in map(CLF.match, server.stderr_lines) if m]
    assert [(m[2], m[3], m[4], m[5]) for m in access] == [
        ("GET", "/", "200", "12"),
        ("GET", "/data.bin", "200", "4096"),
        ("GET", "/data.bin", "206", "10"),
        ("GET", "/nope", "404", "0"),
    ]
    assert {m[1] for m in access} == {"127.0.0.1"}


def test_cli_without_arguments_serves_the_cwd_on_port_8000(www: Path) -> None:
    probe = socket.socket()
    # As the server does, so a TIME_WAIT left by an earlier run is no obstacle.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", 8000))
    except OSError:
        pytest.skip("port 8000 is in use on this machine")
    finally:
        probe.close()
    server = Running([], www)
    try:
        assert server.url == "http://127.0.0.1:8000/"
        with socket.create_connection(("127.0.0.1", 8000), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        assert reply.endswith(b"\r\n\r\n<p>hello</p>")
        assert server.stop()[0] == 0
    finally:
        server.kill()


@needs_curl
def test_cli_stops_on_SIGTERM_with_an_idle_keepalive_client(run: Any) -> None:
    server = run("--address", "127.0.0.1:0", "--quiet")
    host, port = server.url[len("http://") : -1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")
        # The connection stays open and idle while we stop the server.
        code, elapsed, _ = server.stop(signal.SIGTERM)
    assert code == 0
    assert elapsed < 5, elapsed
    assert "Traceback" not in "\n".join(server.stderr_lines)
    assert server.stderr_lines == ["Stopped."]


@needs_curl
def test_cli_serves_an_app_with_options(run: Any, tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(
        "def app(session, request, api):\n"
        "    body = repr(session.requests).encode()\n"
        "    return (200, 'OK', {}, body)\n"
    )
    server = run(
        "--app",
        "myapp:app",
        "--address",
        "127.0.0.1:0",
        "--max-requests",
        "2",
        "--timeout",
        "5",
        "--max-connections",
        "3",
        cwd=tmp_path,
    )
    out = curl(server.url, server.url, server.url).stdout
    # Three requests on one keep-alive connection; it closes after two.
    assert out == b"010"
    assert server.stop()[0] == 0


@needs_curl
def test_cli_directory_option_and_ipv6(run: Any, www: Path, tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = run("--address", "[::1]:0", "-d", str(www), cwd=tmp_path)
    assert re.fullmatch(r"http://\[::1\]:\d+/", server.url)
    assert curl(server.url + "data.bin").stdout == DATA
    assert server.stop()[0] == 0


@needs_curl
def test_cli_lists_a_directory_and_hides_dotfiles(run: Any, www: Path) -> None:
    """The URL printed shows a listing where there is no index.html."""
    (www / "index.html").unlink()
    (www / "my file é.txt").write_bytes(b"accented")
    (www / ".env").write_bytes(b"SECRET=1")
    server = run("--address", "127.0.0.1:0")
    page = curl(server.url).stdout
    assert b"<title>Index of /</title>" in page
    assert b'href="./my%20file%20%C3%A9.txt"' in page and b"data.bin" in page
    assert b".env" not in page
    assert curl(server.url + "my%20file%20%C3%A9.txt").stdout == b"accented"
    assert curl(
        "-w", "%{http_code}", "-o", "/dev/null", server.url + ".env"
    ).stdout == (b"404")
    assert server.stop()[0] == 0
    shown = run("--address", "127.0.0.1:0", "--dotfiles")
    assert curl(shown.url + ".env").stdout == b"SECRET=1"
    assert b">.env</a>" in curl(shown.url).stdout
    assert shown.stop()[0] == 0


@needs_curl
def test_cli_unix_socket(run: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "degu.sock")
    server = run("--address", path)
    assert curl("--unix-socket", path, "http://localhost/data.bin").stdout == DATA
    assert server.stop()[0] == 0
    assert not os.path.exists(path)


def test_cli_help_explains_every_option() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for option in (
        "--app",
        "--directory",
        "--address",
        "--max-connections",
        "--max-requests",
        "--timeout",
        "--cert",
        "--key",
        "--ca",
        "--dotfiles",
        "--quiet",
        "--version",
        "--log-level",
        "--factory",
        "port",
    ):
        assert option in out.stdout
    assert "127.0.0.1:8000" in out.stdout
    assert "Common Log Format" in out.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchmodule:app", "--app: no module named 'nosuchmodule'"),
        ("badapp:nope", "--app: module 'badapp' has no attribute 'nope'"),
        ("badapp:NOT_CALLABLE", "--app: badapp:NOT_CALLABLE is not callable: 17"),
        ("broken:app", "ZeroDivisionError"),
        ("justamodule", "--app: need MODULE:CALLABLE; got 'justamodule'"),
    ],
)
def test_cli_bad_app_exits_2(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "badapp.py").write_text("NOT_CALLABLE = 17\n")
    (tmp_path / "broken.py").write_text("1 / 0\n")
    out = cli("--app", spec, "--address", "127.0.0.1:0", cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize(
    "address",
    [
        "localhost",
        "127.0.0.1:http",
        "127.0.0.1:65536",
        "::1:80",
        "rel/sock",
        "/tmp/../x.sock",
        ":80",
    ],
)
def test_cli_bad_address_exits_2(address: str) -> None:
    out = cli("--address", address)
    assert out.returncode == 2
    assert "error: --address" in out.stderr


def test_cli_bad_server_option_exits_2() -> None:
    out = cli("--address", "127.0.0.1:0", "--max-requests", "0")
    assert out.returncode == 2
    assert "max_requests" in out.stderr
    out = cli("--timeout", "soon")
    assert out.returncode == 2


def test_cli_port_in_use_exits_1() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        out = cli("--address", f"127.0.0.1:{port}")
    assert out.returncode == 1
    assert "cannot listen on" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_tls_options_must_pair(tmp_path: Path) -> None:
    assert "--cert and --key go together" in cli("--cert", "x.pem").stderr
    assert "--ca needs --cert and --key" in cli("--ca", "ca.pem").stderr


# --- TLS -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> Iterator[Any]:
    from degu.misc import TempPKI

    yield TempPKI(client_pki=True)


def _tls_get(url: str, ctx: ssl.SSLContext) -> bytes:
    host, port = url[len("https://") : -1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"GET /data.bin HTTP/1.1\r\nconnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
    return reply


def _client_ctx(pki: Any, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(pki.path(pki.server_ca_id, "ca"))
    if with_cert:
        ctx.load_cert_chain(
            pki.path(pki.client_id, "cert"), pki.path(pki.client_id, "key")
        )
    return ctx


def test_cli_tls_without_client_certificates(run: Any, pki: Any) -> None:
    cfg = pki.anonymous_server_sslconfig
    server = run(
        "--address", "127.0.0.1:0", "--cert", cfg["cert_file"], "--key", cfg["key_file"]
    )
    assert server.url.startswith("https://127.0.0.1:")
    reply = _tls_get(server.url, _client_ctx(pki, with_cert=False))
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(DATA)
    assert server.stop()[0] == 0


def test_cli_tls_requires_client_certificates_with_ca(run: Any, pki: Any) -> None:
    cfg = pki.server_sslconfig
    server = run(
        "--address",
        "127.0.0.1:0",
        "--cert",
        cfg["cert_file"],
        "--key",
        cfg["key_file"],
        "--ca",
        cfg["ca_file"],
    )
    reply = _tls_get(server.url, _client_ctx(pki, with_cert=True))
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(DATA)
    # Without a client certificate the handshake (or, under TLS 1.3, the
    # first read) fails: either way not a byte of HTTP comes back.
    try:
        refused = _tls_get(server.url, _client_ctx(pki, with_cert=False))
    except (ssl.SSLError, ConnectionError):
        refused = b""
    assert refused == b""
    assert server.stop()[0] == 0


def test_cli_unusable_certificate_exits_2(tmp_path: Path, pki: Any) -> None:
    cfg = pki.anonymous_server_sslconfig
    missing = str(tmp_path / "missing.pem")
    out = cli("--address", "127.0.0.1:0", "--cert", missing, "--key", cfg["key_file"])
    assert out.returncode == 2
    assert "error: --cert/--key/--ca: " in out.stderr
    assert "Traceback" not in out.stderr
    # A key that does not match the certificate:
    out = cli(
        "--address",
        "127.0.0.1:0",
        "--cert",
        cfg["cert_file"],
        "--key",
        pki.path(pki.client_id, "key"),
    )
    assert out.returncode == 2, out.stderr
    assert "error: --cert/--key/--ca: " in out.stderr


# --- pieces, in process --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:0", ("::1", 0, 0, 0)),
        ("[fe80::1%lo]:80", ("fe80::1%lo", 80, 0, 0)),
        ("/run/degu.sock", "/run/degu.sock"),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_parse_address(text: str, address: Any) -> None:
    assert _cli.parse_address(text) == address


def test_url_for() -> None:
    assert _cli.url_for(("127.0.0.1", 80), False) == "http://127.0.0.1:80/"
    assert _cli.url_for(("::1", 443, 0, 0), True) == "https://[::1]:443/"
    assert "--unix-socket /x.sock" in _cli.url_for("/x.sock", False)


def test_main_in_process_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli.main(["--app", "nosuchmodule_xyz:app", "--address", "127.0.0.1:0"]) == 2
    assert "--app: no module named 'nosuchmodule_xyz'" in capsys.readouterr().err
    assert _cli.main(["--address", "nowhere"]) == 2
    assert _cli.main(["-d", str(tmp_path / "missing"), "--address", "127.0.0.1:0"]) == 2
    assert "--directory: cannot open" in capsys.readouterr().err
    # Nothing is left attached to the loggers afterwards.
    assert not logging.getLogger("degu.access").handlers
    assert not logging.getLogger("degu.server").handlers


def test_main_in_process_serves_until_SIGINT(
    www: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() in the main thread: its SIGINT handler shuts the server down."""
    from degu.client import Client

    path = str(tmp_path / "inproc.sock")
    got: list[bytes] = []

    def connect_once_listening() -> Any:
        # The socket file appears at bind(), before listen(): until then a
        # connect is refused (ENOENT before the bind), so retry those only.
        deadline = time.monotonic() + 20
        while True:
            try:
                return Client(path).connect()
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def client_then_interrupt() -> None:
        try:
            # A response proves serve_forever() runs, so the handler is set.
            with connect_once_listening() as conn:
                got.append(conn.get("/data.bin", {}).body.read())
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    helper = threading.Thread(target=client_then_interrupt)
    helper.start()
    try:
        assert _cli.main(["--address", path, "-d", str(www)]) == 0
    finally:
        helper.join(20)
    assert got == [DATA]
    assert signal.getsignal(signal.SIGINT) is previous
    out, err = capsys.readouterr()
    assert out.startswith(f"Serving {www} at http://localhost/")
    assert '"GET /data.bin HTTP/1.1" 200 4096' in err
    assert err.endswith("Stopped.\n")


# --- --version, the positional port, --factory, --log-level ----------------


def test_cli_version_prints_the_degu_core_version() -> None:
    import importlib.metadata

    out = cli("--version")
    assert out.returncode == 0
    assert out.stdout == f"degu-core {importlib.metadata.version('degu-core')}\n"
    assert out.stderr == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@needs_curl
def test_cli_positional_port_listens_on_loopback(run: Any) -> None:
    """`python -m degu.server 8080`, as `python -m http.server 8080`."""
    port = _free_port()
    server = run(str(port))
    assert server.url == f"http://127.0.0.1:{port}/"
    assert curl(server.url).stdout == b"<p>hello</p>"
    assert server.stop()[0] == 0


@needs_curl
def test_cli_positional_port_0_picks_a_free_port(run: Any) -> None:
    server = run("0", "--quiet")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url)
    assert not server.url.endswith(":0/")
    assert curl(server.url + "data.bin").stdout == DATA
    assert server.stop()[0] == 0


@pytest.mark.parametrize("port", ["http", "65536", "-1", "8o"])
def test_cli_bad_positional_port_exits_2(port: str) -> None:
    out = cli("--", port)
    assert out.returncode == 2
    assert f"argument port: need 0 to 65535; got {port!r}" in out.stderr


def test_cli_port_and_address_together_exit_2() -> None:
    out = cli("8080", "--address", "127.0.0.1:0")
    assert out.returncode == 2
    assert "error: give the port once: positional 8080 or --address 127.0.0.1:0" in (
        out.stderr
    )


FACTORY_MODULE = """
import logging

CALLS = []


def create_app():
    CALLS.append(1)
    greeting = b"made by the factory %d" % len(CALLS)

    def app(session, request, api):
        logging.getLogger("degu.myapp").info("app says hello")
        return (200, "OK", {}, greeting)

    return app


def broken_factory():
    raise LookupError("no settings")


def not_a_factory():
    return 42
"""


@needs_curl
def test_cli_factory_calls_the_app_factory_once(run: Any, tmp_path: Path) -> None:
    (tmp_path / "factoryapp.py").write_text(FACTORY_MODULE)
    server = run("--app", "factoryapp:create_app", "--factory", "0", cwd=tmp_path)
    assert curl(server.url, server.url).stdout == b"made by the factory 1" * 2
    assert server.stop()[0] == 0
    access = [m for m in map(CLF.match, server.stderr_lines) if m]
    assert [m[4] for m in access] == ["200", "200"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("factoryapp:broken_factory", "LookupError: no settings"),
        ("factoryapp:not_a_factory", "returned a non-callable: 42"),
        ("factoryapp:nope", "--app: module 'factoryapp' has no attribute 'nope'"),
    ],
)
def test_cli_bad_factory_exits_2(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "factoryapp.py").write_text(FACTORY_MODULE)
    out = cli("--app", spec, "--factory", "--address", "127.0.0.1:0", cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stdout == ""


def test_cli_factory_without_app_exits_2() -> None:
    out = cli("--factory", "0")
    assert out.returncode == 2
    assert "error: --factory needs --app MODULE:CALLABLE" in out.stderr


@needs_curl
@pytest.mark.parametrize(
    ("level", "access", "app_info"),
    [(None, True, False), ("info", True, True), ("DEBUG", True, True),
     ("warning", False, False), ("error", False, False)],
)  # fmt: skip
def test_cli_log_level_sets_the_threshold_of_every_degu_logger(
    run: Any, tmp_path: Path, level: str | None, access: bool, app_info: bool
) -> None:
    (tmp_path / "factoryapp.py").write_text(FACTORY_MODULE)
    args = ["--app", "factoryapp:create_app", "--factory", "0"]
    if level is not None:
        args += ["--log-level", level]
    server = run(*args, cwd=tmp_path)
    assert curl(server.url).returncode == 0
    assert server.stop()[0] == 0
    assert any(map(CLF.match, server.stderr_lines)) is access
    assert ("INFO: app says hello" in server.stderr_lines) is app_info


def test_cli_bad_log_level_exits_2() -> None:
    out = cli("--log-level", "verbose")
    assert out.returncode == 2
    assert "argument --log-level: invalid choice: 'verbose'" in out.stderr


@needs_curl
def test_cli_quiet_wins_over_log_level_info(run: Any, tmp_path: Path) -> None:
    server = run("0", "--quiet", "--log-level", "info")
    assert curl(server.url).returncode == 0
    assert server.stop()[0] == 0
    assert not any(map(CLF.match, server.stderr_lines))


# --- refused requests in the access log --------------------------------------


def test_cli_logs_a_refused_request_as_an_access_line(run: Any) -> None:
    server = run("0")
    host, _, port = server.url.removeprefix("http://").rstrip("/").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.2\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 505 ")
    assert server.stop()[0] == 0
    refused = [line for line in server.stderr_lines if line.endswith('"-" 505 0')]
    assert len(refused) == 1
    assert refused[0].startswith("127.0.0.1 - - [")
    assert any("refused request: 505" in line for line in server.stderr_lines)


def test_cli_quiet_logs_no_refused_request_line(run: Any) -> None:
    server = run("0", "--quiet")
    host, _, port = server.url.removeprefix("http://").rstrip("/").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.2\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 505 ")
    assert server.stop()[0] == 0
    assert not any(line.endswith('"-" 505 0') for line in server.stderr_lines)
    assert any("refused request: 505" in line for line in server.stderr_lines)

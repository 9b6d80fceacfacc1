"""Tests for degu.pytest_plugin: the opt-in fixtures, used as a test suite would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from degu.client import Client, SSLClient
from degu.misc import TempPKI

if TYPE_CHECKING:
    from degu.pytest_plugin import RunningServer

# Opting in, as a user's suite does; importing the module here first would
# keep pytest from rewriting its asserts (and it warns about that).
pytest_plugins = ["degu.pytest_plugin"]


class WhoAmI:
    """Module level, so that it pickles for a server in a child process."""

    def on_connect(self, session: Any, sock: Any) -> bool:
        cert = sock.getpeercert() if hasattr(sock, "getpeercert") else None
        subject = dict(rdn[0] for rdn in cert["subject"]) if cert else {}
        session.store["peer"] = subject.get("commonName", "None")
        return True

    def __call__(self, session: Any, request: Any, api: Any) -> Any:
        body = f"{request.method} {request.uri} pid={os.getpid()}".encode()
        return (200, "OK", {"x-peer": session.store["peer"]}, body)


whoami = WhoAmI()


@pytest.fixture
def degu_app() -> Callable[..., Any]:
    return whoami


def get(client: Client, uri: str = "/") -> tuple[int, str, str]:
    with client.connect() as conn:
        r = conn.get(uri, {})
        return r.status, r.headers["x-peer"], r.body.read().decode()


@pytest.mark.parametrize("degu_server_mode", ["thread", "process"])
def test_degu_server_and_degu_client_in_a_thread_or_a_process(
    degu_server: RunningServer, degu_client: Client, degu_server_mode: str
) -> None:
    assert degu_server.mode == degu_server_mode
    status, peer, body = get(degu_client, "/a?b")
    assert status == 200 and peer == "None"
    assert body.startswith("GET /a?b pid=")
    in_this_process = body.endswith(f"pid={os.getpid()}")
    assert in_this_process is (degu_server_mode == "thread")
    assert degu_server.address[0] == "127.0.0.1"
    assert degu_server.url == f"http://127.0.0.1:{degu_server.address[1]}/"


def test_degu_unix_server_lives_in_a_private_directory(
    degu_unix_server: RunningServer,
) -> None:
    path = degu_unix_server.address
    assert isinstance(path, str) and len(path) < 108
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    assert get(degu_unix_server.client())[0] == 200
    with pytest.raises(ValueError) as e:
        degu_unix_server.url  # noqa: B018
    assert str(e.value) == f"no URL for a Unix socket server: {path!r}"
    degu_unix_server.stop()
    assert not os.path.exists(os.path.dirname(path))
    degu_unix_server.stop()  # idempotent


def test_degu_ssl_server_and_client_authenticate_each_other(
    degu_ssl_server: RunningServer,
    degu_ssl_client: Client,
    degu_pki: TempPKI,
) -> None:
    assert isinstance(degu_ssl_client, SSLClient)
    assert degu_ssl_server.pki is degu_pki
    status, peer, _ = get(degu_ssl_client)
    assert status == 200 and peer == degu_pki.client_id
    assert degu_ssl_server.url.startswith("https://127.0.0.1:")
    assert "TLS" in repr(degu_ssl_server)


def test_degu_ssl_server_verifies_with_requests(
    degu_ssl_server: RunningServer, degu_pki: TempPKI
) -> None:
    requests = pytest.importorskip("requests")
    cert = (
        degu_pki.path(degu_pki.client_id, "cert"),
        degu_pki.path(degu_pki.client_id, "key"),
    )  # type: ignore[arg-type]
    r = requests.get(
        degu_ssl_server.url, verify=degu_pki.server_ca_file, cert=cert, timeout=10
    )
    assert r.status_code == 200 and r.headers["x-peer"] == degu_pki.client_id


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_degu_start_on_ipv6_with_options(degu_start: Any) -> None:
    server = degu_start(whoami, address="tcp6", max_requests=1)
    assert server.address[0] == "::1"
    assert server.url.startswith("http://[::1]:")
    with server.client().connect() as conn:
        assert conn.get("/", {}).body.read().startswith(b"GET /")


def test_degu_start_process_mode_with_tls_on_a_unix_socket(
    degu_start: Any, degu_pki: TempPKI
) -> None:
    server = degu_start(whoami, address="unix", pki=degu_pki, mode="process")
    status, peer, body = get(server.client())
    assert (status, peer) == (200, degu_pki.client_id)
    assert not body.endswith(f"pid={os.getpid()}")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"mode": "fork"},
            ValueError,
            "mode: need one of ('thread', 'process'); got 'fork'",
        ),
        (
            {"address": "udp"},
            ValueError,
            "address: need 'tcp', 'tcp6', 'unix' or a Degu address; got 'udp'",
        ),
    ],
)
def test_degu_start_rejects_bad_arguments(
    degu_start: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as e:
        degu_start(whoami, **kwargs)
    assert str(e.value) == message
    with pytest.raises(TypeError) as e:
        degu_start("whoami")
    assert str(e.value) == "app: not callable: 'whoami'"


def test_degu_start_passes_server_errors_through(degu_start: Any) -> None:
    with pytest.raises(ValueError):
        degu_start(whoami, max_requests=0)


def test_fixtures_are_listed_in_all() -> None:
    from degu import pytest_plugin

    for name in pytest_plugin.__all__:
        assert getattr(pytest_plugin, name).__doc__


USER_CONFTEST = 'pytest_plugins = ["degu.pytest_plugin"]\n'
USER_TESTS = """
import pytest


def hello(session, request, api):
    return (200, "OK", {}, b"hello")


@pytest.fixture
def degu_app():
    return hello


@pytest.fixture
def degu_server_options():
    return {"max_requests": 2}


@pytest.mark.parametrize("degu_server_mode", ["thread", "process"])
def test_hello(degu_client, degu_server_mode):
    with degu_client.connect() as conn:
        assert conn.get("/", {}).body.read() == b"hello"
"""
FORGOT_APP = """
def test_without_app(degu_server):
    pass
"""


def _user_suite(tmp_path: Path, **files: str) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_a_user_suite_opts_in_from_its_conftest(tmp_path: Path) -> None:
    out = _user_suite(
        tmp_path, **{"conftest.py": USER_CONFTEST, "test_user.py": USER_TESTS}
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout


def test_a_user_suite_without_degu_app_is_told_what_to_define(tmp_path: Path) -> None:
    out = _user_suite(
        tmp_path, **{"conftest.py": USER_CONFTEST, "test_forgot.py": FORGOT_APP}
    )
    assert out.returncode == 1
    assert "define a fixture named degu_app that returns the RGI app" in out.stdout


def test_the_plugin_is_not_registered_without_opting_in(tmp_path: Path) -> None:
    out = _user_suite(tmp_path, **{"test_forgot.py": FORGOT_APP})
    assert out.returncode == 1
    assert "fixture 'degu_server' not found" in out.stdout

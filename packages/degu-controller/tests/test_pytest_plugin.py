"""Tests for degu.controller.pytest_plugin, used as a test suite would."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from degu.controller import Controller

# Opting in, as a user's suite does.
pytest_plugins = ["degu.controller.pytest_plugin"]


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class EchoController(Controller):
    def factory(self) -> asyncio.BaseProtocol:
        return Echo()


def echo_once(address: Any, data: bytes = b"ping") -> bytes:
    with socket.create_connection(address[:2], timeout=5) as s:
        s.sendall(data)
        return s.recv(100)


def test_degu_controller_runs_a_protocol_factory(
    degu_controller: Callable[..., Any],
) -> None:
    from degu.controller.pytest_plugin import FactoryController

    controller = degu_controller(Echo)
    assert isinstance(controller, FactoryController)
    assert controller.address[0] == "127.0.0.1"
    assert echo_once(controller.address) == b"ping"


def test_degu_controller_starts_a_given_controller_and_stops_it_after(
    degu_controller: Callable[..., Any],
) -> None:
    controller = EchoController("127.0.0.1", 0)
    assert degu_controller(controller) is controller
    assert echo_once(controller.address, b"pong") == b"pong"
    with pytest.raises(TypeError) as e:
        degu_controller(controller, "127.0.0.1")
    assert "a Controller takes no other arguments" in str(e.value)


def test_FactoryController_passes_its_options_on(
    degu_controller: Callable[..., Any],
) -> None:
    controller = degu_controller(Echo, "127.0.0.1", 0, ready_timeout=5.0)
    assert controller.ready_timeout == 5.0
    assert echo_once(controller.address) == b"ping"


def test_FactoryController_rejects_a_non_callable() -> None:
    from degu.controller.pytest_plugin import FactoryController

    with pytest.raises(TypeError) as e:
        FactoryController(Echo())  # type: ignore[arg-type]
    assert str(e.value).startswith("protocol_factory: not callable: <")


def test_degu_controller_reports_the_real_start_error(
    degu_controller: Callable[..., Any],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(OSError):
            degu_controller(Echo, "127.0.0.1", taken.getsockname()[1])


USER_SUITE = {
    "conftest.py": 'pytest_plugins = ["degu.controller.pytest_plugin"]\n',
    "test_user.py": """
        import asyncio
        import socket


        class Upper(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                self.transport.write(data.upper())


        def test_upper(degu_controller):
            controller = degu_controller(Upper)
            with socket.create_connection(controller.address[:2], timeout=5) as s:
                s.sendall(b"hi")
                assert s.recv(10) == b"HI"
    """,
}


def test_a_user_suite_opts_in_from_its_conftest(tmp_path: Path) -> None:
    for name, text in USER_SUITE.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout

"""Tests for examples/unix_socket_ipc.py: socket files, abstract names, credentials."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import unix_socket_ipc  # noqa: E402
from unix_socket_ipc import WhoAmI, ask, serve  # noqa: E402

from degu.base import Session  # noqa: E402


def test_main_runs(capsys: pytest.CaptureFixture[str]) -> None:
    unix_socket_ipc.main()
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "abstract name is bytes: bytes",
        "same process: True same uid: True",
        "refused: the server closed the connection",
        "socket file removed: True",
    ]


def test_credentials_are_the_peers(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    server, thread = serve(path, WhoAmI({os.getuid()}))
    try:
        assert ask(path) == {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "gid": os.getgid(),
            "path": ["whoami"],
        }
    finally:
        server.shutdown()
        thread.join(10)
    assert not os.path.exists(path)


def test_credentials_of_another_process_via_curl(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    path = str(tmp_path / "s.sock")
    server, thread = serve(path, WhoAmI({os.getuid()}))
    try:
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "10",
                "--unix-socket",
                path,
                "http://localhost/x",
            ],
            capture_output=True,
            timeout=20,
            check=True,
        )
    finally:
        server.shutdown()
        thread.join(10)
    answer = json.loads(out.stdout)
    assert answer["uid"] == os.getuid() and answer["pid"] != os.getpid()


def test_unlisted_uid_is_refused_before_any_request() -> None:
    server, thread = serve(b"", WhoAmI({os.getuid() + 1}))
    try:
        with pytest.raises(ConnectionError):
            ask(server.address)
    finally:
        server.shutdown()
        thread.join(10)


def test_on_connect_refuses_peers_without_credentials() -> None:
    app = WhoAmI({os.getuid()})
    assert app.on_connect(Session(("127.0.0.1", 5000)), None) is False
    assert app.on_connect(Session(b"\x00peer", (1, os.getuid(), 1)), None) is True


def test_abstract_name_leaves_no_file() -> None:
    server, thread = serve(b"", WhoAmI({os.getuid()}))
    try:
        name = server.address
        assert type(name) is bytes and name.startswith(b"\x00")
        assert ask(name)["uid"] == os.getuid()
    finally:
        server.shutdown()
        thread.join(10)
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(ConnectionRefusedError):
        s.connect(name)

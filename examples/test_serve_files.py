"""Tests for examples/serve_files.py: whole files, ranges, refusals, curl."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import serve_files  # noqa: E402
from serve_files import build_app, make_site  # noqa: E402

from degu.client import Client  # noqa: E402

# The server fixtures come from Degu's opt-in pytest plugin
# (docs/howto/pytest-fixtures.rst); the tests below only name the app.
pytest_plugins = ["degu.pytest_plugin"]

SIZE = 1024  # data.bin


@pytest.fixture
def degu_app(tmp_path: Path) -> Any:
    make_site(str(tmp_path))
    return build_app(str(tmp_path))


@pytest.fixture
def site(degu_start: Any, degu_app: Any, tmp_path: Path) -> tuple[Any, Path]:
    """Serve a fresh site; return (server address, site directory)."""
    return degu_start(degu_app, timeout=10).address, tmp_path


def test_main_shows_files_ranges_and_refusals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_files.main()
    out = capsys.readouterr().out
    assert (
        "GET /static/ -> 200 OK length=15 content-type=text/html; charset=utf-8\n"
        in out
    )
    assert "content-range=bytes 1020-1023/1024\n    b'\\xfc\\xfd\\xfe\\xff'\n" in out
    assert "-> 301 Moved Permanently length=0 location=/static/docs/\n" in out
    assert out.endswith(
        "-> 416 Range Not Satisfiable length=0 content-range=bytes */1024\n"
    )


def test_range_ending_at_the_last_byte_is_served(site: tuple[Any, Path]) -> None:
    with Client(site[0]).connect() as conn:
        r = conn.get_range("/static/data.bin", {}, 0, SIZE)
        assert (r.status, str(r.headers["content-range"])) == (206, "bytes 0-1023/1024")
        assert r.body.read() == (site[1] / "data.bin").read_bytes()


def test_range_past_the_end_is_clamped(site: tuple[Any, Path]) -> None:
    with Client(site[0]).connect() as conn:
        r = conn.get_range("/static/data.bin", {}, 1000, SIZE + 1)
        assert (r.status, str(r.headers["content-range"])) == (
            206,
            "bytes 1000-1023/1024",
        )
        assert r.body.read() == (site[1] / "data.bin").read_bytes()[1000:]


def test_range_starting_past_the_end_is_416(site: tuple[Any, Path]) -> None:
    with Client(site[0]).connect() as conn:
        r = conn.get_range("/static/data.bin", {}, SIZE, SIZE + 1)
        assert (r.status, r.headers, r.body.read()) == (
            416,
            {"content-length": 0, "content-range": "bytes */1024"},
            b"",
        )
        # 416 is an error status: the server closed the connection after it.


def test_other_methods_get_405_with_allow(site: tuple[Any, Path]) -> None:
    with Client(site[0]).connect() as conn:
        r = conn.put("/static/new.txt", {}, b"data")
        assert (r.status, r.headers["allow"]) == (405, "GET, HEAD")
    assert not (site[1] / "new.txt").exists()


def test_a_symlink_out_of_the_directory_is_404(
    site: tuple[Any, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_bytes(b"secret")
    os.symlink(secret, site[1] / "link.txt")
    with Client(site[0]).connect() as conn:
        r = conn.get("/static/link.txt", {})
        assert (r.status, r.body.read()) == (404, b"")


def test_a_big_file_is_streamed_in_pieces(site: tuple[Any, Path]) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    (site[1] / "big.bin").write_bytes(data)
    with Client(site[0]).connect() as conn:
        r = conn.get("/static/big.bin", {})
        pieces = list(r.body)  # a Body iterates in pieces of at most 1 MiB
    assert len(pieces) == 4 and b"".join(pieces) == data


def test_curl_range_request(site: tuple[Any, Path]) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    host, port = site[0]
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-r",
            "2-5",
            f"http://{host}:{port}/static/data.bin",
        ],
        capture_output=True,
        timeout=20,
        check=True,
    )
    assert out.stdout == bytes([2, 3, 4, 5])

"""Run examples/nginx/degu.conf with a real nginx in front of a Degu server.

Degu serves examples/rest_service.py on a Unix socket; nginx (Debian package
``nginx``) listens on a free loopback port and proxies to it.  Skipped when
nginx is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from rest_service import Store, build_app  # noqa: E402

from degu.server import Server  # noqa: E402

CONF = HERE / "nginx" / "degu.conf"
NGINX = shutil.which("nginx") or (
    "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
)
#: How long nginx may take to start listening or to exit.
NGINX_DEADLINE = 10.0

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)"
)


def render_conf(socket_path: str, port: int) -> str:
    """degu.conf with its two marked lines pointed at this test's addresses."""
    text = CONF.read_text()
    for old, new in (
        ("server unix:/run/degu/app.sock;", f"server unix:{socket_path};"),
        ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Poll until nginx accepts connections, it exits, or the deadline passes."""
    deadline = time.monotonic() + NGINX_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)  # polling with a deadline, not settling
    raise TimeoutError(f"nginx did not listen on port {port}")


@pytest.fixture
def url() -> Iterator[str]:
    """Degu on a Unix socket, nginx in front; yield nginx's base URL."""
    # When the tests run as root, nginx's workers run as another user
    # ("nobody"): they must be able to reach the socket, as a real
    # deployment's nginx user must (see docs/howto/behind-nginx.rst).
    tmp = tempfile.mkdtemp(prefix="degu-nginx-")
    os.chmod(tmp, 0o711)
    sock_path = os.path.join(tmp, "app.sock")
    server = Server(sock_path, build_app(Store()), timeout=10)
    os.chmod(sock_path, 0o666)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proc = None
    try:
        port = free_port()
        conf = os.path.join(tmp, "degu.conf")
        Path(conf).write_text(render_conf(sock_path, port))
        assert NGINX is not None
        proc = subprocess.Popen(
            [NGINX, "-e", "stderr", "-p", tmp, "-c", conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.communicate(timeout=NGINX_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=NGINX_DEADLINE)
        server.shutdown()
        thread.join(10)
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(method: str, url: str, body: Any = None, **headers: str) -> Any:
    request = urllib.request.Request(url, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def test_rest_service_through_nginx(url: str) -> None:
    assert fetch("PUT", url + "/items/a", b'{"x": 1}')[0] == 201
    assert fetch("PUT", url + "/items/a", b'{"x": 2}')[0] == 204
    assert fetch("GET", url + "/items") == (200, b'["a"]')
    assert fetch("GET", url + "/items/a") == (200, b'{"x": 2}')
    assert fetch("DELETE", url + "/items/a")[0] == 204
    assert fetch("GET", url + "/items/a")[0] == 404


def test_chunked_upload_is_streamed_through(url: str) -> None:
    # http.client sends a generator body chunked; nginx (request buffering
    # off, HTTP/1.1 upstream) passes it on chunked, and Degu reads it.
    body = iter([b"[1, ", b"2, ", b"3]"])
    assert (
        fetch("PUT", url + "/items/c", body, **{"Transfer-Encoding": "chunked"})[0]
        == 201
    )
    assert json.loads(fetch("GET", url + "/items/c")[1]) == [1, 2, 3]


def test_browser_headers_degu_would_refuse_are_dropped(url: str) -> None:
    # Sent straight to Degu, this header gets 400 ("!" is not in Degu's
    # header character set); the config passes only chosen headers.
    status, _ = fetch("GET", url + "/items", **{"sec-ch-ua": '"Not!A Brand";v="8"'})
    assert status == 200


def test_keepalive_connections_survive_error_statuses(url: str) -> None:
    # Degu closes its side after a 400; nginx must notice and reconnect.
    for _ in range(3):
        assert fetch("PUT", url + "/items/bad", b"{nope")[0] == 400
        assert fetch("GET", url + "/items")[0] == 200


def test_render_conf_replaces_exactly_the_marked_lines() -> None:
    text = render_conf("/tmp/x.sock", 12345)
    assert "server unix:/tmp/x.sock;" in text and "listen 127.0.0.1:12345;" in text
    assert "/run/degu/app.sock" not in text and "8080" not in text

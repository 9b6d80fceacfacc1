"""FilesApp and the relaxed grammar against the tools people point at a server.

``curl -C -`` and ``wget -c`` resume downloads byte-exact; ``requests`` and
``http.client`` fetch every byte-range form, revalidate with 304, send
OPTIONS and PATCH, and reach files whose names need percent-encoding.
Each tool is skipped, with the reason, where it is not installed.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from degu.applib import FilesApp
from degu.base import Request, Session

DATA = bytes(range(256)) * 400  # 102400 bytes
SMALL = b"hello"
CURL = shutil.which("curl")
WGET = shutil.which("wget")


@pytest.fixture
def site(tmp_path: Path, live_server: Any) -> tuple[str, int]:
    www = tmp_path / "www"
    (www / "sub dir").mkdir(parents=True)
    (www / "data.bin").write_bytes(DATA)
    (www / "small.txt").write_bytes(SMALL)
    (www / "my file é.txt").write_bytes(b"accented")
    (www / ".env").write_bytes(b"SECRET=1")
    app = FilesApp(str(www), listing=True)
    live = live_server(("127.0.0.1", 0), app, timeout=5)
    host, port = live.address
    return host, port


def get(site: tuple[str, int], method: str, target: str, **headers: str) -> Any:
    conn = http.client.HTTPConnection(*site, timeout=5)
    try:
        conn.request(method, target, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("value", "status", "content_range", "data"),
    [
        ("bytes=0-", 206, "bytes 0-4/5", SMALL),
        ("bytes=1-", 206, "bytes 1-4/5", SMALL[1:]),
        ("bytes=-2", 206, "bytes 3-4/5", SMALL[3:]),
        ("bytes=-99", 206, "bytes 0-4/5", SMALL),
        ("bytes=0-99", 206, "bytes 0-4/5", SMALL),
        ("bytes=1-2", 206, "bytes 1-2/5", SMALL[1:3]),
        ("bytes=5-", 416, "bytes */5", b""),
        ("bytes=-0", 416, "bytes */5", b""),
        ("bytes=0-0,3-2", 400, None, b""),
        ("bytes=0-1,1-2", 200, None, SMALL),
        ("items=0-1", 200, None, SMALL),
    ],
)
def test_http_client_fetches_every_range_form(
    site: tuple[str, int],
    value: str,
    status: int,
    content_range: str | None,
    data: bytes,
) -> None:
    got_status, headers, body = get(site, "GET", "/small.txt", Range=value)
    assert (got_status, headers.get("content-range"), body) == (
        status,
        content_range,
        data,
    )
    if status in (200, 206):
        assert headers["accept-ranges"] == "bytes"


def test_http_client_reads_multipart_byteranges(site: tuple[str, int]) -> None:
    """The body parses as MIME with the stdlib's own email parser."""
    import email

    status, headers, body = get(site, "GET", "/data.bin", Range="bytes=0-9,-10")
    assert status == 206
    raw = f"content-type: {headers['content-type']}\r\n\r\n".encode() + body
    message = email.message_from_bytes(raw)
    assert message.is_multipart()
    parts = [(p["content-range"], p.get_payload(decode=True)) for p in message.walk()]
    assert parts[1:] == [
        ("bytes 0-9/102400", DATA[:10]),
        ("bytes 102390-102399/102400", DATA[-10:]),
    ]


def test_http_client_revalidates_with_304(site: tuple[str, int]) -> None:
    _, headers, _ = get(site, "GET", "/small.txt")
    status, again, body = get(site, "GET", "/small.txt", **{
        "If-None-Match": headers["etag"]
    })  # fmt: skip
    assert (status, body) == (304, b"")
    assert again["etag"] == headers["etag"]
    assert "content-length" not in again
    status, _, body = get(site, "GET", "/small.txt", **{
        "If-Modified-Since": headers["last-modified"]
    })  # fmt: skip
    assert (status, body) == (304, b"")


def test_http_client_reaches_percent_encoded_names(site: tuple[str, int]) -> None:
    assert get(site, "GET", "/my%20file%20%C3%A9.txt")[::2] == (200, b"accented")
    status, headers, _ = get(site, "GET", "/sub%20dir")
    assert (status, headers["location"]) == (301, "/sub%20dir/")
    status, _, page = get(site, "GET", "/")
    assert status == 200
    assert b'<a href="./my%20file%20%C3%A9.txt">my file \xc3\xa9.txt</a>' in page
    assert b".env" not in page
    assert get(site, "GET", "/.env")[0] == 404


def requests_module() -> Any:
    return pytest.importorskip("requests", reason="requests is not installed")


def test_requests_fetches_ranges_of_every_form(site: tuple[str, int]) -> None:
    requests = requests_module()
    url = f"http://{site[0]}:{site[1]}/data.bin"
    with requests.Session() as s:
        for value, expected in [
            ("bytes=100-199", DATA[100:200]),
            ("bytes=102300-", DATA[102300:]),
            ("bytes=-50", DATA[-50:]),
            ("bytes=0-999999", DATA),
        ]:
            r = s.get(url, headers={"Range": value}, timeout=5)
            assert (r.status_code, r.content) == (206, expected)
        r = s.get(url, timeout=5)
        r2 = s.get(url, headers={"If-None-Match": r.headers["etag"]}, timeout=5)
        assert (r2.status_code, r2.content) == (304, b"")
        r = s.get(f"http://{site[0]}:{site[1]}/my file é.txt", timeout=5)
        assert (r.status_code, r.content) == (200, b"accented")
    # Last, alone: the server closes after a 416 without announcing it
    # (docs/reference/server.rst, "Per connection"), so a request reusing that
    # connection races the server's FIN and may be reset.
    with requests.Session() as s:
        r = s.get(url, headers={"Range": "bytes=999999-"}, timeout=5)
        assert (r.status_code, r.headers["content-range"]) == (416, "bytes */102400")


def method_app(session: Session, request: Request, api: Any) -> Any:
    data = b"" if request.body is None else request.body.read()
    return (200, "OK", {"x-method": request.method}, data)


def test_requests_sends_OPTIONS_PATCH_and_DELETE(live_server: Any) -> None:
    """requests adds ``Content-Length: 0`` to OPTIONS and DELETE: still no body."""
    requests = requests_module()
    live = live_server(("127.0.0.1", 0), method_app, timeout=5)
    base = f"http://{live.address[0]}:{live.address[1]}"
    with requests.Session() as s:
        r = s.options(base + "/x", timeout=5)
        assert (r.status_code, r.headers["x-method"]) == (200, "OPTIONS")
        r = s.delete(base + "/x", timeout=5)
        assert (r.status_code, r.headers["x-method"]) == (200, "DELETE")
        r = s.patch(base + "/x", data=b"diff", timeout=5)
        assert (r.status_code, r.headers["x-method"], r.content) == (
            200,
            "PATCH",
            b"diff",
        )
        cookies = {"a": '{"x":1}', "b": "$y!"}
        r = s.get(base + "/x", cookies=cookies, timeout=5)
        assert r.status_code == 200


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=30, check=False)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_resumes_a_partial_download_byte_exact(
    site: tuple[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(DATA[:40000])
    url = f"http://{site[0]}:{site[1]}/data.bin"
    done = run(CURL, "--silent", "--show-error", "-C", "-", "-o", str(out),
               "--write-out", "%{http_code}", url)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, b"206"), done.stderr
    assert out.read_bytes() == DATA


@pytest.mark.skipif(WGET is None, reason="wget is not installed")
def test_wget_continues_a_partial_download_byte_exact(
    site: tuple[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "data.bin"
    out.write_bytes(DATA[:12345])
    url = f"http://{site[0]}:{site[1]}/data.bin"
    done = run(WGET, "--quiet", "--no-config", "--tries=1", "--timeout=10",
               "-c", "-O", str(out), url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == DATA


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_multi_range_gets_multipart_byteranges(site: tuple[str, int]) -> None:
    url = f"http://{site[0]}:{site[1]}/small.txt"
    done = run(CURL, "--silent", "--show-error", "-r", "0-0,4-4", "-D", "-", url)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206 Partial Content\r\n")
    assert b"content-type: multipart/byteranges; boundary=" in head
    assert b"content-range: bytes 0-0/5\r\n\r\nh\r\n--" in body
    assert b"content-range: bytes 4-4/5\r\n\r\no\r\n--" in body

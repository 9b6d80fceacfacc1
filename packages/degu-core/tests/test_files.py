"""Tests for degu.applib.FilesApp: the confined static file server."""

from __future__ import annotations

import gc
import http.client
import io
import os
import socket
import threading
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from degu import _discard, _files
from degu._limits import BUF_LEN
from degu.applib import FilesApp
from degu.base import (
    Body,
    ChunkedBody,
    OpenRange,
    Range,
    Request,
    Session,
    SuffixRange,
    api,
)

DATA = bytes(range(256)) * 40  # 10240 bytes


def req(
    method: str, *path: str, headers: Any = None, body: Any = None, query: Any = None
) -> Request:
    uri = "/" + "/".join(path) + ("" if query is None else "?" + query)
    return Request(method, uri, headers or {}, body, [], list(path), query)


def call(app: FilesApp, request: Request) -> Any:
    return app(Session(("127.0.0.1", 1)), request, api)


def read_body(response: Any) -> bytes:
    body = response[3]
    assert isinstance(body, Body)
    return b"".join(body)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A served directory ``www`` next to a secret outside it."""
    www = tmp_path / "www"
    (www / "sub").mkdir(parents=True)
    (www / "index.html").write_bytes(b"<h1>home</h1>")
    (www / "data.bin").write_bytes(DATA)
    (www / "empty.txt").write_bytes(b"")
    (www / "sub" / "index.html").write_bytes(b"sub home")
    (www / "sub" / "style.css").write_bytes(b"p{}")
    (tmp_path / "secret.txt").write_bytes(b"top secret")
    yield www


@pytest.fixture
def app(tree: Path) -> Iterator[FilesApp]:
    a = FilesApp(str(tree))
    yield a
    a.close()


def test_FilesApp_checks_dir_name(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as e:
        FilesApp(tmp_path)  # type: ignore[arg-type]
    assert str(e.value).startswith("dir_name: need a <class 'str'>; got a ")
    for bad in ("relative/dir", str(tmp_path) + "/", str(tmp_path) + "/./x"):
        with pytest.raises(ValueError) as e2:
            FilesApp(bad)
        assert str(e2.value) == f"dir_name: not absolute, normalized path: {bad!r}"
    with pytest.raises(FileNotFoundError):
        FilesApp(str(tmp_path / "missing"))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        FilesApp(str(tmp_path / "file"))


def test_FilesApp_attributes_repr_and_close(tree: Path) -> None:
    a = FilesApp(str(tree))
    assert a.dir_name == str(tree)
    assert repr(a) == f"FilesApp({str(tree)!r})"
    fd = a.dir_fd
    os.fstat(fd)
    a.close()
    a.close()  # idempotent
    with pytest.raises(OSError):
        os.fstat(fd)


def validators(tree: Path, name: str) -> dict[str, str]:
    """The etag and last-modified FilesApp sends for *name*."""
    st = (tree / name).stat()
    return {
        "etag": f'"{st.st_mtime_ns:x}-{st.st_size:x}"',
        "last-modified": formatdate(st.st_mtime, usegmt=True),
    }


def test_FilesApp_serves_a_file_with_GET(tree: Path, app: FilesApp) -> None:
    r = call(app, req("GET", "data.bin"))
    assert r[:3] == (
        200,
        "OK",
        {
            "accept-ranges": "bytes",
            "content-length": 10240,
            "content-type": "application/octet-stream",
            **validators(tree, "data.bin"),
        },
    )
    assert r[3].content_length == 10240
    assert read_body(r) == DATA


def test_FilesApp_answers_HEAD_without_a_body(tree: Path, app: FilesApp) -> None:
    r = call(app, req("HEAD", "index.html"))
    assert r == (
        200,
        "OK",
        {
            "accept-ranges": "bytes",
            "content-length": 13,
            "content-type": "text/html; charset=utf-8",
            **validators(tree, "index.html"),
        },
        None,
    )


def test_FilesApp_serves_index_html(app: FilesApp) -> None:
    assert read_body(call(app, req("GET"))) == b"<h1>home</h1>"
    assert read_body(call(app, req("GET", "sub", ""))) == b"sub home"


def test_FilesApp_redirects_a_directory_to_its_slash_form(app: FilesApp) -> None:
    r = call(app, req("GET", "sub", query="x=1"))
    assert r == (
        301,
        "Moved Permanently",
        {"content-length": 0, "location": "/sub/?x=1"},
        None,
    )
    request = Request("GET", "/files/sub", {}, None, ["files"], ["sub"], None)
    assert call(app, request)[2]["location"] == "/files/sub/"


def test_FilesApp_serves_an_empty_file(app: FilesApp) -> None:
    r = call(app, req("GET", "empty.txt"))
    assert r[:2] == (200, "OK")
    assert r[2]["content-length"] == 0
    assert r[2]["content-type"] == "text/plain; charset=utf-8"
    assert read_body(r) == b""


def test_FilesApp_content_types(tree: Path, app: FilesApp) -> None:
    for name in ("a.css", "a.tar.gz", "a.unknownext", "README"):
        (tree / name).write_bytes(b"x")
    css = "text/css; charset=utf-8"
    assert call(app, req("HEAD", "a.css"))[2]["content-type"] == css
    # A compressed file is labelled as what it is, not as what it contains.
    assert call(app, req("HEAD", "a.tar.gz"))[2]["content-type"] == "application/gzip"
    assert "content-type" not in call(app, req("HEAD", "a.unknownext"))[2]
    assert "content-type" not in call(app, req("HEAD", "README"))[2]


def test_FilesApp_missing_is_404(app: FilesApp) -> None:
    for path in (("nope",), ("sub", "nope"), ("nope", "x"), ("data.bin", "x")):
        assert call(app, req("GET", *path)) == (
            404,
            "Not Found",
            {"content-length": 0},
            None,
        )
    # A directory without index.html:
    os.unlink(os.path.join(app.dir_name, "sub", "index.html"))
    assert call(app, req("GET", "sub", "")) == (
        404,
        "Not Found",
        {"content-length": 0},
        None,
    )


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
def test_FilesApp_refuses_other_methods(app: FilesApp, method: str) -> None:
    assert call(app, req(method, "data.bin")) == (
        405,
        "Method Not Allowed",
        {"content-length": 0, "allow": "GET, HEAD"},
        None,
    )


def test_FilesApp_discards_an_unwanted_body(app: FilesApp) -> None:
    body = Body(io.BytesIO(b"x" * 100), 100)
    assert call(app, req("PUT", "f", body=body))[0] == 405
    assert body.state == 2
    chunked = ChunkedBody(io.BytesIO(b"3\r\nabc\r\n0\r\n\r\n"))
    assert call(app, req("POST", "f", body=chunked))[0] == 405
    assert chunked.state == 2


def test_discard_body_limit_edges() -> None:
    limit = _discard.MAX_DISCARD
    ok = Body(io.BytesIO(b"x" * limit), limit)
    assert _discard.discard_body(ok) is True
    assert ok.state == 2
    big = Body(io.BytesIO(b"x" * (limit + 1)), limit + 1)
    assert _discard.discard_body(big) is False
    assert big.state == 0  # not a byte read: the app answers 413 and closes

    def chunked(total: int) -> ChunkedBody:
        half = total // 2
        src = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            half,
            b"y" * half,
            total - half,
            b"y" * (total - half),
        )
        return ChunkedBody(io.BytesIO(src))

    c = chunked(limit)
    assert _discard.discard_body(c) is True
    assert c.state == 2
    c = chunked(limit + 1)
    assert _discard.discard_body(c) is False
    assert c.state != 2
    assert _discard.discard_body(None) is True


def test_refuse_body_answers_413_and_close_past_the_limit() -> None:
    limit = _discard.MAX_DISCARD
    answer = (405, "Method Not Allowed", {}, None)
    ok = Body(io.BytesIO(b"x" * limit), limit)
    assert _discard.refuse_body(ok, answer) is answer
    big = Body(io.BytesIO(b"x" * (limit + 1)), limit + 1)
    assert _discard.refuse_body(big, answer) == (
        413,
        "Content Too Large",
        {"connection": "close", "content-length": 0},
        None,
    )
    assert big.state == 0


def test_FilesApp_range_gives_206(app: FilesApp) -> None:
    r = call(app, req("GET", "data.bin", headers={"range": Range(10, 20)}))
    assert r[:2] == (206, "Partial Content")
    assert r[2]["content-length"] == 10
    assert r[2]["content-range"] == "bytes 10-19/10240"
    assert read_body(r) == DATA[10:20]
    last = call(app, req("GET", "data.bin", headers={"range": Range(10239, 10240)}))
    assert read_body(last) == DATA[-1:]
    # RFC 9110 §14.2: Range is for GET only; HEAD describes the whole file.
    head = call(app, req("HEAD", "data.bin", headers={"range": Range(0, 10)}))
    assert head[0] == 200 and head[3] is None
    assert head[2]["content-length"] == 10240


@pytest.mark.parametrize(
    ("rng", "start", "stop"),
    [
        (Range(0, 10241), 0, 10240),
        (Range(10000, 99999), 10000, 10240),
        (OpenRange(0), 0, 10240),
        (OpenRange(10230), 10230, 10240),
        (SuffixRange(2), 10238, 10240),
        (SuffixRange(99999), 0, 10240),
    ],
)
def test_FilesApp_every_single_range_form_gives_206_clamped(
    app: FilesApp, rng: Any, start: int, stop: int
) -> None:
    """RFC 9110 §14.1.1: a range past the end is clamped, not refused."""
    r = call(app, req("GET", "data.bin", headers={"range": rng}))
    assert r[:2] == (206, "Partial Content")
    assert r[2]["content-range"] == f"bytes {start}-{stop - 1}/10240"
    assert r[2]["content-length"] == stop - start
    assert read_body(r) == DATA[start:stop]


def test_FilesApp_unsatisfiable_range_is_416_with_the_length(app: FilesApp) -> None:
    for rng in (Range(10240, 10241), OpenRange(20000), SuffixRange(0)):
        r = call(app, req("GET", "data.bin", headers={"range": rng}))
        assert r == (
            416,
            "Range Not Satisfiable",
            {"content-length": 0, "content-range": "bytes */10240"},
            None,
        )
    for rng in (Range(0, 1), OpenRange(0), SuffixRange(1)):
        r = call(app, req("GET", "empty.txt", headers={"range": rng}))
        assert r[0] == 416 and r[2]["content-range"] == "bytes */0"


@pytest.mark.parametrize(
    "value",
    [
        "items=0-1",
        "bytes=0-9,5-20",  # overlapping
        "bytes=10-19,0-9",  # backwards
        ",".join(["bytes=0-0"] + [f"{i}-{i}" for i in range(2, 36, 2)]),  # 18 ranges
    ],
)
def test_FilesApp_range_list_it_will_not_split_gives_the_whole_file(
    app: FilesApp, value: str
) -> None:
    """RFC 9110 §14.2/§14.3: a server may ignore Range, and should for abuse."""
    r = call(app, req("GET", "data.bin", headers={"range": value}))
    assert r[:2] == (200, "OK") and read_body(r) == DATA


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(content-range, data) of each part of a multipart/byteranges body."""
    prefix = "multipart/byteranges; boundary="
    assert content_type.startswith(prefix)
    boundary = content_type[len(prefix) :].encode()
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    inner = body[len(boundary) + 4 : -(len(boundary) + 8)]
    parts = []
    for chunk in inner.split(b"\r\n--" + boundary + b"\r\n"):
        head, _, data = chunk.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        assert fields["content-type"] == "application/octet-stream"
        parts.append((fields["content-range"], data))
    return parts


def test_FilesApp_range_list_gives_multipart_byteranges(app: FilesApp) -> None:
    """RFC 9110 §14.6; unsatisfiable ranges in the list are left out."""
    value = "bytes=0-9, 100-109,-5,99999-"
    r = call(app, req("GET", "data.bin", headers={"range": value}))
    assert r[:2] == (206, "Partial Content")
    body = read_body(r)
    assert r[2]["content-length"] == len(body)
    assert "content-range" not in r[2]
    assert parse_multipart(r[2]["content-type"], body) == [
        ("bytes 0-9/10240", DATA[0:10]),
        ("bytes 100-109/10240", DATA[100:110]),
        ("bytes 10235-10239/10240", DATA[-5:]),
    ]


def test_FilesApp_range_list_with_one_satisfiable_range_gives_one_part(
    app: FilesApp,
) -> None:
    for value in ("bytes=0-1", "bytes=0-1,99999-", "bytes=99998-,-2"):
        r = call(app, req("GET", "data.bin", headers={"range": value}))
        assert r[0] == 206 and "boundary" not in r[2].get("content-type", "")
    r = call(app, req("GET", "data.bin", headers={"range": "bytes=0-1,99999-"}))
    assert (str(r[2]["content-range"]), read_body(r)) == ("bytes 0-1/10240", DATA[:2])


def test_FilesApp_range_list_none_satisfiable_is_416(app: FilesApp) -> None:
    r = call(app, req("GET", "data.bin", headers={"range": "bytes=99999-,-0"}))
    assert r[0] == 416 and r[2]["content-range"] == "bytes */10240"


def test_FilesApp_multipart_closes_the_file_after_the_last_byte(
    app: FilesApp,
) -> None:
    r = call(app, req("GET", "data.bin", headers={"range": "bytes=0-0,5-5"}))
    reader = r[3]._rfile
    assert reader._fd >= 0
    read_body(r)
    assert reader._fd == -1


def test_FilesApp_multipart_closes_the_file_of_an_abandoned_body(
    app: FilesApp,
) -> None:
    r = call(app, req("GET", "data.bin", headers={"range": "bytes=0-0,5-5"}))
    fd = r[3]._rfile._fd
    os.fstat(fd)
    del r
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_FilesApp_streams_large_files_without_reading_them_whole(
    tree: Path, app: FilesApp
) -> None:
    size = 40 * 1024 * 1024
    with open(tree / "big", "wb") as f:
        f.truncate(size)  # sparse: cheap to create
    r = call(app, req("GET", "big"))
    body = r[3]
    assert r[2]["content-length"] == size and body.content_length == size
    pieces = 0
    total = 0
    for piece in body:
        assert len(piece) <= 1048576
        total += len(piece)
        pieces += 1
    assert total == size and pieces >= 40


def test_FilesApp_closes_the_file_after_the_last_byte(app: FilesApp) -> None:
    r = call(app, req("GET", "data.bin"))
    reader = r[3].rfile
    assert isinstance(reader, _files._FileReader)
    fd = reader._fd
    os.fstat(fd)
    read_body(r)
    assert reader._fd == -1


def test_FilesApp_closes_the_file_of_an_abandoned_body(app: FilesApp) -> None:
    r = call(app, req("GET", "data.bin"))
    fd = r[3].rfile._fd
    os.fstat(fd)
    del r
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


# --- escape attempts: each must stay inside the served directory ---------


def test_FilesApp_dotdot_component_is_400(app: FilesApp) -> None:
    for path in ((".."), ("sub", ".."), ("sub", "..", "..", "secret.txt")):
        parts = [path] if isinstance(path, str) else list(path)
        assert call(app, req("GET", *parts)) == (
            400,
            "Bad Request",
            {"content-length": 0},
            None,
        )


def test_FilesApp_slash_or_nul_inside_a_component_is_400(app: FilesApp) -> None:
    for bad in ("../secret.txt", "/etc/passwd", "a\x00b"):
        request = Request("GET", "/x", {}, None, [], [bad], None)
        assert call(app, request) == (400, "Bad Request", {"content-length": 0}, None)


def test_FilesApp_refuses_symlink_to_outside_absolute(
    tree: Path, app: FilesApp
) -> None:
    (tree / "abs").symlink_to(tree.parent / "secret.txt")
    (tree / "etc").symlink_to("/etc")
    assert call(app, req("GET", "abs"))[0] == 404
    assert call(app, req("GET", "etc", "passwd"))[0] == 404


def test_FilesApp_refuses_relative_symlink_climbing_out(
    tree: Path, app: FilesApp
) -> None:
    (tree / "rel").symlink_to("../secret.txt")
    (tree / "sub" / "deep").symlink_to("../../secret.txt")
    (tree / "up").symlink_to("..")
    assert call(app, req("GET", "rel"))[0] == 404
    assert call(app, req("GET", "sub", "deep"))[0] == 404
    assert call(app, req("GET", "up", "secret.txt"))[0] == 404
    assert call(app, req("GET", "up", "www", "index.html"))[0] == 404


def test_FilesApp_follows_symlinks_that_stay_inside(tree: Path, app: FilesApp) -> None:
    (tree / "alias.bin").symlink_to("data.bin")
    (tree / "sub" / "home.html").symlink_to("../index.html")
    (tree / "s").symlink_to("sub")
    assert read_body(call(app, req("GET", "alias.bin"))) == DATA
    assert read_body(call(app, req("GET", "sub", "home.html"))) == b"<h1>home</h1>"
    assert read_body(call(app, req("GET", "s", "style.css"))) == b"p{}"


def test_FilesApp_bounds_symlink_loops(tree: Path, app: FilesApp) -> None:
    (tree / "loop1").symlink_to("loop2")
    (tree / "loop2").symlink_to("loop1")
    (tree / "self").symlink_to("self")
    assert call(app, req("GET", "loop1"))[0] == 404
    assert call(app, req("GET", "self"))[0] == 404


def test_FilesApp_symlink_chain_at_the_limit(tree: Path, app: FilesApp) -> None:
    limit = _files.MAX_SYMLINKS
    for i in range(limit):
        (tree / f"l{i}").symlink_to(f"l{i + 1}")
    (tree / f"l{limit}").symlink_to("data.bin")
    # l1 needs limit hops, l0 needs limit + 1.
    assert call(app, req("HEAD", "l1"))[0] == 200
    assert call(app, req("HEAD", "l0"))[0] == 404


def test_FilesApp_refuses_fifos_and_sockets_without_blocking(
    tree: Path, app: FilesApp
) -> None:
    os.mkfifo(tree / "fifo")
    assert call(app, req("GET", "fifo"))[0] == 404
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tree / "sock"))
        assert call(app, req("GET", "sock"))[0] == 404


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_FilesApp_unreadable_is_403(tree: Path, app: FilesApp) -> None:
    (tree / "private").write_bytes(b"x")
    os.chmod(tree / "private", 0)
    assert call(app, req("GET", "private")) == (
        403,
        "Forbidden",
        {"content-length": 0},
        None,
    )


def test_FilesApp_is_confined_when_its_directory_is_renamed(tree: Path) -> None:
    """The app holds a descriptor: moving the directory cannot widen it."""
    a = FilesApp(str(tree))
    try:
        moved = tree.parent / "moved"
        tree.rename(moved)
        assert read_body(call(a, req("GET", "index.html"))) == b"<h1>home</h1>"
        assert call(a, req("GET", "secret.txt"))[0] == 404
    finally:
        a.close()


# --- over real sockets ---------------------------------------------------


@pytest.fixture
def served(app: FilesApp) -> Iterator[Any]:
    from degu.server import Server

    server = Server(("127.0.0.1", 0), app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown(5)
        thread.join(10)
        assert not thread.is_alive()


def test_FilesApp_over_http_client(served: Any) -> None:
    conn = http.client.HTTPConnection(*served.address, timeout=10)
    try:
        conn.request("GET", "/data.bin")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, DATA)
        conn.request("GET", "/data.bin", headers={"Range": "bytes=100-199"})
        r = conn.getresponse()
        assert r.status == 206
        assert r.getheader("content-range") == "bytes 100-199/10240"
        assert r.read() == DATA[100:200]
        conn.request("HEAD", "/index.html")
        r = conn.getresponse()
        assert (r.status, r.getheader("content-length"), r.read()) == (200, "13", b"")
        conn.request("GET", "/missing")
        r = conn.getresponse()
        assert (r.status, r.read()) == (404, b"")
    finally:
        conn.close()


def test_FilesApp_over_degu_client_with_get_range(served: Any) -> None:
    from degu.client import Client

    conn = Client(served.address).connect()
    try:
        r = conn.get_range("/data.bin", {}, 5, 10)
        assert r.status == 206 and r.body.read() == DATA[5:10]
        r = conn.get_range("/data.bin", {}, 0, 10241)
        assert (r.status, r.body.read()) == (206, DATA)
        r = conn.get_range("/data.bin", {}, 10240, 10241)
        assert (r.status, r.body.read()) == (416, b"")
        assert r.headers["content-range"] == "bytes */10240"
    finally:
        conn.close()


def test_FilesApp_PUT_body_is_discarded_so_the_client_sees_405(served: Any) -> None:
    conn = http.client.HTTPConnection(*served.address, timeout=10)
    try:
        conn.request("PUT", "/data.bin", body=b"z" * 100000)
        r = conn.getresponse()
        assert (r.status, r.reason, r.getheader("allow")) == (
            405,
            "Method Not Allowed",
            "GET, HEAD",
        )
        r.read()
    finally:
        conn.close()


def test_FilesApp_rejects_encoded_traversal_on_the_wire(served: Any) -> None:
    """``%2e%2e`` and ``..`` never reach the app: the parser answers 400."""
    for target in ("/%2e%2e/secret.txt", "/../secret.txt", "/sub/../../secret.txt"):
        with socket.create_connection(served.address, timeout=10) as s:
            s.sendall(f"GET {target} HTTP/1.1\r\n\r\n".encode())
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 400 "), (target, reply)
        assert b"top secret" not in reply


def _exchange(address: Any, data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(data)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def test_FilesApp_discard_limit_on_the_wire(served: Any) -> None:
    """At MAX_DISCARD the body is drained and 405 sent; past it the body is
    refused unread: 413 with connection: close, then the server closes."""
    limit = _discard.MAX_DISCARD
    head = b"PUT /data.bin HTTP/1.1\r\ncontent-length: %d\r\n\r\n"
    reply = _exchange(served.address, head % limit + b"x" * limit)
    assert reply.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    # Past the limit no more than the first BUF_LEN bytes are read (the app
    # runs once they are in), so only those are sent here.
    reply = _exchange(served.address, head % (limit + 1) + b"x" * BUF_LEN)
    assert reply == (
        b"HTTP/1.1 413 Content Too Large\r\n"
        b"connection: close\r\ncontent-length: 0\r\n\r\n"
    )
    # Also when the client is still sending: the response is not lost to a
    # reset, the rest of the upload is drained for a bounded while.
    reply = _exchange(served.address, head % (limit + 1) + b"y" * 200000)
    assert reply.startswith(b"HTTP/1.1 413 Content Too Large\r\n")


# --- conditional requests (RFC 9110 §13) -----------------------------------


def test_FilesApp_if_none_match_gives_304_with_validators(
    tree: Path, app: FilesApp
) -> None:
    tags = validators(tree, "data.bin")
    for value in (tags["etag"], "W/" + tags["etag"], f'"x", {tags["etag"]}', "*"):
        for method in ("GET", "HEAD"):
            r = call(app, req(method, "data.bin", headers={"if-none-match": value}))
            assert r == (304, "Not Modified", tags, None)


def test_FilesApp_if_none_match_other_tag_gives_the_file(app: FilesApp) -> None:
    r = call(app, req("GET", "data.bin", headers={"if-none-match": '"other"'}))
    assert r[0] == 200 and read_body(r) == DATA


def test_FilesApp_if_modified_since(tree: Path, app: FilesApp) -> None:
    tags = validators(tree, "data.bin")
    mtime = int((tree / "data.bin").stat().st_mtime)
    for when, status in ((mtime, 304), (mtime + 3600, 304), (mtime - 1, 200)):
        since = formatdate(when, usegmt=True)
        r = call(app, req("GET", "data.bin", headers={"if-modified-since": since}))
        assert r[0] == status
    for bad in ("yesterday", "", "Mon, 99 Foo 2020 99:99:99 GMT"):
        r = call(app, req("GET", "data.bin", headers={"if-modified-since": bad}))
        assert r[0] == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    both = {"if-none-match": '"other"', "if-modified-since": tags["last-modified"]}
    assert call(app, req("GET", "data.bin", headers=both))[0] == 200


def test_FilesApp_if_range(tree: Path, app: FilesApp) -> None:
    tags = validators(tree, "data.bin")
    for value, status in [
        (tags["etag"], 206),
        (tags["last-modified"], 206),
        ("W/" + tags["etag"], 200),  # weak tags never match If-Range
        ('"stale"', 200),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 200),
    ]:
        headers = {"range": OpenRange(10), "if-range": value}
        r = call(app, req("GET", "data.bin", headers=headers))
        assert r[0] == status
        assert read_body(r) == (DATA[10:] if status == 206 else DATA)


# --- names, listings and dotfiles --------------------------------------------


def test_FilesApp_serves_decoded_names(tree: Path, app: FilesApp) -> None:
    (tree / "my file é.txt").write_bytes(b"hello")
    request = Request(
        "GET", "/my%20file%20%C3%A9.txt", {}, None, [], ["my file é.txt"], None
    )
    r = call(app, request)
    assert r[0] == 200 and read_body(r) == b"hello"


def test_FilesApp_redirect_location_is_percent_encoded(
    tree: Path, app: FilesApp
) -> None:
    (tree / "a dir é").mkdir()
    r = call(app, req("GET", "a dir é"))
    assert r[2]["location"] == "/a%20dir%20%C3%A9/"


def test_FilesApp_without_listing_a_directory_without_index_is_404(
    tree: Path, app: FilesApp
) -> None:
    (tree / "plain").mkdir()
    assert call(app, req("GET", "plain", ""))[0] == 404


@pytest.fixture
def listing_app(tree: Path) -> Iterator[FilesApp]:
    (tree / "plain" / "zdir").mkdir(parents=True)
    (tree / "plain" / "Adir").mkdir()
    (tree / "plain" / "b.txt").write_bytes(b"b" * 2048)
    (tree / "plain" / "<script>&'\".txt").write_bytes(b"x")
    (tree / "plain" / "my file é.txt").write_bytes(b"x")
    (tree / "plain" / "a:b").write_bytes(b"x")
    (tree / "plain" / ".env").write_bytes(b"SECRET=1")
    (tree / "plain" / ".git").mkdir()
    (tree / "plain" / "inside").symlink_to("b.txt")
    (tree / "plain" / "outside").symlink_to("../../secret.txt")
    (tree / "plain" / "dangling").symlink_to("nowhere")
    os.mkfifo(tree / "plain" / "fifo")
    a = FilesApp(str(tree), listing=True)
    yield a
    a.close()


def listing_of(app: FilesApp, *path: str) -> str:
    r = call(app, req("GET", *path))
    assert r[:2] == (200, "OK")
    assert r[2]["content-type"] == "text/html; charset=utf-8"
    assert r[2]["content-length"] == len(r[3])
    head = call(app, req("HEAD", *path))
    assert head[2] == r[2] and head[3] is None
    return str(r[3].decode())


def test_FilesApp_listing_escapes_names_and_encodes_links(
    listing_app: FilesApp,
) -> None:
    page = listing_of(listing_app, "plain", "")
    assert "<title>Index of /plain/</title>" in page
    assert '<a href="./%3Cscript%3E&amp;&#x27;%22.txt">' in page
    assert "&lt;script&gt;&amp;&#x27;&quot;.txt</a>" in page
    assert "<script>" not in page
    assert '<a href="./my%20file%20%C3%A9.txt">my file é.txt</a>' in page
    assert '<a href="./a:b">a:b</a>' in page  # './' keeps 'a:' from being a scheme
    assert '<a href="../">../</a>' in page
    assert 'title="2048 bytes">2.0 KiB</td>' in page


def test_FilesApp_listing_puts_directories_first(listing_app: FilesApp) -> None:
    page = listing_of(listing_app, "plain", "")
    order = [page.index(f">{n}</a>") for n in ("Adir/", "zdir/", "a:b", "b.txt")]
    assert order == sorted(order)


def test_FilesApp_listing_shows_only_what_can_be_fetched(
    listing_app: FilesApp,
) -> None:
    page = listing_of(listing_app, "plain", "")
    assert ">inside</a>" in page
    for hidden in (".env", ".git", "outside", "dangling", "fifo"):
        assert f">{hidden}" not in page


def test_FilesApp_listing_of_the_root_has_no_parent_link(tree: Path) -> None:
    (tree / "index.html").unlink()
    a = FilesApp(str(tree), listing=True)
    try:
        page = listing_of(a)
        assert '<a href="../">' not in page and "Index of /<" in page
        assert '<a href="./sub/">sub/</a>' in page
    finally:
        a.close()


def test_FilesApp_listing_still_serves_index_html(listing_app: FilesApp) -> None:
    assert read_body(call(listing_app, req("GET", "sub", ""))) == b"sub home"


def test_FilesApp_listing_title_includes_the_mount(listing_app: FilesApp) -> None:
    request = Request("GET", "/files/plain/", {}, None, ["files"], ["plain", ""], None)
    r = call(listing_app, request)
    assert b"<title>Index of /files/plain/</title>" in r[3]


def test_FilesApp_listing_of_a_file_with_a_slash_is_404(
    listing_app: FilesApp,
) -> None:
    assert call(listing_app, req("GET", "data.bin", ""))[0] == 404


def test_FilesApp_hides_dotfiles_by_default(tree: Path, app: FilesApp) -> None:
    (tree / ".env").write_bytes(b"SECRET=1")
    (tree / ".git").mkdir()
    (tree / ".git" / "config").write_bytes(b"[core]")
    (tree / "via-link").symlink_to(".git/config")
    for path in ((".env",), (".git", "config"), (".git", ""), ("via-link",)):
        assert call(app, req("GET", *path))[0] == 404
    shown = FilesApp(str(tree), dotfiles=True)
    try:
        assert read_body(call(shown, req("GET", ".env"))) == b"SECRET=1"
        assert read_body(call(shown, req("GET", "via-link"))) == b"[core]"
    finally:
        shown.close()


def test_FilesApp_options_are_checked_and_shown(tree: Path) -> None:
    with pytest.raises(TypeError) as e:
        FilesApp(str(tree), listing=1)  # type: ignore[arg-type]
    assert str(e.value) == "listing: need a <class 'bool'>; got a <class 'int'>: 1"
    with pytest.raises(TypeError) as e:
        FilesApp(str(tree), dotfiles="yes")  # type: ignore[arg-type]
    assert str(e.value).startswith("dotfiles: need a <class 'bool'>")
    a = FilesApp(str(tree), listing=True, dotfiles=True)
    try:
        assert (a.listing, a.dotfiles) == (True, True)
        assert repr(a) == f"FilesApp({str(tree)!r}, listing=True, dotfiles=True)"
    finally:
        a.close()


def test_FilesApp_answers_are_valid_RGI_responses(tree: Path, live_server: Any) -> None:
    """Every new answer (304, 416, listings, HEAD) passes rgi.Validator."""
    from degu.rgi import Validator

    app = FilesApp(str(tree), listing=True)
    live = live_server(("127.0.0.1", 0), Validator(app), timeout=5)
    etag = validators(tree, "data.bin")["etag"]
    cases = [
        ("GET", "/data.bin", {"Range": "bytes=-10"}, 206),
        ("GET", "/data.bin", {"Range": "bytes=10-"}, 206),
        ("GET", "/data.bin", {"Range": "bytes=0-1,4-5"}, 206),
        ("GET", "/data.bin", {"Range": "bytes=4-5,0-1"}, 200),
        ("GET", "/data.bin", {"If-None-Match": etag}, 304),
        ("HEAD", "/data.bin", {"If-None-Match": etag}, 304),
        ("HEAD", "/sub", {}, 301),
        ("GET", "/sub/", {}, 200),
        ("HEAD", "/empty.txt", {"Range": "bytes=0-"}, 200),
        ("GET", "/data.bin", {"Range": "bytes=99999-"}, 416),
    ]
    (tree / "plain").mkdir()
    cases.append(("GET", "/plain/", {}, 200))
    cases.append(("HEAD", "/plain/", {}, 200))
    try:
        for method, target, headers, status in cases:
            conn = http.client.HTTPConnection(*live.address, timeout=5)
            try:
                conn.request(method, target, headers=headers)
                r = conn.getresponse()
                r.read()
                assert r.status == status, (method, target, headers)
            finally:
                conn.close()
    finally:
        app.close()

"""Loopback HTTP benchmark of degu.server / degu.client against baselines.

Run: python bench/bench_http.py   (bounded: well under two minutes)

Every figure is measured in this run, client and server processes pinned to
the same CPU, runs interleaved, medians reported, with the target beside each
ratio.  Baselines: a raw-socket ping-pong of the very same bytes, and the
standard library's http.server (HTTP/1.1 keep-alive, Nagle off).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROUNDS = 15
#: Issue 13: degu server over the raw ping-pong of the same bytes.
SERVER_TARGETS = {
    ("tcp", "GET 12 B"): ">= 75%",
    ("tcp", "POST 108 B"): ">= 70%",
    ("unix", "GET 12 B"): ">= 70%",
    ("unix", "POST 108 B"): ">= 65%",
}
#: A 64 MiB transfer takes ~20 ms on loopback: more rounds for a stable median.
STREAM_ROUNDS = 21
REQUESTS = 4000
BIG = 64 * 1024 * 1024
CPU = min(os.sched_getaffinity(0))

GET = b"GET /hello HTTP/1.1\r\nhost: bench\r\n\r\n"
BODY = b"b" * 108
POST = b"POST /echo HTTP/1.1\r\nhost: bench\r\ncontent-length: 108\r\n\r\n" + BODY
GET_REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nhello world\n"
POST_REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 108\r\n\r\n" + BODY


def pin() -> None:
    os.sched_setaffinity(0, {CPU})


def degu_app(session: Any, request: Any, api: Any) -> Any:
    if request.body is not None:
        if request.path == ["big"]:
            for _ in request.body:
                pass
            return (200, "OK", {}, None)
        return (200, "OK", {}, request.body.read())
    if request.path == ["big"]:
        piece = b"d" * (1024 * 1024)
        return (200, "OK", {}, api.BodyIter([piece] * (BIG // len(piece)), BIG))
    return (200, "OK", {}, b"hello world\n")


def _serve_raw(lsock: socket.socket, request_len: int, reply: bytes) -> None:
    while True:
        conn, _ = lsock.accept()
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(65536)
        with conn:
            while True:
                got = 0
                while got < request_len:
                    n = conn.recv_into(memoryview(buf)[got:])
                    if not n:
                        break
                    got += n
                if got < request_len:
                    break
                conn.sendall(reply)


def _serve_stream(lsock: socket.socket) -> None:
    """Raw streaming baseline: receive BIG bytes, or send BIG bytes."""
    while True:
        conn, _ = lsock.accept()
        with conn:
            mode = conn.recv(1)
            if mode == b"u":
                buf = memoryview(bytearray(1024 * 1024))
                left = BIG
                while left:
                    left -= conn.recv_into(buf[: min(left, len(buf))])
                conn.sendall(b"k")
            else:
                piece = b"d" * (1024 * 1024)
                for _ in range(BIG // len(piece)):
                    conn.sendall(piece)


def _serve_stdlib(lsock: socket.socket) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._reply(b"hello world\n")

        def do_POST(self) -> None:
            self._reply(self.rfile.read(int(self.headers["content-length"])))

        def _reply(self, body: bytes) -> None:
            self.send_response_only(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(lsock.getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = lsock
    server.serve_forever()


def _serve_degu(lsock: socket.socket) -> None:
    from degu.server import Server

    Server(lsock, degu_app, max_requests=75000).serve_forever()


def _child(kind: str, lsock: socket.socket, *args: Any) -> None:
    pin()
    import logging

    logging.disable(logging.CRITICAL)
    {"raw": _serve_raw, "stream": _serve_stream, "stdlib": _serve_stdlib,
     "degu": _serve_degu}[kind](lsock, *args)  # fmt: skip


def start(kind: str, family: int, *args: Any) -> tuple[Any, Any]:
    if family == socket.AF_UNIX:
        address: Any = os.path.join(tempfile.mkdtemp(), "s.sock")
    else:
        address = ("127.0.0.1", 0)
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.bind(address)
    lsock.listen(128)
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child, args=(kind, lsock, *args), daemon=True)
    proc.start()
    address = lsock.getsockname()
    lsock.close()
    return proc, address


def stop(proc: Any) -> None:
    proc.terminate()
    proc.join(5)


def connect(address: Any) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(address)
    else:
        sock = socket.create_connection(address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def raw_client(address: Any, request: bytes, reply_len: int) -> float:
    buf = memoryview(bytearray(65536))
    with connect(address) as sock:
        t0 = time.perf_counter()
        for _ in range(REQUESTS):
            sock.sendall(request)
            got = 0
            while got < reply_len:
                got += sock.recv_into(buf[got:])
        return REQUESTS / (time.perf_counter() - t0)


def degu_client(address: Any, request: bytes, reply_len: int) -> float:
    from degu.client import Client

    post = request.startswith(b"POST")
    with Client(address).connect() as conn:
        t0 = time.perf_counter()
        for _ in range(REQUESTS):
            r = conn.post("/echo", {}, BODY) if post else conn.get("/hello", {})
            r.body.read()
        return REQUESTS / (time.perf_counter() - t0)


def ping_pong_table() -> list[str]:
    rows = []
    for fam_name, family in (("tcp", socket.AF_INET), ("unix", socket.AF_UNIX)):
        for name, request, reply in (
            ("GET 12 B", GET, GET_REPLY),
            ("POST 108 B", POST, POST_REPLY),
        ):
            kinds: list[tuple[str, str, Callable[..., float]]] = [
                ("raw", "raw", raw_client),
                ("degu server", "degu", raw_client),
                ("degu client+server", "degu", degu_client),
            ]
            if family == socket.AF_INET:
                kinds.insert(1, ("stdlib http.server", "stdlib", raw_client))
            procs = {}
            for _label, kind, _fn in kinds:
                if kind not in procs:
                    extra = (len(request), reply) if kind == "raw" else ()
                    procs[kind] = start(kind, family, *extra)
            rates: dict[str, list[float]] = {label: [] for label, _, _ in kinds}
            try:
                for _ in range(ROUNDS):
                    for label, kind, fn in kinds:
                        rates[label].append(fn(procs[kind][1], request, len(reply)))
            finally:
                for proc, _ in procs.values():
                    stop(proc)
            targets = {
                "degu server": SERVER_TARGETS[(fam_name, name)],
                "degu client+server": ">= 40%",
            }
            for label, _, _ in kinds:
                rate = statistics.median(rates[label])
                # Each round's ratio to the raw run next to it; median and spread.
                ratios = [
                    r / b for r, b in zip(rates[label], rates["raw"], strict=True)
                ]
                rows.append(
                    f"{fam_name:5} {name:11} {label:20} {rate:10.0f}/s "
                    f"{statistics.median(ratios):7.1%} {spread(ratios)}  "
                    f"{targets.get(label, '')}"
                )
    return rows


def spread(ratios: list[float]) -> str:
    """The min-max of per-round ratios, as percentages."""
    return f"({min(ratios):4.0%}-{max(ratios):4.0%})"


def stream_table() -> list[str]:
    from degu.client import Client

    rows = []
    raw, raw_addr = start("stream", socket.AF_INET)
    deg, deg_addr = start("degu", socket.AF_INET)
    results: dict[str, list[float]] = {
        k: [] for k in ("raw up", "raw down", "degu up", "degu down")
    }
    try:
        piece = b"u" * (1024 * 1024)
        for _ in range(STREAM_ROUNDS):
            with connect(raw_addr) as sock:
                t0 = time.perf_counter()
                sock.sendall(b"u")
                for _ in range(BIG // len(piece)):
                    sock.sendall(piece)
                sock.recv(1)
                results["raw up"].append(BIG / (time.perf_counter() - t0))
            with connect(raw_addr) as sock:
                buf = memoryview(bytearray(1024 * 1024))
                t0 = time.perf_counter()
                sock.sendall(b"d")
                left = BIG
                while left:
                    left -= sock.recv_into(buf)
                results["raw down"].append(BIG / (time.perf_counter() - t0))
            from degu.base import BodyIter

            with Client(deg_addr).connect() as conn:
                t0 = time.perf_counter()
                conn.put("/big", {}, BodyIter([piece] * (BIG // len(piece)), BIG))
                results["degu up"].append(BIG / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                r = conn.get("/big", {})
                for _ in r.body:
                    pass
                results["degu down"].append(BIG / (time.perf_counter() - t0))
    finally:
        stop(raw)
        stop(deg)
    for way in ("up", "down"):
        base = statistics.median(results[f"raw {way}"])
        ours = statistics.median(results[f"degu {way}"])
        ratios = [
            d / r
            for d, r in zip(results[f"degu {way}"], results[f"raw {way}"], strict=True)
        ]
        rows.append(
            f"64 MiB {way:5} raw {base / 2**20:8.0f} MiB/s  "
            f"degu {ours / 2**20:8.0f} MiB/s {statistics.median(ratios):7.1%} "
            f"{spread(ratios)}  >= 95%"
        )
    return rows


def idle_rss() -> str:
    proc, address = start("degu", socket.AF_INET)
    try:
        with connect(address) as sock:  # make sure it is up and has served
            sock.sendall(GET)
            sock.recv(100)
        with open(f"/proc/{proc.pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    finally:
        stop(proc)
    return f"idle server RSS (forked child) {kb / 1024:6.1f} MiB   <= 20 MiB"


def import_time() -> list[str]:
    """``import degu.server`` in fresh interpreters, with and without bytecode.

    Installed packages come with their bytecode, so the target applies to a
    warm cache; it lives under a temporary PYTHONPYCACHEPREFIX so the source
    tree stays clean.  The cold figure (every module compiled, as when
    PYTHONDONTWRITEBYTECODE is set) is for information.
    """
    code = (
        "import time; t = time.perf_counter(); import degu.server; "
        "print(time.perf_counter() - t)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        warm = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
        warm.pop("PYTHONDONTWRITEBYTECODE", None)
        cold = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        subprocess.check_output([sys.executable, "-c", code], env=warm)  # fill it
        for label, env, target in (
            ("bytecode cached", warm, "<= 25 ms"),
            ("no bytecode", cold, "(info)"),
        ):
            times = [
                float(subprocess.check_output([sys.executable, "-c", code], env=env))
                for _ in range(7)
            ]
            ms = statistics.median(times) * 1000
            rows.append(f"import degu.server ({label:15}) {ms:6.1f} ms   {target}")
    return rows


def main() -> None:
    # Optional arguments pick sections: pingpong stream rss import
    wanted = set(sys.argv[1:]) or {"pingpong", "stream", "rss", "import"}
    pin()
    print(f"pinned to CPU {CPU}; {REQUESTS} requests x {ROUNDS} rounds, interleaved")
    if "pingpong" in wanted:
        head = f"{'':5} {'message':11} {'server / client':20} {'rate':>12}"
        print(f"{head} {'ratio':>7} {'(min-max)':11}  target")
        for row in ping_pong_table():
            print(row)
    if "stream" in wanted:
        print(f"streams: {STREAM_ROUNDS} interleaved rounds, medians")
        for row in stream_table():
            print(row)
    if "rss" in wanted:
        print(idle_rss())
    if "import" in wanted:
        for row in import_time():
            print(row)


if __name__ == "__main__":
    main()

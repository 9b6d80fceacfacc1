"""Idle, slow and hostile peers against degu.server (docs/explanation/connections.rst).

Run: python bench/bench_peers.py [idle] [slow] [chunked] [preamble]
(bounded: about a minute and a half; no argument runs every section)

Every figure is a ratio to a baseline measured in this run, with its target
beside it; rounds are interleaved and medians reported with their spread
(min-max).  The server runs in a forked child with ``timeout=60`` (so no
idle peer is dropped while we measure) and ``max_requests=75000``, other
options at their defaults; loopback only.  The RLIMIT_NOFILE soft limit is
raised to the hard limit first, for this process and the server alike.

* idle: one client's request latency (keep-alive GETs, server and client
  pinned to different CPUs) with 5,000 idle keep-alive connections open,
  each having had one request, against the same client with none; and the
  server's RSS (VmRSS in /proc/<pid>/status) per idle connection.
* slow: the same client while 50 peers trickle request bodies (a byte per
  peer every 0.25 s) and 50 keep-alive connections sit idle: every request
  served, p99 against the client alone.
* chunked: server peak RSS growth (VmHWM after resetting it through
  /proc/<pid>/clear_refs) and CPU time (getrusage in the server) for a
  12 MiB request body read with ``request.body.read()``, sent in 1-, 2-,
  16-, 128- and STEADY-byte chunks, against the same data in one chunk; the
  same for ``degu.client`` reading a chunked response.  Chunk framing beyond
  64 KiB + 1/CHUNK_DATA_PER_FRAMING_BYTE of the data is refused (400 for the
  server, ValueError in the client; docs/explanation/limits.rst), so the
  rows of smaller chunks are the cost until that refusal; STEADY (448 bytes)
  is the smallest chunk size a body may use for ever, the costliest whole read.
* preamble: server CPU per request for a maximum-size request preamble
  (100 header lines, about 32 KiB) against a small GET, client and server
  pinned to the same CPU.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import socket
import statistics
import sys
import threading
import time
from typing import Any

from degu._limits import CHUNK_DATA_PER_FRAMING_BYTE

CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU = CPUS[0]
CLIENT_CPU = CPUS[-1]
ROUNDS = 3
#: The idle-load p99 ratio is the noisiest figure: more rounds for its median.
IDLE_ROUNDS = 5
#: Seconds of back-to-back requests per latency measurement.
MEASURE = 1.5
IDLE = 5000
SLOW = 50
SLOW_IDLE = 50
#: Each trickling peer sends one body byte this often (seconds).
TRICKLE_EVERY = 0.25
#: Content-length of a trickled body: small enough to be buffered whole.
TRICKLE_LEN = 4096
CHUNKED_DATA = 12 * 1024 * 1024
#: The smallest chunk size whose framing the allowance pays for ever.
STEADY = next(
    n for n in range(1, 4096) if n >= CHUNK_DATA_PER_FRAMING_BYTE * (len(b"%x" % n) + 4)
)
CHUNK_SIZES = (1, 2, 16, 128, STEADY, CHUNKED_DATA)
PREAMBLE_ROUNDS = 7
PREAMBLE_REQUESTS = 1000

GET = b"GET /hello HTTP/1.1\r\nhost: bench\r\n\r\n"
GET_REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nhello world\n"


def big_preamble() -> bytes:
    """A GET with 100 header lines, just under the 32 KiB preamble limit."""
    head = b"GET /hello HTTP/1.1\r\nhost: bench\r\n"
    value = b"v" * ((32700 - len(head) - 2) // 99 - 14)
    lines = [b"x-bench-%02d: %s\r\n" % (i, value) for i in range(99)]
    return head + b"".join(lines) + b"\r\n"


BIG_GET = big_preamble()


# -- the server (a forked child) ----------------------------------------------


def app(session: Any, request: Any, api: Any) -> Any:
    if request.path == ["stats"]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        rss, hwm = proc_status(os.getpid())
        cpu = usage.ru_utime + usage.ru_stime
        return (200, "OK", {}, f"{cpu!r} {rss} {hwm}".encode())
    if request.body is not None:
        return (200, "OK", {}, str(len(request.body.read())).encode())
    return (200, "OK", {}, b"hello world\n")


def _serve_degu(lsock: socket.socket) -> None:
    from degu.server import Server

    Server(lsock, app, timeout=60, max_requests=75000).serve_forever()


def _serve_chunked(lsock: socket.socket) -> None:
    """Raw server: ``GET /<k>`` answers CHUNKED_DATA bytes in k-byte chunks."""
    while True:
        conn, _ = lsock.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                got = conn.recv(4096)
                if not got:
                    break
                head += got
            if not head:
                continue
            size = int(head.split(b" ")[1][1:])
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                for block in chunked_blocks(size):
                    conn.sendall(block)
            except OSError:
                pass  # the client refused the framing and closed


def _child(kind: str, lsock: socket.socket) -> None:
    os.sched_setaffinity(0, {SERVER_CPU})
    import logging

    logging.disable(logging.CRITICAL)
    {"degu": _serve_degu, "chunked": _serve_chunked}[kind](lsock)


def start(kind: str = "degu") -> tuple[Any, tuple[str, int]]:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1024)
    proc = multiprocessing.get_context("fork").Process(
        target=_child, args=(kind, lsock), daemon=True
    )
    proc.start()
    address = lsock.getsockname()
    lsock.close()
    return proc, address


def stop(proc: Any) -> None:
    proc.terminate()
    proc.join(5)


def proc_status(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of *pid* in KiB."""
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    rss = re.search(r"^VmRSS:\s+(\d+)", text, re.M)
    hwm = re.search(r"^VmHWM:\s+(\d+)", text, re.M)
    assert rss and hwm
    return int(rss.group(1)), int(hwm.group(1))


# -- client side ----------------------------------------------------------------


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send *request*, return (status, body) of a content-length response."""
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = sock.recv(65536)
        if not got:
            raise ConnectionError("closed before a response")
        buf += got
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.search(rb"content-length: (\d+)", head)
    length = int(m.group(1)) if m else 0
    while len(body) < length:
        got = sock.recv(65536)
        if not got:
            raise ConnectionError("closed inside a body")
        body += got
    return int(head[9:12]), body


def stats(address: tuple[str, int], sock: socket.socket | None = None) -> list[float]:
    """Server (cpu seconds, VmRSS KiB, VmHWM KiB), through GET /stats."""
    request = b"GET /stats HTTP/1.1\r\nhost: bench\r\n\r\n"
    if sock is not None:
        return [float(x) for x in exchange(sock, request)[1].split()]
    with connect(address) as s:
        return [float(x) for x in exchange(s, request)[1].split()]


def latencies(
    address: tuple[str, int], seconds: float = MEASURE
) -> tuple[list[float], int]:
    """Per-request seconds of keep-alive GETs for *seconds*, and failures."""
    buf = memoryview(bytearray(4096))
    want = len(GET_REPLY)
    times = []
    failed = 0
    sock = connect(address)
    sock.settimeout(5)
    try:
        for _ in range(100):  # warm up
            sock.sendall(GET)
            got = 0
            while got < want:
                got += sock.recv_into(buf[got:])
        end = time.perf_counter() + seconds
        while (t0 := time.perf_counter()) < end:
            try:
                sock.sendall(GET)
                got = 0
                while got < want:
                    r = sock.recv_into(buf[got:])
                    if not r:
                        raise ConnectionError("closed")
                    got += r
            except OSError:
                failed += 1
                sock.close()
                sock = connect(address)
                sock.settimeout(5)
                continue
            times.append(time.perf_counter() - t0)
    finally:
        sock.close()
    return times, failed


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100)[98]


def open_idle(address: tuple[str, int], count: int) -> list[socket.socket]:
    """*count* keep-alive connections, each after one request, left idle."""
    socks: list[socket.socket] = []
    want = len(GET_REPLY)
    while len(socks) < count:
        batch = [connect(address) for _ in range(min(500, count - len(socks)))]
        for s in batch:
            s.sendall(GET)
        for s in batch:
            got = b""
            while len(got) < want:
                piece = s.recv(want - len(got))
                if not piece:
                    raise ConnectionError("idle connection closed by the server")
                got += piece
            assert got == GET_REPLY, got
        socks.extend(batch)
    return socks


def still_open(socks: list[socket.socket]) -> int:
    """How many of *socks* still answer a request (pipelined over all)."""
    alive = 0
    for s in socks:
        try:
            s.sendall(GET)
        except OSError:
            pass
    for s in socks:
        try:
            got = b""
            while len(got) < len(GET_REPLY):
                piece = s.recv(len(GET_REPLY) - len(got))
                if not piece:
                    break
                got += piece
            alive += got == GET_REPLY
        except OSError:
            pass
    return alive


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def spread(values: list[float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """'median (min-max)' of *values* times *scale*."""
    lo, mid, hi = (
        fmt.format(v * scale)
        for v in (min(values), statistics.median(values), max(values))
    )
    return f"{mid} ({lo}-{hi})"


# -- sections ----------------------------------------------------------------------


def reset_peak(pid: int) -> None:
    """Reset VmHWM of *pid* to its VmRSS (Linux 4.0+)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def idle_section() -> list[str]:
    base_p99: list[float] = []
    load_p99: list[float] = []
    per_conn: list[float] = []
    settled: list[float] = []
    burst: list[float] = []
    alive: list[int] = []
    failed = 0
    # A fresh server each round: RSS after thousands of closes says little.
    for _ in range(IDLE_ROUNDS):
        proc, address = start()
        try:
            latencies(address, 0.2)  # the server is up and warm
            times, f = latencies(address)
            base_p99.append(p99(times))
            failed += f
            rss0 = proc_status(proc.pid)[0]
            socks = open_idle(address, IDLE)
            per_conn.append((proc_status(proc.pid)[0] - rss0) * 1024 / IDLE)
            time.sleep(1.0)
            settled.append((proc_status(proc.pid)[0] - rss0) * 1024 / IDLE)
            times, f = latencies(address)
            load_p99.append(p99(times))
            failed += f
            reset_peak(proc.pid)
            rss1 = proc_status(proc.pid)[0]
            alive.append(still_open(socks))
            burst.append((proc_status(proc.pid)[1] - rss1) * 1024)
            close_all(socks)
        finally:
            stop(proc)
    ratios = [b / a for a, b in zip(base_p99, load_p99, strict=True)]
    kib = 1 / 1024
    return [
        f"p99 alone          {spread(base_p99, 1e3)} ms",
        f"p99 with {IDLE} idle {spread(load_p99, 1e3)} ms",
        f"  ratio            {spread(ratios)}x   target <= 2x",
        f"server RSS per idle conn, 1 s after opening "
        f"{spread(settled, kib, '{:.1f}')} KiB   target <= 16 KiB",
        "  (right after opening, 500 at a time: "
        f"{spread(per_conn, kib, '{:.1f}')} KiB)",
        f"then all {IDLE} send a GET at once: {min(alive)} of {IDLE} served (min); "
        f"peak RSS +{spread(burst, kib / 1024, '{:.0f}')} MiB (info)",
        f"failed latency requests: {failed}",
    ]


class Trickler:
    """SLOW peers each sending one body byte every TRICKLE_EVERY seconds."""

    def __init__(self, address: tuple[str, int]) -> None:
        head = (
            b"POST /slow HTTP/1.1\r\nhost: bench\r\n"
            b"content-length: %d\r\n\r\n" % TRICKLE_LEN
        )
        self.socks = []
        for _ in range(SLOW):
            s = connect(address)
            s.sendall(head)
            self.socks.append(s)
        self.dropped = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        live = list(self.socks)
        while live and not self._stop.wait(TRICKLE_EVERY):
            for s in list(live):
                try:
                    s.send(b"x")
                    self.sent += 1
                except OSError:
                    live.remove(s)
                    self.dropped += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        close_all(self.socks)


def slow_section() -> list[str]:
    proc, address = start()
    base_p99: list[float] = []
    load_p99: list[float] = []
    failed_base = failed_load = dropped = sent = 0
    t_start = time.monotonic()
    try:
        latencies(address, 0.2)
        for _ in range(ROUNDS):
            times, f = latencies(address)
            base_p99.append(p99(times))
            failed_base += f
            idle = open_idle(address, SLOW_IDLE)
            trickler = Trickler(address)
            time.sleep(TRICKLE_EVERY * 2)  # the trickle is under way
            times, f = latencies(address)
            load_p99.append(p99(times))
            failed_load += f
            trickler.close()
            dropped += trickler.dropped
            sent += trickler.sent
            close_all(idle)
    finally:
        stop(proc)
    ratios = [b / a for a, b in zip(base_p99, load_p99, strict=True)]
    took = time.monotonic() - t_start
    return [
        f"p99 alone            {spread(base_p99, 1e3)} ms",
        f"p99 with {SLOW} slow+{SLOW_IDLE} idle {spread(load_p99, 1e3)} ms",
        f"  ratio              {spread(ratios)}x   target <= 2x",
        f"requests not served: {failed_load} under load (target 0), "
        f"{failed_base} alone; trickled {sent} body bytes in {took:.0f} s, "
        f"trickling peers dropped by the server: {dropped}",
    ]


def chunked_blocks(size: int) -> list[bytes]:
    """CHUNKED_DATA bytes of chunk data in *size*-byte chunks, in ~MiB blocks."""
    unit = b"%x\r\n" % size + b"c" * size + b"\r\n"
    per_block = max(1, (1 << 20) // size)
    blocks = CHUNKED_DATA // (per_block * size)
    return [unit * per_block] * blocks + [b"0\r\n\r\n"]


def send_chunked(address: tuple[str, int], size: int) -> int:
    """POST CHUNKED_DATA in *size*-byte chunks; return the response status."""
    blocks = chunked_blocks(size)
    sock = connect(address)
    sock.settimeout(60)
    result: list[int] = []

    def read() -> None:
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                got = sock.recv(65536)
                if not got:
                    break
                buf += got
            result.append(int(buf[9:12]) if buf else 0)
        except OSError:
            result.append(0)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        sock.sendall(
            b"POST /up HTTP/1.1\r\nhost: bench\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for block in blocks:
            sock.sendall(block)
    except OSError:
        pass  # refused: the server answered and closed
    reader.join(60)
    sock.close()
    return result[0] if result else 0


def server_chunked_run(size: int) -> tuple[float, float, int]:
    """One fresh server: (CPU seconds, peak RSS growth KiB, status)."""
    proc, address = start()
    try:
        stats(address)  # up, and warm
        reset_peak(proc.pid)
        cpu0, rss0, _ = stats(address)
        status = send_chunked(address, size)
        cpu1, _, hwm = stats(address)
    finally:
        stop(proc)
    return cpu1 - cpu0, hwm - rss0, status


def _client_read(address: tuple[str, int], size: int, out: Any) -> None:
    os.sched_setaffinity(0, {CLIENT_CPU})
    from degu.client import Client

    conn = Client(address, timeout=60).connect()
    reset_peak(os.getpid())
    rss0 = proc_status(os.getpid())[0]
    t0 = time.process_time()
    try:
        conn.get(f"/{size}", {}).body.read()
        ok = 200
    except ValueError:
        ok = 400
    cpu = time.process_time() - t0
    out.send((cpu, proc_status(os.getpid())[1] - rss0, ok))
    conn.close()


def client_chunked_run(address: tuple[str, int], size: int) -> tuple[float, float, int]:
    ctx = multiprocessing.get_context("fork")
    mine, theirs = ctx.Pipe()
    child = ctx.Process(target=_client_read, args=(address, size, theirs))
    child.start()
    result = mine.recv() if mine.poll(120) else (float("nan"), float("nan"), 0)
    child.join(10)
    return result  # type: ignore[no-any-return]


def chunked_section() -> list[str]:
    rows = []
    server: dict[int, list[tuple[float, float, int]]] = {s: [] for s in CHUNK_SIZES}
    client: dict[int, list[tuple[float, float, int]]] = {s: [] for s in CHUNK_SIZES}
    raw, raw_address = start("chunked")
    try:
        for _ in range(ROUNDS):
            for size in CHUNK_SIZES:
                server[size].append(server_chunked_run(size))
                client[size].append(client_chunked_run(raw_address, size))
    finally:
        stop(raw)
    mib = CHUNKED_DATA / 2**20
    for side, results in (("server", server), ("client", client)):
        one = results[CHUNKED_DATA]
        base_cpu = statistics.median(r[0] for r in one)
        rows.append(
            f"{side}: {mib:.0f} MiB in one chunk: "
            f"CPU {spread([r[0] for r in one], 1e3, '{:.0f}')} ms, "
            f"peak RSS +{spread([r[1] for r in one], 1 / 1024, '{:.1f}')} MiB"
        )
        for size in CHUNK_SIZES[:-1]:
            runs = results[size]
            statuses = sorted({r[2] for r in runs})
            outcome = "whole body read" if statuses == [200] else (
                "REFUSED (400 / ValueError): cost until refusal" if statuses == [400]
                else f"statuses {statuses}"
            )  # fmt: skip
            cpu = [r[0] for r in runs]
            rows.append(
                f"  {size:4}-byte chunks: CPU {spread(cpu, 1e3, '{:.0f}')} ms "
                f"= {statistics.median(cpu) / base_cpu:.2f}x one chunk (target <= 3x), "
                f"peak RSS +{spread([r[1] for r in runs], 1 / 1024, '{:.1f}')} MiB "
                f"(target <= {2 * mib + 8:.0f} MiB); {outcome}"
            )
    return rows


def preamble_section() -> list[str]:
    os.sched_setaffinity(0, {SERVER_CPU})  # the same CPU as the server
    proc, address = start()
    per: dict[bytes, list[float]] = {GET: [], BIG_GET: []}
    try:
        with connect(address) as sock:
            for request in (GET, BIG_GET):
                status, _ = exchange(sock, request)
                if status != 200:
                    return [f"preamble: the server answered {status}; not measured"]
            for _ in range(PREAMBLE_ROUNDS):
                for request in (GET, BIG_GET):
                    cpu0 = stats(address, sock)[0]
                    for _ in range(PREAMBLE_REQUESTS):
                        exchange(sock, request)
                    cpu1 = stats(address, sock)[0]
                    per[request].append((cpu1 - cpu0) / PREAMBLE_REQUESTS)
    finally:
        stop(proc)
        os.sched_setaffinity(0, {CLIENT_CPU})
    small = statistics.median(per[GET])
    big = statistics.median(per[BIG_GET])
    ratios = [b / a for a, b in zip(per[GET], per[BIG_GET], strict=True)]
    return [
        f"small GET ({len(GET)} B, 1 header)      "
        f"{spread(per[GET], 1e6, '{:.0f}')} us CPU",
        f"max preamble ({len(BIG_GET)} B, 100 headers) "
        f"{spread(per[BIG_GET], 1e6, '{:.0f}')} us CPU",
        f"  ratio {big / small:.1f}x (per round {spread(ratios, 1, '{:.1f}')})   "
        "target <= 20x",
    ]


def main() -> None:
    wanted = set(sys.argv[1:]) or {"idle", "slow", "chunked", "preamble"}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.sched_setaffinity(0, {CLIENT_CPU})
    print(
        f"server on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}; RLIMIT_NOFILE "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; {ROUNDS} interleaved "
        "rounds, median (min-max)"
    )
    each = f"keep-alive GETs for {MEASURE} s per measurement"
    sections = (
        ("idle", f"idle load: {each}, {IDLE_ROUNDS} rounds", idle_section),
        ("slow", f"slow peers: {each}", slow_section),
        ("chunked", f"chunked: {CHUNKED_DATA >> 20} MiB body, fresh process per run",
         chunked_section),
        ("preamble", f"preamble: {PREAMBLE_REQUESTS} requests x {PREAMBLE_ROUNDS} "
         f"interleaved rounds, server CPU per request, same CPU", preamble_section),
    )  # fmt: skip
    for name, title, fn in sections:
        if name in wanted:
            t0 = time.monotonic()
            print(title)
            for row in fn():
                print("  " + row)
            print(f"  ({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()

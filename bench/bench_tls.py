"""What TLS costs a Degu connection, against plain TCP measured in the same run.

Two figures, each for plain ``Server``/``Client`` (the baseline) and for
``SSLServer``/``SSLClient`` with mutual TLS (client certificates, ECDSA P-256
keys from ``TempPKI``, TLS 1.3 as negotiated by default):

* **round trips**: sequential GET requests on one open connection, for an
  empty body and a 64 KiB body; the TLS/plain ratio of time per request is
  the steady-state cost of encryption.  Also as process CPU time per request
  (client and server), which a neighbour taking the CPU hardly moves;
* **handshakes**: new connection + one GET + close, repeated; connections
  per second is dominated by the handshake.  Measured twice: as an
  ``SSLClient`` does by default (resuming the session of its previous
  connection: ECDHE only, docs/reference/tls.rst), and with every handshake
  a full one (certificates, ECDSA signatures and ECDHE), the client's kept
  sessions cleared before each connection.

Client and server run in this one process, pinned to one CPU, so the figures
are CPU cost, not parallelism. Batches of each kind are interleaved and the
table shows medians with the spread (min-max) of the TLS batches.
Run: ``python bench/bench_tls.py`` (10-30 seconds; ``--rounds N`` to change
the number of interleaved batches).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from degu.client import Client, SSLClient
from degu.misc import TempPKI
from degu.server import Server, SSLServer

ROUNDS = 9  # interleaved batches per measurement
REQUESTS = 2000  # sequential requests per round-trip batch
CONNECTIONS = 200  # connections per handshake batch
BIG = b"x" * 65536

#: Targets (bench/README.md): what a reasonable TLS stack costs on top of a Python
#: HTTP/1.1 server.
TARGET_RTT_RATIO = 1.3  # empty-body round trip, TLS / plain
TARGET_HANDSHAKES = 500  # mutual-TLS connections + GET per second on one CPU


def app(session: Any, request: Any, api: Any) -> tuple[int, str, dict[str, Any], Any]:
    return (200, "OK", {}, BIG if request.uri == "/big" else b"")


def get(conn: Any, uri: str) -> None:
    conn.get(uri, {}).body.read()


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown(1)
        thread.join(10)


def round_trips(client: Client, uri: str, count: int, cpu: list[float]) -> float:
    """Seconds per request for *count* sequential GETs on one connection.

    Appends to *cpu* the process CPU time per request (client and server).
    """
    with client.connect() as conn:
        get(conn, uri)  # warm-up request
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            get(conn, uri)
        cpu.append((time.process_time() - start_cpu) / count)
        return (time.perf_counter() - start) / count


def handshakes(
    client: Client, count: int, cpu: list[float], *, full: bool = False
) -> float:
    """Connections per second: connect, one GET, close; *count* times.

    With *full*, the client's kept TLS sessions are dropped before each
    connection, so that every handshake is a full one.  Appends to *cpu* the
    process CPU time per connection (client and server together): unlike the
    rate, it hardly moves when a neighbour takes the CPU away.
    """
    # getattr: an older degu (before/after comparisons) keeps no sessions.
    sessions = getattr(client, "tls_sessions", None)
    forget = sessions.clear if full and sessions is not None else lambda: None
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        forget()
        with client.connect() as conn:
            get(conn, "/")
    cpu.append((time.process_time() - start_cpu) / count)
    return count / (time.perf_counter() - start)


def interleave(
    rounds: int, runs: dict[str, Callable[[], float]]
) -> dict[str, list[float]]:
    """Every figure of every round, the runs interleaved round by round."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            results[name].append(fn())
    return results


def spread(values: list[float], scale: float = 1.0) -> str:
    return f"{min(values) * scale:.0f}-{max(values) * scale:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()

    cpu = min(os.sched_getaffinity(0))
    # Threads inherit the affinity of the thread that starts them: set it
    # before any server thread exists, so client and server share the CPU.
    os.sched_setaffinity(0, {cpu})
    pki = TempPKI()
    address = ("127.0.0.1", 0)
    options = {"max_requests": 75000}  # the default 1000 would end a batch early
    with (
        serving(Server(address, app, **options)) as plain_server,
        serving(SSLServer(pki.server_sslconfig, address, app, **options)) as tls_server,
    ):
        plain = Client(plain_server.address)
        tls = SSLClient(pki.client_sslconfig, tls_server.address)
        with tls.connect() as conn:
            version = conn.sock.version()
            cipher = conn.sock.cipher()[0]
        rtt_cpu: dict[str, list[float]] = {
            name: [] for name in ("plain", "tls", "plain_big", "tls_big")
        }
        rtt_runs = interleave(
            args.rounds,
            {
                "plain": lambda: round_trips(plain, "/", REQUESTS, rtt_cpu["plain"]),
                "tls": lambda: round_trips(tls, "/", REQUESTS, rtt_cpu["tls"]),
                "plain_big": lambda: round_trips(
                    plain, "/big", REQUESTS // 4, rtt_cpu["plain_big"]
                ),
                "tls_big": lambda: round_trips(
                    tls, "/big", REQUESTS // 4, rtt_cpu["tls_big"]
                ),
            },
        )
        cpu_time: dict[str, list[float]] = {"plain": [], "tls": [], "tls_full": []}
        rate_runs = interleave(
            args.rounds,
            {
                "plain": lambda: handshakes(plain, CONNECTIONS, cpu_time["plain"]),
                "tls": lambda: handshakes(tls, CONNECTIONS, cpu_time["tls"]),
                "tls_full": lambda: handshakes(
                    tls, CONNECTIONS, cpu_time["tls_full"], full=True
                ),
            },
        )
    rtt = {name: statistics.median(values) for name, values in rtt_runs.items()}
    rate = {name: statistics.median(values) for name, values in rate_runs.items()}

    print(f"TLS: {version} {cipher}, mutual auth, ECDSA P-256; pinned to CPU {cpu};")
    print(f"medians of {args.rounds} interleaved batches")
    print()
    header = (
        f"{'measurement':<34}{'plain':>12}{'TLS':>12}{'TLS spread':>12}"
        f"{'TLS/plain':>11}  target"
    )
    print(header)
    print("-" * len(header))

    def row(
        name: str, p: float, t: float, unit: str, target: str, tls_range: str = ""
    ) -> None:
        print(
            f"{name:<34}{p:>9.1f} {unit}{t:>9.1f} {unit}{tls_range:>12}"
            f"{t / p:>10.2f}x  {target}"
        )

    row(
        "round trip, empty body (us/req)",
        rtt["plain"] * 1e6,
        rtt["tls"] * 1e6,
        "us",
        f"<= {TARGET_RTT_RATIO}x "
        + ("ok" if rtt["tls"] <= TARGET_RTT_RATIO * rtt["plain"] else "MISSED"),
        spread(rtt_runs["tls"], 1e6),
    )
    row(
        "round trip, 64 KiB body (us/req)",
        rtt["plain_big"] * 1e6,
        rtt["tls_big"] * 1e6,
        "us",
        "-",
        spread(rtt_runs["tls_big"], 1e6),
    )
    cpu_rtt = {name: statistics.median(values) for name, values in rtt_cpu.items()}
    row(
        "  CPU per round trip, empty (us)",
        cpu_rtt["plain"] * 1e6,
        cpu_rtt["tls"] * 1e6,
        "us",
        "(info)",
        spread(rtt_cpu["tls"], 1e6),
    )
    row(
        "  CPU per round trip, 64 KiB (us)",
        cpu_rtt["plain_big"] * 1e6,
        cpu_rtt["tls_big"] * 1e6,
        "us",
        "(info)",
        spread(rtt_cpu["tls_big"], 1e6),
    )
    verdict = "ok" if rate["tls"] >= TARGET_HANDSHAKES else "MISSED"
    row(
        "new connection + GET (conn/s)",
        rate["plain"],
        rate["tls"],
        "/s",
        f">= {TARGET_HANDSHAKES}/s with TLS: {verdict}",
        spread(rate_runs["tls"]),
    )
    row(
        "  the same, every handshake full",
        rate["plain"],
        rate["tls_full"],
        "/s",
        "(info)",
        spread(rate_runs["tls_full"]),
    )
    print()
    print("CPU time per connection + GET (client and server), median (spread):")
    for name, label in (("plain", "plain"), ("tls", "TLS"), ("tls_full", "TLS, full")):
        ms = statistics.median(cpu_time[name]) * 1e3
        print(f"  {label:<10} {ms:6.3f} ms ({spread(cpu_time[name], 1e6)} us)")


if __name__ == "__main__":
    main()

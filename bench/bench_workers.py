"""What ``python -m degu.server --workers 2`` gives over ``--workers 1``, with wrk.

Run: python bench/bench_workers.py   (bounded: about half a minute)

Both configurations are the command line as a user runs it (``--quiet``, so
logging to a pipe is not what we measure; ``--max-requests 75000``, so wrk's
keep-alive connections are not closed under it), serving one of two apps:

* ``hello``: a 12-byte answer, so the per-request cost is Degu's own;
* ``cpu``: about a millisecond of pure-Python work per request first, the
  GIL-bound application that worker processes are for.

The baseline is ``--workers 1``, measured in the same run.  Rounds are
interleaved (1, 2, 1, 2...), each ``wrk -t2 -c32`` for DURATION; the report
gives the median requests/s of each and the ratio of medians, with the
spread (lowest and highest per-round ratio).  Nothing is pinned: worker
processes exist to use every core, so the servers and wrk share the
machine's CPUs, and on a two-core VM wrk's own CPU use caps the gain.
Needs ``wrk`` (installed with apt-get when missing and running as root);
without it this says why and skips.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from bench_concurrency import find_wrk  # this directory: the one way to get wrk

ROUNDS = 5
DURATION = "1s"
CONNECTIONS = 32
WORKERS = (1, 2)

APPS = """
def hello(session, request, api):
    return (200, "OK", {}, b"hello world\\n")


def cpu(session, request, api):
    total = 0
    for i in range(20000):  # about a millisecond of bytecode, GIL held
        total += i * i
    return (200, "OK", {}, b"%d\\n" % (total % 1000))
"""


def start(app: str, workers: int, cwd: str) -> tuple[subprocess.Popen[str], str]:
    """Start the CLI; return it and the URL it printed, once it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "degu.server", "--app", f"benchapps:{app}",
         "--workers", str(workers), "--quiet", "--address", "127.0.0.1:0",
         "--max-requests", "75000"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r" at http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        stop(proc)
        raise RuntimeError(f"the server did not start: {line!r}")
    port = int(match.group(1))
    deadline = time.monotonic() + 10
    while True:  # bounded readiness poll: every worker forked and answering
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError("the server does not answer")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_wrk(wrk: str, url: str) -> tuple[float, str]:
    """Return (requests/s, error summary) of one wrk run."""
    out = subprocess.run(
        [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", url],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = []
    if e := re.search(r"Socket errors: (.*)", out):
        errors.append(e.group(1))
    if e := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors.append(f"non-2xx {e.group(1)}")
    return rate, "; ".join(errors)


def main() -> None:
    wrk, why = find_wrk()
    if wrk is None:
        print(f"SKIPPED: {why}")
        return
    print(
        f"{os.cpu_count()} CPUs, nothing pinned; wrk -t2 -c{CONNECTIONS} "
        f"-d{DURATION} x {ROUNDS} interleaved rounds; medians, ratio to --workers 1"
    )
    print(f"{'app':6} {'workers':>7} {'req/s':>9}   ratio (spread)")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "benchapps.py"), "w") as f:
            f.write(APPS)
        for app in ("hello", "cpu"):
            servers = {n: start(app, n, tmp) for n in WORKERS}
            rates: dict[int, list[float]] = {n: [] for n in WORKERS}
            errors: set[str] = set()
            try:
                for _ in range(ROUNDS):
                    for n, (_, url) in servers.items():
                        rate, error = run_wrk(wrk, url)
                        rates[n].append(rate)
                        if error:
                            errors.add(error)
            finally:
                for proc, _ in servers.values():
                    stop(proc)
            base = statistics.median(rates[1])
            for n in WORKERS:
                median = statistics.median(rates[n])
                per_round = [r / b for r, b in zip(rates[n], rates[1], strict=True)]
                line = f"{app:6} {n:7} {median:9.0f}   {median / base:4.2f}x"
                if n != 1:
                    line += f" ({min(per_round):.2f} to {max(per_round):.2f})"
                print(line)
            if errors:
                print(f"       errors: {'; '.join(sorted(errors))}")


if __name__ == "__main__":
    main()

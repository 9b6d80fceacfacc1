"""What does ``import degu`` cost an application?  (docs/reference/degu.rst)

Each sample is a fresh interpreter of this venv that times one import with
``time.perf_counter`` and reads its peak RSS and module count afterwards.
Candidates are interleaved round by round (so a noisy neighbour hits them all
alike) and summarised by medians, with the spread (min-max) of the import
time.  Bytecode is cached (under a temporary PYTHONPYCACHEPREFIX), as for an
installed package.  Baselines measured in the same run:

* ``pass``: an interpreter that imports nothing (RSS and modules are deltas
  to it);
* ``import degu.server``: what an application would pay to run the server in
  its own process;
* ``import multiprocessing``: what starting any child process costs anyway.

Run: python bench/bench_import.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CANDIDATES = {
    "pass": "pass",
    "import pkgutil": "import pkgutil",
    "import degu": "import degu",
    "from degu import EmbeddedServer": "from degu import EmbeddedServer",
    "import multiprocessing": "import multiprocessing",
    "import degu._processes": "import degu._processes",
    "import degu.server": "import degu.server",
}

# Goals for ``import degu``, as ratios of import time: it must cost less
# than keeping the namespace open with pkgutil would, and much less
# than the server it starts (docs/explanation/namespace.rst).
TARGETS = {
    "import pkgutil": 1.1,
    "import degu.server": 0.5,
    "import multiprocessing": 1.1,
}

#: ``import degu.server`` with bytecode cached, in ms.
SERVER_TARGET_MS = 10

# Time, current RSS and module count after one import in a fresh interpreter.
PROBE = """
import os, sys, time
t0 = time.perf_counter()
{statement}
t1 = time.perf_counter()
with open("/proc/self/statm") as f:
    rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
print((t1 - t0) * 1e3, rss, len(sys.modules))
"""

# Bytes Python allocated (and still holds) by the end of the import; run under
# -X tracemalloc, separately, so tracing does not slow the timed run.
MEMORY_PROBE = """
import tracemalloc
{statement}
print(tracemalloc.get_traced_memory()[0] // 1024)
"""


def _run(args: list[str], env: dict[str, str]) -> list[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    ).stdout.split()


def sample(statement: str, env: dict[str, str]) -> tuple[float, float, float, float]:
    """(import ms, RSS KiB, traced KiB, module count) from fresh interpreters."""
    ms, rss, modules = _run(["-c", PROBE.format(statement=statement)], env)
    (traced,) = _run(
        ["-X", "tracemalloc", "-c", MEMORY_PROBE.format(statement=statement)], env
    )
    return float(ms), float(rss), float(traced), float(modules)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="import cost of degu")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--json", action="store_true", help="print JSON too")
    args = parser.parse_args(argv)

    samples: dict[str, list[tuple[float, ...]]] = {k: [] for k in CANDIDATES}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for statement in CANDIDATES.values():  # fill the bytecode cache
            sample(statement, env)
        for _ in range(args.rounds):
            for name, statement in CANDIDATES.items():
                samples[name].append(sample(statement, env))

    med = {
        name: [statistics.median(row[i] for row in rows) for i in range(4)]
        for name, rows in samples.items()
    }
    base = med["pass"]
    version = sys.version.split()[0]
    print(f"import cost: medians of {args.rounds} fresh interpreters, Python {version}")
    header = (
        f"{'statement':32} {'ms':>7} {'ms spread':>11} {'+RSS KiB':>9}"
        f" {'+heap KiB':>10} {'+modules':>9} {'÷degu.server':>13}"
        f" {'÷multiprocessing':>17}"
    )
    print(header)
    print("-" * len(header))
    for name, (ms, rss, traced, modules) in med.items():
        times = [row[0] for row in samples[name]]
        spread = f"{min(times):.2f}-{max(times):.2f}"
        print(
            f"{name:32} {ms:7.2f} {spread:>11} {rss - base[1]:9.0f}"
            f" {traced - base[2]:10.0f} {modules - base[3]:9.0f}"
            f" {ms / med['import degu.server'][0]:13.3f}"
            f" {ms / med['import multiprocessing'][0]:17.3f}"
        )
    print()
    server_ms = med["import degu.server"][0]
    verdict = "ok" if server_ms <= SERVER_TARGET_MS else "MISSED"
    print(
        f"import degu.server: {server_ms:.2f} ms"
        f" (target <= {SERVER_TARGET_MS} ms) {verdict}"
    )
    degu_ms = med["import degu"][0]
    for baseline, target in TARGETS.items():
        ratio = degu_ms / med[baseline][0]
        verdict = "ok" if ratio <= target else "MISSED"
        print(f"import degu ÷ {baseline}: {ratio:.3f} (target <= {target}) {verdict}")
    if args.json:
        keys = ("ms", "rss_kib", "heap_kib", "modules")
        print(json.dumps({k: dict(zip(keys, v, strict=True)) for k, v in med.items()}))


if __name__ == "__main__":
    main()

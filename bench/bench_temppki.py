"""How long does making a ``TempPKI`` take?  (docs/reference/misc.rst)

Test modules make one each, so the default must be fast: the target is
0.1 s for ``TempPKI()`` (ECDSA P-256 keys, with the client half).  The RSA
variants are measured beside it for comparison, and ``trustme`` (the
throw-away CA many test suites use) as a same-run baseline when it is
installed.  Rounds interleave the candidates; figures are medians.

Run: python bench/bench_temppki.py [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable

from degu.misc import TempPKI

#: Seconds the default TempPKI() may take (median; bench/README.md).
TARGET = 0.1


def _trustme() -> Callable[[], object] | None:
    try:
        import trustme
    except ImportError:
        return None

    def make() -> object:
        ca = trustme.CA()
        return ca.issue_cert("localhost", "127.0.0.1", "::1")

    return make


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="TempPKI creation time")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    candidates: dict[str, Callable[[], object]] = {
        "TempPKI()  [ECDSA P-256]": TempPKI,
        "TempPKI(client_pki=False)": lambda: TempPKI(client_pki=False),
        "TempPKI(bits=2048)  [RSA]": lambda: TempPKI(bits=2048),
    }
    baseline = _trustme()
    if baseline is not None:
        candidates["trustme CA + server cert"] = baseline
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, make in candidates.items():
            start = time.perf_counter()
            made = make()
            samples[name].append(time.perf_counter() - start)
            del made
            gc.collect()  # TempPKI removes its directory when collected

    version = sys.version.split()[0]
    print(f"TempPKI creation: medians of {args.rounds} rounds, Python {version}")
    header = f"{'candidate':30} {'median s':>9} {'min s':>7} {'max s':>7}"
    print(header)
    print("-" * len(header))
    for name, times in samples.items():
        print(
            f"{name:30} {statistics.median(times):9.3f}"
            f" {min(times):7.3f} {max(times):7.3f}"
        )
    if baseline is None:
        print("(trustme not installed: no baseline)")
    print()
    median = statistics.median(samples["TempPKI()  [ECDSA P-256]"])
    verdict = "ok" if median <= TARGET else "MISSED"
    print(f"TempPKI(): {median:.3f} s (target <= {TARGET} s) {verdict}")


if __name__ == "__main__":
    main()

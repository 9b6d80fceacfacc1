"""Run examples/mutual_tls.py as a user would, with a time limit."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).with_name("mutual_tls.py")


def test_mutual_tls_example_runs_and_greets_the_client():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "200 OK"
    assert lines[1].startswith("hello, device ")
    assert lines[2] == "TLS version: TLSv1.3"

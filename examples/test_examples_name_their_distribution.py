"""Every example says which distribution it needs, first, and asks for it when missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
EXAMPLES = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("test_"))
NEEDS = {"echo_controller.py": "degu-controller", "embedded_server.py": "degu-embed"}


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_names_its_distribution_in_its_first_lines(example: Path) -> None:
    dist = NEEDS.get(example.name, "degu-core")
    head = "\n".join(example.read_text().splitlines()[:4])
    assert f"Needs the {dist} distribution" in head
    assert f"./packages/{dist}" in head


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_without_degu_says_what_to_install(example: Path) -> None:
    """``python -S`` leaves site-packages, and so every Degu distribution, out."""
    dist = NEEDS.get(example.name, "degu-core")
    out = subprocess.run(
        [sys.executable, "-S", str(example)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE.parent,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"{example} needs {dist} (No module named 'degu')" in out.stderr
    assert f"python3 -m pip install ./packages/{dist}" in out.stderr or (
        dist == "degu-embed"
        and "pip install ./packages/degu-core ./packages/degu-embed" in out.stderr
    )

"""The ``>>>`` examples in degu-core's docstrings run, against the installed modules."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import degu.base

# degu-core's portion of the namespace: the directory degu.base was loaded from
# (site-packages for a regular install, src/ for an editable one).
CORE_DIR = Path(degu.base.__file__).parent
OTHER_DISTRIBUTIONS = {"__init__", "controller"}
CORE_MODULES = sorted(
    f"degu.{p.stem}" for p in CORE_DIR.glob("*.py") if p.stem not in OTHER_DISTRIBUTIONS
)


def test_the_core_modules_are_found() -> None:
    assert {"degu.base", "degu.server", "degu.client", "degu.misc"} <= set(CORE_MODULES)


@pytest.mark.parametrize("name", CORE_MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"

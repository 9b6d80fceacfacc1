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


# The modules whose docstrings hold ``>>>`` examples.  A module listed here
# without examples fails, and so does an unlisted module that has some, so an
# example can neither be dropped nor added without this list saying so.
EXAMPLE_MODULES = (
    "degu._cli",
    "degu._listing",
    "degu._targets",
    "degu.applib",
    # OpenRange and SuffixRange (degu._ranges) are documented, and found,
    # under the module users import them from.
    "degu.base",
    "degu.misc",
    "degu.sslhelpers",
)


def _example_count(name: str) -> int:
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    return sum(len(test.examples) for test in tests)


def test_exactly_the_listed_modules_have_docstring_examples() -> None:
    with_examples = [name for name in CORE_MODULES if _example_count(name)]
    assert with_examples == sorted(EXAMPLE_MODULES)


@pytest.mark.parametrize("name", EXAMPLE_MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS
    )
    assert result.attempted > 0, f"{name} is listed but has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_a_module_without_examples_would_fail_the_listing() -> None:
    # The check above is not vacuous: a module with no examples counts 0.
    assert _example_count("degu._common") == 0
    assert _example_count("degu.misc") > 0

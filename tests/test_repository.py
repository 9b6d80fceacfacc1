"""The repository explains itself: no rule lives only in a document outside it.

Comments and docstrings cite an RFC section or one of our docs pages by path
(``docs/explanation/limits.rst``); these tests keep it that way.  They read
files only, so the lint session runs them (noxfile.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Built docs are output, not source.
SKIPPED_PARTS = {"_build", "__pycache__", ".nox", "node_modules"}
SUFFIXES = {".py", ".rst", ".md", ".toml", ".txt", ".cfg", ".ini", ".yaml", ".yml"}


def _files() -> list[Path]:
    roots = [
        *sorted((ROOT / "packages").glob("*/src")),
        *sorted((ROOT / "packages").glob("*/tests")),
        *sorted((ROOT / "packages").glob("*/README.md")),
        *sorted((ROOT / "packages").glob("*/CHANGELOG.md")),
        *sorted((ROOT / "packages").glob("*/pyproject.toml")),
        ROOT / "examples",
        ROOT / "docs",
        ROOT / "bench",
        ROOT / "tests",
        ROOT / "noxfile.py",
        ROOT / "README.md",
        ROOT / "pyproject.toml",
    ]
    found: list[Path] = []
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            rel = path.relative_to(ROOT)
            if (
                path.is_file()
                and path.suffix in SUFFIXES
                and not SKIPPED_PARTS.intersection(rel.parts)
            ):
                found.append(path)
    return found


FILES = _files()
# This file names the words it forbids.
SCANNED = [p for p in FILES if p != Path(__file__).resolve()]

# Words that point at documents or a process outside the repository.
OUTSIDE_WORDS = re.compile(
    r"(?<![A-Za-z])(?:SPEC|TEAM)(?![A-Za-z])"  # SPEC §1, test_x_SPEC_y
    r"|\bSTYLE ?§"
    r"|\b[Ii]ssues? #?\d+"  # "issue 11", "issue #3"
    r"|\bthe seed\b|\bseed's\b"
    r"|\bthe lead\b"
    r"|(?i:\bthe spec(?:ification)?\b)"  # which one? cite the RFC or page
)
SECTION = re.compile("§")
# A section sign must belong to an RFC cited just before it ("RFC 9112 §6.3",
# "RFC 9110\n# §10.1.1", "RFC 9112 §6.1 (...), §6.3 item 3").
RFC_BEFORE = re.compile(r"RFC ?\d+")
RFC_WINDOW = 160
# A path into the docs tree; build output and file names in examples
# ("docs/index.html" as URL data) are not citations.
DOCS_PATH = re.compile(r"(?<![\w/.\"])docs/(?!_build)[\w./-]*\.(?:rst|py|txt)\b")


def _lines_matching(pattern: re.Pattern[str]) -> list[str]:
    hits = []
    for path in SCANNED:
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            hits.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}")
    return hits


def test_the_scan_covers_sources_tests_docs_examples_and_benchmarks() -> None:
    scanned = {p.relative_to(ROOT).parts[0] for p in SCANNED}
    assert {"packages", "docs", "examples", "bench", "noxfile.py"} <= scanned
    names = {p.relative_to(ROOT).as_posix() for p in SCANNED}
    assert "packages/degu-core/src/degu/server.py" in names
    assert "docs/explanation/limits.rst" in names
    assert "packages/degu-core/CHANGELOG.md" in names
    assert not any("/_build/" in name for name in names)


def test_no_reference_to_an_outside_document_or_process() -> None:
    assert _lines_matching(OUTSIDE_WORDS) == []


def test_the_outside_words_pattern_catches_what_it_is_for() -> None:
    for text in [
        "(SPEC §1.2)",
        "def test_x_in_the_SPEC_format",
        "STYLE §7",
        "TEAM contract 1",
        "issue 11's targets",
        "the seed's rule",
        "the message the specification prescribes",
    ]:
        assert OUTSIDE_WORDS.search(text), text
    for text in [
        "_SPECIAL = frozenset()",
        "SPECIFIC",
        "a tissue 5",
        "seeded",
        "the special",
    ]:
        assert not OUTSIDE_WORDS.search(text), text


def _orphan_sections(text: str) -> list[int]:
    orphans = []
    for match in SECTION.finditer(text):
        before = text[max(0, match.start() - RFC_WINDOW) : match.start()]
        if not RFC_BEFORE.search(before):
            orphans.append(match.start())
    return orphans


def test_every_section_sign_belongs_to_an_rfc() -> None:
    orphans = []
    for path in SCANNED:
        text = path.read_text(encoding="utf-8")
        for pos in _orphan_sections(text):
            line = text.count("\n", 0, pos) + 1
            snippet = text[max(0, pos - 30) : pos + 10]
            orphans.append(f"{path.relative_to(ROOT)}:{line}: {snippet!r}")
    assert orphans == []


def test_the_section_rule_tells_rfc_sections_from_others() -> None:
    assert _orphan_sections("RFC 9112 §6.3 item 5") == []
    assert _orphan_sections("(RFC 9110\n    # §10.1.1)") == []
    assert _orphan_sections("(RFC 9112 §6.1 TE.TE), §6.3 item 3") == []
    assert _orphan_sections("see §14 item 13") == [4]


@pytest.mark.parametrize(
    "cited",
    sorted(
        {
            m.group(0).rstrip(".")
            for p in SCANNED
            for m in DOCS_PATH.finditer(p.read_text(encoding="utf-8"))
        }
    ),
)
def test_every_cited_docs_path_exists(cited: str) -> None:
    assert (ROOT / cited).exists(), f"{cited} is cited but does not exist"


def test_the_docs_path_pattern_finds_citations_only() -> None:
    found = [
        m.group(0)
        for m in DOCS_PATH.finditer(
            "see docs/explanation/wire.rst. and docs/reference/base.rst, "
            '"docs/index.html" docs/_build/html/index.html'
        )
    ]
    assert found == ["docs/explanation/wire.rst", "docs/reference/base.rst"]


def test_sources_cite_the_docs_pages_they_lean_on() -> None:
    # The citations above are real: the wire and limits pages are named from
    # the code whose rules they state.
    src = ROOT / "packages" / "degu-core" / "src" / "degu"
    assert "docs/explanation/wire.rst" in (src / "_rendering.py").read_text()
    assert "docs/explanation/limits.rst" in (src / "_limits.py").read_text()

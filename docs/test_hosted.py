"""The docs host's build works: .readthedocs.yaml, replayed in a clean venv.

Run by ``nox -s docs`` after its own HTML build.  The host installs only what
``.readthedocs.yaml`` names (the pinned ``docs/requirements.txt`` and the three
distributions) and has none of the Debian packages the docs session may add,
so the build here runs in a fresh venv with Debian's Python inventory hidden
(``DEGU_PYTHON_INVENTORY=""``, see ``docs/conf.py``).  Both that build and the
session's own are checked for broken internal links.

``nox -s docs -- -k "not hosted_build"`` skips the slow replay.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is not installed")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BUILD = Path(os.environ.get("DEGU_DOCS_HTML", DOCS / "_build" / "html"))
CONFIG = ROOT / ".readthedocs.yaml"
DISTRIBUTIONS = ("degu-core", "degu-embed", "degu-controller")


def _config() -> dict[str, object]:
    with CONFIG.open() as f:
        config = yaml.safe_load(f)
    assert isinstance(config, dict)
    return config


# --- broken internal links, checked over the HTML ---------------------------


class _Page(HTMLParser):
    """The ids a page defines and the same-site links it makes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("id", "name") if tag == "a" else ("id",):
            if found.get(name):
                self.ids.add(str(found[name]))
        for name in ("href", "src"):
            value = found.get(name)
            if value is not None and tag in ("a", "link", "script", "img"):
                self.links.append(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_internal_links(site: Path) -> list[str]:
    """Every same-site link in *site* whose file or fragment does not exist."""
    site = site.resolve()
    pages: dict[Path, _Page] = {p: _parse(p) for p in site.rglob("*.html")}
    broken = []
    for source, page in sorted(pages.items()):
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link == "#":
                continue  # another site, or "#" (back to top)
            path = unquote(parts.path)
            target = (source.parent / path).resolve() if path else source
            if target.is_dir():
                target = target / "index.html"
            where = f"{source.relative_to(site)}: {link}"
            if not target.is_file() or not target.is_relative_to(site):
                broken.append(f"{where} (no {path})")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no id {parts.fragment!r})")
    return broken


def test_broken_internal_links_finds_missing_files_and_fragments(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a id="top" href="#">top</a><a href="sub/page.html#here">ok</a>'
        '<a href="sub/page.html#gone">bad id</a><a href="missing.html">bad</a>'
        '<a href="https://example.org/x.html">elsewhere</a>'
        '<script src="_static/x.js"></script><a href="#top">ok</a>'
    )
    (tmp_path / "sub" / "page.html").write_text(
        '<h1 id="here">x</h1><a href="../index.html#top">ok</a><a href="../">ok</a>'
    )
    assert broken_internal_links(tmp_path) == [
        "index.html: sub/page.html#gone (no id 'gone')",
        "index.html: missing.html (no missing.html)",
        "index.html: _static/x.js (no _static/x.js)",
    ]


def test_session_build_has_no_broken_internal_links() -> None:
    if not (BUILD / "index.html").exists():
        pytest.fail(f"build the HTML docs first: no {BUILD / 'index.html'}")
    assert broken_internal_links(BUILD) == []


# --- the configuration itself ------------------------------------------------


def test_readthedocs_config_builds_docs_with_the_pinned_requirements() -> None:
    config = _config()
    assert config["version"] == 2
    assert config["sphinx"] == {
        "configuration": "docs/conf.py",
        "builder": "html",
        "fail_on_warning": True,
    }
    install = config["python"]["install"]  # type: ignore[index]
    assert install[0] == {"requirements": "docs/requirements.txt"}
    assert install[1:] == [
        {"method": "pip", "path": f"packages/{dist}"} for dist in DISTRIBUTIONS
    ]
    # The docs session installs the very same file.
    noxfile = (ROOT / "noxfile.py").read_text()
    assert 'DOCS_REQUIREMENTS = "docs/requirements.txt"' in noxfile
    assert "apt_packages" not in config.get("build", {})  # type: ignore[operator]


def test_docs_requirements_are_all_pinned() -> None:
    lines = (DOCS / "requirements.txt").read_text().splitlines()
    requirements = [line for line in lines if line and not line.startswith("#")]
    unpinned = [r for r in requirements if not re.fullmatch(r"[\w.-]+==[\w.]+", r)]
    assert unpinned == []
    names = {r.split("==")[0].lower() for r in requirements}
    assert {"sphinx", "furo", "myst-parser", "sphinx-copybutton"} <= names


# --- Debian's inventory is optional ------------------------------------------


@pytest.mark.parametrize(
    ("inventory", "online", "locations"),
    [
        ("present", "", ("{inventory}",)),
        ("present", "1", ("{inventory}", None)),
        ("", "1", (None,)),
        ("", "", None),
        ("missing", "", None),
    ],
    ids=["offline", "offline+online", "online", "none", "missing-file"],
)
def test_conf_uses_the_python_inventory_only_where_it_exists(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    inventory: str,
    online: str,
    locations: tuple[str | None, ...] | None,
) -> None:
    """With no inventory at all, intersphinx is off and non-degu names are not
    nitpicked, so `-W -n` still passes (the docs host's case)."""
    path = tmp_path / "objects.inv"
    if inventory == "present":
        path.write_bytes(b"")
    monkeypatch.setenv("DEGU_PYTHON_INVENTORY", "" if inventory == "" else str(path))
    monkeypatch.setenv("DEGU_DOCS_ONLINE", online)
    conf = runpy.run_path(str(DOCS / "conf.py"))
    if locations is None:
        assert conf["intersphinx_mapping"] == {}
        assert conf["nitpick_ignore_regex"] == [("py:.*", r"(?!degu\b).*")]
    else:
        want = tuple(None if x is None else str(path) for x in locations)
        assert conf["intersphinx_mapping"] == {
            "python": ("https://docs.python.org/3", want)
        }
        assert "nitpick_ignore_regex" not in conf
    assert conf["nitpicky"] is True


def test_conf_shows_each_distributions_version_from_its_pyproject() -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    for dist in DISTRIBUTIONS:
        with (ROOT / "packages" / dist / "pyproject.toml").open("rb") as f:
            want = tomllib.load(f)["project"]["version"]
        assert conf["VERSIONS"][dist] == want


# --- the host's build, replayed ----------------------------------------------

# A fresh venv from the package index and a full build: minutes, not seconds.
hosted_timeout = pytest.mark.timeout(900)


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=900,
        **kwargs,
    )


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Build the site as .readthedocs.yaml says, in a clean venv; yield the HTML."""
    config = _config()
    python = config["build"]["tools"]["python"]  # type: ignore[index]
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        pytest.skip(f"no python{python}, the version .readthedocs.yaml names")
    tmp = tmp_path_factory.mktemp("hosted")
    venv = tmp / "venv"
    proc = _run(interpreter, "-m", "venv", venv)
    assert proc.returncode == 0, proc.stderr
    bin_dir = venv / "bin"
    # Nothing of this session's venv or Degu settings; pip's own settings
    # (index, certificates) stay, as they say how to reach the package index.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEGU_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["READTHEDOCS"] = "True"
    env["DEGU_PYTHON_INVENTORY"] = ""  # no Debian packages on the host
    pip = [bin_dir / "python", "-m", "pip", "install", "-q", "--no-cache-dir"]
    # In the order the host runs them: requirements first, then each path.
    for step in config["python"]["install"]:  # type: ignore[index]
        if "requirements" in step:
            args = ["-r", ROOT / step["requirements"]]
        else:
            assert step["method"] == "pip"
            args = ["--upgrade-strategy", "only-if-needed", ROOT / step["path"]]
        proc = _run(*pip, *args, env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
    sphinx = config["sphinx"]
    conf_dir = (ROOT / sphinx["configuration"]).parent  # type: ignore[index]
    out = tmp / "html"
    warnings = ["-W", "--keep-going"] if sphinx["fail_on_warning"] else []  # type: ignore[index]
    proc = _run(
        bin_dir / "python",
        "-m",
        "sphinx",
        "-T",
        *warnings,
        "-b",
        sphinx["builder"],  # type: ignore[index]
        "-d",
        tmp / "doctrees",
        "-D",
        "language=en",
        ".",
        out,
        env=env,
        cwd=conf_dir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    yield out


@hosted_timeout
def test_hosted_build_has_no_broken_internal_links(hosted: Path) -> None:
    assert broken_internal_links(hosted) == []


@hosted_timeout
def test_hosted_build_used_only_the_pinned_tools(hosted: Path) -> None:
    """The host's venv holds the pinned tools and Degu's three distributions."""
    freeze = _run(hosted.parent / "venv" / "bin" / "python", "-m", "pip", "freeze")
    assert freeze.returncode == 0, freeze.stderr
    installed = set(freeze.stdout.splitlines())
    pinned = {
        line
        for line in (DOCS / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    # The distributions come from packages/ ("degu-core @ file:///...").
    degu = {line for line in installed if line.startswith("degu")}
    assert installed - degu == pinned
    assert sorted(line.split(" @ ")[0] for line in degu) == sorted(DISTRIBUTIONS)


@hosted_timeout
def test_hosted_build_degrades_without_the_python_inventory(hosted: Path) -> None:
    """No intersphinx links there; the session's build has them when Debian's
    inventory is installed."""
    page = "reference/server.html"
    assert "docs.python.org" not in (hosted / page).read_text()
    if Path("/usr/share/doc/python3-doc/html/objects.inv").is_file():
        assert "docs.python.org" in (BUILD / page).read_text()


@hosted_timeout
def test_hosted_build_shows_versions_source_and_changelogs(hosted: Path) -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    for page in ("index.html", "tutorial/first-server.html"):
        text = (hosted / page).read_text()
        prefix = "../" if "/" in page else ""
        for dist in DISTRIBUTIONS:
            assert f'href="{prefix}changes/{dist}.html"' in text
            assert f'<span class="degu-version">{conf["VERSIONS"][dist]}</span>' in text
        assert f'class="degu-source" href="{conf["SOURCE_URL"]}"' in text

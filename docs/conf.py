"""Sphinx configuration for the one Degu site (all three distributions)."""

from __future__ import annotations

import os
import tomllib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from sphinx import addnodes
from sphinx.ext.viewcode import _get_full_modname

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx

project = "Degu"
author = "The Degu developers"
copyright = "2026, The Degu developers"


ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = ("degu-core", "degu-embed", "degu-controller")
# Where the source lives, shown on every page (sidebar and "view source").
SOURCE_URL = "https://github.com/degu-project/degu"
SOURCE_BRANCH = "main"


def _version(dist: str) -> str:
    """The version in the checkout's pyproject.toml: the source these pages describe.

    Falls back to the installed distribution's metadata, for a tree whose
    version is not a static field.
    """
    pyproject = ROOT / "packages" / dist / "pyproject.toml"
    try:
        with pyproject.open("rb") as f:
            found = tomllib.load(f)["project"].get("version")
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        found = None
    if isinstance(found, str):
        return found
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


VERSIONS = {dist: _version(dist) for dist in DISTRIBUTIONS}
release = version = VERSIONS["degu-core"]
rst_epilog = f"""
.. |core_version| replace:: {VERSIONS["degu-core"]}
.. |embed_version| replace:: {VERSIONS["degu-embed"]}
.. |controller_version| replace:: {VERSIONS["degu-controller"]}
"""

extensions = [
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_copybutton",
]
# Nitpicky here rather than only on the command line (-n), so that a docs
# host building from .readthedocs.yaml checks every reference too.
nitpicky = True
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "Degu"
templates_path = ["_templates"]
html_theme_options = {
    # Furo's "view this page" button: the page's source in the repository.
    "source_repository": SOURCE_URL + "/",
    "source_branch": SOURCE_BRANCH,
    "source_directory": "docs/",
    "top_of_page_buttons": ["view"],
}
html_sidebars = {
    "**": [
        "sidebar/brand.html",
        "sidebar/degu-versions.html",
        "sidebar/search.html",
        "sidebar/scroll-start.html",
        "sidebar/navigation.html",
        "sidebar/scroll-end.html",
    ]
}
# Read by _templates/sidebar/degu-versions.html.
html_context = {
    "degu_versions": list(VERSIONS.items()),
    "degu_source_url": SOURCE_URL,
}
html_css_files = ["degu.css"]

# The copy button copies commands, not prompts or output: the text after
# ">>> ", "... " or "$ ", and only from lines with a prompt (when a block has
# any).
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True

# Offline first: Debian's python3-doc ships the Python inventory.  The URL is
# only used when DEGU_DOCS_ONLINE is set; with no inventory at all the mapping
# is dropped, and stdlib names are not cross-referenced.  That is the docs
# host's case (no Debian packages there); DEGU_PYTHON_INVENTORY names another
# file, and an empty value builds as if there were none (docs/test_hosted.py).
_LOCAL_INVENTORY = Path(
    os.environ.get(
        "DEGU_PYTHON_INVENTORY", "/usr/share/doc/python3-doc/html/objects.inv"
    )
)
_locations: list[str | None] = []
if _LOCAL_INVENTORY.is_file():  # Path("") is ".", not a file
    _locations.append(str(_LOCAL_INVENTORY))
if os.environ.get("DEGU_DOCS_ONLINE"):
    _locations.append(None)
intersphinx_mapping = (
    {"python": ("https://docs.python.org/3", tuple(_locations))} if _locations else {}
)
if not _locations:
    # Without an inventory, references to non-degu names cannot resolve;
    # degu's own references are still checked.
    nitpick_ignore_regex = [("py:.*", r"(?!degu\b).*")]

# Doctests run against the installed distributions, never the checkout.
doctest_global_setup = """
import os, tempfile
"""

# A declared icon: without one, browsers ask for /favicon.ico and log a 404.
html_static_path = ["_static"]
html_favicon = "_static/degu.svg"


def _alias_viewcode_backlinks(app: Sphinx, doctree: nodes.document) -> None:
    """Give each documented object the anchor viewcode's "[docs]" link uses.

    On a module's source page, viewcode links every object back to its entry
    as ``#<module>.<name>``, with one <module> per source module: the first
    public module documented from it.  degu.server and degu.client both
    re-export from degu._sslctx, so one of those links named the wrong module
    (docs/test_hosted.py checks every internal link).  An extra id on the
    signature makes that link land on the right entry.
    """
    modules = getattr(app.env, "_viewcode_modules", {})
    for signature in doctree.findall(addnodes.desc_signature):
        module, fullname = signature.get("module"), signature.get("fullname")
        if not module or not fullname:
            continue
        entry = modules.get(_get_full_modname(module, fullname))
        if entry and entry[3] != module:
            alias = f"{entry[3]}.{fullname}"
            if alias not in signature["ids"]:
                signature["ids"].append(alias)


def _follow_degu_names_only(app: Sphinx, modname: str, attribute: str) -> str | None:
    """Keep viewcode on Degu's own source.

    A type alias such as ``degu.typehints.Headers`` (``dict[str, Any]``) says
    it comes from ``builtins``; following it would list a source page for
    ``builtins`` that is never written.
    """
    found = _get_full_modname(modname, attribute)
    if found is not None and not found.startswith("degu"):
        return modname
    return found


def setup(app: Sphinx) -> None:
    app.connect("viewcode-follow-imported", _follow_degu_names_only)
    # After viewcode's own doctree-read handler (priority 500).
    app.connect("doctree-read", _alias_viewcode_backlinks, priority=600)

"""Sphinx configuration for the one Degu site (all three distributions)."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

project = "Degu"
author = "The Degu developers"
copyright = "2026, The Degu developers"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


release = version = _version("degu-core")
rst_epilog = f"""
.. |core_version| replace:: {_version("degu-core")}
.. |embed_version| replace:: {_version("degu-embed")}
.. |controller_version| replace:: {_version("degu-controller")}
"""

extensions = [
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "Degu"

# Offline first: Debian's python3-doc ships the Python inventory.  The URL is
# only used when DEGU_DOCS_ONLINE is set; with no inventory at all the mapping
# is dropped, and stdlib names are not cross-referenced.
_LOCAL_INVENTORY = Path("/usr/share/doc/python3-doc/html/objects.inv")
_locations: list[str | None] = []
if _LOCAL_INVENTORY.exists():
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

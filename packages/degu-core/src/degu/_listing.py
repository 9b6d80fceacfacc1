"""The HTML page ``FilesApp`` shows for a directory without ``index.html``.

Only rendering lives here: ``degu._files`` opens the directory (confined, see
there) and hands us its entries.  Every name is HTML-escaped in the text and
percent-encoded in its link (RFC 3986 §2.1), so a file named
``<script>`` or ``a:b`` or ``my file é.txt`` is shown and linked as itself.
"""

from __future__ import annotations

import html
import time

from degu._targets import encode_segment

__all__ = ["MAX_ENTRIES", "Entry", "human_size", "render_listing"]

#: At most this many entries are listed; the page says when some were left out.
MAX_ENTRIES = 10000

#: (name, is_dir, size in bytes, modification time as seconds since the epoch)
Entry = tuple[str, bool, int, float]

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em}"
    "table{border-collapse:collapse}"
    "td,th{padding:.15em 1.2em .15em 0;text-align:left}"
    "td.size,th.size{text-align:right}"
    "td.name a{text-decoration:none}"
)


def human_size(size: int) -> str:
    """Bytes as a short human-readable size.

    >>> human_size(512), human_size(10240), human_size(5 * 1024**3)
    ('512 B', '10.0 KiB', '5.0 GiB')
    """
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _href(name: str, is_dir: bool) -> str:
    # './' first: a relative reference whose first segment has a ':' would
    # otherwise read as a scheme (RFC 3986 §4.2).
    return "./" + encode_segment(name) + ("/" if is_dir else "")


def render_listing(title: str, entries: list[Entry], *, parent: bool) -> bytes:
    """The UTF-8 HTML listing of *entries*: directories first, then by name.

    *title* is the decoded path shown to the reader (``/docs/``); *parent*
    adds a link to ``../``.
    """
    rows = sorted(entries, key=lambda e: (not e[1], e[0].casefold(), e[0]))
    omitted = max(len(rows) - MAX_ENTRIES, 0)
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Index of {esc(title)}</title><style>{_STYLE}</style></head>",
        f"<body><h1>Index of {esc(title)}</h1>",
        '<table><thead><tr><th>Name</th><th class="size">Size</th>'
        "<th>Modified (UTC)</th></tr></thead><tbody>",
    ]
    if parent:
        out.append(
            '<tr><td class="name"><a href="../">../</a></td><td></td><td></td></tr>'
        )
    for name, is_dir, size, mtime in rows[:MAX_ENTRIES]:
        shown = esc(name + ("/" if is_dir else ""))
        href = esc(_href(name, is_dir))
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime))
        size_cell = (
            "<td></td>"
            if is_dir
            else (f'<td class="size" title="{size} bytes">{esc(human_size(size))}</td>')
        )
        out.append(
            f'<tr><td class="name"><a href="{href}">{shown}</a></td>'
            f"{size_cell}<td>{when}</td></tr>"
        )
    out.append("</tbody></table>")
    if omitted:
        out.append(f"<p>{omitted} more entries not shown.</p>")
    out.append("</body></html>\n")
    return "\n".join(out).encode()

"""``FilesApp``: a static file server that cannot be talked out of its directory.

Serves GET and HEAD with what browsers and download tools expect (RFC 9110):
``etag``/``last-modified`` validators and 304 answers to ``if-none-match`` /
``if-modified-since`` (RFC 9110 §13.1), every single byte-range form with
clamping (206, or 416 with ``content-range: bytes */LENGTH``, RFC 9110 §14),
``if-range`` (RFC 9110 §13.1.5), ``accept-ranges: bytes``, a ``content-type``
from :mod:`mimetypes` (``charset=utf-8`` for text), ``index.html`` for a
directory URI ending in ``/``, and optionally an HTML listing of a directory
without one.  A list of
ranges is answered with ``multipart/byteranges`` (RFC 9110 §14.6) when it is
short, ascending and without overlap, and with the whole file (200)
otherwise, which RFC 9110 §14.2 and §14.3 allow.
Names starting with ``.`` are neither served nor listed unless ``dotfiles``
is set.  File data is streamed by a ``Body`` over the open file.

Confinement does not rely on string checks of the path.  Every component is
opened with ``O_NOFOLLOW`` relative to the file descriptor of its parent
directory, starting from the descriptor opened in the constructor.  A symlink
is resolved here, one component at a time: a relative target is followed
(its ``..`` pops back to the parent descriptor we already hold), but an
absolute target, or a ``..`` that would climb above the served directory,
ends resolution with 404.  No path string is ever handed to the kernel whole,
so there is nothing for a race (a symlink swapped in between checks) to
exploit.  The parser already refuses a path segment that is, or decodes to,
``..`` or contains ``/`` or NUL; such a segment in a hand-built request gets
400 here.
"""

from __future__ import annotations

import errno
import mimetypes
import os
import secrets
import stat
from email.utils import formatdate, parsedate_to_datetime
from itertools import pairwise
from typing import Any

from degu._checks import type_error
from degu._discard import refuse_body
from degu._listing import Entry, render_listing
from degu._parsing import parse_range_list
from degu._targets import encode_segment
from degu.base import Body, ContentRange, OpenRange, Range, SuffixRange

__all__ = ("FilesApp",)

#: Most symlinks followed while resolving one request (as Linux's MAXSYMLINKS).
MAX_SYMLINKS = 40
#: Served for a URI that ends with ``/``.
INDEX = "index.html"
#: Most ranges answered as ``multipart/byteranges``; a longer list, or one
#: whose ranges overlap or go backwards, gets the whole file (RFC 9110 §14.3:
#: many small or overlapping ranges are a known denial-of-service pattern).
MAX_RANGES = 16

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must never block the connection thread (we
# refuse anything but regular files after fstat anyway).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
# Compressed files are served as what they are, not as what they contain:
# sending 'application/x-tar' for foo.tar.gz without a content-encoding
# would make a browser mis-handle it.
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
}
# Text types get an explicit charset, so a browser does not guess one.
_TEXT_TYPES = frozenset(["application/javascript", "application/json", "image/svg+xml"])
_RANGE_TYPES = (Range, OpenRange, SuffixRange)
_HTML = "text/html; charset=utf-8"


class _NotFound(Exception):
    """Resolution failed in a way the client may only learn as 404."""


class _FdOwner:
    """Owns an open file descriptor: closes it once, at the latest when collected.

    ``Body`` never closes its ``rfile``, so a reader closes its descriptor
    itself once the last byte is delivered, or here after an aborted transfer.
    """

    _fd: int

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class _FileReader(_FdOwner):
    """``readinto`` over a range of an open file; closes it at the end.

    ``os.preadv`` keeps the offset here, not in the fd.
    """

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd = fd
        self._offset = offset
        self._remaining = size
        if size == 0:
            self.close()

    def readinto(self, buf: Any) -> int:
        if self._fd < 0:
            return 0
        view = memoryview(buf)[: self._remaining]
        n = os.preadv(self._fd, [view], self._offset)
        self._offset += n
        self._remaining -= n
        if self._remaining == 0 or n == 0:
            self.close()
        return n

    def __repr__(self) -> str:
        return f"<_FileReader fd={self._fd} remaining={self._remaining}>"


class _PartsReader(_FdOwner):
    """``readinto`` over a list of literal ``bytes`` and ``(offset, length)`` spans.

    The body of a ``multipart/byteranges`` answer: part headers are literal,
    part data is read from the open file, which is closed at the end.
    """

    def __init__(self, fd: int, segments: list[bytes | tuple[int, int]]) -> None:
        self._fd = fd
        self._segments = segments
        self._index = 0
        self._pos = 0  # within the current segment

    def readinto(self, buf: Any) -> int:
        if self._fd < 0 or self._index == len(self._segments):
            return 0
        view = memoryview(buf)
        seg = self._segments[self._index]
        if type(seg) is bytes:
            n = min(len(view), len(seg) - self._pos)
            view[:n] = seg[self._pos : self._pos + n]
            size = len(seg)
        else:
            offset, size = seg
            want = min(len(view), size - self._pos)
            n = os.preadv(self._fd, [view[:want]], offset + self._pos)
            if n == 0:  # the file shrank: Body reports the short read
                self.close()
                return 0
        self._pos += n
        if self._pos == size:
            self._index += 1
            self._pos = 0
            if self._index == len(self._segments):
                self.close()
        return n

    def __repr__(self) -> str:
        return f"<_PartsReader fd={self._fd} segment={self._index}>"


def _satisfiable(value: str, size: int) -> list[ContentRange] | None:
    """The satisfiable ranges of a range list, or ``None`` for "send it all".

    Unsatisfiable ranges are dropped (RFC 9110 §14.1.1: the set is
    satisfiable when any range is); ``[]`` then means 416.
    """
    try:
        ranges = parse_range_list(value.encode("ascii"))
    except UnicodeEncodeError:
        return None
    if ranges is None or len(ranges) > MAX_RANGES:
        return None
    found: list[ContentRange] = []
    for rng in ranges:
        try:
            found.append(rng.content_range(size))
        except ValueError:
            continue
    for a, b in pairwise(found):
        if b.start < a.stop:
            return None  # overlapping or backwards: not worth the risk
    return found


def _multipart(
    fd: int, parts: list[ContentRange], kind: str | None
) -> tuple[str, int, _PartsReader]:
    """``multipart/byteranges`` (RFC 9110 §14.6): content type, length, reader."""
    boundary = secrets.token_hex(16)  # 32 hex digits never in a part header
    typeline = "" if kind is None else f"content-type: {kind}\r\n"
    segments: list[bytes | tuple[int, int]] = []
    for i, cr in enumerate(parts):
        lead = "--" if i == 0 else "\r\n--"
        head = f"{lead}{boundary}\r\n{typeline}content-range: {cr}\r\n\r\n"
        segments.append(head.encode())
        segments.append((cr.start, cr.content_length))
    segments.append(f"\r\n--{boundary}--\r\n".encode())
    length = sum(len(seg) if type(seg) is bytes else seg[1] for seg in segments)
    content_type = f"multipart/byteranges; boundary={boundary}"
    return content_type, length, _PartsReader(fd, segments)


def _open_beneath(
    root_fd: int, parts: list[str], dotfiles: bool = True
) -> tuple[int, os.stat_result]:
    """Open ``parts`` below ``root_fd`` without ever leaving it.

    Returns the new descriptor and its ``fstat`` (a regular file or a
    directory).  Raises ``_NotFound`` for anything that does not exist, is
    not a regular file/directory, or would lead outside, and (unless
    *dotfiles*) for any name starting with ``.``, symlink targets included.
    """
    stack: list[int] = []  # descriptors we opened, innermost last
    pending = list(reversed(parts))
    hops = 0
    try:
        while True:
            parent = stack[-1] if stack else root_fd
            if not pending:
                break
            name = pending.pop()
            if name in ("", "."):
                continue  # only reachable through a symlink target like 'a//b'
            if name == "..":
                if not stack:
                    raise _NotFound  # would climb above the served directory
                os.close(stack.pop())
                continue
            if not dotfiles and name[0] == ".":
                raise _NotFound  # hidden: '.git', '.env', or a link through one
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise _NotFound from None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                target = os.readlink(name, dir_fd=parent)
                if hops > MAX_SYMLINKS or target.startswith("/"):
                    raise _NotFound
                pending.extend(reversed(target.split("/")))
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise _NotFound
            if pending and not stat.S_ISDIR(st.st_mode):
                raise _NotFound  # 'file.txt/more'
            flags = _DIR_FLAGS | os.O_NOFOLLOW if pending else _FILE_FLAGS
            try:
                fd = os.open(name, flags, dir_fd=parent)
            except OSError as e:
                # ELOOP/ENOTDIR/ENOENT: the entry changed since stat(); refuse.
                if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise _NotFound from None
                raise
            stack.append(fd)
        fd = stack.pop() if stack else os.open(".", _DIR_FLAGS, dir_fd=root_fd)
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            os.close(fd)
            raise _NotFound
        return fd, st
    finally:
        for fd in stack:
            os.close(fd)


def _empty(status: int, reason: str, **headers: str) -> Any:
    """A response without a body that still says so with ``content-length: 0``.

    Beyond 0.19 (whose tuples had ``{}``): without a length, RFC 9112 §6.3
    makes a client read the body until the connection closes, and a 404 or
    301 keeps the connection open, so curl or a browser would hang there.
    """
    return (status, reason, {"content-length": 0, **headers}, None)


def _content_type(name: str) -> str | None:
    kind, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding)
    if kind is not None and (kind.startswith("text/") or kind in _TEXT_TYPES):
        return f"{kind}; charset=utf-8"
    return kind


def _etag(st: os.stat_result) -> str:
    """A strong validator from size and nanosecond mtime (as nginx does)."""
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def _http_date(value: object) -> int | None:
    """An HTTP-date (RFC 9110 §5.6.7) as whole seconds, or ``None``."""
    if type(value) is not str:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _matches_any(value: str, etag: str) -> bool:
    """Weak comparison of *etag* with an ``if-none-match`` list (RFC 9110 §13.1.2)."""
    if value.strip() == "*":
        return True
    tags = (t.strip() for t in value.split(","))
    return any(t.removeprefix("W/") == etag for t in tags)


def _not_modified(headers: dict[str, Any], etag: str, mtime: int) -> bool:
    """Whether a GET/HEAD is answered 304 (RFC 9110 §13.2.2 steps 3 and 4)."""
    inm = headers.get("if-none-match")
    if type(inm) is str:
        return _matches_any(inm, etag)
    since = _http_date(headers.get("if-modified-since"))
    return since is not None and mtime <= since


def _if_range_holds(value: object, etag: str, last_modified: str) -> bool:
    """RFC 9110 §13.1.5: strong match of an entity-tag, or the exact date."""
    if type(value) is not str:
        return False
    if value.startswith(('"', "W/")):
        return value == etag  # a weak tag never matches (strong comparison)
    return value == last_modified


class FilesApp:
    """RGI app serving the files below one directory (GET and HEAD only).

    *listing* shows an HTML index of a directory that has no ``index.html``;
    *dotfiles* serves and lists names starting with ``.`` (hidden otherwise).
    """

    def __init__(
        self, dir_name: str, *, listing: bool = False, dotfiles: bool = False
    ) -> None:
        if type(dir_name) is not str:
            type_error("dir_name", str, dir_name)
        for label, flag in (("listing", listing), ("dotfiles", dotfiles)):
            if type(flag) is not bool:
                type_error(label, bool, flag)
        if dir_name != os.path.abspath(dir_name):
            raise ValueError(f"dir_name: not absolute, normalized path: {dir_name!r}")
        self.dir_name = dir_name
        self.listing = listing
        self.dotfiles = dotfiles
        self.dir_fd: int = os.open(dir_name, _DIR_FLAGS)

    def close(self) -> None:
        """Close the directory descriptor (also done on garbage collection)."""
        fd, self.dir_fd = getattr(self, "dir_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        options = "".join(
            f", {name}=True" for name in ("listing", "dotfiles") if getattr(self, name)
        )
        return f"{type(self).__name__}({self.dir_name!r}{options})"

    def __call__(self, session: Any, request: Any, api: Any) -> Any:
        """Answer one request with a file, a listing, a redirect or an error."""
        if request.method not in ("GET", "HEAD"):
            return refuse_body(
                request.body, _empty(405, "Method Not Allowed", allow="GET, HEAD")
            )
        path: list[str] = list(request.path)
        if ".." in path:
            return _empty(400, "Bad Request")
        if any("/" in p or "\x00" in p for p in path) or "" in path[:-1]:
            return _empty(400, "Bad Request")  # only hand-built requests
        if not path or path[-1] == "":
            return self._directory(request, path[:-1])
        try:
            fd, st = _open_beneath(self.dir_fd, path, self.dotfiles)
        except _NotFound:
            return _empty(404, "Not Found")
        except PermissionError:
            return _empty(403, "Forbidden")
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            # A directory without its trailing slash: relative links in its
            # index.html only work from 'dir/', so redirect there.
            return _empty(301, "Moved Permanently", location=_slash_uri(request))
        return self._file_response(request, fd, st, path[-1])

    def _directory(self, request: Any, parts: list[str]) -> Any:
        """``index.html`` in the directory, else its listing, else 404."""
        try:
            fd, st = _open_beneath(self.dir_fd, [*parts, INDEX], self.dotfiles)
        except _NotFound:
            pass
        except PermissionError:
            return _empty(403, "Forbidden")
        else:
            if stat.S_ISREG(st.st_mode):
                return self._file_response(request, fd, st, INDEX)
            os.close(fd)
        if not self.listing:
            return _empty(404, "Not Found")
        try:
            fd, st = _open_beneath(self.dir_fd, parts, self.dotfiles)
        except _NotFound:
            return _empty(404, "Not Found")
        except PermissionError:
            return _empty(403, "Forbidden")
        try:
            if not stat.S_ISDIR(st.st_mode):
                return _empty(404, "Not Found")  # 'file.txt/'
            entries = self._entries(fd, parts)
        except PermissionError:
            return _empty(403, "Forbidden")
        finally:
            os.close(fd)
        mount: list[str] = list(request.mount)
        shown = [*mount, *parts]
        title = "/" + "".join(p + "/" for p in shown)
        page = render_listing(title, entries, parent=bool(shown))
        headers: dict[str, Any] = {"content-length": len(page), "content-type": _HTML}
        return (200, "OK", headers, None if request.method == "HEAD" else page)

    def _entries(self, fd: int, parts: list[str]) -> list[Entry]:
        """What the listing shows: names a request could fetch, and no other."""
        entries: list[Entry] = []
        with os.scandir(fd) as it:
            for entry in it:
                name = entry.name
                if (name[0] == "." and not self.dotfiles) or not name.isprintable():
                    continue
                try:
                    name.encode("utf-8")  # undecodable bytes (surrogateescape)
                except UnicodeEncodeError:
                    continue
                if entry.is_symlink():
                    # Listed only where it resolves inside, as a request would.
                    try:
                        tfd, st = _open_beneath(
                            self.dir_fd, [*parts, name], self.dotfiles
                        )
                    except (_NotFound, OSError):
                        continue
                    os.close(tfd)
                else:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                        continue
                is_dir = stat.S_ISDIR(st.st_mode)
                entries.append((name, is_dir, st.st_size, st.st_mtime))
        return entries

    def _file_response(
        self, request: Any, fd: int, st: os.stat_result, name: str
    ) -> Any:
        size = st.st_size
        etag = _etag(st)
        last_modified = formatdate(st.st_mtime, usegmt=True)
        headers: dict[str, Any] = {"etag": etag, "last-modified": last_modified}
        req_headers = request.headers
        if _not_modified(req_headers, etag, int(st.st_mtime)):
            os.close(fd)
            return (304, "Not Modified", headers, None)
        headers["accept-ranges"] = "bytes"
        kind = _content_type(name)
        if kind is not None:
            headers["content-type"] = kind
        # RFC 9110 §14.2: Range only means something for GET; a list of ranges
        # or an unknown unit (a str here) gets the whole file.
        rng = req_headers.get("range") if request.method == "GET" else None
        if rng is not None and (
            "if-range" in req_headers
            and not _if_range_holds(req_headers["if-range"], etag, last_modified)
        ):
            rng = None  # the client's copy is stale: send it all (RFC 9110 §13.1.5)
        parts: list[ContentRange] | None
        if isinstance(rng, _RANGE_TYPES):
            try:
                parts = [rng.content_range(size)]
            except ValueError:
                parts = []
        elif type(rng) is str:
            parts = _satisfiable(rng, size)
        else:
            parts = None
        if parts == []:
            os.close(fd)
            return _empty(
                416, "Range Not Satisfiable", **{"content-range": f"bytes */{size}"}
            )
        if parts is not None and len(parts) > 1:
            content_type, length, reader = _multipart(fd, parts, kind)
            headers["content-type"] = content_type
            headers["content-length"] = length
            return (206, "Partial Content", headers, Body(reader, length))
        if parts is None:
            status, reason, offset, length = 200, "OK", 0, size
        else:
            [content_range] = parts
            status, reason = 206, "Partial Content"
            offset, length = content_range.start, content_range.content_length
            headers["content-range"] = content_range
        headers["content-length"] = length
        if request.method == "HEAD":
            os.close(fd)
            return (status, reason, headers, None)
        return (status, reason, headers, Body(_FileReader(fd, offset, length), length))


def _slash_uri(request: Any) -> str:
    """The URI of the directory *request* names, with its trailing ``/``."""
    parts = [*request.mount, *request.path, ""]
    location = "/" + "/".join(map(encode_segment, parts))
    if request.query is not None:
        location += "?" + request.query
    return location

"""``FilesApp``: a static file server that cannot be talked out of its directory.

SPEC §10 and §14 item 11.  Serves GET and HEAD, single ``Range`` requests
(206, or 416 when the range ends past the file), ``index.html`` for a
directory URI ending in ``/``, and a ``content-type`` from :mod:`mimetypes`.
File data is streamed by a ``Body`` over the open file: nothing is read whole.

Confinement does not rely on string checks of the path.  Every component is
opened with ``O_NOFOLLOW`` relative to the file descriptor of its parent
directory, starting from the descriptor opened in the constructor.  A symlink
is resolved here, one component at a time: a relative target is followed
(its ``..`` pops back to the parent descriptor we already hold), but an
absolute target, or a ``..`` that would climb above the served directory,
ends resolution with 404.  No path string is ever handed to the kernel whole,
so there is nothing for a race (a symlink swapped in between checks) to
exploit.  The parser already refuses ``..`` components and ``%`` (so
``%2e%2e`` never arrives); a ``..`` in a hand-built request gets 400.
"""

from __future__ import annotations

import errno
import mimetypes
import os
import stat
from typing import Any

from degu._discard import refuse_body
from degu.base import Body, Range

__all__ = ("FilesApp",)

#: Most symlinks followed while resolving one request (as Linux's MAXSYMLINKS).
MAX_SYMLINKS = 40
#: Served for a URI that ends with ``/``.
INDEX = "index.html"

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


class _NotFound(Exception):
    """Resolution failed in a way the client may only learn as 404."""


class _FileReader:
    """``readinto`` over a range of an open file; closes it at the end.

    ``Body`` never closes its ``rfile``, so the reader closes the descriptor
    itself once the last byte is delivered (or when garbage-collected after
    an aborted transfer).  ``os.preadv`` keeps the offset here, not in the fd.
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

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<_FileReader fd={self._fd} remaining={self._remaining}>"


def _open_beneath(root_fd: int, parts: list[str]) -> tuple[int, os.stat_result]:
    """Open ``parts`` below ``root_fd`` without ever leaving it.

    Returns the new descriptor and its ``fstat`` (a regular file or a
    directory).  Raises ``_NotFound`` for anything that does not exist, is
    not a regular file/directory, or would lead outside.
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
    return kind


class FilesApp:
    """RGI app serving the files below one directory (GET and HEAD only)."""

    def __init__(self, dir_name: str) -> None:
        if type(dir_name) is not str:
            raise TypeError(
                f"dir_name: need a {str!r}; got a {type(dir_name)!r}: {dir_name!r}"
            )
        if dir_name != os.path.abspath(dir_name):
            raise ValueError(f"dir_name: not absolute, normalized path: {dir_name!r}")
        self.dir_name = dir_name
        self.dir_fd: int = os.open(dir_name, _DIR_FLAGS)

    def close(self) -> None:
        """Close the directory descriptor (also done on garbage collection)."""
        fd, self.dir_fd = getattr(self, "dir_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dir_name!r})"

    def __call__(self, session: Any, request: Any, api: Any) -> Any:
        """Answer one request with a file, a redirect or an error status."""
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
            path = [*path[:-1], INDEX]
        try:
            fd, st = _open_beneath(self.dir_fd, path)
        except _NotFound:
            return _empty(404, "Not Found")
        except PermissionError:
            return _empty(403, "Forbidden")
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            # A directory without its trailing slash: relative links in its
            # index.html only work from 'dir/', so redirect there.
            location = "/" + "/".join([*request.mount, *request.path, ""])
            if request.query is not None:
                location += "?" + request.query
            return _empty(301, "Moved Permanently", location=location)
        return self._file_response(request, fd, st.st_size, path[-1])

    def _file_response(self, request: Any, fd: int, size: int, name: str) -> Any:
        headers: dict[str, Any] = {}
        rng = request.headers.get("range")
        if rng is not None and type(rng) is not Range:
            os.close(fd)
            return _empty(400, "Bad Request")
        if rng is not None and rng.stop > size:
            os.close(fd)
            # SPEC §10 keeps 0.19's rule: a range ending past the file is 416.
            return _empty(416, "Range Not Satisfiable")
        if rng is None:
            status, reason, offset, length = 200, "OK", 0, size
        else:
            status, reason = 206, "Partial Content"
            offset, length = rng.start, rng.content_length(size)
            headers["content-range"] = rng.content_range(size)
        headers["content-length"] = length
        kind = _content_type(name)
        if kind is not None:
            headers["content-type"] = kind
        if request.method == "HEAD":
            os.close(fd)
            return (status, reason, headers, None)
        return (status, reason, headers, Body(_FileReader(fd, offset, length), length))

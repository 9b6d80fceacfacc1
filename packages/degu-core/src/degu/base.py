"""Objects shared by the Degu server and client.

This module only gathers the public names; each lives in a private module
with one concern (``_bodies``, ``_ranges``, ``_request``), except
``Connection``, which is defined in ``degu.client``.  ``degu.server`` and
``degu.client`` re-export the very same objects.
"""

from __future__ import annotations

from degu._bodies import Body, BodyIter, ChunkedBody, ChunkedBodyIter, api
from degu._common import TYPE_CHECKING
from degu._errors import EmptyPreambleError
from degu._ranges import ContentRange, OpenRange, Range, SuffixRange
from degu._request import Request, Session
from degu.client import Connection

if TYPE_CHECKING:
    from typing import Any, NamedTuple

    from degu import _bodies, _ranges

    # The two namedtuples as a type checker sees them, declared here so that
    # it names them degu.base.API and degu.base.Response, as repr() does.
    # At run time they are the plain namedtuples of degu._bodies (which
    # imports these declarations when type-checked).

    class API(NamedTuple):
        """The body and range classes handed to every RGI call."""

        Body: type[_bodies.Body]
        ChunkedBody: type[_bodies.ChunkedBody]
        BodyIter: type[_bodies.BodyIter]
        ChunkedBodyIter: type[_bodies.ChunkedBodyIter]
        Range: type[_ranges.Range]
        ContentRange: type[_ranges.ContentRange]
        OpenRange: type[_ranges.OpenRange]
        SuffixRange: type[_ranges.SuffixRange]

    class Response(NamedTuple):
        """An HTTP response: ``(status, reason, headers, body)``."""

        status: int
        reason: str
        headers: dict[str, Any]
        body: Body | ChunkedBody | None
else:
    from degu._bodies import API, Response

__all__ = [
    "API",
    "APIType",
    "Body",
    "BodyIter",
    "ChunkedBody",
    "ChunkedBodyIter",
    "Connection",
    "ContentRange",
    "EmptyPreambleError",
    "OpenRange",
    "Range",
    "Request",
    "Response",
    "ResponseType",
    "Session",
    "SuffixRange",
    "api",
    "bodies",
]

#: The namedtuple class of ``api`` (same object as ``API``).
APIType = API
#: Deprecated alias of ``api`` (same object).
bodies = api
#: The namedtuple class returned by ``Connection.request()`` (same as ``Response``).
ResponseType = Response

# Document the public classes under the module users import them from.
for _cls in (Body, BodyIter, ChunkedBody, ChunkedBodyIter, Connection, ContentRange,
             EmptyPreambleError, OpenRange, Range, Request, Response, Session,
             SuffixRange, API):  # fmt: skip
    _cls.__module__ = __name__
del _cls

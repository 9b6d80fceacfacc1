"""Objects shared by the Degu server and client.

This module only gathers the public names; each lives in a private module
with one concern (``_bodies``, ``_ranges``, ``_request``, ``_connection``).
``degu.server`` and ``degu.client`` re-export the very same objects.
"""

from __future__ import annotations

from degu._bodies import API, Body, BodyIter, ChunkedBody, ChunkedBodyIter, api
from degu._common import EmptyPreambleError, Response
from degu._connection import Connection
from degu._ranges import ContentRange, OpenRange, Range, SuffixRange
from degu._request import Request, Session

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

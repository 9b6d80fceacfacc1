"""The numeric limits docs/explanation/limits.rst documents, each defined once.

Every other module imports them from here: a limit changes in one place.
Values only: no imports, no code.
"""

__all__ = [
    "BODY_METHODS",
    "BUF_LEN",
    "CHUNK_DATA_PER_FRAMING_BYTE",
    "CHUNK_FRAMING_ALLOWANCE",
    "DEFAULT_MIN_RATE",
    "IO_SIZE",
    "JOIN_BODY_MAX",
    "MAX_CL_LEN",
    "MAX_HEADER_COUNT",
    "MAX_INCOMING_HEADERS",
    "MAX_IO_SIZE",
    "MAX_LENGTH",
    "MAX_LINE_LEN",
    "METHODS",
    "SCRATCH_LEN",
]

#: Max preamble size, read and write; on read it includes the CRLFCRLF.
BUF_LEN = 32768
#: Max chunk-size line, including its CRLF.
MAX_LINE_LEN = 4096
#: Max header-name length, incoming and outgoing.
SCRATCH_LEN = 32
#: Max digits in a content-length.
MAX_CL_LEN = 16
#: Max content-length / Range / ContentRange value: the largest 16-digit number.
MAX_LENGTH = 9999999999999999
#: Max headers in an outgoing preamble.
MAX_HEADER_COUNT = 20
#: Max header lines in an incoming preamble (a request gets 431 beyond it):
#: parsing costs per header, so this, not BUF_LEN alone, bounds what one
#: preamble costs (Apache's LimitRequestFields default is the same).
MAX_INCOMING_HEADERS = 100
#: Piece size used when iterating or streaming a Body.
IO_SIZE = 1048576
#: Bytes bodies up to this size go out in the same send as their preamble
#: (one syscall, and no Nagle/delayed-ACK stall between two small writes).
JOIN_BODY_MAX = 65536
#: Bytes of chunk framing (size lines and CRLFs) any chunked body may use ...
CHUNK_FRAMING_ALLOWANCE = 65536
#: ... and beyond it, one framing byte per this many bytes of chunk data.
#: So a long body keeps to chunks of 448 bytes or more, whose per-chunk
#: Python work stays within 3x the CPU of the same data in one chunk (at 16,
#: 96-byte chunks cost 4.4x: docs/explanation/limits.rst, bench_peers.py).
CHUNK_DATA_PER_FRAMING_BYTE = 64
#: Max single read, chunk size, bytes body, and ChunkedBody.read() total.
MAX_IO_SIZE = 16777216
#: Default ``min_rate`` of servers and clients: bytes per second a body must
#: average once its ``timeout`` is spent (docs/explanation/limits.rst).
DEFAULT_MIN_RATE = 16384

#: The only request methods Degu knows; others get 501 (RFC 9110 §9.1).
METHODS = frozenset(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"])
#: Only these may carry a request body (RFC 9110 §9.3; RFC 5789 §2).
BODY_METHODS = frozenset(["PUT", "POST", "PATCH"])

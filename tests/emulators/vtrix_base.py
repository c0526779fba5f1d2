"""Shared pieces of the Vtrix emulator (vtrix.py): constants, the Atlas
envelope and JSON-RPC error codes, small format helpers and the error
exceptions."""

import errno
import os
import re
import time



DEFAULT_CWD = "/root"
DEFAULT_IMAGE = "vtrix/sandbox:latest"
DEFAULT_SPEC = {"cpu": "1", "memory": "2Gi"}
DEFAULT_TTL = 12 * 3600                 # seconds; ttl_hours 0 and extend 0
MAX_EXTEND_SECONDS = 86400
READ_LIMIT = 200 * 1024                 # "read" truncates text above this
REPLAY_LIMIT = 512 * 1024               # exec_logs ring buffer per command
KEPT_COMMANDS = 1000                    # finished command records per pod
STREAM_CHUNK = 65536                    # read_stream default chunk size
STREAM_CHUNK_MAX = 4 << 20
WS_MAX_MESSAGE = 256 << 20
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
KNOWN_STATUSES = ("creating", "warming", "warm", "active", "stopped",
                  "destroying", "failed")

# Atlas envelope codes (invented; see the header) and their HTTP statuses.
E_BAD_REQUEST, E_UNAUTHORIZED, E_FORBIDDEN = 40000, 40100, 40300
E_NOT_FOUND, E_CONFLICT, E_INTERNAL = 40400, 40900, 50000
HTTP_STATUS_OF = {E_BAD_REQUEST: 200, E_UNAUTHORIZED: 401, E_FORBIDDEN: 403,
                  E_NOT_FOUND: 404, E_CONFLICT: 200, E_INTERNAL: 500}

# JSON-RPC error codes.
RPC_PARSE, RPC_INVALID, RPC_NO_METHOD = -32700, -32600, -32601
RPC_PARAMS, RPC_INTERNAL = -32602, -32603
RPC_NOT_FOUND, RPC_FAILED = -32001, -32000

# Magic bytes of the image types "read" and "read_stream" recognise.
IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))

CPU_RE = re.compile(r"^[0-9]+(\.[0-9]+)?m?$")
MEMORY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[kmgtpe])?$")


def rfc3339(t):
    """Seconds since the epoch as RFC 3339 in UTC ("2026-01-02T03:04:05Z")."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def image_mime(head):
    """MIME type of an image recognised by its first bytes, else None."""
    for magic, mime in IMAGE_MAGIC:
        if head.startswith(magic):
            return mime
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def utf8_cut(data):
    """`data` without a trailing incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        c = data[-back]
        if c & 0xC0 == 0x80:            # continuation byte: look further back
            continue
        if c >= 0xC0:
            need = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
            if need > back:
                return data[:-back]
        return data
    return data


def json_text(s):
    """A str safe to JSON-encode as UTF-8: file names with undecodable bytes
    (surrogate escapes) get U+FFFD, as Go's encoding/json does."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")



# ============================================================ errors

class AtlasError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Dropped(Exception):
    """The socket was aborted by a ws_drop fault."""


def os_rpc_error(e, path):
    """A JSON-RPC error for an OSError on `path`."""
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return RpcError(RPC_NOT_FOUND, "file not found: %s" % path)
    return RpcError(RPC_FAILED, "%s: %s" % (path, os.strerror(e.errno or errno.EIO).lower()))

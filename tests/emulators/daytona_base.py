"""Shared pieces of the Daytona emulator (daytona.py): constants, the time
formats of the NestJS API and of the Go daemon, the two error body formats
and the patterns of the toolbox routes."""

import errno
import json
import os
import re
import stat
import time
from http import HTTPStatus

from aiohttp import web

from common import go_frac, go_mode_string

STDOUT_MARK = b"\x01\x01\x01"
STDERR_MARK = b"\x02\x02\x02"
HOME = "/home/daytona"
CHUNK = 256 * 1024
DAEMON_VERSION = "v0.190.0"
DEFAULT_SNAPSHOT = "daytonaio/sandbox:0.4.3"
# States in which a lifecycle change is under way (start/stop/... get 409).
TRANSITIONAL = {"creating", "restoring", "destroying", "starting", "stopping",
                "pending_build", "building_snapshot", "pulling_snapshot",
                "archiving"}


# --------------------------------------------------------------- time formats

def iso_js(t):
    """JavaScript Date.toISOString(): what the NestJS API sends."""
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
        ".%03dZ" % (ms % 1000)


def go_rfc3339nano(ns):
    """time.Time marshalled to JSON (RFC 3339 with nanoseconds), UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) \
        + go_frac(ns) + "Z"


def go_time_string(ns):
    """time.Time.String() of a UTC time, e.g. 2026-06-01 15:16:34.1 +0000 UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 1_000_000_000)) \
        + go_frac(ns) + " +0000 UTC"


def file_info(name, st):
    """The daemon's FileInfo (fs/types.go) for one os.Stat result."""
    return {
        "name": name,
        "size": st.st_size,
        "mode": go_mode_string(st.st_mode),
        "modTime": go_time_string(st.st_mtime_ns),
        "modifiedAt": go_rfc3339nano(st.st_mtime_ns),
        "isDir": stat.S_ISDIR(st.st_mode),
        "owner": str(st.st_uid),
        "group": str(st.st_gid),
        "permissions": "%04o" % (st.st_mode & 0o777),
    }


def go_base(path):
    """filepath.Base as os.Stat(path).Name() reports it."""
    p = path.rstrip("/")
    if not p:
        return "/" if path else "."
    return p.rsplit("/", 1)[-1]


def parse_semver_core(v):
    """(major, minor, patch) of a version the way the daemon compares them,
    or None if unparsable.  Comparing against "X-0" only needs the core."""
    m = re.match(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+.]?\S*)?$", v or "")
    if not m:
        return None
    return tuple(int(x or 0) for x in m.groups())


# ------------------------------------------------------------- error bodies

def json_response(data, status=200):
    return web.Response(status=status, content_type="application/json",
                        charset="utf-8",
                        text=json.dumps(data, ensure_ascii=False))


def api_error(request, status, message):
    """Format 1: NestJS AllExceptionsFilter."""
    return json_response({
        "path": request.path_qs,
        "timestamp": iso_js(time.time()),
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
    }, status)


TOOLBOX_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
                 404: "NOT_FOUND", 408: "REQUEST_TIMEOUT", 409: "CONFLICT",
                 410: "GONE", 422: "UNPROCESSABLE_ENTITY",
                 500: "INTERNAL_SERVER_ERROR"}


def daemon_path(request):
    """The request path as the daemon sees it (proxy prefix removed)."""
    return TOOLBOX_PREFIX_RE.sub("", request.path) or "/"


def tb_error(request, status, message, code=None):
    """Format 2: common-go error middleware (message carries its prefix)."""
    body = {"statusCode": status, "message": message}
    code = code or TOOLBOX_CODES.get(status)
    if code:
        body["code"] = code
    body["timestamp"] = go_rfc3339nano(time.time_ns())
    body["path"] = daemon_path(request)
    body["method"] = request.method
    return json_response(body, status)


def tb_untyped_error(message):
    """A plain Go error reaching the daemon's default handler: 500 with a
    zero timestamp and empty path (what wrapped session errors produce)."""
    return json_response({"statusCode": 500, "message": message,
                          "timestamp": "0001-01-01T00:00:00Z", "path": ""}, 500)


def empty(status):
    """gin AbortWithError after v0.148: the status line and no body."""
    return web.Response(status=status)


def open_for_reading(host):
    """open(host, "rb") that cannot hang the event loop on a FIFO."""
    return os.fdopen(os.open(host, os.O_RDONLY | os.O_NONBLOCK), "rb")


def os_error_status(e):
    if e.errno == errno.ENOENT:
        return 404
    if e.errno in (errno.EACCES, errno.EPERM):
        return 403
    return 400



# ------------------------------------------------------------ route patterns

TOOLBOX_PREFIX_RE = re.compile(r"^(/toolbox/[^/]+|/api/toolbox/[^/]+/toolbox)")
ROUTE_KEY_PREFIX_RE = re.compile(r"^(/toolbox/\{sid\}|/api/toolbox/\{sid\}/toolbox)")
SID_RE = re.compile(r"^(?:/toolbox/([^/]+)|/api/toolbox/([^/]+)/toolbox)(/.*)?$")

#!/usr/bin/env python3
"""A test emulator of the Rexec container service: REST API + terminal WebSocket.

Usage:
    /usr/bin/python3 tests/emulators/rexec.py --root DIR --token TOKEN
        [--port 0] [--delay 0.2] [--mode old|new] [--tier pro|free|trial|enterprise]
        [--rate-limit] [--no-frontend] [--ws-ping 15] [--ws-stats 1]

It binds 127.0.0.1:PORT (0 = any free port), prints "PORT\\n" on stdout once
listening and logs one line per request on stderr (never the token, never
query strings).  SIGTERM/SIGINT stop it and kill every container process.

Options:
  --token        the one API token accepted (normally "rexec_" + 64 hex).
  --delay        seconds per lifecycle step: "creating" (image pull) and
                 "configuring" (shell setup) each last this long (role
                 "barebone" skips the setup wait, as on the server).
  --mode         new: the newer server with POST /api/containers/:id/exec;
                 old: the 2026-02-27 snapshot, where that route is a 404.
  --tier         the token owner's plan: container limit (pro 10, free/trial
                 5, enterprise 20), resources, and for free/trial the
                 expires_at / session_limit_seconds fields of a create.
  --rate-limit   enforce the real fixed-window limits (api 500/min,
                 container 120/min, websocket 100/min per client IP).
                 Without it the X-RateLimit-* headers count down but never
                 refuse; use the "ratelimit" fault for deterministic 429s.
  --no-frontend  unknown routes answer gin's text "404 page not found"
                 (a server without its web directory) instead of the
                 production JSON {"error":"not found"}.
  --ws-ping      seconds between the terminal's {"type":"ping"} frames (15).
  --ws-stats     seconds between "stats" frames (1, like Docker's stats
                 stream); 0 disables them.

What it serves follows /work/shared/protocols/rexec.md, corrected where the
server source (PipeOpsHQ/rexec e1b4019, exec.go 5c72ba5) says otherwise:

  GET  /health, /api/version                       (no auth)
  GET  /api/containers                 {"containers":[…],"count","limit"}
  POST /api/containers                 202, id = db_id = UUID, "creating"
  GET|DELETE /api/containers/:id       UUID or Docker ID
  POST /api/containers/:id/start|stop  Docker ID only (404 for the UUID)
  GET|POST|DELETE /api/containers/:id/files, GET …/files/list,
  POST …/files/mkdir                   Docker ID, ≥12-char prefix (or name,
                                       see below), status exactly "running"
  POST /api/containers/:id/exec        --mode new only
  GET  /api/images, /api/tokens/validate
  GET  /ws/terminal/:id                the terminal WebSocket

Server behaviour reproduced on purpose (a client must cope with it):
  * JSON exactly as gin writes it: maps with sorted keys, structs in field
    order, no trailing newline, HTML escaping (\\u003c \\u003e \\u0026),
    invalid UTF-8 as \\ufffd, Go number and time formats.  Terminal frames
    are one JSON object plus "\\n" per text frame.  Gzip when the client
    sends Accept-Encoding: gzip (not under /ws/), as gin-contrib/gzip does;
    then downloads have no Content-Length.
  * The identifier trap: create answers the DB UUID only; the Docker ID
    (64 hex) appears once the container is "configuring".  GET/DELETE take
    either, start/stop only the full Docker ID, files/exec the Docker ID or
    what the in-memory manager matches (exact ID, name, a ≥12-char string
    that is a prefix of the ID or starts with its first 12 chars).  The
    files handlers then pass the id AS GIVEN to Docker, so a container
    *name* passes the manager check but Docker answers "No such container"
    (Docker names are rexec-<user>-<name>): 500/404 with that text.  Exec
    and the terminal use the resolved Docker ID, so names work there.
  * files/list runs `ls -la PATH` in the container (relative paths are
    relative to /home/user) and parses the Docker-multiplexed output like
    the server: the first line is dropped when the stream starts with a
    frame header (so listing a single file gives files:null), later 8-byte
    frame headers (every 4096 bytes of ls output) land inside entries,
    runs of spaces in names collapse, symlinks are "name -> target",
    an empty or missing directory gives {"files":null,"count":0}.
  * Upload: multipart field "file", ?path= is the destination DIRECTORY
    (must exist: else 500 "failed to copy to container: …"); the file is
    replaced (new inode), mode 0644, owner root, mtime rounded to the
    second; > 100 MiB -> 400 "file too large (max 100MB)" after the whole
    body was received.  Download of a symlink gives 0 bytes with
    X-File-Mode "Lrwxrwxrwx"; relative paths count from "/".
  * Delete is `rm -rf` (missing file: 200); "/", "//x", "/bin…", "/etc…",
    … are refused with 403 before the container is even looked up.
  * Deleting a container keeps its /home/user volume: a new container with
    the same name gets the old files back (named Docker volume
    rexec-<user>-<name>).  /tmp, /run, /var/tmp, /var/log are emptied when
    a container stops (tmpfs mounts).
  * Deleting a container that is still "creating" leaves an orphan: the
    creation finishes and the Docker container runs on, unlisted.
  * Terminal: connected, container_status, shell_starting, shell_ready,
    output…; ping every 15 s; stats every second; a second
    container_status 5 s after connecting (the refresh starts from "").
    Output drops invalid UTF-8 per read (a character split between reads
    is lost) and SGR mouse reports.  When the shell exits the server
    prints "[Starting new session...]" and starts a new one (at most 10
    times, then close 1000 "session ended"); the first client message
    after such a restart is swallowed by the previous session's reader
    (an input is lost, a ping still gets its pong).  If the container
    stopped, the terminal STARTS IT AGAIN (the manager then says
    "running", the DB "stopped": a list copies the manager's status to the
    DB, the terminal's 5-second refresh the DB's to the manager, whichever
    comes first wins); if it is gone, the client gets
    container_restart_required and close 4100.  A second connection with
    the same ?id= (default "default") closes the first one (1000).  The
    shell is `/bin/sh -l` on a pty of the container's own devpts, in
    /home/user, with the server's TERM/LANG/PATH.
  * Exec (new mode): {"stdout","stderr","output","exit_code","command"
    [,"cmd"][,"truncated"]}; output = stdout, a newline only if stdout
    does not end with one, then stderr; NULs stripped; invalid UTF-8 runs
    become one U+FFFD; the 1 MiB cap counts Docker's frame headers; an
    exit code is 0 when the process has not exited by the time its output
    closed; a command that cannot start writes Docker's "OCI runtime exec
    failed: …\\r\\n" to stdout with exit code 126/127.
  * Stopping a container whose setup ("configuring") is still running
    lets the setup mark it "running" afterwards, although it is stopped.

Test control routes (no auth; not counted in the stats):
  GET  /_emu/stats          {"total": N, "routes": {"GET /api/containers/{id}": n, …}}
                            every request outside /_emu/, keyed by method and
                            route pattern ("POST (unmatched)" for 404s).
  POST /_emu/reset          zero the counters.
  POST /_emu/fault          {"kind": "status"|"empty"|"slow"|"drop"|"ratelimit"|"ws_drop",
                             "status": 500, "prefix": "/api/containers",
                             "method": "GET", "count": 1, "delay": 1.0}
                            the next `count` requests whose path starts with
                            `prefix` (and whose method is `method`, if given)
                            get {"error":"injected fault"} with `status` /
                            that status with an empty body / `delay` seconds
                            of delay before normal service / a closed
                            connection / the limiter's 429.  "ws_drop" arms
                            `count` drops of terminal WebSockets (whose path
                            starts with `prefix`): the next socket that
                            sends an input loses its TCP connection, without
                            a close frame, `delay` seconds (default 0.5)
                            later - a connection lost mid-command.
  POST /_emu/fault/clear    forget all faults.
  GET  /_emu/sandbox/{name, db id or Docker id}
                            {"id", "dir", "state", "db_id", "docker_id", "running"}:
                            id is what the API lists (Docker ID, else UUID),
                            dir the host directory that is the container's "/".
  POST /_emu/sandbox/{…}/vanish
                            remove the Docker container behind the server's
                            back (as `docker rm -f` would): the next start
                            recreates it with a NEW Docker ID (body with
                            "recreated": true), keeping /home/user.

Containers.  DIR/<db uuid>/ is the container's "/" (own /etc with passwd and
group, /tmp, /root, /home/user, placeholders for /usr, /proc, /dev, and
/bin -> usr/bin style links).  Every running container has one "keeper"
(bwrap --unshare-pid … sleep infinity) owning its pid, mount, ipc and uts
namespaces, with DIR/<db uuid> bound at "/" and the host's /usr read-only;
`ls`, `rm`, `mkdir`, exec commands and terminal shells enter them with
nsenter, so they see each other in /proc and nothing else; stopping kills
the namespace's init and with it every process.  Upload and download work
on the directory itself, resolving every path inside it (symlinks relative
to the container's root, ".." stops at the root).  Everything runs as root,
like the real containers.

Deliberate deviations from the real service:
  * One user: the configured token.  Other "rexec_…" tokens get 401
    "Invalid or expired API token", anything else "Invalid or expired
    token" (no JWT validation, no guest sessions, no /api/auth).  Scopes,
    MFA locks (mfa_locked is always false), IP allow-lists, collab/shared
    terminals, BYOS agents and VMs ("vm:" ids) do not exist.
  * Every image is the host's /usr (GNU ls, dash as /bin/sh): image keys
    are only validated; roles and shell options are accepted and ignored.
    A custom_image containing "nonexistent" fails its pull ("error").
    The terminal shell is always `/bin/sh -l` (the server's fast path), no
    tmux.  /tmp is a plain directory, shared by the file API and commands
    (in Docker it is a tmpfs the archive API may not see).
  * The file API sees /usr, /proc, /dev only as empty placeholders.
  * Rate limits are not enforced unless --rate-limit (see above).
  * JSON decoding errors ("invalid body: …", the create request's binding
    errors) use Go's wording for type errors and required fields, and an
    approximation of it for syntax errors.
  * Docker and runc error texts (No such container, Could not find the
    file, container … is not running, OCI runtime exec failed …, exit codes
    126/127) follow Docker's wording as far as known, not checked against a
    live daemon, and show container paths where Docker might show host
    paths.
  * A timed-out exec answers 504 with what was read (exec.go's intent; it
    is not certain that the Docker client really interrupts the read at
    the deadline) and its process keeps running; a truncated exec's
    process runs on too.  A terminal shell is killed when its WebSocket
    closes (Docker would leave it running).  Gorilla's exact
    permessage-deflate parameters and its acceptance of invalid UTF-8 in
    text frames are not copied (aiohttp closes such a socket with 1007).
  * The status refresh reads the emulator's state directly; the stats
    payload is synthetic.  POST /api/containers/stream, settings, shell
    setup and every other route not listed above answer 404.
  * The server's time zone is UTC; DB times have microseconds, live
    manager times nanoseconds, as with Postgres and Go.

Costs of the real service that are not modelled (so the tests run in
seconds; the benchmark's relay adds the network back):
  * Distance: every request answers at loopback speed; the real server is
    tens of milliseconds away, and each connection (the terminal
    WebSocket too) costs a TCP and TLS handshake.  Request counts, which
    the tests assert, are the same.
  * Containers: each lifecycle step (pull, create, configure, start)
    takes --delay seconds (the tests use 0.05); a real pull and create
    take seconds to minutes.  The rate limit only with --rate-limit.
  * exec: one nsenter and sh per exec, a few milliseconds; a real Docker
    exec goes through the daemon and runc, tens of milliseconds more.
    What a script itself runs (the client's wrapper: mktemp, base64, ...)
    costs the same here as there.
  * The terminal shell is `/bin/sh -l` at once; the real server may set
    up tmux and the shell first.

Needs root (as in CI): unprivileged bwrap nests a user namespace that
nsenter cannot join.  Only Debian's python3-aiohttp is needed besides bwrap
and util-linux (nsenter, setsid).

The jail, the keepers, fault injection, the stats and control routes, the
request log and the server skeleton are common.py's, which must stand next
to this file (it is imported from the script's own directory).
"""

import asyncio
import fcntl
import hashlib
import ipaddress
import json
import os
import pty
import random
import re
import secrets
import shutil
import signal
import stat
import struct
import tempfile
import termios
import time
import uuid
from decimal import Decimal

from aiohttp import WSMsgType, web

import common
from common import KEEPERS, go_frac, go_mode_string, kill_group, log

HOME = "/home/user"
CHUNK = 256 * 1024
MAX_UPLOAD = 100 * 1024 * 1024          # header.Size > 100*1024*1024 -> 400
EXEC_MAX_OUTPUT = 1 << 20               # maxExecOutputBytes
EXEC_DEFAULT_TIMEOUT = 60
EXEC_MAX_TIMEOUT = 300
FILE_OP_TIMEOUT = 30                    # the files handlers' context timeout
PTY_READ = 64 * 1024                    # ptyBufferSize
LS_STDIO_BUFFER = 4096                  # ls's stdout buffer on a pipe
WS_MAX_MESSAGE = 100 * 1024 * 1024      # conn.SetReadLimit(100 MiB)
MAX_SHELL_RESTARTS = 10
STATUS_REFRESH = 5.0

# The container's environment (manager.go CreateContainer + the image's PATH).
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The terminal's exec environment (terminal.go, direct shell without tmux).
TERMINAL_ENV = {
    "TERM": "xterm-256color", "COLORTERM": "truecolor",
    "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": HOME,
    "PATH": "/home/user/.local/bin:" + IMAGE_PATH,
}
# Directories that are tmpfs mounts in the real containers.
TMPFS_DIRS = ("tmp", "var/tmp", "run", "var/log", "var/lib/apt/lists",
              "var/cache/apt/archives")

# container.SupportedImages keys (manager.go).  The server sends them in Go
# map order, i.e. shuffled; so does the emulator.
SUPPORTED_IMAGES = [
    "ubuntu", "ubuntu-24", "ubuntu-22", "ubuntu-20", "debian", "debian-12",
    "debian-11", "kali", "parrot", "mint", "elementary", "devuan",
    "blackarch", "parrot-security", "fedora", "fedora-40", "fedora-39",
    "centos", "centos-stream", "rocky", "rocky-8", "alma", "alma-8", "oracle",
    "rhel", "openeuler", "archlinux", "manjaro", "artix", "opensuse",
    "tumbleweed", "mageia", "gentoo", "void", "nixos", "slackware", "crux",
    "guix", "alpine", "alpine-3.20", "alpine-3.18", "busybox", "tinycore",
    "openwrt", "rancheros", "amazonlinux", "amazonlinux2", "oracle-slim",
    "azurelinux", "scientific", "neurodebian", "clearlinux", "photon",
    "raspberrypi", "macos", "macos-legacy",
]
POPULAR_IMAGES = ["ubuntu", "debian", "alpine", "fedora", "archlinux", "kali"]

# Plans (models.GetUserResourceLimits, container.UserContainerLimit).
TIERS = {
    #              memory cpu   disk   containers subscription
    "free":       (2048, 2000, 10240, 5, False),
    "trial":      (2048, 2000, 10240, 5, False),
    "pro":        (4096, 4000, 20480, 10, True),
    "enterprise": (8192, 8000, 51200, 20, True),
}
SESSION_LIMIT_SECONDS = 50 * 3600        # models.AuthenticatedSessionDuration

# The delete handler's dangerousPaths.
DANGEROUS_PATHS = ("/", "/bin", "/sbin", "/usr", "/etc", "/var", "/lib", "/root")

ADJECTIVES = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly",
              "kind", "lively", "nice", "proud", "silly", "witty", "zesty"]
NOUNS = ["ape", "bat", "cod", "dove", "eel", "frog", "gull", "hare", "koala",
         "lynx", "moth", "otter", "seal", "tiger", "wolf", "yak", "zebra"]


# ====================================================== Go compatibility

class GoMap(dict):
    """A Go map (gin.H): encoding/json writes its keys sorted."""


# Characters encoding/json escapes (HTMLEscape on): controls, quote,
# backslash, <, >, &, U+2028/2029, and lone surrogates, which stand for
# invalid UTF-8 bytes (decoded with surrogateescape) and become \ufffd.
_GO_ESCAPE_RE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_GO_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\b": "\\b", "\f": "\\f"}


def _go_escape_char(m):
    ch = m.group(0)
    short = _GO_SHORT.get(ch)
    if short:
        return short
    if "\ud800" <= ch <= "\udfff":
        return "\\ufffd"
    return "\\u%04x" % ord(ch)


def go_string(s):
    return '"' + _GO_ESCAPE_RE.sub(_go_escape_char, s) + '"'


def go_float(f):
    """A float64 as encoding/json writes it: strconv's shortest form, 'f'
    format between 1e-6 and 1e21, else 'e' with "e-09" shortened to "e-9"."""
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("unsupported float")
    r = repr(f)
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", r)
    if "e" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def go_json(v):
    """encoding/json.Marshal of a value built from GoMap (maps), dict
    (structs: insertion order), list, str, bytes, bool, int, float, None."""
    out = []
    _go_encode(v, out)
    return "".join(out)


def _go_encode(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(go_float(v))
    elif isinstance(v, str):
        out.append(go_string(v))
    elif isinstance(v, bytes):
        out.append(go_string(v.decode("utf-8", "surrogateescape")))
    elif isinstance(v, dict):
        items = sorted(v.items()) if isinstance(v, GoMap) else v.items()
        out.append("{")
        first = True
        for k, val in items:
            if not first:
                out.append(",")
            first = False
            out.append(go_string(k))
            out.append(":")
            _go_encode(val, out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, val in enumerate(v):
            if i:
                out.append(",")
            _go_encode(val, out)
        out.append("]")
    else:
        raise TypeError("cannot encode %r" % (v,))


def go_time(ns, micro=False):
    """A UTC time.Time marshalled to JSON (RFC 3339 with nanoseconds).
    micro=True: as read back from Postgres (microsecond precision)."""
    if micro:
        ns = (ns + 500) // 1000 * 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) \
        + go_frac(ns) + "Z"


def go_rfc3339(t):
    """time.Format(time.RFC3339) of a UTC time (whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def go_clean(p):
    """path.Clean."""
    if p == "":
        return "."
    rooted = p.startswith("/")
    parts = []
    for comp in p.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(comp)
    s = "/".join(parts)
    if rooted:
        s = "/" + s
    return s or "."


def go_join(*elems):
    """filepath.Join."""
    elems = [e for e in elems if e != ""]
    return go_clean("/".join(elems)) if elems else ""


def go_base(p):
    """filepath.Base."""
    if p == "":
        return "."
    p = p.rstrip("/")
    if p == "":
        return "/"
    return p.rsplit("/", 1)[-1]


def go_quote(s):
    """strconv.Quote (what fmt's %q does) of a string (surrogateescape str)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xDC80 <= o <= 0xDCFF:          # an invalid byte
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                        "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif o >= 0x80 and not ch.isprintable():
            out.append("\\u%04x" % o if o < 0x10000 else "\\U%08x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# unicode.IsSpace, which strings.Fields and strings.TrimSpace use.
GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005" \
            "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_GO_FIELDS_RE = re.compile("[%s]+" % re.escape(GO_SPACES))


def go_fields(s):
    return [f for f in _GO_FIELDS_RE.split(s) if f]


def go_trim_space(s):
    return s.strip(GO_SPACES)


def blen(s):
    """len() of a Go string held as a surrogateescape str."""
    return len(s.encode("utf-8", "surrogateescape"))


# ------------------------------------------------------ Go JSON decoding

class GoNumber(str):
    """A JSON number literal, kept as text to check it like Go does."""


class GoObject(list):
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""


class GoDecodeError(Exception):
    pass


def _json_value(raw, whole):
    """Parse JSON like Go: json.Unmarshal (whole=True: trailing data is an
    error) or json.Decoder.Decode (whole=False: only the first value counts).
    Invalid UTF-8 is accepted (Go replaces it inside strings)."""
    text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise GoDecodeError("unexpected end of JSON input" if whole else "EOF")

    def bad_constant(name):
        raise ValueError("invalid constant")
    dec = json.JSONDecoder(parse_float=GoNumber, parse_int=GoNumber,
                           parse_constant=bad_constant, object_pairs_hook=GoObject)
    try:
        value, end = dec.raw_decode(stripped)
    except ValueError as e:
        pos = getattr(e, "pos", None)
        if pos is None or pos >= len(stripped):
            raise GoDecodeError("unexpected end of JSON input" if whole
                                else "unexpected EOF")
        raise GoDecodeError("invalid character %s looking for beginning of value"
                            % _go_char(stripped[pos]))
    if whole:
        rest = stripped[end:].lstrip(" \t\r\n")
        if rest:
            raise GoDecodeError("invalid character %s after top-level value"
                                % _go_char(rest[0]))
    return value


def _go_char(c):
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    return "'%s'" % c


def _fix_str(s):
    """Lone surrogates (invalid UTF-8, bad \\u escapes) -> U+FFFD, as Go does."""
    return re.sub("[\ud800-\udfff]", "\ufffd", s)


def _json_kind(v):
    """The JSON kind Go names in an UnmarshalTypeError."""
    if isinstance(v, GoObject):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, GoNumber):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null"


def go_unmarshal(raw, schema, struct, whole):
    """Decode `raw` into a struct described by `schema` the way Go does.

    schema: {json_name: type} with types "string", "int", "int64", "uint",
    "bool?" (a *bool), "[]string", or a nested (struct name, schema) tuple.
    Fields match their JSON name exactly or case-insensitively; the last
    duplicate wins.  Returns a dict of the fields set.  Raises GoDecodeError
    with Go's message: the first type error, after decoding the rest."""
    value = _json_value(raw, whole)
    errors = []
    short = struct.rsplit(".", 1)[-1]
    result = _decode_struct(value, schema, struct, short, errors, top=True)
    if errors:
        raise GoDecodeError(errors[0])
    return result


def _decode_struct(value, schema, struct, path, errors, top=False):
    if value is None:
        return {}
    if not isinstance(value, GoObject):
        if top:
            errors.append("json: cannot unmarshal %s into Go value of type %s"
                          % (_json_kind(value), struct))
        else:
            errors.append("json: cannot unmarshal %s into Go struct field %s of type %s"
                          % (_json_kind(value), path, struct))
        return {}
    out = {}
    for key, val in value:
        name = key if key in schema else next(
            (n for n in schema if n.casefold() == key.casefold()), None)
        if name is None:
            continue
        typ = schema[name]
        field = "%s.%s" % (path, name)
        if isinstance(typ, tuple):
            if val is not None:
                out[name] = _decode_struct(val, typ[1], typ[0], field, errors)
            continue
        decoded = _decode_scalar(val, typ, field, errors)
        if decoded is not _SKIP:
            out[name] = decoded
    return out


_SKIP = object()
_GO_TYPE_NAMES = {"string": "string", "int": "int", "int64": "int64",
                  "uint": "uint", "bool?": "bool", "[]string": "[]string"}


def _decode_scalar(val, typ, field, errors):
    if val is None:
        return _SKIP
    kind = _json_kind(val)

    def fail(desc=kind, gotype=_GO_TYPE_NAMES[typ]):
        errors.append("json: cannot unmarshal %s into Go struct field %s of type %s"
                      % (desc, field, gotype))
        return _SKIP
    if typ == "string":
        return _fix_str(val) if kind == "string" else fail()
    if typ == "bool?":
        return val if kind == "bool" else fail()
    if typ in ("int", "int64", "uint"):
        if kind != "number":
            return fail()
        if not re.fullmatch(r"-?[0-9]+", val):
            return fail("number " + val)
        n = int(val)
        lo, hi = (0, 2 ** 64 - 1) if typ == "uint" else (-2 ** 63, 2 ** 63 - 1)
        if not lo <= n <= hi:
            return fail("number " + val)
        return n
    if typ == "[]string":
        if kind != "array":
            return fail()
        items = []
        for x in val:
            if _json_kind(x) == "string":
                items.append(_fix_str(x))
            else:
                if x is not None:
                    fail(_json_kind(x), "string")
                items.append("")
        return items
    raise AssertionError(typ)


CREATE_SCHEMA = {
    "name": "string", "image": "string", "custom_image": "string",
    "role": "string",
    "shell": ("models.ShellConfig", {
        "enhanced": "bool?", "theme": "string", "autosuggestions": "bool?",
        "syntax_highlight": "bool?", "history_search": "bool?",
        "git_aliases": "bool?", "system_stats": "bool?", "use_tmux": "bool?"}),
    "memory_mb": "int64", "cpu_shares": "int64", "disk_mb": "int64",
}
EXEC_SCHEMA = {
    "command": "string", "cmd": "[]string", "workdir": "string",
    "env": "[]string", "user": "string", "timeout_seconds": "int",
}
TERMINAL_SCHEMA = {"type": "string", "data": "string", "cols": "uint", "rows": "uint"}


def decode_terminal_message(raw):
    """The TerminalMessage json.Unmarshal fills in, or None when Unmarshal
    returns an error (the server then writes the frame to the shell raw)."""
    try:
        msg = go_unmarshal(raw, TERMINAL_SCHEMA, "handlers.TerminalMessage", True)
    except GoDecodeError:
        return None
    return msg


# ------------------------------------------------- output sanitising

_MOUSE_RE = re.compile(r"\x1b\[<[0-9;]*[Mm]")


def terminal_text(data):
    """sanitizeUTF8 (drop invalid bytes) + filterMouseTracking of one read."""
    return _MOUSE_RE.sub("", data.decode("utf-8", "ignore"))


def exec_text(data):
    """sanitizeExecText: strip NULs, each run of invalid bytes -> U+FFFD."""
    s = data.replace(b"\0", b"").decode("utf-8", "surrogateescape")
    return re.sub("[\udc80-\udcff]+", "\ufffd", s)


# ------------------------------------------- Docker multiplexed streams

def mux_frame(stream, data):
    return bytes((stream, 0, 0, 0)) + struct.pack(">I", len(data)) + data


def demux_docker_stream(raw):
    """exec.go demuxDockerStream."""
    if not raw:
        return "", "", ""
    if len(raw) >= 8 and raw[0] in (1, 2) and raw[1:4] == b"\0\0\0":
        out, err = bytearray(), bytearray()
        while len(raw) >= 8:
            kind = raw[0]
            size = struct.unpack(">I", raw[4:8])[0]
            raw = raw[8:]
            if size > len(raw):
                out += raw
                break
            chunk, raw = raw[:size], raw[size:]
            (err if kind == 2 else out).extend(chunk)
        o, e = exec_text(bytes(out)), exec_text(bytes(err))
        combined = o
        if e:
            if combined and not combined.endswith("\n"):
                combined += "\n"
            combined += e
        return o, e, combined
    text = exec_text(raw)
    return text, "", text


# --------------------------------------------------- ls output parsing

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
           "oct", "nov", "dec"]
ZERO_TIME = "0001-01-01T00:00:00Z"


def _getnum(s, fixed):
    if not s[:1].isdigit() or not s[:1].isascii():
        return None, s
    if not (len(s) > 1 and s[1].isascii() and s[1].isdigit()):
        if fixed:
            return None, s
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def _is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in(month, year):
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_ls_time(text, now_year):
    """The server's time.Parse attempts ("Jan 2 15:04", then "Jan 2 2006";
    the "_2" layouts accept nothing more here) plus its year fix-up."""
    for with_year in (False, True):
        v = text
        if len(v) < 3 or v[:3].lower() not in _MONTHS:
            continue
        month = _MONTHS.index(v[:3].lower()) + 1
        v = v[3:]
        if not v.startswith(" "):
            continue
        v = v.lstrip(" ")
        day, v = _getnum(v, False)
        if day is None or not v.startswith(" "):
            continue
        v = v.lstrip(" ")
        if with_year:
            if len(v) < 4:
                continue
            p, v = v[:4], v[4:]
            sign = -1 if p[0] == "-" else 1
            digits = p[1:] if p[0] in "+-" else p
            if not digits or not digits.isascii() or not digits.isdigit():
                continue
            year, hour, minute = sign * int(digits), 0, 0
        else:
            hour, v = _getnum(v, False)
            if hour is None or hour >= 24 or not v.startswith(":"):
                continue
            minute, v = _getnum(v[1:], True)
            if minute is None or minute >= 60:
                continue
            year = 0
        if v:
            continue
        if day < 1 or day > _days_in(month, year):
            continue
        if year == 0:                    # "If no year, use current year"
            year = now_year
            if month == 2 and day == 29 and not _is_leap(year):
                month, day = 3, 1        # AddDate normalises Feb 29
        if not 0 <= year <= 9999:
            return ZERO_TIME
        return "%04d-%02d-%02dT%02d:%02d:00Z" % (year, month, day, hour, minute)
    return ZERO_TIME


def _sscanf_int(s):
    m = re.match(r"[+-]?[0-9]+", s)
    if not m:
        return 0
    n = int(m.group(0))
    return n if -2 ** 63 <= n < 2 ** 63 else 0


def parse_list_output(output, base):
    """files.go parseListOutput on the raw attach stream (bytes)."""
    files = []
    clean = output
    if len(output) > 8 and output[0] in (1, 2):
        # "Docker multiplexed stream - find first newline and start from there"
        nl = output.find(b"\n", 0, 100)
        if nl >= 0:
            clean = output[nl + 1:]
    now_year = time.gmtime().tm_year
    for raw_line in clean.split(b"\n"):
        line = go_trim_space(raw_line.decode("utf-8", "surrogateescape"))
        if line == "" or line.startswith("total"):
            continue
        if blen(line) < 10:
            continue
        fields = go_fields(line)
        if len(fields) < 8:
            continue
        mode = fields[0]
        if blen(mode) < 10:
            continue
        if mode[0] not in "dlcbsp-":
            continue
        name = " ".join(fields[8:])
        if name == "":
            name = fields[-1]
        if name in (".", ".."):
            continue
        files.append({
            "name": name,
            "path": go_join(base, name),
            "size": _sscanf_int(fields[4]),
            "mode": mode,
            "mod_time": parse_ls_time("%s %s %s" % (fields[5], fields[6], fields[7]),
                                      now_year),
            "is_dir": mode[0] == "d",
        })
    return files or None


# ======================================================== HTTP helpers

def json_response(data, status=200, headers=None):
    """gin's c.JSON."""
    return web.Response(status=status, body=go_json(data).encode(),
                        content_type="application/json", charset="utf-8",
                        headers=headers)


def error(http_status, message, /, **extra):
    """c.JSON(status, gin.H{"error": message, ...})."""
    body = GoMap(error=message)
    body.update(extra)
    return json_response(body, http_status)


class DockerError(Exception):
    """An error returned by the Docker client (message as the client shows it)."""

    def __init__(self, status, message):
        super().__init__("Error response from daemon: " + message)
        self.status = status


def preserve_trailing(cleaned, original):
    """archive.PreserveTrailingDotOrSeparator."""
    if go_base(cleaned) != "." and go_base(original) == ".":
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and original.endswith("/"):
        cleaned += "/"
    return cleaned


# ==================================================== path resolution

class Jail(common.Jail):
    """Resolves container paths to host paths without leaving the root, the
    way Docker's FollowSymlinkInScope does: symlinks are followed relative
    to the container's "/", ".." never climbs above it.  Paths are absolute
    (already cleaned)."""


# ============================================================ runtime

class HostLayout(common.HostLayout):
    def populate(self, root, hostname):
        """The skeleton of a fresh container root (an ubuntu-like image after
        the entrypoint ran: /home/user is mode 0777)."""
        self.make_skeleton(root, (
            ("tmp", 0o1777), ("var/tmp", 0o1777), ("var/log", 0o755),
            ("var/lib/apt/lists", 0o755), ("var/cache/apt/archives", 0o755),
            ("run", 0o755), ("home/user", 0o777), ("etc", 0o755), ("root", 0o700),
            ("proc", 0o555), ("dev", 0o755), ("sys", 0o555), ("usr", 0o755),
            ("opt", 0o755), ("mnt", 0o755), ("srv", 0o755), ("media", 0o755),
        ), {
            "passwd": "root:x:0:0:root:/root:/bin/bash\n"
                      "ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": "root:x:0:\nubuntu:x:1000:\nnogroup:x:65534:\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
            "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
            "hostname": hostname + "\n",
        }, reuse=True)
        if not os.path.lexists(os.path.join(root, "var/run")):
            os.symlink("/run", os.path.join(root, "var/run"))


# Runs inside the container for every Docker-style exec: $1 is the working
# directory, the rest the argv.  It reproduces what Docker does when an exec
# cannot start: the daemon writes the OCI error to the exec's STDOUT, with
# "\r\n", and the exit code is 126 (cannot start) or 127 (not found).
EXEC_WRAPPER = r'''
wd=$1; shift
if ! cd -- "$wd" 2>/dev/null; then
  printf 'OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("%s") set in config.json failed: no such file or directory: unknown\r\n' "$wd"
  exit 126
fi
case $1 in
*/*)
  if [ ! -e "$1" ]; then
    printf 'OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": stat %s: no such file or directory: unknown\r\n' "$1" "$1"
    exit 127
  fi ;;
*)
  found=
  IFS=:
  for d in $PATH; do
    if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then found=1; break; fi
  done
  unset IFS
  if [ -z "$found" ]; then
    printf 'OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": executable file not found in $PATH: unknown\r\n' "$1"
    exit 127
  fi ;;
esac
exec "$@"
'''


class Runtime(common.Keeper):
    """The namespaces of one running container and the processes inside."""

    def __init__(self, root, hostname, layout):
        super().__init__(layout)
        self.root = root
        self.hostname = hostname
        self.procs = set()

    async def start(self):
        await self.start_keeper(self.root, self.hostname)

    async def spawn(self, argv, env, workdir, uid=None, gid=None, stdin=None,
                    stdout=None, stderr=None):
        """Start argv in the container as Docker exec would.  The host-side
        nsenter process leads its own session, so killing its process group
        kills the command."""
        cmd = self.nsenter_argv()
        if uid is not None:
            cmd += ["-S", str(uid), "-G", str(gid)]
        cmd += ["--", "/bin/sh", "-c", EXEC_WRAPPER, "rexec-exec", workdir] + list(argv)
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
            start_new_session=True)
        self.procs.add(proc)
        return proc

    def forget(self, proc):
        self.procs.discard(proc)

    async def stop(self):
        """Kill everything: the pid namespace dies with its init.  The state
        is cleared before the first await, so nobody sees a half-dead
        container as running."""
        keeper, init_pid = self.keeper, self.init_pid
        self.keeper = None
        self.init_pid = None
        # Killing the init kills every process of the namespace; each nsenter
        # then reaps its child and exits (see kill_in_container).
        self.procs.clear()
        if init_pid:
            try:
                os.kill(init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if keeper is not None:
            KEEPERS.discard(keeper.pid)
            # The outer bwrap reaps the namespace's init and exits by itself;
            # killing it first would leave the init a zombie of PID 1.
            try:
                await asyncio.wait_for(keeper.wait(), 2)
            except asyncio.TimeoutError:
                kill_group(keeper.pid, signal.SIGKILL)
                try:
                    await asyncio.wait_for(keeper.wait(), 5)
                except asyncio.TimeoutError:
                    pass


def kill_in_container(proc, sig=signal.SIGKILL):
    """Kill what an nsenter process runs in the container (its direct child)
    and let nsenter reap it and exit.  Killing nsenter first would orphan the
    child to the host's PID 1: a zombie that holds up the pid namespace's
    teardown until PID 1 reaps it."""
    try:
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            children = [int(x) for x in f.read().split()]
    except OSError:
        children = []
    for child in children:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass
    if not children and proc.returncode is None:
        kill_group(proc.pid, sig)      # nothing forked yet


def exit_code(rc):
    """nsenter re-raises a child's fatal signal; Docker reports 128+N."""
    return rc if rc >= 0 else 128 - rc


# ========================================================== container

class Container:
    """One container: its DB record, its Docker container (if any) and its
    entry in the server's in-memory manager (if any)."""

    def __init__(self, emu, name, image, image_type, role, resources):
        now = time.time_ns()
        self.emu = emu
        self.db_id = str(uuid.uuid4())
        self.name = name
        self.image = image                  # "ubuntu" or "custom:<ref>"
        self.image_type = image_type        # manager's ImageType
        self.role = role
        self.status = "creating"            # the DB status
        self.created_ns = now
        self.last_used_ns = now
        self.resources = resources
        self.deleted = False
        self.docker_id = ""
        self.docker_exists = False
        self.in_manager = False
        self.m_status = ""                  # the manager's status
        self.m_created_ns = 0
        self.m_last_used_ns = 0
        self.ip = ""
        self.dir = os.path.join(emu.root, self.db_id)
        self.jail = Jail(self.dir)
        self.hostname = name[:12]
        self.runtime = Runtime(self.dir, self.hostname, emu.layout)
        self.task = None
        # Docker serialises lifecycle operations on one container.
        self.lock = asyncio.Lock()

    @property
    def docker_name(self):
        return "rexec-%s-%s" % (self.emu.user_id, self.name)

    @property
    def running(self):
        """Docker's State.Running."""
        return self.docker_exists and self.runtime.running

    def touch(self):
        if self.in_manager:
            self.m_last_used_ns = time.time_ns()

    def container_env(self):
        """The container's Config.Env (manager.go) + the image's PATH."""
        mem = self.resources["memory_mb"]
        disk = self.resources["disk_mb"]
        return {
            "PATH": IMAGE_PATH, "HOME": HOME, "TERM": "xterm-256color",
            "SHELL": "/bin/bash",       # ImageShells["ubuntu"]; not per image
            "USER_ID": self.emu.user_id,
            "CONTAINER_NAME": self.name, "HOSTNAME": self.hostname,
            "REXEC_DISK_QUOTA": format_bytes(disk * 1024 * 1024),
            "REXEC_MEMORY_LIMIT": format_bytes(mem * 1024 * 1024),
            "REXEC_CPU_LIMIT": "%.1f" % (self.resources["cpu_shares"] / 1000.0),
        }

    def state(self):
        if self.deleted:
            return "deleted" if not self.docker_exists else "orphan"
        return self.status


def format_bytes(n):
    """manager.go formatBytes."""
    if n == 0:
        return "2G"
    if n >= 1 << 30:
        return "%dG" % (n >> 30)
    return "%dM" % (n >> 20)


# ======================================================= rate limiting

class RateLimiter:
    """middleware.RateLimiter: a fixed window per client IP."""

    def __init__(self, rate, window=60.0):
        self.rate = rate
        self.window = window
        self.visitors = {}      # ip -> [tokens, window start]

    def allow(self, ip):
        now = time.monotonic()
        v = self.visitors.get(ip)
        if v is None:
            self.visitors[ip] = [self.rate - 1, now]
            return True
        if now - v[1] >= self.window:
            v[0], v[1] = self.rate - 1, now
            return True
        if v[0] > 0:
            v[0] -= 1
            return True
        return False

    def remaining(self, ip):
        v = self.visitors.get(ip)
        return v[0] if v else self.rate

    def refusal(self):
        """The 429 the middleware writes."""
        resp = json_response(GoMap({"error": "rate limit exceeded",
                                    "retry_after": float(self.window)}), 429)
        resp.headers["X-RateLimit-Limit"] = str(self.rate)
        resp.headers["X-RateLimit-Remaining"] = "0"
        resp.headers["Retry-After"] = "1m0s"        # time.Duration.String()
        return resp


# ============================================================ emulator

class Emulator(common.Service):
    def __init__(self, args):
        super().__init__(args.root)
        self.work = tempfile.mkdtemp(prefix=".emu-", dir=self.root)
        self.volumes = os.path.join(self.root, ".volumes")
        os.makedirs(self.volumes, exist_ok=True)
        self.token = args.token
        self.delay = args.delay
        self.mode = args.mode
        self.tier = args.tier
        self.enforce_limits = args.rate_limit
        self.frontend = not args.no_frontend
        self.ws_ping = args.ws_ping
        self.ws_stats = args.ws_stats
        self.layout = HostLayout()
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        self.user_id = str(uuid.UUID(digest[:32]))
        self.username = "user-" + digest[:8]
        self.containers = []        # every Container ever created, oldest first
        self.ip_seq = 1
        self.terminals = {}         # session key -> TerminalSession
        self.limiters = {"api": RateLimiter(500), "container": RateLimiter(120),
                         "websocket": RateLimiter(100)}
        self.port = None

    # ----------------------------------------------------------- plans

    @property
    def plan(self):
        return TIERS[self.tier]

    @property
    def container_limit(self):
        return self.plan[3]

    # --------------------------------------------------------- lookups

    def records(self):
        """store.GetContainersByUserID: live (not soft-deleted) records."""
        return [c for c in self.containers if not c.deleted]

    def db_find(self, ident):
        """A record whose Docker ID or DB ID is `ident` (Get, Delete)."""
        for c in self.records():
            if (c.docker_id and c.docker_id == ident) or c.db_id == ident:
                return c
        return None

    def db_find_docker(self, docker_id):
        """A record whose Docker ID is exactly `docker_id` (Start, Stop)."""
        for c in self.records():
            if c.docker_id and c.docker_id == docker_id:
                return c
        return None

    def manager(self):
        return [c for c in self.containers if c.in_manager]

    def mgr_get(self, ident):
        """manager.GetContainer: exact Docker ID, then name, then a string of
        at least 12 chars that prefixes the ID or starts with its first 12."""
        mgr = self.manager()
        for c in mgr:
            if c.docker_id == ident:
                return c
        for c in mgr:
            if c.name == ident:
                return c
        if len(ident) >= 12:
            for c in mgr:
                if c.docker_id.startswith(ident) or ident.startswith(c.docker_id[:12]):
                    return c
        return None

    def docker_get(self, ref):
        """The Docker daemon's container lookup: full ID, name, unique ID
        prefix.  Raises DockerError like the Docker client reports it."""
        live = [c for c in self.containers if c.docker_exists]
        if ref:
            for c in live:
                if c.docker_id == ref:
                    return c
            name = ref[1:] if ref.startswith("/") else ref
            for c in live:
                if c.docker_name == name:
                    return c
            hits = [c for c in live if c.docker_id.startswith(ref)]
            if len(hits) > 1:
                raise DockerError(404, "multiple IDs found with provided prefix: " + ref)
            if hits:
                return hits[0]
        raise DockerError(404, "No such container: " + ref)

    def find_any(self, key):
        """For the control routes: name, DB ID, Docker ID (or prefix)."""
        for pool in (self.records(), self.containers):
            for c in pool:
                if key in (c.name, c.db_id) or (c.docker_id and c.docker_id == key):
                    return c
            for c in pool:
                if c.docker_id and len(key) >= 4 and c.docker_id.startswith(key):
                    return c
        return None

    # ------------------------------------------------- Docker-side work

    async def docker_create(self, c):
        """manager.CreateContainer: remove a stale container of the same
        Docker name, make the root (reusing the named volume), start it."""
        for other in list(self.containers):
            if other is not c and other.docker_exists and other.docker_name == c.docker_name:
                await self.docker_remove(other)
                other.in_manager = False
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._make_root, c)
        await c.runtime.start()
        c.docker_id = secrets.token_hex(32)
        c.docker_exists = True
        c.ip = "172.18.0.%d" % (self.ip_seq % 250 + 2)
        self.ip_seq += 1

    def _make_root(self, c):
        shutil.rmtree(c.dir, ignore_errors=True)
        os.makedirs(c.dir)
        self.layout.populate(c.dir, c.hostname)
        volume = os.path.join(self.volumes, c.docker_name)
        home = os.path.join(c.dir, "home", "user")
        if os.path.isdir(volume):
            shutil.rmtree(home)
            os.rename(volume, home)

    async def docker_stop(self, c):
        """ContainerStop: every process dies, tmpfs mounts are emptied."""
        await c.runtime.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._wipe_tmpfs, c)

    def _wipe_tmpfs(self, c):
        for d in TMPFS_DIRS:
            p = os.path.join(c.dir, d)
            if not os.path.isdir(p) or os.path.islink(p):
                continue
            for name in os.listdir(p):
                q = os.path.join(p, name)
                if os.path.isdir(q) and not os.path.islink(q):
                    shutil.rmtree(q, ignore_errors=True)
                else:
                    try:
                        os.unlink(q)
                    except OSError:
                        pass

    async def docker_start(self, c):
        if not c.runtime.running:
            await c.runtime.start()

    async def docker_remove(self, c):
        """ContainerRemove(force): the container and its root go, the named
        volume (/home/user) stays."""
        await c.runtime.stop()
        c.docker_exists = False
        await asyncio.get_running_loop().run_in_executor(None, self._drop_root, c)

    def _drop_root(self, c):
        home = os.path.join(c.dir, "home", "user")
        volume = os.path.join(self.volumes, c.docker_name)
        if os.path.isdir(home) and not os.path.islink(home):
            shutil.rmtree(volume, ignore_errors=True)
            os.rename(home, volume)
        shutil.rmtree(c.dir, ignore_errors=True)

    async def docker_exec(self, c, argv, env=None, workdir=HOME, user="",
                          stdin=None, stdout=None, stderr=None):
        """Create + start a Docker exec in container `c`."""
        if not c.running:
            raise DockerError(409, "container %s is not running" % c.docker_id)
        full_env = c.container_env()
        for item in env or ():
            k, sep, v = item.partition("=")
            if sep:
                full_env[k] = v
        uid = gid = None
        if user:
            uid, gid = self._lookup_user(c, user)
        return await c.runtime.spawn(argv, full_env, workdir or HOME, uid, gid,
                                     stdin=stdin, stdout=stdout, stderr=stderr)

    def _lookup_user(self, c, user):
        name, _, group = user.partition(":")
        uid = gid = None
        if name.isdigit():
            uid = int(name)
        for line in _read_db(c, "/etc/passwd"):
            if line[0] == name or (uid is not None and line[2:3] == [str(uid)]):
                uid, gid = int(line[2]), int(line[3])
                break
        if uid is None:
            raise _ExecStartError("unable to find user %s: no matching entries "
                                  "in passwd file" % name)
        if group:
            if group.isdigit():
                gid = int(group)
            else:
                for line in _read_db(c, "/etc/group"):
                    if line[0] == group:
                        gid = int(line[2])
                        break
                else:
                    raise _ExecStartError("unable to find group %s: no matching "
                                          "entries in group file" % group)
        return uid, gid if gid is not None else 0

    async def manager_start(self, c, docker_id):
        """manager.StartContainer (caller holds c.lock): the error text, or
        None once the container runs and the manager says "running"."""
        if not (c.in_manager and c.docker_id == docker_id):
            return "container not found: " + docker_id
        if not c.docker_exists:
            return ("failed to start container: Error response from daemon: "
                    "No such container: " + docker_id)
        try:
            await self.docker_start(c)
        except Exception as e:  # noqa: BLE001
            return "failed to start container: %s" % e
        c.m_status = "running"
        c.m_last_used_ns = time.time_ns()
        return None

    def containers_by_docker_id(self, docker_id):
        """The Docker container with exactly this ID (inspect), or None."""
        for c in self.containers:
            if c.docker_exists and c.docker_id == docker_id:
                return c
        return None

    def decorate(self, request, resp):
        """Headers set by middlewares before the handler wrote its response:
        the rate-limit counters and gin-contrib/gzip."""
        for k, v in request.get("rl_headers", {}).items():
            resp.headers[k] = v
        if "gzip" in request.headers.get("Accept-Encoding", "") \
                and not request.path.startswith("/ws/") \
                and "Upgrade" not in request.headers.get("Connection", "") \
                and "text/event-stream" not in request.headers.get("Accept", ""):
            resp.headers["Vary"] = "Accept-Encoding"
            resp.enable_compression(web.ContentCoding.gzip)

    # -------------------------------------------------------- lifecycle

    def launch(self, c, coro):
        c.task = asyncio.create_task(coro)

    async def create_flow(self, c, custom_ref):
        """createContainerAsync: pull, create (-> "configuring", Docker ID),
        setup (-> "running")."""
        await asyncio.sleep(self.delay)                     # pulling
        if custom_ref and "nonexistent" in custom_ref:
            c.status = "error"
            return
        try:
            async with c.lock:
                await self.docker_create(c)
        except Exception as e:  # noqa: BLE001 - any failure is an "error"
            log("container %s failed to start: %s" % (c.db_id, e))
            c.status = "error"
            return
        now = time.time_ns()
        c.in_manager = True
        c.m_status = "configuring"
        c.m_created_ns = c.m_last_used_ns = now
        if not c.deleted:
            c.status = "configuring"
        if c.role != "barebone":
            await asyncio.sleep(self.delay)                 # shell/role setup
        # The setup goroutine marks the container running whatever happened
        # to it meanwhile (even if it was stopped).
        if c.in_manager:
            c.m_status = "running"
        if not c.deleted:
            c.status = "running"

    async def shutdown(self):
        for sess in list(self.terminals.values()):
            await sess.abort()
        for c in self.containers:
            if c.task:
                c.task.cancel()
            await c.runtime.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def client_ip(self, request):
        """gin's ClientIP with its defaults (every proxy trusted)."""
        xff = request.headers.get("X-Forwarded-For", "")
        if xff:
            items = [i.strip() for i in xff.split(",")]
            if items and all(_is_ip(i) for i in items):
                return items[0]
        real = request.headers.get("X-Real-IP", "").strip()
        if real and _is_ip(real):
            return real
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return peer[0] if peer else "127.0.0.1"

    def check_token(self, request, websocket):
        """AuthMiddleware.  Returns None (authorised) or the 401 response."""
        token = ""
        parts = request.headers.get("Authorization", "").split()
        if len(parts) >= 2 and parts[0].lower() == "bearer":
            token = parts[1]
        if not token and websocket:
            for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
                proto = proto.strip()
                if proto.startswith("rexec.token.") and proto[len("rexec.token."):]:
                    token = proto[len("rexec.token."):]
                    break
            if not token:
                token = request.query.get("token", "")
        if not token:
            return error(401, "Authorization token required")
        if token == self.token:
            return None
        if token.startswith("rexec_"):
            return error(401, "Invalid or expired API token")
        return error(401, "Invalid or expired token")


class _ExecStartError(Exception):
    """An exec that Docker creates but cannot start (OCI error on stdout)."""


def _read_db(c, path):
    try:
        with open(c.jail.host(path), encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.count(":") >= 3]
    except OSError:
        return []


def _is_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def is_websocket_upgrade(request):
    """websocket.IsWebSocketUpgrade."""
    def has(name, token):
        return any(t.strip().lower() == token
                   for t in request.headers.get(name, "").split(","))
    return has("Connection", "upgrade") and has("Upgrade", "websocket")


# ================================================= container handlers

def valid_container_name(name):
    """container.go isValidContainerName."""
    if not 0 < blen(name) <= 64:
        return False
    for i, ch in enumerate(name):
        if not (ch.isascii() and (ch.isalnum() or ch in "-_")):
            return False
        if i == 0 and ch in "-_":
            return False
    return True


def valid_docker_image(image):
    """container.go isValidDockerImage (the tag is not checked)."""
    if not 0 < blen(image) <= 256:
        return False
    parts = image.split(":")
    if len(parts) > 2 or not parts[0]:
        return False
    return all(ch.isascii() and (ch.isalnum() or ch in "-_./") for ch in parts[0])


def resources(c):
    return GoMap(memory_mb=c.resources["memory_mb"],
                 cpu_shares=c.resources["cpu_shares"],
                 disk_mb=c.resources["disk_mb"])


class ContainerApi:
    def __init__(self, emu):
        self.emu = emu

    async def list(self, request):
        emu = self.emu
        now = time.time_ns()
        items = []
        for c in emu.records():
            status = c.status
            idle = 0.0
            m = emu.mgr_get(c.docker_id) if c.docker_id else None
            if m is not None:
                status = m.m_status
                idle = (now - m.m_last_used_ns) / 1e9
                if status != c.status:
                    c.status = status          # "Update DB if status changed"
            elif status == "running":
                idle = (now - c.last_used_ns) / 1e9
            items.append((c.created_ns, GoMap(
                id=c.docker_id or c.db_id, db_id=c.db_id, user_id=emu.user_id,
                name=c.name, image=c.image, role=c.role, status=status,
                created_at=go_time(c.created_ns, micro=True),
                last_used_at=go_time(c.last_used_ns, micro=True),
                idle_seconds=idle, mfa_locked=False, resources=resources(c))))
        items.sort(key=lambda t: t[0], reverse=True)
        return json_response(GoMap(containers=[i for _, i in items],
                                   count=len(items), limit=emu.container_limit))

    async def create(self, request):
        emu = self.emu
        try:
            req = go_unmarshal(await request.read(), CREATE_SCHEMA,
                               "models.CreateContainerRequest", whole=False)
        except GoDecodeError as e:
            return error(400, str(e))
        image = req.get("image", "")
        if image == "":
            return error(400, "Key: 'CreateContainerRequest.Image' Error:Field "
                              "validation for 'Image' failed on the 'required' tag")
        custom = req.get("custom_image", "")
        if image == "custom":
            if custom == "":
                return error(400, "custom_image is required when image is 'custom'")
            if not valid_docker_image(custom):
                return error(400, "invalid custom_image format")
        elif image not in SUPPORTED_IMAGES:
            names = list(SUPPORTED_IMAGES)
            random.shuffle(names)                # Go map iteration order
            return error(400, "unsupported image type", supported_images=names)
        name = go_trim_space(req.get("name", ""))
        if name == "":
            name = "%s-%s-%d" % (random.choice(ADJECTIVES), random.choice(NOUNS),
                                 random.randrange(1000))
        if not valid_container_name(name):
            return error(400, "invalid container name: must be 1-64 characters, "
                              "alphanumeric and hyphens only")
        existing = emu.records()
        if len(existing) >= emu.container_limit:
            return json_response(GoMap(
                error="container limit reached", current=len(existing),
                limit=emu.container_limit, tier=emu.tier,
                message="Upgrade your plan to create more containers"), 403)
        if any(c.name == name for c in existing):
            return error(409, "container with this name already exists", name=name)

        mem, cpu, disk, _, subscribed = emu.plan
        if emu.tier in ("free", "trial"):
            # ValidateTrialResources clamps requests to 256-4096 MB, 250-4000
            # millicores, 1024-16384 MB; non-subscribers are then capped at
            # their plan.
            def clamp(v, lo, hi, cap):
                return min(max(v, lo), hi, cap) if v > 0 else cap
            mem = clamp(req.get("memory_mb", 0), 256, 4096, mem)
            cpu = clamp(req.get("cpu_shares", 0), 250, 4000, cpu)
            disk = clamp(req.get("disk_mb", 0), 1024, 16384, disk)
        image_name = "custom:" + custom if image == "custom" else image
        c = Container(emu, name, image_name, image_name, req.get("role", ""),
                      {"memory_mb": mem, "cpu_shares": cpu, "disk_mb": disk})
        emu.containers.append(c)
        emu.launch(c, emu.create_flow(c, custom if image == "custom" else ""))
        body = GoMap(
            id=c.db_id, db_id=c.db_id, user_id=emu.user_id, name=name,
            image=image_name, role=c.role, status="creating",
            created_at=go_time(c.created_ns), **{"async": True},
            message="Container is being created. This may take a moment if "
                    "the image needs to be pulled.",
            resources=resources(c))
        if emu.tier in ("free", "trial") and not subscribed:
            body["expires_at"] = go_rfc3339(time.time() + SESSION_LIMIT_SECONDS)
            body["session_limit_seconds"] = SESSION_LIMIT_SECONDS
        return json_response(body, 202)

    async def get(self, request):
        emu = self.emu
        found = emu.db_find(request.match_info["id"])
        if found is None:
            return error(404, "container not found")
        body = GoMap(id=found.docker_id or found.db_id, db_id=found.db_id,
                     user_id=emu.user_id, name=found.name, image=found.image,
                     status=found.status,
                     created_at=go_time(found.created_ns, micro=True),
                     last_used_at=go_time(found.last_used_ns, micro=True),
                     mfa_locked=False, resources=resources(found))
        if found.docker_id:
            m = emu.mgr_get(found.docker_id)
            if m is not None:                   # live info from the manager
                body.update(id=m.docker_id, status=m.m_status,
                            created_at=go_time(m.m_created_ns),
                            last_used_at=go_time(m.m_last_used_ns),
                            ip_address=m.ip,
                            idle_seconds=(time.time_ns() - m.m_last_used_ns) / 1e9)
        return json_response(body)

    async def delete(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        if ident.startswith("agent:"):
            return error(404, "agent not found")
        found = emu.db_find(ident)
        if found is None:
            return error(404, "container not found")
        if found.docker_id:
            async with found.lock:
                # StopContainer + RemoveContainer (errors are only logged).
                found.in_manager = False
                if found.docker_exists:
                    await emu.docker_stop(found)
                    await emu.docker_remove(found)
        # Soft delete.  A container still being created is not stopped: its
        # creation carries on and leaves an orphan (as on the real server).
        found.deleted = True
        return json_response(GoMap(message="container deleted", id=ident,
                                   db_id=found.db_id, name=found.name))

    async def start(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        found = emu.db_find_docker(ident)
        if found is None:
            return error(404, "container not found")
        async with found.lock:
            try:
                emu.docker_get(ident)
                exists = True
            except DockerError:
                exists = False
            if not exists:
                # RecreateContainer: a new Docker container (new ID), same volume.
                try:
                    await emu.docker_create(found)
                except Exception as e:  # noqa: BLE001
                    return json_response(GoMap(
                        error=str(e), message="Container was removed from server "
                                              "and could not be recreated"), 500)
                now = time.time_ns()
                found.in_manager = True
                found.m_status = "running"
                found.m_created_ns = found.m_last_used_ns = now
                found.status = "running"
                return json_response(GoMap(
                    message="container recreated and started", id=found.docker_id,
                    old_id=ident, name=found.name, status="running",
                    recreated=True, volume_kept=True))
            err = await emu.manager_start(found, ident)
            if err:
                return error(500, err)
            found.status = "running"
        return json_response(GoMap(message="container started", id=ident,
                                   name=found.name, status="running"))

    async def stop(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        if ident.startswith("agent:"):
            return error(404, "agent not found")
        found = emu.db_find_docker(ident)
        if found is None:
            return error(404, "container not found")
        async with found.lock:
            if not (found.in_manager and found.docker_id == ident):
                return error(500, "container not found: " + ident)
            if not found.docker_exists:
                return error(500, "failed to stop container: Error response from "
                                  "daemon: No such container: " + ident)
            await emu.docker_stop(found)
            found.m_status = "stopped"
            found.status = "stopped"
        return json_response(GoMap(message="container stopped", id=ident,
                                   name=found.name, status="stopped"))

    async def images(self, request):
        names = SUPPORTED_IMAGES if request.query.get("all") == "true" else POPULAR_IMAGES

        def meta(n):
            return {"name": n, "display_name": n.replace("-", " ").title(),
                    "description": n + " image", "category": "linux",
                    "tags": [n.split("-")[0]], "popular": n in POPULAR_IMAGES}
        popular = [meta(n) for n in POPULAR_IMAGES]
        return json_response(GoMap(images=[meta(n) for n in names],
                                   categories=GoMap(linux=[meta(n) for n in names]),
                                   popular=popular))

    async def validate_token(self, request):
        emu = self.emu
        return json_response(GoMap(valid=True, user_id=emu.user_id,
                                   username=emu.username,
                                   email=emu.username + "@example.com",
                                   tier=emu.tier, scopes=["read", "write"]))

    async def health(self, request):
        mgr = self.emu.manager()
        return json_response(GoMap(
            status="ok", database="connected", docker="connected",
            containers_total=len(mgr),
            containers_running=sum(1 for c in mgr if c.m_status == "running")))

    async def version(self, request):
        return json_response(GoMap(version="v1.0.0", build="2024-12-10"))


# ====================================================== file handlers

class FileApi:
    def __init__(self, emu):
        self.emu = emu

    def _container(self, ident):
        """The common preamble: manager lookup, owner, status "running"."""
        c = self.emu.mgr_get(ident)
        if c is None:
            return None, error(404, "container not found")
        if c.m_status != "running":
            return None, error(400, "container is not running")
        return c, None

    async def _run(self, target, argv, frame_stdout=0):
        """An exec attached to stdout+stderr: (raw multiplexed stream, exit
        code).  frame_stdout > 0 cuts stdout into frames of that size, the
        writes of a program whose stdio buffer has that size."""
        proc = await self.emu.docker_exec(
            target, argv, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        raw = bytearray()
        pending = bytearray()

        async def pump(stream, kind):
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    break
                if kind == 1 and frame_stdout:
                    pending.extend(chunk)
                    while len(pending) >= frame_stdout:
                        raw.extend(mux_frame(1, bytes(pending[:frame_stdout])))
                        del pending[:frame_stdout]
                else:
                    raw.extend(mux_frame(kind, chunk))
            if kind == 1 and pending:
                raw.extend(mux_frame(1, bytes(pending)))
                pending.clear()
        try:
            await asyncio.wait_for(asyncio.gather(pump(proc.stdout, 1),
                                                  pump(proc.stderr, 2)),
                                   FILE_OP_TIMEOUT)
            rc = exit_code(await asyncio.wait_for(proc.wait(), FILE_OP_TIMEOUT))
        except asyncio.TimeoutError:
            kill_in_container(proc)
            raise
        finally:
            target.runtime.forget(proc)
        return bytes(raw), rc

    async def list(self, request):
        ident = request.match_info["id"]
        path = request.query.get("path", "") or HOME
        c, err = self._container(ident)
        if err is not None:
            return err
        try:
            target = self.emu.docker_get(ident)
            raw, _ = await self._run(target, ["ls", "-la", path], LS_STDIO_BUFFER)
        except DockerError as e:
            return error(500, "failed to create exec: %s" % e)
        except asyncio.TimeoutError:
            return error(500, "failed to read output")
        files = parse_list_output(raw, path)
        c.touch()
        return json_response(GoMap(path=path, files=files,
                                   count=len(files) if files else 0))

    async def _simple(self, request, argv_for, failure):
        ident = request.match_info["id"]
        path = request.query.get("path", "")
        c, err = self._container(ident)
        if err is not None:
            return None, err
        try:
            target = self.emu.docker_get(ident)
            _, rc = await self._run(target, argv_for(path))
        except DockerError as e:
            return None, error(500, "failed to create exec: %s" % e)
        except asyncio.TimeoutError:
            return None, error(500, "failed to check result")
        if rc != 0:
            return None, error(500, failure)
        c.touch()
        return path, None

    async def delete(self, request):
        path = request.query.get("path", "")
        if path == "":
            return error(400, "path parameter required")
        for d in DANGEROUS_PATHS:
            # Go: a == d || (HasPrefix(a, d+"/") && !HasPrefix(a, "/home/"))
            if path == d or (path.startswith(d + "/") and not path.startswith("/home/")):
                return error(403, "cannot delete system files")
        path, err = await self._simple(request, lambda p: ["rm", "-rf", p],
                                       "failed to delete file")
        if err is not None:
            return err
        return json_response(GoMap(message="file deleted successfully", path=path))

    async def mkdir(self, request):
        if request.query.get("path", "") == "":
            return error(400, "path parameter required")
        path, err = await self._simple(request, lambda p: ["mkdir", "-p", p],
                                       "failed to create directory")
        if err is not None:
            return err
        return json_response(GoMap(message="directory created successfully", path=path))

    async def download(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        path = request.query.get("path", "")
        if path == "":
            return error(400, "path parameter required")
        c, err = self._container(ident)
        if err is not None:
            return err
        try:
            target = emu.docker_get(ident)
        except DockerError as e:
            return error(404, "file not found: %s" % e)
        # Docker's ResolvePath: the directory part is resolved in scope, the
        # last element is not followed unless the path ends in "/" or "/.".
        abs_path = preserve_trailing(go_join("/", path), path)
        dir_part, _, base = abs_path.rpartition("/")
        try:
            host_dir = target.jail.host(go_clean(dir_part or "/"))
            host = host_dir if base in ("", ".") else os.path.join(host_dir, base)
            st = os.lstat(host)
        except OSError:
            return error(404, "file not found: Error response from daemon: Could not "
                              "find the file %s in container %s" % (path, ident))
        if stat.S_ISDIR(st.st_mode):
            return error(400, "path is a directory, use /files/list to list contents")
        if stat.S_ISSOCK(st.st_mode):
            return error(500, "failed to read archive")   # tar skips sockets
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        f = None
        if size:
            try:
                f = os.fdopen(os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb")
            except OSError:
                return error(500, "failed to read archive")
        c.touch()
        resp = web.StreamResponse(status=200, headers={
            "Content-Disposition": "attachment; filename=%s"
                                   % go_quote(go_base(path)),
            "Content-Type": "application/octet-stream",
            "X-File-Size": str(st.st_size),
            "X-File-Mode": go_mode_string(st.st_mode),
        })
        resp.content_length = size
        emu.decorate(request, resp)
        try:
            await resp.prepare(request)
            await common.send_file(resp, f, size, CHUNK)
            await resp.write_eof()
        finally:
            if f:
                f.close()
        return resp

    async def upload(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        dest = request.query.get("path", "") or HOME + "/"
        c, err = self._container(ident)
        if err is not None:
            return err
        # ParseMultipartForm reads the whole body before FormFile("file").
        if request.content_type != "multipart/form-data":
            await _drain(request)
            return error(400, "no file uploaded: request Content-Type isn't "
                              "multipart/form-data")
        tmp = tempfile.NamedTemporaryFile(dir=emu.work, delete=False)
        try:
            filename, size, problem = await self._receive(request, tmp)
            if problem:
                return error(400, "no file uploaded: " + problem)
            if size > MAX_UPLOAD:
                return error(400, "file too large (max 100MB)")
            filename = go_base(filename)
            if filename in (".", "..") or "/" in filename:
                return error(400, "invalid filename")
            try:
                target = emu.docker_get(ident)
                await self._extract(target, ident, dest, filename, tmp.name)
            except DockerError as e:
                return error(500, "failed to copy to container: %s" % e)
            c.touch()
            return json_response(GoMap(message="file uploaded successfully",
                                       filename=filename,
                                       path=go_join(dest, filename), size=size))
        finally:
            try:
                os.unlink(tmp.name)
            except OSError:
                pass

    async def _receive(self, request, tmp):
        """Read every part; the first part named "file" with a file name is
        stored in `tmp`.  Returns (file name, size, problem text)."""
        filename, size = None, 0
        try:
            reader = await request.multipart()
            with tmp:
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    name = part.filename
                    if part.name == "file" and name and filename is None:
                        filename = name
                        while True:
                            chunk = await part.read_chunk(CHUNK)
                            if not chunk:
                                break
                            tmp.write(chunk)
                            size += len(chunk)
                    else:
                        await part.release()
        except (AssertionError, ValueError, KeyError, RuntimeError) as e:
            return None, 0, "multipart: NextPart: %s" % (e or "EOF")
        if filename is None:
            return None, 0, "http: no such file"
        return filename, size, None

    async def _extract(self, target, ident, dest, filename, src):
        """Docker's PUT /archive of a one-file tar (mode 0644, uid 0)."""
        abs_path = preserve_trailing(go_join("/", dest), dest)
        try:
            host_dir = target.jail.host(go_clean(abs_path))
            st = os.lstat(host_dir)
        except OSError:
            raise DockerError(404, "Could not find the file %s in container %s"
                              % (dest, ident))
        if not stat.S_ISDIR(st.st_mode):
            raise DockerError(400, "extraction point is not a directory")
        final = os.path.join(host_dir, filename)
        try:
            old = os.lstat(final)
        except OSError:
            old = None
        if old is not None and stat.S_ISDIR(old.st_mode):
            raise DockerError(500, "cannot overwrite directory %s with non-directory %s"
                              % (go_quote(target.jail.inside(final)),
                                 go_quote(target.jail.inside(host_dir))))
        # Unpack removes what is there and creates a new file; the tar header
        # has ModTime = now rounded to the second, mode 0644, uid/gid 0.
        mtime = round(time.time())
        os.chmod(src, 0o644)
        os.chown(src, 0, 0)
        os.utime(src, (mtime, mtime))
        if old is not None:
            os.unlink(final)
        try:
            os.rename(src, final)
        except OSError:
            shutil.copyfile(src, final)
            os.chmod(final, 0o644)
            os.utime(final, (mtime, mtime))


async def _drain(request):
    while await request.content.read(CHUNK):
        pass


# ====================================================== exec handler

class ExecApi:
    def __init__(self, emu):
        self.emu = emu
        self.background = set()

    async def exec(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        try:
            req = go_unmarshal(await request.read(), EXEC_SCHEMA,
                               "handlers.ExecRequest", whole=False)
        except GoDecodeError as e:
            return error(400, "invalid body: %s" % e)
        argv = req.get("cmd") or []
        if not argv:
            command = go_trim_space(req.get("command", ""))
            if command == "":
                return error(400, "command or cmd is required")
            argv = ["sh", "-c", command]
        timeout = req.get("timeout_seconds", 0)
        if timeout <= 0:
            timeout = EXEC_DEFAULT_TIMEOUT
        timeout = min(timeout, EXEC_MAX_TIMEOUT)
        c = emu.mgr_get(ident)
        if c is None:
            return error(404, "container not found")
        if c.m_status.lower() != "running":
            return error(400, "container is not running")

        raw = bytearray()
        proc = None
        try:
            proc = await emu.docker_exec(
                c, argv, env=req.get("env"), workdir=go_trim_space(req.get("workdir", "")),
                user=go_trim_space(req.get("user", "")), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except DockerError as e:
            return error(500, "failed to create exec: %s" % e)
        except _ExecStartError as e:
            raw += mux_frame(1, ("OCI runtime exec failed: exec failed: unable to "
                                 "start container process: %s: unknown\r\n" % e).encode())
        code = 126
        truncated = False
        if proc is not None:
            full = asyncio.Event()

            async def pump(stream, kind):
                while not full.is_set():
                    chunk = await stream.read(65536)
                    if not chunk:
                        return
                    raw.extend(mux_frame(kind, chunk))
                    if len(raw) > EXEC_MAX_OUTPUT:
                        full.set()
            pumps = asyncio.gather(pump(proc.stdout, 1), pump(proc.stderr, 2))
            pumps.add_done_callback(_retrieve)
            waiter = asyncio.ensure_future(full.wait())
            done, _ = await asyncio.wait({pumps, waiter}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not done:
                # Deadline: what was read so far; the process keeps running.
                pumps.cancel()
                self._leave_running(c, proc)
                out, err, combined = demux_docker_stream(bytes(raw))
                return json_response(GoMap({"error": "exec timed out",
                                            "timeout_s": timeout, "exit_code": -1,
                                            "output": combined, "stdout": out,
                                            "stderr": err}), 504)
            if full.is_set():
                pumps.cancel()
                truncated = True
            try:
                # ExecInspect right after the stream ended: a process that
                # closed its output but has not exited reports 0.
                code = exit_code(await asyncio.wait_for(proc.wait(), 0.2))
                c.runtime.forget(proc)
            except asyncio.TimeoutError:
                code = 0
                self._leave_running(c, proc)
        if len(raw) > EXEC_MAX_OUTPUT:
            del raw[EXEC_MAX_OUTPUT:]
        out, err, combined = demux_docker_stream(bytes(raw))
        c.touch()
        body = GoMap(stdout=out, stderr=err, output=combined, exit_code=code,
                     command=req.get("command", ""))
        if req.get("cmd"):
            body["cmd"] = req["cmd"]
        if truncated:
            body["truncated"] = True
        return json_response(body)

    def _leave_running(self, c, proc):
        """The attach is gone but the process runs on; keep its pipes drained."""
        async def drain():
            try:
                await asyncio.gather(_discard(proc.stdout), _discard(proc.stderr))
                await proc.wait()
            finally:
                c.runtime.forget(proc)
        t = asyncio.ensure_future(drain())
        self.background.add(t)
        t.add_done_callback(self.background.discard)


def _retrieve(fut):
    """Consume a future's outcome (a cancelled gather must not be logged)."""
    if not fut.cancelled():
        fut.exception()


async def _discard(stream):
    while await stream.read(65536):
        pass


# ==================================================== terminal WebSocket

TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def open_pty(init_pid):
    """A pty from the container's own devpts (bwrap --dev mounts a new
    instance), so that `tty` in the shell names /dev/pts/N as on Docker;
    the host's devpts if that fails."""
    try:
        master = os.open("/proc/%d/root/dev/ptmx" % init_pid, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return pty.openpty()
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        return master, slave
    except OSError:
        os.close(master)
        return pty.openpty()


class PtyShell:
    """A Docker TTY exec: the shell on a pty, output chunks in a queue
    (None once the shell has exited and its output is drained)."""

    def __init__(self):
        self.master = None
        self.proc = None
        self.queue = asyncio.Queue()
        self.pending = bytearray()     # input not yet accepted by the pty
        self.writing = False

    async def start(self, emu, c, cols, rows):
        master, slave = open_pty(c.runtime.init_pid)
        self.master = master
        self.resize(cols, rows)
        env = ["%s=%s" % kv for kv in TERMINAL_ENV.items()]
        try:
            self.proc = await emu.docker_exec(
                c, ["setsid", "--ctty", "/bin/sh", "-l"], env=env, workdir=HOME,
                stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            self.master = None
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)
        self.waiter = asyncio.ensure_future(self._wait(c))

    def resize(self, cols, rows):
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", rows, cols, 0, 0))

    def _read_some(self):
        try:
            return os.read(self.master, PTY_READ)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _readable(self):
        data = self._read_some()
        if data:
            self.queue.put_nowait(data)
        elif data == b"":
            asyncio.get_running_loop().remove_reader(self.master)

    async def _wait(self, c):
        await self.proc.wait()
        c.runtime.forget(self.proc)
        await asyncio.sleep(0.05)          # let the last output arrive
        loop = asyncio.get_running_loop()
        try:
            loop.remove_reader(self.master)
            loop.remove_writer(self.master)
        except (ValueError, OSError):
            pass
        while True:
            data = self._read_some()
            if not data:
                break
            self.queue.put_nowait(data)
        os.close(self.master)
        self.master = None
        self.queue.put_nowait(None)

    def write(self, data):
        """conn.Write to the attach stream: queued, written in order."""
        if self.master is None or not data:
            return
        self.pending.extend(data)
        self._flush()

    def _flush(self):
        loop = asyncio.get_running_loop()
        while self.pending and self.master is not None:
            try:
                n = os.write(self.master, self.pending[:65536])
            except BlockingIOError:
                break
            except OSError:
                self.pending.clear()
                break
            del self.pending[:n]
        if self.master is None:
            return
        if self.pending and not self.writing:
            loop.add_writer(self.master, self._flush)
            self.writing = True
        elif not self.pending and self.writing:
            loop.remove_writer(self.master)
            self.writing = False

    def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            kill_in_container(self.proc)


class TerminalSession:
    """One /ws/terminal connection (TerminalHandler.HandleWebSocket and
    runTerminalSessionWithRestart)."""

    def __init__(self, emu, request, ws, docker_id, key):
        self.emu = emu
        self.request = request
        self.ws = ws
        self.docker_id = docker_id
        self.key = key
        self.cols, self.rows = 80, 24
        self.closed = False
        self.send_lock = asyncio.Lock()
        self.shell = None
        self.shell_live = asyncio.Event()   # a reader goroutine is reading
        self.stale = False                  # the previous reader still waits
        self.gone = asyncio.Event()         # the client went away
        self.drop = None                    # an armed ws_drop fault
        self.closing = None                 # the task sending the close frame

    # ------------------------------------------------------- sending

    async def send(self, type_, data="", cols=0, rows=0):
        """WriteJSON(TerminalMessage): one text frame, JSON + "\\n"."""
        if self.closed:
            return
        msg = {"type": type_}
        if data:
            msg["data"] = data
        if cols:
            msg["cols"] = cols
        if rows:
            msg["rows"] = rows
        async with self.send_lock:
            try:
                await self.ws.send_str(go_json(msg) + "\n")
            except (ConnectionError, RuntimeError):
                self.gone.set()
                return

    def abort_transport(self):
        log("ws_drop: dropping terminal connection to %s" % self.docker_id[:12])
        self.drop = None
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.gone.set()

    async def close(self, code=1000, reason="session ended"):
        """CloseWithCode: a close frame, then the connection is dropped.
        Whoever comes second waits for the first close to be sent."""
        if self.closing is None:
            if self.closed:                 # aborted: nothing to send
                return
            self.closed = True
            self.closing = asyncio.ensure_future(self._close(code, reason))
        await asyncio.shield(self.closing)

    async def _close(self, code, reason):
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 3)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        self.gone.set()

    async def abort(self):
        if self.shell:
            self.shell.kill()
        await self.close()

    # ------------------------------------------------------- receiving

    async def reader(self):
        """The reader goroutines.  While no shell is attached nobody reads,
        except the previous session's reader, which takes exactly one more
        message after its shell exited."""
        try:
            while not self.closed:
                if not self.stale:
                    await self.shell_live.wait()
                msg = await self.ws.receive()
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    raw = msg.data.encode() if msg.type == WSMsgType.TEXT else msg.data
                    if self.stale:
                        self.stale = False
                        self.stale_message(raw)
                    else:
                        await self.handle(raw)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                  WSMsgType.ERROR):
                    break
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self.gone.set()

    def stale_message(self, raw):
        """What the dead session's reader does with the message it gets:
        input goes to a closed attach (lost), a resize only updates the
        stored size, a ping is still answered."""
        msg = decode_terminal_message(raw)
        if msg is None:
            return
        t = msg.get("type", "")
        if t == "resize" and msg.get("cols", 0) > 0 and msg.get("rows", 0) > 0:
            self.cols, self.rows = msg["cols"], msg["rows"]
        elif t == "ping":
            asyncio.ensure_future(self.send("pong"))

    async def handle(self, raw):
        msg = decode_terminal_message(raw)
        target = self.emu.mgr_get(self.docker_id)
        if msg is None:                 # not JSON: raw input (compatibility)
            self._input(raw, target)
            return
        t = msg.get("type", "")
        if t == "input":
            self._input(msg.get("data", "").encode("utf-8"), target)
        elif t == "resize":
            cols, rows = msg.get("cols", 0), msg.get("rows", 0)
            if cols > 0 and rows > 0:
                self.cols, self.rows = cols, rows
                if self.shell:
                    self.shell.resize(cols, rows)
        elif t == "ping":
            await self.send("pong")

    def _input(self, data, target):
        if self.shell:
            self.shell.write(data)
        if target is not None:
            target.touch()
        if self.drop is None:
            fault = self.emu.take_fault(("ws_drop",), self.request.path,
                                        self.request.method)
            if fault is not None:
                self.drop = fault
                delay = float(fault.get("delay") or 0.5)
                asyncio.get_running_loop().call_later(
                    delay, lambda: self.drop is not None and not self.closed
                    and self.abort_transport())

    # ------------------------------------------------------- background

    async def pinger(self):
        while True:
            await asyncio.sleep(self.emu.ws_ping)
            await self.send("ping")

    async def stats(self):
        if self.emu.ws_stats <= 0:
            return
        rng = random.Random(self.docker_id)
        while True:
            await asyncio.sleep(self.emu.ws_stats)
            c = self.emu.mgr_get(self.docker_id)
            if c is None:
                continue
            payload = {
                "cpu_percent": round(rng.uniform(0, 3), 2),
                "memory": float(rng.randrange(20, 60) * 1024 * 1024),
                "memory_limit": float(c.resources["memory_mb"] * 1024 * 1024),
                "disk_read": 0.0, "disk_write": float(rng.randrange(0, 4096)),
                "disk_usage": float(rng.randrange(1, 50) * 1024 * 1024),
                "disk_limit": float(c.resources["disk_mb"] * 1024 * 1024),
                "net_rx": 0.0, "net_tx": 0.0,
            }
            await self.send("stats", go_json(payload))

    async def refresher(self):
        """The 5-second status refresh: the DB status wins over the
        manager's, and is sent whenever it differs from the last one sent
        (which starts empty, so the first tick always sends it)."""
        last = ""
        while True:
            await asyncio.sleep(STATUS_REFRESH)
            rec = self.emu.db_find_docker(self.docker_id)
            if rec is None:
                continue
            cur = rec.status
            m = next((c for c in self.emu.manager() if c.docker_id == self.docker_id), None)
            if m is not None and m.m_status != cur:
                m.m_status = cur
            if cur and cur != last:
                await self.send("container_status", cur)
                last = cur

    # ------------------------------------------------------- the shell loop

    async def run(self):
        restarts = 0
        while not self.closed and not self.gone.is_set():
            if self.emu.mgr_get(self.docker_id) is None:
                await self.send("error", "Container is no longer available")
                return
            started = time.monotonic()
            exited = await self.run_shell()
            if time.monotonic() - started > 60:
                restarts = 0
            if not (exited and restarts < MAX_SHELL_RESTARTS) or self.gone.is_set():
                return
            restarts += 1
            await self.send("output", "\r\n\x1b[33m[Starting new session...]\x1b[0m\r\n\r\n")
            c = self.emu.containers_by_docker_id(self.docker_id)
            if c is None or not c.running:
                await self.send("output", "\r\n\x1b[33m[Container stopped. Restarting...]"
                                          "\x1b[0m\r\n")
                err = "container not found: " + self.docker_id
                if c is not None:
                    async with c.lock:
                        err = await self.emu.manager_start(c, self.docker_id)
                if err:
                    await self.send("container_restart_required",
                                    "Container needs to be restarted. Please reconnect.")
                    await self.close(4100, "container_restart_required")
                    return
                await asyncio.sleep(0.5)

    async def run_shell(self):
        """runTerminalSession: True if the shell exited, False if the client
        went away or the shell could not be started."""
        await self.send("shell_starting", "Starting shell...")
        shell = PtyShell()
        try:
            target = self.emu.docker_get(self.docker_id)
            await shell.start(self.emu, target, self.cols, self.rows)
        except (DockerError, _ExecStartError) as e:
            await self.send("error", "Failed to create terminal session: %s" % e)
            return False
        self.shell = shell
        await self.send("shell_ready", "Shell ready")
        self.shell_live.set()
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            while True:
                getter = asyncio.ensure_future(shell.queue.get())
                done, _ = await asyncio.wait({getter, gone},
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    shell.kill()
                    return False
                chunk = getter.result()
                if chunk is None:
                    self.stale = True
                    return True
                await self.send("output", terminal_text(chunk))
        finally:
            gone.cancel()
            self.shell_live.clear()
            self.shell = None


# ======================================================= control routes

class Control(common.Control):
    fault_kinds = ("status", "empty", "slow", "drop", "ratelimit", "ws_drop")
    routes_map = GoMap

    def json(self, data, status=200):
        return json_response(data, status)

    def routes(self):
        return super().routes() + [
            ("GET", "/_emu/sandbox/{key}", self.sandbox),
            ("POST", "/_emu/sandbox/{key}/vanish", self.vanish)]

    def _find(self, request):
        return self.emu.find_any(request.match_info["key"])

    async def sandbox(self, request):
        c = self._find(request)
        if c is None:
            return json_response({"error": "no such sandbox"}, 404)
        return json_response({"id": c.docker_id or c.db_id, "dir": c.dir,
                              "state": c.state(), "db_id": c.db_id,
                              "docker_id": c.docker_id, "running": c.running})

    async def vanish(self, request):
        c = self._find(request)
        if c is None or not c.docker_exists:
            return json_response({"error": "no such Docker container"}, 404)
        async with c.lock:
            c.in_manager = False
            await self.emu.docker_remove(c)
        return json_response({"ok": True, "old_id": c.docker_id})


# ================================================================ app

# route chains: which middlewares run, in order (main.go)
API = ("auth", "api")
API_CONTAINER = ("auth", "api", "container")
WS = ("websocket", "auth")


class Server:
    def __init__(self, emu):
        self.emu = emu
        self.chains = {}
        self.patterns = []          # (method, regex) for the trailing-slash redirect

    def add(self, router, method, path, handler, chain):
        router.add_route(method, path, handler)
        self.chains[(method, path)] = chain
        self.patterns.append((method, re.compile(
            "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")))

    async def dispatch(self, request, handler):
        emu = self.emu
        unmatched = request.match_info.http_exception is not None
        canonical = None if unmatched else request.match_info.route.resource.canonical
        emu.count(common.route_key(request))
        chain = () if unmatched else self.chains.get((request.method, canonical), ())

        fault = emu.take_fault(("status", "empty", "slow", "drop", "ratelimit"),
                               request.path, request.method)
        if fault is not None:
            resp = await self.apply_fault(fault, request, chain)
            if resp is not None:
                return self.finish(request, resp)
        if unmatched:
            return self.finish(request, self.no_route(request))

        request["rl_headers"] = {}
        for step in chain:
            if step == "auth":
                refusal = emu.check_token(request, is_websocket_upgrade(request))
                if refusal is not None:
                    return self.finish(request, refusal)
                continue
            limiter = emu.limiters[step]
            ip = emu.client_ip(request)
            if not limiter.allow(ip) and emu.enforce_limits:
                request["rl_headers"] = {}       # the refusal sets its own
                return self.finish(request, limiter.refusal())
            request["rl_headers"] = {"X-RateLimit-Limit": str(limiter.rate),
                                     "X-RateLimit-Remaining": str(limiter.remaining(ip))}
        resp = await handler(request)
        return self.finish(request, resp)

    def finish(self, request, resp):
        if not resp.prepared:
            self.emu.decorate(request, resp)
        return resp

    async def apply_fault(self, f, request, chain):
        kind = f["kind"]
        status = int(f.get("status") or 500)
        if kind == "slow":
            await asyncio.sleep(float(f.get("delay") or 1.0))
            return None
        if kind == "empty":
            return web.Response(status=status)
        if kind == "ratelimit":
            name = "container" if "container" in chain else \
                "websocket" if "websocket" in chain else "api"
            return self.emu.limiters[name].refusal()
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        return error(status, "injected fault")

    def no_route(self, request):
        """gin: RedirectTrailingSlash, then NoRoute."""
        path = request.path
        alt = path[:-1] if path.endswith("/") and len(path) > 1 else path + "/"
        if any(m == request.method and rx.match(alt) for m, rx in self.patterns):
            code = 301 if request.method == "GET" else 307
            location = alt + ("?" + request.query_string if request.query_string else "")
            return web.Response(status=code, headers={"Location": location},
                                text="<a href=\"%s\">%s</a>.\n\n" % (
                                    location, "Moved Permanently" if code == 301
                                    else "Temporary Redirect") if request.method == "GET"
                                else None, content_type="text/html")
        if self.emu.frontend and (path.startswith("/api/") or path.startswith("/ws/")):
            return error(404, "not found")
        return web.Response(status=404, text="404 page not found",
                            content_type="text/plain")


def build_app(emu):
    srv = Server(emu)
    app = web.Application(middlewares=[common.request_logger(srv.dispatch)],
                          client_max_size=64 << 20)
    r = app.router
    api, files, ex, term = (ContainerApi(emu), FileApi(emu), ExecApi(emu),
                            TerminalApi(emu))
    emu.exec_api = ex
    for method, path, fn in Control(emu).routes():
        r.add_route(method, path, fn)
    routes = [
        ("GET", "/health", api.health, ()),
        ("GET", "/api/version", api.version, ()),
        ("GET", "/api/containers", api.list, API),
        ("POST", "/api/containers", api.create, API_CONTAINER),
        ("GET", "/api/containers/{id}", api.get, API),
        ("DELETE", "/api/containers/{id}", api.delete, API),
        ("POST", "/api/containers/{id}/start", api.start, API),
        ("POST", "/api/containers/{id}/stop", api.stop, API),
        ("POST", "/api/containers/{id}/files", files.upload, API),
        ("GET", "/api/containers/{id}/files", files.download, API),
        ("GET", "/api/containers/{id}/files/list", files.list, API),
        ("DELETE", "/api/containers/{id}/files", files.delete, API),
        ("POST", "/api/containers/{id}/files/mkdir", files.mkdir, API),
        ("GET", "/api/images", api.images, API),
        ("GET", "/api/tokens/validate", api.validate_token, API),
        ("GET", "/ws/terminal/{containerId}", term.handle, WS),
    ]
    if emu.mode == "new":
        routes.append(("POST", "/api/containers/{id}/exec", ex.exec, API_CONTAINER))
    for method, path, fn, chain in routes:
        srv.add(r, method, path, fn, chain)
    return app


class TerminalApi:
    def __init__(self, emu):
        self.emu = emu

    def _precheck(self, ident):
        """HandleWebSocket up to the upgrade: (docker id, None) or (None,
        the JSON error response)."""
        emu = self.emu
        c = emu.mgr_get(ident)
        db = None
        docker_id = ""
        ok = c is not None
        if not ok:
            # Not in the manager: the database, by Docker ID or by UUID.
            if len(ident) == 64:
                db = emu.db_find_docker(ident)
            else:
                db = next((r for r in emu.records() if r.db_id == ident), None)
            if db is not None and db.docker_id:
                m = emu.mgr_get(db.docker_id)
                if m is not None:
                    c, ok = m, True
                else:
                    try:
                        emu.docker_get(db.docker_id)
                        docker_id, ok = db.docker_id, True
                    except DockerError:
                        pass
        if not ok:
            hint = ("Container may have been stopped or removed. Try starting it."
                    if db is not None and db.docker_id else
                    "Container may need to be recreated. Try starting it.")
            return None, error(404, "container not found", code="container_not_found",
                               hint=hint, action_required="start")
        if c is not None:
            docker_id = c.docker_id
        status, running = "", False
        if db is not None:
            status = db.status
        elif c is not None:
            status = c.m_status
        running = status in ("running", "configuring")
        if docker_id:
            try:
                running = emu.docker_get(docker_id).running
            except DockerError:
                return None, error(410, "container was removed from server",
                                   code="container_removed",
                                   hint="Container was removed from Docker. Click Start "
                                        "to recreate it.",
                                   action_required="start", container_id=docker_id)
        if not running and status != "configuring":
            return None, error(400, "container is not running", code="container_stopped",
                               status=status,
                               hint="Start the container before connecting to terminal",
                               action_required="start")
        return (docker_id, status, db), None

    async def handle(self, request):
        emu = self.emu
        ident = request.match_info["containerId"]
        if ident.startswith("vm:"):
            return error(404, "container not found", code="container_not_found",
                         hint="Container may need to be recreated. Try starting it.",
                         action_required="start")
        found, refusal = self._precheck(ident)
        if refusal is not None:
            return refusal
        docker_id, status, db = found
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE, autoping=True,
                                   compress=True, timeout=2.0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Bad Request\n",
                                headers={"Sec-Websocket-Version": "13"})
        if "rexec.v1" in request.headers.get("Sec-WebSocket-Protocol", ""):
            ws.headers["Sec-WebSocket-Protocol"] = "rexec.v1"
        await ws.prepare(request)

        key = "%s:%s:%s" % (docker_id, emu.user_id, request.query.get("id", "") or "default")
        sess = TerminalSession(emu, request, ws, docker_id, key)
        old = emu.terminals.get(key)
        emu.terminals[key] = sess
        if old is not None:
            await old.abort()
        tasks = []
        try:
            await sess.send("connected", "Terminal session established")
            # Only when the container was found through the database: its
            # status wins over a stale manager entry.
            c = emu.mgr_get(docker_id) if db is not None else None
            if db is not None and c is not None and c.m_status != db.status:
                c.m_status = db.status
                status = db.status
            if status:
                await sess.send("container_status", status)
            tasks = [asyncio.ensure_future(t) for t in
                     (sess.reader(), sess.pinger(), sess.stats(), sess.refresher())]
            await sess.run()
        finally:
            for t in tasks:
                t.cancel()
            if sess.shell:
                sess.shell.kill()
            if emu.terminals.get(key) is sess:
                del emu.terminals[key]
            await sess.close()
        return ws


# ================================================================ main

async def amain(args):
    emu = Emulator(args)

    def started(port):
        emu.port = port
        return "rexec emulator (%s mode) on %s://127.0.0.1:%d (root %s)" % (
            emu.mode, "https" if args.tls else "http", port, emu.root)
    await common.serve(build_app(emu), args.port, started, emu.shutdown, args.tls)


def main():
    ap = common.argument_parser(__doc__, "directory holding containers",
                                ("--token", "the accepted API token"))
    ap.add_argument("--mode", choices=("old", "new"), default="new",
                    help="old: no POST /api/containers/:id/exec (default new)")
    ap.add_argument("--tier", choices=sorted(TIERS), default="pro")
    ap.add_argument("--rate-limit", action="store_true",
                    help="enforce the real per-IP rate limits")
    ap.add_argument("--no-frontend", action="store_true",
                    help="unknown routes: text 404 instead of JSON")
    ap.add_argument("--ws-ping", type=float, default=15.0)
    ap.add_argument("--ws-stats", type=float, default=1.0)
    args = ap.parse_args()
    args.tls = common.tls_context(ap, args)
    common.run(amain, args, "containers")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A test emulator of the Vtrix sandbox service (Hermes gateway).

Usage:
    /usr/bin/python3 tests/emulators/vtrix.py --root DIR --token TOKEN
        --project PROJECT [--port 0] [--delay 0.2]

It binds 127.0.0.1:PORT (0 = any free port), prints "PORT\\n" on stdout once
listening and logs one line per REST request and per JSON-RPC call on stderr
(never the token, never query strings).  SIGTERM/SIGINT stop it and kill every
sandbox process.

What it serves, following /work/shared/protocols/vtrix.md (revisions R1-R4 of
the public SDKs; the server itself is not public):

  REST (Atlas behind Hermes), under /api/v1/sandbox/ (R1-R3) and
  /api/v1/sandboxes/ (R4):
      POST .../create, POST .../list (R4: both POST /api/v1/sandboxes, told
      apart by the body: an empty body, {} or a body with limit/offset/status
      is a list, anything else a create; GET /api/v1/sandboxes?limit=..&
      offset=..&status=..&user_id=.. lists too), GET/DELETE/PATCH .../{id},
      POST .../{id}/stop|start|restart|extend|configure, and
      GET /admin/pool/status, POST /admin/rolling/start,
      GET /admin/rolling/status, POST /admin/rolling/cancel (rolling updates
      "complete" at once; there is nothing to roll).
      Every answer is the envelope {"code","message","data","request_id"}
      (also on 4xx/5xx); create's data is {"sandbox": Info}, Get's a bare
      Info, List's {"items": [Info], "pagination": {"total","limit",
      "offset","has_more"}} (limit 0 = 20, at most 100; oldest first; an
      unknown status filter gives an empty list).  Bodies are optional for
      stop/start/restart (Go sends none, Node sends {}).
  WebSocket GET .../{id}/connect: JSON-RPC 2.0, one text frame per message,
      methods exec, exec_logs, kill, read, write, edit, write_binary,
      list_files, stat, read_stream.  Notifications (exec.start, exec.stdout,
      exec.stderr, exec.done, read_stream.chunk) carry the request id in
      params.id and always precede the response to that request.  Calls run
      concurrently, so answers come back in the order the work finishes.

Auth: "Authorization: Bearer TOKEN" and "X-Project-ID: PROJECT" (R1's
"X-Service-ID" is accepted too) on every REST request and upgrade.  On the
upgrade the offered subprotocol "bearer.TOKEN" (old Node SDK, for browsers)
may replace the Authorization header, and then the project header may be
missing (not wrong); the offered subprotocol is always echoed.

Test control routes (no auth; not counted):
  GET  /_emu/stats          {"total": N, "routes": {"POST /api/v1/sandbox/{id}/stop": n,
                            "GET /api/v1/sandbox/{id}/connect": n,
                            "WS read_stream": n, ...}}: REST requests by method and
                            route pattern ("GET (unmatched)" for unknown routes),
                            JSON-RPC calls by method name ("WS (unknown)" for others).
  POST /_emu/reset          zero the counters.
  POST /_emu/fault          {"kind": K, "count": 1, "prefix": "/api", "method": M,
                             "status": 500, "code": 50000, "delay": 1.0, "raw": false}
      REST kinds (the next `count` requests whose path starts with `prefix` and,
      if given, whose HTTP method is `method`):
        status      HTTP `status` with an error envelope (code `code`, default
                    status*100); with "raw": true a non-JSON text body instead,
                    like a proxy in front of Atlas would send.
        error_code  HTTP 200 with an error envelope of code `code` (default 50000).
        slow        wait `delay` seconds, then serve normally.
        drop        abort the connection without an answer.
      WebSocket kinds (the next `count` JSON-RPC calls, of method `method` if given):
        ws_drop     the call starts; the socket is aborted (no close frame) right
                    after its first notification, or, for a call that sends none,
                    once its work is done and just before its answer.
        ws_slow     the answer (not the notifications) waits `delay` seconds.
        ws_error    the call is answered with JSON-RPC error `code` (default
                    -32603) without doing any work.
  POST /_emu/fault/clear    forget all faults.
  GET  /_emu/sandbox/{name or id}  {"id", "dir", "state"}: the backing directory
                            and status; `name` matches a sandbox's "name" label.
  POST /_emu/sandbox/{name or id}/expire  {"seconds": N}: set expire_at to now+N
                            (the reaper destroys expired sandboxes, see below).

Sandboxes.  DIR/<id>/ is the sandbox's "/".  Commands run inside it with
bubblewrap: every running sandbox has one long-lived "keeper"
(bwrap --unshare-pid ... sleep infinity) that owns a private pid, mount, ipc
and uts namespace; each command enters them with nsenter, so commands of one
sandbox see each other in /proc while sandboxes stay invisible to each other.
A command leads its own process group; `kill` signals every process of that
group (children included) and stopping a sandbox kills its pid namespace.
The file methods work on DIR/<id> directly; every path is resolved component
by component inside it (symlinks relative to the sandbox root, ".." stops at
the root, at most 40 hops), so no call reaches a host path outside DIR/<id>.

State machine (each step takes --delay seconds):
  create -> "creating" -> "active" (only once the pod is up AND a Get or List
  has reported "creating" at least once, as the SDK's poll expects);
  stop: active -> (still "active" while the pod goes down) -> "stopped";
  start: stopped -> "creating" -> "active"; restart, PATCH and configure:
  active -> "creating" -> "active" (commands and sockets of the old pod die);
  delete: any -> "destroying" -> gone.  Refused transitions (start on active,
  stop/restart/PATCH/configure on a non-active sandbox, any change while a
  stop is under way, delete while destroying) answer code 40900.

Error codes (the real Atlas codes are not public; these are invented, the SDK
only checks code != 0).  The HTTP status is deliberately NOT a reliable signal,
as the SDK ignores it: gateway-level failures get a matching HTTP status,
business errors come with HTTP 200.
  40000 bad request (body, validation)   HTTP 200
  40100 missing or wrong token           HTTP 401
  40300 missing or wrong project header  HTTP 403
  40400 unknown sandbox or route         HTTP 404
  40900 illegal state transition         HTTP 200
  50000 internal error                   HTTP 500
JSON-RPC errors: -32001 file not found (the one code the SDK knows), -32700
parse error, -32600 invalid request, -32601 unknown method, -32602 invalid
params, -32000 every other failure (timeout, unknown cmd_id, edit mismatch,
not a directory, sandbox not active, ...) with a message saying which.

Deviations from the real service (deliberate, keep them in mind):
  * Info fields ip, namespace, preview_url, preview_host and port are
    synthetic; image_tag is spec.image (default "vtrix/sandbox:latest"), but
    no image is ever pulled: commands see the host's /usr read-only.  spec is
    always present (defaults cpu "1", memory "2Gi"); labels is omitted when
    empty; allocated_at is "" until the sandbox first becomes active.
  * Sandbox ids are UUIDs; the real id format is not known.
  * Create reads user_id (required, non-empty), spec, labels, payloads and
    ttl_hours; other fields are ignored, a top-level "env" included (the
    SDK's CreateOptions.Env is never sent: the client merges it into each
    exec's "env").  Payload env ("/api/v1/env" bodies, R3 "envs") reaches
    every command; PATCH payloads replace the stored ones, configure's apply
    to that one restart only.
  * The default TTL (ttl_hours 0) is 12 h, like extend's default; extend adds
    to expire_at ({"hours": N} R1/R2, {"seconds": N} R3/R4, 0 or none = 12 h,
    seconds above 86400 refused).  An expired sandbox is destroyed (the real
    service may stop it instead).  Extend works on stopped sandboxes too.
  * Files persist across stop/start/restart (the real pod's disk may not).
  * The WebSocket upgrade is accepted for any existing sandbox that is not
    being destroyed, because the SDK's tests attach to stopped sandboxes; on a
    sandbox that is not active every call gets -32000 "sandbox is not active".
    When a pod goes down (stop, restart, update, delete) its sockets are
    closed with code 1001.  No pings are sent.
  * Commands run as root via /bin/sh (the host's dash), in /root by default
    with HOME=/root; "sudo": true is accepted and ignored (already root; the
    real server prefixes "sudo -E").  "stdin_data" (or R1's "stdin") is
    written to stdin, which is then closed; without it stdin is /dev/null.
  * Exit codes of commands killed by a signal are 128+N (a Go executor may
    report -1).  "timeout" kills the group with SIGKILL and the call fails
    with -32000; the command's record keeps exit code 137.  A blocking exec
    whose socket closes keeps running; its cmd_id stays usable.
  * Every exec sends exec.start {cmd_id, pid}, exec.stdout/exec.stderr
    {data} and exec.done {cmd_id, output, exit_code}; a detached exec sends
    none.  exec_logs sends the same (start, replay, live, done).  Output text
    is UTF-8 decoded with U+FFFD for invalid bytes.  The replay buffer keeps
    the last 512 KiB per command; the blocking result's "output" is complete.
    Records of the last 1000 finished commands per pod are kept.
  * read: 200 KB means 204800 bytes; a longer text file gives its first
    204800 bytes (cut back to a whole UTF-8 character) and "truncated": true.
    Images (png, jpeg, gif, webp by magic bytes) come back whole, base64.
    Other binary files come back as lossy UTF-8 text.
  * read_stream: chunk_size defaults to 65536 and is clamped to 1..4 MiB; an
    empty file sends no chunk; no read_stream.done notification is sent.
    "type" is "image" by the same magic bytes, else "text".
  * write and write_binary write in place (the inode and mode of an existing
    file are kept; new files get 0644), then chmod to "mode" if given; both
    create missing parent directories (0755) and answer {"bytes_written": N}.
  * list_files reports entries as lstat sees them (a symlink to a directory
    has is_dir false), sorted by name; stat follows symlinks.
    modified_at is RFC 3339 in UTC with whole seconds.
  * kill on a finished command succeeds and does nothing.  Signal names are
    SIGTERM (default), SIGKILL, SIGINT, SIGHUP and any other name Python knows.
  * Messages up to 256 MiB are accepted, so binary files up to ~190 MiB fit
    in one write_binary.
  * Paths are resolved before they are used, so a symlink swapped between the
    resolution and the use could escape; tests do not race like that.

Costs of the real service that are not modelled (so the tests run in
seconds; the benchmark's relay adds the network back):
  * Distance: every REST request and JSON-RPC call answers at loopback
    speed; the real gateway is tens of milliseconds away, and each socket
    costs a TCP and TLS handshake.  Call counts, which the tests assert,
    are the same.
  * Pods: each state step takes --delay seconds (the tests use 0.05); a
    real pod is scheduled, pulled and started in seconds to minutes.
    Quotas and rate limits are not enforced.
  * exec: one nsenter and sh per command, a few milliseconds; the real
    server starts it through the pod's agent.

Needs root (as in CI): unprivileged bwrap nests a user namespace that nsenter
cannot join.  Only Debian's python3-aiohttp is needed besides bwrap and
util-linux (nsenter).

The jail, the keepers, fault injection, the stats and control routes, the
request log and the server skeleton are common.py's, which must stand next
to this file (it is imported from the script's own directory).
"""

import asyncio
import base64
import binascii
import codecs
import errno
import json
import os
import posixpath
import re
import shutil
import signal
import stat
import time
import uuid
from collections import Counter, OrderedDict, deque

from aiohttp import WSMsgType, web

import common
from common import kill_group, log

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


# ============================================================ path jail

class Jail(common.Jail):
    cwd = DEFAULT_CWD

    @staticmethod
    def absolute(path):
        """The sandbox path as an absolute, normalised path (display form)."""
        if not path.startswith("/"):
            path = DEFAULT_CWD + "/" + path
        path = posixpath.normpath(path)
        return "/" + path.lstrip("/")

    def make_parents(self, host):
        """mkdir -p of the parent of host path `host` (already resolved)."""
        rel = os.path.relpath(os.path.dirname(host), self.root)
        cur = self.root
        for comp in ([] if rel == "." else rel.split("/")):
            cur = os.path.join(cur, comp)
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                if os.path.islink(cur) or not os.path.isdir(cur):
                    raise OSError(errno.ENOTDIR, "not a directory")


# ============================================================ runtime

class HostLayout(common.HostLayout):
    def populate(self, root):
        """The directory skeleton of a fresh sandbox at `root`."""
        self.make_skeleton(root, (
            ("tmp", 0o1777), ("root", 0o700), ("home", 0o755), ("etc", 0o755),
            ("proc", 0o555), ("dev", 0o755), ("usr", 0o755), ("var/tmp", 0o1777),
        ), {
            "passwd": "root:x:0:0:root:/root:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": "root:x:0:\nnogroup:x:65534:\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
            "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        })


def signal_group_members(pgid, sig, spare):
    """Send `sig` to every process of process group `pgid` except `spare`.

    A command is "nsenter ... sh -c CMD": nsenter waits for the command it
    forked into the pid namespace and exits the way it did.  Sparing nsenter
    lets it report what really happened (a command that traps SIGTERM and
    exits 3 reports 3)."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == spare:
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            try:
                os.kill(int(name), sig)
            except ProcessLookupError:
                pass


def has_children(pid):
    """Whether process `pid` has forked a child that is still there."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return bool(f.read().split())
    except OSError:
        return False


async def inner_pid(host_pid):
    """The pid, inside the sandbox, of the command nsenter `host_pid` forks."""
    for _ in range(200):
        try:
            with open("/proc/%d/task/%d/children" % (host_pid, host_pid)) as f:
                children = f.read().split()
            if children:
                with open("/proc/%s/status" % children[0]) as f:
                    for line in f:
                        if line.startswith("NSpid:"):
                            return int(line.split()[-1])
        except (OSError, ValueError):
            return 0
        await asyncio.sleep(0.005)
    return 0


class Runtime(common.Keeper):
    """The namespaces of one running sandbox (its "pod")."""

    stop_on_cancel = True

    def __init__(self, sandbox, layout):
        super().__init__(layout)
        self.sb = sandbox

    @property
    def running(self):
        return self.init_pid is not None

    async def start(self):
        await self.start_keeper(self.sb.dir, self.sb.id[:63])

    async def spawn(self, command, cwd, env, stdin):
        """Run `command` with sh -c in the sandbox, in directory `cwd`.  The
        process (nsenter, which forks the real command into the pid
        namespace) leads its own session and process group."""
        if not self.running:
            raise RuntimeError("sandbox is not running")
        argv = self.nsenter_argv() + [
            "--", "/bin/sh", "-c", 'cd -- "$0" || exit 1; exec /bin/sh -c "$1"',
            cwd, command]
        return await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)


# ============================================================ commands

TIMEOUT = object()      # queue marker: the command's timeout fired
FINISHED = None         # queue marker: the command has exited


class Command:
    """One exec: its process, replay buffer, live subscribers, exit code."""

    def __init__(self, sandbox, text, cwd, env, stdin, timeout):
        self.id = uuid.uuid4().hex
        self.sb = sandbox
        self.text = text
        self.cwd = cwd
        self.env = env
        self.stdin = stdin
        self.timeout = timeout
        self.proc = None
        self.pid = 0
        self.started_at = time.time()
        self.exit_code = None
        self.timed_out = False
        self.events = deque()           # (stream, text, nbytes), newest last
        self.buffered = 0               # bytes in self.events
        self.subscribers = set()        # asyncio.Queue of events and markers
        self.tasks = []

    @property
    def finished(self):
        return self.exit_code is not None

    def subscribe(self):
        q = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q):
        self.subscribers.discard(q)

    def _publish(self, item):
        for q in list(self.subscribers):
            q.put_nowait(item)

    def _emit(self, stream, text, nbytes):
        """Record output in the ring buffer and hand it to live readers."""
        if not text:
            return
        self.events.append((stream, text, nbytes))
        self.buffered += nbytes
        while self.buffered > REPLAY_LIMIT and len(self.events) > 1:
            self.buffered -= self.events.popleft()[2]
        if self.buffered > REPLAY_LIMIT:      # one huge event: keep its tail
            s, t, n = self.events.popleft()
            raw = t.encode()[-REPLAY_LIMIT:]
            t = raw.decode("utf-8", "ignore")
            self.events.append((s, t, len(raw)))
            self.buffered = len(raw)
        self._publish((stream, text))

    def buffered_output(self):
        return "".join(t for _, t, _ in self.events)

    async def start(self, runtime):
        stdin = asyncio.subprocess.PIPE if self.stdin is not None \
            else asyncio.subprocess.DEVNULL
        self.proc = await runtime.spawn(self.text, self.cwd, self.env, stdin)
        self.tasks.append(asyncio.create_task(self._finish()))
        if self.stdin is not None:
            self.tasks.append(asyncio.create_task(self._feed(self.stdin.encode())))
        if self.timeout:
            self.tasks.append(asyncio.create_task(self._expire(self.timeout)))
        self.pid = await inner_pid(self.proc.pid)

    async def _feed(self, data):
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            try:
                self.proc.stdin.close()
            except (ConnectionError, BrokenPipeError):
                pass

    async def _pump(self, reader, stream):
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            self._emit(stream, decoder.decode(chunk), len(chunk))
        self._emit(stream, decoder.decode(b"", final=True), 0)

    async def _finish(self):
        await asyncio.gather(self._pump(self.proc.stdout, "stdout"),
                             self._pump(self.proc.stderr, "stderr"))
        rc = await self.proc.wait()
        # nsenter re-raises the command's fatal signal on itself; report it
        # the way a shell would (128+N).
        self.exit_code = rc if rc >= 0 else 128 - rc
        self.sb.command_finished(self)
        self._publish(FINISHED)

    async def _expire(self, seconds):
        await asyncio.sleep(seconds)
        if not self.finished:
            self.timed_out = True
            kill_group(self.proc.pid, signal.SIGKILL)
            self._publish(TIMEOUT)

    async def signal(self, sig):
        """Signal the command's process group.  The command is nsenter's
        child: a kill that comes before nsenter has forked it waits for it
        (a bounded while), or it would reach no one."""
        if self.proc is None:
            return
        for _ in range(1000):
            if self.finished or has_children(self.proc.pid):
                break
            await asyncio.sleep(0.005)
        if not self.finished:
            signal_group_members(self.proc.pid, sig, spare=self.proc.pid)

    def kill_all(self):
        if self.proc is not None and self.proc.returncode is None:
            kill_group(self.proc.pid, signal.SIGKILL)


# ============================================================ sandbox

class Sandbox:
    def __init__(self, emu, body, seq):
        now = time.time()
        self.emu = emu
        self.seq = seq
        self.id = str(uuid.uuid4())
        self.user_id = body["user_id"]
        spec = dict(DEFAULT_SPEC)
        spec.update(body.get("spec") or {})
        self.spec = spec
        self.labels = dict(body.get("labels") or {})
        self.payloads = list(body.get("payloads") or [])
        self.env = payload_env(self.payloads)
        self.status = "creating"
        self.created_at = now
        self.allocated_at = None
        ttl_hours = body.get("ttl_hours") or 0
        self.expire_at = now + (ttl_hours * 3600 if ttl_hours else DEFAULT_TTL)
        self.last_active_at = now
        self.dir = os.path.join(emu.root, self.id)
        self.jail = Jail(self.dir)
        self.runtime = Runtime(self, emu.layout)
        self.commands = OrderedDict()   # cmd_id -> Command (this pod's)
        self.conns = set()              # open WebSocket connections
        self.task = None                # lifecycle step under way
        self.stopping = False           # a stop has been accepted
        self.up = False                 # the pod's keeper is running
        self.polled = False             # a Get/List has reported "creating"

    # ---------------------------------------------------------- status

    def settle(self):
        """Apply the creating -> active step once its conditions hold."""
        if self.status == "creating" and self.up and self.polled:
            self.status = "active"
            self.allocated_at = time.time()

    def info(self, poll=True):
        """The Info object; a `poll` that reports "creating" lets the next
        one report "active" (once the pod is up)."""
        self.settle()
        if poll and self.status == "creating":
            self.polled = True
        ip_tail = self.seq % 65000
        d = {
            "id": self.id, "user_id": self.user_id,
            "namespace": "vtrix-%s" % re.sub(r"[^a-z0-9-]", "-", self.emu.project.lower()),
            "status": self.status,
            "ip": "10.244.%d.%d" % (ip_tail // 250, ip_tail % 250 + 2),
            "preview_url": "https://%s.preview.vtrix.localhost" % self.id,
            "preview_host": "%s.preview.vtrix.localhost" % self.id,
            "port": 8080,
            "image_tag": self.spec.get("image") or DEFAULT_IMAGE,
            "spec": self.spec,
            "created_at": rfc3339(self.created_at),
            "allocated_at": rfc3339(self.allocated_at) if self.allocated_at else "",
            "expire_at": rfc3339(self.expire_at),
            "last_active_at": rfc3339(self.last_active_at),
        }
        if self.labels:
            d["labels"] = self.labels
        return d

    def touch(self):
        self.last_active_at = time.time()

    # -------------------------------------------------------- commands

    def command_env(self, extra):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "USER": "root", "LOGNAME": "root",
               "HOSTNAME": self.id, "LANG": "C.UTF-8"}
        env.update(self.env)
        env.update(extra or {})
        return env

    def command_finished(self, cmd):
        """Forget the oldest finished records beyond KEPT_COMMANDS."""
        done = [c for c in self.commands.values() if c.finished]
        for c in done[:max(0, len(done) - KEPT_COMMANDS)]:
            self.commands.pop(c.id, None)

    # ------------------------------------------------------- lifecycle

    async def go_down(self):
        """The pod goes away: sockets closed, every process killed."""
        for conn in list(self.conns):
            conn.close_soon(1001, "sandbox pod went away")
        for cmd in list(self.commands.values()):
            cmd.kill_all()
        self.up = False
        await self.runtime.stop()
        self.commands.clear()


def payload_env(payloads):
    """Environment the payloads give commands: "/api/v1/env" bodies and
    (R3+) every payload's "envs"."""
    env = {}
    for p in payloads:
        if p.get("api") == "/api/v1/env" and isinstance(p.get("body"), dict):
            env.update({k: str(v) for k, v in p["body"].items()})
        if isinstance(p.get("envs"), dict):
            env.update({k: str(v) for k, v in p["envs"].items()})
    return env


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


# ============================================================ emulator

class Emulator(common.Service):
    def __init__(self, args):
        super().__init__(args.root)
        self.token = args.token
        self.project = args.project
        self.delay = args.delay
        self.layout = HostLayout()
        self.sandboxes = OrderedDict()
        self.seq = 0
        self.rolling = None
        self.reaper = None

    def find(self, key):
        sb = self.sandboxes.get(key)
        if sb is not None:
            return sb
        for sb in self.sandboxes.values():
            if sb.labels.get("name") == key:
                return sb
        return None

    # ---------------------------------------------------------- checks

    def auth_error(self, request, allow_subprotocol=False):
        """An AtlasError if the token or project header is wrong, else None.

        On the WebSocket upgrade the token may come as the subprotocol
        "bearer.TOKEN" instead (the Node SDK's way, meant for browsers, which
        cannot set headers); an upgrade authenticated that way may also lack
        the project header, but a wrong one is still refused."""
        token = None
        by_subprotocol = False
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
        if token is None and allow_subprotocol:
            for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
                proto = proto.strip()
                if proto.startswith("bearer."):
                    token = proto[len("bearer."):]
                    by_subprotocol = True
        if token is None:
            return AtlasError(E_UNAUTHORIZED, "missing bearer token")
        if token != self.token:
            return AtlasError(E_UNAUTHORIZED, "invalid token")
        project = request.headers.get("X-Project-ID") or \
            request.headers.get("X-Service-ID")
        if not project:
            if by_subprotocol:
                return None
            return AtlasError(E_FORBIDDEN, "missing X-Project-ID header")
        if project != self.project:
            return AtlasError(E_FORBIDDEN, "project %s is not allowed" % project)
        return None

    # ------------------------------------------------------- lifecycle

    def launch(self, sb, coro):
        if sb.task is not None and not sb.task.done():
            sb.task.cancel()
        sb.task = asyncio.create_task(coro)

    async def bring_up(self, sb):
        """creating: the pod starts after one delay."""
        await asyncio.sleep(self.delay)
        try:
            await sb.runtime.start()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure fails the sandbox
            log("sandbox %s failed to start: %s" % (sb.id, e))
            sb.status = "failed"
            return
        sb.up = True

    async def restart(self, sb):
        """The pod is replaced: down now, "creating" until up and polled."""
        await sb.go_down()
        sb.status = "creating"
        sb.polled = False
        self.launch(sb, self.bring_up(sb))

    async def stop(self, sb):
        await asyncio.sleep(self.delay)
        await sb.go_down()
        sb.status = "stopped"
        sb.stopping = False

    async def destroy(self, sb):
        if sb.task is not None and not sb.task.done():
            sb.task.cancel()
        sb.status = "destroying"
        sb.stopping = False
        await sb.go_down()
        sb.task = asyncio.create_task(self._remove(sb))

    async def _remove(self, sb):
        await asyncio.sleep(self.delay)
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: shutil.rmtree(sb.dir, ignore_errors=True))
        self.sandboxes.pop(sb.id, None)

    async def reap(self):
        """Destroy sandboxes whose expire_at has passed."""
        while True:
            await asyncio.sleep(0.5)
            now = time.time()
            for sb in list(self.sandboxes.values()):
                if sb.status != "destroying" and sb.expire_at <= now:
                    log("sandbox %s expired" % sb.id)
                    await self.destroy(sb)

    async def shutdown(self):
        if self.reaper:
            self.reaper.cancel()
        closing = []
        for sb in list(self.sandboxes.values()):
            if sb.task is not None:
                sb.task.cancel()
            for conn in list(sb.conns):
                closing.append(conn.close_soon(1001, "emulator shutting down"))
            for cmd in list(sb.commands.values()):
                cmd.kill_all()
            await sb.runtime.stop()
        if closing:
            await asyncio.wait(closing, timeout=3)


# ============================================================ REST

def envelope(request, code=0, message="ok", data=None, status=None):
    body = {"code": code, "message": message, "data": data,
            "request_id": request.get("request_id") or uuid.uuid4().hex}
    if status is None:
        status = 200 if code == 0 else HTTP_STATUS_OF.get(code, 200)
    return web.Response(status=status, content_type="application/json",
                        charset="utf-8", text=json.dumps(body, ensure_ascii=False),
                        headers={"X-Request-ID": body["request_id"]})


def atlas_error(request, e):
    return envelope(request, e.code, e.message)


async def read_body(request, required=False):
    """The JSON body as a dict ({} when there is none)."""
    text = await request.text()
    if not text.strip():
        if required:
            raise AtlasError(E_BAD_REQUEST, "request body is required")
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        raise AtlasError(E_BAD_REQUEST, "invalid JSON body")
    if not isinstance(body, dict):
        raise AtlasError(E_BAD_REQUEST, "request body must be a JSON object")
    return body


def check_str_map(value, field):
    if value is None:
        return
    if not isinstance(value, dict) or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise AtlasError(E_BAD_REQUEST, "%s must be an object of strings" % field)


def check_spec(spec):
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise AtlasError(E_BAD_REQUEST, "spec must be an object")
    for key, pattern in (("cpu", CPU_RE), ("requests_cpu", CPU_RE),
                         ("memory", MEMORY_RE), ("requests_memory", MEMORY_RE),
                         ("image", None)):
        v = spec.get(key)
        if v is None or v == "":
            continue
        if not isinstance(v, str) or (pattern and not pattern.match(v)):
            raise AtlasError(E_BAD_REQUEST, "invalid spec.%s: %r" % (key, v))


def check_payloads(payloads):
    if payloads is None:
        return
    if not isinstance(payloads, list) or not all(
            isinstance(p, dict) and isinstance(p.get("api"), str) and p["api"]
            for p in payloads):
        raise AtlasError(E_BAD_REQUEST, "payloads must be a list of {api, body}")
    for p in payloads:
        if p.get("envs") is not None and not isinstance(p["envs"], dict):
            raise AtlasError(E_BAD_REQUEST, "payload envs must be an object")


def int_field(body, key, default=0):
    v = body.get(key, default)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool):
        raise AtlasError(E_BAD_REQUEST, "%s must be an integer" % key)
    return v


class Rest:
    def __init__(self, emu):
        self.emu = emu

    def _sandbox(self, request):
        sb = self.emu.sandboxes.get(request.match_info["id"])
        if sb is None:
            raise AtlasError(E_NOT_FOUND, "sandbox %s not found" % request.match_info["id"])
        return sb

    def _guard_change(self, sb, action):
        """Refuse a change to a sandbox that is not active (or is stopping)."""
        sb.settle()
        if sb.status == "destroying":
            raise AtlasError(E_CONFLICT, "sandbox %s is being destroyed" % sb.id)
        if sb.stopping:
            raise AtlasError(E_CONFLICT, "sandbox %s is stopping" % sb.id)
        if sb.status != "active":
            raise AtlasError(E_CONFLICT, "cannot %s sandbox in status %s"
                             % (action, sb.status))

    # ----------------------------------------------------------- create

    async def create(self, request, body=None):
        if body is None:
            body = await read_body(request, required=True)
        user_id = body.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise AtlasError(E_BAD_REQUEST, "user_id is required")
        check_spec(body.get("spec"))
        check_str_map(body.get("labels"), "labels")
        check_payloads(body.get("payloads"))
        if int_field(body, "ttl_hours") < 0:
            raise AtlasError(E_BAD_REQUEST, "ttl_hours must not be negative")
        self.emu.seq += 1
        sb = Sandbox(self.emu, body, self.emu.seq)
        await asyncio.get_running_loop().run_in_executor(None, self._make_dir, sb)
        self.emu.sandboxes[sb.id] = sb
        self.emu.launch(sb, self.emu.bring_up(sb))
        return envelope(request, data={"sandbox": sb.info(poll=False)})

    def _make_dir(self, sb):
        os.makedirs(sb.dir)
        self.emu.layout.populate(sb.dir)

    async def create_or_list(self, request):
        """R4's POST /api/v1/sandboxes: a list if the body looks like one."""
        body = await read_body(request)
        if not body or any(k in body for k in ("limit", "offset", "status")):
            return self._list(request, body)
        return await self.create(request, body)

    # ------------------------------------------------------------- list

    async def list_post(self, request):
        return self._list(request, await read_body(request))

    async def list_get(self, request):
        q = request.query
        body = {}
        for key in ("user_id", "status"):
            if q.get(key):
                body[key] = q[key]
        for key in ("limit", "offset"):
            if q.get(key):
                try:
                    body[key] = int(q[key])
                except ValueError:
                    raise AtlasError(E_BAD_REQUEST, "%s must be an integer" % key)
        return self._list(request, body)

    def _list(self, request, body):
        limit = int_field(body, "limit")
        offset = int_field(body, "offset")
        if limit < 0 or offset < 0:
            raise AtlasError(E_BAD_REQUEST, "limit and offset must not be negative")
        limit = min(limit or LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT)
        for key in ("user_id", "status"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise AtlasError(E_BAD_REQUEST, "%s must be a string" % key)
        items = sorted(self.emu.sandboxes.values(), key=lambda s: s.seq)
        for sb in items:
            sb.settle()
        if body.get("user_id"):
            items = [s for s in items if s.user_id == body["user_id"]]
        if body.get("status"):
            items = [s for s in items if s.status == body["status"]]
        page = items[offset:offset + limit]
        return envelope(request, data={
            "items": [s.info() for s in page],
            "pagination": {"total": len(items), "limit": limit, "offset": offset,
                           "has_more": offset + len(page) < len(items)}})

    # ---------------------------------------------------- get / delete

    async def get(self, request):
        # Deletion is asynchronous: Get answers "destroying" for a while.
        return envelope(request, data=self._sandbox(request).info())

    async def delete(self, request):
        sb = self._sandbox(request)
        if sb.status == "destroying":
            raise AtlasError(E_CONFLICT, "sandbox %s is already being destroyed" % sb.id)
        await self.emu.destroy(sb)
        return envelope(request, data={"id": sb.id, "status": sb.status})

    # -------------------------------------------------------- lifecycle

    async def stop(self, request):
        await read_body(request)
        sb = self._sandbox(request)
        self._guard_change(sb, "stop")
        sb.stopping = True
        self.emu.launch(sb, self.emu.stop(sb))
        return envelope(request, data={"id": sb.id, "status": sb.status})

    async def start(self, request):
        await read_body(request)
        sb = self._sandbox(request)
        sb.settle()
        if sb.status != "stopped" or sb.stopping:
            raise AtlasError(E_CONFLICT, "cannot start sandbox in status %s"
                             % ("stopping" if sb.stopping else sb.status))
        sb.status = "creating"
        sb.polled = False
        self.emu.launch(sb, self.emu.bring_up(sb))
        return envelope(request, data={"id": sb.id, "status": sb.status})

    async def restart(self, request):
        await read_body(request)
        sb = self._sandbox(request)
        self._guard_change(sb, "restart")
        await self.emu.restart(sb)
        return envelope(request, data={"id": sb.id, "status": sb.status})

    async def extend(self, request):
        body = await read_body(request)
        sb = self._sandbox(request)
        if sb.status == "destroying":
            raise AtlasError(E_CONFLICT, "sandbox %s is being destroyed" % sb.id)
        if "seconds" in body:
            seconds = int_field(body, "seconds")
            if seconds < 0 or seconds > MAX_EXTEND_SECONDS:
                raise AtlasError(E_BAD_REQUEST, "seconds must be between 0 and %d"
                                 % MAX_EXTEND_SECONDS)
        else:
            hours = int_field(body, "hours")
            if hours < 0:
                raise AtlasError(E_BAD_REQUEST, "hours must not be negative")
            seconds = hours * 3600
        sb.expire_at += seconds or DEFAULT_TTL
        return envelope(request, data={"id": sb.id, "expire_at": rfc3339(sb.expire_at)})

    async def update(self, request):
        body = await read_body(request)
        sb = self._sandbox(request)
        if not any(body.get(k) for k in ("spec", "image", "payloads")):
            raise AtlasError(E_BAD_REQUEST, "nothing to update: give spec, image or payloads")
        check_spec(body.get("spec"))
        check_payloads(body.get("payloads"))
        if body.get("image") is not None and not isinstance(body["image"], str):
            raise AtlasError(E_BAD_REQUEST, "image must be a string")
        self._guard_change(sb, "update")
        if body.get("spec"):
            sb.spec.update({k: v for k, v in body["spec"].items() if v})
        if body.get("image"):
            sb.spec["image"] = body["image"]
        if body.get("payloads"):
            sb.payloads = list(body["payloads"])
            sb.env = payload_env(sb.payloads)
        await self.emu.restart(sb)
        return envelope(request, data={"id": sb.id, "status": sb.status})

    async def configure(self, request):
        body = await read_body(request)
        check_payloads(body.get("payloads"))
        sb = self._sandbox(request)
        self._guard_change(sb, "configure")
        # Given payloads apply to this restart only; stored ones stay.
        payloads = body.get("payloads") or sb.payloads
        sb.env = payload_env(payloads)
        await self.emu.restart(sb)
        return envelope(request, data={"id": sb.id, "status": sb.status})

    # ------------------------------------------------------------ admin

    async def pool_status(self, request):
        counts = Counter(sb.status for sb in self.emu.sandboxes.values())
        total = len(self.emu.sandboxes)
        return envelope(request, data={
            "total": total, "warm": 0, "active": counts["active"],
            "creating": counts["creating"], "deleting": counts["destroying"],
            "deleted": 0, "warm_pool_size": 0, "max_total": 100,
            "utilization": counts["active"] / 100.0, "warm_ratio": 0.0,
            "healthy": True})

    async def rolling_start(self, request):
        body = await read_body(request)
        now = rfc3339(time.time())
        n = sum(1 for sb in self.emu.sandboxes.values() if sb.status == "active")
        self.emu.rolling = {
            "id": uuid.uuid4().hex, "phase": "completed",
            "target_image": body.get("image") or DEFAULT_IMAGE, "progress": 100,
            "warm_total": 0, "warm_updated": 0, "active_total": n,
            "active_updated": n, "started_at": now, "completed_at": now,
            "duration": "0s", "message": "nothing to roll in the emulator"}
        return envelope(request, data=self.emu.rolling)

    async def rolling_status(self, request):
        return envelope(request, data=self.emu.rolling or {
            "phase": "idle", "progress": 0, "warm_total": 0, "warm_updated": 0,
            "active_total": 0, "active_updated": 0})

    async def rolling_cancel(self, request):
        raise AtlasError(E_CONFLICT, "no rolling update in progress")


def rest_handler(fn):
    async def wrapped(request):
        try:
            return await fn(request)
        except AtlasError as e:
            return atlas_error(request, e)
    return wrapped


# ============================================================ WebSocket

class Conn:
    """One WebSocket connection to a sandbox."""

    def __init__(self, emu, sb, ws, transport):
        self.emu = emu
        self.sb = sb
        self.ws = ws
        self.transport = transport
        self.lock = asyncio.Lock()
        self.tasks = set()
        self.closed = False
        self.closer = None

    async def send(self, obj):
        if self.closed:
            raise ConnectionResetError("socket closed")
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        async with self.lock:
            if self.closed or self.ws.closed:
                raise ConnectionResetError("socket closed")
            await self.ws.send_str(data)

    def drop(self):
        """Abort the TCP connection: no close frame, no answer."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close_soon(self, code, message):
        """Close with a close frame, in the background (returns the task)."""
        if self.closer is None:
            self.closed = True
            self.closer = asyncio.create_task(
                self.ws.close(code=code, message=message.encode()))
        return self.closer

    def dispatch(self, text):
        task = asyncio.create_task(self.run_call(text))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run_call(self, text):
        t0 = time.monotonic()
        try:
            if len(text) > (1 << 20):
                msg = await asyncio.get_running_loop().run_in_executor(
                    None, json.loads, text)
            else:
                msg = json.loads(text)
        except ValueError:
            self.emu.count("WS (unparsable)")
            await self._try_send({"jsonrpc": "2.0", "id": None, "error": {
                "code": RPC_PARSE, "message": "parse error"}})
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or \
                not isinstance(msg.get("method"), str) or \
                isinstance(rid, bool) or not isinstance(rid, (int, str, type(None))):
            self.emu.count("WS (invalid)")
            await self._try_send({"jsonrpc": "2.0", "id": rid if not isinstance(
                rid, (dict, list, bool)) else None, "error": {
                "code": RPC_INVALID, "message": "invalid request"}})
            return
        method = msg["method"]
        self.emu.count("WS " + (method if method in RPC_METHODS else "(unknown)"))
        if "id" not in msg or rid is None:
            log("WS %s %s (notification ignored)" % (self.sb.id, method))
            return
        call = Call(self, rid, self.emu.take_fault(
            ("ws_drop", "ws_slow", "ws_error"), method=method))
        outcome = "ok"
        try:
            if call.fault is not None and call.fault["kind"] == "ws_error":
                raise RpcError(int(call.fault.get("code") or RPC_INTERNAL),
                               "injected fault")
            handler = RPC_METHODS.get(method)
            if handler is None:
                raise RpcError(RPC_NO_METHOD, "method not found: %s" % method)
            params = msg.get("params")
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise RpcError(RPC_PARAMS, "params must be an object")
            self.sb.settle()
            if self.sb.status != "active" or not self.sb.up:
                raise RpcError(RPC_FAILED, "sandbox is not active (status %s)"
                               % self.sb.status)
            self.sb.touch()
            result = await handler(self.sb, call, params)
            await call.answer({"jsonrpc": "2.0", "id": rid, "result": result})
        except RpcError as e:
            outcome = "error %d" % e.code
            try:
                await call.answer({"jsonrpc": "2.0", "id": rid, "error": {
                    "code": e.code, "message": e.message}})
            except (Dropped, ConnectionError):
                outcome += " (not sent)"
        except Dropped:
            outcome = "dropped (fault)"
        except ConnectionError:
            outcome = "socket closed"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as e:  # noqa: BLE001 - a bug must not kill the socket
            outcome = "internal error"
            log("WS %s %s: %r" % (self.sb.id, method, e))
            await self._try_send({"jsonrpc": "2.0", "id": rid, "error": {
                "code": RPC_INTERNAL, "message": "internal error: %s" % e}})
        finally:
            log("WS %s %s id=%s %s %.1fms" % (self.sb.id, method, rid, outcome,
                                              (time.monotonic() - t0) * 1000))

    async def _try_send(self, obj):
        try:
            await self.send(obj)
        except ConnectionError:
            pass


class Call:
    """One JSON-RPC call in flight: its notifications and its answer."""

    def __init__(self, conn, rid, fault):
        self.conn = conn
        self.id = rid
        self.fault = fault
        self.kind = fault["kind"] if fault else None

    async def notify(self, method, **params):
        params = dict(id=self.id, **params)
        await self.conn.send({"jsonrpc": "2.0", "method": method, "params": params})
        if self.kind == "ws_drop":
            self.conn.drop()
            raise Dropped()

    async def answer(self, obj):
        if self.kind == "ws_slow":
            await asyncio.sleep(float(self.fault.get("delay") or 1.0))
        if self.kind == "ws_drop":
            self.conn.drop()
            raise Dropped()
        await self.conn.send(obj)


# ------------------------------------------------------------ params

def p_str(params, key, required=True, default=None):
    v = params.get(key)
    if v is None:
        if required:
            raise RpcError(RPC_PARAMS, "invalid params: %s is required" % key)
        return default
    if not isinstance(v, str):
        raise RpcError(RPC_PARAMS, "invalid params: %s must be a string" % key)
    return v


def p_uint(params, key, default=None):
    v = params.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
        raise RpcError(RPC_PARAMS, "invalid params: %s must be a non-negative integer" % key)
    return int(v)


def p_path(params):
    path = p_str(params, "path")
    if not path:
        raise RpcError(RPC_PARAMS, "invalid params: path is empty")
    return path


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


# ------------------------------------------------------------ exec

async def rpc_exec(sb, call, params):
    command = p_str(params, "command")
    if not command.strip():
        raise RpcError(RPC_PARAMS, "invalid params: command is empty")
    env = params.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
        raise RpcError(RPC_PARAMS, "invalid params: env must be an object")
    env = {k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()}
    cwd = p_str(params, "working_dir", required=False) or DEFAULT_CWD
    timeout = p_uint(params, "timeout", 0)
    stdin = p_str(params, "stdin_data", required=False)
    if stdin is None:
        stdin = p_str(params, "stdin", required=False)
    detached = bool(params.get("detached"))
    # "sudo": commands already run as root.

    try:
        st = os.stat(sb.jail.host(cwd))
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "not a directory")
    except OSError as e:
        raise RpcError(RPC_FAILED, "chdir %s: %s" % (cwd, os.strerror(e.errno).lower()))

    cmd = Command(sb, command, Jail.absolute(cwd), sb.command_env(env), stdin, timeout)
    sb.commands[cmd.id] = cmd
    q = None if detached else cmd.subscribe()
    try:
        await cmd.start(sb.runtime)
    except Exception as e:  # noqa: BLE001
        sb.commands.pop(cmd.id, None)
        raise RpcError(RPC_FAILED, "cannot start command: %s" % e)
    started = rfc3339(cmd.started_at)
    if detached:
        return {"cmd_id": cmd.id, "pid": cmd.pid, "started_at": started}

    try:
        await call.notify("exec.start", cmd_id=cmd.id, pid=cmd.pid)
        output = []
        while True:
            item = await q.get()
            if item is FINISHED:
                break
            if item is TIMEOUT:
                raise RpcError(RPC_FAILED, "command timed out after %d seconds" % timeout)
            stream, text = item
            output.append(text)
            await call.notify("exec." + stream, data=text)
    finally:
        cmd.unsubscribe(q)
    output = "".join(output)
    await call.notify("exec.done", cmd_id=cmd.id, output=output, exit_code=cmd.exit_code)
    return {"cmd_id": cmd.id, "output": output, "exit_code": cmd.exit_code,
            "started_at": started}


def find_command(sb, params):
    cmd_id = p_str(params, "cmd_id")
    cmd = sb.commands.get(cmd_id)
    if cmd is None:
        raise RpcError(RPC_FAILED, "command not found: %s" % cmd_id)
    return cmd


async def rpc_exec_logs(sb, call, params):
    cmd = find_command(sb, params)
    # Snapshot and subscription in one step, so nothing is lost or doubled.
    replay = [(s, t) for s, t, _ in cmd.events]
    q = None if cmd.finished else cmd.subscribe()
    try:
        await call.notify("exec.start", cmd_id=cmd.id, pid=cmd.pid)
        for stream, text in replay:
            await call.notify("exec." + stream, data=text)
        while q is not None:
            item = await q.get()
            if item is FINISHED:
                break
            if item is TIMEOUT:
                continue
            stream, text = item
            await call.notify("exec." + stream, data=text)
    finally:
        if q is not None:
            cmd.unsubscribe(q)
    output = cmd.buffered_output()
    await call.notify("exec.done", cmd_id=cmd.id, output=output, exit_code=cmd.exit_code)
    return {"cmd_id": cmd.id, "output": output, "exit_code": cmd.exit_code,
            "started_at": rfc3339(cmd.started_at)}


async def rpc_kill(sb, call, params):
    cmd = find_command(sb, params)
    name = p_str(params, "signal", required=False) or "SIGTERM"
    key = name.upper()
    if not key.startswith("SIG"):
        key = "SIG" + key
    try:
        sig = signal.Signals[key]
    except KeyError:
        raise RpcError(RPC_PARAMS, "invalid params: unknown signal %s" % name)
    await cmd.signal(sig)
    return {"cmd_id": cmd.id, "signal": sig.name}


# ------------------------------------------------------------ files

def open_regular(sb, path):
    """(fd, stat) of a regular file for reading; RpcError otherwise."""
    try:
        fd = os.open(sb.jail.host(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise os_rpc_error(e, path)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "is a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise RpcError(RPC_FAILED, "%s: %s" % (path, what))
    return fd, st


def read_whole(fd, size):
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, max(size - offset, 0) + 65536, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def do_read(sb, path):
    fd, st = open_regular(sb, path)
    try:
        head = os.pread(fd, READ_LIMIT + 1, 0)
        mime = image_mime(head)
        if mime:
            data = head if len(head) <= READ_LIMIT else read_whole(fd, st.st_size)
            return {"type": "image", "mime_type": mime,
                    "data": base64.b64encode(data).decode()}
    finally:
        os.close(fd)
    truncated = len(head) > READ_LIMIT
    if truncated:
        head = utf8_cut(head[:READ_LIMIT])
    return {"type": "text", "content": head.decode("utf-8", "replace"),
            "truncated": truncated}


async def rpc_read(sb, call, params):
    return await in_thread(do_read, sb, p_path(params))


def write_bytes(sb, path, data, mode=None):
    """os.WriteFile-like: create (0644) or truncate in place, mkdir -p the
    parents first; then chmod to `mode` if given."""
    try:
        host = sb.jail.host(path)
        sb.jail.make_parents(host)
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o644)
    except IsADirectoryError:
        raise RpcError(RPC_FAILED, "%s: is a directory" % path)
    except OSError as e:
        raise os_rpc_error(e, path) if e.errno != errno.ENOENT else \
            RpcError(RPC_FAILED, "%s: %s" % (path, os.strerror(e.errno).lower()))
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view[:1 << 24])
            view = view[n:]
        if mode is not None:
            os.fchmod(fd, mode & 0o7777)
    except OSError as e:
        raise os_rpc_error(e, path)
    finally:
        os.close(fd)
    return {"bytes_written": len(data)}


async def rpc_write(sb, call, params):
    path = p_path(params)
    content = p_str(params, "content", required=False, default="")
    return await in_thread(write_bytes, sb, path, content.encode("utf-8", "surrogatepass"))


def do_write_binary(sb, path, data, mode):
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RpcError(RPC_PARAMS, "invalid params: data is not valid base64")
    return write_bytes(sb, path, raw, mode)


async def rpc_write_binary(sb, call, params):
    path = p_path(params)
    data = p_str(params, "data", required=False, default="")
    mode = p_uint(params, "mode")
    if mode is not None and mode > 0o7777:
        raise RpcError(RPC_PARAMS, "invalid params: mode out of range")
    return await in_thread(do_write_binary, sb, path, data, mode or None)


def do_edit(sb, path, old, new):
    fd, st = open_regular(sb, path)
    try:
        raw = read_whole(fd, st.st_size)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RpcError(RPC_FAILED, "%s: not a UTF-8 text file" % path)
    n = text.count(old)
    if n == 0:
        raise RpcError(RPC_FAILED, "old_text not found in %s" % path)
    if n > 1:
        raise RpcError(RPC_FAILED, "old_text found %d times in %s; it must be unique"
                       % (n, path))
    write_bytes(sb, path, text.replace(old, new, 1).encode("utf-8"))
    return {"message": "Successfully replaced text in %s" % path}


async def rpc_edit(sb, call, params):
    path = p_path(params)
    old = p_str(params, "old_text")
    new = p_str(params, "new_text", required=False, default="")
    if not old:
        raise RpcError(RPC_PARAMS, "invalid params: old_text is empty")
    return await in_thread(do_edit, sb, path, old, new)


def mtime(st):
    return rfc3339(st.st_mtime)


def do_list(sb, path):
    try:
        host = sb.jail.host(path)
        st = os.stat(host)
    except OSError as e:
        raise os_rpc_error(e, path)
    if not stat.S_ISDIR(st.st_mode):
        raise RpcError(RPC_FAILED, "%s: not a directory" % path)
    shown = Jail.absolute(path)
    entries = []
    try:
        with os.scandir(host) as it:
            for entry in it:
                try:
                    est = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                name = json_text(entry.name)
                entries.append({"name": name, "path": posixpath.join(shown, name),
                                "size": est.st_size,
                                "is_dir": stat.S_ISDIR(est.st_mode),
                                "modified_at": mtime(est)})
    except OSError as e:
        raise os_rpc_error(e, path)
    entries.sort(key=lambda e: e["name"])
    return entries


async def rpc_list_files(sb, call, params):
    return await in_thread(do_list, sb, p_path(params))


def do_stat(sb, path):
    try:
        st = os.stat(sb.jail.host(path))
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return {"exists": False, "size": 0, "is_dir": False, "is_file": False,
                    "modified_at": None}
        raise os_rpc_error(e, path)
    return {"exists": True, "size": st.st_size, "is_dir": stat.S_ISDIR(st.st_mode),
            "is_file": stat.S_ISREG(st.st_mode), "modified_at": mtime(st)}


async def rpc_stat(sb, call, params):
    return await in_thread(do_stat, sb, p_path(params))


async def rpc_read_stream(sb, call, params):
    path = p_path(params)
    chunk = p_uint(params, "chunk_size", 0) or STREAM_CHUNK
    chunk = max(1, min(chunk, STREAM_CHUNK_MAX))
    # Read in blocks of whole chunks (at least 1 MiB) to keep thread hops few.
    block = chunk * max(1, (1 << 20) // chunk)
    fd, _ = await in_thread(open_regular, sb, path)
    total = 0
    mime = None
    try:
        while True:
            data = await in_thread(os.pread, fd, block, total)
            if not data:
                break
            if total == 0:
                mime = image_mime(data[:16])
            for i in range(0, len(data), chunk):
                piece = data[i:i + chunk]
                await call.notify("read_stream.chunk",
                                  data=base64.b64encode(piece).decode())
            total += len(data)
    finally:
        os.close(fd)
    result = {"type": "image" if mime else "text", "total_bytes": total}
    if mime:
        result["mime_type"] = mime
    return result


RPC_METHODS = {
    "exec": rpc_exec, "exec_logs": rpc_exec_logs, "kill": rpc_kill,
    "read": rpc_read, "write": rpc_write, "edit": rpc_edit,
    "write_binary": rpc_write_binary, "list_files": rpc_list_files,
    "stat": rpc_stat, "read_stream": rpc_read_stream,
}


async def ws_connect(emu, request):
    """GET .../{id}/connect: checks as for REST, then the JSON-RPC loop."""
    bad = emu.auth_error(request, allow_subprotocol=True)
    if bad is not None:
        return atlas_error(request, bad)
    sb = emu.sandboxes.get(request.match_info["id"])
    if sb is None or sb.status == "destroying":
        return atlas_error(request, AtlasError(
            E_NOT_FOUND, "sandbox %s not found" % request.match_info["id"]))
    offered = [p.strip() for p in
               request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    ws = web.WebSocketResponse(protocols=offered, max_msg_size=WS_MAX_MESSAGE,
                               compress=False)
    if not ws.can_prepare(request).ok:
        return atlas_error(request, AtlasError(E_BAD_REQUEST, "expected a WebSocket upgrade"))
    await ws.prepare(request)
    conn = Conn(emu, sb, ws, request.transport)
    sb.conns.add(conn)
    sb.touch()
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                conn.dispatch(msg.data)
            elif msg.type == WSMsgType.BINARY:
                log("WS %s binary frame ignored" % sb.id)
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        conn.closed = True
        sb.conns.discard(conn)
        for task in list(conn.tasks):
            task.cancel()
    if conn.closer is not None:
        # Let close_soon() send its code before aiohttp closes with 1000.
        try:
            await conn.closer
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass
    return ws


# ============================================================ control routes

class Control(common.Control):
    fault_kinds = ("status", "slow", "drop", "error_code", "ws_drop", "ws_slow",
                   "ws_error")

    def routes(self):
        return super().routes() + [
            ("GET", "/_emu/sandbox/{name}", self.sandbox),
            ("POST", "/_emu/sandbox/{name}/expire", self.expire)]

    async def sandbox(self, request):
        sb = self.emu.find(request.match_info["name"])
        if sb is None:
            return self.json({"error": "no such sandbox"}, 404)
        sb.settle()
        return self.json({"id": sb.id, "dir": sb.dir, "state": sb.status})

    async def expire(self, request):
        sb = self.emu.find(request.match_info["name"])
        if sb is None:
            return self.json({"error": "no such sandbox"}, 404)
        try:
            seconds = float(json.loads(await request.text())["seconds"])
        except Exception:  # noqa: BLE001
            return self.json({"error": "give {\"seconds\": N}"}, 400)
        sb.expire_at = time.time() + seconds
        return self.json({"id": sb.id, "expire_at": rfc3339(sb.expire_at)})


# ============================================================ app

async def serve(emu, request, handler):
    request["request_id"] = uuid.uuid4().hex
    unmatched = request.match_info.http_exception is not None
    key = common.route_key(request)
    emu.count(key)

    fault = emu.take_fault(("status", "slow", "drop", "error_code"),
                           path=request.path, method=request.method)
    if fault is not None:
        kind = fault["kind"]
        if kind == "slow":
            await asyncio.sleep(float(fault.get("delay") or 1.0))
        elif kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        elif kind == "error_code":
            return envelope(request, int(fault.get("code") or E_INTERNAL),
                            "injected fault", status=200)
        else:
            status = int(fault.get("status") or 500)
            if fault.get("raw"):
                return web.Response(status=status, text="%d injected fault\n" % status,
                                    content_type="text/plain")
            return envelope(request, int(fault.get("code") or status * 100),
                            "injected fault", status=status)

    if unmatched:
        return envelope(request, E_NOT_FOUND, "no route for %s %s"
                        % (request.method, request.path))
    if not key.endswith("/{id}/connect"):       # ws_connect checks for itself
        bad = emu.auth_error(request)
        if bad is not None:
            return atlas_error(request, bad)
    return await handler(request)


def build_app(emu):
    middleware = common.request_logger(lambda request, handler:
                                       serve(emu, request, handler))
    app = web.Application(middlewares=[middleware], client_max_size=64 << 20)
    rest = Rest(emu)
    r = app.router
    for method, path, fn in Control(emu).routes():
        r.add_route(method, path, fn)

    r.add_route("POST", "/api/v1/sandboxes", rest_handler(rest.create_or_list))
    r.add_route("GET", "/api/v1/sandboxes", rest_handler(rest.list_get))
    for prefix in ("/api/v1/sandbox", "/api/v1/sandboxes"):
        for method, path, fn in [
            ("POST", "/create", rest.create),
            ("POST", "/list", rest.list_post),
            ("GET", "/{id}", rest.get),
            ("DELETE", "/{id}", rest.delete),
            ("PATCH", "/{id}", rest.update),
            ("POST", "/{id}/stop", rest.stop),
            ("POST", "/{id}/start", rest.start),
            ("POST", "/{id}/restart", rest.restart),
            ("POST", "/{id}/extend", rest.extend),
            ("POST", "/{id}/configure", rest.configure),
        ]:
            r.add_route(method, prefix + path, rest_handler(fn))
        r.add_route("GET", prefix + "/{id}/connect",
                    lambda request: ws_connect(emu, request))
    for method, path, fn in [
        ("GET", "/admin/pool/status", rest.pool_status),
        ("POST", "/admin/rolling/start", rest.rolling_start),
        ("GET", "/admin/rolling/status", rest.rolling_status),
        ("POST", "/admin/rolling/cancel", rest.rolling_cancel),
    ]:
        r.add_route(method, path, rest_handler(fn))
    return app


async def amain(args):
    emu = Emulator(args)

    def started(port):
        emu.reaper = asyncio.create_task(emu.reap())
        return "vtrix emulator on %s://127.0.0.1:%d (root %s)" % (
            "https" if args.tls else "http", port, emu.root)
    await common.serve(build_app(emu), args.port, started, emu.shutdown, args.tls)


def main():
    ap = common.argument_parser(
        __doc__, "directory holding sandboxes",
        ("--token", "the bearer token to accept"),
        ("--project", "the X-Project-ID to accept"))
    args = ap.parse_args()
    args.tls = common.tls_context(ap, args)
    common.run(amain, args)


if __name__ == "__main__":
    main()

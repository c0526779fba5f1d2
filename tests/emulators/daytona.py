#!/usr/bin/env python3
"""A test emulator of the Daytona sandbox service: main API + toolbox.

Usage:
    /usr/bin/python3 tests/emulators/daytona.py --root DIR --api-key KEY
        [--port 0] [--delay SECONDS] [--legacy-list] [--no-proxy-url-field]
        [--tls-cert CERT.pem --tls-key KEY.pem]

It binds 127.0.0.1:PORT (0 = any free port), with TLS (HTTPS, WSS) when given
a certificate, prints "PORT\\n" on stdout once
listening and logs one line per request on stderr (never the API key, never
query strings).  SIGTERM/SIGINT stop it and kill every sandbox process.

What it serves, following /work/shared/protocols/daytona.md (server v0.190.0):

  /api/...                  the NestJS main API: sandbox lifecycle, error
                            format 1 {"path","timestamp","statusCode","error",
                            "message"}.
  /toolbox/{sandboxId}/...  the proxy + daemon ("toolbox"): files, execute,
                            sessions, PTY.  Daemon errors use format 2
                            {"statusCode","message","code","timestamp","path",
                            "method"}, except the /files handlers that abort
                            with an EMPTY body, exactly where the daemon does.
  /api/toolbox/{id}/toolbox/...  the deprecated route to the same toolbox.

Test control routes (no auth; not counted):
  GET  /_emu/stats          {"total": N, "routes": {"GET /files/info": n, ...}}
                            every /api and /toolbox request, keyed by method
                            and route pattern ("GET /api/sandbox/{sid}",
                            "POST /process/session/{session}/exec"; toolbox
                            routes without their prefix; "GET (unmatched)").
  POST /_emu/reset          zero the counters.
  POST /_emu/fault          {"kind": "status"|"empty"|"slow"|"drop"|"ratelimit",
                             "status": 500, "prefix": "/toolbox", "method": "GET",
                             "count": 1, "delay": 1.0}: the next `count`
                            requests whose path starts with `prefix` (and
                            whose method is `method`, if given) get an error
                            body of the right format / an empty body / a
                            delay before normal service / a closed connection
                            / 429 "ThrottlerException: Too Many Requests".
  POST /_emu/fault/clear    forget all faults.
  GET  /_emu/sandbox/{name or id}  {"id", "dir", "state"}: the backing directory.
  POST /_emu/advertise      {"port": N}: toolbox URLs name port N (a relay's).

Sandboxes.  DIR/<id>/ is the sandbox's "/".  Commands run inside it with
bubblewrap: every started sandbox has one long-lived "keeper"
(bwrap --unshare-pid ... sleep infinity) that owns a private pid, mount, ipc
and uts namespace; each command enters those namespaces with nsenter.  Why:
commands of one sandbox must see each other in /proc (the sbxfs client finds
its processes through /proc/*/environ and signals them with `kill` from
another command) while sandboxes stay invisible to each other.  Stopping a
sandbox kills the keeper's pid-namespace init, which makes the kernel kill
every process of that sandbox at once.  Commands run as the emulator's own
uid, so owners seen by commands and by the file API agree.

The file API works on DIR/<id> directly.  Every path is resolved component by
component inside DIR/<id>: symlinks are followed relative to the sandbox root
(absolute targets mean the sandbox's "/"), at most 40 hops, ".." stops at the
root, so no request ever reaches a host path outside DIR/<id>.

Deviations from the real service (deliberate, keep them in mind):
  * Toolbox on a sandbox that is not "started": 400 format 2
    "bad request: sandbox is not started" (the real proxy's status is not
    known).  Unknown sandbox id: 404 format 2 "not found: sandbox not found".
  * Sessions: the real daemon runs one long-lived shell per session (cwd and
    exported variables persist between commands) and sources each command in
    it, so a bare `exit N` there ends the whole session shell and the command
    never gets an exit code.  Here every command runs in its own shell
    (nsenter + sh -c) in /home/daytona: nothing persists, and `exit N` just
    gives exit code N.  Clients should use `(exit N)` to work on both.
    Output is labelled per line like the daemon's wrapper; a partial last line
    is written to the log after ~0.5 s (protocol notes section 9).  The real
    v0.190 wrapper instead holds a partial line until newline/EOF and ends an
    unterminated final line with "\\n"; here no newline is added.
  * /process/execute feeds the command text to the shell's stdin (as v0.156+
    does) but the shell is /bin/sh of the host's /usr, not bash/zsh.
  * /usr (and /bin, /lib, ... on hosts without merged /usr) is a read-only
    bind of the host's for commands; the file API sees only the empty
    placeholder directories there.  /proc and /dev are likewise placeholders
    for the file API.  /etc is the sandbox's own (passwd, group, alternatives
    and ld.so.cache are copied in at creation).
  * Paths are resolved before they are used, so a symlink swapped between the
    resolution and the use could escape; tests do not race like that.
  * GET /files/download honours a single "Range: bytes=" range (Go's
    ServeContent does too); multi-range requests get the whole file.
  * Listing: sort keys name/createdAt/lastActivityAt/cpu/memoryGib/diskGib and
    the filters id, name, labels, states, snapshots are implemented; other
    filters are accepted and ignored.  The cursor is opaque base64 JSON.
  * Build logs are synthetic; no image is ever pulled or built ("FROM x" just
    walks the state machine).  Archived sandboxes keep their files in place.
  * The socket.io event stream does not exist (404), so SDKs fall back to
    polling, which the real SDKs also do when the stream fails.
  * PTY: POST/GET/DELETE /process/pty, resize and the connect WebSocket
    (v0.190 protocol); not the newer create-connect route.

Costs of the real service that are not modelled (so the tests run in
seconds; the benchmark's relay adds the network back):
  * Distance: every request answers at loopback speed.  The real API and
    the toolbox proxy are tens of milliseconds away, each new connection
    costs a TCP and TLS handshake, and the toolbox goes through one more
    proxy hop.  Request counts, which the tests assert, are the same.
  * Lifecycle: each state step takes --delay seconds (the tests use
    0.05); a real sandbox takes seconds to start and an image build or
    pull minutes.  Quotas (CPU, memory, disk, sandboxes per organisation)
    and rate limits are not enforced unless a fault asks for a 429.
  * Commands: one nsenter and sh per command, a few milliseconds; the real
    daemon runs them in a session shell inside a container.
  * Files: the file API touches the backing directory directly; the real
    toolbox daemon does the same inside the sandbox, behind the proxy.

Needs root (as in CI): unprivileged bwrap nests a user namespace that nsenter
cannot join.  Only Debian's python3-aiohttp is needed besides bwrap and
util-linux (nsenter, setsid).

The jail, the keepers, fault injection, the stats and control routes, the
request log and the server skeleton are common.py's, which must stand next
to this file (it is imported from the script's own directory).
"""

import asyncio
import base64
import errno
import fcntl
import fnmatch
import hashlib
import json
import os
import pty
import re
import shutil
import signal
import stat
import struct
import tempfile
import termios
import time
import uuid
from collections import OrderedDict
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import WSMsgType, web

import common
from common import go_frac, go_mode_string, kill_group, log

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


# --------------------------------------------------------- path resolution

class Jail(common.Jail):
    cwd = HOME

    def stat(self, path, cwd=HOME):
        return os.stat(self.host(path, True, cwd), follow_symlinks=False)

    def mkdir_parent(self, path, mode):
        """MkdirAll(filepath.Dir(path)); returns the host path of `path`."""
        target = self.host(path)
        self.mkdir_all(self.inside(os.path.dirname(target)), mode)
        return target

    def mkdir_all(self, path, mode):
        """Go's os.MkdirAll: every missing level gets `mode` (minus umask)."""
        target = self.host(path)
        rel = os.path.relpath(target, self.root)
        cur = self.root
        for comp in ([] if rel == "." else rel.split("/")):
            cur = os.path.join(cur, comp)
            try:
                os.mkdir(cur, mode & 0o777)
            except FileExistsError:
                if not os.path.isdir(cur) or os.path.islink(cur):
                    raise OSError(errno.ENOTDIR, "not a directory", cur)
        return target

    def lookup_id(self, dbfile, name):
        """uid/gid of `name` from the sandbox's own /etc/passwd or /etc/group."""
        try:
            with open(self.host(dbfile), encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.rstrip("\n").split(":")
                    if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
                        return int(parts[2])
        except OSError:
            pass
        return None


# ------------------------------------------------------------------ runtime

class HostLayout(common.HostLayout):
    def populate(self, root):
        """Create the directory skeleton of a fresh sandbox at `root`."""
        self.make_skeleton(root, (
            ("tmp", 0o1777), ("home/daytona", 0o755), ("etc", 0o755),
            ("root", 0o700), ("proc", 0o555), ("dev", 0o755), ("usr", 0o755),
        ), {
            "passwd": "root:x:0:0:root:/root:/bin/sh\n"
                      "daytona:x:1000:1000::/home/daytona:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": "root:x:0:\ndaytona:x:1000:\nnogroup:x:65534:\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
            "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        })


class Runtime(common.Keeper):
    """The namespaces of one started sandbox and the processes inside them."""

    def __init__(self, sandbox, layout):
        super().__init__(layout)
        self.sb = sandbox
        self.procs = set()          # nsenter processes (each a session leader)

    async def start(self):
        await self.start_keeper(self.sb.dir, self.sb.id)

    def env(self, extra=None):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": HOME, "HOSTNAME": self.sb.id, "USER": self.sb.user,
               "DAYTONA_SANDBOX_ID": self.sb.id,
               "DAYTONA_SANDBOX_SNAPSHOT": self.sb.snapshot or "",
               "DAYTONA_SANDBOX_USER": self.sb.user}
        env.update(self.sb.env)
        env.update(extra or {})
        return env

    async def spawn(self, cwd, command=None, env=None, stdin=None,
                    stdout=None, stderr=None):
        """Run in the sandbox: `command` via sh -c, or else a shell reading
        its script from stdin.  The process (nsenter, which forks the real
        command into the pid namespace) leads its own session and process
        group, so killing that group kills the command."""
        if not self.running:
            raise RuntimeError("sandbox is not running")
        argv = self.nsenter_argv()
        if command is None:
            argv += ["--", "/bin/sh", "-c", 'cd -- "$0" || exit 1; exec /bin/sh', cwd]
        else:
            argv += ["--", "/bin/sh", "-c",
                     'cd -- "$0" || exit 1; exec /bin/sh -c "$1"', cwd, command]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=stdout, stderr=stderr,
            env=self.env(env), start_new_session=True)
        self.procs.add(proc)
        return proc

    def forget(self, proc):
        self.procs.discard(proc)

    async def stop(self):
        """Kill everything: the pid namespace dies with its init."""
        for proc in list(self.procs):
            kill_group(proc.pid, signal.SIGKILL)
        await super().stop()
        self.procs.clear()


def kill_tree(pid, sig):
    """The process group of `pid` and its direct children (which may have
    made sessions of their own inside the sandbox)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    kill_group(pid, sig)
    for child in children:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass


# ----------------------------------------------------------------- sessions

class Command:
    """One session command: its process, its labelled log, its exit code."""

    def __init__(self, session, text, log_path, suppress_echo):
        self.id = str(uuid.uuid4())
        self.session = session
        self.text = text
        self.log_path = log_path
        self.suppress_echo = suppress_echo
        self.exit_code = None
        self.proc = None
        self.done = asyncio.Event()
        self._log = open(log_path, "ab")

    def append(self, data):
        if data and not self._log.closed:
            self._log.write(data)
            self._log.flush()

    def close_log(self):
        self._log.close()

    def dto(self):
        d = {"id": self.id, "command": self.text}
        if self.exit_code is not None:
            d["exitCode"] = self.exit_code
        return d

    async def run(self, runtime, keep_stdin):
        """Start; async commands keep a stdin pipe open for input."""
        self.proc = await runtime.spawn(
            HOME, command=self.text,
            stdin=asyncio.subprocess.PIPE if keep_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._finisher = asyncio.create_task(self._finish(runtime))

    async def _finish(self, runtime):
        try:
            await asyncio.gather(self._pump(self.proc.stdout, STDOUT_MARK),
                                 self._pump(self.proc.stderr, STDERR_MARK))
            rc = await self.proc.wait()
        finally:
            runtime.forget(self.proc)
        # nsenter re-raises a child's fatal signal on itself; a shell would
        # report 128+N, which is what the daemon's wrapper records.
        self.exit_code = rc if rc >= 0 else 128 - rc
        self.close_log()
        self.done.set()

    async def _pump(self, stream, mark):
        """Label each line with `mark`; a partial line goes out after 0.5 s."""
        loop = asyncio.get_running_loop()
        buf = b""
        deadline = None
        while True:
            timeout = None if not buf else max(0.0, deadline - loop.time())
            try:
                chunk = await asyncio.wait_for(stream.read(65536), timeout)
            except asyncio.TimeoutError:
                self.append(mark + buf)
                buf = b""
                continue
            if not chunk:
                break
            if not buf:
                deadline = loop.time() + 0.5
            buf += chunk
            if b"\n" in buf:
                lines, _, buf = buf.rpartition(b"\n")
                self.append(b"".join(mark + ln + b"\n" for ln in lines.split(b"\n")))
                deadline = loop.time() + 0.5
        if buf:
            self.append(mark + buf)

    async def send_input(self, data):
        if not data.endswith("\n"):
            data += "\n"
        raw = data.encode()
        stdin = self.proc.stdin if self.proc else None
        if stdin is not None and not stdin.is_closing():
            try:
                stdin.write(raw)
                await asyncio.wait_for(stdin.drain(), 10)
            except (ConnectionError, BrokenPipeError, asyncio.TimeoutError):
                pass
        if not self.suppress_echo:
            self.append(STDOUT_MARK + raw)

    def kill(self, sig):
        if self.proc is not None and self.proc.returncode is None:
            kill_group(self.proc.pid, sig)


class Session:
    def __init__(self, sid, log_dir):
        self.id = sid
        self.dir = log_dir
        self.commands = OrderedDict()
        self.closed = False

    def dto(self):
        return {"sessionId": self.id,
                "commands": [c.dto() for c in self.commands.values()]}

    async def kill(self):
        """SIGTERM the command process groups, SIGKILL what is left."""
        self.closed = True
        running = [c for c in self.commands.values() if not c.done.is_set()]
        for c in running:
            c.kill(signal.SIGTERM)
        if running:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(c.done.wait() for c in running)), 1.0)
            except asyncio.TimeoutError:
                for c in running:
                    c.kill(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------- PTY

class PtySession:
    def __init__(self, pid_id, cwd, envs, cols, rows, lazy):
        self.id = pid_id
        self.cwd = cwd
        self.envs = envs
        self.cols = cols
        self.rows = rows
        self.lazy = lazy
        self.created = time.time_ns()
        self.master = None
        self.proc = None
        self.clients = {}          # WebSocket -> queue of output chunks
        self.exit_code = None
        self.exited = asyncio.Event()

    @property
    def active(self):
        return self.proc is not None and self.exit_code is None

    def info(self):
        return {"id": self.id, "cwd": self.cwd, "envs": self.envs,
                "cols": self.cols, "rows": self.rows,
                "createdAt": go_rfc3339nano(self.created),
                "active": self.active, "lazyStart": self.lazy}

    def resize(self):
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", self.rows, self.cols, 0, 0))

    async def start(self, runtime):
        master, slave = pty.openpty()
        self.master = master
        self.resize()
        env = dict(self.envs)
        env.setdefault("TERM", "xterm-256color")
        # The shell makes its own session inside the pid namespace and takes
        # the terminal as its controlling tty there, so job control works.
        # (`tty` still says "not a tty": the pty comes from the host's devpts,
        # not the sandbox's /dev/pts.)
        try:
            self.proc = await runtime.spawn(
                self.cwd, command="exec setsid --ctty /bin/sh -i", env=env,
                stdin=slave, stdout=slave, stderr=slave)
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)
        self._waiter = asyncio.create_task(self._wait(runtime))

    def _readable(self):
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        for queue in self.clients.values():
            queue.put_nowait(data)

    def write(self, data):
        if self.master is not None and self.active:
            try:
                os.write(self.master, data)
            except OSError:
                pass

    async def _wait(self, runtime):
        rc = await self.proc.wait()
        runtime.forget(self.proc)
        await asyncio.sleep(0.1)      # let the last output reach the clients
        self.exit_code = rc if rc >= 0 else 128 - rc
        try:
            asyncio.get_running_loop().remove_reader(self.master)
        except (ValueError, OSError):
            pass
        os.close(self.master)
        self.master = None
        self.exited.set()

    def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            kill_tree(self.proc.pid, signal.SIGKILL)

    def close_reason(self):
        code = self.exit_code
        if code == 0:
            return 1000, json.dumps({"exitCode": 0})
        reason = {130: "Ctrl+C", 137: "SIGKILL", 143: "SIGTERM"}.get(code)
        if reason is None:
            reason = "signal %d" % (code - 128) if code > 128 else "non-zero exit"
        return 1011, json.dumps({"exitCode": code, "exitReason": reason})


# ------------------------------------------------------------------ sandbox

class Sandbox:
    def __init__(self, emu, body, seq):
        now = time.time()
        self.emu = emu
        self.seq = seq
        self.id = str(uuid.uuid4())
        self.name = body.get("name") or self.id
        self.user = body.get("user") or "daytona"
        self.env = dict(body.get("env") or {})
        self.labels = dict(body.get("labels") or {})
        self.public = bool(body.get("public", False))
        self.network_block_all = bool(body.get("networkBlockAll", False))
        self.network_allow_list = body.get("networkAllowList")
        self.domain_allow_list = body.get("domainAllowList")
        self.target = body.get("target") or "us"
        self.volumes = body.get("volumes") or []
        self.auto_stop = _int_or(body.get("autoStopInterval"), 15)
        self.auto_archive = _int_or(body.get("autoArchiveInterval"), 10080)
        self.auto_delete = _int_or(body.get("autoDeleteInterval"), -1)
        build = body.get("buildInfo")
        if build:
            ref = hashlib.sha256(build["dockerfileContent"].encode()).hexdigest()[:40]
            self.snapshot = None
            self.build_info = {"dockerfileContent": build["dockerfileContent"],
                               "contextHashes": build.get("contextHashes") or [],
                               "createdAt": iso_js(now), "updatedAt": iso_js(now),
                               "snapshotRef": "daytona-%s:daytona" % ref}
            self.cpu = _int_or(body.get("cpu"), 1)
            self.gpu = _int_or(body.get("gpu"), 0)
            self.memory = _int_or(body.get("memory"), 1)
            self.disk = _int_or(body.get("disk"), 3)
        else:
            self.snapshot = body.get("snapshot") or DEFAULT_SNAPSHOT
            self.build_info = None
            self.cpu, self.gpu, self.memory, self.disk = 1, 0, 1, 3
        self.state = "pending_build" if build else "creating"
        self.desired = "started"
        self.error_reason = None
        self.created = now
        self.updated = now
        self.last_activity = now
        self.runner_id = emu.runner_id
        self.dir = os.path.join(emu.root, self.id)
        self.jail = Jail(self.dir)
        self.runtime = Runtime(self, emu.layout)
        self.sessions = {}
        self.ptys = {}
        self.task = None

    def set_state(self, state, desired=None):
        self.state = state
        if desired is not None:
            self.desired = desired
        self.updated = time.time()

    def dto(self, listing=False):
        d = {
            "id": self.id, "organizationId": self.emu.org_id, "name": self.name,
            "target": self.target, "snapshot": self.snapshot, "user": self.user,
            "env": self.env, "cpu": self.cpu, "gpu": self.gpu,
            "memory": self.memory, "disk": self.disk, "public": self.public,
            "networkBlockAll": self.network_block_all,
            "networkAllowList": self.network_allow_list,
            "domainAllowList": self.domain_allow_list,
            "labels": self.labels, "volumes": self.volumes,
            "state": self.state, "desiredState": self.desired,
            "errorReason": self.error_reason, "recoverable": False,
            "backupState": "None",
            "autoStopInterval": self.auto_stop,
            "autoArchiveInterval": self.auto_archive,
            "autoDeleteInterval": self.auto_delete,
            "sandboxClass": "container",
            "createdAt": iso_js(self.created), "updatedAt": iso_js(self.updated),
            "lastActivityAt": iso_js(self.last_activity),
            "daemonVersion": DAEMON_VERSION, "runnerId": self.runner_id,
        }
        if self.build_info:
            d["buildInfo"] = self.build_info
        if self.emu.proxy_url_field:
            d["toolboxProxyUrl"] = self.emu.toolbox_url
        if listing:
            for k in ("env", "networkBlockAll", "networkAllowList",
                      "domainAllowList", "volumes", "buildInfo"):
                d.pop(k, None)
        return d

    async def kill_sessions(self):
        for s in list(self.sessions.values()):
            await s.kill()
        self.sessions.clear()
        for p in list(self.ptys.values()):
            p.kill()
        self.ptys.clear()


def _int_or(v, default):
    return default if v is None else int(v)


# ----------------------------------------------------------------- emulator

TOOLBOX_PREFIX_RE = re.compile(r"^(/toolbox/[^/]+|/api/toolbox/[^/]+/toolbox)")
ROUTE_KEY_PREFIX_RE = re.compile(r"^(/toolbox/\{sid\}|/api/toolbox/\{sid\}/toolbox)")
SID_RE = re.compile(r"^(?:/toolbox/([^/]+)|/api/toolbox/([^/]+)/toolbox)(/.*)?$")


class Emulator(common.Service):
    def __init__(self, args):
        super().__init__(args.root)
        self.work = tempfile.mkdtemp(prefix=".emu-", dir=self.root)
        self.args = args
        self.api_key = args.api_key
        self.delay = args.delay
        self.legacy_list = args.legacy_list
        self.page_max = args.page_max
        self.proxy_url_field = not args.no_proxy_url_field
        self.layout = HostLayout()
        self.org_id = str(uuid.uuid4())
        self.runner_id = str(uuid.uuid4())
        self.sandboxes = OrderedDict()
        self.seq = 0
        self.port = None
        self.public_port = None

    @property
    def base_url(self):
        scheme = "https" if self.args.tls_cert else "http"
        return "%s://127.0.0.1:%d" % (scheme, self.public_port or self.port)

    @property
    def toolbox_url(self):
        return self.base_url + "/toolbox"

    # ----------------------------------------------------------- lookups

    def find(self, id_or_name):
        sb = self.sandboxes.get(id_or_name)
        if sb is not None:
            return sb
        for sb in self.sandboxes.values():
            if sb.name == id_or_name:
                return sb
        return None

    # ------------------------------------------------------ middleware

    async def dispatch(self, request, handler):
        path = request.path
        toolbox = bool(SID_RE.match(path))
        if not toolbox and not (path == "/api" or path.startswith("/api/")):
            return await handler(request)
        unmatched = request.match_info.http_exception is not None
        self.count(common.route_key(
            request, lambda canonical: ROUTE_KEY_PREFIX_RE.sub("", canonical)))

        fault = self.take_fault(None, path, request.method)
        if fault is not None:
            resp = await self.apply_fault(fault, request, toolbox)
            if resp is not None:
                return resp

        if unmatched and not toolbox:
            return api_error(request, 404, "Cannot %s %s" % (request.method, path))
        if not self.authorized(request):
            if toolbox and path.startswith("/toolbox/"):
                return tb_error(request, 401,
                                "unauthorized: authentication failed: invalid credentials")
            return api_error(request, 401, "Unauthorized")
        if not toolbox:
            return await handler(request)

        m = SID_RE.match(path)
        sid = m.group(1) or m.group(2)
        if not m.group(3) or m.group(3) == "/":
            return web.Response(status=404, text="404 page not found")
        sb = self.sandboxes.get(sid)
        if sb is None:
            return tb_error(request, 404, "not found: sandbox not found")
        if sb.state != "started":
            return tb_error(request, 400, "bad request: sandbox is not started")
        if unmatched:
            return web.Response(status=404, text="404 page not found")
        if request.headers.get("X-Daytona-Skip-Last-Activity-Update") != "true":
            sb.last_activity = time.time()
        request["sandbox"] = sb
        return await handler(request)

    def authorized(self, request):
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key

    # ---------------------------------------------------------- faults

    async def apply_fault(self, f, request, toolbox):
        kind = f.get("kind", "status")
        status = int(f.get("status") or 500)
        if kind == "slow":
            await asyncio.sleep(float(f.get("delay") or 1.0))
            return None
        if kind == "empty":
            return empty(status)
        if kind == "ratelimit":
            return api_error(request, 429, "ThrottlerException: Too Many Requests")
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        phrase = HTTPStatus(status).phrase.lower()
        if toolbox:
            return tb_error(request, status, "%s: injected fault" % phrase)
        return api_error(request, status, "injected fault")

    # ------------------------------------------------------- lifecycle

    async def _step(self, sb, state):
        sb.set_state(state)
        await asyncio.sleep(self.delay)

    async def _bring_up(self, sb):
        try:
            await sb.runtime.start()
        except Exception as e:  # noqa: BLE001 - any failure marks the sandbox
            log("sandbox %s failed to start: %s" % (sb.id, e))
            sb.error_reason = "failed to start sandbox: %s" % e
            sb.set_state("error")
            return
        sb.set_state("started", "started")

    async def _create(self, sb):
        if sb.build_info:
            await self._step(sb, "pending_build")
            await self._step(sb, "building_snapshot")
            await self._step(sb, "starting")
        else:
            await self._step(sb, "creating")
        await self._bring_up(sb)

    async def _start(self, sb, restore):
        if restore:
            await self._step(sb, "restoring")
        await self._step(sb, "starting")
        await self._bring_up(sb)

    async def _stop(self, sb):
        await asyncio.sleep(self.delay)
        await sb.kill_sessions()
        await sb.runtime.stop()
        sb.set_state("stopped")

    async def _archive(self, sb):
        await asyncio.sleep(self.delay)
        sb.set_state("archived")

    async def _destroy(self, sb):
        await asyncio.sleep(self.delay)
        await sb.kill_sessions()
        await sb.runtime.stop()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: shutil.rmtree(sb.dir, ignore_errors=True))
        self.sandboxes.pop(sb.id, None)

    def launch(self, sb, coro):
        sb.task = asyncio.create_task(coro)

    async def wait_started(self, sb, timeout=30):
        """The API's waitForSandboxStarted: poll until started or failed."""
        deadline = time.monotonic() + timeout
        while sb.state not in ("started", "error", "build_failed") \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def shutdown(self):
        for sb in list(self.sandboxes.values()):
            if sb.task:
                sb.task.cancel()
            await sb.kill_sessions()
            await sb.runtime.stop()
        shutil.rmtree(self.work, ignore_errors=True)


# ============================================================ main API

def _state_guard(sb, request):
    if sb.state in ("error", "build_failed"):
        return api_error(request, 400, "Sandbox is in an errored state")
    return None


class MainApi:
    def __init__(self, emu):
        self.emu = emu

    def _sandbox(self, request):
        key = request.match_info["sid"]
        sb = self.emu.find(key)
        if sb is None:
            raise _NotFound(key)
        return sb

    async def _body(self, request):
        try:
            text = await request.text()
            return json.loads(text) if text.strip() else {}
        except ValueError:
            raise _ApiError(400, "Invalid JSON body")

    async def create(self, request):
        body = await self._body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, "Invalid JSON body")
        for field in ("env", "labels"):
            v = body.get(field)
            if v is not None and (not isinstance(v, dict) or
                                  not all(isinstance(x, str) for x in v.values())):
                raise _ApiError(400, "%s must be an object of strings" % field)
        for field in ("cpu", "gpu", "memory", "disk", "autoStopInterval",
                      "autoArchiveInterval", "autoDeleteInterval"):
            v = body.get(field)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise _ApiError(400, "%s must be an integer number" % field)
        build = body.get("buildInfo")
        if build is not None:
            if not isinstance(build, dict) or \
                    not isinstance(build.get("dockerfileContent"), str):
                raise _ApiError(400, "buildInfo.dockerfileContent must be a string")
            if body.get("snapshot"):
                raise _ApiError(400, "Cannot specify a snapshot when using a build info entry")
        elif any(body.get(k) is not None for k in ("cpu", "gpu", "memory", "disk")):
            raise _ApiError(400, "Cannot specify Sandbox resources when using a snapshot")
        name = body.get("name")
        if name and any(s.name == name for s in self.emu.sandboxes.values()):
            raise _ApiError(409, "Sandbox with name %s already exists" % name)
        self.emu.seq += 1
        sb = Sandbox(self.emu, body, self.emu.seq)
        os.makedirs(sb.dir)
        self.emu.layout.populate(sb.dir)
        self.emu.sandboxes[sb.id] = sb
        self.emu.launch(sb, self.emu._create(sb))
        if not sb.build_info:
            await self.emu.wait_started(sb)
        return json_response(sb.dto())

    async def get(self, request):
        return json_response(self._sandbox(request).dto())

    def _filtered(self, request):
        q = request.query
        items = list(self.emu.sandboxes.values())
        labels = q.get("labels")
        if labels:
            try:
                want = json.loads(labels)
                if not isinstance(want, dict):
                    raise ValueError
            except ValueError:
                raise _ApiError(400, "Invalid labels JSON format")
            items = [s for s in items
                     if all(s.labels.get(k) == v for k, v in want.items())]
        if q.get("id"):
            items = [s for s in items if s.id.lower().startswith(q["id"].lower())]
        if q.get("name"):
            items = [s for s in items
                     if s.name.lower().startswith(q["name"].lower())]
        states = q.getall("states", []) + q.getall("states[]", [])
        if states:
            items = [s for s in items if s.state in states]
        snaps = q.getall("snapshots", []) + q.getall("snapshots[]", [])
        if snaps:
            items = [s for s in items if s.snapshot in snaps]
        return items

    async def list(self, request):
        q = request.query
        items = self._filtered(request)
        if self.emu.legacy_list:
            items.sort(key=lambda s: s.seq)
            return json_response([s.dto() for s in items])
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            raise _ApiError(400, "limit must be an integer number")
        if limit < 1:
            raise _ApiError(400, "limit must not be less than 1")
        if limit > 200:
            raise _ApiError(400, "limit must not be greater than 200")
        sort = q.get("sort", "lastActivityAt")
        order = q.get("order", "desc")
        field = {"name": lambda s: s.name, "cpu": lambda s: s.cpu,
                 "memoryGib": lambda s: s.memory, "diskGib": lambda s: s.disk,
                 "createdAt": lambda s: s.created,
                 "lastActivityAt": lambda s: s.last_activity}.get(sort)
        if field is None or order not in ("asc", "desc"):
            raise _ApiError(400, "sort or order is not valid")

        def key(s):
            return [field(s), s.seq]

        desc = order == "desc"
        items.sort(key=key, reverse=desc)
        if q.get("cursor"):
            try:
                after = json.loads(base64.urlsafe_b64decode(q["cursor"].encode()))
                assert isinstance(after, list) and len(after) == 2
            except Exception:  # noqa: BLE001 - any bad cursor is a 400
                raise _ApiError(400, "Invalid cursor")
            try:
                items = [s for s in items
                         if (key(s) < after if desc else key(s) > after)]
            except TypeError:
                raise _ApiError(400, "Invalid cursor")
        # --page-max: a server that returns shorter pages than asked (the
        # client must follow nextCursor, not count on its limit).
        if self.emu.page_max:
            limit = min(limit, self.emu.page_max)
        page = items[:limit]
        cursor = None
        if len(items) > limit:
            cursor = base64.urlsafe_b64encode(
                json.dumps(key(page[-1])).encode()).decode()
        return json_response({"items": [s.dto(listing=True) for s in page],
                              "nextCursor": cursor})

    async def start(self, request):
        sb = self._sandbox(request)
        if sb.state == "started" and sb.desired == "started":
            return json_response(sb.dto())
        bad = _state_guard(sb, request)
        if bad:
            return bad
        # Like the API, a sandbox still being archived may be started: the
        # archive is abandoned and it starts from its local copy.
        if sb.state == "archiving" and sb.task:
            sb.task.cancel()
            sb.set_state("stopped")
        if sb.state in TRANSITIONAL:
            raise _ApiError(409, "Sandbox state change in progress")
        if sb.state not in ("stopped", "archived"):
            raise _ApiError(400, "Sandbox is not in valid state")
        restore = sb.state == "archived"
        sb.set_state("restoring" if restore else "starting", "started")
        self.emu.launch(sb, self.emu._start(sb, restore))
        if not restore:
            await self.emu.wait_started(sb)
        return json_response(sb.dto())

    async def stop(self, request):
        sb = self._sandbox(request)
        bad = _state_guard(sb, request)
        if bad:
            return bad
        if sb.state != sb.desired or sb.state in TRANSITIONAL:
            raise _ApiError(409, "Sandbox state change in progress")
        if sb.state != "started":
            raise _ApiError(400, "Sandbox is not in a stoppable state")
        if sb.auto_delete == 0:       # ephemeral: stopping deletes it
            return self._soft_delete(sb)
        sb.set_state("stopping", "stopped")
        self.emu.launch(sb, self.emu._stop(sb))
        return json_response(sb.dto())

    def _soft_delete(self, sb):
        if sb.task and sb.state == "pending_build":
            sb.task.cancel()
        sb.name = "DESTROYED_%s_%d" % (sb.name, int(time.time() * 1000))
        sb.set_state("destroying", "destroyed")
        self.emu.launch(sb, self.emu._destroy(sb))
        return json_response(sb.dto())

    async def delete(self, request):
        sb = self._sandbox(request)
        if sb.state in TRANSITIONAL and sb.state != "pending_build":
            raise _ApiError(409, "Sandbox state change in progress")
        return self._soft_delete(sb)

    async def archive(self, request):
        sb = self._sandbox(request)
        bad = _state_guard(sb, request)
        if bad:
            return bad
        if sb.state != sb.desired or sb.state in TRANSITIONAL:
            raise _ApiError(409, "Sandbox state change in progress")
        if sb.state != "stopped":
            raise _ApiError(400, "Sandbox is not stopped")
        if sb.auto_delete == 0:
            raise _ApiError(400, "Ephemeral sandboxes cannot be archived")
        sb.set_state("archiving", "archived")
        self.emu.launch(sb, self.emu._archive(sb))
        return json_response(sb.dto())

    async def labels(self, request):
        sb = self._sandbox(request)
        body = await self._body(request)
        labels = body.get("labels") if isinstance(body, dict) else None
        if not isinstance(labels, dict) or \
                not all(isinstance(v, str) for v in labels.values()):
            raise _ApiError(400, "labels must be an object")
        sb.labels = dict(labels)
        sb.updated = time.time()
        return json_response(sb.dto())

    def interval(self, attr):
        async def handler(request):
            return await self._set_interval(request, attr)
        return handler

    async def _set_interval(self, request, attr):
        sb = self._sandbox(request)
        try:
            value = int(request.match_info["interval"])
        except ValueError:
            raise _ApiError(400, "Validation failed (numeric string is expected)")
        setattr(sb, attr, value)
        sb.updated = time.time()
        return json_response(sb.dto(), 201)

    async def public(self, request):
        sb = self._sandbox(request)
        sb.public = request.match_info["flag"] == "true"
        sb.updated = time.time()
        return json_response(sb.dto(), 201)

    async def last_activity(self, request):
        self._sandbox(request).last_activity = time.time()
        return web.Response(status=201)

    async def toolbox_proxy_url(self, request):
        self._sandbox(request)
        return json_response({"url": self.emu.toolbox_url})

    async def build_logs_url(self, request):
        sb = self._sandbox(request)
        return json_response({"url": "%s/api/sandbox/%s/build-logs"
                              % (self.emu.base_url, sb.id)})

    async def build_logs(self, request):
        sb = self._sandbox(request)
        if not sb.build_info:
            raise _ApiError(400, "Sandbox has no build info")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        first = sb.build_info["dockerfileContent"].splitlines()[:1]
        await resp.write(("Step 1/1 : %s\n" % (first[0] if first else "")).encode())
        if request.query.get("follow") == "true":
            while sb.state in ("pending_build", "building_snapshot"):
                await asyncio.sleep(0.05)
        await resp.write(("Successfully built %s\n"
                          % sb.build_info["snapshotRef"]).encode())
        await resp.write_eof()
        return resp

    async def config(self, request):
        return json_response({"version": DAEMON_VERSION,
                              "proxyToolboxUrl": self.emu.toolbox_url,
                              "defaultSnapshot": DEFAULT_SNAPSHOT,
                              "analyticsApiUrl": None})


class _ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class _NotFound(_ApiError):
    def __init__(self, key):
        super().__init__(404, "Sandbox with ID or name %s not found" % key)


def api_handler(fn):
    async def wrapped(request):
        try:
            return await fn(request)
        except _ApiError as e:
            return api_error(request, e.status, e.message)
    return wrapped


# ================================================================ toolbox

GO_MIME = {".avif": "image/avif", ".css": "text/css; charset=utf-8",
           ".gif": "image/gif", ".htm": "text/html; charset=utf-8",
           ".html": "text/html; charset=utf-8", ".jpeg": "image/jpeg",
           ".jpg": "image/jpeg", ".js": "text/javascript; charset=utf-8",
           ".json": "application/json", ".mjs": "text/javascript; charset=utf-8",
           ".pdf": "application/pdf", ".png": "image/png",
           ".svg": "image/svg+xml", ".wasm": "application/wasm",
           ".webp": "image/webp", ".xml": "text/xml; charset=utf-8"}
BULK_BOUNDARY = "DAYTONA-FILE-BOUNDARY"
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def rfc5987(s):
    keep = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
               b"!#$&+-.^_`|~")
    return "".join(chr(b) if b in keep else "%%%02X" % b for b in s.encode())


def latin1_filename(s):
    s = s.replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\r", "").replace("\n", "").replace("\0", "")
    return "".join("_" if ord(c) > 0xFF or ord(c) < 0x20 or ord(c) == 0x7F else c
                   for c in s)


def content_disposition(form_name, path):
    return 'form-data; name="%s"; filename="%s"; filename*=utf-8\'\'%s' % (
        form_name, latin1_filename(path), rfc5987(path))


def strip_markers(data):
    return data.replace(STDOUT_MARK, b"").replace(STDERR_MARK, b"")


def demux(data):
    """The daemon's DemuxLogBytes: bytes after a marker go to its stream."""
    out, err = bytearray(), bytearray()
    target = None
    i = 0
    n = len(data)
    while i < n:
        if data.startswith(STDOUT_MARK, i):
            target, i = out, i + 3
        elif data.startswith(STDERR_MARK, i):
            target, i = err, i + 3
        else:
            j = min([k for k in (data.find(STDOUT_MARK, i), data.find(STDERR_MARK, i))
                     if k >= 0] or [n])
            if target is not None:
                target += data[i:j]
            i = j
    return bytes(out), bytes(err)


class OutputMode:
    """How the daemon shapes session output for this client (section 6.4)."""

    def __init__(self, request):
        v = request.headers.get("X-Daytona-SDK-Version", "")
        if not v:
            for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
                proto = proto.strip()
                if proto.startswith("X-Daytona-SDK-Version~"):
                    v = proto.split("~", 1)[1]
                    break
        self.version = v
        core = parse_semver_core(v)
        dev = "dev" in v
        older_than_027 = core is not None and core < (0, 27, 0)
        self.combined = (older_than_027 and not dev) or \
            (v == "" and request.headers.get("X-Daytona-Split-Output") != "true")
        if v == "":
            self.skip_demux = True
        elif dev:
            self.skip_demux = False
        else:
            self.skip_demux = core is None or core < (0, 167, 0)


class MarkerFilter:
    """Strips markers from a byte stream whose chunks may split a marker."""

    def __init__(self):
        self.held = b""

    def feed(self, chunk):
        data = self.held + chunk
        keep = 0
        for k in (2, 1):
            tail = data[-k:]
            if len(data) >= k and (STDOUT_MARK.startswith(tail) or
                                   STDERR_MARK.startswith(tail)):
                keep = k
                break
        self.held = data[len(data) - keep:] if keep else b""
        return strip_markers(data[:len(data) - keep] if keep else data)

    def flush(self):
        data, self.held = self.held, b""
        return data


class Toolbox:
    def __init__(self, emu):
        self.emu = emu

    # ---------------------------------------------------------- files

    async def list_files(self, request):
        sb = request["sandbox"]
        path = request.query.get("path") or "."
        try:
            dir_host = sb.jail.host(path)
            names = sorted(os.listdir(dir_host))
        except OSError as e:
            return empty(os_error_status(e))
        infos = []
        base = path.rstrip("/") or "/"
        for name in names:
            try:
                st = sb.jail.stat(base + "/" + name if base != "/" else "/" + name)
            except OSError:
                continue          # the daemon skips what it cannot stat
            infos.append(file_info(name, st))
        return json_response(infos)

    async def info(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        try:
            st = sb.jail.stat(path)
        except OSError as e:
            return empty(os_error_status(e))
        return json_response(file_info(go_base(path), st))

    async def download(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        try:
            host = sb.jail.host(path)
            f = open_for_reading(host)
        except OSError as e:
            return empty(os_error_status(e))
        with f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                return empty(400)
            name = go_base(path)
            headers = {
                "Content-Description": "File Transfer",
                "Content-Type": "application/octet-stream",
                "Content-Disposition": 'attachment; filename="%s"; filename*=utf-8\'\'%s'
                                       % (latin1_filename(name), rfc5987(name)),
                "Content-Transfer-Encoding": "binary",
                "Expires": "0", "Cache-Control": "must-revalidate",
                "Pragma": "public", "Accept-Ranges": "bytes",
                "Last-Modified": formatdate(st.st_mtime, usegmt=True),
            }
            size = st.st_size
            start, length, status = 0, size, 200
            rng = request.headers.get("Range", "")
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if rng and m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = int(m.group(2)) if m.group(2) else size - 1
                else:
                    start = max(0, size - int(m.group(2)))
                    end = size - 1
                end = min(end, size - 1)
                if start >= size or end < start:
                    headers["Content-Range"] = "bytes */%d" % size
                    return web.Response(status=416, headers=headers)
                length, status = end - start + 1, 206
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
            resp = web.StreamResponse(status=status, headers=headers)
            resp.content_length = length
            await resp.prepare(request)
            f.seek(start)
            await common.send_file(resp, f, length, CHUNK)
            await resp.write_eof()
            return resp

    async def upload(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            return empty(400)
        if not path:
            await _drain(request)
            return empty(400)
        # Like gin, receive the whole form before touching the destination.
        tmp = tempfile.NamedTemporaryFile(dir=self.emu.work, delete=False)
        found = False
        try:
            with tmp:
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    if part.name == "file" and part.filename is not None and not found:
                        found = True
                        while True:
                            chunk = await part.read_chunk(CHUNK)
                            if not chunk:
                                break
                            tmp.write(chunk)
                    else:
                        await part.release()
            if not found:
                return empty(400)
            try:
                dest = sb.jail.mkdir_parent(path, 0o750)
                await asyncio.get_running_loop().run_in_executor(
                    None, copy_into, tmp.name, dest)
            except OSError:
                return empty(400)
            return web.Response(status=200)
        finally:
            os.unlink(tmp.name)

    async def bulk_upload(self, request):
        sb = request["sandbox"]
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            await _drain(request)
            return json_response({"errors": ["invalid multipart form"]}, 400)
        dests, errors, files = {}, [], []
        while True:
            try:
                part = await reader.next()
            except ValueError as e:
                errors.append("reading part: %s" % e)
                break
            if part is None:
                break
            name = part.name or ""
            idx = name[len("files["):] if name.startswith("files[") else name
            if name.endswith(".path"):
                idx = idx[:-len("].path")]
                dest = (await part.text()).strip()
                if not dest:
                    errors.append("path[%s]: empty path" % idx)
                else:
                    dests[idx] = dest
                continue
            if not name.endswith(".file"):
                await part.release()
                continue
            idx = idx[:-len("].file")]
            dest = dests.get(idx)
            if dest is None:
                errors.append("file[%s]: missing .path metadata" % idx)
                await part.release()
                continue
            try:
                out = open(sb.jail.mkdir_parent(dest, 0o755), "wb")
            except OSError as e:
                errors.append("%s: create: %s" % (dest, e.strerror))
                await part.release()
                continue
            n = 0
            with out:
                while True:
                    chunk = await part.read_chunk(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    n += len(chunk)
            files.append({"path": dest, "bytes": n})
        if errors:
            return json_response({"errors": errors, "files": files}, 400)
        return json_response({"files": files})

    async def bulk_download(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            paths = body["paths"]
            assert isinstance(paths, list) and paths
        except Exception:  # noqa: BLE001 - every malformed body is one error
            return json_response(
                {"error": 'request body must be {"paths": [ ... ]} and non-empty'}, 400)
        resp = web.StreamResponse(headers={
            "Content-Type": "multipart/form-data; boundary=%s" % BULK_BOUNDARY})
        await resp.prepare(request)
        first = True
        for path in paths:
            sep = ("--%s\r\n" if first else "\r\n--%s\r\n") % BULK_BOUNDARY
            first = False
            f, err = self._open_for_download(sb, path, request)
            if err is not None:
                await resp.write((sep +
                                  "Content-Disposition: %s\r\n"
                                  "Content-Type: application/json; charset=utf-8\r\n\r\n"
                                  % content_disposition("error", str(path))).encode()
                                 + json.dumps(err).encode())
                continue
            with f:
                size = os.fstat(f.fileno()).st_size
                ctype = GO_MIME.get(os.path.splitext(path)[1].lower(),
                                    "application/octet-stream")
                await resp.write((sep +
                                  "Content-Disposition: %s\r\nContent-Length: %d\r\n"
                                  "Content-Type: %s\r\n\r\n"
                                  % (content_disposition("file", path), size, ctype)).encode())
                while True:
                    chunk = f.read(CHUNK)
                    if not chunk:
                        break
                    await resp.write(chunk)
        await resp.write(("\r\n--%s--\r\n" % BULK_BOUNDARY).encode())
        await resp.write_eof()
        return resp

    @staticmethod
    def _open_for_download(sb, path, request):
        def err(status, code, message):
            return None, {"statusCode": status, "message": message, "code": code,
                          "timestamp": go_rfc3339nano(time.time_ns()),
                          "path": path, "method": request.method}
        if not isinstance(path, str) or not path:
            return err(400, "INVALID_FILE_PATH", "invalid file path: path is empty")
        try:
            f = open_for_reading(sb.jail.host(path))
        except IsADirectoryError:
            return err(400, "INVALID_FILE_PATH",
                       "invalid file path: path points to a directory: %s" % path)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return err(404, "FILE_NOT_FOUND", "file not found: %s" % path)
            if e.errno in (errno.EACCES, errno.EPERM):
                return err(403, "FILE_ACCESS_DENIED", "permission denied: %s" % path)
            return err(500, "FILE_READ_FAILED", "failed to open file: %s" % e.strerror)
        return f, None

    async def folder(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        mode = request.query.get("mode", "")
        perm = 0o755
        if mode:
            if not re.fullmatch(r"[0-7]+", mode) or int(mode, 8) > 0xFFFFFFFF:
                return empty(400)
            perm = int(mode, 8)
        try:
            sb.jail.mkdir_all(path, perm)
        except OSError:
            return empty(400)
        return web.Response(status=201)

    async def delete(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        recursive = request.query.get("recursive") == "true"
        try:
            st = sb.jail.stat(path)          # os.Stat: follows a last symlink
        except OSError as e:
            return empty(os_error_status(e))
        if stat.S_ISDIR(st.st_mode) and not recursive:
            return empty(400)
        try:
            target = sb.jail.host(path, follow=False)   # remove the link itself
            if target == sb.dir:
                raise OSError(errno.EBUSY, "refusing to remove the sandbox root")
            if os.path.isdir(target) and not os.path.islink(target):
                if recursive:
                    shutil.rmtree(target)
                else:
                    os.rmdir(target)
            else:
                os.unlink(target)
        except OSError:
            return empty(400)
        return web.Response(status=204)

    async def move(self, request):
        sb = request["sandbox"]
        src = request.query.get("source", "")
        dst = request.query.get("destination", "")
        if not src or not dst:
            return empty(400)
        try:
            sb.jail.stat(src)
        except OSError as e:
            return empty(os_error_status(e))
        try:
            parent = sb.jail.host(dst, follow=False)
            os.stat(os.path.dirname(parent))
        except OSError as e:
            return empty(os_error_status(e))
        try:
            sb.jail.stat(dst)
            return empty(409)
        except OSError:
            pass
        try:
            src_host = sb.jail.host(src, follow=False)
            if src_host == sb.dir:
                raise OSError(errno.EBUSY, "cannot move the sandbox root")
            os.rename(src_host, sb.jail.host(dst, follow=False))
        except OSError:
            return empty(400)
        return web.Response(status=200)

    async def permissions(self, request):
        sb = request["sandbox"]
        q = request.query
        path = q.get("path", "")
        if not path:
            return empty(400)
        try:
            host = sb.jail.host(path)
            os.stat(host)
        except OSError as e:
            return empty(os_error_status(e))
        mode = q.get("mode", "")
        if mode:
            if not re.fullmatch(r"[0-7]+", mode):
                return empty(400)
            try:
                # Go's os.FileMode(n) keeps only the permission bits of n.
                os.chmod(host, int(mode, 8) & 0o777)
            except OSError:
                return empty(400)
        owner, group = q.get("owner", ""), q.get("group", "")
        if owner or group:
            uid = gid = -1
            if owner:
                uid = int(owner) if re.fullmatch(r"-?\d+", owner) else \
                    sb.jail.lookup_id("/etc/passwd", owner)
                if uid is None:
                    return empty(400)
            if group:
                gid = int(group) if re.fullmatch(r"-?\d+", group) else \
                    sb.jail.lookup_id("/etc/group", group)
                if gid is None:
                    return empty(400)
            try:
                os.chown(host, uid, gid)
            except OSError:
                return empty(400)
        return web.Response(status=200)

    async def search(self, request):
        sb = request["sandbox"]
        path, pattern = request.query.get("path", ""), request.query.get("pattern", "")
        if not path or not pattern:
            return empty(400)
        matches = []
        for shown, name, _host, _isdir in _walk(sb, path):
            if fnmatch.fnmatchcase(name, pattern):
                matches.append(shown)
        return json_response({"files": matches})

    async def find(self, request):
        sb = request["sandbox"]
        path, pattern = request.query.get("path", ""), request.query.get("pattern", "")
        if not path or not pattern:
            return empty(400)
        out = []
        for shown, _name, host, isdir in _walk(sb, path):
            if isdir:
                continue
            try:
                with open_for_reading(host) as f:
                    data = f.read(4 << 20)
            except OSError:
                continue
            if b"\0" in data[:8192]:
                continue
            for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                if pattern in line:
                    out.append({"file": shown, "line": n, "content": line})
        return json_response(out)

    async def home_dir(self, request):
        return json_response({"dir": HOME})

    async def version(self, request):
        return json_response({"version": DAEMON_VERSION})

    # -------------------------------------------------------- execute

    async def execute(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            assert isinstance(body, dict)
        except Exception:  # noqa: BLE001
            return tb_error(request, 400, "bad request: invalid request body")
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            return tb_error(request, 400,
                            "bad request: command cannot be empty or whitespace-only")
        envs = body.get("envs") or {}
        for k in envs:
            if not ENV_KEY_RE.match(k):
                return tb_error(request, 400,
                                "bad request: invalid environment variable key: %s" % k)
        cwd = body.get("cwd") or HOME
        try:
            if not stat.S_ISDIR(sb.jail.stat(cwd).st_mode):
                raise OSError(errno.ENOTDIR, "not a directory")
        except OSError as e:
            return json_response({"exitCode": -1, "result": "chdir %s: %s"
                                  % (cwd, os.strerror(e.errno).lower())})
        timeout = body.get("timeout")
        proc = await sb.runtime.spawn(
            cwd, env={k: str(v) for k, v in envs.items()},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(
                proc.communicate(command.encode() + b"\n"),
                timeout if isinstance(timeout, (int, float)) and timeout > 0 else None)
        except asyncio.TimeoutError:
            kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            sb.runtime.forget(proc)
            return tb_error(request, 408, "request timeout: command execution timeout")
        sb.runtime.forget(proc)
        rc = proc.returncode if proc.returncode >= 0 else -1
        return json_response({"exitCode": rc,
                              "result": out.decode("utf-8", "replace")})

    # -------------------------------------------------------- sessions

    def _session(self, request):
        sb = request["sandbox"]
        s = sb.sessions.get(request.match_info["session"])
        if s is None:
            raise _TbError(404, "not found: session not found")
        return s

    def _command(self, request):
        s = self._session(request)
        c = s.commands.get(request.match_info["command"])
        if c is None:
            raise _TbError(404, "not found: command not found")
        return s, c

    async def session_create(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            sid = body["sessionId"]
            assert isinstance(sid, str) and sid
        except Exception:  # noqa: BLE001
            return tb_error(request, 400, "invalid body request: sessionId is required",
                            "INVALID_REQUEST_BODY")
        if sid == "entrypoint":
            return tb_error(request, 400, "bad request: provided session ID is "
                            "reserved and cannot be created/overridden")
        if sid in sb.sessions:
            return tb_error(request, 409, "conflict: session already exists")
        log_dir = os.path.join(self.emu.work, "sessions", sb.id, uuid.uuid4().hex)
        os.makedirs(log_dir)
        sb.sessions[sid] = Session(sid, log_dir)
        return web.Response(status=201)

    async def session_list(self, request):
        sb = request["sandbox"]
        return json_response([s.dto() for s in sb.sessions.values()])

    async def session_get(self, request):
        return json_response(self._session(request).dto())

    async def session_delete(self, request):
        sb = request["sandbox"]
        if request.match_info["session"] == "entrypoint":
            return tb_error(request, 400, "bad request: can't delete entrypoint session")
        s = self._session(request)
        await s.kill()
        sb.sessions.pop(s.id, None)
        return web.Response(status=204)

    async def entrypoint(self, request):
        return json_response({"sessionId": "entrypoint", "commands": []})

    async def entrypoint_logs(self, request):
        mode = OutputMode(request)
        if not mode.skip_demux:
            return json_response({"output": "", "stdout": "", "stderr": ""})
        return web.Response(text="", content_type="text/plain", charset="utf-8")

    async def session_exec(self, request):
        sb = request["sandbox"]
        sid = request.match_info["session"]
        if sid == "entrypoint":
            return tb_error(request, 400,
                            "bad request: can't execute command in entrypoint session")
        try:
            body = json.loads(await request.text())
            assert isinstance(body, dict)
        except Exception:  # noqa: BLE001
            return empty(400)
        text = body.get("command")
        if not isinstance(text, str) or not text.strip():
            return empty(400)
        run_async = bool(body.get("runAsync") or body.get("async"))
        s = sb.sessions.get(sid)
        if s is None:
            return tb_untyped_error("failed to execute command: not found: session not found")
        mode = OutputMode(request)
        cmd = Command(s, text, os.path.join(s.dir, "%d.log" % len(s.commands)),
                      bool(body.get("suppressInputEcho")))
        s.commands[cmd.id] = cmd
        await cmd.run(sb.runtime, run_async)
        if run_async:
            return json_response({"cmdId": cmd.id, "output": None, "stdout": None,
                                  "stderr": None, "exitCode": None}, 202)
        await cmd.done.wait()
        if s.closed:
            return tb_untyped_error("failed to execute command: bad request: session cancelled")
        with open(cmd.log_path, "rb") as f:
            raw = f.read()
        result = {"cmdId": cmd.id, "output": None, "stdout": None, "stderr": None,
                  "exitCode": cmd.exit_code}
        if mode.combined:
            result["output"] = strip_markers(raw).decode("utf-8", "replace")
        else:
            result["output"] = raw.decode("utf-8", "replace")
            if not mode.skip_demux:
                out, err = demux(raw)
                result["stdout"] = out.decode("utf-8", "replace")
                result["stderr"] = err.decode("utf-8", "replace")
        return json_response(result)

    async def command_get(self, request):
        return json_response(self._command(request)[1].dto())

    async def command_input(self, request):
        if request.match_info["session"] == "entrypoint":
            return tb_error(request, 400, "bad request: can't send input to entrypoint session")
        s, c = self._command(request)
        try:
            body = json.loads(await request.text())
            data = body["data"]
            assert isinstance(data, str)
        except Exception:  # noqa: BLE001
            return tb_error(request, 400, "invalid body request: data is required",
                            "INVALID_REQUEST_BODY")
        if c.exit_code is not None:
            return tb_error(request, 410, "gone: command has already completed "
                            "with exit code %d" % c.exit_code)
        await c.send_input(data)
        return web.Response(status=204)

    async def command_logs(self, request):
        s, c = self._command(request)
        mode = OutputMode(request)
        follow = request.query.get("follow") == "true"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._logs_ws(request, s, c, mode, follow)
        try:
            with open(c.log_path, "rb") as f:
                raw = f.read()
        except OSError as e:
            return tb_error(request, os_error_status(e), "not found: %s" % e.strerror)
        if mode.combined:
            raw = strip_markers(raw)
        elif not mode.skip_demux:
            out, err = demux(raw)
            return json_response({"output": raw.decode("utf-8", "replace"),
                                  "stdout": out.decode("utf-8", "replace"),
                                  "stderr": err.decode("utf-8", "replace")})
        return web.Response(body=raw, content_type="text/plain", charset="utf-8")

    async def _logs_ws(self, request, session, cmd, mode, follow):
        ws = web.WebSocketResponse(protocols=_sdk_protocols(request), autoping=True)
        await ws.prepare(request)
        drain = asyncio.create_task(_ws_drain(ws))
        filt = MarkerFilter() if mode.combined else None
        try:
            with open(cmd.log_path, "rb") as f:
                while not ws.closed:
                    finished = cmd.done.is_set() or session.closed
                    chunk = f.read(1024)
                    if chunk:
                        data = filt.feed(chunk) if filt else chunk
                        if data:
                            await ws.send_bytes(data)
                        continue
                    if not follow or finished:
                        break
                    await asyncio.sleep(0.05)
            if filt and not ws.closed:
                rest = filt.flush()
                if rest:
                    await ws.send_bytes(rest)
            if not ws.closed:
                await ws.close(code=1000)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            drain.cancel()
        return ws

    # ------------------------------------------------------------- PTY

    async def pty_create(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            assert isinstance(body, dict)
        except Exception:  # noqa: BLE001
            return json_response({"error": "invalid request body"}, 400)
        pid_id = body.get("id")
        if not pid_id:
            return json_response({"error": "session ID is required"}, 400)
        if pid_id in sb.ptys:
            return json_response({"error": "PTY session with ID '%s' already exists"
                                  % pid_id}, 409)
        cols, rows = int(body.get("cols") or 80), int(body.get("rows") or 24)
        if cols > 1000:
            return json_response({"error": "invalid value for cols - must be less than 1000"}, 400)
        if rows > 1000:
            return json_response({"error": "invalid value for rows - must be less than 1000"}, 400)
        p = PtySession(pid_id, body.get("cwd") or HOME, dict(body.get("envs") or {}),
                       cols, rows, bool(body.get("lazyStart")))
        if not p.lazy:
            try:
                await p.start(sb.runtime)
            except Exception as e:  # noqa: BLE001
                log("pty start failed: %s" % e)
                return json_response({"error": "failed to start PTY session"}, 500)
        sb.ptys[pid_id] = p
        return json_response({"sessionId": pid_id}, 201)

    async def pty_list(self, request):
        sb = request["sandbox"]
        return json_response({"sessions": [p.info() for p in sb.ptys.values()]})

    async def pty_get(self, request):
        p = request["sandbox"].ptys.get(request.match_info["pty"])
        if p is None:
            return json_response({"error": "PTY session not found"}, 404)
        return json_response(p.info())

    async def pty_delete(self, request):
        p = request["sandbox"].ptys.pop(request.match_info["pty"], None)
        if p is None:
            return json_response({"error": "PTY session not found"}, 404)
        p.kill()
        return json_response({"message": "PTY session deleted"})

    async def pty_resize(self, request):
        p = request["sandbox"].ptys.get(request.match_info["pty"])
        if p is None:
            return json_response({"error": "PTY session not found"}, 404)
        try:
            body = json.loads(await request.text())
            cols, rows = int(body["cols"]), int(body["rows"])
        except Exception:  # noqa: BLE001
            return json_response({"error": "cols and rows are required"}, 400)
        if not 1 <= cols <= 1000:
            return json_response({"error": "cols must be less than 1000"}, 400)
        if not 1 <= rows <= 1000:
            return json_response({"error": "rows must be less than 1000"}, 400)
        if p.exit_code is not None:
            return json_response({"error": "PTY session is not active"}, 410)
        p.cols, p.rows = cols, rows
        p.resize()
        return json_response(p.info())

    async def pty_connect(self, request):
        sb = request["sandbox"]
        ws = web.WebSocketResponse(protocols=_sdk_protocols(request), autoping=True,
                                   max_msg_size=64 * 1024)
        await ws.prepare(request)
        p = sb.ptys.get(request.match_info["pty"])
        try:
            if p is not None and p.proc is None:
                await p.start(sb.runtime)
            if p is None or p.exit_code is not None:
                await ws.send_str(json.dumps({
                    "type": "control", "status": "error",
                    "error": "Failed to connect to PTY session: PTY session not found"}))
                await ws.close()
                return ws
        except Exception as e:  # noqa: BLE001
            await ws.send_str(json.dumps({"type": "control", "status": "error",
                                          "error": "Failed to connect to PTY session: %s" % e}))
            await ws.close()
            return ws
        await ws.send_str(json.dumps({"type": "control", "status": "connected"}))
        queue = asyncio.Queue()
        p.clients[ws] = queue

        async def pump_input():
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    p.write(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    p.write(msg.data.encode())

        async def pump_output():
            while True:
                await ws.send_bytes(await queue.get())

        async def until_exit_drained():
            await p.exited.wait()
            while not queue.empty():
                await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(pump_input()), asyncio.create_task(pump_output()),
                 asyncio.create_task(until_exit_drained())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if p.exited.is_set() and not ws.closed:
                code, reason = p.close_reason()
                await ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError):
            pass
        finally:
            p.clients.pop(ws, None)
            for t in tasks:
                t.cancel()
        return ws


class _TbError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def toolbox_handler(fn):
    async def wrapped(request):
        try:
            return await fn(request)
        except _TbError as e:
            return tb_error(request, e.status, e.message)
    return wrapped


def _sdk_protocols(request):
    offered = [p.strip() for p in
               request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    return [p for p in offered if p.startswith("X-Daytona-SDK-Version~")]


async def _ws_drain(ws):
    """Read (and ignore) client frames so pings are answered."""
    try:
        async for _ in ws:
            pass
    except Exception:  # noqa: BLE001 - the socket is going away anyway
        pass


async def _drain(request):
    while await request.content.read(CHUNK):
        pass


def _walk(sb, path):
    """(shown path, name, host path, is dir) for everything under `path`."""
    try:
        top = sb.jail.host(path)
    except OSError:
        return
    shown_top = path.rstrip("/") or "/"
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        shown_dir = shown_top if rel == "." else shown_top.rstrip("/") + "/" + rel
        if rel == ".":
            yield shown_top, go_base(path), dirpath, True
        for n in dirnames:
            yield shown_dir.rstrip("/") + "/" + n, n, os.path.join(dirpath, n), True
        for n in filenames:
            yield shown_dir.rstrip("/") + "/" + n, n, os.path.join(dirpath, n), False


def copy_into(src, dest):
    """os.Create(dest) + io.Copy: truncate in place, keep inode and mode."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with open(src, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset < size:
                n = os.sendfile(fd, f.fileno(), offset, min(size - offset, 1 << 24))
                if n == 0:
                    break
                offset += n
    finally:
        os.close(fd)


# =========================================================== control routes

class Control(common.Control):
    fault_kinds = ("status", "empty", "slow", "drop", "ratelimit")

    def json(self, data, status=200):
        return json_response(data, status)

    def routes(self):
        return super().routes() + [("GET", "/_emu/sandbox/{name}", self.sandbox),
                                   ("POST", "/_emu/advertise", self.advertise)]

    async def advertise(self, request):
        """The port the toolbox URLs it hands out name: a relay's, when
        clients reach it through one (bench/relay.py)."""
        try:
            port = int(json.loads(await request.text())["port"])
            assert 0 < port < 65536
        except Exception:  # noqa: BLE001 - any bad body is a 400
            return json_response({"error": "bad port"}, 400)
        self.emu.public_port = port
        return json_response({"ok": True})

    async def sandbox(self, request):
        sb = self.emu.find(request.match_info["name"])
        if sb is None:
            return json_response({"error": "no such sandbox"}, 404)
        return json_response({"id": sb.id, "dir": sb.dir, "state": sb.state})


# ===================================================================== app

def build_app(emu):
    app = web.Application(middlewares=[common.request_logger(emu.dispatch)],
                          client_max_size=64 << 20)
    api, tb = MainApi(emu), Toolbox(emu)
    r = app.router

    for method, path, fn in Control(emu).routes():
        r.add_route(method, path, fn)

    for method, path, fn in [
        ("GET", "/api/config", api.config),
        ("POST", "/api/sandbox", api.create),
        ("GET", "/api/sandbox", api.list),
        ("GET", "/api/sandbox/{sid}", api.get),
        ("DELETE", "/api/sandbox/{sid}", api.delete),
        ("POST", "/api/sandbox/{sid}/start", api.start),
        ("POST", "/api/sandbox/{sid}/stop", api.stop),
        ("POST", "/api/sandbox/{sid}/archive", api.archive),
        ("PUT", "/api/sandbox/{sid}/labels", api.labels),
        ("POST", "/api/sandbox/{sid}/autostop/{interval}", api.interval("auto_stop")),
        ("POST", "/api/sandbox/{sid}/autoarchive/{interval}", api.interval("auto_archive")),
        ("POST", "/api/sandbox/{sid}/autodelete/{interval}", api.interval("auto_delete")),
        ("POST", "/api/sandbox/{sid}/public/{flag}", api.public),
        ("POST", "/api/sandbox/{sid}/last-activity", api.last_activity),
        ("GET", "/api/sandbox/{sid}/toolbox-proxy-url", api.toolbox_proxy_url),
        ("GET", "/api/sandbox/{sid}/build-logs-url", api.build_logs_url),
        ("GET", "/api/sandbox/{sid}/build-logs", api.build_logs),
    ]:
        r.add_route(method, path, api_handler(fn))

    toolbox_routes = [
        ("GET", "/files", tb.list_files), ("GET", "/files/", tb.list_files),
        ("GET", "/files/info", tb.info), ("GET", "/files/download", tb.download),
        ("POST", "/files/upload", tb.upload),
        ("POST", "/files/bulk-upload", tb.bulk_upload),
        ("POST", "/files/bulk-download", tb.bulk_download),
        ("POST", "/files/folder", tb.folder),
        ("DELETE", "/files", tb.delete), ("DELETE", "/files/", tb.delete),
        ("POST", "/files/move", tb.move),
        ("POST", "/files/permissions", tb.permissions),
        ("GET", "/files/search", tb.search), ("GET", "/files/find", tb.find),
        ("GET", "/user-home-dir", tb.home_dir), ("GET", "/project-dir", tb.home_dir),
        ("GET", "/work-dir", tb.home_dir), ("GET", "/version", tb.version),
        ("POST", "/process/execute", tb.execute),
        ("GET", "/process/session", tb.session_list),
        ("POST", "/process/session", tb.session_create),
        ("GET", "/process/session/entrypoint", tb.entrypoint),
        ("GET", "/process/session/entrypoint/logs", tb.entrypoint_logs),
        ("POST", "/process/session/{session}/exec", tb.session_exec),
        ("GET", "/process/session/{session}", tb.session_get),
        ("DELETE", "/process/session/{session}", tb.session_delete),
        ("GET", "/process/session/{session}/command/{command}", tb.command_get),
        ("POST", "/process/session/{session}/command/{command}/input", tb.command_input),
        ("GET", "/process/session/{session}/command/{command}/logs", tb.command_logs),
        ("GET", "/process/pty", tb.pty_list), ("POST", "/process/pty", tb.pty_create),
        ("GET", "/process/pty/{pty}", tb.pty_get),
        ("DELETE", "/process/pty/{pty}", tb.pty_delete),
        ("GET", "/process/pty/{pty}/connect", tb.pty_connect),
        ("POST", "/process/pty/{pty}/resize", tb.pty_resize),
    ]
    for prefix in ("/toolbox/{sid}", "/api/toolbox/{sid}/toolbox"):
        for method, path, fn in toolbox_routes:
            r.add_route(method, prefix + path, toolbox_handler(fn))
    return app


async def amain(args):
    emu = Emulator(args)

    def started(port):
        emu.port = port
        return "daytona emulator on %s (root %s)" % (emu.base_url, emu.root)
    await common.serve(build_app(emu), args.port, started, emu.shutdown, args.tls)


def main():
    ap = common.argument_parser(__doc__, "directory holding sandboxes",
                                ("--api-key", None))
    ap.add_argument("--page-max", type=int, default=0,
                    help="answer list pages of at most this many sandboxes")
    ap.add_argument("--legacy-list", action="store_true",
                    help="GET /api/sandbox answers a bare array (pre-v0.180)")
    ap.add_argument("--no-proxy-url-field", action="store_true",
                    help="omit toolboxProxyUrl from Sandbox JSON (pre-v0.148)")
    args = ap.parse_args()
    args.tls = common.tls_context(ap, args)
    common.run(amain, args)


if __name__ == "__main__":
    main()

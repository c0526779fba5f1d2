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
                             "count": 1, "delay": 1.0, "websocket": true
                             or false}: the next `count`
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

This file holds the service itself (routing middleware, auth, faults, the
lifecycle steps), the control routes and the app; the rest stands next to
it and is imported the same way: daytona_base.py (constants, formats,
error bodies), daytona_sandbox.py (jail, runtime, sessions, PTYs, the
Sandbox record), daytona_api.py (the main API), daytona_toolbox.py (the
toolbox's file routes) and daytona_process.py (its process routes).
"""

import asyncio
import json
import shutil
import tempfile
import time
import uuid
from collections import OrderedDict
from http import HTTPStatus

from aiohttp import web

import common
from common import log
from daytona_base import (ROUTE_KEY_PREFIX_RE, SID_RE, api_error, empty,
                          json_response, tb_error)
from daytona_sandbox import HostLayout
from daytona_api import MainApi, api_handler
from daytona_process import toolbox_handler
from daytona_toolbox import Toolbox


# ----------------------------------------------------------------- emulator

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

        fault = self.take_fault(
            None, path, request.method,
            request.headers.get("Upgrade", "").lower() == "websocket")
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

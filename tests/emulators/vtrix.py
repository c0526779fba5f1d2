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
        ws_stall    the socket goes silent both ways when the call comes: the
                    emulator reads nothing more from it (PINGs get no PONG) and
                    sends nothing more on it, as when the network vanished.
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

This file holds the service itself (auth, the lifecycle steps, the reaper),
the control routes, the fault middleware and the app; the rest stands next
to it and is imported the same way: vtrix_base.py (constants, error codes,
helpers), vtrix_sandbox.py (jail, runtime, commands, the Sandbox record),
vtrix_rest.py (the REST API) and vtrix_rpc.py (the WebSocket JSON-RPC).
"""

import asyncio
import json
import shutil
import time
import uuid
from collections import OrderedDict

from aiohttp import web

import common
from common import log
from vtrix_base import (E_FORBIDDEN, E_INTERNAL, E_NOT_FOUND, E_UNAUTHORIZED,
                        AtlasError, rfc3339)
from vtrix_sandbox import HostLayout
from vtrix_rest import Rest, atlas_error, envelope, rest_handler
from vtrix_rpc import ws_connect


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



# ============================================================ control routes

class Control(common.Control):
    fault_kinds = ("status", "slow", "drop", "error_code", "ws_drop", "ws_slow",
                   "ws_error", "ws_stall")

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

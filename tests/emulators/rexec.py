#!/usr/bin/env python3
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
request log and the server skeleton are common.py's.  The rest of the
emulator is in rexec_go.py (Go and gin compatibility: JSON encoding and
decoding, paths, output sanitising, the ls parser), rexec_containers.py
(the server's constants, the container runtime, containers, rate limits and
the Emulator's state and Docker-side work), rexec_handlers.py (the
container, file and exec routes) and rexec_terminal.py (the terminal
WebSocket); this file holds the control routes, the router and main.  All
of them must stand next to this file (they are imported from the script's
own directory).
"""

import asyncio
import re

from aiohttp import web

import common
from rexec_containers import TIERS, Emulator, is_websocket_upgrade
from rexec_go import GoMap, error, json_response
from rexec_handlers import ContainerApi, ExecApi, FileApi
from rexec_terminal import TerminalApi


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

    def stats_body(self):
        """As every emulator's, and "gzipped": the answers sent gzip'd,
        by route."""
        return dict(super().stats_body(), gzipped=GoMap(self.emu.gzipped))

    async def reset(self, request):
        self.emu.gzipped.clear()
        return await super().reset(request)

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

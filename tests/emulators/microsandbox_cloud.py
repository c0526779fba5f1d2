"""The microsandbox emulator's stand-in for the CLOUD backend (msb-cloud):
the REST API and the agent WebSocket of
/work/shared/protocols/microsandbox-current.md §4 (checked against
sdk/rust/lib/backend/cloud/{http,ws_io}.rs and
packages/microsandbox-types/rust/lib/cloud.rs @b30fd164), served by the hub
(microsandbox.py --root DIR --port 0 --cloud-key KEY) on its own HTTP port,
next to the /_emu/ control routes.

A sandbox made through this API is an ordinary emulator sandbox of the same
MSB_HOME (same record.json, sandbox process and agent.sock), created by the
CLI's own code (Cli.check_home / add_record / launch, run in a thread), so
`msb ls` shows it and every sandbox the CLI made is visible here too.  Its
cloud id is the uuid kept in its record.json ("id").

Every route wants `Authorization: Bearer KEY`; without it, or with another
key: 401 {"code": "unauthorized", "message": ...} (the SDK does not say what
the real 401 body's code is: "unauthorized" is a guess).  Errors are
{"code", "message"} with the codes the SDK knows: sandbox_not_found (404),
name_already_exists (409), invalid_request (400 for a body that is not a
JSON object, 422 for a field of the wrong type or a missing name/image),
invalid_sandbox_config (400: an unknown `runtime` field, which the real
server refuses (deny_unknown_fields), a bad image).

  POST   /v1/sandboxes[?start=true&wait_for=running&wait_timeout=90]
         body {name, image: {"type":"oci","reference"} | {"type":"bind","path"},
         resources {vcpus, memory_mib, disk_size_mib?}, runtime {workdir, shell,
         user, scripts, entrypoint, cmd, log_level}, env [{key,value}], labels {},
         ...}; other top-level fields are ignored.  201 with the Sandbox.
  GET    /v1/sandboxes?cursor=&limit=&labels=<json object>
         {"data": [Sandbox...], "next_cursor"?}: oldest first, limit 1..100
         (default 50), the cursor is opaque (base64 of the last item's
         (created_ns, name)), next_cursor only when more follow.
  GET    /v1/sandboxes/by-name/{name}                    200 Sandbox
  POST   /v1/sandboxes/by-name/{name}/start[?wait_for=running&wait_timeout=S]
                                                         200 Sandbox
  POST   /v1/sandboxes/by-name/{name}/stop               200 Sandbox (stopped)
  DELETE /v1/sandboxes/by-name/{name}                    200 {"message"}
  GET    /v1/sandboxes/{id}/agent    WebSocket: a byte pipe to agent.sock

Sandbox: {id, org_id, name, slug, status, status_reason, spec, ephemeral:
false, created_at, started_at, stopped_at, last_failure_message}; status
from the emulator's state: no run yet -> created, Starting -> starting
(also while the hub is launching it; status_reason "scheduling"), Running
and Paused -> running, Draining -> stopping, Stopped -> stopped, Crashed or
a failed start -> failed (last_failure_message says why).  started_at is
the last run's start, stopped_at is set once it stopped.  org_id is a uuid5
of the key; slug is the name lowercased, other characters as "-"; spec is a
projection of the config (image, resources, runtime, env, labels).
Timestamps are RFC 3339 with nanoseconds, as the CLI prints them.

The agent WebSocket: 404 sandbox_not_found before the upgrade for an
unknown id, 409 {"code": "sandbox_not_running"} (a guessed code) when the
sandbox is not running or its agent.sock refuses.  After the upgrade, the
client's binary messages are written to agent.sock in order (text messages
are ignored), and what agent.sock sends goes back as binary messages SPLIT
AND COALESCED AT RANDOM (random cut points, one-byte messages, several
socket reads merged into one message), so a client must treat it as a
stream.  Either side closing closes the other; the WebSocket is closed with
1000 when agent.sock ends.  No permessage-deflate; ping/pong as aiohttp does.

Stats keys: cloud.create, cloud.list, cloud.get, cloud.start, cloud.stop,
cloud.delete, cloud.agent (one per upgrade request), and cloud.unauthorized
for the refused ones (those get no faults).  The hub's faults apply by
prefix (e.g. "cloud.", "cloud.start"), before the route does anything:
  slow    answer after `delay` s       silent  never answer
  error   500 {"code": "internal", "message": "injected fault"}
  drop    close the connection without an answer
(the other kinds are ignored for these routes).

Deviations and choices where the SDK is silent:
  * create answers 201 (the SDK only checks for a 2xx); start, stop and get
    200.  start=true without wait_for=running returns at once ("starting");
    wait_for=running waits up to wait_timeout (default 90) s, then returns
    what it has.  A failed start (the "crash" boot fault): 502 {"code":
    "sandbox_start_failed"} (a guess; the SDK maps 502 to a runtime error),
    and the sandbox stays, "failed".
  * start of a running sandbox and stop of a stopped one succeed (200, no
    change).  DELETE of a running sandbox stops it first (like msb rm -f).
  * The name rule is the CLI's; a bind image must be an existing directory
    (it is copied, as for the CLI); "disk_image" is refused (400
    invalid_sandbox_config).  resources.vcpus / memory_mib are recorded.
    env, labels, workdir, shell and user are used as the CLI's -e, --label,
    -w, --shell, --user; scripts, entrypoint, cmd, log_level, rlimits,
    mounts, patches, network, init, pull_policy, lifecycle are ignored.
  * GET /v1/sandboxes/{id}/logs (SSE) is not emulated (plain 404).
  * A sandbox created with no start has no state yet: "created" here, while
    `msb ls` shows it Stopped (the CLI cannot create without starting).
  * The hub is the parent of the sandbox processes it launches (the CLI's
    are orphans once `msb` exits); it reaps them every 0.1 s.
  * No rate limits, no org or project scoping, ephemeral is always false.
"""

import asyncio
import base64
import contextlib
import json
import os
import random
import re
import uuid

from aiohttp import web, WSMsgType

RUNTIME_FIELDS = ("workdir", "shell", "scripts", "entrypoint", "cmd", "user", "log_level")
STATUS = {"Starting": "starting", "Running": "running", "Paused": "running",
          "Draining": "stopping", "Stopped": "stopped", "Crashed": "failed"}


class Refusal(Exception):
    """An error answer: (HTTP status, code, message)."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status, code, message):
    return web.json_response({"code": code, "message": message}, status=status)


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def unb64(text):
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


class Cloud:
    """The cloud routes of one hub.  `ms` is the microsandbox module (Home,
    Cli, Failure...), handed in by the hub that imports this one."""

    def __init__(self, hub, ms, key):
        self.hub, self.ms, self.key = hub, ms, key
        self.home = hub.home
        self.org_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "msb-emu-org:" + key))
        self.launching = set()          # names being started by this hub
        self.sockets = set()            # open agent WebSockets
        self.rng = random.Random()
        self.children = []              # sandbox processes it launched, to reap

    def install(self, app):
        for method, path, key, handler in (
                ("POST", "/v1/sandboxes", "cloud.create", self.create),
                ("GET", "/v1/sandboxes", "cloud.list", self.list),
                ("GET", "/v1/sandboxes/by-name/{name}", "cloud.get", self.get),
                ("POST", "/v1/sandboxes/by-name/{name}/start", "cloud.start", self.start),
                ("POST", "/v1/sandboxes/by-name/{name}/stop", "cloud.stop", self.stop),
                ("DELETE", "/v1/sandboxes/by-name/{name}", "cloud.delete", self.delete),
                ("GET", "/v1/sandboxes/{id}/agent", "cloud.agent", self.agent)):
            app.router.add_route(method, path, self.wrap(key, handler))
        app.on_startup.append(self.start_reaper)
        app.on_shutdown.append(self.close_sockets)

    async def start_reaper(self, app):
        async def reap():
            while True:
                self.children = [p for p in self.children if p.poll() is None]
                await asyncio.sleep(0.1)
        self.reaper = asyncio.ensure_future(reap())

    # ------------------------------------------------------------ plumbing

    def wrap(self, key, handler):
        async def route(request):
            if request.headers.get("Authorization", "") != "Bearer " + self.key:
                self.home.count("cloud.unauthorized")
                return error_response(401, "unauthorized",
                                      "missing or invalid API key (Authorization: Bearer)")
            self.home.count(key)
            f = self.home.take_fault(key)
            if f is not None:
                kind = f["kind"]
                if kind == "slow":
                    await asyncio.sleep(float(f.get("delay", 1.0)))
                elif kind == "silent":
                    await asyncio.Event().wait()
                elif kind == "drop":
                    if request.transport is not None:
                        request.transport.abort()
                    raise asyncio.CancelledError()
                elif kind == "error":
                    return error_response(500, "internal", "injected fault")
            try:
                return await handler(request)
            except Refusal as e:
                return error_response(e.status, e.code, e.message)
        return route

    async def blocking(self, fn, *args):
        """Run the CLI's blocking code (it sleeps, polls, flocks) in a thread."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def cli(self):
        return self.ms.Cli(self.ms.Home(self.home.path))

    def cloud_file(self, name):
        return os.path.join(self.home.sdir(name), "cloud.json")

    def record_of(self, name):
        rec = self.home.record(name)
        if rec is None:
            raise Refusal(404, "sandbox_not_found", "sandbox not found: %s" % name)
        return rec

    @staticmethod
    def id_of(name, rec):
        """The record's uuid (a uuid5 for a record written before ids were)."""
        return rec.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, "msb-emu:%s:%s" % (
            name, rec.get("created_ns"))))

    def iso(self, ns):
        return self.ms.iso_ns(ns) if ns else None

    def view(self, name, rec=None):
        rec = rec or self.record_of(name)
        st = self.home.state(name)
        failure = self.ms.read_json(self.cloud_file(name), {}).get("failure")
        status = self.home.status(name) if st else None
        if name in self.launching and status not in ("Running", "Paused"):
            cloud = "starting"
        elif status is None:
            cloud = "failed" if failure else "created"
        else:
            cloud = STATUS.get(status, "failed")
            if cloud == "stopped" and failure:
                cloud = "failed"
        c = rec["config"]
        image = c["image"]
        image = {"type": "bind", "path": image["Bind"]["path"]} if "Bind" in image else \
            {"type": "oci", "reference": image["Oci"]["reference"]}
        return {
            "id": self.id_of(name, rec), "org_id": self.org_id, "name": name,
            "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "sandbox",
            "status": cloud,
            "status_reason": "scheduling" if cloud == "starting" else None,
            "spec": {"image": image,
                     "resources": {"vcpus": c["resources"]["cpus"],
                                   "memory_mib": c["resources"]["memory_mib"]},
                     "runtime": {k: c["runtime"].get(k) for k in ("workdir", "shell", "user")},
                     "env": c["env"], "labels": c["labels"]},
            "ephemeral": False,
            "created_at": self.iso(rec["created_ns"]),
            "started_at": self.iso(st.get("started_ns")),
            "stopped_at": self.iso(st.get("stopped_ns")) if status == "Stopped" else None,
            "last_failure_message": failure,
        }

    # ------------------------------------------------------------ create

    def parse_spec(self, body):
        """(name, config) from a create body, or a Refusal."""
        ms = self.ms
        if not isinstance(body, dict):
            raise Refusal(400, "invalid_request", "the body must be a JSON object")

        def want(cond, what):
            if not cond:
                raise Refusal(422, "invalid_request", "invalid field: %s" % what)
        name = body.get("name")
        want(isinstance(name, str) and name, "name (a non-empty string)")
        if not ms.valid_name(name):
            raise Refusal(400, "invalid_sandbox_config",
                          "sandbox name must start with an alphanumeric and contain only "
                          "alphanumeric, dots, hyphens, and underscores: %s" % name)
        image = body.get("image")
        want(isinstance(image, dict), "image")
        kind = image.get("type")
        if kind == "oci":
            want(isinstance(image.get("reference"), str) and image["reference"],
                 "image.reference")
            source = {"Oci": {"reference": image["reference"]}}
        elif kind == "bind":
            path = image.get("path")
            want(isinstance(path, str) and path, "image.path")
            if not os.path.isdir(path):
                raise Refusal(400, "invalid_sandbox_config",
                              "rootfs bind path is not a directory: %s" % path)
            source = {"Bind": {"follow_root_symlinks": False, "path": path}}
        elif kind == "disk_image":
            raise Refusal(400, "invalid_sandbox_config",
                          "disk images are not supported by the emulator")
        else:
            raise Refusal(422, "invalid_request", "unknown image type: %r" % (kind,))
        res = body.get("resources") or {}
        want(isinstance(res, dict), "resources")
        vcpus, memory = res.get("vcpus", 1), res.get("memory_mib", 512)
        want(type(vcpus) is int and 1 <= vcpus <= 255, "resources.vcpus")
        want(type(memory) is int and memory > 0, "resources.memory_mib")
        runtime = body.get("runtime") or {}
        want(isinstance(runtime, dict), "runtime")
        unknown = sorted(set(runtime) - set(RUNTIME_FIELDS))
        if unknown:
            raise Refusal(400, "invalid_sandbox_config",
                          "runtime: unknown field `%s`, expected one of %s"
                          % (unknown[0], ", ".join("`%s`" % f for f in RUNTIME_FIELDS)))
        for k in ("workdir", "shell", "user"):
            want(runtime.get(k) is None or isinstance(runtime[k], str), "runtime." + k)
        env = body.get("env") or []
        want(isinstance(env, list) and all(
            isinstance(e, dict) and isinstance(e.get("key"), str) and
            isinstance(e.get("value"), str) for e in env), "env")
        labels = body.get("labels") or {}
        want(isinstance(labels, dict) and all(
            isinstance(v, str) for v in labels.values()), "labels")
        v = {"cpus": vcpus, "memory": "%dM" % memory}
        for k in ("workdir", "shell", "user"):
            if runtime.get(k) is not None:
                v[k] = runtime[k]
        config = ms.sandbox_config(name, "alpine", v)
        config.update(image=source, env=[{"key": e["key"], "value": e["value"]} for e in env],
                      labels=dict(labels))
        return name, config

    async def body(self, request):
        try:
            return json.loads(await request.text() or "null")
        except ValueError as e:
            raise Refusal(400, "invalid_request", "the body is not JSON: %s" % e)

    async def create(self, request):
        name, config = self.parse_spec(await self.body(request))
        q = request.query
        cli = self.cli()

        def add():
            cli.check_home()
            cli.home.ensure()
            cli.add_record(name, config)
        try:
            await self.blocking(add)
        except self.ms.Exists:
            raise Refusal(409, "name_already_exists",
                          "a sandbox named '%s' already exists" % name)
        except self.ms.Failure as e:
            raise Refusal(400, "invalid_sandbox_config", str(e))
        if q.get("start") == "true":
            await self.launch(name, q, fresh=True)
        return web.json_response(self.view(name), status=201)

    # ------------------------------------------------------------ lifecycle

    async def launch(self, name, query, fresh):
        """Start `name` (in the background); wait when wait_for=running."""
        if self.home.status(name) in self.ms.LIVE or name in self.launching:
            return
        cli = self.cli()

        def run():
            with cli.home.locked("sandboxes", name, "lock"):
                if cli.home.status(name) in self.ms.LIVE:
                    return None
                try:
                    return cli.launch(name, fresh=fresh)
                finally:
                    if getattr(cli, "proc", None) is not None:
                        self.children.append(cli.proc)

        async def task():
            self.launching.add(name)
            try:
                failure = await self.blocking(run)
            finally:
                self.launching.discard(name)
            if os.path.isdir(self.home.sdir(name)):
                self.ms.write_json(self.cloud_file(name), {"failure": failure})
            return failure
        t = asyncio.ensure_future(task())
        if query.get("wait_for") != "running":
            await asyncio.sleep(0)      # let it register as launching
            return
        try:
            timeout = float(query.get("wait_timeout", 90))
        except ValueError:
            raise Refusal(400, "invalid_request", "wait_timeout must be a number")
        try:
            failure = await asyncio.wait_for(asyncio.shield(t), timeout)
        except asyncio.TimeoutError:
            return
        if failure:
            raise Refusal(502, "sandbox_start_failed",
                          'failed to start "%s": %s' % (name, failure))

    async def get(self, request):
        return web.json_response(self.view(request.match_info["name"]))

    async def start(self, request):
        name = request.match_info["name"]
        self.record_of(name)
        await self.launch(name, request.query, fresh=False)
        return web.json_response(self.view(name))

    async def stop(self, request):
        name = request.match_info["name"]
        self.record_of(name)
        cli = self.cli()

        def stop():
            with cli.home.locked("sandboxes", name, "lock"):
                return cli.stop_one(name, False)
        if not await self.blocking(stop):
            raise Refusal(502, "sandbox_stop_failed", "sandbox '%s' did not stop" % name)
        return web.json_response(self.view(name))

    async def delete(self, request):
        name = request.match_info["name"]
        self.record_of(name)
        cli = self.cli()

        def remove():
            with cli.home.locked("sandboxes", name, "lock"):
                cli.remove_one(name, True)
        await self.blocking(remove)
        return web.json_response({"message": "sandbox '%s' deleted" % name})

    async def list(self, request):
        q = request.query
        try:
            limit = int(q.get("limit", 50))
            assert 1 <= limit <= 100
        except (ValueError, AssertionError):
            raise Refusal(400, "invalid_request", "limit must be between 1 and 100")
        after = None
        if q.get("cursor"):
            try:
                after = tuple(unb64(q["cursor"]))
                assert len(after) == 2
            except Exception:  # noqa: BLE001 - any bad cursor is a 400
                raise Refusal(400, "invalid_request", "invalid cursor")
        want = {}
        if q.get("labels"):
            try:
                want = json.loads(q["labels"])
                assert isinstance(want, dict)
            except (ValueError, AssertionError):
                raise Refusal(400, "invalid_request", "labels must be a JSON object")
        rows = []
        for n in self.home.names():
            rec = self.home.record(n)
            if rec is not None and all(rec["config"]["labels"].get(k) == v
                                       for k, v in want.items()):
                rows.append(((rec["created_ns"], n), n, rec))
        rows.sort(key=lambda r: r[0])
        if after is not None:
            rows = [r for r in rows if r[0] > after]
        out = {"data": [self.view(n, rec) for _, n, rec in rows[:limit]]}
        if len(rows) > limit:
            out["next_cursor"] = b64(list(rows[limit - 1][0]))
        return web.json_response(out)

    # ------------------------------------------------------------ agent

    def by_id(self, sandbox_id):
        for n in self.home.names():
            rec = self.home.record(n)
            if rec is not None and self.id_of(n, rec) == sandbox_id:
                return n
        raise Refusal(404, "sandbox_not_found", "sandbox not found: %s" % sandbox_id)

    async def agent(self, request):
        name = self.by_id(request.match_info["id"])
        if self.home.status(name) not in ("Running", "Paused"):
            raise Refusal(409, "sandbox_not_running", "sandbox '%s' is not running" % name)
        path = os.path.join(self.home.sockets(name)[0], "agent.sock")
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as e:
            raise Refusal(409, "sandbox_not_running",
                          "sandbox '%s': agent unreachable: %s" % (name, e))
        ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024 * 1024)
        try:
            await ws.prepare(request)
        except Exception:
            writer.close()
            raise
        self.sockets.add(ws)
        up = asyncio.ensure_future(self.client_to_agent(ws, writer))
        down = asyncio.ensure_future(self.agent_to_client(reader, ws))
        try:
            await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (up, down):
                t.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await ws.close()
            self.sockets.discard(ws)
        return ws

    async def client_to_agent(self, ws, writer):
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                writer.write(msg.data)
                await writer.drain()
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                              WSMsgType.ERROR):
                break                   # TEXT (and the rest) are ignored

    def pieces(self, data):
        """`data` cut at random points: sometimes whole, sometimes with a
        one-byte piece, at most 5 pieces."""
        rng = self.rng
        if len(data) < 2 or rng.random() < 0.25:
            return [data]
        cuts = set(rng.randrange(1, len(data)) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.3:          # a one-byte message
            at = rng.randrange(0, len(data) - 1)
            cuts.update((at, at + 1) if at else (1,))
        cuts = sorted(c for c in cuts if 0 < c < len(data))
        return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]

    async def agent_to_client(self, reader, ws):
        rng = self.rng
        while True:
            data = await reader.read(65536)
            if not data:
                break
            buf, eof = bytearray(data), False
            while rng.random() < 0.6:  # coalesce what comes next (if soon)
                try:
                    more = await asyncio.wait_for(reader.read(65536), 0.002)
                except asyncio.TimeoutError:
                    break
                if not more:
                    eof = True
                    break
                buf += more
            for piece in self.pieces(bytes(buf)):
                await ws.send_bytes(piece)
            if eof:
                break
        await ws.close()

    async def close_sockets(self, app):
        self.reaper.cancel()
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)

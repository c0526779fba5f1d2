"""The NestJS main API of the Daytona emulator (daytona.py): the
/api/sandbox lifecycle routes (create, list, start, stop, archive, delete,
labels, intervals, build logs, config) with error format 1."""

import asyncio
import base64
import json
import os
import time

from aiohttp import web

from daytona_base import (DAEMON_VERSION, DEFAULT_SNAPSHOT, TRANSITIONAL,
                          api_error, json_response)
from daytona_sandbox import Sandbox


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

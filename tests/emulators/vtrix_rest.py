"""The REST API (Atlas behind Hermes) of the Vtrix emulator (vtrix.py):
the envelope, body checks and the sandbox and admin routes."""

import asyncio
import json
import os
import time
import uuid
from collections import Counter

from aiohttp import web

from vtrix_base import (CPU_RE, DEFAULT_IMAGE, DEFAULT_TTL, E_BAD_REQUEST,
                        E_CONFLICT, E_NOT_FOUND, HTTP_STATUS_OF,
                        LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT,
                        MAX_EXTEND_SECONDS, MEMORY_RE, AtlasError, rfc3339)
from vtrix_sandbox import Sandbox, payload_env


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

"""The Vtrix emulator (tests/emulators/vtrix.py) checked over the wire with
aiohttp: REST envelope and lifecycle, the JSON-RPC WebSocket, files, faults.

Needs no FUSE mount, but root and bubblewrap (commands run in sandboxes).
Run:
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_vtrix_emulator.py
"""

import asyncio
import base64
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import time
from collections import defaultdict

import pytest

aiohttp = pytest.importorskip("aiohttp")

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulators", "vtrix.py")
TOKEN = "vtx-" + "7e57" * 8
PROJECT = "proj-emulator-test"
HEADERS = {"Authorization": "Bearer " + TOKEN, "X-Project-ID": PROJECT}


def _require_machine():
    if not shutil.which("bwrap") or not shutil.which("nsenter"):
        pytest.skip("bwrap and nsenter are needed by the Vtrix emulator")
    if os.geteuid() != 0:
        pytest.skip("the Vtrix emulator runs commands only as root")


def _processes_with_cmdline(*words):
    """Host pids whose argv is exactly `words` (e.g. "sleep", "3141")."""
    want = ("\0".join(words) + "\0").encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    if f.read() == want:
                        found.append(int(name))
            except OSError:
                pass
    return found


def _processes_mentioning(text):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def _cmdlines(pids):
    out = []
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                out.append("%d: %s" % (pid, f.read().replace(b"\0", b" ").decode(
                    errors="replace")))
        except OSError:
            out.append("%d: gone" % pid)
    return "; ".join(out)


class Emulator:
    """One emulator process on a random port with its own root."""

    def __init__(self, root, delay="0.05"):
        self.root = str(root)
        self.log_path = self.root + ".log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", EMULATOR, "--root", self.root, "--token", TOKEN,
             "--project", PROJECT, "--port", "0", "--delay", delay],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError("emulator did not start:\n" + self.log_text())
        self.port = int(line)
        self.url = "http://127.0.0.1:%d" % self.port

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM; it must exit cleanly and leave no sandbox process."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        self.log.close()
        assert rc == 0, "emulator exited %s\n%s" % (rc, self.log_text())
        # Sandboxes die with the emulator (bwrap --die-with-parent); on a
        # loaded machine the kernel may take a few seconds to reap them.
        deadline = time.monotonic() + 30
        while _processes_mentioning(self.root) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _processes_mentioning(self.root)
        assert not left, "sandbox processes survived: %s" % _cmdlines(left)


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    _require_machine()
    e = Emulator(tmp_path_factory.mktemp("vtrix") / "root")
    yield e
    e.stop()


def run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------ clients

class RpcFailure(Exception):
    def __init__(self, error):
        super().__init__("%s: %s" % (error.get("code"), error.get("message")))
        self.code = error.get("code")
        self.message = error.get("message")


class Rpc:
    """A JSON-RPC client over one socket that checks the routing rules:
    notifications carry params.id and never follow the answer to that id."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.waiters = {}
        self.notes = defaultdict(list)
        self.answer_order = []
        self.late = []                  # notifications after their answer
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                m = json.loads(msg.data)
                assert m["jsonrpc"] == "2.0"
                if "method" in m:
                    assert "id" not in m, m
                    nid = m["params"]["id"]
                    if nid in self.waiters:
                        self.notes[nid].append(m)
                    else:
                        self.late.append(m)
                    continue
                self.answer_order.append(m["id"])
                fut = self.waiters.pop(m["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(m)
        finally:
            for fut in self.waiters.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("socket closed"))
            self.waiters.clear()

    async def send(self, method, params=None):
        self.next_id += 1
        rid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.waiters[rid] = fut
        await self.ws.send_str(json.dumps({"jsonrpc": "2.0", "method": method,
                                           "params": params or {}, "id": rid}))
        return rid, fut

    async def call(self, method, params=None, timeout=60, notes=False):
        rid, fut = await self.send(method, params)
        m = await asyncio.wait_for(fut, timeout)
        if "error" in m:
            raise RpcFailure(m["error"])
        return (m["result"], self.notes.pop(rid, [])) if notes else m["result"]

    async def close(self):
        await self.ws.close()
        await self.reader


class Client:
    def __init__(self, emu, session):
        self.emu = emu
        self.s = session

    async def rest(self, method, path, body=None, headers=None, raw_body=None):
        """(HTTP status, parsed envelope) of one REST call."""
        kw = {"headers": dict(HEADERS if headers is None else headers)}
        if body is not None:
            kw["json"] = body
        elif raw_body is not None:
            kw["data"] = raw_body
        async with self.s.request(method, self.emu.url + path, **kw) as r:
            text = await r.text()
            return r.status, json.loads(text)

    async def ok(self, method, path, body=None):
        status, env = await self.rest(method, path, body)
        assert env["code"] == 0, (status, env)
        assert status == 200
        return env["data"]

    async def wait_status(self, sid, want, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            info = await self.ok("GET", "/api/v1/sandbox/" + sid)
            if info["status"] == want:
                return info
            assert time.monotonic() < deadline, "still %s" % info["status"]
            await asyncio.sleep(0.05)

    async def create(self, **body):
        body.setdefault("user_id", "tester")
        data = await self.ok("POST", "/api/v1/sandbox/create", body)
        sid = data["sandbox"]["id"]
        await self.wait_status(sid, "active")
        return sid

    async def connect(self, sid, protocols=(), headers=None):
        ws = await self.s.ws_connect(
            self.emu.url.replace("http", "ws") + "/api/v1/sandbox/%s/connect" % sid,
            headers=HEADERS if headers is None else headers, protocols=protocols,
            max_msg_size=0)
        return Rpc(ws)

    async def control(self, method, path, body=None):
        async with self.s.request(method, self.emu.url + path, json=body) as r:
            return await r.json()


def with_client(emu, fn):
    async def main():
        async with aiohttp.ClientSession() as s:
            return await fn(Client(emu, s))
    return run(main())


@pytest.fixture(scope="module")
def sid(emu):
    """One active sandbox shared by the module's WebSocket tests."""
    return with_client(emu, lambda c: c.create(labels={"name": "shared"}))


def with_rpc(emu, sid, fn):
    async def body(c):
        rpc = await c.connect(sid)
        try:
            return await fn(rpc, c)
        finally:
            assert not rpc.late, "notifications after their answer: %r" % rpc.late[:3]
            await rpc.close()
    return with_client(emu, body)


def host_dir(emu, sid):
    import urllib.request
    with urllib.request.urlopen(emu.url + "/_emu/sandbox/" + sid) as r:
        return json.loads(r.read())["dir"]


# ============================================================ REST

def test_envelope_on_success_and_failure(emu):
    async def body(c):
        status, env = await c.rest("POST", "/api/v1/sandbox/create", {"user_id": "env"})
        assert status == 200
        assert set(env) == {"code", "message", "data", "request_id"}
        assert env["code"] == 0 and env["message"] == "ok" and env["request_id"]
        info = env["data"]["sandbox"]
        assert info["status"] == "creating" and info["user_id"] == "env"
        for key in ("id", "namespace", "ip", "preview_url", "preview_host", "port",
                    "image_tag", "created_at", "allocated_at", "expire_at",
                    "last_active_at"):
            assert key in info

        # Get answers a bare Info, not wrapped.
        _, env = await c.rest("GET", "/api/v1/sandbox/" + info["id"])
        assert env["code"] == 0 and env["data"]["id"] == info["id"]

        # Unknown sandbox: an envelope with a non-zero code and no data.
        status, env = await c.rest("GET", "/api/v1/sandbox/no-such-sandbox")
        assert env["code"] != 0 and env["data"] is None and env["request_id"]
        assert status == 404
        # Unknown route: an envelope too.
        status, env = await c.rest("GET", "/api/v1/nothing/here")
        assert env["code"] != 0 and status == 404
        # A bad body: a business error comes with HTTP 200 (the status is no signal).
        status, env = await c.rest("POST", "/api/v1/sandbox/create", raw_body=b"{nope")
        assert status == 200 and env["code"] == 40000
        status, env = await c.rest("POST", "/api/v1/sandbox/create", {"user_id": ""})
        assert env["code"] == 40000
        status, env = await c.rest("POST", "/api/v1/sandbox/create",
                                   {"user_id": "x", "spec": {"cpu": "lots"}})
        assert env["code"] == 40000
    with_client(emu, body)


def test_auth_and_project_header(emu):
    async def body(c):
        path = "/api/v1/sandbox/list"
        status, env = await c.rest("POST", path, {}, headers={"X-Project-ID": PROJECT})
        assert status == 401 and env["code"] == 40100
        status, env = await c.rest("POST", path, {}, headers={
            "Authorization": "Bearer wrong", "X-Project-ID": PROJECT})
        assert env["code"] == 40100
        status, env = await c.rest("POST", path, {}, headers={
            "Authorization": "Bearer " + TOKEN})
        assert status == 403 and env["code"] == 40300
        status, env = await c.rest("POST", path, {}, headers={
            "Authorization": "Bearer " + TOKEN, "X-Project-ID": "other"})
        assert env["code"] == 40300
        # A sandbox id that looks like a route is no way around the checks.
        status, env = await c.rest("GET", "/api/v1/sandbox/connect", headers={})
        assert env["code"] == 40100
        # R1 sent X-Service-ID instead.
        status, env = await c.rest("POST", path, {}, headers={
            "Authorization": "Bearer " + TOKEN, "X-Service-ID": PROJECT})
        assert status == 200 and env["code"] == 0
    with_client(emu, body)


def test_list_pagination_and_filters(emu):
    async def body(c):
        user = "pager-%d" % random.randrange(1 << 30)
        ids = [(await c.ok("POST", "/api/v1/sandbox/create",
                           {"user_id": user}))["sandbox"]["id"] for _ in range(3)]
        page = await c.ok("POST", "/api/v1/sandbox/list", {"user_id": user, "limit": 1})
        assert len(page["items"]) == 1 and page["items"][0]["id"] == ids[0]
        assert page["pagination"] == {"total": 3, "limit": 1, "offset": 0,
                                      "has_more": True}
        page = await c.ok("POST", "/api/v1/sandbox/list",
                          {"user_id": user, "limit": 1, "offset": 2})
        assert [i["id"] for i in page["items"]] == [ids[2]]
        assert page["pagination"]["has_more"] is False
        page = await c.ok("POST", "/api/v1/sandbox/list",
                          {"user_id": user, "offset": 10})
        assert page["items"] == [] and page["pagination"]["has_more"] is False
        page = await c.ok("POST", "/api/v1/sandbox/list", {"user_id": user})
        assert page["pagination"]["limit"] > 1 and len(page["items"]) == 3
        page = await c.ok("POST", "/api/v1/sandbox/list",
                          {"user_id": user, "status": "stopped"})
        assert page["items"] == []
        page = await c.ok("POST", "/api/v1/sandbox/list", {"status": "no-such-status"})
        assert page["items"] == []
        # R4: one POST /api/v1/sandboxes, told apart by the body.
        page = await c.ok("POST", "/api/v1/sandboxes", {})
        assert "items" in page and "pagination" in page
        page = await c.ok("POST", "/api/v1/sandboxes", {"user_id": user, "limit": 2})
        assert len(page["items"]) == 2
        made = await c.ok("POST", "/api/v1/sandboxes", {"user_id": user})
        assert made["sandbox"]["user_id"] == user
        info = await c.ok("GET", "/api/v1/sandboxes/" + made["sandbox"]["id"])
        assert info["id"] == made["sandbox"]["id"]
        for sid in ids + [made["sandbox"]["id"]]:
            await c.ok("DELETE", "/api/v1/sandbox/" + sid)
    with_client(emu, body)


def test_state_machine_and_illegal_transitions(emu):
    async def body(c):
        made = await c.ok("POST", "/api/v1/sandbox/create", {
            "user_id": "states", "labels": {"suite": "states"},
            "spec": {"cpu": "500m", "memory": "512Mi", "image": "img:1"}})
        sid = made["sandbox"]["id"]
        # The first poll always reports creating, whatever the pod does.
        await asyncio.sleep(0.5)
        assert (await c.ok("GET", "/api/v1/sandbox/" + sid))["status"] == "creating"
        info = await c.wait_status(sid, "active")
        assert info["spec"]["cpu"] == "500m" and info["image_tag"] == "img:1"
        assert info["labels"] == {"suite": "states"} and info["allocated_at"]

        async def code_of(method, path, body=None):
            return (await c.rest(method, "/api/v1/sandbox/%s%s" % (sid, path), body))[1]["code"]

        assert await code_of("POST", "/start") == 40900
        assert (await c.ok("GET", "/api/v1/sandbox/" + sid))["status"] == "active"
        assert await code_of("PATCH", "", {}) == 40000
        assert await code_of("POST", "/stop") == 0
        assert await code_of("POST", "/stop") == 40900       # already stopping
        await c.wait_status(sid, "stopped")
        assert await code_of("POST", "/stop") == 40900
        assert await code_of("POST", "/restart") == 40900
        assert await code_of("PATCH", "", {"image": "img:2"}) == 40900
        assert await code_of("POST", "/configure") == 40900
        assert (await c.ok("GET", "/api/v1/sandbox/" + sid))["status"] == "stopped"

        # A socket can be opened on a stopped sandbox; calls fail.
        rpc = await c.connect(sid)
        with pytest.raises(RpcFailure) as e:
            await rpc.call("stat", {"path": "/"})
        assert e.value.code == -32000 and "not active" in e.value.message
        await rpc.close()

        assert await code_of("POST", "/start") == 0
        assert (await c.ok("GET", "/api/v1/sandbox/" + sid))["status"] == "creating"
        await c.wait_status(sid, "active")
        assert await code_of("POST", "/restart") == 0
        await c.wait_status(sid, "active")

        # Update restarts the pod; payload env reaches commands.
        assert await code_of("PATCH", "", {"spec": {"cpu": "2"}, "payloads": [
            {"api": "/api/v1/env", "body": {"PAYLOAD_VAR": "from-payload"}}]}) == 0
        assert (await c.ok("GET", "/api/v1/sandbox/" + sid))["status"] == "creating"
        info = await c.wait_status(sid, "active")
        assert info["spec"]["cpu"] == "2" and info["spec"]["memory"] == "512Mi"
        rpc = await c.connect(sid)
        r = await rpc.call("exec", {"command": "echo $PAYLOAD_VAR"})
        assert r["output"] == "from-payload\n"
        await rpc.close()

        # A pod going away closes its sockets.
        rpc = await c.connect(sid)
        assert await code_of("POST", "/configure", {"payloads": []}) == 0
        await asyncio.wait_for(rpc.reader, 5)
        assert rpc.ws.closed and rpc.ws.close_code == 1001
        await c.wait_status(sid, "active")

        assert await code_of("DELETE", "") == 0
        assert (await c.ok("GET", "/api/v1/sandbox/" + sid))["status"] == "destroying"
        assert await code_of("DELETE", "") == 40900
        deadline = time.monotonic() + 10
        while (await c.rest("GET", "/api/v1/sandbox/" + sid))[1]["code"] == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await code_of("DELETE", "") == 40400
        assert await code_of("POST", "/start") == 40400
    with_client(emu, body)


def test_ttl_extend_and_expiry(emu):
    def ts(s):
        return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))

    async def body(c):
        made = await c.ok("POST", "/api/v1/sandbox/create",
                          {"user_id": "ttl", "ttl_hours": 3})
        info = made["sandbox"]
        sid = info["id"]
        assert abs(ts(info["expire_at"]) - ts(info["created_at"]) - 3 * 3600) <= 1
        before = ts(info["expire_at"])
        await c.ok("POST", "/api/v1/sandbox/%s/extend" % sid, {"hours": 2})
        after = ts((await c.ok("GET", "/api/v1/sandbox/" + sid))["expire_at"])
        assert after - before == 7200
        await c.ok("POST", "/api/v1/sandbox/%s/extend" % sid, {"seconds": 600})
        after2 = ts((await c.ok("GET", "/api/v1/sandbox/" + sid))["expire_at"])
        assert after2 - after == 600
        await c.ok("POST", "/api/v1/sandbox/%s/extend" % sid, {})   # default 12 h
        after3 = ts((await c.ok("GET", "/api/v1/sandbox/" + sid))["expire_at"])
        assert after3 - after2 == 12 * 3600
        _, env = await c.rest("POST", "/api/v1/sandbox/%s/extend" % sid, {"seconds": 90000})
        assert env["code"] == 40000
        _, env = await c.rest("POST", "/api/v1/sandbox/nope/extend", {"hours": 1})
        assert env["code"] == 40400

        # Past expire_at the sandbox is destroyed.
        await c.control("POST", "/_emu/sandbox/%s/expire" % sid, {"seconds": 0})
        deadline = time.monotonic() + 10
        while (await c.rest("GET", "/api/v1/sandbox/" + sid))[1]["code"] == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    with_client(emu, body)


def test_admin_pool_status(emu):
    async def body(c):
        pool = await c.ok("GET", "/admin/pool/status")
        assert pool["healthy"] is True and pool["total"] >= pool["active"]
    with_client(emu, body)


# ============================================================ WebSocket

def test_ws_subprotocol_echo_and_auth(emu, sid):
    async def body(c):
        proto = "bearer." + TOKEN
        # The Node client's way: token as a subprotocol, echoed back.
        rpc = await c.connect(sid, protocols=[proto], headers={"X-Project-ID": PROJECT})
        assert rpc.ws.protocol == proto
        assert (await rpc.call("stat", {"path": "/"}))["is_dir"] is True
        await rpc.close()
        # A browser can send neither header: the subprotocol alone will do.
        rpc = await c.connect(sid, protocols=[proto], headers={})
        assert rpc.ws.protocol == proto
        await rpc.close()
        rpc = await c.connect(sid)          # Go: headers, no subprotocol
        assert rpc.ws.protocol is None
        await rpc.close()
        for headers, protocols, code in (
                ({"X-Project-ID": PROJECT}, [], 401),
                ({"Authorization": "Bearer " + TOKEN}, [], 403),
                ({}, ["bearer.wrong"], 401),
                ({"X-Project-ID": "other"}, [proto], 403)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await c.connect(sid, headers=headers, protocols=protocols)
            assert e.value.status == code
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await c.connect("no-such-sandbox")
        assert e.value.status == 404
    with_client(emu, body)


def test_ws_twenty_calls_in_flight(emu, sid):
    async def body(rpc, c):
        sent = []
        for i in range(20):
            # Later calls finish first.
            rid, fut = await rpc.send("exec", {
                "command": "sleep %.2f; echo call-%d" % ((20 - i) * 0.05, i)})
            sent.append((rid, i, fut))
        for rid, i, fut in sent:
            m = await asyncio.wait_for(fut, 60)
            assert m["id"] == rid
            assert m["result"]["output"] == "call-%d\n" % i
            kinds = [n["method"] for n in rpc.notes.pop(rid)]
            assert kinds[0] == "exec.start" and kinds[-1] == "exec.done"
        order = list(rpc.answer_order)
        assert sorted(order) == [rid for rid, _, _ in sent]
        assert order != sorted(order), "answers came back in request order"
    with_rpc(emu, sid, body)


def test_exec_exit_codes_env_stdin_cwd(emu, sid):
    async def body(rpc, c):
        r, notes = await rpc.call("exec", {
            "command": "echo out; echo err >&2; exit 7"}, notes=True)
        assert r["exit_code"] == 7 and r["cmd_id"] and r["started_at"]
        assert sorted(r["output"].splitlines()) == ["err", "out"]
        methods = [n["method"] for n in notes]
        assert methods[0] == "exec.start" and methods[-1] == "exec.done"
        assert notes[-1]["params"]["exit_code"] == 7
        assert "".join(n["params"]["data"] for n in notes
                       if n["method"] == "exec.stdout") == "out\n"
        assert "".join(n["params"]["data"] for n in notes
                       if n["method"] == "exec.stderr") == "err\n"
        assert all(n["params"]["id"] == notes[0]["params"]["id"] for n in notes)

        assert (await rpc.call("exec", {"command": "false"}))["exit_code"] != 0
        r = await rpc.call("exec", {"command": "pwd; echo $A-$B",
                                    "working_dir": "/tmp", "env": {"A": "1", "B": "2"}})
        assert r["output"] == "/tmp\n1-2\n"
        r = await rpc.call("exec", {"command": "cat; echo", "stdin_data": "fed in"})
        assert r["output"] == "fed in\n"
        r = await rpc.call("exec", {"command": "cat", "stdin": "r1 key"})
        assert r["output"] == "r1 key"
        await rpc.call("exec", {"command": "export LEAK=1"})
        r = await rpc.call("exec", {"command": "echo ${LEAK:-unset}"})
        assert r["output"] == "unset\n"
        r = await rpc.call("exec", {"command": "head -c 600000 /dev/zero | tr '\\0' A"})
        assert len(r["output"]) == 600000
        with pytest.raises(RpcFailure) as e:
            await rpc.call("exec", {"command": "true", "working_dir": "/no/such/dir"})
        assert e.value.code == -32000
        t0 = time.monotonic()
        with pytest.raises(RpcFailure) as e:
            await rpc.call("exec", {"command": "sleep 30", "timeout": 1})
        assert time.monotonic() - t0 < 5 and "timed out" in e.value.message
        with pytest.raises(RpcFailure) as e:
            await rpc.call("no_such_method")
        assert e.value.code == -32601
        with pytest.raises(RpcFailure) as e:
            await rpc.call("exec", {"command": 42})
        assert e.value.code == -32602
    with_rpc(emu, sid, body)


def test_detached_exec_and_exec_logs_replay(emu, sid):
    async def body(rpc, c):
        d = await rpc.call("exec", {"detached": True, "command":
                                    "echo out1; echo err1 >&2; sleep 0.4; echo out2; exit 4"})
        assert d["cmd_id"] and d["pid"] > 0 and d["started_at"]
        assert not rpc.notes.get(rpc.next_id)

        # Live: attached while it runs.
        r, notes = await rpc.call("exec_logs", {"cmd_id": d["cmd_id"]}, notes=True)
        assert r["exit_code"] == 4 and r["cmd_id"] == d["cmd_id"]

        def streams(notes):
            out = "".join(n["params"]["data"] for n in notes if n["method"] == "exec.stdout")
            err = "".join(n["params"]["data"] for n in notes if n["method"] == "exec.stderr")
            return out, err
        assert streams(notes) == ("out1\nout2\n", "err1\n")
        assert notes[0]["method"] == "exec.start" and notes[-1]["method"] == "exec.done"
        # Replayed, as often as asked.
        for _ in range(2):
            r, notes = await rpc.call("exec_logs", {"cmd_id": d["cmd_id"]}, notes=True)
            assert streams(notes) == ("out1\nout2\n", "err1\n")
            assert r["exit_code"] == 4 and "out2" in r["output"]
        # From another socket too: records belong to the sandbox.
        other = await c.connect(sid)
        r = await other.call("exec_logs", {"cmd_id": d["cmd_id"]})
        assert r["exit_code"] == 4
        await other.close()
        with pytest.raises(RpcFailure) as e:
            await rpc.call("exec_logs", {"cmd_id": "nope"})
        assert e.value.code == -32000
    with_rpc(emu, sid, body)


def test_exec_logs_replay_keeps_the_last_512_kib(emu, sid):
    async def body(rpc, c):
        d = await rpc.call("exec", {"detached": True, "command":
                                    "sleep 0.5; head -c 700000 /dev/zero | tr '\\0' A; echo END"})
        r, notes = await rpc.call("exec_logs", {"cmd_id": d["cmd_id"]}, notes=True)
        # Attached from the start, the live stream is complete...
        assert sum(len(n["params"].get("data", "")) for n in notes
                   if n["method"] == "exec.stdout") == 700004
        # ...but the buffer, and so a later replay, keeps only the tail.
        assert r["output"].endswith("AEND\n") and len(r["output"]) <= 512 * 1024
        r, notes = await rpc.call("exec_logs", {"cmd_id": d["cmd_id"]}, notes=True)
        replay = "".join(n["params"]["data"] for n in notes if n["method"] == "exec.stdout")
        assert replay == r["output"] and 400 * 1024 < len(replay) <= 512 * 1024
    with_rpc(emu, sid, body)


@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGKILL", 137), ("SIGINT", 130)])
def test_kill_reaches_children(emu, sid, sig, code):
    n = str(random.randrange(100000, 999999))

    async def body(rpc, c):
        if sig == "SIGINT":
            # Background jobs of a non-interactive shell ignore SIGINT, so
            # the child here is a foreground one.
            command = "sh -c 'sleep %s; echo never'; echo never" % n
        else:
            command = "sh -c 'sleep %s; echo never' & sleep %s; echo never" % (n, n)
        d = await rpc.call("exec", {"command": command, "detached": True})
        deadline = time.monotonic() + 5
        while len(_processes_with_cmdline("sleep", n)) < (1 if sig == "SIGINT" else 2):
            assert time.monotonic() < deadline, "the sleeps did not start"
            await asyncio.sleep(0.02)
        await rpc.call("kill", {"cmd_id": d["cmd_id"], "signal": sig})
        r = await rpc.call("exec_logs", {"cmd_id": d["cmd_id"]}, timeout=10)
        assert r["exit_code"] == code
        assert "never" not in r["output"]
        deadline = time.monotonic() + 3
        while _processes_with_cmdline("sleep", n):
            assert time.monotonic() < deadline, "a child survived %s" % sig
            await asyncio.sleep(0.02)
        # Killing a finished command is harmless; an unknown one is not.
        await rpc.call("kill", {"cmd_id": d["cmd_id"]})
        with pytest.raises(RpcFailure):
            await rpc.call("kill", {"cmd_id": "nope", "signal": "SIGTERM"})
    with_rpc(emu, sid, body)


def test_kill_lets_a_trapping_command_report_its_own_exit(emu, sid):
    async def body(rpc, c):
        d = await rpc.call("exec", {"detached": True, "command":
                                    "trap 'echo caught; exit 3' TERM; "
                                    "echo ready; while :; do sleep 0.05; done"})
        await asyncio.sleep(0.3)
        await rpc.call("kill", {"cmd_id": d["cmd_id"], "signal": "TERM"})
        r = await rpc.call("exec_logs", {"cmd_id": d["cmd_id"]}, timeout=10)
        assert r["exit_code"] == 3 and "caught" in r["output"]
    with_rpc(emu, sid, body)


# ============================================================ files

def test_read_truncation_images_and_missing(emu, sid):
    async def body(rpc, c):
        await rpc.call("write", {"path": "/tmp/big.txt", "content": "a" * 300000})
        r = await rpc.call("read", {"path": "/tmp/big.txt"})
        assert r["type"] == "text" and r["truncated"] is True
        assert r["content"] == "a" * 204800
        # Truncation never splits a character.
        await rpc.call("write", {"path": "/tmp/edge.txt",
                                 "content": "a" * 204799 + "\u00e9" * 10})
        r = await rpc.call("read", {"path": "/tmp/edge.txt"})
        assert r["truncated"] is True and r["content"] == "a" * 204799
        await rpc.call("write", {"path": "/tmp/exact.txt", "content": "b" * 204800})
        r = await rpc.call("read", {"path": "/tmp/exact.txt"})
        assert r["truncated"] is False and len(r["content"]) == 204800
        await rpc.call("write", {"path": "/tmp/empty.txt", "content": ""})
        assert (await rpc.call("read", {"path": "/tmp/empty.txt"}))["content"] == ""
        uni = "\u4f60\u597d\u4e16\u754c \U0001F30D\n\u00f1o\u00f1o\n"
        w = await rpc.call("write", {"path": "/tmp/deep/er/uni.txt", "content": uni})
        assert w["bytes_written"] == len(uni.encode())
        assert (await rpc.call("read", {"path": "/tmp/deep/er/uni.txt"}))["content"] == uni

        png = b"\x89PNG\r\n\x1a\n" + os.urandom(300000)
        await rpc.call("write_binary", {"path": "/tmp/pic.png",
                                        "data": base64.b64encode(png).decode()})
        r = await rpc.call("read", {"path": "/tmp/pic.png"})
        assert r["type"] == "image" and r["mime_type"] == "image/png"
        assert base64.b64decode(r["data"]) == png
        for head, mime in ((b"\xff\xd8\xff\xe0", "image/jpeg"), (b"GIF89a", "image/gif"),
                           (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp")):
            await rpc.call("write_binary", {"path": "/tmp/pic",
                                            "data": base64.b64encode(head + b"x").decode()})
            assert (await rpc.call("read", {"path": "/tmp/pic"}))["mime_type"] == mime
        # Other binary files come back as lossy text.
        await rpc.call("write_binary", {"path": "/tmp/bin",
                                        "data": base64.b64encode(b"\xff\xfeab").decode()})
        r = await rpc.call("read", {"path": "/tmp/bin"})
        assert r["type"] == "text" and r["content"].endswith("ab")

        for path in ("/tmp/no-such-file", "/no/such/dir/file"):
            with pytest.raises(RpcFailure) as e:
                await rpc.call("read", {"path": path})
            assert e.value.code == -32001
        with pytest.raises(RpcFailure) as e:
            await rpc.call("read", {"path": "/tmp"})
        assert e.value.code == -32000
    with_rpc(emu, sid, body)


def test_read_stream_byte_exact_and_chunked(emu, sid):
    data = os.urandom(5 << 20)
    root = host_dir(emu, sid)
    with open(os.path.join(root, "tmp", "host-made.bin"), "wb") as f:
        f.write(data)

    async def body(rpc, c):
        r, notes = await rpc.call("read_stream", {"path": "/tmp/host-made.bin"}, notes=True)
        assert r == {"type": "text", "total_bytes": len(data)}
        assert all(n["method"] == "read_stream.chunk" for n in notes)
        chunks = [base64.b64decode(n["params"]["data"]) for n in notes]
        assert all(len(ch) == 65536 for ch in chunks)
        assert b"".join(chunks) == data

        # write_binary then read_stream: the round trip is byte-exact.
        back = data[::-1]
        await rpc.call("write_binary", {"path": "/tmp/round.bin",
                                        "data": base64.b64encode(back).decode()})
        r, notes = await rpc.call("read_stream", {"path": "/tmp/round.bin",
                                                  "chunk_size": 1 << 20}, notes=True)
        assert b"".join(base64.b64decode(n["params"]["data"]) for n in notes) == back
        assert len(notes) == 5

        await rpc.call("write", {"path": "/tmp/y.txt", "content": "Y" * 200000})
        r, notes = await rpc.call("read_stream", {"path": "/tmp/y.txt",
                                                  "chunk_size": 32768}, notes=True)
        assert r["total_bytes"] == 200000 and len(notes) == 7
        r, notes = await rpc.call("read_stream", {"path": "/tmp/empty.txt"}, notes=True)
        assert r["total_bytes"] == 0 and notes == []
        png = b"\x89PNG\r\n\x1a\n" + b"p" * 10
        await rpc.call("write_binary", {"path": "/tmp/s.png",
                                        "data": base64.b64encode(png).decode()})
        r = await rpc.call("read_stream", {"path": "/tmp/s.png"})
        assert r == {"type": "image", "total_bytes": len(png), "mime_type": "image/png"}
        with pytest.raises(RpcFailure) as e:
            await rpc.call("read_stream", {"path": "/tmp/missing.bin"})
        assert e.value.code == -32001
    with_rpc(emu, sid, body)


def test_write_binary_mode_and_files(emu, sid):
    root = host_dir(emu, sid)

    async def body(rpc, c):
        script = b"#!/bin/sh\necho script-ran\n"
        await rpc.call("write_binary", {"path": "/work/bin/run.sh", "mode": 0o755,
                                        "data": base64.b64encode(script).decode()})
        host = os.path.join(root, "work", "bin", "run.sh")
        assert stat.S_IMODE(os.stat(host).st_mode) == 0o755
        assert open(host, "rb").read() == script
        r = await rpc.call("exec", {"command": "/work/bin/run.sh"})
        assert r["output"] == "script-ran\n"
        await rpc.call("write_binary", {"path": "/work/plain", "data": "AAEC"})
        assert stat.S_IMODE(os.stat(os.path.join(root, "work", "plain")).st_mode) == 0o644
        assert open(os.path.join(root, "work", "plain"), "rb").read() == b"\0\1\2"
        # Rewriting keeps the inode (in place), mode changes only when given.
        ino = os.stat(host).st_ino
        await rpc.call("write_binary", {"path": "/work/bin/run.sh", "data": ""})
        assert os.stat(host).st_ino == ino and os.path.getsize(host) == 0
        assert stat.S_IMODE(os.stat(host).st_mode) == 0o755
        with pytest.raises(RpcFailure) as e:
            await rpc.call("write_binary", {"path": "/work/x", "data": "not base64!"})
        assert e.value.code == -32602

        entries = await rpc.call("list_files", {"path": "/work"})
        assert [(e["name"], e["path"], e["is_dir"]) for e in entries] == [
            ("bin", "/work/bin", True), ("plain", "/work/plain", False)]
        assert entries[1]["size"] == 3 and entries[1]["modified_at"].endswith("Z")
        with pytest.raises(RpcFailure) as e:
            await rpc.call("list_files", {"path": "/work/plain"})
        assert e.value.code == -32000
        with pytest.raises(RpcFailure) as e:
            await rpc.call("list_files", {"path": "/nope"})
        assert e.value.code == -32001

        st = await rpc.call("stat", {"path": "/work/plain"})
        assert st["exists"] and st["is_file"] and not st["is_dir"] and st["size"] == 3
        st = await rpc.call("stat", {"path": "/work/missing"})
        assert st == {"exists": False, "size": 0, "is_dir": False, "is_file": False,
                      "modified_at": None}

        await rpc.call("write", {"path": "/work/e.txt", "content": "one two two\n"})
        r = await rpc.call("edit", {"path": "/work/e.txt", "old_text": "one",
                                    "new_text": "1"})
        assert r["message"]
        assert (await rpc.call("read", {"path": "/work/e.txt"}))["content"] == "1 two two\n"
        for old in ("two", "three"):
            with pytest.raises(RpcFailure):
                await rpc.call("edit", {"path": "/work/e.txt", "old_text": old,
                                        "new_text": "x"})
        # MkDir is an exec.
        await rpc.call("exec", {"command": 'mkdir -p "/work/a/b"'})
        assert (await rpc.call("stat", {"path": "/work/a/b"}))["is_dir"]
    with_rpc(emu, sid, body)


def test_paths_stay_inside_the_sandbox(emu, sid):
    root = host_dir(emu, sid)
    outside = os.path.dirname(root)

    async def body(rpc, c):
        await rpc.call("exec", {"command": "ln -sfn / /tmp/escape; ln -sfn ../../../.. /tmp/up"})
        own = (await rpc.call("read", {"path": "/etc/passwd"}))["content"]
        for path in ("/tmp/escape/etc/passwd", "/tmp/up/etc/passwd",
                     "/../../../../etc/passwd", "../../../etc/passwd"):
            assert (await rpc.call("read", {"path": path}))["content"] == own
        await rpc.call("write_binary", {"path": "/../../escaped.txt", "data": "eA=="})
        await rpc.call("write", {"path": "/tmp/up/escaped2.txt", "content": "x"})
        assert os.path.exists(os.path.join(root, "escaped.txt"))
        assert os.path.exists(os.path.join(root, "escaped2.txt"))
        assert not os.path.exists(os.path.join(outside, "escaped.txt"))
        assert not os.path.exists(os.path.join(outside, "escaped2.txt"))
        names = [e["name"] for e in await rpc.call("list_files", {"path": "/tmp/escape"})]
        assert "escaped.txt" in names and "etc" in names
        # Commands see the same tree.
        r = await rpc.call("exec", {"command": "cat /escaped.txt; ls /proc | head -c0"})
        assert r["output"] == "x"
    with_rpc(emu, sid, body)


def test_commands_see_each_other_in_proc(emu, sid):
    async def body(rpc, c):
        n = str(random.randrange(100000, 999999))
        d = await rpc.call("exec", {"command": "exec sleep " + n, "detached": True})
        # Its shell may not have become sleep yet: look until it has.
        r = await rpc.call("exec", {"command": (
            "for i in $(seq 200); do c=$(tr '\\0' ' ' < /proc/%d/cmdline); "
            "case $c in sleep*) break;; esac; sleep 0.02; done; printf %%s \"$c\"")
            % d["pid"]})
        assert r["output"] == "sleep %s " % n
        await rpc.call("kill", {"cmd_id": d["cmd_id"], "signal": "SIGKILL"})
        assert (await rpc.call("exec_logs", {"cmd_id": d["cmd_id"]}))["exit_code"] == 137
    with_rpc(emu, sid, body)


# ============================================================ faults, stats

def test_ws_faults_drop_and_slow(emu, sid):
    async def body(c):
        rpc = await c.connect(sid)
        await rpc.call("write", {"path": "/tmp/f.txt", "content": "z" * 300000})
        await c.control("POST", "/_emu/fault", {"kind": "ws_drop", "method": "read_stream"})
        rid, fut = await rpc.send("read_stream", {"path": "/tmp/f.txt", "chunk_size": 1000})
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(fut, 10)
        await rpc.reader
        assert rpc.ws.closed
        assert len(rpc.notes[rid]) == 1           # one chunk, then the socket died

        rpc = await c.connect(sid)                # the fault is used up
        r = await rpc.call("read_stream", {"path": "/tmp/f.txt"})
        assert r["total_bytes"] == 300000
        # A call without notifications is dropped just before its answer.
        await c.control("POST", "/_emu/fault", {"kind": "ws_drop", "method": "write"})
        with pytest.raises(ConnectionError):
            await rpc.call("write", {"path": "/tmp/dropped.txt", "content": "done"})
        rpc = await c.connect(sid)
        assert (await rpc.call("read", {"path": "/tmp/dropped.txt"}))["content"] == "done"

        await c.control("POST", "/_emu/fault", {"kind": "ws_slow", "method": "stat",
                                                "delay": 1.0})
        t0 = time.monotonic()
        slow_id, slow = await rpc.send("stat", {"path": "/"})
        fast_id, fast = await rpc.send("stat", {"path": "/tmp"})
        await asyncio.wait_for(fast, 5)
        assert not slow.done()
        await asyncio.wait_for(slow, 5)
        assert time.monotonic() - t0 >= 1.0
        assert rpc.answer_order[-2:] == [fast_id, slow_id]

        await c.control("POST", "/_emu/fault", {"kind": "ws_error", "code": -32099})
        with pytest.raises(RpcFailure) as e:
            await rpc.call("stat", {"path": "/"})
        assert e.value.code == -32099
        await rpc.close()
    with_client(emu, body)


def test_rest_faults(emu):
    async def body(c):
        path = "/api/v1/sandbox/list"
        await c.control("POST", "/_emu/fault", {"kind": "status", "status": 503,
                                                "prefix": path})
        status, env = await c.rest("POST", path, {})
        assert status == 503 and env["code"] == 50300
        await c.control("POST", "/_emu/fault", {"kind": "error_code", "code": 12345,
                                                "prefix": path})
        status, env = await c.rest("POST", path, {})
        assert status == 200 and env["code"] == 12345
        await c.control("POST", "/_emu/fault", {"kind": "status", "status": 502,
                                                "raw": True, "prefix": path})
        async with c.s.post(emu.url + path, json={}, headers=HEADERS) as r:
            assert r.status == 502
            with pytest.raises(ValueError):
                json.loads(await r.text())
        await c.control("POST", "/_emu/fault", {"kind": "slow", "delay": 0.5,
                                                "prefix": path, "method": "POST"})
        t0 = time.monotonic()
        status, env = await c.rest("POST", path, {})
        assert env["code"] == 0 and time.monotonic() - t0 >= 0.5
        await c.control("POST", "/_emu/fault", {"kind": "drop", "prefix": path})
        with pytest.raises(aiohttp.ClientError):
            await c.rest("POST", path, {})
        await c.control("POST", "/_emu/fault", {"kind": "status", "count": 5})
        await c.control("POST", "/_emu/fault/clear")
        assert (await c.rest("POST", path, {}))[1]["code"] == 0
    with_client(emu, body)


def test_stats_and_control_routes(emu, sid):
    async def body(c):
        await c.control("POST", "/_emu/reset")
        rpc = await c.connect(sid)
        await rpc.call("write", {"path": "/tmp/s.txt", "content": "s"})
        await rpc.call("read_stream", {"path": "/tmp/s.txt"})
        await rpc.call("read_stream", {"path": "/tmp/s.txt"})
        await rpc.close()
        await c.rest("GET", "/api/v1/sandbox/" + sid)
        await c.rest("POST", "/api/v1/sandbox/%s/start" % sid)
        stats = await c.control("GET", "/_emu/stats")
        routes = stats["routes"]
        assert routes["WS read_stream"] == 2 and routes["WS write"] == 1
        assert routes["GET /api/v1/sandbox/{id}"] == 1
        assert routes["POST /api/v1/sandbox/{id}/start"] == 1
        assert routes["GET /api/v1/sandbox/{id}/connect"] == 1
        assert stats["total"] == sum(routes.values())
        info = await c.control("GET", "/_emu/sandbox/shared")
        assert info["id"] == sid and info["state"] == "active"
        assert os.path.isdir(os.path.join(info["dir"], "etc"))
    with_client(emu, body)
    with open(emu.log_path, "rb") as f:
        text = f.read().decode()
    assert TOKEN not in text and "WS %s read_stream" % sid in text

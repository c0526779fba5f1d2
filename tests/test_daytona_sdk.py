"""The Daytona emulator (tests/emulators/daytona.py) against the official
TypeScript SDK, plus the server behaviour the SDK does not exercise.

Needs no FUSE mount.  Run:
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_daytona_sdk.py
"""

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulators", "daytona.py")
SDK_DIR = os.path.join(HERE, "sdk", "daytona")
KEY = "dtn_" + "ab" * 32


def _require_bwrap():
    # Commands run in bubblewrap sandboxes; without it only the main API
    # would work, and every test here runs commands.
    if not shutil.which("bwrap") or not shutil.which("nsenter"):
        pytest.skip("bwrap and nsenter are needed by the Daytona emulator")
    if os.geteuid() != 0:
        pytest.skip("the Daytona emulator runs commands only as root")


class Emulator:
    """One emulator process on a random port with its own root."""

    def __init__(self, root, *flags, delay="0.05"):
        self.root = str(root)
        self.log_path = os.path.join(os.path.dirname(self.root),
                                     os.path.basename(self.root) + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", EMULATOR, "--root", self.root,
             "--api-key", KEY, "--port", "0", "--delay", delay, *flags],
            stdout=subprocess.PIPE, stderr=self.log)
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
        rc = self.proc.wait(15)
        self.log.close()
        assert rc == 0, "emulator exited %s\n%s" % (rc, self.log_text())
        assert not _processes_mentioning(self.root), \
            "sandbox processes survived the emulator"

    # -- HTTP helpers (urllib; errors are returned, not raised) --

    def call(self, method, path, body=None, headers=None, auth=True, raw=None):
        data = raw
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if auth:
            hdrs.setdefault("Authorization", "Bearer " + KEY)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method, path, body=None, headers=None, expect=200):
        status, _, data = self.call(method, path, body, headers)
        assert status == expect, "%s %s -> %s %r" % (method, path, status, data)
        return json.loads(data) if data else None

    def create(self, **body):
        return self.json("POST", "/api/sandbox", body)

    def wait_state(self, sid, state, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, _, data = self.call("GET", "/api/sandbox/" + sid)
            got = json.loads(data)["state"] if status == 200 else status
            if got == state:
                return
            time.sleep(0.02)
        raise AssertionError("sandbox %s never reached %s (last %s)" % (sid, state, got))


def _processes_mentioning(text):
    """Host processes whose command line mentions `text`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    _require_bwrap()
    e = Emulator(tmp_path_factory.mktemp("daytona") / "root")
    yield e
    e.stop()


@pytest.fixture
def sandbox(emu):
    """A started sandbox: (id, toolbox path prefix)."""
    sb = emu.create(labels={"test": uuid.uuid4().hex})
    assert sb["state"] == "started"
    yield sb["id"], "/toolbox/" + sb["id"]
    emu.call("DELETE", "/api/sandbox/" + sb["id"])


def run(emu, tb, command, **extra):
    return emu.json("POST", tb + "/process/execute", dict(command=command, **extra))


# ------------------------------------------------------------------ the SDK

def test_sdk_check(tmp_path):
    """The official TypeScript SDK drives the emulator end to end."""
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    _require_bwrap()
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules")):
        npm = shutil.which("npm")
        if not npm:
            pytest.skip("npm is not installed and node_modules is missing")
        cp = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", SDK_DIR],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=600)
        assert cp.returncode == 0, "npm ci failed:\n" + cp.stdout.decode(errors="replace")
    e = Emulator(tmp_path / "root")
    try:
        env = dict(os.environ, DAYTONA_API_URL=e.url + "/api", DAYTONA_API_KEY=KEY)
        env.pop("DAYTONA_TARGET", None)
        try:
            cp = subprocess.run(["node", "check.mjs"], cwd=SDK_DIR, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=180)
            out, rc = cp.stdout.decode(errors="replace"), cp.returncode
        except subprocess.TimeoutExpired as t:
            out, rc = (t.stdout or b"").decode(errors="replace"), "timeout"
        assert rc == 0, "check.mjs failed (%s):\n%s\n--- emulator log ---\n%s" % (
            rc, out, e.log_text()[-6000:])
    finally:
        e.stop()


# --------------------------------------------------------- main API

def test_api_404_is_format_1(emu):
    status, headers, data = emu.call("GET", "/api/sandbox/no-such-box")
    assert status == 404
    body = json.loads(data)
    assert set(body) == {"path", "timestamp", "statusCode", "error", "message"}
    assert body["statusCode"] == 404 and body["error"] == "Not Found"
    assert body["message"] == "Sandbox with ID or name no-such-box not found"
    assert body["path"] == "/api/sandbox/no-such-box"


def test_api_auth(emu):
    status, _, data = emu.call("GET", "/api/sandbox", auth=False)
    assert status == 401 and json.loads(data)["message"] == "Unauthorized"
    status, _, _ = emu.call("GET", "/api/sandbox",
                            headers={"Authorization": "Bearer " + KEY,
                                     "X-Daytona-Organization-ID": "org"})
    assert status == 200


def test_create_validation(emu):
    st, _, d = emu.call("POST", "/api/sandbox",
                        {"snapshot": "x", "buildInfo": {"dockerfileContent": "FROM a"}})
    assert st == 400 and "snapshot" in json.loads(d)["message"]
    st, _, d = emu.call("POST", "/api/sandbox", {"cpu": 2})
    assert st == 400
    assert json.loads(d)["message"] == "Cannot specify Sandbox resources when using a snapshot"
    name = "dup-" + uuid.uuid4().hex[:8]
    sb = emu.create(name=name)
    st, _, _ = emu.call("POST", "/api/sandbox", {"name": name})
    assert st == 409
    emu.call("DELETE", "/api/sandbox/" + sb["id"])


def test_build_state_machine(emu):
    sb = emu.create(buildInfo={"dockerfileContent": "FROM alpine:3"}, cpu=2)
    assert sb["state"] == "pending_build" and sb["cpu"] == 2
    assert sb["buildInfo"]["dockerfileContent"] == "FROM alpine:3"
    seen = []
    deadline = time.time() + 10
    while time.time() < deadline and (not seen or seen[-1] != "started"):
        state = emu.json("GET", "/api/sandbox/" + sb["id"])["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.005)
    assert seen[-1] == "started"
    assert [s for s in ("pending_build", "building_snapshot", "starting", "started")
            if s in seen] == seen
    emu.call("DELETE", "/api/sandbox/" + sb["id"])


def test_lifecycle(emu, sandbox):
    sid, tb = sandbox
    st, _, d = emu.call("POST", "/api/sandbox/%s/archive" % sid)
    assert st == 400 and json.loads(d)["message"] == "Sandbox is not stopped"
    stopping = emu.json("POST", "/api/sandbox/%s/stop?force=false" % sid)
    assert stopping["state"] == "stopping"
    st, _, d = emu.call("POST", "/api/sandbox/%s/start" % sid)
    assert st == 409 and json.loads(d)["message"] == "Sandbox state change in progress"
    emu.wait_state(sid, "stopped")
    st, _, d = emu.call("GET", tb + "/files")
    assert st == 400
    assert json.loads(d)["message"] == "bad request: sandbox is not started"
    st, _, d = emu.call("POST", "/api/sandbox/%s/stop" % sid)
    assert st == 400 and json.loads(d)["message"] == "Sandbox is not in a stoppable state"
    assert emu.json("POST", "/api/sandbox/%s/archive" % sid)["state"] == "archiving"
    emu.wait_state(sid, "archived")
    assert emu.json("POST", "/api/sandbox/%s/start" % sid)["state"] == "restoring"
    emu.wait_state(sid, "started")
    labelled = emu.json("PUT", "/api/sandbox/%s/labels" % sid, {"labels": {"k": "v"}})
    assert labelled["labels"] == {"k": "v"} and labelled["id"] == sid
    assert emu.json("POST", "/api/sandbox/%s/autostop/0" % sid,
                    expect=201)["autoStopInterval"] == 0
    assert emu.json("GET", "/api/sandbox/%s/toolbox-proxy-url" % sid) == \
        {"url": emu.url + "/toolbox"}
    gone = emu.json("DELETE", "/api/sandbox/" + sid)
    assert gone["state"] == "destroying"
    emu.wait_state(sid, 404)
    box_dir = os.path.join(emu.root, sid)
    assert not os.path.exists(box_dir)


def test_list_paging(emu):
    tag = uuid.uuid4().hex
    ids = {emu.create(labels={"page": tag, "n": str(i)})["id"] for i in range(3)}
    labels = urllib.request.quote(json.dumps({"page": tag}))
    seen, cursor, pages = [], None, 0
    while True:
        q = "/api/sandbox?limit=1&labels=" + labels
        if cursor:
            q += "&cursor=" + urllib.request.quote(cursor)
        page = emu.json("GET", q)
        pages += 1
        assert len(page["items"]) <= 1
        seen += [i["id"] for i in page["items"]]
        assert "env" not in page["items"][0] and "toolboxProxyUrl" in page["items"][0]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(ids)
    one = urllib.request.quote(json.dumps({"page": tag, "n": "1"}))
    assert len(emu.json("GET", "/api/sandbox?labels=" + one)["items"]) == 1
    st, _, _ = emu.call("GET", "/api/sandbox?limit=201")
    assert st == 400
    st, _, d = emu.call("GET", "/api/sandbox?labels=%7Bnot-json")
    assert st == 400 and json.loads(d)["message"] == "Invalid labels JSON format"
    for sid in ids:
        emu.call("DELETE", "/api/sandbox/" + sid)


def test_legacy_list_and_no_proxy_url_field(tmp_path):
    _require_bwrap()
    e = Emulator(tmp_path / "root", "--legacy-list", "--no-proxy-url-field")
    try:
        sb = e.create(labels={"x": "1"})
        assert "toolboxProxyUrl" not in sb
        listed = e.json("GET", "/api/sandbox")
        assert isinstance(listed, list) and [s["id"] for s in listed] == [sb["id"]]
        assert e.json("GET", "/api/sandbox/%s/toolbox-proxy-url" % sb["id"]) == \
            {"url": e.url + "/toolbox"}
        # the deprecated API route reaches the same toolbox
        st, _, d = e.call("GET", "/api/toolbox/%s/toolbox/files?path=/" % sb["id"])
        assert st == 200 and "etc" in [f["name"] for f in json.loads(d)]
    finally:
        e.stop()


# ------------------------------------------------------------------ files

def test_file_errors_have_empty_bodies(emu, sandbox):
    _, tb = sandbox
    for path in ("/files/info?path=/nope", "/files?path=/nope",
                 "/files/download?path=/nope"):
        st, _, data = emu.call("GET", tb + path)
        assert (st, data) == (404, b""), path
    st, _, data = emu.call("GET", tb + "/files/download?path=/tmp")
    assert (st, data) == (400, b"")
    st, _, data = emu.call("GET", tb + "/files/info")
    assert (st, data) == (400, b"")
    st, _, data = emu.call("POST", tb + "/files/folder?path=/tmp/x&mode=9z")
    assert (st, data) == (400, b"")


def test_file_info_fields(emu, sandbox):
    _, tb = sandbox
    run(emu, tb, "touch /tmp/suid && chmod 4755 /tmp/suid")
    info = emu.json("GET", tb + "/files/info?path=/tmp")
    assert set(info) == {"name", "size", "mode", "modTime", "modifiedAt", "isDir",
                         "owner", "group", "permissions"}
    assert info["mode"] == "dtrwxrwxrwx" and info["permissions"] == "0777"
    assert info["owner"] == str(os.getuid()) and info["isDir"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC", info["modTime"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", info["modifiedAt"])
    suid = emu.json("GET", tb + "/files/info?path=/tmp/suid")
    assert suid["mode"] == "urwxr-xr-x" and suid["permissions"] == "0755"
    names = [f["name"] for f in emu.json("GET", tb + "/files?path=/tmp")]
    assert "suid" in names


def test_move_and_delete(emu, sandbox):
    sid, tb = sandbox
    run(emu, tb, "mkdir -p /tmp/d/sub && echo a > /tmp/a && echo b > /tmp/b")
    st, _, data = emu.call("POST", tb + "/files/move?source=/tmp/a&destination=/tmp/b")
    assert (st, data) == (409, b"")
    st, _, _ = emu.call("POST", tb + "/files/move?source=/tmp/nope&destination=/tmp/c")
    assert st == 404
    st, _, _ = emu.call("POST", tb + "/files/move?source=/tmp/a&destination=/tmp/c")
    assert st == 200
    assert run(emu, tb, "cat /tmp/c")["result"] == "a\n"
    st, _, data = emu.call("DELETE", tb + "/files?path=/tmp/d")
    assert (st, data) == (400, b"")
    st, _, _ = emu.call("DELETE", tb + "/files?path=/tmp/d&recursive=true")
    assert st == 204
    assert not os.path.exists(os.path.join(emu.root, sid, "tmp", "d"))
    st, _, _ = emu.call("POST", tb + "/files/folder?path=/tmp/new/deep&mode=0700")
    assert st == 201
    assert emu.json("GET", tb + "/files/info?path=/tmp/new/deep")["permissions"] == "0700"


def test_symlinks_stay_inside_the_sandbox(emu, sandbox):
    sid, tb = sandbox
    box = os.path.join(emu.root, sid)
    with open(os.path.join(box, "etc", "passwd"), "a") as f:
        f.write("sandbox-marker:x:4242:4242::/:/bin/sh\n")
    run(emu, tb, "ln -s /etc/passwd /tmp/abs; ln -s ../../../../../../../etc/passwd /tmp/rel;"
                 " ln -s / /tmp/root; ln -s loop /tmp/loop")
    for link in ("/tmp/abs", "/tmp/rel", "/tmp/root/etc/passwd",
                 "/tmp/root/../../tmp/abs"):
        st, _, data = emu.call("GET", tb + "/files/download?path=" + link)
        assert st == 200 and b"sandbox-marker" in data, link
    st, _, _ = emu.call("GET", tb + "/files/info?path=/tmp/loop")
    assert st == 400
    # delete removes the link, not its target
    st, _, _ = emu.call("DELETE", tb + "/files?path=/tmp/abs")
    assert st == 204
    assert os.path.exists(os.path.join(box, "etc", "passwd"))
    assert not os.path.lexists(os.path.join(box, "tmp", "abs"))


def test_upload_download_large_file_streams(emu, sandbox):
    """100 MiB+ goes through without the emulator holding it in memory."""
    _, tb = sandbox
    size = 110 << 20
    block = hashlib.sha256(b"seed").digest() * 2048      # 64 KiB
    boundary = "sbxfs-boundary"
    head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="big"\r\n'
            'Content-Type: application/octet-stream\r\n\r\n' % boundary).encode()
    tail = ("\r\n--%s--\r\n" % boundary).encode()

    def body():
        yield head
        for _ in range(size // len(block)):
            yield block
        yield tail

    rss_before = _rss_kib(emu.proc.pid)
    req = urllib.request.Request(
        emu.url + tb + "/files/upload?path=/home/daytona/big.bin", data=body(),
        method="POST", headers={"Authorization": "Bearer " + KEY,
                                "Content-Type": "multipart/form-data; boundary=" + boundary,
                                "Content-Length": str(len(head) + size + len(tail))})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200 and r.read() == b""
    want = hashlib.sha256()
    for _ in range(size // len(block)):
        want.update(block)
    got = hashlib.sha256()
    req = urllib.request.Request(emu.url + tb + "/files/download?path=/home/daytona/big.bin",
                                 headers={"Authorization": "Bearer " + KEY})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert int(r.headers["Content-Length"]) == size
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            got.update(chunk)
    assert got.hexdigest() == want.hexdigest()
    assert _rss_kib(emu.proc.pid) - rss_before < 50 * 1024, "emulator buffered the file"
    run(emu, tb, "rm /home/daytona/big.bin")


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------- process

def test_execute(emu, sandbox):
    _, tb = sandbox
    r = run(emu, tb, "echo $A; echo err >&2; exit 4", envs={"A": "b"}, cwd="/tmp")
    assert r == {"exitCode": 4, "result": "b\nerr\n"}
    assert run(emu, tb, "pwd")["result"] == "/home/daytona\n"
    st, _, d = emu.call("POST", tb + "/process/execute", {"command": "sleep 5", "timeout": 1})
    body = json.loads(d)
    assert st == 408 and body["code"] == "REQUEST_TIMEOUT"
    assert body["message"] == "request timeout: command execution timeout"
    assert body["path"] == "/process/execute" and body["method"] == "POST"
    st, _, d = emu.call("POST", tb + "/process/execute", {"command": "  "})
    assert st == 400 and json.loads(d)["code"] == "BAD_REQUEST"


def _exec(emu, tb, session, command, headers=None, **extra):
    return emu.json("POST", tb + "/process/session/%s/exec" % session,
                    dict(command=command, **extra), headers=headers,
                    expect=202 if extra.get("runAsync") else 200)


def test_session_output_formats(emu, sandbox):
    _, tb = sandbox
    assert emu.call("POST", tb + "/process/session", {"sessionId": "fmt"})[0] == 201
    assert emu.call("POST", tb + "/process/session", {"sessionId": "fmt"})[0] == 409
    cmd = "echo out; echo err >&2"
    plain = _exec(emu, tb, "fmt", cmd)
    assert plain["output"] == "out\nerr\n" and plain["stdout"] is None
    split = _exec(emu, tb, "fmt", cmd, headers={"X-Daytona-Split-Output": "true"})
    assert split["output"] == "\x01\x01\x01out\n\x02\x02\x02err\n"
    assert split["stdout"] is None
    sdk = _exec(emu, tb, "fmt", cmd, headers={"X-Daytona-SDK-Version": "0.190.0"})
    assert (sdk["stdout"], sdk["stderr"]) == ("out\n", "err\n")
    old = _exec(emu, tb, "fmt", cmd, headers={"X-Daytona-SDK-Version": "0.26.1"})
    assert old["output"] == "out\nerr\n"

    started = _exec(emu, tb, "fmt", cmd + "; (exit 2)", runAsync=True)
    assert started == {"cmdId": started["cmdId"], "output": None, "stdout": None,
                       "stderr": None, "exitCode": None}
    base = tb + "/process/session/fmt/command/" + started["cmdId"]
    deadline = time.time() + 10
    while "exitCode" not in emu.json("GET", base) and time.time() < deadline:
        time.sleep(0.02)
    assert emu.json("GET", base)["exitCode"] == 2
    st, hdrs, data = emu.call("GET", base + "/logs")
    assert st == 200 and data == b"out\nerr\n" and hdrs["Content-Type"].startswith("text/plain")
    st, _, data = emu.call("GET", base + "/logs", headers={"X-Daytona-Split-Output": "true"})
    assert data == b"\x01\x01\x01out\n\x02\x02\x02err\n"
    logs = emu.json("GET", base + "/logs", headers={"X-Daytona-SDK-Version": "0.218.0"})
    assert (logs["stdout"], logs["stderr"]) == ("out\n", "err\n")
    st, _, d = emu.call("GET", tb + "/process/session/nope")
    assert st == 404 and json.loads(d)["message"] == "not found: session not found"
    assert emu.call("DELETE", tb + "/process/session/fmt")[0] == 204


def test_session_input_and_partial_line(emu, sandbox):
    _, tb = sandbox
    emu.call("POST", tb + "/process/session", {"sessionId": "in"})
    started = _exec(emu, tb, "in", "printf 'name? '; read x; echo got $x", runAsync=True)
    base = tb + "/process/session/in/command/" + started["cmdId"]
    time.sleep(0.8)   # the partial line reaches the log after ~0.5 s
    assert emu.call("GET", base + "/logs")[2] == b"name? "
    assert emu.call("POST", base + "/input", {"data": "joe"})[0] == 204
    deadline = time.time() + 10
    while "exitCode" not in emu.json("GET", base) and time.time() < deadline:
        time.sleep(0.02)
    assert emu.call("GET", base + "/logs")[2] == b"name? joe\ngot joe\n"
    st, _, d = emu.call("POST", base + "/input", {"data": "again"})
    assert st == 410 and json.loads(d)["code"] == "GONE"


def test_follow_websocket(emu, sandbox):
    aiohttp = pytest.importorskip("aiohttp")
    _, tb = sandbox
    emu.call("POST", tb + "/process/session", {"sessionId": "ws"})
    started = _exec(emu, tb, "ws", "for i in 1 2 3; do echo $i; sleep 0.2; done;"
                    " head -c 3000 /dev/zero | tr '\\0' x; echo; sleep 0.2; echo e >&2",
                    runAsync=True)
    url = emu.url + tb + "/process/session/ws/command/%s/logs?follow=true" % started["cmdId"]

    async def follow(headers):
        frames = []
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(url, headers=dict(headers, Authorization="Bearer " + KEY)) as ws:
                async for msg in ws:
                    frames.append(msg)
                return frames, ws.close_code

    frames, code = asyncio.run(follow({"X-Daytona-Split-Output": "true"}))
    assert code == 1000
    assert all(f.type == aiohttp.WSMsgType.BINARY and len(f.data) <= 1024 for f in frames)
    data = b"".join(f.data for f in frames)
    assert data == b"\x01\x01\x011\n\x01\x01\x012\n\x01\x01\x013\n\x01\x01\x01" + \
        b"x" * 3000 + b"\n\x02\x02\x02e\n"
    frames, code = asyncio.run(follow({}))      # no headers: markers stripped
    assert code == 1000 and b"".join(f.data for f in frames) == \
        b"1\n2\n3\n" + b"x" * 3000 + b"\ne\n"


def _wait_for(predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_commands_signal_each_other(emu, sandbox):
    """A command finds another through /proc/*/environ and kills it."""
    _, tb = sandbox
    marker = "SBXFS_MARK_%s" % uuid.uuid4().hex[:8]
    emu.call("POST", tb + "/process/session", {"sessionId": "sig"})
    started = _exec(emu, tb, "sig", "export %s=1; exec sleep 300" % marker, runAsync=True)
    base = tb + "/process/session/sig/command/" + started["cmdId"]
    find = ("for p in /proc/[0-9]*; do grep -qs %s= $p/environ && echo ${p#/proc/}; done"
            % marker)
    assert _wait_for(lambda: run(emu, tb, find)["result"].strip())
    pid = run(emu, tb, find)["result"].split()[0]
    assert run(emu, tb, "kill -TERM %s" % pid)["exitCode"] == 0
    assert _wait_for(lambda: "exitCode" in emu.json("GET", base))
    assert emu.json("GET", base)["exitCode"] == 143

    # another sandbox does not see this one's processes
    other = emu.create()
    try:
        otb = "/toolbox/" + other["id"]
        _exec(emu, tb, "sig", "export %s=1; exec sleep 300" % marker, runAsync=True)
        assert _wait_for(lambda: run(emu, tb, find)["result"].strip())
        assert run(emu, otb, find)["result"] == ""
    finally:
        emu.call("DELETE", "/api/sandbox/" + other["id"])


def test_stop_and_session_delete_kill_processes(emu, sandbox):
    sid, tb = sandbox
    marker = "sbxfs-%s" % uuid.uuid4().hex[:8]
    emu.call("POST", tb + "/process/session", {"sessionId": "k"})
    _exec(emu, tb, "k", "sleep 301 & sleep 302; echo %s" % marker, runAsync=True)
    assert _wait_for(lambda: _host_pids_with_arg("302"))
    assert emu.call("DELETE", tb + "/process/session/k")[0] == 204
    assert _wait_for(lambda: not _host_pids_with_arg("302"))
    emu.call("POST", tb + "/process/session", {"sessionId": "k2"})
    _exec(emu, tb, "k2", "setsid sleep 303 & sleep 304", runAsync=True)
    assert _wait_for(lambda: _host_pids_with_arg("303") and _host_pids_with_arg("304"))
    emu.json("POST", "/api/sandbox/%s/stop" % sid)
    emu.wait_state(sid, "stopped")
    assert not _host_pids_with_arg("303") and not _host_pids_with_arg("304")
    emu.json("POST", "/api/sandbox/%s/start" % sid)
    emu.wait_state(sid, "started")
    assert run(emu, tb, "echo back")["result"] == "back\n"


def _host_pids_with_arg(arg):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[:1] in ([b"sleep"], [b"/usr/bin/sleep"]) and arg.encode() in argv:
            found.append(int(pid))
    return found


# ------------------------------------------------------------- control

def test_fault_switches_and_stats(emu, sandbox):
    _, tb = sandbox
    assert emu.call("POST", "/_emu/reset", auth=False)[0] == 200

    def fault(**f):
        assert emu.call("POST", "/_emu/fault", f, auth=False)[0] == 200

    fault(kind="status", status=503, prefix="/toolbox", method="GET", count=2)
    for _ in range(2):
        st, _, d = emu.call("GET", tb + "/files/info?path=/tmp")
        assert st == 503 and json.loads(d)["path"] == "/files/info"
    assert emu.call("GET", tb + "/files/info?path=/tmp")[0] == 200
    fault(kind="status", status=500, prefix="/api")
    st, _, d = emu.call("GET", "/api/sandbox")
    assert st == 500 and json.loads(d)["error"] == "Internal Server Error"
    fault(kind="empty", status=502)
    assert emu.call("GET", tb + "/files?path=/")[:3:2] == (502, b"")
    fault(kind="ratelimit", prefix="/api/sandbox")
    st, _, d = emu.call("GET", "/api/sandbox")
    assert st == 429
    assert json.loads(d)["message"] == "ThrottlerException: Too Many Requests"
    fault(kind="slow", delay=0.5)
    t0 = time.time()
    assert emu.call("GET", tb + "/files?path=/")[0] == 200
    assert time.time() - t0 >= 0.5
    fault(kind="drop")
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        req = urllib.request.Request(emu.url + "/api/sandbox",
                                     headers={"Authorization": "Bearer " + KEY})
        urllib.request.urlopen(req, timeout=10).read()
    fault(kind="status", status=500, count=5)
    assert emu.call("POST", "/_emu/fault/clear", auth=False)[0] == 200
    assert emu.call("GET", "/api/sandbox")[0] == 200

    stats = emu.json("GET", "/_emu/stats")
    assert stats["routes"]["GET /files/info"] == 3
    assert stats["routes"]["GET /files"] == 2
    assert stats["routes"]["GET /api/sandbox"] == 4
    assert stats["total"] == sum(stats["routes"].values()) == 9
    looked = emu.json("GET", "/_emu/sandbox/" + sandbox[0])
    assert looked["id"] == sandbox[0] and os.path.isdir(os.path.join(looked["dir"], "etc"))


def test_pty(emu, sandbox):
    aiohttp = pytest.importorskip("aiohttp")
    _, tb = sandbox
    created = emu.json("POST", tb + "/process/pty",
                       {"id": "p1", "cols": 100, "rows": 30, "envs": {"Z": "zz"}},
                       expect=201)
    assert created == {"sessionId": "p1"}
    st, _, d = emu.call("POST", tb + "/process/pty", {"id": "p1"})
    assert st == 409 and "already exists" in json.loads(d)["error"]
    st, _, d = emu.call("GET", tb + "/process/pty/nope")
    assert st == 404 and json.loads(d) == {"error": "PTY session not found"}
    url = emu.url + tb + "/process/pty/p1/connect"

    async def session():
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer " + KEY}) as s:
            async with s.ws_connect(url) as ws:
                first = await ws.receive()
                assert first.type == aiohttp.WSMsgType.TEXT
                assert json.loads(first.data) == {"type": "control", "status": "connected"}
                async with s.post(emu.url + tb + "/process/pty/p1/resize",
                                  json={"cols": 120, "rows": 40}) as r:
                    assert r.status == 200 and (await r.json())["cols"] == 120
                await ws.send_bytes(b"echo hi $Z; stty size; exit 3\n")
                out = b""
                while True:
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        return out, msg
                    out += msg.data

    out, close = asyncio.run(session())
    assert b"hi zz\r\n" in out and b"40 120\r\n" in out
    assert close.type == aiohttp.WSMsgType.CLOSE and close.data == 1011
    assert json.loads(close.extra) == {"exitCode": 3, "exitReason": "non-zero exit"}
    info = emu.json("GET", tb + "/process/pty/p1")
    assert info["active"] is False and (info["cols"], info["rows"]) == (120, 40)
    assert emu.json("DELETE", tb + "/process/pty/p1") == {"message": "PTY session deleted"}
    assert emu.json("GET", tb + "/process/pty") == {"sessions": []}

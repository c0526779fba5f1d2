"""The Rexec emulator (tests/emulators/rexec.py) against what the protocol
notes and the Rexec server source say the service does.

Needs no FUSE mount, but root and bubblewrap (containers are bwrap
namespaces).  Run:
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_rexec_emulator.py
"""

import asyncio
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import aiohttp
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulators", "rexec.py")
TOKEN = "rexec_" + "5e" * 32
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DOCKER_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def _require_bwrap():
    if not shutil.which("bwrap") or not shutil.which("nsenter"):
        pytest.skip("bwrap and nsenter are needed by the Rexec emulator")
    if os.geteuid() != 0:
        pytest.skip("the Rexec emulator runs containers only as root")


def _processes_mentioning(text):
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


class Emulator:
    """One emulator process on a random port with its own root."""

    def __init__(self, root, *flags, delay="0.05"):
        _require_bwrap()
        self.root = str(root)
        self.log_path = self.root + ".log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", EMULATOR, "--root", self.root, "--token", TOKEN,
             "--port", "0", "--delay", delay, *flags],
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("emulator did not start:\n" + self.log_text())
        self.port = int(line)
        self.url = "http://127.0.0.1:%d" % self.port

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM: it must exit cleanly and leave no container process."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        assert rc == 0, "emulator exited %s\n%s" % (rc, self.log_text())
        assert not _processes_mentioning(self.root), \
            "container processes survived the emulator"

    # -- HTTP (urllib; errors are returned, not raised) --

    def call(self, method, path, body=None, headers=None, auth=True, raw=None):
        data = raw
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if auth:
            hdrs.setdefault("Authorization", "Bearer " + TOKEN)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None, expect=200, **kw):
        status, _, data = self.call(method, path, body, **kw)
        assert status == expect, "%s %s -> %s %r" % (method, path, status, data)
        return json.loads(data)

    def create(self, expect=202, **body):
        body.setdefault("image", "ubuntu")
        return self.json("POST", "/api/containers", body, expect=expect)

    def get(self, ident):
        return self.json("GET", "/api/containers/" + ident)

    def wait_status(self, ident, status, timeout=20):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            code, _, data = self.call("GET", "/api/containers/" + ident)
            got = json.loads(data)["status"] if code == 200 else code
            if got == status:
                return json.loads(data)
            time.sleep(0.02)
        raise AssertionError("%s never reached %s (last %s)" % (ident, status, got))

    def exec(self, cid, command, expect=200, **extra):
        return self.json("POST", "/api/containers/%s/exec" % cid,
                         dict(command=command, **extra), expect=expect)

    def q(self, cid, what, path):
        return "/api/containers/%s/%s?path=%s" % (cid, what, urllib.parse.quote(path))

    def control(self, method, path, body=None):
        return self.json(method, path, body, auth=False)

    def upload(self, cid, directory, filename, content, field="file"):
        boundary = "----rexec" + uuid.uuid4().hex
        body = (("--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                 "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 % (boundary, field, filename)).encode() + content +
                ("\r\n--%s--\r\n" % boundary).encode())
        return self.call("POST", self.q(cid, "files", directory), raw=body,
                         headers={"Content-Type": "multipart/form-data; boundary="
                                  + boundary})


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    _require_bwrap()
    e = Emulator(tmp_path_factory.mktemp("rexec") / "root", "--ws-stats", "0",
                 "--ws-ping", "2")
    yield e
    e.stop()


@pytest.fixture(scope="module")
def slow_emu(tmp_path_factory):
    """Lifecycle steps of 0.4 s, to observe the intermediate states."""
    _require_bwrap()
    e = Emulator(tmp_path_factory.mktemp("rexec-slow") / "root", delay="0.4")
    yield e
    e.stop()


@pytest.fixture
def box(emu):
    """A running container: its Docker ID."""
    c = emu.create(name="t-" + uuid.uuid4().hex[:10])
    info = emu.wait_status(c["id"], "running")
    yield info["id"]
    emu.call("DELETE", "/api/containers/" + info["id"])


# ------------------------------------------------------------- terminal

def ws_url(emu, ident, query=""):
    return "ws://127.0.0.1:%d/ws/terminal/%s%s" % (emu.port, ident, query)


async def _frames_until(ws, predicate, timeout=10):
    """Collect decoded frames until predicate(frames) is true."""
    frames = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate(frames):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError("timed out; frames so far: %r" % frames)
        msg = await asyncio.wait_for(ws.receive(), left)
        if msg.type != aiohttp.WSMsgType.TEXT:
            # ("closed", close code from the close frame or None, reason)
            frames.append(("closed", msg.data if msg.type == aiohttp.WSMsgType.CLOSE
                           else None, msg.extra))
            if not predicate(frames):
                raise AssertionError("socket closed; frames: %r" % frames)
            break
        assert msg.data.endswith("\n") and msg.data.count("\n") == 1, msg.data
        frames.append(json.loads(msg.data))
    return frames


def _output(frames):
    return "".join(f.get("data", "") for f in frames
                   if isinstance(f, dict) and f["type"] == "output")


def terminal(emu, ident, scenario, headers=None, query="", protocols=()):
    """Run `scenario(ws)` against a terminal WebSocket."""
    async def main():
        hdrs = {"Authorization": "Bearer " + TOKEN} if headers is None else headers
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ws_url(emu, ident, query), headers=hdrs,
                                    protocols=protocols) as ws:
                return await scenario(ws)
    return asyncio.run(main())


async def _ready(ws):
    return await _frames_until(
        ws, lambda fr: any(f.get("type") == "output" for f in fr
                           if isinstance(f, dict)) and
        any(f.get("type") == "shell_ready" for f in fr if isinstance(f, dict)))


async def _send_input(ws, text):
    await ws.send_str(json.dumps({"type": "input", "data": text}))


# =========================================================== containers

def test_create_202_and_state_machine(slow_emu):
    emu = slow_emu
    status, headers, data = emu.call("POST", "/api/containers",
                                     {"image": "ubuntu", "name": "sm-box", "role": ""})
    assert status == 202
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert not data.endswith(b"\n")
    body = json.loads(data)
    assert UUID_RE.match(body["id"]) and body["id"] == body["db_id"]
    assert body["status"] == "creating" and body["async"] is True
    assert body["image"] == "ubuntu" and body["name"] == "sm-box"
    assert set(body["resources"]) == {"memory_mb", "cpu_shares", "disk_mb"}
    # gin.H keys come sorted
    assert list(body) == sorted(body)
    uid = body["id"]
    seen = []
    deadline = time.time() + 20
    while time.time() < deadline:
        info = emu.get(uid)
        if not seen or seen[-1][0] != info["status"]:
            seen.append((info["status"], info["id"]))
        if info["status"] == "running":
            break
        time.sleep(0.02)
    states = [s for s, _ in seen]
    assert states == ["creating", "configuring", "running"], seen
    assert seen[0][1] == uid                     # no Docker ID while creating
    assert DOCKER_ID_RE.match(seen[1][1])       # configuring: Docker ID exists
    assert seen[2][1] == seen[1][1]
    emu.json("DELETE", "/api/containers/" + uid)


def test_files_need_running_not_configuring(slow_emu):
    emu = slow_emu
    uid = emu.create(name="cfg-box")["id"]
    info = emu.wait_status(uid, "configuring")
    did = info["id"]
    status, _, data = emu.call("GET", emu.q(did, "files/list", "/"))
    assert (status, json.loads(data)) == (400, {"error": "container is not running"})
    emu.wait_status(uid, "running")
    assert emu.json("GET", emu.q(did, "files/list", "/"))["count"] > 0
    emu.json("DELETE", "/api/containers/" + uid)


def test_identifier_trap(slow_emu):
    emu = slow_emu
    name = "trap-box"
    uid = emu.create(name=name)["id"]
    # Still creating: no Docker ID, so nothing but GET/DELETE knows it.
    assert emu.call("POST", "/api/containers/%s/start" % uid)[0] == 404
    status, _, data = emu.call("GET", emu.q(uid, "files/list", "/"))
    assert (status, json.loads(data)) == (404, {"error": "container not found"})
    did = emu.wait_status(uid, "running")["id"]
    assert DOCKER_ID_RE.match(did)
    # GET and DELETE take both ids; start/stop only the Docker ID.
    assert emu.get(uid)["id"] == did and emu.get(did)["db_id"] == uid
    for action in ("start", "stop"):
        status, _, data = emu.call("POST", "/api/containers/%s/%s" % (uid, action))
        assert (status, json.loads(data)) == (404, {"error": "container not found"})
    # Files: Docker ID and 12-char prefix work, the UUID does not ...
    assert emu.json("GET", emu.q(did, "files/list", "/home"))["count"] == 1
    assert emu.json("GET", emu.q(did[:12], "files/list", "/home"))["count"] == 1
    assert emu.call("GET", emu.q(uid, "files/list", "/home"))[0] == 404
    # ... and the name passes the manager but not Docker.
    status, _, data = emu.call("GET", emu.q(name, "files/list", "/home"))
    assert status == 500
    assert json.loads(data) == {"error": "failed to create exec: Error response "
                                         "from daemon: No such container: " + name}
    status, _, data = emu.call("GET", emu.q(name, "files", "/etc/hostname"))
    assert status == 404 and b"No such container" in data
    # Exec resolves the name to the Docker ID.
    assert emu.exec(name, "echo ok")["stdout"] == "ok\n"
    assert emu.call("POST", "/api/containers/%s/exec" % uid,
                    {"command": "true"})[0] == 404
    # The terminal takes the UUID too (database fallback).
    frames = terminal(emu, uid, _ready)
    assert frames[0] == {"type": "connected", "data": "Terminal session established"}
    emu.json("DELETE", "/api/containers/" + uid)


def test_list_shape(emu, box):
    body = emu.json("GET", "/api/containers")
    assert set(body) == {"containers", "count", "limit"}
    assert body["limit"] == 10 and body["count"] == len(body["containers"])
    item = next(c for c in body["containers"] if c["id"] == box)
    assert set(item) == {"id", "db_id", "user_id", "name", "image", "role", "status",
                         "created_at", "last_used_at", "idle_seconds", "mfa_locked",
                         "resources"}
    assert item["status"] == "running" and item["mfa_locked"] is False
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$", item["created_at"])
    get = emu.get(box)
    assert "ip_address" in get and "role" not in get


def test_create_errors(emu):
    status, _, data = emu.call("POST", "/api/containers", {"image": "ubuntu:24.04"})
    body = json.loads(data)
    assert status == 400 and body["error"] == "unsupported image type"
    assert "ubuntu" in body["supported_images"] and "alpine" in body["supported_images"]
    status, _, data = emu.call("POST", "/api/containers", {"name": "x"})
    assert status == 400 and "'Image' failed on the 'required' tag" in json.loads(data)["error"]
    status, _, data = emu.call("POST", "/api/containers", {"image": "custom"})
    assert json.loads(data) == {"error": "custom_image is required when image is 'custom'"}
    status, _, data = emu.call("POST", "/api/containers",
                               {"image": "custom", "custom_image": "a:b:c"})
    assert json.loads(data) == {"error": "invalid custom_image format"}
    status, _, data = emu.call("POST", "/api/containers", {"image": "alpine", "name": "-x"})
    assert status == 400 and "invalid container name" in json.loads(data)["error"]
    status, _, data = emu.call("POST", "/api/containers", raw=b"")
    assert (status, json.loads(data)) == (400, {"error": "EOF"})
    status, _, data = emu.call("POST", "/api/containers", {"image": "ubuntu",
                                                           "memory_mb": "1"})
    assert json.loads(data)["error"] == ("json: cannot unmarshal string into Go struct "
                                         "field CreateContainerRequest.memory_mb of "
                                         "type int64")


def test_duplicate_name_and_custom_image(emu, box):
    name = emu.get(box)["name"]
    status, _, data = emu.call("POST", "/api/containers", {"image": "ubuntu", "name": name})
    assert (status, json.loads(data)) == (409, {
        "error": "container with this name already exists", "name": name})
    c = emu.create(image="custom", custom_image="ghcr.io/acme/tool:1.0")
    assert c["image"] == "custom:ghcr.io/acme/tool:1.0"
    emu.wait_status(c["id"], "running")
    emu.json("DELETE", "/api/containers/" + c["id"])
    bad = emu.create(image="custom", custom_image="acme/nonexistent")
    emu.wait_status(bad["id"], "error")
    assert emu.get(bad["id"])["id"] == bad["id"]
    emu.json("DELETE", "/api/containers/" + bad["id"])


def test_stop_start_delete(emu):
    c = emu.create(name="life-box")
    did = emu.wait_status(c["id"], "running")["id"]
    emu.exec(did, "echo x > /tmp/t; echo y > /home/user/keep")
    assert emu.json("POST", "/api/containers/%s/stop" % did) == {
        "id": did, "message": "container stopped", "name": "life-box", "status": "stopped"}
    assert emu.get(did)["status"] == "stopped"
    status, _, data = emu.call("GET", emu.q(did, "files/list", "/tmp"))
    assert (status, json.loads(data)) == (400, {"error": "container is not running"})
    status, _, data = emu.call("GET", "/ws/terminal/" + did)
    body = json.loads(data)
    assert status == 400 and body["code"] == "container_stopped" and body["status"] == "stopped"
    assert emu.json("POST", "/api/containers/%s/start" % did)["status"] == "running"
    # /tmp is a tmpfs: emptied by the stop; /home/user survives.
    assert emu.json("GET", emu.q(did, "files/list", "/tmp"))["files"] is None
    assert emu.exec(did, "cat /home/user/keep")["stdout"] == "y\n"
    deleted = emu.json("DELETE", "/api/containers/" + c["id"])
    assert deleted == {"db_id": c["id"], "id": c["id"], "message": "container deleted",
                       "name": "life-box"}
    assert emu.call("GET", "/api/containers/" + did)[0] == 404
    # The named volume survives: same name, same /home/user.
    again = emu.create(name="life-box")
    did2 = emu.wait_status(again["id"], "running")["id"]
    assert did2 != did
    assert emu.exec(did2, "cat /home/user/keep")["stdout"] == "y\n"
    emu.json("DELETE", "/api/containers/" + did2)


def test_vanished_container_is_recreated_with_new_id(emu):
    c = emu.create(name="vanish-box")
    did = emu.wait_status(c["id"], "running")["id"]
    emu.exec(did, "echo v > /home/user/v")
    emu.control("POST", "/_emu/sandbox/%s/vanish" % did)
    status, _, data = emu.call("GET", emu.q(did, "files/list", "/"))
    assert status == 404
    body = emu.json("POST", "/api/containers/%s/start" % did)
    assert body["recreated"] is True and body["old_id"] == did
    new = body["id"]
    assert DOCKER_ID_RE.match(new) and new != did
    assert emu.get(c["id"])["id"] == new
    assert emu.exec(new, "cat /home/user/v")["stdout"] == "v\n"
    emu.json("DELETE", "/api/containers/" + new)


# ================================================================ files

def test_empty_and_missing_directory_give_null(emu, box):
    emu.exec(box, "mkdir -p /home/user/empty")
    for path in ("/home/user/empty", "/home/user/does-not-exist"):
        status, _, data = emu.call("GET", emu.q(box, "files/list", path))
        assert status == 200
        assert data == ('{"count":0,"files":null,"path":"%s"}' % path).encode()


def test_listing_parsed_from_ls(emu, box):
    emu.exec(box, "mkdir -p /home/user/l/sub && cd /home/user/l && "
                  "printf 12345 > 'two  spaces' && ln -s /etc/hostname link && "
                  "touch -d '2020-03-04 05:06' old")
    body = emu.json("GET", emu.q(box, "files/list", "/home/user/l"))
    by_name = {f["name"]: f for f in body["files"]}
    assert set(by_name) == {"sub", "two spaces", "link -> /etc/hostname", "old"}
    assert body["count"] == 4
    f = by_name["two spaces"]          # runs of spaces collapse
    assert list(f) == ["name", "path", "size", "mode", "mod_time", "is_dir"]
    assert f == {"name": "two spaces", "path": "/home/user/l/two spaces", "size": 5,
                 "mode": "-rw-r--r--", "mod_time": f["mod_time"], "is_dir": False}
    link = by_name["link -> /etc/hostname"]
    assert link["mode"] == "lrwxrwxrwx" and link["path"] == "/home/user/l/link -> /etc/hostname"
    assert by_name["sub"]["is_dir"] and by_name["sub"]["mode"] == "drwxr-xr-x"
    assert by_name["old"]["mod_time"] == "2020-03-04T00:00:00Z"   # "Mar  4  2020"
    # Default path and relative paths (relative to /home/user)
    assert emu.json("GET", "/api/containers/%s/files/list" % box)["path"] == "/home/user"
    rel = emu.json("GET", emu.q(box, "files/list", "l"))
    assert {f["path"] for f in rel["files"]} >= {"l/sub", "l/old"}
    # Listing a single file: its only line is dropped with the frame header.
    assert emu.json("GET", emu.q(box, "files/list", "/home/user/l/old"))["files"] is None


def test_big_listing_carries_frame_headers(emu, box):
    """ls output beyond 4096 bytes comes in several Docker frames; only the
    first header is stripped, the others corrupt an entry (notes §13)."""
    emu.exec(box, "mkdir /home/user/big && cd /home/user/big && "
                  "for i in $(seq 1 150); do : > file-with-a-long-name-$i; done")
    body = emu.json("GET", emu.q(box, "files/list", "/home/user/big"))
    names = [f["name"] for f in body["files"]]
    clean = [n for n in names if re.fullmatch(r"file-with-a-long-name-\d+", n)]
    assert 140 < len(clean) < 150


def test_upload_mode_and_overwrite(emu, box):
    sandbox = emu.control("GET", "/_emu/sandbox/" + box)
    host = os.path.join(sandbox["dir"], "home/user/up.bin")
    status, _, data = emu.upload(box, "/home/user", "up.bin", b"first")
    assert status == 200
    assert json.loads(data) == {"filename": "up.bin", "message": "file uploaded successfully",
                                "path": "/home/user/up.bin", "size": 5}
    st = os.stat(host)
    assert stat.S_IMODE(st.st_mode) == 0o644 and st.st_uid == 0
    emu.exec(box, "chmod 700 /home/user/up.bin")
    status, _, data = emu.upload(box, "/home/user/", "up.bin", b"second!")
    assert status == 200
    st2 = os.stat(host)
    assert stat.S_IMODE(st2.st_mode) == 0o644 and st2.st_ino != st.st_ino
    status, headers, data = emu.call("GET", emu.q(box, "files", "/home/user/up.bin"))
    assert (status, data) == (200, b"second!")
    assert headers["X-File-Mode"] == "-rw-r--r--" and headers["X-File-Size"] == "7"
    assert headers["Content-Disposition"] == 'attachment; filename="up.bin"'
    # The destination directory must exist; a file there is no directory.
    status, _, data = emu.upload(box, "/home/user/nodir", "x", b"x")
    assert status == 500 and json.loads(data)["error"].startswith(
        "failed to copy to container: Error response from daemon: Could not find the file")
    status, _, data = emu.upload(box, "/home/user/up.bin", "x", b"x")
    assert status == 500 and "extraction point is not a directory" in json.loads(data)["error"]
    status, _, data = emu.upload(box, "/home/user", "x", b"x", field="other")
    assert (status, json.loads(data)) == (400, {"error": "no file uploaded: http: no such file"})


def test_upload_cap_100_mib(emu, box):
    limit = 100 * 1024 * 1024
    boundary = "capboundary"
    head = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big\"\r\n"
            "\r\n" % boundary).encode()
    tail = ("\r\n--%s--\r\n" % boundary).encode()
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=120)
    conn.putrequest("POST", "/api/containers/%s/files?path=/tmp" % box)
    conn.putheader("Authorization", "Bearer " + TOKEN)
    conn.putheader("Content-Type", "multipart/form-data; boundary=" + boundary)
    conn.putheader("Content-Length", str(len(head) + limit + 1 + len(tail)))
    conn.endheaders()
    conn.send(head)
    block = b"\0" * (1 << 20)
    for _ in range(100):
        conn.send(block)
    conn.send(b"\0")
    conn.send(tail)
    resp = conn.getresponse()
    assert resp.status == 400
    assert json.loads(resp.read()) == {"error": "file too large (max 100MB)"}
    conn.close()
    assert emu.json("GET", emu.q(box, "files/list", "/tmp"))["files"] is None


def test_download_and_directory(emu, box):
    status, _, data = emu.call("GET", emu.q(box, "files", "/home/user"))
    assert (status, json.loads(data)) == (400, {
        "error": "path is a directory, use /files/list to list contents"})
    status, _, data = emu.call("GET", emu.q(box, "files", "/nope"))
    assert status == 404 and json.loads(data)["error"] == (
        "file not found: Error response from daemon: Could not find the file /nope "
        "in container " + box)
    emu.exec(box, "ln -s /etc/hostname /home/user/hl")
    status, headers, data = emu.call("GET", emu.q(box, "files", "/home/user/hl"))
    assert (status, data, headers["X-File-Mode"]) == (200, b"", "Lrwxrwxrwx")
    status, _, data = emu.call("GET", "/api/containers/%s/files" % box)
    assert (status, json.loads(data)) == (400, {"error": "path parameter required"})


def test_delete_is_rm_rf(emu, box):
    emu.exec(box, "mkdir -p /home/user/tree/a/b && touch /home/user/tree/a/b/f")
    assert emu.json("DELETE", emu.q(box, "files", "/home/user/tree")) == {
        "message": "file deleted successfully", "path": "/home/user/tree"}
    assert emu.exec(box, "test -e /home/user/tree")["exit_code"] == 1
    # A missing path is fine (rm -rf); system paths are refused first.
    assert emu.call("DELETE", emu.q(box, "files", "/home/user/missing"))[0] == 200
    for path in ("/", "/etc", "/usr/bin/ls", "//tmp"):
        status, _, data = emu.call("DELETE", emu.q("no-such-container", "files", path))
        assert (status, json.loads(data)) == (403, {"error": "cannot delete system files"})
    assert emu.call("DELETE", emu.q(box, "files", "/tmp/x"))[0] == 200


def test_mkdir_p(emu, box):
    assert emu.json("POST", emu.q(box, "files/mkdir", "/home/user/m/n/o")) == {
        "message": "directory created successfully", "path": "/home/user/m/n/o"}
    assert emu.exec(box, "test -d /home/user/m/n/o")["exit_code"] == 0
    emu.exec(box, "touch /home/user/plain")
    status, _, data = emu.call("POST", emu.q(box, "files/mkdir", "/home/user/plain/x"))
    assert (status, json.loads(data)) == (500, {"error": "failed to create directory"})


def test_paths_stay_inside_the_container(emu, box):
    sandbox = emu.control("GET", "/_emu/sandbox/" + box)
    root = sandbox["dir"]
    emu.exec(box, "ln -s /../../../../../etc /home/user/evil && "
                  "ln -s ../../../../../../../.. /home/user/up")
    with open(os.path.join(root, "etc/passwd"), "rb") as f:
        container_passwd = f.read()
    with open("/etc/passwd", "rb") as f:
        assert f.read() != container_passwd
    for path in ("/home/user/evil/passwd", "/../../../../etc/passwd",
                 "/home/user/up/etc/passwd", "home/../../../etc/passwd"):
        status, _, data = emu.call("GET", emu.q(box, "files", path))
        assert (status, data) == (200, container_passwd), path
    status, _, data = emu.upload(box, "/home/user/evil", "dropped", b"inside")
    assert status == 200
    assert os.path.exists(os.path.join(root, "etc/dropped"))
    assert not os.path.exists("/etc/dropped")
    listing = emu.json("GET", emu.q(box, "files/list", "/home/user/up/"))
    assert {"etc", "home", "tmp"} <= {f["name"] for f in listing["files"]}
    # Without the slash, ls lists the link itself: one line, dropped.
    assert emu.json("GET", emu.q(box, "files/list", "/home/user/up"))["files"] is None
    # Commands see the container's /etc, not the host's.
    assert "ubuntu:x:1000" in emu.exec(box, "cat /etc/passwd")["stdout"]


# ================================================================= exec

def test_exec_new_mode(emu, box):
    r = emu.exec(box, "echo out; echo err >&2; exit 3")
    assert r == {"command": "echo out; echo err >&2; exit 3", "exit_code": 3,
                 "output": "out\nerr\n", "stderr": "err\n", "stdout": "out\n"}
    r = emu.json("POST", "/api/containers/%s/exec" % box,
                 {"cmd": ["sh", "-c", "printf 'a\\0b\\377\\376c'; pwd"]})
    assert r["cmd"] == ["sh", "-c", "printf 'a\\0b\\377\\376c'; pwd"]
    assert r["stdout"] == "ab\ufffdc/home/user\n" and r["command"] == ""
    r = emu.exec(box, "printf x; echo y >&2")
    assert r["output"] == "x\ny\n"
    r = emu.exec(box, "pwd; echo $FOO", workdir="/tmp", env=["FOO=bar"])
    assert r["stdout"] == "/tmp\nbar\n"
    r = emu.json("POST", "/api/containers/%s/exec" % box, {"cmd": ["no-such-tool"]})
    assert r["exit_code"] == 127 and r["stdout"].startswith("OCI runtime exec failed")
    status, _, data = emu.call("POST", "/api/containers/%s/exec" % box, {"command": "  "})
    assert (status, json.loads(data)) == (400, {"error": "command or cmd is required"})
    status, _, data = emu.call("POST", "/api/containers/%s/exec" % box, raw=b"{")
    assert status == 400 and json.loads(data)["error"].startswith("invalid body: ")


def test_exec_timeout_and_truncation(emu, box):
    t0 = time.time()
    status, _, data = emu.call("POST", "/api/containers/%s/exec" % box,
                               {"command": "echo started; sleep 30", "timeout_seconds": 1})
    assert status == 504 and time.time() - t0 < 10
    body = json.loads(data)
    assert body["error"] == "exec timed out" and body["exit_code"] == -1
    assert body["timeout_s"] == 1 and body["stdout"] == "started\n"
    r = emu.exec(box, "head -c 1100000 /dev/zero | tr '\\0' a")
    assert r["truncated"] is True
    assert 1_000_000 < len(r["stdout"]) <= 1 << 20


def test_exec_old_mode(tmp_path):
    e = Emulator(tmp_path / "root", "--mode", "old", "--ws-stats", "0")
    try:
        c = e.create(name="old-box", role="barebone")
        did = e.wait_status(c["id"], "running")["id"]
        status, headers, data = e.call("POST", "/api/containers/%s/exec" % did,
                                       {"command": "true"})
        assert (status, json.loads(data)) == (404, {"error": "not found"})
        assert "X-RateLimit-Limit" not in headers
        # Everything else still works there.
        assert e.json("GET", e.q(did, "files/list", "/"))["count"] > 3
        e.json("DELETE", "/api/containers/" + did)
    finally:
        e.stop()
    e = Emulator(tmp_path / "root2", "--mode", "old", "--no-frontend")
    try:
        status, headers, data = e.call("POST", "/api/containers/x/exec", {})
        assert (status, data) == (404, b"404 page not found")
        assert headers["Content-Type"].startswith("text/plain")
    finally:
        e.stop()


# ============================================================= terminal

def test_terminal_echo_hi(emu, box):
    async def scenario(ws):
        frames = await _ready(ws)
        await _send_input(ws, "echo hi\n")
        frames += await _frames_until(ws, lambda fr: "hi\r\n" in _output(fr))
        return frames, ws.protocol
    frames, proto = terminal(emu, box, scenario, protocols=("rexec.v1",))
    assert proto == "rexec.v1"
    types = [f["type"] for f in frames]
    assert types[:4] == ["connected", "container_status", "shell_starting", "shell_ready"]
    assert frames[1] == {"type": "container_status", "data": "running"}
    assert "hi\r\n" in _output(frames)


def test_terminal_drops_invalid_utf8(emu, box):
    async def scenario(ws):
        await _ready(ws)
        await _send_input(ws, "printf 'A\\377B\\303\\251C\\n'\n")
        return await _frames_until(ws, lambda fr: "C\r\n" in _output(fr))
    out = _output(terminal(emu, box, scenario))
    assert "AB\u00e9C\r\n" in out and "\ufffd" not in out


def test_terminal_auth_variants_and_errors(emu, box):
    # Subprotocol token, query token (legacy), no protocol echo without rexec.v1.
    async def connected(ws):
        return await _frames_until(ws, lambda fr: len(fr) >= 1)
    frames = terminal(emu, box, connected, headers={},
                      protocols=("rexec.token." + TOKEN,))
    assert frames[0]["type"] == "connected"
    frames = terminal(emu, box, connected, headers={}, query="?token=" + TOKEN)
    assert frames[0]["type"] == "connected"
    # Pre-upgrade failures are plain JSON responses.
    status, _, data = emu.call("GET", "/ws/terminal/" + box, auth=False,
                               headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert (status, json.loads(data)) == (401, {"error": "Authorization token required"})
    status, _, data = emu.call("GET", "/ws/terminal/nope-not-there")
    body = json.loads(data)
    assert status == 404 and body["code"] == "container_not_found"
    assert body["action_required"] == "start"


def test_terminal_ping_pong_resize_and_raw_input(emu, box):
    async def scenario(ws):
        await _ready(ws)
        await ws.send_str(json.dumps({"type": "ping"}))
        frames = await _frames_until(ws, lambda fr: any(f["type"] == "pong" for f in fr))
        await ws.send_str(json.dumps({"type": "resize", "cols": 123, "rows": 45}))
        await ws.send_str("stty size\n")               # not JSON: raw input
        frames += await _frames_until(ws, lambda fr: "45 123" in _output(fr))
        frames += await _frames_until(ws, lambda fr: any(f["type"] == "ping" for f in fr),
                                      timeout=6)
        return frames
    frames = terminal(emu, box, scenario)
    assert {"type": "pong"} in frames and {"type": "ping"} in frames


def test_terminal_shell_restart_swallows_next_message(emu, box):
    async def scenario(ws):
        await _ready(ws)
        await _send_input(ws, "exit\n")
        frames = await _frames_until(
            ws, lambda fr: [f["type"] for f in fr].count("shell_ready") == 1)
        await _send_input(ws, "echo lost-one\n")
        await asyncio.sleep(0.3)
        await _send_input(ws, "echo kept-one\n")
        frames += await _frames_until(ws, lambda fr: "kept-one\r\n" in _output(fr))
        return frames
    frames = terminal(emu, box, scenario)
    out = _output(frames)
    assert "[Starting new session...]" in out
    assert "lost-one" not in out and "kept-one\r\n" in out


def test_terminal_same_connection_id_replaces(emu, box):
    async def main():
        hdrs = {"Authorization": "Bearer " + TOKEN}
        async with aiohttp.ClientSession() as s:
            ws1 = await s.ws_connect(ws_url(emu, box, "?id=same"), headers=hdrs)
            await _ready(ws1)
            ws2 = await s.ws_connect(ws_url(emu, box, "?id=same"), headers=hdrs)
            await _ready(ws2)
            while True:
                msg = await asyncio.wait_for(ws1.receive(), 10)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
            code, extra = msg.data, msg.extra
            await ws2.close()
            await ws1.close()
            return code, extra
    code, reason = asyncio.run(main())
    assert (code, reason) == (1000, "session ended")


def test_terminal_container_deleted(emu):
    c = emu.create(name="del-term")
    did = emu.wait_status(c["id"], "running")["id"]

    async def scenario(ws):
        await _ready(ws)
        emu_delete = asyncio.get_running_loop().run_in_executor(
            None, emu.call, "DELETE", "/api/containers/" + did)
        frames = await _frames_until(
            ws, lambda fr: any(isinstance(f, tuple) for f in fr), timeout=15)
        await emu_delete
        return frames
    frames = terminal(emu, did, scenario)
    types = [f["type"] for f in frames if isinstance(f, dict)]
    assert "container_restart_required" in types
    assert frames[-1] == ("closed", 4100, "container_restart_required")


# ============================================================ HTTP bits

def test_auth_errors(emu):
    status, _, data = emu.call("GET", "/api/containers", auth=False)
    assert (status, json.loads(data)) == (401, {"error": "Authorization token required"})
    status, _, data = emu.call("GET", "/api/containers",
                               headers={"Authorization": "Bearer rexec_" + "0" * 64})
    assert json.loads(data) == {"error": "Invalid or expired API token"}
    status, _, data = emu.call("GET", "/api/containers",
                               headers={"Authorization": "bearer some.jwt.value"})
    assert json.loads(data) == {"error": "Invalid or expired token"}
    assert emu.call("GET", "/api/containers",
                    headers={"Authorization": "BEARER  " + TOKEN})[0] == 200
    # ?token= only counts for WebSocket upgrades
    assert emu.call("GET", "/api/containers?token=" + TOKEN, auth=False)[0] == 401
    assert json.loads(emu.call("GET", "/health", auth=False)[2])["status"] == "ok"
    assert json.loads(emu.call("GET", "/api/version", auth=False)[2]) == {
        "build": "2024-12-10", "version": "v1.0.0"}


def test_json_like_gin(emu, box):
    r = emu.exec(box, "echo '<a&b>'")
    status, headers, data = emu.call("POST", "/api/containers/%s/exec" % box,
                                     {"command": "echo '<a&b>'"})
    assert b"\\u003ca\\u0026b\\u003e" in data and not data.endswith(b"\n")
    assert r["stdout"] == "<a&b>\n"
    status, headers, data = emu.call("GET", "/api/containers",
                                     headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert "containers" in json.loads(gzip.decompress(data))


def test_rate_limit_headers_and_fault(emu):
    status, headers, _ = emu.call("GET", "/api/containers")
    assert headers["X-RateLimit-Limit"] == "500"
    assert 0 <= int(headers["X-RateLimit-Remaining"]) < 500
    emu.control("POST", "/_emu/fault", {"kind": "ratelimit", "prefix": "/api/containers",
                                        "count": 1})
    status, headers, data = emu.call("GET", "/api/containers")
    assert status == 429 and data == b'{"error":"rate limit exceeded","retry_after":60}'
    assert headers["Retry-After"] == "1m0s"
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("500", "0")
    assert emu.call("GET", "/api/containers")[0] == 200


def test_rate_limit_enforced(tmp_path):
    e = Emulator(tmp_path / "root", "--rate-limit", "--ws-stats", "0")
    try:
        codes = [e.call("POST", "/api/containers", raw=b"{")[0] for _ in range(121)]
        assert codes[:120] == [400] * 120 and codes[120] == 429
        status, headers, _ = e.call("POST", "/api/containers", raw=b"{")
        assert status == 429 and headers["X-RateLimit-Limit"] == "120"
        # Another client IP (gin trusts X-Forwarded-For) has its own window.
        assert e.call("POST", "/api/containers", raw=b"{",
                      headers={"X-Forwarded-For": "10.1.2.3"})[0] == 400
        assert e.call("GET", "/api/containers")[0] == 200
    finally:
        e.stop()


def test_faults_and_stats(emu):
    emu.control("POST", "/_emu/reset")
    emu.control("POST", "/_emu/fault", {"kind": "status", "status": 503,
                                        "prefix": "/api/containers", "method": "GET"})
    status, _, data = emu.call("GET", "/api/containers")
    assert (status, json.loads(data)) == (503, {"error": "injected fault"})
    emu.control("POST", "/_emu/fault", {"kind": "empty", "status": 502})
    assert emu.call("GET", "/api/containers")[:3:2] == (502, b"")
    emu.control("POST", "/_emu/fault", {"kind": "slow", "delay": 0.5})
    t0 = time.time()
    assert emu.call("GET", "/api/containers")[0] == 200 and time.time() - t0 >= 0.5
    emu.control("POST", "/_emu/fault", {"kind": "drop"})
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        urllib.request.urlopen(urllib.request.Request(
            emu.url + "/api/containers", headers={"Authorization": "Bearer " + TOKEN}),
            timeout=10)
    emu.control("POST", "/_emu/fault", {"kind": "status", "prefix": "/nothing"})
    emu.control("POST", "/_emu/fault/clear")
    assert emu.call("GET", "/api/containers")[0] == 200
    emu.call("GET", "/api/containers/abc")
    emu.call("POST", "/api/nope")
    stats = emu.control("GET", "/_emu/stats")
    assert stats["routes"]["GET /api/containers"] == 5
    assert stats["routes"]["GET /api/containers/{id}"] == 1
    assert stats["routes"]["POST (unmatched)"] == 1
    assert stats["total"] == 7


def test_ws_drop_fault(emu, box):
    emu.control("POST", "/_emu/fault", {"kind": "ws_drop", "prefix": "/ws/terminal"})

    async def scenario(ws):
        await _ready(ws)
        await _send_input(ws, "echo dropped; sleep 5; echo never\n")
        return await _frames_until(ws, lambda fr: any(isinstance(f, tuple) for f in fr),
                                   timeout=10)
    frames = terminal(emu, box, scenario)
    out = _output(frames)
    assert "\r\ndropped\r\n" in out and "\r\nnever" not in out
    assert frames[-1][:2] == ("closed", None)      # no close frame: dropped


def test_terminal_message_decoding_like_go(emu, box):
    """json.Unmarshal into TerminalMessage: keys match case-insensitively,
    a JSON value that decodes (even {}) without a known type is dropped,
    anything Unmarshal rejects is written to the shell raw."""
    async def scenario(ws):
        await _ready(ws)
        await ws.send_str("{}")
        await ws.send_str("null")
        await ws.send_str(json.dumps({"TYPE": "input", "Data": "echo case-ok\n"}))
        frames = await _frames_until(ws, lambda fr: "case-ok\r\n" in _output(fr))
        await ws.send_str('{"type":"input","data":"x","cols":-1}\n')
        frames += await _frames_until(ws, lambda fr: '"cols":-1' in _output(fr))
        await ws.send_bytes(b"echo raw-bytes\n")
        frames += await _frames_until(ws, lambda fr: "raw-bytes\r\n" in _output(fr))
        return frames
    out = _output(terminal(emu, box, scenario))
    assert "{}" not in out and "null" not in out


def test_terminal_restarts_a_stopped_container(emu, box):
    """The shell dies with the container; the terminal handler then STARTS
    the container again and opens a new shell."""
    async def scenario(ws):
        await _ready(ws)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, emu.json, "POST",
                                   "/api/containers/%s/stop" % box)
        frames = await _frames_until(
            ws, lambda fr: [f.get("type") for f in fr].count("shell_ready") == 1, timeout=15)
        await _send_input(ws, "echo back\n")
        await asyncio.sleep(0.2)                      # the stale reader eats one
        await _send_input(ws, "echo back\n")
        frames += await _frames_until(ws, lambda fr: "back\r\n" in _output(fr))
        return frames
    out = _output(terminal(emu, box, scenario))
    assert "[Starting new session...]" in out and "[Container stopped. Restarting...]" in out
    assert emu.control("GET", "/_emu/sandbox/" + box)["running"] is True


def test_delete_while_creating_leaves_an_orphan(slow_emu):
    emu = slow_emu
    c = emu.create(name="orphan-box")
    emu.json("DELETE", "/api/containers/" + c["id"])
    assert emu.call("GET", "/api/containers/" + c["id"])[0] == 404
    deadline = time.time() + 10
    while time.time() < deadline:
        info = emu.control("GET", "/_emu/sandbox/" + c["id"])
        if info["running"]:
            break
        time.sleep(0.05)
    assert info["state"] == "orphan" and DOCKER_ID_RE.match(info["docker_id"])
    assert all(x["db_id"] != c["id"] for x in emu.json("GET", "/api/containers")["containers"])
    # Unlisted, yet reachable by its Docker ID once its setup is done.
    deadline = time.time() + 10
    while time.time() < deadline:
        status, _, data = emu.call("GET", emu.q(info["docker_id"], "files/list", "/"))
        if status == 200:
            break
        time.sleep(0.05)
    assert status == 200 and json.loads(data)["count"] > 3
    # A new container with the same name replaces the orphan (same Docker name).
    again = emu.create(name="orphan-box")
    emu.wait_status(again["id"], "running")
    assert emu.control("GET", "/_emu/sandbox/" + c["id"])["running"] is False
    emu.json("DELETE", "/api/containers/" + again["id"])


def test_gin_routing_details(emu):
    status, headers, _ = emu.call("GET", "/api/containers/", headers={})
    assert status == 200      # urllib follows gin's 301 to /api/containers
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    conn.request("GET", "/api/containers/?x=1", headers={"Authorization": "Bearer " + TOKEN})
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("Location")) == (301, "/api/containers?x=1")
    resp.read()
    conn.request("PUT", "/api/containers")              # wrong method: gin's 404
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (404, {"error": "not found"})
    conn.close()


def test_free_tier_limit_and_expiry(tmp_path):
    e = Emulator(tmp_path / "root", "--tier", "free", "--ws-stats", "0")
    try:
        first = e.create(name="free-0", memory_mb=100000)
        assert first["resources"] == {"cpu_shares": 2000, "disk_mb": 10240,
                                      "memory_mb": 2048}
        assert first["session_limit_seconds"] == 180000
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", first["expires_at"])
        for i in range(1, 5):
            e.create(name="free-%d" % i)
        status, _, data = e.call("POST", "/api/containers", {"image": "ubuntu"})
        assert (status, json.loads(data)) == (403, {
            "current": 5, "error": "container limit reached", "limit": 5,
            "message": "Upgrade your plan to create more containers", "tier": "free"})
        assert e.json("GET", "/api/containers")["limit"] == 5
    finally:
        e.stop()

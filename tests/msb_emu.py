"""What the tests of the microsandbox emulator share
(test_microsandbox_emulator.py, test_microsandbox_cloud.py): the hub
(tests/emulators/microsandbox.py) with its own MSB_HOME, a tiny raw client
of the agent protocol (socket + struct + cbor2), the cloud API's requests
and a small RFC 6455 client whose byte stream the raw client reads.
"""

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import helpers

cbor2 = pytest.importorskip("cbor2")

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulators", "microsandbox.py")
BIN = os.path.join(HERE, "emulators", "bin")
REAL_MSB = os.path.join(HERE, "sdk", "microsandbox", "node_modules", "@superradcompany",
                        "microsandbox-linux-x64-gnu", "bin", "msb")
STEP = (2 ** 32 - 1) // 128
MiB = 1024 * 1024


def _require_machine():
    if not shutil.which("bwrap"):
        pytest.skip("bwrap is needed by the microsandbox emulator")
    if os.geteuid() != 0:
        pytest.skip("the microsandbox emulator runs commands only as root")


def _pids_mentioning(text):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def _pids_with_cmdline(*words):
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


def wait_for(cond, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


# ============================================================ the emulator

class Hub:
    """One emulator (hub) with its own MSB_HOME; `msb` runs the fake CLI."""

    def __init__(self, home, *extra):
        self.home = helpers.short_path(str(home))
        self.log_path = self.home + ".log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", EMULATOR, "--root", self.home, "--port", "0",
             "--delay", "0"] + list(extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log,
            start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError("emulator did not start:\n" + self.log_text())
        self.port = int(line)
        self.env = dict(os.environ, MSB_HOME=self.home,
                        PATH=BIN + os.pathsep + os.environ.get("PATH", ""))

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def msb(self, *args, timeout=60):
        return subprocess.run(["msb"] + list(args), env=self.env, timeout=timeout,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                     data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        return self.control("GET", "/_emu/stats")

    def reset(self):
        self.control("POST", "/_emu/reset")

    def fault(self, **kw):
        self.control("POST", "/_emu/fault", kw)

    def clear_faults(self):
        self.control("POST", "/_emu/fault/clear")

    def socket_path(self, name):
        return os.path.join(self.home, "run", "sandboxes",
                            hashlib.sha256(name.encode()).hexdigest()[:24], "agent.sock")

    def rootfs(self, name):
        return self.control("GET", "/_emu/sandbox/" + name)["dir"]

    def create(self, name, *extra):
        r = self.msb("create", "alpine", "--name", name, *extra)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b""
        return name

    def stop(self):
        """SIGTERM; it must exit 0 and leave no sandbox process behind."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self.proc.stdout.close()
        self.log.close()
        assert rc == 0, "emulator exited %s\n%s" % (rc, self.log_text())
        wait_for(lambda: not _pids_mentioning(self.home), 30, "sandbox processes to go")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    _require_machine()
    h = Hub(tmp_path_factory.mktemp("msb") / "home")
    yield h
    h.stop()


@pytest.fixture(scope="module")
def box(hub):
    return hub.create("box", "-e", "GREETING=hello", "-w", "/tmp")


# ============================================================ a raw client

class Closed(Exception):
    pass


class Client:
    """One relay connection: the handshake, then framed CBOR messages."""

    def __init__(self, path, timeout=10, handshake=True, sock=None):
        if sock is None:        # else a socket-like byte stream (WsStream)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        self.sock = sock
        self.buf = b""
        if handshake:
            self.id_start, self.id_end = struct.unpack(">II", self.read(8))
            self.ready = self.recv()
            self.next_id = self.id_start

    def close(self):
        self.sock.close()

    def read(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise Closed()
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def closed_by_peer(self, timeout=5):
        """True once the peer closes (whatever it still sends is dropped)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (socket.timeout, ConnectionResetError):
            return False

    def recv_raw(self):
        (length,) = struct.unpack(">I", self.read(4))
        id_, flags = struct.unpack(">IB", self.read(5))
        return id_, flags, self.read(length - 5)

    def recv(self):
        """(id, flags, type, payload, v)."""
        id_, flags, body = self.recv_raw()
        env = cbor2.loads(body)
        return id_, flags, env["t"], cbor2.loads(env["p"]), env["v"]

    def new_id(self):
        self.next_id += 1
        return self.next_id - 1

    def send(self, t, payload, id_=None, flags=None, raw_p=None, v=7):
        flags = FLAGS.get(t, 0) if flags is None else flags
        id_ = self.new_id() if id_ is None else id_
        p = cbor2.dumps(payload) if raw_p is None else raw_p
        body = cbor2.dumps({"v": v, "t": t, "p": p})
        self.sock.sendall(struct.pack(">IIB", 5 + len(body), id_, flags) + body)
        return id_

    def reply(self, id_):
        """Frames until the terminal one for `id_` (others are an error)."""
        frames = []
        while True:
            fid, flags, t, p, _ = self.recv()
            assert fid == id_, (fid, id_, t, p)
            frames.append((flags, t, p))
            if flags & 1:
                return frames

    def fs(self, op, **args):
        frames = self.reply(self.send("core.fs.request", {"op": {op: args}}))
        (flags, t, p), = frames
        assert t == "core.fs.response" and flags == 1, frames
        return p

    def ok(self, op, **args):
        p = self.fs(op, **args)
        assert p["ok"], p
        return p["data"]

    def exec(self, cmd, args=(), stdin=None, **kw):
        """Run to the end: (stdout, stderr, code or the failed payload, frames)."""
        req = dict({"cmd": cmd, "args": list(args), "env": [], "tty": False}, **kw)
        id_ = self.send("core.exec.request", req)
        if stdin is not None:
            if stdin:
                self.send("core.exec.stdin", {"data": stdin}, id_=id_)
            self.send("core.exec.stdin", {"data": b""}, id_=id_)
        frames = self.reply(id_)
        out = b"".join(p["data"] for _, t, p in frames if t == "core.exec.stdout")
        err = b"".join(p["data"] for _, t, p in frames if t == "core.exec.stderr")
        last = frames[-1]
        code = last[2]["code"] if last[1] == "core.exec.exited" else last[2]
        return out, err, code, frames

    def write_file(self, path, data, chunk=3 * MiB):
        h = self.ok("OpenFile", path=path, options=dict(
            read=False, write=True, append=False, create=True, truncate=True,
            create_new=False))["Handle"]
        id_ = self.send("core.fs.request", {"op": {"Write": {"handle": h, "offset": 0,
                                                             "len": len(data)}}})
        for i in range(0, len(data), chunk):
            self.send("core.fs.data", {"data": data[i:i + chunk]}, id_=id_)
        self.send("core.fs.data", {"data": b""}, id_=id_)
        (flags, t, p), = self.reply(id_)
        assert p["ok"], p
        self.ok("CloseHandle", handle=h)

    def read_file(self, path):
        h = self.ok("OpenFile", path=path, options=dict(
            read=True, write=False, append=False, create=False, truncate=False,
            create_new=False))["Handle"]
        frames = self.reply(self.send("core.fs.request", {"op": {"Read": {
            "handle": h, "offset": 0, "len": None}}}))
        self.ok("CloseHandle", handle=h)
        assert frames[-1][2]["ok"], frames[-1]
        return [p["data"] for _, t, p in frames[:-1]]


FLAGS = {"core.exec.request": 2, "core.fs.request": 2, "core.shutdown": 4}
OPEN_RO = dict(read=True, write=False, append=False, create=False, truncate=False,
               create_new=False)


@pytest.fixture
def client(hub, box):
    c = Client(hub.socket_path(box))
    yield c
    c.close()


def slot_of(c):
    """The relay slot of a client, checking that its range is the slot's."""
    slot, rest = divmod(c.id_start - 1, STEP)
    assert rest == 0 and c.id_end == (slot + 1) * STEP and 0 <= slot < 128
    return slot


def connect_to_slot(path, slot):
    """A client on `slot` once it is free (slots are freed asynchronously
    after a close): the relay hands out the lowest free slot."""
    deadline = time.monotonic() + 5
    while True:
        c = Client(path)
        if slot_of(c) == slot:
            return c
        c.close()
        assert time.monotonic() < deadline, "slot %d never came free" % slot
        time.sleep(0.01)


# ============================================================ the cloud stand-in

KEY = "msb_test_emulator"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    _require_machine()
    h = Hub(tmp_path_factory.mktemp("msbc") / "home", "--cloud-key", KEY)
    yield h
    h.stop()


def api(hub, method, path, body=None, key=KEY, raw=None):
    """(HTTP status, JSON body) of one cloud request."""
    data = raw if raw is not None else \
        json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (hub.port, path), data=data,
                                 method=method)
    if key is not None:
        req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def spec(name, **kw):
    return dict({"name": name, "image": {"type": "oci", "reference": "alpine"},
                 "resources": {"vcpus": 1, "memory_mib": 256}}, **kw)


class WsRefused(Exception):
    pass


class WsStream:
    """A minimal RFC 6455 client that looks like a socket to Client:
    sendall() sends one binary message, recv() returns the next binary
    message (text ones are skipped; b"" once closed).  It keeps every byte
    received (`data`) and where each message ended (`ends`)."""

    def __init__(self, port, path, key=KEY, timeout=10):
        self.tcp = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        nonce = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port,
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + nonce, "Sec-WebSocket-Version: 13"]
        if key is not None:
            lines.append("Authorization: Bearer " + key)
        self.tcp.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            chunk = self.tcp.recv(65536)
            if not chunk:
                raise WsRefused(0, "closed during the upgrade")
            self.raw += chunk
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(self.raw) < length:
                self.raw += self.tcp.recv(65536)
            self.tcp.close()
            raise WsRefused(status, json.loads(self.raw[:length]))
        accept = base64.b64encode(hashlib.sha1(
            (nonce + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert accept in head, head
        self.data, self.ends, self.closed = bytearray(), [], False

    def settimeout(self, t):
        self.tcp.settimeout(t)

    def _need(self, n):
        while len(self.raw) < n:
            chunk = self.tcp.recv(65536)
            if not chunk:
                raise ConnectionResetError("the server went away mid-frame")
            self.raw += chunk
        out, self.raw = self.raw[:n], self.raw[n:]
        return out

    def recv(self, _n=None):
        while not self.closed:
            b0, b1 = self._need(2)
            assert not b1 & 0x80, "a server frame is never masked"
            n = b1 & 0x7F
            if n >= 126:
                n = int.from_bytes(self._need(2 if n == 126 else 8), "big")
            payload, op = self._need(n), b0 & 0x0F
            if op in (0, 2) and payload:
                self.data += payload
                self.ends.append(len(self.data))
                return payload
            if op == 8:
                self.closed = True
            elif op == 9:
                self.send_frame(10, payload)
        return b""

    def send_frame(self, op, payload):
        n = len(payload)
        head = bytes([0x80 | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        key = (mask * (n // 4 + 1))[:n]
        body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
            n, "big") if n else b""
        self.tcp.sendall(head + mask + body)

    def sendall(self, data):
        self.send_frame(2, bytes(data))

    def close(self):
        with contextlib.suppress(OSError):
            self.send_frame(8, (1000).to_bytes(2, "big"))
        self.tcp.close()


def frame_ends(data):
    """Where each relay frame ends in the stream (after the 8-byte range)."""
    ends, at = [], 8
    while at + 4 <= len(data):
        at += 4 + struct.unpack(">I", data[at:at + 4])[0]
        ends.append(at)
    return ends



"""The microsandbox emulator (tests/emulators/microsandbox.py) checked with a
tiny raw client (socket + struct + cbor2) and through its fake `msb`: the
relay handshake and id ranges, agentd's checks, exec, fs, the CLI's JSON and
error texts, stats, faults, --split and --generation; the cloud stand-in
(hub --cloud-key: REST lifecycle, paging, error bodies, and the agent
WebSocket read through a small RFC 6455 client that reassembles the stream
the emulator splits and coalesces at random); and, when the real
msb 0.7.2 is installed under tests/sdk/microsandbox, the CLI surface of the
two side by side.

Needs no FUSE mount, but root and bubblewrap (commands run in sandboxes).  Run:
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_microsandbox_emulator.py
"""

import base64
import contextlib
import errno
import hashlib
import http.client
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
import uuid

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


# ============================================================ relay

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


def test_handshake_ready_frame_and_ranges(hub, box):
    a = Client(hub.socket_path(box))
    b = Client(hub.socket_path(box))
    try:
        assert slot_of(a) != slot_of(b)
        id_, flags, t, p, v = a.ready
        assert (id_, flags, t, v) == (0, 0, "core.ready", 7)
        assert {"boot_time_ns", "init_time_ns", "ready_time_ns", "agent_version"} <= set(p)
        assert "emulator" in p          # an unknown field a client must ignore
        a.close()                       # the lowest free slot is handed out again
        connect_to_slot(hub.socket_path(box), slot_of(a)).close()
    finally:
        b.close()


def test_out_of_range_id_closes_the_connection(client):
    client.send("core.ping", {}, id_=client.id_end)
    assert client.closed_by_peer()


def test_id_zero_only_with_shutdown_flag(client):
    client.send("core.ping", {}, id_=0)
    assert client.closed_by_peer()


def test_oversized_frame_header_closes(client):
    client.sock.sendall(struct.pack(">IIB", 4 * MiB + 1, client.id_start, 0))
    assert client.closed_by_peer()


def test_129th_connection_is_closed_without_handshake(hub, box):
    clients = []
    try:
        while True:         # other tests' closed clients may still hold a slot
            try:
                clients.append(Client(hub.socket_path(box), timeout=5))
            except Closed:
                break       # the 129th: accepted, then closed, no handshake
        assert len({slot_of(c) for c in clients}) == len(clients) <= 128
        extra = Client(hub.socket_path(box), handshake=False)
        if len(clients) == 128:
            assert extra.closed_by_peer()
        extra.close()
        freed = clients.pop()
        freed.close()
        connect_to_slot(hub.socket_path(box), slot_of(freed)).close()
    finally:
        for c in clients:
            c.close()


# ============================================================ agentd checks

def test_ping_and_touch(client):
    id_ = client.send("core.ping", {})
    assert client.reply(id_) == [(1, "core.pong", {})]
    seqs = []
    for _ in range(2):
        (flags, t, p), = client.reply(client.send("core.touch", {}))
        assert (flags, t) == (1, "core.touched")
        seqs.append(p["activity_seq"])
    assert seqs[1] == seqs[0] + 1


def test_invalid_flags(client):
    id_ = client.send("core.exec.request", {"cmd": "true"}, flags=0)
    (flags, t, p), = client.reply(id_)
    assert (flags, t, p["kind"], p["offending_type"]) == \
        (1, "core.error", "invalid_flags", "core.exec.request")
    assert p["message"] == "invalid flags for core.exec.request: got 0, expected 2"
    id_ = client.send("core.ping", {}, flags=2)
    assert client.reply(id_)[0][2]["kind"] == "invalid_flags"


@pytest.mark.parametrize("op", [
    {"Stat": {"path": "/"}},
    {"RemoveDir": {"path": "/tmp/x"}},
    {"OpenFile": {"path": "/x", "options": dict(OPEN_RO, create_new=None)}},
    {"Read": {"handle": 1, "len": None}},
    {"Nope": {}},
])
def test_invalid_payload(client, op):
    (flags, t, p), = client.reply(client.send("core.fs.request", {"op": op}))
    assert (flags, t, p["kind"], p["offending_type"]) == \
        (1, "core.error", "invalid_payload", "core.fs.request")
    assert p["message"].startswith("decode payload for core.fs.request: ")


def test_payload_that_is_not_cbor_and_unknown_fields(client):
    (_, t, p), = client.reply(client.send("core.ping", None, raw_p=b"\xff\xff"))
    assert (t, p["kind"]) == ("core.error", "invalid_payload")
    data = client.ok("Stat", path="/", follow_symlink=True, future_field=[1, 2])
    assert data["Stat"]["kind"] == "dir"


def test_unknown_type_closes(client):
    client.send("core.frobnicate", {})
    assert client.closed_by_peer()


# ============================================================ exec

def test_exec_output_exit_code_env_and_cwd(client):
    out, err, code, frames = client.exec(
        "sh", ["-c", 'echo "$GREETING $X $(pwd)"; echo oops >&2; exit 3'],
        env=["X=y"], cwd="/etc")
    assert (out, err, code) == (b" y /etc\n", b"oops\n", 3)
    assert frames[0][:2] == (0, "core.exec.started") and frames[0][2]["pid"] > 0
    assert all(f[0] == 0 for f in frames[:-1]) and frames[-1][:2] == (1, "core.exec.exited")
    # The sandbox's workdir is the default cwd; PATH is there without asking.
    out, _, code, _ = client.exec("pwd")
    assert (out, code) == (b"/tmp\n", 0)


def test_exec_killed_by_a_signal_reports_minus_one(client):
    id_ = client.send("core.exec.request", {"cmd": "sleep", "args": ["30"]})
    fid, flags, t, p, _ = client.recv()
    assert t == "core.exec.started"
    client.send("core.exec.signal", {"signal": 9}, id_=id_)
    assert client.reply(id_)[-1] == (1, "core.exec.exited", {"code": -1})


def test_exec_stdin_blocks_until_empty_data(client):
    id_ = client.send("core.exec.request", {"cmd": "cat"})
    assert client.recv()[2] == "core.exec.started"
    client.send("core.exec.stdin", {"data": b"ping\n"}, id_=id_)
    # cat echoes and then waits: the next frame is the echo, not an exit.
    assert client.recv()[2:4] == ("core.exec.stdout", {"data": b"ping\n"})
    client.send("core.exec.stdin", {"data": b""}, id_=id_)
    assert client.reply(id_) == [(1, "core.exec.exited", {"code": 0})]
    out, _, code, _ = client.exec("wc", ["-c"], stdin=b"x" * 100000)
    assert (out.strip(), code) == (b"100000", 0)


def test_exec_stdin_epipe_is_reported_and_not_terminal(client):
    id_ = client.send("core.exec.request", {"cmd": "sh", "args": [
        "-c", "exec 0<&-; echo closed; sleep 30"]})
    assert client.recv()[2] == "core.exec.started"
    assert client.recv()[2:4] == ("core.exec.stdout", {"data": b"closed\n"})
    client.send("core.exec.stdin", {"data": b"lost"}, id_=id_)
    fid, flags, t, p, _ = client.recv()
    assert (fid, flags, t) == (id_, 0, "core.exec.stdin.error")
    assert (p["errno"], p["errno_name"]) == (32, "EPIPE")
    client.send("core.exec.signal", {"signal": 15}, id_=id_)
    assert client.reply(id_)[-1][2] == {"code": -1}


def test_exec_failures(client):
    *_, failed, frames = client.exec("no-such-program")
    assert frames == [(1, "core.exec.failed", failed)]
    assert (failed["kind"], failed["errno"], failed["errno_name"]) == ("not_found", 2, "ENOENT")
    assert failed["message"] == 'spawn "no-such-program": No such file or directory (os error 2)'
    *_, failed, _ = client.exec("true", cwd="/etc/passwd")
    assert (failed["kind"], failed["errno"]) == ("bad_cwd", errno.ENOTDIR)
    *_, failed, _ = client.exec("true", cwd="/no/such/dir")
    assert (failed["kind"], failed["errno"]) == ("not_found", errno.ENOENT)
    *_, failed, _ = client.exec("/etc")
    assert failed["kind"] == "permission_denied"


def test_exec_stdin_and_signal_for_unknown_ids_are_ignored(client):
    client.send("core.exec.stdin", {"data": b"x"})
    client.send("core.exec.signal", {"signal": 9})
    assert client.reply(client.send("core.ping", {}))[0][1] == "core.pong"


def test_exec_tty(client):
    out, _, code, _ = client.exec("sh", ["-c", "test -t 0 && test -t 2 && stty size; "
                                         "echo err >&2"], tty=True, rows=33, cols=99)
    assert (out.replace(b"\r", b""), code) == (b"33 99\nerr\n", 0)


def test_disconnect_kills_the_clients_processes(hub, box):
    c = Client(hub.socket_path(box))
    c.send("core.exec.request", {"cmd": "sleep", "args": ["3141"]})
    assert c.recv()[2] == "core.exec.started"
    wait_for(lambda: _pids_with_cmdline("sleep", "3141"), 5, "sleep to run")
    c.close()
    wait_for(lambda: not _pids_with_cmdline("sleep", "3141"), 5, "sleep to die")


# ============================================================ fs

def test_fs_stat_list_and_error_text(client):
    st = client.ok("Stat", path="/etc/passwd", follow_symlink=True)["Stat"]
    assert st["path"] == "/etc/passwd" and st["kind"] == "file"
    assert st["mode"] & 0o170000 == 0o100000 and st["modified"] == st["mtime"]
    p = client.fs("Stat", path="/nope", follow_symlink=False)
    assert p == {"ok": False, "error": "stat: No such file or directory (os error 2)",
                 "data": None}
    client.ok("Mkdir", path="/tmp/ls")
    client.ok("Symlink", target="/etc", link_path="/tmp/ls/link")
    client.write_file("/tmp/ls/f", b"abc")
    entries = client.ok("List", path="/tmp/ls")["List"]
    assert sorted((e["path"], e["kind"], e["size"]) for e in entries) == [
        ("/tmp/ls/f", "file", 3), ("/tmp/ls/link", "symlink", 4)]
    assert client.fs("List", path="/nope")["error"] == \
        "readdir: opendir: No such file or directory (os error 2)"
    st = client.ok("Stat", path="/tmp/ls/link", follow_symlink=True)["Stat"]
    assert st["kind"] == "dir"


def test_fs_mkdir_is_mkdir_p_with_mode(client):
    client.ok("Mkdir", path="/tmp/a/b/c", mode=0o700)
    client.ok("Mkdir", path="/tmp/a/b/c")                     # no EEXIST
    st = client.ok("Stat", path="/tmp/a/b/c", follow_symlink=True)["Stat"]
    assert st["mode"] == 0o40700
    client.write_file("/tmp/a/file", b"")
    assert client.fs("Mkdir", path="/tmp/a/file")["error"] == \
        "mkdir: File exists (os error 17)"


def test_fs_write_read_over_three_mib(client):
    data = os.urandom(7 * MiB + 5)
    client.write_file("/tmp/big", data, chunk=MiB)
    chunks = client.read_file("/tmp/big")
    assert [len(c) for c in chunks] == [3 * MiB, 3 * MiB, MiB + 5]
    assert b"".join(chunks) == data
    h = client.ok("OpenFile", path="/tmp/big", options=OPEN_RO)["Handle"]
    frames = client.reply(client.send("core.fs.request", {"op": {"Read": {
        "handle": h, "offset": 3 * MiB - 2, "len": 4}}}))
    assert frames[0][2]["data"] == data[3 * MiB - 2:3 * MiB + 2]
    st = client.ok("FStat", handle=h)["Stat"]
    assert (st["path"], st["size"]) == ("/tmp/big", len(data))


def test_fs_write_length_mismatch_and_unknown_session(client):
    h = client.ok("OpenFile", path="/tmp/short", options=dict(
        OPEN_RO, read=False, write=True, create=True))["Handle"]
    id_ = client.send("core.fs.request", {"op": {"Write": {"handle": h, "offset": 0,
                                                           "len": 10}}})
    client.send("core.fs.data", {"data": b"abc"}, id_=id_)
    client.send("core.fs.data", {"data": b""}, id_=id_)
    assert client.reply(id_)[0][2]["error"] == "write length mismatch: expected 10, wrote 3"
    id_ = client.send("core.fs.data", {"data": b"x"})
    assert client.reply(id_)[0][2]["error"] == "unknown write session: %d" % id_


def test_fs_rename_remove_removedir(client):
    client.ok("Mkdir", path="/tmp/rr/sub")
    client.write_file("/tmp/rr/sub/f", b"1")
    client.ok("Rename", src="/tmp/rr/sub/f", dst="/tmp/rr/g")
    assert client.fs("Remove", path="/tmp/rr/sub")["error"] == \
        "remove: Is a directory (os error 21)"
    client.write_file("/tmp/rr/sub/h", b"2")
    p = client.fs("RemoveDir", path="/tmp/rr/sub", recursive=False)
    assert p["error"] == "remove_dir: Directory not empty (os error 39)"
    client.ok("RemoveDir", path="/tmp/rr", recursive=True)
    assert client.fs("Stat", path="/tmp/rr", follow_symlink=False)["ok"] is False


def test_fs_handles_readdir_setstat_realpath_copy(client):
    client.ok("Mkdir", path="/tmp/many")
    for i in range(5):
        client.write_file("/tmp/many/%d" % i, b"x" * i)
    h = client.ok("OpenDir", path="/tmp/many")["Handle"]
    got = []
    while True:
        batch = client.ok("ReadDir", handle=h, limit=2)["List"]
        if not batch:
            break
        assert len(batch) <= 2
        got += batch
    assert sorted(e["path"] for e in got) == ["/tmp/many/%d" % i for i in range(5)]
    client.ok("CloseHandle", handle=h)
    assert client.fs("CloseHandle", handle=h)["error"] == "close: invalid handle: %d" % h
    client.ok("SetStat", path="/tmp/many/4", follow_symlink=True,
              attrs={"mode": 0o600, "size": 2, "mtime": 1000000000})
    st = client.ok("Stat", path="/tmp/many/4", follow_symlink=True)["Stat"]
    assert (st["mode"] & 0o7777, st["size"], st["mtime"]) == (0o600, 2, 1000000000)
    assert client.ok("RealPath", path="/tmp/../tmp/many/new")["Path"] == "/tmp/many/new"
    client.ok("Copy", src="/tmp/many/3", dst="/tmp/many/copy")
    assert client.read_file("/tmp/many/copy") == [b"xxx"]


def test_fs_paths_stay_inside_the_sandbox(client, hub, box):
    client.ok("Symlink", target="../../../../../../../..", link_path="/tmp/up")
    names = {e["path"].rsplit("/", 1)[1] for e in client.ok("List", path="/tmp/up")["List"]}
    assert {"tmp", "etc", "proc"} <= names and "emu" not in names
    client.write_file("/tmp/up/../../escaped", b"no")
    assert os.path.exists(os.path.join(hub.rootfs(box), "escaped"))
    assert client.fs("Stat", path="/../../emu/config.json", follow_symlink=True)["ok"] is False


def test_handle_owned_by_another_client(client, hub, box):
    h = client.ok("OpenFile", path="/etc/passwd", options=OPEN_RO)["Handle"]
    other = Client(hub.socket_path(box))
    try:
        frames = other.reply(other.send("core.fs.request", {"op": {"Read": {
            "handle": h, "offset": 0, "len": None}}}))
        assert frames[0][2]["error"] == "read: handle %d is owned by a different relay " \
            "client" % h
    finally:
        other.close()


# ============================================================ CLI

def test_cli_lifecycle_json_and_errors(hub):
    name = hub.create("life", "-c", "2", "-m", "1G", "-w", "/work", "-e", "A=b=c",
                      "--label", "k=v", "-u", "nobody")
    r = hub.msb("create", "alpine", "--name", name)
    assert (r.returncode, r.stderr) == (1, (
        "error: sandbox already exists: sandbox '%s' already exists; remove it, start the "
        "stopped sandbox, or recreate with .replace()\n" % name).encode())
    rows = json.loads(hub.msb("ls", "--format", "json").stdout)
    row, = [x for x in rows if x["name"] == name]
    assert set(row) == {"name", "status", "created_at", "image"}
    assert (row["status"], row["image"]) == ("Running", "alpine")
    info = json.loads(hub.msb("inspect", name, "--format", "json").stdout)
    assert {"name", "status", "created_at", "updated_at", "config", "active_config",
            "pending_changes", "pause"} == set(info)
    c = info["config"]
    assert c["env"] == [{"key": "A", "value": "b=c"}] and c["labels"] == {"k": "v"}
    assert (c["runtime"]["workdir"], c["runtime"]["user"], c["runtime"]["shell"]) == \
        ("/work", "nobody", "/bin/sh")
    assert c["resources"] == {"cpus": 2, "max_cpus": 2, "memory_mib": 1024,
                              "max_memory_mib": 1024}
    assert c["image"] == {"Oci": {"reference": "alpine"}}
    st = json.loads(hub.msb("status", "-a", "--format", "json").stdout)
    assert [x for x in st if x["name"] == name][0]["memory_mib"] == 1024
    # Commands run as the configured user.
    c = Client(hub.socket_path(name))
    c.ok("Mkdir", path="/work")
    assert c.exec("id", ["-u"])[0] == b"65534\n"
    c.write_file("/work/kept", b"across restarts")
    c.close()
    r = hub.msb("rm", name)
    assert (r.returncode, r.stderr) == (1, (
        "error: sandbox still running: cannot remove sandbox '%s': still running\n"
        % name).encode())
    r = hub.msb("stop", name)
    assert (r.returncode, r.stderr) == (0, ("   \u2713 Stopped      %s\n" % name).encode())
    assert not os.path.exists(hub.socket_path(name))
    assert json.loads(hub.msb("inspect", name, "--format", "json").stdout)["status"] == \
        "Stopped"
    r = hub.msb("stop", name)
    assert r.returncode == 0                                  # already stopped
    r = hub.msb("start", name)
    assert (r.returncode, r.stderr) == (0, ("   \u2713 Started      %s\n" % name).encode())
    c = Client(hub.socket_path(name))
    assert c.read_file("/work/kept") == [b"across restarts"]
    c.close()
    r = hub.msb("start", name)
    assert r.returncode == 1 and b"already running" in r.stderr
    r = hub.msb("rm", "-f", name)
    assert (r.returncode, r.stderr) == (0, ("   \u2713 Removed      %s\n" % name).encode())
    for args in (("rm", name), ("stop", name), ("start", name), ("inspect", name)):
        r = hub.msb(*args)
        assert (r.returncode, r.stdout, r.stderr) == \
            (1, b"", ("error: sandbox not found: %s\n" % name).encode()), args


def test_cli_usage_errors_and_version(hub):
    r = hub.msb("--version")
    assert (r.returncode, r.stdout) == (0, b"msb 0.7.2\n")
    r = hub.msb("create", "alpine", "--name", "x", "--bogus")
    assert r.returncode == 2 and r.stderr.decode() == (
        "error: unexpected argument '--bogus' found\n\n"
        "  tip: to pass '--bogus' as a value, use '-- --bogus'\n\n"
        "Usage: msb create --name <NAME> <IMAGE>\n\n"
        "For more information, try '--help'.\n")
    r = hub.msb("rm")
    assert r.returncode == 2 and b"<NAMES>..." in r.stderr
    r = hub.msb("create", "alpine", "-c", "abc")
    assert r.returncode == 2 and b"invalid value 'abc' for '--cpus <CPUS>': invalid digit" \
        in r.stderr
    r = hub.msb("frob")
    assert r.returncode == 2 and r.stderr.startswith(b"error: unrecognized subcommand 'frob'")
    r = hub.msb("create", "/no/such/rootfs", "--name", "x")
    assert (r.returncode, r.stderr) == \
        (1, b"error: invalid config: rootfs bind path does not exist: /no/such/rootfs\n")


def test_cli_pause_holds_requests(hub, box):
    c = Client(hub.socket_path(box))
    try:
        assert hub.msb("pause", box).returncode == 0
        assert json.loads(hub.msb("inspect", box, "--format", "json").stdout)["status"] \
            == "Paused"
        id_ = c.send("core.ping", {})
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.recv()
        c.sock.settimeout(10)
        r = hub.msb("resume", box)
        assert (r.returncode, r.stderr) == (0, ("   \u2713 Resumed      %s\n" % box).encode())
        assert c.reply(id_)[0][1] == "core.pong"
    finally:
        hub.msb("resume", box)
        c.close()


def test_directory_image_is_copied(hub, tmp_path):
    src = tmp_path / "rootfs"
    (src / "data").mkdir(parents=True)
    (src / "data" / "hello.txt").write_text("from the image")
    r = hub.msb("create", str(src), "--name", "fromdir")
    assert r.returncode == 0, r.stderr
    info = json.loads(hub.msb("inspect", "fromdir", "--format", "json").stdout)
    assert info["config"]["image"] == {"Bind": {"follow_root_symlinks": False,
                                                "path": str(src)}}
    c = Client(hub.socket_path("fromdir"))
    assert c.exec("cat", ["/data/hello.txt"])[0] == b"from the image"
    c.close()
    assert hub.msb("rm", "-f", "fromdir").returncode == 0


def test_core_shutdown_stops_the_sandbox(hub):
    name = hub.create("shutdown")
    c = Client(hub.socket_path(name))
    c.send("core.shutdown", {}, id_=0)
    assert c.closed_by_peer()
    wait_for(lambda: json.loads(hub.msb("inspect", name, "--format", "json").stdout)
             ["status"] == "Stopped", 5, "the sandbox to stop")
    assert hub.msb("rm", name).returncode == 0


# ============================================================ stats, faults

def test_stats_count_and_reset(hub, client):
    hub.reset()
    client.ok("Stat", path="/", follow_symlink=True)
    client.ok("Stat", path="/tmp", follow_symlink=True)
    client.exec("true")
    client.reply(client.send("core.ping", {}))       # not counted
    hub.msb("ls", "--format", "json")
    s = hub.stats()
    assert {k: v for k, v in s.items() if k != "routes"} == \
        {"fs.Stat": 2, "exec": 1, "cli.ls": 1, "total": 4}
    assert s["routes"] == {"fs.Stat": 2, "exec": 1, "cli.ls": 1}
    hub.reset()
    assert hub.stats()["total"] == 0


def test_fault_drop(hub, client):
    hub.fault(kind="drop", prefix="fs.Stat")
    client.send("core.fs.request", {"op": {"Stat": {"path": "/", "follow_symlink": True}}})
    assert client.closed_by_peer()


def test_fault_slow_does_not_block_others(hub, client):
    hub.fault(kind="slow", prefix="fs.Stat", delay=0.5)
    t0 = time.monotonic()
    slow = client.send("core.fs.request", {"op": {"Stat": {"path": "/",
                                                           "follow_symlink": True}}})
    ping = client.send("core.ping", {})
    assert client.recv()[0] == ping
    assert time.monotonic() - t0 < 0.4
    assert client.recv()[:3] == (slow, 1, "core.fs.response")
    assert time.monotonic() - t0 >= 0.5


def test_fault_silent(hub, client):
    hub.fault(kind="silent", prefix="fs.")
    client.send("core.fs.request", {"op": {"Stat": {"path": "/", "follow_symlink": True}}})
    ping = client.send("core.ping", {})
    assert client.recv()[0] == ping
    assert client.ok("Stat", path="/", follow_symlink=True)["Stat"]["kind"] == "dir"


def test_fault_error(hub, client):
    hub.fault(kind="error", prefix="fs.Read", errno=13)
    h = client.ok("OpenFile", path="/etc/passwd", options=OPEN_RO)["Handle"]
    frames = client.reply(client.send("core.fs.request", {"op": {"Read": {
        "handle": h, "offset": 0, "len": None}}}))
    assert frames == [(1, "core.fs.response", {
        "ok": False, "error": "read: Permission denied (os error 13)", "data": None})]
    hub.fault(kind="error", prefix="exec")
    assert client.exec("true")[2]["kind"] == "other"
    hub.fault(kind="error", prefix="cli.ls")
    r = hub.msb("ls")
    assert (r.returncode, r.stderr) == (1, b"error: injected fault\n")
    assert hub.msb("ls").returncode == 0


def test_cli_faults(hub):
    hub.fault(kind="drop", prefix="cli.ls")
    assert hub.msb("ls").returncode == -signal.SIGKILL
    hub.fault(kind="garbage", prefix="cli.inspect")
    r = hub.msb("inspect", "box", "--format", "json")
    assert r.returncode == 0
    with pytest.raises(ValueError):
        json.loads(r.stdout)
    hub.fault(kind="silent", prefix="cli.status")
    with pytest.raises(subprocess.TimeoutExpired):
        hub.msb("status", timeout=0.5)
    hub.fault(kind="slow", prefix="cli.ls", delay=0.3)
    t0 = time.monotonic()
    assert hub.msb("ls").returncode == 0 and time.monotonic() - t0 >= 0.3


def test_fault_unready(hub, box):
    hub.fault(kind="unready", count=1)
    stuck = Client(hub.socket_path(box), handshake=False)
    stuck.sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        stuck.sock.recv(1)
    fine = Client(hub.socket_path(box))
    assert fine.ready[2] == "core.ready"
    stuck.close()
    fine.close()


@pytest.mark.parametrize("kind", ["garbage", "oversize"])
def test_fault_bad_answers(hub, client, kind):
    hub.fault(kind=kind, prefix="fs.Stat")
    id_ = client.send("core.fs.request", {"op": {"Stat": {"path": "/",
                                                          "follow_symlink": True}}})
    if kind == "garbage":
        fid, flags, body = client.recv_raw()
        assert fid == id_
        with pytest.raises(Exception):
            cbor2.loads(body)
    else:
        length, fid, flags = struct.unpack(">IIB", client.read(9))
        assert (length, fid) == (5 * MiB, id_)


# ============================================================ knobs

def test_generation_9_and_split_writes(tmp_path):
    _require_machine()
    h = Hub(tmp_path / "home", "--generation", "9", "--split")
    try:
        h.create("split")
        c = Client(h.socket_path("split"))
        assert c.ready[4] == 9
        data = os.urandom(300000)
        c.write_file("/tmp/s", data)
        assert b"".join(c.read_file("/tmp/s")) == data
        out, _, code, frames = c.exec("sh", ["-c", "seq 1 2000"])
        assert code == 0 and out == b"".join(b"%d\n" % i for i in range(1, 2001))
        c.send("core.ping", {})
        assert c.recv()[4] == 9                     # answers carry v = 9 too
        c.close()
    finally:
        h.stop()


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


def test_cloud_auth_is_required(cloud):
    for key in (None, "wrong"):
        status, body = api(cloud, "GET", "/v1/sandboxes", key=key)
        assert status == 401 and body["code"] == "unauthorized" and body["message"]
        status, body = api(cloud, "POST", "/v1/sandboxes", spec("nokey"), key=key)
        assert status == 401
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, "/v1/sandboxes/%s/agent" % uuid.uuid4(), key=key)
        assert e.value.args[0] == 401
    assert api(cloud, "GET", "/v1/sandboxes/by-name/nokey")[0] == 404
    assert cloud.stats().get("cloud.unauthorized", 0) >= 6


def test_cloud_lifecycle(cloud):
    status, sb = api(cloud, "POST", "/v1/sandboxes", spec(
        "Life_1", env=[{"key": "A", "value": "b=c"}], labels={"k": "v"},
        runtime={"workdir": "/tmp"}, future_field={"ignored": True}))
    assert status == 201, sb
    assert str(uuid.UUID(sb["id"])) == sb["id"] and uuid.UUID(sb["org_id"])
    assert (sb["name"], sb["slug"], sb["status"], sb["ephemeral"]) == \
        ("Life_1", "life-1", "created", False)
    assert sb["started_at"] is None and sb["stopped_at"] is None and sb["created_at"]
    assert sb["spec"]["env"] == [{"key": "A", "value": "b=c"}]
    assert sb["spec"]["labels"] == {"k": "v"}
    status, body = api(cloud, "POST", "/v1/sandboxes", spec("Life_1"))
    assert (status, body["code"]) == (409, "name_already_exists") and body["message"]
    ls = json.loads(cloud.msb("ls", "--format", "json").stdout)
    assert [r["name"] for r in ls] == ["Life_1"]      # an ordinary emulator sandbox
    assert api(cloud, "GET", "/v1/sandboxes/by-name/Life_1") == (200, sb)

    status, run = api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/start"
                      "?wait_for=running&wait_timeout=30", {})
    assert (status, run["status"], run["id"]) == (200, "running", sb["id"])
    assert run["started_at"] and run["stopped_at"] is None
    assert cloud.control("GET", "/_emu/sandbox/Life_1")["status"] == "Running"
    again = api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/start?wait_for=running", {})
    assert again == (200, run)                          # already running: no change
    status, stopped = api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/stop", {})
    assert (status, stopped["status"]) == (200, "stopped")
    assert stopped["stopped_at"] >= stopped["started_at"]
    assert api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/stop", {})[1]["status"] == \
        "stopped"
    status, body = api(cloud, "DELETE", "/v1/sandboxes/by-name/Life_1")
    assert status == 200 and set(body) == {"message"}
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/start"),
                         ("POST", "/stop")):
        status, body = api(cloud, method, "/v1/sandboxes/by-name/Life_1" + path,
                           {} if method == "POST" else None)
        assert (status, body["code"]) == (404, "sandbox_not_found"), (method, path)
        assert "Life_1" in body["message"]

    # create-and-start in one go; DELETE of a running sandbox stops it
    status, sb = api(cloud, "POST", "/v1/sandboxes?start=true&wait_for=running"
                     "&wait_timeout=90", spec("life2"))
    assert (status, sb["status"]) == (201, "running") and sb["started_at"]
    pid = cloud.control("GET", "/_emu/sandbox/life2")["pid"]
    assert api(cloud, "DELETE", "/v1/sandboxes/by-name/life2")[0] == 200
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, "the sandbox to stop")
    assert api(cloud, "GET", "/v1/sandboxes")[1]["data"] == []


def test_cloud_start_without_waiting_and_failed_start(cloud):
    api(cloud, "POST", "/v1/sandboxes", spec("nowait"))
    status, sb = api(cloud, "POST", "/v1/sandboxes/by-name/nowait/start", {})
    assert status == 200 and sb["status"] in ("starting", "running")
    wait_for(lambda: api(cloud, "GET", "/v1/sandboxes/by-name/nowait")[1]["status"] ==
             "running", 20, "the sandbox to run")
    api(cloud, "DELETE", "/v1/sandboxes/by-name/nowait")
    cloud.fault(kind="crash", prefix="boot")
    status, body = api(cloud, "POST", "/v1/sandboxes?start=true&wait_for=running",
                       spec("crashy"))
    assert (status, body["code"]) == (502, "sandbox_start_failed")
    sb = api(cloud, "GET", "/v1/sandboxes/by-name/crashy")[1]
    assert sb["status"] == "failed" and "agent relay" in sb["last_failure_message"]
    assert api(cloud, "POST", "/v1/sandboxes/by-name/crashy/start?wait_for=running",
               {})[1]["status"] == "running"
    api(cloud, "DELETE", "/v1/sandboxes/by-name/crashy")


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "invalid_request"),
    (b"[]", 400, "invalid_request"),
    (spec("v1", runtime={"workdir": "/", "hostname": "h"}), 400, "invalid_sandbox_config"),
    (spec("v2", resources={"vcpus": "two"}), 422, "invalid_request"),
    (spec("v3", image=None), 422, "invalid_request"),
    (spec("v4", image={"type": "bind", "path": "/nonexistent/dir"}), 400,
     "invalid_sandbox_config"),
    (spec("-bad name"), 400, "invalid_sandbox_config"),
    (spec("v5", env=[{"key": "A"}]), 422, "invalid_request"),
])
def test_cloud_create_refusals(cloud, body, status, code):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, answer = api(cloud, "POST", "/v1/sandboxes", raw=raw)
    assert (got, answer["code"]) == (status, code), answer
    assert api(cloud, "GET", "/v1/sandboxes")[1]["data"] == []


def test_cloud_list_paging_and_labels(cloud):
    names = ["pg%d" % i for i in range(5)]
    for n in names:
        assert api(cloud, "POST", "/v1/sandboxes", spec(
            n, labels={"grp": "odd" if n == "pg3" else "pg"}))[0] == 201
    try:
        seen, cursor, pages = [], None, 0
        while True:
            q = "/v1/sandboxes?limit=2" + ("&cursor=" + cursor if cursor else "")
            status, page = api(cloud, "GET", q)
            assert status == 200 and len(page["data"]) <= 2
            seen += [s["name"] for s in page["data"]]
            pages += 1
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        assert (seen, pages) == (names, 3)
        assert [s["name"] for s in api(cloud, "GET", "/v1/sandboxes")[1]["data"]] == names
        q = urllib.parse.quote(json.dumps({"grp": "pg"}))
        status, page = api(cloud, "GET", "/v1/sandboxes?limit=3&labels=" + q)
        assert [s["name"] for s in page["data"]] == ["pg0", "pg1", "pg2"]
        page2 = api(cloud, "GET", "/v1/sandboxes?limit=3&labels=%s&cursor=%s"
                    % (q, page["next_cursor"]))[1]
        assert [s["name"] for s in page2["data"]] == ["pg4"] and "next_cursor" not in page2
        for bad in ("limit=0", "limit=x", "cursor=%%%", "labels=[1]"):
            status, body = api(cloud, "GET", "/v1/sandboxes?" + bad)
            assert (status, body["code"]) == (400, "invalid_request"), bad
    finally:
        for n in names:
            api(cloud, "DELETE", "/v1/sandboxes/by-name/" + n)


def test_cloud_agent_websocket(cloud):
    status, sb = api(cloud, "POST", "/v1/sandboxes?start=true&wait_for=running",
                     spec("wsbox", runtime={"workdir": "/tmp"}))
    assert status == 201, sb
    path = "/v1/sandboxes/%s/agent" % sb["id"]
    try:
        c = Client(None, sock=WsStream(cloud.port, path))
        slot_of(c)
        _, _, t, ready, v = c.ready
        assert (t, v) == ("core.ready", 7) and "agent_version" in ready
        c.sock.send_frame(1, b"text messages are ignored")
        out, err, code, _ = c.exec("echo", ["hi"])
        assert (out, err, code) == (b"hi\n", b"", 0)
        out, _, code, _ = c.exec("pwd")
        assert (out, code) == (b"/tmp\n", 0)
        assert c.ok("Stat", path="/tmp", follow_symlink=True)["Stat"]["kind"] == "dir"
        data = os.urandom(200000)
        c.write_file("/tmp/big", data)
        assert b"".join(c.read_file("/tmp/big")) == data

        # the bytes come back split and coalesced at random
        split = merged = tiny = False
        for _ in range(10):
            ids = [c.send("core.ping", {}) for _ in range(50)]
            for id_ in ids:
                assert c.reply(id_) == [(1, "core.pong", {})]
            fends = set(frame_ends(c.sock.data))
            ends = c.sock.ends
            split |= any(e not in fends for e in ends)
            merged |= any(sum(a < f < b for f in fends) >= 1 for a, b in zip(ends, ends[1:]))
            tiny |= any(b - a == 1 for a, b in zip([0] + ends, ends))
            if split and merged and tiny:
                break
        assert split and merged and tiny, (split, merged, tiny)

        # closing the WebSocket closes the relay connection: the slot comes free
        slot = slot_of(c)
        c.close()
        connect_to_slot(cloud.socket_path("wsbox"), slot).close()
        # stopping the sandbox closes the WebSocket
        c = Client(None, sock=WsStream(cloud.port, path))
        api(cloud, "POST", "/v1/sandboxes/by-name/wsbox/stop", {})
        assert c.closed_by_peer()
        c.close()
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, path)
        assert e.value.args == (409, {"code": "sandbox_not_running",
                                      "message": "sandbox 'wsbox' is not running"})
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, "/v1/sandboxes/%s/agent" % uuid.uuid4())
        assert e.value.args[0] == 404 and e.value.args[1]["code"] == "sandbox_not_found"
    finally:
        api(cloud, "DELETE", "/v1/sandboxes/by-name/wsbox")


def test_cloud_stats_and_faults(cloud):
    cloud.reset()
    api(cloud, "POST", "/v1/sandboxes", spec("flt"))
    try:
        cloud.fault(kind="error", prefix="cloud.get")
        assert api(cloud, "GET", "/v1/sandboxes/by-name/flt") == \
            (500, {"code": "internal", "message": "injected fault"})
        assert api(cloud, "GET", "/v1/sandboxes/by-name/flt")[0] == 200
        cloud.fault(kind="drop", prefix="cloud.list")
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            api(cloud, "GET", "/v1/sandboxes")
        cloud.fault(kind="slow", prefix="cloud.", delay=0.3)
        t0 = time.monotonic()
        assert api(cloud, "GET", "/v1/sandboxes")[0] == 200
        assert time.monotonic() - t0 >= 0.3
        cloud.fault(kind="error", prefix="cloud.agent")
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, "/v1/sandboxes/%s/agent" % uuid.uuid4())
        assert e.value.args[0] == 500
    finally:
        api(cloud, "DELETE", "/v1/sandboxes/by-name/flt")
    stats = cloud.stats()
    for key, n in (("cloud.create", 1), ("cloud.get", 2), ("cloud.list", 2),
                   ("cloud.agent", 1), ("cloud.delete", 1)):
        assert stats[key] == n, stats


# ============================================================ against the real msb

def _run(binary, home, *args):
    env = dict(os.environ, MSB_HOME=helpers.short_path(str(home)))
    env.pop("SBXFS_SURELY_UNSET", None)
    return subprocess.run([binary] + list(args), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


@pytest.mark.skipif(not os.access(REAL_MSB, os.X_OK),
                    reason="the real msb is not installed: run `npm ci` in "
                    "tests/sdk/microsandbox")
def test_cli_surface_matches_the_real_msb(tmp_path):
    fake = os.path.join(BIN, "msb")
    cases = [("--version",), ("ls", "--format", "json"), ("status", "-a", "--format", "json"),
             ("ls",), ("status",), ("status", "-a"),
             ("inspect", "nosuch", "--format", "json"), ("rm", "nosuch"), ("stop", "nosuch"),
             ("start", "nosuch"), ("rm", "-q", "nosuch"), ("stop", "-q", "nosuch"),
             ("start", "-q", "nosuch"), ("rm", "a", "b"), ("pause", "nosuch"),
             ("create", "alpine", "--name", "x", "--bogus"), ("create", "-Z", "a"),
             ("create", "-nx", "-c2", "--bogus"), ("create", "--name", "x", "--name", "y", "a"),
             ("create", "alpine", "-c", "300"), ("create", "-e"), ("create", "a", "b"),
             ("create",), ("create", "/no/such/rootfs", "--name", "x"),
             ("create", "alpine", "-m", "12Q", "--name", "x"),
             ("stop", "-t", "abc", "x"), ("stop", "-t", "-1", "x"), ("rm", "-f", "--bogus"),
             ("status", "-a", "--bogus"), ("inspect", "a", "b"), ("inspect", "a", "--format"),
             ("rm",), ("ls", "--format", "yaml"), ("ls", "--bogus"), ("frob",), ("--bogus",),
             ("create", "alpine", "--name", "a/b"), ("create", "alpine", "--name", ""),
             ("create", "alpine", "--name", "x", "-e", "SBXFS_SURELY_UNSET"),
             ("create", "alpine", "--name", "x", "--idle-timeout", "soon")]
    for i, args in enumerate(cases):
        real = _run(REAL_MSB, tmp_path / ("real%d" % i), *args)
        ours = _run(fake, tmp_path / ("fake%d" % i), *args)
        assert real.returncode == ours.returncode, (args, real, ours)
        if args[0] == "--version":
            assert real.stdout.startswith(b"msb ") and ours.stdout.startswith(b"msb ")
        else:
            assert (real.stdout, real.stderr) == (ours.stdout, ours.stderr), args

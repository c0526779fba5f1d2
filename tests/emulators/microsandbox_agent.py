"""The guest half of the microsandbox emulator: the agent relay that listens
on agent.sock and the agentd that answers exec and fs requests.

microsandbox.py's `sandbox` mode runs one Relay per sandbox; see that file's
docstring for the whole emulator, its deviations and its fault kinds.  This
module knows nothing about the emulator's files: the daemon hands it a
`home` object with count(key) (the request log) and take_fault(key, kinds)
(the fault table), and the name of the spawner socket its commands start from.

Wire protocol (notes: /work/shared/protocols/microsandbox-current.md §2,
checked against crates/{protocol,agentd,runtime}/lib at v0.6.14):

  frame    [len u32 BE = 5 + body][id u32 BE][flags u8][body]
  body     CBOR map {"v": generation, "t": type, "p": bstr(CBOR payload)}
  relay    on accept: [id_start BE][id_end_exclusive BE] + the core.ready
           frame; 128 slots; an id outside the client's range (but id 0
           with SHUTDOWN) closes the connection; a disconnect kills the
           client's exec sessions and closes its handles.
  agentd   flags must equal the type's flags (core.error invalid_flags);
           a payload that does not decode gives core.error invalid_payload;
           a broken envelope or an unknown type is fatal (here: this
           connection is closed and the event logged).
  exec     the SPAWNER below runs as the keeper's command inside the
           sandbox and forks each command there with the stdio we hand it,
           so execvp/chdir errnos and wait statuses are real ones.
  fs       done here on the sandbox directory through common.Jail, with
           agentd's error texts "<op>: <strerror> (os error N)".
"""

import array
import asyncio
import base64
import errno
import fcntl
import json
import os
import random
import resource
import shutil
import signal
import socket
import stat
import struct
import termios
import traceback

import cbor2

import common
from common import log

MAX_FRAME = 4 * 1024 * 1024
FS_CHUNK = 3 * 1024 * 1024
EXEC_CHUNK = 4096
SLOTS = 128
STEP = (2 ** 32 - 1) // SLOTS
MAX_HANDLES = 1024
READDIR_LIMIT = 128
AGENT_VERSION = "0.7.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

TERMINAL, SESSION_START, SHUTDOWN = 0x01, 0x02, 0x04

# Every type agentd knows, with the flags it must carry (message.rs flags()).
MESSAGE_FLAGS = {
    "core.ready": 0, "core.init.resolved": 0, "core.init.ack": 0,
    "core.shutdown": SHUTDOWN, "core.relay.client.disconnected": 0,
    "core.clock.sync": 0, "core.ping": 0, "core.pong": TERMINAL,
    "core.touch": 0, "core.touched": TERMINAL, "core.error": TERMINAL,
    "core.bootstrap": 0,
    "core.exec.request": SESSION_START, "core.exec.started": 0,
    "core.exec.stdin": 0, "core.exec.stdin.error": 0, "core.exec.stdout": 0,
    "core.exec.stderr": 0, "core.exec.exited": TERMINAL,
    "core.exec.failed": TERMINAL, "core.exec.resize": 0, "core.exec.signal": 0,
    "core.fs.request": SESSION_START, "core.fs.response": TERMINAL,
    "core.fs.data": 0,
    "core.tcp.connect": SESSION_START, "core.tcp.connected": 0,
    "core.tcp.data": 0, "core.tcp.eof": 0, "core.tcp.close": 0,
    "core.tcp.closed": TERMINAL, "core.tcp.failed": TERMINAL,
}
# Generation 8 and 9 additions (gen-9.json): known, never handled here.
LATER_TYPES = ("core.bulk.accepted", "core.bulk.credit", "core.bulk.finish",
               "core.bulk.cancel", "core.workload.freeze", "core.workload.frozen",
               "core.workload.thaw", "core.workload.thawed",
               "core.workload.transport.credit", "core.root_disk.prepare",
               "core.root_disk.grow", "core.root_disk.state")

# The "<op>: " prefix of each FsOp's errors (agentd fs.rs).
FS_ERROR_PREFIX = {
    "RealPath": "realpath", "Stat": "stat", "SetStat": "setstat",
    "List": "readdir", "ReadLink": "readlink", "Symlink": "symlink",
    "Mkdir": "mkdir", "Remove": "remove", "RemoveDir": "remove_dir",
    "Copy": "copy", "Rename": "rename", "OpenFile": "open",
    "OpenDir": "opendir", "CloseHandle": "close", "Read": "read",
    "Write": "write", "ReadDir": "readdir", "FStat": "fstat",
    "FSetStat": "fsetstat",
}

ERRNO_NAMES = {errno.ENOENT: "ENOENT", errno.EACCES: "EACCES", errno.EPERM: "EPERM",
               errno.ENOTDIR: "ENOTDIR", errno.ENOEXEC: "ENOEXEC",
               errno.EISDIR: "EISDIR", errno.ETXTBSY: "ETXTBSY", errno.EPIPE: "EPIPE",
               errno.EBADF: "EBADF", errno.EINVAL: "EINVAL", errno.EIO: "EIO"}
# session.rs classify_spawn_errno
SPAWN_KIND = {errno.ENOENT: "not_found", errno.ENOTDIR: "bad_cwd",
              errno.EACCES: "permission_denied", errno.EPERM: "permission_denied",
              errno.ENOEXEC: "not_executable", errno.EISDIR: "not_executable",
              errno.ETXTBSY: "not_executable"}
# rlimit.rs: these names; others are ignored.
RLIMITS = {name: getattr(resource, "RLIMIT_" + name.upper()) for name in (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
    "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
    if hasattr(resource, "RLIMIT_" + name.upper())}


def os_text(e):
    """A Rust io::Error's Display for an OS error."""
    if isinstance(e, OSError) and e.errno:
        return "%s (os error %d)" % (os.strerror(e.errno), e.errno)
    return str(e)


class FsError(Exception):
    """An fs failure whose text is complete (prefixes included)."""


class Fatal(Exception):
    """What kills agentd (here: the connection)."""


# ============================================================ codec

def frame(id_, flags, body):
    return struct.pack(">IIB", 5 + len(body), id_, flags) + body


def message(gen, t, id_, payload):
    body = cbor2.dumps({"v": gen, "t": t, "p": cbor2.dumps(payload)})
    return frame(id_, MESSAGE_FLAGS[t], body)


def decode_envelope(body, gen):
    """(v, t, p bytes) of a frame body; Fatal if agentd could not parse it."""
    try:
        env = cbor2.loads(body)
    except Exception as e:  # noqa: BLE001 - any decoder failure is fatal
        raise Fatal("decode message: %s" % e)
    if not isinstance(env, dict):
        raise Fatal("decode message: envelope is not a map")
    v, t, p = env.get("v"), env.get("t"), env.get("p")
    if type(v) is not int or not 0 <= v <= 255:
        raise Fatal("decode message: bad or missing v")
    if not isinstance(t, str):
        raise Fatal("decode message: bad or missing t")
    if t not in MESSAGE_FLAGS and not (gen >= 8 and t in LATER_TYPES):
        raise Fatal("decode message: unknown message type: %s" % t)
    if not isinstance(p, bytes):
        raise Fatal("decode message: p is not a byte string")
    return v, t, p


# ============================================================ payloads

class PayloadError(Exception):
    pass


REQ = object()          # a field without a serde default
INT_RANGES = {"u16": (0, 2 ** 16 - 1), "u32": (0, 2 ** 32 - 1), "u64": (0, 2 ** 64 - 1),
              "i32": (-2 ** 31, 2 ** 31 - 1), "i64": (-2 ** 63, 2 ** 63 - 1)}


def check(value, typ, field):
    """`value` checked against `typ`: a scalar name, ("opt", t), ("list", t),
    a dict schema (struct) or "fsop" (the externally tagged FsOp)."""
    if isinstance(typ, tuple) and typ[0] == "opt":
        return None if value is None else check(value, typ[1], field)
    if isinstance(typ, tuple) and typ[0] == "list":
        if not isinstance(value, list):
            raise PayloadError("invalid type for `%s`: expected a sequence" % field)
        return [check(v, typ[1], field) for v in value]
    if isinstance(typ, dict):
        return struct_of(value, typ, field)
    if typ == "fsop":
        if not isinstance(value, dict) or len(value) != 1:
            raise PayloadError("invalid type for `op`: expected an enum")
        (name, inner), = value.items()
        if name not in FS_OPS:
            raise PayloadError("unknown variant `%s`" % name)
        return name, struct_of(inner, FS_OPS[name], name)
    ok = {"str": lambda v: isinstance(v, str),
          "bool": lambda v: type(v) is bool,
          "bytes": lambda v: isinstance(v, bytes)}.get(typ)
    if ok is None:
        lo, hi = INT_RANGES[typ]
        ok = lambda v: type(v) is int and lo <= v <= hi  # noqa: E731
    if not ok(value):
        raise PayloadError("invalid type or value for `%s`: expected %s" % (field, typ))
    return value


def struct_of(value, schema, where):
    if not isinstance(value, dict):
        raise PayloadError("invalid type for `%s`: expected a map" % where)
    out = {}
    for name, (typ, default) in schema.items():
        if name not in value:
            if default is REQ and not (isinstance(typ, tuple) and typ[0] == "opt"):
                raise PayloadError("missing field `%s`" % name)
            out[name] = None if default is REQ else default
        else:
            out[name] = check(value[name], typ, name)
    return out      # unknown fields are ignored, as serde does


def opt(t):
    return ("opt", t), REQ


PATH = {"path": ("str", REQ)}
ATTRS = {k: opt(t) for k, t in (("mode", "u32"), ("uid", "u32"), ("gid", "u32"),
                                 ("size", "u64"), ("atime", "i64"), ("mtime", "i64"))}
OPEN_OPTIONS = dict({k: ("bool", REQ) for k in (
    "read", "write", "append", "create", "truncate", "create_new")}, mode=opt("u32"))
HANDLE = {"handle": ("u64", REQ)}
STREAM = dict(HANDLE, offset=("u64", REQ), len=opt("u64"))
FS_OPS = {
    "RealPath": PATH, "List": PATH, "ReadLink": PATH, "Remove": PATH, "OpenDir": PATH,
    "Stat": dict(PATH, follow_symlink=("bool", REQ)),
    "SetStat": dict(PATH, follow_symlink=("bool", REQ), attrs=(ATTRS, REQ)),
    "Symlink": {"target": ("str", REQ), "link_path": ("str", REQ)},
    "Mkdir": dict(PATH, mode=opt("u32")),
    "RemoveDir": dict(PATH, recursive=("bool", REQ)),
    "Copy": {"src": ("str", REQ), "dst": ("str", REQ)},
    "Rename": {"src": ("str", REQ), "dst": ("str", REQ)},
    "OpenFile": dict(PATH, options=(OPEN_OPTIONS, REQ)),
    "CloseHandle": HANDLE, "FStat": HANDLE,
    "Read": STREAM, "Write": STREAM,
    "ReadDir": dict(HANDLE, limit=opt("u32")),
    "FSetStat": dict(HANDLE, attrs=(ATTRS, REQ)),
}
RLIMIT = {"resource": ("str", REQ), "soft": ("u64", REQ), "hard": ("u64", REQ)}
SCHEMAS = {
    "core.exec.request": {
        "cmd": ("str", REQ), "args": (("list", "str"), []), "env": (("list", "str"), []),
        "cwd": opt("str"), "user": opt("str"), "tty": ("bool", False),
        "rows": ("u16", 24), "cols": ("u16", 80), "rlimits": (("list", RLIMIT), [])},
    "core.exec.stdin": {"data": ("bytes", REQ)},
    "core.exec.signal": {"signal": ("i32", REQ)},
    "core.exec.resize": {"rows": ("u16", REQ), "cols": ("u16", REQ)},
    "core.fs.request": {"op": ("fsop", REQ)},
    "core.fs.data": {"data": ("bytes", REQ)},
    "core.tcp.connect": {"host": ("str", REQ), "port": ("u16", REQ)},
}


def decode_payload(t, p):
    try:
        value = cbor2.loads(p)
    except Exception as e:  # noqa: BLE001 - any decoder failure
        raise PayloadError(str(e) or type(e).__name__)
    return struct_of(value, SCHEMAS.get(t, {}), t)


# ============================================================ the agent

class Agent:
    """agentd of one sandbox: its handles, its pause gate, its runtime."""

    def __init__(self, root, spawner, home, generation, split, user=None,
                 workdir=None, on_shutdown=None):
        self.jail = common.Jail(root)
        self.spawner = spawner          # the abstract socket of the spawner
        self.home = home
        self.gen = generation
        self.split = split
        self.default_user = user
        self.workdir = workdir
        self.on_shutdown = on_shutdown
        self.handles = {}           # handle -> Handle
        self.next_handle = 0
        self.activity_seq = 0
        self.running = asyncio.Event()
        self.running.set()
        self.sessions = set()       # live ExecSessions of every connection

    def new_handle(self, slot, entry):
        owned = sum(1 for h in self.handles.values() if h.slot == slot)
        if owned >= MAX_HANDLES:
            raise FsError("too many open filesystem handles for relay client: %d" % owned)
        self.next_handle += 1
        while self.next_handle in self.handles:
            self.next_handle += 1
        entry.slot = slot
        self.handles[self.next_handle] = entry
        return self.next_handle

    def handle(self, slot, number, kind=None, need_read=False, need_write=False):
        h = self.handles.get(number)
        if h is None:
            raise FsError("invalid handle: %d" % number)
        if h.slot != slot:
            raise FsError("handle %d is owned by a different relay client" % number)
        if kind == "file" and h.kind == "dir":
            raise FsError("handle %d is a directory" % number)
        if kind == "dir" and h.kind == "file":
            raise FsError("handle %d is a file" % number)
        if need_read and not h.read:
            raise FsError("handle %d is not open for reading" % number)
        if need_write and not (h.write or h.append):
            raise FsError("handle %d is not open for writing" % number)
        return h

    def close_slot(self, slot):
        for number, h in list(self.handles.items()):
            if h.slot == slot:
                del self.handles[number]
                h.close()

    def pause(self):
        self.running.clear()
        for s in self.sessions:
            s.signal_group(signal.SIGSTOP)

    def resume(self):
        for s in self.sessions:
            s.signal_group(signal.SIGCONT)
        self.running.set()

    def kill_all(self):
        for s in list(self.sessions):
            s.kill()


class Handle:
    """An open file (fd) or directory (a scandir iterator) of one relay slot."""

    def __init__(self, kind, path, host, fd=None, entries=None, read=False, write=False,
                 append=False):
        self.kind, self.path, self.host, self.fd, self.entries = kind, path, host, fd, entries
        self.read, self.write, self.append = read, write, append
        self.slot = None

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.entries is not None:
            self.entries.close()
            self.entries = None


# ============================================================ the relay

class Relay:
    """agent.sock: slots, handshake, then one Connection per client."""

    def __init__(self, agent, ready_payload):
        self.agent = agent
        self.ready_payload = ready_payload
        self.ready = asyncio.Event()
        self.slots = [None] * SLOTS
        self.pending = set()        # accepted, not yet (or never) handshaken

    async def serve(self, reader, writer):
        task = asyncio.current_task()
        self.pending.add(task)
        try:
            if self.agent.home.take_fault("agent", kinds=("unready",)):
                log("fault: unready connection (no handshake)")
                await reader.read()         # until the client gives up
                return
            await self.ready.wait()
            if None not in self.slots:
                log("agent relay: max clients reached, rejecting connection")
                return
            slot = self.slots.index(None)
            conn = Connection(self.agent, slot, reader, writer)
            self.slots[slot] = conn
            self.pending.discard(task)
            try:
                await conn.run(self.ready_payload)
            finally:
                self.slots[slot] = None
                conn.cleanup()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.pending.discard(task)
            writer.close()

    def close_all(self):
        for task in list(self.pending):
            task.cancel()
        for conn in self.slots:
            if conn is not None:
                conn.writer.close()


class Connection:
    """One relay client: its id range, its exec sessions and write streams."""

    def __init__(self, agent, slot, reader, writer):
        self.agent = agent
        self.slot = slot
        self.id_start = slot * STEP + 1
        self.id_end = (slot + 1) * STEP
        self.reader, self.writer = reader, writer
        self.wlock = asyncio.Lock()
        self.sessions = {}          # id -> ExecSession
        self.writes = {}            # id -> WriteStream
        self.tasks = set()
        self.closed = False

    # ------------------------------------------------------------ output

    async def send_raw(self, data):
        """Write one whole frame (or handshake), not interleaved with others."""
        if self.closed:
            return
        async with self.wlock:
            try:
                if self.agent.split:
                    await self._write_split(data)
                else:
                    self.writer.write(data)
                    await self.writer.drain()
            except (ConnectionError, RuntimeError):
                self.closed = True

    async def _write_split(self, data):
        while data:
            n = random.randint(1, 7) if random.random() < 0.3 else random.randint(1, 16384)
            self.writer.write(data[:n])
            data = data[n:]
            await self.writer.drain()
            await asyncio.sleep(random.choice((0, 0, 0, 0.0005)))

    async def send(self, id_, t, payload):
        await self.send_raw(message(self.agent.gen, t, id_, payload))

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def later(self, delay, id_, t, payload):
        async def go():
            await asyncio.sleep(delay)
            await self.send(id_, t, payload)
        self.spawn(go())

    # ------------------------------------------------------------ input

    async def run(self, ready_payload):
        await self.send_raw(struct.pack(">II", self.id_start, self.id_end) +
                            message(self.agent.gen, "core.ready", 0, ready_payload))
        while not self.closed:
            head = await self.reader.readexactly(4)
            (length,) = struct.unpack(">I", head)
            if length < 5 or length > MAX_FRAME:
                log("agent relay: slot %d: bad frame length %d" % (self.slot, length))
                return
            data = await self.reader.readexactly(length)
            id_, flags = struct.unpack(">IB", data[:5])
            if not (self.id_start <= id_ < self.id_end or (id_ == 0 and flags & SHUTDOWN)):
                log("agent relay: slot %d sent out-of-range id=%d" % (self.slot, id_))
                return
            await self.agent.running.wait()         # paused: hold requests
            try:
                await self.dispatch(id_, flags, data[5:])
            except Fatal as e:
                log("agentd: fatal on slot %d: %s (the real agent would exit)"
                    % (self.slot, e))
                return
            except DropConnection:
                log("fault: dropping slot %d" % self.slot)
                return
            except Exception:  # noqa: BLE001 - an emulator bug: say so, hang up
                log("agentd: internal error on slot %d:\n%s"
                    % (self.slot, traceback.format_exc()))
                return

    async def dispatch(self, id_, flags, body):
        v, t, p = decode_envelope(body, self.agent.gen)
        if flags != MESSAGE_FLAGS.get(t, 0):
            await self.core_error(v, id_, "invalid_flags", "invalid flags for %s: got %d, "
                                  "expected %d" % (t, flags, MESSAGE_FLAGS.get(t, 0)), t)
            return
        handler = HANDLERS.get(t)
        if handler is None:
            return                      # agentd ignores what it does not handle
        try:
            payload = decode_payload(t, p)
        except PayloadError as e:
            await self.core_error(v, id_, "invalid_payload",
                                  "decode payload for %s: %s" % (t, e), t)
            return
        await handler(self, id_, payload)

    async def core_error(self, v, id_, kind, text, offending):
        if v < 5:
            raise Fatal("cannot send core.error to protocol generation %d" % v)
        await self.send(id_, "core.error", {"kind": kind, "message": text,
                                            "offending_type": offending})

    # ------------------------------------------------------------ faults

    def fault(self, key):
        """Count the request, then the fault armed for it (None: serve it)."""
        self.agent.home.count(key)
        f = self.agent.home.take_fault(key)
        if f is None:
            return None
        log("fault: %s on %s" % (f["kind"], key))
        if f["kind"] == "drop":
            raise DropConnection()
        return f

    async def bad_answer(self, id_, f):
        """The garbage / oversize answers (True if one was sent)."""
        if f["kind"] == "garbage":
            await self.send_raw(frame(id_, TERMINAL, b"\x1c\xff not CBOR"))
        elif f["kind"] == "oversize":
            await self.send_raw(struct.pack(">IIB", 5 * 1024 * 1024, id_, TERMINAL))
        else:
            return False
        return True

    # ------------------------------------------------------------ cleanup

    def cleanup(self):
        self.closed = True
        for s in list(self.sessions.values()):
            s.kill()
        for task in list(self.tasks):
            task.cancel()
        self.writes.clear()
        self.agent.close_slot(self.slot)


class DropConnection(Exception):
    pass


# ============================================================ handlers

async def on_ping(conn, id_, payload):
    await conn.send(id_, "core.pong", {})


async def on_touch(conn, id_, payload):
    conn.agent.activity_seq += 1
    await conn.send(id_, "core.touched", {"activity_seq": conn.agent.activity_seq})


async def on_shutdown(conn, id_, payload):
    log("agentd: core.shutdown from slot %d" % conn.slot)
    if conn.agent.on_shutdown:
        conn.agent.on_shutdown()


async def on_tcp_connect(conn, id_, payload):
    await conn.send(id_, "core.tcp.failed", {"error": "tcp forwarding is not emulated"})


def slow_delay(f):
    return float(f.get("delay", 1.0)) if f is not None and f["kind"] == "slow" else 0


async def on_exec_request(conn, id_, req):
    f = conn.fault("exec")
    if f is not None:
        if f["kind"] == "silent" or await conn.bad_answer(id_, f):
            return
        if f["kind"] == "error":
            await conn.send(id_, "core.exec.failed", {
                "kind": "other", "errno": None, "errno_name": None,
                "message": "injected fault", "stage": None})
            return
    session = ExecSession(conn, id_, req, slow_delay(f))
    conn.sessions[id_] = session
    session.task = asyncio.ensure_future(session.run())   # lives as long as its process


async def on_exec_stdin(conn, id_, payload):
    s = conn.sessions.get(id_)
    if s is not None:
        s.stdin(payload["data"])


async def on_exec_signal(conn, id_, payload):
    s = conn.sessions.get(id_)
    if s is not None:
        s.pending_signals.append(payload["signal"])
        s.deliver_signals()


async def on_exec_resize(conn, id_, payload):
    s = conn.sessions.get(id_)
    if s is not None:
        s.resize(payload["rows"], payload["cols"])


async def on_fs_request(conn, id_, req):
    name, args = req["op"]
    f = conn.fault("fs." + name)
    if f is not None:
        if f["kind"] == "silent":
            if name == "Write":
                conn.writes[id_] = None        # swallow its data, never answer
            return
        if await conn.bad_answer(id_, f):
            return
        if f["kind"] == "error":
            e = OSError(f.get("errno", errno.EIO), "")
            await conn.send(id_, "core.fs.response", fs_error(
                "%s: %s" % (FS_ERROR_PREFIX[name], os_text(e))))
            return
    delay = slow_delay(f)
    if name == "Read":
        conn.spawn(read_stream(conn, id_, args, delay))
        return
    try:
        if name == "Write":
            conn.writes[id_] = WriteStream(conn, args, delay)
            return
        data = FS_HANDLERS[name](conn, args)
        resp = {"ok": True, "error": None, "data": data}
    except FsError as e:
        resp = fs_error(str(e))
    except OSError as e:
        resp = fs_error("%s: %s" % (FS_ERROR_PREFIX[name], os_text(e)))
    if delay:
        conn.later(delay, id_, "core.fs.response", resp)
    else:
        await conn.send(id_, "core.fs.response", resp)


async def on_fs_data(conn, id_, payload):
    if id_ not in conn.writes:
        await conn.send(id_, "core.fs.response",
                        fs_error("unknown write session: %d" % id_))
        return
    stream = conn.writes[id_]
    if stream is None:                  # a silent fault's write: never answered
        if not payload["data"]:
            del conn.writes[id_]
        return
    resp = stream.feed(payload["data"])
    if resp is not None:
        del conn.writes[id_]
        if stream.delay:
            conn.later(stream.delay, id_, "core.fs.response", resp)
        else:
            await conn.send(id_, "core.fs.response", resp)


HANDLERS = {
    "core.ping": on_ping, "core.touch": on_touch, "core.shutdown": on_shutdown,
    "core.exec.request": on_exec_request, "core.exec.stdin": on_exec_stdin,
    "core.exec.signal": on_exec_signal, "core.exec.resize": on_exec_resize,
    "core.fs.request": on_fs_request, "core.fs.data": on_fs_data,
    "core.tcp.connect": on_tcp_connect,
}


# ============================================================ exec

# The keeper's command: a tiny agent inside the sandbox (pid namespace and
# root included) that forks the commands, so that they are its children
# there and hold their stdio alone.  It listens on an abstract Unix socket
# (the sandbox shares the host's network namespace); per command: a request
# [len u32 BE][JSON] with the stdio fds (SCM_RIGHTS), then JSON lines back:
# {"pid"} or {"failed": errno, "stage"}, later {"exit": code}; the other
# way, {"signal": n} lines go to the command's process group.
SPAWNER = r"""
import array, fcntl, json, os, resource, signal, socket, struct, sys, termios, threading

def recv_request(conn):
    fds = array.array("i")
    data, anc, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(3 * fds.itemsize),
                                   socket.MSG_CMSG_CLOEXEC)
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    size = struct.unpack(">I", data[:4])[0]
    data = data[4:]
    while len(data) < size:
        more = conn.recv(1 << 16)
        if not more:
            raise EOFError()
        data += more
    return json.loads(data), list(fds)

def child(req, fds, err):
    stage = "execvp" if req["tty"] else "Command::spawn"
    try:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
        if req["tty"]:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            try:
                os.chdir(req["cwd"])
            except OSError:
                pass
        else:
            os.chdir(req["cwd"])
            os.setsid()
        for res, soft, hard in req["rlimits"]:
            resource.setrlimit(res, (soft, hard))
        if req["uid"] is not None:
            os.setgroups([])
            os.setgid(req["gid"])
            os.setuid(req["uid"])
        os.execvpe(req["cmd"], [req["cmd"]] + req["args"], req["env"])
    except OSError as e:
        os.write(err, struct.pack(">i", e.errno or 5) + stage.encode())
    finally:
        os._exit(127)

def send(conn, msg):
    try:
        conn.sendall((json.dumps(msg) + "\n").encode())
    except OSError:
        pass

def controls(conn, pid):
    try:
        for line in conn.makefile("rb"):
            sig = json.loads(line)["signal"]
            try:
                os.killpg(pid, sig)
            except OSError:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
    except (OSError, ValueError):
        pass

def serve(conn):
    try:
        req, fds = recv_request(conn)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            child(req, fds, w)
        os.close(w)
        for fd in fds:
            os.close(fd)
        err = b""
        while True:
            chunk = os.read(r, 64)
            if not chunk:
                break
            err += chunk
        os.close(r)
        if err:
            os.waitpid(pid, 0)
            send(conn, {"failed": struct.unpack(">i", err[:4])[0],
                        "stage": err[4:].decode()})
            return
        send(conn, {"pid": pid})
        threading.Thread(target=controls, args=(conn, pid), daemon=True).start()
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        send(conn, {"exit": code if code >= 0 else -1})
    except Exception as e:
        send(conn, {"error": repr(e)})
    finally:
        conn.close()

os.chdir("/")
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind("\0" + sys.argv[1])
server.listen(128)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def spawner_argv(keeper_argv, token, root):
    """A keeper's bwrap command line with the spawner as its command (`root`
    is only shown, so that the sandbox's processes all name it)."""
    # One line: the sandbox's ps shows the agent as one process line.
    code = "import base64; exec(base64.b64decode(%r))" % \
        base64.b64encode(SPAWNER.encode()).decode()
    return keeper_argv[:keeper_argv.index("/bin/sh")] + \
        ["/usr/bin/python3", "-I", "-S", "-c", code, token, root]


async def fd_read(fd, n):
    """os.read of a non-blocking fd, awaiting readability; b"" at EOF
    (EIO from a pty whose other side is closed)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, n)
        except BlockingIOError:
            await fd_ready(loop, fd, loop.add_reader, loop.remove_reader)
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise


async def fd_write(fd, data):
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await fd_ready(loop, fd, loop.add_writer, loop.remove_writer)


async def fd_ready(loop, fd, add, remove):
    fut = loop.create_future()
    add(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        remove(fd)


class ExecSession:
    """One core.exec.request: the command (via the spawner), its output
    pumps, its stdin and its signals."""

    def __init__(self, conn, id_, req, delay):
        self.conn, self.id, self.req, self.delay = conn, id_, req, delay
        self.agent = conn.agent
        self.control = None             # the spawner connection's writer
        self.fds = {}                   # stdin / stdout / stderr / pty -> our fd
        self.stdin_queue = []
        self.stdin_ready = asyncio.Event()
        self.pending_signals = []
        self.task = None

    # -------------------------------------------------------- spawning

    def _user(self, spec):
        """(uid, gid, home) of a user spec from the sandbox's /etc/passwd."""
        name, _, group = spec.partition(":")
        entry = None
        try:
            with open(self.agent.jail.host("/etc/passwd")) as f:
                for line in f:
                    p = line.rstrip("\n").split(":")
                    if len(p) >= 6 and (p[0] == name or p[2] == name):
                        entry = p
                        break
        except OSError:
            pass
        if entry is None:
            if not name.isdigit():
                raise FsError("guest user not found: %s" % name)
            entry = [name, "", name, name, "", "/"]
        gid = int(group) if group.isdigit() else int(entry[3])
        return int(entry[2]), gid, entry[5]

    def _env(self, home):
        env = {"PATH": DEFAULT_PATH, "HOME": home}
        for item in self.req["env"]:
            k, sep, v = item.partition("=")
            if sep:
                env[k] = v
        return env

    def _stdio(self):
        """Our ends and the command's ends of its stdio."""
        if self.req["tty"]:
            master, slave = os.openpty()
            fcntl.ioctl(master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", self.req["rows"], self.req["cols"], 0, 0))
            os.set_blocking(master, False)
            self.fds = {"pty": master}
            return [slave]
        theirs = []
        for name, reading in (("stdin", True), ("stdout", False), ("stderr", False)):
            r, w = os.pipe()
            ours, child = (w, r) if reading else (r, w)
            os.set_blocking(ours, False)
            self.fds[name] = ours
            theirs.append(child)
        return theirs

    async def run(self):
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            await self._run()
        finally:
            if self.conn.closed:
                self.kill()
            self.conn.sessions.pop(self.id, None)
            self.agent.sessions.discard(self)
            for fd in self.fds.values():
                os.close(fd)
            self.fds = {}
            if self.control is not None:
                self.control.close()

    async def _run(self):
        cwd = self.req["cwd"] or self.agent.workdir or "/"
        if not cwd.startswith("/"):
            cwd = "/" + cwd             # agentd runs in "/"
        try:
            spec = self.req["user"] or self.agent.default_user
            user = self._user(spec) if spec else None
        except FsError as e:
            await self.conn.send(self.id, "core.exec.failed", {
                "kind": "other", "errno": None, "errno_name": None,
                "message": "exec session error: %s" % e, "stage": None})
            return
        theirs = self._stdio()
        request = {"cmd": self.req["cmd"], "args": self.req["args"],
                   "env": self._env(user[2] if user else "/root"), "cwd": cwd,
                   "tty": self.req["tty"], "uid": user and user[0], "gid": user and user[1],
                   "rlimits": [(RLIMITS[r["resource"]], r["soft"], r["hard"])
                               for r in self.req["rlimits"] if r["resource"] in RLIMITS]}
        try:
            reader = await self._submit(request, theirs)
            answer = json.loads(await reader.readline() or b'{"error": "spawner gone"}')
        except OSError as e:
            answer = {"error": os_text(e)}
        finally:
            for fd in set(theirs):
                os.close(fd)
        if "pid" not in answer:
            await self.conn.send(self.id, "core.exec.failed", self._failed(answer))
            return
        self.agent.sessions.add(self)
        await self.conn.send(self.id, "core.exec.started", {"pid": answer["pid"]})
        self.deliver_signals()
        if not self.agent.running.is_set():
            self.signal_group(signal.SIGSTOP)
        feeder = asyncio.ensure_future(self._feed_stdin())
        try:
            await asyncio.gather(*[self._pump(self.fds[name], t) for name, t in (
                ("pty", "core.exec.stdout"), ("stdout", "core.exec.stdout"),
                ("stderr", "core.exec.stderr")) if name in self.fds])
        finally:
            feeder.cancel()
        exit_line = json.loads(await reader.readline() or b'{"exit": -1}')
        await self.conn.send(self.id, "core.exec.exited", {"code": exit_line.get("exit", -1)})

    async def _submit(self, request, fds):
        """Hand the request and the command's stdio to the spawner."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, "\0" + self.agent.spawner)
            data = json.dumps(request).encode()
            data = struct.pack(">I", len(data)) + data
            sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                          array.array("i", fds + fds[-1:] * (3 - len(fds))))])
            await loop.sock_sendall(sock, data[sent:])
            reader, self.control = await asyncio.open_unix_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        return reader

    def _failed(self, answer):
        e = answer.get("failed")
        if e is None:
            return {"kind": "other", "errno": None, "errno_name": None,
                    "message": "exec session error: %s" % answer.get("error"), "stage": None}
        return {"kind": SPAWN_KIND.get(e, "other"), "errno": e,
                "errno_name": ERRNO_NAMES.get(e),
                "message": 'spawn "%s": %s' % (self.req["cmd"], os_text(OSError(e, ""))),
                "stage": answer.get("stage")}

    async def _pump(self, fd, t):
        while True:
            data = await fd_read(fd, EXEC_CHUNK)
            if not data:
                return
            await self.conn.send(self.id, t, {"data": data})

    # -------------------------------------------------------- input

    def stdin(self, data):
        self.stdin_queue.append(data)
        self.stdin_ready.set()

    async def _feed_stdin(self):
        """Write queued stdin in order; empty data closes the pipe (on a pty
        it does nothing, as agentd's close_stdin)."""
        while True:
            await self.stdin_ready.wait()
            if not self.stdin_queue:
                self.stdin_ready.clear()
                continue
            data = self.stdin_queue.pop(0)
            fd = self.fds.get("pty", self.fds.get("stdin"))
            if fd is None or (not data and "pty" in self.fds):
                continue
            if not data:
                os.close(self.fds.pop("stdin"))
                continue
            try:
                await fd_write(fd, data)
            except OSError as e:
                await self.conn.send(self.id, "core.exec.stdin.error", {
                    "errno": e.errno, "errno_name": ERRNO_NAMES.get(e.errno),
                    "message": "io error: %s" % os_text(e)})

    def deliver_signals(self):
        while self.control is not None and self.pending_signals:
            sig = self.pending_signals.pop(0)
            if 0 < sig < signal.NSIG:
                self.signal_group(sig)

    def signal_group(self, sig):
        if self.control is not None and not self.control.is_closing():
            self.control.write(b'{"signal": %d}\n' % sig)

    def resize(self, rows, cols):
        if "pty" in self.fds:
            fcntl.ioctl(self.fds["pty"], termios.TIOCSWINSZ,
                        struct.pack("HHHH", rows, cols, 0, 0))

    def kill(self):
        """The relay's SIGKILL for a client that went away."""
        self.signal_group(signal.SIGCONT)
        self.signal_group(signal.SIGKILL)


# ============================================================ fs

def fs_error(text):
    return {"ok": False, "error": text, "data": None}


def rust_join(base, name):
    return name if not base else (base + name if base.endswith("/") else base + "/" + name)


def entry_info(path, st):
    mode = st.st_mode
    kind = "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else \
        "symlink" if stat.S_ISLNK(mode) else "other"
    mtime = st.st_mtime_ns // 10 ** 9
    return {"path": path, "kind": kind, "size": st.st_size, "mode": mode,
            "modified": mtime, "uid": st.st_uid, "gid": st.st_gid,
            "atime": st.st_atime_ns // 10 ** 9, "mtime": mtime}


def unknown_info(path):
    return {"path": path, "kind": "other", "size": 0, "mode": 0, "modified": None,
            "uid": 0, "gid": 0, "atime": None, "mtime": None}


def dir_entries(dir_path, host_dir, names):
    """EntryInfos (lstat) of `names` in a directory, path = dir joined with name."""
    out = []
    for name in names:
        path = rust_join(dir_path, name)
        try:
            out.append(entry_info(path, os.lstat(os.path.join(host_dir, name))))
        except OSError:
            out.append(unknown_info(path))
    return out


def host_of(conn, path, follow=True):
    """The host path of a sandbox path (common.Jail: never outside the root)."""
    return conn.agent.jail.host(path, follow)


def rust_parent(path):
    """Rust's Path::parent and Path::file_name: (parent or None, name or None)."""
    comps = [c for c in path.split("/") if c not in ("", ".")]
    if not comps:
        return None, None
    parent = ("/" if path.startswith("/") else "") + "/".join(comps[:-1])
    return parent or None, (None if comps[-1] == ".." else comps[-1])


def fs_realpath(conn, a):
    """canonicalize(path); a missing last component resolves against its
    parent (agentd's realpath())."""
    jail = conn.agent.jail
    try:
        host = jail.host(a["path"], True)
        os.stat(host)
        return {"Path": jail.inside(host)}
    except OSError as first:
        parent, name = rust_parent(a["path"])
        try:
            if parent is None:
                raise first
            phost = jail.host(parent, True)
            os.stat(phost)
        except OSError:
            raise FsError("realpath: %s" % os_text(first))
        base = jail.inside(phost)
        return {"Path": base if name is None else rust_join(base, name)}


def fs_stat(conn, a):
    host = host_of(conn, a["path"], a["follow_symlink"])
    st = os.stat(host) if a["follow_symlink"] else os.lstat(host)
    return {"Stat": entry_info(a["path"], st)}


def fs_list(conn, a):
    host = host_of(conn, a["path"])
    try:
        names = os.listdir(host)
    except OSError as e:
        raise FsError("readdir: opendir: %s" % os_text(e))
    return {"List": dir_entries(a["path"], host, names)}


def fs_opendir(conn, a):
    host = host_of(conn, a["path"])
    entries = os.scandir(host)
    handle = Handle("dir", a["path"], host, entries=entries)
    try:
        return {"Handle": conn.agent.new_handle(conn.slot, handle)}
    except FsError as e:
        entries.close()
        raise FsError("opendir: %s" % e)


def fs_readdir(conn, a):
    try:
        d = conn.agent.handle(conn.slot, a["handle"], "dir")
    except FsError as e:
        raise FsError("readdir: %s" % e)
    limit = max(1, a["limit"] if a["limit"] is not None else READDIR_LIMIT)
    names = []
    for entry in d.entries:
        names.append(entry.name)
        if len(names) >= limit:
            break
    return {"List": dir_entries(d.path, d.host, names)}


def fs_close(conn, a):
    agent = conn.agent
    number = a["handle"]
    if number in agent.handles and agent.handles[number].slot != conn.slot:
        raise FsError("close: handle %d is owned by a different relay client" % number)
    entry = agent.handles.pop(number, None)
    if entry is None:
        raise FsError("close: invalid handle: %d" % number)
    entry.close()
    return None


def fs_readlink(conn, a):
    return {"Path": os.readlink(host_of(conn, a["path"], False))}


def fs_symlink(conn, a):
    os.symlink(a["target"], host_of(conn, a["link_path"], False))
    return None


def fs_mkdir(conn, a):
    """create_dir_all (no EEXIST for a directory), then chmod."""
    jail = conn.agent.jail
    host = jail.host(a["path"])
    cur = jail.root
    rel = os.path.relpath(host, jail.root)
    try:
        for comp in ([] if rel == "." else rel.split("/")):
            cur = os.path.join(cur, comp)
            try:
                os.mkdir(cur, 0o777)
            except FileExistsError:
                if not os.path.isdir(cur):
                    raise
    except OSError as e:
        raise FsError("mkdir: %s" % os_text(e))
    if a["mode"] is not None:
        try:
            os.chmod(host, a["mode"])
        except OSError as e:
            raise FsError("chmod: %s" % os_text(e))
    return None


def fs_remove(conn, a):
    os.unlink(host_of(conn, a["path"], False))
    return None


def fs_remove_dir(conn, a):
    host = host_of(conn, a["path"], False)
    if not a["recursive"]:
        os.rmdir(host)
    elif os.path.islink(host):
        os.unlink(host)
    else:
        if not stat.S_ISDIR(os.lstat(host).st_mode):
            raise OSError(errno.ENOTDIR, "")

        def fail(func, path, exc_info):
            raise exc_info[1]
        shutil.rmtree(host, onerror=fail)
    return None


def fs_copy(conn, a):
    src, dst = host_of(conn, a["src"]), host_of(conn, a["dst"])
    if not stat.S_ISREG(os.stat(src).st_mode):
        raise FsError("copy: the source path is neither a regular file nor a symlink "
                      "to a regular file")
    shutil.copyfile(src, dst)
    shutil.copymode(src, dst)
    return None


def fs_rename(conn, a):
    os.rename(host_of(conn, a["src"], False), host_of(conn, a["dst"], False))
    return None


def open_flags(o):
    """Rust's OpenOptions: access and creation flags, EINVAL where it refuses."""
    r, w, ap = o["read"], o["write"], o["append"]
    if not (r or w or ap):
        raise OSError(errno.EINVAL, "")
    access = (os.O_RDWR if r else os.O_WRONLY) if (w or ap) else os.O_RDONLY
    if ap:
        access |= os.O_APPEND
    create, trunc, new = o["create"], o["truncate"], o["create_new"]
    if not (w or ap) and (trunc or create or new):
        raise OSError(errno.EINVAL, "")
    if ap and trunc and not new:
        raise OSError(errno.EINVAL, "")
    if new:
        creation = os.O_CREAT | os.O_EXCL
    else:
        creation = (os.O_CREAT if create else 0) | (os.O_TRUNC if trunc else 0)
    return access | creation | os.O_CLOEXEC


def fs_open(conn, a):
    o = a["options"]
    flags = open_flags(o)
    host = host_of(conn, a["path"], not o["create_new"])
    fd = os.open(host, flags, o["mode"] if o["mode"] is not None else 0o666)
    entry = Handle("file", a["path"], host, fd=fd, read=o["read"], write=o["write"],
                   append=o["append"])
    try:
        return {"Handle": conn.agent.new_handle(conn.slot, entry)}
    except FsError as e:
        os.close(fd)
        raise FsError("open: %s" % e)


def fs_fstat(conn, a):
    try:
        entry = conn.agent.handle(conn.slot, a["handle"])
    except FsError as e:
        raise FsError("fstat: %s" % e)
    st = os.fstat(entry.fd) if entry.kind == "file" else os.stat(entry.host)
    return {"Stat": entry_info(entry.path, st)}


def set_attrs(conn, a, fd=None):
    """SetStat's and FSetStat's attribute changes, in agentd's order and
    with its inner prefixes."""
    attrs = a["attrs"]

    def step(prefix, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except OSError as e:
            raise FsError("%s%s" % (prefix, os_text(e)))
    follow = fd is not None or a["follow_symlink"]
    if fd is None:
        hf, hn = host_of(conn, a["path"], True), host_of(conn, a["path"], False)
        target = hf if follow else hn
    if attrs["size"] is not None:
        if fd is None:
            tfd = step("open for truncate: ", os.open, hf, os.O_WRONLY | os.O_CLOEXEC)
            try:
                step("set_len: ", os.ftruncate, tfd, attrs["size"])
            finally:
                os.close(tfd)
        else:
            step("set_len: ", os.ftruncate, fd, attrs["size"])
    if attrs["mode"] is not None:
        if fd is not None:
            step("chmod: ", os.fchmod, fd, attrs["mode"])
        else:
            if not follow and stat.S_ISLNK(step("lstat before chmod: ", os.lstat, hn).st_mode):
                raise FsError("chmod on symlink without following is not supported")
            step("chmod: ", os.chmod, hf, attrs["mode"])
    if attrs["uid"] is not None or attrs["gid"] is not None:
        ids = (-1 if attrs["uid"] is None else attrs["uid"],
               -1 if attrs["gid"] is None else attrs["gid"])
        if fd is not None:
            step("fchown: ", os.fchown, fd, *ids)
        else:
            step("chown: ", os.chown, target, *ids, follow_symlinks=follow)
    if attrs["atime"] is not None or attrs["mtime"] is not None:
        what = "futimens" if fd is not None else "utimensat"
        path = conn.agent.jail.host(a["path"], True) if fd is not None else target
        st = step("stat before %s: " % what, os.stat, path, follow_symlinks=follow)
        at = attrs["atime"] if attrs["atime"] is not None else st.st_atime_ns // 10 ** 9
        mt = attrs["mtime"] if attrs["mtime"] is not None else st.st_mtime_ns // 10 ** 9
        ns = (at * 10 ** 9, mt * 10 ** 9)
        if fd is not None:
            step("futimens: ", os.utime, fd, ns=ns)
        else:
            step("utimensat: ", os.utime, target, ns=ns, follow_symlinks=follow)


def fs_setstat(conn, a):
    try:
        set_attrs(conn, a)
    except FsError as e:
        raise FsError("setstat: %s" % e)


def fs_fsetstat(conn, a):
    try:
        entry = conn.agent.handle(conn.slot, a["handle"], "file")
        set_attrs(conn, dict(a, path=entry.path), fd=entry.fd)
    except FsError as e:
        raise FsError("fsetstat: %s" % e)


FS_HANDLERS = {
    "RealPath": fs_realpath, "Stat": fs_stat, "SetStat": fs_setstat,
    "List": fs_list, "ReadLink": fs_readlink, "Symlink": fs_symlink,
    "Mkdir": fs_mkdir, "Remove": fs_remove, "RemoveDir": fs_remove_dir,
    "Copy": fs_copy, "Rename": fs_rename, "OpenFile": fs_open,
    "OpenDir": fs_opendir, "CloseHandle": fs_close, "ReadDir": fs_readdir,
    "FStat": fs_fstat, "FSetStat": fs_fsetstat,
}


async def read_stream(conn, id_, a, delay):
    """core.fs.data chunks of at most 3 MiB, then the terminal response."""
    if delay:
        await asyncio.sleep(delay)
    try:
        entry = conn.agent.handle(conn.slot, a["handle"], "file", need_read=True)
    except FsError as e:
        await conn.send(id_, "core.fs.response", fs_error("read: %s" % e))
        return
    offset, remaining = a["offset"], a["len"]
    while remaining != 0:
        want = FS_CHUNK if remaining is None else min(FS_CHUNK, remaining)
        try:
            data = os.pread(entry.fd, want, offset)
        except (OSError, TypeError) as e:
            await conn.send(id_, "core.fs.response", fs_error("read: %s" % os_text(e)))
            return
        if not data:
            break
        offset += len(data)
        if remaining is not None:
            remaining -= len(data)
        await conn.send(id_, "core.fs.data", {"data": data})
    await conn.send(id_, "core.fs.response", {"ok": True, "error": None, "data": None})


class WriteStream:
    """A Write request waiting for its core.fs.data chunks."""

    def __init__(self, conn, a, delay):
        try:
            self.entry = conn.agent.handle(conn.slot, a["handle"], "file", need_write=True)
        except FsError as e:
            raise FsError("write: %s" % e)
        self.offset = a["offset"]
        self.expected = a["len"]
        self.written = 0
        self.delay = delay

    def feed(self, data):
        """None while more is expected, else the final response."""
        if not data:
            if self.expected is not None and self.written != self.expected:
                return fs_error("write length mismatch: expected %d, wrote %d"
                                % (self.expected, self.written))
            return {"ok": True, "error": None, "data": None}
        try:
            if self.entry.fd is None:
                raise OSError(errno.EBADF, "")
            view = memoryview(data)
            while view:
                if self.entry.append:
                    n = os.write(self.entry.fd, view)
                else:
                    n = os.pwrite(self.entry.fd, view, self.offset)
                view = view[n:]
                self.offset += n
        except OSError as e:
            return fs_error("write: %s" % os_text(e))
        self.written += len(data)
        return None

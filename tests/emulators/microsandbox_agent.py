"""The guest half of the microsandbox emulator: the agent relay that listens
on agent.sock and the agentd that answers exec and fs requests.

microsandbox.py's `sandbox` mode runs one Relay per sandbox; see that file's
docstring for the whole emulator, its deviations and its fault kinds.  This
module knows nothing about the emulator's files: the daemon hands it a
`home` object with count(key) (the request log) and take_fault(key, kinds)
(the fault table), and the name of the spawner socket its commands start from.
Its parts: microsandbox_wire.py (the codec, the message types and the payload
schemas), microsandbox_exec.py (exec) and microsandbox_fs.py (fs); this
module holds the Agent, the Relay, its Connections and the message handlers.

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
  exec     the SPAWNER (microsandbox_exec.py) runs as the keeper's command
           inside the sandbox and forks each command there with the stdio
           we hand it, so execvp/chdir errnos and wait statuses are real.
  fs       done (microsandbox_fs.py) on the sandbox directory through
           common.Jail, with agentd's error texts "<op>: <strerror> (os
           error N)".
"""

import asyncio
import errno
import random
import signal
import struct
import traceback

import common
from common import log
from microsandbox_exec import ExecSession
from microsandbox_fs import FS_HANDLERS, WriteStream, fs_error, read_stream
from microsandbox_wire import (FS_ERROR_PREFIX, MAX_FRAME, MAX_HANDLES, MESSAGE_FLAGS,
                               SHUTDOWN, SLOTS, STEP, TERMINAL, Fatal, FsError,
                               PayloadError, decode_envelope, decode_payload, frame,
                               message, os_text)

AGENT_VERSION = "0.7.2"


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


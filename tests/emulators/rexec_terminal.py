"""The terminal WebSocket of the Rexec emulator (rexec.py): GET
/ws/terminal/:id (TerminalApi: the checks before the upgrade, one session
per ?id=), the TerminalSession of one connection (its reader, ping, stats
and status-refresh tasks and the loop that restarts the shell) and the
shell itself, a Docker TTY exec on a pty of the container's own devpts
(PtyShell).
"""

import asyncio
import fcntl
import os
import pty
import random
import struct
import termios
import time

from aiohttp import WSMsgType, web

from common import log
from rexec_containers import (
    HOME, MAX_SHELL_RESTARTS, PTY_READ, STATUS_REFRESH, TERMINAL_ENV,
    WS_MAX_MESSAGE, _ExecStartError, kill_in_container)
from rexec_go import (
    DockerError, decode_terminal_message, error, go_json, terminal_text)


# ==================================================== terminal WebSocket

TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def open_pty(init_pid):
    """A pty from the container's own devpts (bwrap --dev mounts a new
    instance), so that `tty` in the shell names /dev/pts/N as on Docker;
    the host's devpts if that fails."""
    try:
        master = os.open("/proc/%d/root/dev/ptmx" % init_pid, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return pty.openpty()
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        return master, slave
    except OSError:
        os.close(master)
        return pty.openpty()


class PtyShell:
    """A Docker TTY exec: the shell on a pty, output chunks in a queue
    (None once the shell has exited and its output is drained)."""

    def __init__(self):
        self.master = None
        self.proc = None
        self.queue = asyncio.Queue()
        self.pending = bytearray()     # input not yet accepted by the pty
        self.writing = False

    async def start(self, emu, c, cols, rows):
        master, slave = open_pty(c.runtime.init_pid)
        self.master = master
        self.resize(cols, rows)
        env = ["%s=%s" % kv for kv in TERMINAL_ENV.items()]
        try:
            self.proc = await emu.docker_exec(
                c, ["setsid", "--ctty", "/bin/sh", "-l"], env=env, workdir=HOME,
                stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            self.master = None
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)
        self.waiter = asyncio.ensure_future(self._wait(c))

    def resize(self, cols, rows):
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", rows, cols, 0, 0))

    def _read_some(self):
        try:
            return os.read(self.master, PTY_READ)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _readable(self):
        data = self._read_some()
        if data:
            self.queue.put_nowait(data)
        elif data == b"":
            asyncio.get_running_loop().remove_reader(self.master)

    async def _wait(self, c):
        await self.proc.wait()
        c.runtime.forget(self.proc)
        await asyncio.sleep(0.05)          # let the last output arrive
        loop = asyncio.get_running_loop()
        try:
            loop.remove_reader(self.master)
            loop.remove_writer(self.master)
        except (ValueError, OSError):
            pass
        while True:
            data = self._read_some()
            if not data:
                break
            self.queue.put_nowait(data)
        os.close(self.master)
        self.master = None
        self.queue.put_nowait(None)

    def write(self, data):
        """conn.Write to the attach stream: queued, written in order."""
        if self.master is None or not data:
            return
        self.pending.extend(data)
        self._flush()

    def _flush(self):
        loop = asyncio.get_running_loop()
        while self.pending and self.master is not None:
            try:
                n = os.write(self.master, self.pending[:65536])
            except BlockingIOError:
                break
            except OSError:
                self.pending.clear()
                break
            del self.pending[:n]
        if self.master is None:
            return
        if self.pending and not self.writing:
            loop.add_writer(self.master, self._flush)
            self.writing = True
        elif not self.pending and self.writing:
            loop.remove_writer(self.master)
            self.writing = False

    def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            kill_in_container(self.proc)


class TerminalSession:
    """One /ws/terminal connection (TerminalHandler.HandleWebSocket and
    runTerminalSessionWithRestart)."""

    def __init__(self, emu, request, ws, docker_id, key):
        self.emu = emu
        self.request = request
        self.ws = ws
        self.docker_id = docker_id
        self.key = key
        self.cols, self.rows = 80, 24
        self.closed = False
        self.send_lock = asyncio.Lock()
        self.shell = None
        self.shell_live = asyncio.Event()   # a reader goroutine is reading
        self.stale = False                  # the previous reader still waits
        self.gone = asyncio.Event()         # the client went away
        self.drop = None                    # an armed ws_drop fault
        self.closing = None                 # the task sending the close frame

    # ------------------------------------------------------- sending

    async def send(self, type_, data="", cols=0, rows=0):
        """WriteJSON(TerminalMessage): one text frame, JSON + "\\n"."""
        if self.closed:
            return
        msg = {"type": type_}
        if data:
            msg["data"] = data
        if cols:
            msg["cols"] = cols
        if rows:
            msg["rows"] = rows
        async with self.send_lock:
            try:
                await self.ws.send_str(go_json(msg) + "\n")
            except (ConnectionError, RuntimeError):
                self.gone.set()
                return

    def abort_transport(self):
        log("ws_drop: dropping terminal connection to %s" % self.docker_id[:12])
        self.drop = None
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.gone.set()

    async def close(self, code=1000, reason="session ended"):
        """CloseWithCode: a close frame, then the connection is dropped.
        Whoever comes second waits for the first close to be sent."""
        if self.closing is None:
            if self.closed:                 # aborted: nothing to send
                return
            self.closed = True
            self.closing = asyncio.ensure_future(self._close(code, reason))
        await asyncio.shield(self.closing)

    async def _close(self, code, reason):
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 3)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        self.gone.set()

    async def abort(self):
        if self.shell:
            self.shell.kill()
        await self.close()

    # ------------------------------------------------------- receiving

    async def reader(self):
        """The reader goroutines.  While no shell is attached nobody reads,
        except the previous session's reader, which takes exactly one more
        message after its shell exited."""
        try:
            while not self.closed:
                if not self.stale:
                    await self.shell_live.wait()
                msg = await self.ws.receive()
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    raw = msg.data.encode() if msg.type == WSMsgType.TEXT else msg.data
                    if self.stale:
                        self.stale = False
                        self.stale_message(raw)
                    else:
                        await self.handle(raw)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                  WSMsgType.ERROR):
                    break
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self.gone.set()

    def stale_message(self, raw):
        """What the dead session's reader does with the message it gets:
        input goes to a closed attach (lost), a resize only updates the
        stored size, a ping is still answered."""
        msg = decode_terminal_message(raw)
        if msg is None:
            return
        t = msg.get("type", "")
        if t == "resize" and msg.get("cols", 0) > 0 and msg.get("rows", 0) > 0:
            self.cols, self.rows = msg["cols"], msg["rows"]
        elif t == "ping":
            asyncio.ensure_future(self.send("pong"))

    async def handle(self, raw):
        msg = decode_terminal_message(raw)
        target = self.emu.mgr_get(self.docker_id)
        if msg is None:                 # not JSON: raw input (compatibility)
            self._input(raw, target)
            return
        t = msg.get("type", "")
        if t == "input":
            self._input(msg.get("data", "").encode("utf-8"), target)
        elif t == "resize":
            cols, rows = msg.get("cols", 0), msg.get("rows", 0)
            if cols > 0 and rows > 0:
                self.cols, self.rows = cols, rows
                if self.shell:
                    self.shell.resize(cols, rows)
        elif t == "ping":
            await self.send("pong")

    def _input(self, data, target):
        if self.shell:
            self.shell.write(data)
        if target is not None:
            target.touch()
        if self.drop is None:
            fault = self.emu.take_fault(("ws_drop",), self.request.path,
                                        self.request.method)
            if fault is not None:
                self.drop = fault
                delay = float(fault.get("delay") or 0.5)
                asyncio.get_running_loop().call_later(
                    delay, lambda: self.drop is not None and not self.closed
                    and self.abort_transport())

    # ------------------------------------------------------- background

    async def pinger(self):
        while True:
            await asyncio.sleep(self.emu.ws_ping)
            await self.send("ping")

    async def stats(self):
        if self.emu.ws_stats <= 0:
            return
        rng = random.Random(self.docker_id)
        while True:
            await asyncio.sleep(self.emu.ws_stats)
            c = self.emu.mgr_get(self.docker_id)
            if c is None:
                continue
            payload = {
                "cpu_percent": round(rng.uniform(0, 3), 2),
                "memory": float(rng.randrange(20, 60) * 1024 * 1024),
                "memory_limit": float(c.resources["memory_mb"] * 1024 * 1024),
                "disk_read": 0.0, "disk_write": float(rng.randrange(0, 4096)),
                "disk_usage": float(rng.randrange(1, 50) * 1024 * 1024),
                "disk_limit": float(c.resources["disk_mb"] * 1024 * 1024),
                "net_rx": 0.0, "net_tx": 0.0,
            }
            await self.send("stats", go_json(payload))

    async def refresher(self):
        """The 5-second status refresh: the DB status wins over the
        manager's, and is sent whenever it differs from the last one sent
        (which starts empty, so the first tick always sends it)."""
        last = ""
        while True:
            await asyncio.sleep(STATUS_REFRESH)
            rec = self.emu.db_find_docker(self.docker_id)
            if rec is None:
                continue
            cur = rec.status
            m = next((c for c in self.emu.manager() if c.docker_id == self.docker_id), None)
            if m is not None and m.m_status != cur:
                m.m_status = cur
            if cur and cur != last:
                await self.send("container_status", cur)
                last = cur

    # ------------------------------------------------------- the shell loop

    async def run(self):
        restarts = 0
        while not self.closed and not self.gone.is_set():
            if self.emu.mgr_get(self.docker_id) is None:
                await self.send("error", "Container is no longer available")
                return
            started = time.monotonic()
            exited = await self.run_shell()
            if time.monotonic() - started > 60:
                restarts = 0
            if not (exited and restarts < MAX_SHELL_RESTARTS) or self.gone.is_set():
                return
            restarts += 1
            await self.send("output", "\r\n\x1b[33m[Starting new session...]\x1b[0m\r\n\r\n")
            c = self.emu.containers_by_docker_id(self.docker_id)
            if c is None or not c.running:
                await self.send("output", "\r\n\x1b[33m[Container stopped. Restarting...]"
                                          "\x1b[0m\r\n")
                err = "container not found: " + self.docker_id
                if c is not None:
                    async with c.lock:
                        err = await self.emu.manager_start(c, self.docker_id)
                if err:
                    await self.send("container_restart_required",
                                    "Container needs to be restarted. Please reconnect.")
                    await self.close(4100, "container_restart_required")
                    return
                await asyncio.sleep(0.5)

    async def run_shell(self):
        """runTerminalSession: True if the shell exited, False if the client
        went away or the shell could not be started."""
        await self.send("shell_starting", "Starting shell...")
        shell = PtyShell()
        try:
            target = self.emu.docker_get(self.docker_id)
            await shell.start(self.emu, target, self.cols, self.rows)
        except (DockerError, _ExecStartError) as e:
            await self.send("error", "Failed to create terminal session: %s" % e)
            return False
        self.shell = shell
        await self.send("shell_ready", "Shell ready")
        self.shell_live.set()
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            while True:
                getter = asyncio.ensure_future(shell.queue.get())
                done, _ = await asyncio.wait({getter, gone},
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    shell.kill()
                    return False
                chunk = getter.result()
                if chunk is None:
                    self.stale = True
                    return True
                await self.send("output", terminal_text(chunk))
        finally:
            gone.cancel()
            self.shell_live.clear()
            self.shell = None


class TerminalApi:
    def __init__(self, emu):
        self.emu = emu

    def _precheck(self, ident):
        """HandleWebSocket up to the upgrade: (docker id, None) or (None,
        the JSON error response)."""
        emu = self.emu
        c = emu.mgr_get(ident)
        db = None
        docker_id = ""
        ok = c is not None
        if not ok:
            # Not in the manager: the database, by Docker ID or by UUID.
            if len(ident) == 64:
                db = emu.db_find_docker(ident)
            else:
                db = next((r for r in emu.records() if r.db_id == ident), None)
            if db is not None and db.docker_id:
                m = emu.mgr_get(db.docker_id)
                if m is not None:
                    c, ok = m, True
                else:
                    try:
                        emu.docker_get(db.docker_id)
                        docker_id, ok = db.docker_id, True
                    except DockerError:
                        pass
        if not ok:
            hint = ("Container may have been stopped or removed. Try starting it."
                    if db is not None and db.docker_id else
                    "Container may need to be recreated. Try starting it.")
            return None, error(404, "container not found", code="container_not_found",
                               hint=hint, action_required="start")
        if c is not None:
            docker_id = c.docker_id
        status, running = "", False
        if db is not None:
            status = db.status
        elif c is not None:
            status = c.m_status
        running = status in ("running", "configuring")
        if docker_id:
            try:
                running = emu.docker_get(docker_id).running
            except DockerError:
                return None, error(410, "container was removed from server",
                                   code="container_removed",
                                   hint="Container was removed from Docker. Click Start "
                                        "to recreate it.",
                                   action_required="start", container_id=docker_id)
        if not running and status != "configuring":
            return None, error(400, "container is not running", code="container_stopped",
                               status=status,
                               hint="Start the container before connecting to terminal",
                               action_required="start")
        return (docker_id, status, db), None

    async def handle(self, request):
        emu = self.emu
        ident = request.match_info["containerId"]
        if ident.startswith("vm:"):
            return error(404, "container not found", code="container_not_found",
                         hint="Container may need to be recreated. Try starting it.",
                         action_required="start")
        found, refusal = self._precheck(ident)
        if refusal is not None:
            return refusal
        docker_id, status, db = found
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE, autoping=True,
                                   compress=True, timeout=2.0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Bad Request\n",
                                headers={"Sec-Websocket-Version": "13"})
        if "rexec.v1" in request.headers.get("Sec-WebSocket-Protocol", ""):
            ws.headers["Sec-WebSocket-Protocol"] = "rexec.v1"
        await ws.prepare(request)

        key = "%s:%s:%s" % (docker_id, emu.user_id, request.query.get("id", "") or "default")
        sess = TerminalSession(emu, request, ws, docker_id, key)
        old = emu.terminals.get(key)
        emu.terminals[key] = sess
        if old is not None:
            await old.abort()
        tasks = []
        try:
            await sess.send("connected", "Terminal session established")
            # Only when the container was found through the database: its
            # status wins over a stale manager entry.
            c = emu.mgr_get(docker_id) if db is not None else None
            if db is not None and c is not None and c.m_status != db.status:
                c.m_status = db.status
                status = db.status
            if status:
                await sess.send("container_status", status)
            tasks = [asyncio.ensure_future(t) for t in
                     (sess.reader(), sess.pinger(), sess.stats(), sess.refresher())]
            await sess.run()
        finally:
            for t in tasks:
                t.cancel()
            if sess.shell:
                sess.shell.kill()
            if emu.terminals.get(key) is sess:
                del emu.terminals[key]
            await sess.close()
        return ws

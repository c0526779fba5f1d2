"""exec in the microsandbox emulator's agentd (microsandbox_agent.py): the
spawner that runs as the keeper's command inside the sandbox and forks the
commands there, and ExecSession, one core.exec.request (the command, its
output pumps, its stdin and its signals)."""

import array
import asyncio
import base64
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import termios

from microsandbox_home import log
from microsandbox_wire import (DEFAULT_PATH, ERRNO_NAMES, EXEC_CHUNK, RLIMITS, SPAWN_KIND,
                               FsError, os_text)


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
            # Not the command's failure but the spawner's: say what it was.
            log("exec %r: the spawner answered %r" % (self.req["cmd"], answer))
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

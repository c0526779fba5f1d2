"""The sandbox model of the Daytona emulator (daytona.py): the path jail,
the runtime (the keeper's namespaces and the processes in them), session
commands, PTY sessions and the Sandbox record with its JSON form."""

import asyncio
import errno
import fcntl
import hashlib
import json
import os
import pty
import shutil
import signal
import struct
import termios
import time
import uuid
from collections import OrderedDict

import common
from common import kill_group
from daytona_base import (DAEMON_VERSION, DEFAULT_SNAPSHOT, HOME, STDERR_MARK,
                          STDOUT_MARK, go_rfc3339nano, iso_js)


# --------------------------------------------------------- path resolution

class Jail(common.Jail):
    cwd = HOME

    def stat(self, path, cwd=HOME):
        return os.stat(self.host(path, True, cwd), follow_symlinks=False)

    def mkdir_parent(self, path, mode):
        """MkdirAll(filepath.Dir(path)); returns the host path of `path`."""
        target = self.host(path)
        self.mkdir_all(self.inside(os.path.dirname(target)), mode)
        return target

    def mkdir_all(self, path, mode):
        """Go's os.MkdirAll: every missing level gets `mode` (minus umask)."""
        target = self.host(path)
        rel = os.path.relpath(target, self.root)
        cur = self.root
        for comp in ([] if rel == "." else rel.split("/")):
            cur = os.path.join(cur, comp)
            try:
                os.mkdir(cur, mode & 0o777)
            except FileExistsError:
                if not os.path.isdir(cur) or os.path.islink(cur):
                    raise OSError(errno.ENOTDIR, "not a directory", cur)
        return target

    def lookup_id(self, dbfile, name):
        """uid/gid of `name` from the sandbox's own /etc/passwd or /etc/group."""
        try:
            with open(self.host(dbfile), encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.rstrip("\n").split(":")
                    if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
                        return int(parts[2])
        except OSError:
            pass
        return None


# ------------------------------------------------------------------ runtime

class HostLayout(common.HostLayout):
    def populate(self, root):
        """Create the directory skeleton of a fresh sandbox at `root`."""
        self.make_skeleton(root, (
            ("tmp", 0o1777), ("home/daytona", 0o755), ("etc", 0o755),
            ("root", 0o700), ("proc", 0o555), ("dev", 0o755), ("usr", 0o755),
        ), {
            "passwd": "root:x:0:0:root:/root:/bin/sh\n"
                      "daytona:x:1000:1000::/home/daytona:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": "root:x:0:\ndaytona:x:1000:\nnogroup:x:65534:\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
            "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        })


class Runtime(common.Keeper):
    """The namespaces of one started sandbox and the processes inside them."""

    def __init__(self, sandbox, layout):
        super().__init__(layout)
        self.sb = sandbox
        self.procs = set()          # nsenter processes (each a session leader)

    async def start(self):
        await self.start_keeper(self.sb.dir, self.sb.id)

    def env(self, extra=None):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": HOME, "HOSTNAME": self.sb.id, "USER": self.sb.user,
               "DAYTONA_SANDBOX_ID": self.sb.id,
               "DAYTONA_SANDBOX_SNAPSHOT": self.sb.snapshot or "",
               "DAYTONA_SANDBOX_USER": self.sb.user}
        env.update(self.sb.env)
        env.update(extra or {})
        return env

    async def spawn(self, cwd, command=None, env=None, stdin=None,
                    stdout=None, stderr=None):
        """Run in the sandbox: `command` via sh -c, or else a shell reading
        its script from stdin.  The process (nsenter, which forks the real
        command into the pid namespace) leads its own session and process
        group, so killing that group kills the command."""
        if not self.running:
            raise RuntimeError("sandbox is not running")
        argv = self.nsenter_argv()
        if command is None:
            argv += ["--", "/bin/sh", "-c", 'cd -- "$0" || exit 1; exec /bin/sh', cwd]
        else:
            argv += ["--", "/bin/sh", "-c",
                     'cd -- "$0" || exit 1; exec /bin/sh -c "$1"', cwd, command]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=stdout, stderr=stderr,
            env=self.env(env), start_new_session=True)
        self.procs.add(proc)
        return proc

    def forget(self, proc):
        self.procs.discard(proc)

    async def stop(self):
        """Kill everything: the pid namespace dies with its init."""
        for proc in list(self.procs):
            kill_group(proc.pid, signal.SIGKILL)
        await super().stop()
        self.procs.clear()


def kill_tree(pid, sig):
    """The process group of `pid` and its direct children (which may have
    made sessions of their own inside the sandbox)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    kill_group(pid, sig)
    for child in children:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass


# ----------------------------------------------------------------- sessions

class Command:
    """One session command: its process, its labelled log, its exit code."""

    def __init__(self, session, text, log_path, suppress_echo):
        self.id = str(uuid.uuid4())
        self.session = session
        self.text = text
        self.log_path = log_path
        self.suppress_echo = suppress_echo
        self.exit_code = None
        self.proc = None
        self.done = asyncio.Event()
        self._log = open(log_path, "ab")

    def append(self, data):
        if data and not self._log.closed:
            self._log.write(data)
            self._log.flush()

    def close_log(self):
        self._log.close()

    def dto(self):
        d = {"id": self.id, "command": self.text}
        if self.exit_code is not None:
            d["exitCode"] = self.exit_code
        return d

    async def run(self, runtime, keep_stdin):
        """Start; async commands keep a stdin pipe open for input."""
        self.proc = await runtime.spawn(
            HOME, command=self.text,
            stdin=asyncio.subprocess.PIPE if keep_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._finisher = asyncio.create_task(self._finish(runtime))

    async def _finish(self, runtime):
        try:
            await asyncio.gather(self._pump(self.proc.stdout, STDOUT_MARK),
                                 self._pump(self.proc.stderr, STDERR_MARK))
            rc = await self.proc.wait()
        finally:
            runtime.forget(self.proc)
        # nsenter re-raises a child's fatal signal on itself; a shell would
        # report 128+N, which is what the daemon's wrapper records.
        self.exit_code = rc if rc >= 0 else 128 - rc
        self.close_log()
        self.done.set()

    async def _pump(self, stream, mark):
        """Label each line with `mark`; a partial line goes out after 0.5 s."""
        loop = asyncio.get_running_loop()
        buf = b""
        deadline = None
        while True:
            timeout = None if not buf else max(0.0, deadline - loop.time())
            try:
                chunk = await asyncio.wait_for(stream.read(65536), timeout)
            except asyncio.TimeoutError:
                self.append(mark + buf)
                buf = b""
                continue
            if not chunk:
                break
            if not buf:
                deadline = loop.time() + 0.5
            buf += chunk
            if b"\n" in buf:
                lines, _, buf = buf.rpartition(b"\n")
                self.append(b"".join(mark + ln + b"\n" for ln in lines.split(b"\n")))
                deadline = loop.time() + 0.5
        if buf:
            self.append(mark + buf)

    async def send_input(self, data):
        if not data.endswith("\n"):
            data += "\n"
        raw = data.encode()
        stdin = self.proc.stdin if self.proc else None
        if stdin is not None and not stdin.is_closing():
            try:
                stdin.write(raw)
                await asyncio.wait_for(stdin.drain(), 10)
            except (ConnectionError, BrokenPipeError, asyncio.TimeoutError):
                pass
        if not self.suppress_echo:
            self.append(STDOUT_MARK + raw)

    def kill(self, sig):
        if self.proc is not None and self.proc.returncode is None:
            kill_group(self.proc.pid, sig)


class Session:
    def __init__(self, sid, log_dir):
        self.id = sid
        self.dir = log_dir
        self.commands = OrderedDict()
        self.closed = False

    def dto(self):
        return {"sessionId": self.id,
                "commands": [c.dto() for c in self.commands.values()]}

    async def kill(self):
        """SIGTERM the command process groups, SIGKILL what is left."""
        self.closed = True
        running = [c for c in self.commands.values() if not c.done.is_set()]
        for c in running:
            c.kill(signal.SIGTERM)
        if running:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(c.done.wait() for c in running)), 1.0)
            except asyncio.TimeoutError:
                for c in running:
                    c.kill(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------- PTY

class PtySession:
    def __init__(self, pid_id, cwd, envs, cols, rows, lazy):
        self.id = pid_id
        self.cwd = cwd
        self.envs = envs
        self.cols = cols
        self.rows = rows
        self.lazy = lazy
        self.created = time.time_ns()
        self.master = None
        self.proc = None
        self.clients = {}          # WebSocket -> queue of output chunks
        self.exit_code = None
        self.exited = asyncio.Event()

    @property
    def active(self):
        return self.proc is not None and self.exit_code is None

    def info(self):
        return {"id": self.id, "cwd": self.cwd, "envs": self.envs,
                "cols": self.cols, "rows": self.rows,
                "createdAt": go_rfc3339nano(self.created),
                "active": self.active, "lazyStart": self.lazy}

    def resize(self):
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", self.rows, self.cols, 0, 0))

    async def start(self, runtime):
        master, slave = pty.openpty()
        self.master = master
        self.resize()
        env = dict(self.envs)
        env.setdefault("TERM", "xterm-256color")
        # The shell makes its own session inside the pid namespace and takes
        # the terminal as its controlling tty there, so job control works.
        # (`tty` still says "not a tty": the pty comes from the host's devpts,
        # not the sandbox's /dev/pts.)
        try:
            self.proc = await runtime.spawn(
                self.cwd, command="exec setsid --ctty /bin/sh -i", env=env,
                stdin=slave, stdout=slave, stderr=slave)
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)
        self._waiter = asyncio.create_task(self._wait(runtime))

    def _readable(self):
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        for queue in self.clients.values():
            queue.put_nowait(data)

    def write(self, data):
        if self.master is not None and self.active:
            try:
                os.write(self.master, data)
            except OSError:
                pass

    async def _wait(self, runtime):
        rc = await self.proc.wait()
        runtime.forget(self.proc)
        await asyncio.sleep(0.1)      # let the last output reach the clients
        self.exit_code = rc if rc >= 0 else 128 - rc
        try:
            asyncio.get_running_loop().remove_reader(self.master)
        except (ValueError, OSError):
            pass
        os.close(self.master)
        self.master = None
        self.exited.set()

    def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            kill_tree(self.proc.pid, signal.SIGKILL)

    def close_reason(self):
        code = self.exit_code
        if code == 0:
            return 1000, json.dumps({"exitCode": 0})
        reason = {130: "Ctrl+C", 137: "SIGKILL", 143: "SIGTERM"}.get(code)
        if reason is None:
            reason = "signal %d" % (code - 128) if code > 128 else "non-zero exit"
        return 1011, json.dumps({"exitCode": code, "exitReason": reason})


# ------------------------------------------------------------------ sandbox

class Sandbox:
    def __init__(self, emu, body, seq):
        now = time.time()
        self.emu = emu
        self.seq = seq
        self.id = str(uuid.uuid4())
        self.name = body.get("name") or self.id
        self.user = body.get("user") or "daytona"
        self.env = dict(body.get("env") or {})
        self.labels = dict(body.get("labels") or {})
        self.public = bool(body.get("public", False))
        self.network_block_all = bool(body.get("networkBlockAll", False))
        self.network_allow_list = body.get("networkAllowList")
        self.domain_allow_list = body.get("domainAllowList")
        self.target = body.get("target") or "us"
        self.volumes = body.get("volumes") or []
        self.auto_stop = _int_or(body.get("autoStopInterval"), 15)
        self.auto_archive = _int_or(body.get("autoArchiveInterval"), 10080)
        self.auto_delete = _int_or(body.get("autoDeleteInterval"), -1)
        build = body.get("buildInfo")
        if build:
            ref = hashlib.sha256(build["dockerfileContent"].encode()).hexdigest()[:40]
            self.snapshot = None
            self.build_info = {"dockerfileContent": build["dockerfileContent"],
                               "contextHashes": build.get("contextHashes") or [],
                               "createdAt": iso_js(now), "updatedAt": iso_js(now),
                               "snapshotRef": "daytona-%s:daytona" % ref}
            self.cpu = _int_or(body.get("cpu"), 1)
            self.gpu = _int_or(body.get("gpu"), 0)
            self.memory = _int_or(body.get("memory"), 1)
            self.disk = _int_or(body.get("disk"), 3)
        else:
            self.snapshot = body.get("snapshot") or DEFAULT_SNAPSHOT
            self.build_info = None
            self.cpu, self.gpu, self.memory, self.disk = 1, 0, 1, 3
        self.state = "pending_build" if build else "creating"
        self.desired = "started"
        self.error_reason = None
        self.created = now
        self.updated = now
        self.last_activity = now
        self.runner_id = emu.runner_id
        self.dir = os.path.join(emu.root, self.id)
        self.jail = Jail(self.dir)
        self.runtime = Runtime(self, emu.layout)
        self.sessions = {}
        self.ptys = {}
        self.task = None

    def set_state(self, state, desired=None):
        self.state = state
        if desired is not None:
            self.desired = desired
        self.updated = time.time()

    def dto(self, listing=False):
        d = {
            "id": self.id, "organizationId": self.emu.org_id, "name": self.name,
            "target": self.target, "snapshot": self.snapshot, "user": self.user,
            "env": self.env, "cpu": self.cpu, "gpu": self.gpu,
            "memory": self.memory, "disk": self.disk, "public": self.public,
            "networkBlockAll": self.network_block_all,
            "networkAllowList": self.network_allow_list,
            "domainAllowList": self.domain_allow_list,
            "labels": self.labels, "volumes": self.volumes,
            "state": self.state, "desiredState": self.desired,
            "errorReason": self.error_reason, "recoverable": False,
            "backupState": "None",
            "autoStopInterval": self.auto_stop,
            "autoArchiveInterval": self.auto_archive,
            "autoDeleteInterval": self.auto_delete,
            "sandboxClass": "container",
            "createdAt": iso_js(self.created), "updatedAt": iso_js(self.updated),
            "lastActivityAt": iso_js(self.last_activity),
            "daemonVersion": DAEMON_VERSION, "runnerId": self.runner_id,
        }
        if self.build_info:
            d["buildInfo"] = self.build_info
        if self.emu.proxy_url_field:
            d["toolboxProxyUrl"] = self.emu.toolbox_url
        if listing:
            for k in ("env", "networkBlockAll", "networkAllowList",
                      "domainAllowList", "volumes", "buildInfo"):
                d.pop(k, None)
        return d

    async def kill_sessions(self):
        for s in list(self.sessions.values()):
            await s.kill()
        self.sessions.clear()
        for p in list(self.ptys.values()):
            p.kill()
        self.ptys.clear()


def _int_or(v, default):
    return default if v is None else int(v)

"""The sandbox model of the Vtrix emulator (vtrix.py): the path jail, the
runtime (the pod's keeper namespaces), exec commands with their replay
buffers and live subscribers, and the Sandbox record with its Info."""

import asyncio
import codecs
import errno
import os
import posixpath
import re
import signal
import time
import uuid
from collections import OrderedDict, deque

import common
from common import kill_group
from vtrix_base import (DEFAULT_CWD, DEFAULT_IMAGE, DEFAULT_SPEC, DEFAULT_TTL,
                        KEPT_COMMANDS, REPLAY_LIMIT, rfc3339)


# ============================================================ path jail

class Jail(common.Jail):
    cwd = DEFAULT_CWD

    @staticmethod
    def absolute(path):
        """The sandbox path as an absolute, normalised path (display form)."""
        if not path.startswith("/"):
            path = DEFAULT_CWD + "/" + path
        path = posixpath.normpath(path)
        return "/" + path.lstrip("/")

    def make_parents(self, host):
        """mkdir -p of the parent of host path `host` (already resolved)."""
        rel = os.path.relpath(os.path.dirname(host), self.root)
        cur = self.root
        for comp in ([] if rel == "." else rel.split("/")):
            cur = os.path.join(cur, comp)
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                if os.path.islink(cur) or not os.path.isdir(cur):
                    raise OSError(errno.ENOTDIR, "not a directory")


# ============================================================ runtime

class HostLayout(common.HostLayout):
    def populate(self, root):
        """The directory skeleton of a fresh sandbox at `root`."""
        self.make_skeleton(root, (
            ("tmp", 0o1777), ("root", 0o700), ("home", 0o755), ("etc", 0o755),
            ("proc", 0o555), ("dev", 0o755), ("usr", 0o755), ("var/tmp", 0o1777),
        ), {
            "passwd": "root:x:0:0:root:/root:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": "root:x:0:\nnogroup:x:65534:\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
            "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        })


def signal_group_members(pgid, sig, spare):
    """Send `sig` to every process of process group `pgid` except `spare`.

    A command is "nsenter ... sh -c CMD": nsenter waits for the command it
    forked into the pid namespace and exits the way it did.  Sparing nsenter
    lets it report what really happened (a command that traps SIGTERM and
    exits 3 reports 3)."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == spare:
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            try:
                os.kill(int(name), sig)
            except ProcessLookupError:
                pass


def has_children(pid):
    """Whether process `pid` has forked a child that is still there."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return bool(f.read().split())
    except OSError:
        return False


async def inner_pid(host_pid):
    """The pid, inside the sandbox, of the command nsenter `host_pid` forks."""
    for _ in range(200):
        try:
            with open("/proc/%d/task/%d/children" % (host_pid, host_pid)) as f:
                children = f.read().split()
            if children:
                with open("/proc/%s/status" % children[0]) as f:
                    for line in f:
                        if line.startswith("NSpid:"):
                            return int(line.split()[-1])
        except (OSError, ValueError):
            return 0
        await asyncio.sleep(0.005)
    return 0


class Runtime(common.Keeper):
    """The namespaces of one running sandbox (its "pod")."""

    stop_on_cancel = True

    def __init__(self, sandbox, layout):
        super().__init__(layout)
        self.sb = sandbox

    @property
    def running(self):
        return self.init_pid is not None

    async def start(self):
        await self.start_keeper(self.sb.dir, self.sb.id[:63])

    async def spawn(self, command, cwd, env, stdin):
        """Run `command` with sh -c in the sandbox, in directory `cwd`.  The
        process (nsenter, which forks the real command into the pid
        namespace) leads its own session and process group."""
        if not self.running:
            raise RuntimeError("sandbox is not running")
        argv = self.nsenter_argv() + [
            "--", "/bin/sh", "-c", 'cd -- "$0" || exit 1; exec /bin/sh -c "$1"',
            cwd, command]
        return await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)


# ============================================================ commands

TIMEOUT = object()      # queue marker: the command's timeout fired
FINISHED = None         # queue marker: the command has exited


class Command:
    """One exec: its process, replay buffer, live subscribers, exit code."""

    def __init__(self, sandbox, text, cwd, env, stdin, timeout):
        self.id = uuid.uuid4().hex
        self.sb = sandbox
        self.text = text
        self.cwd = cwd
        self.env = env
        self.stdin = stdin
        self.timeout = timeout
        self.proc = None
        self.pid = 0
        self.started_at = time.time()
        self.exit_code = None
        self.timed_out = False
        self.events = deque()           # (stream, text, nbytes), newest last
        self.buffered = 0               # bytes in self.events
        self.subscribers = set()        # asyncio.Queue of events and markers
        self.tasks = []

    @property
    def finished(self):
        return self.exit_code is not None

    def subscribe(self):
        q = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q):
        self.subscribers.discard(q)

    def _publish(self, item):
        for q in list(self.subscribers):
            q.put_nowait(item)

    def _emit(self, stream, text, nbytes):
        """Record output in the ring buffer and hand it to live readers."""
        if not text:
            return
        self.events.append((stream, text, nbytes))
        self.buffered += nbytes
        while self.buffered > REPLAY_LIMIT and len(self.events) > 1:
            self.buffered -= self.events.popleft()[2]
        if self.buffered > REPLAY_LIMIT:      # one huge event: keep its tail
            s, t, n = self.events.popleft()
            raw = t.encode()[-REPLAY_LIMIT:]
            t = raw.decode("utf-8", "ignore")
            self.events.append((s, t, len(raw)))
            self.buffered = len(raw)
        self._publish((stream, text))

    def buffered_output(self):
        return "".join(t for _, t, _ in self.events)

    async def start(self, runtime):
        stdin = asyncio.subprocess.PIPE if self.stdin is not None \
            else asyncio.subprocess.DEVNULL
        self.proc = await runtime.spawn(self.text, self.cwd, self.env, stdin)
        self.tasks.append(asyncio.create_task(self._finish()))
        if self.stdin is not None:
            self.tasks.append(asyncio.create_task(self._feed(self.stdin.encode())))
        if self.timeout:
            self.tasks.append(asyncio.create_task(self._expire(self.timeout)))
        self.pid = await inner_pid(self.proc.pid)

    async def _feed(self, data):
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            try:
                self.proc.stdin.close()
            except (ConnectionError, BrokenPipeError):
                pass

    async def _pump(self, reader, stream):
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            self._emit(stream, decoder.decode(chunk), len(chunk))
        self._emit(stream, decoder.decode(b"", final=True), 0)

    async def _finish(self):
        await asyncio.gather(self._pump(self.proc.stdout, "stdout"),
                             self._pump(self.proc.stderr, "stderr"))
        rc = await self.proc.wait()
        # nsenter re-raises the command's fatal signal on itself; report it
        # the way a shell would (128+N).
        self.exit_code = rc if rc >= 0 else 128 - rc
        self.sb.command_finished(self)
        self._publish(FINISHED)

    async def _expire(self, seconds):
        await asyncio.sleep(seconds)
        if not self.finished:
            self.timed_out = True
            kill_group(self.proc.pid, signal.SIGKILL)
            self._publish(TIMEOUT)

    async def signal(self, sig):
        """Signal the command's process group.  The command is nsenter's
        child: a kill that comes before nsenter has forked it waits for it
        (a bounded while), or it would reach no one."""
        if self.proc is None:
            return
        for _ in range(1000):
            if self.finished or has_children(self.proc.pid):
                break
            await asyncio.sleep(0.005)
        if not self.finished:
            signal_group_members(self.proc.pid, sig, spare=self.proc.pid)

    def kill_all(self):
        if self.proc is not None and self.proc.returncode is None:
            kill_group(self.proc.pid, signal.SIGKILL)


# ============================================================ sandbox

class Sandbox:
    def __init__(self, emu, body, seq):
        now = time.time()
        self.emu = emu
        self.seq = seq
        self.id = str(uuid.uuid4())
        self.user_id = body["user_id"]
        spec = dict(DEFAULT_SPEC)
        spec.update(body.get("spec") or {})
        self.spec = spec
        self.labels = dict(body.get("labels") or {})
        self.payloads = list(body.get("payloads") or [])
        self.env = payload_env(self.payloads)
        self.status = "creating"
        self.created_at = now
        self.allocated_at = None
        ttl_hours = body.get("ttl_hours") or 0
        self.expire_at = now + (ttl_hours * 3600 if ttl_hours else DEFAULT_TTL)
        self.last_active_at = now
        self.dir = os.path.join(emu.root, self.id)
        self.jail = Jail(self.dir)
        self.runtime = Runtime(self, emu.layout)
        self.commands = OrderedDict()   # cmd_id -> Command (this pod's)
        self.conns = set()              # open WebSocket connections
        self.task = None                # lifecycle step under way
        self.stopping = False           # a stop has been accepted
        self.up = False                 # the pod's keeper is running
        self.polled = False             # a Get/List has reported "creating"

    # ---------------------------------------------------------- status

    def settle(self):
        """Apply the creating -> active step once its conditions hold."""
        if self.status == "creating" and self.up and self.polled:
            self.status = "active"
            self.allocated_at = time.time()

    def info(self, poll=True):
        """The Info object; a `poll` that reports "creating" lets the next
        one report "active" (once the pod is up)."""
        self.settle()
        if poll and self.status == "creating":
            self.polled = True
        ip_tail = self.seq % 65000
        d = {
            "id": self.id, "user_id": self.user_id,
            "namespace": "vtrix-%s" % re.sub(r"[^a-z0-9-]", "-", self.emu.project.lower()),
            "status": self.status,
            "ip": "10.244.%d.%d" % (ip_tail // 250, ip_tail % 250 + 2),
            "preview_url": "https://%s.preview.vtrix.localhost" % self.id,
            "preview_host": "%s.preview.vtrix.localhost" % self.id,
            "port": 8080,
            "image_tag": self.spec.get("image") or DEFAULT_IMAGE,
            "spec": self.spec,
            "created_at": rfc3339(self.created_at),
            "allocated_at": rfc3339(self.allocated_at) if self.allocated_at else "",
            "expire_at": rfc3339(self.expire_at),
            "last_active_at": rfc3339(self.last_active_at),
        }
        if self.labels:
            d["labels"] = self.labels
        return d

    def touch(self):
        self.last_active_at = time.time()

    # -------------------------------------------------------- commands

    def command_env(self, extra):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "USER": "root", "LOGNAME": "root",
               "HOSTNAME": self.id, "LANG": "C.UTF-8"}
        env.update(self.env)
        env.update(extra or {})
        return env

    def command_finished(self, cmd):
        """Forget the oldest finished records beyond KEPT_COMMANDS."""
        done = [c for c in self.commands.values() if c.finished]
        for c in done[:max(0, len(done) - KEPT_COMMANDS)]:
            self.commands.pop(c.id, None)

    # ------------------------------------------------------- lifecycle

    async def go_down(self):
        """The pod goes away: sockets closed, every process killed."""
        for conn in list(self.conns):
            conn.close_soon(1001, "sandbox pod went away")
        for cmd in list(self.commands.values()):
            cmd.kill_all()
        self.up = False
        await self.runtime.stop()
        self.commands.clear()


def payload_env(payloads):
    """Environment the payloads give commands: "/api/v1/env" bodies and
    (R3+) every payload's "envs"."""
    env = {}
    for p in payloads:
        if p.get("api") == "/api/v1/env" and isinstance(p.get("body"), dict):
            env.update({k: str(v) for k, v in p["body"].items()})
        if isinstance(p.get("envs"), dict):
            env.update({k: str(v) for k, v in p["envs"].items()})
    return env

#!/usr/bin/env python3
"""A real container engine for the docker provider's tests: Podman's Docker
API, behind a proxy that counts requests and injects faults.

Usage:
    /usr/bin/python3 tests/emulators/engine.py --root DIR [--podman PODMAN]
        [--fault JSON ...]

Unlike the emulators next to it, nothing here plays the service: Podman
(`podman system service`) is the engine, with its storage, run state and
configuration under DIR, so that the engines of test runs side by side
share nothing but the host's CNI bridge.  This program:

  * writes DIR/containers.conf and runs
        podman --root DIR/storage --runroot SHORT/run --storage-driver vfs \\
            system service --time=0 unix://SHORT/podman.sock

    (SHORT is a directory of /tmp of its own, removed at shutdown: Podman
    refuses a runroot over 50 characters, and a socket's path must fit
    107)
    with CONTAINERS_CONF set to it, in a session of its own, told to end
    when this program does (SIGTERM from here; from the kernel if this
    program dies, PR_SET_PDEATHSIG);
  * imports the test image localhost/sbxfs-busybox:latest once per DIR:
    Debian's static busybox (package busybox-static) as /bin/busybox, one
    symlink per applet in /bin, /etc/passwd and /etc/group with root,
    empty /tmp and /var/tmp (mode 1777), /root, /home, /proc, /sys, /dev.
    No GNU tools and no /usr, on purpose: the provider may count on
    nothing but a POSIX shell and busybox's applets;
  * serves SHORT/api.sock, where every request is forwarded to
    SHORT/podman.sock (HTTP/1.1, keep-alive, bodies by Content-Length or
    chunked, both ways), counted, or answered by an injected fault.  A
    response that switches protocols (101, as `POST /exec/{id}/start` and
    `POST /containers/{id}/attach` with `Upgrade: tcp` answer) or that has
    no length (200 and a raw stream, as they answer without it) leaves the
    connection hijacked: raw bytes are relayed both ways, the client's
    half-close (shutdown(SHUT_WR)) is passed on to Podman as one, and
    Podman's end of the stream closes the client's connection, as Docker
    closes it when the command ends;
  * prints the path of SHORT/api.sock on stdout once the image is there and
    both sockets answer, and logs one line per request on stderr.

SIGTERM or SIGINT: stop serving, stop every container (`podman stop -a -t
0`), end the service, then kill whatever is left of the engine under DIR:
conmon monitors (an exec's monitor outlives its command, see
exit_command_delay), the cleanup commands they start, and the processes of
every container's cgroup.

containers.conf has the settings Podman needs on this kind of machine
(default_ulimits, pids_limit, runc, cgroupfs, events in a file) and three
that keep concurrent engines apart and the machine's process table small:
tmp_dir under DIR (the default, /run/libpod, is machine-wide: its alive
lock, exit files), lock_type "file" (the default is one shared memory
segment of 2048 locks for every podman of the machine, which a killed
engine never gives back), exit_command_delay 10 (an exec session, and its
two conmon processes, are kept 10 s after its command ended for `GET
/exec/{id}/json`, instead of 300 s).

Requests are counted by route: "METHOD PATH" with the API version prefix
(/v1.41, /v4.3.1) dropped and ids and names replaced by placeholders:
"POST /containers/create", "GET /containers/json", "HEAD
/containers/{id}/archive", "POST /exec/{id}/start", "GET /exec/{id}/json",
"GET /images/{name}/json", "GET /_ping", "/libpod/..." likewise.  On a
hijacked connection, each turn of the client's (bytes it sends after the
engine sent some, or its first) is one more, "TURN POST /exec/{id}/start":
a script written to a shell kept open costs a round trip, as a request.

Test control routes on SHORT/api.sock (not counted, never faulted):
  GET  /_emu/stats          {"total": N, "routes": {"GET /containers/json": n, ...}}
  POST /_emu/reset          zero the counters.
  POST /_emu/fault          {"kind": "status"|"empty"|"slow"|"drop",
                             "status": 500, "prefix": "/containers",
                             "method": "GET", "count": 1, "delay": 1.0}
                            the next `count` requests whose path starts with
                            `prefix` (the path without its API version, or
                            as sent) and whose method is `method` (if given)
                            get Docker's error body {"message": "injected
                            fault"} with `status` / that status and an empty
                            body / `delay` seconds of delay, then normal
                            service (unless the client went away meanwhile:
                            then the request is not forwarded at all) / a
                            closed connection, without an answer.
                            "turn_slow" and "turn_drop" are for the turns of
                            hijacked streams whose request path starts with
                            `prefix` ("/exec/"): the client's bytes held
                            `delay` seconds before they go on / both
                            connections closed.
  POST /_emu/fault/clear    forget all faults.
  GET  /_emu/sandbox/NAME   {"id", "name", "dir", "state"} of the container
                            named NAME (or with that id, or an id prefix of
                            at least 12): dir is its root filesystem on this
                            host (vfs: a plain directory, the same whether it
                            runs or not), where a test plants files "on the
                            server"; state is Docker's State.Status.
"""

import argparse
import asyncio
import ctypes
import glob
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from http import HTTPStatus

import common
from common import log

IMAGE = "localhost/sbxfs-busybox:latest"
BUSYBOX = "/bin/busybox"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CONF = """\
[containers]
default_ulimits = []
pids_limit = 0
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "%(tmp)s"
lock_type = "file"
exit_command_delay = 10
"""

HEAD_LIMIT = 1 << 20        # a request's or response's head
CHUNK = 1 << 16

VERSION_RE = re.compile(r"^/v\d+(?:\.\d+)*(?=/)")

# Second path segments that are routes of their own, not ids or names.
STATIC = {
    "containers": {"json", "create", "prune", "stats", "showmounted"},
    "exec": set(),
    "networks": {"json", "create", "prune"},
    "volumes": {"json", "create", "prune"},
    "pods": {"json", "create", "prune", "stats"},
    "images": {"json", "create", "load", "search", "prune", "get", "build",
               "import", "pull", "export", "remove", "scp"},
}
IMAGE_VERBS = {"json", "history", "push", "tag", "untag", "get", "exists",
               "tree", "changes", "resolve"}


def bare_path(path):
    """The path without its API version prefix."""
    return VERSION_RE.sub("", path, count=1)


def route(bare):
    """The route pattern of a bare path: ids and names as placeholders."""
    prefix = ""
    if bare.startswith("/libpod/"):
        prefix, bare = "/libpod", bare[len("/libpod"):]
    parts = bare.split("/")
    if len(parts) >= 3 and parts[1] in STATIC and parts[2] not in STATIC[parts[1]]:
        if parts[1] == "images":
            # Image names hold "/" and ":": the verb, if any, is last.
            if len(parts) >= 4 and parts[-1] in IMAGE_VERBS:
                parts = parts[:2] + ["{name}", parts[-1]]
            else:
                parts = parts[:2] + ["{name}"]
        else:
            parts[2] = "{name}" if parts[1] == "volumes" else "{id}"
    return prefix + "/".join(parts)


# ============================================================ HTTP bits

def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def framing(headers):
    """("chunked", None), ("length", N) or (None, None)."""
    te = header(headers, "transfer-encoding")
    if te is not None and "chunked" in te.lower():
        return "chunked", None
    cl = header(headers, "content-length")
    if cl is not None:
        return "length", int(cl.strip())
    return None, None


def build_head(start, headers):
    lines = [start] + ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_head(reader):
    """(start line, [(name, value)]) of the next message, None at a clean
    end of stream."""
    try:
        data = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise ConnectionError("stream ended in a message head")
    except asyncio.LimitOverrunError:
        raise ConnectionError("message head over %d bytes" % HEAD_LIMIT)
    lines = data.lstrip(b"\r\n")[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


async def copy_exact(reader, writer, n):
    """Copy n bytes (writer None: drop them)."""
    while n > 0:
        data = await reader.read(min(n, CHUNK))
        if not data:
            raise ConnectionError("stream ended in a body")
        n -= len(data)
        if writer is not None:
            writer.write(data)
            await writer.drain()


async def copy_chunked(reader, writer):
    """Copy a chunked body as it is, trailers included."""
    while True:
        line = await reader.readuntil(b"\r\n")
        if writer is not None:
            writer.write(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:
                t = await reader.readuntil(b"\r\n")
                if writer is not None:
                    writer.write(t)
                if t == b"\r\n":
                    break
            if writer is not None:
                await writer.drain()
            return
        await copy_exact(reader, writer, size + 2)


async def copy_body(reader, writer, headers):
    kind, n = framing(headers)
    if kind == "chunked":
        await copy_chunked(reader, writer)
    elif kind == "length":
        await copy_exact(reader, writer, n)


async def read_body(reader, headers, limit=HEAD_LIMIT):
    """A small body, whole (control routes)."""
    kind, n = framing(headers)
    if kind == "length":
        if n > limit:
            raise ConnectionError("body over %d bytes" % limit)
        return await reader.readexactly(n)
    if kind == "chunked":
        body = b""
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return body
            if len(body) + size > limit:
                raise ConnectionError("body over %d bytes" % limit)
            body += (await reader.readexactly(size + 2))[:-2]
    return b""


def response(status, body=b"", content_type="application/json",
             head_only=False, close=False):
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    headers = [("Api-Version", "1.41"), ("Content-Type", content_type),
               ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    head = build_head("HTTP/1.1 %d %s" % (status, phrase), headers)
    return head if head_only else head + body


def wants_close(version, headers):
    conn = (header(headers, "connection") or "").lower()
    if "close" in conn:
        return True
    return version == "HTTP/1.0" and "keep-alive" not in conn


# ============================================================ the engine

class Engine(common.Service):
    """Podman under DIR, and the counts and faults of the proxy."""

    fault_kinds = ("status", "empty", "slow", "drop", "turn_slow", "turn_drop")

    def __init__(self, root, podman):
        super().__init__(root)
        self.podman = podman
        self.storage = os.path.join(self.root, "storage")
        self.tmp = os.path.join(self.root, "tmp")
        self.conf = os.path.join(self.root, "containers.conf")
        # Podman refuses a runroot over 50 characters, and a Unix socket's
        # path has room for 107: these live in a short directory of their
        # own, whatever DIR is, removed at shutdown.
        self.short = tempfile.mkdtemp(prefix="sbxfs-engine-", dir="/tmp")
        self.runroot = os.path.join(self.short, "run")
        self.podman_sock = os.path.join(self.short, "podman.sock")
        self.api_sock = os.path.join(self.short, "api.sock")
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf, TMPDIR=self.tmp)
        self.service = None

    # -- podman
    def cli(self, *args, timeout=120, check=True):
        argv = [self.podman, "--root", self.storage, "--runroot", self.runroot,
                "--storage-driver", "vfs"] + list(args)
        cp = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout)
        if check and cp.returncode != 0:
            raise RuntimeError("%s: exit %d: %s" % (
                " ".join(args), cp.returncode,
                cp.stderr.decode(errors="replace").strip()))
        return cp

    def configure(self):
        for d in (self.storage, self.runroot, self.tmp):
            os.makedirs(d, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(CONF % {"tmp": self.tmp})
        for s in (self.podman_sock, self.api_sock):
            try:
                os.unlink(s)
            except FileNotFoundError:
                pass

    def ensure_image(self):
        if self.cli("image", "exists", IMAGE, check=False).returncode == 0:
            return
        t0 = time.monotonic()
        tar = os.path.join(self.root, "busybox-image.tar")
        with open(tar, "wb") as f:
            f.write(image_tar(BUSYBOX))
        try:
            self.cli("import", "--change", 'CMD ["/bin/sh"]', "--change",
                     "ENV PATH=" + PATH, tar, IMAGE)
        finally:
            os.unlink(tar)
        log("imported %s in %.2fs" % (IMAGE, time.monotonic() - t0))

    def start_service(self):
        parent = os.getpid()
        libc = ctypes.CDLL(None, use_errno=True)

        def child():
            # PR_SET_PDEATHSIG: the service ends with this program, even
            # one killed (the race with a parent dying first is checked).
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

        argv = [self.podman, "--root", self.storage, "--runroot", self.runroot,
                "--storage-driver", "vfs", "system", "service", "--time=0",
                "unix://" + self.podman_sock]
        self.service = subprocess.Popen(
            argv, env=self.env, stdin=subprocess.DEVNULL, stdout=sys.stderr,
            start_new_session=True, preexec_fn=child)

    def wait_service(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            if self.service.poll() is not None:
                raise RuntimeError("podman system service exited %s"
                                   % self.service.returncode)
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(5)
                    s.connect(self.podman_sock)
                    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n"
                              b"Connection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("podman system service did not answer "
                                   "within %ss" % timeout)
            time.sleep(0.05)

    def containers(self):
        """Container records of the storage: id, names, layer."""
        try:
            with open(os.path.join(self.storage, "vfs-containers",
                                   "containers.json")) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return []

    def find(self, key):
        for c in self.containers():
            if key in (c.get("names") or []) or c["id"] == key or \
                    (len(key) >= 12 and c["id"].startswith(key)):
                return c
        return None

    def shutdown(self):
        """Stop the containers and the service; kill what is left."""
        if self.service is not None and self.service.poll() is None:
            try:
                self.cli("stop", "--all", "--time", "0", timeout=60,
                         check=False)
            except subprocess.TimeoutExpired:
                log("podman stop --all timed out")
            self.service.terminate()
            try:
                self.service.wait(10)
            except subprocess.TimeoutExpired:
                common.kill_group(self.service.pid, signal.SIGKILL)
                self.service.wait(10)
        self.sweep()

    def leftovers(self):
        """Host pids of this engine's monitors, cleanup commands and
        container processes."""
        mark = self.storage.encode()
        pids = set()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if mark in f.read():
                        pids.add(int(d))
            except OSError:
                pass
        for c in self.containers():
            for procs in (glob.glob("/sys/fs/cgroup/libpod_parent/libpod-%s*/"
                                    "cgroup.procs" % c["id"]) +
                          glob.glob("/sys/fs/cgroup/*/libpod_parent/libpod-%s*/"
                                    "cgroup.procs" % c["id"])):
                try:
                    with open(procs) as f:
                        pids.update(int(p) for p in f.read().split())
                except OSError:
                    pass
        return pids

    def sweep(self, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            pids = self.leftovers()
            if not pids:
                return
            if time.monotonic() > deadline:
                log("processes left behind: %s" % sorted(pids))
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    # -- faults
    def fault_for(self, raw, bare, method):
        f = self.take_fault(REQUEST_FAULTS, bare, method)
        if f is None and raw != bare:
            f = self.take_fault(REQUEST_FAULTS, raw, method)
        return f

    def turn_fault(self, bare):
        return self.take_fault(TURN_FAULTS, bare, None)


REQUEST_FAULTS = ("status", "empty", "slow", "drop")
TURN_FAULTS = ("turn_slow", "turn_drop")


def dynamic(path):
    """True if the ELF program at path asks for an interpreter."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False        # not a 64-bit ELF: let podman judge
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3
               for i in range(phnum))      # PT_INTERP


def image_tar(busybox):
    """The test image's root filesystem as a tar archive (bytes)."""
    if dynamic(busybox):
        raise RuntimeError("%s is dynamically linked: the image needs "
                           "Debian's busybox-static" % busybox)
    applets = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE,
                             check=True, timeout=30).stdout.decode().split()
    now = int(time.time())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add(name, kind, mode, data=b"", target=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = kind, mode, now
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.linkname = target
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data) if data else None)

        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777),
                        ("root", 0o700), ("home", 0o755), ("proc", 0o555),
                        ("sys", 0o555), ("dev", 0o755), ("var", 0o755),
                        ("var/tmp", 0o1777)):
            add(d, tarfile.DIRTYPE, mode)
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        for a in sorted(set(applets) - {"busybox"}):
            add("bin/" + a, tarfile.SYMTYPE, 0o777, target="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644,
            b"root:x:0:0:root:/root:/bin/sh\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\n")
    return buf.getvalue()


# ============================================================ the proxy

class Proxy:
    def __init__(self, engine):
        self.engine = engine
        self.conns = set()

    async def serve(self, creader, cwriter):
        task = asyncio.current_task()
        self.conns.add(task)
        conn = Connection(self, creader, cwriter)
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError) as e:
            log("connection ended: %s" % (e or type(e).__name__))
        finally:
            self.conns.discard(task)
            conn.close()

    # -- control routes
    async def control(self, method, path, body):
        emu = self.engine
        if method == "GET" and path == "/_emu/stats":
            return 200, {"total": emu.total, "routes": dict(emu.stats)}
        if method == "POST" and path == "/_emu/reset":
            emu.stats.clear()
            emu.total = 0
            return 200, {"ok": True}
        if method == "POST" and path == "/_emu/fault":
            try:
                f = json.loads(body)
                assert isinstance(f, dict)
                f.setdefault("kind", "status")
                assert f["kind"] in emu.fault_kinds
                f["count"] = int(f.get("count", 1))
            except Exception:  # noqa: BLE001 - any bad fault is a 400
                return 400, {"error": "bad fault"}
            emu.faults.append(f)
            return 200, {"ok": True, "faults": len(emu.faults)}
        if method == "POST" and path == "/_emu/fault/clear":
            emu.faults.clear()
            return 200, {"ok": True}
        if method == "GET" and path.startswith("/_emu/sandbox/"):
            c = emu.find(path[len("/_emu/sandbox/"):])
            if c is None:
                return 404, {"error": "no such sandbox"}
            return 200, {"id": c["id"], "name": (c.get("names") or [""])[0],
                         "dir": os.path.join(emu.storage, "vfs", "dir",
                                             c["layer"]),
                         "state": await self.state(c["id"])}
        return 404, {"error": "no such control route"}

    async def state(self, cid):
        """Docker's State.Status of a container, asked of Podman directly."""
        try:
            r, w = await asyncio.open_unix_connection(self.engine.podman_sock)
        except OSError:
            return None
        try:
            w.write(("GET /v1.41/containers/%s/json HTTP/1.0\r\nHost: d\r\n"
                     "Connection: close\r\n\r\n" % cid).encode())
            await w.drain()
            data = await r.read()
            body = data.split(b"\r\n\r\n", 1)[1]
            return json.loads(body)["State"]["Status"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None
        finally:
            w.close()


class Connection:
    """One client connection and the Podman connection behind it."""

    def __init__(self, proxy, creader, cwriter):
        self.proxy = proxy
        self.engine = proxy.engine
        self.cr, self.cw = creader, cwriter
        self.ur = self.uw = None

    def close(self):
        for w in (self.cw, self.uw):
            if w is not None:
                w.close()
        self.uw = self.ur = None

    def drop_upstream(self):
        if self.uw is not None:
            self.uw.close()
        self.ur = self.uw = None

    async def upstream(self):
        if self.uw is not None and (self.ur.at_eof() or self.uw.is_closing()):
            self.drop_upstream()
        if self.uw is None:
            self.ur, self.uw = await asyncio.open_unix_connection(
                self.engine.podman_sock, limit=HEAD_LIMIT)
        return self.ur, self.uw

    async def run(self):
        while True:
            head = await read_head(self.cr)
            if head is None:
                return
            start, headers = head
            try:
                method, target, version = start.split(" ", 2)
            except ValueError:
                self.cw.write(response(400, b'{"message":"bad request"}\n',
                                       close=True))
                await self.cw.drain()
                return
            path = target.split("?", 1)[0]
            if path.startswith("/_emu/"):
                body = await read_body(self.cr, headers)
                status, obj = await self.proxy.control(method, path, body)
                self.cw.write(response(status, json.dumps(obj).encode()))
                await self.cw.drain()
                continue
            if not await self.exchange(method, path, start, headers, version):
                return

    async def exchange(self, method, path, start, headers, version):
        """One request; False when the client connection is done."""
        emu = self.engine
        bare = bare_path(path)
        emu.count("%s %s" % (method, route(bare)))
        t0 = time.monotonic()
        close = wants_close(version, headers)
        fault = emu.fault_for(path, bare, method)
        if fault is not None:
            kind = fault["kind"]
            if kind == "drop":
                log("%s %s dropped (fault)" % (method, path))
                self.cw.transport.abort()
                return False
            if kind == "slow":
                if not await self.wait_unless_gone(float(fault.get("delay")
                                                         or 1.0)):
                    log("%s %s: client gone during the delay (fault)"
                        % (method, path))
                    return False
            else:
                await copy_body(self.cr, None, headers)
                status = int(fault.get("status") or 500)
                body = b"" if kind == "empty" else \
                    b'{"message":"injected fault"}\n'
                self.cw.write(response(status, body, head_only=method == "HEAD",
                                       close=close))
                await self.cw.drain()
                log("%s %s %d (fault)" % (method, path, status))
                return not close
        keep = await self.forward(method, path, start, headers)
        log("%s %s %s %.1fms" % (method, path, keep[1],
                                  (time.monotonic() - t0) * 1000))
        return keep[0] and not close

    async def wait_unless_gone(self, delay):
        """Sleep delay seconds; False if the client closed meanwhile."""
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if self.cr.at_eof() or self.cw.is_closing():
                return False
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return not (self.cr.at_eof() or self.cw.is_closing())

    async def forward(self, method, path, start, headers):
        """Forward one request and its answer: (keep the connection,
        status for the log)."""
        ur, uw = await self.upstream()
        expect = (header(headers, "expect") or "").lower() == "100-continue"
        if expect:
            # Answered here: Podman's own 100 would come while the body is
            # still awaited from the client.
            headers = [(k, v) for k, v in headers if k.lower() != "expect"]
        uw.write(build_head(start, headers))
        if expect:
            self.cw.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self.cw.drain()
        await copy_body(self.cr, uw, headers)
        await uw.drain()
        while True:
            head = await read_head(ur)
            if head is None:
                raise ConnectionError("the engine closed the connection")
            rstart, rheaders = head
            status = int(rstart.split(" ", 2)[1])
            if 100 <= status < 200 and status != 101:
                self.cw.write(build_head(rstart, rheaders))
                continue
            break
        self.cw.write(build_head(rstart, rheaders))
        await self.cw.drain()
        if method == "HEAD" or status in (204, 304):
            kind = "none"
        else:
            kind = framing(rheaders)[0]
        if status == 101 or kind is None:
            await self.relay("%s %s" % (method, route(bare_path(path))),
                             bare_path(path))
            return False, "%d hijacked" % status
        if kind != "none":
            await copy_body(ur, self.cw, rheaders)
        if wants_close("HTTP/1.1", rheaders):
            self.drop_upstream()
            return False, status
        return True, status

    async def relay(self, what, bare):
        """Raw bytes both ways until Podman ends the stream: the client's
        end of input becomes a shutdown(SHUT_WR) towards Podman; Podman's
        end closes the client's connection.  Each turn of the client's (it
        writes after the engine wrote, or first) is counted as a request
        "TURN <what>": a script sent to a shell kept open is a round trip
        as much as a request is."""
        ur, uw = self.ur, self.uw
        self.ur = self.uw = None        # never reused
        turn = {"client": False}

        async def client_to_engine():
            try:
                while True:
                    data = await self.cr.read(CHUNK)
                    if not data:
                        break
                    if not turn["client"]:
                        turn["client"] = True
                        self.engine.count("TURN " + what)
                        f = self.engine.turn_fault(bare)
                        if f is not None and f["kind"] == "turn_drop":
                            log("TURN %s dropped (fault)" % bare)
                            self.cw.transport.abort()
                            uw.close()
                            break
                        if f is not None:
                            log("TURN %s delayed (fault)" % bare)
                            await asyncio.sleep(float(f.get("delay") or 1.0))
                    uw.write(data)
                    await uw.drain()
                if uw.can_write_eof() and not uw.is_closing():
                    uw.write_eof()
            except (ConnectionError, OSError):
                pass

        up = asyncio.ensure_future(client_to_engine())
        try:
            while True:
                data = await ur.read(CHUNK)
                if not data:
                    break
                turn["client"] = False
                self.cw.write(data)
                await self.cw.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            up.cancel()
            try:
                await up
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            uw.close()
            self.cw.close()


# ============================================================ main

async def amain(engine):
    proxy = Proxy(engine)
    server = await asyncio.start_unix_server(proxy.serve, path=engine.api_sock,
                                             limit=HEAD_LIMIT)
    # The proxy answers: one control request through it.
    r, w = await asyncio.open_unix_connection(engine.api_sock)
    w.write(b"GET /_emu/stats HTTP/1.1\r\nHost: d\r\n\r\n")
    await w.drain()
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
    w.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    sys.stdout.write(engine.api_sock + "\n")
    sys.stdout.flush()
    log("engine on %s (podman on %s)" % (engine.api_sock, engine.podman_sock))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log("shutting down")
    server.close()
    for t in list(proxy.conns):
        t.cancel()
    await asyncio.gather(*proxy.conns, return_exceptions=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True,
                    help="directory of the engine's storage, state and sockets")
    ap.add_argument("--podman", default="podman", help="the podman program")
    ap.add_argument("--fault", action="append", default=[],
                    help="a fault armed from the start (JSON, as POST /_emu/fault)")
    args = ap.parse_args()
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    engine = Engine(args.root, args.podman)
    for text in args.fault:
        f = json.loads(text)
        f.setdefault("kind", "status")
        if f["kind"] not in engine.fault_kinds:
            ap.error("unknown fault kind %r" % f["kind"])
        f["count"] = int(f.get("count", 1))
        engine.faults.append(f)
    # Until the loop takes them over, SIGTERM and SIGINT end the start-up
    # through the finally below.
    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        engine.configure()
        engine.ensure_image()
        engine.start_service()
        engine.wait_service()
        asyncio.run(amain(engine))
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as e:  # noqa: BLE001 - reported, then cleaned up
        log("engine failed: %s" % e)
        raise SystemExit(1)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        engine.shutdown()
        shutil.rmtree(engine.short, ignore_errors=True)
        log("engine stopped")


if __name__ == "__main__":
    main()

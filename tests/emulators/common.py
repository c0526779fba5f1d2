"""What the emulators of remote services (daytona.py, rexec.py, vtrix.py)
share: the path jail of a sandbox's directory, the keeper that holds a
sandbox's namespaces, the kill helpers, fault injection, request stats and
the /_emu/ control routes, the request log, argument parsing, the aiohttp
skeleton that serves until SIGTERM/SIGINT, and two Go formats (a time's
fraction, FileMode.String) that both Go servers show.

Each emulator imports it from its own directory (run as a script, Python
puts the script's directory first on sys.path), so a copy of an emulator
needs a copy of this file next to it.  Each emulator keeps its own
service's API and its deliberate deviations, through the parameters and
small subclass hooks below.

Sandboxes.  DIR/<id>/ is a sandbox's "/".  A started sandbox has one
long-lived "keeper" (bwrap ... sleep infinity) that owns a pid, ipc, mount
and uts namespace; commands enter them with nsenter, so commands of one
sandbox see each other in /proc and nothing else.  Stopping a sandbox kills
the namespace's init, and with it every process of the sandbox.
"""

import argparse
import ssl
import asyncio
import errno
import json
import os
import shutil
import signal
import stat
import sys
import time
from collections import Counter

from aiohttp import web

MAX_SYMLINK_HOPS = 40


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ============================================================ Go formats

def go_frac(ns):
    """Go's ".999999999" layout element: trailing zeros and lone dot dropped."""
    frac = ("%09d" % (ns % 1_000_000_000)).rstrip("0")
    return "." + frac if frac else ""


def go_mode_string(mode):
    """Go's FileMode.String(): type letters in the order "dalTLDpSugct?"."""
    kinds = ""
    if stat.S_ISDIR(mode):
        kinds += "d"
    if stat.S_ISLNK(mode):
        kinds += "L"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        kinds += "D"
    if stat.S_ISFIFO(mode):
        kinds += "p"
    if stat.S_ISSOCK(mode):
        kinds += "S"
    if mode & stat.S_ISUID:
        kinds += "u"
    if mode & stat.S_ISGID:
        kinds += "g"
    if stat.S_ISCHR(mode):
        kinds += "c"
    if mode & stat.S_ISVTX:
        kinds += "t"
    perms = "".join(ch if mode & (1 << (8 - i)) else "-"
                    for i, ch in enumerate("rwxrwxrwx"))
    return (kinds or "-") + perms


# ============================================================ path jail

class Jail:
    """Resolves sandbox paths to host paths without ever leaving the root:
    symlinks are followed relative to the sandbox's "/", ".." stops there."""

    cwd = "/"           # what a relative path is relative to

    def __init__(self, root):
        self.root = root

    def host(self, path, follow=True, cwd=None):
        """Host path for sandbox `path`.  Symlinks in every component but the
        last are followed (inside the sandbox); the last one only if
        `follow`.  Missing components are kept as they are, so that the
        caller's open/stat reports ENOENT or ENOTDIR itself."""
        if "\0" in path:
            raise OSError(errno.EINVAL, "invalid path")
        if not path.startswith("/"):
            path = (cwd or self.cwd) + "/" + path
        todo = [c for c in reversed(path.split("/")) if c not in ("", ".")]
        done = []
        hops = 0
        while todo:
            name = todo.pop()
            if name == "..":
                if done:
                    done.pop()
                continue
            if not todo and not follow:
                done.append(name)
                break
            candidate = os.path.join(self.root, *done, name)
            try:
                st = os.lstat(candidate)
            except OSError:
                done.append(name)
                continue
            if not stat.S_ISLNK(st.st_mode):
                done.append(name)
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            todo.extend(c for c in reversed(target.split("/"))
                        if c not in ("", "."))
        return os.path.join(self.root, *done)

    def inside(self, host):
        """The sandbox path of a host path below the root."""
        rel = os.path.relpath(host, self.root)
        return "/" if rel == "." else "/" + rel


# ============================================================ keepers

class HostLayout:
    """How the host's system directories are made visible in sandboxes."""

    def __init__(self):
        self.links = {}   # name -> symlink target (merged /usr hosts)
        self.binds = []   # top-level directories bound read-only
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = "/" + name
            if os.path.islink(host):
                self.links[name] = os.readlink(host)
            elif os.path.isdir(host):
                self.binds.append(name)

    def make_skeleton(self, root, dirs, etc_files, reuse=False):
        """The directory skeleton of a sandbox at `root`: `dirs` as (path,
        mode) pairs, the host's top-level system links and bind points,
        `etc_files` (name -> text) in /etc and a few host files.  With
        `reuse`, links and /etc/alternatives already there are kept;
        without, `root` must be fresh."""
        for d, mode in dirs:
            p = os.path.join(root, d)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, mode)
        for name, target in self.links.items():
            if not (reuse and os.path.lexists(os.path.join(root, name))):
                os.symlink(target, os.path.join(root, name))
            # An empty directory where the link points, so that the link is
            # a directory for the file API too (commands see the host's).
            os.makedirs(os.path.join(root, target), exist_ok=True)
        for name in self.binds:
            os.makedirs(os.path.join(root, name), exist_ok=True)
        etc = os.path.join(root, "etc")
        for name, text in etc_files.items():
            with open(os.path.join(etc, name), "w") as f:
                f.write(text)
        alternatives = os.path.join(etc, "alternatives")
        if os.path.isdir("/etc/alternatives") and \
                not (reuse and os.path.exists(alternatives)):
            shutil.copytree("/etc/alternatives", alternatives, symlinks=True)
        for name in ("ld.so.cache", "resolv.conf"):
            try:
                shutil.copyfile("/etc/" + name, os.path.join(etc, name))
            except OSError:
                pass

    def keeper_argv(self, root, hostname, info_fd):
        KEEPER_ROOTS.add(root)
        argv = ["bwrap", "--bind", root, "/", "--ro-bind", "/usr", "/usr"]
        for name in self.binds:
            argv += ["--ro-bind", "/" + name, "/" + name]
        argv += ["--proc", "/proc", "--dev", "/dev", "--unshare-pid",
                 "--unshare-ipc", "--unshare-uts", "--hostname", hostname,
                 "--die-with-parent", "--info-fd", str(info_fd),
                 "/bin/sh", "-c", "echo ready; exec sleep infinity"]
        return argv


# Every keeper started and not yet stopped, by process group: shutdown
# kills what is left, whatever a cancelled start was doing at the time
# (--die-with-parent does not cover a keeper whose parent exits before
# bwrap arms it).
KEEPERS = set()
# The roots keepers were started on: shutdown also kills a keeper of one
# that never made it into KEEPERS (a start cancelled inside its spawn).
KEEPER_ROOTS = set()


def kill_keepers():
    for pgid in list(KEEPERS):
        kill_group(pgid, signal.SIGKILL)
    KEEPERS.clear()
    marks = [b"\0--bind\0" + os.fsencode(r) + b"\0" for r in KEEPER_ROOTS]
    for name in os.listdir("/proc") if marks else ():
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read()
            if argv.startswith(b"bwrap\0") and any(m in argv for m in marks):
                os.kill(int(name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Keeper:
    """The namespaces of one started sandbox, held by its keeper."""

    # A start that fails stops the keeper at once; with this, so does a
    # start that is cancelled (else the keeper waits for kill_keepers).
    stop_on_cancel = False

    def __init__(self, layout):
        self.layout = layout
        self.keeper = None
        self.init_pid = None        # host pid of the pid namespace's init

    @property
    def running(self):
        return self.keeper is not None

    async def start_keeper(self, root, hostname):
        r, w = os.pipe()
        try:
            self.keeper = await asyncio.create_subprocess_exec(
                *self.layout.keeper_argv(root, hostname, w),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                pass_fds=(w,), start_new_session=True)
            KEEPERS.add(self.keeper.pid)
        finally:
            os.close(w)
        failure = BaseException if self.stop_on_cancel else Exception
        try:
            line = await asyncio.wait_for(self.keeper.stdout.readline(), 20)
            if line.strip() != b"ready":
                raise RuntimeError("bwrap did not start (see stderr)")
            info = await asyncio.get_running_loop().run_in_executor(
                None, self._read_info, r)
            self.init_pid = int(info["child-pid"])
        except failure:
            await self.stop()
            raise
        finally:
            os.close(r)

    @staticmethod
    def _read_info(fd):
        data = b""
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
            try:
                return json.loads(data)
            except ValueError:
                continue
        return json.loads(data)

    def nsenter_argv(self):
        """The start of a command line that enters the sandbox's namespaces."""
        return ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-p", "-r"]

    async def stop(self):
        """Kill everything: the pid namespace dies with its init."""
        if self.init_pid:
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.keeper is not None:
            kill_group(self.keeper.pid, signal.SIGKILL)
            KEEPERS.discard(self.keeper.pid)
            try:
                await asyncio.wait_for(self.keeper.wait(), 5)
            except asyncio.TimeoutError:
                pass
        self.keeper = None
        self.init_pid = None


# ============================================== stats and fault injection

class Service:
    """What every emulator object holds: its root, the request stats and
    the injected faults."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.stats = Counter()
        self.total = 0
        self.faults = []

    def count(self, key):
        self.stats[key] += 1
        self.total += 1

    def take_fault(self, kinds=None, path=None, method=None, websocket=None):
        """The first armed fault of one of `kinds` (None: any) whose prefix
        and method match, and its "websocket" (true: only a WebSocket's
        upgrade, false: only plain requests), with one use taken off its
        count; else None."""
        for f in self.faults:
            if f["count"] <= 0 or (kinds is not None and f["kind"] not in kinds):
                continue
            if path is not None and not path.startswith(f.get("prefix") or ""):
                continue
            if websocket is not None and f.get("websocket") is not None \
                    and bool(f["websocket"]) != websocket:
                continue
            want = f.get("method")
            if want and (method or "").upper() != str(want).upper():
                continue
            f["count"] -= 1
            return f
        return None


def route_key(request, rewrite=None):
    """The stats key of a request: "METHOD <route pattern>" (`rewrite`
    applied to the pattern), or "METHOD (unmatched)"."""
    if request.match_info.http_exception is not None:
        return "%s (unmatched)" % request.method
    canonical = request.match_info.route.resource.canonical
    return "%s %s" % (request.method, rewrite(canonical) if rewrite else canonical)


class Control:
    """The test control routes under /_emu/ (no auth, not counted): stats,
    reset, faults.  Subclasses add their own (at least /_emu/sandbox/...)."""

    fault_kinds = ("status",)
    routes_map = dict       # the type the stats' "routes" are answered as

    def __init__(self, emu):
        self.emu = emu

    def json(self, data, status=200):
        return web.json_response(data, status=status)

    def routes(self):
        return [("GET", "/_emu/stats", self.stats), ("POST", "/_emu/reset", self.reset),
                ("POST", "/_emu/fault", self.fault),
                ("POST", "/_emu/fault/clear", self.fault_clear)]

    async def stats(self, request):
        return self.json(self.stats_body())

    def stats_body(self):
        """What /_emu/stats answers: the request counts, and how many
        injected faults still wait for a request.  Subclasses add theirs."""
        return {"total": self.emu.total,
                "routes": self.routes_map(self.emu.stats),
                "faults_armed": sum(1 for f in self.emu.faults if f["count"] > 0)}

    async def reset(self, request):
        self.emu.stats.clear()
        self.emu.total = 0
        return self.json({"ok": True})

    async def fault(self, request):
        try:
            f = json.loads(await request.text())
            assert isinstance(f, dict)
            f.setdefault("kind", "status")
            assert f["kind"] in self.fault_kinds
            f["count"] = int(f.get("count", 1))
        except Exception:  # noqa: BLE001 - any bad fault is a 400
            return self.json({"error": "bad fault"}, 400)
        self.emu.faults.append(f)
        return self.json({"ok": True, "faults": len(self.emu.faults)})

    async def fault_clear(self, request):
        self.emu.faults.clear()
        return self.json({"ok": True})


# ============================================================ the app

async def send_file(resp, f, length, chunk):
    """Write at most `length` bytes of the open file `f`, from where it
    stands, to the prepared stream response `resp`, `chunk` bytes at a
    time; a file that turns out shorter ends it early."""
    while length > 0:
        data = f.read(min(chunk, length))
        if not data:
            break
        await resp.write(data)
        length -= len(data)


def request_logger(dispatch):
    """The middleware that logs one line per request but /_emu/ ones on
    stderr (method, path without query, status, time) around
    `dispatch(request, handler)`."""
    @web.middleware
    async def middleware(request, handler):
        if request.path.startswith("/_emu/"):
            return await handler(request)
        t0 = time.monotonic()
        status = 500
        try:
            resp = await dispatch(request, handler)
            status = resp.status
            return resp
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            log("%s %s %s %.1fms" % (request.method, request.path, status,
                                     (time.monotonic() - t0) * 1000))
    return middleware


def argument_parser(doc, root_help, *credentials):
    """--root, the required `credentials` ((option, help) pairs), --port and
    --delay; the description is the first line of the emulator's `doc`."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--root", required=True, help=root_help)
    for option, text in credentials:
        ap.add_argument(option, required=True, help=text)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.2,
                    help="seconds per lifecycle step (default 0.2)")
    ap.add_argument("--tls-cert", help="serve HTTPS and WSS with this "
                    "certificate (PEM), and --tls-key")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    return ap


def tls_context(ap, args):
    """The TLS context of --tls-cert and --tls-key, or None for plain
    HTTP; an argument error if only one is given."""
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if not args.tls_cert:
        return None
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.tls_cert, args.tls_key)
    return tls


async def serve(app, port, started, shutdown, ssl_context=None):
    """Serve `app` on 127.0.0.1:`port` until SIGTERM or SIGINT.  Once
    listening, `started(bound_port)` returns the log line to show, and the
    bound port is printed on stdout; at the end `shutdown()` runs before
    the app is cleaned up and the keepers left are killed."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1]
    banner = started(bound)
    sys.stdout.write("%d\n" % bound)
    sys.stdout.flush()
    log(banner)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log("shutting down")
    await shutdown()
    await runner.cleanup()
    kill_keepers()


def run(amain, args, what="commands"):
    """asyncio.run(amain(args)), after warning about what `what` (commands
    or containers) need."""
    # Commands get the signal dispositions a fresh sandbox gives them: run
    # under nohup or as a background job, this process ignores SIGHUP,
    # SIGINT or SIGQUIT, and exec would hand that on to every command.
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    if not shutil.which("bwrap") or not shutil.which("nsenter"):
        log("warning: bwrap and nsenter are needed to run %s" % what)
    if os.geteuid() != 0:
        log("warning: %s need root: unprivileged bwrap nests a user "
            "namespace that nsenter cannot join" % what)
    asyncio.run(amain(args))

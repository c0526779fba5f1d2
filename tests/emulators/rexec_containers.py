"""The containers and the state of the Rexec emulator (rexec.py).

The server's constants (limits, environments, images, plans), the runtime
of a running container (a common.Keeper: bwrap namespaces that commands
enter with nsenter through Docker's exec wrapper), the Container (its DB
record, Docker container and manager entry), the per-IP rate limiter and
the Emulator: lookups, the Docker-side work, the lifecycle, the client IP
and the token check.  The handlers (rexec_handlers.py, rexec_terminal.py)
and the app (rexec.py) build on it.
"""

import asyncio
import hashlib
import ipaddress
import os
import secrets
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter

from aiohttp import web

import common
from common import KEEPERS, kill_group, log
from rexec_go import DockerError, GoMap, error, json_response


HOME = "/home/user"
CHUNK = 256 * 1024
MAX_UPLOAD = 100 * 1024 * 1024          # header.Size > 100*1024*1024 -> 400
EXEC_MAX_OUTPUT = 1 << 20               # maxExecOutputBytes
EXEC_DEFAULT_TIMEOUT = 60
EXEC_MAX_TIMEOUT = 300
FILE_OP_TIMEOUT = 30                    # the files handlers' context timeout
PTY_READ = 64 * 1024                    # ptyBufferSize
LS_STDIO_BUFFER = 4096                  # ls's stdout buffer on a pipe
WS_MAX_MESSAGE = 100 * 1024 * 1024      # conn.SetReadLimit(100 MiB)
MAX_SHELL_RESTARTS = 10
STATUS_REFRESH = 5.0

# The container's environment (manager.go CreateContainer + the image's PATH).
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The terminal's exec environment (terminal.go, direct shell without tmux).
TERMINAL_ENV = {
    "TERM": "xterm-256color", "COLORTERM": "truecolor",
    "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": HOME,
    "PATH": "/home/user/.local/bin:" + IMAGE_PATH,
}
# Directories that are tmpfs mounts in the real containers.
TMPFS_DIRS = ("tmp", "var/tmp", "run", "var/log", "var/lib/apt/lists",
              "var/cache/apt/archives")

# container.SupportedImages keys (manager.go).  The server sends them in Go
# map order, i.e. shuffled; so does the emulator.
SUPPORTED_IMAGES = [
    "ubuntu", "ubuntu-24", "ubuntu-22", "ubuntu-20", "debian", "debian-12",
    "debian-11", "kali", "parrot", "mint", "elementary", "devuan",
    "blackarch", "parrot-security", "fedora", "fedora-40", "fedora-39",
    "centos", "centos-stream", "rocky", "rocky-8", "alma", "alma-8", "oracle",
    "rhel", "openeuler", "archlinux", "manjaro", "artix", "opensuse",
    "tumbleweed", "mageia", "gentoo", "void", "nixos", "slackware", "crux",
    "guix", "alpine", "alpine-3.20", "alpine-3.18", "busybox", "tinycore",
    "openwrt", "rancheros", "amazonlinux", "amazonlinux2", "oracle-slim",
    "azurelinux", "scientific", "neurodebian", "clearlinux", "photon",
    "raspberrypi", "macos", "macos-legacy",
]
POPULAR_IMAGES = ["ubuntu", "debian", "alpine", "fedora", "archlinux", "kali"]

# Plans (models.GetUserResourceLimits, container.UserContainerLimit).
TIERS = {
    #              memory cpu   disk   containers subscription
    "free":       (2048, 2000, 10240, 5, False),
    "trial":      (2048, 2000, 10240, 5, False),
    "pro":        (4096, 4000, 20480, 10, True),
    "enterprise": (8192, 8000, 51200, 20, True),
}
SESSION_LIMIT_SECONDS = 50 * 3600        # models.AuthenticatedSessionDuration

# The delete handler's dangerousPaths.
DANGEROUS_PATHS = ("/", "/bin", "/sbin", "/usr", "/etc", "/var", "/lib", "/root")

ADJECTIVES = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly",
              "kind", "lively", "nice", "proud", "silly", "witty", "zesty"]
NOUNS = ["ape", "bat", "cod", "dove", "eel", "frog", "gull", "hare", "koala",
         "lynx", "moth", "otter", "seal", "tiger", "wolf", "yak", "zebra"]


# ==================================================== path resolution

class Jail(common.Jail):
    """Resolves container paths to host paths without leaving the root, the
    way Docker's FollowSymlinkInScope does: symlinks are followed relative
    to the container's "/", ".." never climbs above it.  Paths are absolute
    (already cleaned)."""


# ============================================================ runtime

class HostLayout(common.HostLayout):
    def populate(self, root, hostname):
        """The skeleton of a fresh container root (an ubuntu-like image after
        the entrypoint ran: /home/user is mode 0777)."""
        self.make_skeleton(root, (
            ("tmp", 0o1777), ("var/tmp", 0o1777), ("var/log", 0o755),
            ("var/lib/apt/lists", 0o755), ("var/cache/apt/archives", 0o755),
            ("run", 0o755), ("home/user", 0o777), ("etc", 0o755), ("root", 0o700),
            ("proc", 0o555), ("dev", 0o755), ("sys", 0o555), ("usr", 0o755),
            ("opt", 0o755), ("mnt", 0o755), ("srv", 0o755), ("media", 0o755),
        ), {
            "passwd": "root:x:0:0:root:/root:/bin/bash\n"
                      "ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": "root:x:0:\nubuntu:x:1000:\nnogroup:x:65534:\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
            "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
            "hostname": hostname + "\n",
        }, reuse=True)
        if not os.path.lexists(os.path.join(root, "var/run")):
            os.symlink("/run", os.path.join(root, "var/run"))


# Runs inside the container for every Docker-style exec: $1 is the working
# directory, the rest the argv.  It reproduces what Docker does when an exec
# cannot start: the daemon writes the OCI error to the exec's STDOUT, with
# "\r\n", and the exit code is 126 (cannot start) or 127 (not found).
EXEC_WRAPPER = r'''
wd=$1; shift
if ! cd -- "$wd" 2>/dev/null; then
  printf 'OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("%s") set in config.json failed: no such file or directory: unknown\r\n' "$wd"
  exit 126
fi
case $1 in
*/*)
  if [ ! -e "$1" ]; then
    printf 'OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": stat %s: no such file or directory: unknown\r\n' "$1" "$1"
    exit 127
  fi ;;
*)
  found=
  IFS=:
  for d in $PATH; do
    if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then found=1; break; fi
  done
  unset IFS
  if [ -z "$found" ]; then
    printf 'OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": executable file not found in $PATH: unknown\r\n' "$1"
    exit 127
  fi ;;
esac
exec "$@"
'''


class Runtime(common.Keeper):
    """The namespaces of one running container and the processes inside."""

    def __init__(self, root, hostname, layout):
        super().__init__(layout)
        self.root = root
        self.hostname = hostname
        self.procs = set()

    async def start(self):
        await self.start_keeper(self.root, self.hostname)

    async def spawn(self, argv, env, workdir, uid=None, gid=None, stdin=None,
                    stdout=None, stderr=None):
        """Start argv in the container as Docker exec would.  The host-side
        nsenter process leads its own session, so killing its process group
        kills the command."""
        cmd = self.nsenter_argv()
        if uid is not None:
            cmd += ["-S", str(uid), "-G", str(gid)]
        cmd += ["--", "/bin/sh", "-c", EXEC_WRAPPER, "rexec-exec", workdir] + list(argv)
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
            start_new_session=True)
        self.procs.add(proc)
        return proc

    def forget(self, proc):
        self.procs.discard(proc)

    async def stop(self):
        """Kill everything: the pid namespace dies with its init.  The state
        is cleared before the first await, so nobody sees a half-dead
        container as running."""
        keeper, init_pid = self.keeper, self.init_pid
        self.keeper = None
        self.init_pid = None
        # Killing the init kills every process of the namespace; each nsenter
        # then reaps its child and exits (see kill_in_container).
        self.procs.clear()
        if init_pid:
            try:
                os.kill(init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if keeper is not None:
            KEEPERS.discard(keeper.pid)
            # The outer bwrap reaps the namespace's init and exits by itself;
            # killing it first would leave the init a zombie of PID 1.
            try:
                await asyncio.wait_for(keeper.wait(), 2)
            except asyncio.TimeoutError:
                kill_group(keeper.pid, signal.SIGKILL)
                try:
                    await asyncio.wait_for(keeper.wait(), 5)
                except asyncio.TimeoutError:
                    pass


def kill_in_container(proc, sig=signal.SIGKILL):
    """Kill what an nsenter process runs in the container (its direct child)
    and let nsenter reap it and exit.  Killing nsenter first would orphan the
    child to the host's PID 1: a zombie that holds up the pid namespace's
    teardown until PID 1 reaps it."""
    try:
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            children = [int(x) for x in f.read().split()]
    except OSError:
        children = []
    for child in children:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass
    if not children and proc.returncode is None:
        kill_group(proc.pid, sig)      # nothing forked yet


def exit_code(rc):
    """nsenter re-raises a child's fatal signal; Docker reports 128+N."""
    return rc if rc >= 0 else 128 - rc


# ========================================================== container

class Container:
    """One container: its DB record, its Docker container (if any) and its
    entry in the server's in-memory manager (if any)."""

    def __init__(self, emu, name, image, image_type, role, resources):
        now = time.time_ns()
        self.emu = emu
        self.db_id = str(uuid.uuid4())
        self.name = name
        self.image = image                  # "ubuntu" or "custom:<ref>"
        self.image_type = image_type        # manager's ImageType
        self.role = role
        self.status = "creating"            # the DB status
        self.created_ns = now
        self.last_used_ns = now
        self.resources = resources
        self.deleted = False
        self.docker_id = ""
        self.docker_exists = False
        self.in_manager = False
        self.m_status = ""                  # the manager's status
        self.m_created_ns = 0
        self.m_last_used_ns = 0
        self.ip = ""
        self.dir = os.path.join(emu.root, self.db_id)
        self.jail = Jail(self.dir)
        self.hostname = name[:12]
        self.runtime = Runtime(self.dir, self.hostname, emu.layout)
        self.task = None
        # Docker serialises lifecycle operations on one container.
        self.lock = asyncio.Lock()

    @property
    def docker_name(self):
        return "rexec-%s-%s" % (self.emu.user_id, self.name)

    @property
    def running(self):
        """Docker's State.Running."""
        return self.docker_exists and self.runtime.running

    def touch(self):
        if self.in_manager:
            self.m_last_used_ns = time.time_ns()

    def container_env(self):
        """The container's Config.Env (manager.go) + the image's PATH."""
        mem = self.resources["memory_mb"]
        disk = self.resources["disk_mb"]
        return {
            "PATH": IMAGE_PATH, "HOME": HOME, "TERM": "xterm-256color",
            "SHELL": "/bin/bash",       # ImageShells["ubuntu"]; not per image
            "USER_ID": self.emu.user_id,
            "CONTAINER_NAME": self.name, "HOSTNAME": self.hostname,
            "REXEC_DISK_QUOTA": format_bytes(disk * 1024 * 1024),
            "REXEC_MEMORY_LIMIT": format_bytes(mem * 1024 * 1024),
            "REXEC_CPU_LIMIT": "%.1f" % (self.resources["cpu_shares"] / 1000.0),
        }

    def state(self):
        if self.deleted:
            return "deleted" if not self.docker_exists else "orphan"
        return self.status


def format_bytes(n):
    """manager.go formatBytes."""
    if n == 0:
        return "2G"
    if n >= 1 << 30:
        return "%dG" % (n >> 30)
    return "%dM" % (n >> 20)


# ======================================================= rate limiting

class RateLimiter:
    """middleware.RateLimiter: a fixed window per client IP."""

    def __init__(self, rate, window=60.0):
        self.rate = rate
        self.window = window
        self.visitors = {}      # ip -> [tokens, window start]

    def allow(self, ip):
        now = time.monotonic()
        v = self.visitors.get(ip)
        if v is None:
            self.visitors[ip] = [self.rate - 1, now]
            return True
        if now - v[1] >= self.window:
            v[0], v[1] = self.rate - 1, now
            return True
        if v[0] > 0:
            v[0] -= 1
            return True
        return False

    def remaining(self, ip):
        v = self.visitors.get(ip)
        return v[0] if v else self.rate

    def refusal(self):
        """The 429 the middleware writes."""
        resp = json_response(GoMap({"error": "rate limit exceeded",
                                    "retry_after": float(self.window)}), 429)
        resp.headers["X-RateLimit-Limit"] = str(self.rate)
        resp.headers["X-RateLimit-Remaining"] = "0"
        resp.headers["Retry-After"] = "1m0s"        # time.Duration.String()
        return resp


# ============================================================ emulator

class Emulator(common.Service):
    def __init__(self, args):
        super().__init__(args.root)
        self.work = tempfile.mkdtemp(prefix=".emu-", dir=self.root)
        self.volumes = os.path.join(self.root, ".volumes")
        os.makedirs(self.volumes, exist_ok=True)
        self.token = args.token
        self.delay = args.delay
        self.mode = args.mode
        self.tier = args.tier
        self.enforce_limits = args.rate_limit
        self.frontend = not args.no_frontend
        self.ws_ping = args.ws_ping
        self.ws_stats = args.ws_stats
        self.layout = HostLayout()
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        self.user_id = str(uuid.UUID(digest[:32]))
        self.username = "user-" + digest[:8]
        self.gzipped = Counter()    # route key -> answers sent gzip'd
        self.containers = []        # every Container ever created, oldest first
        self.ip_seq = 1
        self.terminals = {}         # session key -> TerminalSession
        self.limiters = {"api": RateLimiter(500), "container": RateLimiter(120),
                         "websocket": RateLimiter(100)}
        self.port = None

    # ----------------------------------------------------------- plans

    @property
    def plan(self):
        return TIERS[self.tier]

    @property
    def container_limit(self):
        return self.plan[3]

    # --------------------------------------------------------- lookups

    def records(self):
        """store.GetContainersByUserID: live (not soft-deleted) records."""
        return [c for c in self.containers if not c.deleted]

    def db_find(self, ident):
        """A record whose Docker ID or DB ID is `ident` (Get, Delete)."""
        for c in self.records():
            if (c.docker_id and c.docker_id == ident) or c.db_id == ident:
                return c
        return None

    def db_find_docker(self, docker_id):
        """A record whose Docker ID is exactly `docker_id` (Start, Stop)."""
        for c in self.records():
            if c.docker_id and c.docker_id == docker_id:
                return c
        return None

    def manager(self):
        return [c for c in self.containers if c.in_manager]

    def mgr_get(self, ident):
        """manager.GetContainer: exact Docker ID, then name, then a string of
        at least 12 chars that prefixes the ID or starts with its first 12."""
        mgr = self.manager()
        for c in mgr:
            if c.docker_id == ident:
                return c
        for c in mgr:
            if c.name == ident:
                return c
        if len(ident) >= 12:
            for c in mgr:
                if c.docker_id.startswith(ident) or ident.startswith(c.docker_id[:12]):
                    return c
        return None

    def docker_get(self, ref):
        """The Docker daemon's container lookup: full ID, name, unique ID
        prefix.  Raises DockerError like the Docker client reports it."""
        live = [c for c in self.containers if c.docker_exists]
        if ref:
            for c in live:
                if c.docker_id == ref:
                    return c
            name = ref[1:] if ref.startswith("/") else ref
            for c in live:
                if c.docker_name == name:
                    return c
            hits = [c for c in live if c.docker_id.startswith(ref)]
            if len(hits) > 1:
                raise DockerError(404, "multiple IDs found with provided prefix: " + ref)
            if hits:
                return hits[0]
        raise DockerError(404, "No such container: " + ref)

    def find_any(self, key):
        """For the control routes: name, DB ID, Docker ID (or prefix)."""
        for pool in (self.records(), self.containers):
            for c in pool:
                if key in (c.name, c.db_id) or (c.docker_id and c.docker_id == key):
                    return c
            for c in pool:
                if c.docker_id and len(key) >= 4 and c.docker_id.startswith(key):
                    return c
        return None

    # ------------------------------------------------- Docker-side work

    async def docker_create(self, c):
        """manager.CreateContainer: remove a stale container of the same
        Docker name, make the root (reusing the named volume), start it."""
        for other in list(self.containers):
            if other is not c and other.docker_exists and other.docker_name == c.docker_name:
                await self.docker_remove(other)
                other.in_manager = False
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._make_root, c)
        await c.runtime.start()
        c.docker_id = secrets.token_hex(32)
        c.docker_exists = True
        c.ip = "172.18.0.%d" % (self.ip_seq % 250 + 2)
        self.ip_seq += 1

    def _make_root(self, c):
        shutil.rmtree(c.dir, ignore_errors=True)
        os.makedirs(c.dir)
        self.layout.populate(c.dir, c.hostname)
        volume = os.path.join(self.volumes, c.docker_name)
        home = os.path.join(c.dir, "home", "user")
        if os.path.isdir(volume):
            shutil.rmtree(home)
            os.rename(volume, home)

    async def docker_stop(self, c):
        """ContainerStop: every process dies, tmpfs mounts are emptied."""
        await c.runtime.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._wipe_tmpfs, c)

    def _wipe_tmpfs(self, c):
        for d in TMPFS_DIRS:
            p = os.path.join(c.dir, d)
            if not os.path.isdir(p) or os.path.islink(p):
                continue
            for name in os.listdir(p):
                q = os.path.join(p, name)
                if os.path.isdir(q) and not os.path.islink(q):
                    shutil.rmtree(q, ignore_errors=True)
                else:
                    try:
                        os.unlink(q)
                    except OSError:
                        pass

    async def docker_start(self, c):
        if not c.runtime.running:
            await c.runtime.start()

    async def docker_remove(self, c):
        """ContainerRemove(force): the container and its root go, the named
        volume (/home/user) stays."""
        await c.runtime.stop()
        c.docker_exists = False
        await asyncio.get_running_loop().run_in_executor(None, self._drop_root, c)

    def _drop_root(self, c):
        home = os.path.join(c.dir, "home", "user")
        volume = os.path.join(self.volumes, c.docker_name)
        if os.path.isdir(home) and not os.path.islink(home):
            shutil.rmtree(volume, ignore_errors=True)
            os.rename(home, volume)
        shutil.rmtree(c.dir, ignore_errors=True)

    async def docker_exec(self, c, argv, env=None, workdir=HOME, user="",
                          stdin=None, stdout=None, stderr=None):
        """Create + start a Docker exec in container `c`."""
        if not c.running:
            raise DockerError(409, "container %s is not running" % c.docker_id)
        full_env = c.container_env()
        for item in env or ():
            k, sep, v = item.partition("=")
            if sep:
                full_env[k] = v
        uid = gid = None
        if user:
            uid, gid = self._lookup_user(c, user)
        return await c.runtime.spawn(argv, full_env, workdir or HOME, uid, gid,
                                     stdin=stdin, stdout=stdout, stderr=stderr)

    def _lookup_user(self, c, user):
        name, _, group = user.partition(":")
        uid = gid = None
        if name.isdigit():
            uid = int(name)
        for line in _read_db(c, "/etc/passwd"):
            if line[0] == name or (uid is not None and line[2:3] == [str(uid)]):
                uid, gid = int(line[2]), int(line[3])
                break
        if uid is None:
            raise _ExecStartError("unable to find user %s: no matching entries "
                                  "in passwd file" % name)
        if group:
            if group.isdigit():
                gid = int(group)
            else:
                for line in _read_db(c, "/etc/group"):
                    if line[0] == group:
                        gid = int(line[2])
                        break
                else:
                    raise _ExecStartError("unable to find group %s: no matching "
                                          "entries in group file" % group)
        return uid, gid if gid is not None else 0

    async def manager_start(self, c, docker_id):
        """manager.StartContainer (caller holds c.lock): the error text, or
        None once the container runs and the manager says "running"."""
        if not (c.in_manager and c.docker_id == docker_id):
            return "container not found: " + docker_id
        if not c.docker_exists:
            return ("failed to start container: Error response from daemon: "
                    "No such container: " + docker_id)
        try:
            await self.docker_start(c)
        except Exception as e:  # noqa: BLE001
            return "failed to start container: %s" % e
        c.m_status = "running"
        c.m_last_used_ns = time.time_ns()
        return None

    def containers_by_docker_id(self, docker_id):
        """The Docker container with exactly this ID (inspect), or None."""
        for c in self.containers:
            if c.docker_exists and c.docker_id == docker_id:
                return c
        return None

    def decorate(self, request, resp):
        """Headers set by middlewares before the handler wrote its response:
        the rate-limit counters and gin-contrib/gzip."""
        for k, v in request.get("rl_headers", {}).items():
            resp.headers[k] = v
        if "gzip" in request.headers.get("Accept-Encoding", "") \
                and not request.path.startswith("/ws/") \
                and "Upgrade" not in request.headers.get("Connection", "") \
                and "text/event-stream" not in request.headers.get("Accept", ""):
            if "Vary" not in resp.headers:      # once an answer
                self.gzipped[common.route_key(request)] += 1
            resp.headers["Vary"] = "Accept-Encoding"
            resp.enable_compression(web.ContentCoding.gzip)

    # -------------------------------------------------------- lifecycle

    def launch(self, c, coro):
        c.task = asyncio.create_task(coro)

    async def create_flow(self, c, custom_ref):
        """createContainerAsync: pull, create (-> "configuring", Docker ID),
        setup (-> "running")."""
        await asyncio.sleep(self.delay)                     # pulling
        if custom_ref and "nonexistent" in custom_ref:
            c.status = "error"
            return
        try:
            async with c.lock:
                await self.docker_create(c)
        except Exception as e:  # noqa: BLE001 - any failure is an "error"
            log("container %s failed to start: %s" % (c.db_id, e))
            c.status = "error"
            return
        now = time.time_ns()
        c.in_manager = True
        c.m_status = "configuring"
        c.m_created_ns = c.m_last_used_ns = now
        if not c.deleted:
            c.status = "configuring"
        if c.role != "barebone":
            await asyncio.sleep(self.delay)                 # shell/role setup
        # The setup goroutine marks the container running whatever happened
        # to it meanwhile (even if it was stopped).
        if c.in_manager:
            c.m_status = "running"
        if not c.deleted:
            c.status = "running"

    async def shutdown(self):
        for sess in list(self.terminals.values()):
            await sess.abort()
        for c in self.containers:
            if c.task:
                c.task.cancel()
            await c.runtime.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def client_ip(self, request):
        """gin's ClientIP with its defaults (every proxy trusted)."""
        xff = request.headers.get("X-Forwarded-For", "")
        if xff:
            items = [i.strip() for i in xff.split(",")]
            if items and all(_is_ip(i) for i in items):
                return items[0]
        real = request.headers.get("X-Real-IP", "").strip()
        if real and _is_ip(real):
            return real
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return peer[0] if peer else "127.0.0.1"

    def check_token(self, request, websocket):
        """AuthMiddleware.  Returns None (authorised) or the 401 response."""
        token = ""
        parts = request.headers.get("Authorization", "").split()
        if len(parts) >= 2 and parts[0].lower() == "bearer":
            token = parts[1]
        if not token and websocket:
            for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
                proto = proto.strip()
                if proto.startswith("rexec.token.") and proto[len("rexec.token."):]:
                    token = proto[len("rexec.token."):]
                    break
            if not token:
                token = request.query.get("token", "")
        if not token:
            return error(401, "Authorization token required")
        if token == self.token:
            return None
        if token.startswith("rexec_"):
            return error(401, "Invalid or expired API token")
        return error(401, "Invalid or expired token")


class _ExecStartError(Exception):
    """An exec that Docker creates but cannot start (OCI error on stdout)."""


def _read_db(c, path):
    try:
        with open(c.jail.host(path), encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.count(":") >= 3]
    except OSError:
        return []


def _is_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def is_websocket_upgrade(request):
    """websocket.IsWebSocketUpgrade."""
    def has(name, token):
        return any(t.strip().lower() == token
                   for t in request.headers.get(name, "").split(","))
    return has("Connection", "upgrade") and has("Upgrade", "websocket")

"""The test emulators of the remote providers, as the tests start and
drive them (tests/emulators/): one per state directory, its environment for
a daemon, its control routes (faults, stats), and the engine for docker.
helpers.py re-exports all of it."""

import http.client
import os
import signal
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every subprocess gets a timeout (helpers.TIMEOUT too).
TIMEOUT = 60


def provider_base(provider):
    """The provider's name without its server variant: "rexec@old" is the
    rexec provider mounted against an emulator in its "old" mode."""
    return provider.split("@", 1)[0]


def provider_variant(provider):
    """The server variant of "NAME@VARIANT", or None."""
    return provider.split("@", 1)[1] if "@" in provider else None


def run(args, timeout=TIMEOUT, check=True):
    """args run to the end, its output kept; CalledProcessError if it
    failed and check is set."""
    return subprocess.run(args, timeout=timeout, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


# Providers that talk to a service, and the emulator that plays it.
REMOTE = {
    "daytona": "daytona.py",
    "docker": "engine.py",
    "microsandbox": "microsandbox.py",
    "rexec": "rexec.py",
    "vtrix": "vtrix.py",
}

# The image engine.py makes, from which the docker provider's mounts
# create their containers (-o image=...).
ENGINE_IMAGE = "localhost/sbxfs-busybox:latest"


def provider_opts(provider, extra=()):
    """The -o options a mount of provider needs besides extra (which
    win): the docker provider's image."""
    if provider_base(provider) == "docker" and \
            not any(o.startswith("image=") for o in extra):
        return ["image=" + ENGINE_IMAGE]
    return []


def is_remote(provider):
    return provider_base(provider) in REMOTE


# Seconds per lifecycle step of an emulated service (create, start, stop).
EMULATOR_DELAY = "0.05"


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (urllib has no such transport)."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def short_path(path):
    """A short name for the directory `path` (made if missing): a symlink
    in /tmp.  msb refuses an MSB_HOME whose agent socket path would not
    fit in a sockaddr_un (108 bytes), which a test's own tmp dir may
    pass."""
    import hashlib
    os.makedirs(path, exist_ok=True)
    link = "/tmp/sbxfs-msb-" + hashlib.sha1(os.fsencode(path)).hexdigest()[:12]
    if os.path.islink(link) and os.readlink(link) == path:
        return link
    tmp = "%s.%d" % (link, os.getpid())
    os.symlink(path, tmp)
    os.replace(tmp, link)
    return link


class Emulator:
    """A provider's service emulator on a random loopback port.

    One per state directory, like a local provider's sandboxes: a remount
    on the same state dir finds the same sandboxes.

    The docker provider's is a real engine (tests/emulators/engine.py:
    Podman behind a counting proxy) on a Unix socket, `socket`; the same
    /_emu/ routes are served there.
    """

    API_KEY = "dtn_" + "5bf0" * 16
    TOKEN = "rx_" + "c0de" * 12           # rexec and vtrix bearer tokens
    MSB_KEY = "msb_" + "cafe" * 12        # the microsandbox cloud's API key
    PROJECT = "proj-7f3e"                 # vtrix X-Project-ID
    USER = "user-42"                      # vtrix sandbox owner

    def __init__(self, provider, root):
        self.provider = provider_base(provider)
        self.variant = provider_variant(provider)
        self.root = str(root)
        self.log_path = self.root + ".log"
        self.proc = None
        self.port = None
        self.socket = None      # the engine's Unix socket (docker)
        self.home = None        # MSB_HOME, a short link to root (microsandbox)
        self.ca_file = None     # the certificate it serves TLS with, if any

    @property
    def engine(self):
        """True for a real engine on a Unix socket rather than an emulator
        on a port."""
        return self.provider == "docker"

    def start(self, *extra):
        os.makedirs(self.root, exist_ok=True)
        if "--tls-cert" in extra:
            self.ca_file = extra[list(extra).index("--tls-cert") + 1]
        script = os.path.join(REPO, "tests", "emulators", REMOTE[self.provider])
        if self.provider == "microsandbox":
            self.home = short_path(self.root)
        if self.engine:
            argv = ["--root", self.root] + list(extra)
        else:
            # Lifecycle steps as fast as they may be: a test that watches
            # the states in between asks for a longer --delay itself.
            if "--delay" not in extra:
                extra = ("--delay", EMULATOR_DELAY) + tuple(extra)
            argv = ["--root", self.home or self.root, "--port", "0"] + \
                self.credential_args() + list(extra)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["/usr/bin/python3", script] + argv,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True)
        line = b""
        # An engine imports its image and starts Podman first.
        deadline = time.monotonic() + (120 if self.engine else 30)
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            b = self.proc.stdout.read(1)
            if not b:
                break
            line += b
        ready = line.strip()
        if self.engine:
            ready = os.fsdecode(ready)
            ok = ready.startswith("/") and os.path.exists(ready)
        else:
            ok = ready.isdigit()
        if not ok:
            self.stop()
            raise AssertionError("emulator %s did not start: %r\n%s"
                                 % (script, line, self.log_tail()))
        if self.engine:
            self.socket = ready
        else:
            self.port = int(ready)
        EMULATORS.append(self)
        return self

    def credential_args(self):
        """What the emulator accepts, and its server variant."""
        if self.provider == "daytona":
            return ["--api-key", self.API_KEY]
        if self.provider == "rexec":
            return ["--token", self.TOKEN, "--mode", self.variant or "new"]
        if self.provider == "vtrix":
            return ["--token", self.TOKEN, "--project", self.PROJECT]
        if self.provider == "microsandbox" and self.variant == "cloud":
            return ["--cloud-key", self.MSB_KEY]
        if self.provider in ("docker", "microsandbox"):
            return []
        raise ValueError("no emulator for " + self.provider)

    def url(self, path=""):
        if self.engine:
            return "unix://" + self.socket
        scheme = "https" if self.ca_file else "http"
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def env(self):
        """Environment for a daemon that uses this emulator."""
        e = dict(os.environ)
        if self.provider == "daytona":
            e["DAYTONA_API_URL"] = self.url("/api")
            e["DAYTONA_API_KEY"] = self.API_KEY
        elif self.provider == "rexec":
            e["REXEC_URL"] = self.url()
            e["REXEC_TOKEN"] = self.TOKEN
        elif self.provider == "vtrix":
            e["VTRIX_URL"] = self.url()
            e["VTRIX_TOKEN"] = self.TOKEN
            e["VTRIX_PROJECT_ID"] = self.PROJECT
            e["VTRIX_USER_ID"] = self.USER
        elif self.provider == "docker":
            e["DOCKER_HOST"] = self.url()
        elif self.provider == "microsandbox":
            # The fake msb first on PATH, its home this emulator's state.
            e["PATH"] = os.path.join(REPO, "tests", "emulators", "bin") + \
                os.pathsep + e.get("PATH", "")
            e["MSB_HOME"] = self.home
            if self.variant == "cloud":
                # The cloud backend: REST and the agent WebSocket, no msb.
                e["MSB_BACKEND"] = "cloud"
                e["MSB_API_URL"] = self.url()
                e["MSB_API_KEY"] = self.MSB_KEY
        return e

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One HTTP request to the engine's socket (docker), counted like
        the daemon's: (status, headers, body bytes).  A dict or list body
        is sent as JSON."""
        import json
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        conn = _UnixHTTPConnection(self.socket, timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def podman(self, *args, timeout=TIMEOUT, check=True):
        """Run the podman client on the engine's socket (docker), as
        another user of the engine would: its requests are counted."""
        return run(["podman", "--remote", "--url", self.url()] + list(args),
                   timeout=timeout, check=check)

    def control(self, method, path, body=None):
        """Call one of the emulator's /_emu routes; returns parsed JSON."""
        import json
        import urllib.request
        if self.engine:
            status, headers, text = self.request(method, path, body)
            if status >= 400:
                import io
                import urllib.error
                raise urllib.error.HTTPError(self.url() + path, status,
                                             text.decode(errors="replace"),
                                             headers, io.BytesIO(text))
            return json.loads(text) if text else None
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers={"Content-Type":
                                              "application/json"})
        tls = None
        if self.ca_file:
            import ssl
            tls = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen(req, timeout=30, context=tls) as r:
            text = r.read()
        return json.loads(text) if text else None

    def stats(self):
        return self.control("GET", "/_emu/stats")

    def reset_stats(self):
        self.control("POST", "/_emu/reset")

    def fault(self, **kw):
        self.control("POST", "/_emu/fault", kw)

    def clear_faults(self):
        self.control("POST", "/_emu/fault/clear")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                # An engine stops its containers and Podman first.
                self.proc.wait(60 if self.engine else 15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        self.proc.stdout.close()
        if self in EMULATORS:
            EMULATORS.remove(self)

    def log_tail(self, limit=6000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


EMULATORS = []
_EMULATOR_BY_STATE = {}


def emulator_for(provider, state_dir):
    """The emulator serving mounts on state_dir, started on first use."""
    key = (provider, os.path.realpath(state_dir))
    emu = _EMULATOR_BY_STATE.get(key)
    if emu is None or not emu.alive():
        emu = Emulator(provider, str(state_dir).rstrip("/") + "-emu").start()
        _EMULATOR_BY_STATE[key] = emu
    return emu


def start_emulator(provider, state_dir, *flags):
    """Start an emulator with extra flags for mounts on state_dir."""
    key = (provider, os.path.realpath(state_dir))
    emu = Emulator(provider, str(state_dir).rstrip("/") + "-emu").start(*flags)
    _EMULATOR_BY_STATE[key] = emu
    return emu


def count(stats, *routes):
    """Requests of an emulator's stats on these routes; all of them if none."""
    if not routes:
        return stats["total"]
    return sum(stats["routes"].get(r, 0) for r in routes)


def backing(emu, box, *parts):
    """Path of a file in the emulator's directory for the sandbox."""
    d = emu.control("GET", "/_emu/sandbox/" + box.name)["dir"]
    return os.path.join(d, *[p.lstrip("/") for p in parts])


def stop_emulators():
    for emu in list(EMULATORS):
        emu.stop()
    _EMULATOR_BY_STATE.clear()

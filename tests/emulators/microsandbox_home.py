"""The microsandbox emulator's MSB_HOME (see microsandbox.py's docstring):
its layout, the emulator's state files under emu/ (config, records, state,
the request log, the fault table) and the small helpers every part of the
emulator shares.  No aiohttp, no cbor2: the fake `msb` imports it."""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import sys
import time

VERSION = "0.7.2"
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "microsandbox.py")   # the entry script (`sandbox` mode)
LIVE = ("Starting", "Running", "Paused", "Draining")
FAULT_KINDS = ("drop", "slow", "silent", "error", "unready", "garbage", "oversize",
               "crash")
DEFAULT_CONFIG = {"delay": 0.05, "generation": 7, "split": False, "hub_pid": None,
                  "hub_start": None}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def iso_ns(ns):
    """chrono's RFC 3339 with nanoseconds, as msb prints created_at."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10 ** 9)) + \
        ".%09d+00:00" % (ns % 10 ** 9)


def proc_start(pid):
    """The start time of a running process (to tell a reused pid apart);
    None once it is gone or a zombie (its reaper may be slow)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid, start):
    return bool(pid) and start is not None and proc_start(pid) == start


def write_json(path, data):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


# ============================================================ MSB_HOME

class Home:
    """MSB_HOME: the real layout (run/, sandboxes/) plus the emulator's emu/."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.emu = os.path.join(self.path, "emu")
        self._log_fd = None
        self._faults_key = None
        self._faults = []

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def ensure(self):
        for d in ("emu/sandboxes", "run/sandboxes", "run/agent", "sandboxes"):
            os.makedirs(self.p(d), exist_ok=True)

    def config(self):
        return dict(DEFAULT_CONFIG, **read_json(self.p("emu", "config.json"), {}))

    # ------------------------------------------------------------ sandboxes

    def sdir(self, name):
        return self.p("emu", "sandboxes", name)

    def names(self):
        try:
            return [n for n in os.listdir(self.p("emu", "sandboxes"))
                    if os.path.exists(os.path.join(self.sdir(n), "record.json"))]
        except OSError:
            return []

    def record(self, name):
        if not valid_name(name):
            return None
        return read_json(os.path.join(self.sdir(name), "record.json"))

    def state(self, name):
        return read_json(os.path.join(self.sdir(name), "state.json"), {})

    def status(self, name):
        st = self.state(name)
        s = st.get("status", "Stopped")
        if s in LIVE and not alive(st.get("pid"), st.get("start")):
            return "Crashed"
        return s

    def sockets(self, name):
        """(dir of agent.sock and control.sock, the two run/agent links)."""
        digest = hashlib.sha256(name.encode()).hexdigest()
        legacy = self.p("run", "agent", digest[:32])
        return (self.p("run", "sandboxes", digest[:24]),
                (legacy + ".sock", legacy + ".control.sock"))

    # ------------------------------------------------------------ requests

    def count(self, key):
        """One line in requests.log (O_APPEND: one atomic write per line)."""
        if self._log_fd is None:
            self._log_fd = os.open(self.p("emu", "requests.log"),
                                   os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                   0o644)
        os.write(self._log_fd, (key + "\n").encode())

    @contextlib.contextmanager
    def locked(self, *parts):
        """flock on the file emu/PARTS (created if need be)."""
        fd = os.open(self.p("emu", *parts), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _faults_now(self):
        """The armed faults, re-read only when faults.json changed."""
        path = self.p("emu", "faults.json")
        try:
            st = os.stat(path)
        except OSError:
            return []
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key != self._faults_key:
            self._faults = read_json(path, [])
            self._faults_key = key
        return self._faults

    @staticmethod
    def _matches(f, key, kinds):
        if f.get("count", 0) <= 0:
            return False
        if kinds is None:
            return f["kind"] != "unready" and key.startswith(f.get("prefix") or "")
        return f["kind"] in kinds

    def take_fault(self, key, kinds=None):
        """The first armed fault for request `key` (one use taken), or None."""
        if not any(self._matches(f, key, kinds) for f in self._faults_now()):
            return None
        with self.locked("faults.lock"):
            faults = read_json(self.p("emu", "faults.json"), [])
            for f in faults:
                if self._matches(f, key, kinds):
                    f["count"] -= 1
                    write_json(self.p("emu", "faults.json"), faults)
                    return dict(f)
        return None

    def set_faults(self, change):
        with self.locked("faults.lock"):
            faults = change(read_json(self.p("emu", "faults.json"), []))
            write_json(self.p("emu", "faults.json"), faults)
            return faults


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def valid_name(name):
    return len(name.encode()) <= 128 and NAME_RE.fullmatch(name) is not None

"""Shared helpers for the sbxfs mount-level tests.

Everything here talks to a real mount.  Every subprocess gets a timeout so a
hung daemon fails a test instead of blocking the run; blocking reads done from
Python go through read_all(), which gives up after a deadline.
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Default bound for one tool invocation.  Generous: it only exists so that a
# hang becomes a failure.
TIMEOUT = 60

# What a ctl line may be before the daemon must refuse it.
CTL_LIMIT = 64 * 1024

ISO_UTC = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]00:?00)\b")


def sbxfs_binary():
    """Path of the daemon under test: $SBXFS, else build/sbxfs in the repo."""
    path = os.environ.get("SBXFS") or os.path.join(REPO, "build", "sbxfs")
    return os.path.abspath(path)


# ---------------------------------------------------------------- processes

def run(args, timeout=TIMEOUT, check=True, input=None, cwd=None, env=None):
    """Run a command (list, or a string for /bin/sh -c) and capture output.

    Output is bytes.  With check=True a non-zero exit raises AssertionError
    that carries the command's stdout and stderr.
    """
    shell = isinstance(args, str)
    try:
        cp = subprocess.run(args, shell=shell, input=input, cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("command timed out after %ss: %r\nstdout: %r\n"
                             "stderr: %r" % (timeout, args, e.stdout, e.stderr))
    if check and cp.returncode != 0:
        raise AssertionError("command failed (exit %d): %r\nstdout: %r\n"
                             "stderr: %r" % (cp.returncode, args, cp.stdout,
                                             cp.stderr))
    return cp


def sh(script, timeout=TIMEOUT, check=True, cwd=None, input=None):
    """Run a shell snippet with /bin/sh; returns CompletedProcess (bytes)."""
    return run(["/bin/sh", "-c", script], timeout=timeout, check=check,
               cwd=cwd, input=input)


def q(s):
    """Quote a str or bytes path for /bin/sh."""
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    return "'" + s.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------- errno

def errno_of(fn, *args, **kwargs):
    """Call fn; return 0 if it succeeded, else the OSError's errno."""
    try:
        fn(*args, **kwargs)
    except OSError as e:
        return e.errno
    return 0


def ename(n):
    return "OK" if n == 0 else errno.errorcode.get(n, str(n))


def write_once(path, data, flags=os.O_WRONLY | os.O_TRUNC):
    """Open, write data in ONE write(2), close.  Returns 0 or the errno.

    This is what `echo ... > file` does.  An error from open, write or close
    is returned.  A short write is reported as an AssertionError because the
    control-file protocol relies on one write per message.
    """
    if isinstance(data, str):
        data = data.encode()
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return e.errno
    try:
        try:
            n = os.write(fd, data)
        except OSError as e:
            return e.errno
        assert n == len(data), "short write to %s: %d of %d" % (path, n,
                                                                  len(data))
    finally:
        try:
            os.close(fd)
        except OSError as e:
            return e.errno
    return 0


def write_ok(path, data):
    n = write_once(path, data)
    assert n == 0, "write %r to %s: %s" % (data, path, ename(n))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_text(path):
    return read_bytes(path).decode("utf-8", "replace")


def read_all(fd, timeout=TIMEOUT, limit=64 << 20):
    """Read fd to EOF in a helper thread; fail if it takes past timeout.

    The thread cannot be cancelled; if it is still blocked the fd is left
    open (the caller must not close it) and the mount teardown unblocks it.
    """
    out = []
    err = []

    def reader():
        try:
            total = 0
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                out.append(b)
                total += len(b)
                if total > limit:
                    raise AssertionError("more than %d bytes" % limit)
        except BaseException as e:  # reported to the caller
            err.append(e)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("read did not reach EOF within %ss; got so far %r"
                             % (timeout, b"".join(out)[-2000:]))
    if err:
        raise err[0]
    return b"".join(out)


def cat(path, timeout=TIMEOUT):
    """Read a (possibly blocking) file with the real cat tool."""
    return run(["cat", path], timeout=timeout).stdout


def wait_for(pred, timeout=30, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; fail after timeout.

    Used to wait for asynchronous state changes; never to judge speed.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
        except OSError as e:
            last = e
            if time.monotonic() > deadline:
                raise
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s (last: %r)"
                                 % (what, last))
        time.sleep(interval)



def settle(box):
    """Wait for what a provider opens in the background after a command
    (docker's next spare shells, status line "shells") to be open, so that
    its requests are not counted as the next operation's."""
    def opening():
        m = re.search(r"spares: \d+ ready, (\d+) opening", read_text(box.p("status")))
        return int(m.group(1)) if m else 0
    wait_for(lambda: opening() == 0, what="the spare shells to open")

def procs_with(marker):
    """Host pids whose command line contains marker (bytes or str)."""
    if isinstance(marker, str):
        marker = marker.encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def sleeping(marker):
    """Host pids of `sleep MARKER` processes themselves (not their shells)."""
    pids = []
    for pid in procs_with(marker):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"sleep":
            pids.append(pid)
    return pids


def wait_sleeping(marker, timeout=30):
    """Wait until `sleep MARKER` runs (the command got that far)."""
    return wait_for(lambda: sleeping(marker), timeout,
                    what="sleep %s to start" % marker)


def wait_no_procs(marker, timeout=30):
    """Wait until no process on the host has marker in its command line."""
    wait_for(lambda: not procs_with(marker), timeout,
             what="processes running %r to be gone" % marker)


_marker_counter = [0]


def sleep_marker(base=300):
    """A unique `sleep` duration, so its processes can be found on the host."""
    _marker_counter[0] += 1
    return "%d.%d%05d" % (base, os.getpid() % 100000, _marker_counter[0])


def parse_kv(text):
    """Parse "key value" lines into a dict (value may contain spaces)."""
    d = {}
    for line in text.splitlines():
        if not line:
            continue
        k, _, v = line.partition(" ")
        d[k] = v
    return d


# ---------------------------------------------------------------- machine

def fuse_unavailable():
    """A reason the machine cannot mount FUSE, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not accessible to uid %d" % os.getuid()
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed"
    return None


_bwrap_reason = []


def bwrap_unavailable():
    """A reason bubblewrap sandboxes cannot run here, or None (cached)."""
    if not _bwrap_reason:
        reason = None
        bw = shutil.which("bwrap")
        if not bw:
            reason = "bubblewrap (bwrap) is not installed"
        else:
            try:
                cp = subprocess.run(
                    [bw, "--unshare-all", "--ro-bind", "/", "/", "--proc",
                     "/proc", "--dev", "/dev", "true"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    timeout=30)
                if cp.returncode != 0:
                    reason = ("bwrap cannot create namespaces here: %s"
                              % cp.stderr.decode(errors="replace").strip())
            except subprocess.TimeoutExpired:
                reason = "bwrap test run timed out"
        _bwrap_reason.append(reason)
    return _bwrap_reason[0]


_engine_reason = []


def engine_unavailable():
    """A reason the docker provider's engine (Podman, tests/emulators/
    engine.py) cannot run here, or None (cached)."""
    if not _engine_reason:
        reason = None
        missing = [p for p in ("podman", "runc", "conmon")
                   if not shutil.which(p)]
        if missing:
            reason = "%s not installed (Debian: apt-get install podman " \
                     "runc busybox-static)" % ", ".join(missing)
        elif not os.access("/bin/busybox", os.X_OK):
            reason = "/bin/busybox is not installed (Debian: busybox-static)"
        elif os.getuid() != 0:
            reason = "the test engine runs Podman as root"
        _engine_reason.append(reason)
    return _engine_reason[0]


def require_sandboxes(provider):
    """Skip the calling test when the provider's sandboxes cannot run here.

    The local provider runs them with bubblewrap, and so do the emulators
    of the remote providers; the docker provider's run in Podman.
    """
    if provider_base(provider) == "docker":
        reason = engine_unavailable()
    else:
        reason = bwrap_unavailable()
    if reason:
        import pytest
        pytest.skip(reason)


# What each provider cannot do, as docs/providers.md lists it: tests of
# these features skip on that provider, with the documented reason.
UNSUPPORTED = {
    "daytona": {
        "symlink": "Daytona's file API follows symlinks and cannot make them",
        "stdin_eof": "Daytona's input call cannot close a command's stdin",
        "link_counts": "Daytona's file API reports no link counts",
        "nlink": "Daytona's file API reports neither link counts nor inode "
                 "numbers",
        "binary_stdin": "Daytona's input call carries text, not bytes",
        "non_utf8": "Daytona's file API turns names that are not UTF-8 into U+FFFD",
        "stopped_files": "a stopped Daytona sandbox has no toolbox to serve files",
        "atime": "Daytona's file API reports no access time",
        "special_files": "Daytona's file API cannot make fifos or devices",
        "exit_signal": "a command's exit code cannot tell a signal from "
                       "exit 128+N, and the session shell notes the signal",
        "image_host": "the local provider's image=host layout",
        "isolation": "the local provider's namespaces; remote sandboxes are "
                     "isolated by their service",
        "huge_files": "files move whole: a 5 GiB file is a 5 GiB transfer, "
                      "past the default cache_max",
    },
    "rexec": {
        "exit_signal": "a command's exit status comes from its shell's $?, "
                       "which cannot tell a signal from exit 128+N",
        "dot_names": "Rexec container names are [A-Za-z0-9_-]: the server "
                     "refuses names with '.'",
        "nlink": "inode numbers are not shown: a new file's inode in the "
                 "container is known only after its upload",
        "stopped_files": "Rexec's file endpoints and exec need a running "
                         "container",
        "image_host": "the local provider's image=host layout",
        "isolation": "the local provider's namespaces; remote sandboxes are "
                     "isolated by their service",
        "huge_files": "files move whole: a 5 GiB file is a 5 GiB transfer "
                      "(in 100 MiB uploads), past the default cache_max",
    },
    "vtrix": {
        "stdin_eof": "Vtrix writes a command's stdin before it starts and has "
                     "no call to write more or close it later",
        "binary_stdin": "Vtrix takes no stdin after the start",
        "stdin_after_start": "Vtrix takes no stdin after the start",
        "stopped_files": "a stopped Vtrix sandbox answers no file calls",
        "nlink": "a file created through the mount has no inode number until "
                 "it is on the server, so a hard link made to it before it is "
                 "looked up again is a separate inode for the kernel",
        "exit_signal": "a command's exit code cannot tell a signal from "
                       "exit 128+N",
        "image_host": "the local provider's image=host layout",
        "isolation": "the local provider's namespaces; remote sandboxes are "
                     "isolated by their service",
        "huge_files": "files move whole in one write_binary message: a 5 GiB "
                      "file cannot be sent",
    },
    # TODO(docker): fill in once the provider runs the suite.  Candidates:
    # "exit_signal" (an exec's ExitCode is 128+N for a signal, as a shell
    # makes it), "stopped_files" (a stopped container's root/ is served
    # read-only through the archive API: no writes, no listing scripts;
    # the test image has no /usr either), "nlink", "atime",
    # "special_files", "huge_files" (a file is one tar stream each way),
    # "non_utf8", "symlink", "stdin_eof", "binary_stdin".
    "docker": {
        "image_host": "the local provider's image=host layout",
        "isolation": "the local provider's namespaces; containers are "
                     "isolated by their engine",
        "exit_signal": "a command's exit status is the engine's ExitCode, "
                       "which cannot tell a signal from exit 128+N",
        "stopped_files": "a stopped container's files are read-only: the "
                         "archive API answers, exec does not",
        "readonly_usr": "a container's /usr is its image's, as writable as "
                        "the rest",
        "nlink": "inode numbers are not shown: a hard link's names are two "
                 "inodes for the kernel until the attribute timeout",
        "huge_files": "files move whole: a 5 GiB file is a 5 GiB transfer, "
                      "past the default cache_max",
        "host_tools": "the test image is busybox: a command's messages are "
                      "busybox's, not the host's",
        "ns_times": "the test image is busybox: its stat and touch know "
                    "whole seconds only",
    },
    "microsandbox": {
        "nlink": "the agent's file entries carry neither link counts nor "
                 "inode numbers",
        "link_counts": "the agent's file entries carry no link counts",
        "ns_times": "the agent's file entries carry times in whole seconds",
        "stopped_files": "a stopped microVM has no agent to serve its files",
        "image_host": "the local provider's image=host layout",
        "isolation": "the local provider's namespaces; a microsandbox "
                     "sandbox is a microVM",
        "exit_signal": "the agent reports a death by a signal as -1 without "
                       "the signal: a command's status comes from the shell "
                       "around it, which cannot tell a signal from exit 128+N",
        "huge_files": "files move whole: a 5 GiB file is a 5 GiB transfer, "
                      "past the default cache_max",
    },
}


# Providers whose sandboxes are running as soon as they exist.
CREATES_RUNNING = {"daytona", "docker", "microsandbox", "rexec", "vtrix"}


from emulator_ctl import provider_base, provider_variant  # noqa: E402


def initial_state(provider):
    """The state of a sandbox right after `new` or mkdir."""
    return ("running" if provider_base(provider) in CREATES_RUNNING
            else "stopped")


def unsupported(provider, feature):
    """The documented reason provider cannot do feature, or None."""
    return UNSUPPORTED.get(provider_base(provider), {}).get(feature)


def require(provider, *features):
    """Skip the calling test if the provider cannot do one of features."""
    for f in features:
        why = unsupported(provider, f)
        if why:
            import pytest
            pytest.skip("%s: %s" % (provider, why))


# ---------------------------------------------------------------- the daemon

def is_mounted(path):
    """True if path is a mount point, even one whose daemon died.

    os.path.ismount() stats the path, which fails with ENOTCONN on a dead
    FUSE mount; /proc/self/mounts still lists it.
    """
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                mp = line.split(" ")[1]
                mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                            mp)
                if mp == path:
                    return True
    except OSError:
        return os.path.ismount(path)
    return False


def unmount(path):
    """fusermount3 -u, retried while busy, then -uz; never raises."""
    deadline = time.monotonic() + 10
    while is_mounted(path):
        cp = subprocess.run(["fusermount3", "-u", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=30)
        if cp.returncode == 0:
            break
        if time.monotonic() > deadline:
            subprocess.run(["fusermount3", "-uz", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
            break
        time.sleep(0.2)


# Mounts currently started, so that conftest can attach their logs to failed
# test reports and the watchdog can find them.
LIVE_MOUNTS = []


# ---------------------------------------------------------------- emulators

from emulator_ctl import (  # noqa: E402,F401 - re-exported for the tests
    EMULATOR_DELAY, EMULATORS, ENGINE_IMAGE, REMOTE, Emulator, backing, count,
    emulator_for, is_remote, provider_opts, short_path, start_emulator,
    stop_emulators)


def make_certificate(d):
    """A self-signed certificate for 127.0.0.1 in directory d: (cert, key)
    paths (openssl)."""
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   timeout=60)
    return cert, key


def put(path, data):
    """Write data (str or bytes) to path, replacing what was there."""
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


class Mount:
    """One sbxfs daemon running in the foreground on a mount point."""

    def __init__(self, path, state_dir, log_path, provider="local",
                 extra_opts=()):
        self.path = str(path)
        self.state_dir = str(state_dir)
        self.log_path = str(log_path)
        self.provider = provider
        self.extra_opts = list(extra_opts)
        self.binary = sbxfs_binary()
        self.proc = None
        self.exit_codes = []
        self.emulator = None
        os.makedirs(self.path, exist_ok=True)
        os.makedirs(self.state_dir, exist_ok=True)

    # -- paths
    def p(self, *parts):
        return os.path.join(self.path, *parts)

    @property
    def ctl(self):
        return self.p("ctl")

    # -- life
    def argv(self):
        args = [self.binary, "-f"]
        if os.environ.get("SBXFS_DEBUG"):
            args.append("-d")
        args += ["-o", "state_dir=" + self.state_dir,
                 "-o", "provider=" + provider_base(self.provider)]
        for o in provider_opts(self.provider, self.extra_opts) + \
                self.extra_opts:
            args += ["-o", o]
        args.append(self.path)
        return args

    def start(self, timeout=30):
        assert self.proc is None or self.proc.poll() is not None
        assert not is_mounted(self.path), "%s already mounted" % self.path
        env = None
        if is_remote(self.provider):
            self.emulator = emulator_for(self.provider, self.state_dir)
            env = self.emulator.env()
        with open(self.log_path, "ab") as log:
            log.write(("=== %s\n" % " ".join(self.argv())).encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env,
                                         start_new_session=True)
        if self not in LIVE_MOUNTS:
            LIVE_MOUNTS.append(self)
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None:
                if self in LIVE_MOUNTS:
                    LIVE_MOUNTS.remove(self)
                raise AssertionError(
                    "sbxfs exited with %s before mounting\n%s"
                    % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                self._kill()
                raise AssertionError("sbxfs did not mount within %ss\n%s"
                                     % (timeout, self.log_tail()))
            time.sleep(0.02)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """Unmount and wait for the daemon to exit; returns its exit code."""
        if self.proc is None:
            unmount(self.path)
            return None
        unmount(self.path)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            rc = None
        if self in LIVE_MOUNTS:
            LIVE_MOUNTS.remove(self)
        self.exit_codes.append(rc)
        return rc

    def _kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        unmount(self.path)

    def remount(self):
        """Unmount and mount again on the same state dir."""
        rc = self.stop()
        assert rc == 0, "sbxfs exited with %r on unmount\n%s" % (
            rc, self.log_tail())
        return self.start()

    # -- log
    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset, limit=20000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return ""
        if len(data) > limit:
            data = b"[...]\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def log_tail(self, limit=8000):
        return self.log_since(max(0, self.log_size() - limit), limit)

    # -- convenience
    def names(self):
        return sorted(n for n in os.listdir(self.path) if n != "ctl")

    def ctl_info(self):
        return read_text(self.ctl)

    def still_works(self):
        """Assert the daemon is alive and answers basic requests."""
        assert self.alive(), "sbxfs died (exit %s)\n%s" % (
            self.proc.returncode, self.log_tail())
        assert os.path.ismount(self.path)
        os.listdir(self.path)
        info = self.ctl_info()
        assert "provider" in info, info


# ---------------------------------------------------------------- sandboxes

class Box(str):
    """A sandbox directory.  The str value is its path under the mount."""

    def __new__(cls, mount, name):
        obj = str.__new__(cls, os.path.join(mount.path, name))
        obj.mount = mount
        obj.name = name
        return obj

    @property
    def path(self):
        return str(self)

    def p(self, *parts):
        return os.path.join(str(self), *parts)

    @property
    def root(self):
        return self.p("root")

    def r(self, *parts):
        """Path inside the sandbox's root/, parts relative to its "/"."""
        parts = [x.lstrip("/") if isinstance(x, str) else x.lstrip(b"/")
                 for x in parts]
        if parts and isinstance(parts[0], bytes):
            return os.path.join(os.fsencode(self.root), *parts)
        return os.path.join(self.root, *parts)

    def state(self):
        return read_text(self.p("ctl")).strip()

    def status(self):
        return parse_kv(read_text(self.p("status")))

    def err(self):
        return read_text(self.p("err"))

    def ctl(self, text):
        """Write text to ctl in one write; returns 0 or errno."""
        return write_once(self.p("ctl"), text)

    def wait_state(self, want, timeout=60):
        return wait_for(lambda: self.state() == want, timeout,
                        what="%s to become %s" % (self.name, want))

    def start(self):
        n = self.ctl("start\n")
        assert n == 0, "start %s: %s; err: %s\n%s" % (
            self.name, ename(n), self.err(), self.mount.log_tail())
        self.wait_state("running")

    def stop(self):
        n = self.ctl("stop\n")
        assert n == 0, "stop %s: %s; err: %s" % (self.name, ename(n),
                                                   self.err())
        self.wait_state("stopped")

    def last(self):
        return int(os.readlink(self.p("cmd", "last")))

    def cmd(self, n, f):
        return self.p("cmd", str(n), f)

    def cmd_status(self, n):
        return read_text(self.cmd(n, "status")).strip()

    def wait_cmd_done(self, n, timeout=60):
        return wait_for(
            lambda: (lambda s: s if s != "running" else None)(
                self.cmd_status(n)),
            timeout, what="command %d to finish" % n)

    def spawn(self, command):
        """Start a command with `echo command > exec`; returns its number."""
        if not command.endswith("\n"):
            command += "\n"
        before = self._last_or_zero()
        n = write_once(self.p("exec"), command)
        assert n == 0, "exec %r: %s; err: %s" % (command, ename(n),
                                                  self.err())
        num = self.last()
        assert num > before, "cmd/last did not advance (%d -> %d)" % (
            before, num)
        return num

    def _last_or_zero(self):
        try:
            return self.last()
        except OSError:
            return 0

    def run(self, command, timeout=TIMEOUT):
        """Run a command: `echo command > exec`, then read cmd/N/out.

        Returns (output bytes, status string, command number).  The O_RDWR
        way of using exec has tests of its own; this is the plainest path.
        """
        num = self.spawn(command)
        fd = os.open(self.cmd(num, "out"), os.O_RDONLY)
        done = False
        try:
            out = read_all(fd, timeout)
            done = True
        finally:
            if done:
                os.close(fd)
        status = self.wait_cmd_done(num, timeout)
        return out, status, num

    def check(self, command, timeout=TIMEOUT):
        """Run a command; assert it exited 0; return its output as str."""
        out, status, num = self.run(command, timeout)
        assert status == "exited 0", "%r -> %s (cmd %d)\noutput: %r" % (
            command, status, num, out)
        return out.decode("utf-8", "replace")


_box_counter = [0]


def box_name(hint="b"):
    """A fresh valid sandbox name (at most 63 bytes)."""
    _box_counter[0] += 1
    hint = re.sub(r"[^A-Za-z0-9._-]", "-", hint).lstrip("._-") or "b"
    return ("%s-%d-%d" % (hint[:40], os.getpid() % 100000,
                          _box_counter[0]))[:63]


def new_box(mount, hint="b", start=True):
    """mkdir a sandbox (and start it); returns a Box."""
    name = box_name(hint)
    os.mkdir(mount.p(name))
    box = Box(mount, name)
    if start:
        box.start()
    return box


def remove_box(box):
    """Best-effort deletion used by fixtures (lifecycle tests check it)."""
    mount = box.mount
    if not mount.alive() or not os.path.isdir(box.path):
        return
    write_once(box.p("ctl"), "stop\n")
    if errno_of(os.rmdir, box.path) != 0 and os.path.isdir(box.path):
        write_once(mount.ctl, "rm %s\n" % box.name)

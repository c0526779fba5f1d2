"""The local provider run by an ordinary user, as the README promises.

Run as root, this starts the daemon and drives the mount as `nobody`
(setpriv), in a directory that user owns.  An unprivileged FUSE mount needs
/dev/fuse open to all users, as it is on a stock Debian system; where it is
not, the test gives it that mode for its duration and restores it.
"""
import os
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from helpers import bwrap_unavailable, fuse_unavailable, sbxfs_binary, unmount

NOBODY = 65534


def as_nobody(args, **kw):
    return subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                           "--clear-groups", "--"] + args, **kw)


@pytest.fixture
def fuse_for_all():
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user")
    if fuse_unavailable() or bwrap_unavailable() or not shutil.which("setpriv"):
        pytest.skip("no FUSE, bwrap or setpriv here")
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    if mode & 0o006 != 0o006:
        os.chmod("/dev/fuse", 0o666)
    yield
    os.chmod("/dev/fuse", mode)


@pytest.fixture
def user_dir():
    """A directory the user owns and can reach (pytest's tmp is root's)."""
    import pathlib
    base = pathlib.Path(tempfile.mkdtemp(prefix="sbxfs-user-"))
    os.chmod(base, 0o755)
    os.chown(base, NOBODY, NOBODY)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_ordinary_user(user_dir, fuse_for_all):
    base = user_dir
    mnt, state, log = base / "mnt", base / "state", base / "log"
    as_nobody(["mkdir", str(mnt)], check=True, timeout=30)
    with open(log, "w") as logf:
        os.chown(log, NOBODY, NOBODY)
        daemon = subprocess.Popen(
            ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
             "--clear-groups", "--", sbxfs_binary(), "-f",
             "-o", "state_dir=%s" % state, str(mnt)],
            stdout=logf, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if as_nobody(["test", "-e", str(mnt / "ctl")], timeout=30).returncode == 0:
                break
            assert daemon.poll() is None, log.read_text()
            time.sleep(0.05)
        script = """set -e
cd "$1"
mkdir u1
echo start > u1/ctl
echo 'id -u; echo inside > /tmp/f; ls /proc | grep -c "^[0-9]"' > u1/exec
cat u1/exec
cat u1/cmd/1/status
stat -c '%u %s' u1/root/tmp/f
echo 'cat /root/h' > u1/exec
echo 'from the user' > u1/root/root/h
echo 'cat /root/h' > u1/exec
cat u1/exec
"""
        out = as_nobody(["sh", "-c", script, "sh", str(mnt)], capture_output=True,
                        text=True, timeout=120)
        assert out.returncode == 0, out.stderr + log.read_text()
        lines = out.stdout.splitlines()
        # Root inside, the user outside; few processes: a PID namespace.
        assert lines[0] == "0"
        assert 1 <= int(lines[1]) < 10, lines
        assert lines[2] == "exited 0"
        assert lines[3] == "%d 7" % NOBODY
        assert lines[4] == "from the user"
    finally:
        as_nobody(["fusermount3", "-u", str(mnt)], timeout=30)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            unmount(str(mnt))
    assert daemon.returncode == 0, log.read_text()

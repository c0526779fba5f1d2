"""The sbxfs command itself: options, errors, and clean shutdown on signals."""

import os
import signal
import subprocess
import time

import pytest

import helpers
from helpers import run


@pytest.fixture
def binary():
    b = helpers.sbxfs_binary()
    if not os.access(b, os.X_OK):
        pytest.fail("sbxfs binary %s not found" % b, pytrace=False)
    return b


def test_help(binary):
    cp = run([binary, "--help"], check=False, timeout=30)
    assert cp.returncode == 0, cp
    text = (cp.stdout + cp.stderr).decode()
    assert "usage" in text.lower() and "MOUNTPOINT" in text.upper()
    for opt in ("state_dir", "provider"):
        assert opt in text, text


def test_version(binary):
    cp = run([binary, "--version"], check=False, timeout=30)
    assert cp.returncode == 0, cp
    assert b"sbxfs" in (cp.stdout + cp.stderr).lower()


@pytest.mark.parametrize("args", [
    [],
    ["--no-such-option", "/nonexistent-mountpoint"],
    ["-o", "provider=no-such-provider", "-f", "MNT"],
    ["-f", "/nonexistent/dir/for/sure"],
], ids=["no-mountpoint", "bad-option", "bad-provider", "missing-mountpoint"])
def test_argument_errors(binary, args, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    args = [str(mnt) if a == "MNT" else a for a in args]
    cp = run([binary] + args + ["-o", "state_dir=%s" % (tmp_path / "st")],
             check=False, timeout=30)
    try:
        assert cp.returncode != 0
        err = cp.stderr.decode()
        assert err.strip(), "no reason printed"
        assert "usage" in err.lower() or len(err.splitlines()) <= 3, err
    finally:
        if helpers.is_mounted(str(mnt)):
            run(["fusermount3", "-uz", str(mnt)], check=False)
    assert not helpers.is_mounted(str(mnt))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["TERM", "INT"])
def test_signal_unmounts_cleanly(make_mount, sig):
    m = make_mount()
    name = helpers.box_name("sig")
    os.mkdir(m.p(name))
    proc = m.proc
    proc.send_signal(sig)
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        raise AssertionError("sbxfs ignored %s\n%s" % (sig, m.log_tail()))
    # This daemon was stopped on purpose: the fixture must not report it.
    m.proc = None
    helpers.LIVE_MOUNTS.remove(m)
    assert rc == 0, "exit %s\n%s" % (rc, m.log_tail())
    # The mount point is released without fusermount3.
    deadline = time.monotonic() + 30
    while helpers.is_mounted(m.path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not helpers.is_mounted(m.path)
    # And the state is intact for the next mount.
    m.start()
    assert name in os.listdir(m.path)


def test_sigterm_with_a_blocked_reader(make_mount, provider):
    # A reader blocked on a command that never ends must not keep the
    # daemon from exiting on SIGTERM.
    helpers.require_sandboxes(provider)
    m = make_mount()
    box = helpers.new_box(m, "blocked", start=True)
    helpers.write_ok(box.p("exec"), "sleep %s" % helpers.sleep_marker())
    reader = subprocess.Popen(["cat", box.p("exec")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    time.sleep(1)
    assert reader.poll() is None, "the reader should still be waiting"
    m.proc.send_signal(signal.SIGTERM)
    try:
        rc = m.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise AssertionError("sbxfs hung on SIGTERM with a blocked reader\n%s"
                             % m.log_tail())
    finally:
        try:
            reader.wait(30)
        except subprocess.TimeoutExpired:
            reader.kill()
    m.proc = None
    helpers.LIVE_MOUNTS.remove(m)
    assert rc == 0, "exit %s\n%s" % (rc, m.log_tail())


def test_daemonizes_without_f(binary, tmp_path):
    if helpers.fuse_unavailable():
        pytest.skip(helpers.fuse_unavailable())
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cp = run([binary, "-o", "state_dir=%s" % (tmp_path / "st"), str(mnt)],
             check=False, timeout=60)
    try:
        assert cp.returncode == 0, cp
        assert helpers.is_mounted(str(mnt))
        assert "provider" in helpers.read_text(str(mnt / "ctl"))
    finally:
        if helpers.is_mounted(str(mnt)):
            run(["fusermount3", "-u", str(mnt)], check=False)
    assert not helpers.is_mounted(str(mnt))

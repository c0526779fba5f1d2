"""Bad input gets a clear errno and error text, and the daemon stays up."""

import errno
import os
import random
import re

import pytest

import helpers
from helpers import (ISO_UTC, Box, ename, errno_of, read_text, run,
                     write_once, write_ok)

BIG = 1 << 20
TOO_BIG = (errno.E2BIG, errno.EINVAL)
# The offending word, inside quotes (which may hold the whole line).
QUOTED = r"""["'`\u2018\u201c][^"'`\u2019\u201d\n]*%s[^"'`\u2019\u201d\n]*""" \
    r"""["'`\u2019\u201d]"""


def assert_err(box, *needles):
    """box/err holds exactly one timestamped line mentioning every needle."""
    text = box.err()
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert ISO_UTC.match(text), repr(text)
    for n in needles:
        assert re.search(n, text), (n, text)
    return text


def root_error(mount):
    lines = [x for x in read_text(mount.ctl).splitlines()
             if x.startswith("error ")]
    assert len(lines) == 1, read_text(mount.ctl)
    return lines[0]


def still_ok(mount, box=None):
    mount.still_works()
    if box is not None:
        assert box.state() in ("running", "stopped")
        if box.state() == "running":
            assert box.check("echo ok") == "ok\n"


# ------------------------------------------------------------------ verbs

def test_unknown_verb(box):
    assert box.ctl("frobnicate\n") == errno.EINVAL
    assert_err(box, QUOTED % "frobnicate")
    # Through the shell: it fails and says so.
    cp = run(["bash", "-c", "echo explode > '%s'" % box.p("ctl")], check=False)
    assert cp.returncode != 0 and b"Invalid argument" in cp.stderr
    assert_err(box, QUOTED % "explode")
    assert box.state() == "running"
    still_ok(box.mount, box)


def test_unknown_verb_among_good_lines(stopped_box):
    b = stopped_box
    e = b.ctl("bogus-verb\nstop\n")
    assert e == errno.EINVAL, ename(e)
    assert_err(b, QUOTED % "bogus-verb")
    still_ok(b.mount)


def test_verb_with_stray_argument(box):
    assert box.ctl("stop now please\n") == errno.EINVAL
    assert_err(box, "stop")
    assert box.state() == "running"


def test_unknown_verb_root(mount):
    assert write_once(mount.ctl, "frobnicate x\n") == errno.EINVAL
    line = root_error(mount)
    assert re.search(QUOTED % "frobnicate", line), line
    # The error text is replaced by the next failure, not accumulated.
    assert write_once(mount.ctl, "zork\n") == errno.EINVAL
    line = root_error(mount)
    assert "zork" in line and "frobnicate" not in line
    # The settings lines are still there.
    assert "provider" in helpers.parse_kv(read_text(mount.ctl))
    still_ok(mount)


def test_garbage_bytes(box):
    for junk in (b"\x00\xff\x01start\n", b"\xff\xfe\n", b"start\x00stop\n",
                 b"\n\n\n\x7f\n", b"s" * 5000 + b"\n"):
        e = box.ctl(junk)
        assert e == errno.EINVAL, (junk[:20], ename(e))
        assert box.err() != ""
    assert box.state() == "running"
    still_ok(box.mount, box)


# ------------------------------------------------------------------ names

BAD_NAMES = ["..", ".", "a/b", "", "x" * 300, "x" * 64, "-lead", ".hidden",
             "_under", "sp ace", "tab\tname", "ctl\x01", "caf\u00e9", "a*b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_new_bad_name(mount, name):
    before = os.listdir(mount.path)
    assert write_once(mount.ctl, "new %s\n" % name) == errno.EINVAL
    line = root_error(mount)
    if name and len(name) < 80 and not re.search(r"\s|[\x00-\x1f]", name):
        assert name in line, line
    assert os.listdir(mount.path) == before
    assert not os.path.exists(mount.p("a"))
    still_ok(mount)


@pytest.mark.parametrize("name", ["x" * 64, "-lead", ".hidden", "sp ace",
                                  "a*b", "caf\u00e9"],
                         ids=lambda n: repr(n)[:20])
def test_mkdir_bad_name(mount, name):
    before = os.listdir(mount.path)
    assert errno_of(os.mkdir, mount.p(name)) == errno.EINVAL
    assert os.listdir(mount.path) == before
    still_ok(mount)


def test_mkdir_300_bytes(mount):
    e = errno_of(os.mkdir, mount.p("y" * 300))
    assert e in (errno.EINVAL, errno.ENAMETOOLONG), ename(e)
    still_ok(mount)


@pytest.mark.parametrize("name", ["x" * 63, "A", "9", "a.b_c-d", "0.-_x"])
def test_new_good_name_edges(mount, name):
    if "." in name:
        helpers.require(mount.provider, "dot_names")
    write_ok(mount.ctl, "new %s\n" % name)
    try:
        assert name in os.listdir(mount.path)
        assert Box(mount, name).state() == \
            helpers.initial_state(mount.provider)
    finally:
        write_ok(mount.ctl, "rm %s\n" % name)
    assert name not in os.listdir(mount.path)


def test_new_existing_name(box):
    with open(box.r("tmp", "keep"), "w") as f:
        f.write("keep me")
    e = write_once(box.mount.ctl, "new %s\n" % box.name)
    assert e in (errno.EEXIST, errno.EBUSY), ename(e)
    assert box.name in root_error(box.mount)
    assert errno_of(os.mkdir, box.path) == errno.EEXIST
    # The existing sandbox is untouched.
    assert box.state() == "running"
    assert read_text(box.r("tmp", "keep")) == "keep me"
    still_ok(box.mount, box)


def test_new_unknown_key(mount):
    name = helpers.box_name("badkey")
    before = os.listdir(mount.path)
    assert write_once(mount.ctl, "new %s bogus=1\n" % name) == errno.EINVAL
    assert "bogus" in root_error(mount)
    assert write_once(mount.ctl, "new %s nokeyvalue\n" % name) == \
        errno.EINVAL
    assert os.listdir(mount.path) == before
    still_ok(mount)


def test_rm_missing_sandbox(mount):
    e = write_once(mount.ctl, "rm no-such-sandbox\n")
    assert e in (errno.ENOENT, errno.EINVAL), ename(e)
    assert "no-such-sandbox" in root_error(mount)
    assert errno_of(os.stat, mount.p("no-such-sandbox")) == errno.ENOENT
    e = write_once(mount.ctl, "rm ..\n")
    assert e in (errno.ENOENT, errno.EINVAL), ename(e)
    assert ".." in root_error(mount)
    still_ok(mount)


# ------------------------------------------------------------------ sizes

def test_1mib_write_root_ctl(mount):
    before = os.listdir(mount.path)
    e = write_once(mount.ctl, b"new " + b"a" * BIG + b"\n")
    assert e in TOO_BIG, ename(e)
    assert root_error(mount)
    assert os.listdir(mount.path) == before
    still_ok(mount)


def test_1mib_write_sandbox_ctl(box):
    e = box.ctl(b"stop " + b"a" * BIG + b"\n")
    assert e in TOO_BIG, ename(e)
    assert_err(box)
    assert box.state() == "running"
    still_ok(box.mount, box)


def test_1mib_write_exec(box):
    before = box.last() if os.path.lexists(box.p("cmd", "last")) else 0
    e = write_once(box.p("exec"), b"echo " + b"a" * BIG + b"\n")
    assert e in TOO_BIG, ename(e)
    assert_err(box)
    after = box.last() if os.path.lexists(box.p("cmd", "last")) else 0
    assert after == before, "a command was started anyway"
    still_ok(box.mount, box)


def test_64k_is_accepted_on_exec(box):
    # Just under the limit is a normal command line.
    arg = "b" * 60000
    out, status, _ = box.run("echo %s | wc -c" % arg)
    assert status == "exited 0" and out.strip() == b"60001"


def test_1mib_line_in_small_writes(box):
    # One line that grows past the limit across many writes is refused too.
    fd = os.open(box.p("ctl"), os.O_WRONLY | os.O_TRUNC)
    failed = 0
    try:
        for _ in range(BIG // 4096):
            try:
                os.write(fd, b"a" * 4096)
            except OSError as e:
                failed = e.errno
                break
    finally:
        try:
            os.close(fd)
        except OSError as e:
            failed = failed or e.errno
    assert failed in TOO_BIG, ename(failed)
    assert box.err() != ""
    assert box.state() == "running"
    still_ok(box.mount, box)


# ------------------------------------------------------------------ read-only

@pytest.mark.parametrize("fname", ["status", "err"])
def test_write_to_readonly_file(box, fname):
    assert box.err() == ""
    e = write_once(box.p(fname), "state stopped\n")
    assert e == errno.EACCES, ename(e)
    text = assert_err(box)
    assert fname in text.split(None, 1)[1], text
    cp = run(["bash", "-c", "echo x > '%s'" % box.p(fname)], check=False)
    assert cp.returncode != 0 and b"Permission denied" in cp.stderr
    assert box.state() == "running"
    assert box.status()["state"] == "running"
    still_ok(box.mount, box)


def test_truncate_readonly_files(box):
    for fname in ("status", "err"):
        e = errno_of(os.truncate, box.p(fname), 0)
        assert e == errno.EACCES, (fname, ename(e))
    assert box.status()["name"] == box.name


def test_create_in_sandbox_dir(box, mount):
    # The sandbox directory and the root have a fixed set of entries.
    for d in (box.path, box.p("cmd"), mount.path):
        e = errno_of(os.open, os.path.join(d, "newfile"),
                     os.O_CREAT | os.O_WRONLY, 0o644)
        assert e in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTSUP,
                     errno.EINVAL), (d, ename(e))
        assert not os.path.exists(os.path.join(d, "newfile"))
    e = errno_of(os.unlink, box.p("status"))
    assert e in (errno.EACCES, errno.EPERM, errno.EROFS), ename(e)
    e = errno_of(os.mkdir, box.p("cmd", "77"))
    assert e in (errno.EACCES, errno.EPERM, errno.EROFS), ename(e)
    still_ok(mount, box)


# ------------------------------------------------------------------ state

def test_exec_while_stopped(stopped_box):
    b = stopped_box
    e = write_once(b.p("exec"), "echo hi\n")
    assert e == errno.EAGAIN, ename(e)
    assert_err(b, "stopped")
    cp = run(["sh", "-c", "echo 'echo hi' > '%s'" % b.p("exec")],
             check=False)
    assert cp.returncode != 0
    assert not os.path.lexists(b.p("cmd", "last")) or \
        b.cmd_status(b.last()) != "exited 0"
    still_ok(b.mount)


def test_exec_rdwr_while_stopped(stopped_box):
    fd = os.open(stopped_box.p("exec"), os.O_RDWR)
    try:
        assert errno_of(os.write, fd, b"echo hi\n") == errno.EAGAIN
    finally:
        os.close(fd)
    assert_err(stopped_box, "stopped")


def test_cmd_ctl_bad_input(box):
    n = box.spawn("sleep 300")
    c = box.cmd(n, "ctl")
    assert write_once(c, "explode\n") == errno.EINVAL
    assert_err(box, QUOTED % "explode")
    assert write_once(c, "kill NOSUCHSIG\n") == errno.EINVAL
    assert_err(box, "NOSUCHSIG")
    assert write_once(c, "kill 999\n") == errno.EINVAL
    assert box.cmd_status(n) == "running"
    write_ok(c, "kill\n")
    assert box.wait_cmd_done(n) == "killed TERM"
    still_ok(box.mount, box)


def test_write_to_stream_files(box):
    # stdout, stderr, out, cmdline and status of a command are read-only.
    _, status, n = box.run("echo x")
    for f in ("stdout", "stderr", "out", "cmdline", "status"):
        e = write_once(box.cmd(n, f), "junk\n")
        assert e in (errno.EACCES, errno.EBADF, errno.EINVAL), (f, ename(e))
    assert box.cmd_status(n) == "exited 0"
    assert helpers.cat(box.cmd(n, "stdout")) == b"x\n"


def test_random_junk_keeps_daemon_up(box, mount):
    seed = int(os.environ.get("SBXFS_SEED", random.randrange(1 << 30)))
    print("junk seed", seed)
    r = random.Random(seed)
    targets = [mount.ctl, box.p("ctl"), box.p("status"), box.p("err")]
    words = [b"new", b"rm", b"start", b"stop", b"restart", b"delete", b"kill",
             b"\n", b" ", b"=", b"image=", b"net=", b"\x00", b"\xff", b"..",
             b"/", b"KILL", b"-1", b"99999999999999999999", b"env.A=",
             b"label.x=", b"cpu=", b"memory=-5", b"disk=1e309"]
    for _ in range(300):
        msg = b"".join(r.choice(words) for _ in range(r.randint(0, 8)))
        t = r.choice(targets)
        if t == box.p("ctl") and re.search(rb"\b(stop|delete|restart)\b", msg):
            continue  # keep our sandbox; other verbs are fair game
        if t == mount.ctl and (b"rm" in msg or b"new" in msg):
            msg = msg.replace(b"rm", b"rn").replace(b"new", b"nev")
        write_once(t, msg)
    assert box.state() == "running"
    still_ok(mount, box)

"""Sandbox lifecycle through ctl, status and err, exec and cmd/N."""

import errno
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import helpers
from helpers import (ISO_UTC, Box, cat, ename, errno_of, parse_kv, q,
                     read_all, read_text, require_sandboxes, run, sh,
                     sleep_marker, sleeping, wait_for, wait_no_procs,
                     wait_sleeping, write_once, write_ok)

SANDBOX_FILES = {"ctl", "status", "err", "exec", "cmd", "root"}


@pytest.fixture
def sandboxes(provider):
    require_sandboxes(provider)


# ------------------------------------------------------------------ lifecycle

def test_mkdir_creates_stopped_sandbox(mount, provider):
    want = helpers.initial_state(provider)
    name = helpers.box_name("mk")
    run(["mkdir", mount.p(name)])
    b = Box(mount, name)
    try:
        assert name in os.listdir(mount.path)
        assert set(os.listdir(b.path)) >= SANDBOX_FILES
        assert os.path.isdir(b.p("cmd")) and os.path.isdir(b.root)
        assert read_text(b.p("ctl")) == want + "\n"
        st = b.status()
        assert st["name"] == name and st["state"] == want
        assert b.err() == ""
        assert os.listdir(b.p("cmd")) == [] or \
            os.listdir(b.p("cmd")) == ["last"]
    finally:
        helpers.remove_box(b)


def test_start_stop_restart(stopped_box, sandboxes):
    b = stopped_box
    run(["sh", "-c", "echo start > %s" % q(b.p("ctl"))])
    b.wait_state("running")
    assert b.status()["state"] == "running"
    assert b.check("echo up") == "up\n"
    run(["sh", "-c", "echo stop > %s" % q(b.p("ctl"))])
    b.wait_state("stopped")
    assert b.status()["state"] == "stopped"
    write_ok(b.p("ctl"), "start\n")
    b.wait_state("running")
    # restart: a running command does not survive it.
    m = sleep_marker()
    n = b.spawn("sleep %s" % m)
    wait_sleeping(m)
    assert b.cmd_status(n) == "running"
    write_ok(b.p("ctl"), "restart\n")
    b.wait_state("running")
    assert b.wait_cmd_done(n) != "running"
    wait_no_procs(m)
    assert b.check("echo again") == "again\n"
    # stop: nothing of the sandbox keeps running.
    m = sleep_marker()
    n = b.spawn("sleep %s & sleep %s; wait" % (m, m))
    wait_for(lambda: len(sleeping(m)) == 2, what="both sleeps to start")
    b.stop()
    assert b.wait_cmd_done(n) != "running"
    wait_no_procs(m)


def test_several_lines_in_one_write(stopped_box, sandboxes):
    b = stopped_box
    run(["sh", "-c", "printf 'start\\nstop\\n' > %s" % q(b.p("ctl"))])
    b.wait_state("stopped")
    run(["sh", "-c", "printf 'start\\nstop\\nstart\\n' > %s" % q(b.p("ctl"))])
    b.wait_state("running")
    # From running: stop then start leaves it running, with fresh processes.
    m = sleep_marker()
    n = b.spawn("sleep %s" % m)
    wait_sleeping(m)
    run(["sh", "-c", "printf 'stop\\nstart\\n' > %s" % q(b.p("ctl"))])
    b.wait_state("running")
    assert b.wait_cmd_done(n) != "running"
    wait_no_procs(m)


def test_empty_ctl_write_is_harmless(stopped_box):
    b = stopped_box
    run(["sh", "-c", ": > %s" % q(b.p("ctl"))])
    assert b.state() == "stopped"
    assert b.err() == ""


def test_rmdir_deletes(mount, sandboxes, provider):
    b = helpers.new_box(mount, "rmdir", start=True)
    with open(b.r("tmp", "leftover"), "w") as f:
        f.write("x")
    b.stop()
    run(["rmdir", b.path])
    assert b.name not in os.listdir(mount.path)
    assert errno_of(os.stat, b.path) == errno.ENOENT
    # The same name again is a brand new sandbox.
    os.mkdir(b.path)
    try:
        assert b.state() == helpers.initial_state(provider)
        if b.state() == "stopped":
            b.start()
        assert os.listdir(b.r("tmp")) == []
    finally:
        helpers.remove_box(b)


def test_rmdir_running_sandbox(mount, sandboxes):
    b = helpers.new_box(mount, "rmdir-run", start=True)
    m = sleep_marker()
    b.spawn("sleep %s" % m)
    wait_sleeping(m)
    e = errno_of(os.rmdir, b.path)
    try:
        if e == 0:
            assert b.name not in os.listdir(mount.path)
        else:
            # Refused: then it must be intact.
            assert e in (errno.EBUSY, errno.EAGAIN), ename(e)
            assert b.state() == "running"
            assert b.check("echo still") == "still\n"
    finally:
        helpers.remove_box(b)
    assert b.name not in os.listdir(mount.path)
    wait_no_procs(m)


def test_delete_verb(mount):
    b = helpers.new_box(mount, "del", start=False)
    run(["sh", "-c", "echo delete > %s" % q(b.p("ctl"))])
    assert b.name not in os.listdir(mount.path)
    assert errno_of(os.stat, b.p("ctl")) == errno.ENOENT


def test_root_ctl_rm(mount):
    b = helpers.new_box(mount, "rm", start=False)
    run(["sh", "-c", "echo rm %s > %s" % (b.name, q(mount.ctl))])
    assert b.name not in os.listdir(mount.path)
    assert errno_of(os.stat, b.path) == errno.ENOENT


def test_root_ctl_new_image_host(mount, provider):
    helpers.require(provider, "image_host")
    name = helpers.box_name("new")
    run(["sh", "-c", "echo new %s image=host > %s" % (name, q(mount.ctl))])
    b = Box(mount, name)
    try:
        assert name in os.listdir(mount.path)
        assert b.state() == "stopped"
        st = b.status()
        assert st["image"] == "host" and st["provider"] == provider
    finally:
        helpers.remove_box(b)


def test_root_ctl_read(mount, provider):
    text = read_text(mount.ctl)
    assert text.endswith("\n")
    kv = parse_kv(text)
    assert kv.get("provider") == helpers.provider_base(provider), text
    for line in text.splitlines():
        assert re.match(r"^\S+ \S", line), line
    # The root's own entries: ctl and the sandboxes, nothing else.
    assert "ctl" in os.listdir(mount.path)


def test_status_contents(box, provider):
    text = read_text(box.p("status"))
    assert text.endswith("\n")
    for line in text.splitlines():
        assert re.match(r"^[a-z][A-Za-z0-9._-]* \S", line), line
    st = parse_kv(text)
    assert st["name"] == box.name
    assert st["provider"] == helpers.provider_base(provider)
    assert st["state"] == "running"
    assert st["image"] == "host" or helpers.unsupported(provider, "image_host")
    assert st["id"] and st["created"]
    # status follows the state; the id and creation time do not change.
    box.stop()
    st2 = box.status()
    assert st2["state"] == "stopped"
    assert (st2["id"], st2["created"]) == (st["id"], st["created"])
    # A second sandbox has a different id.
    other = helpers.new_box(box.mount, "other", start=False)
    try:
        assert other.status()["id"] != st["id"]
    finally:
        helpers.remove_box(other)


def test_status_is_built_at_open(box):
    # Reading an fd opened before a change gives a consistent snapshot;
    # a fresh open sees the new state.
    fd = os.open(box.p("status"), os.O_RDONLY)
    try:
        first = os.read(fd, 5)
        box.stop()
        rest = read_all(fd)
    finally:
        os.close(fd)
    assert parse_kv((first + rest).decode())["state"] == "running"
    assert box.status()["state"] == "stopped"


def test_err_contents(box):
    assert box.err() == ""
    assert box.ctl("frobnicate\n") == errno.EINVAL
    text = box.err()
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert ISO_UTC.match(text), repr(text)
    assert re.search(r"""["'`\u2018\u201c]frobnicate["'`\u2019\u201d]""",
                     text), text
    # A later error replaces it.
    assert box.ctl("zork\n") == errno.EINVAL
    assert "zork" in box.err() and "frobnicate" not in box.err()


# ------------------------------------------------------------------ exec

def test_exec_echo_and_cat(box):
    sh("echo 'echo hello from inside' > %s" % q(box.p("exec")))
    assert cat(box.p("exec")) == b"hello from inside\n"
    # Reading again gives the same output of the same (newest) command.
    assert cat(box.p("exec")) == b"hello from inside\n"
    n = box.last()
    assert box.cmd_status(n) == "exited 0"
    assert read_text(box.cmd(n, "cmdline")).rstrip("\n") == \
        "echo hello from inside"


def test_exec_stdout_stderr(box):
    n = box.spawn("echo one; echo two >&2; echo three")
    out = cat(box.p("exec"))
    assert sorted(out.splitlines()) == [b"one", b"three", b"two"], out
    assert cat(box.cmd(n, "stdout")) == b"one\nthree\n"
    assert cat(box.cmd(n, "stderr")) == b"two\n"
    assert sorted(cat(box.cmd(n, "out")).splitlines()) == \
        [b"one", b"three", b"two"]
    assert box.cmd_status(n) == "exited 0"


def test_exec_rdwr(box):
    fd = os.open(box.p("exec"), os.O_RDWR)
    try:
        os.write(fd, b"echo rdwr; exit 3\n")
        n = box.last()
        assert read_all(fd) == b"rdwr\n"
    finally:
        os.close(fd)
    # EOF comes once the command has exited: its status is final by then.
    assert box.cmd_status(n) == "exited 3"


def test_exec_fd_reads_its_own_command(box):
    fd = os.open(box.p("exec"), os.O_RDWR)
    try:
        os.write(fd, b"sleep 1; echo first\n")
        mine = box.last()
        other = box.spawn("echo second")
        assert other == mine + 1
        # A fresh open reads the newest command; this fd reads its own.
        assert cat(box.p("exec")) == b"second\n"
        assert read_all(fd) == b"first\n"
    finally:
        os.close(fd)


def test_exec_large_output(box):
    out, status, _ = box.run("seq 1 200000")
    assert status == "exited 0"
    assert out == b"".join(b"%d\n" % i for i in range(1, 200001))
    out, status, _ = box.run("head -c 3000000 /dev/zero | tr '\\0' x")
    assert status == "exited 0" and out == b"x" * 3000000


def test_output_streams_while_running(box):
    # Output is readable as it arrives, before the command exits.
    m = sleep_marker()
    n = box.spawn("echo early; echo oops >&2; sleep %s; echo late" % m)
    for f, want in (("stdout", b"early\n"), ("stderr", b"oops\n"),
                    ("out", None)):
        fd = os.open(box.cmd(n, f), os.O_RDONLY)
        try:
            got = b""
            while want is not None and len(got) < len(want):
                chunk = read_some(fd)
                assert chunk, "EOF from %s while the command runs" % f
                got += chunk
            if want is None:
                got = read_some(fd)
                assert got in (b"early\n", b"oops\n", b"early\noops\n",
                               b"oops\nearly\n"), got
            else:
                assert got == want
        finally:
            os.close(fd)
    fd = os.open(box.p("exec"), os.O_RDONLY)
    try:
        assert read_some(fd).startswith((b"early\n", b"oops\n"))
    finally:
        os.close(fd)
    assert box.cmd_status(n) == "running"
    write_ok(box.cmd(n, "ctl"), "kill\n")
    assert box.wait_cmd_done(n) == "killed TERM"
    assert cat(box.cmd(n, "stdout")) == b"early\n"
    wait_no_procs(m)


def read_some(fd, timeout=30):
    """One read(2) that must return within timeout (it may block first)."""
    res = []

    def reader():
        try:
            res.append(os.read(fd, 65536))
        except OSError as e:
            res.append(e)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    assert res, "read blocked although output was there"
    if isinstance(res[0], OSError):
        raise res[0]
    return res[0]


def test_exit_codes(box):
    cases = {"true": "exited 0", "false": "exited 1", "exit 7": "exited 7",
             "exit 255": "exited 255", "no-such-command-xyz": "exited 127",
             "kill -TERM $$": "killed TERM", "kill -KILL $$": "killed KILL",
             "kill -INT $$": "killed INT"}
    if helpers.unsupported(box.mount.provider, "exit_signal"):
        cases.update({"kill -TERM $$": "exited 143", "kill -KILL $$":
                      "exited 137", "kill -INT $$": "exited 130"})
    for cmd, want in cases.items():
        _, status, n = box.run(cmd)
        assert status == want, (cmd, status)
        assert box.cmd_status(n) == want


def test_cmd_numbering_and_last(box):
    nums = [box.run("echo %d" % i)[2] for i in range(3)]
    assert nums == [nums[0], nums[0] + 1, nums[0] + 2]
    assert os.readlink(box.p("cmd", "last")) == str(nums[2])
    assert run(["readlink", box.p("cmd", "last")]).stdout == \
        b"%d\n" % nums[2]
    names = os.listdir(box.p("cmd"))
    assert "last" in names
    assert {str(n) for n in nums} <= set(names)
    assert all(x == "last" or x.isdigit() for x in names), names
    for n in nums:
        assert set(os.listdir(box.p("cmd", str(n)))) >= {
            "cmdline", "stdout", "stderr", "out", "status", "stdin", "ctl"}
        assert read_text(box.cmd(n, "cmdline")).rstrip("\n") == \
            "echo %d" % (n - nums[0])
        assert cat(box.cmd(n, "out")) == b"%d\n" % (n - nums[0])
    # Following the symlink works for paths.
    assert cat(box.p("cmd", "last", "stdout")) == b"2\n"
    assert errno_of(os.stat, box.p("cmd", "99999")) == errno.ENOENT


def test_kill_term(box):
    m = sleep_marker()
    # A shell running sleep as a child, as `sh -c` does for most commands:
    # the kill must reach the whole command, not only the shell.
    n = box.spawn("sleep %s" % m)
    wait_sleeping(m)
    assert box.cmd_status(n) == "running"
    sh("echo kill > %s" % q(box.cmd(n, "ctl")))
    assert box.wait_cmd_done(n) == "killed TERM"
    out = cat(box.p("exec"), timeout=30)
    assert out == b"" or helpers.unsupported(box.mount.provider, "exit_signal")
    wait_no_procs(m)


def test_kill_kill(box):
    # TERM is ignored by this command, so only KILL ends it.
    m = sleep_marker()
    n = box.spawn("trap '' TERM; exec sleep %s" % m)
    wait_sleeping(m)  # the trap is set by then
    write_ok(box.cmd(n, "ctl"), "kill\n")
    # Give a wrongly delivered TERM time to show (not a timing assertion:
    # a correct daemon passes however long this takes).
    time.sleep(0.5)
    assert box.cmd_status(n) == "running"
    assert sleeping(m)
    write_ok(box.cmd(n, "ctl"), "kill KILL\n")
    assert box.wait_cmd_done(n) == "killed KILL"
    wait_no_procs(m)
    m = sleep_marker()
    n = box.spawn("exec sleep %s" % m)
    wait_sleeping(m)
    write_ok(box.cmd(n, "ctl"), "kill 9\n")
    assert box.wait_cmd_done(n) == "killed KILL"
    wait_no_procs(m)


def test_stdin(box):
    helpers.require(box.mount.provider, "stdin_eof")
    n = box.spawn("| cat")
    assert box.cmd_status(n) == "running"
    sh("printf hi > %s" % q(box.cmd(n, "stdin")))
    assert cat(box.p("exec")) == b"hi"
    assert box.cmd_status(n) == "exited 0"


def test_stdin_stays_open_until_close(box):
    helpers.require(box.mount.provider, "stdin_eof")
    n = box.spawn("| while read line; do echo \"got $line\"; done; echo eof")
    fd = os.open(box.cmd(n, "stdin"), os.O_WRONLY)
    try:
        os.write(fd, b"alpha\n")
        os.write(fd, b"be")
        os.write(fd, b"ta\n")
        # The command is still waiting for more input.
        assert box.cmd_status(n) == "running"
    finally:
        os.close(fd)
    assert cat(box.cmd(n, "out")) == b"got alpha\ngot beta\neof\n"
    assert box.wait_cmd_done(n) == "exited 0"


def test_stdin_large(box):
    helpers.require(box.mount.provider, "stdin_eof", "binary_stdin")
    n = box.spawn("| sha256sum")
    data = bytes(range(256)) * 4096 * 2  # 2 MiB
    fd = os.open(box.cmd(n, "stdin"), os.O_WRONLY)
    try:
        off = 0
        while off < len(data):
            off += os.write(fd, data[off:off + 100000])
    finally:
        os.close(fd)
    want = hashlib.sha256(data).hexdigest()
    assert cat(box.cmd(n, "stdout")).split()[0].decode() == want


def test_stdin_is_at_its_end_unless_asked_for(box):
    # The same rule on every provider: a command written to exec reads
    # the end of its stdin at once (a build step that happens to read
    # stdin does not hang), and its stdin file says why it takes nothing.
    n = box.spawn("cat; read x || echo eof")
    assert cat(box.cmd(n, "out")) == b"eof\n"
    assert box.wait_cmd_done(n) == "exited 0"
    assert write_once(box.cmd(n, "stdin"), b"late\n") == errno.EPIPE
    assert "| COMMAND" in box.err()
    assert read_text(box.cmd(n, "cmdline")) == "cat; read x || echo eof\n"
    # "|" before the command line: cmd/N/stdin feeds it.
    if helpers.unsupported(box.mount.provider, "stdin_after_start"):
        return
    n = box.spawn("  |  read x; echo \"got $x\"")
    assert read_text(box.cmd(n, "cmdline")) == "read x; echo \"got $x\"\n"
    assert write_once(box.cmd(n, "stdin"), b"fed\n") == 0
    assert cat(box.cmd(n, "out")) == b"got fed\n"
    assert write_once(box.p("exec"), "|\n") == errno.EINVAL


def test_stdin_of_command_that_reads_nothing(box):
    # The command exits without reading: writing its stdin fails cleanly or
    # succeeds, but never hangs, and the daemon stays up.
    _, status, n = box.run("true")
    assert status == "exited 0"
    e = write_once(box.cmd(n, "stdin"), b"ignored\n")
    assert e in (0, errno.EPIPE, errno.ESRCH, errno.EINVAL, errno.EIO), \
        ename(e)
    box.mount.still_works()


def test_ctrl_c_interrupts_cat_exec(box):
    m = sleep_marker(30)
    n = box.spawn("sleep %s" % m)
    wait_sleeping(m)
    p = subprocess.Popen(["cat", box.p("exec")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # let cat block in read(2); not a timing assertion
        assert p.poll() is None, "cat returned while the command runs"
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("cat exec did not stop on SIGINT")
        assert p.returncode != 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
    assert box.cmd_status(n) == "running"  # only the reader was interrupted
    assert sleeping(m)
    write_ok(box.cmd(n, "ctl"), "kill\n")
    box.wait_cmd_done(n)
    wait_no_procs(m)
    assert box.check("echo alive") == "alive\n"


READER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.stdout.write("reading\n"); sys.stdout.flush()
try:
    os.read(fd, 4096)
    print("returned")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_interrupts_read_with_handler(box):
    # A reader with a SIGINT handler (Python's KeyboardInterrupt) only gets
    # control back if the daemon answers the FUSE interrupt.
    n = box.spawn("sleep 30")
    p = subprocess.Popen([sys.executable, "-c", READER, box.p("exec")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"reading\n"
        time.sleep(0.5)  # let it block in read(2)
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("read on exec ignored the interrupt")
        assert out == b"interrupted\n", (out, err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
    write_ok(box.cmd(n, "ctl"), "kill KILL\n")
    assert box.wait_cmd_done(n) == "killed KILL"


def test_concurrent_commands(box):
    nums = [box.spawn("sleep 1; echo c%d" % i) for i in range(8)]
    for i, n in enumerate(nums):
        assert cat(box.cmd(n, "stdout")) == b"c%d\n" % i
        assert box.wait_cmd_done(n) == "exited 0"


# ------------------------------------------------------------ root/ vs inside

def test_fresh_sandbox_writable_dirs_are_empty(box):
    helpers.require(box.mount.provider, "image_host")
    for d in ("tmp", "root", "home", "var/tmp"):
        assert os.listdir(box.r(d)) == [], d
    out = box.check("ls -A /tmp /root /home /var/tmp")
    assert out.split() == ["/home:", "/root:", "/tmp:", "/var/tmp:"], out


def test_inside_sees_root_writes(box):
    with open(box.r("tmp", "from-host"), "w") as f:
        f.write("written on the host\n")
    os.chmod(box.r("tmp", "from-host"), 0o640)
    out = box.check("cat /tmp/from-host; stat -c %a /tmp/from-host")
    assert out == "written on the host\n640\n"
    os.mkdir(box.r("home", "u"))
    assert box.check("test -d /home/u && echo yes") == "yes\n"


def test_root_sees_command_writes(box):
    # Prime the caches: the entry is absent, the file has its old size.
    assert errno_of(os.stat, box.r("tmp", "later")) == errno.ENOENT
    assert os.listdir(box.r("root")) == []
    with open(box.r("tmp", "grow"), "w") as f:
        f.write("a")
    assert os.stat(box.r("tmp", "grow")).st_size == 1
    box.check("echo made inside > /tmp/later; echo bcd >> /tmp/grow;"
              " mkdir /root/dir; chmod 600 /tmp/later")
    # Right after the command, root/ shows its effects.
    assert open(box.r("tmp", "later")).read() == "made inside\n"
    assert os.stat(box.r("tmp", "later")).st_mode & 0o777 == 0o600
    assert os.stat(box.r("tmp", "grow")).st_size == 5
    assert open(box.r("tmp", "grow")).read() == "abcd\n"
    assert os.listdir(box.r("root")) == ["dir"]
    box.check("rm /tmp/later")
    assert errno_of(os.stat, box.r("tmp", "later")) == errno.ENOENT


def test_root_while_stopped(box):
    helpers.require(box.mount.provider, "stopped_files")
    box.stop()
    # root/ works on a stopped sandbox: write, then see it once started.
    with open(box.r("root", "note"), "w") as f:
        f.write("left while stopped\n")
    assert sorted(os.listdir(box.r("root"))) == ["note"]
    assert os.path.isdir(box.r("usr", "bin"))
    box.start()
    assert box.check("cat /root/note") == "left while stopped\n"
    box.check("echo back > /root/note2")
    box.stop()
    assert open(box.r("root", "note2")).read() == "back\n"


def test_runs_as_daemon_uid(box):
    out = box.check("id -u")
    assert out.strip() == str(os.getuid())


def test_a_burst_of_readers_leaves_the_sandbox_running(box, provider):
    # Eighty readers blocked on one command make as many daemon threads;
    # when they are done the threads stay, for a process a request
    # started with a parent-death signal (local's keeper) would die with
    # the thread that started it, and the sandbox with it.
    gate = "burst-%d" % os.getpid()
    n = box.spawn("while [ ! -e /tmp/%s ]; do sleep 0.05; done; echo done" % gate)
    readers = [subprocess.Popen(["cat", box.cmd(n, "out")], stdout=subprocess.PIPE)
               for _ in range(80)]
    try:
        helpers.put(box.r("tmp", gate), "")
        for r in readers:
            assert r.communicate(timeout=60)[0] == b"done\n"
    finally:
        for r in readers:
            if r.poll() is None:
                r.kill()
    assert box.run("echo alive")[0] == b"alive\n"
    assert "keeper exited" not in box.mount.log_tail()

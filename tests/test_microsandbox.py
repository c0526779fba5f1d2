"""The microsandbox provider against its emulator (tests/emulators/
microsandbox.py): msb on PATH, an agent socket per sandbox.

What only this provider has: finding msb, msb's states and settings in
status, pause and resume, the sandbox's environment and working directory
applied to commands, a create that fails leaving nothing shown, and an
agent that misbehaves (never ready, a frame over 4 MiB, bytes that are not
CBOR, a newer protocol generation, writes split anywhere) costing that
connection and never the daemon.  What every remote provider must do is
in test_remote.py; the tree contract is checked by the other modules run
with SBXFS_PROVIDERS=microsandbox.
"""

import errno
import os
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import errno_of, read_bytes, read_text, write_once

if "microsandbox" not in [helpers.provider_base(p) for p in conftest.PROVIDERS]:
    pytest.skip("microsandbox is not among SBXFS_PROVIDERS",
                allow_module_level=True)


@pytest.fixture(scope="module")
def mmount(tmp_path_factory):
    """A microsandbox mount of its own, with its own emulator."""
    yield from conftest.own_mount(tmp_path_factory, "microsandbox",
                                  ["timeout=5"])


@pytest.fixture
def emu(mmount):
    yield from conftest.fault_free(mmount.emulator)


@pytest.fixture
def mbox(request, mmount):
    yield from conftest.unstarted_box(request, mmount)


def msb(emu, *args):
    """The fake msb, as another user of the same MSB_HOME would run it."""
    return subprocess.run(["msb"] + list(args), env=emu.env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


def try_mount(tmp_path, env, *opts):
    """Run sbxfs in the foreground where it cannot mount: the result."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    argv = [helpers.sbxfs_binary(), "-f", "-o", "provider=microsandbox",
            "-o", "state_dir=%s" % (tmp_path / "s")]
    for o in opts:
        argv += ["-o", o]
    cp = subprocess.run(argv + [str(mnt)], env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=60)
    assert not helpers.is_mounted(str(mnt))
    return cp


# ------------------------------------------------------------ msb

def test_msb_missing_is_a_mount_error(tmp_path, emu):
    env = dict(emu.env(), PATH="/nonexistent")
    env.pop("MSB_PATH", None)
    cp = try_mount(tmp_path, env)
    assert cp.returncode != 0
    assert b"msb" in cp.stderr and b"PATH" in cp.stderr, cp.stderr


def test_unknown_backend_is_refused_with_a_reason(tmp_path, emu):
    cp = try_mount(tmp_path, emu.env(), "backend=moon")
    assert cp.returncode != 0
    assert b"moon" in cp.stderr and b"cloud" in cp.stderr, cp.stderr


# ------------------------------------------------------------ the cloud

@pytest.fixture(scope="module")
def cmount(tmp_path_factory):
    """A mount of the cloud backend (the emulator's stand-in for the
    cloud: REST and the agent WebSocket)."""
    yield from conftest.own_mount(tmp_path_factory, "microsandbox@cloud",
                                  ["timeout=5"])


def test_cloud_key_refused_is_a_mount_error(tmp_path, cmount):
    env = dict(cmount.emulator.env(), MSB_API_KEY="msb_wrong_key_0123")
    cp = try_mount(tmp_path, env)
    assert cp.returncode != 0
    assert b"401" in cp.stderr and b"msb_wrong_key_0123" not in cp.stderr, cp.stderr
    env.pop("MSB_API_KEY")
    (tmp_path / "again").mkdir()
    cp = try_mount(tmp_path / "again", env)
    assert cp.returncode != 0 and b"MSB_API_KEY" in cp.stderr, cp.stderr


def test_cloud_lifecycle_and_status(cmount):
    emu = cmount.emulator
    assert write_once(cmount.ctl, "new cloudy cpus=2 memory=256 workdir=/tmp "
                      "env=GREETING=hello label=team=a\n") == 0
    box = helpers.Box(cmount, "cloudy")
    try:
        st = box.status()
        assert st["state"] == "running" and st["native_state"] == "running", st
        assert len(st["id"]) == 36 and st["id"].count("-") == 4, st   # the uuid
        assert st["cpus"] == "2" and st["memory"] == "256 MiB", st
        assert st["workdir"] == "/tmp", st
        assert box.check("echo $GREETING; pwd") == "hello\n/tmp\n"
        # The cloud has no pause.
        assert box.ctl("pause\n") == errno.ENOTSUP
        assert "no \"pause\"" in box.err()
        assert box.ctl("stop\n") == 0, box.err()
        assert box.status()["native_state"] == "stopped"
        assert box.ctl("start\n") == 0, box.err()
        assert box.check("echo again") == "again\n"
        stats = emu.stats()
        assert stats.get("cloud.create") == 1 and stats.get("cloud.start") == 1, stats
        assert stats.get("cloud.agent", 0) >= 1, stats
        assert not any(k.startswith("cli.") for k in stats), stats   # no msb
    finally:
        helpers.remove_box(box)
    assert "cloudy" not in os.listdir(cmount.path)


def test_cloud_failed_create_leaves_no_sandbox(cmount):
    emu = cmount.emulator
    emu.fault(kind="crash", prefix="boot", count=1)
    try:
        e = errno_of(os.mkdir, cmount.p("cdoomed"))
    finally:
        emu.clear_faults()
    assert e == errno.EIO, errno.errorcode.get(e, e)
    assert "cdoomed" not in os.listdir(cmount.path)


def test_status_shows_msb_state_image_and_resources(mmount, emu):
    assert write_once(mmount.ctl, "new msbstat cpus=2 memory=256 "
                      "workdir=/tmp env=GREETING=hello\n") == 0
    box = helpers.Box(mmount, "msbstat")
    try:
        st = box.status()
        assert st["state"] == "running", st
        assert st["native_state"] == "Running", st
        assert st["image"] == "alpine", st
        assert st["cpus"] == "2" and st["memory"] == "256 MiB", st
        assert st["workdir"] == "/tmp", st
        # What msb itself says of it.
        cp = msb(emu, "inspect", "msbstat", "--format", "json")
        assert cp.returncode == 0 and b'"workdir": "/tmp"' in cp.stdout
        # Commands run as the SDK runs them: the sandbox's environment and
        # working directory.
        assert box.check("echo $GREETING; pwd") == "hello\n/tmp\n"
    finally:
        helpers.remove_box(box)


def test_pause_and_resume(mbox, emu):
    mbox.start()
    assert mbox.ctl("pause\n") == 0, mbox.err()
    assert mbox.status()["native_state"] == "Paused"
    assert mbox.state() == "stopped"
    assert mbox.ctl("resume\n") == 0, mbox.err()
    assert mbox.status()["native_state"] == "Running"
    assert mbox.check("echo back") == "back\n"


def test_unknown_verb_names_the_verbs(mbox):
    assert mbox.ctl("frobnicate\n") == errno.EINVAL
    assert "pause" in mbox.err() and "resume" in mbox.err()


def test_sandboxes_of_other_msb_users_show(mmount, emu):
    # A sandbox made with msb itself is in the tree, and one removed
    # with it goes.
    cp = msb(emu, "create", "alpine", "--name", "byhand", "-q")
    assert cp.returncode == 0, cp.stderr
    try:
        helpers.wait_for(lambda: "byhand" in os.listdir(mmount.path), 30,
                         what="byhand to show")
        assert helpers.Box(mmount, "byhand").check("echo hi") == "hi\n"
    finally:
        msb(emu, "rm", "-f", "byhand")
    helpers.wait_for(lambda: "byhand" not in os.listdir(mmount.path), 30,
                     what="byhand to go")


def test_failed_create_leaves_no_sandbox(mmount, emu):
    # The VM dies before its agent is up: msb keeps it, stopped; sbxfs
    # removes it, so that mkdir's failure leaves nothing behind.
    emu.fault(kind="crash", prefix="boot", count=1)
    e = errno_of(os.mkdir, mmount.p("doomed"))
    assert e == errno.EIO, errno.errorcode.get(e, e)
    assert "before agent relay became available" in mmount.log_tail()
    assert "doomed" not in os.listdir(mmount.path)
    cp = msb(emu, "ls", "--format", "json")
    assert cp.returncode == 0 and b"doomed" not in cp.stdout, cp.stdout


# ------------------------------------------------------------ a misbehaving agent

def test_agent_never_ready_times_out_with_the_reason(mbox, emu):
    mbox.start()
    # The socket is bound but the handshake never comes (a sandbox still
    # booting, or wedged): ETIMEDOUT within the timeout, with why.
    write_once(mbox.p("ctl"), "stop\n")
    mbox.wait_state("stopped")
    mbox.start()
    emu.fault(kind="unready", count=100)
    t0 = time.monotonic()
    e = errno_of(os.listdir, mbox.r("etc"))
    took = time.monotonic() - t0
    emu.clear_faults()
    assert e == errno.ETIMEDOUT, errno.errorcode.get(e, e)
    assert took < 12, took
    assert "did not become ready" in mbox.err()
    mmount_still_works(mbox)


def mmount_still_works(box):
    box.mount.still_works()
    helpers.put(box.r("tmp", "after"), "fine")
    assert read_bytes(box.r("tmp", "after")) == b"fine"


@pytest.mark.parametrize("kind", ["garbage", "oversize"])
def test_a_broken_frame_costs_the_connection_not_the_daemon(mbox, emu, kind):
    mbox.start()
    helpers.put(mbox.r("tmp", "x"), "x")
    emu.fault(kind=kind, prefix="fs.Stat", count=1)
    e = errno_of(os.stat, mbox.r("tmp", "y"))
    emu.clear_faults()
    # The stat was answered with bytes that are not the protocol: that
    # socket is closed, the stat is asked again on a new one.
    assert e in (0, errno.ENOENT, errno.ECONNRESET, errno.EIO), e
    assert "not the agent protocol" in mbox.mount.log_tail()
    mmount_still_works(mbox)
    assert read_bytes(mbox.r("tmp", "x")) == b"x"


def test_a_command_whose_connection_drops_never_reports_success(mbox, emu):
    mbox.start()
    n = mbox.spawn("echo started; sleep 30; echo never")
    helpers.wait_for(lambda: os.stat(mbox.cmd(n, "stdout")).st_size == 8,
                     30, what="the command to start")
    # The next request drops the socket, and the command with it.
    emu.fault(kind="drop", prefix="fs.", count=1)
    errno_of(os.stat, mbox.r("tmp", "z%d" % n))
    status = mbox.wait_cmd_done(n, timeout=30)
    assert status.startswith("failed"), status
    assert errno_of(read_bytes, mbox.cmd(n, "stdout")) == errno.EIO
    mmount_still_works(mbox)


def test_newer_generation_and_split_writes(tmp_path_factory):
    # An agent of protocol generation 9 (msb 0.7), whose every write
    # comes in random small pieces: frames are reassembled, and sbxfs
    # speaks generation 7 to it.
    base = tmp_path_factory.mktemp("msbgen9")
    helpers.start_emulator("microsandbox", base / "state", "--generation",
                           "9", "--split")
    m = helpers.Mount(base / "mnt", base / "state", base / "sbxfs.log",
                      "microsandbox", ["timeout=10"])
    conftest.ALL_MOUNTS.append(m)
    m.start()
    try:
        box = helpers.new_box(m, "gen9")
        data = os.urandom(3 * 1024 * 1024 + 17)
        helpers.put(box.r("tmp", "big"), data)
        assert read_bytes(box.r("tmp", "big")) == data
        assert box.check("printf 'a%.0s' $(seq 1 5000) | wc -c") == "5000\n"
        assert sorted(os.listdir(box.r("tmp"))) == ["big"]
        helpers.remove_box(box)
    finally:
        assert m.stop() == 0, m.log_tail()


# ------------------------------------------------------------ the agent's own calls

def test_namespace_calls_are_the_agents_not_scripts(mbox, emu):
    # mkdir, rename, chmod, chown, symlink, unlink, rmdir, truncate and
    # utimens are messages of the agent: no process starts in the sandbox
    # for them.
    mbox.start()
    d = mbox.r("tmp", "ns")
    os.mkdir(d)
    helpers.put(os.path.join(d, "f"), "x")
    os.listdir(d)
    cases = [
        ("fs.Mkdir", lambda: os.mkdir(os.path.join(d, "sub"), 0o750)),
        ("fs.Rename", lambda: os.rename(os.path.join(d, "f"),
                                        os.path.join(d, "g"))),
        ("fs.SetStat", lambda: os.chmod(os.path.join(d, "g"), 0o600)),
        ("fs.SetStat", lambda: os.chown(os.path.join(d, "g"), 1234, 5678)),
        ("fs.Symlink", lambda: os.symlink("g", os.path.join(d, "l"))),
        ("fs.Remove", lambda: os.unlink(os.path.join(d, "l"))),
        ("fs.RemoveDir", lambda: os.rmdir(os.path.join(d, "sub"))),
        ("fs.SetStat", lambda: os.truncate(os.path.join(d, "g"), 3)),
        ("fs.SetStat", lambda: os.utime(os.path.join(d, "g"), (1000000, 2000000))),
    ]
    for key, op in cases:
        emu.reset_stats()
        op()
        s = emu.stats()
        assert helpers.count(s, key) == 1, (key, s)
        assert helpers.count(s, "exec") == 0, (key, s)
    st = os.stat(helpers.backing(emu, mbox, "tmp", "ns", "g"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 1234, 5678)
    assert (st.st_size, st.st_atime, st.st_mtime) == (3, 1000000, 2000000)
    # A time with nanoseconds is the script's: the agent takes seconds.
    emu.reset_stats()
    os.utime(os.path.join(d, "g"), ns=(1000000123456789, 2000000123456789))
    assert helpers.count(emu.stats(), "exec") == 1, emu.stats()
    st = os.stat(helpers.backing(emu, mbox, "tmp", "ns", "g"))
    assert st.st_mtime_ns == 2000000123456789
    assert sorted(os.listdir(helpers.backing(emu, mbox, "tmp", "ns"))) == ["g"]
    # POSIX outcomes: a name that is there, a directory that is not empty.
    assert errno_of(os.mkdir, d) == errno.EEXIST
    assert errno_of(os.rmdir, mbox.r("tmp")) == errno.ENOTEMPTY
    assert errno_of(os.unlink, os.path.join(d, "nope")) == errno.ENOENT
    # A name the agent cannot carry goes by script, and works the same.
    odd = os.path.join(os.fsencode(d), b"caf\xe9")
    os.mkdir(odd)
    os.rename(odd, os.path.join(os.fsencode(d), b"d\xe9j\xe0"))
    assert os.listdir(os.fsencode(d)) == [b"d\xe9j\xe0", b"g"] or \
        sorted(os.listdir(os.fsencode(d))) == [b"d\xe9j\xe0", b"g"]

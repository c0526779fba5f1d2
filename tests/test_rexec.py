"""The Rexec provider against the Rexec emulator, in both server variants.

What only Rexec has: configuration and token secrecy, the state machine
and the two container ids behind ctl, Rexec's image keys on `new`, scripts
and commands over the exec endpoint ("rexec", the newer server) or the
terminal WebSocket ("rexec@old", the 2026-02-27 server), faults injected by
the emulator, and the number of requests an operation costs.  The tree
contract itself is checked by the other modules run with
SBXFS_PROVIDERS=rexec,rexec@old.
"""

import errno
import hashlib
import os
import subprocess
import threading
import time

import pytest

import conftest
import helpers
from helpers import (Box, Emulator, errno_of, read_bytes, read_text,
                     require_sandboxes, wait_for, write_ok, write_once)


@pytest.fixture(scope="module", params=["rexec", "rexec@old"])
def rmount(request, tmp_path_factory):
    """A rexec mount of its own per server variant."""
    yield from conftest.own_mount(tmp_path_factory, request.param, ["timeout=5"])


@pytest.fixture
def emu(rmount):
    yield from conftest.fault_free(rmount.emulator)


@pytest.fixture
def rbox(request, rmount):
    yield from conftest.unstarted_box(request, rmount)


def old(mount):
    return helpers.provider_variant(mount.provider) == "old"


backing = helpers.backing


def put(path, data):
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


def count(stats, *routes):
    return sum(stats["routes"].get(r, 0) for r in routes)


EXEC = "POST /api/containers/{id}/exec"
TERMINAL = "GET /ws/terminal/{containerId}"


def run_cmd(box, line, timeout=60):
    """Start a command through exec; its number, output and status."""
    fd = os.open(box.p("exec"), os.O_RDWR)
    try:
        os.write(fd, line.encode() if isinstance(line, str) else line)
        out = helpers.read_all(fd, timeout=timeout)
    finally:
        os.close(fd)
    n = os.readlink(box.p("cmd", "last"))
    return n, out, read_text(box.p("cmd", n, "status")).strip()


# ------------------------------------------------------------ configuration

def test_missing_token_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REXEC")}
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cp = subprocess.run([helpers.sbxfs_binary(), "-f", "-o", "provider=rexec",
                         "-o", "state_dir=%s" % (tmp_path / "s"), str(mnt)],
                        env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=30)
    assert cp.returncode != 0
    lines = cp.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "REXEC_TOKEN" in lines[0], lines
    assert not helpers.is_mounted(str(mnt))


def test_refused_token_is_a_mount_error(tmp_path, rmount):
    wrong = "rexec_" + "0" * 64
    env = dict(rmount.emulator.env(), REXEC_TOKEN=wrong)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cp = subprocess.run([helpers.sbxfs_binary(), "-f", "-o", "provider=rexec",
                         "-o", "state_dir=%s" % (tmp_path / "s"), str(mnt)],
                        env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=60)
    assert cp.returncode != 0
    err = cp.stderr.decode()
    assert "refused" in err and "401" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert wrong not in err and wrong not in cp.stdout.decode()
    assert not helpers.is_mounted(str(mnt))


def test_token_as_mount_option(tmp_path, rmount):
    env = {k: v for k, v in rmount.emulator.env().items()
           if not k.startswith("REXEC")}
    m = helpers.Mount(tmp_path / "mnt", tmp_path / "s", tmp_path / "log",
                      "rexec", ["api_url=" + rmount.emulator.url("/api"),
                                "token=" + Emulator.TOKEN])
    # Not through Mount.start: that would start an emulator of its own.
    cp = subprocess.Popen(m.argv(), env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: helpers.is_mounted(m.path), 30, what="the mount")
        info = helpers.parse_kv(read_text(m.ctl))
        assert info["api_url"] == rmount.emulator.url()
        assert Emulator.TOKEN not in read_text(m.ctl)
    finally:
        helpers.unmount(m.path)
        cp.wait(30)


def test_root_ctl_describes_without_secrets(rmount):
    info = helpers.parse_kv(rmount.ctl_info())
    assert info["provider"] == "rexec"
    assert info["api_url"] == rmount.emulator.url()
    assert Emulator.TOKEN not in rmount.ctl_info()


# ------------------------------------------------------------ lifecycle

def test_lifecycle_through_the_state_machine(rmount, emu):
    name = helpers.box_name("life")
    os.mkdir(rmount.p(name))
    box = Box(rmount, name)
    try:
        # Rexec makes running containers: mkdir returns once running.
        assert box.state() == "running"
        st = box.status()
        assert st["provider"] == "rexec" and st["native_state"] == "running"
        info = emu.control("GET", "/_emu/sandbox/" + name)
        assert st["id"] == info["docker_id"] and st["db_id"] == info["db_id"]
        put(box.r("home", "user", "f"), "data")
        box.stop()
        assert box.state() == "stopped"
        # root/ of a stopped container: EAGAIN, and err says why.
        assert errno_of(os.listdir, box.r("tmp")) == errno.EAGAIN
        assert "not running" in box.err()
        assert write_once(box.p("exec"), "true") == errno.EAGAIN
        box.start()
        assert box.state() == "running"
        assert read_bytes(box.r("home", "user", "f")) == b"data"
        write_ok(box.p("ctl"), "restart\n")
        assert box.state() == "running"
    finally:
        os.rmdir(box.path)
    assert name not in rmount.names()
    emu.reset_stats()
    rmount.names()
    assert emu.stats()["total"] <= 1   # one list


def test_intermediate_states_show_in_status(tmp_path):
    require_sandboxes("rexec")
    state = tmp_path / "state"
    state.mkdir()
    helpers.start_emulator("rexec", state, "--delay", "1.5")
    m = helpers.Mount(tmp_path / "mnt", state, tmp_path / "log", "rexec")
    m.start()
    try:
        name = helpers.box_name("slow")
        seen = set()
        t = threading.Thread(target=lambda: write_ok(m.ctl, "new %s\n" % name))
        t.start()
        # Look only once the server has it: a lookup before would be
        # remembered by the kernel as "no such entry".
        wait_for(lambda: errno_of(m.emulator.control, "GET",
                                  "/_emu/sandbox/" + name) == 0,
                 what="the container on the server")
        while t.is_alive():
            try:
                seen.add(helpers.parse_kv(
                    read_text(m.p(name, "status"))).get("native_state"))
            except OSError:
                pass
            time.sleep(0.1)
        t.join()
        assert {"creating", "configuring"} <= seen, seen
        assert Box(m, name).state() == "running"
        os.rmdir(m.p(name))
    finally:
        m.stop()


def test_recreated_container_gets_a_new_docker_id(rbox, emu):
    put(rbox.r("home", "user", "kept"), "volume")
    first = rbox.status()["id"]
    write_ok(rbox.p("exec"), "true")
    rbox.stop()
    emu.control("POST", "/_emu/sandbox/%s/vanish" % rbox.name)
    rbox.start()
    second = rbox.status()["id"]
    assert second != first and len(second) == 64
    assert read_bytes(rbox.r("home", "user", "kept")) == b"volume"
    _, out, status = run_cmd(rbox, "cat /home/user/kept")
    assert (out, status) == (b"volume", "exited 0")


def test_bad_image_is_einval_with_the_supported_list(rmount):
    name = helpers.box_name("img")
    assert write_once(rmount.ctl, "new %s image=windows\n" % name) == \
        errno.EINVAL
    err = read_text(rmount.ctl)
    assert "unsupported image type" in err and "ubuntu" in err and \
        "alpine" in err, err
    assert write_once(rmount.ctl, "new %s colour=blue\n" % name) == \
        errno.EINVAL
    assert "colour" in read_text(rmount.ctl)
    assert name not in rmount.names()


def test_image_keys_and_custom_images(rmount):
    name = helpers.box_name("alp")
    write_ok(rmount.ctl, "new %s image=alpine\n" % name)
    try:
        assert Box(rmount, name).status()["image"] == "alpine"
    finally:
        os.rmdir(rmount.p(name))
    name = helpers.box_name("cust")
    write_ok(rmount.ctl, "new %s image=docker.io/library/debian:12\n" % name)
    try:
        assert Box(rmount, name).status()["image"] == \
            "custom:docker.io/library/debian:12"
    finally:
        os.rmdir(rmount.p(name))


def test_exists_is_eexist(rmount, rbox):
    assert errno_of(os.mkdir, rbox.path) == errno.EEXIST


# ------------------------------------------------------------ files

def test_rmdir_of_a_full_directory_deletes_nothing(rbox):
    d = rbox.r("tmp", "full")
    os.makedirs(os.path.join(d, "sub"))
    put(os.path.join(d, "sub", "f"), "keep me")
    assert errno_of(os.rmdir, d) == errno.ENOTEMPTY
    assert errno_of(os.rmdir, os.path.join(d, "sub")) == errno.ENOTEMPTY
    assert read_bytes(os.path.join(d, "sub", "f")) == b"keep me"
    assert errno_of(os.unlink, d) == errno.EISDIR
    assert os.listdir(d) == ["sub"]


def test_listing_is_exact(rbox, emu):
    # Names the server's `ls` parsing would mangle: runs of spaces, "->",
    # newlines, bytes that are no UTF-8, an empty directory, a symlink.
    d = rbox.r("tmp", "odd")
    server = backing(emu, rbox, "tmp", "odd")
    os.mkdir(server)
    names = [b"two  spaces", b"a -> b", b"new\nline", b"\xff\xfe",
             b"-rw-r--r-- 1 root root", b"empty"]
    for n in names[:-1]:
        put(os.path.join(server.encode(), n), n)
    os.mkdir(os.path.join(server.encode(), b"empty"))
    os.symlink("two  spaces", os.path.join(server, "link"))
    got = sorted(os.listdir(d.encode()))
    assert got == sorted(names + [b"link"])
    for n in names[:-1]:
        assert read_bytes(os.path.join(d.encode(), n)) == n
    assert os.listdir(os.path.join(d, "empty")) == []
    assert os.readlink(os.path.join(d, "link")) == "two  spaces"


def test_uploads_keep_modes_and_owner(rbox, emu):
    f = rbox.r("tmp", "script")
    fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0o750)
    os.write(fd, b"#!/bin/sh\necho hi\n")
    os.close(fd)
    assert os.stat(backing(emu, rbox, "tmp", "script")).st_mode & 0o7777 == \
        0o750
    os.chmod(f, 0o4711)
    put(f, "#!/bin/sh\necho changed\n")
    assert os.stat(f).st_mode & 0o7777 == 0o4711
    _, out, status = run_cmd(rbox, "/tmp/script")
    assert (out, status) == (b"changed\n", "exited 0")


def test_files_over_the_upload_cap(rbox, tmp_path):
    # 101 MiB: more than one upload request may carry; parts are joined.
    src = tmp_path / "big"
    with open(src, "wb") as f:
        for i in range(101):
            f.write(bytes([i]) * (1 << 20))
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    helpers.run(["cp", str(src), rbox.r("tmp", "big")], timeout=600)
    assert os.stat(rbox.r("tmp", "big")).st_size == 101 << 20
    _, out, _ = run_cmd(rbox, "sha256sum /tmp/big; ls -a /tmp", timeout=120)
    assert out.split()[0].decode() == want
    assert b".sbxfs-up" not in out   # no parts left behind
    with open(rbox.r("tmp", "big"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == want


# ------------------------------------------------------------ commands

def test_exec_exit_code_and_streams(rbox):
    write_ok(rbox.p("exec"), "echo out; echo err >&2; exit 7")
    assert helpers.cat(rbox.p("exec")) == b"out\nerr\n"
    assert read_text(rbox.p("cmd", "1", "status")).strip() == "exited 7"
    assert read_bytes(rbox.p("cmd", "1", "stdout")) == b"out\n"
    assert read_bytes(rbox.p("cmd", "1", "stderr")) == b"err\n"


def test_output_is_exact_bytes_even_with_markers(rbox):
    # What a framing could trip over: the markers' own text, prompts, CRs,
    # NULs and bytes that are no UTF-8, no final newline.
    line = ("printf 'SBX%sB\\n' 0123; printf 'SBX%sE0\\n' 0123; "
            "printf 'SBX0123E0\\r\\n-- \\n$ # '; printf '\\000\\377\\376x'")
    _, out, status = run_cmd(rbox, line)
    assert out == (b"SBX0123B\nSBX0123E0\nSBX0123E0\r\n-- \n$ # "
                   b"\x00\xff\xfex")
    assert status == "exited 0"


def test_ten_megabytes_of_output(rbox):
    _, out, status = run_cmd(
        rbox, "head -c 10000000 /dev/urandom | tee /tmp/r | wc -c >&2; "
        "cat /tmp/r", timeout=300)
    n = os.readlink(rbox.p("cmd", "last"))
    stdout = read_bytes(rbox.p("cmd", n, "stdout"))
    assert len(stdout) == 10000000 and status == "exited 0"
    assert read_bytes(rbox.p("cmd", n, "stderr")).strip() == b"10000000"
    assert read_bytes(rbox.r("tmp", "r")) == stdout


def test_stdin_text_binary_and_eof(rbox):
    write_ok(rbox.p("exec"), "read a; read b; echo \"$b $a\"; od -An -tx1")
    stdin = rbox.p("cmd", "1", "stdin")
    fd = os.open(stdin, os.O_WRONLY)
    os.write(fd, b"world\nhello\n")
    os.write(fd, b"\x00\xff")
    os.close(fd)   # EOF: od ends
    assert helpers.cat(rbox.p("exec"), timeout=60) == \
        b"hello world\n 00 ff\n"
    assert read_text(rbox.p("cmd", "1", "status")).strip() == "exited 0"


def test_kill_with_a_signal(rbox):
    write_ok(rbox.p("exec"), "trap 'echo got INT; exit 0' INT; "
             "echo ready; while :; do sleep 0.1; done")
    fd = os.open(rbox.p("cmd", "1", "out"), os.O_RDONLY)
    try:
        first = os.read(fd, 100)
        assert first == b"ready\n"
        write_ok(rbox.p("cmd", "1", "ctl"), "kill INT")
        out = first + helpers.read_all(fd, timeout=60)
    finally:
        os.close(fd)
    assert out == b"ready\ngot INT\n"
    assert read_text(rbox.p("cmd", "1", "status")).strip() == "exited 0"
    write_ok(rbox.p("exec"), "sleep 600")
    write_ok(rbox.p("cmd", "2", "ctl"), "kill")
    helpers.cat(rbox.p("exec"), timeout=60)
    assert read_text(rbox.p("cmd", "2", "status")).strip() == "killed TERM"


def test_twenty_commands_in_parallel(rbox):
    errs = []

    def start(i):
        e = write_once(rbox.p("exec"), "sleep 0.5; echo %d; echo e%d >&2" % (i, i))
        if e:
            errs.append(e)
    threads = [threading.Thread(target=start, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errs
    outs = set()
    for n in range(1, 21):
        helpers.cat(rbox.p("cmd", str(n), "out"), timeout=120)
        assert read_text(rbox.p("cmd", str(n), "status")).strip() == "exited 0"
        o = read_bytes(rbox.p("cmd", str(n), "stdout"))
        assert read_bytes(rbox.p("cmd", str(n), "stderr")) == b"e" + o
        outs.add(o)
    assert outs == {b"%d\n" % i for i in range(20)}


# ------------------------------------------------------------ faults

def test_rate_limit_is_eagain_with_the_reason(rbox, emu):
    # The first HTTP call of a read: the lookup's exec call (new server),
    # or the download (old server: scripts go over the open terminal).
    put(rbox.r("tmp", "r"), "x")
    put(backing(emu, rbox, "tmp", "s"), "y")
    emu.fault(kind="ratelimit", prefix="/api/containers", count=1)
    assert errno_of(read_bytes, rbox.r("tmp", "s")) == errno.EAGAIN
    assert "rate limit" in rbox.err() and "60" in rbox.err()
    assert read_bytes(rbox.r("tmp", "s")) == b"y"
    # Server errors of idempotent calls are retried.
    emu.fault(kind="status", status=503, prefix="/api/containers",
              method="GET", count=2)
    assert read_bytes(rbox.r("tmp", "r")) == b"x"
    rbox.mount.still_works()


def test_dropped_terminal_mid_command_loses_nothing(rbox, emu):
    if not old(rbox.mount):
        pytest.skip("the terminal carries commands only on the old server")
    write_ok(rbox.p("exec"), "true")   # the terminal is open
    helpers.cat(rbox.p("exec"))
    emu.fault(kind="ws_drop", prefix="/ws/terminal", count=1, delay=0.2)
    n, out, status = run_cmd(rbox, "echo run >> /tmp/once; sleep 1; "
                             "echo done")
    assert (out, status) == (b"done\n", "exited 0")
    assert read_bytes(rbox.r("tmp", "once")) == b"run\n"   # ran once
    # A plain write after the drop: the terminal is reopened.
    put(rbox.r("tmp", "after"), "ok")
    assert read_bytes(rbox.r("tmp", "after")) == b"ok"
    rbox.mount.still_works()


def test_silent_server_is_bounded(rbox, emu):
    # -o timeout=5: a call that hangs fails with ETIMEDOUT, bounded.
    put(backing(emu, rbox, "tmp", "slow-one"), "z")
    emu.fault(kind="slow", delay=30, prefix="/api/containers", count=100)
    t0 = time.monotonic()
    e = errno_of(read_bytes, rbox.r("tmp", "slow-one"))
    took = time.monotonic() - t0
    emu.clear_faults()
    assert e in (errno.ETIMEDOUT, errno.EIO), errno.errorcode.get(e)
    assert took < 120
    rbox.mount.still_works()
    put(rbox.r("tmp", "after-slow"), "fine")
    assert read_bytes(rbox.r("tmp", "after-slow")) == b"fine"


def test_failed_uploads_are_reported_not_lost(rbox, emu):
    acked = {}
    for i in range(8):
        if i % 2 == 0:
            emu.fault(kind="drop", prefix="/api/containers", method="POST",
                      count=1)
        data = os.urandom(2000 + i)
        p = rbox.r("tmp", "w%d" % i)
        if write_once(p, data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == 0:
            acked[p] = data
        emu.clear_faults()
    assert acked, "every write failed: the retries do not work"
    for p, data in acked.items():
        rel = p[len(rbox.root):]
        with open(backing(emu, rbox, rel), "rb") as f:
            assert f.read() == data, p
    rbox.mount.still_works()


def test_token_never_reaches_log_status_or_err(rmount, rbox, emu):
    emu.fault(kind="status", status=401, prefix="/api/containers", count=1)
    errno_of(os.listdir, rbox.r("tmp"))
    emu.fault(kind="status", status=401, prefix="/ws/terminal", count=1)
    write_once(rbox.p("exec"), "true")
    emu.clear_faults()
    texts = [open(rmount.log_path, "rb").read(),
             read_bytes(rbox.p("status")), read_bytes(rbox.p("err")),
             read_bytes(rmount.ctl)]
    for t in texts:
        assert Emulator.TOKEN.encode() not in t


# ------------------------------------------------------------ requests

def test_requests_per_operation(rbox, emu):
    d = rbox.r("tmp", "counted")
    server = backing(emu, rbox, "tmp", "counted")
    os.mkdir(server)
    for i in range(20):
        put(os.path.join(server, "f%d" % i), "x" * i)
    write_ok(rbox.p("exec"), "true")   # the transport is known and open
    helpers.cat(rbox.p("exec"))
    emu.reset_stats()
    helpers.run(["ls", "-l", d])
    s = emu.stats()
    if old(rbox.mount):
        # Everything went over the open terminal.
        assert s["total"] == 0, s
    else:
        # One listing for all entries; the other calls are the lookups
        # of the path itself (root/, tmp, counted).
        assert count(s, EXEC) <= 4 and s["total"] <= 5, s
    emu.reset_stats()
    helpers.run(["ls", "-l", d])
    assert emu.stats()["total"] == 0, emu.stats()
    # A short command: one exec call, or one round on the open terminal.
    emu.reset_stats()
    _, out, _ = run_cmd(rbox, "echo one")
    assert out == b"one\n"
    s = emu.stats()
    assert s["total"] == (0 if old(rbox.mount) else 1), s
    # Reading a file: its attributes, then one download.
    emu.reset_stats()
    assert read_bytes(os.path.join(d, "f7")) == b"x" * 7
    assert count(emu.stats(), "GET /api/containers/{id}/files") == 1

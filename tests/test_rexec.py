"""The Rexec provider against the Rexec emulator, in both server variants.

What only Rexec has: configuration and token secrecy, the state machine
and the two container ids behind ctl, Rexec's image keys on `new`, scripts
and commands over the exec endpoint ("rexec", the newer server) or the
terminal WebSocket ("rexec@old", the 2026-02-27 server), and a terminal
dropped mid-command.  What every remote provider must do (a silent
server, Ctrl-C, failed uploads, the token's secrecy, errors mapped to
errno, requests per operation) is in test_remote.py; the tree contract is
checked by the other modules run with SBXFS_PROVIDERS=rexec,rexec@old.
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


put = helpers.put


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
    assert emu.stats()["total"] <= 1, emu.stats()   # one list


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


def test_big_files_come_uncompressed(rbox, emu):
    # The server gzips what a client accepts gzip'd; a file of a MiB or
    # more is asked for as it is, a small one compressed.
    big, small = os.urandom(3 << 20), b"small text\n" * 1000
    put(backing(emu, rbox, "tmp", "big"), big)
    put(backing(emu, rbox, "tmp", "small"), small)
    emu.reset_stats()
    assert read_bytes(rbox.r("tmp", "big")) == big
    assert read_bytes(rbox.r("tmp", "small")) == small
    stats = emu.stats()
    route = "GET /api/containers/{id}/files"
    assert stats["routes"].get(route) == 2
    assert stats["gzipped"].get(route) == 1


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
    write_ok(rbox.p("exec"), "| read a; read b; echo \"$b $a\"; od -An -tx1")
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

"""The Daytona provider against the Daytona emulator.

What only Daytona has: configuration from the SDKs' environment variables,
the state machine behind ctl, Daytona's keys on `new`, TLS, older servers
and the list cursor, commands and their log stream, and what a short
attribute timeout costs.  What every remote provider must do (a silent
server, Ctrl-C, dropped uploads, the key's secrecy, errors mapped to
errno, requests per operation) is in test_remote.py; the tree contract is
checked by the other modules run with SBXFS_PROVIDERS=daytona.
"""

import errno
import os
import shutil
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import (Box, Emulator, errno_of, read_bytes, read_text,
                     require_sandboxes, run, wait_for, write_ok, write_once)


@pytest.fixture(scope="module")
def dmount(tmp_path_factory):
    """A daytona mount of its own, whatever SBXFS_PROVIDERS says."""
    yield from conftest.own_mount(tmp_path_factory, "daytona", ["timeout=5"])


@pytest.fixture
def emu(dmount):
    yield from conftest.fault_free(dmount.emulator)


@pytest.fixture
def dbox(request, dmount):
    yield from conftest.unstarted_box(request, dmount)


backing = helpers.backing


put = helpers.put


def server_files(emu, box, name, files):
    """Make /tmp/NAME with these files on the server side; its path there."""
    d = backing(emu, box, "tmp", name)
    os.mkdir(d)
    for f, data in files.items():
        put(os.path.join(d, f), data)
    return d


count = helpers.count


# ------------------------------------------------------------ configuration

def test_missing_key_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA")}
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cp = subprocess.run([helpers.sbxfs_binary(), "-f", "-o", "provider=daytona",
                         "-o", "state_dir=%s" % (tmp_path / "s"), str(mnt)],
                        env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=30)
    assert cp.returncode != 0
    lines = cp.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "DAYTONA_API_KEY" in lines[0], lines
    assert not helpers.is_mounted(str(mnt))


def test_https_and_wss_with_a_private_ca(tmp_path):
    # The service behind TLS, as the real one is: the certificate is
    # checked (a mount that does not trust it fails, saying why), and with
    # -o ca_file the API, the toolbox and the log WebSocket (WSS) work.
    require_sandboxes("daytona")
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert, key = helpers.make_certificate(tmp_path)
    state = tmp_path / "state"
    emu = helpers.start_emulator("daytona", state, "--tls-cert", cert,
                                 "--tls-key", key)
    assert emu.url().startswith("https://")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cp = subprocess.run([helpers.sbxfs_binary(), "-f", "-o", "provider=daytona",
                         "-o", "state_dir=%s" % state, str(mnt)],
                        env=emu.env(), stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=120)
    assert cp.returncode != 0
    lines = cp.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "certificate" in lines[0], lines
    assert not helpers.is_mounted(str(mnt))

    m = helpers.Mount(mnt, state, tmp_path / "sbxfs.log", "daytona",
                      ["ca_file=" + cert])
    conftest.ALL_MOUNTS.append(m)
    m.start()
    try:
        assert m.emulator is emu
        b = helpers.new_box(m, "tls", start=True)
        put(b.r("tmp", "f"), "over https\n")
        assert read_text(b.r("tmp", "f")) == "over https\n"
        emu.reset_stats()
        write_ok(b.p("exec"), "echo one; sleep 1; echo two")
        assert helpers.cat(b.p("exec"), timeout=60) == b"one\ntwo\n"
        routes = emu.stats()["routes"]
        logs = [k for k in routes if k.endswith("/logs") and k.startswith("GET")]
        # A read of the log, then the WSS stream of the running command.
        assert sum(routes[k] for k in logs) == 2, routes
        helpers.remove_box(b)
    finally:
        assert m.stop() == 0, m.log_tail()


def test_root_ctl_describes_without_secrets(dmount):
    info = helpers.parse_kv(dmount.ctl_info())
    assert info["provider"] == "daytona"
    assert info["api_url"] == dmount.emulator.url("/api")
    assert info["auth"] == "api_key"
    assert Emulator.API_KEY not in dmount.ctl_info()


def test_refused_key_is_a_mount_error(tmp_path, dmount):
    wrong = "dtn_" + "0" * 64
    env = dict(dmount.emulator.env(), DAYTONA_API_KEY=wrong)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cp = subprocess.run([helpers.sbxfs_binary(), "-f", "-o", "provider=daytona",
                         "-o", "state_dir=%s" % (tmp_path / "s"), str(mnt)],
                        env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=60)
    assert cp.returncode != 0
    err = cp.stderr.decode()
    assert "refused" in err and "401" in err, err
    assert wrong not in err and wrong not in cp.stdout.decode()
    assert not helpers.is_mounted(str(mnt))


def test_older_servers(tmp_path):
    # A bare array for the list (before v0.180) and no toolboxProxyUrl in
    # the sandbox JSON (before v0.148): files still work, through the
    # toolbox-proxy-url call.
    require_sandboxes("daytona")
    state = tmp_path / "state"
    state.mkdir()
    emu = helpers.start_emulator("daytona", state, "--legacy-list",
                                 "--no-proxy-url-field")
    m = helpers.Mount(tmp_path / "mnt", state, tmp_path / "log", "daytona")
    m.start()
    try:
        name = helpers.box_name("old")
        os.mkdir(m.p(name))
        assert name in m.names()
        box = Box(m, name)
        put(box.r("tmp", "f"), "old server")
        assert read_bytes(box.r("tmp", "f")) == b"old server"
        s = emu.stats()
        assert s["routes"].get("GET /api/sandbox/{sid}/toolbox-proxy-url"), s
        os.rmdir(box.path)
        assert name not in m.names()
    finally:
        assert m.stop() == 0, m.log_tail()
        emu.stop()


def test_list_follows_the_cursor(tmp_path):
    # Pages of 2: five sandboxes take three list requests, all shown.
    require_sandboxes("daytona")
    state = tmp_path / "state"
    state.mkdir()
    emu = helpers.start_emulator("daytona", state, "--page-max", "2")
    m = helpers.Mount(tmp_path / "mnt", state, tmp_path / "log", "daytona")
    m.start()
    try:
        names = [helpers.box_name("page") for _ in range(5)]
        for n in names:
            write_ok(m.ctl, "new %s\n" % n)
        # A new sandbox makes the list stale: the next listing asks again.
        emu.reset_stats()
        assert sorted(m.names()) == sorted(names)
        assert count(emu.stats(), "GET /api/sandbox") == 3, emu.stats()
    finally:
        assert m.stop() == 0, m.log_tail()
        emu.stop()


# ------------------------------------------------------------ lifecycle

def test_lifecycle_through_the_state_machine(dmount, emu):
    name = helpers.box_name("life")
    os.mkdir(dmount.p(name))
    box = Box(dmount, name)
    try:
        # Daytona makes running sandboxes: mkdir returns once started.
        assert box.state() == "running"
        st = box.status()
        assert st["provider"] == "daytona" and st["native_state"] == "started"
        assert st["id"] == emu.control("GET", "/_emu/sandbox/" + name)["id"]
        put(box.p("root", "tmp", "f"), "data")
        box.stop()
        assert box.state() == "stopped"
        # root/ of a stopped sandbox: EAGAIN, and err says why.
        assert errno_of(os.listdir, box.r("tmp")) == errno.EAGAIN
        assert "not started" in box.err()
        write_ok(box.p("ctl"), "archive\n")
        assert box.state() == "archived"
        assert box.status()["native_state"] == "archived"
        box.start()
        assert box.state() == "running"
        assert read_bytes(box.r("tmp", "f")) == b"data"
        write_ok(box.p("ctl"), "restart\n")
        assert box.state() == "running"
    finally:
        os.rmdir(box.path)
    assert name not in dmount.names()
    with pytest.raises(Exception):
        emu.control("GET", "/_emu/sandbox/" + name)


def test_new_with_daytona_keys(dmount):
    name = helpers.box_name("keys")
    write_ok(dmount.ctl, "new %s image=debian:12 cpu=2 memory=4 disk=8 "
             "label.team=infra env.SECRET=hunter2 auto_stop=30\n" % name)
    box = Box(dmount, name)
    try:
        st = box.status()
        assert st["image"] == "debian:12"
        assert (st["cpu"], st["memory"], st["disk"]) == ("2", "4", "8")
        assert st["label.team"] == "infra"
        assert st["env.SECRET"] == "(set)"   # values stay out of status
        assert st["auto_stop"] == "30"
        assert "hunter2" not in read_text(box.p("status"))
    finally:
        os.rmdir(box.path)


def test_bad_new_arguments(dmount):
    name = helpers.box_name("bad")
    # A key Daytona does not have: ours to refuse.
    assert write_once(dmount.ctl, "new %s colour=blue\n" % name) == errno.EINVAL
    assert "colour" in read_text(dmount.ctl)
    # Resources without an image: the server refuses (format-1 400).
    assert write_once(dmount.ctl, "new %s cpu=2\n" % name) == errno.EINVAL
    assert "resources" in read_text(dmount.ctl).lower()
    assert name not in dmount.names()


def test_exists_is_eexist(dmount, dbox):
    assert errno_of(os.mkdir, dbox.path) == errno.EEXIST


# ------------------------------------------------------------ commands

def test_exec_exit_code_and_streams(dbox):
    write_ok(dbox.p("exec"), "echo out; echo err >&2; exit 7")
    assert helpers.cat(dbox.p("exec")) == b"out\nerr\n"
    assert read_text(dbox.p("cmd", "1", "status")).strip() == "exited 7"
    assert read_bytes(dbox.p("cmd", "1", "stdout")) == b"out\n"
    assert read_bytes(dbox.p("cmd", "1", "stderr")) == b"err\n"


def test_exec_sees_files_written_in_root(dbox):
    put(dbox.r("tmp", "in"), "from outside\n")
    write_ok(dbox.p("exec"), "cat /tmp/in; echo made > /tmp/out")
    assert helpers.cat(dbox.p("exec")) == b"from outside\n"
    assert read_bytes(dbox.r("tmp", "out")) == b"made\n"


def test_long_output_and_binary_safe_command_line(dbox):
    write_ok(dbox.p("exec"), "seq 1 200000; printf 'q\\047uote \\316\\273\\n'")
    out = helpers.cat(dbox.p("exec"), timeout=120)
    lines = out.split(b"\n")
    assert lines[0] == b"1" and lines[199999] == b"200000"
    assert lines[200000] == b"q'uote \xce\xbb"


def test_kill_with_a_signal(dbox):
    write_ok(dbox.p("exec"), "trap 'echo got INT; exit 0' INT; "
             "echo ready; while :; do sleep 0.1; done")
    fd = os.open(dbox.p("cmd", "1", "out"), os.O_RDONLY)
    try:
        # A stream read returns what has arrived: the trap is set.
        first = os.read(fd, 100)
        assert first == b"ready\n"
        write_ok(dbox.p("cmd", "1", "ctl"), "kill INT")
        out = first + helpers.read_all(fd, timeout=60)
    finally:
        os.close(fd)
    assert out == b"ready\ngot INT\n"
    assert read_text(dbox.p("cmd", "1", "status")).strip() == "exited 0"
    write_ok(dbox.p("exec"), "sleep 600")
    wait_for(lambda: read_text(dbox.p("cmd", "2", "status")).strip() ==
             "running")
    write_ok(dbox.p("cmd", "2", "ctl"), "kill")
    helpers.cat(dbox.p("exec"), timeout=60)
    assert read_text(dbox.p("cmd", "2", "status")).strip() == "killed TERM"


def test_stdin_text(dbox):
    write_ok(dbox.p("exec"), "| read a; read b; echo \"$b $a\"")
    write_ok(dbox.p("cmd", "1", "stdin"), "world\nhello\n")
    assert helpers.cat(dbox.p("exec"), timeout=60) == b"hello world\n"


def test_parallel_commands(dbox):
    for i in range(8):
        write_ok(dbox.p("exec"), "sleep 1; echo %d" % i)
    for i in range(8):
        out = helpers.cat(dbox.p("cmd", str(i + 1), "out"), timeout=60)
        assert out == b"%d\n" % i


def test_output_survives_a_dropped_log_stream(dbox, emu):
    # Drop the log WebSocket of a command still running when its log is
    # first read: the output still arrives whole, by polling the log
    # instead.
    emu.reset_stats()
    emu.fault(kind="drop", prefix="/toolbox", method="GET", count=1, websocket=True)
    write_ok(dbox.p("exec"), "sleep 0.5; for i in 1 2 3; do echo line $i; done; "
             "echo err >&2")
    out = helpers.cat(dbox.p("exec"), timeout=60)
    assert out == b"line 1\nline 2\nline 3\nerr\n"
    n = os.readlink(dbox.p("cmd", "last"))
    assert read_text(dbox.p("cmd", n, "status")).strip() == "exited 0"
    assert read_bytes(dbox.p("cmd", n, "stderr")) == b"err\n"
    assert count(emu.stats(), "GET /process/session/{session}/command/{command}/logs") >= 1, \
        emu.stats()


def test_output_streams_without_polling(dbox, emu):
    emu.reset_stats()
    write_ok(dbox.p("exec"), "echo one; sleep 1; echo two")
    assert helpers.cat(dbox.p("exec"), timeout=60) == b"one\ntwo\n"
    routes = emu.stats()["routes"]
    polls = [k for k in routes if k.endswith("/logs") and k.startswith("GET")]
    # Two GETs of the logs route: one read of the log, then the WebSocket
    # that follows the running command; no polling.
    assert sum(routes[k] for k in polls) == 2, routes


def test_a_command_ended_when_its_log_is_read_is_two_requests(dbox, emu):
    # The first read of the log waits a second at the server: the command
    # has ended by then, and its exec and that read are all it costs.
    write_ok(dbox.p("exec"), "true")
    helpers.cat(dbox.p("exec"))
    emu.reset_stats()
    emu.fault(kind="slow", delay=1, prefix="/toolbox", method="GET", count=1,
              websocket=False)
    write_ok(dbox.p("exec"), "echo quick")
    assert helpers.cat(dbox.p("exec"), timeout=60) == b"quick\n"
    stats = emu.stats()
    assert stats["total"] == 2, stats
    assert count(stats, "GET /process/session/{session}/command/{command}/logs") == 1, \
        stats
    assert stats["faults_armed"] == 0, stats    # the read was plain HTTP


def test_a_restarted_sandbox_gets_a_new_session_at_once(dbox, emu):
    # The session kept from the last command ends with the sandbox's stop:
    # the next command does not try it first.
    write_ok(dbox.p("exec"), "true")
    helpers.cat(dbox.p("exec"))
    dbox.stop()
    dbox.start()
    emu.reset_stats()
    write_ok(dbox.p("exec"), "echo again")
    assert helpers.cat(dbox.p("exec"), timeout=60) == b"again\n"
    stats = emu.stats()
    assert count(stats, "POST /process/session/{session}/exec") == 1, stats
    assert count(stats, "POST /process/session") == 1, stats


def test_exec_on_stopped_sandbox_is_eagain(dbox):
    dbox.stop()
    assert write_once(dbox.p("exec"), "true") == errno.EAGAIN
    assert "not started" in dbox.err()
    dbox.start()


# ------------------------------------------------------------ attribute timeout


@pytest.fixture(scope="module")
def short_ttl(tmp_path_factory):
    """A daytona mount that trusts attributes for one second only."""
    require_sandboxes("daytona")
    base = tmp_path_factory.mktemp("daytona-ttl")
    m = helpers.Mount(base / "mnt", base / "state", base / "sbxfs.log",
                      "daytona", ["timeout=5", "attr_timeout=1"])
    conftest.ALL_MOUNTS.append(m)
    m.start()
    b = helpers.new_box(m, "ttl", start=False)
    yield m, b
    helpers.remove_box(b)
    assert m.stop() == 0, m.log_tail()


def test_expired_entries_come_back_with_one_listing(short_ttl):
    # A walk that outlives the attribute timeout (ls -lR, git status)
    # refreshes a directory's entries with one listing, not one stat each.
    m, b = short_ttl
    emu = m.emulator
    server = server_files(emu, b, "walk", {"f%d" % i: "x" * i for i in range(30)})
    d = b.r("tmp", "walk")
    first = run(["ls", "-l", d]).stdout
    time.sleep(1.5)
    emu.reset_stats()
    assert run(["ls", "-l", d]).stdout == first
    s = emu.stats()
    assert count(s, "GET /files") <= 2, s
    assert count(s, "GET /files/info") <= 4, s
    # Changes made on the server show after the timeout, as before.
    put(os.path.join(server, "f3"), "changed on the server")
    time.sleep(1.5)
    assert os.stat(os.path.join(d, "f3")).st_size == len("changed on the server")
    os.unlink(os.path.join(server, "f4"))
    time.sleep(1.5)
    assert not os.path.exists(os.path.join(d, "f4"))


def test_an_open_file_keeps_its_unsaved_size_past_the_timeout(short_ttl):
    # The server has not seen these bytes yet: a refreshed listing must
    # not shrink the file under its writer.
    m, b = short_ttl
    d = b.r("tmp", "open")
    os.makedirs(d, exist_ok=True)
    for i in range(5):
        put(os.path.join(d, "g%d" % i), "y")
    run(["ls", "-l", d])
    path = os.path.join(d, "g0")
    with open(path, "r+b") as f:
        f.write(b"z" * 5000)
        f.flush()
        time.sleep(1.5)
        assert os.stat(path).st_size == 5000
        assert os.fstat(f.fileno()).st_size == 5000
        time.sleep(1.5)
        assert os.stat(os.path.join(d, "g1")).st_size == 1
        assert os.stat(path).st_size == 5000
    assert os.stat(path).st_size == 5000
    assert read_bytes(path) == b"z" * 5000


def test_open_trusts_what_a_fresh_listing_said(short_ttl):
    # Within the attribute timeout, open does not ask again what the
    # listing just told (stat(2) would not either); after it, it does, and
    # a file changed on the server is fetched anew.
    m, b = short_ttl
    emu = m.emulator
    server = server_files(emu, b, "reads", {"h%d" % i: "v1 %d" % i for i in range(10)})
    d = b.r("tmp", "reads")
    run(["ls", "-l", d])
    emu.reset_stats()
    for i in range(10):
        assert read_text(os.path.join(d, "h%d" % i)) == "v1 %d" % i
    s = emu.stats()
    assert count(s, "GET /files/info") == 0, s
    # The first file alone, then the listed subtree's small files in one
    # script (read ahead).
    assert count(s, "GET /files/download") == 1, s
    assert count(s, "POST /process/execute") == 1, s
    # Again at once (grep -r twice): the copies and the cache answer all,
    # fstat(2) of the open files included.
    emu.reset_stats()
    for i in range(10):
        p = os.path.join(d, "h%d" % i)
        with open(p, "rb") as f:
            assert f.read() == ("v1 %d" % i).encode()
            assert os.fstat(f.fileno()).st_size == len("v1 %d" % i)
    assert emu.stats()["total"] == 0, emu.stats()
    put(os.path.join(server, "h0"), "v2, longer")
    time.sleep(1.5)
    emu.reset_stats()
    assert read_text(os.path.join(d, "h0")) == "v2, longer"
    assert read_text(os.path.join(d, "h1")) == "v1 1"
    s = emu.stats()
    assert count(s, "GET /files/download") == 1, s

"""The Vtrix provider against the Vtrix emulator.

What only Vtrix has: configuration from VTRIX_* variables, the envelope and
its codes, the state machine behind ctl (extend included), commands as
detached execs followed with exec_logs, the one JSON-RPC socket per sandbox
with many calls in flight, and a socket dropped in the middle of a read or
of exec_logs.  What every remote provider must do (a server that stops
answering, Ctrl-C, dropped writes, the token's secrecy, error codes mapped
to errno, calls per operation) is in test_remote.py; the tree contract is
checked by the other modules run with SBXFS_PROVIDERS=vtrix.
"""

import errno
import os
import subprocess
import threading
import time

import pytest

import conftest
import helpers
from helpers import (Box, Emulator, errno_of, read_bytes, read_text,
                     wait_for, write_ok, write_once)

CONNECT = "GET /api/v1/sandbox/{id}/connect"


@pytest.fixture(scope="module")
def vmount(tmp_path_factory):
    """A vtrix mount of its own, whatever SBXFS_PROVIDERS says."""
    yield from conftest.own_mount(tmp_path_factory, "vtrix", ["timeout=5"])


@pytest.fixture
def emu(vmount):
    yield from conftest.fault_free(vmount.emulator)


@pytest.fixture
def vbox(request, vmount):
    yield from conftest.unstarted_box(request, vmount)


backing = helpers.backing


put = helpers.put


count = helpers.count


def env_without_vtrix():
    return {k: v for k, v in os.environ.items() if not k.startswith("VTRIX")}


def try_mount(tmp_path, env, timeout=60):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cp = subprocess.run([helpers.sbxfs_binary(), "-f", "-o", "provider=vtrix",
                         "-o", "state_dir=%s" % (tmp_path / "s"), str(mnt)],
                        env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=timeout)
    assert not helpers.is_mounted(str(mnt))
    return cp


# ------------------------------------------------------------ configuration

def test_missing_credentials_are_a_one_line_error(tmp_path):
    cp = try_mount(tmp_path, env_without_vtrix())
    assert cp.returncode != 0
    lines = cp.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    for var in ("VTRIX_URL", "VTRIX_TOKEN", "VTRIX_PROJECT_ID"):
        assert var in lines[0], lines


def test_refused_token_is_a_mount_error(tmp_path, vmount):
    wrong = "rx_" + "0" * 48
    env = dict(vmount.emulator.env(), VTRIX_TOKEN=wrong)
    cp = try_mount(tmp_path, env)
    assert cp.returncode != 0
    err = cp.stderr.decode()
    assert "refused" in err and "40100" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert wrong not in err and wrong not in cp.stdout.decode()


def test_wrong_project_is_a_mount_error(tmp_path, vmount):
    env = dict(vmount.emulator.env(), VTRIX_PROJECT_ID="someone-else")
    cp = try_mount(tmp_path, env)
    assert cp.returncode != 0
    assert "40300" in cp.stderr.decode(), cp.stderr


def test_root_ctl_describes_without_secrets(vmount):
    info = helpers.parse_kv(vmount.ctl_info())
    assert info["provider"] == "vtrix"
    assert info["api_url"] == vmount.emulator.url()
    assert info["project_id"] == Emulator.PROJECT
    assert info["user_id"] == Emulator.USER
    assert info["timeout"] == "5"
    assert Emulator.TOKEN not in vmount.ctl_info()


def mounted_user_id(tmp_path, vmount, opts, env):
    """Mount with `opts` and environment `env`; the user_id the root ctl
    shows.  The Mount, stopped."""
    m = helpers.Mount(tmp_path / "mnt", tmp_path / "state", tmp_path / "log", "vtrix",
                      opts)
    m.emulator = vmount.emulator
    with open(m.log_path, "ab") as log:
        m.proc = subprocess.Popen(m.argv(), stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, env=env,
                                  start_new_session=True)
    try:
        wait_for(lambda: os.path.ismount(str(m.path)), 30, what="the mount")
        user = helpers.parse_kv(m.ctl_info())["user_id"]
    finally:
        assert m.stop() == 0, m.log_tail()
    return user, m


def test_options_override_the_environment(tmp_path, vmount):
    # -o token= and friends instead of the environment.
    e = vmount.emulator
    user, m = mounted_user_id(tmp_path, vmount,
                              ["api_url=" + e.url(), "token=" + Emulator.TOKEN,
                               "project_id=" + Emulator.PROJECT,
                               "user_id=" + Emulator.USER], env_without_vtrix())
    assert user == Emulator.USER
    log = open(m.log_path, "rb").read()
    assert Emulator.TOKEN.encode() not in log.split(b"\n", 1)[1]


def test_the_config_file_beats_the_environment(tmp_path, vmount):
    # Credentials in the config file's [vtrix] section, a wrong token in
    # the environment: the file wins (and the command line would beat it).
    cfg = tmp_path / "xdg" / "sbxfs"
    cfg.mkdir(parents=True)
    (cfg / "config").write_text("[vtrix]\ntoken = %s\nuser_id = %s\n"
                                % (Emulator.TOKEN, Emulator.USER))
    os.chmod(cfg / "config", 0o600)
    env = dict(env_without_vtrix(), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               VTRIX_URL=vmount.emulator.url(), VTRIX_TOKEN="wrong",
               VTRIX_PROJECT_ID=Emulator.PROJECT)
    user, _ = mounted_user_id(tmp_path, vmount, [], env)
    assert user == Emulator.USER


def test_r4_gateway(tmp_path, vmount):
    # A gateway that does not know R2's list route: sbxfs speaks R4's
    # /api/v1/sandboxes (create and list both POST there).
    e = vmount.emulator
    e.fault(kind="status", status=404, code=40400,
            prefix="/api/v1/sandbox/list", count=1)
    m = helpers.Mount(tmp_path / "mnt", tmp_path / "state", tmp_path / "log",
                      "vtrix")
    m.emulator = e
    with open(m.log_path, "ab") as log:
        m.proc = subprocess.Popen(m.argv(), stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, env=e.env(),
                                  start_new_session=True)
    try:
        wait_for(lambda: os.path.ismount(m.path), 30, what="the mount")
        assert helpers.parse_kv(m.ctl_info())["api"].startswith("R4")
        e.reset_stats()
        box = helpers.new_box(m, "r4", start=False)
        put(box.r("tmp", "f"), "r4 data")
        assert read_bytes(box.r("tmp", "f")) == b"r4 data"
        write_ok(box.p("ctl"), "extend 1\n")
        s = e.stats()
        assert count(s, "POST /api/v1/sandboxes") >= 1, s
        assert count(s, "GET /api/v1/sandboxes/{id}/connect") == 1, s
        assert count(s, "POST /api/v1/sandboxes/{id}/extend") == 1, s
        assert not [r for r in s["routes"] if r.startswith(
            ("POST /api/v1/sandbox/", "GET /api/v1/sandbox/"))], s
        os.rmdir(box.path)
    finally:
        e.clear_faults()
        assert m.stop() == 0, m.log_tail()


# ------------------------------------------------------------ lifecycle

def test_lifecycle_through_the_state_machine(vmount, emu):
    name = helpers.box_name("life")
    os.mkdir(vmount.p(name))
    box = Box(vmount, name)
    try:
        # Vtrix makes running sandboxes: mkdir returns once active.
        assert box.state() == "running"
        st = box.status()
        assert st["provider"] == "vtrix" and st["native_state"] == "active"
        assert st["id"] == emu.control("GET", "/_emu/sandbox/" + name)["id"]
        assert st["label.name"] == name
        assert helpers.ISO_UTC.match(st["expires"]), st
        put(box.r("tmp", "f"), "data")
        box.stop()
        assert box.status()["native_state"] == "stopped"
        # root/ of a stopped sandbox: EAGAIN, and err says why.
        assert errno_of(os.listdir, box.r("tmp")) == errno.EAGAIN
        assert "not active" in box.err()
        # Stopping a stopped sandbox is nothing to do.
        box.stop()
        box.start()
        assert read_bytes(box.r("tmp", "f")) == b"data"
        write_ok(box.p("ctl"), "restart\n")
        assert box.state() == "running"
        assert read_bytes(box.r("tmp", "f")) == b"data"
    finally:
        os.rmdir(box.path)
    assert name not in vmount.names()
    with pytest.raises(Exception):
        emu.control("GET", "/_emu/sandbox/" + name)


def test_extend(vbox):
    def expires():
        return helpers.parse_kv(read_text(vbox.p("status")))["expires"]

    before = expires()
    write_ok(vbox.p("ctl"), "extend 2\n")
    after = expires()
    t0 = time.mktime(time.strptime(before[:19], "%Y-%m-%dT%H:%M:%S"))
    t1 = time.mktime(time.strptime(after[:19], "%Y-%m-%dT%H:%M:%S"))
    assert t1 - t0 == 2 * 3600, (before, after)
    # Bad arguments are ours to refuse, with the verb quoted.
    assert vbox.ctl("extend\n") == errno.EINVAL
    assert vbox.ctl("extend soon\n") == errno.EINVAL
    assert "soon" in vbox.err()
    assert vbox.ctl("hibernate\n") == errno.EINVAL
    assert "hibernate" in vbox.err()
    # Extend works on a stopped sandbox too (the server allows it).
    vbox.stop()
    write_ok(vbox.p("ctl"), "extend 1\n")
    assert vbox.state() == "stopped"


def test_illegal_transition_is_ebusy(vbox, emu):
    # The server refuses a stop while one is under way (40900): emulate a
    # refusal of a start with an injected 40900 and see EBUSY and its text.
    vbox.stop()
    emu.fault(kind="error_code", code=40900, prefix="/api/v1/sandbox/",
              method="POST", count=1)
    assert vbox.ctl("start\n") == errno.EBUSY
    assert "40900" in vbox.err()
    vbox.start()


def rest_call(emu, method, path, body=None):
    """A REST call of another client (an SDK) with the mount's credentials;
    returns the envelope."""
    import json
    import urllib.error
    import urllib.request
    req = urllib.request.Request(
        emu.url(path), method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + Emulator.TOKEN,
                 "X-Project-ID": Emulator.PROJECT,
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def test_stop_under_way_elsewhere_is_waited_for(vbox, emu):
    # Another client stops the sandbox; while it goes down (still "active")
    # the server refuses another stop with 40900: sbxfs waits for the
    # first one instead of failing.
    sid = vbox.status()["id"]
    assert rest_call(emu, "POST", "/api/v1/sandbox/%s/stop" % sid)["code"] == 0
    again = rest_call(emu, "POST", "/api/v1/sandbox/%s/stop" % sid)
    assert again["code"] == 40900, again
    write_ok(vbox.p("ctl"), "stop\n")
    assert vbox.state() == "stopped"
    # And a start of another client's stopped sandbox is a real start.
    vbox.start()


def test_new_with_vtrix_keys(vmount):
    name = helpers.box_name("keys")
    write_ok(vmount.ctl, "new %s image=debian:12 cpu=2 memory=4Gi ttl=3 "
             "label.team=infra env.GREETING=hello\n" % name)
    box = Box(vmount, name)
    try:
        st = box.status()
        assert st["image"] == "debian:12"
        assert (st["cpu"], st["memory"]) == ("2", "4Gi")
        assert st["label.team"] == "infra"
        created = time.mktime(time.strptime(st["created"][:19],
                                            "%Y-%m-%dT%H:%M:%S"))
        expires = time.mktime(time.strptime(st["expires"][:19],
                                            "%Y-%m-%dT%H:%M:%S"))
        assert abs(expires - created - 3 * 3600) < 5
        # The environment reaches commands (an init payload).
        assert box.check("echo $GREETING") == "hello\n"
    finally:
        os.rmdir(box.path)


def test_bad_new_arguments(vmount):
    name = helpers.box_name("bad")
    assert write_once(vmount.ctl, "new %s colour=blue\n" % name) == errno.EINVAL
    assert "colour" in read_text(vmount.ctl)
    assert write_once(vmount.ctl, "new %s ttl=soon\n" % name) == errno.EINVAL
    assert name not in vmount.names()


def test_exists_is_eexist(vmount, vbox):
    assert errno_of(os.mkdir, vbox.path) == errno.EEXIST


def test_sandboxes_without_a_name_label_show_as_their_id(vmount, emu):
    # One made by another client (an SDK): no "name" label.
    sid = rest_call(emu, "POST", "/api/v1/sandbox/create",
                    {"user_id": Emulator.USER})["data"]["sandbox"]["id"]
    try:
        wait_for(lambda: sid in vmount.names(), 30, what="the id to show")
        box = Box(vmount, sid)
        box.wait_state("running")
        assert box.status()["id"] == sid
    finally:
        write_once(vmount.ctl, "rm %s\n" % sid)
    assert sid not in vmount.names()


# ------------------------------------------------------------ commands

def test_exec_exit_code_and_streams(vbox):
    n = vbox.spawn("echo out; echo err >&2; exit 7")
    assert helpers.cat(vbox.cmd(n, "out")) == b"out\nerr\n"
    assert vbox.wait_cmd_done(n) == "exited 7"
    assert read_bytes(vbox.cmd(n, "stdout")) == b"out\n"
    assert read_bytes(vbox.cmd(n, "stderr")) == b"err\n"


def test_commands_are_detached_and_followed(vbox, emu):
    emu.reset_stats()
    n = vbox.spawn("echo one; sleep 1; echo two")
    assert helpers.cat(vbox.cmd(n, "out"), timeout=60) == b"one\ntwo\n"
    s = emu.stats()
    assert count(s, "WS exec") == 1, s
    assert count(s, "WS exec_logs") == 1, s


def test_exec_sees_files_written_in_root(vbox):
    put(vbox.r("tmp", "in"), "from outside\n")
    assert vbox.check("cat /tmp/in; echo made > /tmp/out") == "from outside\n"
    assert read_bytes(vbox.r("tmp", "out")) == b"made\n"


def test_long_output_and_odd_command_line(vbox):
    out, status, _ = vbox.run("seq 1 200000; printf 'q\\047uote \\316\\273\\n'",
                              timeout=120)
    assert status == "exited 0"
    lines = out.split(b"\n")
    assert lines[0] == b"1" and lines[199999] == b"200000"
    assert lines[200000] == b"q'uote \xce\xbb"
    # A command line that is not UTF-8 travels base64-wrapped.
    write_ok(vbox.p("exec"), b"printf '%s\\n' caf\xe9 | od -An -c | tr -s ' '\n")
    n = vbox.last()
    assert helpers.cat(vbox.cmd(n, "out")).strip() == b"c a f 351 \\n"


@pytest.mark.parametrize("sig,word", [("", "TERM"), ("TERM", "TERM"),
                                      ("INT", "INT"), ("HUP", "HUP"),
                                      ("KILL", "KILL"), ("9", "KILL")])
def test_kill_with_each_signal(vbox, sig, word):
    m = helpers.sleep_marker()
    n = vbox.spawn("sleep %s" % m)
    helpers.wait_sleeping(m)
    write_ok(vbox.cmd(n, "ctl"), ("kill %s" % sig).strip() + "\n")
    assert vbox.wait_cmd_done(n) == "killed " + word
    helpers.wait_no_procs(m)


def test_trapped_signal_and_exit_code(vbox):
    n = vbox.spawn("trap 'echo got INT; exit 0' INT; echo ready; "
                   "while :; do sleep 0.1; done")
    fd = os.open(vbox.cmd(n, "out"), os.O_RDONLY)
    try:
        first = os.read(fd, 100)
        assert first == b"ready\n"
        write_ok(vbox.cmd(n, "ctl"), "kill INT")
        out = first + helpers.read_all(fd, timeout=60)
    finally:
        os.close(fd)
    assert out == b"ready\ngot INT\n"
    assert vbox.wait_cmd_done(n) == "exited 0"


def test_stdin_is_at_end_of_file_and_refused_after_the_start(vbox):
    n = vbox.spawn("cat; echo done")
    assert helpers.cat(vbox.cmd(n, "out")) == b"done\n"
    m = vbox.spawn("sleep 2")
    assert write_once(vbox.cmd(m, "stdin"), "data") == errno.EPIPE


def test_parallel_commands(vbox):
    nums = [vbox.spawn("sleep 1; echo %d" % i) for i in range(8)]
    for i, n in enumerate(nums):
        assert helpers.cat(vbox.cmd(n, "out"), timeout=60) == b"%d\n" % i


def test_output_is_replayed_after_a_dropped_socket(vbox, emu):
    # The socket drops right after exec_logs' first notification: the
    # follower reconnects and asks again; the replay's start is skipped,
    # so nothing is lost or doubled.
    emu.fault(kind="ws_drop", method="exec_logs", count=1)
    n = vbox.spawn("for i in 1 2 3; do echo line $i; sleep 0.3; done; "
                   "echo err >&2")
    out = helpers.cat(vbox.cmd(n, "out"), timeout=60)
    assert out == b"line 1\nline 2\nline 3\nerr\n"
    assert vbox.wait_cmd_done(n) == "exited 0"
    assert read_bytes(vbox.cmd(n, "stderr")) == b"err\n"


def test_a_server_error_while_following_is_asked_again(vbox, emu):
    # One failed exec_logs call (a -32000, as the server answers for any
    # failure) loses nothing: the follower asks again.
    emu.fault(kind="ws_error", method="exec_logs", code=-32000, count=1)
    write_ok(vbox.p("exec"), "echo hi")
    assert helpers.cat(vbox.p("exec")) == b"hi\n"
    assert vbox.cmd_status(vbox.last()) == "exited 0"


def test_a_failed_write_of_the_gate_is_tried_again(vbox, emu):
    # The command waits at its gate until the follower writes it: a
    # failed write is tried again at once, not left to the 30 s bound.
    emu.fault(kind="ws_error", method="write_binary", code=-32000, count=1)
    emu.reset_stats()
    write_ok(vbox.p("exec"), "echo gated")
    assert helpers.cat(vbox.p("exec")) == b"gated\n"
    assert helpers.count(emu.stats(), "WS write_binary") == 2, emu.stats()


def test_lost_output_never_reads_as_success(vbox, emu):
    # A command the follower cannot follow any more: its output was lost,
    # so a read of it ends with EIO (cat fails), and status and err say
    # why.
    emu.fault(kind="ws_error", method="exec_logs", code=-32000, count=100)
    write_ok(vbox.p("exec"), "echo hi")
    cp = helpers.run(["cat", vbox.p("exec")], check=False, timeout=120)
    emu.clear_faults()
    assert cp.returncode != 0 and b"Input/output error" in cp.stderr, cp
    status = vbox.cmd_status(vbox.last())
    assert status.startswith("failed lost"), status
    assert "failed: lost" in vbox.err(), vbox.err()


@pytest.fixture(scope="module")
def kmount(tmp_path_factory):
    """A vtrix mount that checks a quiet socket after 1 s."""
    yield from conftest.own_mount(tmp_path_factory, "vtrix",
                                  ["timeout=5", "keepalive=1"])


def test_a_socket_gone_silent_is_found_by_keepalive(request, kmount):
    # The socket a command's output comes on goes silent both ways, as
    # when the network vanishes.  Without keep-alive the follower would
    # wait out its idle bound (120 s); with -o keepalive=1 an unanswered
    # PING closes it within about 2 s, the follower asks again on a new
    # socket, and every byte of the output is there.
    emu = kmount.emulator
    box = helpers.new_box(kmount, request.node.name, start=True)
    try:
        emu.reset_stats()
        emu.fault(kind="ws_stall", method="exec_logs", count=1)
        t0 = time.monotonic()
        write_ok(box.p("exec"), "echo one; sleep 1; echo two")
        assert helpers.cat(box.p("exec"), timeout=60) == b"one\ntwo\n"
        took = time.monotonic() - t0
        assert box.cmd_status(box.last()) == "exited 0"
        # Asked twice: on the socket that went silent, then on a new one.
        assert helpers.count(emu.stats(), "WS exec_logs") == 2, emu.stats()
        assert took < 30, took
    finally:
        emu.clear_faults()
        helpers.remove_box(box)


def test_exec_on_stopped_sandbox_is_eagain(vbox):
    vbox.stop()
    assert write_once(vbox.p("exec"), "true\n") == errno.EAGAIN
    assert "not active" in vbox.err()
    vbox.start()


def test_a_stop_ends_running_commands(vbox):
    n = vbox.spawn("sleep 600")
    vbox.stop()
    status = vbox.wait_cmd_done(n, timeout=90)
    assert status.startswith("failed") or status.startswith("killed"), status
    vbox.start()


# ------------------------------------------------------------ the socket

def test_twenty_calls_in_flight_on_one_socket(vbox, emu):
    d = backing(emu, vbox, "tmp")
    files = {}
    for i in range(20):
        data = os.urandom(300000 + i)
        with open(os.path.join(d, "p%d" % i), "wb") as f:
            f.write(data)
        files["p%d" % i] = data
    os.listdir(vbox.r("tmp"))   # the socket is open from here on
    emu.reset_stats()
    # Every answer waits 1 s: 20 calls in a row would take 20 s.
    emu.fault(kind="ws_slow", method="read_stream", delay=1.0, count=20)
    got, errs = {}, []
    barrier = threading.Barrier(20)

    def reader(name):
        try:
            barrier.wait(30)
            got[name] = read_bytes(vbox.r("tmp", name))
        except Exception as e:  # reported below
            errs.append(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=reader, args=(n,)) for n in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    took = time.monotonic() - t0
    assert not errs, errs
    assert got == files
    s = emu.stats()
    assert count(s, "WS read_stream") == 20, s
    assert count(s, CONNECT) == 0, s      # all on the socket already open
    assert took < 15, took


def test_binary_files_round_trip_byte_exact(vbox, emu):
    sizes = [0, 1, 2, 3, 4, 65535, 65536, 65537, 262143, 262144, 262145,
             1 << 20, (1 << 20) + 7, 10 << 20, 100 << 20]
    for size in sizes:
        data = os.urandom(size)
        p = vbox.r("tmp", "bin%d" % size)
        put(p, data)
        with open(backing(emu, vbox, "tmp", "bin%d" % size), "rb") as f:
            assert f.read() == data, size
        assert os.stat(p).st_size == size
        assert read_bytes(p) == data, size
        os.unlink(p)
        # Written on the server, read here afresh (not a staged copy).
        q = backing(emu, vbox, "tmp", "srv%d" % size)
        with open(q, "wb") as f:
            f.write(data[::-1])
        assert read_bytes(vbox.r("tmp", "srv%d" % size)) == data[::-1], size
        os.unlink(q)


def test_a_file_too_big_for_one_message_is_efbig(vbox, emu):
    # A file is sent in one write_binary, which sbxfs bounds at 160 MiB of
    # message: close says EFBIG, and the server's file is left alone.
    p = vbox.r("tmp", "huge")
    put(p, b"before")
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        chunk = b"\xab" * (1 << 20)
        for _ in range(125):
            os.write(fd, chunk)
    finally:
        e = errno_of(os.close, fd)
    assert e == errno.EFBIG, errno.errorcode.get(e, e)
    assert "too big" in vbox.err()
    with open(backing(emu, vbox, "tmp", "huge"), "rb") as f:
        assert f.read() == b"before"
    vbox.mount.still_works()


def test_server_written_file_read_byte_exact(vbox, emu):
    data = bytes(range(256)) * 4096 + b"\x00\xff\xfe"
    with open(backing(emu, vbox, "tmp", "srv.bin"), "wb") as f:
        f.write(data)
    assert read_bytes(vbox.r("tmp", "srv.bin")) == data


# ------------------------------------------------------------ faults

def test_socket_dropped_in_the_middle_of_a_read(vbox, emu):
    data = os.urandom(3 << 20)
    with open(backing(emu, vbox, "tmp", "big"), "wb") as f:
        f.write(data)
    emu.fault(kind="ws_drop", method="read_stream", count=1)
    t0 = time.monotonic()
    e = errno_of(read_bytes, vbox.r("tmp", "big"))
    assert e in (errno.ECONNRESET, errno.EIO), errno.errorcode.get(e, e)
    assert time.monotonic() - t0 < 30
    assert "closed" in vbox.err() or "socket" in vbox.err()
    # The next read opens a new socket and gets every byte.
    assert read_bytes(vbox.r("tmp", "big")) == data
    vbox.mount.still_works()

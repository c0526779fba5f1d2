"""The microsandbox emulator (tests/emulators/microsandbox.py) checked with a
tiny raw client (socket + struct + cbor2, in msb_emu.py) and through its fake
`msb`: the relay handshake and id ranges, agentd's checks, exec, fs, the
CLI's JSON and error texts, stats, faults, --split and --generation; and,
when the real msb 0.7.2 is installed under tests/sdk/microsandbox, the CLI
surface of the two side by side.  The cloud stand-in is checked in
test_microsandbox_cloud.py.

Needs no FUSE mount, but root and bubblewrap (commands run in sandboxes).  Run:
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_microsandbox_emulator.py
"""

import errno
import json
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

import helpers
from msb_emu import (BIN, MiB, OPEN_RO, REAL_MSB, Client, Closed, Hub,  # noqa: F401
                     _pids_with_cmdline, _require_machine, box, cbor2, client,
                     connect_to_slot, hub, slot_of, wait_for)


# ============================================================ relay



def test_handshake_ready_frame_and_ranges(hub, box):
    a = Client(hub.socket_path(box))
    b = Client(hub.socket_path(box))
    try:
        assert slot_of(a) != slot_of(b)
        id_, flags, t, p, v = a.ready
        assert (id_, flags, t, v) == (0, 0, "core.ready", 7)
        assert {"boot_time_ns", "init_time_ns", "ready_time_ns", "agent_version"} <= set(p)
        assert "emulator" in p          # an unknown field a client must ignore
        a.close()                       # the lowest free slot is handed out again
        connect_to_slot(hub.socket_path(box), slot_of(a)).close()
    finally:
        b.close()


def test_out_of_range_id_closes_the_connection(client):
    client.send("core.ping", {}, id_=client.id_end)
    assert client.closed_by_peer()


def test_id_zero_only_with_shutdown_flag(client):
    client.send("core.ping", {}, id_=0)
    assert client.closed_by_peer()


def test_oversized_frame_header_closes(client):
    client.sock.sendall(struct.pack(">IIB", 4 * MiB + 1, client.id_start, 0))
    assert client.closed_by_peer()


def test_129th_connection_is_closed_without_handshake(hub, box):
    clients = []
    try:
        while True:         # other tests' closed clients may still hold a slot
            try:
                clients.append(Client(hub.socket_path(box), timeout=5))
            except Closed:
                break       # the 129th: accepted, then closed, no handshake
        assert len({slot_of(c) for c in clients}) == len(clients) <= 128
        extra = Client(hub.socket_path(box), handshake=False)
        if len(clients) == 128:
            assert extra.closed_by_peer()
        extra.close()
        freed = clients.pop()
        freed.close()
        connect_to_slot(hub.socket_path(box), slot_of(freed)).close()
    finally:
        for c in clients:
            c.close()


# ============================================================ agentd checks

def test_ping_and_touch(client):
    id_ = client.send("core.ping", {})
    assert client.reply(id_) == [(1, "core.pong", {})]
    seqs = []
    for _ in range(2):
        (flags, t, p), = client.reply(client.send("core.touch", {}))
        assert (flags, t) == (1, "core.touched")
        seqs.append(p["activity_seq"])
    assert seqs[1] == seqs[0] + 1


def test_invalid_flags(client):
    id_ = client.send("core.exec.request", {"cmd": "true"}, flags=0)
    (flags, t, p), = client.reply(id_)
    assert (flags, t, p["kind"], p["offending_type"]) == \
        (1, "core.error", "invalid_flags", "core.exec.request")
    assert p["message"] == "invalid flags for core.exec.request: got 0, expected 2"
    id_ = client.send("core.ping", {}, flags=2)
    assert client.reply(id_)[0][2]["kind"] == "invalid_flags"


@pytest.mark.parametrize("op", [
    {"Stat": {"path": "/"}},
    {"RemoveDir": {"path": "/tmp/x"}},
    {"OpenFile": {"path": "/x", "options": dict(OPEN_RO, create_new=None)}},
    {"Read": {"handle": 1, "len": None}},
    {"Nope": {}},
])
def test_invalid_payload(client, op):
    (flags, t, p), = client.reply(client.send("core.fs.request", {"op": op}))
    assert (flags, t, p["kind"], p["offending_type"]) == \
        (1, "core.error", "invalid_payload", "core.fs.request")
    assert p["message"].startswith("decode payload for core.fs.request: ")


def test_payload_that_is_not_cbor_and_unknown_fields(client):
    (_, t, p), = client.reply(client.send("core.ping", None, raw_p=b"\xff\xff"))
    assert (t, p["kind"]) == ("core.error", "invalid_payload")
    data = client.ok("Stat", path="/", follow_symlink=True, future_field=[1, 2])
    assert data["Stat"]["kind"] == "dir"


def test_unknown_type_closes(client):
    client.send("core.frobnicate", {})
    assert client.closed_by_peer()


# ============================================================ exec

def test_exec_output_exit_code_env_and_cwd(client):
    out, err, code, frames = client.exec(
        "sh", ["-c", 'echo "$GREETING $X $(pwd)"; echo oops >&2; exit 3'],
        env=["X=y"], cwd="/etc")
    assert (out, err, code) == (b" y /etc\n", b"oops\n", 3)
    assert frames[0][:2] == (0, "core.exec.started") and frames[0][2]["pid"] > 0
    assert all(f[0] == 0 for f in frames[:-1]) and frames[-1][:2] == (1, "core.exec.exited")
    # The sandbox's workdir is the default cwd; PATH is there without asking.
    out, _, code, _ = client.exec("pwd")
    assert (out, code) == (b"/tmp\n", 0)


def test_exec_killed_by_a_signal_reports_minus_one(client):
    id_ = client.send("core.exec.request", {"cmd": "sleep", "args": ["30"]})
    fid, flags, t, p, _ = client.recv()
    assert t == "core.exec.started"
    client.send("core.exec.signal", {"signal": 9}, id_=id_)
    assert client.reply(id_)[-1] == (1, "core.exec.exited", {"code": -1})


def test_exec_stdin_blocks_until_empty_data(client):
    id_ = client.send("core.exec.request", {"cmd": "cat"})
    assert client.recv()[2] == "core.exec.started"
    client.send("core.exec.stdin", {"data": b"ping\n"}, id_=id_)
    # cat echoes and then waits: the next frame is the echo, not an exit.
    assert client.recv()[2:4] == ("core.exec.stdout", {"data": b"ping\n"})
    client.send("core.exec.stdin", {"data": b""}, id_=id_)
    assert client.reply(id_) == [(1, "core.exec.exited", {"code": 0})]
    out, _, code, _ = client.exec("wc", ["-c"], stdin=b"x" * 100000)
    assert (out.strip(), code) == (b"100000", 0)


def test_exec_stdin_epipe_is_reported_and_not_terminal(client):
    id_ = client.send("core.exec.request", {"cmd": "sh", "args": [
        "-c", "exec 0<&-; echo closed; sleep 30"]})
    assert client.recv()[2] == "core.exec.started"
    assert client.recv()[2:4] == ("core.exec.stdout", {"data": b"closed\n"})
    client.send("core.exec.stdin", {"data": b"lost"}, id_=id_)
    fid, flags, t, p, _ = client.recv()
    assert (fid, flags, t) == (id_, 0, "core.exec.stdin.error")
    assert (p["errno"], p["errno_name"]) == (32, "EPIPE")
    client.send("core.exec.signal", {"signal": 15}, id_=id_)
    assert client.reply(id_)[-1][2] == {"code": -1}


def test_exec_failures(client):
    *_, failed, frames = client.exec("no-such-program")
    assert frames == [(1, "core.exec.failed", failed)]
    assert (failed["kind"], failed["errno"], failed["errno_name"]) == ("not_found", 2, "ENOENT")
    assert failed["message"] == 'spawn "no-such-program": No such file or directory (os error 2)'
    *_, failed, _ = client.exec("true", cwd="/etc/passwd")
    assert (failed["kind"], failed["errno"]) == ("bad_cwd", errno.ENOTDIR)
    *_, failed, _ = client.exec("true", cwd="/no/such/dir")
    assert (failed["kind"], failed["errno"]) == ("not_found", errno.ENOENT)
    *_, failed, _ = client.exec("/etc")
    assert failed["kind"] == "permission_denied"


def test_exec_stdin_and_signal_for_unknown_ids_are_ignored(client):
    client.send("core.exec.stdin", {"data": b"x"})
    client.send("core.exec.signal", {"signal": 9})
    assert client.reply(client.send("core.ping", {}))[0][1] == "core.pong"


def test_exec_tty(client):
    out, _, code, _ = client.exec("sh", ["-c", "test -t 0 && test -t 2 && stty size; "
                                         "echo err >&2"], tty=True, rows=33, cols=99)
    assert (out.replace(b"\r", b""), code) == (b"33 99\nerr\n", 0)


def test_disconnect_kills_the_clients_processes(hub, box):
    c = Client(hub.socket_path(box))
    c.send("core.exec.request", {"cmd": "sleep", "args": ["3141"]})
    assert c.recv()[2] == "core.exec.started"
    wait_for(lambda: _pids_with_cmdline("sleep", "3141"), 5, "sleep to run")
    c.close()
    wait_for(lambda: not _pids_with_cmdline("sleep", "3141"), 5, "sleep to die")


# ============================================================ fs

def test_fs_stat_list_and_error_text(client):
    st = client.ok("Stat", path="/etc/passwd", follow_symlink=True)["Stat"]
    assert st["path"] == "/etc/passwd" and st["kind"] == "file"
    assert st["mode"] & 0o170000 == 0o100000 and st["modified"] == st["mtime"]
    p = client.fs("Stat", path="/nope", follow_symlink=False)
    assert p == {"ok": False, "error": "stat: No such file or directory (os error 2)",
                 "data": None}
    client.ok("Mkdir", path="/tmp/ls")
    client.ok("Symlink", target="/etc", link_path="/tmp/ls/link")
    client.write_file("/tmp/ls/f", b"abc")
    entries = client.ok("List", path="/tmp/ls")["List"]
    assert sorted((e["path"], e["kind"], e["size"]) for e in entries) == [
        ("/tmp/ls/f", "file", 3), ("/tmp/ls/link", "symlink", 4)]
    assert client.fs("List", path="/nope")["error"] == \
        "readdir: opendir: No such file or directory (os error 2)"
    st = client.ok("Stat", path="/tmp/ls/link", follow_symlink=True)["Stat"]
    assert st["kind"] == "dir"


def test_fs_mkdir_is_mkdir_p_with_mode(client):
    client.ok("Mkdir", path="/tmp/a/b/c", mode=0o700)
    client.ok("Mkdir", path="/tmp/a/b/c")                     # no EEXIST
    st = client.ok("Stat", path="/tmp/a/b/c", follow_symlink=True)["Stat"]
    assert st["mode"] == 0o40700
    client.write_file("/tmp/a/file", b"")
    assert client.fs("Mkdir", path="/tmp/a/file")["error"] == \
        "mkdir: File exists (os error 17)"


def test_fs_write_read_over_three_mib(client):
    data = os.urandom(7 * MiB + 5)
    client.write_file("/tmp/big", data, chunk=MiB)
    chunks = client.read_file("/tmp/big")
    assert [len(c) for c in chunks] == [3 * MiB, 3 * MiB, MiB + 5]
    assert b"".join(chunks) == data
    h = client.ok("OpenFile", path="/tmp/big", options=OPEN_RO)["Handle"]
    frames = client.reply(client.send("core.fs.request", {"op": {"Read": {
        "handle": h, "offset": 3 * MiB - 2, "len": 4}}}))
    assert frames[0][2]["data"] == data[3 * MiB - 2:3 * MiB + 2]
    st = client.ok("FStat", handle=h)["Stat"]
    assert (st["path"], st["size"]) == ("/tmp/big", len(data))


def test_fs_write_length_mismatch_and_unknown_session(client):
    h = client.ok("OpenFile", path="/tmp/short", options=dict(
        OPEN_RO, read=False, write=True, create=True))["Handle"]
    id_ = client.send("core.fs.request", {"op": {"Write": {"handle": h, "offset": 0,
                                                           "len": 10}}})
    client.send("core.fs.data", {"data": b"abc"}, id_=id_)
    client.send("core.fs.data", {"data": b""}, id_=id_)
    assert client.reply(id_)[0][2]["error"] == "write length mismatch: expected 10, wrote 3"
    id_ = client.send("core.fs.data", {"data": b"x"})
    assert client.reply(id_)[0][2]["error"] == "unknown write session: %d" % id_


def test_fs_rename_remove_removedir(client):
    client.ok("Mkdir", path="/tmp/rr/sub")
    client.write_file("/tmp/rr/sub/f", b"1")
    client.ok("Rename", src="/tmp/rr/sub/f", dst="/tmp/rr/g")
    assert client.fs("Remove", path="/tmp/rr/sub")["error"] == \
        "remove: Is a directory (os error 21)"
    client.write_file("/tmp/rr/sub/h", b"2")
    p = client.fs("RemoveDir", path="/tmp/rr/sub", recursive=False)
    assert p["error"] == "remove_dir: Directory not empty (os error 39)"
    client.ok("RemoveDir", path="/tmp/rr", recursive=True)
    assert client.fs("Stat", path="/tmp/rr", follow_symlink=False)["ok"] is False


def test_fs_handles_readdir_setstat_realpath_copy(client):
    client.ok("Mkdir", path="/tmp/many")
    for i in range(5):
        client.write_file("/tmp/many/%d" % i, b"x" * i)
    h = client.ok("OpenDir", path="/tmp/many")["Handle"]
    got = []
    while True:
        batch = client.ok("ReadDir", handle=h, limit=2)["List"]
        if not batch:
            break
        assert len(batch) <= 2
        got += batch
    assert sorted(e["path"] for e in got) == ["/tmp/many/%d" % i for i in range(5)]
    client.ok("CloseHandle", handle=h)
    assert client.fs("CloseHandle", handle=h)["error"] == "close: invalid handle: %d" % h
    client.ok("SetStat", path="/tmp/many/4", follow_symlink=True,
              attrs={"mode": 0o600, "size": 2, "mtime": 1000000000})
    st = client.ok("Stat", path="/tmp/many/4", follow_symlink=True)["Stat"]
    assert (st["mode"] & 0o7777, st["size"], st["mtime"]) == (0o600, 2, 1000000000)
    assert client.ok("RealPath", path="/tmp/../tmp/many/new")["Path"] == "/tmp/many/new"
    client.ok("Copy", src="/tmp/many/3", dst="/tmp/many/copy")
    assert client.read_file("/tmp/many/copy") == [b"xxx"]


def test_fs_paths_stay_inside_the_sandbox(client, hub, box):
    client.ok("Symlink", target="../../../../../../../..", link_path="/tmp/up")
    names = {e["path"].rsplit("/", 1)[1] for e in client.ok("List", path="/tmp/up")["List"]}
    assert {"tmp", "etc", "proc"} <= names and "emu" not in names
    client.write_file("/tmp/up/../../escaped", b"no")
    assert os.path.exists(os.path.join(hub.rootfs(box), "escaped"))
    assert client.fs("Stat", path="/../../emu/config.json", follow_symlink=True)["ok"] is False


def test_handle_owned_by_another_client(client, hub, box):
    h = client.ok("OpenFile", path="/etc/passwd", options=OPEN_RO)["Handle"]
    other = Client(hub.socket_path(box))
    try:
        frames = other.reply(other.send("core.fs.request", {"op": {"Read": {
            "handle": h, "offset": 0, "len": None}}}))
        assert frames[0][2]["error"] == "read: handle %d is owned by a different relay " \
            "client" % h
    finally:
        other.close()


# ============================================================ CLI

def test_cli_lifecycle_json_and_errors(hub):
    name = hub.create("life", "-c", "2", "-m", "1G", "-w", "/work", "-e", "A=b=c",
                      "--label", "k=v", "-u", "nobody")
    r = hub.msb("create", "alpine", "--name", name)
    assert (r.returncode, r.stderr) == (1, (
        "error: sandbox already exists: sandbox '%s' already exists; remove it, start the "
        "stopped sandbox, or recreate with .replace()\n" % name).encode())
    rows = json.loads(hub.msb("ls", "--format", "json").stdout)
    row, = [x for x in rows if x["name"] == name]
    assert set(row) == {"name", "status", "created_at", "image"}
    assert (row["status"], row["image"]) == ("Running", "alpine")
    info = json.loads(hub.msb("inspect", name, "--format", "json").stdout)
    assert {"name", "status", "created_at", "updated_at", "config", "active_config",
            "pending_changes", "pause"} == set(info)
    c = info["config"]
    assert c["env"] == [{"key": "A", "value": "b=c"}] and c["labels"] == {"k": "v"}
    assert (c["runtime"]["workdir"], c["runtime"]["user"], c["runtime"]["shell"]) == \
        ("/work", "nobody", "/bin/sh")
    assert c["resources"] == {"cpus": 2, "max_cpus": 2, "memory_mib": 1024,
                              "max_memory_mib": 1024}
    assert c["image"] == {"Oci": {"reference": "alpine"}}
    st = json.loads(hub.msb("status", "-a", "--format", "json").stdout)
    assert [x for x in st if x["name"] == name][0]["memory_mib"] == 1024
    # Commands run as the configured user.
    c = Client(hub.socket_path(name))
    c.ok("Mkdir", path="/work")
    assert c.exec("id", ["-u"])[0] == b"65534\n"
    c.write_file("/work/kept", b"across restarts")
    c.close()
    r = hub.msb("rm", name)
    assert (r.returncode, r.stderr) == (1, (
        "error: sandbox still running: cannot remove sandbox '%s': still running\n"
        % name).encode())
    r = hub.msb("stop", name)
    assert (r.returncode, r.stderr) == (0, ("   \u2713 Stopped      %s\n" % name).encode())
    assert not os.path.exists(hub.socket_path(name))
    assert json.loads(hub.msb("inspect", name, "--format", "json").stdout)["status"] == \
        "Stopped"
    r = hub.msb("stop", name)
    assert r.returncode == 0                                  # already stopped
    r = hub.msb("start", name)
    assert (r.returncode, r.stderr) == (0, ("   \u2713 Started      %s\n" % name).encode())
    c = Client(hub.socket_path(name))
    assert c.read_file("/work/kept") == [b"across restarts"]
    c.close()
    r = hub.msb("start", name)
    assert r.returncode == 1 and b"already running" in r.stderr
    r = hub.msb("rm", "-f", name)
    assert (r.returncode, r.stderr) == (0, ("   \u2713 Removed      %s\n" % name).encode())
    for args in (("rm", name), ("stop", name), ("start", name), ("inspect", name)):
        r = hub.msb(*args)
        assert (r.returncode, r.stdout, r.stderr) == \
            (1, b"", ("error: sandbox not found: %s\n" % name).encode()), args


def test_cli_usage_errors_and_version(hub):
    r = hub.msb("--version")
    assert (r.returncode, r.stdout) == (0, b"msb 0.7.2\n")
    r = hub.msb("create", "alpine", "--name", "x", "--bogus")
    assert r.returncode == 2 and r.stderr.decode() == (
        "error: unexpected argument '--bogus' found\n\n"
        "  tip: to pass '--bogus' as a value, use '-- --bogus'\n\n"
        "Usage: msb create --name <NAME> <IMAGE>\n\n"
        "For more information, try '--help'.\n")
    r = hub.msb("rm")
    assert r.returncode == 2 and b"<NAMES>..." in r.stderr
    r = hub.msb("create", "alpine", "-c", "abc")
    assert r.returncode == 2 and b"invalid value 'abc' for '--cpus <CPUS>': invalid digit" \
        in r.stderr
    r = hub.msb("frob")
    assert r.returncode == 2 and r.stderr.startswith(b"error: unrecognized subcommand 'frob'")
    r = hub.msb("create", "/no/such/rootfs", "--name", "x")
    assert (r.returncode, r.stderr) == \
        (1, b"error: invalid config: rootfs bind path does not exist: /no/such/rootfs\n")


def test_cli_pause_holds_requests(hub, box):
    c = Client(hub.socket_path(box))
    try:
        assert hub.msb("pause", box).returncode == 0
        assert json.loads(hub.msb("inspect", box, "--format", "json").stdout)["status"] \
            == "Paused"
        id_ = c.send("core.ping", {})
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.recv()
        c.sock.settimeout(10)
        r = hub.msb("resume", box)
        assert (r.returncode, r.stderr) == (0, ("   \u2713 Resumed      %s\n" % box).encode())
        assert c.reply(id_)[0][1] == "core.pong"
    finally:
        hub.msb("resume", box)
        c.close()


def test_directory_image_is_copied(hub, tmp_path):
    src = tmp_path / "rootfs"
    (src / "data").mkdir(parents=True)
    (src / "data" / "hello.txt").write_text("from the image")
    r = hub.msb("create", str(src), "--name", "fromdir")
    assert r.returncode == 0, r.stderr
    info = json.loads(hub.msb("inspect", "fromdir", "--format", "json").stdout)
    assert info["config"]["image"] == {"Bind": {"follow_root_symlinks": False,
                                                "path": str(src)}}
    c = Client(hub.socket_path("fromdir"))
    assert c.exec("cat", ["/data/hello.txt"])[0] == b"from the image"
    c.close()
    assert hub.msb("rm", "-f", "fromdir").returncode == 0


def test_core_shutdown_stops_the_sandbox(hub):
    name = hub.create("shutdown")
    c = Client(hub.socket_path(name))
    c.send("core.shutdown", {}, id_=0)
    assert c.closed_by_peer()
    wait_for(lambda: json.loads(hub.msb("inspect", name, "--format", "json").stdout)
             ["status"] == "Stopped", 5, "the sandbox to stop")
    assert hub.msb("rm", name).returncode == 0


# ============================================================ stats, faults

def test_stats_count_and_reset(hub, client):
    hub.reset()
    client.ok("Stat", path="/", follow_symlink=True)
    client.ok("Stat", path="/tmp", follow_symlink=True)
    client.exec("true")
    client.reply(client.send("core.ping", {}))       # not counted
    hub.msb("ls", "--format", "json")
    s = hub.stats()
    assert {k: v for k, v in s.items() if k != "routes"} == \
        {"fs.Stat": 2, "exec": 1, "cli.ls": 1, "total": 4}
    assert s["routes"] == {"fs.Stat": 2, "exec": 1, "cli.ls": 1}
    hub.reset()
    assert hub.stats()["total"] == 0


def test_fault_drop(hub, client):
    hub.fault(kind="drop", prefix="fs.Stat")
    client.send("core.fs.request", {"op": {"Stat": {"path": "/", "follow_symlink": True}}})
    assert client.closed_by_peer()


def test_fault_slow_does_not_block_others(hub, client):
    hub.fault(kind="slow", prefix="fs.Stat", delay=0.5)
    t0 = time.monotonic()
    slow = client.send("core.fs.request", {"op": {"Stat": {"path": "/",
                                                           "follow_symlink": True}}})
    ping = client.send("core.ping", {})
    assert client.recv()[0] == ping
    assert time.monotonic() - t0 < 0.4
    assert client.recv()[:3] == (slow, 1, "core.fs.response")
    assert time.monotonic() - t0 >= 0.5


def test_fault_silent(hub, client):
    hub.fault(kind="silent", prefix="fs.")
    client.send("core.fs.request", {"op": {"Stat": {"path": "/", "follow_symlink": True}}})
    ping = client.send("core.ping", {})
    assert client.recv()[0] == ping
    assert client.ok("Stat", path="/", follow_symlink=True)["Stat"]["kind"] == "dir"


def test_fault_error(hub, client):
    hub.fault(kind="error", prefix="fs.Read", errno=13)
    h = client.ok("OpenFile", path="/etc/passwd", options=OPEN_RO)["Handle"]
    frames = client.reply(client.send("core.fs.request", {"op": {"Read": {
        "handle": h, "offset": 0, "len": None}}}))
    assert frames == [(1, "core.fs.response", {
        "ok": False, "error": "read: Permission denied (os error 13)", "data": None})]
    hub.fault(kind="error", prefix="exec")
    assert client.exec("true")[2]["kind"] == "other"
    hub.fault(kind="error", prefix="cli.ls")
    r = hub.msb("ls")
    assert (r.returncode, r.stderr) == (1, b"error: injected fault\n")
    assert hub.msb("ls").returncode == 0


def test_cli_faults(hub):
    hub.fault(kind="drop", prefix="cli.ls")
    assert hub.msb("ls").returncode == -signal.SIGKILL
    hub.fault(kind="garbage", prefix="cli.inspect")
    r = hub.msb("inspect", "box", "--format", "json")
    assert r.returncode == 0
    with pytest.raises(ValueError):
        json.loads(r.stdout)
    hub.fault(kind="silent", prefix="cli.status")
    with pytest.raises(subprocess.TimeoutExpired):
        hub.msb("status", timeout=0.5)
    hub.fault(kind="slow", prefix="cli.ls", delay=0.3)
    t0 = time.monotonic()
    assert hub.msb("ls").returncode == 0 and time.monotonic() - t0 >= 0.3


def test_fault_unready(hub, box):
    hub.fault(kind="unready", count=1)
    stuck = Client(hub.socket_path(box), handshake=False)
    stuck.sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        stuck.sock.recv(1)
    fine = Client(hub.socket_path(box))
    assert fine.ready[2] == "core.ready"
    stuck.close()
    fine.close()


@pytest.mark.parametrize("kind", ["garbage", "oversize"])
def test_fault_bad_answers(hub, client, kind):
    hub.fault(kind=kind, prefix="fs.Stat")
    id_ = client.send("core.fs.request", {"op": {"Stat": {"path": "/",
                                                          "follow_symlink": True}}})
    if kind == "garbage":
        fid, flags, body = client.recv_raw()
        assert fid == id_
        with pytest.raises(Exception):
            cbor2.loads(body)
    else:
        length, fid, flags = struct.unpack(">IIB", client.read(9))
        assert (length, fid) == (5 * MiB, id_)


# ============================================================ knobs

def test_generation_9_and_split_writes(tmp_path):
    _require_machine()
    h = Hub(tmp_path / "home", "--generation", "9", "--split")
    try:
        h.create("split")
        c = Client(h.socket_path("split"))
        assert c.ready[4] == 9
        data = os.urandom(300000)
        c.write_file("/tmp/s", data)
        assert b"".join(c.read_file("/tmp/s")) == data
        out, _, code, frames = c.exec("sh", ["-c", "seq 1 2000"])
        assert code == 0 and out == b"".join(b"%d\n" % i for i in range(1, 2001))
        c.send("core.ping", {})
        assert c.recv()[4] == 9                     # answers carry v = 9 too
        c.close()
    finally:
        h.stop()


# ============================================================ against the real msb

def _run(binary, home, *args):
    env = dict(os.environ, MSB_HOME=helpers.short_path(str(home)))
    env.pop("SBXFS_SURELY_UNSET", None)
    return subprocess.run([binary] + list(args), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


@pytest.mark.skipif(not os.access(REAL_MSB, os.X_OK),
                    reason="the real msb is not installed: run `npm ci` in "
                    "tests/sdk/microsandbox")
def test_cli_surface_matches_the_real_msb(tmp_path):
    fake = os.path.join(BIN, "msb")
    cases = [("--version",), ("ls", "--format", "json"), ("status", "-a", "--format", "json"),
             ("ls",), ("status",), ("status", "-a"),
             ("inspect", "nosuch", "--format", "json"), ("rm", "nosuch"), ("stop", "nosuch"),
             ("start", "nosuch"), ("rm", "-q", "nosuch"), ("stop", "-q", "nosuch"),
             ("start", "-q", "nosuch"), ("rm", "a", "b"), ("pause", "nosuch"),
             ("create", "alpine", "--name", "x", "--bogus"), ("create", "-Z", "a"),
             ("create", "-nx", "-c2", "--bogus"), ("create", "--name", "x", "--name", "y", "a"),
             ("create", "alpine", "-c", "300"), ("create", "-e"), ("create", "a", "b"),
             ("create",), ("create", "/no/such/rootfs", "--name", "x"),
             ("create", "alpine", "-m", "12Q", "--name", "x"),
             ("stop", "-t", "abc", "x"), ("stop", "-t", "-1", "x"), ("rm", "-f", "--bogus"),
             ("status", "-a", "--bogus"), ("inspect", "a", "b"), ("inspect", "a", "--format"),
             ("rm",), ("ls", "--format", "yaml"), ("ls", "--bogus"), ("frob",), ("--bogus",),
             ("create", "alpine", "--name", "a/b"), ("create", "alpine", "--name", ""),
             ("create", "alpine", "--name", "x", "-e", "SBXFS_SURELY_UNSET"),
             ("create", "alpine", "--name", "x", "--idle-timeout", "soon")]
    for i, args in enumerate(cases):
        real = _run(REAL_MSB, tmp_path / ("real%d" % i), *args)
        ours = _run(fake, tmp_path / ("fake%d" % i), *args)
        assert real.returncode == ours.returncode, (args, real, ours)
        if args[0] == "--version":
            assert real.stdout.startswith(b"msb ") and ours.stdout.startswith(b"msb ")
        else:
            assert (real.stdout, real.stderr) == (ours.stdout, ours.stderr), args

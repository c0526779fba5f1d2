"""What every remote provider must do, against its emulator.

One module for the remote providers (daytona, docker, microsandbox, rexec,
rexec@old, vtrix):
a server that stops answering is bounded, Ctrl-C ends a wait on the
server, a dropped connection loses no acknowledged write, the secret never
reaches the log, status or err, the server's errors map to errno, and
basic operations cost a known number of requests.  The providers differ
in how a fault is injected (routes and kinds of each emulator) and in what
an operation costs: the table EXPECT (remote_expect.py) says how, one
entry per provider.
What a provider alone has stays in its own module (test_daytona.py,
test_docker.py, test_rexec.py, test_vtrix.py).

The module runs for the remote providers among SBXFS_PROVIDERS, each on a
mount of its own with -o timeout=5.
"""

import errno
import os
import signal
import shutil
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import (errno_of, read_bytes, read_text, write_ok,
                     write_once)
from remote_expect import EXPECT, fault


REMOTE = [p for p in conftest.PROVIDERS if p in EXPECT]


# ------------------------------------------------------------ fixtures

@pytest.fixture(scope="module", params=REMOTE)
def rmount(request, tmp_path_factory):
    """A mount of the remote provider with its own emulator."""
    yield from conftest.own_mount(tmp_path_factory, request.param,
                                  ["timeout=5"])


@pytest.fixture
def expect(rmount):
    return EXPECT[rmount.provider]


@pytest.fixture
def emu(rmount):
    yield from conftest.fault_free(rmount.emulator)


@pytest.fixture
def rbox(request, rmount):
    yield from conftest.unstarted_box(request, rmount)


backing = helpers.backing


put = helpers.put


count = helpers.count


def inject(emu, faults):
    for f in faults or []:
        emu.fault(**f)


def compare(got, how, n):
    return got == n if how == "==" else got <= n


OPS = {
    "stat": lambda box, name: os.stat(box.r("tmp", name)),
    "read": lambda box, name: read_bytes(box.r("tmp", name)),
    "listdir": lambda box, name: os.listdir(box.r("tmp", name) if name
                                            else box.r("tmp")),
    "mkdir": lambda box, name: os.mkdir(box.r("tmp", name)),
    "status": lambda box, name: read_text(box.p("status")),
    "stat_box": lambda box, name: os.stat(box.mount.p(name)),
    "exec": lambda box, name: write_ok(box.p("exec"), "true"),
}


def run_cmd(box, line, timeout=60):
    """Start a command through exec; its output."""
    fd = os.open(box.p("exec"), os.O_RDWR)
    try:
        os.write(fd, line.encode())
        return helpers.read_all(fd, timeout=timeout)
    finally:
        os.close(fd)


def interrupted(argv, within):
    """Run argv while the server hangs; Ctrl-C it; its exit status."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        assert p.poll() is None, "%s did not wait for the server" % argv[0]
        p.send_signal(signal.SIGINT)
        p.wait(timeout=within)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode


def warm_up(box, expect):
    """Where expect["warm"]: run a command first, so that the transport
    is known and open."""
    if expect["warm"]:
        write_ok(box.p("exec"), "true")
        helpers.cat(box.p("exec"))
        helpers.settle(box)


# ------------------------------------------------------------ a silent server

def test_server_that_stops_answering_is_bounded(rbox, emu, expect):
    # -o timeout=5: an answer that takes 30 s fails (ETIMEDOUT), bounded,
    # and the daemon stays up.  Where the requests are counted, the
    # timeout is the operation's one bound, retries included: the request
    # that used it up is not tried again, nor is any other asked for.
    put(rbox.r("tmp", "before"), "x")
    os.stat(rbox.r("tmp"))
    for i, case in enumerate(expect["silent"]):
        name = "silent%d" % i
        if case["on_server"]:
            put(backing(emu, rbox, "tmp", name), "z")
        emu.reset_stats()
        emu.fault(**case["fault"])
        t0 = time.monotonic()
        e = errno_of(OPS[case["op"]], rbox, name)
        took = time.monotonic() - t0
        s = emu.stats()
        emu.clear_faults()
        assert e in case["errnos"], (case, errno.errorcode.get(e, e))
        assert took < case["within"], (case, took)
        if case["requests"] is not None:
            assert s["total"] == case["requests"], s
        if case["err"]:
            assert case["err"] in rbox.err()
        rbox.mount.still_works()
    assert read_bytes(rbox.r("tmp", "before")) == b"x"
    put(rbox.r("tmp", "after-silent"), "fine")
    assert read_bytes(rbox.r("tmp", "after-silent")) == b"fine"


# ------------------------------------------------------------ Ctrl-C

def test_ctrl_c_ends_a_wait_on_the_server(rbox, emu, expect):
    # cat of a file while the server hangs: Ctrl-C (SIGINT) ends cat at
    # once.  The kernel waits for the daemon's answer to a request it has
    # sent, so the daemon must give up on the server when told (INTERRUPT),
    # well before the request's own timeout (-o timeout=5) and retries.
    put(backing(emu, rbox, "tmp", "slow.txt"), "x" * 1000)
    hang, within = expect["interrupt"]
    emu.fault(**hang)
    try:
        rc = interrupted(["cat", rbox.r("tmp", "slow.txt")], within)
    finally:
        emu.clear_faults()
    assert rc == -signal.SIGINT
    assert "slow.txt" not in read_text(rbox.p("err"))
    assert read_bytes(rbox.r("tmp", "slow.txt")) == b"x" * 1000
    rbox.mount.still_works()


def test_ctrl_c_ends_a_ctl_verb_waiting_on_the_server(rbox, emu, expect):
    # `echo stop > ctl` while the API hangs: Ctrl-C ends the shell.
    emu.fault(**expect["ctl_hang"])
    try:
        rc = interrupted(["sh", "-c", 'echo stop > "$1"', "sh",
                          rbox.p("ctl")], 4)
    finally:
        emu.clear_faults()
    assert rc == -signal.SIGINT
    rbox.mount.still_works()


# ------------------------------------------------------------ dropped connections

def test_dropped_connections_lose_no_acknowledged_write(rbox, emu, expect):
    # Uploads fail now and then; every close that returned 0 must have
    # put its bytes on the server, every other close reported an error,
    # and a write with no fault injected succeeds.
    plan = expect["uploads"]
    acked = {}
    for i in range(plan["rounds"]):
        faults = plan["faults"][i % len(plan["faults"])]
        inject(emu, faults)
        data = os.urandom(plan["size"] + i)
        p = rbox.r("tmp", "w%d" % i)
        if write_once(p, data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == 0:
            acked[p] = data
        else:
            assert faults, "a write failed with no fault injected: %s" % p
        emu.clear_faults()
    assert acked, "every write failed: the retries do not work"
    for p, data in acked.items():
        with open(backing(emu, rbox, p[len(rbox.root):]), "rb") as f:
            assert f.read() == data, p
    rbox.mount.still_works()


# ------------------------------------------------------------ the fault loop

# The most one system call may take under -o timeout=5: the timeout,
# retries included, and the time the server takes when it does answer.
CALL_BOUND = 10


def timed(fn, *args):
    """(errno or 0, the result or None, seconds) of fn(*args)."""
    t0 = time.monotonic()
    try:
        got, e = fn(*args), 0
    except OSError as x:
        got, e = None, x.errno
    return e, got, time.monotonic() - t0


def write_timed(path, data, bound):
    """open, write and close, each within bound: 0 or the errno."""
    e, fd, took = timed(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    assert took < bound, ("open", took)
    if e:
        return e
    e, _, took = timed(os.write, fd, data)
    assert took < bound, ("write", took)
    e2, _, took = timed(os.close, fd)
    assert took < bound, ("close", took)
    return e or e2


def test_fault_loop_keeps_every_promise(rbox, emu, expect):
    # Rounds of a write, a read and a command, each round under one more
    # fault (a server error, a dropped connection, an unanswered request,
    # or none): every call ends within its bound, every write that closed
    # with 0 is on the server, no command reports success without its
    # output, and the daemon stays up.
    acked = {}
    bound = CALL_BOUND
    plan = expect["loop"] + [None]
    rounds = 2 * len(plan)
    for i in range(rounds):
        f = plan[i % len(plan)]
        if f:
            emu.fault(**f)
        p = rbox.r("tmp", "loop%d" % i)
        data = os.urandom(5000 + i)
        e = write_timed(p, data, bound)
        if e == 0:
            acked[p] = data
        else:
            assert f, "round %d: a write failed with no fault: %s" % (
                i, errno.errorcode.get(e, e))
        if acked:
            q = sorted(acked)[-1]
            e, got, took = timed(read_bytes, q)
            assert took < bound, ("read", i, f, took)
            assert e or got == acked[q], ("read", i, f)
        word = "out%d" % i
        # A command is a write (the start) and reads to its end.
        e, out, took = timed(run_cmd, rbox, "echo %s" % word, 2 * bound)
        assert took < 2 * bound, ("exec", i, f, took)
        if e == 0:
            # A command whose output was read to its end without an error
            # ended well: its output is all there.
            assert out == (word + "\n").encode(), ("exec", i, f, out)
        else:
            assert f, "round %d: a command failed with no fault: %s" % (
                i, errno.errorcode.get(e, e))
        emu.clear_faults()
        rbox.mount.still_works()
    assert acked, "every write failed: the retries do not work"
    for p, data in acked.items():
        with open(backing(emu, rbox, p[len(rbox.root):]), "rb") as fh:
            assert fh.read() == data, p
    # And with the faults gone, everything works.
    put(rbox.r("tmp", "loop-after"), "fine")
    assert read_bytes(rbox.r("tmp", "loop-after")) == b"fine"
    assert run_cmd(rbox, "echo after") == b"after\n"


# ------------------------------------------------------------ the secret

def test_secret_never_reaches_log_status_or_err(rmount, rbox, emu, expect):
    if expect["secret"] is None:
        pytest.skip("%s has no credential" % rmount.provider)
    for f, op, name in expect["leaks"]:
        emu.fault(**f)
        errno_of(OPS[op], rbox, name)
        emu.clear_faults()
    texts = [open(rmount.log_path, "rb").read(),
             read_bytes(rbox.p("status")), read_bytes(rbox.p("err")),
             read_bytes(rmount.ctl)]
    for t in texts:
        assert expect["secret"].encode() not in t


# ------------------------------------------------------------ errors

def test_errors_map_to_errno(rmount, rbox, emu, expect):
    # status read once: its size is known, so that a stat of it asks
    # nothing and the faults meet the read.
    read_text(rbox.p("status"))
    files = {"e": b"x", "s": b"y"}
    put(rbox.r("tmp", "e"), files["e"])
    put(backing(emu, rbox, "tmp", "s"), files["s"])
    for faults, op, name, want, texts in expect["errors"]:
        inject(emu, faults)
        try:
            got = OPS[op](rbox, name)
            e = 0
        except OSError as x:
            e = x.errno
        emu.clear_faults()
        assert e == want, (faults, op, name, errno.errorcode.get(e, e))
        if want == 0 and op == "read":
            assert got == files[name]
        for t in texts:
            assert t in rbox.err(), (faults, t)
        # One reason, said once: no provider name doubled, no URL cut
        # short ("daytona: daytona: lbox/...").
        name = rmount.provider.split("@")[0]
        text = rbox.err()
        assert "%s: %s:" % (name, name) not in text, text
        assert "lbox/" not in text, text
    assert read_bytes(rbox.r("tmp", "e")) == b"x"
    assert read_bytes(rbox.r("tmp", "s")) == b"y"
    # A rename onto an existing name replaces it: both names consistent.
    put(rbox.r("tmp", "e2"), "y2")
    os.rename(rbox.r("tmp", "e2"), rbox.r("tmp", "e"))
    assert read_bytes(rbox.r("tmp", "e")) == b"y2"
    assert not os.path.exists(rbox.r("tmp", "e2"))
    rbox.mount.still_works()


# ------------------------------------------------------------ requests

def exec_bound(n):
    """An expect["exec"] value, N or (how, N), as (how, N)."""
    return n if isinstance(n, tuple) else ("==", n)


def test_requests_per_operation(rbox, emu, expect):
    # Files made on the server side: nothing about them is cached here.
    d = rbox.r("tmp", "counted")
    server = backing(emu, rbox, "tmp", "counted")
    os.mkdir(server)
    for i in range(20):
        put(os.path.join(server, "f%d" % i), "x" * i)
    warm_up(rbox, expect)
    # One listing with every entry's attributes, whatever the number of
    # entries; besides it, only the lookups of the path itself (root/,
    # tmp, counted) and of the sandbox.
    emu.reset_stats()
    out = helpers.run(["ls", "-l", d]).stdout
    assert out.count(b"-rw-r--r--") == 20, out
    s = emu.stats()
    for routes, how, n in expect["ls"]:
        assert compare(count(s, *routes), how, n), (routes, how, n, s)
    # Again: all from the cache.
    emu.reset_stats()
    helpers.run(["ls", "-l", d])
    assert emu.stats()["total"] == 0, emu.stats()
    # Reading a file: its content is fetched once.
    emu.reset_stats()
    assert read_bytes(os.path.join(d, "f7")) == b"x" * 7
    s = emu.stats()
    assert count(s, expect["download"]) == 1, s
    for r in expect["no_read"]:
        assert count(s, r) == 0, s
    # Again: the staged copy is still the server's file, no transfer.
    emu.reset_stats()
    assert read_bytes(os.path.join(d, "f7")) == b"x" * 7
    assert count(emu.stats(), expect["download"]) == 0, emu.stats()
    # A file written in many writes is sent once, at close; each append
    # is one more upload.
    emu.reset_stats()
    with open(os.path.join(d, "new"), "wb") as f:
        for _ in range(100):
            f.write(b"y" * 1000)
    s = emu.stats()
    if expect["upload"]:
        assert count(s, expect["upload"]) == 1, s
    for r in expect["no_write"]:
        assert count(s, r) == 0, s
    emu.reset_stats()
    for _ in range(3):
        with open(os.path.join(d, "new"), "ab") as f:
            f.write(b"z")
    if expect["upload"]:
        assert count(emu.stats(), expect["upload"]) == 3, emu.stats()
    with open(os.path.join(server, "new"), "rb") as f:
        assert f.read() == b"y" * 100000 + b"zzz"
    # A short command: one exec call, or one round on an open terminal.
    if expect["exec"] is not None:
        emu.reset_stats()
        assert run_cmd(rbox, "echo one") == b"one\n"
        s = emu.stats()
        assert compare(s["total"], *exec_bound(expect["exec"])), s
        # The next one: what the first set up is kept.
        helpers.settle(rbox)
        emu.reset_stats()
        out = run_cmd(rbox, "echo two >&2; echo three")
        assert sorted(out.split(b"\n")) == [b"", b"three", b"two"], out
        s = emu.stats()
        assert compare(s["total"], *exec_bound(
            expect.get("exec_again", expect["exec"]))), s


def test_lookups_of_a_path_bring_its_directories_along(rbox, emu, expect):
    # A cold stat of a path nine names deep, made on the server.  Where a
    # lookup is a script anyway (expect["along"]), the lookup that finds a
    # directory lists it in the same request (getattr_list), so that the
    # next name is answered from that listing: a request for every two
    # names, where a stat a name costs one each.
    d = os.path.join("tmp", "deep", *["d%d" % i for i in range(6)])
    os.makedirs(backing(emu, rbox, d))
    put(backing(emu, rbox, d, "f"), "x")
    warm_up(rbox, expect)
    emu.reset_stats()
    assert os.stat(rbox.r(d, "f")).st_size == 1
    assert emu.stats()["total"] <= expect["lookups"], emu.stats()
    # The listings came whole: a name the server lacks is known absent.
    emu.reset_stats()
    assert errno_of(os.stat, rbox.r(d, "nothing")) == errno.ENOENT
    assert errno_of(os.stat, rbox.r("tmp", "deep", "nothing")) == errno.ENOENT
    assert emu.stats()["total"] <= (0 if expect.get("along") else 2), emu.stats()


def test_walk_of_a_tree_costs_a_few_requests(rbox, emu, expect):
    # A tree made on the server side, 40 directories deep and wide: a
    # cold find lists it in one provider call (a subtree), not one per
    # directory; ls -lR and du then answer from the cache.
    names = set()
    for a in range(4):
        for b in range(3):
            for c in range(2):
                d = os.path.join("tree", "a%d" % a, "b%d" % b, "c%d" % c)
                os.makedirs(backing(emu, rbox, "tmp", d))
                for f in ("x.c", "y.h"):
                    put(backing(emu, rbox, "tmp", d, f), d + f)
                    names.add(os.path.join(d, f))
    links = expect.get("links", True)
    if links:
        os.symlink("b1", backing(emu, rbox, "tmp", "tree", "a2", "ln"))
    warm_up(rbox, expect)
    emu.reset_stats()
    out = helpers.run(["find", rbox.r("tmp", "tree")]).stdout.decode()
    found = {os.path.relpath(p, rbox.r("tmp")) for p in out.split("\n") if p}
    assert names <= found, found
    assert len(found) == 1 + 4 + 12 + 24 + 48 + (1 if links else 0), found
    assert emu.stats()["total"] <= expect["walk"], emu.stats()
    # The walk brought its file system's statfs along (find asked it of
    # one directory; here another).
    emu.reset_stats()
    assert os.statvfs(rbox.r("tmp", "tree", "a1", "b0")).f_blocks > 0
    assert emu.stats()["total"] == 0, emu.stats()
    # ls -lR and du: from the cache, the link's target too (the walk
    # brought it).
    emu.reset_stats()
    out = helpers.run(["ls", "-lR", rbox.r("tmp", "tree")]).stdout
    assert out.count(b"-rw-r--r--") == 48, out
    assert not links or b"ln -> b1" in out, out
    helpers.run(["du", "-s", rbox.r("tmp", "tree")])
    assert emu.stats()["total"] == 0, emu.stats()
    emu.reset_stats()
    helpers.run(["ls", "-lR", rbox.r("tmp", "tree")])
    assert emu.stats()["total"] == 0, emu.stats()
    # The server's tree is what the mount shows: sizes and kinds.
    st = os.stat(rbox.r("tmp", "tree", "a3", "b2", "c1", "y.h"))
    assert st.st_size == len("tree/a3/b2/c1y.h")
    assert os.path.isdir(rbox.r("tmp", "tree", "a0", "b0"))


def test_copy_into_the_sandbox_costs_a_request_per_file(rbox, emu, expect,
                                                        tmp_path):
    # cp -r of a tree made here into a new directory: every lookup of a
    # name in a directory the copy made answers from the cache (it was
    # made empty, and each name made since is in its listing), and each
    # file is one upload whose answer needs no stat after it.
    src = tmp_path / "src"
    files = 0
    for a in range(3):
        d = src / ("d%d" % a)
        d.mkdir(parents=True)
        for f in range(6):
            (d / ("f%d.c" % f)).write_text("int f%d%d;\n" % (a, f))
            files += 1
    (src / "top.txt").write_text("top\n")
    files += 1
    warm_up(rbox, expect)
    os.listdir(rbox.r("tmp"))
    emu.reset_stats()
    helpers.run(["cp", "-r", str(src), rbox.r("tmp", "copied")])
    s = emu.stats()
    per_dir, per_file, more = expect["copy"]
    assert count(s, expect["upload"]) == files, s
    assert s["total"] <= 4 * per_dir + files * per_file + more, s
    helpers.run(["diff", "-r", str(src), backing(emu, rbox, "tmp", "copied")])


def test_grep_of_a_tree_costs_a_few_requests(rbox, emu, expect):
    # grep -r over a tree made on the server side: the listing is one
    # subtree, the first file is fetched alone, and the second brings the
    # small files of the subtree in rounds of one call each: 4 MiB, then
    # twice the last (the rest are staged).
    want = set()
    for a in range(3):
        for b in range(4):
            d = os.path.join("g", "a%d" % a, "b%d" % b)
            os.makedirs(backing(emu, rbox, "tmp", d))
            for f in range(3):
                rel = os.path.join(d, "f%d.c" % f)
                put(backing(emu, rbox, "tmp", rel),
                    "int x;\n" + ("needle %s\n" % rel if f == 1 else ""))
                if f == 1:
                    want.add(rel)
    put(backing(emu, rbox, "tmp", "g", "big"), "needle\n" + "x" * 400000)
    os.makedirs(backing(emu, rbox, "tmp", "g", "z"))
    for f in range(24):    # 4.7 MiB: two rounds
        put(backing(emu, rbox, "tmp", "g", "z", "m%d" % f), "y" * 200000)
    warm_up(rbox, expect)
    emu.reset_stats()
    out = helpers.run(["grep", "-rl", "needle", rbox.r("tmp", "g")]).stdout
    got = {os.path.relpath(p, rbox.r("tmp")) for p in out.decode().split("\n") if p}
    assert got == want | {"g/big"}, got
    s = emu.stats()
    # The big file is over prefetch_file_kib: fetched on its own.
    if not expect.get("download_is_script"):
        assert count(s, expect["download"]) <= 2, s
    rounds = expect.get("rounds", 3)
    assert s["total"] <= expect["walk"] + 2 + rounds * expect["script"], s
    # Read again: nothing moves.
    emu.reset_stats()
    helpers.run(["grep", "-rl", "needle", rbox.r("tmp", "g")])
    assert emu.stats()["total"] == 0, emu.stats()
    # One file read alone brings no tree: a new subtree, one cat.
    os.makedirs(backing(emu, rbox, "tmp", "h", "d"))
    for f in range(5):
        put(backing(emu, rbox, "tmp", "h", "d", "f%d" % f), "h%d" % f)
    os.listdir(rbox.r("tmp", "h"))
    emu.reset_stats()
    assert read_bytes(rbox.r("tmp", "h", "d", "f3")) == b"h3"
    if not expect.get("download_is_script"):
        assert count(emu.stats(), expect["download"]) == 1, emu.stats()
    assert emu.stats()["total"] <= expect.get("read_one", 2), emu.stats()


# ------------------------------------------------------------ another user

@pytest.fixture(scope="module")
def shared_mount(rmount, tmp_path_factory):
    """The provider mounted allow_other,default_permissions, reachable by
    another user."""
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user")
    provider = rmount.provider
    for m in conftest.own_mount(tmp_path_factory, provider,
                                ["allow_other", "default_permissions"],
                                hint="shared-" + provider.replace("@", "-")):
        d = os.path.dirname(m.path)
        while d != "/":
            st = os.stat(d)
            if not st.st_mode & 0o001:
                os.chmod(d, (st.st_mode & 0o7777) | 0o011)
            d = os.path.dirname(d)
        yield m


def test_a_write_by_another_user_clears_set_user_id(rmount, shared_mount):
    # As on a native file system: the kernel clears set-user-ID when a
    # user who is not root writes, through a chmod that must reach the
    # open staged copy too, or the upload and its stat bring it back.
    box = helpers.new_box(shared_mount, "suid")
    try:
        f = box.r("tmp", "suid")
        put(f, "x")
        os.chmod(f, 0o4777)
        code = ("import os, sys\n"
                "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
                "os.write(fd, b'y')\n"
                "print(oct(os.fstat(fd).st_mode & 0o7777))\n"
                "os.close(fd)\n")
        cp = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                             "--clear-groups", "--", "/usr/bin/python3", "-c", code, f],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert cp.returncode == 0, cp.stderr
        assert cp.stdout.strip() == b"0o777", cp.stdout
        assert oct(os.stat(f).st_mode & 0o7777) == "0o777"
        assert read_bytes(f) == b"xy"
    finally:
        helpers.remove_box(box)


# ------------------------------------------------------------ TLS

def test_tls_with_a_private_ca(rmount, tmp_path):
    # The service behind HTTPS and WSS, as real ones are: a certificate
    # that is not trusted fails, saying why; with -o ca_file the files,
    # the commands and the WebSockets work.
    if rmount.emulator.engine:
        pytest.skip("the engine is a Unix socket here")
    if rmount.provider == "microsandbox":
        pytest.skip("a sandbox's agent is a Unix socket on this machine")
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert, key = helpers.make_certificate(tmp_path)
    state = tmp_path / "state"
    emu = helpers.start_emulator(rmount.provider, state, "--tls-cert", cert,
                                 "--tls-key", key)
    assert emu.url().startswith("https://")
    m = helpers.Mount(tmp_path / "mnt", state, tmp_path / "sbxfs.log",
                      rmount.provider, ["ca_file=" + cert, "timeout=10"])
    conftest.ALL_MOUNTS.append(m)
    m.start()
    try:
        b = helpers.new_box(m, "tls", start=True)
        put(b.r("tmp", "f"), "over https\n")
        assert read_text(b.r("tmp", "f")) == "over https\n"
        write_ok(b.p("exec"), "echo one; echo two >&2")
        assert sorted(helpers.cat(b.p("exec"), timeout=60).split()) == [b"one", b"two"]
        helpers.remove_box(b)
    finally:
        assert m.stop() == 0, m.log_tail()
    # Without the CA the certificate is refused, at the mount or at the
    # first call, and the log says so.
    m = helpers.Mount(tmp_path / "mnt", state, tmp_path / "sbxfs2.log",
                      rmount.provider, ["timeout=5"])
    conftest.ALL_MOUNTS.append(m)
    try:
        m.start()
    except AssertionError:
        pass
    else:
        try:
            with pytest.raises(OSError):
                os.listdir(helpers.new_box(m, "untrusted", start=True).r("tmp"))
        except AssertionError:
            pass
        m.stop()
    assert "certificate" in open(tmp_path / "sbxfs2.log").read()

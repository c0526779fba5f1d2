"""Sandboxes are isolated: processes, files, network, symlinks; and persistent."""

import errno
import os
import secrets
import socket
import stat
import subprocess
import threading

import pytest

import helpers
from helpers import (Box, errno_of, ename, read_bytes, read_text,
                     require_sandboxes, run, write_ok)

PY = "/usr/bin/python3"


def host_ns(kind):
    return os.readlink("/proc/self/ns/" + kind)


# ------------------------------------------------------------------ processes

def test_own_namespaces(box):
    helpers.require(box.mount.provider, "isolation")
    kinds = ["pid", "mnt", "ipc", "uts", "user", "net"]
    out = box.check("for k in %s; do readlink /proc/self/ns/$k; done"
                    % " ".join(kinds)).split()
    assert len(out) == len(kinds), out
    for k, inside in zip(kinds, out):
        assert inside.startswith(k + ":["), inside
        assert inside != host_ns(k), "sandbox shares the host's %s " \
            "namespace" % k


def test_no_host_processes(box):
    marker = "4242.%d" % secrets.randbelow(10**6)
    host = subprocess.Popen(["sleep", marker])
    try:
        out = box.check(
            "for p in /proc/[0-9]*; do"
            " printf '%s ' ${p#/proc/}; tr '\\0' ' ' < $p/cmdline; echo;"
            " done 2>/dev/null")
        lines = [x for x in out.splitlines() if x.strip()]
        assert not any(marker in x for x in lines), out
        # Only a handful of processes: the sandbox's own.
        assert 1 <= len(lines) < 20, out
        assert any(x.split()[0] == "1" for x in lines), out
        pid1 = read_bytes("/proc/1/cmdline").replace(b"\0", b" ").decode(
            errors="replace").strip()
        inside1 = [x for x in lines if x.split()[0] == "1"][0]
        assert inside1.partition(" ")[2].strip() != pid1, out
        # ps agrees, when the host has it.
        if os.path.exists("/usr/bin/ps") or os.path.exists("/bin/ps"):
            ps = box.check("ps -e -o pid=,args=")
            assert marker not in ps
            assert len(ps.splitlines()) < 20, ps
        # And the host process cannot be signalled from inside.
        _, status, _ = box.run("kill -0 %d" % host.pid)
        assert status != "exited 0" or host.pid < 50
    finally:
        host.kill()
        host.wait(30)


def test_processes_of_other_sandboxes_invisible(box, mount):
    other = helpers.new_box(mount, "otherproc", start=True)
    try:
        n = other.spawn("sleep 4343.5")
        out = box.check("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '")
        # The command's own words: the number alone may be part of a
        # marker of this box's own command (docker's, "TIME.PID.N").
        assert "sleep 4343.5" not in out
        write_ok(other.cmd(n, "ctl"), "kill KILL\n")
    finally:
        helpers.remove_box(other)


# ------------------------------------------------------------------ files

def test_no_host_files(box, mount, tmp_path):
    secret = secrets.token_hex(16)
    f = tmp_path / "host-secret"
    f.write_text(secret)
    _, status, _ = box.run("cat %s" % f)
    assert status != "exited 0"
    assert box.check("test -e %s && echo yes || echo no" % f) == "no\n"
    assert box.check("test -e %s && echo yes || echo no"
                     % mount.state_dir) == "no\n"
    out, _, _ = box.run("grep -rs %s /tmp /root /home /var/tmp /etc" % secret)
    assert secret.encode() not in out
    # The repository checkout is not one of the host's system directories.
    top = helpers.REPO.strip("/").split("/")[0]
    if top not in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32",
                   "opt", "etc", "srv", "var", "tmp"):
        assert box.check("test -e %s && echo yes || echo no"
                         % os.path.join(helpers.REPO, "tests", "helpers.py")
                         ) == "no\n"


def test_no_host_shadow_inside(box):
    try:
        host = read_bytes("/etc/shadow")
    except OSError:
        pytest.skip("cannot read the host's /etc/shadow")
    out, _, _ = box.run("cat /etc/shadow")
    assert out != host or not host
    assert not os.path.exists(box.r("etc", "shadow")) or \
        read_bytes(box.r("etc", "shadow")) != host


def test_cannot_write_outside_writable_parts(box):
    helpers.require(box.mount.provider, "readonly_usr")
    probe = "sbxfs-probe-%s" % secrets.token_hex(4)
    try:
        out, status, _ = box.run("touch /usr/%s" % probe)
        assert status != "exited 0"
        assert b"Read-only file system" in out, out
        assert not os.path.lexists("/usr/" + probe)
        # /etc is the sandbox's own: writable, and not the host's.
        box.check("echo mine > /etc/%s" % probe)
        assert not os.path.lexists("/etc/" + probe)
        assert read_bytes(box.r("etc", probe)) == b"mine\n"
    finally:
        for p in ("/usr/" + probe, "/etc/" + probe):
            if os.path.lexists(p):
                os.unlink(p)


def test_sandboxes_do_not_share_files(box, mount):
    other = helpers.new_box(mount, "otherfiles", start=True)
    try:
        with open(box.r("tmp", "only-in-first"), "w") as f:
            f.write("1")
        box.check("echo x > /root/also-first")
        assert other.check("ls -A /tmp /root") == "/root:\n\n/tmp:\n"
        assert os.listdir(other.r("tmp")) == []
        assert os.listdir(other.r("root")) == []
    finally:
        helpers.remove_box(other)


# ------------------------------------------------------------------ network

class Listener:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(60)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        try:
            c, _ = self.sock.accept()
            self.accepted.append(c.recv(100))
            c.close()
        except OSError:
            pass

    def close(self):
        self.sock.close()


CONNECT = ("%s -c 'import socket,sys\n"
           "s=socket.socket(); s.settimeout(10)\n"
           "try:\n s.connect((\"127.0.0.1\", %%d)); s.sendall(b\"hi\");"
           " print(\"connected\")\n"
           "except OSError as e:\n print(\"failed\", e)\n'" % PY)


def need_python_inside():
    if not os.access(PY, os.X_OK):
        pytest.skip("no %s on the host image" % PY)


def test_no_network(box):
    helpers.require(box.mount.provider, "isolation")
    devs = box.check("cat /proc/net/dev")
    names = sorted(line.split(":")[0].strip()
                   for line in devs.splitlines()[2:])
    assert names == ["lo"], devs
    need_python_inside()
    lst = Listener()
    try:
        out = box.check(CONNECT % lst.port, timeout=60)
        assert out.startswith("failed"), out
    finally:
        lst.close()
    assert lst.accepted == []


def test_net_host(mount, provider):
    helpers.require(provider, "isolation")
    require_sandboxes(provider)
    need_python_inside()
    name = helpers.box_name("nethost")
    write_ok(mount.ctl, "new %s net=host\n" % name)
    b = Box(mount, name)
    lst = Listener()
    try:
        b.start()
        out = b.check(CONNECT % lst.port, timeout=60)
        assert out.strip() == "connected", out
        lst.t.join(60)
        assert lst.accepted == [b"hi"]
        inside = b.check("readlink /proc/self/ns/net").strip()
        assert inside == host_ns("net")
    finally:
        lst.close()
        helpers.remove_box(b)


# ------------------------------------------------------------ symlink escape

def _host_shadow():
    try:
        data = read_bytes("/etc/shadow")
    except OSError:
        return None
    return data or None


def _read_or_errno(path):
    try:
        return read_bytes(path)
    except OSError as e:
        return e.errno


def test_symlink_escape_read(box):
    host = _host_shadow()
    if host is None:
        pytest.skip("cannot read a non-empty host /etc/shadow")
    box.check("ln -s /etc/shadow /root/x;"
              " ln -s ../../../../../../../../../etc/shadow /root/rel;"
              " ln -s /etc /root/etcdir; ln -s /root/x /root/chain")
    own, own_status, _ = box.run("cat /etc/shadow 2>/dev/null")
    for p in (box.r("root", "x"), box.r("root", "rel"),
              box.r("root", "etcdir", "shadow"), box.r("root", "chain")):
        got = _read_or_errno(p)
        assert got != host, "%s read the host's /etc/shadow" % p
        if isinstance(got, bytes):
            assert own_status == "exited 0" and got == own, (p, got)
        cp = run(["cat", p], check=False)
        assert cp.stdout != host
        cp = run(["sha256sum", p], check=False)
        assert cp.stdout.split()[:1] != run(
            ["sha256sum", "/etc/shadow"]).stdout.split()[:1]
    # The tools copying the link's target keep to the sandbox as well.
    cp = run(["cp", "-L", box.r("root", "x"), box.r("tmp", "copy")],
             check=False)
    if cp.returncode == 0:
        assert read_bytes(box.r("tmp", "copy")) != host


def test_symlink_escape_write(box, tmp_path):
    # A sandbox-made link to a host directory must not let host-side writes
    # through root/ land in that host directory.
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    os.chmod(victim, 0o644)
    box.check("ln -s %s /root/hostdir; ln -s %s /root/hostfile"
              % (tmp_path, victim))
    hd = box.r("root", "hostdir")
    hf = box.r("root", "hostfile")
    attempts = [
        ("create", lambda: os.close(os.open(os.path.join(hd, "planted"),
                                            os.O_CREAT | os.O_WRONLY, 0o644))),
        ("mkdir", lambda: os.mkdir(os.path.join(hd, "planted-dir"))),
        ("symlink", lambda: os.symlink("x", os.path.join(hd, "planted-l"))),
        ("write", lambda: open(hf, "wb").write(b"overwritten")),
        ("append", lambda: open(hf, "ab").write(b"appended")),
        ("truncate", lambda: os.truncate(hf, 0)),
        ("chmod", lambda: os.chmod(hf, 0o600)),
        ("unlink", lambda: os.unlink(os.path.join(hd, "victim"))),
        ("rename", lambda: os.rename(os.path.join(hd, "victim"),
                                     box.r("tmp", "stolen"))),
        ("utime", lambda: os.utime(hf, (0, 0))),
    ]
    for what, fn in attempts:
        errno_of(fn)
        assert sorted(os.listdir(tmp_path)) == ["victim"], what
        assert victim.read_bytes() == b"untouched", what
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644, what
        assert victim.stat().st_mtime > 1, what


def test_host_made_absolute_symlink_stays_inside(box):
    helpers.require(box.mount.provider, "isolation")
    marker = "marker-%s" % secrets.token_hex(4)
    with open(box.r("tmp", marker), "w") as f:
        f.write("inside")
    run(["ln", "-s", "/", box.r("tmp", "up")])
    listing = run(["ls", "-A", box.r("tmp", "up") + "/"]).stdout.decode()
    assert sorted(listing.split()) == sorted(os.listdir(box.root))
    assert marker in os.listdir(os.path.join(box.r("tmp", "up"), "tmp"))
    assert read_bytes(os.path.join(box.r("tmp", "up"), "tmp", marker)) == \
        b"inside"
    # Inside, the same link is the sandbox's "/".
    assert box.check("readlink /tmp/up") == "/\n"
    assert marker in box.check("ls /tmp/up/tmp/")
    # Writing through it stays inside.
    with open(os.path.join(box.r("tmp", "up"), "root", "via-up"), "w") as f:
        f.write("ok")
    assert box.check("cat /root/via-up") == "ok"
    escaped = os.path.exists("/root/via-up") and \
        read_bytes("/root/via-up") == b"ok"
    if escaped:
        os.unlink("/root/via-up")
    assert not escaped, "a write through root/tmp/up landed in the host's /"


# ------------------------------------------------------------------ persistence

def test_persistence_across_remount(make_mount, provider):
    helpers.require(provider, "isolation")
    require_sandboxes(provider)
    m = make_mount()
    a = helpers.new_box(m, "persist-a", start=True)
    bname = helpers.box_name("persist-b")
    write_ok(m.ctl, "new %s image=host\n" % bname)
    b = Box(m, bname)
    with open(a.r("tmp", "p"), "w") as f:
        f.write("tmp file\n")
    os.chmod(a.r("tmp", "p"), 0o600)
    with open(a.r("root", "q"), "wb") as f:
        f.write(b"\0binary\xff" * 1000)
    os.symlink("q", a.r("root", "link"))
    os.mkdir(a.r("var", "tmp", "dir"))
    a.check("echo inside > /home/h")
    with open(b.r("root", "bfile"), "w") as f:
        f.write("in b\n")
    ids = {x.name: (x.status()["id"], x.status()["created"]) for x in (a, b)}
    # A command still running at unmount must not keep the daemon alive.
    a.spawn("sleep 300")

    m.remount()

    assert {a.name, b.name} <= set(os.listdir(m.path))
    for x in (a, b):
        st = x.status()
        assert (st["id"], st["created"]) == ids[x.name]
    assert b.state() == "stopped"
    assert a.state() in ("running", "stopped")
    assert read_text(a.r("tmp", "p")) == "tmp file\n"
    assert stat.S_IMODE(os.stat(a.r("tmp", "p")).st_mode) == 0o600
    assert read_bytes(a.r("root", "q")) == b"\0binary\xff" * 1000
    assert os.readlink(a.r("root", "link")) == "q"
    assert os.path.isdir(a.r("var", "tmp", "dir"))
    assert read_text(a.r("home", "h")) == "inside\n"
    assert read_text(b.r("root", "bfile")) == "in b\n"
    if a.state() == "stopped":
        a.start()
    assert a.check("cat /home/h /tmp/p") == "inside\ntmp file\n"

    # Deleting is persistent too.
    run(["rmdir", b.path])
    m.remount()
    assert b.name not in os.listdir(m.path)
    assert a.name in os.listdir(m.path)
    helpers.remove_box(a)
    m.remount()
    assert m.names() == []


def test_state_dir_is_the_only_state(make_mount):
    # Two mounts with different state dirs do not see each other's sandboxes.
    m1 = make_mount()
    m2 = make_mount()
    b = helpers.new_box(m1, "only-m1", start=False)
    assert b.name in os.listdir(m1.path)
    assert b.name not in os.listdir(m2.path)
    assert errno_of(os.stat, m2.p(b.name)) == errno.ENOENT, ename(
        errno_of(os.stat, m2.p(b.name)))

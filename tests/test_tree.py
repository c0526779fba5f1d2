"""root/ is a real filesystem: drive it with ordinary tools and system calls."""

import errno
import hashlib
import mmap
import os
import random
import re
import shutil
import stat
import tempfile
import threading
import time

import pytest

from helpers import (cat, errno_of, ename, put, q, read_bytes, require, run, sh,
                     unsupported, write_ok)

GiB = 1 << 30


@pytest.fixture
def wd(module_box, request):
    """A fresh empty directory under the sandbox's /tmp for one test."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    path = module_box.r("tmp", name)
    os.mkdir(path)
    return path


# ------------------------------------------------------------------ listing

def test_root_shows_image_and_writable_dirs(module_box, provider):
    if provider != "local":
        pytest.skip("the local provider's image=host layout")
    names = os.listdir(module_box.root)
    for d in ("usr", "tmp", "root", "home", "etc", "var"):
        assert d in names, names
    assert os.path.isdir(module_box.r("var", "tmp"))
    # The host's system directories are there: the sandbox can run a shell.
    assert os.access(module_box.r("bin", "sh"), os.X_OK)
    st = os.stat(module_box.r("usr", "bin", "sh"))
    assert stat.S_ISREG(st.st_mode)


def test_ls_l(wd, provider):
    links = not unsupported(provider, "symlink")
    put(os.path.join(wd, "small"), b"12345")
    put(os.path.join(wd, "big"), b"x" * 70000)
    os.mkdir(os.path.join(wd, "sub"))
    if links:
        os.symlink("small", os.path.join(wd, "lnk"))
    os.chmod(os.path.join(wd, "small"), 0o640)
    out = run(["ls", "-l", "--time-style=+%s", wd]).stdout.decode()
    rows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        rows[f[6]] = f
    assert sorted(rows) == ["big"] + ["lnk"] * links + ["small", "sub"], out
    assert rows["small"][0] == "-rw-r-----" and rows["small"][4] == "5", out
    assert rows["big"][4] == "70000", out
    assert rows["sub"][0].startswith("d"), out
    if links:
        assert rows["lnk"][0].startswith("l") and rows["lnk"][8] == "small", \
            out
    # `ls -l` and stat(2) agree on the mtime.
    assert int(rows["big"][5]) == int(os.stat(os.path.join(wd, "big")).st_mtime)


def test_stat_tool(wd, provider):
    f = os.path.join(wd, "f")
    put(f, b"hello")
    os.chmod(f, 0o604)
    out = run(["stat", "-c", "%s %a %F %h", f]).stdout.decode().strip()
    assert out == "5 604 regular file 1"
    out = run(["stat", "-c", "%F", wd]).stdout.decode().strip()
    assert out == "directory"
    if not unsupported(provider, "symlink"):
        os.symlink("f", os.path.join(wd, "l"))
        out = run(["stat", "-c", "%F %N", os.path.join(wd, "l")]).stdout
        assert out.startswith(b"symbolic link") and b"'f'" in out, out
        out = run(["stat", "-L", "-c", "%s", os.path.join(wd, "l")]).stdout
        assert out.decode().strip() == "5"
    # A name that does not exist fails the way it would anywhere.
    cp = run(["stat", os.path.join(wd, "nope")], check=False)
    assert cp.returncode != 0 and b"No such file" in cp.stderr


def test_find(wd):
    expect = set()
    for d in ("a", "a/b", "a/b/c", "d"):
        os.mkdir(os.path.join(wd, d))
        expect.add((d, "d", None))
    for i, f in enumerate(("a/1", "a/b/2", "a/b/c/3", "d/4", "5")):
        put(os.path.join(wd, f), b"z" * (i * 1000))
        expect.add((f, "f", i * 1000))
    out = run(["find", wd, "-mindepth", "1", "-printf", r"%P %y %s\n"])
    got = set()
    for line in out.stdout.decode().splitlines():
        p, y, s = line.split()
        got.add((p, y, int(s) if y == "f" else None))
    assert got == expect
    out = run(["find", wd, "-name", "3"]).stdout.decode().split()
    assert out == [os.path.join(wd, "a/b/c/3")]


def test_cat_echo_append(wd):
    f = os.path.join(wd, "f")
    sh("echo hello > %s" % q(f))
    sh("echo world >> %s" % q(f))
    sh("printf 'no newline' >> %s" % q(f))
    assert run(["cat", f]).stdout == b"hello\nworld\nno newline"
    sh("echo again > %s" % q(f))  # O_TRUNC
    assert run(["cat", f]).stdout == b"again\n"


def _tree_digest(top):
    """{relpath: ("f", sha256) | ("d",) | ("l", target)} for a tree."""
    res = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        for d in dirnames:
            p = os.path.join(dirpath, d)
            r = os.path.normpath(os.path.join(rel, d))
            if os.path.islink(p):
                res[r] = ("l", os.readlink(p))
            else:
                res[r] = ("d",)
        for f in filenames:
            p = os.path.join(dirpath, f)
            r = os.path.normpath(os.path.join(rel, f))
            if os.path.islink(p):
                res[r] = ("l", os.readlink(p))
            else:
                res[r] = ("f", hashlib.sha256(read_bytes(p)).hexdigest())
    return res


def small_tree(dst):
    """A real source tree of about 80 entries in about 20 directories:
    the small sub-directories of /usr/include/linux (headers of real
    sizes and names).  Large trees are the benchmark's business."""
    top = "/usr/include/linux"
    if not os.path.isdir(top):
        pytest.skip("no /usr/include/linux on this machine")
    os.mkdir(dst)
    for d in sorted(os.listdir(top)):
        p = os.path.join(top, d)
        if not os.path.isdir(p) or os.path.islink(p):
            continue
        if sum(len(f) + len(s) for _, s, f in os.walk(p)) <= 10:
            shutil.copytree(p, os.path.join(dst, d), symlinks=True)
    return dst


def test_cp_r_in_and_out_checksums(wd, tmp_path):
    src = small_tree(str(tmp_path / "linux"))
    inside = os.path.join(wd, "linux")
    run(["cp", "-r", src, inside], timeout=300)
    want = _tree_digest(src)
    assert len(want) > 50
    assert len({os.path.dirname(k) for k in want}) > 10
    assert _tree_digest(inside) == want
    # sha256sum over the copy inside agrees with the original.
    files = sorted(k for k, v in want.items() if v[0] == "f")
    a = run(["sha256sum"] + files, cwd=src).stdout
    b = run(["sha256sum"] + files, cwd=inside).stdout
    assert a == b
    # And back out again.
    out = str(tmp_path / "linux-out")
    run(["cp", "-r", inside, out], timeout=300)
    assert _tree_digest(out) == want
    # find sees every entry.
    n = len(run(["find", inside, "-mindepth", "1"]).stdout.splitlines())
    assert n == len(want)


def test_mv_over_existing(wd):
    a, b = os.path.join(wd, "a"), os.path.join(wd, "b")
    put(a, b"new contents\n")
    put(b, b"old contents which are longer\n")
    run(["mv", a, b])
    assert not os.path.exists(a)
    assert read_bytes(b) == b"new contents\n"
    assert os.listdir(wd) == ["b"]
    # The editor pattern: write a temp file, fsync, rename over the original.
    tmp = os.path.join(wd, ".b.swp")
    with open(tmp, "wb") as f:
        f.write(b"saved\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, b)
    assert read_bytes(b) == b"saved\n"
    assert sorted(os.listdir(wd)) == ["b"]
    # mv a directory into another one.
    os.mkdir(os.path.join(wd, "d1"))
    os.mkdir(os.path.join(wd, "d2"))
    put(os.path.join(wd, "d1", "x"), b"x")
    run(["mv", os.path.join(wd, "d1"), os.path.join(wd, "d2")])
    assert read_bytes(os.path.join(wd, "d2", "d1", "x")) == b"x"


def test_rm(wd):
    f = os.path.join(wd, "f")
    put(f, b"data")
    run(["rm", f])
    assert not os.path.exists(f)
    assert errno_of(os.stat, f) == errno.ENOENT
    cp = run(["rm", f], check=False)
    assert cp.returncode != 0
    os.makedirs(os.path.join(wd, "t", "u", "v"))
    put(os.path.join(wd, "t", "u", "v", "w"), b"w")
    run(["rm", "-r", os.path.join(wd, "t")])
    assert os.listdir(wd) == []


def test_mkdir_rmdir(wd):
    d = os.path.join(wd, "d")
    run(["mkdir", d])
    assert os.path.isdir(d)
    assert errno_of(os.mkdir, d) == errno.EEXIST
    run(["mkdir", "-p", os.path.join(d, "x", "y", "z")])
    assert os.path.isdir(os.path.join(d, "x", "y", "z"))
    put(os.path.join(d, "x", "y", "file"), b"")
    # rmdir of a non-empty directory: ENOTEMPTY, with the tool and the call.
    cp = run(["rmdir", os.path.join(d, "x", "y")], check=False)
    assert cp.returncode != 0 and b"not empty" in cp.stderr, cp.stderr
    assert errno_of(os.rmdir, os.path.join(d, "x", "y")) == errno.ENOTEMPTY
    assert errno_of(os.rmdir, os.path.join(d, "x", "y", "file")) == \
        errno.ENOTDIR
    run(["rmdir", os.path.join(d, "x", "y", "z")])
    os.unlink(os.path.join(d, "x", "y", "file"))
    run(["rmdir", "-p", "x/y"], cwd=d)
    assert os.listdir(d) == []
    run(["rmdir", d])
    assert not os.path.exists(d)
    assert errno_of(os.rmdir, d) == errno.ENOENT
    # A directory's link count and mode come out as created.
    os.mkdir(d, 0o711)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o711 & ~_umask()


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_symlink_readlink(wd, provider):
    require(provider, "symlink")
    put(os.path.join(wd, "target"), b"through the link\n")
    run(["ln", "-s", "target", os.path.join(wd, "l1")])
    assert run(["readlink", os.path.join(wd, "l1")]).stdout == b"target\n"
    assert os.readlink(os.path.join(wd, "l1")) == "target"
    assert run(["cat", os.path.join(wd, "l1")]).stdout == b"through the link\n"
    st = os.lstat(os.path.join(wd, "l1"))
    assert stat.S_ISLNK(st.st_mode) and st.st_size == len("target")
    # Dangling, and into a sub-directory, and a long target.
    os.symlink("nowhere", os.path.join(wd, "dangling"))
    assert os.readlink(os.path.join(wd, "dangling")) == "nowhere"
    assert errno_of(os.stat, os.path.join(wd, "dangling")) == errno.ENOENT
    os.mkdir(os.path.join(wd, "sub"))
    os.symlink("../target", os.path.join(wd, "sub", "up"))
    assert read_bytes(os.path.join(wd, "sub", "up")) == b"through the link\n"
    long_target = "/".join(["d" * 200] * 10)
    os.symlink(long_target, os.path.join(wd, "long"))
    assert os.readlink(os.path.join(wd, "long")) == long_target
    # A symlink to a directory, used as a path component.
    os.symlink("sub", os.path.join(wd, "sublink"))
    assert sorted(os.listdir(os.path.join(wd, "sublink"))) == ["up"]
    assert errno_of(os.symlink, "x", os.path.join(wd, "l1")) == errno.EEXIST
    run(["ln", "-sfn", "sub", os.path.join(wd, "l1")])
    assert os.readlink(os.path.join(wd, "l1")) == "sub"


def test_hard_link(wd, provider):
    # Without link counts (documented per provider), the links still work.
    counts = not unsupported(provider, "nlink")
    a, b = os.path.join(wd, "a"), os.path.join(wd, "b")
    put(a, b"shared")
    os.link(a, b)
    assert not counts or os.stat(a).st_nlink == 2 and os.stat(b).st_nlink == 2
    with open(b, "r+b") as f:
        f.seek(0, 2)
        f.write(b" more")
    assert read_bytes(a) == b"shared more"
    run(["ln", a, os.path.join(wd, "c")])
    assert not counts or os.stat(a).st_nlink == 3
    os.unlink(a)
    assert not counts or os.stat(b).st_nlink == 2
    assert read_bytes(os.path.join(wd, "c")) == b"shared more"
    assert errno_of(os.link, b, os.path.join(wd, "c")) == errno.EEXIST
    if not counts:
        return
    # Both names are one file: same inode number (cp -a, tar, du, rsync -H
    # rely on it), and the old name's link count follows a new link.
    assert os.stat(b).st_ino == os.stat(os.path.join(wd, "c")).st_ino
    os.stat(b)  # cache b's attributes, then link it once more
    os.link(b, os.path.join(wd, "d"))
    assert os.stat(b).st_nlink == 3


def test_chmod(wd):
    f = os.path.join(wd, "f")
    put(f, b"#!/bin/sh\necho hi\n")
    for mode in (0o600, 0o644, 0o755, 0o4755, 0o1777, 0o000, 0o640):
        os.chmod(f, mode)
        assert stat.S_IMODE(os.stat(f).st_mode) == mode, oct(mode)
    run(["chmod", "u+x,g-r", f])
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o700
    run(["chmod", "755", f])
    assert run(["stat", "-c", "%a", f]).stdout.strip() == b"755"
    os.mkdir(os.path.join(wd, "d"))
    run(["chmod", "700", os.path.join(wd, "d")])
    assert stat.S_IMODE(os.stat(os.path.join(wd, "d")).st_mode) == 0o700
    # Through an open file descriptor too.
    fd = os.open(f, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o604)
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o604


def test_truncate(wd):
    f = os.path.join(wd, "f")
    put(f, b"0123456789")
    run(["truncate", "-s", "4", f])
    assert read_bytes(f) == b"0123"
    run(["truncate", "-s", "8", f])
    assert read_bytes(f) == b"0123\0\0\0\0"
    os.truncate(f, 2)
    assert read_bytes(f) == b"01"
    with open(f, "r+b") as fh:
        os.ftruncate(fh.fileno(), 6)
    assert os.stat(f).st_size == 6
    run(["truncate", "-s", "+10", f])
    assert os.stat(f).st_size == 16
    run(["truncate", "-s", "0", f])
    assert read_bytes(f) == b""


def test_touch_d(wd, provider):
    atime = not unsupported(provider, "atime")
    f = os.path.join(wd, "f")
    run(["touch", f])
    assert os.path.isfile(f) and os.stat(f).st_size == 0
    run(["touch", "-d", "2001-02-03 04:05:06 UTC", f])
    st = os.stat(f)
    assert int(st.st_mtime) == 981173106
    assert not atime or int(st.st_atime) == 981173106
    run(["touch", "-m", "-d", "@1234567890", f])
    assert int(os.stat(f).st_mtime) == 1234567890
    assert not atime or int(os.stat(f).st_atime) == 981173106
    out = run(["stat", "-c", "%Y", f]).stdout.strip()
    assert out == b"1234567890"
    # touch of an existing file with no date moves mtime to about now.
    run(["touch", f])
    assert abs(os.stat(f).st_mtime - time.time()) < 3600


def test_utimens(wd, provider):
    f = os.path.join(wd, "f")
    put(f, b"x")
    a_ns, m_ns = 1500000000123456789, 1600000000987654321
    os.utime(f, ns=(a_ns, m_ns))
    st = os.stat(f)
    assert st.st_mtime_ns // 10**9 == m_ns // 10**9
    if not unsupported(provider, "atime"):
        assert st.st_atime_ns // 10**9 == a_ns // 10**9
    if provider == "local":
        assert st.st_mtime_ns == m_ns and st.st_atime_ns == a_ns
    # Directories and UTIME_NOW (times=None).
    os.utime(wd, (1000000000, 1000000000))
    assert int(os.stat(wd).st_mtime) == 1000000000
    os.utime(f)
    assert os.stat(f).st_mtime > 1600000001


def in_sandbox(wd):
    """wd's path as the sandbox's own commands see it."""
    root = wd[:wd.index("/root/") + len("/root")]
    return "/" + os.path.relpath(wd, root)


def test_truncate_while_open_for_reading(module_box, wd):
    # A reader's open copy of the file must not swallow a truncate(2) by
    # path: the server truncates, and the sandbox sees it.
    f = os.path.join(wd, "f")
    put(f, b"0123456789")
    with open(f, "rb") as r:
        assert r.read(3) == b"012"
        os.truncate(f, 2)
        assert os.stat(f).st_size == 2
    assert read_bytes(f) == b"01"
    assert module_box.check("cat %s/f" % q(in_sandbox(wd))) == "01"


def test_created_read_only_is_saved(module_box, wd):
    # open(O_CREAT | O_RDONLY) makes the file, on the server too.
    f = os.path.join(wd, "made")
    os.close(os.open(f, os.O_CREAT | os.O_RDONLY, 0o640))
    assert os.path.isfile(f)
    out = module_box.check("ls -l %s/made" % q(in_sandbox(wd)))
    assert out.startswith("-rw-r-----"), out


def test_dd_seek_notrunc(wd):
    f = os.path.join(wd, "f")
    rnd = random.Random(1)
    base = bytes(rnd.getrandbits(8) for _ in range(1 << 16))
    patch = bytes(rnd.getrandbits(8) for _ in range(3 * 4096))
    put(f, base)
    src = os.path.join(wd, "patch")
    put(src, patch)
    run(["dd", "if=" + src, "of=" + f, "bs=4096", "seek=5", "count=3",
         "conv=notrunc", "status=none"])
    want = base[:5 * 4096] + patch + base[8 * 4096:]
    assert read_bytes(f) == want
    # Without notrunc dd truncates after what it wrote.
    run(["dd", "if=" + src, "of=" + f, "bs=1000", "seek=7", "count=1",
         "status=none"])
    assert read_bytes(f) == want[:7000] + patch[:1000]
    # Seek past EOF leaves a hole of zeros.
    run(["dd", "if=" + src, "of=" + f, "bs=512", "seek=100", "count=1",
         "conv=notrunc", "status=none"])
    data = read_bytes(f)
    assert len(data) == 101 * 512
    assert data[8000:100 * 512] == b"\0" * (100 * 512 - 8000)
    assert data[100 * 512:] == patch[:512]
    # And dd reads at an offset.
    out = run(["dd", "if=" + f, "bs=512", "skip=100", "count=1",
               "status=none"]).stdout
    assert out == patch[:512]


def test_rdwr_pread_pwrite(wd):
    f = os.path.join(wd, "f")
    fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        assert os.pwrite(fd, b"hello world", 0) == 11
        assert os.pwrite(fd, b"WORLD", 6) == 5
        assert os.pread(fd, 100, 0) == b"hello WORLD"
        assert os.pread(fd, 3, 4) == b"o W"
        assert os.pread(fd, 10, 11) == b""
        assert os.pwrite(fd, b"!", 20) == 1
        assert os.pread(fd, 100, 0) == b"hello WORLD" + b"\0" * 9 + b"!"
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 5) == b"hello"
        os.write(fd, b"_")
        assert os.pread(fd, 7, 0) == b"hello_W"
        assert os.fstat(fd).st_size == 21
        # Interleave with a second descriptor on the same file.
        fd2 = os.open(f, os.O_RDWR)
        try:
            os.pwrite(fd2, b"XY", 0)
            assert os.pread(fd, 2, 0) == b"XY"
        finally:
            os.close(fd2)
    finally:
        os.close(fd)
    # O_APPEND writes go to the end whatever the offset.
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"END")
    finally:
        os.close(fd)
    data = read_bytes(f)
    assert data.endswith(b"!END") and len(data) == 24
    # O_EXCL on an existing file, O_TRUNC on open.
    assert errno_of(os.open, f, os.O_RDWR | os.O_CREAT | os.O_EXCL) == \
        errno.EEXIST
    os.close(os.open(f, os.O_RDWR | os.O_TRUNC))
    assert os.stat(f).st_size == 0


def _host_supports_sparse(tmp_path):
    p = tmp_path / "sparse-probe"
    with open(p, "wb") as f:
        f.truncate(1 << 30)
    return os.stat(p).st_blocks * 512 < (1 << 20)


def test_sparse_5g(wd, tmp_path, provider):
    require(provider, "huge_files")
    f = os.path.join(wd, "big")
    run(["truncate", "-s", "5G", f])
    assert os.stat(f).st_size == 5 * GiB
    fd = os.open(f, os.O_RDWR)
    try:
        assert os.pwrite(fd, b"tail", 5 * GiB) == 4
        assert os.pwrite(fd, b"mid", 4 * GiB + 7) == 3
        assert os.fstat(fd).st_size == 5 * GiB + 4
        assert os.pread(fd, 10, 5 * GiB) == b"tail"
        assert os.pread(fd, 5, 4 * GiB + 5) == b"\0\0mid"
        assert os.pread(fd, 4096, 3 * GiB) == b"\0" * 4096
    finally:
        os.close(fd)
    assert os.stat(f).st_size == 5 * GiB + 4
    out = run(["stat", "-c", "%s", f]).stdout.strip()
    assert out == str(5 * GiB + 4).encode()
    # dd reads past the 4 GiB mark too.
    out = run(["dd", "if=" + f, "bs=1", "skip=%d" % (5 * GiB), "count=4",
               "status=none"]).stdout
    assert out == b"tail"
    if provider == "local" and _host_supports_sparse(tmp_path):
        # Still sparse: the daemon did not fill the hole with zeros.
        assert os.stat(f).st_blocks * 512 < 256 << 20
    os.unlink(f)


NAMES = [b"with space", b"  lead and trail  ", b"caf\xe9",  # Latin-1, bad UTF-8
         b"\xff\xfe\xfd", b"new\nline", b"tab\there", b"utf8-\xc3\xa9\xe2\x82\xac",
         b"quote'\"", b"star*?[x]", b"-dash", b"x" * 255]


def _utf8(name):
    try:
        name.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_odd_names(wd, provider):
    bwd = os.fsencode(wd)
    names = NAMES
    if unsupported(provider, "non_utf8"):
        names = [n for n in NAMES if _utf8(n)]
    for i, n in enumerate(NAMES):
        if n in names:
            put(os.path.join(bwd, n), b"%d" % i)
    got = sorted(os.listdir(bwd))
    assert got == sorted(names)
    for i, n in enumerate(NAMES):
        if n in names:
            assert read_bytes(os.path.join(bwd, n)) == b"%d" % i
    # Real tools see them byte-exactly.
    out = run(["find", bwd, "-mindepth", "1", "-printf", r"%f\0"]).stdout
    assert sorted(out.split(b"\0")[:-1]) == sorted(names)
    if names is not NAMES:
        for n in names:
            os.unlink(os.path.join(bwd, n))
        return
    out = run(["ls", "-1", "--quoting-style=literal", "-a", bwd]).stdout
    assert b"caf\xe9\n" in out and b"with space\n" in out
    assert run(["cat", os.path.join(bwd, b"caf\xe9")]).stdout == b"2"
    # Rename, mkdir, symlink with such names.
    os.rename(os.path.join(bwd, b"caf\xe9"), os.path.join(bwd, b"d\xe9j\xe0"))
    assert read_bytes(os.path.join(bwd, b"d\xe9j\xe0")) == b"2"
    os.mkdir(os.path.join(bwd, b"dir \xff"))
    put(os.path.join(bwd, b"dir \xff", b"in \xfe"), b"nested")
    assert os.listdir(os.path.join(bwd, b"dir \xff")) == [b"in \xfe"]
    os.symlink(b"dir \xff/in \xfe", os.path.join(bwd, b"ln \x80"))
    assert os.readlink(os.path.join(bwd, b"ln \x80")) == b"dir \xff/in \xfe"
    assert read_bytes(os.path.join(bwd, b"ln \x80")) == b"nested"
    # 256 bytes is one too many for a name.
    assert errno_of(os.open, os.path.join(bwd, b"y" * 256),
                    os.O_CREAT | os.O_WRONLY) == errno.ENAMETOOLONG
    for n in NAMES:
        if n != b"caf\xe9":
            os.unlink(os.path.join(bwd, n))
    run(["rm", "-r", os.path.join(bwd, b"dir \xff")])


def test_32_parallel_writers(wd):
    nthreads = 32
    rnd = random.Random(32)
    datas = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300000)))
             for _ in range(nthreads)]
    errors = []
    barrier = threading.Barrier(nthreads, timeout=60)

    def writer(i):
        try:
            r = random.Random(i)
            p = os.path.join(wd, "w%02d" % i)
            barrier.wait()
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                off = 0
                d = datas[i]
                while off < len(d):
                    n = r.choice((1, 100, 4096, 4097, 65536, 131072))
                    off += os.write(fd, d[off:off + n])
                if i % 2:
                    os.fsync(fd)
            finally:
                os.close(fd)
            # Each thread also rewrites a slice in place with pwrite.
            fd = os.open(p, os.O_RDWR)
            try:
                k = len(d) // 3
                os.pwrite(fd, d[k:k + 100][::-1], k)
            finally:
                os.close(fd)
        except BaseException as e:
            errors.append((i, e))

    threads = [threading.Thread(target=writer, args=(i,), daemon=True)
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a writer thread hung"
    assert not errors, errors
    assert len(os.listdir(wd)) == nthreads
    for i in range(nthreads):
        d = datas[i]
        k = len(d) // 3
        want = d[:k] + d[k:k + 100][::-1] + d[k + 100:]
        got = read_bytes(os.path.join(wd, "w%02d" % i))
        assert len(got) == len(want), i
        assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest(), i


def test_statfs(module_box):
    st = os.statvfs(module_box.root)
    assert st.f_bsize > 0 and st.f_frsize > 0
    assert st.f_blocks > 0
    assert 0 <= st.f_bavail <= st.f_bfree <= st.f_blocks
    assert st.f_namemax >= 255
    out = run(["df", "-P", module_box.r("tmp")]).stdout.decode().splitlines()
    assert len(out) == 2
    total_kib = int(out[1].split()[1])
    assert total_kib > 0
    out = run(["stat", "-f", "-c", "%l", module_box.root]).stdout.strip()
    assert int(out) >= 255


def test_fsync(wd):
    f = os.path.join(wd, "f")
    fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"durable")
        os.fsync(fd)
        os.fdatasync(fd)
        os.write(fd, b" more")
        os.fsync(fd)
    finally:
        os.close(fd)
    assert read_bytes(f) == b"durable more"
    dfd = os.open(wd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    run(["sync", f])


def _some_usr_file():
    """A regular, non-executable file of the host's /usr (read-only probe)."""
    for p in ("/usr/include/stdio.h", "/usr/share/common-licenses/GPL-3",
              "/usr/lib/os-release"):
        if os.path.isfile(p) and not os.path.islink(p):
            return p
    for dirpath, _, files in os.walk("/usr/share/doc"):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                return p
    return None


def test_erofs_on_usr(module_box, provider):
    if provider != "local":
        pytest.skip("the local provider's read-only image")
    usr = module_box.r("usr")
    new = os.path.join(usr, "sbxfs-test-should-not-exist")
    host_new = "/usr/sbxfs-test-should-not-exist"
    assert not os.path.lexists(host_new)
    try:
        assert errno_of(os.open, new, os.O_WRONLY | os.O_CREAT, 0o644) == \
            errno.EROFS
        assert errno_of(os.mkdir, new) == errno.EROFS
        assert errno_of(os.symlink, "x", new) == errno.EROFS
        cp = run(["touch", new], check=False)
        assert cp.returncode != 0 and b"Read-only file system" in cp.stderr, \
            cp.stderr
        # Existing files: opening one for writing (no O_TRUNC, nothing
        # written: harmless even if it were wrongly allowed) and chmod to
        # the mode it already has must both fail with EROFS.
        host_file = _some_usr_file()
        if host_file:
            f = module_box.r(host_file)
            before = os.stat(host_file)
            assert read_bytes(f) == read_bytes(host_file)
            assert errno_of(os.open, f, os.O_WRONLY) == errno.EROFS
            assert errno_of(os.open, f, os.O_RDWR) == errno.EROFS
            assert errno_of(os.chmod, f, stat.S_IMODE(before.st_mode)) == \
                errno.EROFS
            assert errno_of(os.unlink, module_box.r("usr", "no-such-file")) \
                in (errno.EROFS, errno.ENOENT)
            assert os.stat(host_file).st_mtime_ns == before.st_mtime_ns
    finally:
        for p in (new, host_new):
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
            elif os.path.lexists(p):
                os.unlink(p)
    assert not os.path.lexists(host_new)


def many_names(n):
    """n names of 10 to 209 bytes: a listing of them fills many FUSE
    readdir buffers (4 KiB) and more than one getdents(2) buffer (32 KiB)."""
    return ["file-%04d-%s" % (i, "n" * (i % 200)) for i in range(n)]


def test_many_files_listing(module_box, wd):
    # Large directories list completely (readdir continues across buffers).
    # The names are made in the sandbox by one command (creating each
    # through the mount is what other tests do), then listed and removed
    # through the mount.
    names = many_names(400)
    inside = "/" + os.path.relpath(wd, module_box.root)
    module_box.check(
        "cd %s && i=0 && pad= && while [ $i -lt 400 ]; do "
        "n=$i; [ $i -lt 1000 ] && n=0$n; [ $i -lt 100 ] && n=0$n; "
        "[ $i -lt 10 ] && n=0$n; [ $((i %% 200)) -eq 0 ] && pad=; "
        ": > file-$n-$pad; pad=${pad}n; i=$((i + 1)); done && "
        "chmod 600 file-*" % q(inside))
    assert sorted(os.listdir(wd)) == sorted(names)
    out = run(["ls", "-1", wd]).stdout.decode().split("\n")[:-1]
    assert sorted(out) == sorted(names)
    with os.scandir(wd) as it:
        for e in it:
            assert e.is_file()
            assert stat.S_IMODE(e.stat().st_mode) == 0o600
    # Through the mount: some removed, a few made; the listing follows.
    gone = names[::10]
    for n in gone:
        os.unlink(os.path.join(wd, n))
    made = ["made-%d-%s" % (i, "m" * (i * 37 % 200)) for i in range(10)]
    for n in made:
        os.close(os.open(os.path.join(wd, n), os.O_CREAT | os.O_WRONLY, 0o600))
    want = sorted(set(names) - set(gone) | set(made))
    assert sorted(os.listdir(wd)) == want
    assert sorted(run(["ls", "-1", wd]).stdout.decode().split("\n")[:-1]) == want


def test_large_file_roundtrip(wd, tmp_path):
    # 64 MiB through cp both ways, checked by sha256sum.
    src = str(tmp_path / "src")
    with open(src, "wb") as f:
        r = random.Random(64)
        for _ in range(64):
            f.write(r.getrandbits(8 * (1 << 20)).to_bytes(1 << 20, "little"))
    run(["cp", src, os.path.join(wd, "big")], timeout=300)
    back = str(tmp_path / "back")
    run(["cp", os.path.join(wd, "big"), back], timeout=300)
    s1 = run(["sha256sum", src]).stdout.split()[0]
    s2 = run(["sha256sum", os.path.join(wd, "big")], timeout=300).stdout
    s3 = run(["sha256sum", back]).stdout.split()[0]
    assert s1 == s2.split()[0] == s3
    os.unlink(os.path.join(wd, "big"))


def test_inode_numbers(wd, module_box):
    # Distinct files have distinct, stable inode numbers; rename keeps the
    # number (tools such as tar, find -inum and backup programs rely on it).
    names = ["f%d" % i for i in range(50)]
    for n in names:
        put(os.path.join(wd, n), n)
    inos = {n: os.stat(os.path.join(wd, n)).st_ino for n in names}
    assert len(set(inos.values())) == len(names)
    assert all(os.lstat(os.path.join(wd, n)).st_ino == inos[n]
               for n in names)
    with os.scandir(wd) as it:
        for e in it:
            assert e.inode() == inos[e.name], e.name
    os.rename(os.path.join(wd, "f1"), os.path.join(wd, "moved"))
    assert os.stat(os.path.join(wd, "moved")).st_ino == inos["f1"]
    os.rename(os.path.join(wd, "f2"), os.path.join(wd, "f3"))
    assert os.stat(os.path.join(wd, "f3")).st_ino == inos["f2"]
    out = run(["find", wd, "-inum", str(inos["f4"])]).stdout.decode().split()
    assert out == [os.path.join(wd, "f4")]
    # A command may change anything, so the kernel is told to forget what
    # it knew of the sandbox; a name that still holds its file keeps its
    # number (git keeps st_ino in its index, rsync -H and tar compare them).
    os.mkdir(os.path.join(wd, "sub"))
    put(os.path.join(wd, "sub", "x"), "x")
    names = ["f0", "f3", "moved", "sub", os.path.join("sub", "x")]
    before = {n: os.lstat(os.path.join(wd, n)).st_ino for n in names}
    for _ in range(2):
        write_ok(module_box.p("exec"), "true")
        cat(module_box.p("exec"))
        assert {n: os.lstat(os.path.join(wd, n)).st_ino for n in names} == before


def test_rename_symlink_over_its_target(wd, provider):
    # rename(2) lets a symlink replace the very file it points to (GNU mv
    # calls them the same file and refuses).
    require(provider, "symlink")
    put(os.path.join(wd, "a"), b"x")
    os.symlink("a", os.path.join(wd, "b"))
    os.rename(os.path.join(wd, "b"), os.path.join(wd, "a"))
    assert os.readlink(os.path.join(wd, "a")) == "a"
    assert not os.path.lexists(os.path.join(wd, "b"))
    assert sorted(os.listdir(wd)) == ["a"]


def test_rename_directory_with_cached_children(wd):
    os.makedirs(os.path.join(wd, "d1", "sub"))
    f_old = os.path.join(wd, "d1", "sub", "f")
    put(f_old, b"before")
    # Look everything up (fills the kernel's and the daemon's caches).
    assert read_bytes(f_old) == b"before"
    os.stat(os.path.join(wd, "d1", "sub"))
    run(["mv", os.path.join(wd, "d1"), os.path.join(wd, "d2")])
    f_new = os.path.join(wd, "d2", "sub", "f")
    assert errno_of(os.stat, f_old) == errno.ENOENT
    assert errno_of(os.stat, os.path.join(wd, "d1")) == errno.ENOENT
    assert read_bytes(f_new) == b"before"
    with open(f_new, "ab") as f:
        f.write(b" after")
    assert read_bytes(f_new) == b"before after"
    assert sorted(os.listdir(wd)) == ["d2"]
    # And back, over an empty directory.
    os.mkdir(os.path.join(wd, "d1"))
    os.rename(os.path.join(wd, "d2"), os.path.join(wd, "d1"))
    assert read_bytes(f_old) == b"before after"
    assert errno_of(os.stat, f_new) == errno.ENOENT


def test_open_file_survives_rename_and_unlink(wd):
    os.mkdir(os.path.join(wd, "a"))
    p = os.path.join(wd, "a", "f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"one ")
        os.rename(os.path.join(wd, "a"), os.path.join(wd, "b"))
        os.write(fd, b"two ")
        assert read_bytes(os.path.join(wd, "b", "f")) == b"one two "
        os.unlink(os.path.join(wd, "b", "f"))
        assert os.listdir(os.path.join(wd, "b")) == []
        # Still readable and writable through the open descriptor.
        os.write(fd, b"three")
        assert os.pread(fd, 100, 0) == b"one two three"
        assert os.fstat(fd).st_size == 13
    finally:
        os.close(fd)
    assert os.listdir(os.path.join(wd, "b")) == []
    # tempfile.TemporaryFile is exactly this: create, unlink, then use.
    with tempfile.TemporaryFile(dir=wd) as t:
        t.write(b"x" * 100000)
        t.flush()
        t.seek(0)
        assert t.read() == b"x" * 100000
    assert os.listdir(wd) == ["b"]


def test_mmap(wd):
    p = os.path.join(wd, "m")
    put(p, b"0123456789" * 1000)
    with open(p, "r+b") as f:
        with mmap.mmap(f.fileno(), 0) as m:
            assert m[:10] == b"0123456789"
            assert m[9990:] == b"0123456789"
            m[0:5] = b"HELLO"
            m.flush()
    assert read_bytes(p)[:12] == b"HELLO5678901"
    # A private read-only mapping sees later writes made with write(2).
    with open(p, "r+b") as f:
        os.pwrite(f.fileno(), b"world", 5)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            assert m[:10] == b"HELLOworld"


def test_tar_roundtrip(wd, tmp_path, provider):
    # tar restores modes, times, symlinks and hard links; `tar -d` then
    # compares every member (contents, mode, mtime, size, link targets).
    src = tmp_path / "src"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "dir" / "a").write_bytes(b"a" * 5000)
    (src / "dir" / "sub" / "b").write_bytes(b"b")
    os.chmod(src / "dir" / "a", 0o751)
    if not unsupported(provider, "symlink"):
        os.symlink("a", src / "dir" / "sym")
    # tar -d checks that hard links are one file (inode numbers).
    if not unsupported(provider, "nlink"):
        os.link(src / "dir" / "a", src / "dir" / "hard")
    os.utime(src / "dir" / "sub" / "b", (1e9, 1e9))
    archive = str(tmp_path / "t.tar")
    run(["tar", "-C", str(src), "-cf", archive, "dir"])
    run(["tar", "-C", wd, "-xpf", archive])
    cp = run(["tar", "-C", wd, "-df", archive], check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    if not unsupported(provider, "nlink"):
        assert os.stat(os.path.join(wd, "dir", "hard")).st_nlink == 2
    # And an archive made from inside root/ extracts to the same tree.
    archive2 = str(tmp_path / "t2.tar")
    run(["tar", "-C", wd, "-cf", archive2, "dir"])
    out = tmp_path / "out"
    out.mkdir()
    run(["tar", "-C", str(out), "-xpf", archive2])
    assert _tree_digest(str(out)) == _tree_digest(str(src))


def test_git_workflow(wd):
    git = shutil.which("git")
    if not git:
        pytest.skip("git is not installed")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e",
               HOME=wd, GIT_CONFIG_NOSYSTEM="1")
    repo = os.path.join(wd, "repo")

    def g(*args):
        return run([git, "-C", repo] + list(args), env=env, timeout=120)

    # No template: the sample hooks are a dozen files that say nothing
    # more about the mount.
    run([git, "init", "-q", "--template=", repo], env=env)
    for i in range(8):
        put(os.path.join(repo, "f%d.txt" % i), "line %d\n" % i * (i + 1))
    g("add", "-A")
    g("commit", "-q", "-m", "one")
    put(os.path.join(repo, "f3.txt"), "changed\n")
    os.rename(os.path.join(repo, "f4.txt"), os.path.join(repo, "g4.txt"))
    g("add", "-A")
    g("commit", "-q", "-m", "two")
    g("gc", "-q")
    g("fsck", "--strict")
    assert g("status", "--porcelain").stdout == b""
    assert g("rev-list", "--count", "HEAD").stdout.strip() == b"2"
    g("checkout", "-q", "HEAD~1")
    assert read_bytes(os.path.join(repo, "f4.txt")) == b"line 4\n" * 5


def test_chown_where_permitted(wd):
    f = os.path.join(wd, "f")
    put(f, b"x")
    st = os.stat(f)
    # chown to the owner it already has always works.
    os.chown(f, st.st_uid, st.st_gid)
    assert (os.stat(f).st_uid, os.stat(f).st_gid) == (st.st_uid, st.st_gid)
    # Another owner: allowed or EPERM (a clear errno), never something else.
    e = errno_of(os.chown, f, st.st_uid + 12345, -1)
    assert e in (0, errno.EPERM, errno.EINVAL), ename(e)

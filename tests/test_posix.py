"""POSIX at its edges through root/, on every provider: special files
made with mknod(2), and link counts that follow under every name of a
file."""

import errno
import os
import socket
import stat

import helpers
from helpers import errno_of, put, read_bytes, require
from test_tree import wd  # noqa: F401 (a fixture)


def test_special_files(module_box, wd, provider):
    # mknod(2) makes regular files everywhere; FIFOs, sockets and device
    # nodes on local (a sandbox is a directory on local disk), where a
    # device node opens nothing: the mount and the sandbox are nodev.
    reg = os.path.join(wd, "reg")
    os.mknod(reg, stat.S_IFREG | 0o600)
    st = os.stat(reg)
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    null = os.path.join(wd, "null")
    fifo = os.path.join(wd, "fifo")
    if provider != "local":
        assert errno_of(os.mknod, null, stat.S_IFCHR | 0o600, os.makedev(1, 3)) == \
            errno.EPERM
        assert errno_of(os.mkfifo, fifo) == errno.EPERM
        return
    if os.getuid() == 0:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        st = os.lstat(null)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
        assert errno_of(os.open, null, os.O_WRONLY) == errno.EACCES
        _, status, n = module_box.run("echo x > /tmp/%s/null" % os.path.basename(wd))
        assert status != "exited 0" and b"denied" in read_bytes(module_box.cmd(n, "stderr"))
        os.unlink(null)
    os.mkfifo(fifo, 0o640)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert stat.S_IMODE(os.lstat(fifo).st_mode) == 0o640 & ~_umask()
    # bind(2) by a relative name: a socket's path is at most 107 bytes.
    sock, cwd = socket.socket(socket.AF_UNIX), os.getcwd()
    try:
        os.chdir(wd)
        sock.bind("sock")
    finally:
        os.chdir(cwd)
        sock.close()
    assert stat.S_ISSOCK(os.lstat(os.path.join(wd, "sock")).st_mode)
    assert sorted(os.listdir(wd)) == ["fifo", "reg", "sock"]


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_link_counts_follow_under_every_name(wd, provider):
    # A provider without inode numbers shows a file's names as several
    # inodes: a link or an unlink through one name still shows at once
    # under the others, an open descriptor notwithstanding.
    require(provider, "link_counts")
    a, b = os.path.join(wd, "a"), os.path.join(wd, "b")
    put(a, "x")
    fd = os.open(a, os.O_RDONLY)
    try:
        assert os.stat(a).st_nlink == 1
        os.link(a, b)
        assert os.stat(a).st_nlink == 2
        os.unlink(b)
        assert os.stat(a).st_nlink == 1
        put(a, "yy")
        os.link(a, b)
        os.unlink(a)
        assert read_bytes(b) == b"yy" and os.stat(b).st_nlink == 1
    finally:
        os.close(fd)


# What a remote provider takes (remote.h), and the depth the test goes to.
REMOTE_PATH_MAX = 4096 - 256


def test_paths_longer_than_path_max(module_box, wd, provider):
    # A tree deeper than PATH_MAX, reached a step at a time (as with a deep
    # working directory): every call names a short relative path, the
    # daemon the whole one.  On local it works as on a native file system;
    # a remote service resolves a whole path in one call on its side,
    # where PATH_MAX holds: a deeper name is ENAMETOOLONG, said in err.
    name = "d" * 200
    depth = 24                       # 24 * 201 bytes: past 4096
    inside = len("/tmp/" + os.path.basename(wd))
    fds = [os.open(wd, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for i in range(depth):
            if helpers.is_remote(provider) and inside + 201 * (i + 1) >= REMOTE_PATH_MAX:
                assert errno_of(os.mkdir, name, 0o755, dir_fd=fds[-1]) == \
                    errno.ENAMETOOLONG
                assert "API takes none longer" in module_box.err()
                depth = i
                break
            os.mkdir(name, 0o755, dir_fd=fds[-1])
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        deep = fds[-1]
        fd = os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=deep)
        os.write(fd, b"deep\n")
        os.close(fd)
        assert os.stat("f", dir_fd=deep).st_size == 5
        os.rename("f", "g", src_dir_fd=deep, dst_dir_fd=deep)
        fd = os.open("g", os.O_RDONLY, dir_fd=deep)
        assert os.read(fd, 100) == b"deep\n"
        os.close(fd)
        assert sorted(os.listdir(deep)) == ["g"]
        os.unlink("g", dir_fd=deep)
        for i in range(depth, 0, -1):
            os.close(fds.pop())
            os.rmdir(name, dir_fd=fds[-1])
        assert os.listdir(wd) == []
    finally:
        for fd in fds:
            os.close(fd)

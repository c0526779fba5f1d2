"""POSIX at its edges through root/, on every provider: special files
made with mknod(2), and link counts that follow under every name of a
file."""

import errno
import os
import socket
import stat

from helpers import errno_of, put, read_bytes, require
from test_tree import wd  # noqa: F401 (a fixture)


def test_special_files(wd, provider):
    # mknod(2) makes regular files everywhere, FIFOs and sockets on local
    # (a sandbox is a directory on local disk), and never a device file.
    reg = os.path.join(wd, "reg")
    os.mknod(reg, stat.S_IFREG | 0o600)
    st = os.stat(reg)
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    null = os.path.join(wd, "null")
    assert errno_of(os.mknod, null, stat.S_IFCHR | 0o600, os.makedev(1, 3)) == errno.EPERM
    fifo = os.path.join(wd, "fifo")
    if provider != "local":
        assert errno_of(os.mkfifo, fifo) == errno.EPERM
        return
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

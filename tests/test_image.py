"""image=DIR: a sandbox whose "/" is a root filesystem directory."""
import errno
import os
import shutil
import subprocess

import pytest

from helpers import (box_name, read_text, remove_box, require_sandboxes,
                     write_once, Box)


def make_rootfs(path):
    """A tiny root: the host's dash, cat and ls with their libraries."""
    for d in ("bin", "etc", "tmp", "root"):
        os.makedirs(os.path.join(path, d))
    progs = {"sh": "/usr/bin/dash", "cat": "/usr/bin/cat", "ls": "/usr/bin/ls"}
    libs = set()
    for name, src in progs.items():
        shutil.copy2(src, os.path.join(path, "bin", name))
        out = subprocess.run(["ldd", src], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        libs.update(w for w in out.split() if w.startswith("/"))
    for lib in libs:
        dest = path + lib
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(lib, dest)
    with open(os.path.join(path, "etc", "motd"), "w") as f:
        f.write("from the image\n")


@pytest.fixture
def image_box(mount, provider, tmp_path):
    if provider != "local":
        pytest.skip("image=DIR is the local provider's")
    require_sandboxes(provider)
    root = str(tmp_path / "rootfs")
    make_rootfs(root)
    name = box_name("img")
    assert write_once(mount.ctl, "new %s image=%s\n" % (name, root)) == 0
    b = Box(mount, name)
    yield b, root
    remove_box(b)


def test_image_dir_is_root(image_box):
    b, root = image_box
    # Stopped: root/ already shows the image.
    assert sorted(os.listdir(b.r())) == sorted(os.listdir(root))
    assert read_text(b.r("etc", "motd")) == "from the image\n"
    assert "image %s\n" % root in read_text(b.p("status"))
    b.start()
    assert b.check("cat /etc/motd; ls /") == \
        "from the image\n" + "".join(n + "\n" for n in sorted(os.listdir(root)))


def test_image_dir_read_only_with_own_writable_dirs(image_box):
    b, root = image_box
    b.start()
    out, status, _ = b.run("echo x > /etc/new")
    assert status == "exited 2" and b"Read-only file system" in out
    assert write_once(b.r("etc", "new"), "x", os.O_WRONLY | os.O_CREAT) == errno.EROFS
    b.check("echo made > /tmp/t")
    assert read_text(b.r("tmp", "t")) == "made\n"
    # The sandbox's writes never reach the image directory.
    assert os.listdir(os.path.join(root, "tmp")) == []
    assert not os.path.exists(os.path.join(root, "etc", "new"))


def test_image_without_shell_is_refused(mount, provider, tmp_path):
    if provider != "local":
        pytest.skip("image=DIR is the local provider's")
    empty = tmp_path / "empty"
    empty.mkdir()
    name = box_name("noimg")
    assert write_once(mount.ctl, "new %s image=%s\n" % (name, empty)) == errno.EINVAL
    assert "has no /bin/sh" in read_text(mount.ctl)
    assert name not in os.listdir(mount.path)


def test_pid1_shows_no_host_paths(mount, provider):
    """The sandbox's own pid 1 must not reveal where its files live."""
    if provider != "local":
        pytest.skip("the local provider's process layout")
    require_sandboxes(provider)
    name = box_name("pid1")
    assert write_once(mount.ctl, "new %s\n" % name) == 0
    b = Box(mount, name)
    try:
        b.start()
        cmdline = b.check("tr '\\0' ' ' < /proc/1/cmdline")
        assert str(mount.state_dir) not in cmdline, cmdline
        assert "/local/" not in cmdline, cmdline
    finally:
        remove_box(b)

"""sbxfs installs like a system tool: `meson install` puts the binary, the
manual pages sbxfs(1) and sbxfs-tree(5), and an example systemd user unit
in place, and a mount through mount(8) and mount.fuse3 works: `mount -t
fuse.sbxfs local DIR -o ...`, and an fstab line."""

import os
import shutil
import subprocess

import pytest

import conftest
from helpers import run, wait_for

pytestmark = pytest.mark.skipif("local" not in conftest.PROVIDERS,
                                reason="installs once, with the local provider")

BIN = "/usr/local/bin/sbxfs"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build = os.path.dirname(os.path.abspath(os.environ["SBXFS"]))
    if not os.path.exists(os.path.join(build, "meson-private")):
        pytest.skip("SBXFS is not in a meson build directory")
    dest = tmp_path_factory.mktemp("dest")
    run(["meson", "install", "-C", build, "--destdir", str(dest), "--no-rebuild",
         "--quiet"], timeout=300)
    files = {}
    for top, _, names in os.walk(dest):
        for n in names:
            files[n] = os.path.join(top, n)
    return files


def test_installed_files(installed):
    for n in ("sbxfs", "sbxfs.1", "sbxfs-tree.5", "sbxfs@.service"):
        assert n in installed, sorted(installed)
    assert os.access(installed["sbxfs"], os.X_OK)
    unit = open(installed["sbxfs@.service"]).read()
    assert "ExecStart=/usr/local/bin/sbxfs -f %i %h/sandboxes/%i" in unit, unit


def test_man_pages_read(installed):
    if not shutil.which("man"):
        pytest.skip("no man(1) here")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C")
    page = run(["man", "-l", installed["sbxfs.1"]], env=env).stdout.decode()
    assert "sbxfs - mount sandboxes as a file tree" in page, page[:400]
    assert "-o provider=NAME" in page and "SYNOPSIS" in page
    tree = run(["man", "-l", installed["sbxfs-tree.5"]], env=env).stdout.decode()
    assert "the files through which sandboxes" in tree, tree[:400]
    assert "cmd/N/stdin" in tree and "EINVAL" in tree
    # whatis(1) can index them.
    out = run(["lexgrog", installed["sbxfs.1"]], check=False).stdout.decode()
    assert "mount sandboxes" in out or not shutil.which("lexgrog"), out


def mounted(mnt, how, state):
    """Mount with `how`, check the root ctl, unmount."""
    cp = subprocess.run(how, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=60)
    assert cp.returncode == 0, (how, cp.stderr)
    try:
        wait_for(lambda: os.path.exists(os.path.join(mnt, "ctl")), 30,
                 what="the mount")
        text = open(os.path.join(mnt, "ctl")).read()
        assert "provider local" in text and "state_dir %s" % state in text, text
    finally:
        run(["fusermount3", "-u", mnt], check=False)
        wait_for(lambda: not os.path.ismount(mnt), 30, what="the unmount")


def test_mount_through_mount_fuse3(installed, tmp_path):
    helper = shutil.which("mount.fuse3") or "/sbin/mount.fuse3"
    if os.getuid() != 0 or not os.path.exists(helper):
        pytest.skip("needs root and mount.fuse3")
    mnt, state = tmp_path / "mnt", tmp_path / "state"
    mnt.mkdir()
    # mount.fuse3 runs "sbxfs SOURCE MOUNTPOINT -o OPTIONS" from PATH.
    env_path = os.path.dirname(installed["sbxfs"]) + ":" + os.environ["PATH"]
    mounted(str(mnt), ["env", "PATH=" + env_path, helper, "local", str(mnt),
                       "-t", "fuse.sbxfs", "-o", "state_dir=%s" % state],
            "%s/local" % state)
    # mount(8) finds sbxfs on its own safe PATH (/usr/local/bin for this
    # prefix): lent there for the test when nothing is installed there.
    lent = not os.path.lexists(BIN)
    if not lent and os.path.realpath(BIN) != os.path.realpath(installed["sbxfs"]):
        pytest.skip("%s is another sbxfs" % BIN)
    if lent:
        os.symlink(installed["sbxfs"], BIN)
    try:
        mounted(str(mnt), ["mount", "-t", "fuse.sbxfs", "local", str(mnt),
                           "-o", "state_dir=%s" % state], "%s/local" % state)
        # An fstab line (mount -T reads this file instead of /etc/fstab).
        fstab = tmp_path / "fstab"
        fstab.write_text("local %s fuse.sbxfs noauto,state_dir=%s 0 0\n" % (mnt, state))
        mounted(str(mnt), ["mount", "-T", str(fstab), str(mnt)], "%s/local" % state)
    finally:
        if lent:
            os.unlink(BIN)

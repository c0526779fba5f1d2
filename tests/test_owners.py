"""Names made through the mount belong to whoever made them, with the mode
they asked for (the kernel has applied their umask; the daemon's must not
apply again).  On `local`, mounted allow_other,default_permissions by
root and driven by another user, as a shared machine would have it; the
remote providers' APIs cannot give a file a host user's owner."""

import os
import shutil
import stat
import subprocess

import pytest

import conftest
import helpers

NOBODY = 65534

pytestmark = pytest.mark.skipif("local" not in conftest.PROVIDERS,
                                reason="the local provider's own files")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user")
    for m in conftest.own_mount(tmp_path_factory, "local",
                                ["allow_other", "default_permissions"],
                                hint="owners"):
        # The other user must reach the mount through pytest's directories.
        d = os.path.dirname(m.path)
        while d != "/":
            st = os.stat(d)
            if not st.st_mode & 0o001:
                os.chmod(d, stat.S_IMODE(st.st_mode) | 0o011)
            d = os.path.dirname(d)
        yield m


def as_nobody(code, *args):
    """Run Python code as nobody with umask 0; its stdout."""
    cp = subprocess.run(
        ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
         "--", "/usr/bin/python3", "-c", "import os, sys; os.umask(0)\n" + code]
        + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert cp.returncode == 0, cp.stderr.decode()
    return cp.stdout


def test_names_made_are_the_callers(shared):
    box = helpers.new_box(shared, "owners")
    try:
        d = box.r("tmp", "shared-dir")
        os.mkdir(d)
        os.chmod(d, 0o1777)
        as_nobody("d = sys.argv[1]\n"
                  "os.mkdir(d + '/sub', 0o777)\n"
                  "fd = os.open(d + '/file', os.O_CREAT | os.O_WRONLY, 0o4777)\n"
                  "os.write(fd, b'x'); os.close(fd)\n"
                  "fd = os.open(d + '/bare', os.O_CREAT | os.O_WRONLY, 0o4777)\n"
                  "os.close(fd)\n"
                  "os.symlink('file', d + '/link')\n"
                  # Their own, so they may chmod it (EPERM if it were root's).
                  "os.chmod(d + '/sub', 0o700)\n"
                  "fd = os.open(d + '/sub/inner', os.O_CREAT | os.O_RDONLY, 0o640)\n"
                  "os.close(fd)\n", d)
        # As on a native file system, a write by a user who is not root
        # clears set-user-ID.
        for name, mode in (("sub", stat.S_IFDIR | 0o700),
                           ("file", stat.S_IFREG | 0o777),
                           ("bare", stat.S_IFREG | 0o4777),
                           ("link", None), ("sub/inner", stat.S_IFREG | 0o640)):
            st = os.lstat(os.path.join(d, name))
            assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY), (name, st)
            if mode is not None:
                assert st.st_mode == mode, (name, oct(st.st_mode))
        # A name root makes stays root's.
        helpers.put(os.path.join(d, "roots"), "r")
        assert os.stat(os.path.join(d, "roots")).st_uid == 0
    finally:
        helpers.remove_box(box)

"""Names made through the mount belong to whoever made them, with the mode
they asked for (the kernel has applied their umask; the daemon's must not
apply again).  Mounted allow_other,default_permissions by root and driven
by another user, as a shared machine would have it: `local` makes names
as their callers; a remote provider's service makes them as its own user
and sbxfs then gives them to their maker (chown in the sandbox), which
the sandbox itself must show."""

import json
import os
import random
import shutil
import stat
import subprocess

import pytest

import conftest
import helpers
import test_differential

NOBODY = 65534


@pytest.fixture(scope="module")
def shared(tmp_path_factory, provider):
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user")
    for m in conftest.own_mount(tmp_path_factory, provider,
                                ["allow_other", "default_permissions"],
                                hint="owners-" + provider.replace("@", "-")):
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
    symlinks = "" if helpers.unsupported(shared.provider, "symlink") else "1"
    names = ["sub", "file", "bare", "sub/inner"] + (["link"] if symlinks else [])
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
                  "if sys.argv[2]: os.symlink('file', d + '/link')\n"
                  # Their own, so they may chmod it (EPERM if it were root's).
                  "os.chmod(d + '/sub', 0o700)\n"
                  "fd = os.open(d + '/sub/inner', os.O_CREAT | os.O_RDONLY, 0o640)\n"
                  "os.close(fd)\n"
                  # Theirs on the server too: written again, 0644.
                  "fd = os.open(d + '/file', os.O_WRONLY | os.O_APPEND)\n"
                  "os.write(fd, b'y'); os.close(fd)\n", d, symlinks)
        # As on a native file system, a write by a user who is not root
        # clears set-user-ID.
        for name, mode in (("sub", stat.S_IFDIR | 0o700),
                           ("file", stat.S_IFREG | 0o777),
                           ("bare", stat.S_IFREG | 0o4777),
                           ("link", None), ("sub/inner", stat.S_IFREG | 0o640)):
            if name not in names:
                continue
            st = os.lstat(os.path.join(d, name))
            assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY), (name, st)
            if mode is not None:
                assert st.st_mode == mode, (name, oct(st.st_mode))
        assert helpers.read_bytes(os.path.join(d, "file")) == b"xy"
        if shared.provider != "local":
            # What the kernel caches from the replies is not the proof:
            # the sandbox itself must show the owners.
            out = box.check("cd /tmp/shared-dir && stat -c '%n %u %g' " +
                            " ".join(names))
            owners = dict((l.split()[0], l.split()[1:]) for l in out.splitlines())
            assert owners == {n: ["65534", "65534"] for n in names}, out
        # A name root makes stays root's.
        helpers.put(os.path.join(d, "roots"), "r")
        assert os.stat(os.path.join(d, "roots")).st_uid == 0
    finally:
        helpers.remove_box(box)


# The differential test's operations as another user: what the kernel
# allows and refuses (default_permissions against the modes and owners the
# mount shows), the owners and modes of what is made, and which names are
# one file (hard links), on a native directory and through the mount.
AS_OTHER = r"""
import json, os, random, sys
sys.path.insert(0, sys.argv[1])
import test_differential as td

seed, nops, plain, mnt = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
skip = sys.argv[6]
os.umask(0o022)

def state(base, rel):
    s = td.path_state(base, rel)
    if isinstance(s, dict):
        st = os.lstat(os.path.join(base, rel))
        s["owner"] = (st.st_uid, st.st_gid)
    return s

def links(base):
    # The names that are one file, as sets of names.
    by_ino = {}
    for dirpath, dirs, files in os.walk(base):
        for n in files:
            p = os.path.join(dirpath, n)
            by_ino.setdefault(os.lstat(p).st_ino, []).append(os.path.relpath(p, base))
    return sorted(sorted(v) for v in by_ino.values() if len(v) > 1)

ops = td.gen_ops(random.Random(seed), nops, skip)
for i, op in enumerate(ops):
    a, b = td.apply(plain, op), td.apply(mnt, op)
    where = None
    if a != b:
        where = ("result", a, b)
    for rel in td.touched(op) + [os.path.dirname(p) for p in td.touched(op)]:
        if where is None and state(plain, rel) != state(mnt, rel):
            where = ("state of %r" % rel, state(plain, rel), state(mnt, rel))
    if where is None and i % 25 == 24 and links(plain) != links(mnt):
        where = ("hard links", links(plain), links(mnt))
    if where is not None:
        print(json.dumps({"op": i, "what": td.describe(op), "where": repr(where)}))
        sys.exit(0)
done = sum(1 for op in ops if td.apply(plain, ("lstat", td.touched(op)[0]))[0] == "ok")
print(json.dumps({"ok": len(ops), "links": len(links(plain)),
                  "names": len(td.tree(plain)), "present": done}))
"""


def test_differential_as_another_user(shared, tmp_path):
    # The same random operations as test_differential.py, by nobody, in a
    # directory of root's that all may write: plain and through the mount
    # (allow_other, default_permissions) must agree op by op.
    seed = int(os.environ.get("SBXFS_SEED", random.randrange(1 << 31)))
    nops = int(os.environ.get("SBXFS_DIFF_OPS", "300"))
    print("differential as nobody: SBXFS_SEED=%d" % seed)
    box = helpers.new_box(shared, "diffuser")
    try:
        # Symlinks point to ../a: the parents must be alike too.
        plain = str(tmp_path / "up" / "diff")
        mnt = box.r("tmp", "up", "diff")
        for d in (plain, mnt):
            os.makedirs(d)
            os.chmod(d, 0o777)
            os.chmod(os.path.dirname(d), 0o777)
        os.chmod(tmp_path, 0o711)
        out = as_nobody(AS_OTHER, os.path.dirname(os.path.abspath(__file__)), str(seed),
                        str(nops), plain, mnt,
                        "shell," + test_differential.skipped(shared.provider))
        verdict = json.loads(out)
        print(verdict)
        assert "ok" in verdict, "SBXFS_SEED=%d: %s" % (seed, verdict)
        # Not a run where nobody could do anything.
        assert verdict["names"] >= 5, verdict
    finally:
        helpers.remove_box(box)

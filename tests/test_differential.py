"""The same random file operations on a plain directory and on root/.

Every operation's outcome (return value or errno) is compared, then the
state of the paths it touched (type, size, mode bits, link count of files,
link target, contents, sorted listing).  The whole tree is compared every
25 operations and at the end, and finally what a command inside the sandbox
sees is compared with the plain directory.

SBXFS_SEED sets the seed (printed on every run); SBXFS_DIFF_OPS the number of
operations (default 300); SBXFS_DIFF_SKIP a comma-separated list of operation
kinds to leave out while chasing one bug (default: none).
"""

import errno
import hashlib
import os
import random
import signal
import stat

import pytest

import helpers
from helpers import q, read_bytes, run

# A small name space, so that operations collide: ENOENT, EEXIST, ENOTDIR,
# EISDIR, ENOTEMPTY, ELOOP all come up.
DIRS = ["d", "e", "d/e", "g"]
FILES = ["a", "b", "c", "f g", "d/a", "d/b", "e/a", "e/f", "d/e/a", "d/e/b",
         "d/x y", "g/h"]
PATHS = DIRS + FILES
TARGETS = ["a", "b", "d", "e", "d/a", "e/f", "x", "../a", "c"]
# Modes keep the owner's read (files) and rwx (chmod, which may hit a
# directory), so that the final look from inside the sandbox, where the
# command may run without capabilities, can read everything.
FILE_MODES = [0o600, 0o644, 0o640, 0o755, 0o700, 0o444, 0o4755, 0o1644,
              0o604]
DIR_MODES = [0o700, 0o755, 0o750, 0o711, 0o1777, 0o2755]
CHMOD_MODES = [0o700, 0o755, 0o750, 0o711, 0o744, 0o4755, 0o1777, 0o701]


def gen_ops(rnd, n, skip=""):
    weights = {
        "create": 8, "write_new": 8, "write_at": 10, "append": 6,
        "truncate": 5, "mkdir": 8, "rmdir": 4, "unlink": 5, "rename": 8,
        "chmod": 5, "symlink": 4, "readlink": 2, "link": 3, "stat": 4,
        "lstat": 3, "listdir": 4, "read": 6, "read_at": 3, "utime": 2,
        "rdwr": 3, "shell": 5,
    }
    for k in skip.split(","):
        weights.pop(k.strip(), None)
    kinds = list(weights)
    w = [weights[k] for k in kinds]
    ops = [("mkdir", "d", 0o755), ("mkdir", "e", 0o700), ("mkdir", "d/e", 0o755)]
    for _ in range(n - len(ops)):
        k = rnd.choices(kinds, w)[0]
        # Mostly files where files go and directories where they go; now and
        # then the other way round, for ENOTDIR, EISDIR and friends.
        cross = rnd.random() < 0.1
        if k in ("mkdir", "rmdir", "listdir"):
            p = rnd.choice(FILES if cross else DIRS)
        elif k in ("rename", "stat", "lstat", "chmod", "utime"):
            p = rnd.choice(PATHS)
        else:
            p = rnd.choice(DIRS if cross else FILES)
        q = rnd.choice(PATHS if k == "rename" and rnd.random() < 0.3
                       else FILES)
        data = bytes(rnd.getrandbits(8) for _ in range(
            rnd.choice([0, 1, 7, 100, 4096, 5000, 70000])))
        off = rnd.choice([0, 1, 100, 4095, 4096, 65536, 200000])
        if k in ("create", "write_new"):
            op = (k, p, rnd.choice(FILE_MODES), data)
        elif k in ("write_at",):
            op = (k, p, off, data)
        elif k == "append":
            op = (k, p, data)
        elif k == "truncate":
            op = (k, p, rnd.choice([0, 1, 10, 5000, 100000]))
        elif k == "mkdir":
            op = (k, p, rnd.choice(DIR_MODES))
        elif k == "chmod":
            op = (k, p, rnd.choice(CHMOD_MODES))
        elif k in ("rename", "link"):
            op = (k, p, q)
        elif k == "symlink":
            op = (k, rnd.choice(TARGETS), p)
        elif k == "read_at":
            op = (k, p, off, rnd.choice([1, 10, 5000, 100000]))
        elif k == "utime":
            op = (k, p, rnd.randrange(1, 2**31) * 10**9 + rnd.randrange(10**9))
        elif k == "shell":
            op = (k, shell_command(rnd, p, q))
            # No symlinks made by commands either where root/ cannot show
            # them as symlinks.
            while "symlink" in skip and op[1].startswith("ln -s"):
                op = (k, shell_command(rnd, p, q))
        elif k == "rdwr":
            op = (k, p, off, data[:300])
        else:
            op = (k, p)
        ops.append(op)
    return ops


def shell_command(rnd, p, q):
    """A command line run inside the sandbox (and with the host's /bin/sh
    on the plain directory): root/ must show its effects at once."""
    p, q = "'%s'" % p, "'%s'" % q
    return rnd.choice([
        "echo %d >> %s" % (rnd.randrange(10**6), p),
        "printf %%0%dd 7 > %s" % (rnd.choice([1, 5000, 70000]), p),
        "rm -f %s" % p, "rm -rf %s" % p, "mv -f %s %s" % (p, q),
        "mkdir -p %s" % p, "chmod %o %s" % (rnd.choice(CHMOD_MODES), p),
        "truncate -s %d %s" % (rnd.choice([0, 3, 9000]), p),
        "ln -sf %s %s" % (rnd.choice(TARGETS), p),
        "cat %s | wc -c" % p, "ls -A %s | sort" % p,
        "touch -d @%d %s" % (rnd.randrange(1, 2**31), p),
    ])


def describe(op):
    parts = []
    for x in op:
        if isinstance(x, bytes):
            parts.append("<%d bytes>" % len(x))
        elif isinstance(x, int) and x > 7 and x < 0o10000 and \
                op[0] in ("create", "write_new", "mkdir", "chmod"):
            parts.append(oct(x))
        else:
            parts.append(repr(x))
    return "%s(%s)" % (parts[0].strip("'"), ", ".join(parts[1:]))


def digest(b):
    return (len(b), hashlib.sha256(b).hexdigest()[:16])


# Commands inside run as root of a user namespace, where the kernel's rules
# differ a little from the host's real root (a write by a namespace root
# clears a set-user-ID bit, for one).  So the plain side's shell runs in a
# user namespace of its own, mapped the same way.
HOST_SHELL = ["unshare", "--user", "--map-root-user", "/bin/sh", "-c"]


def host_shell(base, command):
    # The C locale on both sides: messages compare byte for byte whatever
    # locale the sandbox's image sets.
    cp = run(HOST_SHELL + ["export LC_ALL=C; " + command], cwd=base,
             check=False)
    if cp.returncode >= 0:
        status = "exited %d" % cp.returncode
    else:
        status = "killed %s" % signal.Signals(-cp.returncode).name[3:]
    return status, cp.stdout, cp.stderr


def real_root_shell(base, command):
    """The plain side for providers whose commands run as the real root
    (as the emulators of remote services do, like root in a container)."""
    cp = run(["/bin/sh", "-c", "export LC_ALL=C; " + command], cwd=base,
             check=False)
    return "exited %d" % cp.returncode, cp.stdout, cp.stderr


def host_shell_works():
    try:
        cp = run(HOST_SHELL + ["true"], check=False)
    except (OSError, AssertionError):
        return False
    return cp.returncode == 0


def apply(base, op, shell=host_shell):
    """Run op under base; return ("ok", value) or ("err", errno name)."""
    k = op[0]
    if k == "shell":
        # Error messages name the relative paths only, so they compare too.
        return ("ok", shell(base, op[1]))
    P = lambda rel: os.path.join(base, rel)  # noqa: E731
    try:
        if k in ("create", "write_new"):
            excl = os.O_EXCL if k == "create" else os.O_TRUNC
            fd = os.open(P(op[1]), os.O_CREAT | excl | os.O_WRONLY, op[2])
            try:
                n = os.write(fd, op[3])
            finally:
                os.close(fd)
            return ("ok", n)
        if k == "write_at":
            fd = os.open(P(op[1]), os.O_WRONLY)
            try:
                n = os.pwrite(fd, op[3], op[2])
            finally:
                os.close(fd)
            return ("ok", n)
        if k == "append":
            fd = os.open(P(op[1]), os.O_WRONLY | os.O_APPEND)
            try:
                n = os.write(fd, op[2])
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            return ("ok", (n, size))
        if k == "rdwr":
            fd = os.open(P(op[1]), os.O_RDWR)
            try:
                before = os.pread(fd, 64, op[2])
                n = os.pwrite(fd, op[3], op[2])
                after = os.pread(fd, len(op[3]) + 10, op[2])
            finally:
                os.close(fd)
            return ("ok", (before, n, after))
        if k == "truncate":
            os.truncate(P(op[1]), op[2])
            return ("ok", None)
        if k == "mkdir":
            os.mkdir(P(op[1]), op[2])
            return ("ok", None)
        if k == "rmdir":
            os.rmdir(P(op[1]))
            return ("ok", None)
        if k == "unlink":
            os.unlink(P(op[1]))
            return ("ok", None)
        if k == "rename":
            os.rename(P(op[1]), P(op[2]))
            return ("ok", None)
        if k == "link":
            os.link(P(op[1]), P(op[2]))
            return ("ok", None)
        if k == "chmod":
            os.chmod(P(op[1]), op[2])
            return ("ok", None)
        if k == "symlink":
            os.symlink(op[1], P(op[2]))
            return ("ok", None)
        if k == "readlink":
            return ("ok", os.readlink(P(op[1])))
        if k == "stat":
            return ("ok", summarize(os.stat(P(op[1]))))
        if k == "lstat":
            return ("ok", summarize(os.lstat(P(op[1]))))
        if k == "listdir":
            return ("ok", sorted(os.listdir(P(op[1]))))
        if k == "read":
            with open(P(op[1]), "rb") as f:
                return ("ok", digest(f.read()))
        if k == "read_at":
            fd = os.open(P(op[1]), os.O_RDONLY)
            try:
                return ("ok", digest(os.pread(fd, op[3], op[2])))
            finally:
                os.close(fd)
        if k == "utime":
            os.utime(P(op[1]), ns=(op[2], op[2]))
            st = os.stat(P(op[1]))
            return ("ok", (st.st_mtime_ns, st.st_atime_ns))
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, str(e.errno)))
    raise AssertionError("unknown op %r" % (op,))


def summarize(st):
    t = stat.S_IFMT(st.st_mode)
    s = {"type": t, "mode": oct(stat.S_IMODE(st.st_mode))}
    if stat.S_ISREG(t):
        s["size"] = st.st_size
        s["nlink"] = st.st_nlink
    elif stat.S_ISLNK(t):
        s["size"] = st.st_size
    return s


def path_state(base, rel):
    """What one path looks like now (for comparing after a mutation)."""
    p = os.path.join(base, rel)
    try:
        st = os.lstat(p)
    except OSError as e:
        return ("err", errno.errorcode[e.errno])
    s = summarize(st)
    try:
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                s["data"] = digest(f.read())
        elif stat.S_ISLNK(st.st_mode):
            s["target"] = os.readlink(p)
        elif stat.S_ISDIR(st.st_mode):
            s["list"] = sorted(os.listdir(p))
    except OSError as e:
        s["read_err"] = errno.errorcode[e.errno]
    return s


def tree(base):
    res = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            res[os.path.relpath(full, base)] = path_state(base,
                                                          os.path.relpath(
                                                              full, base))
    return res


def touched(op):
    k = op[0]
    if k in ("rename", "link"):
        return [op[1], op[2]]
    if k == "symlink":
        return [op[2]]
    if k == "shell":
        return PATHS
    return [op[1]]


def find_listing(top):
    """`find -printf` lines, directory sizes blanked (they depend on history)."""
    out = run(["find", top, "-mindepth", "1", "-printf",
               r"%P\t%y\t%m\t%s\t%l\t%n\n"], timeout=120).stdout.decode()
    return _norm_find(out)


def _norm_find(out):
    rows = []
    for line in out.splitlines():
        f = line.split("\t")
        if f[1] == "d":
            f[3] = "-"
            f[5] = "-"
        rows.append("\t".join(f))
    return sorted(rows)


def skipped(provider):
    """The kinds of operation not compared on provider: SBXFS_DIFF_SKIP's,
    and what the provider documents it cannot do."""
    skip = os.environ.get("SBXFS_DIFF_SKIP", "")
    if helpers.unsupported(provider, "symlink"):
        skip += ",symlink,readlink"
    if helpers.unsupported(provider, "nlink"):
        skip += ",link"
    if helpers.unsupported(provider, "host_tools"):
        skip += ",shell"
    if helpers.unsupported(provider, "ns_times"):
        skip += ",utime"
    return skip


def test_differential(box, tmp_path):
    seed = int(os.environ.get("SBXFS_SEED", random.randrange(1 << 31)))
    nops = int(os.environ.get("SBXFS_DIFF_OPS", "300"))
    print("differential: SBXFS_SEED=%d SBXFS_DIFF_OPS=%d" % (seed, nops))
    provider = box.mount.provider
    skip = skipped(provider)
    if not host_shell_works():
        print("no user namespaces for the plain side: no shell operations")
        skip += ",shell"
    ops = gen_ops(random.Random(seed), nops, skip)
    plain = str(tmp_path / "diff")
    mnt = box.r("tmp", "diff")
    os.mkdir(plain)
    os.mkdir(mnt)
    os.chmod(plain, 0o755)
    os.chmod(mnt, 0o755)
    history = []

    def inside(base, command):
        _, status, n = box.run("export LC_ALL=C; cd /tmp/diff && " + command)
        return (status, read_bytes(box.cmd(n, "stdout")),
                read_bytes(box.cmd(n, "stderr")))

    def fail(i, what, a, b):
        recent = "\n".join("  %3d %s -> %r" % h for h in history[-int(os.environ.get("SBXFS_HISTORY", "20")):])
        pytest.fail("SBXFS_SEED=%d op %d %s: %s differs\n plain: %r\n sbxfs: "
                    "%r\nrecent ops:\n%s" % (seed, i, describe(ops[i]), what,
                                             a, b, recent))

    for i, op in enumerate(ops):
        a = apply(plain, op, host_shell if provider == "local" or
                  os.getuid() != 0 else real_root_shell)
        b = apply(mnt, op, inside)
        history.append((i, describe(op), a))
        if a != b:
            fail(i, "result", a, b)
        for rel in touched(op):
            sa, sb = path_state(plain, rel), path_state(mnt, rel)
            if sa != sb:
                fail(i, "state of %r" % rel, sa, sb)
            parent = os.path.dirname(rel)
            la, lb = path_state(plain, parent), path_state(mnt, parent)
            if la != lb:
                fail(i, "state of parent %r" % parent, la, lb)
        if i % 25 == 24:
            ta, tb = tree(plain), tree(mnt)
            if ta != tb:
                diff = {k: (ta.get(k), tb.get(k)) for k in set(ta) | set(tb)
                        if ta.get(k) != tb.get(k)}
                fail(i, "tree", diff, "")

    ta, tb = tree(plain), tree(mnt)
    assert ta == tb, "SBXFS_SEED=%d final trees differ" % seed
    assert len(ta) > 0, "the sequence left nothing to compare"
    # Real tools agree on the host side...
    assert find_listing(plain) == find_listing(mnt)
    # ...and so does a command inside the sandbox: root/ is what it sees
    # (GNU find's listing where the sandbox has it; the sums everywhere).
    if not helpers.unsupported(provider, "host_tools"):
        out = box.check("find /tmp/diff -mindepth 1 -printf '%P\\t%y\\t%m\\t"
                        "%s\\t%l\\t%n\\n'")
        assert _norm_find(out) == find_listing(plain)
    sums = box.check("cd /tmp/diff && find . -type f -exec sha256sum {} + |"
                     " sort -k2")
    host = run("cd %s && find . -type f -exec sha256sum {} + | sort -k2"
               % q(plain)).stdout.decode()
    assert sums == host

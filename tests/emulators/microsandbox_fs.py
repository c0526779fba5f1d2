"""fs in the microsandbox emulator's agentd (microsandbox_agent.py): the
FsOps on the sandbox directory through common.Jail (the agent's jail), with
agentd's error texts, the open handles of the relay slots, and the streams
of Read (core.fs.data chunks) and Write."""

import asyncio
import errno
import os
import shutil
import stat

from microsandbox_wire import FS_CHUNK, READDIR_LIMIT, FsError, os_text


# ============================================================ fs

class Handle:
    """An open file (fd) or directory (a scandir iterator) of one relay slot."""

    def __init__(self, kind, path, host, fd=None, entries=None, read=False, write=False,
                 append=False):
        self.kind, self.path, self.host, self.fd, self.entries = kind, path, host, fd, entries
        self.read, self.write, self.append = read, write, append
        self.slot = None

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.entries is not None:
            self.entries.close()
            self.entries = None


def fs_error(text):
    return {"ok": False, "error": text, "data": None}


def rust_join(base, name):
    return name if not base else (base + name if base.endswith("/") else base + "/" + name)


def entry_info(path, st):
    mode = st.st_mode
    kind = "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else \
        "symlink" if stat.S_ISLNK(mode) else "other"
    mtime = st.st_mtime_ns // 10 ** 9
    return {"path": path, "kind": kind, "size": st.st_size, "mode": mode,
            "modified": mtime, "uid": st.st_uid, "gid": st.st_gid,
            "atime": st.st_atime_ns // 10 ** 9, "mtime": mtime}


def unknown_info(path):
    return {"path": path, "kind": "other", "size": 0, "mode": 0, "modified": None,
            "uid": 0, "gid": 0, "atime": None, "mtime": None}


def dir_entries(dir_path, host_dir, names):
    """EntryInfos (lstat) of `names` in a directory, path = dir joined with name."""
    out = []
    for name in names:
        path = rust_join(dir_path, name)
        try:
            out.append(entry_info(path, os.lstat(os.path.join(host_dir, name))))
        except OSError:
            out.append(unknown_info(path))
    return out


def host_of(conn, path, follow=True):
    """The host path of a sandbox path (common.Jail: never outside the root)."""
    return conn.agent.jail.host(path, follow)


def rust_parent(path):
    """Rust's Path::parent and Path::file_name: (parent or None, name or None)."""
    comps = [c for c in path.split("/") if c not in ("", ".")]
    if not comps:
        return None, None
    parent = ("/" if path.startswith("/") else "") + "/".join(comps[:-1])
    return parent or None, (None if comps[-1] == ".." else comps[-1])


def fs_realpath(conn, a):
    """canonicalize(path); a missing last component resolves against its
    parent (agentd's realpath())."""
    jail = conn.agent.jail
    try:
        host = jail.host(a["path"], True)
        os.stat(host)
        return {"Path": jail.inside(host)}
    except OSError as first:
        parent, name = rust_parent(a["path"])
        try:
            if parent is None:
                raise first
            phost = jail.host(parent, True)
            os.stat(phost)
        except OSError:
            raise FsError("realpath: %s" % os_text(first))
        base = jail.inside(phost)
        return {"Path": base if name is None else rust_join(base, name)}


def fs_stat(conn, a):
    host = host_of(conn, a["path"], a["follow_symlink"])
    st = os.stat(host) if a["follow_symlink"] else os.lstat(host)
    return {"Stat": entry_info(a["path"], st)}


def fs_list(conn, a):
    host = host_of(conn, a["path"])
    try:
        names = os.listdir(host)
    except OSError as e:
        raise FsError("readdir: opendir: %s" % os_text(e))
    return {"List": dir_entries(a["path"], host, names)}


def fs_opendir(conn, a):
    host = host_of(conn, a["path"])
    entries = os.scandir(host)
    handle = Handle("dir", a["path"], host, entries=entries)
    try:
        return {"Handle": conn.agent.new_handle(conn.slot, handle)}
    except FsError as e:
        entries.close()
        raise FsError("opendir: %s" % e)


def fs_readdir(conn, a):
    try:
        d = conn.agent.handle(conn.slot, a["handle"], "dir")
    except FsError as e:
        raise FsError("readdir: %s" % e)
    limit = max(1, a["limit"] if a["limit"] is not None else READDIR_LIMIT)
    names = []
    for entry in d.entries:
        names.append(entry.name)
        if len(names) >= limit:
            break
    return {"List": dir_entries(d.path, d.host, names)}


def fs_close(conn, a):
    agent = conn.agent
    number = a["handle"]
    if number in agent.handles and agent.handles[number].slot != conn.slot:
        raise FsError("close: handle %d is owned by a different relay client" % number)
    entry = agent.handles.pop(number, None)
    if entry is None:
        raise FsError("close: invalid handle: %d" % number)
    entry.close()
    return None


def fs_readlink(conn, a):
    return {"Path": os.readlink(host_of(conn, a["path"], False))}


def fs_symlink(conn, a):
    os.symlink(a["target"], host_of(conn, a["link_path"], False))
    return None


def fs_mkdir(conn, a):
    """create_dir_all (no EEXIST for a directory), then chmod."""
    jail = conn.agent.jail
    host = jail.host(a["path"])
    cur = jail.root
    rel = os.path.relpath(host, jail.root)
    try:
        for comp in ([] if rel == "." else rel.split("/")):
            cur = os.path.join(cur, comp)
            try:
                os.mkdir(cur, 0o777)
            except FileExistsError:
                if not os.path.isdir(cur):
                    raise
    except OSError as e:
        raise FsError("mkdir: %s" % os_text(e))
    if a["mode"] is not None:
        try:
            os.chmod(host, a["mode"])
        except OSError as e:
            raise FsError("chmod: %s" % os_text(e))
    return None


def fs_remove(conn, a):
    os.unlink(host_of(conn, a["path"], False))
    return None


def fs_remove_dir(conn, a):
    host = host_of(conn, a["path"], False)
    if not a["recursive"]:
        os.rmdir(host)
    elif os.path.islink(host):
        os.unlink(host)
    else:
        if not stat.S_ISDIR(os.lstat(host).st_mode):
            raise OSError(errno.ENOTDIR, "")

        def fail(func, path, exc_info):
            raise exc_info[1]
        shutil.rmtree(host, onerror=fail)
    return None


def fs_copy(conn, a):
    src, dst = host_of(conn, a["src"]), host_of(conn, a["dst"])
    if not stat.S_ISREG(os.stat(src).st_mode):
        raise FsError("copy: the source path is neither a regular file nor a symlink "
                      "to a regular file")
    shutil.copyfile(src, dst)
    shutil.copymode(src, dst)
    return None


def fs_rename(conn, a):
    os.rename(host_of(conn, a["src"], False), host_of(conn, a["dst"], False))
    return None


def open_flags(o):
    """Rust's OpenOptions: access and creation flags, EINVAL where it refuses."""
    r, w, ap = o["read"], o["write"], o["append"]
    if not (r or w or ap):
        raise OSError(errno.EINVAL, "")
    access = (os.O_RDWR if r else os.O_WRONLY) if (w or ap) else os.O_RDONLY
    if ap:
        access |= os.O_APPEND
    create, trunc, new = o["create"], o["truncate"], o["create_new"]
    if not (w or ap) and (trunc or create or new):
        raise OSError(errno.EINVAL, "")
    if ap and trunc and not new:
        raise OSError(errno.EINVAL, "")
    if new:
        creation = os.O_CREAT | os.O_EXCL
    else:
        creation = (os.O_CREAT if create else 0) | (os.O_TRUNC if trunc else 0)
    return access | creation | os.O_CLOEXEC


def fs_open(conn, a):
    o = a["options"]
    flags = open_flags(o)
    host = host_of(conn, a["path"], not o["create_new"])
    fd = os.open(host, flags, o["mode"] if o["mode"] is not None else 0o666)
    entry = Handle("file", a["path"], host, fd=fd, read=o["read"], write=o["write"],
                   append=o["append"])
    try:
        return {"Handle": conn.agent.new_handle(conn.slot, entry)}
    except FsError as e:
        os.close(fd)
        raise FsError("open: %s" % e)


def fs_fstat(conn, a):
    try:
        entry = conn.agent.handle(conn.slot, a["handle"])
    except FsError as e:
        raise FsError("fstat: %s" % e)
    st = os.fstat(entry.fd) if entry.kind == "file" else os.stat(entry.host)
    return {"Stat": entry_info(entry.path, st)}


def set_attrs(conn, a, fd=None):
    """SetStat's and FSetStat's attribute changes, in agentd's order and
    with its inner prefixes."""
    attrs = a["attrs"]

    def step(prefix, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except OSError as e:
            raise FsError("%s%s" % (prefix, os_text(e)))
    follow = fd is not None or a["follow_symlink"]
    if fd is None:
        hf, hn = host_of(conn, a["path"], True), host_of(conn, a["path"], False)
        target = hf if follow else hn
    if attrs["size"] is not None:
        if fd is None:
            tfd = step("open for truncate: ", os.open, hf, os.O_WRONLY | os.O_CLOEXEC)
            try:
                step("set_len: ", os.ftruncate, tfd, attrs["size"])
            finally:
                os.close(tfd)
        else:
            step("set_len: ", os.ftruncate, fd, attrs["size"])
    if attrs["mode"] is not None:
        if fd is not None:
            step("chmod: ", os.fchmod, fd, attrs["mode"])
        else:
            if not follow and stat.S_ISLNK(step("lstat before chmod: ", os.lstat, hn).st_mode):
                raise FsError("chmod on symlink without following is not supported")
            step("chmod: ", os.chmod, hf, attrs["mode"])
    if attrs["uid"] is not None or attrs["gid"] is not None:
        ids = (-1 if attrs["uid"] is None else attrs["uid"],
               -1 if attrs["gid"] is None else attrs["gid"])
        if fd is not None:
            step("fchown: ", os.fchown, fd, *ids)
        else:
            step("chown: ", os.chown, target, *ids, follow_symlinks=follow)
    if attrs["atime"] is not None or attrs["mtime"] is not None:
        what = "futimens" if fd is not None else "utimensat"
        path = conn.agent.jail.host(a["path"], True) if fd is not None else target
        st = step("stat before %s: " % what, os.stat, path, follow_symlinks=follow)
        at = attrs["atime"] if attrs["atime"] is not None else st.st_atime_ns // 10 ** 9
        mt = attrs["mtime"] if attrs["mtime"] is not None else st.st_mtime_ns // 10 ** 9
        ns = (at * 10 ** 9, mt * 10 ** 9)
        if fd is not None:
            step("futimens: ", os.utime, fd, ns=ns)
        else:
            step("utimensat: ", os.utime, target, ns=ns, follow_symlinks=follow)


def fs_setstat(conn, a):
    try:
        set_attrs(conn, a)
    except FsError as e:
        raise FsError("setstat: %s" % e)


def fs_fsetstat(conn, a):
    try:
        entry = conn.agent.handle(conn.slot, a["handle"], "file")
        set_attrs(conn, dict(a, path=entry.path), fd=entry.fd)
    except FsError as e:
        raise FsError("fsetstat: %s" % e)


FS_HANDLERS = {
    "RealPath": fs_realpath, "Stat": fs_stat, "SetStat": fs_setstat,
    "List": fs_list, "ReadLink": fs_readlink, "Symlink": fs_symlink,
    "Mkdir": fs_mkdir, "Remove": fs_remove, "RemoveDir": fs_remove_dir,
    "Copy": fs_copy, "Rename": fs_rename, "OpenFile": fs_open,
    "OpenDir": fs_opendir, "CloseHandle": fs_close, "ReadDir": fs_readdir,
    "FStat": fs_fstat, "FSetStat": fs_fsetstat,
}


async def read_stream(conn, id_, a, delay):
    """core.fs.data chunks of at most 3 MiB, then the terminal response."""
    if delay:
        await asyncio.sleep(delay)
    try:
        entry = conn.agent.handle(conn.slot, a["handle"], "file", need_read=True)
    except FsError as e:
        await conn.send(id_, "core.fs.response", fs_error("read: %s" % e))
        return
    offset, remaining = a["offset"], a["len"]
    while remaining != 0:
        want = FS_CHUNK if remaining is None else min(FS_CHUNK, remaining)
        try:
            data = os.pread(entry.fd, want, offset)
        except (OSError, TypeError) as e:
            await conn.send(id_, "core.fs.response", fs_error("read: %s" % os_text(e)))
            return
        if not data:
            break
        offset += len(data)
        if remaining is not None:
            remaining -= len(data)
        await conn.send(id_, "core.fs.data", {"data": data})
    await conn.send(id_, "core.fs.response", {"ok": True, "error": None, "data": None})


class WriteStream:
    """A Write request waiting for its core.fs.data chunks."""

    def __init__(self, conn, a, delay):
        try:
            self.entry = conn.agent.handle(conn.slot, a["handle"], "file", need_write=True)
        except FsError as e:
            raise FsError("write: %s" % e)
        self.offset = a["offset"]
        self.expected = a["len"]
        self.written = 0
        self.delay = delay

    def feed(self, data):
        """None while more is expected, else the final response."""
        if not data:
            if self.expected is not None and self.written != self.expected:
                return fs_error("write length mismatch: expected %d, wrote %d"
                                % (self.expected, self.written))
            return {"ok": True, "error": None, "data": None}
        try:
            if self.entry.fd is None:
                raise OSError(errno.EBADF, "")
            view = memoryview(data)
            while view:
                if self.entry.append:
                    n = os.write(self.entry.fd, view)
                else:
                    n = os.pwrite(self.entry.fd, view, self.offset)
                view = view[n:]
                self.offset += n
        except OSError as e:
            return fs_error("write: %s" % os_text(e))
        self.written += len(data)
        return None

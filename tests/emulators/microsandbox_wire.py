"""The agent protocol of the microsandbox emulator's agentd
(microsandbox_agent.py, whose docstring sums the wire protocol up): its
limits, the message types and their flags, the error tables, the frame and
envelope codec, and the payload schemas with their serde-like checks.
Shared by the relay, exec (microsandbox_exec.py) and fs (microsandbox_fs.py)."""

import errno
import os
import resource
import struct

import cbor2

MAX_FRAME = 4 * 1024 * 1024
FS_CHUNK = 3 * 1024 * 1024
EXEC_CHUNK = 4096
SLOTS = 128
STEP = (2 ** 32 - 1) // SLOTS
MAX_HANDLES = 1024
READDIR_LIMIT = 128
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

TERMINAL, SESSION_START, SHUTDOWN = 0x01, 0x02, 0x04

# Every type agentd knows, with the flags it must carry (message.rs flags()).
MESSAGE_FLAGS = {
    "core.ready": 0, "core.init.resolved": 0, "core.init.ack": 0,
    "core.shutdown": SHUTDOWN, "core.relay.client.disconnected": 0,
    "core.clock.sync": 0, "core.ping": 0, "core.pong": TERMINAL,
    "core.touch": 0, "core.touched": TERMINAL, "core.error": TERMINAL,
    "core.bootstrap": 0,
    "core.exec.request": SESSION_START, "core.exec.started": 0,
    "core.exec.stdin": 0, "core.exec.stdin.error": 0, "core.exec.stdout": 0,
    "core.exec.stderr": 0, "core.exec.exited": TERMINAL,
    "core.exec.failed": TERMINAL, "core.exec.resize": 0, "core.exec.signal": 0,
    "core.fs.request": SESSION_START, "core.fs.response": TERMINAL,
    "core.fs.data": 0,
    "core.tcp.connect": SESSION_START, "core.tcp.connected": 0,
    "core.tcp.data": 0, "core.tcp.eof": 0, "core.tcp.close": 0,
    "core.tcp.closed": TERMINAL, "core.tcp.failed": TERMINAL,
}
# Generation 8 and 9 additions (gen-9.json): known, never handled here.
LATER_TYPES = ("core.bulk.accepted", "core.bulk.credit", "core.bulk.finish",
               "core.bulk.cancel", "core.workload.freeze", "core.workload.frozen",
               "core.workload.thaw", "core.workload.thawed",
               "core.workload.transport.credit", "core.root_disk.prepare",
               "core.root_disk.grow", "core.root_disk.state")

# The "<op>: " prefix of each FsOp's errors (agentd fs.rs).
FS_ERROR_PREFIX = {
    "RealPath": "realpath", "Stat": "stat", "SetStat": "setstat",
    "List": "readdir", "ReadLink": "readlink", "Symlink": "symlink",
    "Mkdir": "mkdir", "Remove": "remove", "RemoveDir": "remove_dir",
    "Copy": "copy", "Rename": "rename", "OpenFile": "open",
    "OpenDir": "opendir", "CloseHandle": "close", "Read": "read",
    "Write": "write", "ReadDir": "readdir", "FStat": "fstat",
    "FSetStat": "fsetstat",
}

ERRNO_NAMES = {errno.ENOENT: "ENOENT", errno.EACCES: "EACCES", errno.EPERM: "EPERM",
               errno.ENOTDIR: "ENOTDIR", errno.ENOEXEC: "ENOEXEC",
               errno.EISDIR: "EISDIR", errno.ETXTBSY: "ETXTBSY", errno.EPIPE: "EPIPE",
               errno.EBADF: "EBADF", errno.EINVAL: "EINVAL", errno.EIO: "EIO"}
# session.rs classify_spawn_errno
SPAWN_KIND = {errno.ENOENT: "not_found", errno.ENOTDIR: "bad_cwd",
              errno.EACCES: "permission_denied", errno.EPERM: "permission_denied",
              errno.ENOEXEC: "not_executable", errno.EISDIR: "not_executable",
              errno.ETXTBSY: "not_executable"}
# rlimit.rs: these names; others are ignored.
RLIMITS = {name: getattr(resource, "RLIMIT_" + name.upper()) for name in (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
    "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
    if hasattr(resource, "RLIMIT_" + name.upper())}


def os_text(e):
    """A Rust io::Error's Display for an OS error."""
    if isinstance(e, OSError) and e.errno:
        return "%s (os error %d)" % (os.strerror(e.errno), e.errno)
    return str(e)


class FsError(Exception):
    """An fs failure whose text is complete (prefixes included)."""


class Fatal(Exception):
    """What kills agentd (here: the connection)."""


# ============================================================ codec

def frame(id_, flags, body):
    return struct.pack(">IIB", 5 + len(body), id_, flags) + body


def message(gen, t, id_, payload):
    body = cbor2.dumps({"v": gen, "t": t, "p": cbor2.dumps(payload)})
    return frame(id_, MESSAGE_FLAGS[t], body)


def decode_envelope(body, gen):
    """(v, t, p bytes) of a frame body; Fatal if agentd could not parse it."""
    try:
        env = cbor2.loads(body)
    except Exception as e:  # noqa: BLE001 - any decoder failure is fatal
        raise Fatal("decode message: %s" % e)
    if not isinstance(env, dict):
        raise Fatal("decode message: envelope is not a map")
    v, t, p = env.get("v"), env.get("t"), env.get("p")
    if type(v) is not int or not 0 <= v <= 255:
        raise Fatal("decode message: bad or missing v")
    if not isinstance(t, str):
        raise Fatal("decode message: bad or missing t")
    if t not in MESSAGE_FLAGS and not (gen >= 8 and t in LATER_TYPES):
        raise Fatal("decode message: unknown message type: %s" % t)
    if not isinstance(p, bytes):
        raise Fatal("decode message: p is not a byte string")
    return v, t, p


# ============================================================ payloads

class PayloadError(Exception):
    pass


REQ = object()          # a field without a serde default
INT_RANGES = {"u16": (0, 2 ** 16 - 1), "u32": (0, 2 ** 32 - 1), "u64": (0, 2 ** 64 - 1),
              "i32": (-2 ** 31, 2 ** 31 - 1), "i64": (-2 ** 63, 2 ** 63 - 1)}


def check(value, typ, field):
    """`value` checked against `typ`: a scalar name, ("opt", t), ("list", t),
    a dict schema (struct) or "fsop" (the externally tagged FsOp)."""
    if isinstance(typ, tuple) and typ[0] == "opt":
        return None if value is None else check(value, typ[1], field)
    if isinstance(typ, tuple) and typ[0] == "list":
        if not isinstance(value, list):
            raise PayloadError("invalid type for `%s`: expected a sequence" % field)
        return [check(v, typ[1], field) for v in value]
    if isinstance(typ, dict):
        return struct_of(value, typ, field)
    if typ == "fsop":
        if not isinstance(value, dict) or len(value) != 1:
            raise PayloadError("invalid type for `op`: expected an enum")
        (name, inner), = value.items()
        if name not in FS_OPS:
            raise PayloadError("unknown variant `%s`" % name)
        return name, struct_of(inner, FS_OPS[name], name)
    ok = {"str": lambda v: isinstance(v, str),
          "bool": lambda v: type(v) is bool,
          "bytes": lambda v: isinstance(v, bytes)}.get(typ)
    if ok is None:
        lo, hi = INT_RANGES[typ]
        ok = lambda v: type(v) is int and lo <= v <= hi  # noqa: E731
    if not ok(value):
        raise PayloadError("invalid type or value for `%s`: expected %s" % (field, typ))
    return value


def struct_of(value, schema, where):
    if not isinstance(value, dict):
        raise PayloadError("invalid type for `%s`: expected a map" % where)
    out = {}
    for name, (typ, default) in schema.items():
        if name not in value:
            if default is REQ and not (isinstance(typ, tuple) and typ[0] == "opt"):
                raise PayloadError("missing field `%s`" % name)
            out[name] = None if default is REQ else default
        else:
            out[name] = check(value[name], typ, name)
    return out      # unknown fields are ignored, as serde does


def opt(t):
    return ("opt", t), REQ


PATH = {"path": ("str", REQ)}
ATTRS = {k: opt(t) for k, t in (("mode", "u32"), ("uid", "u32"), ("gid", "u32"),
                                 ("size", "u64"), ("atime", "i64"), ("mtime", "i64"))}
OPEN_OPTIONS = dict({k: ("bool", REQ) for k in (
    "read", "write", "append", "create", "truncate", "create_new")}, mode=opt("u32"))
HANDLE = {"handle": ("u64", REQ)}
STREAM = dict(HANDLE, offset=("u64", REQ), len=opt("u64"))
FS_OPS = {
    "RealPath": PATH, "List": PATH, "ReadLink": PATH, "Remove": PATH, "OpenDir": PATH,
    "Stat": dict(PATH, follow_symlink=("bool", REQ)),
    "SetStat": dict(PATH, follow_symlink=("bool", REQ), attrs=(ATTRS, REQ)),
    "Symlink": {"target": ("str", REQ), "link_path": ("str", REQ)},
    "Mkdir": dict(PATH, mode=opt("u32")),
    "RemoveDir": dict(PATH, recursive=("bool", REQ)),
    "Copy": {"src": ("str", REQ), "dst": ("str", REQ)},
    "Rename": {"src": ("str", REQ), "dst": ("str", REQ)},
    "OpenFile": dict(PATH, options=(OPEN_OPTIONS, REQ)),
    "CloseHandle": HANDLE, "FStat": HANDLE,
    "Read": STREAM, "Write": STREAM,
    "ReadDir": dict(HANDLE, limit=opt("u32")),
    "FSetStat": dict(HANDLE, attrs=(ATTRS, REQ)),
}
RLIMIT = {"resource": ("str", REQ), "soft": ("u64", REQ), "hard": ("u64", REQ)}
SCHEMAS = {
    "core.exec.request": {
        "cmd": ("str", REQ), "args": (("list", "str"), []), "env": (("list", "str"), []),
        "cwd": opt("str"), "user": opt("str"), "tty": ("bool", False),
        "rows": ("u16", 24), "cols": ("u16", 80), "rlimits": (("list", RLIMIT), [])},
    "core.exec.stdin": {"data": ("bytes", REQ)},
    "core.exec.signal": {"signal": ("i32", REQ)},
    "core.exec.resize": {"rows": ("u16", REQ), "cols": ("u16", REQ)},
    "core.fs.request": {"op": ("fsop", REQ)},
    "core.fs.data": {"data": ("bytes", REQ)},
    "core.tcp.connect": {"host": ("str", REQ), "port": ("u16", REQ)},
}


def decode_payload(t, p):
    try:
        value = cbor2.loads(p)
    except Exception as e:  # noqa: BLE001 - any decoder failure
        raise PayloadError(str(e) or type(e).__name__)
    return struct_of(value, SCHEMAS.get(t, {}), t)

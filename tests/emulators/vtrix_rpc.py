"""The WebSocket JSON-RPC side of the Vtrix emulator (vtrix.py): the
connection and call objects (with the ws_* faults), the exec and file
methods and the /connect upgrade."""

import asyncio
import base64
import binascii
import errno
import json
import os
import posixpath
import signal
import stat
import time

from aiohttp import WSMsgType, web

from common import log
from vtrix_base import (DEFAULT_CWD, E_BAD_REQUEST, E_NOT_FOUND, READ_LIMIT,
                        RPC_FAILED, RPC_INTERNAL, RPC_INVALID, RPC_NO_METHOD,
                        RPC_PARAMS, RPC_PARSE, STREAM_CHUNK, STREAM_CHUNK_MAX,
                        WS_MAX_MESSAGE, AtlasError, Dropped, RpcError,
                        image_mime, json_text, os_rpc_error, rfc3339,
                        utf8_cut)
from vtrix_sandbox import FINISHED, TIMEOUT, Command, Jail
from vtrix_rest import atlas_error


# ============================================================ WebSocket

class Conn:
    """One WebSocket connection to a sandbox."""

    def __init__(self, emu, sb, ws, transport):
        self.emu = emu
        self.sb = sb
        self.ws = ws
        self.transport = transport
        self.lock = asyncio.Lock()
        self.tasks = set()
        self.closed = False
        self.closer = None
        self.stalled = False

    async def send(self, obj, text=None):
        """Send obj as JSON, or `text`, JSON already."""
        if self.closed:
            raise ConnectionResetError("socket closed")
        if self.stalled:
            return                      # into the void
        data = text if text is not None else \
            json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        async with self.lock:
            if self.closed or self.ws.closed:
                raise ConnectionResetError("socket closed")
            await self.ws.send_str(data)

    def stall(self):
        """Go silent both ways, as a connection whose network vanished:
        read nothing more (so PINGs get no PONG) and send nothing."""
        self.stalled = True
        if self.transport is not None:
            self.transport.pause_reading()

    def drop(self):
        """Abort the TCP connection: no close frame, no answer."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close_soon(self, code, message):
        """Close with a close frame, in the background (returns the task)."""
        if self.closer is None:
            self.closed = True
            self.closer = asyncio.create_task(
                self.ws.close(code=code, message=message.encode()))
        return self.closer

    def dispatch(self, text):
        task = asyncio.create_task(self.run_call(text))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run_call(self, text):
        t0 = time.monotonic()
        try:
            if len(text) > (1 << 20):
                msg = await asyncio.get_running_loop().run_in_executor(
                    None, json.loads, text)
            else:
                msg = json.loads(text)
        except ValueError:
            self.emu.count("WS (unparsable)")
            await self._try_send({"jsonrpc": "2.0", "id": None, "error": {
                "code": RPC_PARSE, "message": "parse error"}})
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or \
                not isinstance(msg.get("method"), str) or \
                isinstance(rid, bool) or not isinstance(rid, (int, str, type(None))):
            self.emu.count("WS (invalid)")
            await self._try_send({"jsonrpc": "2.0", "id": rid if not isinstance(
                rid, (dict, list, bool)) else None, "error": {
                "code": RPC_INVALID, "message": "invalid request"}})
            return
        method = msg["method"]
        self.emu.count("WS " + (method if method in RPC_METHODS else "(unknown)"))
        if "id" not in msg or rid is None:
            log("WS %s %s (notification ignored)" % (self.sb.id, method))
            return
        call = Call(self, rid, self.emu.take_fault(
            ("ws_drop", "ws_slow", "ws_error", "ws_stall"), method=method))
        if call.kind == "ws_stall":
            self.stall()
        outcome = "ok"
        try:
            if call.fault is not None and call.fault["kind"] == "ws_error":
                raise RpcError(int(call.fault.get("code") or RPC_INTERNAL),
                               "injected fault")
            handler = RPC_METHODS.get(method)
            if handler is None:
                raise RpcError(RPC_NO_METHOD, "method not found: %s" % method)
            params = msg.get("params")
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise RpcError(RPC_PARAMS, "params must be an object")
            self.sb.settle()
            if self.sb.status != "active" or not self.sb.up:
                raise RpcError(RPC_FAILED, "sandbox is not active (status %s)"
                               % self.sb.status)
            self.sb.touch()
            result = await handler(self.sb, call, params)
            await call.answer({"jsonrpc": "2.0", "id": rid, "result": result})
        except RpcError as e:
            outcome = "error %d" % e.code
            try:
                await call.answer({"jsonrpc": "2.0", "id": rid, "error": {
                    "code": e.code, "message": e.message}})
            except (Dropped, ConnectionError):
                outcome += " (not sent)"
        except Dropped:
            outcome = "dropped (fault)"
        except ConnectionError:
            outcome = "socket closed"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as e:  # noqa: BLE001 - a bug must not kill the socket
            outcome = "internal error"
            log("WS %s %s: %r" % (self.sb.id, method, e))
            await self._try_send({"jsonrpc": "2.0", "id": rid, "error": {
                "code": RPC_INTERNAL, "message": "internal error: %s" % e}})
        finally:
            log("WS %s %s id=%s %s %.1fms" % (self.sb.id, method, rid, outcome,
                                              (time.monotonic() - t0) * 1000))

    async def _try_send(self, obj):
        try:
            await self.send(obj)
        except ConnectionError:
            pass


class Call:
    """One JSON-RPC call in flight: its notifications and its answer."""

    def __init__(self, conn, rid, fault):
        self.conn = conn
        self.id = rid
        self.fault = fault
        self.kind = fault["kind"] if fault else None

    async def notify(self, method, **params):
        params = dict(id=self.id, **params)
        await self.conn.send({"jsonrpc": "2.0", "method": method, "params": params})
        self._after_notify()

    async def notify_data(self, method, data):
        """notify(method, data=DATA) for DATA in base64, which JSON holds
        as it is: no encoder's pass over megabytes of it."""
        text = '{"jsonrpc":"2.0","method":%s,"params":{"id":%s,"data":"%s"}}' % (
            json.dumps(method), json.dumps(self.id), data)
        await self.conn.send(None, text=text)
        self._after_notify()

    def _after_notify(self):
        if self.kind == "ws_drop":
            self.conn.drop()
            raise Dropped()

    async def answer(self, obj):
        if self.kind == "ws_slow":
            await asyncio.sleep(float(self.fault.get("delay") or 1.0))
        if self.kind == "ws_drop":
            self.conn.drop()
            raise Dropped()
        await self.conn.send(obj)


# ------------------------------------------------------------ params

def p_str(params, key, required=True, default=None):
    v = params.get(key)
    if v is None:
        if required:
            raise RpcError(RPC_PARAMS, "invalid params: %s is required" % key)
        return default
    if not isinstance(v, str):
        raise RpcError(RPC_PARAMS, "invalid params: %s must be a string" % key)
    return v


def p_uint(params, key, default=None):
    v = params.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
        raise RpcError(RPC_PARAMS, "invalid params: %s must be a non-negative integer" % key)
    return int(v)


def p_path(params):
    path = p_str(params, "path")
    if not path:
        raise RpcError(RPC_PARAMS, "invalid params: path is empty")
    return path


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


# ------------------------------------------------------------ exec

async def rpc_exec(sb, call, params):
    command = p_str(params, "command")
    if not command.strip():
        raise RpcError(RPC_PARAMS, "invalid params: command is empty")
    env = params.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
        raise RpcError(RPC_PARAMS, "invalid params: env must be an object")
    env = {k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()}
    cwd = p_str(params, "working_dir", required=False) or DEFAULT_CWD
    timeout = p_uint(params, "timeout", 0)
    stdin = p_str(params, "stdin_data", required=False)
    if stdin is None:
        stdin = p_str(params, "stdin", required=False)
    detached = bool(params.get("detached"))
    # "sudo": commands already run as root.

    try:
        st = os.stat(sb.jail.host(cwd))
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "not a directory")
    except OSError as e:
        raise RpcError(RPC_FAILED, "chdir %s: %s" % (cwd, os.strerror(e.errno).lower()))

    cmd = Command(sb, command, Jail.absolute(cwd), sb.command_env(env), stdin, timeout)
    sb.commands[cmd.id] = cmd
    q = None if detached else cmd.subscribe()
    try:
        await cmd.start(sb.runtime)
    except Exception as e:  # noqa: BLE001
        sb.commands.pop(cmd.id, None)
        raise RpcError(RPC_FAILED, "cannot start command: %s" % e)
    started = rfc3339(cmd.started_at)
    if detached:
        return {"cmd_id": cmd.id, "pid": cmd.pid, "started_at": started}

    try:
        await call.notify("exec.start", cmd_id=cmd.id, pid=cmd.pid)
        output = []
        while True:
            item = await q.get()
            if item is FINISHED:
                break
            if item is TIMEOUT:
                raise RpcError(RPC_FAILED, "command timed out after %d seconds" % timeout)
            stream, text = item
            output.append(text)
            await call.notify("exec." + stream, data=text)
    finally:
        cmd.unsubscribe(q)
    output = "".join(output)
    await call.notify("exec.done", cmd_id=cmd.id, output=output, exit_code=cmd.exit_code)
    return {"cmd_id": cmd.id, "output": output, "exit_code": cmd.exit_code,
            "started_at": started}


def find_command(sb, params):
    cmd_id = p_str(params, "cmd_id")
    cmd = sb.commands.get(cmd_id)
    if cmd is None:
        raise RpcError(RPC_FAILED, "command not found: %s" % cmd_id)
    return cmd


async def rpc_exec_logs(sb, call, params):
    cmd = find_command(sb, params)
    # Snapshot and subscription in one step, so nothing is lost or doubled.
    replay = [(s, t) for s, t, _ in cmd.events]
    q = None if cmd.finished else cmd.subscribe()
    try:
        await call.notify("exec.start", cmd_id=cmd.id, pid=cmd.pid)
        for stream, text in replay:
            await call.notify("exec." + stream, data=text)
        while q is not None:
            item = await q.get()
            if item is FINISHED:
                break
            if item is TIMEOUT:
                continue
            stream, text = item
            await call.notify("exec." + stream, data=text)
    finally:
        if q is not None:
            cmd.unsubscribe(q)
    output = cmd.buffered_output()
    await call.notify("exec.done", cmd_id=cmd.id, output=output, exit_code=cmd.exit_code)
    return {"cmd_id": cmd.id, "output": output, "exit_code": cmd.exit_code,
            "started_at": rfc3339(cmd.started_at)}


async def rpc_kill(sb, call, params):
    cmd = find_command(sb, params)
    name = p_str(params, "signal", required=False) or "SIGTERM"
    key = name.upper()
    if not key.startswith("SIG"):
        key = "SIG" + key
    try:
        sig = signal.Signals[key]
    except KeyError:
        raise RpcError(RPC_PARAMS, "invalid params: unknown signal %s" % name)
    await cmd.signal(sig)
    return {"cmd_id": cmd.id, "signal": sig.name}


# ------------------------------------------------------------ files

def open_regular(sb, path):
    """(fd, stat) of a regular file for reading; RpcError otherwise."""
    try:
        fd = os.open(sb.jail.host(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise os_rpc_error(e, path)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "is a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise RpcError(RPC_FAILED, "%s: %s" % (path, what))
    return fd, st


def read_whole(fd, size):
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, max(size - offset, 0) + 65536, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def do_read(sb, path):
    fd, st = open_regular(sb, path)
    try:
        head = os.pread(fd, READ_LIMIT + 1, 0)
        mime = image_mime(head)
        if mime:
            data = head if len(head) <= READ_LIMIT else read_whole(fd, st.st_size)
            return {"type": "image", "mime_type": mime,
                    "data": base64.b64encode(data).decode()}
    finally:
        os.close(fd)
    truncated = len(head) > READ_LIMIT
    if truncated:
        head = utf8_cut(head[:READ_LIMIT])
    return {"type": "text", "content": head.decode("utf-8", "replace"),
            "truncated": truncated}


async def rpc_read(sb, call, params):
    return await in_thread(do_read, sb, p_path(params))


def write_bytes(sb, path, data, mode=None):
    """os.WriteFile-like: create (0644) or truncate in place, mkdir -p the
    parents first; then chmod to `mode` if given."""
    try:
        host = sb.jail.host(path)
        sb.jail.make_parents(host)
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o644)
    except IsADirectoryError:
        raise RpcError(RPC_FAILED, "%s: is a directory" % path)
    except OSError as e:
        raise os_rpc_error(e, path) if e.errno != errno.ENOENT else \
            RpcError(RPC_FAILED, "%s: %s" % (path, os.strerror(e.errno).lower()))
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view[:1 << 24])
            view = view[n:]
        if mode is not None:
            os.fchmod(fd, mode & 0o7777)
    except OSError as e:
        raise os_rpc_error(e, path)
    finally:
        os.close(fd)
    return {"bytes_written": len(data)}


async def rpc_write(sb, call, params):
    path = p_path(params)
    content = p_str(params, "content", required=False, default="")
    return await in_thread(write_bytes, sb, path, content.encode("utf-8", "surrogatepass"))


def do_write_binary(sb, path, data, mode):
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RpcError(RPC_PARAMS, "invalid params: data is not valid base64")
    return write_bytes(sb, path, raw, mode)


async def rpc_write_binary(sb, call, params):
    path = p_path(params)
    data = p_str(params, "data", required=False, default="")
    mode = p_uint(params, "mode")
    if mode is not None and mode > 0o7777:
        raise RpcError(RPC_PARAMS, "invalid params: mode out of range")
    return await in_thread(do_write_binary, sb, path, data, mode or None)


def do_edit(sb, path, old, new):
    fd, st = open_regular(sb, path)
    try:
        raw = read_whole(fd, st.st_size)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RpcError(RPC_FAILED, "%s: not a UTF-8 text file" % path)
    n = text.count(old)
    if n == 0:
        raise RpcError(RPC_FAILED, "old_text not found in %s" % path)
    if n > 1:
        raise RpcError(RPC_FAILED, "old_text found %d times in %s; it must be unique"
                       % (n, path))
    write_bytes(sb, path, text.replace(old, new, 1).encode("utf-8"))
    return {"message": "Successfully replaced text in %s" % path}


async def rpc_edit(sb, call, params):
    path = p_path(params)
    old = p_str(params, "old_text")
    new = p_str(params, "new_text", required=False, default="")
    if not old:
        raise RpcError(RPC_PARAMS, "invalid params: old_text is empty")
    return await in_thread(do_edit, sb, path, old, new)


def mtime(st):
    return rfc3339(st.st_mtime)


def do_list(sb, path):
    try:
        host = sb.jail.host(path)
        st = os.stat(host)
    except OSError as e:
        raise os_rpc_error(e, path)
    if not stat.S_ISDIR(st.st_mode):
        raise RpcError(RPC_FAILED, "%s: not a directory" % path)
    shown = Jail.absolute(path)
    entries = []
    try:
        with os.scandir(host) as it:
            for entry in it:
                try:
                    est = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                name = json_text(entry.name)
                entries.append({"name": name, "path": posixpath.join(shown, name),
                                "size": est.st_size,
                                "is_dir": stat.S_ISDIR(est.st_mode),
                                "modified_at": mtime(est)})
    except OSError as e:
        raise os_rpc_error(e, path)
    entries.sort(key=lambda e: e["name"])
    return entries


async def rpc_list_files(sb, call, params):
    return await in_thread(do_list, sb, p_path(params))


def do_stat(sb, path):
    try:
        st = os.stat(sb.jail.host(path))
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return {"exists": False, "size": 0, "is_dir": False, "is_file": False,
                    "modified_at": None}
        raise os_rpc_error(e, path)
    return {"exists": True, "size": st.st_size, "is_dir": stat.S_ISDIR(st.st_mode),
            "is_file": stat.S_ISREG(st.st_mode), "modified_at": mtime(st)}


async def rpc_stat(sb, call, params):
    return await in_thread(do_stat, sb, p_path(params))


async def rpc_read_stream(sb, call, params):
    path = p_path(params)
    chunk = p_uint(params, "chunk_size", 0) or STREAM_CHUNK
    chunk = max(1, min(chunk, STREAM_CHUNK_MAX))
    # Read in blocks of whole chunks (at least 1 MiB) to keep thread hops few.
    block = chunk * max(1, (1 << 20) // chunk)
    fd, _ = await in_thread(open_regular, sb, path)
    total = 0
    mime = None
    try:
        while True:
            data = await in_thread(os.pread, fd, block, total)
            if not data:
                break
            if total == 0:
                mime = image_mime(data[:16])
            for i in range(0, len(data), chunk):
                piece = data[i:i + chunk]
                await call.notify_data("read_stream.chunk",
                                       base64.b64encode(piece).decode())
            total += len(data)
    finally:
        os.close(fd)
    result = {"type": "image" if mime else "text", "total_bytes": total}
    if mime:
        result["mime_type"] = mime
    return result


RPC_METHODS = {
    "exec": rpc_exec, "exec_logs": rpc_exec_logs, "kill": rpc_kill,
    "read": rpc_read, "write": rpc_write, "edit": rpc_edit,
    "write_binary": rpc_write_binary, "list_files": rpc_list_files,
    "stat": rpc_stat, "read_stream": rpc_read_stream,
}


async def ws_connect(emu, request):
    """GET .../{id}/connect: checks as for REST, then the JSON-RPC loop."""
    bad = emu.auth_error(request, allow_subprotocol=True)
    if bad is not None:
        return atlas_error(request, bad)
    sb = emu.sandboxes.get(request.match_info["id"])
    if sb is None or sb.status == "destroying":
        return atlas_error(request, AtlasError(
            E_NOT_FOUND, "sandbox %s not found" % request.match_info["id"]))
    offered = [p.strip() for p in
               request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    ws = web.WebSocketResponse(protocols=offered, max_msg_size=WS_MAX_MESSAGE,
                               compress=False)
    if not ws.can_prepare(request).ok:
        return atlas_error(request, AtlasError(E_BAD_REQUEST, "expected a WebSocket upgrade"))
    await ws.prepare(request)
    conn = Conn(emu, sb, ws, request.transport)
    sb.conns.add(conn)
    sb.touch()
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                conn.dispatch(msg.data)
            elif msg.type == WSMsgType.BINARY:
                log("WS %s binary frame ignored" % sb.id)
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        conn.closed = True
        sb.conns.discard(conn)
        for task in list(conn.tasks):
            task.cancel()
    if conn.closer is not None:
        # Let close_soon() send its code before aiohttp closes with 1000.
        try:
            await conn.closer
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass
    return ws

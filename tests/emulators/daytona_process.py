"""The toolbox's process routes of the Daytona emulator (daytona.py):
/process/execute, sessions and their commands (input, logs with the
daemon's stream markers, output shaped by the client's SDK version) and
PTYs."""

import asyncio
import errno
import json
import os
import re
import signal
import stat
import uuid

from aiohttp import WSMsgType, web

from common import kill_group, log
from daytona_base import (HOME, STDERR_MARK, STDOUT_MARK, empty,
                          json_response, os_error_status, parse_semver_core,
                          tb_error, tb_untyped_error)
from daytona_sandbox import Command, PtySession, Session


ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def strip_markers(data):
    return data.replace(STDOUT_MARK, b"").replace(STDERR_MARK, b"")


def demux(data):
    """The daemon's DemuxLogBytes: bytes after a marker go to its stream."""
    out, err = bytearray(), bytearray()
    target = None
    i = 0
    n = len(data)
    while i < n:
        if data.startswith(STDOUT_MARK, i):
            target, i = out, i + 3
        elif data.startswith(STDERR_MARK, i):
            target, i = err, i + 3
        else:
            j = min([k for k in (data.find(STDOUT_MARK, i), data.find(STDERR_MARK, i))
                     if k >= 0] or [n])
            if target is not None:
                target += data[i:j]
            i = j
    return bytes(out), bytes(err)


class OutputMode:
    """How the daemon shapes session output for this client (section 6.4)."""

    def __init__(self, request):
        v = request.headers.get("X-Daytona-SDK-Version", "")
        if not v:
            for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
                proto = proto.strip()
                if proto.startswith("X-Daytona-SDK-Version~"):
                    v = proto.split("~", 1)[1]
                    break
        self.version = v
        core = parse_semver_core(v)
        dev = "dev" in v
        older_than_027 = core is not None and core < (0, 27, 0)
        self.combined = (older_than_027 and not dev) or \
            (v == "" and request.headers.get("X-Daytona-Split-Output") != "true")
        if v == "":
            self.skip_demux = True
        elif dev:
            self.skip_demux = False
        else:
            self.skip_demux = core is None or core < (0, 167, 0)


class MarkerFilter:
    """Strips markers from a byte stream whose chunks may split a marker."""

    def __init__(self):
        self.held = b""

    def feed(self, chunk):
        data = self.held + chunk
        keep = 0
        for k in (2, 1):
            tail = data[-k:]
            if len(data) >= k and (STDOUT_MARK.startswith(tail) or
                                   STDERR_MARK.startswith(tail)):
                keep = k
                break
        self.held = data[len(data) - keep:] if keep else b""
        return strip_markers(data[:len(data) - keep] if keep else data)

    def flush(self):
        data, self.held = self.held, b""
        return data


class ToolboxProcess:
    """The toolbox routes that run processes; Toolbox (daytona_toolbox.py)
    adds the file routes and the constructor (self.emu)."""

    # -------------------------------------------------------- execute

    async def execute(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            assert isinstance(body, dict)
        except Exception:  # noqa: BLE001
            return tb_error(request, 400, "bad request: invalid request body")
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            return tb_error(request, 400,
                            "bad request: command cannot be empty or whitespace-only")
        envs = body.get("envs") or {}
        for k in envs:
            if not ENV_KEY_RE.match(k):
                return tb_error(request, 400,
                                "bad request: invalid environment variable key: %s" % k)
        cwd = body.get("cwd") or HOME
        try:
            if not stat.S_ISDIR(sb.jail.stat(cwd).st_mode):
                raise OSError(errno.ENOTDIR, "not a directory")
        except OSError as e:
            return json_response({"exitCode": -1, "result": "chdir %s: %s"
                                  % (cwd, os.strerror(e.errno).lower())})
        timeout = body.get("timeout")
        proc = await sb.runtime.spawn(
            cwd, env={k: str(v) for k, v in envs.items()},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(
                proc.communicate(command.encode() + b"\n"),
                timeout if isinstance(timeout, (int, float)) and timeout > 0 else None)
        except asyncio.TimeoutError:
            kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            sb.runtime.forget(proc)
            return tb_error(request, 408, "request timeout: command execution timeout")
        sb.runtime.forget(proc)
        rc = proc.returncode if proc.returncode >= 0 else -1
        return json_response({"exitCode": rc,
                              "result": out.decode("utf-8", "replace")})

    # -------------------------------------------------------- sessions

    def _session(self, request):
        sb = request["sandbox"]
        s = sb.sessions.get(request.match_info["session"])
        if s is None:
            raise _TbError(404, "not found: session not found")
        return s

    def _command(self, request):
        s = self._session(request)
        c = s.commands.get(request.match_info["command"])
        if c is None:
            raise _TbError(404, "not found: command not found")
        return s, c

    async def session_create(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            sid = body["sessionId"]
            assert isinstance(sid, str) and sid
        except Exception:  # noqa: BLE001
            return tb_error(request, 400, "invalid body request: sessionId is required",
                            "INVALID_REQUEST_BODY")
        if sid == "entrypoint":
            return tb_error(request, 400, "bad request: provided session ID is "
                            "reserved and cannot be created/overridden")
        if sid in sb.sessions:
            return tb_error(request, 409, "conflict: session already exists")
        log_dir = os.path.join(self.emu.work, "sessions", sb.id, uuid.uuid4().hex)
        os.makedirs(log_dir)
        sb.sessions[sid] = Session(sid, log_dir)
        return web.Response(status=201)

    async def session_list(self, request):
        sb = request["sandbox"]
        return json_response([s.dto() for s in sb.sessions.values()])

    async def session_get(self, request):
        return json_response(self._session(request).dto())

    async def session_delete(self, request):
        sb = request["sandbox"]
        if request.match_info["session"] == "entrypoint":
            return tb_error(request, 400, "bad request: can't delete entrypoint session")
        s = self._session(request)
        await s.kill()
        sb.sessions.pop(s.id, None)
        return web.Response(status=204)

    async def entrypoint(self, request):
        return json_response({"sessionId": "entrypoint", "commands": []})

    async def entrypoint_logs(self, request):
        mode = OutputMode(request)
        if not mode.skip_demux:
            return json_response({"output": "", "stdout": "", "stderr": ""})
        return web.Response(text="", content_type="text/plain", charset="utf-8")

    async def session_exec(self, request):
        sb = request["sandbox"]
        sid = request.match_info["session"]
        if sid == "entrypoint":
            return tb_error(request, 400,
                            "bad request: can't execute command in entrypoint session")
        try:
            body = json.loads(await request.text())
            assert isinstance(body, dict)
        except Exception:  # noqa: BLE001
            return empty(400)
        text = body.get("command")
        if not isinstance(text, str) or not text.strip():
            return empty(400)
        run_async = bool(body.get("runAsync") or body.get("async"))
        s = sb.sessions.get(sid)
        if s is None:
            return tb_untyped_error("failed to execute command: not found: session not found")
        mode = OutputMode(request)
        cmd = Command(s, text, os.path.join(s.dir, "%d.log" % len(s.commands)),
                      bool(body.get("suppressInputEcho")))
        s.commands[cmd.id] = cmd
        await cmd.run(sb.runtime, run_async)
        if run_async:
            return json_response({"cmdId": cmd.id, "output": None, "stdout": None,
                                  "stderr": None, "exitCode": None}, 202)
        await cmd.done.wait()
        if s.closed:
            return tb_untyped_error("failed to execute command: bad request: session cancelled")
        with open(cmd.log_path, "rb") as f:
            raw = f.read()
        result = {"cmdId": cmd.id, "output": None, "stdout": None, "stderr": None,
                  "exitCode": cmd.exit_code}
        if mode.combined:
            result["output"] = strip_markers(raw).decode("utf-8", "replace")
        else:
            result["output"] = raw.decode("utf-8", "replace")
            if not mode.skip_demux:
                out, err = demux(raw)
                result["stdout"] = out.decode("utf-8", "replace")
                result["stderr"] = err.decode("utf-8", "replace")
        return json_response(result)

    async def command_get(self, request):
        return json_response(self._command(request)[1].dto())

    async def command_input(self, request):
        if request.match_info["session"] == "entrypoint":
            return tb_error(request, 400, "bad request: can't send input to entrypoint session")
        s, c = self._command(request)
        try:
            body = json.loads(await request.text())
            data = body["data"]
            assert isinstance(data, str)
        except Exception:  # noqa: BLE001
            return tb_error(request, 400, "invalid body request: data is required",
                            "INVALID_REQUEST_BODY")
        if c.exit_code is not None:
            return tb_error(request, 410, "gone: command has already completed "
                            "with exit code %d" % c.exit_code)
        await c.send_input(data)
        return web.Response(status=204)

    async def command_logs(self, request):
        s, c = self._command(request)
        mode = OutputMode(request)
        follow = request.query.get("follow") == "true"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._logs_ws(request, s, c, mode, follow)
        try:
            with open(c.log_path, "rb") as f:
                raw = f.read()
        except OSError as e:
            return tb_error(request, os_error_status(e), "not found: %s" % e.strerror)
        if mode.combined:
            raw = strip_markers(raw)
        elif not mode.skip_demux:
            out, err = demux(raw)
            return json_response({"output": raw.decode("utf-8", "replace"),
                                  "stdout": out.decode("utf-8", "replace"),
                                  "stderr": err.decode("utf-8", "replace")})
        return web.Response(body=raw, content_type="text/plain", charset="utf-8")

    async def _logs_ws(self, request, session, cmd, mode, follow):
        ws = web.WebSocketResponse(protocols=_sdk_protocols(request), autoping=True)
        await ws.prepare(request)
        drain = asyncio.create_task(_ws_drain(ws))
        filt = MarkerFilter() if mode.combined else None
        try:
            with open(cmd.log_path, "rb") as f:
                while not ws.closed:
                    finished = cmd.done.is_set() or session.closed
                    chunk = f.read(1024)
                    if chunk:
                        data = filt.feed(chunk) if filt else chunk
                        if data:
                            await ws.send_bytes(data)
                        continue
                    if not follow or finished:
                        break
                    await asyncio.sleep(0.05)
            if filt and not ws.closed:
                rest = filt.flush()
                if rest:
                    await ws.send_bytes(rest)
            if not ws.closed:
                await ws.close(code=1000)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            drain.cancel()
        return ws

    # ------------------------------------------------------------- PTY

    async def pty_create(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            assert isinstance(body, dict)
        except Exception:  # noqa: BLE001
            return json_response({"error": "invalid request body"}, 400)
        pid_id = body.get("id")
        if not pid_id:
            return json_response({"error": "session ID is required"}, 400)
        if pid_id in sb.ptys:
            return json_response({"error": "PTY session with ID '%s' already exists"
                                  % pid_id}, 409)
        cols, rows = int(body.get("cols") or 80), int(body.get("rows") or 24)
        if cols > 1000:
            return json_response({"error": "invalid value for cols - must be less than 1000"}, 400)
        if rows > 1000:
            return json_response({"error": "invalid value for rows - must be less than 1000"}, 400)
        p = PtySession(pid_id, body.get("cwd") or HOME, dict(body.get("envs") or {}),
                       cols, rows, bool(body.get("lazyStart")))
        if not p.lazy:
            try:
                await p.start(sb.runtime)
            except Exception as e:  # noqa: BLE001
                log("pty start failed: %s" % e)
                return json_response({"error": "failed to start PTY session"}, 500)
        sb.ptys[pid_id] = p
        return json_response({"sessionId": pid_id}, 201)

    async def pty_list(self, request):
        sb = request["sandbox"]
        return json_response({"sessions": [p.info() for p in sb.ptys.values()]})

    async def pty_get(self, request):
        p = request["sandbox"].ptys.get(request.match_info["pty"])
        if p is None:
            return json_response({"error": "PTY session not found"}, 404)
        return json_response(p.info())

    async def pty_delete(self, request):
        p = request["sandbox"].ptys.pop(request.match_info["pty"], None)
        if p is None:
            return json_response({"error": "PTY session not found"}, 404)
        p.kill()
        return json_response({"message": "PTY session deleted"})

    async def pty_resize(self, request):
        p = request["sandbox"].ptys.get(request.match_info["pty"])
        if p is None:
            return json_response({"error": "PTY session not found"}, 404)
        try:
            body = json.loads(await request.text())
            cols, rows = int(body["cols"]), int(body["rows"])
        except Exception:  # noqa: BLE001
            return json_response({"error": "cols and rows are required"}, 400)
        if not 1 <= cols <= 1000:
            return json_response({"error": "cols must be less than 1000"}, 400)
        if not 1 <= rows <= 1000:
            return json_response({"error": "rows must be less than 1000"}, 400)
        if p.exit_code is not None:
            return json_response({"error": "PTY session is not active"}, 410)
        p.cols, p.rows = cols, rows
        p.resize()
        return json_response(p.info())

    async def pty_connect(self, request):
        sb = request["sandbox"]
        ws = web.WebSocketResponse(protocols=_sdk_protocols(request), autoping=True,
                                   max_msg_size=64 * 1024)
        await ws.prepare(request)
        p = sb.ptys.get(request.match_info["pty"])
        try:
            if p is not None and p.proc is None:
                await p.start(sb.runtime)
            if p is None or p.exit_code is not None:
                await ws.send_str(json.dumps({
                    "type": "control", "status": "error",
                    "error": "Failed to connect to PTY session: PTY session not found"}))
                await ws.close()
                return ws
        except Exception as e:  # noqa: BLE001
            await ws.send_str(json.dumps({"type": "control", "status": "error",
                                          "error": "Failed to connect to PTY session: %s" % e}))
            await ws.close()
            return ws
        await ws.send_str(json.dumps({"type": "control", "status": "connected"}))
        queue = asyncio.Queue()
        p.clients[ws] = queue

        async def pump_input():
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    p.write(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    p.write(msg.data.encode())

        async def pump_output():
            while True:
                await ws.send_bytes(await queue.get())

        async def until_exit_drained():
            await p.exited.wait()
            while not queue.empty():
                await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(pump_input()), asyncio.create_task(pump_output()),
                 asyncio.create_task(until_exit_drained())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if p.exited.is_set() and not ws.closed:
                code, reason = p.close_reason()
                await ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError):
            pass
        finally:
            p.clients.pop(ws, None)
            for t in tasks:
                t.cancel()
        return ws


class _TbError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def toolbox_handler(fn):
    async def wrapped(request):
        try:
            return await fn(request)
        except _TbError as e:
            return tb_error(request, e.status, e.message)
    return wrapped


def _sdk_protocols(request):
    offered = [p.strip() for p in
               request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    return [p for p in offered if p.startswith("X-Daytona-SDK-Version~")]


async def _ws_drain(ws):
    """Read (and ignore) client frames so pings are answered."""
    try:
        async for _ in ws:
            pass
    except Exception:  # noqa: BLE001 - the socket is going away anyway
        pass

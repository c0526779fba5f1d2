"""The REST handlers of the Rexec emulator (rexec.py): containers (list,
create, get, delete, start, stop, images, token validation, health,
version), files (list, delete, mkdir, download, upload) and exec (POST
/api/containers/:id/exec, --mode new only).
"""

import asyncio
import os
import random
import shutil
import stat
import tempfile
import time

from aiohttp import web

import common
from common import go_mode_string
from rexec_containers import (
    ADJECTIVES, CHUNK, DANGEROUS_PATHS, EXEC_DEFAULT_TIMEOUT, EXEC_MAX_OUTPUT,
    EXEC_MAX_TIMEOUT, FILE_OP_TIMEOUT, HOME, LS_STDIO_BUFFER, MAX_UPLOAD, NOUNS,
    POPULAR_IMAGES, SESSION_LIMIT_SECONDS, SUPPORTED_IMAGES, Container,
    _ExecStartError, exit_code, kill_in_container)
from rexec_go import (
    CREATE_SCHEMA, EXEC_SCHEMA, DockerError, GoDecodeError, GoMap, blen,
    demux_docker_stream, error, go_base, go_clean, go_join, go_quote,
    go_rfc3339, go_time, go_trim_space, go_unmarshal, json_response, mux_frame,
    parse_list_output, preserve_trailing)


# ================================================= container handlers

def valid_container_name(name):
    """container.go isValidContainerName."""
    if not 0 < blen(name) <= 64:
        return False
    for i, ch in enumerate(name):
        if not (ch.isascii() and (ch.isalnum() or ch in "-_")):
            return False
        if i == 0 and ch in "-_":
            return False
    return True


def valid_docker_image(image):
    """container.go isValidDockerImage (the tag is not checked)."""
    if not 0 < blen(image) <= 256:
        return False
    parts = image.split(":")
    if len(parts) > 2 or not parts[0]:
        return False
    return all(ch.isascii() and (ch.isalnum() or ch in "-_./") for ch in parts[0])


def resources(c):
    return GoMap(memory_mb=c.resources["memory_mb"],
                 cpu_shares=c.resources["cpu_shares"],
                 disk_mb=c.resources["disk_mb"])


class ContainerApi:
    def __init__(self, emu):
        self.emu = emu

    async def list(self, request):
        emu = self.emu
        now = time.time_ns()
        items = []
        for c in emu.records():
            status = c.status
            idle = 0.0
            m = emu.mgr_get(c.docker_id) if c.docker_id else None
            if m is not None:
                status = m.m_status
                idle = (now - m.m_last_used_ns) / 1e9
                if status != c.status:
                    c.status = status          # "Update DB if status changed"
            elif status == "running":
                idle = (now - c.last_used_ns) / 1e9
            items.append((c.created_ns, GoMap(
                id=c.docker_id or c.db_id, db_id=c.db_id, user_id=emu.user_id,
                name=c.name, image=c.image, role=c.role, status=status,
                created_at=go_time(c.created_ns, micro=True),
                last_used_at=go_time(c.last_used_ns, micro=True),
                idle_seconds=idle, mfa_locked=False, resources=resources(c))))
        items.sort(key=lambda t: t[0], reverse=True)
        return json_response(GoMap(containers=[i for _, i in items],
                                   count=len(items), limit=emu.container_limit))

    async def create(self, request):
        emu = self.emu
        try:
            req = go_unmarshal(await request.read(), CREATE_SCHEMA,
                               "models.CreateContainerRequest", whole=False)
        except GoDecodeError as e:
            return error(400, str(e))
        image = req.get("image", "")
        if image == "":
            return error(400, "Key: 'CreateContainerRequest.Image' Error:Field "
                              "validation for 'Image' failed on the 'required' tag")
        custom = req.get("custom_image", "")
        if image == "custom":
            if custom == "":
                return error(400, "custom_image is required when image is 'custom'")
            if not valid_docker_image(custom):
                return error(400, "invalid custom_image format")
        elif image not in SUPPORTED_IMAGES:
            names = list(SUPPORTED_IMAGES)
            random.shuffle(names)                # Go map iteration order
            return error(400, "unsupported image type", supported_images=names)
        name = go_trim_space(req.get("name", ""))
        if name == "":
            name = "%s-%s-%d" % (random.choice(ADJECTIVES), random.choice(NOUNS),
                                 random.randrange(1000))
        if not valid_container_name(name):
            return error(400, "invalid container name: must be 1-64 characters, "
                              "alphanumeric and hyphens only")
        existing = emu.records()
        if len(existing) >= emu.container_limit:
            return json_response(GoMap(
                error="container limit reached", current=len(existing),
                limit=emu.container_limit, tier=emu.tier,
                message="Upgrade your plan to create more containers"), 403)
        if any(c.name == name for c in existing):
            return error(409, "container with this name already exists", name=name)

        mem, cpu, disk, _, subscribed = emu.plan
        if emu.tier in ("free", "trial"):
            # ValidateTrialResources clamps requests to 256-4096 MB, 250-4000
            # millicores, 1024-16384 MB; non-subscribers are then capped at
            # their plan.
            def clamp(v, lo, hi, cap):
                return min(max(v, lo), hi, cap) if v > 0 else cap
            mem = clamp(req.get("memory_mb", 0), 256, 4096, mem)
            cpu = clamp(req.get("cpu_shares", 0), 250, 4000, cpu)
            disk = clamp(req.get("disk_mb", 0), 1024, 16384, disk)
        image_name = "custom:" + custom if image == "custom" else image
        c = Container(emu, name, image_name, image_name, req.get("role", ""),
                      {"memory_mb": mem, "cpu_shares": cpu, "disk_mb": disk})
        emu.containers.append(c)
        emu.launch(c, emu.create_flow(c, custom if image == "custom" else ""))
        body = GoMap(
            id=c.db_id, db_id=c.db_id, user_id=emu.user_id, name=name,
            image=image_name, role=c.role, status="creating",
            created_at=go_time(c.created_ns), **{"async": True},
            message="Container is being created. This may take a moment if "
                    "the image needs to be pulled.",
            resources=resources(c))
        if emu.tier in ("free", "trial") and not subscribed:
            body["expires_at"] = go_rfc3339(time.time() + SESSION_LIMIT_SECONDS)
            body["session_limit_seconds"] = SESSION_LIMIT_SECONDS
        return json_response(body, 202)

    async def get(self, request):
        emu = self.emu
        found = emu.db_find(request.match_info["id"])
        if found is None:
            return error(404, "container not found")
        body = GoMap(id=found.docker_id or found.db_id, db_id=found.db_id,
                     user_id=emu.user_id, name=found.name, image=found.image,
                     status=found.status,
                     created_at=go_time(found.created_ns, micro=True),
                     last_used_at=go_time(found.last_used_ns, micro=True),
                     mfa_locked=False, resources=resources(found))
        if found.docker_id:
            m = emu.mgr_get(found.docker_id)
            if m is not None:                   # live info from the manager
                body.update(id=m.docker_id, status=m.m_status,
                            created_at=go_time(m.m_created_ns),
                            last_used_at=go_time(m.m_last_used_ns),
                            ip_address=m.ip,
                            idle_seconds=(time.time_ns() - m.m_last_used_ns) / 1e9)
        return json_response(body)

    async def delete(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        if ident.startswith("agent:"):
            return error(404, "agent not found")
        found = emu.db_find(ident)
        if found is None:
            return error(404, "container not found")
        if found.docker_id:
            async with found.lock:
                # StopContainer + RemoveContainer (errors are only logged).
                found.in_manager = False
                if found.docker_exists:
                    await emu.docker_stop(found)
                    await emu.docker_remove(found)
        # Soft delete.  A container still being created is not stopped: its
        # creation carries on and leaves an orphan (as on the real server).
        found.deleted = True
        return json_response(GoMap(message="container deleted", id=ident,
                                   db_id=found.db_id, name=found.name))

    async def start(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        found = emu.db_find_docker(ident)
        if found is None:
            return error(404, "container not found")
        async with found.lock:
            try:
                emu.docker_get(ident)
                exists = True
            except DockerError:
                exists = False
            if not exists:
                # RecreateContainer: a new Docker container (new ID), same volume.
                try:
                    await emu.docker_create(found)
                except Exception as e:  # noqa: BLE001
                    return json_response(GoMap(
                        error=str(e), message="Container was removed from server "
                                              "and could not be recreated"), 500)
                now = time.time_ns()
                found.in_manager = True
                found.m_status = "running"
                found.m_created_ns = found.m_last_used_ns = now
                found.status = "running"
                return json_response(GoMap(
                    message="container recreated and started", id=found.docker_id,
                    old_id=ident, name=found.name, status="running",
                    recreated=True, volume_kept=True))
            err = await emu.manager_start(found, ident)
            if err:
                return error(500, err)
            found.status = "running"
        return json_response(GoMap(message="container started", id=ident,
                                   name=found.name, status="running"))

    async def stop(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        if ident.startswith("agent:"):
            return error(404, "agent not found")
        found = emu.db_find_docker(ident)
        if found is None:
            return error(404, "container not found")
        async with found.lock:
            if not (found.in_manager and found.docker_id == ident):
                return error(500, "container not found: " + ident)
            if not found.docker_exists:
                return error(500, "failed to stop container: Error response from "
                                  "daemon: No such container: " + ident)
            await emu.docker_stop(found)
            found.m_status = "stopped"
            found.status = "stopped"
        return json_response(GoMap(message="container stopped", id=ident,
                                   name=found.name, status="stopped"))

    async def images(self, request):
        names = SUPPORTED_IMAGES if request.query.get("all") == "true" else POPULAR_IMAGES

        def meta(n):
            return {"name": n, "display_name": n.replace("-", " ").title(),
                    "description": n + " image", "category": "linux",
                    "tags": [n.split("-")[0]], "popular": n in POPULAR_IMAGES}
        popular = [meta(n) for n in POPULAR_IMAGES]
        return json_response(GoMap(images=[meta(n) for n in names],
                                   categories=GoMap(linux=[meta(n) for n in names]),
                                   popular=popular))

    async def validate_token(self, request):
        emu = self.emu
        return json_response(GoMap(valid=True, user_id=emu.user_id,
                                   username=emu.username,
                                   email=emu.username + "@example.com",
                                   tier=emu.tier, scopes=["read", "write"]))

    async def health(self, request):
        mgr = self.emu.manager()
        return json_response(GoMap(
            status="ok", database="connected", docker="connected",
            containers_total=len(mgr),
            containers_running=sum(1 for c in mgr if c.m_status == "running")))

    async def version(self, request):
        return json_response(GoMap(version="v1.0.0", build="2024-12-10"))


# ====================================================== file handlers

class FileApi:
    def __init__(self, emu):
        self.emu = emu

    def _container(self, ident):
        """The common preamble: manager lookup, owner, status "running"."""
        c = self.emu.mgr_get(ident)
        if c is None:
            return None, error(404, "container not found")
        if c.m_status != "running":
            return None, error(400, "container is not running")
        return c, None

    async def _run(self, target, argv, frame_stdout=0):
        """An exec attached to stdout+stderr: (raw multiplexed stream, exit
        code).  frame_stdout > 0 cuts stdout into frames of that size, the
        writes of a program whose stdio buffer has that size."""
        proc = await self.emu.docker_exec(
            target, argv, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        raw = bytearray()
        pending = bytearray()

        async def pump(stream, kind):
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    break
                if kind == 1 and frame_stdout:
                    pending.extend(chunk)
                    while len(pending) >= frame_stdout:
                        raw.extend(mux_frame(1, bytes(pending[:frame_stdout])))
                        del pending[:frame_stdout]
                else:
                    raw.extend(mux_frame(kind, chunk))
            if kind == 1 and pending:
                raw.extend(mux_frame(1, bytes(pending)))
                pending.clear()
        try:
            await asyncio.wait_for(asyncio.gather(pump(proc.stdout, 1),
                                                  pump(proc.stderr, 2)),
                                   FILE_OP_TIMEOUT)
            rc = exit_code(await asyncio.wait_for(proc.wait(), FILE_OP_TIMEOUT))
        except asyncio.TimeoutError:
            kill_in_container(proc)
            raise
        finally:
            target.runtime.forget(proc)
        return bytes(raw), rc

    async def list(self, request):
        ident = request.match_info["id"]
        path = request.query.get("path", "") or HOME
        c, err = self._container(ident)
        if err is not None:
            return err
        try:
            target = self.emu.docker_get(ident)
            raw, _ = await self._run(target, ["ls", "-la", path], LS_STDIO_BUFFER)
        except DockerError as e:
            return error(500, "failed to create exec: %s" % e)
        except asyncio.TimeoutError:
            return error(500, "failed to read output")
        files = parse_list_output(raw, path)
        c.touch()
        return json_response(GoMap(path=path, files=files,
                                   count=len(files) if files else 0))

    async def _simple(self, request, argv_for, failure):
        ident = request.match_info["id"]
        path = request.query.get("path", "")
        c, err = self._container(ident)
        if err is not None:
            return None, err
        try:
            target = self.emu.docker_get(ident)
            _, rc = await self._run(target, argv_for(path))
        except DockerError as e:
            return None, error(500, "failed to create exec: %s" % e)
        except asyncio.TimeoutError:
            return None, error(500, "failed to check result")
        if rc != 0:
            return None, error(500, failure)
        c.touch()
        return path, None

    async def delete(self, request):
        path = request.query.get("path", "")
        if path == "":
            return error(400, "path parameter required")
        for d in DANGEROUS_PATHS:
            # Go: a == d || (HasPrefix(a, d+"/") && !HasPrefix(a, "/home/"))
            if path == d or (path.startswith(d + "/") and not path.startswith("/home/")):
                return error(403, "cannot delete system files")
        path, err = await self._simple(request, lambda p: ["rm", "-rf", p],
                                       "failed to delete file")
        if err is not None:
            return err
        return json_response(GoMap(message="file deleted successfully", path=path))

    async def mkdir(self, request):
        if request.query.get("path", "") == "":
            return error(400, "path parameter required")
        path, err = await self._simple(request, lambda p: ["mkdir", "-p", p],
                                       "failed to create directory")
        if err is not None:
            return err
        return json_response(GoMap(message="directory created successfully", path=path))

    async def download(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        path = request.query.get("path", "")
        if path == "":
            return error(400, "path parameter required")
        c, err = self._container(ident)
        if err is not None:
            return err
        try:
            target = emu.docker_get(ident)
        except DockerError as e:
            return error(404, "file not found: %s" % e)
        # Docker's ResolvePath: the directory part is resolved in scope, the
        # last element is not followed unless the path ends in "/" or "/.".
        abs_path = preserve_trailing(go_join("/", path), path)
        dir_part, _, base = abs_path.rpartition("/")
        try:
            host_dir = target.jail.host(go_clean(dir_part or "/"))
            host = host_dir if base in ("", ".") else os.path.join(host_dir, base)
            st = os.lstat(host)
        except OSError:
            return error(404, "file not found: Error response from daemon: Could not "
                              "find the file %s in container %s" % (path, ident))
        if stat.S_ISDIR(st.st_mode):
            return error(400, "path is a directory, use /files/list to list contents")
        if stat.S_ISSOCK(st.st_mode):
            return error(500, "failed to read archive")   # tar skips sockets
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        f = None
        if size:
            try:
                f = os.fdopen(os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb")
            except OSError:
                return error(500, "failed to read archive")
        c.touch()
        resp = web.StreamResponse(status=200, headers={
            "Content-Disposition": "attachment; filename=%s"
                                   % go_quote(go_base(path)),
            "Content-Type": "application/octet-stream",
            "X-File-Size": str(st.st_size),
            "X-File-Mode": go_mode_string(st.st_mode),
        })
        resp.content_length = size
        emu.decorate(request, resp)
        try:
            await resp.prepare(request)
            await common.send_file(resp, f, size, CHUNK)
            await resp.write_eof()
        finally:
            if f:
                f.close()
        return resp

    async def upload(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        dest = request.query.get("path", "") or HOME + "/"
        c, err = self._container(ident)
        if err is not None:
            return err
        # ParseMultipartForm reads the whole body before FormFile("file").
        if request.content_type != "multipart/form-data":
            await _drain(request)
            return error(400, "no file uploaded: request Content-Type isn't "
                              "multipart/form-data")
        tmp = tempfile.NamedTemporaryFile(dir=emu.work, delete=False)
        try:
            filename, size, problem = await self._receive(request, tmp)
            if problem:
                return error(400, "no file uploaded: " + problem)
            if size > MAX_UPLOAD:
                return error(400, "file too large (max 100MB)")
            filename = go_base(filename)
            if filename in (".", "..") or "/" in filename:
                return error(400, "invalid filename")
            try:
                target = emu.docker_get(ident)
                await self._extract(target, ident, dest, filename, tmp.name)
            except DockerError as e:
                return error(500, "failed to copy to container: %s" % e)
            c.touch()
            return json_response(GoMap(message="file uploaded successfully",
                                       filename=filename,
                                       path=go_join(dest, filename), size=size))
        finally:
            try:
                os.unlink(tmp.name)
            except OSError:
                pass

    async def _receive(self, request, tmp):
        """Read every part; the first part named "file" with a file name is
        stored in `tmp`.  Returns (file name, size, problem text)."""
        filename, size = None, 0
        try:
            reader = await request.multipart()
            with tmp:
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    name = part.filename
                    if part.name == "file" and name and filename is None:
                        filename = name
                        while True:
                            chunk = await part.read_chunk(CHUNK)
                            if not chunk:
                                break
                            tmp.write(chunk)
                            size += len(chunk)
                    else:
                        await part.release()
        except (AssertionError, ValueError, KeyError, RuntimeError) as e:
            return None, 0, "multipart: NextPart: %s" % (e or "EOF")
        if filename is None:
            return None, 0, "http: no such file"
        return filename, size, None

    async def _extract(self, target, ident, dest, filename, src):
        """Docker's PUT /archive of a one-file tar (mode 0644, uid 0)."""
        abs_path = preserve_trailing(go_join("/", dest), dest)
        try:
            host_dir = target.jail.host(go_clean(abs_path))
            st = os.lstat(host_dir)
        except OSError:
            raise DockerError(404, "Could not find the file %s in container %s"
                              % (dest, ident))
        if not stat.S_ISDIR(st.st_mode):
            raise DockerError(400, "extraction point is not a directory")
        final = os.path.join(host_dir, filename)
        try:
            old = os.lstat(final)
        except OSError:
            old = None
        if old is not None and stat.S_ISDIR(old.st_mode):
            raise DockerError(500, "cannot overwrite directory %s with non-directory %s"
                              % (go_quote(target.jail.inside(final)),
                                 go_quote(target.jail.inside(host_dir))))
        # Unpack removes what is there and creates a new file; the tar header
        # has ModTime = now rounded to the second, mode 0644, uid/gid 0.
        mtime = round(time.time())
        os.chmod(src, 0o644)
        os.chown(src, 0, 0)
        os.utime(src, (mtime, mtime))
        if old is not None:
            os.unlink(final)
        try:
            os.rename(src, final)
        except OSError:
            shutil.copyfile(src, final)
            os.chmod(final, 0o644)
            os.utime(final, (mtime, mtime))


async def _drain(request):
    while await request.content.read(CHUNK):
        pass


# ====================================================== exec handler

class ExecApi:
    def __init__(self, emu):
        self.emu = emu
        self.background = set()

    async def exec(self, request):
        emu = self.emu
        ident = request.match_info["id"]
        try:
            req = go_unmarshal(await request.read(), EXEC_SCHEMA,
                               "handlers.ExecRequest", whole=False)
        except GoDecodeError as e:
            return error(400, "invalid body: %s" % e)
        argv = req.get("cmd") or []
        if not argv:
            command = go_trim_space(req.get("command", ""))
            if command == "":
                return error(400, "command or cmd is required")
            argv = ["sh", "-c", command]
        timeout = req.get("timeout_seconds", 0)
        if timeout <= 0:
            timeout = EXEC_DEFAULT_TIMEOUT
        timeout = min(timeout, EXEC_MAX_TIMEOUT)
        c = emu.mgr_get(ident)
        if c is None:
            return error(404, "container not found")
        if c.m_status.lower() != "running":
            return error(400, "container is not running")

        raw = bytearray()
        proc = None
        try:
            proc = await emu.docker_exec(
                c, argv, env=req.get("env"), workdir=go_trim_space(req.get("workdir", "")),
                user=go_trim_space(req.get("user", "")), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except DockerError as e:
            return error(500, "failed to create exec: %s" % e)
        except _ExecStartError as e:
            raw += mux_frame(1, ("OCI runtime exec failed: exec failed: unable to "
                                 "start container process: %s: unknown\r\n" % e).encode())
        code = 126
        truncated = False
        if proc is not None:
            full = asyncio.Event()

            async def pump(stream, kind):
                while not full.is_set():
                    chunk = await stream.read(65536)
                    if not chunk:
                        return
                    raw.extend(mux_frame(kind, chunk))
                    if len(raw) > EXEC_MAX_OUTPUT:
                        full.set()
            pumps = asyncio.gather(pump(proc.stdout, 1), pump(proc.stderr, 2))
            pumps.add_done_callback(_retrieve)
            waiter = asyncio.ensure_future(full.wait())
            done, _ = await asyncio.wait({pumps, waiter}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not done:
                # Deadline: what was read so far; the process keeps running.
                pumps.cancel()
                self._leave_running(c, proc)
                out, err, combined = demux_docker_stream(bytes(raw))
                return json_response(GoMap({"error": "exec timed out",
                                            "timeout_s": timeout, "exit_code": -1,
                                            "output": combined, "stdout": out,
                                            "stderr": err}), 504)
            if full.is_set():
                pumps.cancel()
                truncated = True
            try:
                # ExecInspect right after the stream ended: a process that
                # closed its output but has not exited reports 0.
                code = exit_code(await asyncio.wait_for(proc.wait(), 0.2))
                c.runtime.forget(proc)
            except asyncio.TimeoutError:
                code = 0
                self._leave_running(c, proc)
        if len(raw) > EXEC_MAX_OUTPUT:
            del raw[EXEC_MAX_OUTPUT:]
        out, err, combined = demux_docker_stream(bytes(raw))
        c.touch()
        body = GoMap(stdout=out, stderr=err, output=combined, exit_code=code,
                     command=req.get("command", ""))
        if req.get("cmd"):
            body["cmd"] = req["cmd"]
        if truncated:
            body["truncated"] = True
        return json_response(body)

    def _leave_running(self, c, proc):
        """The attach is gone but the process runs on; keep its pipes drained."""
        async def drain():
            try:
                await asyncio.gather(_discard(proc.stdout), _discard(proc.stderr))
                await proc.wait()
            finally:
                c.runtime.forget(proc)
        t = asyncio.ensure_future(drain())
        self.background.add(t)
        t.add_done_callback(self.background.discard)


def _retrieve(fut):
    """Consume a future's outcome (a cancelled gather must not be logged)."""
    if not fut.cancelled():
        fut.exception()


async def _discard(stream):
    while await stream.read(65536):
        pass

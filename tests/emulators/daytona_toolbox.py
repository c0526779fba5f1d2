"""The toolbox (proxy + daemon) of the Daytona emulator (daytona.py): the
/files routes and the home and version routes; the process routes come
from ToolboxProcess (daytona_process.py)."""

import asyncio
import errno
import fnmatch
import json
import os
import re
import shutil
import stat
import tempfile
import time
from email.utils import formatdate

from aiohttp import web

import common
from daytona_base import (CHUNK, DAEMON_VERSION, HOME, empty, file_info,
                          go_base, go_rfc3339nano, json_response,
                          open_for_reading, os_error_status)
from daytona_process import ToolboxProcess


# ================================================================ toolbox

GO_MIME = {".avif": "image/avif", ".css": "text/css; charset=utf-8",
           ".gif": "image/gif", ".htm": "text/html; charset=utf-8",
           ".html": "text/html; charset=utf-8", ".jpeg": "image/jpeg",
           ".jpg": "image/jpeg", ".js": "text/javascript; charset=utf-8",
           ".json": "application/json", ".mjs": "text/javascript; charset=utf-8",
           ".pdf": "application/pdf", ".png": "image/png",
           ".svg": "image/svg+xml", ".wasm": "application/wasm",
           ".webp": "image/webp", ".xml": "text/xml; charset=utf-8"}
BULK_BOUNDARY = "DAYTONA-FILE-BOUNDARY"


def rfc5987(s):
    keep = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
               b"!#$&+-.^_`|~")
    return "".join(chr(b) if b in keep else "%%%02X" % b for b in s.encode())


def latin1_filename(s):
    s = s.replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\r", "").replace("\n", "").replace("\0", "")
    return "".join("_" if ord(c) > 0xFF or ord(c) < 0x20 or ord(c) == 0x7F else c
                   for c in s)


def content_disposition(form_name, path):
    return 'form-data; name="%s"; filename="%s"; filename*=utf-8\'\'%s' % (
        form_name, latin1_filename(path), rfc5987(path))


class Toolbox(ToolboxProcess):
    def __init__(self, emu):
        self.emu = emu

    # ---------------------------------------------------------- files

    async def list_files(self, request):
        sb = request["sandbox"]
        path = request.query.get("path") or "."
        try:
            dir_host = sb.jail.host(path)
            names = sorted(os.listdir(dir_host))
        except OSError as e:
            return empty(os_error_status(e))
        infos = []
        base = path.rstrip("/") or "/"
        for name in names:
            try:
                st = sb.jail.stat(base + "/" + name if base != "/" else "/" + name)
            except OSError:
                continue          # the daemon skips what it cannot stat
            infos.append(file_info(name, st))
        return json_response(infos)

    async def info(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        try:
            st = sb.jail.stat(path)
        except OSError as e:
            return empty(os_error_status(e))
        return json_response(file_info(go_base(path), st))

    async def download(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        try:
            host = sb.jail.host(path)
            f = open_for_reading(host)
        except OSError as e:
            return empty(os_error_status(e))
        with f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                return empty(400)
            name = go_base(path)
            headers = {
                "Content-Description": "File Transfer",
                "Content-Type": "application/octet-stream",
                "Content-Disposition": 'attachment; filename="%s"; filename*=utf-8\'\'%s'
                                       % (latin1_filename(name), rfc5987(name)),
                "Content-Transfer-Encoding": "binary",
                "Expires": "0", "Cache-Control": "must-revalidate",
                "Pragma": "public", "Accept-Ranges": "bytes",
                "Last-Modified": formatdate(st.st_mtime, usegmt=True),
            }
            size = st.st_size
            start, length, status = 0, size, 200
            rng = request.headers.get("Range", "")
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if rng and m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = int(m.group(2)) if m.group(2) else size - 1
                else:
                    start = max(0, size - int(m.group(2)))
                    end = size - 1
                end = min(end, size - 1)
                if start >= size or end < start:
                    headers["Content-Range"] = "bytes */%d" % size
                    return web.Response(status=416, headers=headers)
                length, status = end - start + 1, 206
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
            resp = web.StreamResponse(status=status, headers=headers)
            resp.content_length = length
            await resp.prepare(request)
            f.seek(start)
            await common.send_file(resp, f, length, CHUNK)
            await resp.write_eof()
            return resp

    async def upload(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            return empty(400)
        if not path:
            await _drain(request)
            return empty(400)
        # Like gin, receive the whole form before touching the destination.
        tmp = tempfile.NamedTemporaryFile(dir=self.emu.work, delete=False)
        found = False
        try:
            with tmp:
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    if part.name == "file" and part.filename is not None and not found:
                        found = True
                        while True:
                            chunk = await part.read_chunk(CHUNK)
                            if not chunk:
                                break
                            tmp.write(chunk)
                    else:
                        await part.release()
            if not found:
                return empty(400)
            try:
                dest = sb.jail.mkdir_parent(path, 0o750)
                await asyncio.get_running_loop().run_in_executor(
                    None, copy_into, tmp.name, dest)
            except OSError:
                return empty(400)
            return web.Response(status=200)
        finally:
            os.unlink(tmp.name)

    async def bulk_upload(self, request):
        sb = request["sandbox"]
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            await _drain(request)
            return json_response({"errors": ["invalid multipart form"]}, 400)
        dests, errors, files = {}, [], []
        while True:
            try:
                part = await reader.next()
            except ValueError as e:
                errors.append("reading part: %s" % e)
                break
            if part is None:
                break
            name = part.name or ""
            idx = name[len("files["):] if name.startswith("files[") else name
            if name.endswith(".path"):
                idx = idx[:-len("].path")]
                dest = (await part.text()).strip()
                if not dest:
                    errors.append("path[%s]: empty path" % idx)
                else:
                    dests[idx] = dest
                continue
            if not name.endswith(".file"):
                await part.release()
                continue
            idx = idx[:-len("].file")]
            dest = dests.get(idx)
            if dest is None:
                errors.append("file[%s]: missing .path metadata" % idx)
                await part.release()
                continue
            try:
                out = open(sb.jail.mkdir_parent(dest, 0o755), "wb")
            except OSError as e:
                errors.append("%s: create: %s" % (dest, e.strerror))
                await part.release()
                continue
            n = 0
            with out:
                while True:
                    chunk = await part.read_chunk(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    n += len(chunk)
            files.append({"path": dest, "bytes": n})
        if errors:
            return json_response({"errors": errors, "files": files}, 400)
        return json_response({"files": files})

    async def bulk_download(self, request):
        sb = request["sandbox"]
        try:
            body = json.loads(await request.text())
            paths = body["paths"]
            assert isinstance(paths, list) and paths
        except Exception:  # noqa: BLE001 - every malformed body is one error
            return json_response(
                {"error": 'request body must be {"paths": [ ... ]} and non-empty'}, 400)
        resp = web.StreamResponse(headers={
            "Content-Type": "multipart/form-data; boundary=%s" % BULK_BOUNDARY})
        await resp.prepare(request)
        first = True
        for path in paths:
            sep = ("--%s\r\n" if first else "\r\n--%s\r\n") % BULK_BOUNDARY
            first = False
            f, err = self._open_for_download(sb, path, request)
            if err is not None:
                await resp.write((sep +
                                  "Content-Disposition: %s\r\n"
                                  "Content-Type: application/json; charset=utf-8\r\n\r\n"
                                  % content_disposition("error", str(path))).encode()
                                 + json.dumps(err).encode())
                continue
            with f:
                size = os.fstat(f.fileno()).st_size
                ctype = GO_MIME.get(os.path.splitext(path)[1].lower(),
                                    "application/octet-stream")
                await resp.write((sep +
                                  "Content-Disposition: %s\r\nContent-Length: %d\r\n"
                                  "Content-Type: %s\r\n\r\n"
                                  % (content_disposition("file", path), size, ctype)).encode())
                while True:
                    chunk = f.read(CHUNK)
                    if not chunk:
                        break
                    await resp.write(chunk)
        await resp.write(("\r\n--%s--\r\n" % BULK_BOUNDARY).encode())
        await resp.write_eof()
        return resp

    @staticmethod
    def _open_for_download(sb, path, request):
        def err(status, code, message):
            return None, {"statusCode": status, "message": message, "code": code,
                          "timestamp": go_rfc3339nano(time.time_ns()),
                          "path": path, "method": request.method}
        if not isinstance(path, str) or not path:
            return err(400, "INVALID_FILE_PATH", "invalid file path: path is empty")
        try:
            f = open_for_reading(sb.jail.host(path))
        except IsADirectoryError:
            return err(400, "INVALID_FILE_PATH",
                       "invalid file path: path points to a directory: %s" % path)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return err(404, "FILE_NOT_FOUND", "file not found: %s" % path)
            if e.errno in (errno.EACCES, errno.EPERM):
                return err(403, "FILE_ACCESS_DENIED", "permission denied: %s" % path)
            return err(500, "FILE_READ_FAILED", "failed to open file: %s" % e.strerror)
        return f, None

    async def folder(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        mode = request.query.get("mode", "")
        perm = 0o755
        if mode:
            if not re.fullmatch(r"[0-7]+", mode) or int(mode, 8) > 0xFFFFFFFF:
                return empty(400)
            perm = int(mode, 8)
        try:
            sb.jail.mkdir_all(path, perm)
        except OSError:
            return empty(400)
        return web.Response(status=201)

    async def delete(self, request):
        sb = request["sandbox"]
        path = request.query.get("path", "")
        if not path:
            return empty(400)
        recursive = request.query.get("recursive") == "true"
        try:
            st = sb.jail.stat(path)          # os.Stat: follows a last symlink
        except OSError as e:
            return empty(os_error_status(e))
        if stat.S_ISDIR(st.st_mode) and not recursive:
            return empty(400)
        try:
            target = sb.jail.host(path, follow=False)   # remove the link itself
            if target == sb.dir:
                raise OSError(errno.EBUSY, "refusing to remove the sandbox root")
            if os.path.isdir(target) and not os.path.islink(target):
                if recursive:
                    shutil.rmtree(target)
                else:
                    os.rmdir(target)
            else:
                os.unlink(target)
        except OSError:
            return empty(400)
        return web.Response(status=204)

    async def move(self, request):
        sb = request["sandbox"]
        src = request.query.get("source", "")
        dst = request.query.get("destination", "")
        if not src or not dst:
            return empty(400)
        try:
            sb.jail.stat(src)
        except OSError as e:
            return empty(os_error_status(e))
        try:
            parent = sb.jail.host(dst, follow=False)
            os.stat(os.path.dirname(parent))
        except OSError as e:
            return empty(os_error_status(e))
        try:
            sb.jail.stat(dst)
            return empty(409)
        except OSError:
            pass
        try:
            src_host = sb.jail.host(src, follow=False)
            if src_host == sb.dir:
                raise OSError(errno.EBUSY, "cannot move the sandbox root")
            os.rename(src_host, sb.jail.host(dst, follow=False))
        except OSError:
            return empty(400)
        return web.Response(status=200)

    async def permissions(self, request):
        sb = request["sandbox"]
        q = request.query
        path = q.get("path", "")
        if not path:
            return empty(400)
        try:
            host = sb.jail.host(path)
            os.stat(host)
        except OSError as e:
            return empty(os_error_status(e))
        mode = q.get("mode", "")
        if mode:
            if not re.fullmatch(r"[0-7]+", mode):
                return empty(400)
            try:
                # Go's os.FileMode(n) keeps only the permission bits of n.
                os.chmod(host, int(mode, 8) & 0o777)
            except OSError:
                return empty(400)
        owner, group = q.get("owner", ""), q.get("group", "")
        if owner or group:
            uid = gid = -1
            if owner:
                uid = int(owner) if re.fullmatch(r"-?\d+", owner) else \
                    sb.jail.lookup_id("/etc/passwd", owner)
                if uid is None:
                    return empty(400)
            if group:
                gid = int(group) if re.fullmatch(r"-?\d+", group) else \
                    sb.jail.lookup_id("/etc/group", group)
                if gid is None:
                    return empty(400)
            try:
                os.chown(host, uid, gid)
            except OSError:
                return empty(400)
        return web.Response(status=200)

    async def search(self, request):
        sb = request["sandbox"]
        path, pattern = request.query.get("path", ""), request.query.get("pattern", "")
        if not path or not pattern:
            return empty(400)
        matches = []
        for shown, name, _host, _isdir in _walk(sb, path):
            if fnmatch.fnmatchcase(name, pattern):
                matches.append(shown)
        return json_response({"files": matches})

    async def find(self, request):
        sb = request["sandbox"]
        path, pattern = request.query.get("path", ""), request.query.get("pattern", "")
        if not path or not pattern:
            return empty(400)
        out = []
        for shown, _name, host, isdir in _walk(sb, path):
            if isdir:
                continue
            try:
                with open_for_reading(host) as f:
                    data = f.read(4 << 20)
            except OSError:
                continue
            if b"\0" in data[:8192]:
                continue
            for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                if pattern in line:
                    out.append({"file": shown, "line": n, "content": line})
        return json_response(out)

    async def home_dir(self, request):
        return json_response({"dir": HOME})

    async def version(self, request):
        return json_response({"version": DAEMON_VERSION})


async def _drain(request):
    while await request.content.read(CHUNK):
        pass


def _walk(sb, path):
    """(shown path, name, host path, is dir) for everything under `path`."""
    try:
        top = sb.jail.host(path)
    except OSError:
        return
    shown_top = path.rstrip("/") or "/"
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        shown_dir = shown_top if rel == "." else shown_top.rstrip("/") + "/" + rel
        if rel == ".":
            yield shown_top, go_base(path), dirpath, True
        for n in dirnames:
            yield shown_dir.rstrip("/") + "/" + n, n, os.path.join(dirpath, n), True
        for n in filenames:
            yield shown_dir.rstrip("/") + "/" + n, n, os.path.join(dirpath, n), False


def copy_into(src, dest):
    """os.Create(dest) + io.Copy: truncate in place, keep inode and mode."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with open(src, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset < size:
                n = os.sendfile(fd, f.fileno(), offset, min(size - offset, 1 << 24))
                if n == 0:
                    break
                offset += n
    finally:
        os.close(fd)

/* SPDX-License-Identifier: MIT */
/*
 * Vtrix: root/ over the sandbox's JSON-RPC socket.  See vtrix.c.
 *
 * Vtrix's file methods know sizes and times but no modes, owners, link
 * counts or symlinks (list_files and stat), so metadata comes from one
 * command in the sandbox: GNU find -printf, NUL-separated, carried as
 * base64 (exec output is text; base64 keeps names that are not UTF-8).
 * One exec per getattr, one per directory listing.
 *
 * Contents move whole and byte-exact: read_stream (base64 chunks, never
 * `read`, which truncates at 200 KB and mangles binary data) into a
 * staged copy at open, write_binary of the whole copy at close or fsync.
 * JSON carries paths as UTF-8 text, so a path that is not UTF-8 moves
 * through commands instead (base64 in, a temporary file and mv out).
 *
 * What the methods lack (delete, rename, chmod, chown, symlinks,
 * truncate, utimens, mkdir, link, statfs) runs as a command; its exit
 * code carries the errno, and every name is single-quoted (the whole
 * script base64-wrapped when it is not UTF-8).
 */
#include "vtrix.h"

#define RUN_OUTPUT_MAX (VX_LISTING_MAX)
#define STREAM_CHUNK (256 * 1024)
#define RUN_TIMEOUT_S 120

/* ---- commands for what the methods lack ---- */

int vx_run(struct remote *r, const char *box, const char *what, const char *script,
	   int flags, struct strbuf *out)
{
	struct vx *vx = (struct vx *)r;
	struct strbuf cmd = STRBUF_INIT(RUN_OUTPUT_MAX);
	struct vx_call_opts o = { 0 };
	cJSON *params = cJSON_CreateObject(), *res = NULL;
	const char *output;
	double code = -1;
	int rc;

	if (!params)
		return -ENOMEM;
	/* JSON text is UTF-8: other bytes travel base64-wrapped. */
	if (!json_utf8_valid(script) && (rc = sh_wrap_base64(&cmd, NULL, script)))
		goto out;
	cJSON_AddStringToObject(params, "command", cmd.len ? cmd.buf : script);
	cJSON_AddNumberToObject(params, "timeout", RUN_TIMEOUT_S);
	o.idle_ms = vx->r.timeout_ms;
	rc = vx_call_json(vx, &res, box, "exec", params, &o);
	if (rc) {
		rc = vx_not_active(vx, box, rc);
		goto out;
	}
	output = json_str(res, "output");
	if (!json_num(res, "exit_code", &code)) {
		sbx_failf("vtrix: %s: no exit code in the answer", what);
		rc = -EPROTO;
		goto out;
	}
	if (out && output && strbuf_add(out, output, strlen(output))) {
		rc = -EFBIG;
		goto out;
	}
	rc = sh_exit_errno(code < -1 || code > 255 ? 255 : (long)code);
	if (rc > 0) {
		sbx_failf("vtrix: %s: exit %g: %.300s", what, code, output ? output : "");
		rc = -EIO;
	}
out:
	cJSON_Delete(res);
	cJSON_Delete(params);
	strbuf_release(&cmd);
	return rc;
}

/* ---- contents (stagefile.c keeps the bookkeeping) ---- */

static int sf_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	return remote_find_stat(ctx, st, box, path);
}

struct fetch_ctx {
	struct staged *f;
	off_t off;
	unsigned char *buf;
	size_t cap;
};

/* read_stream.chunk: base64 bytes, appended to the copy. */
static int on_chunk(void *arg, const char *method, const cJSON *params)
{
	struct fetch_ctx *x = arg;
	const char *data = json_str(params, "data");
	size_t need;
	ssize_t n;
	int rc;

	if (strcmp(method, "read_stream.chunk"))
		return 0; /* read_stream.done and the like carry nothing */
	if (!data) {
		sbx_failf("vtrix: read_stream: a chunk without data");
		return -EPROTO;
	}
	need = strlen(data) / 4 * 3 + 4;
	if (need > x->cap) {
		unsigned char *b = realloc(x->buf, need);

		if (!b)
			return -ENOMEM;
		x->buf = b;
		x->cap = need;
	}
	n = b64_decode(x->buf, data, strlen(data));
	if (n < 0) {
		sbx_failf("vtrix: read_stream: a chunk that is not base64");
		return -EPROTO;
	}
	rc = stage_put(x->f, x->off, x->buf, (size_t)n);
	x->off += n;
	return rc;
}

/* Download box:path into f (locked by the caller): one read_stream. */
static int sf_fetch(void *ctx, struct staged *f, const char *box, const char *path,
		    const struct stat *remote)
{
	struct vx *vx = ctx;
	struct fetch_ctx x = { .f = f };
	struct vx_call_opts o = { .note = on_chunk, .ctx = &x };
	cJSON *params = NULL, *res = NULL;
	double total = -1;
	int rc;

	if (ftruncate(f->fd, 0))
		return -errno;
	if (!json_utf8_valid(path))
		return remote_fetch_by_script(&vx->r, f, box, path, RUN_OUTPUT_MAX);
	params = cJSON_CreateObject();
	if (!params)
		return -ENOMEM;
	cJSON_AddStringToObject(params, "path", path);
	cJSON_AddNumberToObject(params, "chunk_size", STREAM_CHUNK);
	rc = vx_call_json(vx, &res, box, "read_stream", params, &o);
	cJSON_Delete(params);
	free(x.buf);
	if (rc) {
		rc = vx_not_active(vx, box, rc);
		cJSON_Delete(res);
		return rc;
	}
	if (!json_num(res, "total_bytes", &total) || total != (double)x.off) {
		sbx_failf("vtrix: read \"%s\": %lld bytes came, %.0f announced", path,
			  (long long)x.off, total);
		rc = -EIO;
	}
	cJSON_Delete(res);
	if (!rc && ftruncate(f->fd, x.off))
		rc = -errno;
	return rc;
}

/* The params of write_binary for the copy: {"path","mode"?,"data"}, the
 * data base64 straight from the file. */
static int write_params(struct strbuf *sb, int fd, off_t size, const char *path, int mode)
{
	const size_t block = 3 * 65536;
	unsigned char *buf = malloc(block);
	cJSON *s = cJSON_CreateString(path);
	char *qpath = s ? cJSON_PrintUnformatted(s) : NULL;
	off_t off = 0;
	int rc = (!buf || !qpath) ? -ENOMEM : strbuf_addf(sb, "{\"path\":%s,", qpath);

	cJSON_Delete(s);
	free(qpath);
	if (!rc && mode >= 0)
		rc = strbuf_addf(sb, "\"mode\":%d,", mode);
	if (!rc)
		rc = strbuf_addf(sb, "\"data\":\"");
	while (!rc && off < size) {
		ssize_t n = pread(fd, buf, block, off);

		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		rc = b64_encode(sb, buf, (size_t)n);
		off += n;
	}
	free(buf);
	return rc ? rc : strbuf_addf(sb, "\"}");
}

/*
 * write_binary of the whole copy to `path` (UTF-8).  `mode` < 0: keep.
 * The message is built in place (base64 of the file, no second copy);
 * the wait for the answer allows for sending it at 1 MB/s.
 */
static int write_binary(struct vx *vx, struct staged *f, const char *box,
			const char *path, off_t size, int mode)
{
	struct strbuf msg = STRBUF_INIT(VX_WS_MESSAGE_MAX);
	struct vx_call_opts o = { 0 };
	struct vx_pending *pd;
	cJSON *res = NULL;
	double n;
	int rc = vx_msg_begin(&msg, "write_binary");

	if (!rc)
		rc = write_params(&msg, f->fd, size, path, mode);
	if (rc) {
		strbuf_release(&msg);
		if (rc != -E2BIG)
			return rc;
		sbx_failf("vtrix: \"%s\" is too big for one write_binary message "
			  "(%u MiB)",
			  path, VX_WS_MESSAGE_MAX >> 20);
		return -EFBIG;
	}
	o.idle_ms = vx->r.timeout_ms + (int)(msg.len / 1000);
	rc = vx_submit_msg(vx, &pd, box, "write_binary", &msg, &o);
	if (!rc)
		rc = vx_wait(pd, &res);
	if (rc)
		return vx_not_active(vx, box, rc);
	if (json_num(res, "bytes_written", &n) && n != (double)size) {
		sbx_failf("vtrix: write \"%s\": the server wrote %.0f bytes of %lld",
			  path, n, (long long)size);
		rc = -EIO;
	}
	cJSON_Delete(res);
	return rc;
}

/* Upload f (locked by the caller): one write_binary, whose answer means
 * the data is there.  It tells nothing of the file's mtime
 * (STAGEFILE_STAT_NONE). */
static int sf_upload(void *ctx, struct stat *remote, struct staged *f, const char *box,
		     const char *path, off_t size)
{
	struct vx *vx = ctx;
	int rc, isnew = !f->fetched;
	int mode = isnew ? (int)(f->mode & 0777) : -1;

	if (json_utf8_valid(path)) {
		rc = write_binary(vx, f, box, path, size, mode > 0 ? mode : -1);
	} else {
		/* Not UTF-8: write a temporary file, then mv it into place. */
		char tmp[96];

		snprintf(tmp, sizeof(tmp), "/tmp/.sbxfs-upload-%d-%lx-%p", (int)getpid(),
			 (unsigned long)time(NULL), (void *)f);
		rc = write_binary(vx, f, box, tmp, size, mode > 0 ? mode : 0644);
		if (!rc)
			rc = remote_runf(&vx->r, box, "write", 0, NULL,
					 isnew ? "mv -f -- %q %q 2>&1 || exit 5"
					       : "cat -- %q > %q 2>&1 || exit 5",
					 tmp, path);
		if (!isnew)
			remote_runf(&vx->r, box, "write", 0, NULL, "rm -f -- %q", tmp);
	}
	/* A mode the call cannot give (0, or setuid and the like). */
	if (!rc && isnew && (mode == 0 || (f->mode & 07000)))
		rc = remote_set_mode(&vx->r, box, path, f->mode);
	return rc;
}

const struct stagefile_ops vx_stagefile_ops = {
	.name = "vtrix",
	/* Reading costs a read_stream and an atime: touch reads nothing. */
	.flags = STAGEFILE_LAZY_WRONLY | STAGEFILE_SYMLINK_ELOOP,
	/* write_binary's answer has no mtime, and asking costs an exec. */
	.upload_stat = STAGEFILE_STAT_NONE,
	.info = sf_info,
	.fetch = sf_fetch,
	.upload = sf_upload,
};

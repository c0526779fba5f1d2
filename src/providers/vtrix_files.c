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

/* find -printf: type, mode, uid, gid, size, links, inode, m/a/c times,
 * name; NUL after each. */
#define FIND_FMT "'%y %m %U %G %s %n %i %T@ %A@ %C@ %f\\0'"

/* ---- helpers ---- */

/* script = fmt with each %q replaced by the next of a, b, quoted. */
static int script_of(struct strbuf *sb, const char *fmt, const char *a, const char *b)
{
	const char *args[2] = { a, b };
	int i = 0, rc = 0;

	for (; *fmt && !rc; fmt++) {
		if (fmt[0] == '%' && fmt[1] == 'q' && i < 2) {
			rc = sh_quote(sb, args[i++]);
			fmt++;
		} else {
			rc = strbuf_add(sb, fmt, 1);
		}
	}
	return rc;
}

/* ---- commands for what the methods lack ---- */

int vx_run(struct vx *vx, const char *box, const char *what, const char *script,
	   struct strbuf *out)
{
	struct strbuf cmd = STRBUF_INIT(RUN_OUTPUT_MAX);
	struct vx_call_opts o = { 0 };
	cJSON *params = cJSON_CreateObject(), *res = NULL;
	const char *output;
	double code = -1;
	int rc;

	if (!params)
		return -ENOMEM;
	/* JSON text is UTF-8: other bytes travel base64-wrapped. */
	if (!vx_utf8_valid(script) && sh_wrap_base64(&cmd, NULL, script)) {
		rc = -ENOMEM;
		goto out;
	}
	cJSON_AddStringToObject(params, "command", cmd.len ? cmd.buf : script);
	cJSON_AddNumberToObject(params, "timeout", RUN_TIMEOUT_S);
	o.idle_ms = vx->timeout_ms;
	rc = vx_call_json(vx, &res, box, "exec", params, &o);
	if (rc) {
		rc = vx_not_active(vx, box, rc);
		goto out;
	}
	output = vx_jstr(res, "output");
	if (!vx_jnum(res, "exit_code", &code)) {
		sbx_failf("vtrix: %s: no exit code in the answer", what);
		rc = -EPROTO;
		goto out;
	}
	if (out && output && strbuf_add(out, output, strlen(output))) {
		rc = -EFBIG;
		goto out;
	}
	if (code == 0) {
		rc = 0;
	} else if (code == ENOENT || code == EEXIST || code == ENOTDIR ||
		   code == EISDIR || code == ENOTEMPTY || code == EPERM ||
		   code == EACCES || code == EINVAL || code == ELOOP) {
		rc = -(int)code;
	} else {
		sbx_failf("vtrix: %s: exit %g: %.300s", what, code, output ? output : "");
		rc = -EIO;
	}
out:
	cJSON_Delete(res);
	cJSON_Delete(params);
	strbuf_release(&cmd);
	return rc;
}

static int run_fmt(struct vx *vx, const char *box, const char *what, const char *fmt,
		   const char *a, const char *b, struct strbuf *out)
{
	struct strbuf s = STRBUF_INIT(1u << 20);
	int rc = script_of(&s, fmt, a, b) ? -ENOMEM : vx_run(vx, box, what, s.buf, out);

	strbuf_release(&s);
	return rc;
}

/* ---- metadata ---- */

/* Decode the base64 output of a listing script into `raw` (caller frees). */
static int decode_output(const struct strbuf *out, char **raw, size_t *len)
{
	ssize_t n;

	*raw = malloc(out->len / 4 * 3 + 4);
	if (!*raw)
		return -ENOMEM;
	n = vx_b64_decode((unsigned char *)*raw, out->buf ? out->buf : "", out->len);
	if (n < 0) {
		free(*raw);
		*raw = NULL;
		sbx_failf("vtrix: a listing came back garbled (not base64)");
		return -EPROTO;
	}
	(*raw)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* lstat(2) of path in the sandbox by find(1). */
static int stat_call(struct vx *vx, struct stat *st, const char *box, const char *path)
{
	struct strbuf out = STRBUF_INIT(1u << 20);
	const char *name;
	char *raw = NULL;
	size_t len;
	int rc = run_fmt(vx, box, "stat",
			 "p=%q; [ -e \"$p\" ] || [ -h \"$p\" ] || exit 2; "
			 "find \"$p\" -maxdepth 0 -printf " FIND_FMT
			 " 2>/dev/null | base64",
			 path, NULL, &out);

	if (!rc)
		rc = decode_output(&out, &raw, &len);
	if (!rc &&
	    (len == 0 || raw[len - 1] != '\0' || vx_parse_record(raw, st, &name))) {
		sbx_failf("vtrix: stat \"%s\": an answer that does not parse", path);
		rc = -EPROTO;
	}
	free(raw);
	strbuf_release(&out);
	return rc;
}

int vx_getattr(struct sbx_provider *p, struct stat *out, const char *box,
	       const char *path)
{
	struct vx *vx = VX(p);

	if (!stage_stat(vx->stage, box, path, out))
		return 0;
	return stat_call(vx, out, box, path);
}

int vx_unsaved(struct sbx_provider *p, struct stat *out, const char *box,
	       const char *path)
{
	return stage_stat(VX(p)->stage, box, path, out);
}

int vx_readdir(struct sbx_provider *p, const char *box, const char *path,
	       sbx_dirent_fn fn, void *ctx)
{
	struct vx *vx = VX(p);
	struct strbuf out = STRBUF_INIT(RUN_OUTPUT_MAX);
	char *raw = NULL;
	size_t len, off;
	int rc = run_fmt(vx, box, "list",
			 "d=%q; [ -e \"$d\" ] || exit 2; [ -d \"$d\" ] || exit 20; "
			 "cd -- \"$d\" 2>/dev/null || exit 13; "
			 "find . -mindepth 1 -maxdepth 1 -printf " FIND_FMT
			 " 2>/dev/null | base64",
			 path, NULL, &out);

	if (!rc)
		rc = decode_output(&out, &raw, &len);
	for (off = 0; !rc && off < len;) {
		char *rec = raw + off;
		size_t n = strlen(rec);
		const char *name;
		struct stat st;

		if (off + n >= len)
			break; /* a record cut short */
		off += n + 1;
		if (vx_parse_record(rec, &st, &name) || !sbx_entry_name_valid(name)) {
			sbx_debug("vtrix: %s:%s: skipped an entry that does not parse",
				  box, path);
			continue;
		}
		if (fn(ctx, name, &st))
			break;
	}
	free(raw);
	strbuf_release(&out);
	return rc;
}

int vx_readlink(struct sbx_provider *p, char *buf, size_t size, const char *box,
		const char *path)
{
	struct vx *vx = VX(p);
	struct strbuf out = STRBUF_INIT(1u << 20);
	char *raw = NULL;
	size_t len;
	int rc = run_fmt(vx, box, "readlink",
			 "p=%q; [ -h \"$p\" ] || { [ -e \"$p\" ] && exit 22; exit 2; }; "
			 "t=$(readlink -n -- \"$p\"; echo x) || exit 5; "
			 "printf %s \"${t%x}\" | base64",
			 path, NULL, &out);

	if (!rc)
		rc = decode_output(&out, &raw, &len);
	if (!rc && (len == 0 || strlen(raw) != len)) {
		sbx_failf("vtrix: readlink \"%s\": a bad answer", path);
		rc = -EPROTO;
	}
	if (!rc && len >= size)
		rc = -ENAMETOOLONG;
	if (!rc)
		memcpy(buf, raw, len + 1);
	free(raw);
	strbuf_release(&out);
	return rc;
}

/* Opens go through stagefile.c, with the transfers below. */
int vx_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *box,
	    const char *path, int flags, mode_t mode, const struct stat *known)
{
	return stagefile_open(&VX(p)->files, fh, st, box, path, flags, mode, known);
}

/* ---- contents (stagefile.c keeps the bookkeeping) ---- */

static int sf_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	return stat_call(ctx, st, box, path);
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
	const char *data = vx_jstr(params, "data");
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
	n = vx_b64_decode(x->buf, data, strlen(data));
	if (n < 0) {
		sbx_failf("vtrix: read_stream: a chunk that is not base64");
		return -EPROTO;
	}
	rc = stage_reserve(x->f, x->off + n);
	if (rc) {
		sbx_failf("vtrix: read_stream: the file does not fit in cache_max");
		return rc;
	}
	if (n && pwrite(x->f->fd, x->buf, (size_t)n, x->off) != n) {
		rc = -errno;
		sbx_failf("vtrix: read_stream: cannot write the local copy: %s",
			  strerror(errno));
		return rc ? rc : -EIO;
	}
	x->off += n;
	return 0;
}

/* A path that is not UTF-8 cannot be a JSON string: fetch through a
 * command (base64 out). */
static int fetch_by_command(struct vx *vx, struct staged *f, const char *box,
			    const char *path)
{
	struct strbuf out = STRBUF_INIT(RUN_OUTPUT_MAX);
	char *raw = NULL;
	size_t len;
	int rc = run_fmt(vx, box, "read", "base64 < %q 2>/dev/null || exit 2", path, NULL,
			 &out);

	if (!rc)
		rc = decode_output(&out, &raw, &len);
	if (!rc)
		rc = stage_reserve(f, (off_t)len);
	if (!rc && len && pwrite(f->fd, raw, len, 0) != (ssize_t)len)
		rc = -EIO;
	if (!rc && ftruncate(f->fd, (off_t)len))
		rc = -errno;
	free(raw);
	strbuf_release(&out);
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
	if (!vx_utf8_valid(path))
		return fetch_by_command(vx, f, box, path);
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
	if (!vx_jnum(res, "total_bytes", &total) || total != (double)x.off) {
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
		rc = sh_base64(sb, buf, (size_t)n);
		off += n;
	}
	free(buf);
	return rc ? rc : strbuf_addf(sb, "\"}");
}

static int set_mode(struct vx *vx, const char *box, const char *path, mode_t mode);

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
	o.idle_ms = vx->timeout_ms + (int)(msg.len / 1000);
	rc = vx_submit_msg(vx, &pd, box, "write_binary", &msg, &o);
	if (!rc)
		rc = vx_wait(pd, &res);
	if (rc)
		return vx_not_active(vx, box, rc);
	if (vx_jnum(res, "bytes_written", &n) && n != (double)size) {
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

	if (vx_utf8_valid(path)) {
		rc = write_binary(vx, f, box, path, size, mode > 0 ? mode : -1);
	} else {
		/* Not UTF-8: write a temporary file, then mv it into place. */
		char tmp[96];

		snprintf(tmp, sizeof(tmp), "/tmp/.sbxfs-upload-%d-%lx-%p", (int)getpid(),
			 (unsigned long)time(NULL), (void *)f);
		rc = write_binary(vx, f, box, tmp, size, mode > 0 ? mode : 0644);
		if (!rc)
			rc = run_fmt(vx, box, "write",
				     isnew ? "mv -f -- %q %q 2>&1 || exit 5"
					   : "cat -- %q > %q 2>&1 || exit 5",
				     tmp, path, NULL);
		if (!isnew)
			run_fmt(vx, box, "write", "rm -f -- %q", tmp, NULL, NULL);
	}
	/* A mode the call cannot give (0, or setuid and the like). */
	if (!rc && isnew && (mode == 0 || (f->mode & 07000)))
		rc = set_mode(vx, box, path, f->mode);
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

/* ---- namespace and metadata, as commands ---- */

int vx_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	char m[8];

	snprintf(m, sizeof(m), "%04o", (unsigned)(mode & 07777));
	return run_fmt(VX(p), box, "mkdir",
		       "p=%q; { [ -e \"$p\" ] || [ -h \"$p\" ]; } && exit 17; "
		       "[ -d \"${p%/*}/\" ] || exit 2; "
		       "mkdir -m %q -- \"$p\" 2>&1 || exit 5",
		       path, m, NULL);
}

int vx_unlink(struct sbx_provider *p, const char *box, const char *path)
{
	struct vx *vx = VX(p);
	int rc = run_fmt(vx, box, "unlink",
			 "p=%q; [ -e \"$p\" ] || [ -h \"$p\" ] || exit 2; "
			 "[ -d \"$p\" ] && ! [ -h \"$p\" ] && exit 21; "
			 "rm -f -- \"$p\" 2>&1 || exit 5",
			 path, NULL, NULL);

	/* A file created and still open is not on the server yet. */
	if ((!rc || rc == -ENOENT) && stage_unlink(vx->stage, box, path))
		rc = 0;
	return rc;
}

int vx_rmdir(struct sbx_provider *p, const char *box, const char *path)
{
	return run_fmt(VX(p), box, "rmdir",
		       "d=%q; [ -h \"$d\" ] && exit 20; "
		       "[ -d \"$d\" ] || { [ -e \"$d\" ] && exit 20; exit 2; }; "
		       "rmdir -- \"$d\" 2>/dev/null && exit 0; "
		       "[ -n \"$(ls -A -- \"$d\" 2>/dev/null)\" ] && exit 39; exit 5",
		       path, NULL, NULL);
}

int vx_rename(struct sbx_provider *p, const char *box, const char *from, const char *to,
	      unsigned flags)
{
	struct vx *vx = VX(p);
	int rc;

	if (flags & ~RENAME_NOREPLACE) {
		sbx_failf("vtrix: rename cannot exchange two files");
		return -EINVAL;
	}
	rc = stagefile_flush_pending(&vx->files, box, from);
	if (rc)
		return rc;
	rc = run_fmt(
		vx, box, "rename",
		(flags & RENAME_NOREPLACE)
			? "a=%q; b=%q; [ -e \"$a\" ] || [ -h \"$a\" ] || exit 2; "
			  "{ [ -e \"$b\" ] || [ -h \"$b\" ]; } && exit 17; " SH_RENAME_AB
			  " || exit 5"
			: "a=%q; b=%q; [ -e \"$a\" ] || [ -h \"$a\" ] || exit 2; "
			  "ad=0; [ -d \"$a\" ] && ! [ -h \"$a\" ] && ad=1; "
			  "if [ -d \"$b\" ] && ! [ -h \"$b\" ]; then "
			  "[ $ad = 1 ] || exit 21; "
			  "[ -n \"$(ls -A -- \"$b\")\" ] && exit 39; "
			  "elif [ -e \"$b\" ] || [ -h \"$b\" ]; then "
			  "[ $ad = 1 ] && exit 20; fi; " SH_RENAME_AB " || exit 5",
		from, to, NULL);
	if (!rc)
		stage_rename(vx->stage, box, from, to);
	return rc;
}

static int set_mode(struct vx *vx, const char *box, const char *path, mode_t mode)
{
	char m[8];

	/* Five digits: GNU chmod keeps a directory's setuid and setgid bits
	 * for a four-digit mode. */
	snprintf(m, sizeof(m), "0%04o", (unsigned)(mode & 07777));
	return run_fmt(vx, box, "chmod",
		       "p=%q; [ -e \"$p\" ] || [ -h \"$p\" ] || exit 2; "
		       "chmod %q -- \"$p\" 2>&1 || exit 5",
		       path, m, NULL);
}

int vx_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	struct vx *vx = VX(p);
	struct staged *f;
	int rc = stagefile_flush_pending(&vx->files, box, path);

	if (!rc)
		rc = set_mode(vx, box, path, mode);
	/* An open copy reports the new mode and keeps it on upload. */
	if (!rc && (f = stage_lookup(vx->stage, box, path))) {
		pthread_mutex_lock(&f->lock);
		f->mode = (f->mode & S_IFMT) | (mode & 07777);
		pthread_mutex_unlock(&f->lock);
		stage_unref(f);
	}
	return rc;
}

int vx_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
	     gid_t gid)
{
	char who[40] = "";
	int rc;

	if (uid == (uid_t)-1 && gid == (gid_t)-1)
		return 0;
	if (uid != (uid_t)-1)
		snprintf(who, sizeof(who), "%u", (unsigned)uid);
	if (gid != (gid_t)-1)
		snprintf(who + strlen(who), sizeof(who) - strlen(who), ":%u",
			 (unsigned)gid);
	rc = stagefile_flush_pending(&VX(p)->files, box, path);
	if (rc)
		return rc;
	return run_fmt(VX(p), box, "chown",
		       "p=%q; [ -e \"$p\" ] || [ -h \"$p\" ] || exit 2; "
		       "chown -h %q -- \"$p\" 2>&1 || exit 1",
		       path, who, NULL);
}

int vx_truncate(struct sbx_provider *p, const char *box, const char *path, off_t size)
{
	struct vx *vx = VX(p);
	char n[32];
	int rc;

	/* An open copy is the file's future contents: truncate that. */
	rc = stage_truncate(vx->stage, box, path, size);
	if (rc != -ENOENT)
		return rc;
	snprintf(n, sizeof(n), "%lld", (long long)size);
	rc = run_fmt(vx, box, "truncate",
		     "p=%q; [ -e \"$p\" ] || exit 2; [ -d \"$p\" ] && exit 21; "
		     "truncate -c -s %q -- \"$p\" 2>&1 || exit 5",
		     path, n, NULL);
	if (!rc)
		stage_unlink(vx->stage, box, path); /* a cached copy is stale */
	return rc;
}

int vx_utimens(struct sbx_provider *p, const char *box, const char *path,
	       const struct timespec ts[2])
{
	static const char *const flag[2] = { "-a", "-m" };
	struct vx *vx = VX(p);
	struct strbuf s = STRBUF_INIT(1u << 20);
	int rc = stagefile_flush_pending(&vx->files, box, path), i;

	if (!rc)
		rc = script_of(&s, "p=%q; [ -e \"$p\" ] || [ -h \"$p\" ] || exit 2; ",
			       path, NULL);
	for (i = 0; i < 2 && !rc; i++) {
		if (ts[i].tv_nsec == UTIME_OMIT)
			continue;
		rc = strbuf_addf(&s, "touch -c -h %s ", flag[i]);
		if (!rc && ts[i].tv_nsec != UTIME_NOW)
			rc = strbuf_addf(&s, "-d @%lld.%09ld ", (long long)ts[i].tv_sec,
					 ts[i].tv_nsec);
		if (!rc)
			rc = strbuf_addf(&s, "-- \"$p\" 2>&1 || exit 5; ");
	}
	if (!rc)
		rc = vx_run(vx, box, "utimens", s.buf, NULL);
	strbuf_release(&s);
	return rc;
}

int vx_symlink(struct sbx_provider *p, const char *box, const char *target,
	       const char *path)
{
	return run_fmt(VX(p), box, "symlink",
		       "t=%q; p=%q; { [ -e \"$p\" ] || [ -h \"$p\" ]; } && exit 17; "
		       "ln -s -- \"$t\" \"$p\" 2>&1 || exit 5",
		       target, path, NULL);
}

int vx_link(struct sbx_provider *p, const char *box, const char *from, const char *to)
{
	int rc = stagefile_flush_pending(&VX(p)->files, box, from);

	if (rc)
		return rc;
	return run_fmt(VX(p), box, "link",
		       "a=%q; b=%q; [ -e \"$a\" ] || [ -h \"$a\" ] || exit 2; "
		       "{ [ -e \"$b\" ] || [ -h \"$b\" ]; } && exit 17; "
		       "[ -d \"$a\" ] && ! [ -h \"$a\" ] && exit 1; "
		       "ln -- \"$a\" \"$b\" 2>&1 || exit 5",
		       from, to, NULL);
}

int vx_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
	      const char *path)
{
	struct strbuf o = STRBUF_INIT(4096);
	unsigned long long bsize, blocks, bfree, bavail, files, ffree, namemax;
	int rc = run_fmt(VX(p), box, "statfs",
			 "stat -f -c '%S %b %f %a %c %d %l' -- %q 2>&1 || exit 5", path,
			 NULL, &o);

	if (rc)
		goto out;
	if (!o.buf || sscanf(o.buf, "%llu %llu %llu %llu %llu %llu %llu", &bsize, &blocks,
			     &bfree, &bavail, &files, &ffree, &namemax) != 7) {
		sbx_failf("vtrix: statfs: unexpected answer");
		rc = -EPROTO;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	out->f_bsize = out->f_frsize = bsize;
	out->f_blocks = blocks;
	out->f_bfree = bfree;
	out->f_bavail = bavail;
	out->f_files = files;
	out->f_ffree = out->f_favail = ffree;
	out->f_namemax = namemax;
out:
	strbuf_release(&o);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * microsandbox: root/ through the agent's fs messages.
 *
 * Each operation is one session: a core.fs.request whose `op` names it,
 * answered by one core.fs.response {ok, error?, data?}; a Read first
 * streams its bytes as core.fs.data chunks, and a Write sends them so,
 * ended by an empty chunk.  The agent's errors carry no errno, only Rust's
 * text of the io::Error, whose "(os error N)" is the errno (msb_parse.c).
 *
 * Files are staged (stagefile.h): open fetches a file with OpenFile and
 * one Read to its end, close uploads it with OpenFile, one Write and
 * FStat.  Listings are one List, stat one Stat.  What the agent has no
 * message for (hard links, statfs, subtree listings) the remote layer
 * does by shell, through exec sessions (msb_cmd.c).
 *
 * The agent's paths are UTF-8 text, and it shows other bytes in a name
 * as U+FFFD.  A path that is not UTF-8, and a listing or link target
 * that holds U+FFFD, go through the shell instead, whose scripts carry
 * any byte (as base64, msb_cmd.c).
 */
#include <time.h>
#include <unistd.h>

#include "msb.h"
#include "sbxfs/log.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/shell.h"

#define RESP_MAX (MSB_FRAME_MAX + 64)

/* One fs request in flight. */
struct fs_call {
	/* Read's chunks go here; NULL: a chunk is a protocol error. */
	int (*chunk)(void *ctx, const uint8_t *data, size_t len);
	void *chunk_ctx;
	struct strbuf resp; /* the response's payload bytes */
	int answered;
};

static int fs_frame(void *ctx, const struct msb_frame *f, int err, const char *why)
{
	struct fs_call *fc = ctx;
	struct cbor_val d;

	(void)err;
	(void)why;
	if (!f)
		return 0;
	if (msb_frame_is(f, "core.fs.data")) {
		if (!fc->chunk || cbor_map_get(&f->payload, "data", &d) ||
		    d.type != CBOR_BYTES) {
			sbx_failf("microsandbox: a data chunk that was not asked for");
			return -EPROTO;
		}
		return d.len ? fc->chunk(fc->chunk_ctx, d.data, d.len) : 0;
	}
	if (msb_frame_is(f, "core.fs.response")) {
		fc->resp.len = 0;
		fc->answered = 1;
		return strbuf_add(&fc->resp, f->raw.data, f->raw.len) ? -ENOMEM : 0;
	}
	sbx_failf("microsandbox: an fs request was answered with another message");
	return -EPROTO;
}

/* The payload of an fs request, up to the op's own fields: {"op":
 * {OP: {...n fields...}}}. */
static int op_begin(struct strbuf *p, const char *op, size_t nfields)
{
	int rc = cbor_put_map(p, 1);

	if (!rc)
		rc = cbor_put_text(p, "op");
	if (!rc)
		rc = cbor_put_map(p, 1);
	if (!rc)
		rc = cbor_put_text(p, op);
	return rc ? rc : cbor_put_map(p, nfields);
}

static int put_kv_text(struct strbuf *p, const char *k, const char *v)
{
	int rc = cbor_put_text(p, k);

	return rc ? rc : cbor_put_text(p, v);
}

static int put_kv_uint(struct strbuf *p, const char *k, uint64_t v)
{
	int rc = cbor_put_text(p, k);

	return rc ? rc : cbor_put_uint(p, v);
}

static int put_kv_bool(struct strbuf *p, const char *k, int v)
{
	int rc = cbor_put_text(p, k);

	return rc ? rc : cbor_put_bool(p, v);
}

/*
 * The answer in fc->resp: 0 with its `data` in *data (may be NULL; it
 * points into fc->resp); the errno of a refusal, with the agent's words
 * after `what` and the path when it is EIO (always, with `text`).
 */
static int fs_answer(struct fs_call *fc, struct cbor_val *data, const char *what,
		     const char *path, int text)
{
	struct cbor_val top, v;
	char words[300] = "no reason given";
	int e = EIO;

	if (!fc->answered || cbor_decode(&top, fc->resp.buf, fc->resp.len) ||
	    cbor_map_get(&top, "ok", &v) || v.type != CBOR_BOOL) {
		sbx_failf("microsandbox: %s \"%s\": an answer without ok", what, path);
		return -EPROTO;
	}
	if (v.u) {
		if (data && cbor_map_get(&top, "data", data))
			data->type = CBOR_NULL;
		return 0;
	}
	if (!cbor_map_get(&top, "error", &v) && v.type == CBOR_TEXT) {
		e = msb_os_errno((const char *)v.data, v.len);
		snprintf(words, sizeof(words), "%.*s", (int)(v.len < 280 ? v.len : 280),
			 (const char *)v.data);
		for (char *p = words; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = '?';
	}
	if (e == EIO || text)
		sbx_failf("microsandbox: %s \"%s\": %s", what, path, words);
	return -e;
}

/*
 * Send the request in `payload` and wait for its answer.  0 with the
 * response's `data` in *data (may be NULL; it points into fc->resp);
 * the errno of a refusal, with the agent's words after `what` and the
 * path; -errno of the session.  `retry`: the request only reads, so a
 * socket that died on the way is opened again and it is asked once more.
 */
static int fs_call(struct msb *m, struct fs_call *fc, struct cbor_val *data,
		   const char *box, const char *what, const char *path,
		   const struct strbuf *payload, int retry)
{
	int rc;

	for (int tries = 0;; tries++) {
		struct msb_sess *s;

		fc->answered = 0;
		rc = msb_sess_open(m, &s, box, "core.fs.request", payload, fs_frame, fc);
		if (!rc) {
			rc = msb_sess_wait(s, m->r.timeout_ms);
			msb_sess_close(s);
		}
		if (rc != -ECONNRESET || !retry || tries || sbx_interrupted())
			break;
	}
	return rc ? rc : fs_answer(fc, data, what, path, 0);
}

/* The value of data's variant `kind` ({"Stat": ...}); -EPROTO if data is
 * another. */
static int variant(struct cbor_val *out, const struct cbor_val *data, const char *kind,
		   const char *what, const char *path)
{
	if (data->type == CBOR_MAP && !cbor_map_get(data, kind, out))
		return 0;
	sbx_failf("microsandbox: %s \"%s\": the answer holds no %s", what, path, kind);
	return -EPROTO;
}

/* ---- stat, listings, links ---- */

/* Does s hold U+FFFD, the agent's mark of a name that was not UTF-8? */
static int lossy(const uint8_t *s, size_t len)
{
	return memmem(s, len, "\xef\xbf\xbd", 3) != NULL;
}

static int fs_stat(struct msb *m, struct stat *st, const char *box, const char *path)
{
	struct strbuf p = STRBUF_INIT(8192);
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	struct cbor_val data, info;
	struct msb_entry e;
	int rc;

	if (!json_utf8_valid(path))
		return remote_find_stat(&m->r, st, box, path);
	rc = op_begin(&p, "Stat", 2);

	if (!rc)
		rc = put_kv_text(&p, "path", path);
	if (!rc)
		rc = put_kv_bool(&p, "follow_symlink", 0);
	if (!rc)
		rc = fs_call(m, &fc, &data, box, "stat", path, &p, 1);
	if (!rc)
		rc = variant(&info, &data, "Stat", "stat", path);
	if (!rc && msb_entry_parse(&e, &info)) {
		sbx_failf("microsandbox: stat \"%s\": an entry that does not parse",
			  path);
		rc = -EPROTO;
	}
	if (!rc)
		*st = e.st;
	strbuf_release(&p);
	strbuf_release(&fc.resp);
	return rc;
}

static int ns_readdir(struct remote *r, const char *box, const char *path,
		      sbx_dirent_fn fn, void *ctx)
{
	struct msb *m = (struct msb *)r;
	struct strbuf pl = STRBUF_INIT(8192);
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	struct cbor_val data, list, item;
	struct cbor_iter it;
	int rc;

	if (!json_utf8_valid(path))
		return -ENOSYS; /* the script's */
	rc = op_begin(&pl, "List", 1);
	if (!rc)
		rc = put_kv_text(&pl, "path", path);
	if (!rc)
		rc = fs_call(m, &fc, &data, box, "list", path, &pl, 1);
	if (!rc)
		rc = variant(&list, &data, "List", "list", path);
	if (!rc && list.type != CBOR_ARRAY)
		rc = -EPROTO;
	if (!rc && lossy(list.data, (size_t)(list.end - list.data))) {
		/* A name that is not UTF-8 is in it: list by shell. */
		strbuf_release(&pl);
		strbuf_release(&fc.resp);
		return -ENOSYS;
	}
	if (!rc)
		cbor_iter_init(&it, &list);
	while (!rc && cbor_iter_next(&it, &item)) {
		struct msb_entry e;
		char name[256];
		const char *base, *slash;
		size_t n;

		if (msb_entry_parse(&e, &item))
			continue; /* an entry it could not lstat */
		/* The entry's full path: its name is what follows the last
		 * '/'.  Names that cannot be shown are left out. */
		base = (const char *)e.path.data;
		n = e.path.len;
		slash = memrchr(base, '/', n);
		if (slash) {
			n -= (size_t)(slash + 1 - base);
			base = slash + 1;
		}
		if (n == 0 || n >= sizeof(name) || memchr(base, '\0', n))
			continue;
		memcpy(name, base, n);
		name[n] = '\0';
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (fn(ctx, name, &e.st))
			break;
	}
	if (rc == -EPROTO)
		sbx_failf("microsandbox: list \"%s\": the answer is no listing", path);
	strbuf_release(&pl);
	strbuf_release(&fc.resp);
	return rc;
}

static int ns_readlink(struct remote *r, char *buf, size_t size, const char *box,
		       const char *path)
{
	struct msb *m = (struct msb *)r;
	struct strbuf pl = STRBUF_INIT(8192);
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	struct cbor_val data, target;
	int rc;

	if (!json_utf8_valid(path))
		return -ENOSYS;
	rc = op_begin(&pl, "ReadLink", 1);
	if (!rc)
		rc = put_kv_text(&pl, "path", path);
	if (!rc)
		rc = fs_call(m, &fc, &data, box, "readlink", path, &pl, 1);
	if (rc == -EINVAL || rc == -ENOENT || rc == -ENOTDIR)
		goto out;
	if (!rc)
		rc = variant(&target, &data, "Path", "readlink", path);
	if (!rc && target.type == CBOR_TEXT && lossy(target.data, target.len)) {
		strbuf_release(&pl);
		strbuf_release(&fc.resp);
		return -ENOSYS;
	}
	if (!rc) {
		rc = cbor_text_copy(&target, buf, size);
		if (rc == -EPROTO || (!rc && !buf[0])) {
			sbx_failf("microsandbox: readlink \"%s\": a bad target", path);
			rc = -EPROTO;
		}
	}
out:
	strbuf_release(&pl);
	strbuf_release(&fc.resp);
	return rc;
}

/* ---- staged files ---- */

static int sf_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	return fs_stat(ctx, st, box, path);
}

/* OpenFile with the six options (all required by the agent); the handle
 * into *h. */
static int open_file(struct msb *m, uint64_t *h, const char *box, const char *path,
		     int write, long mode)
{
	struct strbuf p = STRBUF_INIT(8192);
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	struct cbor_val data, v;
	int64_t n;
	int rc = op_begin(&p, "OpenFile", 2);

	if (!rc)
		rc = put_kv_text(&p, "path", path);
	if (!rc)
		rc = cbor_put_text(&p, "options");
	if (!rc)
		rc = cbor_put_map(&p, mode >= 0 ? 7 : 6);
	if (!rc)
		rc = put_kv_bool(&p, "read", !write);
	if (!rc)
		rc = put_kv_bool(&p, "write", write);
	if (!rc)
		rc = put_kv_bool(&p, "append", 0);
	if (!rc)
		rc = put_kv_bool(&p, "create", write);
	if (!rc)
		rc = put_kv_bool(&p, "truncate", write);
	if (!rc)
		rc = put_kv_bool(&p, "create_new", 0);
	if (!rc && mode >= 0)
		rc = put_kv_uint(&p, "mode", (uint64_t)mode);
	if (!rc)
		rc = fs_call(m, &fc, &data, box, "open", path, &p, !write);
	if (!rc &&
	    (variant(&v, &data, "Handle", "open", path) || cbor_int(&v, &n) || n <= 0)) {
		sbx_failf("microsandbox: open \"%s\": the answer holds no handle", path);
		rc = -EPROTO;
	}
	if (!rc)
		*h = (uint64_t)n;
	strbuf_release(&p);
	strbuf_release(&fc.resp);
	return rc;
}

/* A request on handle h alone: CloseHandle, FStat. */
static int handle_op(struct msb *m, struct fs_call *fc, struct cbor_val *data,
		     const char *box, const char *op, const char *path, uint64_t h)
{
	struct strbuf p = STRBUF_INIT(256);
	int rc = op_begin(&p, op, 1);

	if (!rc)
		rc = put_kv_uint(&p, "handle", h);
	if (!rc)
		rc = fs_call(m, fc, data, box, op, path, &p, 0);
	strbuf_release(&p);
	return rc;
}

/*
 * Close a handle that only read: the request is sent and not waited for
 * (a read has nothing to flush), so a fetch costs two round trips.  Its
 * answer, when it comes, finds no session and is dropped.
 */
static void close_handle_nowait(struct msb *m, const char *box, uint64_t h)
{
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	struct strbuf p = STRBUF_INIT(256);
	struct msb_sess *s = NULL;

	if (!op_begin(&p, "CloseHandle", 1) && !put_kv_uint(&p, "handle", h) &&
	    !msb_sess_open(m, &s, box, "core.fs.request", &p, fs_frame, &fc))
		msb_sess_close(s);
	strbuf_release(&p);
	strbuf_release(&fc.resp);
}

static int close_handle(struct msb *m, const char *box, const char *path, uint64_t h)
{
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	int rc = handle_op(m, &fc, NULL, box, "CloseHandle", path, h);

	strbuf_release(&fc.resp);
	return rc;
}

struct fetch_ctx {
	struct staged *f;
	off_t off;
};

static int fetch_chunk(void *ctx, const uint8_t *data, size_t len)
{
	struct fetch_ctx *x = ctx;
	int rc = stage_put(x->f, x->off, data, len);

	x->off += (off_t)len;
	return rc;
}

static int sf_fetch(void *ctx, struct staged *f, const char *box, const char *path,
		    const struct stat *remote)
{
	struct msb *m = ctx;
	struct fetch_ctx x = { .f = f };
	struct fs_call fc = { .chunk = fetch_chunk,
			      .chunk_ctx = &x,
			      .resp = STRBUF_INIT(RESP_MAX) };
	struct strbuf p = STRBUF_INIT(256);
	uint64_t h;
	int rc;

	(void)remote;
	if (ftruncate(f->fd, 0))
		return -errno;
	if (!json_utf8_valid(path))
		return remote_fetch_by_script(&m->r, f, box, path, m->r.output_max);
	rc = open_file(m, &h, box, path, 0, -1);
	if (rc)
		return rc;
	rc = op_begin(&p, "Read", 3);
	if (!rc)
		rc = put_kv_uint(&p, "handle", h);
	if (!rc)
		rc = put_kv_uint(&p, "offset", 0);
	if (!rc)
		rc = cbor_put_text(&p, "len");
	if (!rc)
		rc = cbor_put_null(&p);
	if (!rc)
		rc = fs_call(m, &fc, NULL, box, "read", path, &p, 0);
	if (rc != -ECONNRESET)
		close_handle_nowait(m, box, h); /* a dead socket closed it */
	if (!rc && ftruncate(f->fd, x.off))
		rc = -errno;
	strbuf_release(&p);
	strbuf_release(&fc.resp);
	return rc;
}

/* Write the copy's `size` bytes on handle h: a Write session fed with
 * chunks, then the empty chunk that ends it. */
static int write_all(struct msb *m, struct staged *f, const char *box, const char *path,
		     uint64_t h, off_t size)
{
	struct strbuf p = STRBUF_INIT(256), chunk = STRBUF_INIT(MSB_CHUNK_MAX + 64);
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	char *buf = malloc(MSB_CHUNK_MAX);
	struct msb_sess *s = NULL;
	off_t off = 0;
	int rc = buf ? op_begin(&p, "Write", 3) : -ENOMEM;

	if (!rc)
		rc = put_kv_uint(&p, "handle", h);
	if (!rc)
		rc = put_kv_uint(&p, "offset", 0);
	if (!rc)
		rc = put_kv_uint(&p, "len", (uint64_t)size);
	if (!rc)
		rc = msb_sess_open(m, &s, box, "core.fs.request", &p, fs_frame, &fc);
	for (int last = 0; !rc && !last;) {
		ssize_t n = 0;

		if (off < size) {
			size_t want = size - off < MSB_CHUNK_MAX ? (size_t)(size - off)
								 : MSB_CHUNK_MAX;

			n = pread(f->fd, buf, want, off);
			if (n <= 0) {
				rc = n < 0 ? -errno : -EIO;
				sbx_failf("microsandbox: write \"%s\": cannot read the "
					  "local copy",
					  path);
				break;
			}
			off += n;
		} else {
			last = 1; /* the empty chunk */
		}
		chunk.len = 0;
		rc = cbor_put_map(&chunk, 1);
		if (!rc)
			rc = cbor_put_text(&chunk, "data");
		if (!rc)
			rc = cbor_put_bytes(&chunk, buf, (size_t)n);
		if (!rc)
			rc = msb_sess_send(s, "core.fs.data", &chunk);
	}
	if (s) {
		/* A refusal may come before the last chunk: wait for it. */
		int wrc = msb_sess_wait(s, m->r.timeout_ms);

		msb_sess_close(s);
		if (!rc || fc.answered)
			rc = wrc;
	}
	if (!rc)
		rc = fs_answer(&fc, NULL, "write", path, 1);
	free(buf);
	strbuf_release(&p);
	strbuf_release(&chunk);
	strbuf_release(&fc.resp);
	return rc;
}

/* Upload the copy to `path` (UTF-8): OpenFile, Write, FStat into
 * *remote, CloseHandle.  `mode` >= 0: a new file's permission bits. */
static int upload_at(struct msb *m, struct stat *remote, struct staged *f,
		     const char *box, const char *path, off_t size, long mode)
{
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };
	struct cbor_val data, info;
	struct msb_entry e;
	uint64_t h;
	int rc, crc;

	rc = open_file(m, &h, box, path, 1, mode);
	if (rc)
		return rc;
	rc = write_all(m, f, box, path, h, size);
	if (mode < 0) {
		/* A file that was there keeps its mode, and the agent wrote
		 * `size` bytes (it checks the length): no FStat.  The copy
		 * takes the mtime of the next look at the file. */
		crc = close_handle(m, box, path, h);
		if (!rc)
			rc = crc;
		if (!rc) {
			remote->st_mode = f->mode;
			remote->st_size = size;
			remote->st_mtim.tv_nsec = UTIME_OMIT;
		}
		strbuf_release(&fc.resp);
		return rc;
	}
	if (!rc)
		rc = handle_op(m, &fc, &data, box, "FStat", path, h);
	if (!rc && (variant(&info, &data, "Stat", "fstat", path) ||
		    msb_entry_parse(&e, &info))) {
		sbx_failf("microsandbox: fstat \"%s\": an entry that does not parse",
			  path);
		rc = -EPROTO;
	}
	crc = close_handle(m, box, path, h);
	if (!rc)
		rc = crc;
	if (!rc)
		*remote = e.st;
	strbuf_release(&fc.resp);
	return rc;
}

/*
 * A file whose name is not UTF-8: upload to a temporary name in /tmp,
 * then a script copies it into place (keeping the file's own inode and
 * mode, or giving a new one `mode`) and removes it.
 */
static int upload_by_script(struct msb *m, struct stat *remote, struct staged *f,
			    const char *box, const char *path, off_t size, long mode)
{
	static unsigned long counter;
	char tmp[80], chmod[64] = "";
	struct stat st;
	int rc;

	if (mode >= 0)
		snprintf(chmod, sizeof(chmod), "chmod %lo -- \"$p\"",
			 (unsigned long)mode);

	snprintf(tmp, sizeof(tmp), "/tmp/.sbxfs-upload-%ld-%lu", (long)getpid(),
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	rc = upload_at(m, &st, f, box, tmp, size, 0600);
	if (!rc)
		rc = remote_runf(&m->r, box, "write", 0, NULL,
				 "t=%q; p=%q; cat -- \"$t\" > \"$p\" || "
				 "{ rm -f -- \"$t\"; exit 5; }; rm -f -- \"$t\"; %s",
				 tmp, path, chmod);
	if (!rc)
		rc = remote_find_stat(&m->r, remote, box, path);
	return rc;
}

static int sf_upload(void *ctx, struct stat *remote, struct staged *f, const char *box,
		     const char *path, off_t size)
{
	struct msb *m = ctx;
	long mode = f->fetched ? -1 : (long)(f->mode & 07777);

	if (!json_utf8_valid(path))
		return upload_by_script(m, remote, f, box, path, size, mode);
	return upload_at(m, remote, f, box, path, size, mode);
}

const struct stagefile_ops msb_stagefile_ops = {
	.name = "microsandbox",
	.flags = STAGEFILE_LAZY_WRONLY | STAGEFILE_SYMLINK_ELOOP,
	.upload_stat = STAGEFILE_STAT_BY_UPLOAD,
	.info = sf_info,
	.fetch = sf_fetch,
	.upload = sf_upload,
};

/* ---- the namespace: the agent's own calls (remote_fs_ops) ---- */

/* Send the request in p for path (and maybe a second path) and wait for
 * its answer; -ENOSYS for a path that is not UTF-8 (the layer's script
 * then does it).  Not asked again on a dropped socket: it changes. */
static int fs_change(struct msb *m, const char *box, const char *what, const char *path,
		     const char *path2, struct strbuf *p, int rc)
{
	struct fs_call fc = { .resp = STRBUF_INIT(RESP_MAX) };

	if (!json_utf8_valid(path) || (path2 && !json_utf8_valid(path2)))
		rc = -ENOSYS;
	if (!rc)
		rc = fs_call(m, &fc, NULL, box, what, path, p, 0);
	strbuf_release(p);
	strbuf_release(&fc.resp);
	return rc;
}

static int ns_mkdir(struct remote *r, const char *box, const char *path, mode_t mode)
{
	struct msb *m = (struct msb *)r;
	struct strbuf p = STRBUF_INIT(8192);
	struct stat st;
	int rc;

	if (!json_utf8_valid(path))
		return -ENOSYS;
	/* Mkdir is mkdir -p, which takes a name that is there: see first. */
	rc = fs_stat(m, &st, box, path);
	if (rc != -ENOENT)
		return rc ? rc : -EEXIST;
	rc = op_begin(&p, "Mkdir", 2);
	if (!rc)
		rc = put_kv_text(&p, "path", path);
	if (!rc)
		rc = put_kv_uint(&p, "mode", mode & 07777);
	return fs_change(m, box, "mkdir", path, NULL, &p, rc);
}

/* An op of one field, the path: Remove. */
static int ns_unlink(struct remote *r, const char *box, const char *path)
{
	struct strbuf p = STRBUF_INIT(8192);
	int rc = op_begin(&p, "Remove", 1);

	if (!rc)
		rc = put_kv_text(&p, "path", path);
	return fs_change((struct msb *)r, box, "unlink", path, NULL, &p, rc);
}

static int ns_rmdir(struct remote *r, const char *box, const char *path)
{
	struct strbuf p = STRBUF_INIT(8192);
	int rc = op_begin(&p, "RemoveDir", 2);

	if (!rc)
		rc = put_kv_text(&p, "path", path);
	if (!rc)
		rc = put_kv_bool(&p, "recursive", 0);
	return fs_change((struct msb *)r, box, "rmdir", path, NULL, &p, rc);
}

static int ns_rename(struct remote *r, const char *box, const char *from, const char *to,
		     unsigned flags)
{
	struct strbuf p = STRBUF_INIT(16384);
	int rc;

	if (flags)
		return -ENOSYS; /* Rename is rename(2) without flags */
	rc = op_begin(&p, "Rename", 2);
	if (!rc)
		rc = put_kv_text(&p, "src", from);
	if (!rc)
		rc = put_kv_text(&p, "dst", to);
	return fs_change((struct msb *)r, box, "rename", from, to, &p, rc);
}

/* SetStat of the object at path (not a symlink's target) with the
 * attributes `n` fields give; the caller adds them after. */
static int setstat_begin(struct strbuf *p, const char *path, size_t n)
{
	int rc = op_begin(p, "SetStat", 3);

	if (!rc)
		rc = put_kv_text(p, "path", path);
	if (!rc)
		rc = put_kv_bool(p, "follow_symlink", 0);
	if (!rc)
		rc = cbor_put_text(p, "attrs");
	return rc ? rc : cbor_put_map(p, n);
}

static int ns_chmod(struct remote *r, const char *box, const char *path, mode_t mode)
{
	struct strbuf p = STRBUF_INIT(8192);
	int rc = setstat_begin(&p, path, 1);

	if (!rc)
		rc = put_kv_uint(&p, "mode", mode & 07777);
	return fs_change((struct msb *)r, box, "chmod", path, NULL, &p, rc);
}

static int ns_chown(struct remote *r, const char *box, const char *path, uid_t uid,
		    gid_t gid)
{
	struct strbuf p = STRBUF_INIT(8192);
	int rc = setstat_begin(&p, path, (uid != (uid_t)-1) + (gid != (gid_t)-1));

	if (!rc && uid != (uid_t)-1)
		rc = put_kv_uint(&p, "uid", uid);
	if (!rc && gid != (gid_t)-1)
		rc = put_kv_uint(&p, "gid", gid);
	return fs_change((struct msb *)r, box, "chown", path, NULL, &p, rc);
}

static int ns_symlink(struct remote *r, const char *box, const char *target,
		      const char *path)
{
	struct strbuf p = STRBUF_INIT(16384);
	int rc = op_begin(&p, "Symlink", 2);

	if (!rc)
		rc = put_kv_text(&p, "target", target);
	if (!rc)
		rc = put_kv_text(&p, "link_path", path);
	return fs_change((struct msb *)r, box, "symlink", path, target, &p, rc);
}

static int ns_truncate(struct remote *r, const char *box, const char *path, off_t size)
{
	struct strbuf p = STRBUF_INIT(8192);
	int rc = setstat_begin(&p, path, 1);

	if (!rc)
		rc = put_kv_uint(&p, "size", (uint64_t)size);
	return fs_change((struct msb *)r, box, "truncate", path, NULL, &p, rc);
}

/* The agent sets times in whole seconds: a time with nanoseconds goes
 * to the layer's script, which keeps them. */
static int ns_utimens(struct remote *r, const char *box, const char *path,
		      const struct timespec ts[2])
{
	static const char *const keys[2] = { "atime", "mtime" };
	struct strbuf p = STRBUF_INIT(8192);
	time_t now = time(NULL);
	size_t n = 0;
	int rc;

	for (int i = 0; i < 2; i++) {
		if (ts[i].tv_nsec != 0 && ts[i].tv_nsec != UTIME_NOW &&
		    ts[i].tv_nsec != UTIME_OMIT)
			return -ENOSYS;
		n += ts[i].tv_nsec != UTIME_OMIT;
	}
	if (!n)
		return 0;
	rc = setstat_begin(&p, path, n);
	for (int i = 0; i < 2 && !rc; i++) {
		if (ts[i].tv_nsec == UTIME_OMIT)
			continue;
		if (ts[i].tv_nsec != UTIME_NOW && ts[i].tv_sec < 0) {
			strbuf_release(&p);
			return -ENOSYS; /* before 1970: the script's */
		}
		rc = put_kv_uint(
			&p, keys[i],
			(uint64_t)(ts[i].tv_nsec == UTIME_NOW ? now : ts[i].tv_sec));
	}
	return fs_change((struct msb *)r, box, "utimens", path, NULL, &p, rc);
}

const struct remote_fs_ops msb_fs_ops = {
	.readdir = ns_readdir,
	.readlink = ns_readlink,
	.mkdir = ns_mkdir,
	.unlink = ns_unlink,
	.rmdir = ns_rmdir,
	.rename = ns_rename,
	.chmod = ns_chmod,
	.chown = ns_chown,
	.symlink = ns_symlink,
	.truncate = ns_truncate,
	.utimens = ns_utimens,
};

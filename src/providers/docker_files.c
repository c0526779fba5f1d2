/* SPDX-License-Identifier: MIT */
/*
 * Docker: root/ through the archive API.
 *
 *  - info: HEAD /containers/{box}/archive?path=P, whose
 *    X-Docker-Container-Path-Stat header is the file's lstat (mode as a
 *    Go FileMode, size, mtime, link target); no owner, no link count.
 *  - fetch: a small file of a running container by `cat` on a kept
 *    shell; else GET of the same route, a tar holding the file alone,
 *    read as it streams (tar.h) straight into the staged copy.  The tar
 *    comes from the container: one regular member, named as the file, or
 *    the fetch fails.
 *  - upload: PUT /containers/{box}/archive?path=DIR of a tar made as it
 *    is sent, around the copy's bytes.  The engine replaces a file by a
 *    new one with the tar's mode and owner, so a new file goes up as it
 *    is, and an existing one goes up beside it under a temporary name,
 *    and a script then copies it into place: the file keeps its inode,
 *    owner, mode and links.
 *
 * Listings and the POSIX calls the archive API lacks are the remote
 * layer's scripts (remote.h), run through the exec API.  A stopped
 * container answers the archive API but runs no script: its files can
 * be read, not written.
 */
#include <time.h>
#include <unistd.h>

#include "docker.h"
#include "sbxfs/names.h"
#include "sbxfs/remote/find.h"
#include "sbxfs/remote/shell.h"
#include "sbxfs/remote/tar.h"

#define PATH_STAT "X-Docker-Container-Path-Stat"

/*
 * Can the archive API name this path?  Not if it is not UTF-8 (the
 * engine's archive code would not keep it) or holds a glob character
 * (Podman's expands them, and finds nothing).  Such files are reached
 * through scripts and a plain temporary name instead.
 */
static int archive_safe(const char *path)
{
	return json_utf8_valid(path) && !strpbrk(path, "*?[\\");
}

/* HEAD of box:path's archive: its lstat, and its link target into link
 * (size bytes; may be NULL). */
static int path_stat(struct dk *dk, struct stat *st, char *link, size_t size,
		     const char *box, const char *path)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	struct http_resp r;
	int rc = dk_url(&url, dk, box, "/archive", path);

	if (rc)
		return rc;
	req.method = "HEAD";
	req.url = url.buf;
	req.idempotent = 1;
	req.want_header = PATH_STAT;
	rc = http_do(dk->http, &req, &r);
	strbuf_release(&url);
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	/* Podman follows a symlink to stat it, and answers 404 for a
	 * dangling one, but with the link's own stat in the header. */
	if (r.status == 404 &&
	    (!r.header.len ||
	     dk_parse_path_stat(st, link, size, r.header.buf, r.header.len) ||
	     !S_ISLNK(st->st_mode)))
		rc = -ENOENT;
	else if (r.status == 404)
		rc = 0;
	else if (r.status != 200)
		rc = dk_fail("stat", &r, NULL);
	else if (dk_parse_path_stat(st, link, size, r.header.buf, r.header.len)) {
		sbx_failf("docker: stat: no file stat in the answer");
		rc = -EPROTO;
	}
	http_resp_release(&r);
	return rc;
}

/*
 * A running container's file is looked up by a script, a round trip on a
 * kept shell, for all of lstat.  The archive API's stat, one request
 * with no process in the container but no owner, link count or access
 * time, answers a stopped container's files.
 */
static int sf_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	struct dk *dk = ctx;

	if (!dk_running(dk, box))
		return path_stat(dk, st, NULL, 0, box, path);
	return remote_find_stat(&dk->r, st, box, path);
}

/* GET of box:path's archive into sink: 0 with the answer in *r (the
 * caller releases it), or -errno (the sink's, or the transport's). */
static int archive_get(struct dk *dk, struct http_resp *r, const char *box,
		       const char *path, const struct http_sink *sink)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	int rc = dk_url(&url, dk, box, "/archive", path);

	if (rc)
		return rc;
	req.method = "GET";
	req.url = url.buf;
	req.idempotent = 1;
	req.transfer = 1;
	req.sink = sink;
	rc = http_do(dk->http, &req, r);
	strbuf_release(&url);
	return rc;
}

/* ---- fetch: the tar streams into the copy ---- */

struct fetch {
	struct staged *f;
	const char *base; /* the file's name: the member's name */
	struct tar_reader tar;
	int members;
	off_t at; /* bytes written */
};

static int fetch_entry(void *ctx, const struct tar_entry *e)
{
	struct fetch *x = ctx;

	if (x->members++ || e->type != '0' || !tar_name_is(e->name, x->base)) {
		sbx_failf("docker: the archive of \"%s\" holds more than the file",
			  x->base);
		return -EPROTO;
	}
	return 0;
}

static int fetch_data(void *ctx, const char *buf, size_t len)
{
	struct fetch *x = ctx;
	int rc = stage_put(x->f, x->at, buf, len);

	x->at += (off_t)len;
	return rc;
}

static int fetch_write(void *ctx, const char *buf, size_t len)
{
	return tar_feed(&((struct fetch *)ctx)->tar, buf, len);
}

static int fetch_reset(void *ctx)
{
	struct fetch *x = ctx;

	x->members = 0;
	x->at = 0;
	tar_reader_init(&x->tar, fetch_entry, fetch_data, x);
	return ftruncate(x->f->fd, 0) ? -errno : 0;
}

static int fetch_from(struct dk *dk, struct staged *f, const char *box, const char *path)
{
	struct fetch x = { .f = f, .base = strrchr(path, '/') + 1 };
	const struct http_sink sink = { fetch_write, fetch_reset, &x };
	struct http_resp r;
	int rc = archive_get(dk, &r, box, path, &sink);

	if (rc)
		return rc;
	if (r.status == 404)
		rc = -ENOENT;
	else if (r.status != 200)
		rc = dk_fail("download", &r, NULL);
	else if ((rc = tar_finish(&x.tar)) == 0 && !x.members)
		rc = -ENOENT; /* gone between stat and fetch */
	http_resp_release(&r);
	return rc;
}

/*
 * A running container's file of up to SCRIPT_FETCH_MAX bytes comes
 * through a kept shell: a round trip on an open stream, where each
 * archive GET costs the engine a mount of the container's storage (about
 * 90 ms for Podman with vfs).  A bigger one streams from its archive; one
 * the archive API cannot name is copied to a plain name in /tmp first,
 * fetched from there, and the copy removed.
 */
#define SCRIPT_FETCH_MAX (4u << 20)

static int sf_fetch(void *ctx, struct staged *f, const char *box, const char *path,
		    const struct stat *remote)
{
	struct dk *dk = ctx;
	char tmp[96], plain[128];
	int rc;

	if (remote->st_size <= SCRIPT_FETCH_MAX && dk_running(dk, box)) {
		rc = remote_fetch_by_script(&dk->r, f, box, path, SCRIPT_FETCH_MAX);
		if (rc != -EFBIG && rc != -EROFS)
			return rc; /* else grown meanwhile, or stopped: the archive */
	}
	if (archive_safe(path))
		return fetch_from(dk, f, box, path);
	remote_tmp_name(tmp, sizeof(tmp), "get");
	snprintf(plain, sizeof(plain), "/tmp/%s", tmp);
	rc = remote_runf(&dk->r, box, "download", REMOTE_RUN_RETRY, NULL, "cp -- %q %q",
			 path, plain);
	if (!rc)
		rc = fetch_from(dk, f, box, plain);
	remote_runf(&dk->r, box, "download", REMOTE_RUN_RETRY, NULL, "rm -f -- %q",
		    plain);
	return rc;
}

/* ---- upload: a tar made around the copy as it is sent ---- */

/* A mode as chmod(1) takes it, in a static buffer per thread. */
static const char *mode_word(mode_t mode)
{
	static __thread char w[8];

	snprintf(w, sizeof(w), "%04o", (unsigned)(mode & 07777));
	return w;
}

struct upload {
	struct staged *f;
	struct strbuf head; /* the member's header(s) */
	off_t size;	    /* the file's bytes */
};

static ssize_t upload_read(void *ctx, char *buf, size_t len, off_t off)
{
	struct upload *u = ctx;
	off_t hlen = (off_t)u->head.len, data_end = hlen + u->size;
	ssize_t n;

	if (off < hlen) {
		n = (ssize_t)(hlen - off < (off_t)len ? hlen - off : (off_t)len);
		memcpy(buf, u->head.buf + off, (size_t)n);
		return n;
	}
	if (off < data_end) {
		if ((off_t)len > data_end - off)
			len = (size_t)(data_end - off);
		do
			n = pread(u->f->fd, buf, len, off - hlen);
		while (n < 0 && errno == EINTR);
		return n < 0 ? -errno : n == 0 ? -EIO : n; /* 0: the copy shrank */
	}
	memset(buf, 0, len); /* padding, then the end of the archive */
	return (ssize_t)len;
}

/* PUT the copy into directory `dir` of box as `name` with `mode`, owned
 * by root, with `mtime`: the engine gives the file all three. */
static int put_file(struct dk *dk, struct staged *f, const char *box, const char *dir,
		    const char *name, mode_t mode, off_t size,
		    const struct timespec *mtime)
{
	struct upload u = { .f = f, .head = STRBUF_INIT(32768), .size = size };
	struct tar_entry e = {
		.type = '0',
		.mode = mode & 07777,
		.size = size,
		.mtime = *mtime,
	};
	struct http_body body = { 0, upload_read, &u };
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	struct http_resp r;
	int rc;

	snprintf(e.name, sizeof(e.name), "%s", name);
	rc = tar_header(&u.head, &e);
	if (!rc)
		rc = dk_url(&url, dk, box, "/archive", dir[0] ? dir : "/");
	if (rc) {
		strbuf_release(&u.head);
		return rc;
	}
	body.size = (off_t)u.head.len + size + tar_padding(size) + TAR_END_LEN;
	req.method = "PUT";
	req.url = url.buf;
	req.content_type = "application/x-tar";
	req.stream = &body;
	req.idempotent = 1; /* the same archive again lands the same */
	req.transfer = 1;
	rc = http_do(dk->http, &req, &r);
	if (!rc) {
		if (r.status == 404)
			rc = errmap_fail_http("docker", "upload", 404,
					      "no such directory in the container", NULL,
					      ENOENT);
		else if (r.status != 200)
			rc = dk_fail("upload", &r, NULL);
		http_resp_release(&r);
	}
	strbuf_release(&url);
	strbuf_release(&u.head);
	return rc;
}

/*
 * A new file goes up as it is.  An existing one goes up beside it and a
 * script copies it into place, keeping its inode, owner, mode and links;
 * so does a file the archive API cannot name (archive_safe()), beside it
 * or, if its directory cannot be named either, in /tmp.
 */
static int sf_upload(void *ctx, struct stat *remote, struct staged *f, const char *box,
		     const char *path, off_t size)
{
	struct dk *dk = ctx;
	const char *slash = strrchr(path, '/');
	struct strbuf checks = STRBUF_INIT(65536), body = STRBUF_INIT(4096);
	struct strbuf out = STRBUF_INIT(8192);
	char dir[SBX_PATH_MAX], tmp[96];
	struct timespec now;
	int rc;

	rc = remote_writable(&dk->r, box);
	if (rc)
		return rc;
	if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	clock_gettime(CLOCK_REALTIME, &now);
	if (!f->fetched && archive_safe(path)) {
		/* What the engine makes of the tar: all of lstat but the
		 * inode, with no request more. */
		rc = put_file(dk, f, box, dir, slash + 1, f->mode, size, &now);
		if (!rc) {
			remote->st_mode = S_IFREG | (f->mode & 07777);
			remote->st_nlink = 1;
			remote->st_size = size;
			remote->st_mtim = remote->st_atim = remote->st_ctim = now;
		}
		return rc;
	}
	if (!archive_safe(dir))
		snprintf(dir, sizeof(dir), "/tmp");
	remote_tmp_name(tmp, sizeof(tmp), "up");
	rc = put_file(dk, f, box, dir, tmp, 0600, size, &now);
	if (rc)
		return rc;
	/* Copy it into place, then tell the file's attributes. */
	rc = sh_script(
		&checks,
		"t=%q/%q; f=%q; n=; [ -e \"$f\" ] || n=1; "
		"cat -- \"$t\" > \"$f\" && { [ -z \"$n\" ] || chmod %s \"$f\"; } && "
		"rm -f -- \"$t\" || { s=$?; rm -f -- \"$t\"; exit $s; }; ",
		dir, tmp, path, mode_word(f->mode));
	if (!rc)
		rc = find_script_stat(&body, "f");
	if (!rc)
		rc = remote_run_bytes(&dk->r, box, "save", checks.buf, body.buf, 1, 0,
				      &out);
	if (!rc && find_parse_one(out.buf, out.len, remote)) {
		sbx_failf("docker: save: the file's attributes do not parse");
		rc = -EPROTO;
	}
	strbuf_release(&checks);
	strbuf_release(&body);
	strbuf_release(&out);
	return rc;
}

const struct stagefile_ops dk_stagefile_ops = {
	.name = "docker",
	.flags = STAGEFILE_LAZY_WRONLY | STAGEFILE_SYMLINK_ELOOP,
	.upload_stat = STAGEFILE_STAT_BY_UPLOAD,
	.info = sf_info,
	.fetch = sf_fetch,
	.upload = sf_upload,
};

/* ---- a stopped container: read-only, through the archive API ---- */

/* Bytes of a directory's archive that a listing of a stopped container
 * reads at most: the archive holds the whole subtree, contents too. */
#define STOPPED_LIST_MAX (256ll << 20)

struct listing {
	struct tar_reader tar;
	char dir[SBX_PATH_MAX]; /* the first member's name: the directory */
	int members;
	off_t bytes;
	sbx_dirent_fn fn; /* NULL: looking for `want` alone */
	void *ctx;
	int stop;
	const char *want; /* the entry whose link target goes to link */
	char *link;
	size_t link_size;
	int found;
};

static mode_t type_bits(char type)
{
	switch (type) {
	case '2':
		return S_IFLNK;
	case '3':
		return S_IFCHR;
	case '4':
		return S_IFBLK;
	case '5':
		return S_IFDIR;
	case '6':
		return S_IFIFO;
	default:
		return S_IFREG;
	}
}

static int list_entry(void *ctx, const struct tar_entry *e)
{
	struct listing *l = ctx;
	size_t n = strlen(e->name), dl;
	const char *child;
	char name[SBX_PATH_MAX];
	struct stat st;

	while (n > 1 && e->name[n - 1] == '/')
		n--;
	if (!l->members++) {
		/* The directory itself: "etc", or "/" for the root. */
		snprintf(l->dir, sizeof(l->dir), "%.*s", (int)n, e->name);
		if (!strcmp(l->dir, "/") || !strcmp(l->dir, "."))
			l->dir[0] = '\0';
		return 0;
	}
	dl = strlen(l->dir);
	if (l->stop || n <= dl + 1 || strncmp(e->name, l->dir, dl) || e->name[dl] != '/')
		return 0;
	snprintf(name, sizeof(name), "%.*s", (int)(n - dl - 1), e->name + dl + 1);
	child = name;
	if (strchr(child, '/') || !sbx_entry_name_valid(child))
		return 0; /* deeper down, or no name the tree can show */
	if (l->want) {
		if (!strcmp(child, l->want) && e->type == '2' &&
		    strlen(e->link) < l->link_size) {
			snprintf(l->link, l->link_size, "%s", e->link);
			l->found = 1;
			l->stop = 1;
		}
		return 0;
	}
	memset(&st, 0, sizeof(st));
	st.st_mode = type_bits(e->type) | e->mode;
	st.st_nlink = S_ISDIR(st.st_mode) ? 2 : 1;
	st.st_uid = e->uid;
	st.st_gid = e->gid;
	st.st_size = S_ISLNK(st.st_mode) ? (off_t)strlen(e->link) : e->size;
	st.st_mtim = st.st_atim = st.st_ctim = e->mtime;
	if (l->fn && l->fn(l->ctx, child, &st))
		l->stop = 1;
	return 0;
}

static int list_data(void *ctx, const char *buf, size_t len)
{
	(void)ctx, (void)buf, (void)len;
	return 0;
}

static int list_write(void *ctx, const char *buf, size_t len)
{
	struct listing *l = ctx;

	l->bytes += (off_t)len;
	if (l->bytes > STOPPED_LIST_MAX) {
		sbx_failf(
			"docker: the container is stopped, and this directory's archive "
			"is over %lld MiB: start it to list",
			STOPPED_LIST_MAX >> 20);
		return -EFBIG;
	}
	return l->stop ? -ECANCELED : tar_feed(&l->tar, buf, len);
}

static int list_reset(void *ctx)
{
	struct listing *l = ctx;

	l->members = 0;
	l->bytes = 0;
	tar_reader_init(&l->tar, list_entry, list_data, l);
	return 0;
}

/* The entries of box:path from its archive to fn; or, with l->want set,
 * the link target of that entry. */
static int list_stopped(struct dk *dk, struct listing *l, const char *box,
			const char *path)
{
	const struct http_sink sink = { list_write, list_reset, l };
	struct http_resp r;
	int rc = archive_get(dk, &r, box, path, &sink);

	if (rc == -ECANCELED)
		rc = 0; /* fn asked for no more */
	else if (!rc) {
		if (r.status == 404)
			rc = -ENOENT;
		else if (r.status != 200)
			rc = dk_fail("list", &r, NULL);
		else
			rc = tar_finish(&l->tar);
		http_resp_release(&r);
	}
	return rc;
}

/* A running container's files are the remote layer's scripts'; a
 * stopped one's are read-only, and listed from its archive. */
static int fs_readonly(struct remote *r, const char *box)
{
	return !dk_running((struct dk *)r, box);
}

static int fs_readdir(struct remote *r, const char *box, const char *path,
		      sbx_dirent_fn fn, void *ctx)
{
	struct listing *l;
	int rc;

	if (dk_running((struct dk *)r, box))
		return -ENOSYS;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fn = fn;
	l->ctx = ctx;
	rc = list_stopped((struct dk *)r, l, box, path);
	free(l);
	return rc;
}

/* Stopped, the archive of its directory tells (the engine's stat gives
 * a resolved target, not the link's own text). */
static int fs_readlink(struct remote *r, char *buf, size_t size, const char *box,
		       const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[SBX_PATH_MAX];
	struct listing *l;
	int rc;

	if (dk_running((struct dk *)r, box))
		return -ENOSYS;
	if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->want = slash + 1;
	l->link = buf;
	l->link_size = size;
	rc = list_stopped((struct dk *)r, l, box, dir[0] ? dir : "/");
	if (!rc && !l->found)
		rc = -EINVAL;
	free(l);
	return rc;
}

const struct remote_fs_ops dk_fs_ops = {
	.readonly = fs_readonly,
	.readdir = fs_readdir,
	.readlink = fs_readlink,
};

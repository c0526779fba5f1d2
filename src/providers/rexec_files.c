/* SPDX-License-Identifier: MIT */
/*
 * Rexec: root/.  See rexec.c for the overview.
 *
 * Attributes and listings come from GNU find(1) run in the container
 * (-printf with a NUL after each name), never from the server's parsed
 * `ls`: one script per getattr, one per directory listing, and every
 * byte of a name survives (the output travels base64-encoded, see
 * rexec_run.c).  File data moves whole, through the REST file endpoints
 * (exact bytes), staged on disk (stage.c): downloaded at open, uploaded
 * at close or fsync (stagefile.c).  A file made here with the mode the
 * server gives every upload (0644) goes straight to its name, in one
 * request.  Any other upload goes to a temporary name in the target
 * directory and a script then gives it its mode and renames it over the
 * file; an existing file is
 * rewritten in place instead, keeping its inode, owner and links.  The server takes at
 * most 100 MiB per upload: a larger file goes up in parts that a script joins.  The rest
 * (mkdir, unlink, rmdir, rename, chmod, chown, truncate, utimens,
 * symlinks, links, statfs) are scripts that exit with an errno value.
 */
#include "rexec.h"

/* ---- staged file data (stagefile.c keeps the bookkeeping) ---- */

static int sf_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	return remote_find_stat(ctx, st, box, path);
}

/* A path fit for a URL query as the server decodes it: printable ASCII. */
static int plain(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* Download box:path into f (locked by the caller). */
static int sf_fetch(void *ctx, struct staged *f, const char *box, const char *path,
		    const struct stat *remote)
{
	struct rx *rx = ctx;
	struct strbuf url = STRBUF_INIT(16384);
	struct http_resp r;
	char id[RX_ID_MAX], tmp[128] = "";
	const char *from = path;
	int rc;

	if (!plain(path)) {
		/* A name the query cannot carry: copy it to a plain one, in
		 * the home volume (Docker's archive API does not see tmpfs
		 * mounts such as /tmp). */
		char t[96];

		remote_tmp_name(t, sizeof(t), "dl");
		snprintf(tmp, sizeof(tmp), "%s/%s", RX_HOME, t);
		rc = remote_runf(&rx->r, box, "download", 0, NULL,
				 "cp -- %q %q 2>&1 || exit 5", path, tmp);
		if (rc)
			return rc;
		from = tmp;
	}
	rc = rx_docker_id(rx, id, sizeof(id), box, 0);
	if (!rc)
		rc = rx_url(&url, rx, id, "/files", from);
	if (rc)
		goto out;
	rc = remote_download(rx->http, &r, "rexec", url.buf, f->fd,
			     stage_max(rx->r.stage), (uint64_t)remote->st_size, path);
	if (rc)
		goto out;
	if (r.status != 200)
		rc = rx_fail_resp("download", &r, NULL);
	http_resp_release(&r);
out:
	if (tmp[0])
		remote_runf(&rx->r, box, "download", REMOTE_RUN_RETRY, NULL,
			    "rm -f -- %q", tmp);
	strbuf_release(&url);
	return rc;
}

/* A copy of bytes [off, off+len) of fd in an unnamed file under dir. */
static int part_file(const char *dir, int fd, off_t off, off_t len)
{
	int out = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	off_t in_off = off, left = len;

	if (out < 0)
		return -errno;
	while (left > 0) {
		ssize_t n = copy_file_range(fd, &in_off, out, NULL, (size_t)left, 0);

		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			close(out);
			return -e;
		}
		left -= n;
	}
	return out;
}

/* POST one multipart upload of fd into the container's directory dir. */
static int upload_one(struct rx *rx, const char *id, const char *dir, const char *name,
		      int fd, off_t size)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	struct http_part part = {
		.name = "file", .filename = name, .fd = fd, .size = size
	};
	struct http_resp r;
	cJSON *j = NULL;
	const cJSON *got;
	int rc = rx_url(&url, rx, id, "/files", dir);

	if (rc)
		return rc;
	req.method = "POST";
	req.url = url.buf;
	req.part = &part;
	req.idempotent = 1; /* a whole file under a name of our own */
	req.transfer = 1;
	rc = http_do(rx->http, &req, &r);
	strbuf_release(&url);
	if (rc) {
		sbx_failf("rexec: upload: %s", sbx_fail_text());
		return rc;
	}
	if (r.status != 200) {
		rc = rx_fail_resp("upload", &r, NULL);
	} else if (!(j = cJSON_ParseWithLength(r.body.buf, r.body.len)) ||
		   !cJSON_IsNumber(got = cJSON_GetObjectItemCaseSensitive(j, "size")) ||
		   got->valuedouble != (double)size) {
		sbx_failf("rexec: upload: the server did not take all %lld bytes",
			  (long long)size);
		rc = -EIO;
	}
	cJSON_Delete(j);
	http_resp_release(&r);
	return rc;
}

/* A name the upload's part header carries as it is. */
static int plain_name(const char *s)
{
	return plain(s) && !strpbrk(s, "\"\\");
}

/*
 * A file made here and never uploaded, with the mode the server gives
 * (0644): straight to its name in one request, since nothing is there to
 * keep (the kernel creates a file only after a lookup found none).  The
 * answer tells the size, not the mtime.  -EAGAIN: not such a file.
 */
static int put_new(struct rx *rx, const char *box, const char *path, int fd, off_t size,
		   mode_t mode, struct stat *remote)
{
	char id[RX_ID_MAX], dir[SBX_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int rc;

	if ((mode & 07777) != 0644 || size > RX_UPLOAD_MAX || !slash ||
	    !plain_name(slash + 1) || (size_t)(slash - path) >= sizeof(dir))
		return -EAGAIN;
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (!plain(dir))
		return -EAGAIN;
	rc = rx_docker_id(rx, id, sizeof(id), box, 0);
	if (!rc)
		rc = upload_one(rx, id, dir, slash + 1, fd, size);
	if (rc)
		return rc;
	remote->st_mode = S_IFREG | 0644;
	remote->st_nlink = 1;
	remote->st_size = size;
	remote->st_mtim.tv_nsec = UTIME_OMIT;
	return 0;
}

/*
 * Put the staged copy on the server as dir/tmp (in parts of at most
 * 100 MiB, then joined), and a script gives it its mode and renames it
 * over path; the answer is the new file's attributes (stagefile.c checks
 * the size).
 */
static int put_file(struct rx *rx, const char *box, const char *path, int fd, off_t size,
		    mode_t mode, struct stat *remote)
{
	struct strbuf s = STRBUF_INIT(1u << 20), out = STRBUF_INIT(1u << 16);
	char id[RX_ID_MAX], tmp[96], part[128], m[8];
	char *dir = strdup(path), *slash;
	const char *updir;
	int nparts = size > RX_UPLOAD_MAX
			     ? (int)((size + RX_UPLOAD_MAX - 1) / RX_UPLOAD_MAX)
			     : 1;
	int rc, i;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	slash[slash == dir ? 1 : 0] = '\0';
	/* A directory the query cannot carry: go through the home. */
	updir = plain(dir) ? dir : RX_HOME;
	remote_tmp_name(tmp, sizeof(tmp), "up");
	rc = rx_docker_id(rx, id, sizeof(id), box, 0);
	if (size == 0)
		nparts = 0; /* the script makes an empty file */
	for (i = 0; !rc && i < nparts; i++) {
		off_t off = (off_t)i * RX_UPLOAD_MAX;
		off_t len = size - off < RX_UPLOAD_MAX ? size - off : RX_UPLOAD_MAX;
		int pfd =
			nparts > 1 ? part_file(stage_dir(rx->r.stage), fd, off, len) : fd;

		if (pfd < 0) {
			sbx_failf("rexec: upload \"%s\": cannot cut a part: %s", path,
				  strerror(-pfd));
			rc = pfd == -ENOSPC ? -ENOSPC : -EIO;
			break;
		}
		snprintf(part, sizeof(part), nparts > 1 ? "%s.%d" : "%s", tmp, i);
		rc = upload_one(rx, id, updir, part, pfd, len);
		if (pfd != fd)
			close(pfd);
	}
	snprintf(m, sizeof(m), "%05o", (unsigned)(mode & 07777));
	/* t: the upload; then the parts joined, mode set, renamed over. */
	if (!rc)
		rc = sh_script(&s, "u=%q; t=\"$u\"/%q; p=%q; ", updir, tmp, path);
	if (rc) {
		/* the upload failed, or the script is too big */
	} else if (nparts > 1) {
		sh_script(&s,
			  "n=%L; i=0; : > \"$t\" || exit 5; while [ $i -lt $n ]; do "
			  "cat \"$t.$i\" >> \"$t\" || { rm -f \"$t\"*; exit 28; }; "
			  "rm -f \"$t.$i\"; i=$((i+1)); done; ",
			  (long long)nparts);
	} else if (nparts == 0)
		rc = strbuf_addf(&s, ": > \"$t\" || exit 5; ");
	if (rc) {
		/* Leave no parts behind. */
		s.len = 0;
		if (!sh_script(&s, "rm -f -- %q/%q*", updir, tmp))
			rx_run_errno(rx, box, "upload", s.buf, REMOTE_RUN_RETRY, NULL);
		goto out;
	}
	/* An existing file is rewritten in place, as a write would: it
	 * keeps its inode, owner, mode and hard links.  A new one is renamed
	 * into place with its mode. */
	rc = sh_script(&s,
		       "if [ -f \"$p\" ] && ! [ -L \"$p\" ]; then "
		       "cat \"$t\" > \"$p\" 2>&1 || { rm -f \"$t\"; exit 28; }; "
		       "rm -f \"$t\"; "
		       "else chmod %s \"$t\" && mv -fT -- \"$t\" \"$p\" 2>&1 || "
		       "{ rm -f \"$t\"; [ -d \"$p\" ] && exit 21; exit 5; }; fi; ",
		       m);
	if (!rc)
		rc = find_script_stat(&s, "p");
	if (!rc)
		rc = rx_run_errno(rx, box, "upload", s.buf, 0, &out);
	if (!rc && find_parse_one(out.buf, out.len, remote)) {
		sbx_failf("rexec: upload \"%s\": unexpected answer", path);
		rc = -EPROTO;
	}
out:
	free(dir);
	strbuf_release(&s);
	strbuf_release(&out);
	return rc;
}

static int sf_upload(void *ctx, struct stat *remote, struct staged *f, const char *box,
		     const char *path, off_t size)
{
	int rc = -EAGAIN;

	if (!f->fetched)
		rc = put_new(ctx, box, path, f->fd, size, f->mode, remote);
	if (rc == -EAGAIN)
		rc = put_file(ctx, box, path, f->fd, size, f->mode, remote);
	return rc;
}

const struct stagefile_ops rx_stagefile_ops = {
	.name = "rexec",
	/* put_file()'s script ends by printing the file's attributes;
	 * put_new() knows the size. */
	.upload_stat = STAGEFILE_STAT_BY_UPLOAD,
	.info = sf_info,
	.fetch = sf_fetch,
	.upload = sf_upload,
};

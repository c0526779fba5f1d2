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
 * at close or fsync (stagefile.c).  An upload goes to a temporary name in the target
 * directory and a script then gives it its mode and renames it over the
 * file (the server writes every upload 0644); an existing file is
 * rewritten in place instead, keeping its inode, owner and links.  The server takes at
 * most 100 MiB per upload: a larger file goes up in parts that a script joins.  The rest
 * (mkdir, unlink, rmdir, rename, chmod, chown, truncate, utimens,
 * symlinks, links, statfs) are scripts that exit with an errno value.
 */
#include "rexec.h"

/* type mode links uid gid size atime mtime ctime inode name NUL */
static const char find_fmt[] = "%y %m %n %U %G %s %A@ %T@ %C@ %i %f\\0";
/* Without GNU find (busybox): stat(1), one process per entry, times in
 * whole seconds: xRAWMODE links uid gid size atime mtime ctime inode
 * path, a newline, then a NUL from printf. */
static const char stat_fmt[] = "x%f %h %u %g %s %X %Y %Z %i %n";
/* Is there a find with -printf? */
#define HAVE_FIND "find / -maxdepth 0 -printf '' 2>/dev/null"

/* ---- find -printf entries ---- */

static int parse_u64(const char **p, unsigned long long *out)
{
	char *end;

	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	*out = strtoull(*p, &end, 10);
	if (errno || *end != ' ')
		return -1;
	*p = end + 1;
	return 0;
}

static int parse_octal(const char **p, unsigned long *out)
{
	char *end;

	if (**p < '0' || **p > '7')
		return -1;
	*out = strtoul(*p, &end, 8);
	if (*end != ' ' || *out > 07777)
		return -1;
	*p = end + 1;
	return 0;
}

/* "1700000000.1234567890 " into ts. */
static int parse_time(const char **p, struct timespec *ts)
{
	const char *s = *p;
	long long sec = 0;
	long nsec = 0;
	int digits = 0, neg = 0;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (sec > 1000000000000ll)
			return -1;
		sec = sec * 10 + (*s - '0');
	}
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*s - '0');
	for (; digits < 9; digits++)
		nsec *= 10;
	if (*s != ' ')
		return -1;
	ts->tv_sec = (time_t)(neg ? -sec : sec);
	ts->tv_nsec = neg ? 0 : nsec;
	*p = s + 1;
	return 0;
}

static mode_t type_of(char c)
{
	switch (c) {
	case 'f':
		return S_IFREG;
	case 'd':
		return S_IFDIR;
	case 'l':
		return S_IFLNK;
	case 'p':
		return S_IFIFO;
	case 's':
		return S_IFSOCK;
	case 'c':
		return S_IFCHR;
	case 'b':
		return S_IFBLK;
	default:
		return 0;
	}
}

/* stat's "x81a4 " (raw st_mode in hex) into type and permissions. */
static int parse_rawmode(const char **p, mode_t *type, unsigned long *perm)
{
	char *end;
	unsigned long m = strtoul(*p + 1, &end, 16);

	if (end == *p + 1 || *end != ' ' || m > 0xffff)
		return -1;
	*type = (mode_t)(m & S_IFMT);
	*perm = m & 07777;
	*p = end + 1;
	return 0;
}

/* One entry, NUL-terminated, into st and *name (which points into s; a
 * stat(1) entry's path is cut to its last component there).  -EPROTO if
 * it is not what find or stat print. */
static int parse_entry(char *s, struct stat *st, const char **name)
{
	unsigned long long nlink, uid, gid, size, ino;
	unsigned long perm = 0;
	mode_t type = type_of(s[0]);
	int from_stat = s[0] == 'x';
	const char *p = s + 2;

	memset(st, 0, sizeof(*st));
	if (from_stat) {
		p = s;
		if (parse_rawmode(&p, &type, &perm))
			return -EPROTO;
	} else if (!type || s[1] != ' ' || parse_octal(&p, &perm)) {
		return -EPROTO;
	}
	s = (char *)p;
	if (!type || parse_u64(&p, &nlink) || parse_u64(&p, &uid) ||
	    parse_u64(&p, &gid) || parse_u64(&p, &size) || parse_time(&p, &st->st_atim) ||
	    parse_time(&p, &st->st_mtim) || parse_time(&p, &st->st_ctim) ||
	    parse_u64(&p, &ino) || size > (1ull << 62) || uid > 0xfffffffful ||
	    gid > 0xfffffffful)
		return -EPROTO;
	s = (char *)p;
	if (from_stat) {
		size_t n = strlen(s);
		char *slash;

		if (!n || s[n - 1] != '\n')
			return -EPROTO;
		s[n - 1] = '\0';
		slash = strrchr(s, '/');
		if (slash && slash[1])
			s = slash + 1;
	}
	st->st_mode = type | (mode_t)perm;
	st->st_nlink = nlink ? (nlink_t)nlink : 1;
	st->st_uid = (uid_t)uid;
	st->st_gid = (gid_t)gid;
	st->st_size = (off_t)size;
	/* No inode number: a new file's is known only after its upload,
	 * and the tree needs one stable identity per file from the start. */
	(void)ino;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	*name = s;
	return 0;
}

/* ---- attributes ---- */

/* lstat() of path in the container. */
static int stat_call(struct rx *rx, struct stat *st, const char *box, const char *path)
{
	struct strbuf out = STRBUF_INIT(1u << 16);
	const char *name;
	int rc = rx_runf(
		rx, box, "stat", RX_RUN_RETRY, &out,
		"p=%q; { [ -e \"$p\" ] || [ -L \"$p\" ]; } || exit 2; "
		"if " HAVE_FIND "; then find \"$p\" -maxdepth 0 -printf %q "
		"|| exit 5; else stat -c %q -- \"$p\" || exit 5; printf '\\0'; fi",
		path, find_fmt, stat_fmt);

	if (!rc && (!out.len || out.buf[out.len - 1] != '\0' ||
		    parse_entry(out.buf, st, &name))) {
		sbx_failf("rexec: stat \"%s\": unexpected answer", path);
		rc = -EPROTO;
	}
	strbuf_release(&out);
	return rc;
}

int rx_getattr(struct sbx_provider *p, struct stat *out, const char *box,
	       const char *path)
{
	struct rx *rx = RX(p);

	if (!stage_stat(rx->stage, box, path, out))
		return 0;
	return stat_call(rx, out, box, path);
}

int rx_unsaved(struct sbx_provider *p, struct stat *out, const char *box,
	       const char *path)
{
	return stage_stat(RX(p)->stage, box, path, out);
}

int rx_readdir(struct sbx_provider *p, const char *box, const char *path,
	       sbx_dirent_fn fn, void *ctx)
{
	struct rx *rx = RX(p);
	struct strbuf out = STRBUF_INIT(RX_OUTPUT_MAX);
	size_t i = 0;
	int rc = rx_runf(rx, box, "list", RX_RUN_RETRY, &out,
			 "d=%q; [ -d \"$d\" ] || { [ -e \"$d\" ] && exit 20; exit 2; }; "
			 "[ -L \"$d\" ] && exit 20; "
			 "if " HAVE_FIND "; then "
			 "find \"$d\" -mindepth 1 -maxdepth 1 -printf %q; exit 0; fi; "
			 "for f in \"$d\"/* \"$d\"/.[!.]* \"$d\"/..?*; do "
			 "{ [ -e \"$f\" ] || [ -L \"$f\" ]; } || continue; "
			 "stat -c %q -- \"$f\" && printf '\\0'; done; exit 0",
			 path, find_fmt, stat_fmt);

	while (!rc && i < out.len) {
		const char *e = memchr(out.buf + i, '\0', out.len - i), *name;
		size_t next = e ? (size_t)(e - out.buf) + 1 : 0;
		struct stat st;

		if (!e)
			break; /* an entry cut short: find was interrupted */
		/* Entries that are not what find prints, or names that are no
		 * valid entry, are left out, never shown wrong. */
		if (!parse_entry(out.buf + i, &st, &name) && sbx_entry_name_valid(name) &&
		    fn(ctx, name, &st))
			break;
		i = next;
	}
	strbuf_release(&out);
	return rc;
}

/* Opens go through stagefile.c, with the transfers below. */
int rx_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *box,
	    const char *path, int flags, mode_t mode, const struct stat *known)
{
	return stagefile_open(&RX(p)->files, fh, st, box, path, flags, mode, known);
}

/* ---- staged file data (stagefile.c keeps the bookkeeping) ---- */

static int sf_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	return stat_call(ctx, st, box, path);
}

/* A path fit for a URL query as the server decodes it: printable ASCII. */
static int plain(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static void tmp_name(char *out, size_t size, const char *tag)
{
	static unsigned long counter;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	snprintf(out, size, ".sbxfs-%s.%d.%lu.%lx", tag, (int)getpid(), n,
		 (unsigned long)time(NULL));
}

/* Download box:path into f (locked by the caller). */
static int sf_fetch(void *ctx, struct staged *f, const char *box, const char *path,
		    const struct stat *remote)
{
	struct rx *rx = ctx;
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	struct http_resp r;
	char id[RX_ID_MAX], tmp[128] = "";
	const char *from = path;
	int rc;

	if (!plain(path)) {
		/* A name the query cannot carry: copy it to a plain one, in
		 * the home volume (Docker's archive API does not see tmpfs
		 * mounts such as /tmp). */
		char t[96];

		tmp_name(t, sizeof(t), "dl");
		snprintf(tmp, sizeof(tmp), "%s/%s", RX_HOME, t);
		rc = rx_runf(rx, box, "download", 0, NULL, "cp -- %q %q 2>&1 || exit 5",
			     path, tmp);
		if (rc)
			return rc;
		from = tmp;
	}
	rc = rx_docker_id(rx, id, sizeof(id), box, 0);
	if (!rc)
		rc = rx_url(&url, rx, id, "/files", from);
	if (rc)
		goto out;
	req.method = "GET";
	req.url = url.buf;
	/* http_do() empties the copy first: it ends up holding what came. */
	req.out_fd = f->fd;
	req.idempotent = 1;
	req.transfer = 1;
	req.max_body = stage_max(rx->stage);
	rc = http_do(rx->http, &req, &r);
	if (rc) {
		sbx_failf("rexec: download \"%s\": %s", path, sbx_fail_text());
		goto out;
	}
	if (r.status != 200)
		rc = rx_fail_resp("download", &r, NULL);
	http_resp_release(&r);
out:
	if (tmp[0])
		rx_runf(rx, box, "download", RX_RUN_RETRY, NULL, "rm -f -- %q", tmp);
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
	struct http_part part = { "file", name, fd, size };
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
	const char *name, *updir;
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
	tmp_name(tmp, sizeof(tmp), "up");
	rc = rx_docker_id(rx, id, sizeof(id), box, 0);
	if (size == 0)
		nparts = 0; /* the script makes an empty file */
	for (i = 0; !rc && i < nparts; i++) {
		off_t off = (off_t)i * RX_UPLOAD_MAX;
		off_t len = size - off < RX_UPLOAD_MAX ? size - off : RX_UPLOAD_MAX;
		int pfd = nparts > 1 ? part_file(rx->stage_dir, fd, off, len) : fd;

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
	if (rx_script(&s, "u=%q; t=\"$u\"/%q; p=%q; ", updir, tmp, path)) {
		rc = -ENOMEM;
	} else if (nparts > 1) {
		rx_script(&s,
			  "n=%L; i=0; : > \"$t\" || exit 5; while [ $i -lt $n ]; do "
			  "cat \"$t.$i\" >> \"$t\" || { rm -f \"$t\"*; exit 28; }; "
			  "rm -f \"$t.$i\"; i=$((i+1)); done; ",
			  (long long)nparts);
	} else if (nparts == 0)
		rc = strbuf_addf(&s, ": > \"$t\" || exit 5; ") ? -ENOMEM : 0;
	if (rc) {
		/* Leave no parts behind. */
		s.len = 0;
		if (!rx_script(&s, "rm -f -- %q/%q*", updir, tmp))
			rx_run_errno(rx, box, "upload", s.buf, RX_RUN_RETRY, NULL);
		goto out;
	}
	/* An existing file is rewritten in place, as a write would: it
	 * keeps its inode, owner, mode and hard links.  A new one is renamed
	 * into place with its mode. */
	rc = rx_script(&s,
		       "if [ -f \"$p\" ] && ! [ -L \"$p\" ]; then "
		       "cat \"$t\" > \"$p\" 2>&1 || { rm -f \"$t\"; exit 28; }; "
		       "rm -f \"$t\"; "
		       "else chmod %s \"$t\" && mv -fT -- \"$t\" \"$p\" 2>&1 || "
		       "{ rm -f \"$t\"; [ -d \"$p\" ] && exit 21; exit 5; }; fi; "
		       "if " HAVE_FIND "; then find \"$p\" -maxdepth 0 -printf %q; "
		       "else stat -c %q -- \"$p\"; printf '\\0'; fi",
		       m, find_fmt, stat_fmt);
	if (!rc)
		rc = rx_run_errno(rx, box, "upload", s.buf, 0, &out);
	if (!rc && (!out.len || out.buf[out.len - 1] != '\0' ||
		    parse_entry(out.buf, remote, &name))) {
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
	return put_file(ctx, box, path, f->fd, size, f->mode, remote);
}

const struct stagefile_ops rx_stagefile_ops = {
	.name = "rexec",
	/* put_file()'s script ends by printing the file's attributes. */
	.upload_stat = STAGEFILE_STAT_BY_UPLOAD,
	.info = sf_info,
	.fetch = sf_fetch,
	.upload = sf_upload,
};

/* ---- what the REST API lacks, as scripts ---- */

#define EXISTS(v) "{ [ -e \"$" v "\" ] || [ -L \"$" v "\" ]; }"
#define REALDIR(v) "{ [ -d \"$" v "\" ] && ! [ -L \"$" v "\" ]; }"

int rx_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	char m[8];

	snprintf(m, sizeof(m), "%05o", (unsigned)(mode & 07777));
	return rx_runf(RX(p), box, "mkdir", 0, NULL,
		       "p=%q; " EXISTS("p") " && exit 17; "
					    "mkdir -m %s -- \"$p\" 2>&1 && exit 0; "
					    "[ -d \"${p%%/*}/\" ] || exit 2; exit 5",
		       path, m);
}

int rx_unlink(struct sbx_provider *p, const char *box, const char *path)
{
	int rc = rx_runf(RX(p), box, "unlink", 0, NULL,
			 "p=%q; " EXISTS("p") " || exit 2; " REALDIR(
				 "p") " && exit 21; "
				      "rm -f -- \"$p\" 2>&1 || exit 5",
			 path);

	/* A file created and still open is not on the server yet. */
	if ((!rc || rc == -ENOENT) && stage_unlink(RX(p)->stage, box, path))
		rc = 0;
	return rc;
}

int rx_rmdir(struct sbx_provider *p, const char *box, const char *path)
{
	/* Never the server's delete: it is rm -rf. */
	return rx_runf(RX(p), box, "rmdir", 0, NULL,
		       "d=%q; [ -L \"$d\" ] && exit 20; "
		       "[ -d \"$d\" ] || { [ -e \"$d\" ] && exit 20; exit 2; }; "
		       "rmdir -- \"$d\" 2>/dev/null && exit 0; "
		       "[ -n \"$(ls -A -- \"$d\" 2>/dev/null)\" ] && exit 39; exit 5",
		       path);
}

int rx_rename(struct sbx_provider *p, const char *box, const char *from, const char *to,
	      unsigned flags)
{
	struct rx *rx = RX(p);
	int rc;

	if (flags & ~RENAME_NOREPLACE) {
		sbx_failf("rexec: rename cannot exchange two files");
		return -EINVAL;
	}
	rc = stagefile_flush_pending(&rx->files, box, from);
	if (rc)
		return rc;
	rc = rx_runf(
		rx, box, "rename", 0, NULL,
		"a=%q; b=%q; nr=%s; [ \"$a\" = \"$b\" ] && exit 0; " EXISTS(
			"a") " || exit 2; "
			     "case \"$b\" in \"$a\"/*) exit 22;; esac; "
			     "if " EXISTS(
				     "b") "; then [ $nr = 1 ] && exit 17; "
					  "if " REALDIR("a") "; then " REALDIR(
						  "b") " || exit 20; "
						       "[ -z \"$(ls -A -- \"$b\")\" ] || exit 39; "
						       "elif " REALDIR(
							       "b") "; then exit 21; fi; fi; " SH_RENAME_AB
								    " || exit 5",
		from, to, (flags & RENAME_NOREPLACE) ? "1" : "0");
	if (!rc)
		stage_rename(rx->stage, box, from, to);
	return rc;
}

int rx_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	char m[8];
	int rc = stagefile_flush_pending(&RX(p)->files, box, path);

	/* Five digits: GNU chmod keeps a directory's setuid and setgid bits
	 * under a shorter numeric mode. */
	snprintf(m, sizeof(m), "%05o", (unsigned)(mode & 07777));
	return rc ? rc
		  : rx_runf(RX(p), box, "chmod", RX_RUN_RETRY, NULL,
			    "p=%q; " EXISTS("p") " || exit 2; chmod %s -- \"$p\" 2>&1 || "
						 "exit 5",
			    path, m);
}

int rx_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
	     gid_t gid)
{
	char who[40] = "";
	int rc;

	if (uid != (uid_t)-1)
		snprintf(who, sizeof(who), "%u", (unsigned)uid);
	if (gid != (gid_t)-1)
		snprintf(who + strlen(who), sizeof(who) - strlen(who), ":%u",
			 (unsigned)gid);
	if (!who[0])
		return 0;
	rc = stagefile_flush_pending(&RX(p)->files, box, path);
	return rc ? rc
		  : rx_runf(RX(p), box, "chown", RX_RUN_RETRY, NULL,
			    "p=%q; " EXISTS("p") " || exit 2; chown -h %s -- \"$p\" 2>&1 "
						 "|| exit 1",
			    path, who);
}

int rx_truncate(struct sbx_provider *p, const char *box, const char *path, off_t size)
{
	struct rx *rx = RX(p);
	int rc = stage_truncate(rx->stage, box, path, size);

	if (rc != -ENOENT)
		return rc;
	rc = rx_runf(rx, box, "truncate", RX_RUN_RETRY, NULL,
		     "p=%q; " EXISTS("p") " || exit 2; [ -d \"$p\" ] && exit 21; "
					  "truncate -s %L -- \"$p\" 2>&1 || exit 5",
		     path, (long long)size);
	if (!rc)
		stage_unlink(rx->stage, box, path); /* a cached copy is stale */
	return rc;
}

int rx_utimens(struct sbx_provider *p, const char *box, const char *path,
	       const struct timespec ts[2])
{
	struct rx *rx = RX(p);
	struct strbuf s = STRBUF_INIT(1u << 16);
	static const char *const flag[2] = { "-a", "-m" };
	int rc = stagefile_flush_pending(&rx->files, box, path), i;

	if (!rc)
		rc = rx_script(&s, "p=%q; " EXISTS("p") " || exit 2; ", path);
	for (i = 0; i < 2 && !rc; i++) {
		if (ts[i].tv_nsec == UTIME_OMIT)
			continue;
		rc = strbuf_addf(&s, "touch -h -c %s ", flag[i]) ? -ENOMEM : 0;
		if (!rc && ts[i].tv_nsec != UTIME_NOW)
			rc = strbuf_addf(&s, "-d @%lld.%09ld ", (long long)ts[i].tv_sec,
					 ts[i].tv_nsec)
				     ? -ENOMEM
				     : 0;
		if (!rc)
			rc = strbuf_addf(&s, "-- \"$p\" 2>&1 || exit 5; ") ? -ENOMEM : 0;
	}
	if (!rc)
		rc = rx_run_errno(rx, box, "utimens", s.buf, RX_RUN_RETRY, NULL);
	strbuf_release(&s);
	return rc;
}

int rx_symlink(struct sbx_provider *p, const char *box, const char *target,
	       const char *path)
{
	return rx_runf(RX(p), box, "symlink", 0, NULL,
		       "t=%q; p=%q; " EXISTS("p") " && exit 17; "
						  "ln -s -- \"$t\" \"$p\" 2>&1 || exit 5",
		       target, path);
}

int rx_readlink(struct sbx_provider *p, char *buf, size_t size, const char *box,
		const char *path)
{
	struct strbuf out = STRBUF_INIT(1u << 16);
	int rc = rx_runf(
		RX(p), box, "readlink", RX_RUN_RETRY, &out,
		"p=%q; [ -L \"$p\" ] || { [ -e \"$p\" ] && exit 22; exit 2; }; "
		"if " HAVE_FIND "; then find \"$p\" -maxdepth 0 -printf '%l'; "
		"else t=$(readlink -- \"$p\"; echo x); printf %%s \"${t%%?x}\"; fi",
		path);

	if (!rc && out.len >= size)
		rc = -ENAMETOOLONG;
	if (!rc && out.len && memchr(out.buf, '\0', out.len))
		rc = -EPROTO;
	if (!rc) {
		memcpy(buf, out.buf ? out.buf : "", out.len);
		buf[out.len] = '\0';
	}
	strbuf_release(&out);
	return rc;
}

int rx_link(struct sbx_provider *p, const char *box, const char *from, const char *to)
{
	int rc = stagefile_flush_pending(&RX(p)->files, box, from);

	return rc ? rc
		  : rx_runf(RX(p), box, "link", 0, NULL,
			    "a=%q; b=%q; " EXISTS("a") " || exit 2; " EXISTS(
				    "b") " && exit 17; " REALDIR("a") " && exit 1; "
								      "ln -- \"$a\" \"$b\" 2>&1 || exit 5",
			    from, to);
}

int rx_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
	      const char *path)
{
	struct strbuf o = STRBUF_INIT(4096);
	unsigned long long bsize, blocks, bfree, bavail, files, ffree, namemax;
	int rc = rx_runf(RX(p), box, "statfs", RX_RUN_RETRY, &o,
			 "stat -f -c %q -- %q 2>&1 || exit 5", "%S %b %f %a %c %d %l",
			 path);

	if (rc)
		goto out;
	if (!o.buf || sscanf(o.buf, "%llu %llu %llu %llu %llu %llu %llu", &bsize, &blocks,
			     &bfree, &bavail, &files, &ffree, &namemax) != 7) {
		sbx_failf("rexec: statfs: unexpected answer");
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

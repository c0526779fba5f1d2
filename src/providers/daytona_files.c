/* SPDX-License-Identifier: MIT */
/* Daytona: root/ through the toolbox's file API, and commands for what it
 * lacks.  See daytona.c for the overview. */
#include "daytona.h"

/* ---- file slots ---- */

static int dt_info_call(struct dt *dt, struct stat *st, const char *box, const char *path)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_resp r;
	char *tb;
	cJSON *j;
	int rc = dt_toolbox_of(dt, &tb, box);

	if (rc)
		return rc;
	rc = dt_url_toolbox(&url, tb, "/files/info", "path", path, NULL);
	free(tb);
	if (!rc)
		rc = dt_request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404) {
		rc = -ENOENT;
	} else if (r.status != 200) {
		rc = dt_toolbox_fail(dt, box, "file info", &r, NULL);
	} else if (!(j = dt_parse_json(&r, "file info"))) {
		rc = -EPROTO;
	} else {
		rc = dt_fileinfo_stat(st, NULL, j);
		if (rc)
			sbx_failf("daytona: file info of \"%s\": a bad FileInfo", path);
		cJSON_Delete(j);
	}
	http_resp_release(&r);
	return rc;
}

int dt_readdir(struct sbx_provider *p, const char *box, const char *path,
	       sbx_dirent_fn fn, void *ctx)
{
	struct dt *dt = DT(p);
	struct strbuf url = STRBUF_INIT(16384);
	struct http_resp r;
	char *tb;
	int rc = dt_toolbox_of(dt, &tb, box);

	if (rc)
		return rc;
	rc = dt_url_toolbox(&url, tb, "/files", "path", path, NULL);
	free(tb);
	if (!rc)
		rc = dt_request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT,
				LISTING_MAX);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404) {
		http_resp_release(&r);
		return -ENOENT;
	}
	if (r.status != 200) {
		rc = dt_toolbox_fail(dt, box, "list files", &r, NULL);
		http_resp_release(&r);
		return rc;
	}
	rc = dt_parse_listing(r.body.buf, r.body.len, fn, ctx);
	http_resp_release(&r);
	if (rc < 0) {
		sbx_failf("daytona: list files of \"%s\": not a list", path);
		return rc;
	}
	if (rc)
		sbx_debug("daytona: %s:%s: skipped %d entries that are not valid", box,
			  path, rc);
	return 0;
}

/* ---- staged file data (stagefile.c keeps the bookkeeping) ---- */

static int sf_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	return dt_info_call(ctx, st, box, path);
}

/* Download box:path into f (locked by the caller). */
static int sf_fetch(void *ctx, struct staged *f, const char *box, const char *path,
		    const struct stat *remote)
{
	struct dt *dt = ctx;
	struct strbuf url = STRBUF_INIT(16384);
	struct http_resp r;
	char *tb;
	int rc;

	rc = dt_toolbox_of(dt, &tb, box);
	if (rc)
		return rc;
	rc = dt_url_toolbox(&url, tb, "/files/download", "path", path, NULL);
	free(tb);
	if (rc)
		return rc;
	rc = remote_download(dt->http, &r, "daytona", url.buf, f->fd,
			     stage_max(dt->r.stage), (uint64_t)remote->st_size, path);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status != 200)
		rc = r.status == 404 ? -ENOENT
				     : dt_toolbox_fail(dt, box, "download", &r, NULL);
	else if (r.body_size != remote->st_size)
		sbx_debug("daytona: %s:%s: %lld bytes downloaded, %lld announced", box,
			  path, (long long)r.body_size, (long long)remote->st_size);
	http_resp_release(&r);
	return rc;
}

static int set_mode(struct dt *dt, const char *box, const char *path, mode_t mode);

/* The answer of a bulk upload of path with `mode`: what the server now
 * holds, as far as it tells (no mtime). */
static int bulk_uploaded(struct stat *remote, const struct http_resp *r, const char *path,
			 mode_t mode)
{
	if (dt_parse_uploaded(r->body.buf, r->body.len, path, &remote->st_size)) {
		sbx_failf(
			"daytona: upload \"%s\": the answer does not say what was written",
			path);
		return -EPROTO;
	}
	remote->st_mode = S_IFREG | (mode & 07777);
	remote->st_nlink = 1;
	remote->st_mtim.tv_nsec = UTIME_OMIT;
	return 0;
}

/*
 * Upload f (locked by the caller), in one request: the toolbox's bulk
 * upload of one file, whose answer says how many bytes it wrote
 * (stagefile.c checks them).  A toolbox without it, and a name that ends
 * in white space, take the plain upload, whose answer is empty: the
 * file's info is then asked for.
 */
static int sf_upload(void *ctx, struct stat *remote, struct staged *f, const char *box,
		     const char *path, off_t size)
{
	struct dt *dt = ctx;
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	struct http_part form[2] = {
		{ .name = "files[0].path", .text = path },
		{ .name = "files[0].file",
		  .filename = "upload",
		  .fd = f->fd,
		  .size = size },
	};
	struct http_resp r;
	char *tb = NULL;
	size_t len = strlen(path);
	/* The bulk route takes the path as a form field, which the server
	 * trims of white space. */
	int bulk = !__atomic_load_n(&dt->no_bulk_upload, __ATOMIC_RELAXED) && len &&
		   !isspace((unsigned char)path[len - 1]);
	int rc;

	rc = dt_toolbox_of(dt, &tb, box);
again:
	url.len = 0;
	if (!rc && bulk)
		rc = dt_url_toolbox(&url, tb, "/files/bulk-upload", NULL);
	else if (!rc)
		rc = dt_url_toolbox(&url, tb, "/files/upload", "path", path, NULL);
	if (rc)
		goto out;
	req.method = "POST";
	req.url = url.buf;
	req.part = bulk ? form : &form[1];
	req.nparts = bulk ? 2 : 1;
	form[1].name = bulk ? "files[0].file" : "file";
	req.idempotent = 1; /* the whole file, overwritten: safe to repeat */
	req.transfer = 1;
	rc = http_do(dt->http, &req, &r);
	if (rc) {
		sbx_failf("daytona: upload \"%s\": %s", path, sbx_fail_text());
		goto out;
	}
	if (bulk && r.status == 404) {
		/* A toolbox older than the bulk routes. */
		http_resp_release(&r);
		__atomic_store_n(&dt->no_bulk_upload, 1, __ATOMIC_RELAXED);
		bulk = 0;
		goto again;
	}
	if (r.status != 200 && r.status != 201) {
		static const struct errmap over[] = { { 404, ENOENT }, { 0, 0 } };

		rc = dt_toolbox_fail(dt, box, "upload", &r, over);
		http_resp_release(&r);
		goto out;
	}
	if (bulk)
		rc = bulk_uploaded(remote, &r, path, f->mode);
	http_resp_release(&r);
	/* A new file lands 0644: give it the mode it was created with. */
	if (!rc && !f->fetched && (f->mode & 07777) != 0644)
		rc = set_mode(dt, box, path, f->mode);
	if (!rc && !bulk)
		rc = dt_info_call(dt, remote, box, path);
out:
	strbuf_release(&url);
	free(tb);
	return rc;
}

const struct stagefile_ops dt_stagefile_ops = {
	.name = "daytona",
	.upload_stat = STAGEFILE_STAT_BY_UPLOAD,
	.info = sf_info,
	.fetch = sf_fetch,
	.upload = sf_upload,
};

static int simple_toolbox(struct dt *dt, const char *box, const char *method,
			  const char *what, const char *route, const char *const *query,
			  const struct errmap *over)
{
	struct strbuf url = STRBUF_INIT(32768);
	struct http_resp r;
	char *tb;
	char sep = '?';
	int rc = dt_toolbox_of(dt, &tb, box);

	if (rc)
		return rc;
	rc = strbuf_addf(&url, "%s%s", tb, route);
	free(tb);
	for (; !rc && query && query[0]; query += 2) {
		rc = strbuf_addf(&url, "%c%s=", sep, query[0]);
		if (!rc)
			rc = http_escape(&url, query[1]);
		sep = '&';
	}
	if (!rc)
		rc = dt_request(dt, &r, method, url.buf, NULL, 0, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status < 200 || r.status > 299)
		rc = dt_toolbox_fail(dt, box, what, &r, over);
	http_resp_release(&r);
	return rc;
}

int dt_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	char m[8];
	const char *q[] = { "path", path, "mode", m, NULL };

	int rc;

	snprintf(m, sizeof(m), "%04o", (unsigned)(mode & 0777));
	rc = simple_toolbox(DT(p), box, "POST", "mkdir", "/files/folder", q, NULL);
	/* The folder call's mode loses setgid and sticky, as chmod's does. */
	if (!rc && (mode & 07000))
		rc = set_mode(DT(p), box, path, mode);
	if (!rc)
		remote_give(&DT(p)->r, box, path);
	return rc;
}

int dt_unlink(struct sbx_provider *p, const char *box, const char *path)
{
	static const struct errmap over[] = { { 400, EISDIR }, { 0, 0 } };
	const char *q[] = { "path", path, NULL };
	int rc = simple_toolbox(DT(p), box, "DELETE", "delete", "/files", q, over);

	/* A file created and still open is not on the server yet: dropping
	 * its copy is the whole unlink. */
	if ((!rc || rc == -ENOENT) && stage_unlink(DT(p)->r.stage, box, path))
		rc = 0;
	return rc;
}

/* The toolbox's permissions call loses setuid, setgid and sticky (Go's
 * FileMode has its own bits for them): chmod(1) in the sandbox keeps them. */
static int set_mode(struct dt *dt, const char *box, const char *path, mode_t mode)
{
	char m[8];
	const char *q[] = { "path", path, "mode", m, NULL };

	snprintf(m, sizeof(m), "%04o", (unsigned)(mode & 07777));
	if (mode & 07000)
		return remote_set_mode(&dt->r, box, path, mode);
	return simple_toolbox(dt, box, "POST", "chmod", "/files/permissions", q, NULL);
}

int dt_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	int rc = stagefile_flush_pending(&DT(p)->r.files, box, path);

	if (!rc)
		rc = set_mode(DT(p), box, path, mode);
	if (!rc)
		stagefile_chmod(&DT(p)->r.files, box, path, mode);
	return rc;
}

int dt_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
	     gid_t gid)
{
	char u[16], g[16];
	const char *q[7] = { "path", path };
	int n = 2;

	if (uid != (uid_t)-1) {
		snprintf(u, sizeof(u), "%u", (unsigned)uid);
		q[n++] = "owner";
		q[n++] = u;
	}
	if (gid != (gid_t)-1) {
		snprintf(g, sizeof(g), "%u", (unsigned)gid);
		q[n++] = "group";
		q[n++] = g;
	}
	q[n] = NULL;
	if (n == 2)
		return 0;
	n = stagefile_flush_pending(&DT(p)->r.files, box, path);
	if (n)
		return n;
	return simple_toolbox(DT(p), box, "POST", "chown", "/files/permissions", q, NULL);
}

/* ---- what the toolbox lacks, as commands ---- */

/*
 * Run `script` with /bin/sh in the sandbox through /process/execute and
 * map its exit code: 0 is success, and the scripts below exit with an
 * errno value for the outcomes that have one; anything else is -EIO with
 * the output in the failure text.  `out` (may be NULL) gets the output.
 */
int dt_run(struct remote *rm, const char *box, const char *what, const char *script,
	   int flags, struct strbuf *out)
{
	struct dt *dt = (struct dt *)rm;
	struct strbuf url = STRBUF_INIT(4096), cmd = STRBUF_INIT(1u << 20);
	struct http_resp r;
	cJSON *body = cJSON_CreateObject(), *j = NULL;
	double code = -1;
	const char *result;
	char *tb = NULL;
	int rc;

	rc = dt_toolbox_of(dt, &tb, box);
	if (rc)
		goto out;
	rc = body ? strbuf_addf(&url, "%s/process/execute", tb) : -ENOMEM;
	if (!rc)
		rc = sh_wrap_base64(&cmd, NULL, script);
	if (rc)
		goto out;
	cJSON_AddStringToObject(body, "command", cmd.buf);
	cJSON_AddNumberToObject(body, "timeout", 60);
	rc = dt_request(dt, &r, "POST", url.buf, body, REQ_LONG, RUN_OUTPUT_MAX);
	if (rc)
		goto out;
	if (r.status != 200) {
		rc = dt_toolbox_fail(dt, box, what, &r, NULL);
		http_resp_release(&r);
		goto out;
	}
	j = dt_parse_json(&r, what);
	http_resp_release(&r);
	if (!j) {
		rc = -EPROTO;
		goto out;
	}
	/* "code" before v0.113, "exitCode" since. */
	if (!json_num(j, "exitCode", &code))
		json_num(j, "code", &code);
	result = json_str(j, "result");
	if (out && result)
		strbuf_add(out, result, strlen(result));
	rc = sh_exit_errno(code < -1 || code > 255 ? 255 : (long)code);
	if (rc > 0) {
		sbx_failf("daytona: %s: exit %g: %.300s", what, code,
			  result ? result : "");
		rc = -EIO;
	}
out:
	cJSON_Delete(j);
	cJSON_Delete(body);
	strbuf_release(&url);
	strbuf_release(&cmd);
	free(tb);
	return rc;
}

int dt_rename(struct sbx_provider *p, const char *box, const char *from, const char *to,
	      unsigned flags)
{
	static const struct errmap over[] = { { 409, EEXIST }, { 0, 0 } };
	struct dt *dt = DT(p);
	const char *q[] = { "source", from, "destination", to, NULL };
	int rc;

	if (flags & ~RENAME_NOREPLACE) {
		sbx_failf("daytona: rename cannot exchange two files");
		return -EINVAL;
	}
	rc = stagefile_flush_pending(&dt->r.files, box, from);
	if (rc)
		return rc;
	/* The toolbox moves only onto a free name (409 otherwise). */
	rc = simple_toolbox(dt, box, "POST", "rename", "/files/move", q, over);
	if (rc == -EEXIST && !(flags & RENAME_NOREPLACE)) {
		/* Over an existing file, as editors save: rename(2) in the
		 * sandbox, atomic there. */
		rc = remote_runf(
			&dt->r, box, "rename", 0, NULL,
			"a=%q; b=%q; mv -fT -- \"$a\" \"$b\" 2>&1 && exit 0; "
			"[ -d \"$b\" ] && [ -n \"$(ls -A -- \"$b\")\" ] && exit 39; "
			"exit 5",
			from, to);
	}
	if (!rc)
		stage_rename(dt->r.stage, box, from, to);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/* POSIX over a shell, and the slots every remote provider serves the same
 * way.  See remote.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/log.h"
#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/find.h"
#include "sbxfs/remote/lifecycle.h"
#include "sbxfs/remote/remote.h"
#include "sbxfs/remote/shell.h"
#include "sbxfs/remote/time.h"
#include "remote_int.h"

#define SCRIPT_MAX (1u << 20)
#define STAT_MAX (1u << 16)
#define LISTING_MAX (48u << 20)

/* The provider's own call `op` of r->fs, if it has it: its result, or
 * -ENOSYS for the script. */
#define NATIVE(r, op, ...) \
	((r)->fs && (r)->fs->op ? (r)->fs->op((r), __VA_ARGS__) : -ENOSYS)

int remote_readonly(struct remote *r, const char *box)
{
	return r->fs && r->fs->readonly && r->fs->readonly(r, box);
}

int remote_writable(struct remote *r, const char *box)
{
	if (!remote_readonly(r, box))
		return 0;
	sbx_failf("%s: %s \"%s\" is not running: its files are read-only", r->name,
		  r->box_ops ? r->box_ops->noun : "sandbox", box);
	return -EROFS;
}

/* How long a walk's statfs answers: the statfs that follows a walk. */
#define WALK_STATFS_MS 5000

/* Keep what the walk of box:dir said of its file system. */
static void walk_statfs_keep(struct remote *r, const char *box, const char *dir,
			     const struct statvfs *sv)
{
	pthread_mutex_lock(&r->walk_statfs.lock);
	snprintf(r->walk_statfs.box, sizeof(r->walk_statfs.box), "%s", box);
	snprintf(r->walk_statfs.dir, sizeof(r->walk_statfs.dir), "%s", dir);
	r->walk_statfs.sv = *sv;
	clock_gettime(CLOCK_MONOTONIC, &r->walk_statfs.at);
	pthread_mutex_unlock(&r->walk_statfs.lock);
}

/* The statfs of box:path from a walk of it or of a directory above it,
 * a few seconds ago: 1, else 0. */
static int walk_statfs_get(struct remote *r, const char *box, const char *path,
			   struct statvfs *sv)
{
	size_t n;
	int hit;

	pthread_mutex_lock(&r->walk_statfs.lock);
	n = strlen(r->walk_statfs.dir);
	hit = (r->walk_statfs.at.tv_sec || r->walk_statfs.at.tv_nsec) &&
	      ms_since(&r->walk_statfs.at) < WALK_STATFS_MS &&
	      !strcmp(r->walk_statfs.box, box) && n &&
	      !strncmp(path, r->walk_statfs.dir, n) &&
	      (path[n] == '\0' || path[n] == '/' || !strcmp(r->walk_statfs.dir, "/"));
	if (hit)
		*sv = r->walk_statfs.sv;
	pthread_mutex_unlock(&r->walk_statfs.lock);
	return hit;
}

void remote_tmp_name(char *out, size_t size, const char *tag)
{
	static unsigned long counter;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	snprintf(out, size, ".sbxfs-%s.%d.%lu.%lx", tag, (int)getpid(), n,
		 (unsigned long)time(NULL));
}

int remote_runf(struct remote *r, const char *box, const char *what, int flags,
		struct strbuf *out, const char *fmt, ...)
{
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = sh_vscript(&s, fmt, ap);
	va_end(ap);
	if (!rc)
		rc = r->run(r, box, what, s.buf, flags, out);
	strbuf_release(&s);
	return rc;
}

int remote_signal_marked(struct remote *r, const char *box, const char *marker, int sig)
{
	struct strbuf s = STRBUF_INIT(4096);
	int rc = sh_signal_marked(&s, marker, sig);

	if (!rc)
		rc = r->run(r, box, "signal command", s.buf, 0, NULL);
	strbuf_release(&s);
	return rc;
}

int remote_run_bytes(struct remote *r, const char *box, const char *what,
		     const char *checks, const char *body, int strict, int flags,
		     struct strbuf *out)
{
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX),
		      text = STRBUF_INIT(out->max / 3 * 4 + out->max / 38 + 64);
	struct b64_decoder d = B64_DECODER_INIT;
	int b64 = r->flags & REMOTE_TEXT_OUTPUT;
	int rc = strbuf_addf(&s, "%s{ %s; }%s%s", checks, body, b64 ? " 2>/dev/null" : "",
			     b64      ? " | base64"
			     : strict ? " || exit 5"
				      : "; exit 0");

	if (!rc)
		rc = r->run(r, box, what, s.buf, flags, b64 ? &text : out);
	if (!rc && b64) {
		rc = b64_feed(&d, out, text.buf, text.len);
		if (!rc)
			rc = b64_finish(&d, out);
		if (rc == -EPROTO)
			sbx_failf("%s: %s: the output came back garbled (not base64)",
				  r->name, what);
		else if (rc)
			sbx_failf("%s: %s: the output is over %zu bytes", r->name, what,
				  out->max);
	}
	strbuf_release(&s);
	strbuf_release(&text);
	return rc == -E2BIG ? -EFBIG : rc;
}

int remote_find_stat(struct remote *r, struct stat *st, const char *box, const char *path)
{
	struct strbuf checks = STRBUF_INIT(SCRIPT_MAX), body = STRBUF_INIT(4096);
	struct strbuf out = STRBUF_INIT(STAT_MAX);
	int rc = sh_script(&checks, "p=%q; " SH_EXISTS("p") " || exit 2; ", path);

	if (!rc)
		rc = find_script_stat(&body, "p");
	if (!rc)
		rc = remote_run_bytes(r, box, "stat", checks.buf, body.buf, 1,
				      REMOTE_RUN_RETRY, &out);
	if (!rc && find_parse_one(out.buf, out.len, st)) {
		sbx_failf("%s: stat \"%s\": an answer that does not parse", r->name,
			  path);
		rc = -EPROTO;
	}
	strbuf_release(&checks);
	strbuf_release(&body);
	strbuf_release(&out);
	return rc;
}

int remote_fetch_by_script(struct remote *r, struct staged *f, const char *box,
			   const char *path, size_t max)
{
	struct strbuf checks = STRBUF_INIT(SCRIPT_MAX), out = STRBUF_INIT(max);
	int rc = sh_script(&checks, "p=%q; [ -e \"$p\" ] || exit 2; ", path);

	if (!rc)
		rc = remote_run_bytes(r, box, "read", checks.buf, "cat -- \"$p\"", 1,
				      REMOTE_RUN_RETRY, &out);
	if (!rc)
		rc = stage_put(f, 0, out.buf, out.len);
	if (!rc && ftruncate(f->fd, (off_t)out.len))
		rc = -errno;
	strbuf_release(&checks);
	strbuf_release(&out);
	return rc;
}

int remote_readdir(struct sbx_provider *p, const char *box, const char *path,
		   sbx_dirent_fn fn, void *ctx)
{
	struct remote *r = REMOTE(p);
	struct strbuf checks = STRBUF_INIT(SCRIPT_MAX), body = STRBUF_INIT(4096);
	struct strbuf out = STRBUF_INIT(LISTING_MAX);
	int rc = NATIVE(r, readdir, box, path, fn, ctx);

	if (rc != -ENOSYS)
		return rc;
	rc = sh_script(&checks,
		       "d=%q; [ -d \"$d\" ] || { [ -e \"$d\" ] && exit 20; exit 2; }; "
		       "[ -L \"$d\" ] && exit 20; cd -- \"$d\" 2>/dev/null || exit 13; ",
		       path);
	if (!rc)
		rc = find_script_list(&body, "d");
	if (!rc)
		rc = remote_run_bytes(r, box, "list", checks.buf, body.buf, 0,
				      REMOTE_RUN_RETRY, &out);
	if (!rc)
		find_each(out.buf, out.len, fn, ctx);
	strbuf_release(&checks);
	strbuf_release(&body);
	strbuf_release(&out);
	return rc;
}

int remote_readtree(struct sbx_provider *p, const char *box, const char *path,
		    size_t max_bytes, sbx_treeent_fn fn, void *ctx)
{
	struct remote *r = REMOTE(p);
	int follow = !!(r->flags & REMOTE_FOLLOWS_SYMLINKS);
	struct strbuf checks = STRBUF_INIT(SCRIPT_MAX), body = STRBUF_INIT(4096);
	struct strbuf out = STRBUF_INIT(LISTING_MAX + max_bytes);
	int rc;

	if (remote_readonly(r, box))
		return -ENOTSUP;
	rc = sh_script(&checks,
		       "d=%q; [ -d \"$d\" ] || { [ -e \"$d\" ] && exit 20; exit 2; }; %s"
		       "cd -- \"$d\" 2>/dev/null || exit 13; ",
		       path, follow ? "" : "[ -L \"$d\" ] && exit 20; ");
	/* The walk is cut below what the API brings back; the directory's
	 * own entries come whole or not at all. */
	if (r->output_max && max_bytes > r->output_max / 4 * 3)
		max_bytes = r->output_max / 4 * 3;
	/* First, a record of the directory's statfs: "S " what sh_statfs()
	 * prints, NUL. */
	if (!rc)
		rc = sh_script(&body,
			       "printf 'S '; stat -f -c %q . 2>/dev/null; printf '\\0'; ",
			       SH_STATFS_FMT);
	if (!rc)
		rc = find_script_tree(&body, follow, max_bytes);
	if (!rc)
		rc = remote_run_bytes(r, box, "list tree", checks.buf, body.buf, 0,
				      REMOTE_RUN_RETRY, &out);
	if (!rc && out.len > 2 && !memcmp(out.buf, "S ", 2) &&
	    memchr(out.buf, '\0', out.len)) {
		struct statvfs sv;

		if (!sh_parse_statfs(&sv, out.buf + 2))
			walk_statfs_keep(r, box, path, &sv);
	}
	if (!rc && find_tree_each(out.buf, out.len, fn, ctx)) {
		sbx_failf("%s: list tree \"%s\": a bad answer", r->name, path);
		rc = -EPROTO;
	}
	strbuf_release(&checks);
	strbuf_release(&body);
	strbuf_release(&out);
	return rc;
}

int remote_readlink(struct sbx_provider *p, char *buf, size_t size, const char *box,
		    const char *path)
{
	struct remote *r = REMOTE(p);
	struct strbuf checks = STRBUF_INIT(SCRIPT_MAX), out = STRBUF_INIT(STAT_MAX);
	int rc = NATIVE(r, readlink, buf, size, box, path);

	if (rc != -ENOSYS)
		return rc;
	rc = sh_script(&checks,
		       "p=%q; [ -L \"$p\" ] || { [ -e \"$p\" ] && exit 22; exit 2; }; ",
		       path);
	if (!rc)
		rc = remote_run_bytes(r, box, "readlink", checks.buf,
				      "if " FIND_HAVE_PRINTF "; then "
				      "find \"$p\" -maxdepth 0 -printf '%l'; else "
				      "t=$(readlink -- \"$p\"; echo x); "
				      "printf %s \"${t%?x}\"; fi",
				      1, REMOTE_RUN_RETRY, &out);
	if (!rc && (!out.len || memchr(out.buf, '\0', out.len))) {
		sbx_failf("%s: readlink \"%s\": a bad answer", r->name, path);
		rc = -EPROTO;
	}
	if (!rc && out.len >= size)
		rc = -ENAMETOOLONG;
	if (!rc)
		memcpy(buf, out.buf, out.len + 1);
	strbuf_release(&checks);
	strbuf_release(&out);
	return rc;
}

int remote_getattr(struct sbx_provider *p, struct stat *out, const char *box,
		   const char *path)
{
	struct remote *r = REMOTE(p);

	if (!stage_stat(r->stage, box, path, out))
		return 0;
	return r->files.ops->info(r->files.ctx, out, box, path);
}

/*
 * One script: the record of box:path, and if it is a directory, the
 * records of its entries cut after max_bytes (then not used).  Not for
 * a provider whose file API follows symlinks (it sees its files
 * otherwise than this lstat does), nor one whose stat needs no process.
 */
int remote_getattr_list(struct sbx_provider *p, struct stat *out, const char *box,
			const char *path, size_t max_bytes, sbx_dirent_fn fn, void *ctx,
			int *listed)
{
	struct remote *r = REMOTE(p);
	struct strbuf checks = STRBUF_INIT(SCRIPT_MAX), body = STRBUF_INIT(4096);
	struct strbuf out_ = STRBUF_INIT(STAT_MAX + (1u << 20));
	char *end;
	int rc;

	*listed = 0;
	if ((r->flags & (REMOTE_FOLLOWS_SYMLINKS | REMOTE_NATIVE_STAT)) ||
	    remote_readonly(r, box))
		return -ENOSYS;
	if (!stage_stat(r->stage, box, path, out))
		return 0;
	if (r->output_max && max_bytes > r->output_max / 2)
		max_bytes = r->output_max / 2;
	if (max_bytes > (1u << 20) - 1)
		max_bytes = (1u << 20) - 1;
	rc = sh_script(&checks, "p=%q; " SH_EXISTS("p") " || exit 2; ", path);
	if (!rc)
		rc = find_script_stat(&body, "p");
	if (!rc)
		rc = sh_script(&body, " && if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then { ");
	if (!rc)
		rc = find_script_list(&body, "p");
	if (!rc)
		rc = sh_script(&body, "; } 2>/dev/null | head -c %L; fi",
			       (long long)max_bytes + 1);
	if (!rc)
		rc = remote_run_bytes(r, box, "stat", checks.buf, body.buf, 1,
				      REMOTE_RUN_RETRY, &out_);
	/* The lookup is the answer; what follows its NUL is the listing. */
	end = rc ? NULL : memchr(out_.buf, '\0', out_.len);
	if (!rc &&
	    (!end || find_parse_one(out_.buf, (size_t)(end - out_.buf) + 1, out))) {
		sbx_failf("%s: stat \"%s\": an answer that does not parse", r->name,
			  path);
		rc = -EPROTO;
	}
	if (!rc && S_ISDIR(out->st_mode)) {
		size_t rest = out_.len - (size_t)(end + 1 - out_.buf);

		if (rest <= max_bytes) {
			find_each(end + 1, rest, fn, ctx);
			*listed = 1;
		}
	}
	strbuf_release(&checks);
	strbuf_release(&body);
	strbuf_release(&out_);
	return rc;
}

int remote_unsaved(struct sbx_provider *p, struct stat *out, const char *box,
		   const char *path)
{
	return stage_stat(REMOTE(p)->stage, box, path, out);
}

int remote_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *box,
		const char *path, int flags, mode_t mode, const struct stat *known)
{
	int rc = 0;

	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))
		rc = remote_writable(REMOTE(p), box);
	if (!rc)
		rc = stagefile_open(&REMOTE(p)->files, fh, st, box, path, flags, mode,
				    known);
	return rc;
}

/* Run the script in s unless building it failed (rc); s is released. */
static int run_built(struct remote *r, const char *box, const char *what, int flags,
		     struct strbuf *out, struct strbuf *s, int rc)
{
	if (!rc)
		rc = r->run(r, box, what, s->buf, flags, out);
	strbuf_release(s);
	return rc;
}

/* ---- new names are their makers' ---- */

/* A name that another user made stays the service's: say so, with the
 * sandbox's words (`why`). */
static void not_given(struct remote *r, const char *path, uid_t uid, gid_t gid,
		      const char *why)
{
	size_t n = strcspn(why, "\n");

	sbx_warn(
		"%s: \"%s\" keeps the owner the service gave it, not uid %u gid %u: %.*s",
		r->name, path, (unsigned)uid, (unsigned)gid, (int)n, why);
}

/* Give box:path to uid and gid in a round trip of its own; `mode` as
 * sh_give() takes it. */
static void give_to(struct remote *r, const char *box, const char *path, uid_t uid,
		    gid_t gid, mode_t mode)
{
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = run_built(r, box, "give", REMOTE_RUN_RETRY, NULL, &s,
			   sh_give(&s, path, (unsigned)uid, (unsigned)gid, mode));

	if (rc) {
		not_given(r, path, uid, gid, sbx_fail_text());
		sbx_fail_clear();
	}
}

void remote_give_staged(struct stagefile *sf, const char *box, const char *path,
			uid_t uid, gid_t gid, mode_t mode)
{
	give_to((struct remote *)((char *)sf - offsetof(struct remote, files)), box, path,
		uid, gid, mode);
}

void remote_give(struct remote *r, const char *box, const char *path)
{
	struct sbx_caller c;

	if (sbx_caller_other(&c))
		give_to(r, box, path, c.uid, c.gid, 0);
}

/*
 * Run the script in s (built with result rc) that makes box:path, and
 * if another user made it, give it to them in the same round trip.  s is
 * released.
 */
static int run_making(struct remote *r, const char *box, const char *what,
		      const char *path, struct strbuf *s, int rc)
{
	struct strbuf w = STRBUF_INIT(SCRIPT_MAX), out = STRBUF_INIT(1u << 16);
	struct sbx_caller c;

	if (rc || !sbx_caller_other(&c))
		return run_built(r, box, what, 0, NULL, s, rc);
	/* The script exits with its errno; give's words, if it cannot,
	 * come back as output. */
	rc = strbuf_addf(&w, "( %s ) || exit $?; ( ", s->buf);
	if (!rc)
		rc = sh_give(&w, path, (unsigned)c.uid, (unsigned)c.gid, 0);
	if (!rc)
		rc = strbuf_addf(&w, " ); exit 0");
	strbuf_release(s);
	rc = run_built(r, box, what, 0, &out, &w, rc);
	if (!rc && out.len)
		not_given(r, path, c.uid, c.gid, out.buf);
	strbuf_release(&out);
	return rc;
}

int remote_rmdir(struct sbx_provider *p, const char *box, const char *path)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = remote_writable(r, box);

	if (!rc)
		rc = NATIVE(r, rmdir, box, path);
	if (rc != -ENOSYS)
		return rc;
	return run_built(r, box, "rmdir", 0, NULL, &s, sh_rmdir(&s, path));
}

int remote_symlink(struct sbx_provider *p, const char *box, const char *target,
		   const char *path)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = remote_writable(r, box);

	if (!rc)
		rc = NATIVE(r, symlink, box, target, path);
	if (rc != -ENOSYS) {
		if (!rc)
			remote_give(r, box, path);
		return rc;
	}
	return run_making(r, box, "symlink", path, &s, sh_symlink(&s, target, path));
}

int remote_link(struct sbx_provider *p, const char *box, const char *from, const char *to)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = remote_writable(r, box);

	if (!rc)
		rc = stagefile_flush_pending(&r->files, box, from);
	if (!rc)
		rc = sh_link(&s, from, to);
	return run_built(r, box, "link", 0, NULL, &s, rc);
}

int remote_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
		 gid_t gid)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc;

	if (uid == (uid_t)-1 && gid == (gid_t)-1)
		return 0;
	rc = remote_writable(r, box);
	if (!rc)
		rc = stagefile_flush_pending(&r->files, box, path);
	if (!rc && (rc = NATIVE(r, chown, box, path, uid, gid)) != -ENOSYS)
		return rc;
	rc = sh_chown(&s, path, (unsigned)uid, (unsigned)gid);
	return run_built(r, box, "chown", REMOTE_RUN_RETRY, NULL, &s, rc);
}

int remote_utimens(struct sbx_provider *p, const char *box, const char *path,
		   const struct timespec ts[2])
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = remote_writable(r, box);

	if (!rc)
		rc = stagefile_flush_pending(&r->files, box, path);
	if (!rc && (rc = NATIVE(r, utimens, box, path, ts)) != -ENOSYS)
		return rc;
	rc = sh_utimens(&s, path, ts, r->flags & REMOTE_FOLLOWS_SYMLINKS);
	return run_built(r, box, "utimens", REMOTE_RUN_RETRY, NULL, &s, rc);
}

int remote_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
		  const char *path)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX), o = STRBUF_INIT(4096);
	int rc;

	if (walk_statfs_get(r, box, path, out))
		return 0;
	rc = run_built(r, box, "statfs", REMOTE_RUN_RETRY, &o, &s, sh_statfs(&s, path));

	if (!rc && sh_parse_statfs(out, o.buf)) {
		sbx_failf("%s: statfs: unexpected answer", r->name);
		rc = -EPROTO;
	}
	strbuf_release(&o);
	return rc;
}

int remote_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = remote_writable(r, box);

	if (!rc)
		rc = NATIVE(r, mkdir, box, path, mode);
	if (rc != -ENOSYS) {
		if (!rc)
			remote_give(r, box, path);
		return rc;
	}
	return run_making(r, box, "mkdir", path, &s, sh_mkdir(&s, path, mode));
}

int remote_unlink(struct sbx_provider *p, const char *box, const char *path)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = remote_writable(r, box);

	if (rc)
		return rc;
	rc = NATIVE(r, unlink, box, path);
	if (rc == -ENOSYS)
		rc = run_built(r, box, "unlink", 0, NULL, &s, sh_unlink(&s, path));

	/* A file created and still open is not on the server yet: dropping
	 * its copy is the whole unlink. */
	if ((!rc || rc == -ENOENT) && stage_unlink(r->stage, box, path))
		rc = 0;
	return rc;
}

int remote_rename(struct sbx_provider *p, const char *box, const char *from,
		  const char *to, unsigned flags)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc;

	if (flags & ~RENAME_NOREPLACE) {
		sbx_failf("%s: rename cannot exchange two files", r->name);
		return -EINVAL;
	}
	rc = remote_writable(r, box);
	if (!rc)
		rc = stagefile_flush_pending(&r->files, box, from);
	if (!rc && (rc = NATIVE(r, rename, box, from, to, flags)) == -ENOSYS) {
		rc = sh_rename(&s, from, to, flags & RENAME_NOREPLACE);
		rc = run_built(r, box, "rename", 0, NULL, &s, rc);
	}
	strbuf_release(&s);
	if (!rc)
		stage_rename(r->stage, box, from, to);
	return rc;
}

int remote_set_mode(struct remote *r, const char *box, const char *path, mode_t mode)
{
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = NATIVE(r, chmod, box, path, mode);

	if (rc != -ENOSYS)
		return rc;
	return run_built(r, box, "chmod", REMOTE_RUN_RETRY, NULL, &s,
			 sh_chmod(&s, path, mode));
}

int remote_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	struct remote *r = REMOTE(p);
	int rc = remote_writable(r, box);

	if (!rc)
		rc = stagefile_flush_pending(&r->files, box, path);
	if (!rc)
		rc = remote_set_mode(r, box, path, mode);
	if (!rc)
		stagefile_chmod(&r->files, box, path, mode);
	return rc;
}

int remote_truncate(struct sbx_provider *p, const char *box, const char *path, off_t size)
{
	struct remote *r = REMOTE(p);
	struct strbuf s = STRBUF_INIT(SCRIPT_MAX);
	int rc = remote_writable(r, box);

	/* An open copy is the file's future contents: truncate that, and
	 * close uploads it. */
	if (!rc)
		rc = stage_truncate(r->stage, box, path, size);
	if (rc != -ENOENT)
		return rc;
	rc = NATIVE(r, truncate, box, path, size);
	if (rc == -ENOSYS)
		rc = run_built(r, box, "truncate", REMOTE_RUN_RETRY, NULL, &s,
			       sh_truncate(&s, path, size));
	if (!rc)
		stage_unlink(r->stage, box, path); /* a cached copy is stale */
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * The FUSE low-level operations: the tree of sandboxes, their control
 * files, and root/, which is handed to the provider path by path through
 * the cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/box.h"
#include "sbxfs/cmd.h"
#include "sbxfs/ctl.h"
#include "sbxfs/fs.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/node.h"
#include "sbxfs/req.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/status.h"
#include "sbxfs/strbuf.h"
#include "sbxfs/synth.h"
#include "sbxfs/notify.h"

#define PATH_MAX_SBX 4096
/* readdir (not plus) answers carry no inode: the kernel looks up. */
#define UNKNOWN_INO 0xffffffffu

static struct sbxfs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int is_fs(const struct node *n)
{
	return n->kind == NODE_FS || n->kind == NODE_FSROOT;
}

static int has_cap(struct sbxfs *fs, unsigned cap)
{
	return (fs->provider->desc->caps & cap) != 0;
}

/* ---- errors from root/ operations ---- */

/* Record in the sandbox's err what is worth telling: provider text, or a
 * failure that is not an ordinary answer of a filesystem. */
static void fs_error(struct box *b, int rc, const char *op, const char *path)
{
	const char *text = sbx_fail_text();

	if (rc == -EINTR)
		return; /* the caller gave up: nothing went wrong */
	if (text[0])
		box_fail(b, rc, "%s \"%s\": %s", op, path, text);
	else if (rc == -EIO || rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -EPROTO ||
		 rc == -ENOTSUP || rc == -EAGAIN)
		box_fail(b, rc, "%s \"%s\": %s", op, path, strerror(-rc));
}

/* The same, for an open file's node: its path now, if it still has one. */
static void fs_node_error(struct sbxfs *fs, struct node *n, int rc, const char *op)
{
	char path[PATH_MAX_SBX];

	if (node_path(fs->nodes, n, path, sizeof(path)))
		snprintf(path, sizeof(path), "(unlinked file)");
	fs_error(n->box, rc, op, path);
}

/* Time a provider call for -o trace=provider. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- attributes ---- */

static int list_path(struct sbxfs *fs, struct box *b, const char *path,
		     struct cache_dir **out);

/* Directories longer than this are not listed again for one entry. */
#define RELIST_MAX 4096

/*
 * Attributes that expired come back a directory at a time where a listing
 * costs what one stat does (SBX_CAP_LIST_STATS): a walk that outlives the
 * timeout (ls -lR, git status, an editor's tree) then asks once per
 * directory, not once per entry.  Only directories listed before, and not
 * huge, are listed again.  0, or -EAGAIN: ask for the entry alone (also
 * when the listing lacks it: a listing leaves out what it cannot show).
 */
static int stat_by_listing(struct sbxfs *fs, struct box *b, const char *path,
			   struct stat *st)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX_SBX];
	struct cache_dir *d;
	size_t size;
	int rc = -EAGAIN;

	if (!(fs->provider->desc->caps & SBX_CAP_LIST_STATS) || !slash || !slash[1])
		return -EAGAIN;
	if (slash == path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (cache_dir_size_hint(fs->cache, b->name, dir, &size) || size > RELIST_MAX)
		return -EAGAIN;
	if (list_path(fs, b, dir, &d))
		return -EAGAIN;
	for (size_t i = 0; i < d->n; i++) {
		if (!strcmp(d->v[i].name, slash + 1)) {
			*st = d->v[i].st;
			rc = 0;
			break;
		}
	}
	cache_dir_put(d);
	return rc;
}

/* A non-directory with several names changes under all of them when it is
 * written, linked or unlinked through one: its cached attributes are not
 * trusted. */
static int several_names(const struct stat *st)
{
	return !S_ISDIR(st->st_mode) && st->st_nlink > 1;
}

/* Attributes of a path below root/, through the cache.  `opens`: handles
 * open on it, whose changes the server may not have seen yet: the
 * provider is asked about those before the cache or a listing. */
static int fs_getattr_path(struct sbxfs *fs, struct box *b, const char *path,
			   unsigned opens, struct stat *st)
{
	uint64_t gen;
	double t0;
	int rc;

	if (opens && fs->provider->ops.unsaved(fs->provider, st, b->name, path) == 0)
		return 0;
	rc = cache_get_attr(fs->cache, st, b->name, path);

	if (rc != -EAGAIN && !(rc == 0 && several_names(st)))
		return rc;
	if (rc == -EAGAIN && (rc = stat_by_listing(fs, b, path, st)) != -EAGAIN)
		return rc;
	gen = cache_begin(fs->cache);
	sbx_fail_clear();
	t0 = now_ms();
	rc = fs->provider->ops.getattr(fs->provider, st, b->name, path);
	sbx_trace(SBX_TRACE_PROVIDER, "getattr %s:%s -> %d (%.3f ms)", b->name, path, rc,
		  now_ms() - t0);
	if (rc == 0)
		cache_put_attr(fs->cache, gen, b->name, path, st);
	else if (rc == -ENOENT)
		cache_put_attr(fs->cache, gen, b->name, path, NULL);
	else
		fs_error(b, rc, "stat", path);
	return rc;
}

static double attr_timeout(struct sbxfs *fs, const struct node *n)
{
	return is_fs(n) ? fs->attr_timeout : SYNTH_TIMEOUT;
}

static int node_attr(struct sbxfs *fs, struct node *n, struct stat *st)
{
	char path[PATH_MAX_SBX];
	int rc;

	if (!is_fs(n)) {
		synth_attr(fs, n, st);
		return 0;
	}
	rc = node_path(fs->nodes, n, path, sizeof(path));
	if (rc == -ENOENT) {
		/* Unlinked while open: ask the open handle. */
		uint64_t fh = __atomic_load_n(&n->open_fh, __ATOMIC_ACQUIRE);

		rc = fh ? fs->provider->ops.fgetattr(fs->provider, st, fh) : -ESTALE;
		if (!rc)
			st->st_ino = n->ino;
		return rc;
	}
	if (rc)
		return rc;
	rc = fs_getattr_path(fs, n->box, path,
			     __atomic_load_n(&n->opens, __ATOMIC_ACQUIRE), st);
	if (rc == 0) {
		st->st_ino = n->ino;
		if (n->kind == NODE_FSROOT)
			st->st_mode = (st->st_mode & ~S_IFMT) | S_IFDIR;
	}
	return rc;
}

static void fill_entry(struct sbxfs *fs, struct fuse_entry_param *e, struct node *n,
		       const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = n->generation;
	e->attr = *st;
	e->attr.st_ino = n->ino;
	e->attr_timeout = attr_timeout(fs, n);
	e->entry_timeout = is_fs(n) ? fs->entry_timeout : SYNTH_TIMEOUT;
}

/* ---- lookup ---- */

/*
 * Find (making it if needed, with one kernel lookup) the child `name` of
 * `parent`, and its attributes.  Returns 0 or -errno.
 */
static int lookup_child(struct sbxfs *fs, struct node *parent, const char *name,
			struct node **out, struct stat *st)
{
	enum node_kind kind = NODE_FS;
	struct box *box = parent->box, *newbox = NULL;
	unsigned cmd = parent->cmd;
	int cfile = 0, rc;
	struct node *n;

	if (is_fs(parent)) {
		char path[PATH_MAX_SBX];

		if (strlen(name) > 255)
			return -ENAMETOOLONG;
		rc = node_child_path(fs->nodes, parent, name, path, sizeof(path));
		if (rc)
			return rc == -ENOENT ? -ESTALE : rc;
		rc = fs_getattr_path(fs, box, path,
				     node_child_opens(fs->nodes, parent, name), st);
		if (rc)
			return rc;
	} else {
		struct synth_child sc;

		rc = synth_lookup(fs, parent, name, &sc);
		if (rc)
			return rc;
		kind = sc.file->kind;
		cfile = sc.file->cfile;
		cmd = sc.cmd;
		if (sc.box)
			box = newbox = sc.box;
	}
	n = node_lookup(fs->nodes, parent, name, kind, box, cmd, cfile,
			kind == NODE_FS ? st : NULL);
	box_put(newbox);
	if (!n)
		return -ENOMEM;
	if (kind == NODE_FS) {
		st->st_ino = n->ino;
	} else if (kind == NODE_FSROOT) {
		rc = node_attr(fs, n, st);
		if (rc) {
			node_forget(fs->nodes, n->ino, 1);
			return rc;
		}
	} else {
		synth_attr(fs, n, st);
	}
	*out = n;
	return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sbxfs *fs = FS(req);
	struct node *p = node_find(fs->nodes, parent), *n;
	struct fuse_entry_param e;
	volatile int intr;
	struct stat st;
	int rc;

	if (!p) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	req_intr_begin(req, &intr);
	rc = lookup_child(fs, p, name, &n, &st);
	req_intr_end(req);
	sbx_trace(SBX_TRACE_FUSE, "lookup %lu/%s -> %d", (unsigned long)parent, name, rc);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(fs, &e, n, &st);
	if (fuse_reply_entry(req, &e))
		node_forget(fs->nodes, n->ino, 1);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(FS(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(FS(req)->nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	volatile int intr;
	struct stat st;
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	req_intr_begin(req, &intr);
	rc = node_attr(fs, n, &st);
	req_intr_end(req);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(fs, n));
}

/* Resolve (node, path) for an operation on root/; replies on failure. */
static struct node *fs_node(fuse_req_t req, fuse_ino_t ino, char *path, size_t size)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return NULL;
	}
	if (!is_fs(n)) {
		fuse_reply_err(req, EPERM);
		return NULL;
	}
	rc = node_path(fs->nodes, n, path, size);
	if (rc) {
		fuse_reply_err(req, rc == -ENOENT ? ESTALE : -rc);
		return NULL;
	}
	return n;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct sbx_provider *p = fs->provider;
	struct node *n = node_find(fs->nodes, ino);
	char path[PATH_MAX_SBX];
	struct stat st;
	int rc = 0;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (!is_fs(n)) {
		/* `echo x > ctl` truncates first: fine for writable files. */
		synth_attr(fs, n, &st);
		if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME |
			       FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			       FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME))
			fuse_reply_err(req, EPERM);
		else if ((to_set & FUSE_SET_ATTR_SIZE) && !(st.st_mode & 0222))
			fuse_reply_err(req, EACCES);
		else
			fuse_reply_attr(req, &st, SYNTH_TIMEOUT);
		return;
	}
	if (!fs_node(req, ino, path, sizeof(path)))
		return;
	sbx_fail_clear();
	if (to_set & FUSE_SET_ATTR_MODE)
		rc = p->ops.chmod(p, n->box->name, path, attr->st_mode & 07777);
	if (!rc && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = !has_cap(fs, SBX_CAP_CHOWN)
			     ? -EPERM
			     : p->ops.chown(p, n->box->name, path,
					    (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid
									 : (uid_t)-1,
					    (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid
									 : (gid_t)-1);
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE))
		rc = p->ops.truncate(p, n->box->name, path, attr->st_size);
	if (!rc && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
					  { .tv_nsec = UTIME_OMIT } };

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		rc = p->ops.utimens(p, n->box->name, path, ts);
	}
	cache_forget(fs->cache, n->box->name, path, 0);
	if (!rc)
		rc = node_attr(fs, n, &st);
	if (rc) {
		fs_error(n->box, rc, "setattr", path);
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_attr(req, &st, attr_timeout(fs, n));
	}
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	char path[PATH_MAX_SBX], target[PATH_MAX_SBX], confined[PATH_MAX_SBX];
	int rc;

	if (n && n->kind == NODE_CMDLAST) {
		snprintf(target, sizeof(target), "%u", box_cmd_count(n->box));
		fuse_reply_readlink(req, target);
		return;
	}
	if (!fs_node(req, ino, path, sizeof(path)))
		return;
	sbx_fail_clear();
	rc = fs->provider->ops.readlink(fs->provider, target, sizeof(target),
					n->box->name, path);
	/* The kernel follows what we answer from the caller's root: never
	 * let a sandbox's link point out of its root/. */
	if (!rc)
		rc = sbx_symlink_confine(confined, sizeof(confined), path, target);
	if (rc) {
		fs_error(n->box, rc, "readlink", path);
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_readlink(req, confined);
	}
}

/* ---- making and removing names ---- */

/* After a new name appeared under root/: look it up and reply. */
static int reply_new_entry(fuse_req_t req, struct node *parent, const char *name)
{
	struct sbxfs *fs = FS(req);
	struct fuse_entry_param e;
	struct node *n;
	struct stat st;
	int rc = lookup_child(fs, parent, name, &n, &st);

	if (rc) {
		fuse_reply_err(req, -rc);
		return rc;
	}
	fill_entry(fs, &e, n, &st);
	rc = fuse_reply_entry(req, &e);
	if (rc)
		node_forget(fs->nodes, n->ino, 1);
	return rc;
}

/* The parent as a root/ directory and the child's path; replies on error. */
static struct node *fs_parent(fuse_req_t req, fuse_ino_t parent, const char *name,
			      char *path, size_t size)
{
	struct sbxfs *fs = FS(req);
	struct node *p = node_find(fs->nodes, parent);
	int rc;

	if (!p) {
		fuse_reply_err(req, ESTALE);
		return NULL;
	}
	if (!is_fs(p)) {
		fuse_reply_err(req, p->kind == NODE_ROOT ? EINVAL : EPERM);
		return NULL;
	}
	if (strlen(name) > 255) {
		fuse_reply_err(req, ENAMETOOLONG);
		return NULL;
	}
	rc = node_child_path(fs->nodes, p, name, path, size);
	if (rc) {
		fuse_reply_err(req, rc == -ENOENT ? ESTALE : -rc);
		return NULL;
	}
	return p;
}

/* After a provider call that made `name` in `p`: record, reply. */
static void new_name_done(fuse_req_t req, struct node *p, const char *name,
			  const char *path, int rc, const char *op)
{
	struct sbxfs *fs = FS(req);

	cache_forget(fs->cache, p->box->name, path, 0);
	if (rc) {
		fs_error(p->box, rc, op, path);
		fuse_reply_err(req, -rc);
		return;
	}
	reply_new_entry(req, p, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct sbxfs *fs = FS(req);
	struct node *p = node_find(fs->nodes, parent);
	char path[PATH_MAX_SBX], why[512];
	int rc;

	if (p && p->kind == NODE_ROOT) {
		char *argv[] = { "new", (char *)name, NULL };

		rc = box_create(fs, 2, argv, why, sizeof(why));
		if (rc)
			fuse_reply_err(req, -rc);
		else
			reply_new_entry(req, p, name);
		return;
	}
	if (!(p = fs_parent(req, parent, name, path, sizeof(path))))
		return;
	sbx_fail_clear();
	rc = fs->provider->ops.mkdir(fs->provider, p->box->name, path, mode);
	new_name_done(req, p, name, path, rc, "mkdir");
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct sbxfs *fs = FS(req);
	char path[PATH_MAX_SBX];
	struct node *p = fs_parent(req, parent, name, path, sizeof(path));
	int rc;

	if (!p)
		return;
	if (!has_cap(fs, SBX_CAP_SYMLINK)) {
		fuse_reply_err(req, EPERM); /* what Linux says where there are none */
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.symlink(fs->provider, p->box->name, target, path);
	new_name_done(req, p, name, path, rc, "symlink");
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct sbxfs *fs = FS(req);
	char from[PATH_MAX_SBX], to[PATH_MAX_SBX];
	struct node *n, *p;
	int rc;

	if (!(n = fs_node(req, ino, from, sizeof(from))))
		return;
	if (!(p = fs_parent(req, newparent, newname, to, sizeof(to))))
		return;
	if (p->box != n->box) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	if (!has_cap(fs, SBX_CAP_HARDLINK)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.link(fs->provider, p->box->name, from, to);
	cache_forget(fs->cache, p->box->name, from, 0);
	new_name_done(req, p, newname, to, rc, "link");
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int dir)
{
	struct sbxfs *fs = FS(req);
	struct node *p = node_find(fs->nodes, parent);
	char path[PATH_MAX_SBX], why[512];
	int rc;

	if (p && p->kind == NODE_ROOT && dir) {
		rc = sbx_name_valid(name) ? box_remove(fs, name, why, sizeof(why))
					  : -ENOENT;
		if (!rc)
			node_unname(fs->nodes, p, name);
		fuse_reply_err(req, -rc);
		return;
	}
	if (!(p = fs_parent(req, parent, name, path, sizeof(path))))
		return;
	sbx_fail_clear();
	rc = dir ? fs->provider->ops.rmdir(fs->provider, p->box->name, path)
		 : fs->provider->ops.unlink(fs->provider, p->box->name, path);
	cache_forget(fs->cache, p->box->name, path, dir);
	if (rc)
		fs_error(p->box, rc, dir ? "rmdir" : "unlink", path);
	else
		node_unname(fs->nodes, p, name);
	fuse_reply_err(req, -rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 1);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct sbxfs *fs = FS(req);
	char from[PATH_MAX_SBX], to[PATH_MAX_SBX];
	struct node *p, *np;
	int rc;

	if (!(p = fs_parent(req, parent, name, from, sizeof(from))))
		return;
	if (!(np = fs_parent(req, newparent, newname, to, sizeof(to))))
		return;
	if (p->box != np->box) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	/* RENAME_NOREPLACE and RENAME_EXCHANGE need an atomic rename. */
	if (flags && !has_cap(fs, SBX_CAP_RENAME_OVER)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.rename(fs->provider, p->box->name, from, to, flags);
	cache_forget(fs->cache, p->box->name, from, 1);
	cache_forget(fs->cache, p->box->name, to, 1);
	if (rc) {
		fs_error(p->box, rc, "rename", from);
	} else if (flags & RENAME_EXCHANGE) {
		/* Both names still exist with swapped objects: forget both. */
		node_unname(fs->nodes, p, name);
		node_unname(fs->nodes, np, newname);
	} else {
		rc = node_rename(fs->nodes, p, name, np, newname);
	}
	fuse_reply_err(req, -rc);
}

/* ---- files below root/ ---- */

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct node *parent, const char *name, mode_t mode)
{
	struct sbxfs *fs = FS(req);
	char path[PATH_MAX_SBX];
	struct node *n = NULL;
	volatile int intr;
	struct stat st, known;
	uint64_t fh;
	int rc, flags = fi->flags, have_known = 0;

	if (parent) {
		if (!(n = fs_parent(req, parent->ino, name, path, sizeof(path))))
			return;
		flags |= O_CREAT;
	} else if (!(n = fs_node(req, ino, path, sizeof(path)))) {
		return;
	} else if (!(flags & O_TRUNC) &&
		   cache_get_attr(fs->cache, &known, n->box->name, path) == 0 &&
		   !several_names(&known)) {
		/* Fresh attributes spare a remote provider asking again. */
		have_known = 1;
	}
	sbx_fail_clear();
	req_intr_begin(req, &intr);
	rc = fs->provider->ops.open(fs->provider, &fh, &st, n->box->name, path, flags,
				    mode, have_known ? &known : NULL);
	req_intr_end(req);
	if (flags & (O_CREAT | O_TRUNC | O_WRONLY | O_RDWR))
		cache_forget(fs->cache, n->box->name, path, 0);
	if (rc) {
		fs_error(n->box, rc, "open", path);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = fh;
	if (!parent) {
		__atomic_store_n(&n->open_fh, fh, __ATOMIC_RELEASE);
		__atomic_add_fetch(&n->opens, 1, __ATOMIC_ACQ_REL);
	}
	/* Nothing to flush for a reader, or ever for some providers: spare
	 * close(2) a round trip. */
	fi->noflush = (flags & O_ACCMODE) == O_RDONLY ||
		      (fs->provider->desc->caps & SBX_CAP_NO_FLUSH);
	/* Pages stay cached across opens; the kernel drops them when the
	 * attributes show another size or mtime, and we after commands. */
	fi->keep_cache = 1;
	if (parent) {
		/* The attributes came with the open: no second call. */
		struct fuse_entry_param e;
		struct node *child = node_lookup(fs->nodes, parent, name, NODE_FS,
						 parent->box, 0, 0, &st);

		if (!child) {
			fs->provider->ops.release(fs->provider, fh);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		__atomic_store_n(&child->open_fh, fh, __ATOMIC_RELEASE);
		__atomic_add_fetch(&child->opens, 1, __ATOMIC_ACQ_REL);
		fill_entry(fs, &e, child, &st);
		if (fuse_reply_create(req, &e, fi)) {
			__atomic_sub_fetch(&child->opens, 1, __ATOMIC_ACQ_REL);
			node_forget(fs->nodes, child->ino, 1);
			fs->provider->ops.release(fs->provider, fh);
		}
	} else if (fuse_reply_open(req, fi)) {
		__atomic_sub_fetch(&n->opens, 1, __ATOMIC_ACQ_REL);
		fs->provider->ops.release(fs->provider, fh);
	}
}

static void fs_read(fuse_req_t req, struct node *n, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	char *buf = malloc(size ? size : 1);
	volatile int intr;
	ssize_t got;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	__atomic_store_n(&n->open_fh, fi->fh, __ATOMIC_RELEASE);
	sbx_fail_clear();
	req_intr_begin(req, &intr);
	got = fs->provider->ops.read(fs->provider, fi->fh, buf, size, off);
	req_intr_end(req);
	if (got < 0) {
		fs_node_error(fs, n, (int)got, "read");
		fuse_reply_err(req, (int)-got);
	} else {
		fuse_reply_buf(req, buf, (size_t)got);
	}
	free(buf);
}

static void fs_write(fuse_req_t req, struct node *n, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	char path[PATH_MAX_SBX];
	ssize_t done;

	__atomic_store_n(&n->open_fh, fi->fh, __ATOMIC_RELEASE);
	sbx_fail_clear();
	done = fs->provider->ops.write(fs->provider, fi->fh, buf, size, off);
	if (node_path(fs->nodes, n, path, sizeof(path)) == 0)
		cache_forget(fs->cache, n->box->name, path, 0);
	if (done < 0) {
		fs_node_error(fs, n, (int)done, "write");
		fuse_reply_err(req, (int)-done);
	} else {
		fuse_reply_write(req, (size_t)done);
	}
}

/* ---- open, read, write, release: dispatch ---- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_find(FS(req)->nodes, ino);

	if (!n)
		fuse_reply_err(req, ESTALE);
	else if (is_fs(n))
		fs_open(req, ino, fi, NULL, NULL, 0);
	else if (n->kind == NODE_ROOT || n->kind == NODE_BOX || n->kind == NODE_CMDS ||
		 n->kind == NODE_CMD)
		fuse_reply_err(req, EISDIR);
	else
		synth_open(req, n, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct node *p = node_find(FS(req)->nodes, parent);

	if (!p)
		fuse_reply_err(req, ESTALE);
	else if (!is_fs(p))
		fuse_reply_err(req, p->kind == NODE_ROOT ? EINVAL : EPERM);
	else
		fs_open(req, 0, fi, p, name, mode);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct node *n = node_find(FS(req)->nodes, ino);

	if (!n)
		fuse_reply_err(req, ESTALE);
	else if (is_fs(n))
		fs_read(req, n, size, off, fi);
	else
		synth_read(req, fi, size, off);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct node *n = node_find(FS(req)->nodes, ino);

	if (!n)
		fuse_reply_err(req, ESTALE);
	else if (is_fs(n))
		fs_write(req, n, buf, size, off, fi);
	else
		synth_write(req, fi, buf, size);
}

/* A handle that may write has been saved: what was cached of the file
 * is older than what the server holds now. */
static void forget_saved(struct sbxfs *fs, struct node *n)
{
	char path[PATH_MAX_SBX];

	if (node_path(fs->nodes, n, path, sizeof(path)) == 0)
		cache_forget(fs->cache, n->box->name, path, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	int rc = 0;

	if (n && is_fs(n)) {
		sbx_fail_clear();
		rc = fs->provider->ops.flush(fs->provider, fi->fh);
		/* Readers close without a flush (noflush): this was a writer. */
		forget_saved(fs, n);
		if (rc)
			fs_node_error(fs, n, rc, "close");
	}
	fuse_reply_err(req, -rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);

	if (n && is_fs(n)) {
		uint64_t fh = fi->fh;

		__atomic_compare_exchange_n(&n->open_fh, &fh, 0, 0, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
		__atomic_sub_fetch(&n->opens, 1, __ATOMIC_ACQ_REL);
		fs->provider->ops.release(fs->provider, fi->fh);
		if ((fi->flags & O_ACCMODE) != O_RDONLY)
			forget_saved(fs, n);
	} else {
		synth_release(fi);
	}
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	int rc = 0;

	if (n && is_fs(n)) {
		sbx_fail_clear();
		rc = fs->provider->ops.fsync(fs->provider, fi->fh, datasync);
		if (rc)
			fs_node_error(fs, n, rc, "fsync");
	}
	fuse_reply_err(req, -rc);
}

/* ---- directories ---- */

struct dirhandle {
	struct node *node;
	struct cache_dir *list; /* entries with attributes */
};

static int fill_dirent(void *ctx, const char *name, const struct stat *st)
{
	struct cache_dir *d = ctx;

	if (!sbx_entry_name_valid(name))
		return 0; /* a sandbox may name things we cannot show */
	return cache_dir_add(d, name, st);
}

/* The listing of box:path: from the cache, or one provider call.  Errors
 * are the caller's to report. */
static int list_path(struct sbxfs *fs, struct box *b, const char *path,
		     struct cache_dir **out)
{
	struct cache_dir *d = cache_get_dir(fs->cache, b->name, path);
	uint64_t gen;
	double t0;
	int rc;

	sbx_trace(SBX_TRACE_CACHE, "listing %s:%s %s", b->name, path, d ? "hit" : "miss");
	if (d) {
		*out = d;
		return 0;
	}
	d = cache_dir_new();
	if (!d)
		return -ENOMEM;
	gen = cache_begin(fs->cache);
	sbx_fail_clear();
	t0 = now_ms();
	rc = fs->provider->ops.readdir(fs->provider, b->name, path, fill_dirent, d);
	sbx_trace(SBX_TRACE_PROVIDER, "readdir %s:%s -> %d, %zu entries (%.3f ms)",
		  b->name, path, rc, d->n, now_ms() - t0);
	if (rc) {
		cache_dir_put(d);
		return rc;
	}
	d->refs++;
	cache_put_dir(fs->cache, gen, b->name, path, d);
	*out = d;
	return 0;
}

/* The listing of a root/ directory. */
static int fs_list(struct sbxfs *fs, struct node *n, struct cache_dir **out)
{
	char path[PATH_MAX_SBX];
	int rc = node_path(fs->nodes, n, path, sizeof(path));

	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	rc = list_path(fs, n->box, path, out);
	if (rc)
		fs_error(n->box, rc, "readdir", path);
	return rc;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	struct dirhandle *dh;
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (fs->no_opendir) {
		/* Tells the kernel to open directories by itself from now on;
		 * readdir then comes with no handle. */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	dh = calloc(1, sizeof(*dh));
	if (!dh) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dh->node = n;
	if (is_fs(n)) {
		/* The kernel keeps listings in its page cache across opens and
		 * drops them when the directory changes (through us, or on our
		 * invalidation after a command, or when its mtime moves), so
		 * the provider is asked only at the first readdir that misses. */
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	} else {
		rc = synth_list(fs, n, &dh->list);
		if (rc) {
			free(dh);
			fuse_reply_err(req, -rc);
			return;
		}
	}
	fi->fh = (uint64_t)(uintptr_t)dh;
	if (fuse_reply_open(req, fi)) {
		cache_dir_put(dh->list);
		free(dh);
	}
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct sbxfs *fs = FS(req);
	struct dirhandle own = { 0 }, *dh = (struct dirhandle *)(uintptr_t)fi->fh;
	char *buf = malloc(size), *p = buf;
	size_t left = size;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!dh) {
		/* Opened by the kernel alone: list for this request. */
		dh = &own;
		dh->node = node_find(fs->nodes, ino);
		if (!dh->node) {
			free(buf);
			fuse_reply_err(req, ESTALE);
			return;
		}
	}
	if (!dh->list) {
		volatile int intr;
		int rc;

		req_intr_begin(req, &intr);
		rc = is_fs(dh->node) ? fs_list(fs, dh->node, &dh->list)
				     : synth_list(fs, dh->node, &dh->list);
		req_intr_end(req);

		if (rc) {
			free(buf);
			fuse_reply_err(req, -rc);
			return;
		}
	}
	/* Offsets: 1 and 2 for "." and "..", then 3 + index. */
	for (off_t i = off;; i++) {
		struct fuse_entry_param e;
		struct node *n = NULL;
		struct stat st;
		const char *name;
		unsigned opens;
		size_t need;

		memset(&e, 0, sizeof(e));
		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.attr.st_ino = dh->node->ino;
			e.attr.st_mode = S_IFDIR;
		} else if ((size_t)(i - 2) < dh->list->n) {
			struct cache_dirent *de = &dh->list->v[i - 2];

			name = de->name;
			if (plus) {
				st = de->st;
				opens = 0;
				if (is_fs(dh->node) && !S_ISDIR(st.st_mode))
					opens = node_child_opens(fs->nodes, dh->node,
								 name);
				if (opens || (is_fs(dh->node) && several_names(&st))) {
					/* A listing cached under one of its names may be
					 * stale if it was written through another; an
					 * open file may have changes the server lacks. */
					char cpath[PATH_MAX_SBX];

					if (node_child_path(fs->nodes, dh->node, name,
							    cpath, sizeof(cpath)) ||
					    fs_getattr_path(fs, dh->node->box, cpath,
							    opens, &st))
						continue;
				}
				if (is_fs(dh->node)) {
					n = node_lookup(fs->nodes, dh->node, name,
							NODE_FS, dh->node->box, 0, 0,
							&st);
				} else if (lookup_child(fs, dh->node, name, &n, &st)) {
					continue; /* gone meanwhile */
				}
				if (!n)
					break;
				fill_entry(fs, &e, n, &st);
			} else {
				/* readdir's inode numbers are not used by the
				 * kernel; the type is. */
				e.attr.st_ino = UNKNOWN_INO;
				e.attr.st_mode = de->st.st_mode;
			}
		} else {
			break;
		}
		need = plus ? fuse_add_direntry_plus(req, p, left, name, &e, i + 1)
			    : fuse_add_direntry(req, p, left, name, &e.attr, i + 1);
		if (need > left) {
			if (n)
				node_forget(fs->nodes, n->ino, 1);
			break;
		}
		p += need;
		left -= need;
	}
	fuse_reply_buf(req, buf, size - left);
	free(buf);
	if (dh == &own)
		cache_dir_put(own.list);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirhandle *dh = (struct dirhandle *)(uintptr_t)fi->fh;

	if (dh) {
		cache_dir_put(dh->list);
		free(dh);
	}
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	char path[PATH_MAX_SBX];
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };
	int rc;

	if (!n || !is_fs(n) || node_path(fs->nodes, n, path, sizeof(path))) {
		fuse_reply_statfs(req, &sv);
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.statfs(fs->provider, &sv, n->box->name, path);
	if (rc) {
		fs_error(n->box, rc, "statfs", path);
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_statfs(req, &sv);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sbxfs *fs = userdata;

	/* Directories open without a round trip, listings stay cached. */
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		fs->no_opendir = 1;
	}
	/* Attributes come with listings; lookups run in parallel. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* The kernel must not keep file sizes itself: the sandbox changes
	 * its files behind our back. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Streams are read in order, one request at a time. */
	conn->want &= ~FUSE_CAP_ASYNC_DIO;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
}

const struct fuse_lowlevel_ops sbxfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
};

/* SPDX-License-Identifier: MIT */
/*
 * The FUSE low-level operations: the tree of sandboxes, their control
 * files, and root/, which is handed to the provider path by path through
 * the cache.  Here: lookups, attributes, names, and the ops table; file
 * I/O is in fs_file.c, directory listings in fs_dir.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sbxfs/attr.h"
#include "sbxfs/box.h"
#include "sbxfs/fs.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/node.h"
#include "sbxfs/notify.h"
#include "sbxfs/req.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/synth.h"
#include "fs_int.h"

/* The same, for an open file's node: its path now, if it still has one. */
void fs_node_error(struct sbxfs *fs, struct node *n, int rc, const char *op)
{
	char path[PATH_MAX_SBX];

	if (node_path(fs->nodes, n, path, sizeof(path)))
		snprintf(path, sizeof(path), "(unlinked file)");
	attr_report(n->box, rc, op, path);
}

double fs_attr_timeout(struct sbxfs *fs, const struct node *n, const struct stat *st)
{
	/* A file with several names may be several inodes to the kernel
	 * (a provider may know no inode numbers to tell them by): a change
	 * through one name must show under the others at once. */
	if (is_fs(n) && attr_several_names(st))
		return 0;
	return is_fs(n) ? fs->attr_timeout : synth_attr_timeout(n);
}

int fs_node_attr(struct sbxfs *fs, struct node *n, struct stat *st)
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
	rc = attr_get(fs, n->box, path, __atomic_load_n(&n->opens, __ATOMIC_ACQUIRE), st);
	if (rc == 0) {
		st->st_ino = n->ino;
		if (n->kind == NODE_FSROOT)
			st->st_mode = (st->st_mode & ~S_IFMT) | S_IFDIR;
	}
	return rc;
}

void fs_fill_entry(struct sbxfs *fs, struct fuse_entry_param *e, struct node *n,
		   const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = n->generation;
	e->attr = *st;
	e->attr.st_ino = n->ino;
	e->attr_timeout = fs_attr_timeout(fs, n, st);
	e->entry_timeout = is_fs(n) ? fs->entry_timeout : SYNTH_TIMEOUT;
}

/* A path the provider's API does not take: the sandbox's err says so. */
static int too_long(struct sbxfs *fs, struct box *b, int rc)
{
	size_t max = fs->provider->desc->path_max;

	if (rc == -ENAMETOOLONG && max && b)
		box_fail(b, rc,
			 "a path of over %zu bytes below root/: %s's API takes none "
			 "longer",
			 max - 1, fs->provider->desc->name);
	return rc;
}

/* ---- lookup ---- */

/*
 * Find (making it if needed, with one kernel lookup) the child `name` of
 * `parent`, and its attributes.  Returns 0 or -errno.
 */
int fs_lookup_child(struct sbxfs *fs, struct node *parent, const char *name,
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
			return rc == -ENOENT ? -ESTALE : too_long(fs, box, rc);
		rc = attr_get(fs, box, path, node_child_opens(fs->nodes, parent, name),
			      st);
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
		rc = fs_node_attr(fs, n, st);
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
		reply_err(req, -ESTALE);
		return;
	}
	req_intr_begin(req, &intr);
	rc = fs_lookup_child(fs, p, name, &n, &st);
	req_intr_end(req);
	sbx_trace(SBX_TRACE_FUSE, "lookup %lu/%s -> %d", (unsigned long)parent, name, rc);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	fs_fill_entry(fs, &e, n, &st);
	if (reply_entry(req, &e))
		node_forget(fs->nodes, n->ino, 1);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(FS(req)->nodes, ino, nlookup);
	reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	volatile int intr;
	struct stat st;
	int rc;

	if (!n) {
		reply_err(req, -ESTALE);
		return;
	}
	req_intr_begin(req, &intr);
	rc = fs_node_attr(fs, n, &st);
	req_intr_end(req);
	if (rc)
		reply_err(req, rc);
	else
		reply_attr(req, &st, fs_attr_timeout(fs, n, &st));
}

/* Resolve (node, path) for an operation on root/; replies on failure. */
struct node *fs_node(fuse_req_t req, fuse_ino_t ino, char *path, size_t size)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	int rc;

	if (!n) {
		reply_err(req, -ESTALE);
		return NULL;
	}
	if (!is_fs(n)) {
		reply_err(req, -EPERM);
		return NULL;
	}
	rc = node_path(fs->nodes, n, path, size);
	if (rc) {
		reply_err(req, rc == -ENOENT ? -ESTALE : too_long(fs, n->box, rc));
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
		reply_err(req, -ESTALE);
		return;
	}
	if (!is_fs(n)) {
		/* `echo x > ctl` truncates first: fine for writable files. */
		synth_attr(fs, n, &st);
		if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME |
			       FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			       FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME))
			reply_err(req, -EPERM);
		else if ((to_set & FUSE_SET_ATTR_SIZE) && !(st.st_mode & 0222))
			reply_err(req, -EACCES);
		else
			reply_attr(req, &st, SYNTH_TIMEOUT);
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
	if (rc)
		cache_forget(fs->cache, n->box->name, path, 0);
	else
		cache_note(fs->cache, n->box->name, path, CACHE_CHANGED, 0);
	if (!rc)
		rc = fs_node_attr(fs, n, &st);
	if (rc) {
		attr_report(n->box, rc, "setattr", path);
		reply_err(req, rc);
	} else {
		reply_attr(req, &st, fs_attr_timeout(fs, n, &st));
	}
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	char path[PATH_MAX_SBX], target[PATH_MAX_SBX], confined[PATH_MAX_SBX];
	uint64_t gen;
	int rc;

	if (n && n->kind == NODE_CMDLAST) {
		snprintf(target, sizeof(target), "%u", box_cmd_count(n->box));
		reply_readlink(req, target);
		return;
	}
	if (!fs_node(req, ino, path, sizeof(path)))
		return;
	gen = cache_begin(fs->cache);
	rc = cache_get_link(fs->cache, target, sizeof(target), n->box->name, path);
	if (rc) {
		sbx_fail_clear();
		rc = fs->provider->ops.readlink(fs->provider, target, sizeof(target),
						n->box->name, path);
		if (!rc)
			cache_put_link(fs->cache, gen, n->box->name, path, target);
	}
	/* The kernel follows what we answer from the caller's root: never
	 * let a sandbox's link point out of its root/. */
	if (!rc)
		rc = sbx_symlink_confine(confined, sizeof(confined), path, target);
	if (rc) {
		attr_report(n->box, rc, "readlink", path);
		reply_err(req, rc);
	} else {
		reply_readlink(req, confined);
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
	int rc = fs_lookup_child(fs, parent, name, &n, &st);

	if (rc) {
		reply_err(req, rc);
		return rc;
	}
	fs_fill_entry(fs, &e, n, &st);
	rc = reply_entry(req, &e);
	if (rc)
		node_forget(fs->nodes, n->ino, 1);
	return rc;
}

/* The parent as a root/ directory and the child's path; replies on error. */
struct node *fs_parent(fuse_req_t req, fuse_ino_t parent, const char *name, char *path,
		       size_t size)
{
	struct sbxfs *fs = FS(req);
	struct node *p = node_find(fs->nodes, parent);
	int rc;

	if (!p) {
		reply_err(req, -ESTALE);
		return NULL;
	}
	if (!is_fs(p)) {
		reply_err(req, p->kind == NODE_ROOT ? -EINVAL : -EPERM);
		return NULL;
	}
	if (strlen(name) > 255) {
		reply_err(req, -ENAMETOOLONG);
		return NULL;
	}
	rc = node_child_path(fs->nodes, p, name, path, size);
	if (rc) {
		reply_err(req, rc == -ENOENT ? -ESTALE : too_long(fs, p->box, rc));
		return NULL;
	}
	return p;
}

/* After a provider call that made `name` in `p`, of S_IFMT `type` (0 if
 * unknown): record, reply. */
static void new_name_done(fuse_req_t req, struct node *p, const char *name,
			  const char *path, mode_t type, int rc, const char *op)
{
	struct sbxfs *fs = FS(req);

	if (rc) {
		cache_forget(fs->cache, p->box->name, path, 0);
		attr_report(p->box, rc, op, path);
		reply_err(req, rc);
		return;
	}
	cache_note(fs->cache, p->box->name, path, CACHE_ADDED, type);
	/* Before the reply: the caller may make names in it at once. */
	if (S_ISDIR(type))
		cache_note_empty_dir(fs->cache, p->box->name, path);
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
			reply_err(req, rc);
		else
			reply_new_entry(req, p, name);
		return;
	}
	if (!(p = fs_parent(req, parent, name, path, sizeof(path))))
		return;
	sbx_fail_clear();
	rc = fs->provider->ops.mkdir(fs->provider, p->box->name, path, mode);
	new_name_done(req, p, name, path, S_IFDIR, rc, "mkdir");
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
		reply_err(req, -EPERM); /* what Linux says where there are none */
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.symlink(fs->provider, p->box->name, target, path);
	new_name_done(req, p, name, path, S_IFLNK, rc, "symlink");
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct sbxfs *fs = FS(req);
	struct sbx_provider *pv = fs->provider;
	char path[PATH_MAX_SBX];
	struct node *p = fs_parent(req, parent, name, path, sizeof(path));
	uint64_t fh;
	struct stat st;
	int rc;

	if (!p)
		return;
	sbx_fail_clear();
	rc = pv->ops.mknod(pv, p->box->name, path, mode, rdev);
	if (rc == -ENOTSUP && S_ISREG(mode)) {
		rc = pv->ops.open(pv, &fh, &st, p->box->name, path,
				  O_CREAT | O_EXCL | O_WRONLY, mode & 07777, NULL);
		if (!rc)
			rc = pv->ops.release(pv, fh);
	} else if (rc == -ENOTSUP) {
		rc = -EPERM;
	}
	new_name_done(req, p, name, path, mode & S_IFMT, rc, "mknod");
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
		reply_err(req, -EXDEV);
		return;
	}
	if (!has_cap(fs, SBX_CAP_HARDLINK)) {
		reply_err(req, -EPERM);
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.link(fs->provider, p->box->name, from, to);
	if (rc) {
		cache_forget(fs->cache, p->box->name, from, 0);
		new_name_done(req, p, newname, to, 0, rc, "link");
		return;
	}
	cache_note(fs->cache, p->box->name, from, CACHE_CHANGED, 0);
	/* The kernel keeps the file's attributes under its old name, where
	 * the new name may be another inode (a provider may know no inode
	 * numbers to tell them by): its link count must be asked again.
	 * Attributes only, which is safe within the request. */
	sbxfs_invalidate_attr_now(fs, n->ino);
	new_name_done(req, p, newname, to, 0, 0, "link");
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
		reply_err(req, rc);
		return;
	}
	if (!(p = fs_parent(req, parent, name, path, sizeof(path))))
		return;
	sbx_fail_clear();
	rc = dir ? fs->provider->ops.rmdir(fs->provider, p->box->name, path)
		 : fs->provider->ops.unlink(fs->provider, p->box->name, path);
	if (rc)
		cache_forget(fs->cache, p->box->name, path, dir);
	else
		cache_note(fs->cache, p->box->name, path, CACHE_REMOVED,
			   dir ? S_IFDIR : S_IFREG);
	if (rc)
		attr_report(p->box, rc, dir ? "rmdir" : "unlink", path);
	else
		node_unname(fs->nodes, p, name);
	reply_err(req, rc);
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
		reply_err(req, -EXDEV);
		return;
	}
	/* RENAME_NOREPLACE and RENAME_EXCHANGE need an atomic rename. */
	if (flags && !has_cap(fs, SBX_CAP_RENAME_OVER)) {
		reply_err(req, -EINVAL);
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.rename(fs->provider, p->box->name, from, to, flags);
	cache_forget(fs->cache, p->box->name, from, 1);
	cache_forget(fs->cache, p->box->name, to, 1);
	if (rc) {
		attr_report(p->box, rc, "rename", from);
	} else if (flags & RENAME_EXCHANGE) {
		/* Both names still exist with swapped objects: forget both. */
		node_unname(fs->nodes, p, name);
		node_unname(fs->nodes, np, newname);
	} else {
		rc = node_rename(fs->nodes, p, name, np, newname);
	}
	reply_err(req, rc);
}

/* The last statfs of a sandbox, for the attribute timeout: the walks of
 * find, du and ls (fts) ask it at their start. */
static int statfs_cached(struct box *b, const char *path, struct statvfs *sv)
{
	int hit;

	pthread_mutex_lock(&b->lock);
	hit = b->statfs_path && !strcmp(b->statfs_path, path) &&
	      cache_clock() < b->statfs_until;
	if (hit)
		*sv = b->statfs;
	pthread_mutex_unlock(&b->lock);
	return hit;
}

static void statfs_keep(struct box *b, const char *path, const struct statvfs *sv)
{
	char *copy = strdup(path);

	if (!copy)
		return;
	pthread_mutex_lock(&b->lock);
	free(b->statfs_path);
	b->statfs_path = copy;
	b->statfs = *sv;
	b->statfs_until = cache_clock() + b->fs->attr_timeout;
	pthread_mutex_unlock(&b->lock);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	char path[PATH_MAX_SBX];
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };
	int rc;

	if (!n || !is_fs(n) || node_path(fs->nodes, n, path, sizeof(path))) {
		reply_statfs(req, &sv);
		return;
	}
	if (statfs_cached(n->box, path, &sv)) {
		reply_statfs(req, &sv);
		return;
	}
	sbx_fail_clear();
	rc = fs->provider->ops.statfs(fs->provider, &sv, n->box->name, path);
	if (rc) {
		attr_report(n->box, rc, "statfs", path);
		reply_err(req, rc);
	} else {
		statfs_keep(n->box, path, &sv);
		reply_statfs(req, &sv);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sbxfs_mount *m = userdata;

	/* Directories open without a round trip, listings stay cached. */
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		for (size_t i = 0; i < m->n; i++)
			m->trees[i]->no_opendir = 1;
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

/* Who asks, for the provider (sbx_caller()). */
static void caller_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	sbx_caller_set(ctx->uid, ctx->gid);
}

/* The tree of `ino`, made the one this thread serves; NULL for the
 * directory of providers (mount.h). */
static struct sbxfs *serve(fuse_req_t req, fuse_ino_t ino)
{
	struct sbxfs *fs = mount_tree_of(fuse_req_userdata(req), ino);

	mount_serve(fs);
	return fs;
}

/*
 * What libfuse calls: each operation between req_begin() and req_end(),
 * so that debug builds check it replies exactly once (see req.h), as one
 * call with one bound on a silent server (sbx_call_begin()), and on the
 * tree of the number `ino` (mount.h), or else as `top` says.  `ino2`, a
 * second number the operation names, must be of the same tree: a rename
 * or link from one provider's tree to another's is EXDEV, as between
 * two mounts.
 */
#define ONE_REPLY2(op, params, args, ino, ino2, top)                        \
	static void one_##op params                                         \
	{                                                                   \
		struct sbxfs *fs;                                           \
		req_begin(req);                                             \
		sbx_call_begin();                                           \
		caller_of(req);                                             \
		fs = serve(req, ino);                                       \
		if (!fs)                                                    \
			top;                                                \
		else if (mount_tree_of(fuse_req_userdata(req), ino2) != fs) \
			reply_err(req, -EXDEV);                             \
		else                                                        \
			op_##op args;                                       \
		mount_serve(NULL);                                          \
		sbx_caller_clear();                                         \
		sbx_call_end();                                             \
		req_end(req);                                               \
	}
#define ONE_REPLY(op, params, args, ino, top) ONE_REPLY2(op, params, args, ino, ino, top)

ONE_REPLY(lookup, (fuse_req_t req, fuse_ino_t parent, const char *name),
	  (req, parent, name), parent, top_lookup(req, parent, name))
ONE_REPLY(forget, (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup), (req, ino, nlookup),
	  ino, reply_none(req))
ONE_REPLY(getattr, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	  (req, ino, fi), ino, top_getattr(req, ino))
ONE_REPLY(setattr,
	  (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	   struct fuse_file_info *fi),
	  (req, ino, attr, to_set, fi), ino, top_refuse(req, ino, -EPERM))
ONE_REPLY(readlink, (fuse_req_t req, fuse_ino_t ino), (req, ino), ino,
	  top_refuse(req, ino, -EINVAL))
ONE_REPLY(mkdir, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
	  (req, parent, name, mode), parent, top_refuse(req, parent, -EACCES))
ONE_REPLY(mknod,
	  (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev),
	  (req, parent, name, mode, rdev), parent, top_refuse(req, parent, -EACCES))
ONE_REPLY(unlink, (fuse_req_t req, fuse_ino_t parent, const char *name),
	  (req, parent, name), parent, top_refuse(req, parent, -EACCES))
ONE_REPLY(rmdir, (fuse_req_t req, fuse_ino_t parent, const char *name),
	  (req, parent, name), parent, top_refuse(req, parent, -EACCES))
ONE_REPLY(symlink,
	  (fuse_req_t req, const char *target, fuse_ino_t parent, const char *name),
	  (req, target, parent, name), parent, top_refuse(req, parent, -EACCES))
ONE_REPLY2(rename,
	   (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	    const char *newname, unsigned int flags),
	   (req, parent, name, newparent, newname, flags), parent, newparent,
	   top_refuse(req, parent, -EACCES))
ONE_REPLY2(link,
	   (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname),
	   (req, ino, newparent, newname), ino, newparent, top_refuse(req, ino, -EPERM))
ONE_REPLY(open, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	  (req, ino, fi), ino, top_refuse(req, ino, -EISDIR))
ONE_REPLY(create,
	  (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	   struct fuse_file_info *fi),
	  (req, parent, name, mode, fi), parent, top_refuse(req, parent, -EACCES))
ONE_REPLY(read,
	  (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	   struct fuse_file_info *fi),
	  (req, ino, size, off, fi), ino, top_refuse(req, ino, -EISDIR))
ONE_REPLY(write,
	  (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	   struct fuse_file_info *fi),
	  (req, ino, buf, size, off, fi), ino, top_refuse(req, ino, -EISDIR))
ONE_REPLY(flush, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	  (req, ino, fi), ino, top_refuse(req, ino, 0))
ONE_REPLY(release, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	  (req, ino, fi), ino, top_refuse(req, ino, 0))
ONE_REPLY(fsync,
	  (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
	  (req, ino, datasync, fi), ino, top_refuse(req, ino, 0))
ONE_REPLY(opendir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	  (req, ino, fi), ino, top_opendir(req, ino, fi))
ONE_REPLY(readdir,
	  (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	   struct fuse_file_info *fi),
	  (req, ino, size, off, fi), ino, top_readdir(req, ino, size, off, 0))
ONE_REPLY(readdirplus,
	  (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	   struct fuse_file_info *fi),
	  (req, ino, size, off, fi), ino, top_readdir(req, ino, size, off, 1))
ONE_REPLY(releasedir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	  (req, ino, fi), ino, top_refuse(req, ino, 0))
ONE_REPLY(statfs, (fuse_req_t req, fuse_ino_t ino), (req, ino), ino, top_statfs(req, ino))

/* Forgets name numbers of any tree, each to its own. */
static void one_forget_multi(fuse_req_t req, size_t count,
			     struct fuse_forget_data *forgets)
{
	struct sbxfs_mount *m = fuse_req_userdata(req);

	req_begin(req);
	for (size_t i = 0; i < count; i++) {
		struct sbxfs *fs = mount_tree_of(m, forgets[i].ino);

		if (fs)
			node_forget(fs->nodes, forgets[i].ino, forgets[i].nlookup);
	}
	reply_none(req);
	req_end(req);
}

const struct fuse_lowlevel_ops sbxfs_ops = {
	.init = op_init,
	.lookup = one_lookup,
	.forget = one_forget,
	.forget_multi = one_forget_multi,
	.getattr = one_getattr,
	.setattr = one_setattr,
	.readlink = one_readlink,
	.mkdir = one_mkdir,
	.unlink = one_unlink,
	.rmdir = one_rmdir,
	.symlink = one_symlink,
	.mknod = one_mknod,
	.rename = one_rename,
	.link = one_link,
	.open = one_open,
	.create = one_create,
	.read = one_read,
	.write = one_write,
	.flush = one_flush,
	.release = one_release,
	.fsync = one_fsync,
	.opendir = one_opendir,
	.readdir = one_readdir,
	.readdirplus = one_readdirplus,
	.releasedir = one_releasedir,
	.statfs = one_statfs,
};

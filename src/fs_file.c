/* SPDX-License-Identifier: MIT */
/* The FUSE operations on files: open, create, read, write, flush, release
 * and fsync, for root/ (through the provider) and the synthetic files. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "sbxfs/attr.h"
#include "sbxfs/box.h"
#include "sbxfs/cache.h"
#include "sbxfs/node.h"
#include "sbxfs/req.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/synth.h"
#include "fs_int.h"

/*
 * An open that truncated a file (O_TRUNC, which the kernel hands us whole)
 * for a user who is not root: clear set-user-ID, and set-group-ID of a
 * group-executable file, as the kernel does for a truncate and leaves to
 * us here.  `st` is the file's after the open.  A chmod that fails is
 * logged; the open stands.
 */
static void trunc_kills_suid(fuse_req_t req, struct sbxfs *fs, struct node *n,
			     const char *path, const struct stat *st)
{
	mode_t m = st->st_mode & 07777;
	int rc;

	if (fuse_req_ctx(req)->uid == 0 || !S_ISREG(st->st_mode) ||
	    !fs->provider->ops.chmod)
		return;
	m &= ~(mode_t)S_ISUID;
	if (m & S_IXGRP)
		m &= ~(mode_t)S_ISGID;
	if (m == (st->st_mode & 07777))
		return;
	rc = fs->provider->ops.chmod(fs->provider, n->box->name, path, m);
	if (rc)
		attr_report(n->box, rc, "chmod", path);
	cache_note(fs->cache, n->box->name, path, CACHE_CHANGED, S_IFREG);
}

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
		   !attr_several_names(&known)) {
		/* Fresh attributes spare a remote provider asking again. */
		have_known = 1;
	}
	sbx_fail_clear();
	req_intr_begin(req, &intr);
	if (have_known && (flags & O_ACCMODE) == O_RDONLY && S_ISREG(known.st_mode))
		attr_read_ahead(fs, n->box, path, &known);
	rc = fs->provider->ops.open(fs->provider, &fh, &st, n->box->name, path, flags,
				    mode, have_known ? &known : NULL);
	req_intr_end(req);
	if (rc && (flags & (O_CREAT | O_TRUNC | O_WRONLY | O_RDWR)))
		cache_forget(fs->cache, n->box->name, path, 0);
	else if (flags & (O_CREAT | O_TRUNC | O_WRONLY | O_RDWR))
		cache_note(fs->cache, n->box->name, path,
			   parent ? CACHE_ADDED : CACHE_CHANGED, S_IFREG);
	if (rc) {
		attr_report(n->box, rc, "open", path);
		reply_err(req, rc);
		return;
	}
	fi->fh = fh;
	if (!parent && (flags & O_TRUNC))
		trunc_kills_suid(req, fs, n, path, &st);
	if (!parent) {
		__atomic_store_n(&n->open_fh, fh, __ATOMIC_RELEASE);
		__atomic_add_fetch(&n->opens, 1, __ATOMIC_ACQ_REL);
	}
	/* Nothing to flush for a reader, or ever for some providers: spare
	 * close(2) a round trip.  A file created read-only is still made on
	 * the server at close, not at the release the kernel does not wait
	 * for (a command run next must find it). */
	fi->noflush = ((flags & O_ACCMODE) == O_RDONLY && !parent) ||
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
			reply_err(req, -ENOMEM);
			return;
		}
		__atomic_store_n(&child->open_fh, fh, __ATOMIC_RELEASE);
		__atomic_add_fetch(&child->opens, 1, __ATOMIC_ACQ_REL);
		fs_fill_entry(fs, &e, child, &st);
		if (reply_create(req, &e, fi)) {
			__atomic_sub_fetch(&child->opens, 1, __ATOMIC_ACQ_REL);
			node_forget(fs->nodes, child->ino, 1);
			fs->provider->ops.release(fs->provider, fh);
		}
	} else if (reply_open(req, fi)) {
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
		reply_err(req, -ENOMEM);
		return;
	}
	__atomic_store_n(&n->open_fh, fi->fh, __ATOMIC_RELEASE);
	sbx_fail_clear();
	req_intr_begin(req, &intr);
	got = fs->provider->ops.read(fs->provider, fi->fh, buf, size, off);
	req_intr_end(req);
	if (got < 0) {
		fs_node_error(fs, n, (int)got, "read");
		reply_err(req, (int)got);
	} else {
		reply_buf(req, buf, (size_t)got);
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
		cache_note(fs->cache, n->box->name, path, CACHE_CHANGED, S_IFREG);
	if (done < 0) {
		fs_node_error(fs, n, (int)done, "write");
		reply_err(req, (int)done);
	} else {
		reply_write(req, (size_t)done);
	}
}

/* ---- open, read, write, release: dispatch ---- */

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_find(FS(req)->nodes, ino);

	if (!n)
		reply_err(req, -ESTALE);
	else if (is_fs(n))
		fs_open(req, ino, fi, NULL, NULL, 0);
	else if (n->kind == NODE_ROOT || n->kind == NODE_BOX || n->kind == NODE_CMDS ||
		 n->kind == NODE_CMD)
		reply_err(req, -EISDIR);
	else
		synth_open(req, n, fi);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct node *p = node_find(FS(req)->nodes, parent);

	if (!p)
		reply_err(req, -ESTALE);
	else if (!is_fs(p))
		reply_err(req, p->kind == NODE_ROOT ? -EINVAL : -EPERM);
	else
		fs_open(req, 0, fi, p, name, mode);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct node *n = node_find(FS(req)->nodes, ino);

	if (!n)
		reply_err(req, -ESTALE);
	else if (is_fs(n))
		fs_read(req, n, size, off, fi);
	else
		synth_read(req, fi, size, off);
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct node *n = node_find(FS(req)->nodes, ino);

	if (!n)
		reply_err(req, -ESTALE);
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
		cache_note(fs->cache, n->box->name, path, CACHE_CHANGED, S_IFREG);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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
	reply_err(req, rc);
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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
	reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
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
	reply_err(req, rc);
}

/* SPDX-License-Identifier: MIT */
/* The FUSE operations on directories: opendir, readdir, readdirplus and
 * releasedir, for root/ (one provider listing through the cache) and the
 * synthetic directories. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sbxfs/attr.h"
#include "sbxfs/box.h"
#include "sbxfs/cache.h"
#include "sbxfs/node.h"
#include "sbxfs/req.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/synth.h"
#include "fs_int.h"

/* readdir (not plus) answers carry no inode: the kernel looks up. */
#define UNKNOWN_INO 0xffffffffu

struct dirhandle {
	struct node *node;
	struct cache_dir *list; /* entries with attributes */
};

/* The listing of a root/ directory. */
static int fs_list(struct sbxfs *fs, struct node *n, struct cache_dir **out)
{
	char path[PATH_MAX_SBX];
	int rc = node_path(fs->nodes, n, path, sizeof(path));

	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	rc = attr_list(fs, n->box, path, 1, out);
	if (rc)
		attr_report(n->box, rc, "readdir", path);
	return rc;
}

/*
 * A listing of the top that starts from its beginning asks the provider
 * afresh: sandboxes made or deleted elsewhere show at once (lookups keep
 * the list for the entry timeout).  The kernel may read the top without
 * opening it, one readdir at a time: only the first asks.
 */
static void fresh_top(struct sbxfs *fs, struct node *n, off_t off)
{
	if (n->kind == NODE_ROOT && off == 0)
		box_list_expire(fs);
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	struct node *n = node_find(fs->nodes, ino);
	struct dirhandle *dh;
	int rc;

	if (!n) {
		reply_err(req, -ESTALE);
		return;
	}
	if (fs->no_opendir) {
		/* Tells the kernel to open directories by itself from now on;
		 * readdir then comes with no handle. */
		reply_err(req, -ENOSYS);
		return;
	}
	dh = calloc(1, sizeof(*dh));
	if (!dh) {
		reply_err(req, -ENOMEM);
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
		fresh_top(fs, n, 0);
		rc = synth_list(fs, n, &dh->list);
		if (rc) {
			free(dh);
			reply_err(req, rc);
			return;
		}
	}
	fi->fh = (uint64_t)(uintptr_t)dh;
	if (reply_open(req, fi)) {
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
		reply_err(req, -ENOMEM);
		return;
	}
	if (!dh) {
		/* Opened by the kernel alone: list for this request. */
		dh = &own;
		dh->node = node_find(fs->nodes, ino);
		if (!dh->node) {
			free(buf);
			reply_err(req, -ESTALE);
			return;
		}
	}
	if (!dh->list) {
		volatile int intr;
		int rc;

		req_intr_begin(req, &intr);
		fresh_top(fs, dh->node, off);
		rc = is_fs(dh->node) ? fs_list(fs, dh->node, &dh->list)
				     : synth_list(fs, dh->node, &dh->list);
		req_intr_end(req);

		if (rc) {
			free(buf);
			reply_err(req, rc);
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
				if (opens || de->stale ||
				    (is_fs(dh->node) && attr_several_names(&st))) {
					/* A listing cached under one of its names may be
					 * stale if it was written through another; an
					 * open file may have changes the server lacks;
					 * an entry changed here is asked for again. */
					char cpath[PATH_MAX_SBX];

					if (node_child_path(fs->nodes, dh->node, name,
							    cpath, sizeof(cpath)) ||
					    attr_get(fs, dh->node->box, cpath, opens,
						     &st))
						continue;
				}
				if (is_fs(dh->node)) {
					n = node_lookup(fs->nodes, dh->node, name,
							NODE_FS, dh->node->box, 0, 0,
							&st);
				} else if (fs_lookup_child(fs, dh->node, name, &n, &st)) {
					continue; /* gone meanwhile */
				}
				if (!n)
					break;
				fs_fill_entry(fs, &e, n, &st);
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
	reply_buf(req, buf, size - left);
	free(buf);
	if (dh == &own)
		cache_dir_put(own.list);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirhandle *dh = (struct dirhandle *)(uintptr_t)fi->fh;

	if (dh) {
		cache_dir_put(dh->list);
		free(dh);
	}
	reply_err(req, 0);
}

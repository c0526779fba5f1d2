/* SPDX-License-Identifier: MIT */
/*
 * The directory of providers, ino 1 of a mount of several (mount.h): the
 * ops table's `top` for a number that is no tree's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs_int.h"
#include "sbxfs/mount.h"
#include "sbxfs/node.h"
#include "sbxfs/req.h"
#include "sbxfs/synth.h"

static struct sbxfs_mount *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void top_attr(const struct sbxfs_mount *m, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2 + m->n;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_blksize = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = m->started;
}

/* Tree i's root as a directory entry: its number and attributes. */
static int tree_entry(struct sbxfs *fs, struct fuse_entry_param *e)
{
	struct node *root = node_find(fs->nodes, fs->root_ino);
	struct stat st;

	if (!root)
		return -ESTALE;
	synth_attr(fs, root, &st);
	fs_fill_entry(fs, e, root, &st);
	return 0;
}

void top_refuse(fuse_req_t req, fuse_ino_t ino, int rc)
{
	reply_err(req, ino == FUSE_ROOT_ID ? rc : -ESTALE);
}

void top_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };

	if (ino != FUSE_ROOT_ID)
		reply_err(req, -ESTALE);
	else
		reply_statfs(req, &sv);
}

void top_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sbxfs_mount *m = M(req);
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID) {
		reply_err(req, -ESTALE);
		return;
	}
	for (size_t i = 0; i < m->n; i++) {
		struct sbxfs *fs = m->trees[i];
		int rc;

		if (strcmp(fs->provider->desc->name, name))
			continue;
		rc = tree_entry(fs, &e);
		if (rc)
			reply_err(req, rc);
		else
			reply_entry(req, &e); /* a root is never forgotten */
		return;
	}
	reply_err(req, -ENOENT);
}

void top_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;

	if (ino != FUSE_ROOT_ID) {
		reply_err(req, -ESTALE);
		return;
	}
	top_attr(M(req), &st);
	reply_attr(req, &st, SYNTH_TIMEOUT);
}

void top_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FUSE_ROOT_ID) {
		reply_err(req, -ESTALE);
		return;
	}
	fi->fh = 0; /* the listing is the mount's: nothing to keep */
	reply_open(req, fi);
}

/* Offsets: 1 and 2 for "." and "..", then 3 + the tree's index. */
void top_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct sbxfs_mount *m = M(req);
	char *buf, *p;
	size_t left = size;

	if (ino != FUSE_ROOT_ID) {
		reply_err(req, -ESTALE);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	p = buf;
	for (off_t i = off; i >= 0 && (size_t)i < 2 + m->n; i++) {
		struct fuse_entry_param e;
		const char *name;
		size_t need;

		memset(&e, 0, sizeof(e));
		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.attr.st_ino = FUSE_ROOT_ID;
			e.attr.st_mode = S_IFDIR;
		} else {
			struct sbxfs *fs = m->trees[i - 2];

			name = fs->provider->desc->name;
			if (tree_entry(fs, &e))
				continue;
		}
		need = plus ? fuse_add_direntry_plus(req, p, left, name, &e, i + 1)
			    : fuse_add_direntry(req, p, left, name, &e.attr, i + 1);
		if (need > left)
			break;
		p += need;
		left -= need;
	}
	reply_buf(req, buf, size - left);
	free(buf);
}

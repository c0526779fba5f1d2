/* SPDX-License-Identifier: MIT */
/*
 * The parts of the FUSE operations shared by fs.c (lookups, attributes,
 * names, the ops table), fs_file.c (files below root/: open, read, write,
 * close) and fs_dir.c (listings).  Not an interface: that is fs.h.
 */
#ifndef SBXFS_FS_INT_H
#define SBXFS_FS_INT_H

#include <fuse_lowlevel.h>

#include "sbxfs/mount.h"
#include "sbxfs/node.h"
#include "sbxfs/sbxfs.h"

/* The tree the request is on (mount.h). */
static inline struct sbxfs *FS(fuse_req_t req)
{
	(void)req;
	return mount_serving();
}

static inline int is_fs(const struct node *n)
{
	return n->kind == NODE_FS || n->kind == NODE_FSROOT;
}

static inline int has_cap(struct sbxfs *fs, unsigned cap)
{
	return (fs->provider->desc->caps & cap) != 0;
}

/* fs.c */
void fs_node_error(struct sbxfs *fs, struct node *n, int rc, const char *op);
double fs_attr_timeout(struct sbxfs *fs, const struct node *n, const struct stat *st);
int fs_node_attr(struct sbxfs *fs, struct node *n, struct stat *st);
void fs_fill_entry(struct sbxfs *fs, struct fuse_entry_param *e, struct node *n,
		   const struct stat *st);
int fs_lookup_child(struct sbxfs *fs, struct node *parent, const char *name,
		    struct node **out, struct stat *st);
/* The node of `ino` below root/ and its path, or of the child `name` of
 * `parent`; on failure they reply to req and return NULL. */
struct node *fs_node(fuse_req_t req, fuse_ino_t ino, char *path, size_t size);
struct node *fs_parent(fuse_req_t req, fuse_ino_t parent, const char *name, char *path,
		       size_t size);

/* fs_file.c */
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* fs_dir.c */
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/*
 * fs_top.c: the directory of providers, ino 1 of a mount of several
 * (mount.h): lookups of
 * the providers' names, its attributes, its listing.  Every other
 * operation on it is refused with top_refuse(): `rc` for ino 1, ESTALE
 * for a number no tree gave.  Each replies once.
 */
void top_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void top_getattr(fuse_req_t req, fuse_ino_t ino);
void top_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void top_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus);
void top_statfs(fuse_req_t req, fuse_ino_t ino);
void top_refuse(fuse_req_t req, fuse_ino_t ino, int rc);

#endif

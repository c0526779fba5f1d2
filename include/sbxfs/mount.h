/* SPDX-License-Identifier: MIT */
/*
 * A mount: the trees of one or several providers.
 *
 * With one provider (-o provider=NAME) its tree is the mount's root.  With
 * several (-o providers=local,daytona) the root is a directory of one
 * directory per provider, each the root of that provider's tree, as a
 * mount of that provider alone would show it, plus its own status and
 * err.  A provider that does not start leaves its tree empty and says why;
 * the others work.
 *
 * Inode numbers tell the trees apart: tree i (counting from 1) numbers its
 * nodes from (i << MOUNT_TREE_SHIFT) + 1 up, and 1 is the directory of
 * providers.  A mount of one provider numbers its tree from 1, as before.
 * So each request finds its tree from the number it names, without a
 * table, and every number stays the same for the mount's life.
 */
#ifndef SBXFS_MOUNT_H
#define SBXFS_MOUNT_H

#include <fuse_lowlevel.h>
#include <sys/types.h>
#include <time.h>

#include "sbxfs/sbxfs.h"

#define MOUNT_TREE_SHIFT 48
#define MOUNT_TREES_MAX 16

struct sbxfs_mount {
	struct sbxfs *trees[MOUNT_TREES_MAX];
	size_t n;
	int multi; /* several providers: the root is the directory of them */
	uid_t uid;
	gid_t gid;
	time_t started;
};

/* The root number of tree i (from 0) of a mount of n trees. */
fuse_ino_t mount_tree_root(const struct sbxfs_mount *m, size_t i);

/*
 * The tree `ino` belongs to, or NULL: the directory of providers (ino 1
 * of a mount of several), or a number no tree gave.
 */
struct sbxfs *mount_tree_of(const struct sbxfs_mount *m, fuse_ino_t ino);

/*
 * The tree the request this thread serves belongs to: set by the ops
 * table (fs.c) around each operation on a tree, NULL otherwise.
 */
struct sbxfs *mount_serving(void);
void mount_serve(struct sbxfs *fs);

#endif

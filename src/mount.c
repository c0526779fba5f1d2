/* SPDX-License-Identifier: MIT */
/* A mount of one or several providers' trees: see mount.h. */
#include "sbxfs/mount.h"

static __thread struct sbxfs *serving;

struct sbxfs *mount_serving(void)
{
	return serving;
}

void mount_serve(struct sbxfs *fs)
{
	serving = fs;
}

fuse_ino_t mount_tree_root(const struct sbxfs_mount *m, size_t i)
{
	return m->multi ? ((fuse_ino_t)(i + 1) << MOUNT_TREE_SHIFT) + 1 : FUSE_ROOT_ID;
}

struct sbxfs *mount_tree_of(const struct sbxfs_mount *m, fuse_ino_t ino)
{
	fuse_ino_t i = ino >> MOUNT_TREE_SHIFT;

	if (!m->multi)
		return m->trees[0];
	return i >= 1 && i <= m->n ? m->trees[i - 1] : NULL;
}

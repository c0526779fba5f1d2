/* SPDX-License-Identifier: MIT */
/*
 * The cache-through rules for root/: attributes and listings of paths in
 * a sandbox, from the cache while it is fresh, else from the provider
 * (whose answer is stored only if nothing was invalidated meanwhile).
 * Below the FUSE operations, above the sandbox records and the cache.
 */
#ifndef SBXFS_ATTR_H
#define SBXFS_ATTR_H

#include <sys/stat.h>

#include "sbxfs/cache.h"
#include "sbxfs/provider.h"

/* The longest path below root/ we handle, with its NUL. */
#define PATH_MAX_SBX SBX_PATH_MAX

struct box;
struct sbxfs;

/* Record in the sandbox's err what is worth telling of a failed `op` on
 * `path`: the provider's text, or a failure that is not an ordinary answer
 * of a filesystem (EIO, ETIMEDOUT ...).  EINTR is never recorded. */
void attr_report(struct box *b, int rc, const char *op, const char *path);

/* lstat() of box:path.  `opens`: handles open on it, whose unsaved changes
 * only the provider knows: it is asked first.  0 or -errno (-ENOENT is
 * cached as a negative entry; other failures are reported). */
int attr_get(struct sbxfs *fs, struct box *b, const char *path, unsigned opens,
	     struct stat *st);

/* A non-directory with several names: its cached attributes are not
 * trusted (it changes under all its names). */
int attr_several_names(const struct stat *st);

/* The listing of box:path with attributes: a reference from the cache, or
 * one provider call that fills it.  With `subtree`, that call is the
 * provider's readtree where it has one: the listings of the directories
 * below come with it (bounded by -o subtree_entries and subtree_mib).
 * Errors are the caller's to report. */
int attr_list(struct sbxfs *fs, struct box *b, const char *path, int subtree,
	      struct cache_dir **out);

/*
 * Reading ahead (attr_ahead.c).  attr_walked: box:path was just listed
 * whole with the subtree below it.  attr_read_ahead: the regular file
 * box:path, with the cached attributes st, is about to be opened for
 * reading (before the provider's open): past the first such file below
 * the last subtree walked, a round brings the subtree's next small files
 * in one provider call (-o prefetch_mib, prefetch_file_kib).
 */
void attr_walked(struct sbxfs *fs, struct box *b, const char *path);
void attr_read_ahead(struct sbxfs *fs, struct box *b, const char *path,
		     const struct stat *st);

#endif

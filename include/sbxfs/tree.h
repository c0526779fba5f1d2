/* SPDX-License-Identifier: MIT */
/*
 * Making and unmaking one provider's tree (struct sbxfs): its provider
 * started with its options, its caches, its node table and notifier.
 */
#ifndef SBXFS_TREE_H
#define SBXFS_TREE_H

#include "sbxfs/kv.h"
#include "sbxfs/sbxfs.h"

struct tree_opts {
	const char *state_dir;	  /* the mount's state directory */
	double attr_timeout;	  /* -1: the provider's */
	size_t subtree_entries;	  /* see struct sbxfs */
	size_t subtree_mib;	  /* 0: one directory at a time */
	size_t prefetch_mib;	  /* 0: one file at a time */
	size_t prefetch_file_kib; /* the largest file read ahead */
};

/*
 * Make fs the tree of provider `name`, its init given `popts`, its root
 * numbered root_ino.  0; or -errno with sbx_fail_text() when the provider
 * is unknown or could not start.  A tree whose provider could not start
 * is still whole when `keep_failed` is set (its provider disabled, see
 * sbx_provider_disable(), and fs->failed saying why): a mount of several
 * providers shows it.  Otherwise, and on any other failure, fs holds
 * nothing that tree_close() would not free.
 */
int tree_open(struct sbxfs *fs, const char *name, const struct sbx_kvlist *popts,
	      const struct tree_opts *o, fuse_ino_t root_ino, int keep_failed);

/* Start the notifier, once fs->se is set.  0 or -errno. */
int tree_serve(struct sbxfs *fs);

/* Stop what tree_serve() started: before the session ends. */
void tree_stop(struct sbxfs *fs);

/* Free the tree: its provider destroyed, its sandboxes' records. */
void tree_close(struct sbxfs *fs);

#endif

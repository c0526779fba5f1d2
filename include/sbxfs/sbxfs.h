/* SPDX-License-Identifier: MIT */
/* The daemon's context: one per provider's tree, reached from every FUSE
 * request on the tree. */
#ifndef SBXFS_SBXFS_H
#define SBXFS_SBXFS_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <time.h>

#include "sbxfs/cache.h"
#include "sbxfs/provider.h"

struct box;
struct node_table;

/*
 * One provider's tree: its sandboxes, their files and commands.  A mount
 * shows one tree at its root, or several side by side (mount.h).
 */
struct sbxfs {
	struct sbx_provider *provider;
	/* The tree's root directory: FUSE_ROOT_ID, or in a mount of several
	 * providers the directory named after its provider (mount.h). */
	fuse_ino_t root_ino;
	int multi; /* one of several: its root also has status and err */
	/* Why the provider did not start ("" if it did).  Set once, before
	 * the mount serves: a tree whose provider failed lists nothing and
	 * says this in its err and status; the other trees go on. */
	char failed[512];
	struct cache *cache;
	struct node_table *nodes;
	struct fuse_session *se;
	char *state_dir;
	char *cmd_dir; /* STATE/cmds/PROVIDER */
	uid_t uid;
	gid_t gid;
	time_t started;

	/* How long the kernel and the cache trust attributes and names below
	 * root/: the provider's timeouts, or -o attr_timeout. */
	double attr_timeout;
	double entry_timeout;

	/* The bounds of a subtree listed in one provider call (readtree):
	 * entries and bytes of records; 0 entries lists one directory at a
	 * time.  -o subtree_entries, -o subtree_mib. */
	size_t subtree_entries;
	size_t subtree_bytes;
	/* Reading a subtree's small files ahead (attr_ahead.c): the most in
	 * all (0: never) and per file.  -o prefetch_mib, prefetch_file_kib. */
	uint64_t prefetch_bytes;
	uint64_t prefetch_file_max;

	pthread_mutex_t boxes_lock; /* guards boxes */
	struct box *boxes;

	pthread_mutex_t ctl_lock; /* guards ctl_err, ctl_err_time */
	char ctl_err[1024];	  /* the root ctl's last error */
	time_t ctl_err_time;

	/* Sandbox names, as last listed by the provider. */
	pthread_mutex_t list_lock; /* guards list, list_n, list_expires, list_mtime */
	char (*list)[SBX_NAME_MAX + 1];
	size_t list_n;
	double list_expires;
	struct timespec list_mtime; /* MOUNT's mtime: when the list last changed */

	/* The kernel opens directories without asking us, and keeps their
	 * listings (FUSE_CAP_NO_OPENDIR_SUPPORT). */
	int no_opendir;

	/* Tell the kernel to drop what it holds of a sandbox's files, and the
	 * cache what it holds, at once: set by main to the notifier's, and
	 * called by the sandbox records when a command ends (from a thread
	 * that serves no request).  NULL: nothing to tell. */
	void (*inval_box_now)(struct sbxfs *fs, struct box *b);

	/* Sandboxes whose files a command may have changed: the notifier
	 * thread tells the kernel to drop what it cached of them. */
	pthread_mutex_t inval_lock; /* guards inval_* */
	pthread_cond_t inval_cond;
	char (*inval_boxes)[SBX_NAME_MAX + 1];
	size_t inval_n;
	int inval_stop;
	pthread_t inval_thread;
};

#endif

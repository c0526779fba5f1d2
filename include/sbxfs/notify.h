/* SPDX-License-Identifier: MIT */
/* Cache and kernel invalidation, and the thread that sends the latter. */
#ifndef SBXFS_NOTIFY_H
#define SBXFS_NOTIFY_H

#include "sbxfs/sbxfs.h"

struct box;
struct node;

/* Drop what the cache and the kernel hold of everything under box/root/:
 * queued to the notifier thread, or at once from a thread that is not
 * serving a FUSE request. */
void sbxfs_invalidate_box(struct sbxfs *fs, const char *box);
void sbxfs_invalidate_box_now(struct sbxfs *fs, struct box *b);

/* The sandbox `box` appeared or went away: drop MOUNT/box from the
 * kernel's cache now.  Only from a request that is not a lookup, mkdir,
 * rmdir ... in MOUNT (libfuse's deadlock rule): a write to a ctl file. */
void sbxfs_invalidate_name_now(struct sbxfs *fs, const char *box);

/* Drop the kernel's attributes and cached pages (a directory's listing)
 * of an inode, or of the child `name` of `parent` if the kernel knows it.
 * Only from a request that is not a read, write or setattr of that inode. */
void sbxfs_invalidate_inode_now(struct sbxfs *fs, fuse_ino_t ino);
/* Drop the kernel's attributes of an inode, nothing else: safe from any
 * request (no page is touched). */
void sbxfs_invalidate_attr_now(struct sbxfs *fs, fuse_ino_t ino);
void sbxfs_invalidate_child_now(struct sbxfs *fs, struct node *parent, const char *name);

/* Start and stop the notifier; start once the session exists, stop after
 * the session loop, before the session is destroyed. */
int notifier_start(struct sbxfs *fs);
void notifier_stop(struct sbxfs *fs);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Telling the kernel what to forget.  A request handler must not send a
 * notification that a related operation could be waiting on (libfuse's
 * deadlock rule): most work is queued for the notifier thread; the few
 * notifications that are safe from a ctl or exec write go at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/box.h"
#include "sbxfs/node.h"
#include "sbxfs/notify.h"
#include "sbxfs/sbxfs.h"

/* Once the session loop has ended, the kernel is gone: nothing to tell. */
static int session_live(struct sbxfs *fs)
{
	return fs->se && !fuse_session_exited(fs->se);
}

static void inval_one(void *ctx, fuse_ino_t parent, fuse_ino_t ino, const char *name)
{
	struct sbxfs *fs = ctx;

	if (!session_live(fs))
		return;
	fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
}

static void *inval_thread(void *arg)
{
	struct sbxfs *fs = arg;

	pthread_mutex_lock(&fs->inval_lock);
	while (!fs->inval_stop) {
		char name[SBX_NAME_MAX + 1];
		struct box *b;

		if (!fs->inval_n) {
			pthread_cond_wait(&fs->inval_cond, &fs->inval_lock);
			continue;
		}
		snprintf(name, sizeof(name), "%s", fs->inval_boxes[--fs->inval_n]);
		pthread_mutex_unlock(&fs->inval_lock);
		if ((b = box_find(fs, name))) {
			node_visit_box(fs->nodes, b, inval_one, fs);
			box_put(b);
		}
		pthread_mutex_lock(&fs->inval_lock);
	}
	pthread_mutex_unlock(&fs->inval_lock);
	return NULL;
}

static void inval_queue(struct sbxfs *fs, const char *item)
{
	pthread_mutex_lock(&fs->inval_lock);
	for (size_t i = 0; i < fs->inval_n; i++) {
		if (!strcmp(fs->inval_boxes[i], item)) {
			pthread_mutex_unlock(&fs->inval_lock);
			return;
		}
	}
	if (fs->inval_n < 1024) {
		snprintf(fs->inval_boxes[fs->inval_n++], SBX_NAME_MAX + 1, "%s", item);
		pthread_cond_signal(&fs->inval_cond);
	}
	pthread_mutex_unlock(&fs->inval_lock);
}

void sbxfs_invalidate_box(struct sbxfs *fs, const char *box)
{
	cache_forget_box(fs->cache, box);
	inval_queue(fs, box);
}

void sbxfs_invalidate_box_now(struct sbxfs *fs, struct box *b)
{
	cache_forget_box(fs->cache, b->name);
	node_visit_box(fs->nodes, b, inval_one, fs);
}

void sbxfs_invalidate_name_now(struct sbxfs *fs, const char *box)
{
	if (session_live(fs))
		fuse_lowlevel_notify_inval_entry(fs->se, fs->root_ino, box, strlen(box));
}

int notifier_start(struct sbxfs *fs)
{
	fs->inval_boxes = calloc(1024, sizeof(*fs->inval_boxes));
	if (!fs->inval_boxes)
		return -ENOMEM;
	pthread_mutex_init(&fs->inval_lock, NULL);
	pthread_cond_init(&fs->inval_cond, NULL);
	return -pthread_create(&fs->inval_thread, NULL, inval_thread, fs);
}

void notifier_stop(struct sbxfs *fs)
{
	pthread_mutex_lock(&fs->inval_lock);
	fs->inval_stop = 1;
	pthread_cond_signal(&fs->inval_cond);
	pthread_mutex_unlock(&fs->inval_lock);
	pthread_join(fs->inval_thread, NULL);
	free(fs->inval_boxes);
}

void sbxfs_invalidate_inode_now(struct sbxfs *fs, fuse_ino_t ino)
{
	if (session_live(fs))
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
}

void sbxfs_invalidate_attr_now(struct sbxfs *fs, fuse_ino_t ino)
{
	if (session_live(fs))
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

void sbxfs_invalidate_child_now(struct sbxfs *fs, struct node *parent, const char *name)
{
	fuse_ino_t ino = node_child_ino(fs->nodes, parent, name);

	if (ino && session_live(fs))
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
}

/* SPDX-License-Identifier: MIT */
/*
 * What the FUSE layer keeps per sandbox, whatever the provider: the last
 * error (the `err` file) and the commands run through `exec` (cmd/).
 * Records are reference counted and looked up by name.  A record owns its
 * command list; each command sees the record as its cmd_host.
 */
#ifndef SBXFS_BOX_H
#define SBXFS_BOX_H

#include <pthread.h>
#include <sys/statvfs.h>
#include <time.h>

#include "sbxfs/cmd.h"
#include "sbxfs/provider.h"

struct sbxfs;

struct box {
	char name[SBX_NAME_MAX + 1];
	struct sbxfs *fs;
	struct cmd_host host; /* what its commands see of it */
	int refs;	      /* atomic */
	pthread_mutex_t lock; /* guards everything below */
	char err[1024];	      /* last error, "" when none */
	time_t err_time;
	struct cmd **cmds; /* cmds[i] is command i + 1 */
	unsigned ncmds, capcmds;
	int cmds_loaded;	    /* cmd/ read back from disk */
	struct timespec cmds_mtime; /* cmd/'s mtime: the newest command's start */
	/* The last statfs below root/ and until when it is trusted (the
	 * cache's clock): find, du and ls ask once per walk. */
	char *statfs_path;
	struct statvfs statfs;
	double statfs_until;
	/* Reading ahead (attr_ahead.c): the last subtree listed whole, until
	 * when its listing holds, the first file read below it, the files
	 * rounds brought (sorted, below the root), how many rounds, whether
	 * one runs, and whether the subtree has no more. */
	char *ahead_root;
	char *ahead_last;
	double ahead_until;
	char **ahead_picked;
	size_t ahead_n;
	unsigned ahead_rounds;
	int ahead_busy, ahead_done;
	/* The sizes of the status and ctl texts as last built (synth.c), if
	 * sizes_known: a stat shows them without asking the provider. */
	off_t status_size, ctl_size;
	int sizes_known;
	struct box *next; /* in the registry; guarded by its lock */
};

/* The record for `name`, made on first use.  Returns a new reference. */
struct box *box_get(struct sbxfs *fs, const char *name);
/* The record for `name` if there is one (a new reference), else NULL. */
struct box *box_find(struct sbxfs *fs, const char *name);
struct box *box_ref(struct box *b);
void box_put(struct box *b);

/* Record an error for the `err` file and log it.  With fmt NULL, the
 * text comes from sbx_fail_text(), or strerror(-rc) if there is none. */
void box_fail(struct box *b, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "TIME MESSAGE\n" or "" into out. */
void box_err_text(struct box *b, char *out, size_t size);

/* The command list, read back from the spools at first use.  count: how
 * many commands the box has run; get: command n (1-based) as a new
 * reference, or NULL; start: run `cmdline`, its stdin fed through
 * cmd/N/stdin if `stdin_open`, else at its end at once, and on success
 * *out is a new reference to the running command, now the box's newest
 * (-errno on failure, with the reason in the box's err). */
unsigned box_cmd_count(struct box *b);
struct cmd *box_cmd_get(struct box *b, unsigned n);
int box_cmd_start(struct cmd **out, struct box *b, const char *cmdline, int stdin_open);

/* Forget the read-ahead state (the ahead_* fields; b->lock held, or the
 * record being freed). */
void box_ahead_reset(struct box *b);

/* The sandbox was deleted: drop its record and its command history. */
void box_deleted(struct sbxfs *fs, const char *name);

/* The sandbox names, from the provider's list slot, kept for the entry
 * timeout.  refresh lists again if that has passed (0 or -errno); dirty
 * makes the next use list again; exists answers from the list: 1, 0, or
 * the -errno of a listing that failed. */
int box_list_refresh(struct sbxfs *fs);
void box_list_dirty(struct sbxfs *fs);
/* Take the next listing afresh, the list being no older than now. */
void box_list_expire(struct sbxfs *fs);
int box_exists(struct sbxfs *fs, const char *name);

/* Release every record (at unmount). */
void box_registry_free(struct sbxfs *fs);

/* Record `why` as the tree's last error: what MOUNT/ctl's `error` line
 * and, in a mount of several providers, the tree's err say (a failed
 * write to MOUNT/ctl, a failed listing of the sandboxes). */
void box_tree_fail(struct sbxfs *fs, const char *why);

#endif

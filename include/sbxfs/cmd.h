/* SPDX-License-Identifier: MIT */
/*
 * Commands run through `exec`: cmd/N in the tree.  Output is spooled to
 * files under the state directory as it arrives (bounded per stream), so
 * it can be read at any offset, by any number of readers, after the
 * command has ended and after a remount.  Readers of a running command
 * block until more output or the end, and wake on interrupt.
 */
#ifndef SBXFS_CMD_H
#define SBXFS_CMD_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <sys/types.h>

#include "sbxfs/provider.h"

enum cmd_stream {
	CMD_OUT = 0, /* stdout and stderr interleaved */
	CMD_STDOUT = 1,
	CMD_STDERR = 2,
	CMD_NSTREAMS
};

/* Most output kept per stream; past it output is dropped and noted. */
#define CMD_SPOOL_MAX (1ll << 30)

struct box;

struct cmd {
	unsigned n;
	struct box *box; /* reference */
	char *cmdline;
	int refs; /* atomic */
	struct sbx_cmd_sink sink;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* output arrived, or the command ended */
	int running;
	struct sbx_exit exit;
	off_t size[CMD_NSTREAMS];
	int fd[CMD_NSTREAMS]; /* spool files, -1 when closed */
	int dropped;	      /* output went past CMD_SPOOL_MAX */
	void *handle;	      /* the provider's, NULL once released */
	int handle_users;     /* stdin/signal calls using handle now */
	int handle_done;      /* sink->done came: release after last user */
};

/* Start `cmdline` in the box; on success *out is a new reference to a
 * running command that is also the box's newest.  -errno on failure, with
 * the reason in the box's err. */
int cmd_start(struct cmd **out, struct box *b, const char *cmdline);

/* Command n of the box (1-based), as a new reference, or NULL. */
struct cmd *cmd_get(struct box *b, unsigned n);
/* How many commands the box has run. */
unsigned cmd_count(struct box *b);
void cmd_put(struct cmd *c);

/*
 * Read up to `size` bytes of a stream at `off`.  Blocks while the command
 * runs and no byte past `off` is there; returns 0 at the end.  With a
 * FUSE request, returns -EINTR when it is interrupted.
 */
ssize_t cmd_read(struct cmd *c, enum cmd_stream s, char *buf, size_t size, off_t off,
		 fuse_req_t req);

/* stdin (len 0: close it) and signals, through the provider. */
ssize_t cmd_write_stdin(struct cmd *c, const char *data, size_t len, fuse_req_t req);
int cmd_signal(struct cmd *c, int sig);

/* "running", "exited 0", ... without newline. */
void cmd_status_word(struct cmd *c, char *out, size_t size);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Commands run through `exec`: cmd/N in the tree.  Output is spooled to
 * files under the state directory as it arrives (bounded per stream), so
 * it can be read at any offset, by any number of readers, after the
 * command has ended and after a remount.  Readers of a running command
 * block until more output or the end, and wake on interrupt.
 *
 * A command knows its sandbox only as a cmd_host: the sandbox record
 * (box.c) owns the command list and gives each command the host it runs
 * in, so this layer sits below the records and calls nothing above it.
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

struct cmd_host;

struct cmd_host_ops {
	/* A command holds its host from cmd_new() or cmd_load() to its last
	 * cmd_put(). */
	void (*get)(struct cmd_host *h);
	void (*put)(struct cmd_host *h);
	/* Record a failure for the sandbox's `err` and the log; with msg
	 * NULL, the text is this thread's sbx_fail_text() or strerror(-rc). */
	void (*fail)(struct cmd_host *h, int rc, const char *msg);
	/* A command ended: what is cached of the sandbox's files may be stale.
	 * Called before readers see the end, from a provider thread that
	 * serves no FUSE request. */
	void (*ended)(struct cmd_host *h);
	/* Nonzero once the daemon is stopping: blocked readers give up. */
	int (*stopping)(struct cmd_host *h);
};

/* The sandbox a command runs in, as the command sees it. */
struct cmd_host {
	const struct cmd_host_ops *ops;
	struct sbx_provider *provider;
	const char *box;       /* the sandbox's name */
	const char *spool_dir; /* spools are SPOOL_DIR/BOX/N/ */
};

struct cmd {
	unsigned n;
	struct cmd_host *host; /* held (ops->get) */
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
	int stdin_open;	      /* set before cmd_run: cmd/N/stdin feeds it */
};

/* The highest N spooled for the host's sandbox (by an earlier mount, or
 * this one), 0 if none. */
unsigned cmd_spooled(struct cmd_host *h);
/* Command n as its spool shows it (ended: a command still "running" there
 * was lost with the daemon that ran it); NULL on ENOMEM. */
struct cmd *cmd_load(struct cmd_host *h, unsigned n);

/* A command numbered n, about to run `cmdline`: running from now on, so
 * that a reader who finds it waits for its output.  NULL on ENOMEM. */
struct cmd *cmd_new(struct cmd_host *h, unsigned n, const char *cmdline);
/* Make its spool and start it through the provider.  -errno on failure,
 * with the reason given to the host's fail (the command then shows as
 * failed). */
int cmd_run(struct cmd *c);

struct cmd *cmd_ref(struct cmd *c);
void cmd_put(struct cmd *c);

/*
 * Read up to `size` bytes of a stream at `off`.  Blocks while the command
 * runs and no byte past `off` is there; returns 0 at the end, or -EIO
 * there for a command that failed (lost, or cut off by an unmount): its
 * output may be short, and a reader must not take it for all.
 * With a FUSE request, returns -EINTR when it is interrupted.
 */
ssize_t cmd_read(struct cmd *c, enum cmd_stream s, char *buf, size_t size, off_t off,
		 fuse_req_t req);

/* The bytes of a stream spooled so far. */
off_t cmd_size(struct cmd *c, enum cmd_stream s);

/* stdin (len 0: close it) and signals, through the provider. */
ssize_t cmd_write_stdin(struct cmd *c, const char *data, size_t len, fuse_req_t req);
int cmd_signal(struct cmd *c, int sig);

/* "running", "exited 0", ... without newline. */
void cmd_status_word(struct cmd *c, char *out, size_t size);

#endif

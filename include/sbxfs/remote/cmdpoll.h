/* SPDX-License-Identifier: MIT */
/*
 * The command poller of the remote providers: the threads that follow
 * running commands (one per command), how a command's end is told, when
 * it counts as lost, and how often it is asked about.
 *
 * A provider's pollers form one group.  A poller is a detached thread
 * started with cmdpoll_start(); it leaves with cmdpoll_leave() after it
 * has told the sink the command's end.  At unmount cmdpoll_stop() tells
 * every poller to end (cmdpoll_stopping() turns true: a poller then ends
 * its command with cmdpoll_unmounted()), and cmdpoll_wait() waits, with
 * a bound, for them to leave.
 */
#ifndef SBXFS_REMOTE_CMDPOLL_H
#define SBXFS_REMOTE_CMDPOLL_H

#include <pthread.h>

#include "sbxfs/provider.h"

/* A command whose server stops answering this long is lost. */
#define CMDPOLL_LOST_S 60

struct cmdpoll {
	pthread_mutex_t lock; /* guards running and stopping */
	pthread_cond_t done;  /* running fell to 0 */
	int running;	      /* pollers started and not yet left */
	int stopping;	      /* unmounting */
};

void cmdpoll_init(struct cmdpoll *g);
/* Only once no poller runs (cmdpoll_wait() returned 0). */
void cmdpoll_destroy(struct cmdpoll *g);

/* Start fn(arg) as a poller of g.  0, or -errno with sbx_failf() text
 * (fn is then not run and arg is still the caller's). */
int cmdpoll_start(struct cmdpoll *g, void *(*fn)(void *), void *arg);
/* The last call of a poller. */
void cmdpoll_leave(struct cmdpoll *g);

/* Is the mount going away? */
int cmdpoll_stopping(struct cmdpoll *g);
void cmdpoll_stop(struct cmdpoll *g);
/* Wait at most timeout_s for every poller to leave; the number still
 * running (a poller stuck in a bounded call), 0 once all have left. */
int cmdpoll_wait(struct cmdpoll *g, int timeout_s);

/*
 * A command's end from its exit status `code`: killed by the signal we
 * last sent it (`signalled`, 0 if none) when the status is a shell's
 * 128 + that signal, else an exit code.
 */
void cmdpoll_exit(struct sbx_exit *ex, long code, int signalled);
/* A command given up: "lost: " and the failure text; and the end of a
 * command at unmount. */
void cmdpoll_lost(struct sbx_exit *ex);
void cmdpoll_unmounted(struct sbx_exit *ex);

/*
 * The wait before the next poll: none right after output came (more is
 * likely), else from 20 ms growing by half up to 500 ms.  delay_ms is
 * the last wait.
 */
long cmdpoll_backoff(long delay_ms, int progressed);

/* What cmdpoll_follow() asks of a provider about one command. */
struct cmdpoll_cmd {
	/*
	 * poll: ask the server once about `cmd`; pass new output on to its
	 * sink and set *progressed when some came.  1 once the command has
	 * ended and its output is all in (its exit status in *code), 0 while
	 * it runs, -errno with sbx_failf() text when the server could not
	 * tell.  Blocks, bounded.  Required.
	 */
	int (*poll)(void *cmd, int *code, int *progressed);
	/*
	 * failed: after a poll failed with `rc`, end the command for a
	 * reason of the provider's own (its sandbox stopped): 1 with ex
	 * filled, else 0.  May be NULL.
	 */
	int (*failed)(void *cmd, int rc, struct sbx_exit *ex);
};

/*
 * The loop of a poller: poll `cmd` with ops, quickly while output flows
 * and backing off while it does not (cmdpoll_backoff()), until it ends
 * (cmdpoll_exit(), with the signal *signalled last sent to it), the
 * provider ends it (failed), its record is gone (-ENOENT) or the server
 * has failed for CMDPOLL_LOST_S (cmdpoll_lost()), or the mount goes
 * away (cmdpoll_unmounted()).  How it ended is in *ex.  The caller then
 * tells the sink and leaves the group.
 */
void cmdpoll_follow(struct cmdpoll *g, struct sbx_exit *ex, const struct cmdpoll_cmd *ops,
		    void *cmd, const int *signalled);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Kept shells: a few /bin/sh processes per sandbox, each reading scripts
 * from its stdin, so that a script of the remote layer costs one round
 * trip on an open stream and no process start by the service.  For a
 * provider whose every script is otherwise a new process of its API (an
 * exec: a request to create it, one to start it, and the engine's own
 * start of a process in the sandbox).
 *
 * A script goes to the shell as
 *
 *     ( SCRIPT
 *     ) </dev/null; sbxfs_s=$?; printf '\036SBXFS-END:ID:%d\n' ...
 *
 * a subshell, so that its exit, traps, variables and redirections end
 * with it, followed by the end mark of endmark.h on stdout and stderr,
 * whose id is the shell's own random one and the script's number: the
 * output of one script ends where its mark is, and nothing a sandbox's
 * file holds can be taken for it.  Scripts take turns on a shell; a
 * sandbox has up to KEPTSH_PER_BOX shells, opened as scripts need them
 * side by side and kept open, for KEPTSH_IDLE_S unused at most.  A shell
 * that is lost, cut, too slow or interrupted is closed, never used
 * again; a script that is safe to run twice (REMOTE_RUN_RETRY) is sent
 * once more on a new shell when a kept one turns out lost.
 *
 * A command (cmd/N) needs a shell of its own, whose stdin is the
 * command's: a spare, opened ahead off the caller's path, reads one line
 * (the shell's `read`, which takes no byte past it) and runs it with
 * eval, so that what follows on its stdin is the command's.  Taking a
 * spare opens the next ones in the background, up to KEPTSH_SPARES; the
 * first command of a sandbox finds none and makes its own (the
 * provider's usual way).
 *
 * The provider moves bytes (struct keptsh_ops); this file holds the rest.
 */
#ifndef SBXFS_REMOTE_KEPTSH_H
#define SBXFS_REMOTE_KEPTSH_H

#include <pthread.h>
#include <stddef.h>

#include "sbxfs/provider.h"
#include "sbxfs/strbuf.h"

/* The most shells open at once in one sandbox for scripts (a spare for
 * commands comes on top). */
#define KEPTSH_PER_BOX 3

/* Spares kept ready per sandbox: opening one takes longer than a command
 * (an exec's two requests), so commands one after another would wait for
 * a single one. */
#define KEPTSH_SPARES 2

/* How long a shell (or a spare) may stay unused before it is closed,
 * on the way to the next script of any sandbox. */
#define KEPTSH_IDLE_S 300

/* What a spare runs: one line of its stdin, and what that says.  The line
 * must end the shell (exit), so that nothing after it is read as more. */
#define KEPTSH_LAUNCHER "IFS= read -r sbxfs_c || exit 0; eval \"$sbxfs_c\""

/* Where a stream's output goes: `stream` SBX_STREAM_STDOUT or _STDERR. */
typedef void (*keptsh_out_fn)(void *ctx, enum sbx_stream stream, const char *data,
			      size_t len);

/*
 * A provider's streams to a shell in a sandbox.
 */
struct keptsh_ops {
	/*
	 * open: start /bin/sh in the running sandbox `box`, with no
	 * arguments, or with -c `command` where command is not NULL (a
	 * spare's KEPTSH_LAUNCHER), its stdin, stdout and stderr connected
	 * to a new stream, into *stream.  0, -EAGAIN when the sandbox is not
	 * running, or -errno with sbx_failf() text.  Called from a thread
	 * of keptsh's own for spares.
	 */
	int (*open)(void *ctx, const char *box, const char *command, void **stream);

	/* write: all of buf to the shell's stdin.  0, or -errno with text
	 * (the stream is then closed by the caller). */
	int (*write)(void *stream, const char *buf, size_t len);

	/*
	 * read: wait at most timeout_ms (0: do not wait) for output of the
	 * shell, and pass what came, in order, to out(ctx, ...).  1 when
	 * something came, 0 at the end of the stream, -ETIMEDOUT when
	 * nothing came, or -errno with text.
	 */
	int (*read)(void *stream, int timeout_ms, keptsh_out_fn out, void *ctx);

	/* close: end the stream and free it (the shell reads the end of its
	 * input and exits, once a script it runs has ended). */
	void (*close)(void *stream);
};

struct keptsh_shell;

struct keptsh {
	/* The provider's name, for messages; its streams, and their ctx. */
	const char *name;
	const struct keptsh_ops *ops;
	void *ctx;
	/* How long a script may go without output, as a transfer may; and
	 * a shell without a script before it is closed (KEPTSH_IDLE_S). */
	int stall_ms;
	long idle_ms;

	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct keptsh_shell *shells;
	unsigned openers;     /* threads opening spares */
	int stopping;	      /* keptsh_destroy() began: no more of them */
	unsigned long opened; /* shells opened so far: part of each id */
	char tag[20];	      /* random per keptsh: part of each id */
};

/* Set k up.  Nothing is opened until a script needs it. */
void keptsh_init(struct keptsh *k, const char *name, const struct keptsh_ops *ops,
		 void *ctx, int stall_ms);
/* Close every shell and free what k holds; no call may be using it.
 * Waits for spares being opened, up to 30 s: -EBUSY (and nothing freed)
 * if one is still on its way, else 0. */
int keptsh_destroy(struct keptsh *k);

/*
 * The contract of struct remote's run (remote.h), on a kept shell of
 * `box`: its exit status mapped by sh_exit_errno() (-EIO with the words
 * of its stderr for other failures), its stdout into out (may be NULL;
 * -EFBIG past out's maximum).  -EAGAIN when box is not running.
 * `flags`: REMOTE_RUN_RETRY.
 */
int keptsh_run(struct keptsh *k, const char *box, const char *what, const char *script,
	       int flags, struct strbuf *out);

/*
 * A spare shell of `box` for a command, still open, into *stream: it now
 * is the caller's (write the command's line, read its output, close it
 * with the ops' close).  One being opened is waited for.  0, or -ENOENT
 * when there is none.  Either way spares for the next commands are opened
 * in the background, up to KEPTSH_SPARES there or on their way.
 */
int keptsh_take_spare(struct keptsh *k, const char *box, void **stream);

/*
 * The shells k keeps open in `box`, for its status: a line "shells" of
 * "N for scripts; spares: R ready, O opening".
 */
void keptsh_describe(struct keptsh *k, const char *box, struct sbx_kvlist *out);

/* Close the shells of `box` that no script uses (it was stopped or
 * deleted); those in use are closed when their script ends. */
void keptsh_drop(struct keptsh *k, const char *box);

#endif

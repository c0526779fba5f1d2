/* SPDX-License-Identifier: MIT */
/*
 * The end mark of a command: a wrapper prints a mark and the command's
 * exit status after its output, on stdout and on stderr, so that the
 * output itself says that the command ended and how, with no request
 * after it (the status call, and the wait a server makes before it closes
 * a log stream, are off the path of `cat exec`).  Each stream gets the
 * mark, because a server that copies the two into one log keeps the order
 * of each, not the order between them.
 *
 *     COMMAND; s=$?; printf '\036SBXFS-END:ID:%d\n' $s; printf ... >&2
 *
 * One filter per stream passes the command's output on without the mark,
 * holding back only bytes that may be its start, and drops what follows
 * it (output of background processes the command left).  The command has
 * ended once both filters saw it.  The mark starts with a control
 * character and carries the command's own id, so a command's output does
 * not end it by chance.
 */
#ifndef SBXFS_REMOTE_ENDMARK_H
#define SBXFS_REMOTE_ENDMARK_H

#include <stddef.h>

#include "sbxfs/provider.h"
#include "sbxfs/strbuf.h"

/* The longest id, and the longest mark with its status and newline. */
#define ENDMARK_ID_MAX 96
#define ENDMARK_MAX (ENDMARK_ID_MAX + 24)

struct endmark {
	char mark[ENDMARK_MAX]; /* "\036SBXFS-END:ID:" */
	size_t mlen;
	char held[ENDMARK_MAX]; /* a start of the mark, then its digits */
	size_t nheld;
	int ended; /* the whole mark came: code holds the status */
	int code;
};

/* Set m up for the command `id` (letters, digits, '-', '_' and '.';
 * at most ENDMARK_ID_MAX bytes).  -EINVAL for another id. */
int endmark_init(struct endmark *m, const char *id);

/* Append to sb the shell text that prints m's mark with the status of
 * the command just run, on stdout and stderr: it goes after the command,
 * joined by ';'. */
int endmark_script(const struct endmark *m, struct strbuf *sb);

/* One stream of the command, in order: what is the command's goes to
 * out(ctx, data, len).  After the mark, nothing more goes out. */
typedef void (*endmark_out_fn)(void *ctx, const char *data, size_t len);
void endmark_feed(struct endmark *m, const char *data, size_t len, endmark_out_fn out,
		  void *ctx);

/* The stream ended (without the mark, or cut in it): pass on what was
 * held back. */
void endmark_flush(struct endmark *m, endmark_out_fn out, void *ctx);

/*
 * A command's two streams, each through its filter, on their way to the
 * command's sink: what a provider that runs commands under the mark uses.
 */
struct endmark_cmd {
	struct endmark stream[2]; /* SBX_STREAM_STDOUT, SBX_STREAM_STDERR */
	struct sbx_cmd_sink *sink;
};

/* Set e up for the command `id` (as endmark_init()), its output going to
 * sink.  0 or -EINVAL. */
int endmark_cmd_init(struct endmark_cmd *e, const char *id, struct sbx_cmd_sink *sink);
/* Output of one stream, in order: to the sink, without the mark. */
void endmark_cmd_output(struct endmark_cmd *e, enum sbx_stream s, const char *data,
			size_t len);
/* The output ended: pass on what was held back. */
void endmark_cmd_flush(struct endmark_cmd *e);
/* Did both streams end with the mark?  1 with the exit status in *code
 * (code may be NULL), else 0. */
int endmark_cmd_ended(const struct endmark_cmd *e, int *code);

#endif

/* SPDX-License-Identifier: MIT */
/* The end mark of a command's output.  See endmark.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sbxfs/remote/endmark.h"

#define MARK_START '\036'
/* The most digits of a status (0 to 255, or a shell's 128 + signal). */
#define STATUS_DIGITS 3

int endmark_init(struct endmark *m, const char *id)
{
	size_t n = strlen(id);

	memset(m, 0, sizeof(*m));
	if (!n || n > ENDMARK_ID_MAX ||
	    strspn(id,
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
		    n)
		return -EINVAL;
	m->mlen = (size_t)snprintf(m->mark, sizeof(m->mark),
				   "%cSBXFS-END:%s:", MARK_START, id);
	return 0;
}

int endmark_script(const struct endmark *m, struct strbuf *sb)
{
	/* The mark has no quote, backslash or percent sign in it. */
	return strbuf_addf(sb,
			   "; sbxfs_s=$?; printf '\\036%s%%d\\n' $sbxfs_s; "
			   "printf '\\036%s%%d\\n' $sbxfs_s >&2",
			   m->mark + 1, m->mark + 1);
}

/* Give the held bytes back to the stream: they were not the mark. */
static void release(struct endmark *m, endmark_out_fn out, void *ctx)
{
	if (m->nheld)
		out(ctx, m->held, m->nheld);
	m->nheld = 0;
}

/* One byte after the held ones: 1 if it goes on with the mark. */
static int extends(const struct endmark *m, char c)
{
	size_t digits;

	if (m->nheld < m->mlen)
		return c == m->mark[m->nheld];
	digits = m->nheld - m->mlen;
	return (c >= '0' && c <= '9' && digits < STATUS_DIGITS) || (c == '\n' && digits);
}

void endmark_feed(struct endmark *m, const char *data, size_t len, endmark_out_fn out,
		  void *ctx)
{
	size_t seg = 0;

	for (size_t i = 0; i < len && !m->ended; i++) {
		char c = data[i];

		if (m->nheld) {
			if (extends(m, c)) {
				m->held[m->nheld++] = c;
				if (c == '\n') {
					m->held[m->nheld - 1] = '\0';
					sscanf(m->held + m->mlen, "%d", &m->code);
					m->ended = 1;
					m->nheld = 0;
				}
				seg = i + 1;
				continue;
			}
			release(m, out, ctx);
		}
		if (c == MARK_START) {
			if (i > seg)
				out(ctx, data + seg, i - seg);
			m->held[m->nheld++] = c;
			seg = i + 1;
		}
	}
	/* Held bytes, if any, end the data: what is before them went out. */
	if (!m->ended && !m->nheld && len > seg)
		out(ctx, data + seg, len - seg);
}

void endmark_flush(struct endmark *m, endmark_out_fn out, void *ctx)
{
	if (!m->ended)
		release(m, out, ctx);
}

static void to_stdout(void *ctx, const char *data, size_t len)
{
	struct endmark_cmd *e = ctx;

	e->sink->output(e->sink, SBX_STREAM_STDOUT, data, len);
}

static void to_stderr(void *ctx, const char *data, size_t len)
{
	struct endmark_cmd *e = ctx;

	e->sink->output(e->sink, SBX_STREAM_STDERR, data, len);
}

int endmark_cmd_init(struct endmark_cmd *e, const char *id, struct sbx_cmd_sink *sink)
{
	int rc = endmark_init(&e->stream[SBX_STREAM_STDOUT], id);

	if (!rc)
		rc = endmark_init(&e->stream[SBX_STREAM_STDERR], id);
	e->sink = sink;
	return rc;
}

void endmark_cmd_output(struct endmark_cmd *e, enum sbx_stream s, const char *data,
			size_t len)
{
	endmark_feed(&e->stream[s], data, len,
		     s == SBX_STREAM_STDOUT ? to_stdout : to_stderr, e);
}

void endmark_cmd_flush(struct endmark_cmd *e)
{
	endmark_flush(&e->stream[SBX_STREAM_STDOUT], to_stdout, e);
	endmark_flush(&e->stream[SBX_STREAM_STDERR], to_stderr, e);
}

int endmark_cmd_ended(const struct endmark_cmd *e, int *code)
{
	if (!e->stream[SBX_STREAM_STDOUT].ended || !e->stream[SBX_STREAM_STDERR].ended)
		return 0;
	if (code)
		*code = e->stream[SBX_STREAM_STDOUT].code;
	return 1;
}

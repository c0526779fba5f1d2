/* SPDX-License-Identifier: MIT */
/* A growable byte buffer with a hard maximum, for anything whose size is
 * decided by someone else.  Exceeding the maximum is -E2BIG, not an OOM. */
#ifndef SBXFS_STRBUF_H
#define SBXFS_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *buf; /* always NUL-terminated when non-NULL */
	size_t len, cap, max;
};

#define STRBUF_INIT(maxbytes)          \
	{                              \
		NULL, 0, 0, (maxbytes) \
	}

int strbuf_add(struct strbuf *sb, const void *data, size_t len);
int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strbuf_release(struct strbuf *sb);
/* Hand over the string (never NULL; "" when empty); sb is reset. */
char *strbuf_detach(struct strbuf *sb, size_t *len);

#endif

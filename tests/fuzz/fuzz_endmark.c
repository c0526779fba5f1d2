/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a command's output stream as the end mark's filter
 * sees it (endmark.h), fed in pieces whose sizes the input chooses.
 * Nothing may be read or written out of bounds; what passes out is the
 * input's bytes in order, never more of them than came; an ended mark has
 * a status of at most three digits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/endmark.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	size_t len;
};

static void count(void *ctx, const char *data, size_t len)
{
	((struct seen *)ctx)->len += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen seen = { 0 };
	struct endmark m;
	size_t i = 0;

	if (endmark_init(&m, "cmd-1"))
		abort();
	while (i < size) {
		size_t n = 1 + data[i] % 16;

		i++;
		if (n > size - i)
			n = size - i;
		endmark_feed(&m, (const char *)data + i, n, count, &seen);
		i += n;
	}
	endmark_flush(&m, count, &seen);
	if (seen.len > size || (m.ended && (m.code < 0 || m.code > 999)))
		abort();
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a gzip stream from a sandbox (a prefetch's tar).  The
 * first byte sets the bound of what it may inflate to (up to 64 KiB, a
 * bomb's room); the rest is the stream.  What inflates stays within the
 * bound, and a stream that ends whole inflates to the same bytes under a
 * larger bound.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/gunzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max = size ? ((size_t)data[0] + 1) << 8 : 0;
	struct strbuf out = STRBUF_INIT(max), big = STRBUF_INIT(1u << 20);
	const char *in = size ? (const char *)data + 1 : "";
	size_t len = size ? size - 1 : 0;
	int rc, again;

	gunzip_is(in, len);
	rc = gunzip(&out, in, len);
	if (out.len > max || (rc && rc != -EFBIG && rc != -EPROTO && rc != -ENOMEM))
		abort();
	if (!rc) {
		again = gunzip(&big, in, len);
		if (again || big.len != out.len ||
		    (out.len && memcmp(big.buf, out.buf, out.len)))
			abort();
	}
	strbuf_release(&out);
	strbuf_release(&big);
	return 0;
}

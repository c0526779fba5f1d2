/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: base64 from a server.  The one-shot decoder and the
 * streaming one fed in two pieces must agree, stay in their bounds, and
 * what decodes must encode back to the same digits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	unsigned char *raw = malloc(B64_DECODED_MAX(size));
	struct strbuf sb = STRBUF_INIT(B64_DECODED_MAX(size) + 1);
	struct strbuf again = STRBUF_INIT(size * 2 + 8);
	struct b64_decoder d = B64_DECODER_INIT;
	size_t cut = size ? data[0] % (size + 1) : 0;
	ssize_t n;
	int rc;

	if (!raw)
		return 0;
	n = b64_decode(raw, in, size);
	rc = b64_feed(&d, &sb, in, cut);
	if (!rc)
		rc = b64_feed(&d, &sb, in + cut, size - cut);
	if (!rc)
		rc = b64_finish(&d, &sb);
	if ((n < 0) != (rc != 0) ||
	    (n >= 0 && ((size_t)n != sb.len || (n && memcmp(raw, sb.buf, (size_t)n)))))
		abort();
	if (n > 0 && b64_encode(&again, raw, (size_t)n) == 0) {
		unsigned char *back = malloc(B64_DECODED_MAX(again.len));

		if (back && (b64_decode(back, again.buf, again.len) != n ||
			     memcmp(back, raw, (size_t)n)))
			abort();
		free(back);
	}
	free(raw);
	strbuf_release(&sb);
	strbuf_release(&again);
	return 0;
}

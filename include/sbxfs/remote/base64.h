/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648, standard alphabet) for what remote providers move as
 * text: scripts on the way in, file data and listings on the way out.
 *
 * The encoder always pads.  The decoder is strict about the alphabet and
 * about data after padding, skips white space (base64(1) wraps its lines),
 * and takes a last group without its padding.  It streams: a provider
 * feeds pieces as they arrive and ends with b64_finish(); what it decodes
 * goes to a bounded strbuf, so a server cannot make it grow past its max.
 */
#ifndef SBXFS_REMOTE_BASE64_H
#define SBXFS_REMOTE_BASE64_H

#include <stddef.h>
#include <sys/types.h>

#include "sbxfs/strbuf.h"

/* Append the base64 encoding of data[0..len) to sb: 0 or -E2BIG (sb's
 * maximum) or -ENOMEM. */
int b64_encode(struct strbuf *sb, const void *data, size_t len);

/* A decoder's state between pieces of input; start it zeroed
 * (B64_DECODER_INIT). */
struct b64_decoder {
	unsigned v; /* the digits of the group so far */
	int n;	    /* how many (padding included) */
	int pad;    /* '=' seen: nothing but '=' may follow */
};

#define B64_DECODER_INIT \
	{                \
		0, 0, 0  \
	}

/*
 * Decode in[0..len) and append the bytes to `to`.  Returns 0, -EPROTO for
 * input that is not base64 (a character outside the alphabet, data after
 * padding, padding too early), or to's error (-E2BIG past its maximum,
 * -ENOMEM).  After an error the decoder is not to be fed again.
 */
int b64_feed(struct b64_decoder *d, struct strbuf *to, const char *in, size_t len);

/* The end of the input: append what the last, unpadded group holds.
 * -EPROTO if the input stopped inside a byte.  The decoder is then
 * zeroed, ready for another input. */
int b64_finish(struct b64_decoder *d, struct strbuf *to);

/* Room that b64_decode() may need for `len` characters of input. */
#define B64_DECODED_MAX(len) ((len) / 4 * 3 + 3)

/* Decode a whole input into out, which has room for B64_DECODED_MAX(len)
 * bytes.  Returns the number of bytes, or -1 if the input is not base64. */
ssize_t b64_decode(unsigned char *out, const char *in, size_t len);

#endif

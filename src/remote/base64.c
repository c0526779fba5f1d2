/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "sbxfs/remote/base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_encode(struct strbuf *sb, const void *data, size_t len)
{
	const unsigned char *p = data;
	int rc = 0;

	while (!rc && len) {
		unsigned v = (unsigned)p[0] << 16;
		char out[4];

		v |= len > 1 ? (unsigned)p[1] << 8 : 0;
		v |= len > 2 ? p[2] : 0;
		out[0] = alphabet[(v >> 18) & 63];
		out[1] = alphabet[(v >> 12) & 63];
		out[2] = len > 1 ? alphabet[(v >> 6) & 63] : '=';
		out[3] = len > 2 ? alphabet[v & 63] : '=';
		rc = strbuf_add(sb, out, 4);
		p += len > 3 ? 3 : len;
		len -= len > 3 ? 3 : len;
	}
	return rc;
}

static int digit(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Take one character: the number of bytes a completed group gives (into
 * out), 0 while the group is not complete, -EPROTO. */
static int step(struct b64_decoder *d, int c, unsigned char out[3])
{
	int x;

	if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
		return 0;
	if (c == '=') {
		if (d->n < 2)
			return -EPROTO;
		d->pad++;
		x = 0;
	} else {
		x = digit(c);
		if (x < 0 || d->pad)
			return -EPROTO;
	}
	d->v = d->v << 6 | (unsigned)x;
	if (++d->n < 4)
		return 0;
	out[0] = (unsigned char)(d->v >> 16);
	out[1] = (unsigned char)(d->v >> 8);
	out[2] = (unsigned char)d->v;
	d->v = 0;
	d->n = 0;
	return 3 - d->pad; /* pad is 0, 1 or 2: '=' needs two digits before */
}

/* The bytes of an unfinished group at the end: -EPROTO if it is cut
 * inside a byte. */
static int tail(struct b64_decoder *d, unsigned char out[3])
{
	int digits = d->n - d->pad, i;
	unsigned v = d->v;

	if (d->n == 0)
		return 0;
	if (digits < 2)
		return -EPROTO;
	for (i = d->n; i < 4; i++)
		v <<= 6;
	out[0] = (unsigned char)(v >> 16);
	out[1] = (unsigned char)(v >> 8);
	return digits - 1;
}

int b64_feed(struct b64_decoder *d, struct strbuf *to, const char *in, size_t len)
{
	unsigned char out[3];
	size_t i;

	for (i = 0; i < len; i++) {
		int n = step(d, (unsigned char)in[i], out), rc;

		if (n < 0)
			return n;
		if (n && (rc = strbuf_add(to, out, (size_t)n)))
			return rc;
	}
	return 0;
}

int b64_finish(struct b64_decoder *d, struct strbuf *to)
{
	unsigned char out[3];
	int n = tail(d, out);

	*d = (struct b64_decoder)B64_DECODER_INIT;
	if (n <= 0)
		return n;
	return strbuf_add(to, out, (size_t)n);
}

ssize_t b64_decode(unsigned char *out, const char *in, size_t len)
{
	struct b64_decoder d = B64_DECODER_INIT;
	size_t o = 0, i;
	int n;

	for (i = 0; i < len; i++) {
		n = step(&d, (unsigned char)in[i], out + o);
		if (n < 0)
			return -1;
		o += (size_t)n;
	}
	n = tail(&d, out + o);
	return n < 0 ? -1 : (ssize_t)(o + (size_t)n);
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "sbxfs/remote/base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The four characters of the group p[0..take), take 1 to 3, padded. */
static void group(char out[4], const unsigned char *p, size_t take)
{
	unsigned v = (unsigned)p[0] << 16;

	v |= take > 1 ? (unsigned)p[1] << 8 : 0;
	v |= take > 2 ? p[2] : 0;
	out[0] = alphabet[(v >> 18) & 63];
	out[1] = alphabet[(v >> 12) & 63];
	out[2] = take > 1 ? alphabet[(v >> 6) & 63] : '=';
	out[3] = take > 2 ? alphabet[v & 63] : '=';
}

int b64_encode(struct strbuf *sb, const void *data, size_t len)
{
	enum { BLOCK = 3 * 4096 };
	const unsigned char *p = data;
	char out[BLOCK / 3 * 4];
	int rc = 0;

	/* A block at a time into out, then one add. */
	while (!rc && len) {
		size_t take = len < BLOCK ? len : BLOCK, o = 0;

		len -= take;
		for (; take >= 3; p += 3, take -= 3, o += 4)
			group(out + o, p, 3);
		if (take) {
			group(out + o, p, take);
			p += take;
			o += 4;
		}
		rc = strbuf_add(sb, out, o);
	}
	return rc;
}

/* What each byte is to the decoder: a digit's value (0 to 63), or one of
 * these. */
enum { SP = 64 /* white space */, PD = 65 /* '=' */, XX = 66 /* not base64 */ };

/* clang-format off */
static const unsigned char value[256] = {
	XX, XX, XX, XX, XX, XX, XX, XX, XX, SP, SP, XX, XX, SP, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	SP, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX, XX, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, PD, XX, XX,
	XX,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, XX,
	XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};
/* clang-format on */

/* Take one character: the number of bytes a completed group gives (into
 * out), 0 while the group is not complete, -EPROTO. */
static int step(struct b64_decoder *d, int c, unsigned char out[3])
{
	int x;

	x = value[c];
	if (x == SP)
		return 0;
	if (x == PD) {
		if (d->n < 2)
			return -EPROTO;
		d->pad++;
		x = 0;
	} else if (x == XX || d->pad) {
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

/*
 * Decode in[0..len) into out, which has room for B64_DECODED_MAX(len) + 3
 * bytes (a group begun in an earlier piece ends in this one): the number
 * of bytes, or -EPROTO.  Whole groups of four digits, all of a sandbox's
 * base64 but for its ends and line breaks, go four characters at a time.
 */
static ssize_t run(struct b64_decoder *d, const unsigned char *in, size_t len,
		   unsigned char *out)
{
	unsigned char *o = out;
	size_t i = 0;

	while (i < len) {
		int n;

		if (d->n == 0 && !d->pad) {
			for (; i + 4 <= len; i += 4, o += 3) {
				unsigned a = value[in[i]], b = value[in[i + 1]],
					 c = value[in[i + 2]], e = value[in[i + 3]], v;

				if ((a | b | c | e) > 63)
					break;
				v = a << 18 | b << 12 | c << 6 | e;
				o[0] = (unsigned char)(v >> 16);
				o[1] = (unsigned char)(v >> 8);
				o[2] = (unsigned char)v;
			}
			if (i == len)
				break;
		}
		n = step(d, in[i++], o);
		if (n < 0)
			return n;
		o += n;
	}
	return o - out;
}

int b64_feed(struct b64_decoder *d, struct strbuf *to, const char *in, size_t len)
{
	enum { SLICE = 16384 };
	unsigned char out[B64_DECODED_MAX(SLICE) + 3];

	while (len) {
		size_t take = len < SLICE ? len : SLICE;
		ssize_t n = run(d, (const unsigned char *)in, take, out);
		int rc;

		if (n < 0)
			return (int)n;
		if (n && (rc = strbuf_add(to, out, (size_t)n)))
			return rc;
		in += take;
		len -= take;
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
	ssize_t o = run(&d, (const unsigned char *)in, len, out);
	int n;

	if (o < 0)
		return -1;
	n = tail(&d, out + o);
	return n < 0 ? -1 : o + n;
}

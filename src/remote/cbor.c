/* SPDX-License-Identifier: MIT */
/*
 * One function reads an item: parse_item() checks a head, what it claims
 * and, for a container, every item inside.  cbor_decode() runs it over
 * the buffer with the bytes it has; the iterator runs it again over what
 * that call accepted, with no limit (SIZE_MAX) since it knows none, which
 * is safe because the same checks passed on the same bytes before.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/cbor.h"

/* Major types: the top three bits of an item's first byte. */
enum { MT_UINT, MT_NEGINT, MT_BYTES, MT_TEXT, MT_ARRAY, MT_MAP, MT_TAG, MT_SIMPLE };

/* Additional info (the low five bits) of the simple values and floats. */
enum {
	AI_FALSE = 20,
	AI_TRUE,
	AI_NULL,
	AI_UNDEFINED,
	AI_HALF = 25,
	AI_SINGLE,
	AI_DOUBLE
};

/* ---- writing */

/*
 * Append a head (the shortest form for arg) and len bytes of data.  On
 * error sb is put back as it was: a failed call appends nothing, not half
 * an item.
 */
static int put(struct strbuf *sb, unsigned major, uint64_t arg, const void *data,
	       size_t len)
{
	uint8_t h[9];
	size_t n = 1, old = sb->len, i;
	int rc;

	if (arg < 24) {
		h[0] = (uint8_t)(major << 5 | arg);
	} else {
		unsigned ai = 24; /* 1, 2, 4 or 8 bytes: the fewest arg fits */

		while (ai < 27 && arg >> (8 << (ai - 24)))
			ai++;
		n += (size_t)1 << (ai - 24);
		h[0] = (uint8_t)(major << 5 | ai);
		for (i = 1; i < n; i++)
			h[i] = (uint8_t)(arg >> 8 * (n - 1 - i));
	}
	rc = strbuf_add(sb, h, n);
	if (!rc && len)
		rc = strbuf_add(sb, data, len);
	if (rc && sb->buf) {
		sb->len = old;
		sb->buf[old] = '\0';
	}
	return rc;
}

int cbor_put_uint(struct strbuf *sb, uint64_t v)
{
	return put(sb, MT_UINT, v, NULL, 0);
}

int cbor_put_int(struct strbuf *sb, int64_t v)
{
	/* No overflow: -1 - v is 0 to INT64_MAX when v < 0. */
	if (v < 0)
		return put(sb, MT_NEGINT, (uint64_t)(-1 - v), NULL, 0);
	return put(sb, MT_UINT, (uint64_t)v, NULL, 0);
}

int cbor_put_bytes(struct strbuf *sb, const void *data, size_t len)
{
	return put(sb, MT_BYTES, len, data, len);
}

int cbor_put_text(struct strbuf *sb, const char *s)
{
	return cbor_put_textn(sb, s, strlen(s));
}

int cbor_put_textn(struct strbuf *sb, const char *s, size_t len)
{
	return put(sb, MT_TEXT, len, s, len);
}

int cbor_put_bool(struct strbuf *sb, int v)
{
	return put(sb, MT_SIMPLE, v ? AI_TRUE : AI_FALSE, NULL, 0);
}

int cbor_put_null(struct strbuf *sb)
{
	return put(sb, MT_SIMPLE, AI_NULL, NULL, 0);
}

int cbor_put_array(struct strbuf *sb, size_t n)
{
	return put(sb, MT_ARRAY, n, NULL, 0);
}

int cbor_put_map(struct strbuf *sb, size_t npairs)
{
	return put(sb, MT_MAP, npairs, NULL, 0);
}

/* ---- reading */

/*
 * The head at p, with avail bytes from p on: its argument and its size.
 * -EPROTO if it is cut short, or its additional info is reserved (28-30)
 * or indefinite (31, which is also the break byte 0xff).
 */
static int head(const uint8_t *p, size_t avail, uint64_t *arg, size_t *hlen)
{
	unsigned ai;
	size_t n, i;

	if (avail < 1)
		return -EPROTO;
	ai = p[0] & 31;
	if (ai < 24) {
		*arg = ai;
		*hlen = 1;
		return 0;
	}
	if (ai > 27)
		return -EPROTO;
	n = (size_t)1 << (ai - 24);
	if (avail - 1 < n)
		return -EPROTO;
	*arg = 0;
	for (i = 1; i <= n; i++)
		*arg = *arg << 8 | p[i];
	*hlen = 1 + n;
	return 0;
}

/* An IEEE 754 half to a double, which holds every half exactly: move the
 * exponent and the mantissa into a double's fields. */
static double half(uint16_t h)
{
	uint64_t sign = (uint64_t)(h >> 15) << 63, exp = h >> 10 & 31, mant = h & 0x3ff;
	uint64_t bits;
	double d;

	if (exp == 0) { /* zero or subnormal: mant * 2^-24 */
		d = (double)mant / 16777216.0;
		return sign ? -d : d;
	}
	if (exp == 31) /* infinity, or NaN with the same payload */
		bits = sign | 0x7ffULL << 52 | mant << 42;
	else
		bits = sign | (exp - 15 + 1023) << 52 | mant << 42;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

/*
 * The item at p, with avail bytes from p on, inside depth containers
 * (tags count as one): check it all the way down and fill *out.  Each
 * byte is looked at once, and a count is checked against the bytes left
 * before any item is read, so the work is linear in what the item takes.
 * 0, or -EPROTO (*out may then be half filled).
 */
static int parse_item(const uint8_t *p, size_t avail, int depth, struct cbor_val *out)
{
	struct cbor_val item;
	const uint8_t *q;
	uint64_t arg, n, i;
	unsigned major, ai;
	size_t hlen;
	int rc = head(p, avail, &arg, &hlen);

	if (rc)
		return rc;
	major = p[0] >> 5;
	ai = p[0] & 31;
	memset(out, 0, sizeof(*out));
	q = p + hlen;
	avail -= hlen;
	switch (major) {
	case MT_UINT:
	case MT_NEGINT:
		out->type = major == MT_UINT ? CBOR_UINT : CBOR_NEGINT;
		out->u = arg;
		break;
	case MT_BYTES:
	case MT_TEXT:
		if (arg > avail)
			return -EPROTO;
		out->type = major == MT_BYTES ? CBOR_BYTES : CBOR_TEXT;
		out->data = q;
		out->len = (size_t)arg;
		q += arg;
		break;
	case MT_ARRAY:
	case MT_MAP:
		/* Every item takes a byte at least: a count past what is left
		 * fails before any item is read. */
		if (depth >= CBOR_DEPTH_MAX ||
		    arg > (major == MT_MAP ? avail / 2 : avail))
			return -EPROTO;
		n = major == MT_MAP ? arg * 2 : arg;
		out->type = major == MT_ARRAY ? CBOR_ARRAY : CBOR_MAP;
		out->data = q;
		out->len = (size_t)arg;
		for (i = 0; i < n; i++) {
			rc = parse_item(q, avail, depth + 1, &item);
			if (rc)
				return rc;
			avail -= (size_t)(item.end - q);
			q = item.end;
		}
		break;
	case MT_TAG:
		/* The tag's number means nothing to us: the item is what it tags. */
		if (depth >= CBOR_DEPTH_MAX)
			return -EPROTO;
		return parse_item(q, avail, depth + 1, out);
	default:
		if (ai == AI_FALSE || ai == AI_TRUE) {
			out->type = CBOR_BOOL;
			out->u = ai == AI_TRUE;
		} else if (ai == AI_NULL || ai == AI_UNDEFINED) {
			out->type = CBOR_NULL;
		} else if (ai == AI_HALF) {
			out->type = CBOR_FLOAT;
			out->f = half((uint16_t)arg);
		} else if (ai == AI_SINGLE) {
			uint32_t bits = (uint32_t)arg;
			float f;

			memcpy(&f, &bits, sizeof(f));
			out->type = CBOR_FLOAT;
			out->f = f;
		} else if (ai == AI_DOUBLE) {
			out->type = CBOR_FLOAT;
			memcpy(&out->f, &arg, sizeof(out->f));
		} else {
			/* Simple values 0-19 are unassigned; 0xf8 holds 32-255. */
			return -EPROTO;
		}
		break;
	}
	out->end = q;
	return 0;
}

int cbor_decode(struct cbor_val *out, const void *buf, size_t len)
{
	struct cbor_val v;

	if (parse_item(buf, len, 0, &v) || v.end != (const uint8_t *)buf + len)
		return -EPROTO;
	*out = v;
	return 0;
}

void cbor_iter_init(struct cbor_iter *it, const struct cbor_val *container)
{
	it->p = container->data;
	if (container->type == CBOR_ARRAY)
		it->left = container->len;
	else if (container->type == CBOR_MAP)
		it->left = container->len * 2; /* no overflow: each took a byte */
	else
		it->left = 0;
}

int cbor_iter_next(struct cbor_iter *it, struct cbor_val *out)
{
	if (!it->left)
		return 0;
	/* Checked by cbor_decode() already: this cannot fail on its data. */
	if (parse_item(it->p, SIZE_MAX, 0, out)) {
		it->left = 0;
		return 0;
	}
	it->p = out->end;
	it->left--;
	return 1;
}

int cbor_map_get(const struct cbor_val *map, const char *key, struct cbor_val *out)
{
	struct cbor_iter it;
	struct cbor_val k, v;

	if (map->type != CBOR_MAP)
		return -EPROTO;
	cbor_iter_init(&it, map);
	while (cbor_iter_next(&it, &k) && cbor_iter_next(&it, &v)) {
		if (cbor_text_is(&k, key)) {
			*out = v;
			return 0;
		}
	}
	return -ENOENT;
}

int cbor_text_is(const struct cbor_val *v, const char *s)
{
	size_t n = strlen(s);

	return v->type == CBOR_TEXT && v->len == n && (!n || !memcmp(v->data, s, n));
}

int cbor_int(const struct cbor_val *v, int64_t *out)
{
	if ((v->type != CBOR_UINT && v->type != CBOR_NEGINT) || v->u > INT64_MAX)
		return -EPROTO;
	*out = v->type == CBOR_UINT ? (int64_t)v->u : -1 - (int64_t)v->u;
	return 0;
}

/* A text that can be a C string: no NUL inside. */
static int c_text(const struct cbor_val *v)
{
	return v->type == CBOR_TEXT && (!v->len || !memchr(v->data, '\0', v->len));
}

int cbor_text_copy(const struct cbor_val *v, char *buf, size_t size)
{
	if (!c_text(v))
		return -EPROTO;
	if (v->len >= size)
		return -ENAMETOOLONG;
	if (v->len)
		memcpy(buf, v->data, v->len);
	buf[v->len] = '\0';
	return 0;
}

int cbor_text_dup(const struct cbor_val *v, char **out)
{
	char *s;

	if (!c_text(v))
		return -EPROTO;
	s = malloc(v->len + 1);
	if (!s)
		return -ENOMEM;
	if (v->len)
		memcpy(s, v->data, v->len);
	s[v->len] = '\0';
	*out = s;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * CBOR: the examples of RFC 8949 Appendix A that fall in our subset, read
 * and (where we write them) written byte for byte; every one cut short,
 * or with a byte after it, refused; the indefinite-length examples
 * refused; depth, counts and lengths that lie; and the accessors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/cbor.h"
#include "test.h"

/* A byte string literal and its length, NUL left out. */
#define B(lit) (lit), (sizeof(lit) - 1)

/* [1, 2, ..., 25] */
#define ARRAY25                                                                            \
	"\x98\x19\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12" \
	"\x13\x14\x15\x16\x17\x18\x18\x18\x19"

struct vec {
	const char *cbor;
	size_t len;
};

/* Appendix A examples in the subset (floats, tags included). */
static const struct vec valid[] = {
	{ B("\x00") },
	{ B("\x01") },
	{ B("\x0a") },
	{ B("\x17") },
	{ B("\x18\x18") },
	{ B("\x18\x19") },
	{ B("\x18\x64") },
	{ B("\x19\x03\xe8") },
	{ B("\x1a\x00\x0f\x42\x40") },
	{ B("\x1b\x00\x00\x00\xe8\xd4\xa5\x10\x00") },
	{ B("\x1b\xff\xff\xff\xff\xff\xff\xff\xff") },
	{ B("\x20") },
	{ B("\x29") },
	{ B("\x38\x63") },
	{ B("\x39\x03\xe7") },
	{ B("\xf9\x00\x00") },
	{ B("\xf9\x80\x00") },
	{ B("\xf9\x3c\x00") },
	{ B("\xfb\x3f\xf1\x99\x99\x99\x99\x99\x9a") },
	{ B("\xf9\x3e\x00") },
	{ B("\xf9\x7b\xff") },
	{ B("\xfa\x47\xc3\x50\x00") },
	{ B("\xf9\x00\x01") },
	{ B("\xf9\x7c\x00") },
	{ B("\xf9\x7e\x00") },
	{ B("\xf4") },
	{ B("\xf5") },
	{ B("\xf6") },
	{ B("\xf7") },
	{ B("\xc1\x1a\x51\x4b\x67\xb0") },
	{ B("\x40") },
	{ B("\x44\x01\x02\x03\x04") },
	{ B("\x60") },
	{ B("\x61\x61") },
	{ B("\x64\x49\x45\x54\x46") },
	{ B("\x62\xc3\xbc") },
	{ B("\x80") },
	{ B("\x83\x01\x02\x03") },
	{ B("\x83\x01\x82\x02\x03\x82\x04\x05") },
	{ B(ARRAY25) },
	{ B("\xa0") },
	{ B("\xa2\x01\x02\x03\x04") },
	{ B("\xa2\x61\x61\x01\x61\x62\x82\x02\x03") },
	{ B("\x82\x61\x61\xa1\x61\x62\x61\x63") },
};

/* Appendix A's indefinite-length examples, and a lone break. */
static const struct vec indefinite[] = {
	{ B("\x5f\x42\x01\x02\x43\x03\x04\x05\xff") },
	{ B("\x7f\x65\x73\x74\x72\x65\x61\x64\x6d\x69\x6e\x67\xff") },
	{ B("\x9f\xff") },
	{ B("\x9f\x01\x82\x02\x03\x9f\x04\x05\xff\xff") },
	{ B("\x9f\x01\x82\x02\x03\x82\x04\x05\xff") },
	{ B("\x83\x01\x82\x02\x03\x9f\x04\x05\xff") },
	{ B("\x83\x01\x9f\x02\x03\xff\x82\x04\x05") },
	{ B("\x9f\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11"
	    "\x12\x13\x14\x15\x16\x17\x18\x18\x18\x19\xff") },
	{ B("\xbf\x61\x61\x01\x61\x62\x9f\x02\x03\xff\xff") },
	{ B("\x82\x61\x61\xbf\x61\x62\x61\x63\xff") },
	{ B("\xbf\x63\x46\x75\x6e\xf5\x63\x41\x6d\x74\x21\xff") },
	{ B("\xff") },
};

static int dec(struct cbor_val *v, const char *buf, size_t len)
{
	return cbor_decode(v, buf, len);
}

static uint64_t bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

static int is_uint(const char *buf, size_t len, uint64_t u)
{
	struct cbor_val v;

	return dec(&v, buf, len) == 0 && v.type == CBOR_UINT && v.u == u;
}

static int is_int(const char *buf, size_t len, int64_t i)
{
	struct cbor_val v;
	int64_t got;

	return dec(&v, buf, len) == 0 && cbor_int(&v, &got) == 0 && got == i;
}

static int is_float(const char *buf, size_t len, double f)
{
	struct cbor_val v;

	return dec(&v, buf, len) == 0 && v.type == CBOR_FLOAT && bits(v.f) == bits(f);
}

static int is_text(const char *buf, size_t len, enum cbor_type type, const char *s,
		   size_t n)
{
	struct cbor_val v;

	return dec(&v, buf, len) == 0 && v.type == type && v.len == n &&
	       !memcmp(v.data, s, n) && v.end == (const uint8_t *)buf + len;
}

/* Does sb hold exactly the bytes buf[0..len)?  It is emptied. */
static int wrote(struct strbuf *sb, const char *buf, size_t len)
{
	int same = sb->len == len && !memcmp(sb->buf, buf, len);

	strbuf_release(sb);
	return same;
}

static void check_examples(void)
{
	struct cbor_val v, w;
	struct cbor_iter it;
	uint64_t sum = 0;
	size_t i, n;

	CHECK(is_uint(B("\x00"), 0));
	CHECK(is_uint(B("\x01"), 1));
	CHECK(is_uint(B("\x0a"), 10));
	CHECK(is_uint(B("\x17"), 23));
	CHECK(is_uint(B("\x18\x18"), 24));
	CHECK(is_uint(B("\x18\x19"), 25));
	CHECK(is_uint(B("\x18\x64"), 100));
	CHECK(is_uint(B("\x19\x03\xe8"), 1000));
	CHECK(is_uint(B("\x1a\x00\x0f\x42\x40"), 1000000));
	CHECK(is_uint(B("\x1b\x00\x00\x00\xe8\xd4\xa5\x10\x00"), 1000000000000));
	CHECK(is_uint(B("\x1b\xff\xff\xff\xff\xff\xff\xff\xff"), UINT64_MAX));
	CHECK(is_int(B("\x20"), -1));
	CHECK(is_int(B("\x29"), -10));
	CHECK(is_int(B("\x38\x63"), -100));
	CHECK(is_int(B("\x39\x03\xe7"), -1000));
	CHECK(dec(&v, B("\x20")) == 0 && v.type == CBOR_NEGINT && v.u == 0);

	CHECK(is_float(B("\xf9\x00\x00"), 0.0));
	CHECK(is_float(B("\xf9\x80\x00"), -0.0));
	CHECK(is_float(B("\xf9\x3c\x00"), 1.0));
	CHECK(is_float(B("\xfb\x3f\xf1\x99\x99\x99\x99\x99\x9a"), 1.1));
	CHECK(is_float(B("\xf9\x3e\x00"), 1.5));
	CHECK(is_float(B("\xf9\x7b\xff"), 65504.0));
	CHECK(is_float(B("\xfa\x47\xc3\x50\x00"), 100000.0));
	CHECK(is_float(B("\xfa\x7f\x7f\xff\xff"), 3.4028234663852886e+38));
	CHECK(is_float(B("\xf9\x00\x01"), 5.960464477539063e-8));
	CHECK(is_float(B("\xf9\x04\x00"), 0.00006103515625));
	CHECK(is_float(B("\xf9\xc4\x00"), -4.0));
	CHECK(is_float(B("\xfa\xc0\x80\x00\x00"), -4.0));
	CHECK(is_float(B("\xfb\xc0\x10\x66\x66\x66\x66\x66\x66"), -4.1));
	/* Infinities and NaN, whatever their width. */
	CHECK(dec(&v, B("\xf9\x7c\x00")) == 0 && bits(v.f) == 0x7ff0000000000000);
	CHECK(dec(&v, B("\xf9\xfc\x00")) == 0 && bits(v.f) == 0xfff0000000000000);
	CHECK(dec(&v, B("\xfa\x7f\x80\x00\x00")) == 0 && bits(v.f) == 0x7ff0000000000000);
	CHECK(dec(&v, B("\xfb\xff\xf0\x00\x00\x00\x00\x00\x00")) == 0 &&
	      bits(v.f) == 0xfff0000000000000);
	CHECK(dec(&v, B("\xf9\x7e\x00")) == 0 && v.type == CBOR_FLOAT && v.f != v.f);
	CHECK(dec(&v, B("\xfa\x7f\xc0\x00\x00")) == 0 && v.f != v.f);
	CHECK(dec(&v, B("\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00")) == 0 && v.f != v.f);

	CHECK(dec(&v, B("\xf4")) == 0 && v.type == CBOR_BOOL && v.u == 0);
	CHECK(dec(&v, B("\xf5")) == 0 && v.type == CBOR_BOOL && v.u == 1);
	CHECK(dec(&v, B("\xf6")) == 0 && v.type == CBOR_NULL);
	CHECK(dec(&v, B("\xf7")) == 0 && v.type == CBOR_NULL);

	CHECK(is_text(B("\x40"), CBOR_BYTES, "", 0));
	CHECK(is_text(B("\x44\x01\x02\x03\x04"), CBOR_BYTES, "\x01\x02\x03\x04", 4));
	CHECK(is_text(B("\x60"), CBOR_TEXT, "", 0));
	CHECK(is_text(B("\x61\x61"), CBOR_TEXT, "a", 1));
	CHECK(is_text(B("\x64\x49\x45\x54\x46"), CBOR_TEXT, "IETF", 4));
	CHECK(is_text(B("\x62\xc3\xbc"), CBOR_TEXT, "\xc3\xbc", 2));

	/* Tags are stripped: 1(1363896240) is the integer, 0("...") the text. */
	CHECK(is_uint(B("\xc1\x1a\x51\x4b\x67\xb0"), 1363896240));
	CHECK(is_text(B("\xc0\x61\x61"), CBOR_TEXT, "a", 1));
	CHECK(is_uint(B("\xdb\xff\xff\xff\xff\xff\xff\xff\xff\xc1\x07"), 7));

	CHECK(dec(&v, B("\x80")) == 0 && v.type == CBOR_ARRAY && v.len == 0);
	cbor_iter_init(&it, &v);
	CHECK(cbor_iter_next(&it, &w) == 0);
	CHECK(dec(&v, B("\x83\x01\x02\x03")) == 0 && v.type == CBOR_ARRAY && v.len == 3);
	cbor_iter_init(&it, &v);
	for (n = 0; cbor_iter_next(&it, &w); n++)
		CHECK(w.type == CBOR_UINT && w.u == n + 1);
	CHECK(n == 3 && it.p == v.end);

	/* [1, [2, 3], [4, 5]]: walk it down. */
	CHECK(dec(&v, B("\x83\x01\x82\x02\x03\x82\x04\x05")) == 0 && v.len == 3);
	cbor_iter_init(&it, &v);
	for (n = 0; cbor_iter_next(&it, &w); n++) {
		struct cbor_iter in;
		struct cbor_val x;

		if (w.type == CBOR_UINT) {
			sum += w.u;
			continue;
		}
		CHECK(w.type == CBOR_ARRAY && w.len == 2);
		cbor_iter_init(&in, &w);
		while (cbor_iter_next(&in, &x))
			sum += x.u;
		CHECK(in.p == w.end);
	}
	CHECK(n == 3 && sum == 15);

	CHECK(dec(&v, B(ARRAY25)) == 0 && v.type == CBOR_ARRAY && v.len == 25);
	cbor_iter_init(&it, &v);
	for (n = 0; cbor_iter_next(&it, &w); n++)
		CHECK(w.type == CBOR_UINT && w.u == n + 1);
	CHECK(n == 25);

	CHECK(dec(&v, B("\xa0")) == 0 && v.type == CBOR_MAP && v.len == 0);
	CHECK(dec(&v, B("\xa2\x01\x02\x03\x04")) == 0 && v.type == CBOR_MAP &&
	      v.len == 2);
	cbor_iter_init(&it, &v);
	for (n = 0; cbor_iter_next(&it, &w); n++)
		CHECK(w.type == CBOR_UINT && w.u == n + 1);
	CHECK(n == 4);
	CHECK(dec(&v, B("\xa2\x61\x61\x01\x61\x62\x82\x02\x03")) == 0 && v.len == 2);
	CHECK(cbor_map_get(&v, "a", &w) == 0 && w.type == CBOR_UINT && w.u == 1);
	CHECK(cbor_map_get(&v, "b", &w) == 0 && w.type == CBOR_ARRAY && w.len == 2);
	CHECK(w.end == v.end);
	CHECK(dec(&v, B("\x82\x61\x61\xa1\x61\x62\x61\x63")) == 0 && v.len == 2);

	/* Heads longer than they need be are read all the same. */
	CHECK(is_uint(B("\x18\x00"), 0));
	CHECK(is_uint(B("\x1b\x00\x00\x00\x00\x00\x00\x00\x01"), 1));
	CHECK(is_int(B("\x39\x00\x00"), -1));
	CHECK(is_text(B("\x78\x01\x61"), CBOR_TEXT, "a", 1));
	CHECK(dec(&v, B("\x9a\x00\x00\x00\x01\x00")) == 0 && v.len == 1);

	/* Every one of them, cut anywhere, is short; a byte more is too many. */
	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		char buf[64];

		CHECK(dec(&v, valid[i].cbor, valid[i].len) == 0 &&
		      v.end == (const uint8_t *)valid[i].cbor + valid[i].len);
		for (n = 0; n < valid[i].len; n++)
			CHECK(dec(&v, valid[i].cbor, n) == -EPROTO);
		memcpy(buf, valid[i].cbor, valid[i].len);
		buf[valid[i].len] = 0;
		CHECK(dec(&v, buf, valid[i].len + 1) == -EPROTO);
	}
	CHECK(dec(&v, NULL, 0) == -EPROTO);
}

static void check_refused(void)
{
	uint8_t deep[CBOR_DEPTH_MAX + 2];
	struct cbor_val v;
	char buf[2];
	size_t i;

	for (i = 0; i < sizeof(indefinite) / sizeof(indefinite[0]); i++)
		CHECK(dec(&v, indefinite[i].cbor, indefinite[i].len) == -EPROTO);

	/* Additional info 28-31, for every major type; what follows does not
	 * matter. */
	for (i = 0; i < 8 * 4; i++) {
		buf[0] = (char)((i / 4) << 5 | (28 + i % 4));
		buf[1] = 0;
		CHECK(dec(&v, buf, 1) == -EPROTO);
		CHECK(dec(&v, buf, 2) == -EPROTO);
	}

	/* Simple values: 20-23 only. */
	CHECK(dec(&v, B("\xf8\x20")) == -EPROTO);
	CHECK(dec(&v, B("\xf8\x14")) == -EPROTO);
	CHECK(dec(&v, B("\xf8\xff")) == -EPROTO);
	CHECK(dec(&v, B("\xe0")) == -EPROTO);
	CHECK(dec(&v, B("\xf3")) == -EPROTO);

	/* Nesting: CBOR_DEPTH_MAX levels, arrays and tags alike, but not one
	 * more; a scalar at the bottom is no level. */
	memset(deep, 0x81, sizeof(deep));
	deep[CBOR_DEPTH_MAX - 1] = 0x80;
	CHECK(dec(&v, (char *)deep, CBOR_DEPTH_MAX) == 0 && v.len == 1);
	deep[CBOR_DEPTH_MAX - 1] = 0x81;
	deep[CBOR_DEPTH_MAX] = 0x80;
	CHECK(dec(&v, (char *)deep, CBOR_DEPTH_MAX + 1) == -EPROTO);
	deep[CBOR_DEPTH_MAX] = 0x00;
	CHECK(dec(&v, (char *)deep, CBOR_DEPTH_MAX + 1) == 0);
	memset(deep, 0xc6, sizeof(deep)); /* tag 6 */
	deep[CBOR_DEPTH_MAX] = 0x01;
	CHECK(dec(&v, (char *)deep, CBOR_DEPTH_MAX + 1) == 0 && v.type == CBOR_UINT);
	deep[CBOR_DEPTH_MAX] = 0xc6;
	deep[CBOR_DEPTH_MAX + 1] = 0x01;
	CHECK(dec(&v, (char *)deep, CBOR_DEPTH_MAX + 2) == -EPROTO);
	deep[0] = 0x81; /* an array, then tags */
	CHECK(dec(&v, (char *)deep, CBOR_DEPTH_MAX + 2) == -EPROTO);

	/* Counts and lengths past the bytes there are fail at once. */
	CHECK(dec(&v, B("\x9a\xff\xff\xff\xff")) == -EPROTO);
	CHECK(dec(&v, B("\x9b\x00\x00\x00\x01\x00\x00\x00\x00")) == -EPROTO);
	CHECK(dec(&v, B("\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x00")) == -EPROTO);
	CHECK(dec(&v, B("\xbb\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00")) == -EPROTO);
	CHECK(dec(&v, B("\xa2\x01\x02\x03")) == -EPROTO);
	CHECK(dec(&v, B("\x5b\xff\xff\xff\xff\xff\xff\xff\xff")) == -EPROTO);
	CHECK(dec(&v, B("\x5b\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00")) == -EPROTO);
	CHECK(dec(&v, B("\x7b\x80\x00\x00\x00\x00\x00\x00\x00\x61")) == -EPROTO);
	CHECK(dec(&v, B("\x7a\xff\xff\xff\xf0\x61")) == -EPROTO);
	CHECK(dec(&v, B("\x44\x01\x02\x03")) == -EPROTO);
	CHECK(dec(&v, B("\x44\x01\x02\x03\x04\x05")) == -EPROTO);
	/* Two items are not one. */
	CHECK(dec(&v, B("\x01\x02")) == -EPROTO);
}

static void check_writer(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 20);
	struct strbuf small = STRBUF_INIT(4);
	char text[300];
	struct cbor_val v, w;
	struct cbor_iter it;
	int64_t i;

	CHECK(!cbor_put_uint(&sb, 0) && wrote(&sb, B("\x00")));
	CHECK(!cbor_put_uint(&sb, 23) && wrote(&sb, B("\x17")));
	CHECK(!cbor_put_uint(&sb, 24) && wrote(&sb, B("\x18\x18")));
	CHECK(!cbor_put_uint(&sb, 100) && wrote(&sb, B("\x18\x64")));
	CHECK(!cbor_put_uint(&sb, 255) && wrote(&sb, B("\x18\xff")));
	CHECK(!cbor_put_uint(&sb, 256) && wrote(&sb, B("\x19\x01\x00")));
	CHECK(!cbor_put_uint(&sb, 1000) && wrote(&sb, B("\x19\x03\xe8")));
	CHECK(!cbor_put_uint(&sb, 65535) && wrote(&sb, B("\x19\xff\xff")));
	CHECK(!cbor_put_uint(&sb, 65536) && wrote(&sb, B("\x1a\x00\x01\x00\x00")));
	CHECK(!cbor_put_uint(&sb, 1000000) && wrote(&sb, B("\x1a\x00\x0f\x42\x40")));
	CHECK(!cbor_put_uint(&sb, 0xffffffff) && wrote(&sb, B("\x1a\xff\xff\xff\xff")));
	CHECK(!cbor_put_uint(&sb, 0x100000000) &&
	      wrote(&sb, B("\x1b\x00\x00\x00\x01\x00\x00\x00\x00")));
	CHECK(!cbor_put_uint(&sb, 1000000000000) &&
	      wrote(&sb, B("\x1b\x00\x00\x00\xe8\xd4\xa5\x10\x00")));
	CHECK(!cbor_put_uint(&sb, UINT64_MAX) &&
	      wrote(&sb, B("\x1b\xff\xff\xff\xff\xff\xff\xff\xff")));
	CHECK(!cbor_put_int(&sb, 0) && wrote(&sb, B("\x00")));
	CHECK(!cbor_put_int(&sb, 25) && wrote(&sb, B("\x18\x19")));
	CHECK(!cbor_put_int(&sb, -1) && wrote(&sb, B("\x20")));
	CHECK(!cbor_put_int(&sb, -10) && wrote(&sb, B("\x29")));
	CHECK(!cbor_put_int(&sb, -24) && wrote(&sb, B("\x37")));
	CHECK(!cbor_put_int(&sb, -25) && wrote(&sb, B("\x38\x18")));
	CHECK(!cbor_put_int(&sb, -100) && wrote(&sb, B("\x38\x63")));
	CHECK(!cbor_put_int(&sb, -1000) && wrote(&sb, B("\x39\x03\xe7")));
	CHECK(!cbor_put_int(&sb, INT64_MAX) &&
	      wrote(&sb, B("\x1b\x7f\xff\xff\xff\xff\xff\xff\xff")));
	CHECK(!cbor_put_int(&sb, INT64_MIN) &&
	      wrote(&sb, B("\x3b\x7f\xff\xff\xff\xff\xff\xff\xff")));
	CHECK(!cbor_put_bool(&sb, 0) && wrote(&sb, B("\xf4")));
	CHECK(!cbor_put_bool(&sb, 7) && wrote(&sb, B("\xf5")));
	CHECK(!cbor_put_null(&sb) && wrote(&sb, B("\xf6")));
	CHECK(!cbor_put_bytes(&sb, NULL, 0) && wrote(&sb, B("\x40")));
	CHECK(!cbor_put_bytes(&sb, "\x01\x02\x03\x04", 4) &&
	      wrote(&sb, B("\x44\x01\x02\x03\x04")));
	CHECK(!cbor_put_text(&sb, "") && wrote(&sb, B("\x60")));
	CHECK(!cbor_put_text(&sb, "IETF") && wrote(&sb, B("\x64\x49\x45\x54\x46")));
	CHECK(!cbor_put_text(&sb, "\xc3\xbc") && wrote(&sb, B("\x62\xc3\xbc")));
	CHECK(!cbor_put_textn(&sb, "a\0b", 3) && wrote(&sb, B("\x63\x61\x00\x62")));
	CHECK(!cbor_put_array(&sb, 0) && wrote(&sb, B("\x80")));
	CHECK(!cbor_put_array(&sb, 25) && wrote(&sb, B("\x98\x19")));
	CHECK(!cbor_put_map(&sb, 0) && wrote(&sb, B("\xa0")));
	CHECK(!cbor_put_map(&sb, 2) && wrote(&sb, B("\xa2")));

	/* [1, [2, 3], [4, 5]] and {"a": 1, "b": [2, 3]}, built a call at a time. */
	CHECK(!cbor_put_array(&sb, 3) && !cbor_put_uint(&sb, 1) &&
	      !cbor_put_array(&sb, 2) && !cbor_put_uint(&sb, 2) &&
	      !cbor_put_uint(&sb, 3) && !cbor_put_array(&sb, 2) &&
	      !cbor_put_int(&sb, 4) && !cbor_put_int(&sb, 5));
	CHECK(wrote(&sb, B("\x83\x01\x82\x02\x03\x82\x04\x05")));
	CHECK(!cbor_put_map(&sb, 2) && !cbor_put_text(&sb, "a") &&
	      !cbor_put_uint(&sb, 1) && !cbor_put_text(&sb, "b") &&
	      !cbor_put_array(&sb, 2) && !cbor_put_uint(&sb, 2) &&
	      !cbor_put_uint(&sb, 3));
	CHECK(wrote(&sb, B("\xa2\x61\x61\x01\x61\x62\x82\x02\x03")));

	/* A long text, a message with every kind of item, read back. */
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	CHECK(!cbor_put_map(&sb, 7) && !cbor_put_text(&sb, "v") &&
	      !cbor_put_uint(&sb, 7) && !cbor_put_text(&sb, "t") &&
	      !cbor_put_text(&sb, "core.fs.response") && !cbor_put_text(&sb, "p") &&
	      !cbor_put_bytes(&sb, "\x00\xff", 2) && !cbor_put_text(&sb, "n") &&
	      !cbor_put_int(&sb, INT64_MIN) && !cbor_put_text(&sb, "ok") &&
	      !cbor_put_bool(&sb, 1) && !cbor_put_text(&sb, "x") && !cbor_put_null(&sb) &&
	      !cbor_put_text(&sb, "long") && !cbor_put_text(&sb, text));
	CHECK(dec(&v, sb.buf, sb.len) == 0 && v.type == CBOR_MAP && v.len == 7);
	CHECK(cbor_map_get(&v, "v", &w) == 0 && cbor_int(&w, &i) == 0 && i == 7);
	CHECK(cbor_map_get(&v, "t", &w) == 0 && cbor_text_is(&w, "core.fs.response"));
	CHECK(cbor_map_get(&v, "p", &w) == 0 && w.type == CBOR_BYTES && w.len == 2 &&
	      w.data[0] == 0 && w.data[1] == 0xff);
	CHECK(cbor_map_get(&v, "n", &w) == 0 && cbor_int(&w, &i) == 0 && i == INT64_MIN);
	CHECK(cbor_map_get(&v, "ok", &w) == 0 && w.type == CBOR_BOOL && w.u == 1);
	CHECK(cbor_map_get(&v, "x", &w) == 0 && w.type == CBOR_NULL);
	CHECK(cbor_map_get(&v, "long", &w) == 0 && cbor_text_is(&w, text));
	cbor_iter_init(&it, &v);
	for (i = 0; cbor_iter_next(&it, &w); i++)
		;
	CHECK(i == 14 && it.p == v.end);
	strbuf_release(&sb);

	/* Past the strbuf's maximum: its error, and nothing appended. */
	CHECK(cbor_put_text(&small, "ab") == 0 && small.len == 3);
	CHECK(cbor_put_text(&small, "ab") == -E2BIG && small.len == 3);
	CHECK(cbor_put_uint(&small, 1000) == -E2BIG && small.len == 3);
	CHECK(cbor_put_null(&small) == 0 && small.len == 4);
	strbuf_release(&small);
}

static void check_access(void)
{
	/* {1: "x", h'6b': 6, [1]: 2, "k": 5, "k": 9}: only text keys match,
	 * the first of two. */
	static const char keys[] = "\xa5\x01\x61\x78\x41\x6b\x06\x81\x01\x02\x61\x6b"
				   "\x05\x61\x6b\x09";
	struct cbor_val v, w;
	char buf[8], *s;
	int64_t i;

	CHECK(dec(&v, B(keys)) == 0);
	CHECK(cbor_map_get(&v, "k", &w) == 0 && w.type == CBOR_UINT && w.u == 5);
	CHECK(cbor_map_get(&v, "x", &w) == -ENOENT);
	CHECK(cbor_map_get(&v, "", &w) == -ENOENT);
	CHECK(dec(&v, B("\xa1\x60\x01")) == 0 && cbor_map_get(&v, "", &w) == 0 &&
	      w.u == 1);
	CHECK(cbor_map_get(&v, "kk", &w) == -ENOENT);
	CHECK(dec(&v, B("\x82\x61\x6b\x05")) == 0 &&
	      cbor_map_get(&v, "k", &w) == -EPROTO);
	CHECK(dec(&v, B("\x61\x6b")) == 0 && cbor_map_get(&v, "k", &w) == -EPROTO);
	CHECK(dec(&v, B("\xa0")) == 0 && cbor_map_get(&v, "k", &w) == -ENOENT);
	/* A tagged map is a map, a tagged key a key. */
	CHECK(dec(&v, B("\xd8\x20\xa1\xc2\x61\x6b\x05")) == 0 &&
	      cbor_map_get(&v, "k", &w) == 0 && w.u == 5);

	CHECK(dec(&v, B("\x61\x6b")) == 0 && cbor_text_is(&v, "k") &&
	      !cbor_text_is(&v, "") && !cbor_text_is(&v, "kk"));
	CHECK(dec(&v, B("\x41\x6b")) == 0 && !cbor_text_is(&v, "k"));

	/* Integers: what fits an int64_t. */
	CHECK(is_int(B("\x1b\x7f\xff\xff\xff\xff\xff\xff\xff"), INT64_MAX));
	CHECK(is_int(B("\x3b\x7f\xff\xff\xff\xff\xff\xff\xff"), INT64_MIN));
	CHECK(dec(&v, B("\x1b\x80\x00\x00\x00\x00\x00\x00\x00")) == 0 &&
	      cbor_int(&v, &i) == -EPROTO);
	CHECK(dec(&v, B("\x3b\x80\x00\x00\x00\x00\x00\x00\x00")) == 0 &&
	      cbor_int(&v, &i) == -EPROTO);
	CHECK(dec(&v, B("\xf9\x3c\x00")) == 0 && cbor_int(&v, &i) == -EPROTO);
	CHECK(dec(&v, B("\x61\x31")) == 0 && cbor_int(&v, &i) == -EPROTO);

	/* Text as a C string: an exact fit, a byte short, a NUL inside. */
	CHECK(dec(&v, B("\x67\x61\x62\x63\x64\x65\x66\x67")) == 0);
	CHECK(cbor_text_copy(&v, buf, sizeof(buf)) == 0 && !strcmp(buf, "abcdefg"));
	CHECK(cbor_text_copy(&v, buf, sizeof(buf) - 1) == -ENAMETOOLONG);
	CHECK(cbor_text_copy(&v, buf, 0) == -ENAMETOOLONG);
	CHECK(cbor_text_dup(&v, &s) == 0 && !strcmp(s, "abcdefg"));
	free(s);
	CHECK(dec(&v, B("\x60")) == 0 && cbor_text_copy(&v, buf, 1) == 0 && !buf[0]);
	CHECK(cbor_text_copy(&v, buf, 0) == -ENAMETOOLONG);
	CHECK(cbor_text_dup(&v, &s) == 0 && !strcmp(s, ""));
	free(s);
	CHECK(dec(&v, B("\x63\x61\x00\x62")) == 0);
	CHECK(cbor_text_copy(&v, buf, sizeof(buf)) == -EPROTO);
	CHECK(cbor_text_dup(&v, &s) == -EPROTO);
	CHECK(dec(&v, B("\x61\x00")) == 0 &&
	      cbor_text_copy(&v, buf, sizeof(buf)) == -EPROTO);
	CHECK(dec(&v, B("\x43\x61\x62\x63")) == 0);
	CHECK(cbor_text_copy(&v, buf, sizeof(buf)) == -EPROTO);
	CHECK(cbor_text_dup(&v, &s) == -EPROTO);
	CHECK(dec(&v, B("\x01")) == 0 && cbor_text_copy(&v, buf, sizeof(buf)) == -EPROTO);
}

void test_cbor(void)
{
	check_examples();
	check_refused();
	check_writer();
	check_access();
}

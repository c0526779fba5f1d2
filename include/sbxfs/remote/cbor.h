/* SPDX-License-Identifier: MIT */
/*
 * CBOR (RFC 8949), the subset a sandbox agent speaks: unsigned and
 * negative integers, byte and text strings, arrays, maps, booleans, null
 * and undefined, floats (read, never written) and tags (skipped).  Only
 * definite lengths: an indefinite-length item is refused, as is anything
 * nested deeper than CBOR_DEPTH_MAX.
 *
 * Writing appends to a strbuf.  Reading validates once, then navigates:
 * cbor_decode() checks that a buffer holds exactly one well-formed item,
 * and every call after it walks that item without failing on its form.
 * Nothing is copied: a struct cbor_val points into the caller's buffer,
 * which must outlive it.  Text strings are not NUL-terminated and may
 * hold any byte (their UTF-8 is not checked): a caller that keeps one
 * as a C string checks it with cbor_text_dup() or cbor_text_copy().
 */
#ifndef SBXFS_REMOTE_CBOR_H
#define SBXFS_REMOTE_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "sbxfs/strbuf.h"

/* How deep arrays and maps (and tags) may nest in what is read. */
#define CBOR_DEPTH_MAX 24

/* ---- writing: each call appends one item (or a container's head, its
 * n items or pairs then follow); 0, or -E2BIG (sb's maximum) or
 * -ENOMEM, and nothing is appended. */

int cbor_put_uint(struct strbuf *sb, uint64_t v);
int cbor_put_int(struct strbuf *sb, int64_t v);
int cbor_put_bytes(struct strbuf *sb, const void *data, size_t len);
int cbor_put_text(struct strbuf *sb, const char *s);
int cbor_put_textn(struct strbuf *sb, const char *s, size_t len);
int cbor_put_bool(struct strbuf *sb, int v);
int cbor_put_null(struct strbuf *sb);
int cbor_put_array(struct strbuf *sb, size_t n);
int cbor_put_map(struct strbuf *sb, size_t npairs);

/* ---- reading */

enum cbor_type {
	CBOR_UINT = 1,
	CBOR_NEGINT, /* the value is -1 - u */
	CBOR_BYTES,
	CBOR_TEXT,
	CBOR_ARRAY,
	CBOR_MAP,
	CBOR_BOOL,
	CBOR_NULL, /* null and undefined */
	CBOR_FLOAT,
};

/* One item, tags stripped. */
struct cbor_val {
	enum cbor_type type;
	/* BYTES, TEXT: the string; ARRAY, MAP: the first item's head. */
	const uint8_t *data;
	/* BYTES, TEXT: the string's length; ARRAY: items; MAP: pairs. */
	size_t len;
	/* UINT, NEGINT: the argument; BOOL: 0 or 1. */
	uint64_t u;
	/* FLOAT: the value. */
	double f;
	/* One past the item's last byte. */
	const uint8_t *end;
};

/*
 * Check that buf holds exactly one well-formed item (definite lengths,
 * nesting within CBOR_DEPTH_MAX, no bytes after it) and set *out to it.
 * 0, or -EPROTO.
 */
int cbor_decode(struct cbor_val *out, const void *buf, size_t len);

/* Walking an array's items, or a map's keys and values in turn (key,
 * value, key, value ...).  Only on a val from cbor_decode() or below. */
struct cbor_iter {
	const uint8_t *p;
	size_t left; /* items still to give */
};
void cbor_iter_init(struct cbor_iter *it, const struct cbor_val *container);
/* 1 and *out set to the next item; 0 at the end. */
int cbor_iter_next(struct cbor_iter *it, struct cbor_val *out);

/* The value of the text key `key` in `map` (the first, if several):
 * 0; -ENOENT if there is none; -EPROTO if map is not a map. */
int cbor_map_get(const struct cbor_val *map, const char *key, struct cbor_val *out);

/* Is v the text s, byte for byte? */
int cbor_text_is(const struct cbor_val *v, const char *s);

/*
 * Values of a given type, -EPROTO when v is another type or out of range.
 * cbor_int: UINT or NEGINT that fits an int64_t.
 * cbor_text_copy: TEXT without NUL bytes, NUL-terminated into buf (size
 *   bytes); -ENAMETOOLONG if it does not fit.
 * cbor_text_dup: the same into a new string (free()); -ENOMEM.
 */
int cbor_int(const struct cbor_val *v, int64_t *out);
int cbor_text_copy(const struct cbor_val *v, char *buf, size_t size);
int cbor_text_dup(const struct cbor_val *v, char **out);

#endif

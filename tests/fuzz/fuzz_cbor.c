/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: CBOR from a sandbox agent.  What cbor_decode()
 * accepts is walked all the way down with the iterator, which must give
 * each container's count of items and end where the container ends;
 * maps are searched, texts copied and duplicated, integers read, each
 * checked against the bytes.  The walk writes what it sees back with the
 * writers (null for what they cannot write: floats, undefined, negative
 * integers past int64_t), and that must decode, and walk and write to
 * the very same bytes again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int ok)
{
	if (!ok)
		abort();
}

static void check_text(const struct cbor_val *v)
{
	int nul = v->len && memchr(v->data, '\0', v->len) != NULL;
	char small[8], *s;
	int rc;

	rc = cbor_text_copy(v, small, sizeof(small));
	if (rc == 0)
		must(!nul && strlen(small) == v->len && !memcmp(small, v->data, v->len));
	else
		must(rc == (nul ? -EPROTO : -ENAMETOOLONG) &&
		     (nul || v->len >= sizeof(small)));
	rc = cbor_text_dup(v, &s);
	if (rc == 0) {
		must(!nul && strlen(s) == v->len && !memcmp(s, v->data, v->len));
		free(s);
	} else {
		must(rc == -ENOMEM || (nul && rc == -EPROTO));
	}
}

static void check_map(const struct cbor_val *map)
{
	struct cbor_iter it;
	struct cbor_val k, v, got;
	char key[64];

	must(cbor_map_get(map, "v", &got) != -EPROTO);
	must(cbor_map_get(map, "t", &got) != -EPROTO);
	/* The first text key without NUL that fits: found, and its value. */
	cbor_iter_init(&it, map);
	while (cbor_iter_next(&it, &k) && cbor_iter_next(&it, &v)) {
		if (cbor_text_copy(&k, key, sizeof(key)) == 0) {
			must(cbor_map_get(map, key, &got) == 0 && got.end <= map->end);
			if (got.end != v.end)
				must(got.end < k.data); /* an earlier, equal key */
			break;
		}
	}
}

/* Check v and write it to out. */
static int walk(const struct cbor_val *v, struct strbuf *out)
{
	struct cbor_iter it;
	struct cbor_val item;
	size_t n = 0;
	int64_t i;
	int rc;

	switch (v->type) {
	case CBOR_UINT:
		must(cbor_int(v, &i) == (v->u > INT64_MAX ? -EPROTO : 0));
		return cbor_put_uint(out, v->u);
	case CBOR_NEGINT:
		if (cbor_int(v, &i))
			return cbor_put_null(out);
		must(i < 0 && (uint64_t)(-1 - i) == v->u);
		return cbor_put_int(out, i);
	case CBOR_BYTES:
		must(v->data + v->len == v->end);
		must(cbor_text_copy(v, NULL, 0) == -EPROTO);
		return cbor_put_bytes(out, v->data, v->len);
	case CBOR_TEXT:
		must(v->data + v->len == v->end);
		check_text(v);
		return cbor_put_textn(out, (const char *)v->data, v->len);
	case CBOR_ARRAY:
	case CBOR_MAP:
		must(cbor_text_copy(v, NULL, 0) == -EPROTO);
		if (v->type == CBOR_MAP)
			check_map(v);
		else
			must(cbor_map_get(v, "v", &item) == -EPROTO);
		rc = v->type == CBOR_MAP ? cbor_put_map(out, v->len)
					 : cbor_put_array(out, v->len);
		cbor_iter_init(&it, v);
		while (!rc && cbor_iter_next(&it, &item)) {
			must(item.end <= v->end);
			rc = walk(&item, out);
			n++;
		}
		if (!rc)
			must(n == (v->type == CBOR_MAP ? 2 * v->len : v->len) &&
			     it.p == v->end);
		return rc;
	case CBOR_BOOL:
		must(v->u <= 1);
		return cbor_put_bool(out, (int)v->u);
	case CBOR_NULL:
	case CBOR_FLOAT:
		must(cbor_int(v, &i) == -EPROTO);
		return cbor_put_null(out);
	}
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* What the writers give is never longer than what was read. */
	struct strbuf once = STRBUF_INIT(size), twice = STRBUF_INIT(size);
	struct cbor_val v, w;
	int rc;

	if (cbor_decode(&v, data, size))
		return 0;
	must(v.end == data + size);
	rc = walk(&v, &once);
	if (rc == 0) {
		must(cbor_decode(&w, once.buf, once.len) == 0);
		rc = walk(&w, &twice);
		if (rc == 0)
			must(twice.len == once.len &&
			     !memcmp(twice.buf, once.buf, once.len));
	}
	must(rc == 0 || rc == -ENOMEM);
	strbuf_release(&once);
	strbuf_release(&twice);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what a hostile microsandbox agent or msb sends the
 * provider.  The first byte picks the parser: a frame's body (the CBOR
 * envelope, its payload, and the entries, errors and codes read from
 * it), an fs error text, msb's JSON (ls and inspect), or the cloud
 * API's (a page of sandboxes, one sandbox).  Nothing may be
 * read out of bounds, and what parses must hold together: a parsed entry
 * has a file type, an errno is in range, a listed name is valid, a
 * cloud id and cursor are fit for a URL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/providers/msb.h"
#include "sbxfs/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int each_box(void *ctx, const struct msb_box *b)
{
	(void)ctx;
	if (!sbx_name_valid(b->name))
		abort();
	return 0;
}

/* Every map and array below v, looked at as the provider would. */
static void walk(const struct cbor_val *v, int depth)
{
	struct cbor_iter it;
	struct cbor_val item;
	struct msb_entry e;
	char text[64];
	int64_t n;

	if (depth > CBOR_DEPTH_MAX)
		abort();
	if (v->type == CBOR_MAP && !msb_entry_parse(&e, v) && !(e.st.st_mode & S_IFMT))
		abort();
	if (v->type == CBOR_TEXT)
		cbor_text_copy(v, text, sizeof(text));
	if (v->type == CBOR_UINT || v->type == CBOR_NEGINT)
		cbor_int(v, &n);
	if (v->type != CBOR_MAP && v->type != CBOR_ARRAY)
		return;
	cbor_iter_init(&it, v);
	while (cbor_iter_next(&it, &item))
		walk(&item, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msb_frame f;
	struct msb_box b;
	struct msb_runtime rt;
	int e;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (!msb_frame_parse(&f, data + 1, size - 1)) {
			if (f.type.type != CBOR_TEXT || f.raw.type != CBOR_BYTES)
				abort();
			walk(&f.payload, 0);
		}
		break;
	case 1:
		e = msb_os_errno((const char *)data + 1, size - 1);
		if (e <= 0 || e >= 4096)
			abort();
		break;
	case 2: {
		char cursor[256];

		msb_parse_cloud_page((const char *)data + 1, size - 1, cursor,
				     sizeof(cursor), each_box, NULL);
		if (strlen(cursor) >= sizeof(cursor) || strpbrk(cursor, "&# "))
			abort();
		if (!msb_parse_cloud_box(&b, &rt, (const char *)data + 1, size - 1)) {
			if (!sbx_name_valid(b.name) || !b.id[0] ||
			    strspn(b.id, "0123456789abcdefABCDEF-") != strlen(b.id))
				abort();
			msb_runtime_release(&rt);
		}
		break;
	}
	default:
		msb_parse_ls((const char *)data + 1, size - 1, each_box, NULL);
		if (!msb_parse_inspect(&b, &rt, (const char *)data + 1, size - 1)) {
			if (!sbx_name_valid(b.name))
				abort();
			msb_runtime_release(&rt);
		}
		break;
	}
	return 0;
}

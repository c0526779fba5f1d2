/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what a hostile Vtrix server sends about files: a
 * base64 listing, decoded and split into find(1) records as readdir does.
 * Nothing may be read or written out of bounds, and every record that
 * parses must be a file type with sane fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/providers/vtrix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *raw = malloc(size / 4 * 3 + 4);
	ssize_t n;

	if (!raw)
		return 0;
	n = vx_b64_decode(raw, (const char *)data, size);
	if (n >= 0) {
		raw[n] = '\0';
		for (size_t off = 0; off < (size_t)n;) {
			char *rec = (char *)raw + off;
			size_t len = strlen(rec);
			const char *name;
			struct stat st;

			if (off + len >= (size_t)n)
				break;
			off += len + 1;
			if (vx_parse_record(rec, &st, &name) == 0 &&
			    (!(st.st_mode & S_IFMT) || st.st_size < 0 || !name))
				abort();
		}
	}
	free(raw);
	return 0;
}

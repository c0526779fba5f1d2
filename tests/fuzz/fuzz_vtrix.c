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

#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/find.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *ctx, const char *name, const struct stat *st)
{
	if (!(st->st_mode & S_IFMT) || st->st_size < 0 || !name || !name[0])
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *raw = malloc(B64_DECODED_MAX(size));
	ssize_t n;

	if (!raw)
		return 0;
	n = b64_decode(raw, (const char *)data, size);
	if (n >= 0)
		find_each((char *)raw, (size_t)n, check, NULL);
	free(raw);
	return 0;
}

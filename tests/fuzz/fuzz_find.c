/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: find(1) and stat(1) records from a sandbox, as
 * listings (find_each) and as the one record of a stat script
 * (find_parse_one).  Nothing may be read out of bounds; every record that
 * parses has a file type, a size and a name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
	char *buf = malloc(size + 1);
	struct stat st;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	find_each(buf, size, check, NULL);
	memcpy(buf, data, size);
	if (find_parse_one(buf, size, &st) == 0 && !(st.st_mode & S_IFMT))
		abort();
	free(buf);
	return 0;
}

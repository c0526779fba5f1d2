/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what a hostile Daytona toolbox sends about files: a
 * listing (a JSON array of FileInfo) and a single FileInfo, parsed as
 * readdir and getattr do.  The input is parsed as it is, and also cut
 * at NUL bytes into the fields of a FileInfo that a listing then carries,
 * so that the FileInfo parser sees more than JSON syntax errors, and as
 * the answer of a bulk upload.  Nothing
 * may be read or written out of bounds, and every entry that parses must
 * be a file type with sane fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/providers/daytona.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *ctx, const char *name, const struct stat *st)
{
	if (!(st->st_mode & S_IFMT) || st->st_size < 0 || !name || !name[0] ||
	    strchr(name, '/'))
		abort();
	return 0;
}

/* A listing of one FileInfo whose string fields are the input's NUL-cut
 * pieces; "size" is the first piece's length, negated if odd. */
static void fields(const char *s, size_t size)
{
	static const char *const keys[] = { "name",  "mode",	"permissions", "owner",
					    "group", "modTime", "modifiedAt" };
	cJSON *list = cJSON_CreateArray(), *fi = cJSON_CreateObject();
	char *text = NULL, *piece = malloc(size + 1);
	size_t k = 0, o = 0;

	if (!list || !fi || !piece)
		goto out;
	cJSON_AddItemToArray(list, fi);
	cJSON_AddBoolToObject(fi, "isDir", size && (s[0] & 1));
	cJSON_AddNumberToObject(fi, "size", size & 1 ? -(double)size : (double)size);
	while (o <= size && k < sizeof(keys) / sizeof(keys[0])) {
		size_t n = strnlen(s + o, size - o);

		memcpy(piece, s + o, n);
		piece[n] = '\0';
		cJSON_AddStringToObject(fi, keys[k++], piece);
		o += n + 1;
	}
	text = cJSON_PrintUnformatted(list);
	if (text)
		dt_parse_listing(text, strlen(text), check, NULL);
out:
	free(text);
	free(piece);
	cJSON_Delete(list);
	if (!list)
		cJSON_Delete(fi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stat st;
	const char *name;
	off_t bytes;
	cJSON *j;

	fields((const char *)data, size);
	dt_parse_listing((const char *)data, size, check, NULL);
	j = json_parse((const char *)data, size);
	if (j && !dt_fileinfo_stat(&st, &name, j))
		check(NULL, name, &st);
	cJSON_Delete(j);
	if (!dt_parse_uploaded((const char *)data, size, "/tmp/f", &bytes) && bytes < 0)
		abort();
	return 0;
}

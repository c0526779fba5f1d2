/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: find(1) and stat(1) records from a sandbox, as
 * listings (find_each), as the one record of a stat script
 * (find_parse_one) and as a subtree (find_tree_each).  Nothing may be
 * read out of bounds; every record that parses has a file type, a size
 * and a name; a subtree's paths are relative, of names that can be
 * shown, and its marks come once each, in order.
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

struct marks {
	int listed, whole;
};

static int check_tree(void *ctx, const char *rel, const struct stat *st, const char *link,
		      unsigned flags)
{
	struct marks *m = ctx;

	/* A target only for a symlink, never empty, shorter than PATH_MAX. */
	if (link && (!st || !S_ISLNK(st->st_mode) || !link[0] || strlen(link) >= 4096))
		abort();
	if (!rel) {
		if (st ||
		    (flags & SBX_TREE_LISTED ? m->listed++ : !m->listed || m->whole++))
			abort();
		return 0;
	}
	if (!(st->st_mode & S_IFMT) || st->st_size < 0 || m->whole || !rel[0] ||
	    rel[0] == '/' || strstr(rel, "//") || rel[strlen(rel) - 1] == '/' ||
	    (!m->listed && strchr(rel, '/')))
		abort();
	for (const char *p = rel; p; p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL)
		if (!strncmp(p, "../", 3) || !strcmp(p, "..") || !strncmp(p, "./", 2) ||
		    !strcmp(p, "."))
			abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct marks m = { 0, 0 };
	char *buf = malloc(size + 1);
	struct stat st;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	find_each(buf, size, check, NULL);
	memcpy(buf, data, size);
	if (find_parse_one(buf, size, &st) == 0 && !(st.st_mode & S_IFMT))
		abort();
	memcpy(buf, data, size);
	if (find_tree_each(buf, size, check_tree, &m) == 0 && !m.listed)
		abort();
	free(buf);
	return 0;
}

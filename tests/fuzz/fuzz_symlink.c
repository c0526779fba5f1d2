/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a symlink target chosen by a hostile sandbox.  What
 * sbx_symlink_confine() answers, followed from the link's directory, must
 * never climb above root/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Depth of the link's directory below root/: "/a/b/l" -> 2. */
static int dir_depth(const char *link)
{
	int d = 0;

	for (const char *p = link; *p; p++)
		d += *p == '/';
	return d - 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const links[] = { "/l", "/a/l", "/a/b/c/l" };
	char target[1024], out[8192];

	if (size >= sizeof(target))
		return 0;
	memcpy(target, data, size);
	target[size] = '\0';
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		int depth = dir_depth(links[i]);
		char *save = NULL;

		if (sbx_symlink_confine(out, sizeof(out), links[i], target))
			continue;
		if (out[0] == '/')
			abort(); /* absolute answers are followed on the host */
		for (char *c = strtok_r(out, "/", &save); c;
		     c = strtok_r(NULL, "/", &save)) {
			if (!strcmp(c, ".."))
				depth--;
			else if (strcmp(c, "."))
				depth++;
			if (depth < 0)
				abort(); /* climbed out of root/ */
		}
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "sbxfs/fsutil.h"
#include "sbxfs/spawn.h"

int sbx_mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int sbx_remove_tree(const char *path, int timeout_ms, char *why, size_t whysize)
{
	char *argv[] = { "rm", "-rf", "--one-file-system", (char *)path, NULL };

	return spawn_run(argv, timeout_ms, why, whysize);
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sbxfs/names.h"
#include "sbxfs/provider.h"

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool sbx_name_valid(const char *name)
{
	size_t n = 0;

	if (!name || !name_char_ok(name[0]) || name[0] == '.' || name[0] == '_' ||
	    name[0] == '-')
		return false;
	for (; name[n]; n++)
		if (n >= SBX_NAME_MAX || !name_char_ok(name[n]))
			return false;
	return true;
}

bool sbx_entry_name_valid(const char *name)
{
	size_t n;

	if (!name || !name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	n = strnlen(name, 256);
	return n <= 255 && !memchr(name, '/', n);
}

void sbx_time_iso(char *out, size_t size, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Lexically resolve `target` against directory `dir` ("/..."), clamping
 * ".." at "/"; sets *climbed if a ".." met the root. */
static int resolve_lexically(char *out, size_t size, const char *dir, const char *target,
			     int *climbed)
{
	char buf[8192];
	size_t len = 0;
	int n;

	n = target[0] == '/' ? snprintf(buf, sizeof(buf), "%s", target)
			     : snprintf(buf, sizeof(buf), "%s/%s", dir, target);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	*climbed = 0;
	out[0] = '\0';
	for (char *save = NULL, *c = strtok_r(buf, "/", &save); c;
	     c = strtok_r(NULL, "/", &save)) {
		size_t cl = strlen(c);

		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			char *slash = len ? strrchr(out, '/') : NULL;

			if (!slash)
				*climbed = 1;
			else
				len = (size_t)(slash - out);
			out[len] = '\0';
			continue;
		}
		if (len + cl + 2 > size)
			return -ENAMETOOLONG;
		out[len++] = '/';
		memcpy(out + len, c, cl + 1);
		len += cl;
	}
	if (!len) {
		if (size < 2)
			return -ENAMETOOLONG;
		strcpy(out, "/");
	}
	return 0;
}

int sbx_symlink_confine(char *out, size_t size, const char *linkpath, const char *target)
{
	char dir[SBX_PATH_MAX], resolved[SBX_PATH_MAX];
	const char *slash = strrchr(linkpath, '/');
	size_t dl = slash ? (size_t)(slash - linkpath) : 0, len = 0;
	int climbed, depth = 0, rc;

	if (dl >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, linkpath, dl);
	dir[dl] = '\0';
	if (!dl)
		strcpy(dir, "/");
	rc = resolve_lexically(resolved, sizeof(resolved), dir, target, &climbed);
	if (rc)
		return rc;
	if (target[0] != '/' && target[0] && !climbed) {
		if (strlen(target) >= size)
			return -ENAMETOOLONG;
		strcpy(out, target);
		return 0;
	}
	for (const char *p = dir; *p; p++)
		depth += *p == '/' && p[1];
	for (int i = 0; i < depth; i++) {
		if (len + 4 > size)
			return -ENAMETOOLONG;
		memcpy(out + len, i ? "/.." : "..", i ? 3 : 2);
		len += i ? 3 : 2;
	}
	if (strcmp(resolved, "/")) {
		size_t rl = strlen(resolved + (depth ? 0 : 1));

		if (len + rl + 1 > size)
			return -ENAMETOOLONG;
		memcpy(out + len, resolved + (depth ? 0 : 1), rl);
		len += rl;
	} else if (!depth) {
		out[len++] = '.';
	}
	out[len] = '\0';
	return 0;
}

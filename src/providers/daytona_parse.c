/* SPDX-License-Identifier: MIT */
/*
 * Daytona: the pure parts, with no I/O, so that the unit tests and the
 * fuzzers reach them: the toolbox's FileInfo and file listings, and
 * the sandbox states.
 */
#include "daytona.h"

const struct remote_state_word dt_states[] = {
	{ "started", REMOTE_RUNNING },
	{ "stopped", REMOTE_STOPPED },
	{ "paused", REMOTE_PAUSED },
	{ "starting", REMOTE_STARTING },
	{ "restoring", REMOTE_STARTING },
	{ "resuming", REMOTE_STARTING },
	{ "pulling_snapshot", REMOTE_CREATING },
	{ "creating", REMOTE_CREATING },
	{ "pending_build", REMOTE_CREATING },
	{ "building_snapshot", REMOTE_CREATING },
	{ "stopping", REMOTE_STOPPING },
	{ "pausing", REMOTE_STOPPING },
	{ "archiving", REMOTE_STOPPING },
	{ "archived", REMOTE_ARCHIVED },
	{ "error", REMOTE_ERROR },
	{ "build_failed", REMOTE_ERROR },
	{ "destroying", REMOTE_DELETING },
	{ "destroyed", REMOTE_GONE },
	{ NULL, REMOTE_UNKNOWN },
};

enum sbx_state dt_map_state(const char *s)
{
	return remote_sbx_state(remote_state_of(dt_states, s));
}

/* Go's FileMode.String(): type and special letters, then "rwxrwxrwx". */
static mode_t parse_mode(const char *s, int is_dir, const char *perm)
{
	mode_t m = 0, type = is_dir ? S_IFDIR : S_IFREG;
	size_t n = s ? strlen(s) : 0, i;

	if (n >= 9) {
		static const char rwx[] = "rwxrwxrwx";

		for (i = 0; i < 9; i++)
			if (s[n - 9 + i] == rwx[i])
				m |= 0400 >> i;
		for (i = 0; i < n - 9; i++) {
			switch (s[i]) {
			case 'u':
				m |= S_ISUID;
				break;
			case 'g':
				m |= S_ISGID;
				break;
			case 't':
				m |= S_ISVTX;
				break;
			case 'p':
				type = S_IFIFO;
				break;
			case 'S':
				type = S_IFSOCK;
				break;
			case 'D':
				type = strchr(s, 'c') && strchr(s, 'c') < s + n - 9
					       ? S_IFCHR
					       : S_IFBLK;
				break;
			}
		}
	} else if (perm) {
		m = (mode_t)strtoul(perm, NULL, 8) & 07777;
	}
	if (is_dir)
		type = S_IFDIR;
	return type | m;
}

static unsigned idnum(const char *s)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return 65534;
	v = strtoul(s, &end, 10);
	return (*end || v > 0xfffffffful) ? 65534 : (unsigned)v;
}

int dt_fileinfo_stat(struct stat *st, const char **name, const cJSON *fi)
{
	double size = -1;
	const cJSON *isdir = cJSON_GetObjectItemCaseSensitive(fi, "isDir");
	const char *n = json_str(fi, "name");

	memset(st, 0, sizeof(*st));
	if (!cJSON_IsObject(fi) || !json_num(fi, "size", &size) || size < 0 ||
	    size > 0x1p62)
		return -EPROTO;
	if (name) {
		if (!n || !sbx_entry_name_valid(n))
			return -EPROTO;
		*name = n;
	}
	st->st_mode = parse_mode(json_str(fi, "mode"), cJSON_IsTrue(isdir),
				 json_str(fi, "permissions"));
	st->st_size = (off_t)size;
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	st->st_uid = idnum(json_str(fi, "owner"));
	st->st_gid = idnum(json_str(fi, "group"));
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	if (rfc3339_parse(&st->st_mtim, json_str(fi, "modifiedAt")) &&
	    rfc3339_parse(&st->st_mtim, json_str(fi, "modTime")))
		st->st_mtim.tv_sec = 0;
	st->st_atim = st->st_ctim = st->st_mtim;
	return 0;
}

int dt_parse_listing(const char *body, size_t len, sbx_dirent_fn fn, void *ctx)
{
	cJSON *j = json_parse(body, len), *it;
	int skipped = 0;

	if (!cJSON_IsArray(j)) {
		cJSON_Delete(j);
		return -EPROTO;
	}
	cJSON_ArrayForEach(it, j)
	{
		struct stat st;
		const char *name;

		/* Skip what we cannot show truthfully: bad names, and names
		 * the server turned to U+FFFD because they were not UTF-8. */
		if (dt_fileinfo_stat(&st, &name, it) || strstr(name, "\xef\xbf\xbd")) {
			skipped++;
			continue;
		}
		if (fn(ctx, name, &st))
			break;
	}
	cJSON_Delete(j);
	return skipped;
}

int dt_parse_uploaded(const char *body, size_t len, const char *path, off_t *bytes)
{
	cJSON *j = json_parse(body, len), *it;
	int rc = -EPROTO;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "files"))
	{
		const char *p = json_str(it, "path");
		double n;

		if (p && !strcmp(p, path) && json_num(it, "bytes", &n) && n >= 0 &&
		    n <= 0x1p62) {
			*bytes = (off_t)n;
			rc = 0;
			break;
		}
	}
	cJSON_Delete(j);
	return rc;
}

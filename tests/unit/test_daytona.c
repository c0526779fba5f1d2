/* SPDX-License-Identifier: MIT */
/* The Daytona provider's pure parts: FileInfo and listings. */
#include <errno.h>
#include <string.h>

#include "../../src/providers/daytona.h"
#include "test.h"

static void check_fileinfo(void)
{
	struct stat st;
	const char *name = NULL;
	cJSON *j;

	j = json_parse(
		"{\"name\":\"a.txt\",\"size\":5,\"isDir\":false,"
		"\"mode\":\"-rwxr-x---\",\"owner\":\"1000\",\"group\":\"x\","
		"\"modTime\":\"2026-06-01T15:16:34Z\"}",
		strlen("{\"name\":\"a.txt\",\"size\":5,\"isDir\":false,"
		       "\"mode\":\"-rwxr-x---\",\"owner\":\"1000\",\"group\":\"x\","
		       "\"modTime\":\"2026-06-01T15:16:34Z\"}"));
	CHECK(j && dt_fileinfo_stat(&st, &name, j) == 0);
	CHECK(name && !strcmp(name, "a.txt"));
	CHECK(st.st_mode == (S_IFREG | 0750) && st.st_size == 5 && st.st_nlink == 1);
	CHECK(st.st_uid == 1000 && st.st_gid == 65534);
	CHECK(st.st_mtim.tv_sec == 1780326994 && st.st_blocks == 1);
	cJSON_Delete(j);

	/* Go's letters: directory, setuid, sticky; a short mode string falls
	 * back to the octal permissions. */
	j = json_parse(
		"{\"name\":\"d\",\"size\":0,\"isDir\":true,\"mode\":\"dutrwxrwxrwx\"}",
		58);
	CHECK(j && dt_fileinfo_stat(&st, NULL, j) == 0 &&
	      st.st_mode == (S_IFDIR | S_ISUID | S_ISVTX | 0777) && st.st_nlink == 2);
	cJSON_Delete(j);
	j = json_parse("{\"size\":1,\"permissions\":\"0640\"}", 32);
	CHECK(j && dt_fileinfo_stat(&st, NULL, j) == 0 && st.st_mode == (S_IFREG | 0640));
	cJSON_Delete(j);

	/* Lies: a negative size, no name where one is needed, a bad name. */
	j = json_parse("{\"name\":\"x\",\"size\":-1}", 23);
	CHECK(j && dt_fileinfo_stat(&st, &name, j) == -EPROTO);
	cJSON_Delete(j);
	j = json_parse("{\"size\":1}", 10);
	CHECK(j && dt_fileinfo_stat(&st, &name, j) == -EPROTO);
	cJSON_Delete(j);
	j = json_parse("{\"name\":\"a/b\",\"size\":1}", 24);
	CHECK(j && dt_fileinfo_stat(&st, &name, j) == -EPROTO);
	cJSON_Delete(j);
	CHECK(dt_fileinfo_stat(&st, NULL, NULL) == -EPROTO);
}

struct seen {
	int n;
	char names[4][16];
	int stop_at;
};

static int collect(void *ctx, const char *name, const struct stat *st)
{
	struct seen *s = ctx;

	if (s->n < 4)
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->n++;
	return s->stop_at && s->n == s->stop_at;
}

static void check_listing(void)
{
	static const char list[] =
		"[{\"name\":\"a\",\"size\":1},{\"name\":\"..\",\"size\":1},"
		"{\"name\":\"b\\ufffd\",\"size\":1},{\"size\":2},{\"name\":\"c\",\"size\":3}]";
	struct seen s = { 0 };

	CHECK(dt_parse_listing(list, strlen(list), collect, &s) == 3);
	CHECK(s.n == 2 && !strcmp(s.names[0], "a") && !strcmp(s.names[1], "c"));
	s = (struct seen){ .stop_at = 1 };
	CHECK(dt_parse_listing(list, strlen(list), collect, &s) >= 0 && s.n == 1);
	s = (struct seen){ 0 };
	CHECK(dt_parse_listing("[]", 2, collect, &s) == 0 && s.n == 0);
	CHECK(dt_parse_listing("{}", 2, collect, &s) == -EPROTO);
	CHECK(dt_parse_listing("[", 1, collect, &s) == -EPROTO);
	CHECK(dt_parse_listing(NULL, 0, collect, &s) == -EPROTO);
}

static void check_states(void)
{
	CHECK(dt_map_state("started") == SBX_STATE_RUNNING);
	CHECK(dt_map_state("paused") == SBX_STATE_STOPPED);
	CHECK(dt_map_state("archived") == SBX_STATE_ARCHIVED);
	CHECK(dt_map_state("destroyed") == SBX_STATE_DELETING);
	CHECK(dt_map_state("build_failed") == SBX_STATE_ERROR);
	CHECK(dt_map_state("Started") == SBX_STATE_UNKNOWN);
	CHECK(dt_map_state(NULL) == SBX_STATE_UNKNOWN);
	CHECK(remote_state_of(dt_states, "destroyed") == REMOTE_GONE);
	CHECK(remote_state_of(dt_states, "paused") == REMOTE_PAUSED);
}

void test_daytona(void)
{
	check_fileinfo();
	check_listing();
	check_states();
}

/* SPDX-License-Identifier: MIT */
/* Staged copies: sharing, rename of files and directories, unlink,
 * the byte budget. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbxfs/fsutil.h"
#include "sbxfs/stage.h"
#include "test.h"

static struct staged *opened(struct stage *s, const char *path, const char *data)
{
	int err = 0;
	struct staged *f = stage_open(s, "box", path, &err);

	CHECK(f != NULL);
	if (!f)
		return NULL;
	if (data) {
		CHECK(stage_reserve(f, (off_t)strlen(data)) == 0);
		CHECK(pwrite(f->fd, data, strlen(data), 0) == (ssize_t)strlen(data));
		f->dirty = 1;
	}
	return f;
}

static void test_share_and_stat(struct stage *s)
{
	struct staged *a = opened(s, "/x", "hello"), *b;
	struct stat st;

	b = opened(s, "/x", NULL);
	CHECK(a == b);
	CHECK(stage_shared(b));
	CHECK(stage_stat(s, "box", "/x", &st) == 0 && st.st_size == 5 && st.st_ino == 0);
	stage_close(b);
	CHECK(!stage_shared(a));
	a->dirty = 0;
	CHECK(stage_stat(s, "box", "/x", &st) == -ENOENT); /* clean: ask the server */
	stage_close(a);
}

static void test_rename_directory(struct stage *s)
{
	struct staged *f = opened(s, "/d/sub/f", "data"),
		      *g = opened(s, "/dx/f", "other");
	char *box, *path;

	/* Many buckets: whatever the hashes, the table stays sound. */
	for (int i = 0; i < 50; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/d/n%d", i);
		stage_close(opened(s, p, NULL));
	}
	stage_rename(s, "box", "/d", "/e");
	CHECK(stage_where(f, &box, &path) == 0 && !strcmp(path, "/e/sub/f"));
	free(box);
	free(path);
	/* A sibling that only shares a prefix stays. */
	CHECK(stage_where(g, &box, &path) == 0 && !strcmp(path, "/dx/f"));
	free(box);
	free(path);
	CHECK(stage_lookup(s, "box", "/d/sub/f") == NULL);
	{
		struct staged *h = stage_lookup(s, "box", "/e/sub/f");

		CHECK(h == f);
		if (h)
			stage_unref(h);
	}
	stage_close(f);
	stage_close(g);
}

static void test_unlink(struct stage *s)
{
	struct staged *f = opened(s, "/new", "never uploaded");
	char *box = NULL, *path = NULL;

	CHECK(stage_unlink(s, "box", "/new") == 1); /* existed only here */
	CHECK(stage_where(f, &box, &path) == -ENOENT);
	free(box);
	free(path);
	stage_close(f);
	CHECK(stage_unlink(s, "box", "/new") == 0);
}

static void test_budget(const char *dir)
{
	struct stage *s = stage_new(dir, 1000);
	struct staged *f;
	int err;

	CHECK(s != NULL);
	if (!s)
		return;
	f = stage_open(s, "box", "/big", &err);
	CHECK(stage_reserve(f, 600) == 0);
	CHECK(stage_reserve(f, 2000) == -EFBIG);
	stage_close(f);
	stage_free(s);
}

void test_stage(void)
{
	char dir[] = "/tmp/sbxfs-unit-stage-XXXXXX";
	struct stage *s;

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	s = stage_new(dir, 1 << 20);
	CHECK(s != NULL);
	if (s) {
		test_share_and_stat(s);
		test_rename_directory(s);
		test_unlink(s);
		stage_free(s);
	}
	test_budget(dir);
	{
		char why[256];

		CHECK(sbx_remove_tree(dir, 10000, why, sizeof(why)) == 0);
	}
}

/* SPDX-License-Identifier: MIT */
/* Staged files over a fake server: when open fetches and when it reuses
 * the copy, uploads and what they record, and the flags where providers
 * differ. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbxfs/fsutil.h"
#include "sbxfs/stagefile.h"
#include "test.h"

/* One remote file, and what was asked of it. */
struct server {
	int exists;
	mode_t mode;
	char data[256];
	time_t mtime;
	const char *extra; /* fetch sends this too: the file changed meanwhile */
	int lose;	   /* upload keeps one byte less than it was sent */
	int infos, fetches, uploads;
};

static int fake_info(void *ctx, struct stat *st, const char *box, const char *path)
{
	struct server *sv = ctx;

	sv->infos++;
	if (!sv->exists)
		return -ENOENT;
	memset(st, 0, sizeof(*st));
	st->st_mode = sv->mode;
	st->st_size = (off_t)strlen(sv->data);
	st->st_mtim.tv_sec = sv->mtime;
	return 0;
}

static int fake_fetch(void *ctx, struct staged *f, const char *box, const char *path,
		      const struct stat *remote)
{
	struct server *sv = ctx;
	size_t n = strlen(sv->data), x = sv->extra ? strlen(sv->extra) : 0;

	sv->fetches++;
	if (ftruncate(f->fd, 0) || pwrite(f->fd, sv->data, n, 0) != (ssize_t)n ||
	    (x && pwrite(f->fd, sv->extra, x, (off_t)n) != (ssize_t)x))
		return -EIO;
	return 0;
}

static int fake_upload(void *ctx, struct stat *remote, struct staged *f, const char *box,
		       const char *path, off_t size)
{
	struct server *sv = ctx;
	ssize_t n;

	sv->uploads++;
	if (size >= (off_t)sizeof(sv->data))
		return -EFBIG;
	n = pread(f->fd, sv->data, (size_t)size, 0);
	if (n != size)
		return -EIO;
	sv->data[sv->lose && n ? n - 1 : n] = '\0';
	if (!sv->exists)
		sv->mode = S_IFREG | (f->mode & 07777);
	sv->exists = 1;
	sv->mtime++;
	return 0;
}

static struct stagefile_ops ops = {
	.name = "fake",
	.info = fake_info,
	.fetch = fake_fetch,
	.upload = fake_upload,
};

static uint64_t opened(struct stagefile *sf, int flags, int want)
{
	struct stat st;
	uint64_t fh = 0;

	CHECK(stagefile_open(sf, &fh, &st, "box", "/f", flags, 0600, NULL) == want);
	return fh;
}

static void test_reuse(struct stagefile *sf, struct server *sv)
{
	char buf[64] = "";
	uint64_t fh = opened(sf, O_RDONLY, 0);

	CHECK(sv->infos == 1 && sv->fetches == 1);
	CHECK(stagefile_read(NULL, fh, buf, sizeof(buf), 0) == 5 &&
	      !strcmp(buf, "hello"));
	stagefile_release(NULL, fh);
	/* Unchanged on the server: the copy is reused. */
	stagefile_release(NULL, opened(sf, O_RDONLY, 0));
	CHECK(sv->infos == 2 && sv->fetches == 1);
	sv->mtime++;
	stagefile_release(NULL, opened(sf, O_RDONLY, 0));
	CHECK(sv->fetches == 2);
	/* More came than info announced: kept, not trusted for reuse. */
	sv->extra = "!";
	sv->mtime++;
	stagefile_release(NULL, opened(sf, O_RDONLY, 0));
	sv->extra = NULL;
	stagefile_release(NULL, opened(sf, O_RDONLY, 0));
	CHECK(sv->fetches == 4);
}

/* Attributes the cache knows stand in for info: no call when the copy
 * matches them, a fetch alone when it does not. */
static void test_known(struct stagefile *sf, struct server *sv)
{
	struct stat known, st;
	int infos, fetches;
	uint64_t fh;

	stagefile_release(NULL, opened(sf, O_RDONLY, 0));
	CHECK(fake_info(sv, &known, "box", "/f") == 0);
	infos = sv->infos;
	fetches = sv->fetches;
	CHECK(stagefile_open(sf, &fh, &st, "box", "/f", O_RDONLY, 0, &known) == 0);
	stagefile_release(NULL, fh);
	CHECK(sv->infos == infos && sv->fetches == fetches);
	known.st_mtim.tv_sec++;
	CHECK(stagefile_open(sf, &fh, &st, "box", "/f", O_RDONLY, 0, &known) == 0);
	stagefile_release(NULL, fh);
	CHECK(sv->infos == infos && sv->fetches == fetches + 1);
}

static void test_write_and_upload(struct stagefile *sf, struct server *sv)
{
	uint64_t fh = opened(sf, O_RDWR, 0);
	struct stat st;

	CHECK(stagefile_write(NULL, fh, "J", 1, 0) == 1);
	CHECK(stagefile_fgetattr(NULL, &st, fh) == 0 && st.st_size == 5);
	CHECK(stagefile_flush(NULL, fh) == 0 && !strcmp(sv->data, "Jello"));
	CHECK(sv->uploads == 1);
	CHECK(stagefile_flush(NULL, fh) == 0 && sv->uploads == 1); /* clean */
	/* The server keeps less than it was sent: the close fails. */
	sv->lose = 1;
	CHECK(stagefile_write(NULL, fh, "j", 1, 0) == 1);
	CHECK(stagefile_fsync(NULL, fh, 0) == -EIO);
	sv->lose = 0;
	CHECK(stagefile_release(NULL, fh) == 0 && !strcmp(sv->data, "jello"));
	/* What the upload recorded lets the next open reuse the copy. */
	fh = opened(sf, O_RDONLY, 0);
	CHECK(sv->uploads == 3 && sv->fetches == 4);
	stagefile_release(NULL, fh);
}

static void test_create(struct stagefile *sf, struct server *sv)
{
	uint64_t fh, fh2;
	int infos;

	sv->exists = 0;
	infos = sv->infos;
	fh = opened(sf, O_CREAT | O_EXCL | O_WRONLY, 0);
	CHECK(sv->infos == infos); /* create follows a lookup that found nothing */
	fh2 = opened(sf, O_CREAT | O_EXCL | O_WRONLY, -EEXIST);
	CHECK(stagefile_write(NULL, fh, "new", 3, 0) == 3);
	/* A metadata call before the close finds it on the server. */
	CHECK(stagefile_flush_pending(sf, "box", "/f") == 0);
	CHECK(sv->exists && sv->mode == (S_IFREG | 0600) && !strcmp(sv->data, "new"));
	CHECK(stagefile_flush_pending(sf, "box", "/f") == 0 && sv->uploads == 4);
	stagefile_release(NULL, fh);
	(void)fh2;
}

static void test_not_regular(struct stagefile *sf, struct server *sv)
{
	sv->mode = S_IFDIR | 0755;
	opened(sf, O_RDONLY, -EISDIR);
	sv->mode = S_IFLNK | 0777;
	opened(sf, O_RDONLY, -EOPNOTSUPP);
	ops.flags = STAGEFILE_SYMLINK_ELOOP;
	opened(sf, O_RDONLY, -ELOOP);
	sv->mode = S_IFREG | 0644;
}

/* STAGEFILE_LAZY_WRONLY and STAGEFILE_STAT_NONE, as Vtrix has them. */
static void test_lazy(struct stagefile *sf, struct server *sv)
{
	struct stat st;
	uint64_t fh;

	ops.flags = STAGEFILE_LAZY_WRONLY;
	ops.upload_stat = STAGEFILE_STAT_NONE;
	sv->mtime += 10;
	CHECK(stagefile_open(sf, &fh, &st, "box", "/f", O_WRONLY, 0, NULL) == 0);
	CHECK(st.st_size == 3 && st.st_mtim.tv_sec == sv->mtime && sv->fetches == 4);
	stagefile_release(NULL, fh); /* touch: nothing read, nothing sent */
	CHECK(sv->fetches == 4 && sv->uploads == 4);
	fh = opened(sf, O_WRONLY, 0);
	CHECK(stagefile_write(NULL, fh, "N", 1, 0) == 1 && sv->fetches == 5);
	CHECK(stagefile_release(NULL, fh) == 0 && !strcmp(sv->data, "New"));
	/* Nothing told the mtime after that upload: fetch again. */
	stagefile_release(NULL, opened(sf, O_RDONLY, 0));
	CHECK(sv->fetches == 6);
}

/* A truncate by path goes into an open copy only if a writer will upload
 * it (a reader's copy is never uploaded); the last writer to release
 * uploads it, readers or not.  A file that a read-only open created is
 * uploaded like written data. */
static void test_truncate_open(struct stagefile *sf, struct stage *s, struct server *sv)
{
	uint64_t r = opened(sf, O_RDONLY, 0), w, fh;
	int uploads = sv->uploads;
	struct stat st;

	CHECK(stage_truncate(s, "box", "/f", 1) == -ENOENT);
	w = opened(sf, O_RDWR, 0);
	CHECK(stage_truncate(s, "box", "/f", 1) == 0 && sv->uploads == uploads);
	CHECK(stagefile_release(NULL, w) == 0 && sv->uploads == uploads + 1);
	CHECK(strlen(sv->data) == 1);
	stagefile_release(NULL, r);
	sv->exists = 0;
	CHECK(stagefile_open(sf, &fh, &st, "box", "/g", O_CREAT | O_RDONLY, 0640, NULL) ==
	      0);
	CHECK(stagefile_flush(NULL, fh) == 0 && sv->uploads == uploads + 2);
	CHECK(sv->exists && sv->data[0] == '\0');
	stagefile_release(NULL, fh);
}

void test_stagefile(void)
{
	char dir[] = "/tmp/sbxfs-unit-stagefile-XXXXXX", why[256];
	struct server sv = { .exists = 1, .mode = S_IFREG | 0644, .data = "hello" };
	struct stagefile sf;
	struct stage *s;

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	s = stage_new(dir, 1 << 20);
	CHECK(s != NULL);
	if (s) {
		stagefile_init(&sf, &ops, s, &sv);
		test_reuse(&sf, &sv);
		test_write_and_upload(&sf, &sv);
		test_create(&sf, &sv);
		test_not_regular(&sf, &sv);
		test_lazy(&sf, &sv);
		test_known(&sf, &sv);
		test_truncate_open(&sf, s, &sv);
		stage_free(s);
	}
	CHECK(sbx_remove_tree(dir, 10000, why, sizeof(why)) == 0);
}

/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <errno.h>
#include <string.h>

#include "sbxfs/cache.h"
#include "test.h"

static double fake_now;

static double fake_clock(void)
{
	return fake_now;
}

void test_cache(void)
{
	struct cache *c;
	struct cache_dir *d, *got;
	struct stat st = { .st_size = 42, .st_mode = S_IFREG | 0644 }, out;
	uint64_t gen;

	cache_clock = fake_clock;
	fake_now = 100;
	c = cache_new(1.0, 1000);

	CHECK(cache_get_attr(c, &out, "b", "/x") == -EAGAIN);
	{
		/* Symlink targets: kept for the timeout, dropped by a change of
		 * the name or a stale generation, never past their buffer. */
		char t[8];

		gen = cache_begin(c);
		cache_put_link(c, gen, "b", "/ln", "target");
		CHECK(cache_get_link(c, t, sizeof(t), "b", "/ln") == 0 &&
		      !strcmp(t, "target"));
		CHECK(cache_get_link(c, t, 6, "b", "/ln") == -EAGAIN);
		cache_forget(c, "b", "/ln", 0);
		CHECK(cache_get_link(c, t, sizeof(t), "b", "/ln") == -EAGAIN);
		cache_put_link(c, gen, "b", "/ln", "old");
		CHECK(cache_get_link(c, t, sizeof(t), "b", "/ln") == -EAGAIN);
		gen = cache_begin(c);
		cache_put_link(c, gen, "b", "/ln", "new");
		fake_now += 2;
		CHECK(cache_get_link(c, t, sizeof(t), "b", "/ln") == -EAGAIN);
		fake_now -= 2;
	}
	gen = cache_begin(c);
	cache_put_attr(c, gen, "b", "/x", &st);
	CHECK(cache_get_attr(c, &out, "b", "/x") == 0 && out.st_size == 42);
	CHECK(cache_get_attr(c, &out, "other", "/x") == -EAGAIN);

	/* Entries expire. */
	fake_now = 101.5;
	CHECK(cache_get_attr(c, &out, "b", "/x") == -EAGAIN);

	/* Negative entries. */
	gen = cache_begin(c);
	cache_put_attr(c, gen, "b", "/gone", NULL);
	CHECK(cache_get_attr(c, &out, "b", "/gone") == -ENOENT);

	/* A reply that raced with an invalidation is not stored. */
	gen = cache_begin(c);
	cache_forget(c, "b", "/unrelated", 0);
	cache_put_attr(c, gen, "b", "/y", &st);
	CHECK(cache_get_attr(c, &out, "b", "/y") == -EAGAIN);

	/* Listings store their entries' attributes too. */
	d = cache_dir_new();
	CHECK(cache_dir_add(d, "f", &st) == 0);
	CHECK(cache_dir_add(d, "g", &st) == 0);
	gen = cache_begin(c);
	cache_put_dir(c, gen, "b", "/dir", d);
	got = cache_get_dir(c, "b", "/dir");
	CHECK(got && got->n == 2 && !strcmp(got->v[1].name, "g"));
	cache_dir_put(got);
	CHECK(cache_get_attr(c, &out, "b", "/dir/f") == 0);

	/* Our own change drops the entry and its parent's listing. */
	cache_forget(c, "b", "/dir/f", 0);
	CHECK(cache_get_attr(c, &out, "b", "/dir/f") == -EAGAIN);
	CHECK(cache_get_dir(c, "b", "/dir") == NULL);
	CHECK(cache_get_attr(c, &out, "b", "/dir/g") == 0);

	/* A change that succeeded keeps the listing true: a name made is
	 * listed (stale: its attributes are asked for), one changed turns
	 * stale, one removed leaves; the directory's mtime moves and its link
	 * count follows subdirectories.  A holder of the old listing keeps
	 * what it had. */
	{
		struct stat dst = { .st_mode = S_IFDIR | 0755, .st_nlink = 2 };
		struct cache_dir *held;

		d = cache_dir_new();
		CHECK(cache_dir_add(d, "f", &st) == 0);
		gen = cache_begin(c);
		cache_put_dir(c, gen, "b", "/n", d);
		cache_put_attr(c, gen, "b", "/n", &dst);
		held = cache_get_dir(c, "b", "/n");
		cache_note(c, "b", "/n/new", CACHE_ADDED, S_IFREG | 0600);
		got = cache_get_dir(c, "b", "/n");
		CHECK(got && got != held && got->n == 2 && held->n == 1);
		CHECK(!strcmp(got->v[1].name, "new") && got->v[1].stale &&
		      S_ISREG(got->v[1].st.st_mode) && !got->v[0].stale);
		cache_dir_put(got);
		cache_dir_put(held);
		CHECK(cache_get_attr(c, &out, "b", "/n") == 0 && out.st_mtim.tv_sec > 0 &&
		      out.st_nlink == 2);
		cache_note(c, "b", "/n/f", CACHE_CHANGED, S_IFREG);
		CHECK(cache_get_attr(c, &out, "b", "/n/f") == -EAGAIN);
		cache_note(c, "b", "/n/sub", CACHE_ADDED, S_IFDIR);
		cache_note_empty_dir(c, "b", "/n/sub");
		CHECK(cache_get_attr(c, &out, "b", "/n") == 0 && out.st_nlink == 3);
		got = cache_get_dir(c, "b", "/n/sub");
		CHECK(got && got->n == 0);
		cache_dir_put(got);
		cache_note(c, "b", "/n/new", CACHE_REMOVED, S_IFREG);
		got = cache_get_dir(c, "b", "/n");
		CHECK(got && got->n == 2 && got->v[0].stale &&
		      !strcmp(got->v[1].name, "sub"));
		cache_dir_put(got);
		/* A directory removed takes what is below it along. */
		cache_note(c, "b", "/n/sub", CACHE_REMOVED, S_IFDIR);
		CHECK(cache_get_dir(c, "b", "/n/sub") == NULL);
		CHECK(cache_get_attr(c, &out, "b", "/n") == 0 && out.st_nlink == 2);
		/* An unknown type drops the listing. */
		cache_note(c, "b", "/n/link", CACHE_ADDED, 0);
		CHECK(cache_get_dir(c, "b", "/n") == NULL);
	}

	/* A subtree (rename of a directory) and a whole box (a command ran). */
	cache_forget(c, "b", "/dir", 1);
	CHECK(cache_get_attr(c, &out, "b", "/dir/g") == -EAGAIN);
	gen = cache_begin(c);
	cache_put_attr(c, gen, "b", "/a", &st);
	cache_put_attr(c, gen, "b2", "/a", &st);
	cache_forget_box(c, "b");
	CHECK(cache_get_attr(c, &out, "b", "/a") == -EAGAIN);
	CHECK(cache_get_attr(c, &out, "b2", "/a") == 0);

	/* A listing's size outlives the listing, its timeout and invalidations
	 * of its contents: it only steers what is asked. */
	{
		size_t n = 99;

		CHECK(cache_dir_size_hint(c, "b", "/sized", &n) == -ENOENT);
		d = cache_dir_new();
		CHECK(cache_dir_add(d, "f", &st) == 0);
		gen = cache_begin(c);
		cache_put_dir(c, gen, "b", "/sized", d);
		CHECK(cache_dir_size_hint(c, "b", "/sized", &n) == 0 && n == 1);
		fake_now += 10;
		CHECK(cache_get_dir(c, "b", "/sized") == NULL);
		cache_forget_box(c, "b");
		cache_forget(c, "b", "/sized", 1);
		CHECK(cache_dir_size_hint(c, "b", "/sized", &n) == 0 && n == 1);
		CHECK(cache_dir_size_hint(c, "b2", "/sized", &n) == -ENOENT);
		fake_now += 3600;
		CHECK(cache_dir_size_hint(c, "b", "/sized", &n) == -ENOENT);
	}

	/* The bound holds. */
	gen = cache_begin(c);
	for (int i = 0; i < 5000; i++) {
		char p[32];

		snprintf(p, sizeof(p), "/f%d", i);
		cache_put_attr(c, gen, "b", p, &st);
	}
	CHECK(cache_count(c) <= 1000);
	cache_free(c);
}

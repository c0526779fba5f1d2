/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a tar stream from a sandbox.  The input's first
 * three bytes steer the run, the rest is the archive: bytes 0 and 1
 * choose where to cut it into three pieces, byte 2 after how many members
 * the entry callback stops the reader (0: never).  The seeds are tar
 * archives with three such bytes before them.
 *
 * The reader fed those pieces and fed one byte at a time must see the
 * same members and data and end the same way.  The callbacks check what
 * the reader promises: names and links NUL-terminated inside their
 * arrays, no data but after a member and never more than its size, all
 * of it once the archive ended well, nothing after a callback stopped it.
 * Each member the reader reports is written back by tar_header() and
 * read again, and must come out the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	off_t size, got;      /* the current member's size, its data so far */
	size_t members;	      /* members reported */
	size_t stop_at;	      /* the member whose callback stops the reader */
	int stopped;	      /* a callback returned nonzero */
	unsigned long hash;   /* of the names, the fields and the data */
	struct tar_entry *re; /* a member written and read back */
};

static unsigned long mix(unsigned long h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		h = (h ^ *b++) * 1099511628211ul;
	return h;
}

static int back_entry(void *ctx, const struct tar_entry *e)
{
	struct seen *s = ctx;

	*s->re = *e;
	s->members++;
	return 1; /* the header is all that is wanted */
}

static int back_data(void *ctx, const char *buf, size_t len)
{
	abort(); /* back_entry stopped the reader */
}

/* Write e's header and read it back: the same member. */
static void write_back(const struct tar_entry *e)
{
	static struct tar_entry re;
	struct strbuf sb = STRBUF_INIT(1 << 16);
	struct seen s = { .re = &re };
	struct tar_reader t;

	if (tar_header(&sb, e)) {
		if (e->name[0])
			abort(); /* anything the reader gives, the writer takes */
		return;
	}
	tar_reader_init(&t, back_entry, back_data, &s);
	if (tar_feed(&t, sb.buf, sb.len) != 1 || s.members != 1 ||
	    strcmp(re.name, e->name) || strcmp(re.link, e->link) || re.type != e->type ||
	    re.mode != e->mode || re.uid != e->uid || re.gid != e->gid ||
	    re.size != e->size || re.mtime.tv_sec != e->mtime.tv_sec ||
	    re.mtime.tv_nsec != e->mtime.tv_nsec)
		abort();
	strbuf_release(&sb);
}

static int on_entry(void *ctx, const struct tar_entry *e)
{
	struct seen *s = ctx;

	if (s->stopped || (s->members && s->got != s->size))
		abort(); /* after a stop, or before the last member's data was all in */
	if (!memchr(e->name, '\0', sizeof(e->name)) ||
	    !memchr(e->link, '\0', sizeof(e->link)))
		abort();
	if (e->size < 0 || e->size > (off_t)(1ULL << 62) || (e->mode & ~07777) ||
	    e->mtime.tv_nsec < 0 || e->mtime.tv_nsec > 999999999 || e->type == '\0' ||
	    e->type == '7' || e->uid == (uid_t)-1 || e->gid == (gid_t)-1)
		abort();
	if ((e->type >= '1' && e->type <= '6' && e->size) ||
	    (e->type != '1' && e->type != '2' && e->link[0]))
		abort();
	if (tar_name_is(e->name, "hosts") !=
	    (!strcmp(e->name, "hosts") || !strcmp(e->name, "./hosts")))
		abort();
	write_back(e);
	s->hash = mix(s->hash, e->name, strlen(e->name) + 1);
	s->hash = mix(s->hash, e->link, strlen(e->link) + 1);
	s->hash = mix(s->hash, &e->size, sizeof(e->size));
	s->hash = mix(s->hash, &e->mtime, sizeof(e->mtime));
	s->size = e->size;
	s->got = 0;
	if (++s->members == s->stop_at)
		s->stopped = 1;
	return s->stopped ? -1 : 0;
}

static int on_data(void *ctx, const char *buf, size_t len)
{
	struct seen *s = ctx;

	if (s->stopped || !s->members || !len || (off_t)len > s->size - s->got)
		abort();
	s->got += (off_t)len;
	s->hash = mix(s->hash, buf, len);
	return 0;
}

/* Feed arc[0..len), cut at a and b (a <= b <= len), or one byte at a time. */
static int run(struct seen *s, const char *arc, size_t len, size_t a, size_t b,
	       int bytewise)
{
	struct tar_reader t;
	size_t i;
	int rc = 0;

	tar_reader_init(&t, on_entry, on_data, s);
	if (bytewise) {
		for (i = 0; i < len && !rc; i++)
			rc = tar_feed(&t, arc + i, 1);
	} else {
		rc = tar_feed(&t, arc, a);
		if (!rc)
			rc = tar_feed(&t, arc + a, b - a);
		if (!rc)
			rc = tar_feed(&t, arc + b, len - b);
	}
	if (rc && tar_feed(&t, arc, len) != rc)
		abort(); /* an error is for good */
	if (!rc)
		rc = tar_finish(&t);
	if (rc == 0 && s->members && s->got != s->size)
		abort(); /* ended well, with data missing */
	if (tar_finish(&t) != rc)
		abort();
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen one = { 0 }, two = { 0 };
	const char *arc = (const char *)data + 3;
	size_t len, a, b;
	int rc1, rc2;

	if (size < 3)
		return 0;
	len = size - 3;
	a = len * data[0] / 255;
	b = a + (len - a) * data[1] / 255;
	one.stop_at = two.stop_at = data[2] % 8;
	rc1 = run(&one, arc, len, a, b, 0);
	rc2 = run(&two, arc, len, 0, 0, 1);
	if (rc1 != rc2 || one.members != two.members || one.got != two.got ||
	    one.hash != two.hash ||
	    (rc1 == -1) != (one.stop_at && one.members == one.stop_at))
		abort();
	return 0;
}

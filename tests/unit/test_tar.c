/* SPDX-License-Identifier: MIT */
/*
 * Tar: what the writer builds, the reader reads back, fed whole and one
 * byte at a time; headers laid out here by hand the way GNU tar, busybox
 * and v7 write them; and archives a hostile sandbox could send.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/provider.h"
#include "sbxfs/remote/gunzip.h"
#include "sbxfs/remote/tar.h"
#include "test.h"

#define MAXE 8

/* What the callbacks saw. */
struct got {
	struct tar_entry e[MAXE];
	off_t bytes[MAXE]; /* data per entry */
	size_t n;	   /* entries */
	char data[16384];  /* all the data, as far as it fits */
	size_t dlen;
	int entry_rc; /* what the entry callback returns */
	int data_rc;  /* what the data callback returns */
	int calls;    /* callbacks after the reader was stopped */
	int stopped;
};

static struct got got, got1;

static int on_entry(void *ctx, const struct tar_entry *e)
{
	struct got *g = ctx;

	if (g->stopped)
		g->calls++;
	if (g->n < MAXE)
		g->e[g->n] = *e;
	g->n++;
	if (g->entry_rc)
		g->stopped = 1;
	return g->entry_rc;
}

static int on_data(void *ctx, const char *buf, size_t len)
{
	struct got *g = ctx;

	if (g->stopped)
		g->calls++;
	CHECK(g->n > 0 && len > 0);
	if (g->n > 0 && g->n <= MAXE)
		g->bytes[g->n - 1] += (off_t)len;
	if (len <= sizeof(g->data) - g->dlen) {
		memcpy(g->data + g->dlen, buf, len);
		g->dlen += len;
	}
	if (g->data_rc)
		g->stopped = 1;
	return g->data_rc;
}

/* Read arc[0..len) into g in pieces of `step` bytes: the first nonzero
 * result of tar_feed(), else tar_finish()'s. */
static int read_into(struct got *g, const char *arc, size_t len, size_t step)
{
	struct tar_reader t;
	size_t i;
	int rc = 0;

	tar_reader_init(&t, on_entry, on_data, g);
	for (i = 0; i < len && !rc; i += step)
		rc = tar_feed(&t, arc + i, len - i < step ? len - i : step);
	return rc ? rc : tar_finish(&t);
}

/* Read arc whole into `got`, and one byte at a time: both must see the
 * same.  Returns the whole read's result. */
static int read_tar(const char *arc, size_t len)
{
	size_t i;
	int rc, rc1;

	memset(&got, 0, sizeof(got));
	memset(&got1, 0, sizeof(got1));
	rc = read_into(&got, arc, len, len ? len : 1);
	rc1 = read_into(&got1, arc, len, 1);
	CHECK(rc == rc1 && got.n == got1.n && got.dlen == got1.dlen &&
	      !memcmp(got.data, got1.data, got.dlen));
	for (i = 0; i < got.n && i < MAXE; i++)
		CHECK(!memcmp(&got.e[i], &got1.e[i], sizeof(got.e[i])) &&
		      got.bytes[i] == got1.bytes[i]);
	return rc;
}

static struct tar_entry ent;

/* A member to write: a regular file unless told. */
static struct tar_entry *mk(const char *name, char type, off_t size)
{
	memset(&ent, 0, sizeof(ent));
	snprintf(ent.name, sizeof(ent.name), "%s", name);
	ent.type = type;
	ent.mode = 0644;
	ent.uid = 1000;
	ent.gid = 100;
	ent.size = size;
	ent.mtime.tv_sec = 1700000000;
	return &ent;
}

static char byte_at(off_t i)
{
	return (char)(i % 251);
}

/* A member with its data, a pattern of `size` bytes, and its padding. */
static void add(struct strbuf *sb, const struct tar_entry *e)
{
	off_t i;
	char c;

	CHECK(tar_header(sb, e) == 0);
	for (i = 0; i < e->size; i++) {
		c = byte_at(i);
		strbuf_add(sb, &c, 1);
	}
	for (i = 0; i < tar_padding(e->size); i++)
		strbuf_add(sb, "", 1);
}

static const char zeros[TAR_END_LEN];

static void end(struct strbuf *sb)
{
	strbuf_add(sb, zeros, sizeof(zeros));
}

static int same_data(const char *d, off_t size)
{
	off_t i;

	for (i = 0; i < size; i++)
		if (d[i] != byte_at(i))
			return 0;
	return 1;
}

/* Write e and read it back: one member, the same fields and data. */
static void round_trip(const struct tar_entry *e)
{
	struct tar_entry w = *e;
	struct strbuf sb = STRBUF_INIT(1 << 20);
	off_t want = w.type >= '1' && w.type <= '6' ? 0 : w.size;

	add(&sb, &w);
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 1);
	CHECK(!strcmp(got.e[0].name, w.name) && got.e[0].size == want);
	CHECK(got.e[0].type == (w.type ? w.type : '0') && got.e[0].mode == w.mode);
	CHECK(got.e[0].uid == w.uid && got.e[0].gid == w.gid);
	CHECK(got.e[0].mtime.tv_sec == w.mtime.tv_sec &&
	      got.e[0].mtime.tv_nsec == w.mtime.tv_nsec);
	CHECK(!strcmp(got.e[0].link, w.type == '1' || w.type == '2' ? w.link : ""));
	CHECK(got.bytes[0] == want && same_data(got.data, want));
	strbuf_release(&sb);
}

/* The header bytes of a write of e: just ustar, or pax first. */
static size_t header_len(const struct tar_entry *e)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	size_t n;

	CHECK(tar_header(&sb, e) == 0);
	n = sb.len;
	strbuf_release(&sb);
	return n;
}

static void check_round_trips(void)
{
	static const off_t sizes[] = { 0, 1, 511, 512, 513, 1500 };
	struct strbuf sb = STRBUF_INIT(1 << 16);
	char name[4096];
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(mk("dir/file", '0', sizes[i]));

	/* Two members: the second starts right after the first's padding. */
	add(&sb, mk("a", '0', 513));
	add(&sb, mk("b", '0', 3));
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 2);
	CHECK(!strcmp(got.e[1].name, "b") && got.bytes[0] == 513 && got.bytes[1] == 3);
	CHECK(same_data(got.data, 513) && same_data(got.data + 513, 3));
	strbuf_release(&sb);

	/* Names: 100 bytes fit the name field, a 256-byte one splits at a
	 * '/' into prefix and name; what fits neither way goes by pax. */
	memset(name, 'n', 100);
	name[100] = '\0';
	CHECK(header_len(mk(name, '0', 0)) == 512);
	round_trip(mk(name, '0', 7));
	name[155] = '/';
	memset(name + 100, 'p', 55);
	memset(name + 156, 'q', 100);
	name[256] = '\0';
	CHECK(header_len(mk(name, '0', 0)) == 512);
	round_trip(mk(name, '0', 7));
	name[101] = '\0'; /* 101 bytes, no '/' */
	CHECK(header_len(mk(name, '0', 0)) == 3 * 512);
	round_trip(mk(name, '0', 7));
	for (i = 0; i < 300; i++)
		name[i] = i % 50 == 49 ? '/' : (char)('a' + i % 26);
	name[300] = '\0';
	CHECK(header_len(mk(name, '0', 0)) == 3 * 512);
	round_trip(mk(name, '0', 600));
	memset(name, 'd', 150); /* no split leaves the name field empty */
	strcpy(name + 150, "/");
	CHECK(header_len(mk(name, '5', 0)) == 3 * 512);
	round_trip(&ent);
	memset(name, 'z', 4095);
	name[4095] = '\0';
	round_trip(mk(name, '0', 1));

	/* Links: a symlink's long target by pax; no data, whatever the size. */
	mk("l", '2', 0);
	memset(ent.link, 't', 200);
	ent.mode = 0777;
	round_trip(&ent);
	mk("h", '1', 0);
	strcpy(ent.link, "dir/file");
	round_trip(&ent);
	mk("d/", '5', 0);
	ent.mode = 02755;
	round_trip(&ent);
	mk("fifo", '6', 0);
	round_trip(&ent);
	mk("z", '\0', 5); /* written as '0' */
	round_trip(&ent);
}

static void check_numbers(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	char *b;

	/* 8 GiB and more: the size field 0, the size by pax. */
	mk("big", '0', 8LL << 30);
	CHECK(tar_header(&sb, &ent) == 0 && sb.len == 3 * 512);
	CHECK(strstr(sb.buf + 512, "size=8589934592\n") != NULL);
	b = sb.buf + 2 * 512;
	CHECK(!memcmp(b + 124, "00000000000", 12));
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO); /* cut in its data */
	CHECK(got.n == 1 && got.e[0].size == 8LL << 30 && got.bytes[0] == 0);
	CHECK(strstr(sbx_fail_text(), "cut inside a member's data") != NULL);
	strbuf_release(&sb);
	CHECK(header_len(mk("big", '0', 077777777777)) == 512);
	mk("huge", '0', (off_t)(1ULL << 62));
	CHECK(tar_header(&sb, &ent) == 0 && read_tar(sb.buf, sb.len) == -EPROTO &&
	      got.e[0].size == (off_t)(1ULL << 62));
	strbuf_release(&sb);

	/* Owners past the octal fields, times with nanoseconds, before 1970,
	 * after 2242. */
	mk("owners", '0', 2);
	ent.uid = 3000000;
	ent.gid = 0xfffffffe;
	round_trip(&ent);
	mk("ns", '0', 2);
	ent.mtime.tv_nsec = 123456789;
	round_trip(&ent);
	ent.mtime.tv_sec = -5;
	ent.mtime.tv_nsec = 250000000;
	round_trip(&ent);
	ent.mtime.tv_sec = -1;
	round_trip(&ent);
	ent.mtime.tv_sec = 1LL << 34;
	ent.mtime.tv_nsec = 0;
	round_trip(&ent);
}

/* ---- headers made by hand ---- */

enum { USTAR, GNU, V7 };

/* Lay out a header: octal fields the way GNU tar writes them. */
static void blk(char *b, const char *name, char type, unsigned long long size, int magic)
{
	memset(b, 0, 512);
	memcpy(b, name, strnlen(name, 100));
	memcpy(b + 100, "0000644", 8);
	memcpy(b + 108, "0001750", 8);
	memcpy(b + 116, "0000144", 8);
	snprintf(b + 124, 12, "%011llo", size);
	memcpy(b + 136, "14524770400", 12);
	b[156] = type;
	if (magic == USTAR)
		memcpy(b + 257,
		       "ustar\0"
		       "00",
		       8);
	else if (magic == GNU)
		memcpy(b + 257, "ustar  ", 8);
}

/* Compute the checksum, unsigned or (as old tars did) signed. */
static void reseal(char *b, int sign)
{
	long s = 0;
	int i;

	memset(b + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		s += sign ? (signed char)b[i] : (unsigned char)b[i];
	snprintf(b + 148, 8, "%06lo", s);
	b[155] = ' ';
}

/* A header made by blk(), resealed, then `dlen` bytes and padding. */
static void put(struct strbuf *sb, char *b, const char *data, size_t dlen)
{
	reseal(b, 0);
	strbuf_add(sb, b, 512);
	if (dlen)
		strbuf_add(sb, data, dlen);
	while (sb->len % 512)
		strbuf_add(sb, "", 1);
}

static void check_base256(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	char b[512], data[1000];
	int i;

	for (i = 0; i < 1000; i++)
		data[i] = byte_at(i);
	blk(b, "b256", '0', 0, GNU);
	memset(b + 124, 0, 12);
	b[124] = (char)0x80;
	b[134] = 0x03;
	b[135] = (char)0xe8;
	b[136] = (char)0x80; /* mtime too */
	memset(b + 137, 0, 11);
	b[147] = 0x7f;
	put(&sb, b, data, 1000);
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 1 && got.e[0].size == 1000 &&
	      got.bytes[0] == 1000 && same_data(got.data, 1000) &&
	      got.e[0].mtime.tv_sec == 0x7f);

	/* Negative (GNU tar's 0xff...), and past 1 << 62. */
	memset(sb.buf + 124, 0xff, 12);
	reseal(sb.buf, 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	CHECK(strstr(sbx_fail_text(), "bad size field") != NULL);
	memset(sb.buf + 124, 0, 12);
	sb.buf[124] = (char)0x80;
	sb.buf[127] = 0x01; /* 1 << 64 */
	reseal(sb.buf, 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	sb.buf[127] = 0;
	sb.buf[128] = 0x40;
	sb.buf[135] = 0x01; /* (1 << 62) + 1 */
	reseal(sb.buf, 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	sb.buf[128] = 0x3f;
	memset(sb.buf + 129, 0xff, 7);
	reseal(sb.buf, 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO); /* the size is read, the data cut */
	CHECK(got.n == 1 && got.e[0].size == (off_t)((1ULL << 62) - 1));
	strbuf_release(&sb);
}

static void check_hand_made(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	char b[512], longname[201];
	const char *pax;

	/* GNU tar --format=gnu: a ././@LongLink 'L' header, then the member
	 * with its name cut to 100 bytes. */
	memset(longname, 'g', 200);
	longname[100] = '/';
	longname[200] = '\0';
	blk(b, "././@LongLink", 'L', 201, GNU);
	put(&sb, b, longname, 201);
	blk(b, longname, '0', 5, GNU);
	put(&sb, b, "hello", 5);
	/* then 'K' for a symlink's long target */
	blk(b, "././@LongLink", 'K', 201, GNU);
	put(&sb, b, longname, 201);
	blk(b, "sym", '2', 0, GNU);
	memcpy(b + 157, longname, 100);
	put(&sb, b, NULL, 0);
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 2);
	CHECK(!strcmp(got.e[0].name, longname) && got.e[0].size == 5 &&
	      !memcmp(got.data, "hello", 5) && got.e[0].mode == 0644 &&
	      got.e[0].uid == 1000 && got.e[0].gid == 100 &&
	      got.e[0].mtime.tv_sec == 1700000000);
	CHECK(!strcmp(got.e[1].name, "sym") && !strcmp(got.e[1].link, longname) &&
	      got.e[1].type == '2');
	strbuf_release(&sb);

	/* v7: no magic, type '\0', fields padded with spaces, a signed
	 * checksum; a name with a NUL inside its field. */
	blk(b, "old.txt", '\0', 0, V7);
	memcpy(b + 124, "          3 ", 12);
	memcpy(b + 100, "   644 \0", 8);
	b[20] = 'x'; /* after the name's NUL: not part of it */
	b[30] = (char)0xe9;
	reseal(b, 1);
	strbuf_add(&sb, b, 512);
	strbuf_add(&sb, "abc", 3);
	while (sb.len % 512)
		strbuf_add(&sb, "", 1);
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 1); /* no end blocks */
	CHECK(!strcmp(got.e[0].name, "old.txt") && got.e[0].type == '0' &&
	      got.e[0].size == 3 && got.e[0].mode == 0644);
	strbuf_release(&sb);

	/* ustar: prefix "/" name; type '7'; a hard link whose size field is
	 * not 0 has no data; an unknown type (GNU sparse) is reported. */
	blk(b, "doc.txt", '7', 2, USTAR);
	memcpy(b + 345, "usr/share", 9);
	put(&sb, b, "hi", 2);
	blk(b, "hard", '1', 100, USTAR);
	memcpy(b + 157, "usr/share/doc.txt", 17);
	put(&sb, b, NULL, 0);
	blk(b, "sparse", 'S', 512, USTAR);
	put(&sb, b, longname, 200);
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 3);
	CHECK(!strcmp(got.e[0].name, "usr/share/doc.txt") && got.e[0].type == '0');
	CHECK(!strcmp(got.e[1].link, "usr/share/doc.txt") && got.e[1].size == 0 &&
	      got.bytes[1] == 0);
	CHECK(got.e[2].type == 'S' && got.e[2].size == 512 && got.bytes[2] == 512);
	strbuf_release(&sb);

	/* pax: a global header is skipped; unknown keys are ignored; path,
	 * mtime with a fraction, size, uid and gid win. */
	pax = "9 a=\xff\x01\n";
	blk(b, "pax_global_header", 'g', strlen(pax), USTAR);
	put(&sb, b, pax, strlen(pax));
	pax = "28 SCHILY.xattr.user.k=v\n=\n\n"
	      "12 path=a b\n"
	      "22 mtime=1.5000000009\n"
	      "11 size=10\n"
	      "14 uid=123456\n"
	      "10 gid=77\n"
	      "16 linkpath=xyz\n";
	blk(b, "PaxHeaders.0/x", 'x', strlen(pax), USTAR);
	put(&sb, b, pax, strlen(pax));
	blk(b, "x", '0', 3, USTAR);
	put(&sb, b, "0123456789", 10);
	end(&sb);
	strbuf_add(&sb, zeros, 100); /* a record's zeros after the end */
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 1);
	CHECK(!strcmp(got.e[0].name, "a b") && got.e[0].size == 10 &&
	      got.bytes[0] == 10 && got.e[0].mtime.tv_sec == 1 &&
	      got.e[0].mtime.tv_nsec == 500000000 && got.e[0].uid == 123456 &&
	      got.e[0].gid == 77 && !got.e[0].link[0]);
	strbuf_release(&sb);

	/* Old GNU sparse members whose map goes on in more blocks: those
	 * blocks are outside the size, so the stream cannot be followed. */
	blk(b, "sparse", 'S', 0, GNU);
	b[482] = 1;
	put(&sb, b, NULL, 0);
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	CHECK(strstr(sbx_fail_text(), "sparse") != NULL);
	strbuf_release(&sb);

	/* One zero block and no second is an end too. */
	blk(b, "one", '0', 0, USTAR);
	put(&sb, b, NULL, 0);
	strbuf_add(&sb, zeros, 512);
	CHECK(read_tar(sb.buf, sb.len) == 0 && got.n == 1);
	CHECK(read_tar("", 0) == 0 && got.n == 0);
	strbuf_release(&sb);
}

/* A pax header with the records `pax`, then a member: read's result. */
static int read_pax(const char *pax, size_t len)
{
	struct strbuf sb = STRBUF_INIT(1 << 18);
	char b[512];
	int rc;

	blk(b, "p", 'x', len, USTAR);
	put(&sb, b, pax, len);
	blk(b, "m", '0', 0, USTAR);
	put(&sb, b, NULL, 0);
	end(&sb);
	rc = read_tar(sb.buf, sb.len);
	strbuf_release(&sb);
	return rc;
}

/* A GNU long name of `len` bytes from `name`, then a member. */
static int read_long(const char *name, size_t len)
{
	struct strbuf sb = STRBUF_INIT(1 << 18);
	char b[512];
	int rc;

	blk(b, "././@LongLink", 'L', len, GNU);
	put(&sb, b, name, len);
	blk(b, "m", '0', 0, GNU);
	put(&sb, b, NULL, 0);
	end(&sb);
	rc = read_tar(sb.buf, sb.len);
	strbuf_release(&sb);
	return rc;
}

static void check_bad(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	static char big[TAR_PAX_MAX + 64];
	char b[512];
	int n;

	add(&sb, mk("file", '0', 5));
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == 0);
	CHECK(read_tar(sb.buf, 300) == -EPROTO && got.n == 0); /* cut header */
	CHECK(strstr(sbx_fail_text(), "cut inside a header") != NULL);
	CHECK(read_tar(sb.buf, 514) == -EPROTO && got.n == 1 && got.bytes[0] == 2);
	CHECK(read_tar(sb.buf, 600) == -EPROTO && got.bytes[0] == 5); /* padding */
	CHECK(read_tar(sb.buf, 1024) == 0);
	sb.buf[2]++; /* bad checksum */
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	CHECK(!strcmp(sbx_fail_text(),
		      "tar: bad header checksum at byte 0 of the archive"));
	sb.buf[2]--;
	memcpy(sb.buf + 257, "ustaR", 5); /* unknown magic */
	reseal(sb.buf, 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	memcpy(sb.buf + 257, "ustar", 5);
	memcpy(sb.buf + 100, "00006x4", 7); /* not octal */
	reseal(sb.buf, 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	CHECK(strstr(sbx_fail_text(), "bad mode field") != NULL);
	memset(sb.buf + 124, 0, 12); /* an empty size */
	memcpy(sb.buf + 100, "0000644", 7);
	reseal(sb.buf, 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	strbuf_release(&sb);

	/* A lone zero block before a header; data after the end. */
	strbuf_add(&sb, zeros, 512);
	add(&sb, mk("file", '0', 5));
	CHECK(read_tar(sb.buf + 512, sb.len - 512) == 0 && got.n == 1);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	CHECK(strstr(sbx_fail_text(), "lone zero block") != NULL);
	strbuf_release(&sb);
	end(&sb);
	end(&sb);
	add(&sb, mk("file", '0', 5));
	CHECK(read_tar(sb.buf, 2048) == 0);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO && got.n == 0);
	strbuf_release(&sb);

	/* pax records: LEN exactly right, ended by '\n', the header bounded. */
	CHECK(read_pax("10 path=x\n", 10) == 0 && !strcmp(got.e[0].name, "x"));
	CHECK(read_pax("11 path=x\n", 10) == -EPROTO && got.n == 0);
	CHECK(read_pax("8 path=x\n", 9) == -EPROTO);
	CHECK(read_pax("11 path=xy", 10) == -EPROTO);
	CHECK(read_pax("10 path=xy", 10) == -EPROTO);
	CHECK(read_pax("010 path=x\n", 11) == -EPROTO);
	CHECK(read_pax("10path=xx\n", 10) == -EPROTO);
	CHECK(read_pax(" 9 path=x\n", 10) == -EPROTO);
	CHECK(read_pax("5 =x\n", 5) == -EPROTO);
	CHECK(read_pax("4 x\n\n", 5) == -EPROTO);
	CHECK(read_pax("10 size=x\n", 10) == -EPROTO);
	CHECK(read_pax("14 mtime=1.x5\n", 14) == -EPROTO);
	CHECK(read_pax("13 uid=-1234\n", 13) == -EPROTO);
	CHECK(read_pax("18 uid=4294967295\n", 18) == -EPROTO);
	CHECK(read_pax("10 path=x\n4 ", 12) == -EPROTO); /* cut */
	/* 1 << 64 more than its length: LEN may not wrap round */
	CHECK(read_pax("18446744073709551644 path=x\n", 28) == -EPROTO);
	CHECK(read_pax("", 0) == 0 && !strcmp(got.e[0].name, "m"));
	CHECK(read_pax("10 path=x\n8 path=\n", 18) == 0 && !strcmp(got.e[0].name, "m"));
	n = snprintf(big, sizeof(big), "%d path=", 4095 + 11);
	memset(big + n, 'p', 4095);
	strcpy(big + n + 4095, "\n");
	CHECK(read_pax(big, strlen(big)) == 0 && strlen(got.e[0].name) == 4095);
	n = snprintf(big, sizeof(big), "%d path=", 4096 + 11);
	memset(big + n, 'p', 4096);
	strcpy(big + n + 4096, "\n");
	CHECK(read_pax(big, strlen(big)) == -EPROTO && got.n == 0);
	memset(big, 0, sizeof(big));
	n = snprintf(big, sizeof(big), "%d k=", TAR_PAX_MAX);
	memset(big + n, 'v', TAR_PAX_MAX - n - 1);
	big[TAR_PAX_MAX - 1] = '\n';
	CHECK(read_pax(big, TAR_PAX_MAX) == 0 && got.n == 1);
	n = snprintf(big, sizeof(big), "%d k=", TAR_PAX_MAX + 1);
	memset(big + n, 'v', TAR_PAX_MAX - n);
	big[TAR_PAX_MAX] = '\n';
	CHECK(read_pax(big, TAR_PAX_MAX + 1) == -EPROTO && got.n == 0);
	CHECK(strstr(sbx_fail_text(), "pax header over 64 KiB") != NULL);

	/* A meta header with no member after it. */
	blk(b, "p", 'x', 10, USTAR);
	put(&sb, b, "10 path=x\n", 10);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO);
	CHECK(strstr(sbx_fail_text(), "after a meta header") != NULL);
	end(&sb);
	CHECK(read_tar(sb.buf, sb.len) == -EPROTO);
	strbuf_release(&sb);

	/* GNU long names: at most 4096 bytes, a NUL among them. */
	memset(big, 'L', 4096);
	big[4095] = '\0';
	CHECK(read_long(big, 4096) == 0 && strlen(got.e[0].name) == 4095);
	CHECK(read_long(big, 4000) == 0 && strlen(got.e[0].name) == 4000);
	big[4095] = 'L';
	CHECK(read_long(big, 4096) == -EPROTO && got.n == 0);
	CHECK(read_long(big, 4097) == -EPROTO && got.n == 0);
	CHECK(strstr(sbx_fail_text(), "long name over 4096") != NULL);
}

static void check_stop(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	struct tar_reader t;

	add(&sb, mk("a", '0', 700));
	add(&sb, mk("b", '0', 5));
	end(&sb);

	memset(&got, 0, sizeof(got));
	got.entry_rc = -EIO;
	tar_reader_init(&t, on_entry, on_data, &got);
	CHECK(tar_feed(&t, sb.buf, sb.len) == -EIO && got.n == 1);
	CHECK(tar_feed(&t, sb.buf, sb.len) == -EIO && tar_finish(&t) == -EIO);
	CHECK(got.calls == 0 && got.dlen == 0);

	memset(&got, 0, sizeof(got));
	got.data_rc = 7;
	tar_reader_init(&t, on_entry, on_data, &got);
	CHECK(tar_feed(&t, sb.buf, 600) == 7 && got.n == 1 && got.dlen == 88);
	CHECK(tar_feed(&t, sb.buf + 600, sb.len - 600) == 7 && tar_finish(&t) == 7);
	CHECK(got.calls == 0);

	/* and an error of the archive is sticky too */
	memset(&got, 0, sizeof(got));
	tar_reader_init(&t, on_entry, on_data, &got);
	sb.buf[0] ^= 1;
	CHECK(tar_feed(&t, sb.buf, 512) == -EPROTO);
	sb.buf[0] ^= 1;
	CHECK(tar_feed(&t, sb.buf, sb.len) == -EPROTO && got.n == 0);
	strbuf_release(&sb);
}

static void check_writer(void)
{
	struct strbuf sb = STRBUF_INIT(600);
	char name[200];

	CHECK(tar_padding(0) == 0 && tar_padding(1) == 511 && tar_padding(511) == 1 &&
	      tar_padding(512) == 0 && tar_padding(513) == 511);
	CHECK(tar_header(&sb, mk("", '0', 0)) == -EINVAL);
	CHECK(tar_header(&sb, mk("a", '0', -1)) == -EINVAL);
	mk("a", '0', 0);
	ent.mtime.tv_nsec = 1000000000;
	CHECK(tar_header(&sb, &ent) == -EINVAL);
	mk("a", '0', 0);
	ent.gid = (gid_t)-1;
	CHECK(tar_header(&sb, &ent) == -EINVAL);
	mk("a", '0', 0);
	memset(ent.name, 'a', sizeof(ent.name));
	CHECK(tar_header(&sb, &ent) == -EINVAL && sb.len == 0);

	/* A header as GNU tar writes it: magic, version, the checksum's form. */
	CHECK(tar_header(&sb, mk("a", '0', 5)) == 0 && sb.len == 512);
	CHECK(!memcmp(sb.buf + 257,
		      "ustar\0"
		      "00",
		      8) &&
	      sb.buf[156] == '0');
	CHECK(sb.buf[154] == '\0' && sb.buf[155] == ' ');
	CHECK(!memcmp(sb.buf + 124, "00000000005\0", 12));
	CHECK(!memcmp(sb.buf + 100, "0000644\0", 8));

	/* Past the buffer's maximum: nothing added. */
	memset(name, 'x', 150);
	name[150] = '\0';
	CHECK(tar_header(&sb, mk(name, '0', 0)) == -E2BIG && sb.len == 512);
	strbuf_release(&sb);

	CHECK(tar_name_is("hosts", "hosts") && tar_name_is("./hosts", "hosts"));
	CHECK(!tar_name_is("a/hosts", "hosts") && !tar_name_is(".//hosts", "hosts"));
	CHECK(!tar_name_is("hosts/", "hosts") && !tar_name_is("", "") &&
	      !tar_name_is("./", "") && !tar_name_is("hostsx", "hosts"));
	CHECK(!tar_name_is("a/b", "a/b") && !tar_name_is("././hosts", "hosts"));
}

/* gzip streams as a sandbox's gzip -1 makes them (the system's gzip). */
static void check_gunzip(void)
{
	struct strbuf gz = STRBUF_INIT(1 << 20), out = STRBUF_INIT(1 << 20);
	struct strbuf small = STRBUF_INIT(1000);
	char buf[4096];
	size_t n;
	FILE *p = popen("seq 1 20000 | gzip -1", "r");

	CHECK(p != NULL);
	if (!p)
		return;
	while ((n = fread(buf, 1, sizeof(buf), p)))
		strbuf_add(&gz, buf, n);
	CHECK(pclose(p) == 0);
	CHECK(gunzip_is(gz.buf, gz.len) && !gunzip_is("x\x8b\x08", 3));
	CHECK(gunzip(&out, gz.buf, gz.len) == 0 && out.len == 108894);
	CHECK(!strncmp(out.buf, "1\n2\n3\n", 6) &&
	      !strcmp(out.buf + out.len - 6, "20000\n"));
	/* Past the bound: what fits; cut short: what came before. */
	CHECK(gunzip(&small, gz.buf, gz.len) == -EFBIG && small.len <= 1000);
	out.len = 0;
	CHECK(gunzip(&out, gz.buf, gz.len / 2) == -EPROTO && out.len > 0 &&
	      out.len < 108894 && !strncmp(out.buf, "1\n2\n", 4));
	out.len = 0;
	gz.buf[gz.len / 2] ^= 0x55;
	CHECK(gunzip(&out, gz.buf, gz.len) == -EPROTO);
	strbuf_release(&gz);
	strbuf_release(&out);
	strbuf_release(&small);
}

void test_tar(void)
{
	check_gunzip();
	check_round_trips();
	check_numbers();
	check_base256();
	check_hand_made();
	check_bad();
	check_stop();
	check_writer();
}

/* SPDX-License-Identifier: MIT */
/* The tar writer: one member's header, pax when ustar cannot hold it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sbxfs/remote/tar.h"
#include "tar_int.h"

#define OCTAL11 077777777777ULL /* the most 11 octal digits hold: 8 GiB - 1 */
#define OCTAL7 07777777ULL

/* v in an octal field: all but its last byte digits (v fits), then a NUL. */
#define PUT(field, v) put_octal(field, sizeof(field), v)
static void put_octal(char *f, size_t n, unsigned long long v)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "%0*llo", (int)n - 1, v);
	memcpy(f, tmp, n);
}

/* The checksum, written as GNU tar does: six digits, a NUL, a space. */
static void seal(struct ustar *h)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "%06lo", tar_sum(h, 0));
	memcpy(h->sum, tmp, 7);
	h->sum[7] = ' ';
}

/* "LEN KEY=VALUE\n", LEN counting its own digits. */
static int pax_record(struct strbuf *sb, const char *key, const char *val, size_t vlen)
{
	size_t n = strlen(key) + vlen + 3, d = 1;
	char len[24];
	int rc;

	while ((size_t)snprintf(len, sizeof(len), "%zu", n + d) != d)
		d++;
	rc = strbuf_addf(sb, "%s %s=", len, key);
	if (!rc)
		rc = strbuf_add(sb, val, vlen);
	return rc ? rc : strbuf_add(sb, "\n", 1);
}

static int pax_num(struct strbuf *sb, const char *key, long long v)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", v);
	return pax_record(sb, key, s, strlen(s));
}

/* Where a name of n bytes splits into a ustar prefix and name: the offset
 * of the '/' between them (the name not empty); 0 if it fits the name
 * field whole, -1 if it fits neither way. */
static long split(const char *name, size_t n)
{
	size_t i;

	if (n <= 100)
		return 0;
	for (i = n - 101 > 1 ? n - 101 : 1; i <= 155 && i + 2 <= n; i++)
		if (name[i] == '/')
			return (long)i;
	return -1;
}

/* The pax records of what ustar cannot hold. */
static int pax_records(struct strbuf *pax, const struct tar_entry *e, long cut,
		       int big_time)
{
	long long sec = e->mtime.tv_sec;
	long nsec = e->mtime.tv_nsec;
	int rc = 0, neg = sec < 0 && nsec; /* -1.25 s is { -2, 750000000 } */
	char v[48];

	if (cut < 0)
		rc = pax_record(pax, "path", e->name, strlen(e->name));
	if (!rc && strlen(e->link) > 100)
		rc = pax_record(pax, "linkpath", e->link, strlen(e->link));
	if (!rc && (unsigned long long)e->size > OCTAL11)
		rc = pax_num(pax, "size", e->size);
	if (!rc && e->uid > OCTAL7)
		rc = pax_num(pax, "uid", e->uid);
	if (!rc && e->gid > OCTAL7)
		rc = pax_num(pax, "gid", e->gid);
	if (!rc && big_time) {
		snprintf(v, sizeof(v), "%s%lld.%09ld", neg ? "-" : "",
			 neg ? -(sec + 1) : sec, neg ? 1000000000 - nsec : nsec);
		rc = pax_record(pax, "mtime", v, strlen(v));
	}
	return rc;
}

/* The ustar header of e, all but its checksum; `cut` is split()'s. */
static void ustar_of(struct ustar *h, const struct tar_entry *e, size_t nlen, long cut)
{
	size_t llen = strlen(e->link);
	time_t sec = e->mtime.tv_sec;

	memset(h, 0, sizeof(*h));
	if (cut > 0) {
		memcpy(h->prefix, e->name, (size_t)cut);
		memcpy(h->name, e->name + cut + 1, nlen - (size_t)cut - 1);
	} else {
		memcpy(h->name, e->name, nlen < 100 ? nlen : 100);
	}
	PUT(h->mode, e->mode & 07777);
	PUT(h->uid, e->uid > OCTAL7 ? 0 : e->uid);
	PUT(h->gid, e->gid > OCTAL7 ? 0 : e->gid);
	PUT(h->size,
	    (unsigned long long)e->size > OCTAL11 ? 0 : (unsigned long long)e->size);
	PUT(h->mtime,
	    sec < 0 || (unsigned long long)sec > OCTAL11 ? 0 : (unsigned long long)sec);
	h->type = e->type ? e->type : '0';
	memcpy(h->link, e->link, llen < 100 ? llen : 100);
	memcpy(h->magic,
	       "ustar\0"
	       "00",
	       8);
	PUT(h->devmajor, 0);
	PUT(h->devminor, 0);
}

int tar_header(struct strbuf *out, const struct tar_entry *e)
{
	struct strbuf pax = STRBUF_INIT(3 * TAR_LONGNAME_MAX);
	size_t nlen = strnlen(e->name, sizeof(e->name)), keep = out->len;
	time_t sec = e->mtime.tv_sec;
	struct ustar h, x;
	long cut;
	int rc;

	if (!nlen || nlen == sizeof(e->name) ||
	    strnlen(e->link, sizeof(e->link)) == sizeof(e->link) || e->size < 0 ||
	    (unsigned long long)e->size > TAR_NUM_MAX || e->mtime.tv_nsec < 0 ||
	    e->mtime.tv_nsec > 999999999 || e->uid == (uid_t)-1 || e->gid == (gid_t)-1)
		return -EINVAL;
	cut = split(e->name, nlen);
	ustar_of(&h, e, nlen, cut);
	rc = pax_records(&pax, e, cut,
			 e->mtime.tv_nsec || sec < 0 ||
				 (unsigned long long)sec > OCTAL11);
	if (!rc && pax.len) { /* its header: the member's, but for these */
		x = h;
		memset(x.name, 0, sizeof(x.name));
		memcpy(x.name, "././@PaxHeader", 14);
		memset(x.link, 0, sizeof(x.link));
		memset(x.prefix, 0, sizeof(x.prefix));
		PUT(x.size, pax.len);
		x.type = 'x';
		seal(&x);
		rc = strbuf_add(out, &x, sizeof(x));
		if (!rc)
			rc = strbuf_add(out, pax.buf, pax.len);
		if (!rc)
			rc = strbuf_add(out, tar_zeros,
					(size_t)tar_padding((off_t)pax.len));
	}
	seal(&h);
	if (!rc)
		rc = strbuf_add(out, &h, sizeof(h));
	strbuf_release(&pax);
	if (rc && out->buf) {
		out->len = keep;
		out->buf[keep] = '\0';
	}
	return rc;
}

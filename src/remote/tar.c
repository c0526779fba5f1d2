/* SPDX-License-Identifier: MIT */
/*
 * The tar reader: a state machine over the bytes as they come, which
 * keeps one header block, the next entry, and the parser of one pax
 * record.  The pieces it is fed may end anywhere.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sbxfs/provider.h"
#include "sbxfs/remote/tar.h"
#include "tar_int.h"

#define BLOCK TAR_BLOCK
#define ID_MAX 0xfffffffeULL /* (uid_t)-1 means "no change" to chown */
#define GNU_ISEXTENDED 482   /* old GNU sparse: more map blocks follow */

/* What the reader is in the middle of. */
enum { IN_HEADER, IN_ZERO, IN_META, IN_DATA, IN_PAD, IN_END };

/* The pax keys the reader knows.  Bit 1 << K_x of tar_reader.have says
 * that a meta header set that field of the next entry. */
enum { K_OTHER, K_PATH, K_LINKPATH, K_SIZE, K_MTIME, K_UID, K_GID };
static const char *const pax_keys[] = { "",	 "path", "linkpath", "size",
					"mtime", "uid",	 "gid" };

enum { PAX_LEN, PAX_KEY, PAX_VAL };

const char tar_zeros[TAR_BLOCK];

long tar_sum(const struct ustar *h, int sign)
{
	const char *b = (const char *)h;
	long s = 8 * ' ';
	size_t i;

	for (i = 0; i < BLOCK; i++)
		if (i < offsetof(struct ustar, sum) || i >= offsetof(struct ustar, type))
			s += sign ? (signed char)b[i] : (unsigned char)b[i];
	return s;
}

static int bad(const char *what, off_t at)
{
	sbx_failf("tar: %s at byte %lld of the archive", what, (long long)at);
	return -EPROTO;
}

/*
 * A numeric field of n bytes: octal digits after optional spaces, ended
 * by a space, a NUL or the field's end and followed by nothing else; or
 * GNU base-256 (the first byte's high bit set, its next bit the sign).
 * 0 with the value if it is at most max, else -1.
 */
static int field_num(const char *f, size_t n, unsigned long long max,
		     unsigned long long *out)
{
	const unsigned char *p = (const unsigned char *)f;
	unsigned long long v = 0;
	size_t i = 0;

	if (p[0] & 0x80) {
		if (p[0] & 0x40)
			return -1; /* negative */
		for (v = p[0] & 0x3f, i = 1; i < n; i++) {
			if (v > max >> 8)
				return -1;
			v = v << 8 | p[i];
		}
	} else {
		while (i < n && p[i] == ' ')
			i++;
		if (i == n || p[i] < '0' || p[i] > '7')
			return -1;
		for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
			if (v > max >> 3)
				return -1;
			v = v << 3 | (unsigned)(p[i] - '0');
		}
		for (; i < n; i++)
			if (p[i] != ' ' && p[i] != '\0')
				return -1;
	}
	*out = v;
	return v > max ? -1 : 0;
}

/* Decimal digits s[0..n), at least one, at most max. */
static int dec(const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return n ? 0 : -1;
}

/* A pax time, [-]seconds[.fraction]: fraction digits past 9 dropped. */
static int pax_time(const char *s, size_t n, struct timespec *ts)
{
	size_t neg = s[0] == '-', dot, i;
	unsigned long long sec;
	long nsec = 0, unit = 1000000000;

	for (dot = neg; dot < n && s[dot] != '.'; dot++)
		;
	if (dec(s + neg, dot - neg, TAR_NUM_MAX, &sec))
		return -1;
	for (i = dot + 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unit /= 10;
		nsec += (s[i] - '0') * unit;
	}
	ts->tv_sec = neg ? -(time_t)sec - (nsec > 0) : (time_t)sec;
	ts->tv_nsec = neg && nsec ? 1000000000 - nsec : nsec;
	return 0;
}

/* A whole pax record has been read: take its value.  An empty value
 * takes the key back. */
static int pax_apply(struct tar_reader *t)
{
	struct tar_pax *p = &t->pax;
	unsigned long long v = 0;

	t->have &= ~(1u << p->kind);
	if (!p->vlen || p->kind == K_OTHER)
		return 0;
	if (p->kind == K_PATH || p->kind == K_LINKPATH)
		(p->kind == K_PATH ? t->e.name : t->e.link)[p->vlen] = '\0';
	else if (p->kind == K_MTIME ? pax_time(p->val, p->vlen, &t->e.mtime)
				    : dec(p->val, p->vlen,
					  p->kind == K_SIZE ? TAR_NUM_MAX : ID_MAX, &v))
		return -1;
	if (p->kind == K_SIZE)
		t->e.size = (off_t)v;
	else if (p->kind == K_UID)
		t->e.uid = (uid_t)v;
	else if (p->kind == K_GID)
		t->e.gid = (gid_t)v;
	t->have |= 1u << p->kind;
	return 0;
}

/*
 * One byte of a pax header's records, "LEN KEY=VALUE\n", where LEN
 * counts the whole record, its own digits and the newline too.  Names go
 * straight into the next entry, numbers to p->val.  0 or -1.
 */
static int pax_byte(struct tar_reader *t, char c)
{
	struct tar_pax *p = &t->pax;
	char *dest = p->kind == K_PATH	     ? t->e.name
		     : p->kind == K_LINKPATH ? t->e.link
					     : p->val;
	size_t room = dest == p->val ? sizeof(p->val) : TAR_LONGNAME_MAX - 1;

	if (++p->pos == p->len && p->state != PAX_LEN) {
		if (p->state != PAX_VAL || c != '\n' || pax_apply(t))
			return -1;
		memset(p, 0, sizeof(*p));
	} else if (p->state == PAX_LEN && c >= '0' && c <= '9') {
		p->len = p->len * 10 + (size_t)(c - '0');
		return p->pos == 1 && c == '0' ? -1 : p->len > TAR_PAX_MAX ? -1 : 0;
	} else if (p->state == PAX_LEN) {
		/* past the space there must be room for "K=\n" */
		if (c != ' ' || p->pos == 1 || p->len < p->pos + 3)
			return -1;
		p->state = PAX_KEY;
	} else if (p->state == PAX_KEY && c != '=') {
		if (p->klen < sizeof(p->key))
			p->key[p->klen] = c;
		p->klen++;
	} else if (p->state == PAX_KEY) {
		if (!p->klen)
			return -1;
		for (p->kind = K_GID; p->kind > K_OTHER; p->kind--)
			if (p->klen == strlen(pax_keys[p->kind]) &&
			    !memcmp(p->key, pax_keys[p->kind], p->klen))
				break;
		p->state = PAX_VAL;
	} else if (p->kind != K_OTHER) {
		if (p->vlen >= room)
			return -1;
		dest[p->vlen++] = c;
	}
	return 0;
}

/* The body of a meta header has all been read. */
static int meta_done(struct tar_reader *t)
{
	char *s = t->meta == 'L' ? t->e.name : t->e.link;
	size_t n = strnlen(s, t->mlen);

	if (t->meta == 'x' && t->pax.pos)
		return bad("pax record cut by the end of its header", t->pos);
	if (t->meta != 'L' && t->meta != 'K')
		return 0;
	if (n >= TAR_LONGNAME_MAX)
		return bad("GNU long name of 4096 bytes or more", t->pos);
	s[n] = '\0';
	t->have |= 1u << (t->meta == 'L' ? K_PATH : K_LINKPATH);
	return 0;
}

/* The data or the meta header's body has all been read. */
static int body_end(struct tar_reader *t)
{
	int state = t->state;

	t->state = t->pad ? IN_PAD : IN_HEADER;
	return state == IN_META ? meta_done(t) : 0;
}

/* After a header: `size` bytes of data or meta header, then padding. */
static int body(struct tar_reader *t, int state, off_t size)
{
	t->left = size;
	t->pad = tar_padding(size);
	t->state = state;
	return size ? 0 : body_end(t);
}

/* A numeric field of the header being read, or -EPROTO naming it. */
#define NUM(t, h, field, max, out) \
	num(t, (h)->field, sizeof((h)->field), max, #field, out)
static int num(struct tar_reader *t, const char *f, size_t n, unsigned long long max,
	       const char *what, unsigned long long *out)
{
	char msg[64];

	if (!field_num(f, n, max, out))
		return 0;
	snprintf(msg, sizeof(msg), "bad %s field in a header", what);
	return bad(msg, t->pos - BLOCK);
}

/* A string field of n bytes, NUL-terminated unless it is full, to s. */
static size_t field_str(char *s, const char *f, size_t n)
{
	n = strnlen(f, n);
	memcpy(s, f, n);
	s[n] = '\0';
	return n;
}

/* A member's header; the meta headers before it are applied. */
static int member(struct tar_reader *t, const struct ustar *h, int posix, off_t size)
{
	struct tar_entry *e = &t->e;
	unsigned long long mode, uid, gid, mtime;
	size_t n = 0;
	int rc;

	if (NUM(t, h, mode, 0xffffffffULL, &mode) || NUM(t, h, uid, ID_MAX, &uid) ||
	    NUM(t, h, gid, ID_MAX, &gid) || NUM(t, h, mtime, TAR_NUM_MAX, &mtime))
		return -EPROTO;
	e->type = h->type == '\0' || h->type == '7' ? '0' : h->type;
	e->mode = (mode_t)(mode & 07777);
	if (!(t->have & 1u << K_UID))
		e->uid = (uid_t)uid;
	if (!(t->have & 1u << K_GID))
		e->gid = (gid_t)gid;
	if (!(t->have & 1u << K_MTIME))
		e->mtime = (struct timespec){ (time_t)mtime, 0 };
	if (!(t->have & 1u << K_SIZE))
		e->size = size;
	if (e->type >= '1' && e->type <= '6')
		e->size = 0;
	if (!(t->have & 1u << K_PATH)) {
		if (posix && h->prefix[0]) {
			n = field_str(e->name, h->prefix, sizeof(h->prefix));
			e->name[n++] = '/';
		}
		field_str(e->name + n, h->name, sizeof(h->name));
	}
	if (e->type != '1' && e->type != '2')
		e->link[0] = '\0';
	else if (!(t->have & 1u << K_LINKPATH))
		field_str(e->link, h->link, sizeof(h->link));
	t->have = 0;
	rc = t->entry(t->ctx, e);
	return rc ? rc : body(t, IN_DATA, e->size);
}

/* A whole header block is in t->block. */
static int header(struct tar_reader *t)
{
	const struct ustar *h = (const struct ustar *)t->block;
	int posix = !memcmp(h->magic, "ustar", 6), gnu = !memcmp(h->magic, "ustar  ", 8);
	off_t at = t->pos - BLOCK;
	unsigned long long sum, size;

	if (!memcmp(t->block, tar_zeros, BLOCK)) {
		if (t->have)
			return bad("end of archive right after a meta header", at);
		t->state = t->state == IN_ZERO ? IN_END : IN_ZERO;
		return 0;
	}
	if (t->state == IN_ZERO)
		return bad("a lone zero block", at - BLOCK);
	if ((h->sum[0] & 0x80) || field_num(h->sum, sizeof(h->sum), 1 << 20, &sum) ||
	    ((long)sum != tar_sum(h, 0) && (long)sum != tar_sum(h, 1)))
		return bad("bad header checksum", at);
	if (!posix && !gnu && memcmp(h->magic, tar_zeros, 8)) /* v7 has none */
		return bad("unknown header magic", at);
	if (NUM(t, h, size, TAR_NUM_MAX, &size))
		return -EPROTO;
	switch (h->type) {
	case 'x':
	case 'g':
		if (size > TAR_PAX_MAX)
			return bad("pax header over 64 KiB", at);
		memset(&t->pax, 0, sizeof(t->pax));
		break;
	case 'L':
	case 'K':
		if (size > TAR_LONGNAME_MAX)
			return bad("GNU long name over 4096 bytes", at);
		t->mlen = 0;
		break;
	case 'S': /* the map's blocks would follow, outside the size */
		if (gnu && t->block[GNU_ISEXTENDED])
			return bad("GNU sparse member with extended headers", at);
		/* fall through */
	default:
		return member(t, h, posix, (off_t)size);
	}
	t->meta = h->type;
	return body(t, IN_META, (off_t)size);
}

/* n bytes of a meta header's body. */
static int meta(struct tar_reader *t, const char *buf, size_t n)
{
	size_t i;

	if (t->meta == 'L' || t->meta == 'K') {
		memcpy((t->meta == 'L' ? t->e.name : t->e.link) + t->mlen, buf, n);
		t->mlen += n;
	} else if (t->meta == 'x') {
		for (i = 0; i < n; i++)
			if (pax_byte(t, buf[i]))
				return bad("bad pax record", t->pos - (off_t)(n - i));
	}
	return 0;
}

void tar_reader_init(struct tar_reader *t, tar_entry_fn entry, tar_data_fn data,
		     void *ctx)
{
	memset(t, 0, sizeof(*t));
	t->entry = entry;
	t->data = data;
	t->ctx = ctx;
	t->state = IN_HEADER;
}

int tar_feed(struct tar_reader *t, const char *buf, size_t len)
{
	size_t n = 0;

	for (; !t->err && len; buf += n, len -= n) {
		if (t->state == IN_HEADER || t->state == IN_ZERO) {
			n = BLOCK - t->fill < len ? BLOCK - t->fill : len;
			memcpy(t->block + t->fill, buf, n);
			t->fill = (t->fill + n) % BLOCK;
			t->pos += (off_t)n;
			if (!t->fill)
				t->err = header(t);
		} else if (t->state == IN_DATA || t->state == IN_META) {
			n = (off_t)len < t->left ? len : (size_t)t->left;
			t->pos += (off_t)n;
			t->left -= (off_t)n;
			t->err = t->state == IN_DATA ? t->data(t->ctx, buf, n)
						     : meta(t, buf, n);
			if (!t->err && !t->left)
				t->err = body_end(t);
		} else if (t->state == IN_PAD) {
			n = (off_t)len < t->pad ? len : (size_t)t->pad;
			t->pos += (off_t)n;
			t->pad -= (off_t)n;
			t->state = t->pad ? IN_PAD : IN_HEADER;
		} else { /* IN_END: only zeros may follow */
			for (n = 0; n < len && !buf[n]; n++)
				;
			t->pos += (off_t)n;
			if (n < len)
				t->err = bad("data after the end of the archive", t->pos);
		}
	}
	return t->err;
}

int tar_finish(struct tar_reader *t)
{
	static const char *const where[] = {
		[IN_HEADER] = "cut inside a header",
		[IN_ZERO] = "cut inside a header",
		[IN_META] = "cut inside a meta header",
		[IN_DATA] = "cut inside a member's data",
		[IN_PAD] = "cut inside the padding after data",
	};
	int at_header = t->state == IN_HEADER || t->state == IN_ZERO;

	if (t->err || t->state == IN_END || (at_header && !t->fill && !t->have))
		return t->err;
	sbx_failf("tar: the archive is %s, at byte %lld",
		  at_header && !t->fill ? "over after a meta header, before its member"
					: where[t->state],
		  (long long)t->pos);
	return t->err = -EPROTO;
}

int tar_name_is(const char *entry_name, const char *base)
{
	if (!strncmp(entry_name, "./", 2))
		entry_name += 2;
	return base[0] && !strchr(base, '/') && !strcmp(entry_name, base);
}

off_t tar_padding(off_t size)
{
	return (BLOCK - size % BLOCK) % BLOCK;
}

/* SPDX-License-Identifier: MIT */
/*
 * Vtrix: the pure parts, with no I/O, so that the unit tests and fuzzers
 * reach them: failure codes to errno (the one mapping), states, times,
 * UTF-8, base64 and the find(1) records that carry file metadata.
 */
#include "vtrix.h"

/* ---- errors: the one mapping ---- */

static int http_like_errno(long status)
{
	switch (status) {
	case 400:
	case 422:
		return EINVAL;
	case 401:
	case 403:
		return EACCES;
	case 404:
		return ENOENT;
	case 408:
	case 504:
		return ETIMEDOUT;
	case 409:
		return EBUSY;
	case 413:
		return EFBIG;
	case 429:
	case 503:
		return EAGAIN;
	default:
		return EIO;
	}
}

int vx_errno(enum vx_src src, long code)
{
	if (src == VX_ENVELOPE) {
		/* Atlas codes seen so far are the HTTP status times 100
		 * (40400); a bare HTTP-like code is taken as it is. */
		return http_like_errno(code >= 10000 ? code / 100 : code);
	}
	if (src == VX_RPC) {
		switch (code) {
		case -32001:
			return ENOENT; /* file not found: the one code the SDKs know */
		case -32602:
			return EINVAL;
		case -32601:
			return EOPNOTSUPP;
		case -32600:
		case -32700:
			return EPROTO;
		default:
			return EIO; /* -32000 and the rest: a failure with text */
		}
	}
	return http_like_errno(code); /* VX_HTTP: a status without an envelope */
}

/* "2026-06-01T15:16:34Z", with optional fraction and offset. */
int vx_parse_time(const char *s, struct timespec *ts)
{
	struct tm tm = { 0 };
	const char *p;
	long nsec = 0, off = 0;
	int digits = 0;

	if (!s)
		return -1;
	p = strptime(s, "%Y-%m-%d", &tm);
	if (!p || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p = strptime(p + 1, "%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*p - '0');
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh = 0, mm = 0;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
			return -1;
		off = sign * (hh * 3600L + mm * 60L);
	} else if (*p != 'Z' && *p != 'z') {
		return -1;
	}
	ts->tv_sec = timegm(&tm) - off;
	ts->tv_nsec = nsec;
	return 0;
}

enum sbx_state vx_map_state(const char *s)
{
	static const struct {
		const char *word;
		enum sbx_state state;
	} map[] = {
		{ "active", SBX_STATE_RUNNING },    { "stopped", SBX_STATE_STOPPED },
		{ "creating", SBX_STATE_CREATING }, { "warming", SBX_STATE_CREATING },
		{ "warm", SBX_STATE_CREATING },	    { "destroying", SBX_STATE_DELETING },
		{ "deleting", SBX_STATE_DELETING }, { "deleted", SBX_STATE_DELETING },
		{ "failed", SBX_STATE_ERROR },
	};
	size_t i;

	for (i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].word, s))
			return map[i].state;
	return SBX_STATE_UNKNOWN;
}

/* ---- text ---- */

int vx_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			n = 1;
		else if ((*p & 0xf0) == 0xe0)
			n = 2;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			n = 3;
		else
			return 0;
		for (int i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		if (n == 2 &&
		    ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
			return 0;
		if (n == 3 &&
		    ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
			return 0;
		p += n + 1;
	}
	return 1;
}

static int b64_value(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Strict base64 (whitespace skipped) into out (room for len*3/4 bytes);
 * -1 if it is not base64. */
ssize_t vx_b64_decode(unsigned char *out, const char *in, size_t len)
{
	unsigned v = 0;
	int bits = 0, pad = 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)in[i], d;

		if (ch == '\n' || ch == '\r' || ch == ' ')
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		d = b64_value(ch);
		if (d < 0 || pad)
			return -1;
		v = (v << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	if (pad > 2 || bits >= 6)
		return -1;
	return (ssize_t)o;
}

/* ---- find records ---- */

/* "1700000000.1234567890" into ts. */
static int parse_stamp(const char *s, struct timespec *ts)
{
	char *end;
	long long sec = strtoll(s, &end, 10);
	long nsec = 0;
	int digits = 0;

	if (end == s)
		return -1;
	if (*end == '.') {
		for (end++; *end >= '0' && *end <= '9'; end++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*end - '0');
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	if (*end)
		return -1;
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = nsec;
	return 0;
}

static mode_t type_of(char y)
{
	switch (y) {
	case 'f':
		return S_IFREG;
	case 'd':
		return S_IFDIR;
	case 'l':
		return S_IFLNK;
	case 'p':
		return S_IFIFO;
	case 's':
		return S_IFSOCK;
	case 'c':
		return S_IFCHR;
	case 'b':
		return S_IFBLK;
	default:
		return 0;
	}
}

/*
 * One find record ("y mode uid gid size nlink ino mtime atime ctime
 * name") into st and *name.  -EPROTO for a record that lies.
 */
int vx_parse_record(char *rec, struct stat *st, const char **name)
{
	char *f[11], *p = rec;
	unsigned long long num[6];
	int i;

	for (i = 0; i < 10; i++) {
		char *sp = strchr(p, ' ');

		if (!sp)
			return -EPROTO;
		*sp = '\0';
		f[i] = p;
		p = sp + 1;
	}
	f[10] = p;
	memset(st, 0, sizeof(*st));
	if (strlen(f[0]) != 1 || !type_of(f[0][0]))
		return -EPROTO;
	for (i = 0; i < 6; i++) {
		char *end;

		num[i] = strtoull(f[i + 1], &end, i == 0 ? 8 : 10);
		if (end == f[i + 1] || *end)
			return -EPROTO;
	}
	if (num[0] > 07777 || num[1] > 0xffffffffull || num[2] > 0xffffffffull ||
	    num[3] > (1ull << 62))
		return -EPROTO;
	if (parse_stamp(f[7], &st->st_mtim) || parse_stamp(f[8], &st->st_atim) ||
	    parse_stamp(f[9], &st->st_ctim))
		return -EPROTO;
	st->st_mode = type_of(f[0][0]) | (mode_t)num[0];
	st->st_uid = (uid_t)num[1];
	st->st_gid = (gid_t)num[2];
	st->st_size = (off_t)num[3];
	st->st_nlink = (nlink_t)(num[4] ? num[4] : 1);
	/* No inode number: the node table keys files by name (a file made
	 * here has none until it is on the server). */
	st->st_ino = 0;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	*name = f[10];
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Docker: what the engine sends that needs parsing, apart from its I/O,
 * so that unit tests and a fuzz target reach it.  Every byte here comes
 * from the engine, and through it from the container: nothing is
 * trusted.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/time.h"

#define PATH_STAT_MAX (12u << 10) /* base64 of a stat: a name and a target */

void dk_demux_init(struct dk_demux *d,
		   int (*out)(void *ctx, int stream, const char *buf, size_t len),
		   void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->out = out;
	d->ctx = ctx;
}

int dk_demux_feed(struct dk_demux *d, const char *buf, size_t len)
{
	while (len) {
		size_t n;
		int rc;

		if (!d->left) {
			while (len && d->nhead < sizeof(d->head)) {
				d->head[d->nhead++] = (unsigned char)*buf++;
				len--;
			}
			if (d->nhead < sizeof(d->head))
				return 0;
			if (d->head[0] > 2 || d->head[1] || d->head[2] || d->head[3]) {
				sbx_failf("docker: the output stream is not multiplexed "
					  "(frame header %02x %02x %02x %02x)",
					  d->head[0], d->head[1], d->head[2], d->head[3]);
				return -EPROTO;
			}
			d->stream = d->head[0];
			d->left = (uint32_t)d->head[4] << 24 |
				  (uint32_t)d->head[5] << 16 | (uint32_t)d->head[6] << 8 |
				  d->head[7];
			d->nhead = 0;
			continue;
		}
		n = len < d->left ? len : d->left;
		rc = d->out(d->ctx, d->stream, buf, n);
		if (rc)
			return rc;
		buf += n;
		len -= n;
		d->left -= (uint32_t)n;
	}
	return 0;
}

int dk_demux_clean(const struct dk_demux *d)
{
	return !d->left && !d->nhead;
}

mode_t dk_go_mode(uint32_t m)
{
	mode_t mode = m & 0777;

	if (m & (1u << 31))
		mode |= S_IFDIR;
	else if (m & (1u << 27))
		mode |= S_IFLNK;
	else if (m & (1u << 26))
		mode |= (m & (1u << 21)) ? S_IFCHR : S_IFBLK;
	else if (m & (1u << 25))
		mode |= S_IFIFO;
	else if (m & (1u << 24))
		mode |= S_IFSOCK;
	else
		mode |= S_IFREG;
	if (m & (1u << 23))
		mode |= S_ISUID;
	if (m & (1u << 22))
		mode |= S_ISGID;
	if (m & (1u << 20))
		mode |= S_ISVTX;
	return mode;
}

int dk_parse_path_stat(struct stat *st, char *link, size_t size, const char *value,
		       size_t len)
{
	unsigned char *json;
	double mode, bytes;
	const char *t;
	ssize_t n;
	cJSON *j;
	int rc = -EPROTO;

	if (!len || len > PATH_STAT_MAX)
		return -EPROTO;
	json = malloc(B64_DECODED_MAX(len));
	if (!json)
		return -ENOMEM;
	n = b64_decode(json, value, len);
	j = n > 0 ? json_parse((const char *)json, (size_t)n) : NULL;
	free(json);
	if (!cJSON_IsObject(j) || !json_num(j, "mode", &mode) ||
	    !json_num(j, "size", &bytes) || mode < 0 || mode > 4294967295.0 ||
	    bytes < 0 || bytes > 9.2e18 ||
	    rfc3339_parse(&st->st_mtim, json_str(j, "mtime")))
		goto out;
	t = json_str(j, "linkTarget");
	st->st_mode = dk_go_mode((uint32_t)mode);
	st->st_size = (off_t)bytes;
	st->st_nlink = 1;
	st->st_atim = st->st_ctim = st->st_mtim;
	if (link) {
		if (t && strlen(t) >= size)
			goto out;
		snprintf(link, size, "%s", S_ISLNK(st->st_mode) && t ? t : "");
	}
	rc = 0;
out:
	cJSON_Delete(j);
	return rc;
}

int dk_version_cmp(const char *a, const char *b)
{
	long amaj = strtol(a, (char **)&a, 10), bmaj = strtol(b, (char **)&b, 10);
	long amin = *a == '.' ? strtol(a + 1, NULL, 10) : 0;
	long bmin = *b == '.' ? strtol(b + 1, NULL, 10) : 0;

	if (amaj != bmaj)
		return amaj < bmaj ? -1 : 1;
	return amin < bmin ? -1 : amin > bmin;
}

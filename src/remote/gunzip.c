/* SPDX-License-Identifier: MIT */
/* gzip streams from a sandbox, inflated within a bound.  See gunzip.h. */
#include <errno.h>
#include <limits.h>
#include <zlib.h>

#include "sbxfs/remote/gunzip.h"

int gunzip_is(const char *buf, size_t len)
{
	return len >= 3 && (unsigned char)buf[0] == 0x1f &&
	       (unsigned char)buf[1] == 0x8b && buf[2] == 8;
}

int gunzip(struct strbuf *out, const char *in, size_t len)
{
	z_stream z = { 0 };
	int zr, rc = 0;

	/* 16 + window bits: a gzip header and trailer, checked. */
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	do {
		unsigned char buf[65536];
		uInt in_now = len > UINT_MAX ? UINT_MAX : (uInt)len;

		z.next_in = (Bytef *)in;
		z.avail_in = in_now;
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		zr = inflate(&z, Z_NO_FLUSH);
		in += in_now - z.avail_in;
		len -= in_now - z.avail_in;
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
			rc = zr == Z_MEM_ERROR ? -ENOMEM : -EPROTO;
			break;
		}
		if (sizeof(buf) - z.avail_out &&
		    strbuf_add(out, (const char *)buf, sizeof(buf) - z.avail_out)) {
			rc = -EFBIG;
			break;
		}
		/* No progress with input and room left: cut short. */
		if (zr == Z_BUF_ERROR || (zr == Z_OK && !len && z.avail_out)) {
			rc = -EPROTO;
			break;
		}
	} while (zr != Z_STREAM_END);
	inflateEnd(&z);
	return rc;
}

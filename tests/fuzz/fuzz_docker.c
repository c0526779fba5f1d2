/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what a hostile engine or container sends the Docker
 * provider outside tar archives: an exec's multiplexed output stream, fed
 * in two pieces split where the first byte says, and the archive API's
 * path stat header.  Nothing may be read or written out of bounds, a
 * frame never gives more bytes than its header said, and a stat that
 * parses has a file type and a link target within its room.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/providers/docker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct count {
	size_t bytes;
};

static int out(void *ctx, int stream, const char *buf, size_t len)
{
	struct count *c = ctx;

	if (stream < 0 || stream > 2 || !len)
		abort();
	c->bytes += len;
	(void)buf;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct count c = { 0 };
	struct dk_demux d;
	struct stat st;
	char link[64];
	size_t cut = size ? data[0] % (size + 1) : 0;

	dk_demux_init(&d, out, &c);
	if (!dk_demux_feed(&d, s, cut) && !dk_demux_feed(&d, s + cut, size - cut) &&
	    c.bytes > size)
		abort();

	if (!dk_parse_path_stat(&st, link, sizeof(link), s, size) &&
	    (!(st.st_mode & S_IFMT) || strnlen(link, sizeof(link)) == sizeof(link)))
		abort();
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what a hostile Rexec server or container sends back
 * from scripts: the wrapper's output (base64 of stdout, "--", base64 of
 * stderr) and a command poll's answer.  Nothing may be read or written
 * out of bounds; decoded output stays within its bound, and a poll that
 * parses points inside the answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/providers/rexec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct rx_out o;
	struct rx_poll pl;
	int rc;

	rx_out_init(&o, 1024);
	if (!rx_unwrap(&o, s, size) && (o.out.len > 1024 || o.err.len > 2 * RX_ERR_KEEP))
		abort();
	rx_out_release(&o);

	rc = rx_poll_parse(&pl, s, size);
	if (rc >= 0 &&
	    (pl.out < s || pl.err != pl.out + pl.nout || pl.err + pl.nerr != s + size))
		abort();
	return 0;
}

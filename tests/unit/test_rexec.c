/* SPDX-License-Identifier: MIT */
/* The Rexec provider's pure parts: the script wrapper's output and the
 * command poll's answer. */
#include <errno.h>
#include <string.h>

#include "../../src/providers/rexec.h"
#include "test.h"

static int unwrap(struct rx_out *o, size_t max, const char *s)
{
	rx_out_init(o, max);
	return rx_unwrap(o, s, strlen(s));
}

static void check_unwrap(void)
{
	struct rx_out o;

	/* "hello" and "oops", across lines, with the terminal's "\r\n". */
	CHECK(unwrap(&o, 64, "aGVs\r\nbG8=\r\n--\r\nb29wcw==\r\n") == 0);
	CHECK(o.out.len == 5 && !memcmp(o.out.buf, "hello", 5));
	CHECK(o.err.len == 4 && !memcmp(o.err.buf, "oops", 4));
	rx_out_release(&o);
	CHECK(unwrap(&o, 64, "--\n") == 0 && o.out.len == 0 && o.err.len == 0);
	rx_out_release(&o);
	/* A second "--" is data, and no base64. */
	CHECK(unwrap(&o, 64, "--\n--\n") == -EPROTO);
	rx_out_release(&o);
	/* No separator: the wrapper did not run. */
	CHECK(unwrap(&o, 64, "aGk=\n") == -EPROTO);
	rx_out_release(&o);
	CHECK(unwrap(&o, 64, "sh: base64: not found\n--\n") == -EPROTO);
	rx_out_release(&o);
	CHECK(unwrap(&o, 3, "aGVsbG8=\n--\n") == -EFBIG);
	rx_out_release(&o);
}

static int poll(struct rx_poll *pl, const char *s, size_t len)
{
	return rx_poll_parse(pl, s, len);
}

static void check_poll(void)
{
	struct rx_poll pl;

	CHECK(poll(&pl, "- 3 2\nabcde", 11) == 0);
	CHECK(pl.nout == 3 && !memcmp(pl.out, "abc", 3));
	CHECK(pl.nerr == 2 && !memcmp(pl.err, "de", 2));
	CHECK(poll(&pl, "7 0 0\n", 6) == 1 && pl.code == 7);
	CHECK(poll(&pl, "0 1 0\nx", 7) == 1 && pl.code == 0 && pl.nout == 1);
	/* A full poll is followed by another, ended or not. */
	{
		static char big[RX_POLL_OUT_MAX + 32];
		int n = snprintf(big, sizeof(big), "0 %d 0\n", RX_POLL_OUT_MAX);

		CHECK(poll(&pl, big, (size_t)n + RX_POLL_OUT_MAX) == 0);
	}
	CHECK(poll(&pl, "gone 0 0\n", 9) == -ENOENT);
	/* Lengths that do not add up, negative, over the bound; no header. */
	CHECK(poll(&pl, "- 3 0\nab", 8) == -EPROTO);
	CHECK(poll(&pl, "- 1 0\nabc", 9) == -EPROTO);
	CHECK(poll(&pl, "- -1 0\n", 7) == -EPROTO);
	CHECK(poll(&pl, "- 999999999 0\n", 14) == -EPROTO);
	CHECK(poll(&pl, "- 1\n2\n", 6) == -EPROTO);
	CHECK(poll(&pl, "- 0 0", 5) == -EPROTO);
	CHECK(poll(&pl, NULL, 0) == -EPROTO);
}

void test_rexec(void)
{
	check_unwrap();
	check_poll();
}

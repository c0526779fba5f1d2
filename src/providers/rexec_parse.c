/* SPDX-License-Identifier: MIT */
/*
 * Rexec: the pure parts, with no I/O, so that the unit tests and the
 * fuzzers reach them: the decoder of the script wrapper's output
 * (rexec_run.c) and of a command poll's answer (rexec_cmd.c).
 */
#include "rexec.h"

void rx_out_init(struct rx_out *o, size_t max)
{
	o->out = (struct strbuf)STRBUF_INIT(max);
	o->err = (struct strbuf)STRBUF_INIT(RX_ERR_KEEP * 2);
	o->code = -1;
}

void rx_out_release(struct rx_out *o)
{
	strbuf_release(&o->out);
	strbuf_release(&o->err);
}

int rx_unwrap(struct rx_out *res, const char *s, size_t n)
{
	struct b64_decoder d = B64_DECODER_INIT;
	struct strbuf *to = &res->out;
	size_t i = 0;
	int rc = 0, sep = 0;

	while (i < n && !rc) {
		size_t e = i, len;

		while (e < n && s[e] != '\n')
			e++;
		for (len = e; len > i && s[len - 1] == '\r'; len--)
			;
		if (len - i == 2 && s[i] == '-' && s[i + 1] == '-' && !sep) {
			rc = b64_finish(&d, to);
			sep = 1;
			to = &res->err;
		} else {
			rc = b64_feed(&d, to, s + i, e - i);
		}
		i = e + 1;
	}
	if (!rc)
		rc = sep ? b64_finish(&d, to) : -EPROTO;
	if (rc == -EPROTO)
		sbx_failf("rexec: a script's output is garbled (does the image have "
			  "mktemp, base64 and head?)");
	else if (rc)
		sbx_failf("rexec: a script's output is over %zu bytes", res->out.max);
	return rc == -E2BIG ? -EFBIG : rc;
}

int rx_poll_parse(struct rx_poll *pl, const char *buf, size_t len)
{
	char rcw[16];
	long long no, ne;
	const char *nl = buf ? memchr(buf, '\n', len) : NULL;
	char head[64];

	memset(pl, 0, sizeof(*pl));
	/* The header line, terminated, so that nothing past it is read. */
	if (nl && nl - buf <= 60) {
		memcpy(head, buf, (size_t)(nl - buf));
		head[nl - buf] = '\0';
	}
	if (!nl || nl - buf > 60 || sscanf(head, "%15s %lld %lld", rcw, &no, &ne) != 3 ||
	    no < 0 || ne < 0 || no > RX_POLL_OUT_MAX || ne > RX_POLL_ERR_MAX ||
	    (size_t)(nl + 1 - buf) + (size_t)no + (size_t)ne != len) {
		sbx_failf("rexec: command output: unexpected answer");
		return -EPROTO;
	}
	if (!strcmp(rcw, "gone")) {
		sbx_failf("rexec: the command's record in the container is gone");
		return -ENOENT;
	}
	pl->out = nl + 1;
	pl->nout = (size_t)no;
	pl->err = nl + 1 + no;
	pl->nerr = (size_t)ne;
	if (!strcmp(rcw, "-") || no == RX_POLL_OUT_MAX || ne == RX_POLL_ERR_MAX)
		return 0;
	pl->code = atoi(rcw);
	return 1;
}

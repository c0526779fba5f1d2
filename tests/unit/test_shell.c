/* SPDX-License-Identifier: MIT */
/* Shell quoting and the base64 wrapper: what /bin/sh gets back must be the
 * bytes we meant, whatever they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/shell.h"
#include "test.h"

/* Run `printf %s WORD` through /bin/sh and compare the output with s. */
static int round_trips(const char *s)
{
	struct strbuf cmd = STRBUF_INIT(1 << 16);
	char out[512];
	size_t n;
	FILE *p;
	int ok;

	strbuf_addf(&cmd, "printf %%s ");
	sh_quote(&cmd, s);
	p = popen(cmd.buf, "r");
	strbuf_release(&cmd);
	if (!p)
		return 0;
	n = fread(out, 1, sizeof(out), p);
	ok = pclose(p) == 0 && n == strlen(s) && !memcmp(out, s, n);
	return ok;
}

void test_shell(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	static const char *const words[] = {
		"plain",       "with space",	   "it's", "'",
		"''",	       "$HOME `id` $(id)", "a\nb", "-n",
		"back\\slash", "caf\xe9 \xff",
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		CHECK(round_trips(words[i]));

	b64_encode(&sb, "", 0);
	CHECK(sb.len == 0);
	b64_encode(&sb, "f", 1);
	CHECK(!strcmp(sb.buf, "Zg=="));
	strbuf_release(&sb);
	b64_encode(&sb, "foobar", 6);
	CHECK(!strcmp(sb.buf, "Zm9vYmFy"));
	strbuf_release(&sb);
	b64_encode(&sb, "\xff\xfe", 2);
	CHECK(!strcmp(sb.buf, "//4="));
	strbuf_release(&sb);

	/* The wrapper is plain ASCII and runs the script as given. */
	sh_wrap_base64(&sb, "SBXFS_T=1", "printf '%s' \"$SBXFS_T caf\xc3\xa9\"");
	for (size_t i = 0; i < sb.len; i++)
		CHECK((unsigned char)sb.buf[i] < 0x80);
	{
		FILE *p = popen(sb.buf, "r");
		char out[64] = "";
		size_t n = p ? fread(out, 1, sizeof(out) - 1, p) : 0;

		CHECK(p && pclose(p) == 0);
		out[n] = '\0';
		CHECK(!strcmp(out, "1 caf\xc3\xa9"));
	}
	strbuf_release(&sb);
}

/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "sbxfs/shell.h"

int sh_quote(struct strbuf *sb, const char *s)
{
	int rc = strbuf_add(sb, "'", 1);

	while (!rc && *s) {
		size_t n = strcspn(s, "'");

		rc = strbuf_add(sb, s, n);
		s += n;
		if (!rc && *s == '\'') {
			rc = strbuf_add(sb, "'\\''", 4);
			s++;
		}
	}
	return rc ? rc : strbuf_add(sb, "'", 1);
}

int sh_base64(struct strbuf *sb, const void *data, size_t len)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	int rc = 0;

	while (!rc && len) {
		unsigned v = (unsigned)p[0] << 16;
		char out[4];

		v |= len > 1 ? (unsigned)p[1] << 8 : 0;
		v |= len > 2 ? p[2] : 0;
		out[0] = abc[(v >> 18) & 63];
		out[1] = abc[(v >> 12) & 63];
		out[2] = len > 1 ? abc[(v >> 6) & 63] : '=';
		out[3] = len > 2 ? abc[v & 63] : '=';
		rc = strbuf_add(sb, out, 4);
		p += len > 3 ? 3 : len;
		len -= len > 3 ? 3 : len;
	}
	return rc;
}

int sh_wrap_base64(struct strbuf *sb, const char *env, const char *script)
{
	int rc = 0;

	if (env)
		rc = strbuf_addf(sb, "%s ", env);
	/* $(...) would strip trailing newlines, which a script never needs. */
	if (!rc)
		rc = strbuf_addf(sb, "/bin/sh -c \"$(echo '");
	if (!rc)
		rc = sh_base64(sb, script, strlen(script));
	return rc ? rc : strbuf_addf(sb, "' | base64 -d)\"");
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/provider.h"
#include "sbxfs/remote/json.h"

const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int json_num(const cJSON *o, const char *key, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v))
		return 0;
	*out = v->valuedouble;
	return 1;
}

cJSON *json_parse(const char *buf, size_t len)
{
	return cJSON_ParseWithLength(buf ? buf : "", buf ? len : 0);
}

int json_utf8_valid(const char *s)
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

char *json_text(char *out, size_t size, const char *s, size_t max)
{
	size_t i, o = 0;

	if (!size)
		return out;
	for (i = 0; s && s[i] && i < max && o + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return out;
}

int json_add_int_arg(cJSON *body, const struct json_int_arg *args, const char *key,
		     const char *v)
{
	char *end;
	long n;

	for (; args->key; args++)
		if (!strcmp(args->key, key))
			break;
	if (!args->key)
		return 0;
	n = strtol(v, &end, 10);
	if (end == v || *end || n < args->min || n > args->max) {
		sbx_failf("bad %s \"%s\": a whole number is needed", key, v);
		return -EINVAL;
	}
	cJSON_AddNumberToObject(body, args->field, (double)n);
	return 1;
}

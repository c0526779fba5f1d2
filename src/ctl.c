/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sbxfs/ctl.h"

char *ctl_next_line(char *buf, size_t len, size_t *pos)
{
	char *line, *nl;
	size_t end;

	if (*pos >= len)
		return NULL;
	line = buf + *pos;
	nl = memchr(line, '\n', len - *pos);
	end = nl ? (size_t)(nl - buf) : len;
	buf[end] = '\0';
	*pos = end + 1;
	if (end > 0 && line < buf + end && buf[end - 1] == '\r')
		buf[end - 1] = '\0';
	return line;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Split into fields; quoted fields are unquoted in place. */
static int split_fields(char *line, char **argv, int max, int *argc)
{
	char *r = line, *w;
	int n = 0;

	for (;;) {
		while (is_blank(*r))
			r++;
		if (!*r)
			break;
		if (n == max)
			return -E2BIG;
		argv[n++] = w = r;
		while (*r && !is_blank(*r)) {
			if (*r != '\'') {
				*w++ = *r++;
				continue;
			}
			r++; /* a quoted run, '' inside for a quote */
			for (;;) {
				if (!*r)
					return -EINVAL;
				if (*r == '\'' && r[1] == '\'') {
					*w++ = '\'';
					r += 2;
				} else if (*r == '\'') {
					r++;
					break;
				} else {
					*w++ = *r++;
				}
			}
		}
		if (*r)
			r++;
		*w = '\0';
	}
	argv[n] = NULL;
	*argc = n;
	return 0;
}

int ctl_parse_line(struct ctl_cmd *out, char *line, const struct ctl_verb *table,
		   char *why, size_t whysize)
{
	char quoted[96];
	int rc, i, nargs;

	out->index = -1;
	out->argc = 0;
	out->argv[0] = NULL;
	if (!line)
		return -EINVAL;
	snprintf(quoted, sizeof(quoted), "%.80s%s", line, strlen(line) > 80 ? "..." : "");
	if (strlen(line) > CTL_LINE_MAX) {
		snprintf(why, whysize, "line too long (%zu bytes, at most %d): \"%s\"",
			 strlen(line), CTL_LINE_MAX, quoted);
		return -EINVAL;
	}
	rc = split_fields(line, out->argv, CTL_MAX_ARGS, &out->argc);
	if (rc == -E2BIG) {
		snprintf(why, whysize, "too many arguments (at most %d): \"%s\"",
			 CTL_MAX_ARGS - 1, quoted);
		return -EINVAL;
	}
	if (rc) {
		snprintf(why, whysize, "unterminated quote: \"%s\"", quoted);
		return -EINVAL;
	}
	if (out->argc == 0)
		return -ENODATA;
	for (i = 0; table[i].verb; i++)
		if (!strcmp(table[i].verb, out->argv[0]))
			break;
	if (!table[i].verb) {
		snprintf(why, whysize, "unknown command \"%s\"", quoted);
		return -EINVAL;
	}
	out->index = i;
	nargs = out->argc - 1;
	if (nargs < table[i].min_args ||
	    (table[i].max_args >= 0 && nargs > table[i].max_args)) {
		snprintf(why, whysize, "wrong number of arguments: \"%s\"", quoted);
		return -EINVAL;
	}
	return 0;
}

int ctl_split_kv(char *arg, char **key, char **value)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg)
		return -EINVAL;
	*eq = '\0';
	*key = arg;
	*value = eq + 1;
	return 0;
}

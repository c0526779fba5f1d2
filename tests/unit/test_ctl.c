/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "sbxfs/ctl.h"
#include "test.h"

static const struct ctl_verb verbs[] = {
	{ "start", 0, 0 },
	{ "new", 1, -1 },
	{ "kill", 0, 1 },
	{ NULL, 0, 0 },
};

static int parse(struct ctl_cmd *c, const char *text, char *why)
{
	static char line[CTL_LINE_MAX * 2];

	strcpy(line, text);
	return ctl_parse_line(c, line, verbs, why, 256);
}

void test_ctl(void)
{
	struct ctl_cmd c;
	char why[256], buf[64], *line, *k, *v;
	size_t pos = 0, len;
	static char huge[CTL_LINE_MAX + 10];

	CHECK(parse(&c, "start", why) == 0 && c.index == 0 && c.argc == 1);
	CHECK(parse(&c, "  new  box1   image=host ", why) == 0 && c.index == 1 &&
	      c.argc == 3 && !strcmp(c.argv[1], "box1") &&
	      !strcmp(c.argv[2], "image=host"));
	CHECK(parse(&c, "new b 'label.x=a b' 'it''s'", why) == 0 && c.argc == 4 &&
	      !strcmp(c.argv[2], "label.x=a b") && !strcmp(c.argv[3], "it's"));
	CHECK(parse(&c, "new b 'open", why) == -EINVAL && strstr(why, "quote"));
	CHECK(parse(&c, "frobnicate now", why) == -EINVAL &&
	      strstr(why, "unknown command \"frobnicate now\""));
	CHECK(parse(&c, "frobnicate now", why) == -EINVAL && c.index == -1 &&
	      c.argc == 2);
	CHECK(parse(&c, "start extra", why) == -EINVAL && strstr(why, "wrong number") &&
	      c.index == 0);
	CHECK(parse(&c, "new", why) == -EINVAL);
	CHECK(parse(&c, "kill TERM", why) == 0 && c.argc == 2);
	CHECK(parse(&c, "   ", why) == -ENODATA);
	CHECK(parse(&c, "", why) == -ENODATA);
	memset(huge, 'a', CTL_LINE_MAX + 5);
	CHECK(parse(&c, huge, why) == -EINVAL && strstr(why, "too long") && c.argc == 0);

	/* Several lines in one write, CRLF and no final newline. */
	strcpy(buf, "stop\r\nstart\n\nnew x");
	len = strlen(buf);
	line = ctl_next_line(buf, len, &pos);
	CHECK(line && !strcmp(line, "stop"));
	line = ctl_next_line(buf, len, &pos);
	CHECK(line && !strcmp(line, "start"));
	line = ctl_next_line(buf, len, &pos);
	CHECK(line && !strcmp(line, ""));
	line = ctl_next_line(buf, len, &pos);
	CHECK(line && !strcmp(line, "new x"));
	CHECK(ctl_next_line(buf, len, &pos) == NULL);

	strcpy(buf, "env.A=b=c");
	CHECK(ctl_split_kv(buf, &k, &v) == 0 && !strcmp(k, "env.A") && !strcmp(v, "b=c"));
	strcpy(buf, "=x");
	CHECK(ctl_split_kv(buf, &k, &v) == -EINVAL);
	strcpy(buf, "novalue");
	CHECK(ctl_split_kv(buf, &k, &v) == -EINVAL);
}

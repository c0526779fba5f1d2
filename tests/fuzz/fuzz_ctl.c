/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a control-file write, split into lines and parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/ctl.h"

static const struct ctl_verb verbs[] = {
	{ "new", 1, -1 }, { "rm", 1, 1 }, { "start", 0, 0 },
	{ "kill", 0, 1 }, { NULL, 0, 0 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *line, why[256];
	struct ctl_cmd c;
	size_t pos = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	while ((line = ctl_next_line(buf, size, &pos))) {
		if (ctl_parse_line(&c, line, verbs, why, sizeof(why)) == 0) {
			for (int i = 1; i < c.argc; i++) {
				char *k, *v;

				ctl_split_kv(c.argv[i], &k, &v);
			}
		} else if (c.argc > 0 && c.argv[0] == NULL) {
			abort(); /* a failed parse must leave argv usable */
		}
	}
	free(buf);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: an error answer from a server.  The first two bytes
 * are an HTTP status, the rest the body: its words must come out
 * printable and bounded, its errno from the tables.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/errmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "message", "error", NULL };
	const struct errmap *const maps[] = { errmap_http, NULL };
	char text[64], *body;
	long status;
	int err;

	if (size < 2)
		return 0;
	status = (long)data[0] << 8 | data[1];
	body = malloc(size - 1);
	if (!body)
		return 0;
	memcpy(body, data + 2, size - 2);
	body[size - 2] = '\0';
	errmap_text(text, sizeof(text), body, size - 2, keys);
	for (size_t i = 0; text[i]; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f)
			abort();
	err = errmap_errno(maps, status);
	if (err <= 0 || errmap_fail_http("fuzz", "call", status, text, NULL, err) != -err)
		abort();
	free(body);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* libFuzzer target: times in a server's JSON (RFC 3339 and Go's form). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct timespec ts = { 0, 0 };

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (rfc3339_parse(&ts, s) == 0 && (ts.tv_nsec < 0 || ts.tv_nsec > 999999999))
		abort();
	free(s);
	return 0;
}

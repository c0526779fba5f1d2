/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "sbxfs/provider.h"
#include "test.h"

void test_fail(void)
{
	char big[2048];

	sbx_fail_clear();
	CHECK(!strcmp(sbx_fail_text(), ""));

	/* A failure wrapped in its context keeps both texts intact. */
	sbx_failf("HTTP %d: %s", 500, "internal error");
	sbx_failf("daytona: upload \"%s\": %s", "/a", sbx_fail_text());
	CHECK(!strcmp(sbx_fail_text(),
		      "daytona: upload \"/a\": HTTP 500: internal error"));
	sbx_failf("%s; %s", sbx_fail_text(), sbx_fail_text());
	CHECK(!strcmp(sbx_fail_text(),
		      "daytona: upload \"/a\": HTTP 500: internal error; "
		      "daytona: upload \"/a\": HTTP 500: internal error"));

	/* Past the buffer, the text is cut, never overrun. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sbx_failf("%s", big);
	CHECK(strlen(sbx_fail_text()) == 1023);
	sbx_failf("outer: %s", sbx_fail_text());
	CHECK(!strncmp(sbx_fail_text(), "outer: xxx", 10) &&
	      strlen(sbx_fail_text()) == 1023);

	sbx_fail_clear();
	CHECK(!strcmp(sbx_fail_text(), ""));
}

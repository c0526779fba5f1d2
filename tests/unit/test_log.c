/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "sbxfs/log.h"
#include "test.h"

void test_log(void)
{
	CHECK(sbx_log_set_trace("fuse:cmd") == 0);
	CHECK(sbx_tracing(SBX_TRACE_FUSE) && sbx_tracing(SBX_TRACE_CMD));
	CHECK(!sbx_tracing(SBX_TRACE_CACHE));
	CHECK(sbx_log_set_trace("provider,cache") == 0);
	CHECK(sbx_tracing(SBX_TRACE_CACHE) && !sbx_tracing(SBX_TRACE_FUSE));
	CHECK(sbx_log_set_trace("all") == 0 && sbx_tracing(SBX_TRACE_FUSE));
	CHECK(sbx_log_set_trace("fuse:nope") == -EINVAL);
	CHECK(sbx_log_set_trace("") == 0 && !sbx_tracing(SBX_TRACE_FUSE));
}

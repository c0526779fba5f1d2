/* SPDX-License-Identifier: MIT */
/* The Vtrix provider's pure parts: the one errno mapping and states. */
#include <errno.h>
#include <string.h>

#include "../../src/providers/vtrix.h"
#include "test.h"

static void check_errno(void)
{
	CHECK(vx_errno(VX_ENVELOPE, 40000) == EINVAL);
	CHECK(vx_errno(VX_ENVELOPE, 40100) == EACCES);
	CHECK(vx_errno(VX_ENVELOPE, 40300) == EACCES);
	CHECK(vx_errno(VX_ENVELOPE, 40400) == ENOENT);
	CHECK(vx_errno(VX_ENVELOPE, 40900) == EBUSY);
	CHECK(vx_errno(VX_ENVELOPE, 42900) == EAGAIN);
	CHECK(vx_errno(VX_ENVELOPE, 50000) == EIO);
	CHECK(vx_errno(VX_ENVELOPE, 404) == ENOENT);
	CHECK(vx_errno(VX_ENVELOPE, 1) == EIO);
	CHECK(vx_errno(VX_ENVELOPE, -7) == EIO);
	CHECK(vx_errno(VX_HTTP, 401) == EACCES);
	CHECK(vx_errno(VX_HTTP, 502) == EIO);
	CHECK(vx_errno(VX_HTTP, 503) == EAGAIN);
	CHECK(vx_errno(VX_RPC, -32001) == ENOENT);
	CHECK(vx_errno(VX_RPC, -32602) == EINVAL);
	CHECK(vx_errno(VX_RPC, -32601) == EOPNOTSUPP);
	CHECK(vx_errno(VX_RPC, -32700) == EPROTO);
	CHECK(vx_errno(VX_RPC, -32000) == EIO);
	CHECK(vx_errno(VX_RPC, 12345) == EIO);
}

static void check_states(void)
{
	CHECK(vx_map_state("active") == SBX_STATE_RUNNING);
	CHECK(vx_map_state("stopped") == SBX_STATE_STOPPED);
	CHECK(vx_map_state("creating") == SBX_STATE_CREATING);
	CHECK(vx_map_state("destroying") == SBX_STATE_DELETING);
	CHECK(vx_map_state("failed") == SBX_STATE_ERROR);
	CHECK(vx_map_state("Active") == SBX_STATE_UNKNOWN);
	CHECK(vx_map_state(NULL) == SBX_STATE_UNKNOWN);
}

void test_vtrix(void)
{
	check_errno();
	check_states();
}

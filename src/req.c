/* SPDX-License-Identifier: MIT */
#include "sbxfs/provider.h"
#include "sbxfs/req.h"

static void intr_set(fuse_req_t req, void *flag)
{
	(void)req;
	*(volatile int *)flag = 1;
}

void req_intr_begin(fuse_req_t req, volatile int *flag)
{
	*flag = 0;
	sbx_intr_enter(flag);
	fuse_req_interrupt_func(req, intr_set, (void *)flag);
}

void req_intr_end(fuse_req_t req)
{
	fuse_req_interrupt_func(req, NULL, NULL);
	sbx_intr_leave();
}

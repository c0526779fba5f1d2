/* SPDX-License-Identifier: MIT */
#include <assert.h>

#include "sbxfs/provider.h"
#include "sbxfs/req.h"

#ifndef NDEBUG
/* The request this thread serves, and how many replies it has had. */
static __thread fuse_req_t serving;
static __thread int replies;

void req_begin(fuse_req_t req)
{
	assert(!serving);
	serving = req;
	replies = 0;
}

void req_end(fuse_req_t req)
{
	assert(serving == req);
	assert(replies == 1); /* returned without a reply */
	serving = NULL;
}

static void replying(fuse_req_t req)
{
	assert(serving == req);
	assert(replies == 0); /* a second reply */
	replies++;
}
#else
static void replying(fuse_req_t req)
{
	(void)req;
}
#endif

int reply_err(fuse_req_t req, int rc)
{
	assert(rc <= 0);
	replying(req);
	return fuse_reply_err(req, -rc);
}

void reply_none(fuse_req_t req)
{
	replying(req);
	fuse_reply_none(req);
}

int reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	replying(req);
	return fuse_reply_entry(req, e);
}

int reply_create(fuse_req_t req, const struct fuse_entry_param *e,
		 const struct fuse_file_info *fi)
{
	replying(req);
	return fuse_reply_create(req, e, fi);
}

int reply_attr(fuse_req_t req, const struct stat *st, double timeout)
{
	replying(req);
	return fuse_reply_attr(req, st, timeout);
}

int reply_readlink(fuse_req_t req, const char *link)
{
	replying(req);
	return fuse_reply_readlink(req, link);
}

int reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	replying(req);
	return fuse_reply_open(req, fi);
}

int reply_write(fuse_req_t req, size_t count)
{
	replying(req);
	return fuse_reply_write(req, count);
}

int reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	replying(req);
	return fuse_reply_buf(req, buf, size);
}

int reply_statfs(fuse_req_t req, const struct statvfs *sv)
{
	replying(req);
	return fuse_reply_statfs(req, sv);
}

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

/* SPDX-License-Identifier: MIT */
/*
 * Serving one FUSE request: its one reply, and letting the caller's Ctrl-C
 * reach a provider call that waits long.
 *
 * Every operation replies exactly once, through the reply_* calls below.
 * The ops table runs each operation between req_begin() and req_end(); in
 * builds without NDEBUG an assert fires when an operation replies twice
 * or returns without replying.  A request is served by one thread from
 * start to reply, so the check is per thread.
 */
#ifndef SBXFS_REQ_H
#define SBXFS_REQ_H

#include <fuse_lowlevel.h>

#ifndef NDEBUG
void req_begin(fuse_req_t req);
void req_end(fuse_req_t req);
#else
static inline void req_begin(fuse_req_t req)
{
	(void)req;
}
static inline void req_end(fuse_req_t req)
{
	(void)req;
}
#endif

/*
 * The replies, as libfuse's fuse_reply_* and with their results (nonzero:
 * the kernel did not take the reply, e.g. the request was interrupted; an
 * entry or an open handle it did not take is the caller's to undo), but
 * reply_err() takes 0 or a negative errno, as our functions return it.
 */
int reply_err(fuse_req_t req, int rc);
void reply_none(fuse_req_t req);
int reply_entry(fuse_req_t req, const struct fuse_entry_param *e);
int reply_create(fuse_req_t req, const struct fuse_entry_param *e,
		 const struct fuse_file_info *fi);
int reply_attr(fuse_req_t req, const struct stat *st, double timeout);
int reply_readlink(fuse_req_t req, const char *link);
int reply_open(fuse_req_t req, const struct fuse_file_info *fi);
int reply_write(fuse_req_t req, size_t count);
int reply_buf(fuse_req_t req, const char *buf, size_t size);
int reply_statfs(fuse_req_t req, const struct statvfs *sv);

/*
 * Between req_intr_begin() and req_intr_end(), an INTERRUPT of `req` sets
 * *flag, which the provider sees through sbx_interrupted().  req_intr_end()
 * comes before the reply: after it, libfuse no longer calls us with this
 * request or this flag.  Not nested, and not around code that registers
 * its own interrupt callback (cmd.c's readers and stdin writers).
 */
void req_intr_begin(fuse_req_t req, volatile int *flag);
void req_intr_end(fuse_req_t req);

#endif

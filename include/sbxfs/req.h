/* SPDX-License-Identifier: MIT */
/*
 * Serving one FUSE request: letting the caller's Ctrl-C reach a provider
 * call that waits long.
 */
#ifndef SBXFS_REQ_H
#define SBXFS_REQ_H

#include <fuse_lowlevel.h>

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

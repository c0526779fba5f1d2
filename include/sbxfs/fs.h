/* SPDX-License-Identifier: MIT */
/* The FUSE operations and the thread that sends kernel invalidations. */
#ifndef SBXFS_FS_H
#define SBXFS_FS_H

#include <fuse_lowlevel.h>

#include "sbxfs/sbxfs.h"

extern const struct fuse_lowlevel_ops sbxfs_ops;

/*
 * Let the caller's Ctrl-C end a long provider call.  Between
 * fs_intr_begin() and fs_intr_end(), an INTERRUPT of `req` sets *flag,
 * which the provider sees through sbx_interrupted().  fs_intr_end() comes
 * before the reply: after it, libfuse no longer calls us with this request
 * or this flag.  Not nested, and not around code that registers its own
 * interrupt callback (cmd.c's readers and stdin writers).
 */
void fs_intr_begin(fuse_req_t req, volatile int *flag);
void fs_intr_end(fuse_req_t req);

#endif

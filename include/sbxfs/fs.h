/* SPDX-License-Identifier: MIT */
/* The FUSE operations and the thread that sends kernel invalidations. */
#ifndef SBXFS_FS_H
#define SBXFS_FS_H

#include <fuse_lowlevel.h>

#include "sbxfs/sbxfs.h"

extern const struct fuse_lowlevel_ops sbxfs_ops;

/* Start and stop the notifier; start before the session loop, stop
 * after it (the session must still exist). */
int fs_notifier_start(struct sbxfs *fs);
void fs_notifier_stop(struct sbxfs *fs);

#endif

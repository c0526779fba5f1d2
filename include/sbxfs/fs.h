/* SPDX-License-Identifier: MIT */
/* The FUSE operations. */
#ifndef SBXFS_FS_H
#define SBXFS_FS_H

#include <fuse_lowlevel.h>

#include "sbxfs/sbxfs.h"

extern const struct fuse_lowlevel_ops sbxfs_ops;

#endif

/* SPDX-License-Identifier: MIT */
/* Directories of the daemon's own: the state directory and what is in it. */
#ifndef SBXFS_FSUTIL_H
#define SBXFS_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: make `path` and its missing parents with `mode`.  0 or -errno. */
int sbx_mkdir_p(const char *path, mode_t mode);

/* rm -rf, never crossing into another filesystem, at most timeout_ms.
 * Returns 0, or nonzero with the reason in `why`. */
int sbx_remove_tree(const char *path, int timeout_ms, char *why, size_t whysize);

#endif

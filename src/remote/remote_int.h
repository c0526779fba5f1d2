/* SPDX-License-Identifier: MIT */
/* What the remote layer's setup (setup.c) and its slots (posix.c)
 * share. */
#ifndef SBXFS_REMOTE_REMOTE_INT_H
#define SBXFS_REMOTE_REMOTE_INT_H

#include "sbxfs/remote/remote.h"

/* The stagefile's give (stagefile.h): a file made by another user is
 * given to them, in a round trip of its own. */
void remote_give_staged(struct stagefile *sf, const char *box, const char *path,
			uid_t uid, gid_t gid, mode_t mode);

#endif

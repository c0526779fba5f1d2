/* SPDX-License-Identifier: MIT */
/* Shared by synth.c and synth_text.c; not an interface. */
#ifndef SBXFS_SYNTH_INT_H
#define SBXFS_SYNTH_INT_H

#include <sys/types.h>

#include "sbxfs/cmd.h"
#include "sbxfs/node.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/strbuf.h"

/* The text a read of the text file n gives now, appended to sb (`cmd`:
 * its command, for the files of cmd/N/).  0 or -errno. */
int synth_build_text(struct sbxfs *fs, const struct node *n, struct cmd *cmd,
		     struct strbuf *sb);

/* What a read of n gives now (text files), or what its command's output
 * holds so far (its streams); status and ctl as last built (by a read, or
 * by a stat since a ctl verb). */
off_t synth_size(struct sbxfs *fs, const struct node *n);

#endif

/* SPDX-License-Identifier: MIT */
/* The synthetic files (everything but root/): attributes and I/O. */
#ifndef SBXFS_SYNTH_H
#define SBXFS_SYNTH_H

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include "sbxfs/node.h"
#include "sbxfs/sbxfs.h"

/* How long the kernel may keep synthetic entries and attributes. */
#define SYNTH_TIMEOUT 1.0

/* The attributes of a synthetic node (size 0: served with direct I/O). */
void synth_attr(struct sbxfs *fs, const struct node *n, struct stat *st);

/* open, read, write, release of a synthetic file; each replies to req
 * (release does not reply). */
void synth_open(fuse_req_t req, struct node *n, struct fuse_file_info *fi);
void synth_read(fuse_req_t req, struct fuse_file_info *fi, size_t size, off_t off);
void synth_write(fuse_req_t req, struct fuse_file_info *fi, const char *buf, size_t size);
void synth_release(struct fuse_file_info *fi);
/* At exit, after the session loop: free the files the kernel still holds
 * open (it will never release them now). */
void synth_release_all(void);

/* "new NAME [k=v ...]" (argv[0] is the verb) and "rm NAME", as the root
 * ctl and mkdir/rmdir in MOUNT do them.  On failure `why` says why (it is
 * also the root ctl's error text) and -errno is returned. */
int box_create(struct sbxfs *fs, int argc, char **argv, char *why, size_t whysize);
int box_remove(struct sbxfs *fs, const char *name, char *why, size_t whysize);

#endif

/* SPDX-License-Identifier: MIT */
/* The synthetic files (everything but root/): the tree, attributes and I/O. */
#ifndef SBXFS_SYNTH_H
#define SBXFS_SYNTH_H

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include "sbxfs/node.h"
#include "sbxfs/sbxfs.h"

/* How long the kernel may keep synthetic entries and attributes (a
 * command's output, which grows, is asked for every time). */
#define SYNTH_TIMEOUT 1.0

enum {
	/* A command's output, read as it arrives: a read past what has come
	 * waits while the command runs (cat ends with the command, tail -f
	 * follows).  Seekable within what has come, which is the size of
	 * cmd/N/stdout, stderr and out; exec's size is 0, and its reads
	 * start at the offset of its first. */
	SYNTH_STREAM = 1 << 0,
	SYNTH_PROVIDER = 1 << 1, /* root/: the provider's, not synthetic */
	SYNTH_MULTI = 1 << 2,	 /* only in a tree of a mount of several */
};

/* One kind of node of the synthetic tree: a row of synth.c's table. */
struct synth_file {
	enum node_kind parent; /* the directory it is in */
	const char *name;      /* NULL: named by sandbox or number */
	enum node_kind kind;
	int cfile; /* NODE_CMDFILE: enum cmd_file */
	mode_t mode;
	unsigned flags;
};

/* The row of a synthetic node (NULL below root/). */
const struct synth_file *synth_file_of(const struct node *n);

/* What a lookup in a synthetic directory found. */
struct synth_child {
	const struct synth_file *file;
	struct box *box; /* MOUNT/NAME: a new reference to its record; else NULL */
	unsigned cmd;	 /* cmd/N and below: N */
};

/* The child `name` of a synthetic directory: 0, -ENOENT, -ENOTDIR, or
 * the error of listing the sandboxes. */
int synth_lookup(struct sbxfs *fs, const struct node *parent, const char *name,
		 struct synth_child *out);
/* The listing of a synthetic directory (entries carry only their type). */
int synth_list(struct sbxfs *fs, struct node *n, struct cache_dir **out);

/* The attributes of a synthetic node.  The size is what a read gives now
 * (the status and ctl texts' as last read, or built since a ctl verb), a
 * command's output what has come so far; reads use direct I/O. */
void synth_attr(struct sbxfs *fs, const struct node *n, struct stat *st);
/* How long the kernel may keep n's attributes. */
double synth_attr_timeout(const struct node *n);

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

/* SPDX-License-Identifier: MIT */
/*
 * The inode table.  Inode numbers are ours: a counter, never a pointer or
 * a remote id, with a generation so that a number is never reused with
 * the same generation.  A node lives while the kernel holds lookups on it
 * (following LOOKUP/FORGET) or a child still names it as parent.  A node
 * below root/ that the kernel forgot is kept while it has its name, up to
 * a bound (oldest dropped first), so that the next lookup of the name gets
 * the same number: the kernel forgets a sandbox's names after every
 * command, and git, rsync -H and tar compare inode numbers.
 *
 * One lock guards the table, the links between nodes and their names.
 * It is never held across a provider call or a notify call.
 */
#ifndef SBXFS_NODE_H
#define SBXFS_NODE_H

#include <fuse_lowlevel.h>
#include <stdint.h>
#include <sys/stat.h>

struct box;

enum node_kind {
	NODE_ROOT,	 /* the mount's root */
	NODE_ROOTCTL,	 /* MOUNT/ctl */
	NODE_TREESTATUS, /* MOUNT/PROVIDER/status, of a mount of several */
	NODE_TREEERR,	 /* MOUNT/PROVIDER/err, of a mount of several */
	NODE_BOX,	 /* MOUNT/NAME */
	NODE_BOXCTL,	 /* NAME/ctl */
	NODE_STATUS,	 /* NAME/status */
	NODE_ERR,	 /* NAME/err */
	NODE_EXEC,	 /* NAME/exec */
	NODE_CMDS,	 /* NAME/cmd */
	NODE_CMDLAST,	 /* NAME/cmd/last */
	NODE_CMD,	 /* NAME/cmd/N */
	NODE_CMDFILE,	 /* NAME/cmd/N/FILE */
	NODE_FSROOT,	 /* NAME/root */
	NODE_FS,	 /* anything below NAME/root */
};

enum cmd_file {
	CF_CMDLINE,
	CF_STDOUT,
	CF_STDERR,
	CF_OUT,
	CF_STATUS,
	CF_STDIN,
	CF_CTL,
	CF_COUNT
};

struct node {
	fuse_ino_t ino;
	uint64_t generation;
	uint64_t nlookup;  /* the kernel's lookups */
	unsigned children; /* nodes naming this one as parent */
	struct node *parent;
	char *name;
	enum node_kind kind;
	struct box *box;  /* reference; NULL above the sandboxes */
	unsigned cmd;	  /* NODE_CMD, NODE_CMDFILE */
	int cfile;	  /* NODE_CMDFILE: enum cmd_file */
	uint64_t open_fh; /* NODE_FS: a provider handle open on it, or 0 */
	unsigned opens;	  /* NODE_FS: handles open on it (atomic) */
	dev_t dev;	  /* NODE_FS non-directories: the provider's identity, */
	ino_t backing;	  /* 0 when unknown; hard links share one node */
	struct node *next_ino, *next_name, *next_id; /* hash chains */
	int kept;				     /* unused, kept for its number */
	struct node *kept_prev, *kept_next;	     /* the kept list */
};

struct node_table;

/* A table whose root (the tree's NODE_ROOT, never forgotten) has number
 * root_ino; the other nodes get the numbers after it. */
struct node_table *node_table_new(fuse_ino_t root_ino);
void node_table_free(struct node_table *t);

/* The node for `ino`, or NULL.  The pointer is valid until the node is
 * forgotten, which the kernel does not do while a request on it runs. */
struct node *node_find(struct node_table *t, fuse_ino_t ino);

/*
 * The child `name` of `parent`, made with `kind` if missing (a child of
 * another kind or identity is replaced: its old node stays until forgotten
 * but loses the name).  Adds one kernel lookup.  Returns NULL on ENOMEM.
 *
 * For NODE_FS, `st` gives the provider's attributes: a non-directory with
 * a nonzero st_ino that an existing node of the same sandbox already has
 * (a hard link) gets that node, which takes this name, so that the kernel
 * sees one inode with one page cache.
 */
struct node *node_lookup(struct node_table *t, struct node *parent, const char *name,
			 enum node_kind kind, struct box *box, unsigned cmd, int cfile,
			 const struct stat *st);

/* The inode number of the child `name` of `parent`, or 0 if none. */
fuse_ino_t node_child_ino(struct node_table *t, struct node *parent, const char *name);

/* Handles open on the child `name` of `parent` (0 if there is none). */
unsigned node_child_opens(struct node_table *t, struct node *parent, const char *name);

/* Drop `n` kernel lookups. */
void node_forget(struct node_table *t, fuse_ino_t ino, uint64_t n);

/* The node no longer has this name (unlink, rmdir, a rename over it). */
void node_unname(struct node_table *t, struct node *parent, const char *name);

/* Move a name (rename): whatever had `newname` loses it. */
int node_rename(struct node_table *t, struct node *parent, const char *name,
		struct node *newparent, const char *newname);

/* The longest path node_path() makes, with its NUL (SBX_PATH_MAX unless
 * set): the provider's (desc.path_max). */
void node_table_set_path_max(struct node_table *t, size_t max);

/* The path of a NODE_FS or NODE_FSROOT node below its sandbox's root/
 * ("/" for root/ itself).  -ENAMETOOLONG past `size` or the table's
 * path_max, or -ENOENT for a node that lost its name. */
int node_path(struct node_table *t, struct node *n, char *out, size_t size);

/* The same for (parent, name). */
int node_child_path(struct node_table *t, struct node *parent, const char *name,
		    char *out, size_t size);

/* Every named NODE_FS node of a sandbox that the kernel knows, for
 * invalidation: calls fn with (parent ino, ino, name) after the lock is
 * dropped. */
typedef void (*node_visit_fn)(void *ctx, fuse_ino_t parent, fuse_ino_t ino,
			      const char *name);
void node_visit_box(struct node_table *t, const struct box *box, node_visit_fn fn,
		    void *ctx);

#endif

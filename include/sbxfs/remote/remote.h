/* SPDX-License-Identifier: MIT */
/*
 * The remote layer: what a remote provider is made of.
 *
 * A remote provider's private data (p->priv) begins with a struct remote,
 * which holds what the layer keeps for it: its staged files and the way
 * it runs a shell script in a sandbox.  The layer then serves, with the
 * signatures of provider.h so that an ops table points straight at them,
 * the slots whose logic is the same for every such provider: attributes
 * of open files, opens, and the POSIX calls that a file API lacks and a
 * shell does (POSIX over a shell: rmdir, symlink, readlink, link, chown,
 * utimens, statfs, and lstat and listings by find(1)).  The provider's
 * own files hold only its API: requests, transfers, and `run`.  The
 * sandboxes are kept in one table (boxtable.h) and started, stopped and
 * deleted by one state machine (lifecycle.h) over the provider's calls.
 *
 * The model is libgit2's smart transport: the layer holds the semantics,
 * the provider moves bytes.
 */
#ifndef SBXFS_REMOTE_REMOTE_H
#define SBXFS_REMOTE_REMOTE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "sbxfs/provider.h"
#include "sbxfs/http.h"
#include "sbxfs/remote/boxtable.h"
#include "sbxfs/remote/cmdpoll.h"
#include "sbxfs/stage.h"
#include "sbxfs/stagefile.h"
#include "sbxfs/strbuf.h"

struct remote_box_ops; /* lifecycle.h */
struct remote;

/* The longest path a remote provider's slots take (desc.path_max): the
 * service resolves a path in one call on the sandbox's side, where
 * PATH_MAX (4096) holds for it and for the temporary name written beside
 * it (256 bytes kept for that). */
#define REMOTE_PATH_MAX (4096 - 256)

/* struct remote.flags */
enum {
	/* run's output is text (an exec API's JSON string): scripts whose
	 * output is bytes carry it base64-encoded, and the layer decodes. */
	REMOTE_TEXT_OUTPUT = 1u << 0,
	/* The tree shows a symlink as what it points to (the file API
	 * follows them): scripts act on the target. */
	REMOTE_FOLLOWS_SYMLINKS = 1u << 1,
	/* Its stat is a call of its own that starts no process (an agent's):
	 * a lookup asks only that, not a script that lists a directory
	 * along. */
	REMOTE_NATIVE_STAT = 1u << 2,
};

/* run's flags */
enum {
	/* Safe to run again after a connection lost on the way: the script
	 * only reads, or does the same thing twice. */
	REMOTE_RUN_RETRY = 1u << 0,
	/* Its output is compressed already (a gzip'd prefetch): an API that
	 * compresses its answers may be asked for this one as it is. */
	REMOTE_RUN_COMPRESSED = 1u << 1,
};

/*
 * A provider's own calls for what the layer otherwise does by script,
 * where its file API has them (microsandbox's agent, Docker's archive
 * API).  Each has the contract of the provider.h slot of the same name,
 * on a path the caller has checked; -ENOSYS (or a NULL slot) means "not
 * this one": the layer then runs its script.  The layer keeps the staged
 * copies right around them, as around its scripts.
 */
struct remote_fs_ops {
	/*
	 * readonly: can box's files be read now, but no script run there (a
	 * stopped container whose files the API still serves)?  Then every
	 * change (open for writing, mkdir, unlink, rename, ...) fails with
	 * -EROFS and text, listings are readdir's and readlink's below (the
	 * layer's scripts cannot run), and the calls that only save round
	 * trips (getattr_list, readtree, prefetch) say "not this one".  0:
	 * the sandbox is served as usual.  Answers from what is known (no
	 * request); NULL: never.
	 */
	int (*readonly)(struct remote *r, const char *box);
	int (*readdir)(struct remote *r, const char *box, const char *path,
		       sbx_dirent_fn fn, void *ctx);
	int (*readlink)(struct remote *r, char *buf, size_t size, const char *box,
			const char *path);
	int (*mkdir)(struct remote *r, const char *box, const char *path, mode_t mode);
	int (*unlink)(struct remote *r, const char *box, const char *path);
	int (*rmdir)(struct remote *r, const char *box, const char *path);
	/* flags: 0 or RENAME_NOREPLACE. */
	int (*rename)(struct remote *r, const char *box, const char *from, const char *to,
		      unsigned flags);
	int (*chmod)(struct remote *r, const char *box, const char *path, mode_t mode);
	/* uid or gid (uid_t)-1 / (gid_t)-1: keep it. */
	int (*chown)(struct remote *r, const char *box, const char *path, uid_t uid,
		     gid_t gid);
	int (*symlink)(struct remote *r, const char *box, const char *target,
		       const char *path);
	int (*truncate)(struct remote *r, const char *box, const char *path, off_t size);
	int (*utimens)(struct remote *r, const char *box, const char *path,
		       const struct timespec ts[2]);
};

struct remote {
	/* The provider's name: the first word of the layer's messages. */
	const char *name;
	/* REMOTE_* flags above. */
	unsigned flags;
	/* The most bytes of output one script may bring back (the API's own
	 * bound, before any base64 of REMOTE_TEXT_OUTPUT), 0 for none: the
	 * subtree listings and prefetches of the layer stay below it. */
	size_t output_max;
	/* How well the prefetch's last streams compressed, in tenths (bytes
	 * inflated per byte that came), where they travel gzip'd: kept by
	 * prefetch.c to size its next calls under output_max; 0 at first. */
	unsigned gzip_tenths;
	/* -o timeout=: the bound on each request and each wait for the
	 * sandbox, in milliseconds. */
	int timeout_ms;
	/* The staged copies of open files (stage.h), and the stagefile over
	 * them with the provider's transfers (stagefile.h). */
	struct stage *stage;
	struct stagefile files;
	/* The sandboxes the provider knows (boxtable.h); and its sandbox
	 * API, for the state machine of lifecycle.h (NULL if it does not use
	 * it). */
	struct boxtable boxes;
	const struct remote_box_ops *box_ops;
	/* The threads that follow the provider's commands (cmdpoll.h). */
	struct cmdpoll cmds;
	/* The statfs a walk brought along (remote_readtree): of its directory
	 * and what lies below, for a few seconds (find asks it of the first
	 * directory it enters).  Kept by posix.c. */
	struct {
		pthread_mutex_t lock;
		char box[SBX_NAME_MAX + 1];
		char dir[REMOTE_PATH_MAX];
		struct statvfs sv;
		struct timespec at; /* CLOCK_MONOTONIC; 0: none */
	} walk_statfs;
	/* The provider's own namespace calls; NULL if it has none. */
	const struct remote_fs_ops *fs;
	/*
	 * run: run `script` with /bin/sh in the running sandbox `box` and
	 * map its exit status with sh_exit_errno(): 0 on success, the errno
	 * the script exited with, or -EIO with the script's words in
	 * sbx_failf() text.  -errno with text when it could not be run
	 * (-EAGAIN when the sandbox is not running).  `what` names the
	 * operation for messages.  `out` (may be NULL) gets the script's
	 * stdout (with REMOTE_TEXT_OUTPUT, what the API gives as output);
	 * past its maximum, -EFBIG.  `flags`: REMOTE_RUN_*.  Blocks; honours
	 * sbx_interrupted().  Required for the shell slots below.
	 */
	int (*run)(struct remote *r, const char *box, const char *what,
		   const char *script, int flags, struct strbuf *out);
};

/* The struct remote at the start of a remote provider's priv. */
#define REMOTE(p) ((struct remote *)(p)->priv)

/*
 * Set up r, at the start of provider `name`'s priv, from the mount
 * options every remote provider takes: timeout= (seconds, 30 by
 * default) and cache_max= (MiB of staged copies, 2 GiB by default),
 * kept in STATE_DIR/stage/NAME.  Its staged files go through `files`
 * with r as their ctx; `release` frees a box record's priv
 * (boxtable_init()).  0, -EINVAL with text for a bad option (or
 * -ENAMETOOLONG for a state_dir), or -ENOMEM.  Whatever it returns,
 * remote_release() frees r's parts: so call it first, before anything
 * that can fail.
 */
int remote_setup(struct remote *r, const char *name, unsigned flags,
		 const struct sbx_kvlist *opts, const struct stagefile_ops *files,
		 void (*release)(void *priv));
/* Free what remote_setup() made, once no command thread runs. */
void remote_release(struct remote *r);
/* The HTTP client settings that follow from the options: r's timeout
 * for each request and each stall, three tries. */
void remote_http_config(const struct remote *r, struct http_config *cfg);
/* The options of remote_setup() as the mount's status tells them. */
void remote_describe(const struct remote *r, struct sbx_kvlist *out);

/*
 * Slots of provider.h, for p whose priv begins with a struct remote.
 *  getattr: an open file's unsaved attributes (stage_stat), else the
 *    stagefile's info (one round trip).
 *  unsaved: the unsaved attributes only; -ENOENT when nothing is open.
 *  getattr_list: an open file's unsaved attributes, else lstat by find(1)
 *    and a directory's entries with it, in one script (-ENOSYS with
 *    REMOTE_FOLLOWS_SYMLINKS or REMOTE_NATIVE_STAT).
 *  open: stagefile_open() on the remote's files.
 *  mkdir, unlink, rename, chmod, truncate, rmdir, symlink, readlink,
 *    link, chown, utimens, statfs: scripts run through `run` (or the
 *    provider's own call of remote_fs_ops, where it has one).  What
 *    needs the file on the server (rename, chmod, link, chown, utimens)
 *    first uploads a file that exists only as its open copy
 *    (stagefile_flush_pending()); unlink, rename and truncate keep the
 *    staged copies right (stage.h).  rename takes RENAME_NOREPLACE, and
 *    no other flag (-EINVAL).
 *  readdir: the entries of a directory by find(1), with attributes.
 *  readtree: those of a subtree, by find(1) (find.h), in one script,
 *    which brings the directory's statfs along: a statfs of it or below
 *    it in the next few seconds is answered from that.
 *  prefetch: small files as one tar stream from a script (prefetch.c),
 *    kept as staged copies (stagefile_offer()).
 * Of a sandbox that is read-only now (remote_fs_ops.readonly), open for
 * writing and every change fail with -EROFS; getattr_list is -ENOSYS,
 * readtree and prefetch -ENOTSUP.
 */
int remote_getattr(struct sbx_provider *p, struct stat *out, const char *box,
		   const char *path);
int remote_unsaved(struct sbx_provider *p, struct stat *out, const char *box,
		   const char *path);
int remote_getattr_list(struct sbx_provider *p, struct stat *out, const char *box,
			const char *path, size_t max_bytes, sbx_dirent_fn fn, void *ctx,
			int *listed);
int remote_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *box,
		const char *path, int flags, mode_t mode, const struct stat *known);
int remote_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode);
int remote_unlink(struct sbx_provider *p, const char *box, const char *path);
int remote_rename(struct sbx_provider *p, const char *box, const char *from,
		  const char *to, unsigned flags);
int remote_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode);
int remote_truncate(struct sbx_provider *p, const char *box, const char *path,
		    off_t size);
int remote_rmdir(struct sbx_provider *p, const char *box, const char *path);
int remote_symlink(struct sbx_provider *p, const char *box, const char *target,
		   const char *path);
int remote_readlink(struct sbx_provider *p, char *buf, size_t size, const char *box,
		    const char *path);
int remote_link(struct sbx_provider *p, const char *box, const char *from,
		const char *to);
int remote_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
		 gid_t gid);
int remote_utimens(struct sbx_provider *p, const char *box, const char *path,
		   const struct timespec ts[2]);
int remote_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
		  const char *path);
int remote_readdir(struct sbx_provider *p, const char *box, const char *path,
		   sbx_dirent_fn fn, void *ctx);
int remote_readtree(struct sbx_provider *p, const char *box, const char *path,
		    size_t max_bytes, sbx_treeent_fn fn, void *ctx);
int remote_prefetch(struct sbx_provider *p, const char *box, const char *dir,
		    char *const *rels, const struct stat *sts, size_t n);

/*
 * Initializers of a provider's ops table (provider.h) for the slots above.
 * REMOTE_OPS_FILES: staged files and what every remote provider does by
 * shell, subtree listings among it; REMOTE_OPS_SHELL: the namespace too,
 * for a provider whose file API moves contents and nothing else.
 */
#define REMOTE_OPS_FILES                                                                \
	.getattr = remote_getattr, .getattr_list = remote_getattr_list,                 \
	.unsaved = remote_unsaved, .fgetattr = stagefile_fgetattr, .open = remote_open, \
	.read = stagefile_read, .write = stagefile_write, .flush = stagefile_flush,     \
	.fsync = stagefile_fsync, .release = stagefile_release, .rmdir = remote_rmdir,  \
	.truncate = remote_truncate, .utimens = remote_utimens, .link = remote_link,    \
	.statfs = remote_statfs, .readtree = remote_readtree,                           \
	.prefetch = remote_prefetch

#define REMOTE_OPS_SHELL                                                           \
	.readdir = remote_readdir, .mkdir = remote_mkdir, .unlink = remote_unlink, \
	.rename = remote_rename, .chmod = remote_chmod, .chown = remote_chown,     \
	.symlink = remote_symlink, .readlink = remote_readlink

/* Are box's files read-only now (remote_fs_ops.readonly)?  1 or 0. */
int remote_readonly(struct remote *r, const char *box);
/*
 * 0 if box's files may be changed; -EROFS with text if they are read-only
 * now: what a provider's upload checks first.
 */
int remote_writable(struct remote *r, const char *box);

/*
 * lstat(2) of box:path by find(1) through run: what a stagefile info op
 * of a provider without a stat call does.  -ENOENT if there is no such
 * file, -EPROTO for an answer that does not parse.
 */
int remote_find_stat(struct remote *r, struct stat *st, const char *box,
		     const char *path);

/*
 * The contents of box:path by a script (cat), into the staged copy f
 * (from offset 0, its length theirs), at most `max` bytes: what a
 * provider's fetch does for a file its API cannot name (a name that is
 * not UTF-8, for an API of JSON or CBOR text).  -ENOENT if there is no
 * such file; -EFBIG past max.
 */
int remote_fetch_by_script(struct remote *r, struct staged *f, const char *box,
			   const char *path, size_t max);

/*
 * Give box:path, a name just made by the provider's own call, to the
 * user who made it if that is another than the daemon's
 * (sbx_caller_other()), as the layer's own mkdir, symlink and staged
 * files do: one more round trip, for other users only.  Best effort: a
 * sandbox whose user may not chown leaves the service's owner, and the
 * log says so.
 */
void remote_give(struct remote *r, const char *box, const char *path);

/* chmod(2) of box:path by a script, with no staged-copy bookkeeping: for
 * a provider's upload that must give a new file its mode. */
int remote_set_mode(struct remote *r, const char *box, const char *path, mode_t mode);

/* A name for a temporary file in a sandbox, ".sbxfs-TAG.PID.N.TIME",
 * unique to this process and call (a name the provider's API can carry:
 * printable ASCII). */
void remote_tmp_name(char *out, size_t size, const char *tag);

/* Signal `sig` to the processes of box's command marked `marker`
 * (sh_signal_marked()), by a script: for an API with no call to signal
 * a command.  0, -ESRCH when none is left, or run's errno. */
int remote_signal_marked(struct remote *r, const char *box, const char *marker, int sig);

/* Build a script with sh_script() from fmt and run it.  0 or run's errno;
 * -E2BIG for a script over 1 MiB. */
int remote_runf(struct remote *r, const char *box, const char *what, int flags,
		struct strbuf *out, const char *fmt, ...);

/*
 * Run `checks` (shell text that exits with an errno value when the call
 * must fail), then `body`, whose stdout is bytes: with REMOTE_TEXT_OUTPUT
 * they travel base64-encoded and are decoded here into out.  If `strict`,
 * a failing body is -EIO; otherwise its status is ignored (a listing
 * that meets an entry it cannot read).
 */
int remote_run_bytes(struct remote *r, const char *box, const char *what,
		     const char *checks, const char *body, int strict, int flags,
		     struct strbuf *out);

#endif

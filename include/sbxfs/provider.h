/* SPDX-License-Identifier: MIT */
/*
 * The provider interface: what a sandbox backend implements so that the
 * FUSE layer can show its sandboxes as a tree.
 *
 * A provider is a descriptor (name, capability flags, cache timeouts) plus
 * an ops table.  sbx_provider_new() copies the table and fills every NULL
 * slot with a default, so callers never test for NULL: what each default
 * does is the "Left NULL" line of its slot (-ENOTSUP for most operations;
 * 0 where there is nothing to do, such as flush or init; no sandboxes for
 * list).  What a provider cannot do is either a capability flag (so the
 * FUSE layer can answer without a call) or a slot left NULL.
 *
 * Conventions for every slot:
 *  - Return 0 (or a byte count where said) on success, a negative errno on
 *    failure.  Before failing with a remote or runtime error, the slot calls
 *    sbx_failf() with the full text; the caller records it in the sandbox's
 *    `err` file and the log.  A bare errno without text is fine for plain
 *    POSIX outcomes (ENOENT from stat, EEXIST from mkdir).
 *  - `box` is a validated sandbox name (see sbx_name_valid()); `path` is an
 *    absolute path inside the sandbox ("/", "/etc/hosts"), already checked
 *    to hold no "." or ".." components and no empty component.  Names may
 *    hold any byte but '/' and NUL.
 *  - Strings passed in are borrowed for the duration of the call.  Results
 *    go to caller-owned out-parameters, which come first.
 *  - Every slot may block, and may be called from many threads at once;
 *    the provider does its own locking.  Every slot that waits on something
 *    remote must bound its wait and fail with -ETIMEDOUT past the bound,
 *    and should give up with -EINTR once sbx_interrupted() says so.
 */
#ifndef SBXFS_PROVIDER_H
#define SBXFS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "sbxfs/kv.h"

/* Longest sandbox name, in bytes. */
#define SBX_NAME_MAX 63

/* The longest path below a sandbox's root/ sbxfs handles, with its NUL:
 * beyond PATH_MAX, since a path is only as long as the calls that reach
 * it (relative to a deep working directory, each under PATH_MAX) make
 * it.  A slot may be given any path up to this; one its API cannot take
 * is ENAMETOOLONG. */
#define SBX_PATH_MAX 32768

/* Normalised sandbox states.  Providers map their own words onto these. */
enum sbx_state {
	SBX_STATE_UNKNOWN = 0,
	SBX_STATE_CREATING,
	SBX_STATE_STARTING,
	SBX_STATE_RUNNING,
	SBX_STATE_STOPPING,
	SBX_STATE_STOPPED,
	SBX_STATE_ARCHIVED,
	SBX_STATE_ERROR,
	SBX_STATE_DELETING,
};

/* The word shown in `ctl` and `status` for a state: "running", ... */
const char *sbx_state_word(enum sbx_state state);

/* What `status` shows.  Filled by the info slot; the caller owns `extra`. */
struct sbx_box_info {
	char id[128];
	enum sbx_state state;
	char native_state[64]; /* the provider's own word, "" if the same */
	char image[256];
	time_t created;
	struct sbx_kvlist extra; /* further "key value" lines, in order */
};

/* How a command ended. */
enum sbx_exit_how {
	SBX_EXIT_CODE,	 /* exited normally with `code` */
	SBX_EXIT_SIGNAL, /* killed by signal `code` */
	SBX_EXIT_FAILED, /* never ran or was lost; see `reason` */
};

struct sbx_exit {
	enum sbx_exit_how how;
	int code;
	char reason[160];
};

enum sbx_stream {
	SBX_STREAM_STDOUT = 0,
	SBX_STREAM_STDERR = 1,
};

/*
 * Where a running command's output goes.  The provider calls `output` for
 * each chunk, in arrival order, from any single thread at a time, then
 * `done` exactly once after the last `output`.  After `done` the provider
 * must not touch the sink again.
 */
struct sbx_cmd_sink {
	void (*output)(struct sbx_cmd_sink *sink, enum sbx_stream stream,
		       const char *data, size_t len);
	void (*done)(struct sbx_cmd_sink *sink, const struct sbx_exit *exit);
};

/* Capability flags: what the FUSE layer may expect of a provider. */
enum {
	SBX_CAP_SYMLINK = 1u << 0,     /* symlink and readlink */
	SBX_CAP_HARDLINK = 1u << 1,    /* link */
	SBX_CAP_CHOWN = 1u << 2,       /* chown */
	SBX_CAP_STDIN = 1u << 3,       /* cmd_stdin after start */
	SBX_CAP_RENAME_OVER = 1u << 4, /* rename replaces the target atomically */
	SBX_CAP_NO_FLUSH = 1u << 5,    /* flush never has work: close(2) skips it */
	/* readdir costs about what one getattr does (one round trip): an
	 * expired entry is refreshed with its whole directory. */
	SBX_CAP_LIST_STATS = 1u << 6,
};

/* Called by the list slot for each sandbox; nonzero stops the listing. */
typedef int (*sbx_list_fn)(void *ctx, const char *name);

/* Called by the readdir slot for each entry (never "." or ".."), with the
 * entry's full attributes as lstat() would give them. */
typedef int (*sbx_dirent_fn)(void *ctx, const char *name, const struct stat *st);

/* What the readtree slot says of an entry, or of where its walk is. */
enum {
	/* A directory whose entries the walk leaves out: another file
	 * system, or one the sandbox's user cannot read. */
	SBX_TREE_OPAQUE = 1u << 0,
	/* With rel NULL: every entry of the directory itself was given. */
	SBX_TREE_LISTED = 1u << 1,
	/* With rel NULL: the walk of the subtree ended whole. */
	SBX_TREE_WHOLE = 1u << 2,
};

/* Called by the readtree slot for each entry of a subtree, `rel` being its
 * path below the directory walked ("src", "src/main.c"), with its
 * attributes as lstat() would give them and, for a symlink, its target
 * where the walk brought it (`link`, else NULL: the core asks readlink);
 * and with rel, st and link NULL for the SBX_TREE_LISTED and
 * SBX_TREE_WHOLE marks.  Nonzero stops the walk. */
typedef int (*sbx_treeent_fn)(void *ctx, const char *rel, const struct stat *st,
			      const char *link, unsigned flags);

struct sbx_provider;

/*
 * Each slot below says what it does, when the core calls it, what it may
 * return, and what the core does when the provider leaves it NULL.  Where
 * it says "the call fails with it", the errno reaches the caller of the
 * system call (or the write to a control file) as it is.
 */
struct sbx_provider_ops {
	/*
	 * init: set up from the mount options (`opts`, borrowed; keys as given
	 * with -o) and set p->priv.
	 * Called: once, at mount, before any other slot and before the daemon
	 * detaches (its failure text is printed and the mount fails).
	 * Returns: 0; -EINVAL with sbx_failf() for unknown or bad options.
	 * Left NULL: 0, nothing to set up.
	 */
	int (*init)(struct sbx_provider *p, const struct sbx_kvlist *opts);

	/*
	 * destroy: stop what init started; free p->priv.
	 * Called: once, at unmount, after the last request.  Commands still
	 * running end: once it returns, no sink may be called.
	 * Left NULL: nothing.
	 */
	void (*destroy)(struct sbx_provider *p);

	/*
	 * describe: append the provider's settings ("key value") to `out`.
	 * Called: at each open of MOUNT/ctl for reading.  Never secrets.
	 * Left NULL: nothing is added.
	 */
	void (*describe)(struct sbx_provider *p, struct sbx_kvlist *out);

	/* ---- sandboxes ---- */

	/*
	 * list: call fn for each sandbox; a nonzero return of fn stops the
	 * listing.  Names that fail sbx_name_valid() are skipped.
	 * Called: to list MOUNT, to look up MOUNT/NAME and for "rm NAME"; the
	 * core keeps the answer for the entry timeout, and lists again after
	 * its own create and remove.
	 * Returns: 0, or -errno: the lookup, readdir or ctl write fails with
	 * it (a failed listing is never taken as "no such sandbox").
	 * Left NULL: 0 with no sandboxes.
	 */
	int (*list)(struct sbx_provider *p, sbx_list_fn fn, void *ctx);

	/*
	 * create: make sandbox `box` with `args` (key=value pairs of
	 * "new NAME k=v ...").  The new sandbox is stopped unless the provider
	 * only makes running ones.
	 * Called: for "new" written to MOUNT/ctl, and for mkdir MOUNT/NAME.
	 * Returns: 0; -EEXIST if it exists; -EINVAL for a key the provider
	 * does not know, -ENOTSUP for one it cannot honour.  The text goes to
	 * MOUNT/ctl's error line.
	 * Left NULL: -ENOTSUP.
	 */
	int (*create)(struct sbx_provider *p, const char *box,
		      const struct sbx_kvlist *args);

	/*
	 * remove: delete the sandbox and its files, stopping it first.
	 * Called: for "rm NAME" in MOUNT/ctl, rmdir MOUNT/NAME and "delete"
	 * in NAME/ctl.  On success the core drops the sandbox's cache, record
	 * and command history.
	 * Returns: 0; -ENOENT if there is no such sandbox.
	 * Left NULL: -ENOTSUP.
	 */
	int (*remove)(struct sbx_provider *p, const char *box);

	/*
	 * start, stop: move the sandbox to running or stopped.  Idempotent:
	 * starting a running sandbox is 0.
	 * Called: for "start", "stop" and "restart" (stop, then start) in
	 * NAME/ctl; the core then drops what it cached of the sandbox.
	 * Returns: 0; -EBUSY or -EAGAIN when the state forbids the move
	 * (archived, creating).
	 * Left NULL: -ENOTSUP.
	 */
	int (*start)(struct sbx_provider *p, const char *box);
	int (*stop)(struct sbx_provider *p, const char *box);

	/*
	 * ctl: a provider-specific verb (argv[0], such as "archive").
	 * Called: for a line of NAME/ctl whose verb the core does not know.
	 * Returns: 0; -EINVAL for a verb the provider does not know either.
	 * Left NULL: -EINVAL, "unknown command".
	 */
	int (*ctl)(struct sbx_provider *p, const char *box, int argc, char *const argv[]);

	/*
	 * info: fill `out` (zeroed by the caller; the caller frees `extra`).
	 * Called: at each open of NAME/status or NAME/ctl for reading.
	 * Returns: 0; -ENOENT if there is no such sandbox.  The open fails
	 * with it, and the text goes to the sandbox's err.
	 * Left NULL: -ENOTSUP.
	 */
	int (*info)(struct sbx_provider *p, struct sbx_box_info *out, const char *box);

	/* ---- files: paths inside the sandbox ---- */

	/*
	 * getattr: lstat() of `path`; never follows a final symlink.
	 * Called: for a lookup, stat or setattr below root/ that the cache
	 * cannot answer (nor, with SBX_CAP_LIST_STATS, a listing of the
	 * directory).  0 and -ENOENT are cached for the attribute timeout.
	 * Returns: 0; -ENOENT, -ENOTDIR, -EACCES as lstat() does.
	 * Left NULL: -ENOTSUP.
	 */
	int (*getattr)(struct sbx_provider *p, struct stat *out, const char *box,
		       const char *path);

	/*
	 * getattr_list: getattr, and where `path` is a directory, its
	 * entries with their attributes through fn as readdir gives them, in
	 * the same round trip: what a lookup of a directory is followed by
	 * (the next name of the path, or its listing).  The entries are a
	 * bonus: a directory whose records pass `max_bytes`, or that cannot
	 * be read, comes without them.  *listed is 1 when fn was given the
	 * whole listing.
	 * Called: for a stat the cache cannot answer, instead of getattr,
	 * when -o subtree_entries is not 0.  The core keeps the listing for
	 * the attribute timeout, as readdir's; a walk of the directory still
	 * asks for its subtree (readtree).
	 * Returns: as getattr; -ENOSYS: not for this one (the core then
	 * calls getattr).
	 * Left NULL: getattr alone.
	 */
	int (*getattr_list)(struct sbx_provider *p, struct stat *out, const char *box,
			    const char *path, size_t max_bytes, sbx_dirent_fn fn,
			    void *ctx, int *listed);

	/*
	 * unsaved: the attributes of box:path if this provider holds changes
	 * to it that the server has not seen yet (an open staged copy that
	 * was written).  Cheap, never remote.
	 * Called: before the core trusts its cache or a listing about a file
	 * with handles open.
	 * Returns: 0 with *out set, or -ENOENT: nothing unsaved.
	 * Left NULL: -ENOENT, as for a provider that writes through.
	 */
	int (*unsaved)(struct sbx_provider *p, struct stat *out, const char *box,
		       const char *path);

	/*
	 * fgetattr: fstat() of an open handle.
	 * Called: for stat of a file that lost its name while open.
	 * Returns: 0, or -errno.
	 * Left NULL: -ESTALE.
	 */
	int (*fgetattr)(struct sbx_provider *p, struct stat *out, uint64_t fh);

	/*
	 * readdir: every entry of the directory (never "." or "..") with its
	 * attributes, in one call; the listing is bounded by the provider.
	 * Called: for readdir below root/ when neither the kernel nor the
	 * cache holds the listing, and with SBX_CAP_LIST_STATS to refresh
	 * expired entries a directory at a time.  The entries fill the
	 * attribute cache.
	 * Returns: 0; -ENOENT, -ENOTDIR, -EACCES as opendir() does; -EFBIG
	 * past the provider's bound.
	 * Left NULL: -ENOTSUP.
	 */
	int (*readdir)(struct sbx_provider *p, const char *box, const char *path,
		       sbx_dirent_fn fn, void *ctx);

	/*
	 * readtree: the entries of the directory and of every directory below
	 * it, with attributes, in one round trip: what a walk of the subtree
	 * (find, ls -R, grep -r, an editor's tree) would otherwise ask one
	 * directory at a time.  Calls fn with:
	 *  1. each entry of `path` itself (rel holds no '/'), then the mark
	 *     SBX_TREE_LISTED;
	 *  2. the walk: each entry below `path` (those of step 1 again among
	 *     them), depth first, as find(1) prints them: a directory comes
	 *     before its entries, and all of them come before any entry that
	 *     is not below it.  A directory whose entries the walk does not
	 *     give is marked SBX_TREE_OPAQUE.  Then the mark SBX_TREE_WHOLE.
	 * The walk stays on the file system of `path` and stops once its
	 * records pass `max_bytes`: then the mark SBX_TREE_WHOLE never comes,
	 * and what was given is true but the listings of the directories
	 * still open at the cut are not whole.  Entries whose names cannot be
	 * shown are left out of step 1, and end the walk in step 2.
	 * Called: where readdir would be, for a listing the cache lacks, when
	 * -o subtree_entries is not 0.  The core fills the cache with every
	 * listing the walk gave whole, and answers from it for the attribute
	 * timeout.
	 * Returns: 0 once step 1 ended (whole or not, step 2 is a bonus);
	 * -ENOENT, -ENOTDIR, -EACCES as opendir() does.  On any other failure
	 * the core lists the directory alone with readdir.
	 * Left NULL: -ENOTSUP, and readdir is used.
	 */
	int (*readtree)(struct sbx_provider *p, const char *box, const char *path,
			size_t max_bytes, sbx_treeent_fn fn, void *ctx);

	/*
	 * prefetch: fetch the contents of the regular files `rels` (n of
	 * them, paths below the directory `dir`, in the order a walk reads
	 * them) in one round trip, and keep them where open finds them (the
	 * staged copies), each as the version `sts[i]` describes: a file
	 * whose size or mtime came different is not kept, nor one with a
	 * copy in use.  A provider may take only the first k of them (its
	 * bound on a request); the others are left to their opens or to the
	 * next call.
	 * Called: before the second open for reading below a subtree listed
	 * whole by readtree (grep -r, a compiler, an indexer), with the
	 * subtree's small files from the cache (-o prefetch_mib,
	 * prefetch_file_kib).  One file read alone never brings a tree.
	 * Returns: k, the files taken (n when all; kept or not), or -errno; a
	 * failure fails nothing, the opens then fetch one file at a time.
	 * Left NULL: -ENOTSUP, nothing fetched.
	 */
	int (*prefetch)(struct sbx_provider *p, const char *box, const char *dir,
			char *const *rels, const struct stat *sts, size_t n);

	/*
	 * open: open (or with O_CREAT, create with `mode`) the regular file at
	 * `path` with open(2) `flags`; never follows a final symlink.  Sets
	 * *fh to a provider handle, and *st to the file's attributes after the
	 * open.  The handle is used from several threads at once.  `known`,
	 * when not NULL, is what the cache holds of the file, younger than
	 * the attribute timeout: a provider may trust it instead of asking
	 * the server again (as stat(2) would be answered).
	 * Called: for open(2) and creat(2) below root/.
	 * Returns: 0; what open(2) returns (-ENOENT, -EISDIR, -ELOOP ...).
	 * Left NULL: -ENOTSUP.
	 */
	int (*open)(struct sbx_provider *p, uint64_t *fh, struct stat *st,
		    const char *box, const char *path, int flags, mode_t mode,
		    const struct stat *known);

	/*
	 * read, write: at `off`, on a handle from open.
	 * Called: for read(2) and write(2) (the kernel's page cache may
	 * spare reads: pages are kept across opens while the attributes stay).
	 * Returns: bytes done (a short read means end of file), or -errno.
	 * Left NULL: -ENOTSUP.
	 */
	ssize_t (*read)(struct sbx_provider *p, uint64_t fh, char *buf, size_t size,
			off_t off);
	ssize_t (*write)(struct sbx_provider *p, uint64_t fh, const char *buf,
			 size_t size, off_t off);

	/*
	 * fsync: make the data durable; for staging providers, upload now.
	 * Called: for fsync(2) and fdatasync(2) (`datasync`).
	 * Returns: 0, or -errno; an upload failure is returned, never dropped.
	 * Left NULL: 0.
	 */
	int (*fsync)(struct sbx_provider *p, uint64_t fh, int datasync);

	/*
	 * flush: staging providers upload here when the file is dirty.
	 * Called: at every close(2) of a descriptor of the file, except for
	 * descriptors opened read-only and with SBX_CAP_NO_FLUSH.
	 * Returns: what close(2) returns: 0, or -errno.
	 * Left NULL: 0, nothing to do.
	 */
	int (*flush)(struct sbx_provider *p, uint64_t fh);

	/*
	 * release: close the handle.
	 * Called: once, when no descriptor uses the handle any more.
	 * Returns: 0, or -errno, which reaches nobody (the kernel ignores
	 * it): report failures from flush.
	 * Left NULL: 0.
	 */
	int (*release)(struct sbx_provider *p, uint64_t fh);

	/*
	 * mkdir, unlink, rmdir: as the system calls, on `path`.
	 * rename: renameat2() semantics, with RENAME_NOREPLACE or
	 * RENAME_EXCHANGE in `flags` only with SBX_CAP_RENAME_OVER (without
	 * it the core answers -EINVAL itself).
	 * chmod, chown, truncate, utimens: on the object at `path`, never a
	 * symlink's target.  chown takes (uid_t)-1 / (gid_t)-1 for "keep",
	 * and is called only with SBX_CAP_CHOWN (else the core answers
	 * -EPERM); utimens takes UTIME_NOW / UTIME_OMIT as utimensat(2) does.
	 * symlink: create `path` pointing at `target` (stored verbatim); only
	 * with SBX_CAP_SYMLINK (else -EPERM from the core).
	 * readlink: the target, NUL-terminated into buf; the core confines
	 * it to root/ before answering.
	 * link: a new name `to` for `from`; only with SBX_CAP_HARDLINK (else
	 * -EPERM from the core).
	 * mknod: a FIFO, a socket, an empty regular file or a device node
	 * (`rdev`, for S_IFCHR and S_IFBLK) at `path`, of `mode`'s type.
	 * The kernel has checked that the caller may make devices
	 * (CAP_MKNOD); a provider that cannot make them says -EPERM.  A
	 * device node in a sandbox opens nothing: the sandbox and the mount
	 * see its files nodev.  Left NULL, a regular file is made by open
	 * and release, and other types get -EPERM, what Linux says where
	 * there are none.
	 * statfs: statvfs() of the file system holding `path`.
	 * Called: for the system call of the same name below root/ (setattr
	 * calls chmod, chown, truncate and utimens in that order and stops at
	 * the first failure).  After those that change something, the core
	 * drops what it cached of the names involved, whatever the result.
	 * Returns: 0, or what the system call returns as -errno;
	 * readlink: -ENAMETOOLONG if the target does not fit.
	 * Left NULL: -ENOTSUP.
	 */
	int (*mkdir)(struct sbx_provider *p, const char *box, const char *path,
		     mode_t mode);
	int (*unlink)(struct sbx_provider *p, const char *box, const char *path);
	int (*rmdir)(struct sbx_provider *p, const char *box, const char *path);
	int (*rename)(struct sbx_provider *p, const char *box, const char *from,
		      const char *to, unsigned flags);
	int (*chmod)(struct sbx_provider *p, const char *box, const char *path,
		     mode_t mode);
	int (*chown)(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
		     gid_t gid);
	int (*truncate)(struct sbx_provider *p, const char *box, const char *path,
			off_t size);
	int (*utimens)(struct sbx_provider *p, const char *box, const char *path,
		       const struct timespec ts[2]);
	int (*symlink)(struct sbx_provider *p, const char *box, const char *target,
		       const char *path);
	int (*readlink)(struct sbx_provider *p, char *buf, size_t size, const char *box,
			const char *path);
	int (*link)(struct sbx_provider *p, const char *box, const char *from,
		    const char *to);
	int (*mknod)(struct sbx_provider *p, const char *box, const char *path,
		     mode_t mode, dev_t rdev);
	int (*statfs)(struct sbx_provider *p, struct statvfs *out, const char *box,
		      const char *path);

	/* ---- commands ---- */

	/*
	 * cmd_start: run `cmdline` with /bin/sh -c in the running sandbox.
	 * Returns once the command has started (0, *handle set) or has
	 * certainly not.  Output and the end go to `sink` as described above;
	 * `sink` outlives the command.  The command's stdin stays open until
	 * cmd_stdin(len 0); the core gives a command whose stdin is not fed
	 * a line that first takes stdin from /dev/null.
	 * Called: for a write to NAME/exec, after the core has made the
	 * command's spool.
	 * Returns: 0; -EAGAIN if the sandbox is not running; -errno.  The
	 * write fails with it, and the command shows as failed.
	 * Left NULL: -ENOTSUP.
	 */
	int (*cmd_start)(struct sbx_provider *p, void **handle, const char *box,
			 const char *cmdline, struct sbx_cmd_sink *sink);

	/*
	 * cmd_stdin: write data to the command's stdin; len 0 closes it.
	 * May block while the command does not read.
	 * Called: for writes to cmd/N/stdin, only with SBX_CAP_STDIN (else
	 * the core answers -ENOTSUP itself); and with len 0 when a descriptor
	 * of cmd/N/stdin opened for writing is closed.
	 * Returns: bytes written; -EPIPE once the command is gone; -EINTR if
	 * *interrupted becomes nonzero meanwhile.
	 * Left NULL: -ENOTSUP.
	 */
	ssize_t (*cmd_stdin)(struct sbx_provider *p, void *handle, const char *data,
			     size_t len, const volatile int *interrupted);

	/*
	 * cmd_signal: send `sig` to the command and its process group.
	 * Called: for "kill [SIGNAL]" written to cmd/N/ctl (SIGTERM by
	 * default), until cmd_release (after it the core answers -ESRCH).
	 * Returns: 0, or -errno.
	 * Left NULL: -ENOTSUP.
	 */
	int (*cmd_signal)(struct sbx_provider *p, void *handle, int sig);

	/*
	 * cmd_release: forget the handle.
	 * Called: once, after sink->done, when no cmd_stdin or cmd_signal
	 * call uses the handle any more.
	 * Left NULL: nothing.
	 */
	void (*cmd_release)(struct sbx_provider *p, void *handle);
};

struct sbx_provider_desc {
	const char *name;
	unsigned caps;
	/* How long the kernel and the cache may trust what they were told,
	 * in seconds. */
	double attr_timeout;
	double entry_timeout;
	/* The longest path its slots take, with its NUL; 0 for SBX_PATH_MAX.
	 * A service whose API names files by their whole path, resolved
	 * there in one call, takes PATH_MAX: deeper files are ENAMETOOLONG,
	 * said in the sandbox's err. */
	size_t path_max;
	const struct sbx_provider_ops *ops;
};

struct sbx_provider {
	const struct sbx_provider_desc *desc;
	struct sbx_provider_ops ops; /* every slot non-NULL */
	void *priv;
	/* The desc's timeouts, which init may change for this instance (a
	 * backend far away trusts what it was told longer). */
	double attr_timeout;
	double entry_timeout;
};

/* The providers built in. */
extern const struct sbx_provider_desc sbx_provider_local;
extern const struct sbx_provider_desc sbx_provider_daytona;
extern const struct sbx_provider_desc sbx_provider_rexec;
extern const struct sbx_provider_desc sbx_provider_vtrix;
extern const struct sbx_provider_desc sbx_provider_docker;
extern const struct sbx_provider_desc sbx_provider_microsandbox;

/* Find a provider by name and make an instance with every ops slot set.
 * Returns NULL with sbx_failf() text if the name is unknown. */
struct sbx_provider *sbx_provider_new(const char *name);
void sbx_provider_free(struct sbx_provider *p);
/*
 * Make p, whose init failed, an instance that does nothing: its list,
 * create and remove fail with EIO and the text `why`, every other slot is
 * the default, and destroy frees what this made.  0 or -ENOMEM.
 */
int sbx_provider_disable(struct sbx_provider *p, const char *why);

/* Record the human text of the failure being returned, for this thread.
 * The text is also logged.  Never pass secrets. */
void sbx_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The text recorded by the last sbx_failf() on this thread, or "" */
const char *sbx_fail_text(void);
void sbx_fail_clear(void);

/*
 * Whether the caller gave up on the request this thread serves (Ctrl-C of
 * a process blocked in open, read, stat or a listing).  A slot that waits
 * long on something remote polls it and returns -EINTR once it is set;
 * http.c does so for every request.  Always 0 outside such a request.
 * sbx_intr_enter()/sbx_intr_leave() bracket the part of a request that
 * may wait long (the FUSE layer does this); `flag` becomes nonzero when
 * the request is interrupted.
 */
int sbx_interrupted(void);
void sbx_intr_enter(const volatile int *flag);
void sbx_intr_leave(void);

/*
 * The time the request this thread serves has lost to a server that did
 * not answer: failed attempts and the pauses before their retries.  A
 * request may make many remote calls (a state wait polls for minutes),
 * but it spends at most one timeout on a silent server, retries included:
 * http.c adds each failed attempt with sbx_call_stalled() and starts no
 * retry past the bound.  sbx_call_stalled_ms() is -1 outside a request
 * (then each remote call is bounded on its own).  sbx_call_begin() and
 * sbx_call_end() bracket every request the FUSE layer serves, whatever
 * file it is for: an open of `status` has the same one bound as a stat.
 */
void sbx_call_begin(void);
void sbx_call_end(void);
void sbx_call_stalled(long ms);
long sbx_call_stalled_ms(void);

/*
 * Who made the request this thread serves: the calling process's uid and
 * gid, as the kernel tells them (`known` 0 outside a request).  A slot
 * that makes a name (open with O_CREAT, mkdir, symlink) gives it this
 * owner where its API can set owners, as a kernel makes a new file its
 * creator's.  The FUSE layer sets it around each request.
 */
struct sbx_caller {
	uid_t uid;
	gid_t gid;
	int known;
};
struct sbx_caller sbx_caller(void);
void sbx_caller_set(uid_t uid, gid_t gid);
void sbx_caller_clear(void);

/*
 * Is the caller another user than the daemon's (another uid or gid, as
 * allow_other lets in)?  Then *c is who, and a provider whose service
 * makes names as one user of its own gives them to *c afterwards.  0
 * outside a request and for the daemon's own user, whose names keep the
 * owner the service gives them at no extra cost.
 */
int sbx_caller_other(struct sbx_caller *c);

#endif

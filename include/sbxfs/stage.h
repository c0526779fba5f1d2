/* SPDX-License-Identifier: MIT */
/*
 * Staged files: local copies of remote files for providers whose API
 * moves whole files (download all, upload all).
 *
 * A staged copy is an unnamed file (O_TMPFILE) under the state directory,
 * never a buffer in memory.  All open handles of one remote path share one
 * copy, so readers see writers' data and `ls -l` sees the size being
 * written.  After the last close a clean copy stays cached and is reused
 * by the next open if the remote file still has the size and mtime it had
 * when fetched.  The bytes held are bounded (`max`): unreferenced copies
 * are evicted oldest first, and a file that cannot fit is refused.
 *
 * The provider does the transfers; this file keeps the copies and their
 * bookkeeping.  Locking: `stage` has a lock for its table; each copy has
 * its own lock, held by the provider across a download or upload of that
 * copy (never across anything else remote).
 */
#ifndef SBXFS_STAGE_H
#define SBXFS_STAGE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct stage;

struct staged {
	/* Fields below `lock` are guarded by it. */
	pthread_mutex_t lock;
	int fd;		   /* the copy; read and written with pread/pwrite */
	int fetched;	   /* fd holds the file as of remote_size/mtime */
	int dirty;	   /* written since the last upload */
	int orphan;	   /* the remote file was unlinked: never upload */
	unsigned writers;  /* open handles that upload at flush or release */
	off_t remote_size; /* what the server showed when fetched */
	struct timespec remote_mtime;
	mode_t mode; /* S_IFREG | permission bits to report */
	/* The owner to report (owner_known): the server's, or for a file
	 * created here by another user than the daemon's
	 * (sbx_caller_other()), theirs, which its first upload gives it on
	 * the server too (give; stagefile.h). */
	int owner_known, give;
	uid_t uid;
	gid_t gid;

	/* Guarded by the stage's lock. */
	char *box, *path;
	unsigned refs;	/* handles, plus temporary lookups */
	unsigned opens; /* open handles */
	off_t bytes;	/* accounted size */
	struct staged *next, *lru_prev, *lru_next;
	struct stage *owner;
};

/* A stage under `dir` (created 0700) holding at most max_bytes. */
struct stage *stage_new(const char *dir, uint64_t max_bytes);
void stage_free(struct stage *s);
uint64_t stage_max(const struct stage *s);
/* Its directory: where a caller may make scratch files (O_TMPFILE). */
const char *stage_dir(const struct stage *s);

/*
 * The copy of box:path, created empty if there is none; referenced and
 * counted as open.  Returns NULL with -errno in *err.  The caller fills
 * it under f->lock and gives it back with stage_close().
 */
struct staged *stage_open(struct stage *s, const char *box, const char *path, int *err);
void stage_close(struct staged *f);

/* Copies of the copy's current sandbox and path (they change on rename);
 * the caller frees both.  -ENOMEM, or -ENOENT if it was unlinked (then
 * both are NULL). */
int stage_where(struct staged *f, char **box, char **path);

/*
 * The attributes of the file the copy f (locked by the caller) stands
 * for: the copy's size and times, f's mode and owner (the daemon's if
 * it knows none), no inode number.  0 or -errno.
 */
int stage_fstat(const struct staged *f, struct stat *st);

/* Was the copy open (opens > 1) when the caller opened it? */
int stage_shared(struct staged *f);

/*
 * For getattr: if box:path has an open copy with changes not yet uploaded,
 * fill st from it and return 0; else -ENOENT (the server knows best).
 */
int stage_stat(struct stage *s, const char *box, const char *path, struct stat *st);

/* Account the copy's current size; -EFBIG if the stage cannot hold
 * `size` bytes for it even after evicting unused copies. */
int stage_reserve(struct staged *f, off_t size);
/* Write len bytes of buf into f's copy at off, reserving room for them
 * first (stage_reserve()).  0, or -errno with text. */
int stage_put(struct staged *f, off_t off, const void *buf, size_t len);

/* Truncate the open copy of box:path and mark it changed, if a handle
 * that will upload it is open (writers) or it holds changes not yet
 * uploaded; -ENOENT if it has no such copy (then the truncation is the
 * server's to make, and a copy open only for reading is stale). */
int stage_truncate(struct stage *s, const char *box, const char *path, off_t size);

/* The remote file was removed or renamed away: open copies must not be
 * uploaded under the old name (unlink), or go to the new one (rename).
 * stage_unlink() returns 1 if the file existed only as an open copy that
 * was never uploaded. */
int stage_unlink(struct stage *s, const char *box, const char *path);
/* Renaming a directory moves the copies of the files below it too. */
void stage_rename(struct stage *s, const char *box, const char *from, const char *to);
/* The open copy of box:path, referenced, or NULL; give it back with
 * stage_unref(). */
struct staged *stage_lookup(struct stage *s, const char *box, const char *path);
void stage_unref(struct staged *f);

/* Forget every unused copy of the box (it was deleted or changed). */
void stage_drop_box(struct stage *s, const char *box);

#endif

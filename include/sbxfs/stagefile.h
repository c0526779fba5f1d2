/* SPDX-License-Identifier: MIT */
/*
 * Staged files: open, read, write, flush and release for providers whose
 * API moves whole files, on top of the staged copies of stage.h.
 *
 * At open the file is looked up on the server (info) and, unless the
 * cached copy still matches it, downloaded into the copy (fetch); reads
 * and writes go to the copy; flush, fsync and release upload a copy that
 * has changes (upload) and record what the server then holds, so that
 * the next open can reuse the copy.  A file created here exists only as
 * its copy until its first upload: stagefile_flush_pending() uploads it
 * before a metadata call that needs it on the server.
 *
 * This file keeps the bookkeeping (the copy's fetched, dirty, remote_size,
 * remote_mtime and mode fields, see stage.h) in one place.  The provider
 * supplies the transfers through a small ops table and keeps every
 * transfer detail (temporary names, parts, message caps, modes the API
 * cannot give) to itself.
 *
 * Locking: every op below is called with the copy's lock held (f->lock)
 * and may block on the network; it must not take that lock again.
 */
#ifndef SBXFS_STAGEFILE_H
#define SBXFS_STAGEFILE_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "sbxfs/stage.h"

struct sbx_provider;

/* Behaviours where providers differ, as flags in stagefile_ops.flags. */
enum {
	/*
	 * A write-only open of a file whose copy is stale fetches nothing:
	 * the copy is sized to the remote file and filled at the first
	 * write.  An open that writes nothing (touch) then reads nothing and
	 * leaves the remote atime alone.
	 */
	STAGEFILE_LAZY_WRONLY = 1u << 0,
	/* Opening a symlink fails with -ELOOP (what O_NOFOLLOW gives) rather
	 * than -EOPNOTSUPP like other files that are not regular. */
	STAGEFILE_SYMLINK_ELOOP = 1u << 1,
};

/* Where the file's attributes after an upload come from. */
enum stagefile_upload_stat {
	/* The layer calls info after the upload. */
	STAGEFILE_STAT_BY_INFO = 0,
	/* upload fills *remote itself (its own round trip tells them). */
	STAGEFILE_STAT_BY_UPLOAD,
	/* Nowhere (asking costs too much): the copy is kept but is not
	 * trusted for reuse, and keeps the mode it had. */
	STAGEFILE_STAT_NONE,
};

/*
 * What a provider supplies.  Every slot is required.  `ctx` is the
 * stagefile's ctx; `box` and `path` are borrowed for the call and name
 * the file as it is now (it may have been renamed since it was opened).
 * Each slot returns 0 or a negative errno, after sbx_failf() with the
 * text for a remote or runtime failure (see provider.h).
 */
struct stagefile_ops {
	/* The provider's name: the first word of the layer's messages. */
	const char *name;
	/* STAGEFILE_* flags above. */
	unsigned flags;
	enum stagefile_upload_stat upload_stat;

	/*
	 * info: lstat() of box:path on the server into *st: at least
	 * st_mode, st_size and st_mtim.  -ENOENT if there is no such file.
	 * Called at open (unless another open already holds the contents, or
	 * the cache knows the file) and, with STAGEFILE_STAT_BY_INFO, after
	 * each upload.
	 */
	int (*info)(void *ctx, struct stat *st, const char *box, const char *path);

	/*
	 * fetch: download box:path into the copy f->fd.  `remote` is what
	 * info said of it; the layer has already reserved remote->st_size
	 * bytes for it (stage_reserve()), and reserves any more the fetch
	 * writes itself.  On success the copy holds exactly the bytes that
	 * came, from offset 0, its length theirs: the layer compares that
	 * length with remote->st_size and, if they differ (the file changed
	 * meanwhile), keeps the copy without trusting it for reuse.  The
	 * layer, not fetch, sets f's bookkeeping fields.
	 */
	int (*fetch)(void *ctx, struct staged *f, const char *box, const char *path,
		     const struct stat *remote);

	/*
	 * upload: put the copy's `size` bytes (f->fd, from offset 0) on the
	 * server as box:path, replacing what is there.  f->fetched is 0 for
	 * a file created here that was never uploaded: it gets the
	 * permission bits in f->mode (a file that exists keeps its own).
	 * With STAGEFILE_STAT_BY_UPLOAD, fills *remote (zeroed by the layer)
	 * as info would; the layer then checks that the server holds `size`
	 * bytes (-EIO if not) and records the attributes.  An upload whose
	 * answer tells the size but not the mtime sets st_mtim.tv_nsec to
	 * UTIME_OMIT: the copy then takes the mtime of the first info or
	 * listing that shows the file with that size.  upload reads f but
	 * sets none of its fields.
	 */
	int (*upload)(void *ctx, struct stat *remote, struct staged *f, const char *box,
		      const char *path, off_t size);
};

/* One provider's staged files.  The provider embeds it and sets it up
 * with stagefile_init() once its stage exists; it needs no teardown. */
struct stagefile {
	const struct stagefile_ops *ops;
	struct stage *stage; /* borrowed: the provider frees it */
	void *ctx;	     /* passed to every op */
	/*
	 * give: optional, set by the layer that embeds sf (remote.h).  Make
	 * box:path, just uploaded for the first time, belong to uid and gid:
	 * the user who created it, another than the daemon's, keeping its
	 * permission bits `mode` (which a chown may clear).  Best effort:
	 * a service that cannot leaves the owner it gave, and give says so
	 * in the log; the upload stands.  NULL: files keep the service's
	 * owner.
	 */
	void (*give)(struct stagefile *sf, const char *box, const char *path, uid_t uid,
		     gid_t gid, mode_t mode);
};

void stagefile_init(struct stagefile *sf, const struct stagefile_ops *ops,
		    struct stage *stage, void *ctx);

/*
 * The provider's open slot (provider.h): open box:path through sf.  The
 * handle in *fh is what the slots below take; it points back at sf.
 * `known` (may be NULL): the file's fresh cached attributes, used instead
 * of info.
 */
int stagefile_open(struct stagefile *sf, uint64_t *fh, struct stat *st, const char *box,
		   const char *path, int flags, mode_t mode, const struct stat *known);

/*
 * The slots that take a handle, with the signatures of provider.h so that
 * a provider's ops table points straight at them.  `p` is not used: the
 * handle knows its stagefile.  flush and fsync upload the copy if this
 * handle may write and it has changes; release uploads once more if the
 * last upload failed, and logs loudly if that fails too.
 */
int stagefile_fgetattr(struct sbx_provider *p, struct stat *out, uint64_t fh);
ssize_t stagefile_read(struct sbx_provider *p, uint64_t fh, char *buf, size_t size,
		       off_t off);
ssize_t stagefile_write(struct sbx_provider *p, uint64_t fh, const char *buf, size_t size,
			off_t off);
int stagefile_flush(struct sbx_provider *p, uint64_t fh);
int stagefile_fsync(struct sbx_provider *p, uint64_t fh, int datasync);
int stagefile_release(struct sbx_provider *p, uint64_t fh);

/*
 * Contents of box:path fetched ahead (a provider's prefetch): keep them as
 * its copy, the version `remote` describes (what a listing said: mode,
 * size, mtime), so that its next open finds them fresh.  Nothing is kept
 * if the copy is in use (open, or being written) or already holds that
 * version.  0, or -errno (the copy is then left as it was, or dropped).
 */
int stagefile_offer(struct stagefile *sf, const char *box, const char *path,
		    const struct stat *remote, const char *data, size_t len);

/* After a chmod of box:path on the server: an open copy reports the new
 * mode and keeps it on upload (the kernel's chmod that clears set-user-ID
 * after a write by another user included). */
void stagefile_chmod(struct stagefile *sf, const char *box, const char *path,
		     mode_t mode);

/*
 * Metadata calls (chmod, rename, link, ...) need the file on the server.
 * A file created and still open exists only as its copy until close:
 * upload it now (tar and git chmod a file before closing it).  0 if there
 * was nothing to upload.
 */
int stagefile_flush_pending(struct stagefile *sf, const char *box, const char *path);

#endif

/* SPDX-License-Identifier: MIT */
/* Staged files: the open/read/write/upload bookkeeping shared by the
 * providers that move whole files.  See stagefile.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbxfs/log.h"
#include "sbxfs/provider.h"
#include "sbxfs/stagefile.h"

/* A handle: the shared staged copy plus what this open may do. */
struct handle {
	struct stagefile *sf;
	struct staged *f;
	int writable; /* uploads at flush and release: opened to write, or created */
	/* STAGEFILE_LAZY_WRONLY: the contents are fetched at the first
	 * write, as of `remote`. */
	int lazy;
	struct stat remote;
};

static struct handle *handle_of(uint64_t fh)
{
	return (struct handle *)(uintptr_t)fh;
}

void stagefile_init(struct stagefile *sf, const struct stagefile_ops *ops,
		    struct stage *stage, void *ctx)
{
	sf->ops = ops;
	sf->stage = stage;
	sf->ctx = ctx;
	sf->give = NULL;
}

/* Does the copy hold the remote file that info describes in st?  A copy
 * whose upload did not tell the mtime takes the first one seen with its
 * size. */
static int same_remote(struct staged *f, const struct stat *st)
{
	if (!f->fetched || f->remote_size != st->st_size)
		return 0;
	if (f->remote_mtime.tv_nsec == UTIME_OMIT)
		f->remote_mtime = st->st_mtim;
	return f->remote_mtime.tv_sec == st->st_mtim.tv_sec &&
	       f->remote_mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Download box:path into f (locked by the caller) and record what came. */
static int fetch(struct stagefile *sf, struct staged *f, const char *box,
		 const char *path, const struct stat *remote)
{
	struct stat got;
	int rc = stage_reserve(f, remote->st_size);

	/* A fetch that fails may leave the copy half written: until one
	 * succeeds it is nobody's version. */
	f->remote_size = -1;
	if (!rc)
		rc = sf->ops->fetch(sf->ctx, f, box, path, remote);
	if (!rc && fstat(f->fd, &got))
		rc = -errno;
	if (rc)
		return rc;
	f->fetched = 1;
	f->remote_size = remote->st_size;
	f->remote_mtime = remote->st_mtim;
	/* The file changed between info and fetch, or the server lies:
	 * keep what came, but do not trust it for reuse. */
	if (got.st_size != remote->st_size)
		f->remote_size = -1;
	f->mode = remote->st_mode;
	return 0;
}

/* A new file: it exists here, as its copy, until an upload, and is its
 * creator's. */
static int create_new(struct staged *f, mode_t mode)
{
	int rc = ftruncate(f->fd, 0) ? -errno : 0;
	struct sbx_caller c;

	f->fetched = 0;
	f->dirty = 1;
	f->mode = S_IFREG | (mode & 07777);
	f->owner_known = f->give = sbx_caller_other(&c);
	f->uid = c.uid;
	f->gid = c.gid;
	return rc;
}

/*
 * Make the copy of an open that is the only one, or the first with
 * contents, hold the remote file as open(2) `flags` ask.  Here is the
 * open's one call to info, spared when the cache knows the file: a copy
 * is then as fresh as what stat(2) shows, and the kernel's page cache,
 * kept across opens, no fresher.
 */
static int revalidate(struct handle *h, const char *box, const char *path, int flags,
		      mode_t mode, const struct stat *known)
{
	struct stagefile *sf = h->sf;
	struct staged *f = h->f;
	struct stat remote;
	int rc;

	/* O_CREAT reaches us only from create, which the kernel sends after
	 * a lookup found no such file: no need to ask again. */
	if (flags & O_CREAT)
		rc = -ENOENT;
	else if (known) {
		remote = *known;
		rc = 0;
	} else
		rc = sf->ops->info(sf->ctx, &remote, box, path);
	if (rc == -ENOENT && (flags & O_CREAT))
		return create_new(f, mode);
	if (rc)
		return rc;
	f->owner_known = 1;
	f->give = 0;
	f->uid = remote.st_uid;
	f->gid = remote.st_gid;
	if ((flags & O_CREAT) && (flags & O_EXCL))
		return -EEXIST;
	if (S_ISDIR(remote.st_mode))
		return -EISDIR;
	if (S_ISLNK(remote.st_mode) && (sf->ops->flags & STAGEFILE_SYMLINK_ELOOP))
		return -ELOOP;
	if (!S_ISREG(remote.st_mode)) {
		sbx_failf("%s: \"%s\" is not a regular file", sf->ops->name, path);
		return -EOPNOTSUPP;
	}
	if (flags & O_TRUNC) {
		rc = ftruncate(f->fd, 0) ? -errno : 0;
		f->mode = remote.st_mode;
		f->fetched = 1;
		f->remote_size = -1;
		f->dirty = 1;
		return rc;
	}
	if (same_remote(f, &remote)) {
		f->mode = remote.st_mode; /* chmod changes no mtime */
		return 0;
	}
	if ((sf->ops->flags & STAGEFILE_LAZY_WRONLY) && (flags & O_ACCMODE) == O_WRONLY) {
		f->fetched = 0;
		f->mode = remote.st_mode;
		h->lazy = 1;
		h->remote = remote;
		return ftruncate(f->fd, remote.st_size) ? -errno : 0;
	}
	return fetch(sf, f, box, path, &remote);
}

/* What open reports: the copy's size, the remote file's identity. */
static int open_stat(const struct handle *h, struct stat *st)
{
	const struct staged *f = h->f;
	int rc = stage_fstat(f, st);

	if (rc)
		return rc;
	if (h->lazy)
		st->st_mtim = h->remote.st_mtim;
	st->st_nlink = 1;
	if (f->fetched && !f->dirty && f->remote_size >= 0 &&
	    f->remote_mtime.tv_nsec != UTIME_OMIT)
		st->st_mtim = f->remote_mtime;
	return 0;
}

int stagefile_open(struct stagefile *sf, uint64_t *fh, struct stat *st, const char *box,
		   const char *path, int flags, mode_t mode, const struct stat *known)
{
	struct handle *h = calloc(1, sizeof(*h));
	struct staged *f;
	int rc = 0, shared;

	if (!h)
		return -ENOMEM;
	h->sf = sf;
	f = h->f = stage_open(sf->stage, box, path, &rc);
	if (!f) {
		free(h);
		return rc;
	}
	shared = stage_shared(f);
	pthread_mutex_lock(&f->lock);
	if (shared && (f->fetched || f->dirty)) {
		/* Another open holds the current contents. */
		if (flags & O_CREAT && flags & O_EXCL)
			rc = -EEXIST;
	} else {
		rc = revalidate(h, box, path, flags, mode, known);
	}
	if (!rc && (flags & O_TRUNC) && shared) {
		rc = ftruncate(f->fd, 0) ? -errno : 0;
		f->dirty = 1;
	}
	if (!rc)
		rc = open_stat(h, st);
	pthread_mutex_unlock(&f->lock);
	if (rc) {
		stage_close(f);
		free(h);
		return rc;
	}
	/* A file this open created is new contents too, even if the handle
	 * cannot write: it goes up at flush or release like written data. */
	h->writable = (flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT);
	if (h->writable) {
		pthread_mutex_lock(&f->lock);
		f->writers++;
		pthread_mutex_unlock(&f->lock);
	}
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

int stagefile_offer(struct stagefile *sf, const char *box, const char *path,
		    const struct stat *remote, const char *data, size_t len)
{
	struct staged *f;
	int rc = 0;

	if (!S_ISREG(remote->st_mode) || remote->st_size != (off_t)len)
		return -EINVAL;
	f = stage_open(sf->stage, box, path, &rc);
	if (!f)
		return rc;
	if (stage_shared(f) || pthread_mutex_trylock(&f->lock)) {
		stage_close(f);
		return 0; /* in use: its opens know better */
	}
	if (!f->dirty && !f->writers && !same_remote(f, remote)) {
		f->fetched = 0; /* nobody's version until written whole */
		rc = stage_put(f, 0, data, len);
		if (!rc && ftruncate(f->fd, (off_t)len))
			rc = -errno;
		if (!rc) {
			f->fetched = 1;
			f->remote_size = remote->st_size;
			f->remote_mtime = remote->st_mtim;
			f->mode = remote->st_mode;
		}
	}
	pthread_mutex_unlock(&f->lock);
	stage_close(f);
	return rc;
}

int stagefile_fgetattr(struct sbx_provider *p, struct stat *out, uint64_t fh)
{
	struct staged *f = handle_of(fh)->f;
	int rc = 0;

	/* A file unlinked while open lives on in its copy. */
	pthread_mutex_lock(&f->lock);
	rc = stage_fstat(f, out);
	out->st_nlink = 0;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

ssize_t stagefile_read(struct sbx_provider *p, uint64_t fh, char *buf, size_t size,
		       off_t off)
{
	ssize_t n = pread(handle_of(fh)->f->fd, buf, size, off);

	return n < 0 ? -errno : n;
}

/* A lazy handle's first write: fetch the contents it will change. */
static int fetch_lazy(struct handle *h)
{
	char *box = NULL, *path = NULL;
	mode_t mode = h->f->mode;
	int rc = stage_where(h->f, &box, &path);

	if (!rc)
		rc = fetch(h->sf, h->f, box, path, &h->remote);
	/* The mode is what open saw or a chmod made since (the kernel's
	 * that clears set-user-ID before this write), not the open's. */
	h->f->mode = mode;
	free(box);
	free(path);
	return rc;
}

ssize_t stagefile_write(struct sbx_provider *p, uint64_t fh, const char *buf, size_t size,
			off_t off)
{
	struct handle *h = handle_of(fh);
	struct staged *f = h->f;
	ssize_t n;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (h->lazy && !f->fetched && !f->dirty)
		rc = fetch_lazy(h);
	if (!rc)
		rc = stage_reserve(f, off + (off_t)size);
	if (rc) {
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	n = pwrite(f->fd, buf, size, off);
	if (n < 0)
		n = -errno;
	else
		f->dirty = 1;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* After an upload of `size` bytes: record what the server holds, so that
 * the next open can reuse the copy. */
static int uploaded(struct stagefile *sf, struct staged *f, const char *path,
		    const struct stat *remote, off_t size)
{
	if (sf->ops->upload_stat == STAGEFILE_STAT_NONE) {
		/* mtime unknown: fetch again on the next open. */
		f->dirty = 0;
		f->fetched = 1;
		f->remote_size = -1;
		return 0;
	}
	/* A close that returns 0 means the data is there. */
	if (remote->st_size != size) {
		sbx_failf("%s: upload \"%s\": the server holds %lld bytes, we sent %lld",
			  sf->ops->name, path, (long long)remote->st_size,
			  (long long)size);
		return -EIO;
	}
	f->dirty = 0;
	f->fetched = 1;
	f->remote_size = remote->st_size;
	f->remote_mtime = remote->st_mtim;
	f->mode = (f->mode & S_IFMT) | (remote->st_mode & 07777);
	return 0;
}

/* Upload f (locked by the caller) if it has changes. */
static int upload(struct stagefile *sf, struct staged *f)
{
	struct stat local, remote;
	char *box = NULL, *path = NULL;
	int rc;

	if (!f->dirty)
		return 0;
	rc = stage_where(f, &box, &path);
	if (rc == -ENOENT) { /* unlinked while open: nothing to keep */
		f->dirty = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (fstat(f->fd, &local)) {
		rc = -errno;
		goto out;
	}
	memset(&remote, 0, sizeof(remote));
	rc = sf->ops->upload(sf->ctx, &remote, f, box, path, local.st_size);
	if (!rc && sf->ops->upload_stat == STAGEFILE_STAT_BY_INFO)
		rc = sf->ops->info(sf->ctx, &remote, box, path);
	if (!rc)
		rc = uploaded(sf, f, path, &remote, local.st_size);
	if (!rc && f->give) {
		if (sf->give)
			sf->give(sf, box, path, f->uid, f->gid, f->mode & 07777);
		f->give = 0;
	}
out:
	free(box);
	free(path);
	return rc;
}

int stagefile_flush(struct sbx_provider *p, uint64_t fh)
{
	struct handle *h = handle_of(fh);
	int rc;

	if (!h->writable)
		return 0;
	pthread_mutex_lock(&h->f->lock);
	rc = upload(h->sf, h->f);
	pthread_mutex_unlock(&h->f->lock);
	return rc;
}

int stagefile_fsync(struct sbx_provider *p, uint64_t fh, int datasync)
{
	return stagefile_flush(p, fh);
}

int stagefile_release(struct sbx_provider *p, uint64_t fh)
{
	struct handle *h = handle_of(fh);
	int rc = 0;

	/* Normally flush uploaded it; a failed upload gets one more try, and
	 * a loud log line if that fails too. */
	if (h->writable) {
		pthread_mutex_lock(&h->f->lock);
		/* The last writer uploads what is left, readers or not. */
		if (--h->f->writers == 0 && h->f->dirty) {
			rc = upload(h->sf, h->f);
			if (rc)
				sbx_err("%s: changes to a file were not saved: %s",
					h->sf->ops->name, sbx_fail_text());
		}
		pthread_mutex_unlock(&h->f->lock);
	}
	stage_close(h->f);
	free(h);
	return rc;
}

void stagefile_chmod(struct stagefile *sf, const char *box, const char *path, mode_t mode)
{
	struct staged *f = stage_lookup(sf->stage, box, path);

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->mode = (f->mode & S_IFMT) | (mode & 07777);
	pthread_mutex_unlock(&f->lock);
	stage_unref(f);
}

int stagefile_flush_pending(struct stagefile *sf, const char *box, const char *path)
{
	struct staged *f = stage_lookup(sf->stage, box, path);
	int rc = 0;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	if (f->dirty && !f->fetched)
		rc = upload(sf, f);
	pthread_mutex_unlock(&f->lock);
	stage_unref(f);
	return rc;
}

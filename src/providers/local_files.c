/* SPDX-License-Identifier: MIT */
/*
 * The local provider's root/: every path resolved from the sandbox's root
 * with openat2(RESOLVE_IN_ROOT), final components through the *at() calls
 * without following symlinks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbxfs/log.h"
#include "sbxfs/provider.h"
#include "local.h"

#define LISTING_MAX 1000000

/* ---- path resolution inside the sandbox ---- */

static int openat2_in(int dirfd, const char *rel, int flags, mode_t mode,
		      uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode & 07777) : 0,
		.resolve = resolve,
	};
	long fd;

	do
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : (int)fd;
}

/*
 * Open `path` (absolute in the sandbox) from its root.  openat2 takes a
 * path under PATH_MAX: a longer one (a deep tree reached step by step)
 * is resolved a part at a time, each part from the directory the last
 * reached and beneath it, so that nothing escapes the sandbox; a symlink
 * that climbs out of its part, which the whole path at once would have
 * followed, is ENAMETOOLONG.
 */
static int open_in(int rootfd, const char *path, int flags, mode_t mode)
{
	uint64_t resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	const char *rel = path[1] ? path + 1 : ".";
	int dirfd = rootfd, fd;

	while (strlen(rel) >= PATH_MAX) {
		size_t n = PATH_MAX - 1; /* the last '/' of the first PATH_MAX - 1 */
		const char *cut;
		char head[PATH_MAX];

		while (n > 0 && rel[n] != '/')
			n--;
		if (n == 0) {
			fd = -ENAMETOOLONG;
			goto out;
		}
		cut = rel + n;
		memcpy(head, rel, n);
		head[n] = '\0';
		fd = openat2_in(dirfd, head, O_PATH | O_DIRECTORY, 0, resolve);
		if (dirfd != rootfd)
			close(dirfd);
		dirfd = rootfd;
		if (fd < 0)
			goto out;
		dirfd = fd;
		rel = cut + strspn(cut, "/");
		resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
		if (!*rel)
			rel = ".";
	}
	fd = openat2_in(dirfd, rel, flags, mode, resolve);
	if (dirfd != rootfd)
		close(dirfd);
out:
	return fd == -EXDEV && (resolve & RESOLVE_BENEATH) ? -ENAMETOOLONG : fd;
}

/*
 * Resolve everything but the last component of `path`: an O_PATH descriptor
 * of the parent directory, and in *base the last component.  "/" has no
 * parent: -EBUSY.
 */
static int open_parent(struct sbx_provider *p, const char *box, const char *path,
		       const char **base)
{
	char parent[SBX_PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = (size_t)(slash - path);
	int root, fd;

	if (!slash[1])
		return -EBUSY;
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, n);
	parent[n] = '\0';
	if (!n)
		strcpy(parent, "/");
	*base = slash + 1;
	root = local_box_root(p, box);
	if (root < 0)
		return root;
	fd = open_in(root, parent, O_PATH | O_DIRECTORY, 0);
	close(root);
	return fd;
}

/*
 * A name just made in the directory pfd for the request's caller: theirs,
 * as a kernel makes a new file its creator's (its group the directory's
 * if that is set-group-ID), and with exactly the mode the kernel sent,
 * which already holds the caller's umask: the daemon's must not apply
 * again.  fd: the new file open, or -1 for pfd/base (a symlink keeps its
 * mode).  Only a daemon that may give files away (root) changes owners.
 */
static int made_for_caller(int pfd, const char *base, int fd, mode_t mode)
{
	struct sbx_caller c = sbx_caller();
	struct stat dir, st;
	gid_t gid;

	if (fd >= 0 ? fstat(fd, &st) : fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (c.known && geteuid() == 0 && (st.st_uid != c.uid || st.st_gid != c.gid)) {
		gid = fstat(pfd, &dir) == 0 && (dir.st_mode & S_ISGID) ? (gid_t)-1
								       : c.gid;
		if (fd >= 0 ? fchown(fd, c.uid, gid)
			    : fchownat(pfd, base, c.uid, gid, AT_SYMLINK_NOFOLLOW))
			return -errno;
	}
	if (S_ISLNK(st.st_mode))
		return 0;
	/* A directory in a set-group-ID one inherits that bit. */
	mode = (mode & 07777) | (S_ISDIR(st.st_mode) ? st.st_mode & S_ISGID : 0);
	if (fd >= 0 ? fchmod(fd, mode) : fchmodat(pfd, base, mode, 0))
		return -errno;
	return 0;
}

/* ---- file slots ---- */

int local_getattr(struct sbx_provider *p, struct stat *out, const char *box,
		  const char *path)
{
	const char *base;
	int fd, rc = 0;

	if (!strcmp(path, "/")) {
		fd = local_box_root(p, box);
		if (fd < 0)
			return fd;
		if (fstat(fd, out) < 0)
			rc = -errno;
		close(fd);
		return rc;
	}
	fd = open_parent(p, box, path, &base);
	if (fd < 0)
		return fd;
	if (fstatat(fd, base, out, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int local_readdir(struct sbx_provider *p, const char *box, const char *path,
		  sbx_dirent_fn fn, void *ctx)
{
	int root = local_box_root(p, box), fd;
	struct dirent *de;
	struct stat st;
	size_t count = 0;
	DIR *d;
	int rc = 0;

	if (root < 0)
		return root;
	fd = open_in(root, path, O_RDONLY | O_DIRECTORY, 0);
	close(root);
	if (fd < 0)
		return fd;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (++count > LISTING_MAX) {
			sbx_failf("directory \"%s\" has more than %d entries", path,
				  LISTING_MAX);
			rc = -EFBIG;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		rc = fn(ctx, de->d_name, &st);
	}
	closedir(d);
	return rc > 0 ? 0 : rc;
}

int local_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *box,
	       const char *path, int flags, mode_t mode, const struct stat *known)
{
	(void)known; /* the file itself is at hand */
	int root = local_box_root(p, box), fd, made = 0;

	if (root < 0)
		return root;
	flags = (flags & ~O_NOCTTY) | O_NOFOLLOW;
	if (flags & O_CREAT) {
		/* Know whether this open made the file: then it is the
		 * caller's. */
		fd = open_in(root, path, flags | O_EXCL, mode);
		made = fd >= 0;
		if (fd == -EEXIST && !(flags & O_EXCL))
			fd = open_in(root, path, flags & ~O_CREAT, 0);
	} else {
		fd = open_in(root, path, flags, mode);
	}
	close(root);
	if (fd < 0)
		return fd;
	if (made) {
		const char *base;
		int pfd = open_parent(p, box, path, &base), rc;

		rc = pfd < 0 ? pfd : made_for_caller(pfd, base, fd, mode);
		if (pfd >= 0)
			close(pfd);
		if (rc) {
			close(fd);
			return rc;
		}
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		int rc = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;

		close(fd);
		return rc;
	}
	*fh = (uint64_t)fd;
	return 0;
}

int local_fgetattr(struct sbx_provider *p, struct stat *out, uint64_t fh)
{
	return fstat((int)fh, out) < 0 ? -errno : 0;
}

ssize_t local_read(struct sbx_provider *p, uint64_t fh, char *buf, size_t size, off_t off)
{
	ssize_t n = pread((int)fh, buf, size, off);

	return n < 0 ? -errno : n;
}

ssize_t local_write(struct sbx_provider *p, uint64_t fh, const char *buf, size_t size,
		    off_t off)
{
	ssize_t n = pwrite((int)fh, buf, size, off);

	return n < 0 ? -errno : n;
}

int local_fsync(struct sbx_provider *p, uint64_t fh, int datasync)
{
	int rc = datasync ? fdatasync((int)fh) : fsync((int)fh);

	return rc < 0 ? -errno : 0;
}

int local_release(struct sbx_provider *p, uint64_t fh)
{
	return close((int)fh) < 0 ? -errno : 0;
}

/* made_for_caller()'s result as a call's: 0, or -1 with errno. */
static int made_errno(int rc)
{
	errno = -rc;
	return rc ? -1 : 0;
}

/* Run fn on (parent descriptor, last component). */
#define AT_PARENT(p, box, path, call)                             \
	do {                                                      \
		const char *base;                                 \
		int pfd = open_parent((p), (box), (path), &base); \
		int rc_ = 0;                                      \
		if (pfd < 0)                                      \
			return pfd;                               \
		if ((call) < 0)                                   \
			rc_ = -errno;                             \
		close(pfd);                                       \
		return rc_;                                       \
	} while (0)

int local_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	AT_PARENT(p, box, path,
		  mkdirat(pfd, base, mode)
			  ? -1
			  : made_errno(made_for_caller(pfd, base, -1, mode)));
}

int local_unlink(struct sbx_provider *p, const char *box, const char *path)
{
	AT_PARENT(p, box, path, unlinkat(pfd, base, 0));
}

int local_rmdir(struct sbx_provider *p, const char *box, const char *path)
{
	AT_PARENT(p, box, path, unlinkat(pfd, base, AT_REMOVEDIR));
}

int local_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode)
{
	if (!strcmp(path, "/"))
		return -EROFS;
	AT_PARENT(p, box, path, fchmodat(pfd, base, mode, AT_SYMLINK_NOFOLLOW));
}

int local_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
		gid_t gid)
{
	if (!strcmp(path, "/"))
		return -EROFS;
	AT_PARENT(p, box, path, fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW));
}

int local_utimens(struct sbx_provider *p, const char *box, const char *path,
		  const struct timespec ts[2])
{
	if (!strcmp(path, "/"))
		return -EROFS;
	AT_PARENT(p, box, path, utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW));
}

int local_mknod(struct sbx_provider *p, const char *box, const char *path, mode_t mode,
		dev_t rdev)
{
	AT_PARENT(p, box, path,
		  mknodat(pfd, base, mode, S_ISCHR(mode) || S_ISBLK(mode) ? rdev : 0)
			  ? -1
			  : made_errno(made_for_caller(pfd, base, -1, mode)));
}

int local_symlink(struct sbx_provider *p, const char *box, const char *target,
		  const char *path)
{
	AT_PARENT(p, box, path,
		  symlinkat(target, pfd, base)
			  ? -1
			  : made_errno(made_for_caller(pfd, base, -1, 0)));
}

int local_readlink(struct sbx_provider *p, char *buf, size_t size, const char *box,
		   const char *path)
{
	const char *base;
	int pfd = open_parent(p, box, path, &base);
	ssize_t n;

	if (pfd < 0)
		return pfd;
	n = readlinkat(pfd, base, buf, size);
	close(pfd);
	if (n < 0)
		return -errno;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

int local_truncate(struct sbx_provider *p, const char *box, const char *path, off_t size)
{
	int root = local_box_root(p, box), fd, rc = 0;

	if (root < 0)
		return root;
	fd = open_in(root, path, O_WRONLY | O_NOFOLLOW, 0);
	close(root);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int two_parents(struct sbx_provider *p, const char *box, const char *from,
		       const char *to, int *fa, const char **ba, int *fb, const char **bb)
{
	*fa = open_parent(p, box, from, ba);
	if (*fa < 0)
		return *fa;
	*fb = open_parent(p, box, to, bb);
	if (*fb < 0) {
		close(*fa);
		return *fb;
	}
	return 0;
}

int local_rename(struct sbx_provider *p, const char *box, const char *from,
		 const char *to, unsigned flags)
{
	const char *ba, *bb;
	int fa, fb, rc = two_parents(p, box, from, to, &fa, &ba, &fb, &bb);

	if (rc)
		return rc;
	if (renameat2(fa, ba, fb, bb, flags) < 0)
		rc = -errno;
	close(fa);
	close(fb);
	return rc;
}

int local_link(struct sbx_provider *p, const char *box, const char *from, const char *to)
{
	const char *ba, *bb;
	int fa, fb, rc = two_parents(p, box, from, to, &fa, &ba, &fb, &bb);

	if (rc)
		return rc;
	if (linkat(fa, ba, fb, bb, 0) < 0)
		rc = -errno;
	close(fa);
	close(fb);
	return rc;
}

int local_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
		 const char *path)
{
	int root = local_box_root(p, box), fd, rc = 0;

	if (root < 0)
		return root;
	fd = open_in(root, path, O_PATH, 0);
	close(root);
	if (fd < 0)
		return fd;
	if (fstatvfs(fd, out) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

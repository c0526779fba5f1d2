/* SPDX-License-Identifier: MIT */
/*
 * The local provider's parts, shared by local.c (sandboxes: the table,
 * create, remove, start, stop), local_keeper.c (the bwrap keeper that
 * builds a sandbox's namespaces), local_files.c (root/) and local_cmd.c
 * (commands).  Not an interface: the provider's interface is provider.h.
 */
#ifndef SBXFS_PROVIDERS_LOCAL_H
#define SBXFS_PROVIDERS_LOCAL_H

#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "sbxfs/provider.h"

struct local_box {
	struct local_box *next;
	char name[SBX_NAME_MAX + 1];
	pthread_mutex_t lock; /* guards everything below */
	int rootfd;	      /* O_PATH root of the sandbox namespace, or -1 */
	int mntnsfd;	      /* its mount namespace, or -1 */
	pid_t keeper;	      /* bwrap, while running */
	pid_t init;	      /* the sandbox's pid 1, as the host sees it */
	int keeper_in;	      /* keeper's stdin: it lives while this is open */
	int deleted;	      /* guarded by local.lock: the sandbox was removed */
};

struct local {
	char *dir; /* STATE/local */
	char default_image[256];
	pthread_mutex_t lock; /* guards boxes */
	struct local_box *boxes;
	int live_cmds; /* atomic: command threads not yet finished */
};

static inline struct local *L(struct sbx_provider *p)
{
	return p->priv;
}

/* The sandbox's own writable directories, for image=host and image=DIR. */
extern const char *const local_host_own_dirs[];
extern const char *const local_image_own_dirs[];

/* local.c */
void local_close_pipe(int p[2]);
int local_box_dir(char *out, size_t size, struct local *l, const char *box,
		  const char *sub);
int local_config_load(struct sbx_kvlist *out, struct local *l, const char *box);
struct local_box *local_box_get(struct local *l, const char *name);

/* local_keeper.c: lock of the box held where the name says _locked. */
void local_box_close_view_locked(struct local_box *b);
void local_box_kill_keeper_locked(struct local_box *b);
int local_box_running_locked(struct local_box *b);
int local_box_spawn_locked(struct local *l, struct local_box *b, int keep);
int local_box_root(struct sbx_provider *p, const char *box);

/* local_files.c */
int local_getattr(struct sbx_provider *p, struct stat *out, const char *box,
		  const char *path);
int local_fgetattr(struct sbx_provider *p, struct stat *out, uint64_t fh);
int local_readdir(struct sbx_provider *p, const char *box, const char *path,
		  sbx_dirent_fn fn, void *ctx);
int local_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *box,
	       const char *path, int flags, mode_t mode, const struct stat *known);
ssize_t local_read(struct sbx_provider *p, uint64_t fh, char *buf, size_t size,
		   off_t off);
ssize_t local_write(struct sbx_provider *p, uint64_t fh, const char *buf, size_t size,
		    off_t off);
int local_fsync(struct sbx_provider *p, uint64_t fh, int datasync);
int local_release(struct sbx_provider *p, uint64_t fh);
int local_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode);
int local_unlink(struct sbx_provider *p, const char *box, const char *path);
int local_rmdir(struct sbx_provider *p, const char *box, const char *path);
int local_rename(struct sbx_provider *p, const char *box, const char *from,
		 const char *to, unsigned flags);
int local_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode);
int local_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
		gid_t gid);
int local_truncate(struct sbx_provider *p, const char *box, const char *path, off_t size);
int local_utimens(struct sbx_provider *p, const char *box, const char *path,
		  const struct timespec ts[2]);
int local_mknod(struct sbx_provider *p, const char *box, const char *path, mode_t mode,
		dev_t rdev);
int local_symlink(struct sbx_provider *p, const char *box, const char *target,
		  const char *path);
int local_readlink(struct sbx_provider *p, char *buf, size_t size, const char *box,
		   const char *path);
int local_link(struct sbx_provider *p, const char *box, const char *from, const char *to);
int local_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
		 const char *path);

/* local_cmd.c */
int local_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		    const char *cmdline, struct sbx_cmd_sink *sink);
ssize_t local_cmd_stdin(struct sbx_provider *p, void *handle, const char *data,
			size_t len, const volatile int *interrupted);
int local_cmd_signal(struct sbx_provider *p, void *handle, int sig);
void local_cmd_release(struct sbx_provider *p, void *handle);

#endif

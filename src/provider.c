/* SPDX-License-Identifier: MIT */
/* Provider instances, with a default for every slot, and failure text. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/log.h"
#include "sbxfs/provider.h"

static const struct sbx_provider_desc *const providers[] = {
	&sbx_provider_local, &sbx_provider_daytona, &sbx_provider_rexec,
	&sbx_provider_vtrix, &sbx_provider_docker,  &sbx_provider_microsandbox,
};

/* Defaults: what a provider leaves out, it cannot do. */
static int no_init(struct sbx_provider *p, const struct sbx_kvlist *o)
{
	return 0;
}
static void no_destroy(struct sbx_provider *p)
{
}
static void no_describe(struct sbx_provider *p, struct sbx_kvlist *o)
{
}
static int no_list(struct sbx_provider *p, sbx_list_fn fn, void *c)
{
	return 0;
}
static int no_create(struct sbx_provider *p, const char *b, const struct sbx_kvlist *a)
{
	return -ENOTSUP;
}
static int no_box(struct sbx_provider *p, const char *b)
{
	return -ENOTSUP;
}
static int no_ctl(struct sbx_provider *p, const char *b, int argc, char *const argv[])
{
	sbx_failf("unknown command \"%s\"", argv[0]);
	return -EINVAL;
}
static int no_info(struct sbx_provider *p, struct sbx_box_info *o, const char *b)
{
	return -ENOTSUP;
}
static int no_getattr(struct sbx_provider *p, struct stat *o, const char *b,
		      const char *path)
{
	return -ENOTSUP;
}

static int no_unsaved(struct sbx_provider *p, struct stat *o, const char *b,
		      const char *path)
{
	return -ENOENT;
}
static int no_fgetattr(struct sbx_provider *p, struct stat *o, uint64_t fh)
{
	return -ESTALE;
}
static int no_readdir(struct sbx_provider *p, const char *b, const char *path,
		      sbx_dirent_fn fn, void *c)
{
	return -ENOTSUP;
}
static int no_readtree(struct sbx_provider *p, const char *b, const char *path,
		       size_t max, sbx_treeent_fn fn, void *c)
{
	return -ENOTSUP;
}
static int no_prefetch(struct sbx_provider *p, const char *b, const char *dir,
		       char *const *rels, const struct stat *sts, size_t n)
{
	return -ENOTSUP;
}
static int no_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *b,
		   const char *path, int f, mode_t m, const struct stat *known)
{
	return -ENOTSUP;
}
static ssize_t no_read(struct sbx_provider *p, uint64_t fh, char *buf, size_t s, off_t o)
{
	return -ENOTSUP;
}
static ssize_t no_write(struct sbx_provider *p, uint64_t fh, const char *buf, size_t s,
			off_t o)
{
	return -ENOTSUP;
}
static int no_fsync(struct sbx_provider *p, uint64_t fh, int d)
{
	return 0;
}
static int no_release(struct sbx_provider *p, uint64_t fh)
{
	return 0;
}
static int no_flush(struct sbx_provider *p, uint64_t fh)
{
	return 0;
}
static int no_path_mode(struct sbx_provider *p, const char *b, const char *path, mode_t m)
{
	return -ENOTSUP;
}
static int no_path(struct sbx_provider *p, const char *b, const char *path)
{
	return -ENOTSUP;
}
static int no_rename(struct sbx_provider *p, const char *b, const char *f, const char *t,
		     unsigned fl)
{
	return -ENOTSUP;
}
static int no_chown(struct sbx_provider *p, const char *b, const char *path, uid_t u,
		    gid_t g)
{
	return -ENOTSUP;
}
static int no_truncate(struct sbx_provider *p, const char *b, const char *path, off_t s)
{
	return -ENOTSUP;
}
static int no_utimens(struct sbx_provider *p, const char *b, const char *path,
		      const struct timespec ts[2])
{
	return -ENOTSUP;
}
static int no_two(struct sbx_provider *p, const char *b, const char *x, const char *y)
{
	return -ENOTSUP;
}
static int no_mknod(struct sbx_provider *p, const char *b, const char *path, mode_t m,
		    dev_t rdev)
{
	return -ENOTSUP;
}
static int no_readlink(struct sbx_provider *p, char *buf, size_t s, const char *b,
		       const char *path)
{
	return -ENOTSUP;
}
static int no_statfs(struct sbx_provider *p, struct statvfs *o, const char *b,
		     const char *path)
{
	return -ENOTSUP;
}
static int no_cmd_start(struct sbx_provider *p, void **h, const char *b, const char *c,
			struct sbx_cmd_sink *s)
{
	return -ENOTSUP;
}
static ssize_t no_cmd_stdin(struct sbx_provider *p, void *h, const char *d, size_t l,
			    const volatile int *i)
{
	return -ENOTSUP;
}
static int no_cmd_signal(struct sbx_provider *p, void *h, int sig)
{
	return -ENOTSUP;
}
static void no_cmd_release(struct sbx_provider *p, void *h)
{
}

#define FILL(slot, def)                  \
	do {                             \
		if (!o->slot)            \
			o->slot = (def); \
	} while (0)

static void fill_defaults(struct sbx_provider_ops *o)
{
	FILL(init, no_init);
	FILL(destroy, no_destroy);
	FILL(describe, no_describe);
	FILL(list, no_list);
	FILL(create, no_create);
	FILL(remove, no_box);
	FILL(start, no_box);
	FILL(stop, no_box);
	FILL(ctl, no_ctl);
	FILL(info, no_info);
	FILL(getattr, no_getattr);
	FILL(unsaved, no_unsaved);
	FILL(fgetattr, no_fgetattr);
	FILL(readdir, no_readdir);
	FILL(readtree, no_readtree);
	FILL(prefetch, no_prefetch);
	FILL(open, no_open);
	FILL(read, no_read);
	FILL(write, no_write);
	FILL(fsync, no_fsync);
	FILL(flush, no_flush);
	FILL(release, no_release);
	FILL(mkdir, no_path_mode);
	FILL(unlink, no_path);
	FILL(rmdir, no_path);
	FILL(rename, no_rename);
	FILL(chmod, no_path_mode);
	FILL(chown, no_chown);
	FILL(truncate, no_truncate);
	FILL(utimens, no_utimens);
	FILL(symlink, no_two);
	FILL(readlink, no_readlink);
	FILL(link, no_two);
	FILL(mknod, no_mknod);
	FILL(statfs, no_statfs);
	FILL(cmd_start, no_cmd_start);
	FILL(cmd_stdin, no_cmd_stdin);
	FILL(cmd_signal, no_cmd_signal);
	FILL(cmd_release, no_cmd_release);
}

struct sbx_provider *sbx_provider_new(const char *name)
{
	struct sbx_provider *p;

	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
		if (strcmp(providers[i]->name, name))
			continue;
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		p->desc = providers[i];
		p->ops = *providers[i]->ops;
		p->attr_timeout = providers[i]->attr_timeout;
		p->entry_timeout = providers[i]->entry_timeout;
		fill_defaults(&p->ops);
		return p;
	}
	sbx_failf("unknown provider \"%s\" (known: local)", name);
	return NULL;
}

/* The slots of a provider that did not start: see sbx_provider_disable(). */
static int failed_list(struct sbx_provider *p, sbx_list_fn fn, void *c)
{
	sbx_failf("%s", (const char *)p->priv);
	return -EIO;
}
static int failed_create(struct sbx_provider *p, const char *b,
			 const struct sbx_kvlist *a)
{
	sbx_failf("%s", (const char *)p->priv);
	return -EIO;
}
static int failed_box(struct sbx_provider *p, const char *b)
{
	sbx_failf("%s", (const char *)p->priv);
	return -EIO;
}
static void failed_destroy(struct sbx_provider *p)
{
	free(p->priv);
	p->priv = NULL;
}

int sbx_provider_disable(struct sbx_provider *p, const char *why)
{
	memset(&p->ops, 0, sizeof(p->ops));
	p->ops.list = failed_list;
	p->ops.create = failed_create;
	p->ops.remove = failed_box;
	p->ops.destroy = failed_destroy;
	fill_defaults(&p->ops);
	p->priv = strdup(why);
	return p->priv ? 0 : -ENOMEM;
}

void sbx_provider_free(struct sbx_provider *p)
{
	free(p);
}

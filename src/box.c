/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/box.h"
#include "sbxfs/cache.h"
#include "sbxfs/cmd.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/fsutil.h"

struct box *box_ref(struct box *b)
{
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

/* The registered record for `name`, or NULL.  boxes_lock held. */
static struct box *find_locked(struct sbxfs *fs, const char *name)
{
	struct box *b;

	for (b = fs->boxes; b; b = b->next)
		if (!strcmp(b->name, name))
			break;
	return b;
}

struct box *box_find(struct sbxfs *fs, const char *name)
{
	struct box *b;

	pthread_mutex_lock(&fs->boxes_lock);
	b = find_locked(fs, name);
	if (b)
		box_ref(b);
	pthread_mutex_unlock(&fs->boxes_lock);
	return b;
}

static const struct cmd_host_ops host_ops;

struct box *box_get(struct sbxfs *fs, const char *name)
{
	struct box *b;

	pthread_mutex_lock(&fs->boxes_lock);
	b = find_locked(fs, name);
	if (!b && (b = calloc(1, sizeof(*b)))) {
		snprintf(b->name, sizeof(b->name), "%s", name);
		b->fs = fs;
		b->host.ops = &host_ops;
		b->host.provider = fs->provider;
		b->host.box = b->name;
		b->host.spool_dir = fs->cmd_dir;
		b->refs = 1; /* the registry's */
		pthread_mutex_init(&b->lock, NULL);
		b->next = fs->boxes;
		fs->boxes = b;
	}
	if (b)
		box_ref(b);
	pthread_mutex_unlock(&fs->boxes_lock);
	return b;
}

void box_ahead_reset(struct box *b)
{
	for (size_t i = 0; i < b->ahead_n; i++)
		free(b->ahead_picked[i]);
	free(b->ahead_picked);
	free(b->ahead_root);
	free(b->ahead_last);
	b->ahead_picked = NULL;
	b->ahead_n = 0;
	b->ahead_root = b->ahead_last = NULL;
	b->ahead_rounds = 0;
	b->ahead_done = 0;
}

static void box_free(struct box *b)
{
	free(b->cmds);
	free(b->statfs_path);
	box_ahead_reset(b);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* The record leaves the registry: its command list goes first, because
 * each command holds a reference to the record. */
static void box_unregistered(struct box *b)
{
	struct cmd **cmds;
	unsigned n;

	pthread_mutex_lock(&b->lock);
	cmds = b->cmds;
	n = b->ncmds;
	b->cmds = NULL;
	b->ncmds = b->capcmds = 0;
	pthread_mutex_unlock(&b->lock);
	for (unsigned i = 0; i < n; i++)
		cmd_put(cmds[i]);
	free(cmds);
	box_put(b);
}

void box_put(struct box *b)
{
	if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		box_free(b);
}

void box_fail(struct box *b, int rc, const char *fmt, ...)
{
	char msg[sizeof(b->err)];
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	} else if (sbx_fail_text()[0]) {
		snprintf(msg, sizeof(msg), "%s", sbx_fail_text());
	} else {
		snprintf(msg, sizeof(msg), "%s", strerror(-rc));
	}
	sbx_warn("sandbox \"%s\": %s (%s)", b->name, msg, strerror(-rc));
	pthread_mutex_lock(&b->lock);
	snprintf(b->err, sizeof(b->err), "%s", msg);
	b->err_time = time(NULL);
	pthread_mutex_unlock(&b->lock);
}

void box_err_text(struct box *b, char *out, size_t size)
{
	char when[32];

	pthread_mutex_lock(&b->lock);
	if (b->err[0]) {
		sbx_time_iso(when, sizeof(when), b->err_time);
		snprintf(out, size, "%s %s\n", when, b->err);
	} else {
		out[0] = '\0';
	}
	pthread_mutex_unlock(&b->lock);
}

/* ---- the command list ---- */

static struct box *host_box(struct cmd_host *h)
{
	return (struct box *)((char *)h - offsetof(struct box, host));
}

static void host_get(struct cmd_host *h)
{
	box_ref(host_box(h));
}

static void host_put(struct cmd_host *h)
{
	box_put(host_box(h));
}

static void host_fail(struct cmd_host *h, int rc, const char *msg)
{
	if (msg)
		box_fail(host_box(h), rc, "%s", msg);
	else
		box_fail(host_box(h), rc, NULL);
}

static void host_ended(struct cmd_host *h)
{
	struct box *b = host_box(h);

	if (b->fs->inval_box_now)
		b->fs->inval_box_now(b->fs, b);
}

static int host_stopping(struct cmd_host *h)
{
	struct sbxfs *fs = host_box(h)->fs;

	return fs->se && fuse_session_exited(fs->se);
}

static const struct cmd_host_ops host_ops = {
	.get = host_get,
	.put = host_put,
	.fail = host_fail,
	.ended = host_ended,
	.stopping = host_stopping,
};

/* Append the command to the list, which takes the caller's reference. */
static int add_cmd_locked(struct box *b, struct cmd *c)
{
	if (b->ncmds == b->capcmds) {
		unsigned cap = b->capcmds ? b->capcmds * 2 : 16;
		struct cmd **nv = realloc(b->cmds, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		b->cmds = nv;
		b->capcmds = cap;
	}
	b->cmds[b->ncmds++] = c;
	return 0;
}

/* Lock of the box held. */
static void load_locked(struct box *b)
{
	unsigned max;

	if (b->cmds_loaded)
		return;
	b->cmds_loaded = 1;
	max = cmd_spooled(&b->host);
	for (unsigned n = 1; n <= max; n++) {
		struct cmd *c = cmd_load(&b->host, n);

		if (!c)
			break;
		if (add_cmd_locked(b, c)) {
			cmd_put(c);
			break;
		}
	}
}

unsigned box_cmd_count(struct box *b)
{
	unsigned n;

	pthread_mutex_lock(&b->lock);
	load_locked(b);
	n = b->ncmds;
	pthread_mutex_unlock(&b->lock);
	return n;
}

struct cmd *box_cmd_get(struct box *b, unsigned n)
{
	struct cmd *c = NULL;

	pthread_mutex_lock(&b->lock);
	load_locked(b);
	if (n >= 1 && n <= b->ncmds && b->cmds[n - 1])
		c = cmd_ref(b->cmds[n - 1]);
	pthread_mutex_unlock(&b->lock);
	return c;
}

int box_cmd_start(struct cmd **out, struct box *b, const char *cmdline, int stdin_open)
{
	struct cmd *c;
	int rc;

	pthread_mutex_lock(&b->lock);
	load_locked(b);
	clock_gettime(CLOCK_REALTIME, &b->cmds_mtime);
	c = cmd_new(&b->host, b->ncmds + 1, cmdline);
	if (!c || add_cmd_locked(b, c)) {
		pthread_mutex_unlock(&b->lock);
		cmd_put(c);
		return -ENOMEM;
	}
	cmd_ref(c); /* the caller's */
	c->stdin_open = stdin_open;
	pthread_mutex_unlock(&b->lock);
	rc = cmd_run(c);
	if (rc) {
		cmd_put(c);
		return rc;
	}
	*out = c;
	return 0;
}

void box_deleted(struct sbxfs *fs, const char *name)
{
	struct box **pp, *b = NULL;
	char dir[4200], why[256];

	pthread_mutex_lock(&fs->boxes_lock);
	for (pp = &fs->boxes; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, name)) {
			b = *pp;
			*pp = b->next;
			break;
		}
	}
	pthread_mutex_unlock(&fs->boxes_lock);
	if (b)
		box_unregistered(b);
	snprintf(dir, sizeof(dir), "%s/%s", fs->cmd_dir, name);
	if (sbx_remove_tree(dir, 60000, why, sizeof(why)))
		sbx_warn("removing \"%s\": %s", dir, why);
}

void box_registry_free(struct sbxfs *fs)
{
	struct box *b, *next;

	for (b = fs->boxes; b; b = next) {
		next = b->next;
		box_unregistered(b);
	}
	fs->boxes = NULL;
}

/* ---- the list of sandboxes, as the provider last gave it ---- */

struct list_ctx {
	char (*names)[SBX_NAME_MAX + 1];
	size_t n, cap;
};

static int list_add(void *ctx, const char *name)
{
	struct list_ctx *l = ctx;

	if (!sbx_name_valid(name))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		void *nv = realloc(l->names, cap * sizeof(*l->names));

		if (!nv)
			return -ENOMEM;
		l->names = nv;
		l->cap = cap;
	}
	snprintf(l->names[l->n++], SBX_NAME_MAX + 1, "%s", name);
	return 0;
}

void box_tree_fail(struct sbxfs *fs, const char *why)
{
	pthread_mutex_lock(&fs->ctl_lock);
	snprintf(fs->ctl_err, sizeof(fs->ctl_err), "%s", why);
	fs->ctl_err_time = time(NULL);
	pthread_mutex_unlock(&fs->ctl_lock);
}

/* Refresh the cached list if it is older than the entry timeout. */
int box_list_refresh(struct sbxfs *fs)
{
	struct list_ctx l = { 0 };
	double now = cache_clock();
	int rc;

	pthread_mutex_lock(&fs->list_lock);
	if (fs->list_expires > now) {
		pthread_mutex_unlock(&fs->list_lock);
		return 0;
	}
	pthread_mutex_unlock(&fs->list_lock);
	sbx_fail_clear();
	rc = fs->provider->ops.list(fs->provider, list_add, &l);
	if (rc) {
		char why[sizeof(fs->ctl_err)];

		snprintf(why, sizeof(why), "listing sandboxes: %s",
			 sbx_fail_text()[0] ? sbx_fail_text() : strerror(-rc));
		sbx_warn("%s", why);
		box_tree_fail(fs, why);
		free(l.names);
		return rc;
	}
	pthread_mutex_lock(&fs->list_lock);
	if (l.n != fs->list_n ||
	    (l.n && memcmp(l.names, fs->list, l.n * sizeof(*l.names))))
		clock_gettime(CLOCK_REALTIME, &fs->list_mtime);
	free(fs->list);
	fs->list = l.names;
	fs->list_n = l.n;
	fs->list_expires = now + fs->provider->entry_timeout;
	pthread_mutex_unlock(&fs->list_lock);
	return 0;
}

void box_list_dirty(struct sbxfs *fs)
{
	pthread_mutex_lock(&fs->list_lock);
	fs->list_expires = 0;
	clock_gettime(CLOCK_REALTIME, &fs->list_mtime);
	pthread_mutex_unlock(&fs->list_lock);
}

void box_list_expire(struct sbxfs *fs)
{
	pthread_mutex_lock(&fs->list_lock);
	fs->list_expires = 0;
	pthread_mutex_unlock(&fs->list_lock);
}

int box_exists(struct sbxfs *fs, const char *name)
{
	int found = 0, rc;

	/* A listing that failed says nothing of the name: an error, never
	 * "no such sandbox" while the service is down. */
	rc = box_list_refresh(fs);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->list_lock);
	for (size_t i = 0; i < fs->list_n && !found; i++)
		found = !strcmp(fs->list[i], name);
	pthread_mutex_unlock(&fs->list_lock);
	return found;
}

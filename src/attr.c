/* SPDX-License-Identifier: MIT */
/*
 * Attributes and listings below root/, through the cache: when the cache
 * answers, when a directory is listed again instead of one stat, and what
 * of a failure goes to the sandbox's err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sbxfs/attr.h"
#include "sbxfs/box.h"
#include "sbxfs/cache.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/sbxfs.h"

/* The most a lookup's listing may bring (getattr_list): some 2,500
 * entries, what a directory of sources holds; bigger ones are listed
 * when they are read. */
#define LOOKUP_LISTING_MAX (256u << 10)

/* Record in the sandbox's err what is worth telling: provider text, or a
 * failure that is not an ordinary answer of a filesystem. */
void attr_report(struct box *b, int rc, const char *op, const char *path)
{
	const char *text = sbx_fail_text();

	if (rc == -EINTR)
		return; /* the caller gave up: nothing went wrong */
	if (text[0])
		box_fail(b, rc, "%s \"%s\": %s", op, path, text);
	else if (rc == -EIO || rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -EPROTO ||
		 rc == -ENOTSUP || rc == -EAGAIN)
		box_fail(b, rc, "%s \"%s\": %s", op, path, strerror(-rc));
}

/* Time a provider call for -o trace=provider. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Directories longer than this are not listed again for one entry. */
#define RELIST_MAX 4096

/* The directory of `path` into dir (size bytes) and its last name; NULL
 * for "/" or a path too long. */
static const char *split_path(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash || !slash[1] || (size_t)(slash - path) >= size)
		return NULL;
	snprintf(dir, size, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return slash + 1;
}

/* The attributes of `name` in the listing d: 0, -ENOENT, or -EAGAIN if
 * they changed since (the name is there). */
static int listed_entry(const struct cache_dir *d, const char *name, struct stat *st)
{
	for (size_t i = 0; i < d->n; i++) {
		if (!strcmp(d->v[i].name, name)) {
			if (d->v[i].stale)
				return -EAGAIN;
			*st = d->v[i].st;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * Attributes that expired come back a directory at a time where a listing
 * costs what one stat does (SBX_CAP_LIST_STATS): a walk that outlives the
 * timeout (ls -lR, git status, an editor's tree) then asks once per
 * directory, not once per entry.  Only directories listed before, and not
 * huge, are listed again.  0, or -EAGAIN: ask for the entry alone (also
 * when the listing lacks it: a listing leaves out what it cannot show).
 */
static int stat_by_listing(struct sbxfs *fs, struct box *b, const char *path,
			   struct stat *st)
{
	char dir[PATH_MAX_SBX];
	const char *name = split_path(path, dir, sizeof(dir));
	struct cache_dir *d;
	size_t size;
	int rc;

	if (!(fs->provider->desc->caps & SBX_CAP_LIST_STATS) || !name ||
	    cache_dir_size_hint(fs->cache, b->name, dir, &size) || size > RELIST_MAX ||
	    attr_list(fs, b, dir, 0, &d))
		return -EAGAIN;
	rc = listed_entry(d, name, st);
	cache_dir_put(d);
	return rc ? -EAGAIN : 0;
}

/*
 * A name's attributes from the fresh listing of its directory, without
 * asking anyone: the listing names every entry, so a name it lacks does
 * not exist (the same trust the cache gives the entries).  0, -ENOENT, or
 * -EAGAIN when the directory's listing is not cached or the entry changed
 * through the mount since.
 */
static int stat_from_listing(struct sbxfs *fs, struct box *b, const char *path,
			     struct stat *st)
{
	char dir[PATH_MAX_SBX];
	const char *name = split_path(path, dir, sizeof(dir));
	struct cache_dir *d = name ? cache_get_dir(fs->cache, b->name, dir) : NULL;
	int rc;

	if (!d)
		return -EAGAIN;
	rc = listed_entry(d, name, st);
	cache_dir_put(d);
	return rc;
}

/* A non-directory with several names changes under all of them when it is
 * written, linked or unlinked through one: its cached attributes are not
 * trusted. */
int attr_several_names(const struct stat *st)
{
	return !S_ISDIR(st->st_mode) && st->st_nlink > 1;
}

static int fill_dirent(void *ctx, const char *name, const struct stat *st);

/*
 * The provider's getattr of box:path, with the listing of a directory
 * along where it can give one in the same round trip (getattr_list): the
 * lookup of the next name of a path, or a listing of this directory, is
 * then answered here.  Such a listing is shallow: a walk still asks for
 * the subtree below.
 */
static int getattr_listing(struct sbxfs *fs, struct box *b, const char *path,
			   uint64_t gen, struct stat *st)
{
	struct sbx_provider *pv = fs->provider;
	struct cache_dir *d;
	int listed = 0, rc;

	if (!pv->ops.getattr_list || !fs->subtree_entries || !(d = cache_dir_new()))
		return pv->ops.getattr(pv, st, b->name, path);
	rc = pv->ops.getattr_list(pv, st, b->name, path, LOOKUP_LISTING_MAX, fill_dirent,
				  d, &listed);
	if (rc == -ENOSYS) {
		cache_dir_put(d);
		return pv->ops.getattr(pv, st, b->name, path);
	}
	if (!rc && listed && S_ISDIR(st->st_mode)) {
		d->shallow = 1;
		cache_put_dir(fs->cache, gen, b->name, path, d);
	} else {
		cache_dir_put(d);
	}
	return rc;
}

/* Attributes of a path below root/, through the cache.  `opens`: handles
 * open on it, whose changes the server may not have seen yet: the
 * provider is asked about those before the cache or a listing. */
int attr_get(struct sbxfs *fs, struct box *b, const char *path, unsigned opens,
	     struct stat *st)
{
	uint64_t gen;
	double t0;
	int rc;

	if (opens && fs->provider->ops.unsaved(fs->provider, st, b->name, path) == 0)
		return 0;
	rc = cache_get_attr(fs->cache, st, b->name, path);

	if (rc != -EAGAIN && !(rc == 0 && attr_several_names(st)))
		return rc;
	if (rc == -EAGAIN) {
		/* What a fresh listing says, then (where listing costs
		 * what a stat does) a listing again; an entry with several
		 * names is asked for alone. */
		rc = stat_from_listing(fs, b, path, st);
		if (rc == -ENOENT || (rc == 0 && !attr_several_names(st)))
			return rc;
		if (rc == -EAGAIN && (rc = stat_by_listing(fs, b, path, st)) != -EAGAIN)
			return rc;
	}
	gen = cache_begin(fs->cache);
	sbx_fail_clear();
	t0 = now_ms();
	rc = getattr_listing(fs, b, path, gen, st);
	sbx_trace(SBX_TRACE_PROVIDER, "getattr %s:%s -> %d (%.3f ms)", b->name, path, rc,
		  now_ms() - t0);
	if (rc == 0)
		cache_put_attr(fs->cache, gen, b->name, path, st);
	else if (rc == -ENOENT)
		cache_put_attr(fs->cache, gen, b->name, path, NULL);
	else
		attr_report(b, rc, "stat", path);
	return rc;
}

static int fill_dirent(void *ctx, const char *name, const struct stat *st)
{
	struct cache_dir *d = ctx;

	if (!sbx_entry_name_valid(name))
		return 0; /* a sandbox may name things we cannot show */
	return cache_dir_add(d, name, st);
}

/*
 * A subtree by the provider's readtree: the listing of `path` (step 1),
 * and every listing the walk closes whole.  The walk is depth first, so a
 * directory's listing is whole once an entry outside it comes (or the
 * walk ends whole); the directories open along the path to the current
 * entry are a stack.
 */
struct walk_dir {
	char *rel;	     /* below the walked directory; "" is itself */
	struct cache_dir *d; /* its entries so far */
};

struct walk {
	struct sbxfs *fs;
	struct box *b;
	const char *path;
	uint64_t gen;
	struct cache_dir *top; /* step 1: the listing asked for */
	int listed, whole;
	size_t entries;
	struct walk_dir *open;
	size_t depth, cap;
};

/* Store the listing of the innermost open directory (if whole) and close it. */
static void walk_pop(struct walk *w, int whole)
{
	struct walk_dir *wd = &w->open[--w->depth];
	char full[PATH_MAX_SBX];

	if (whole &&
	    snprintf(full, sizeof(full), "%s/%s", strcmp(w->path, "/") ? w->path : "",
		     wd->rel) < (int)sizeof(full))
		cache_put_dir(w->fs->cache, w->gen, w->b->name, full, wd->d);
	else
		cache_dir_put(wd->d);
	free(wd->rel);
}

static int walk_push(struct walk *w, const char *rel)
{
	struct walk_dir *wd;

	if (w->depth == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct walk_dir *v = realloc(w->open, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->open = v;
		w->cap = cap;
	}
	wd = &w->open[w->depth];
	wd->rel = strdup(rel);
	wd->d = cache_dir_new();
	if (!wd->rel || !wd->d) {
		free(wd->rel);
		cache_dir_put(wd->d);
		return -ENOMEM;
	}
	w->depth++;
	return 0;
}

/* Is directory `dir` (a rel path) `rel` itself or above it? */
static int walk_holds(const char *dir, const char *rel)
{
	size_t n = strlen(dir);

	return !n || (!strncmp(dir, rel, n) && (rel[n] == '\0' || rel[n] == '/'));
}

/* A symlink's target that came with the walk: readlink then asks no one. */
static void walk_link(struct walk *w, const char *rel, const char *link)
{
	char full[PATH_MAX_SBX];

	if (snprintf(full, sizeof(full), "%s/%s", strcmp(w->path, "/") ? w->path : "",
		     rel) < (int)sizeof(full))
		cache_put_link(w->fs->cache, w->gen, w->b->name, full, link);
}

static int walk_entry(void *ctx, const char *rel, const struct stat *st, const char *link,
		      unsigned flags)
{
	struct walk *w = ctx;
	const char *slash, *name;
	char parent[PATH_MAX_SBX];

	if (!rel) {
		if (flags & SBX_TREE_LISTED) {
			w->top->refs++;
			cache_put_dir(w->fs->cache, w->gen, w->b->name, w->path, w->top);
			w->listed = 1;
			return walk_push(w, "");
		}
		while (w->depth > 1)
			walk_pop(w, 1); /* SBX_TREE_WHOLE */
		w->whole = 1;
		return 0;
	}
	slash = strrchr(rel, '/');
	name = slash ? slash + 1 : rel;
	if (link && S_ISLNK(st->st_mode))
		walk_link(w, rel, link);
	if (!w->listed)
		return sbx_entry_name_valid(name) ? cache_dir_add(w->top, name, st) : 0;
	if (++w->entries > w->fs->subtree_entries ||
	    snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - rel) : 0,
		     rel) >= (int)sizeof(parent))
		return 1;
	while (w->depth > 1 && !walk_holds(w->open[w->depth - 1].rel, parent))
		walk_pop(w, 1);
	if (strcmp(w->open[w->depth - 1].rel, parent))
		return 1; /* not in walk order: what follows is not trusted */
	if (w->depth > 1 && cache_dir_add(w->open[w->depth - 1].d, name, st))
		return 1;
	if (S_ISDIR(st->st_mode) && !(flags & SBX_TREE_OPAQUE))
		return walk_push(w, rel) ? 1 : 0;
	return 0;
}

static int list_tree(struct sbxfs *fs, struct box *b, const char *path,
		     struct cache_dir **out)
{
	struct walk w = { .fs = fs,
			  .b = b,
			  .path = path,
			  .gen = cache_begin(fs->cache),
			  .top = cache_dir_new() };
	double t0 = now_ms();
	int rc;

	if (!w.top)
		return -ENOMEM;
	sbx_fail_clear();
	rc = fs->provider->ops.readtree(fs->provider, b->name, path, fs->subtree_bytes,
					walk_entry, &w);
	sbx_trace(SBX_TRACE_PROVIDER, "readtree %s:%s -> %d, %zu + %zu entries (%.3f ms)",
		  b->name, path, rc, w.top->n, w.entries, now_ms() - t0);
	while (w.depth)
		walk_pop(&w, 0);
	free(w.open);
	if (!rc && !w.listed)
		rc = -EPROTO;
	if (!rc && w.whole)
		attr_walked(fs, b, path);
	if (rc) {
		cache_dir_put(w.top);
		return rc;
	}
	*out = w.top;
	return 0;
}

/* The listing of box:path: from the cache, or one provider call.  Errors
 * are the caller's to report. */
int attr_list(struct sbxfs *fs, struct box *b, const char *path, int subtree,
	      struct cache_dir **out)
{
	struct cache_dir *d = cache_get_dir(fs->cache, b->name, path);
	uint64_t gen;
	double t0;
	int rc;

	sbx_trace(SBX_TRACE_CACHE, "listing %s:%s %s", b->name, path,
		  !d			  ? "miss"
		  : d->shallow && subtree ? "shallow"
					  : "hit");
	if (d && !(d->shallow && subtree && fs->subtree_entries)) {
		*out = d;
		return 0;
	}
	cache_dir_put(d);
	if (subtree && fs->subtree_entries) {
		/* A walk that fails is not the caller's failure: the
		 * directory alone is listed instead. */
		rc = list_tree(fs, b, path, out);
		if (rc == 0 || rc == -ENOENT || rc == -ENOTDIR || rc == -EACCES ||
		    rc == -EINTR)
			return rc;
	}
	d = cache_dir_new();
	if (!d)
		return -ENOMEM;
	gen = cache_begin(fs->cache);
	sbx_fail_clear();
	t0 = now_ms();
	rc = fs->provider->ops.readdir(fs->provider, b->name, path, fill_dirent, d);
	sbx_trace(SBX_TRACE_PROVIDER, "readdir %s:%s -> %d, %zu entries (%.3f ms)",
		  b->name, path, rc, d->n, now_ms() - t0);
	if (rc) {
		cache_dir_put(d);
		return rc;
	}
	d->refs++;
	cache_put_dir(fs->cache, gen, b->name, path, d);
	*out = d;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Reading a subtree ahead.  After a subtree was listed whole (attr.c),
 * files opened for reading below it bring the subtree's small files in
 * rounds, each one provider call (the prefetch slot) with the next files
 * in the order a walk reads them (the cached listings, depth first), so
 * that grep -r, a compiler or an indexer that reads them one after another
 * finds them staged.  The first file is read alone: one file read, however
 * often, never brings a tree.  The second starts the first round; a round
 * brings -o prefetch_mib, and each next one twice the last (up to
 * AHEAD_WINDOW_MAX), started by the first open of a small file that no
 * round brought yet, until the subtree's small files are all brought.
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
#include "sbxfs/sbxfs.h"

/* How deep the choice of files goes below the subtree. */
#define AHEAD_DEPTH 64
/* The largest round, in bytes. */
#define AHEAD_WINDOW_MAX (64ull << 20)

void attr_walked(struct sbxfs *fs, struct box *b, const char *path)
{
	char *copy;

	if (!fs->prefetch_bytes || !(copy = strdup(path)))
		return;
	pthread_mutex_lock(&b->lock);
	if (b->ahead_busy) {
		/* A round is running: the next walk starts after it. */
		pthread_mutex_unlock(&b->lock);
		free(copy);
		return;
	}
	box_ahead_reset(b);
	b->ahead_root = copy;
	b->ahead_until = cache_clock() + fs->attr_timeout;
	pthread_mutex_unlock(&b->lock);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Did a round bring rel (b->lock held, or the round's owner)? */
static int picked(const struct box *b, const char *rel)
{
	return b->ahead_n &&
	       bsearch(&rel, b->ahead_picked, b->ahead_n, sizeof(char *), by_name);
}

/* Is `path` below directory `dir`? */
static int below(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return path[0] == '/' && path[1];
	return !strncmp(dir, path, n) && path[n] == '/';
}

/* The files chosen: paths below the subtree and what the cache says. */
struct pick {
	struct sbxfs *fs;
	struct box *b;
	const char *root;
	char **rels;
	struct stat *sts;
	size_t n, cap;
	uint64_t bytes, window;
};

static int pick_add(struct pick *pk, const char *rel, const struct stat *st)
{
	if (pk->n == pk->cap) {
		size_t cap = pk->cap ? 2 * pk->cap : 64;
		char **rels = realloc(pk->rels, cap * sizeof(*rels));
		struct stat *sts;

		if (!rels)
			return -ENOMEM;
		pk->rels = rels;
		sts = realloc(pk->sts, cap * sizeof(*sts));
		if (!sts)
			return -ENOMEM;
		pk->sts = sts;
		pk->cap = cap;
	}
	if (!(pk->rels[pk->n] = strdup(rel)))
		return -ENOMEM;
	pk->sts[pk->n++] = *st;
	pk->bytes += (uint64_t)st->st_size;
	return 0;
}

/* The small regular files of the cached listing of root/rel and below,
 * depth first, until the bytes are spent.  Nonzero: stop. */
static int pick_dir(struct pick *pk, const char *rel, int depth)
{
	char full[PATH_MAX_SBX], child[PATH_MAX_SBX];
	struct cache_dir *d;
	int stop = 0;

	if (snprintf(full, sizeof(full), "%s%s%s", pk->root,
		     rel[0] && strcmp(pk->root, "/") ? "/" : "",
		     rel) >= (int)sizeof(full))
		return 0;
	d = cache_get_dir(pk->fs->cache, pk->b->name, full);
	if (!d)
		return 0; /* not listed whole: its files are read one by one */
	for (size_t i = 0; i < d->n && !stop; i++) {
		const struct cache_dirent *e = &d->v[i];

		if (e->stale)
			continue; /* changed here: what we have is newer */
		if (snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "",
			     e->name) >= (int)sizeof(child))
			continue;
		if (S_ISREG(e->st.st_mode) && e->st.st_nlink == 1 &&
		    (uint64_t)e->st.st_size <= pk->fs->prefetch_file_max) {
			if (picked(pk->b, child))
				continue;
			if (pk->bytes + (uint64_t)e->st.st_size > pk->window)
				stop = 1;
			else
				stop = pick_add(pk, child, &e->st);
		} else if (S_ISDIR(e->st.st_mode) && depth < AHEAD_DEPTH) {
			stop = pick_dir(pk, child, depth + 1);
		}
	}
	cache_dir_put(d);
	return stop;
}

/* A round is due for the open of box:path (b->lock held)?  The root and
 * the round's window then go to *root and *window. */
static int round_due(struct sbxfs *fs, struct box *b, const char *path,
		     const struct stat *st, char **root, uint64_t *window)
{
	const char *rel;

	if (!b->ahead_root || b->ahead_done || b->ahead_busy ||
	    cache_clock() >= b->ahead_until || !below(b->ahead_root, path) ||
	    (uint64_t)st->st_size > fs->prefetch_file_max)
		return 0;
	rel = path + (strcmp(b->ahead_root, "/") ? strlen(b->ahead_root) + 1 : 1);
	if (!b->ahead_rounds) {
		if (!b->ahead_last) {
			b->ahead_last = strdup(path); /* the first: read alone */
			return 0;
		}
		if (!strcmp(b->ahead_last, path))
			return 0;
	} else if (picked(b, rel)) {
		return 0;
	}
	if (!(*root = strdup(b->ahead_root)))
		return 0;
	*window = fs->prefetch_bytes << (b->ahead_rounds < 6 ? b->ahead_rounds : 6);
	if (*window > AHEAD_WINDOW_MAX)
		*window = AHEAD_WINDOW_MAX;
	b->ahead_rounds++;
	b->ahead_busy = 1;
	/* A walk that reads goes on as long as the listings hold. */
	b->ahead_until = cache_clock() + fs->attr_timeout;
	return 1;
}

/* The first `took` files of the round join those brought (b->lock held).
 * Nonzero if the subtree has no more. */
static int round_end(struct box *b, struct pick *pk, size_t took)
{
	char **v =
		took ? realloc(b->ahead_picked, (b->ahead_n + took) * sizeof(*v)) : NULL;

	b->ahead_busy = 0;
	if (!v)
		return 1;
	memcpy(v + b->ahead_n, pk->rels, took * sizeof(*v));
	memmove(pk->rels, pk->rels + took, (pk->n - took) * sizeof(*v));
	pk->n -= took; /* the names taken are the box's now */
	b->ahead_picked = v;
	b->ahead_n += took;
	qsort(v, b->ahead_n, sizeof(*v), by_name);
	return 0;
}

void attr_read_ahead(struct sbxfs *fs, struct box *b, const char *path,
		     const struct stat *st)
{
	struct pick pk = { .fs = fs, .b = b };
	char *root = NULL;
	int rc = 0, due;
	size_t took = 0;

	pthread_mutex_lock(&b->lock);
	due = fs->prefetch_bytes && round_due(fs, b, path, st, &root, &pk.window);
	pthread_mutex_unlock(&b->lock);
	if (!due)
		return;
	pk.root = root;
	pick_dir(&pk, "", 0);
	if (pk.n) {
		sbx_fail_clear();
		rc = fs->provider->ops.prefetch(fs->provider, b->name, root, pk.rels,
						pk.sts, pk.n);
		sbx_trace(SBX_TRACE_PROVIDER,
			  "prefetch %s:%s -> %d, %zu files, %llu bytes (window %llu)",
			  b->name, root, rc, pk.n, (unsigned long long)pk.bytes,
			  (unsigned long long)pk.window);
		if (rc < 0 && rc != -EINTR && rc != -ENOTSUP)
			sbx_debug("%s: reading \"%s\" ahead failed (%s); files are read "
				  "one by one",
				  b->name, root, strerror(-rc));
		sbx_fail_clear();
		if (rc > 0)
			took = (size_t)rc < pk.n ? (size_t)rc : pk.n;
	}
	pthread_mutex_lock(&b->lock);
	if (round_end(b, &pk, took) || rc < 0)
		b->ahead_done = 1;
	pthread_mutex_unlock(&b->lock);
	for (size_t i = 0; i < pk.n; i++)
		free(pk.rels[i]);
	free(pk.rels);
	free(pk.sts);
	free(root);
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sbxfs/cache.h"
#include "sbxfs/provider.h"

struct entry {
	struct entry *next;
	char *key; /* "box/path": box names never hold '/' */
	size_t boxlen;
	uint64_t hash;
	double expires;
	int negative;
	struct stat st;
	struct cache_dir *dir; /* a listing entry when non-NULL */
	size_t size;	       /* a size hint: entries in the listing */
	char *link;	       /* a symlink's target */
};

/* Size hints outlive listings: they only steer what is asked. */
#define HINT_LIFETIME 3600.0

struct cache {
	pthread_mutex_t lock; /* guards everything below */
	uint64_t gen;
	double ttl;
	size_t count, max, nbuckets;
	struct entry **buckets;
};

static double monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double (*cache_clock)(void) = monotonic_now;

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

struct cache *cache_new(double ttl, size_t max_entries)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nbuckets = 4096;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->ttl = ttl;
	c->max = max_entries;
	return c;
}

static void entry_free(struct entry *e)
{
	if (e->dir)
		cache_dir_put(e->dir);
	free(e->link);
	free(e->key);
	free(e);
}

static void clear_locked(struct cache *c, int only_expired)
{
	double now = cache_clock();

	for (size_t b = 0; b < c->nbuckets; b++) {
		struct entry **pp = &c->buckets[b];

		while (*pp) {
			struct entry *e = *pp;

			if (!only_expired || e->expires <= now) {
				*pp = e->next;
				entry_free(e);
				c->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	clear_locked(c, 0);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

uint64_t cache_begin(struct cache *c)
{
	uint64_t gen;

	pthread_mutex_lock(&c->lock);
	gen = c->gen;
	pthread_mutex_unlock(&c->lock);
	return gen;
}

/* Keys: 'a' + box + path for attributes, 'd' + box + path for listings,
 * 'n' + box + path for a listing's size hint, 'l' + box + path for a
 * symlink's target. */
static char *make_key(char kind, const char *box, const char *path, size_t *len)
{
	size_t bl = strlen(box), pl = strlen(path);
	char *k = malloc(bl + pl + 2);

	if (!k)
		return NULL;
	k[0] = kind;
	memcpy(k + 1, box, bl);
	memcpy(k + 1 + bl, path, pl + 1);
	*len = bl + pl + 1;
	return k;
}

static struct entry **find_locked(struct cache *c, const char *key, size_t len,
				  uint64_t h)
{
	struct entry **pp = &c->buckets[h % c->nbuckets];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && !strcmp((*pp)->key, key))
			return pp;
	(void)len;
	return pp;
}

/* Look up a live entry; drops it if expired.  Lock held. */
static struct entry *lookup_locked(struct cache *c, char kind, const char *box,
				   const char *path)
{
	size_t len;
	char *key = make_key(kind, box, path, &len);
	struct entry **pp, *e;

	if (!key)
		return NULL;
	pp = find_locked(c, key, len, fnv1a(key, len));
	free(key);
	e = *pp;
	if (e && e->expires <= cache_clock()) {
		*pp = e->next;
		entry_free(e);
		c->count--;
		e = NULL;
	}
	return e;
}

/* Insert or replace; takes ownership of dir.  Lock held.  Returns the
 * entry, or NULL if there was no memory. */
static struct entry *store_locked(struct cache *c, char kind, const char *box,
				  const char *path, const struct stat *st,
				  struct cache_dir *dir)
{
	size_t len;
	char *key = make_key(kind, box, path, &len);
	uint64_t h;
	struct entry **pp, *e;

	if (!key)
		goto drop;
	if (c->count >= c->max) {
		clear_locked(c, 1);
		if (c->count >= c->max)
			clear_locked(c, 0);
	}
	h = fnv1a(key, len);
	pp = find_locked(c, key, len, h);
	if (*pp) {
		e = *pp;
		free(key);
		if (e->dir)
			cache_dir_put(e->dir);
		free(e->link);
		e->link = NULL;
	} else {
		e = calloc(1, sizeof(*e));
		if (!e) {
			free(key);
			goto drop;
		}
		e->key = key;
		e->hash = h;
		e->boxlen = strlen(box);
		*pp = e;
		c->count++;
	}
	e->expires = cache_clock() + c->ttl;
	e->negative = st == NULL && dir == NULL;
	if (st)
		e->st = *st;
	e->dir = dir;
	return e;
drop:
	if (dir)
		cache_dir_put(dir);
	return NULL;
}

int cache_get_attr(struct cache *c, struct stat *st, const char *box, const char *path)
{
	struct entry *e;
	int rc = -EAGAIN;

	pthread_mutex_lock(&c->lock);
	e = lookup_locked(c, 'a', box, path);
	if (e) {
		rc = e->negative ? -ENOENT : 0;
		if (!e->negative)
			*st = e->st;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void cache_put_attr(struct cache *c, uint64_t gen, const char *box, const char *path,
		    const struct stat *st)
{
	if (c->ttl <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	if (gen == c->gen)
		store_locked(c, 'a', box, path, st, NULL);
	pthread_mutex_unlock(&c->lock);
}

struct cache_dir *cache_get_dir(struct cache *c, const char *box, const char *path)
{
	struct entry *e;
	struct cache_dir *d = NULL;

	pthread_mutex_lock(&c->lock);
	e = lookup_locked(c, 'd', box, path);
	if (e && e->dir) {
		d = e->dir;
		__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&c->lock);
	return d;
}

void cache_put_dir(struct cache *c, uint64_t gen, const char *box, const char *path,
		   struct cache_dir *dir)
{
	char child[SBX_PATH_MAX];
	struct entry *e;

	if (c->ttl <= 0) {
		cache_dir_put(dir);
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (gen != c->gen) {
		pthread_mutex_unlock(&c->lock);
		cache_dir_put(dir);
		return;
	}
	for (size_t i = 0; i < dir->n; i++) {
		size_t pl = strlen(path), nl = strlen(dir->v[i].name);

		if (pl + nl + 2 > sizeof(child))
			continue;
		memcpy(child, path, pl);
		if (pl > 1)
			child[pl++] = '/';
		memcpy(child + pl, dir->v[i].name, nl + 1);
		store_locked(c, 'a', box, child, &dir->v[i].st, NULL);
	}
	store_locked(c, 'd', box, path, NULL, dir);
	if ((e = store_locked(c, 'n', box, path, NULL, NULL))) {
		e->size = dir->n;
		e->expires = cache_clock() + HINT_LIFETIME;
	}
	pthread_mutex_unlock(&c->lock);
}

int cache_get_link(struct cache *c, char *buf, size_t size, const char *box,
		   const char *path)
{
	struct entry *e;
	int rc = -EAGAIN;

	pthread_mutex_lock(&c->lock);
	e = lookup_locked(c, 'l', box, path);
	if (e && e->link && strlen(e->link) < size) {
		strcpy(buf, e->link);
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void cache_put_link(struct cache *c, uint64_t gen, const char *box, const char *path,
		    const char *target)
{
	char *copy;
	struct entry *e;

	if (c->ttl <= 0 || !(copy = strdup(target)))
		return;
	pthread_mutex_lock(&c->lock);
	if (gen == c->gen && (e = store_locked(c, 'l', box, path, NULL, NULL))) {
		e->negative = 0;
		e->link = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(copy);
}

int cache_dir_size_hint(struct cache *c, const char *box, const char *path, size_t *n)
{
	struct entry *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	if ((e = lookup_locked(c, 'n', box, path))) {
		*n = e->size;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void forget_key_locked(struct cache *c, char kind, const char *box,
			      const char *path)
{
	size_t len;
	char *key = make_key(kind, box, path, &len);
	struct entry **pp, *e;

	if (!key)
		return;
	pp = find_locked(c, key, len, fnv1a(key, len));
	free(key);
	if ((e = *pp)) {
		*pp = e->next;
		entry_free(e);
		c->count--;
	}
}

/* Drop entries of `box` whose path is `prefix` or below it, size hints
 * excepted. */
static void forget_prefix_locked(struct cache *c, const char *box, const char *prefix)
{
	size_t bl = strlen(box), pl = prefix ? strlen(prefix) : 0;

	for (size_t b = 0; b < c->nbuckets; b++) {
		struct entry **pp = &c->buckets[b];

		while (*pp) {
			struct entry *e = *pp;
			const char *p = e->key + 1 + bl;
			int hit = e->key[0] != 'n' && e->boxlen == bl &&
				  !memcmp(e->key + 1, box, bl) &&
				  (!prefix || (!strncmp(p, prefix, pl) &&
					       (p[pl] == '\0' || p[pl] == '/')));

			if (hit) {
				*pp = e->next;
				entry_free(e);
				c->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

/* The directory of `path` into parent (size bytes); its last name. */
static const char *parent_of(const char *path, char *parent, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n >= size)
		n = size - 1;
	memcpy(parent, path, n);
	parent[n] = '\0';
	if (n == 0)
		strcpy(parent, "/");
	return slash ? slash + 1 : path;
}

void cache_forget(struct cache *c, const char *box, const char *path, int subtree)
{
	char parent[SBX_PATH_MAX];

	parent_of(path, parent, sizeof(parent));
	pthread_mutex_lock(&c->lock);
	c->gen++;
	forget_key_locked(c, 'a', box, path);
	forget_key_locked(c, 'l', box, path);
	forget_key_locked(c, 'd', box, path);
	forget_key_locked(c, 'd', box, parent);
	forget_key_locked(c, 'a', box, parent);
	if (subtree)
		forget_prefix_locked(c, box, path);
	pthread_mutex_unlock(&c->lock);
}

/* The cached listing of box:dir, ready to change in place (lock held):
 * the stored one if nobody else holds it, else a copy stored in its
 * place.  NULL if none is cached (or, out of memory, it was dropped). */
static struct cache_dir *listing_to_change_locked(struct cache *c, const char *box,
						  const char *dir)
{
	struct entry *e = lookup_locked(c, 'd', box, dir);
	struct cache_dir *d, *copy;

	if (!e || !e->dir)
		return NULL;
	d = e->dir;
	/* Readers take their references under the lock: one is ours. */
	if (__atomic_load_n(&d->refs, __ATOMIC_ACQUIRE) == 1)
		return d;
	copy = cache_dir_new();
	for (size_t i = 0; copy && i < d->n; i++) {
		if (cache_dir_add(copy, d->v[i].name, &d->v[i].st)) {
			cache_dir_put(copy);
			copy = NULL;
		} else {
			copy->v[i].stale = d->v[i].stale;
		}
	}
	if (!copy) {
		forget_key_locked(c, 'd', box, dir);
		return NULL;
	}
	copy->shallow = d->shallow;
	cache_dir_put(d);
	e->dir = copy;
	return copy;
}

/* Whether the cached listing of box:dir has `name` marked stale. */
static int listed_stale_locked(struct cache *c, const char *box, const char *dir,
			       const char *name)
{
	struct entry *e = lookup_locked(c, 'd', box, dir);

	for (size_t i = 0; e && e->dir && i < e->dir->n; i++)
		if (!strcmp(e->dir->v[i].name, name))
			return e->dir->v[i].stale;
	return 0;
}

/* Keep the listing d true about `name` after `how`.  0, or -errno: the
 * listing cannot be kept. */
static int relist_entry(struct cache_dir *d, const char *name, enum cache_change how,
			mode_t type)
{
	struct stat st;
	size_t i;

	for (i = 0; i < d->n && strcmp(d->v[i].name, name); i++)
		;
	if (how == CACHE_REMOVED) {
		if (i < d->n) {
			free(d->v[i].name);
			memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(d->v[0]));
			d->n--;
		}
		return 0;
	}
	if (i == d->n) {
		/* Missing: a listing made while the name existed only here (a
		 * file created and not yet uploaded) is wrong about it. */
		if (!type)
			return -ENOENT;
		memset(&st, 0, sizeof(st));
		if (cache_dir_add(d, name, &st))
			return -ENOMEM;
	}
	if (type)
		d->v[i].st.st_mode = type;
	d->v[i].stale = 1;
	return 0;
}

void cache_note(struct cache *c, const char *box, const char *path, enum cache_change how,
		mode_t type)
{
	char parent[SBX_PATH_MAX];
	const char *name = parent_of(path, parent, sizeof(parent));
	struct cache_dir *d;
	struct entry *pa;

	type &= S_IFMT;
	if ((!type && how != CACHE_CHANGED) || !strcmp(path, "/")) {
		cache_forget(c, box, path, how == CACHE_REMOVED);
		return;
	}
	pthread_mutex_lock(&c->lock);
	c->gen++;
	forget_key_locked(c, 'a', box, path);
	forget_key_locked(c, 'l', box, path);
	forget_key_locked(c, 'd', box, path);
	if (how == CACHE_REMOVED && S_ISDIR(type))
		forget_prefix_locked(c, box, path);
	/* A file written again (every write(2) comes here) is stale already:
	 * its listing need not change, nor be copied. */
	d = how == CACHE_CHANGED && listed_stale_locked(c, box, parent, name)
		    ? NULL
		    : listing_to_change_locked(c, box, parent);
	if (d && relist_entry(d, name, how, type))
		forget_key_locked(c, 'd', box, parent);
	pa = how == CACHE_CHANGED ? NULL : lookup_locked(c, 'a', box, parent);
	if (pa && !pa->negative) {
		/* What the server does to the directory, by our clock. */
		clock_gettime(CLOCK_REALTIME, &pa->st.st_mtim);
		pa->st.st_ctim = pa->st.st_mtim;
		if (S_ISDIR(type) && how == CACHE_ADDED && pa->st.st_nlink >= 2)
			pa->st.st_nlink++;
		else if (S_ISDIR(type) && how == CACHE_REMOVED && pa->st.st_nlink > 2)
			pa->st.st_nlink--;
	}
	pthread_mutex_unlock(&c->lock);
}

void cache_note_empty_dir(struct cache *c, const char *box, const char *path)
{
	struct cache_dir *d;

	if (c->ttl <= 0 || !(d = cache_dir_new()))
		return;
	pthread_mutex_lock(&c->lock);
	store_locked(c, 'd', box, path, NULL, d);
	pthread_mutex_unlock(&c->lock);
}

void cache_forget_box(struct cache *c, const char *box)
{
	pthread_mutex_lock(&c->lock);
	c->gen++;
	forget_prefix_locked(c, box, NULL);
	pthread_mutex_unlock(&c->lock);
}

size_t cache_count(struct cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}

struct cache_dir *cache_dir_new(void)
{
	struct cache_dir *d = calloc(1, sizeof(*d));

	if (d)
		d->refs = 1;
	return d;
}

int cache_dir_add(struct cache_dir *d, const char *name, const struct stat *st)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct cache_dirent *nv = realloc(d->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		d->v = nv;
		d->cap = cap;
	}
	d->v[d->n].name = strdup(name);
	if (!d->v[d->n].name)
		return -ENOMEM;
	d->v[d->n].st = *st;
	d->v[d->n].stale = 0;
	d->n++;
	return 0;
}

void cache_dir_put(struct cache_dir *d)
{
	if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d);
}

/* SPDX-License-Identifier: MIT */
/*
 * The cache between the FUSE layer and a provider: attributes, negative
 * entries, directory listings and symlink targets, keyed by (sandbox,
 * path), each trusted for the provider's timeout.
 *
 * Coherence is by construction: a caller reads the generation with
 * cache_begin() before asking the provider, and a reply is stored only if
 * no invalidation happened meanwhile.  Our own mutations call cache_note()
 * when they succeeded, which keeps the listing of the directory they
 * changed true, and cache_forget() when the outcome is unknown (a failure
 * may have done part of the work); anything that may have changed a whole
 * sandbox (a command ran) calls cache_forget_box().
 *
 * Thread-safe.  The lock is held only for table operations, never across a
 * provider call.
 */
#ifndef SBXFS_CACHE_H
#define SBXFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct cache;

struct cache_dirent {
	char *name;
	struct stat st;
	/* Changed through the mount since it was listed (cache_note()): st
	 * holds only the type, st_mode & S_IFMT; ask for the rest. */
	int stale;
};

/* A directory listing: immutable once stored, shared by reference. */
struct cache_dir {
	int refs;
	size_t n, cap;
	struct cache_dirent *v;
	/* Listed by a lookup, alone (getattr_list): whole, but a walk that
	 * wants the subtree below still asks for it. */
	int shallow;
};

/* Now, in seconds, from the clock the cache uses; tests may override. */
extern double (*cache_clock)(void);

struct cache *cache_new(double ttl, size_t max_entries);
void cache_free(struct cache *c);

uint64_t cache_begin(struct cache *c);

/* 0 and *st on a hit, -ENOENT on a negative hit, -EAGAIN on a miss. */
int cache_get_attr(struct cache *c, struct stat *st, const char *box, const char *path);
/* Store attributes, or with st NULL a negative entry, if gen is current. */
void cache_put_attr(struct cache *c, uint64_t gen, const char *box, const char *path,
		    const struct stat *st);

/* A new reference to the cached listing, or NULL. */
struct cache_dir *cache_get_dir(struct cache *c, const char *box, const char *path);
/* Store a listing (takes a reference) and the attributes of its entries. */
void cache_put_dir(struct cache *c, uint64_t gen, const char *box, const char *path,
		   struct cache_dir *dir);

/* A symlink's target: 0 with it in buf, or -EAGAIN on a miss (or if it
 * does not fit in size bytes).  Store one if gen is current. */
int cache_get_link(struct cache *c, char *buf, size_t size, const char *box,
		   const char *path);
void cache_put_link(struct cache *c, uint64_t gen, const char *box, const char *path,
		    const char *target);

/*
 * How many entries the last listing of box:path had, in *n; -ENOENT if
 * none was stored within the hour.  A hint for choosing what to ask the
 * provider: kept past the listing's timeout and through invalidations.
 */
int cache_dir_size_hint(struct cache *c, const char *box, const char *path, size_t *n);

/* Drop what is known of `path` and the listing of its parent directory.
 * With `subtree` set, also everything below `path`. */
void cache_forget(struct cache *c, const char *box, const char *path, int subtree);

/* What a change made through the mount did to a name (cache_note()). */
enum cache_change {
	CACHE_CHANGED, /* its contents or attributes changed */
	CACHE_ADDED,   /* it was made */
	CACHE_REMOVED, /* it is gone */
};

/*
 * A change made through the mount that succeeded.  What was known of
 * `path` is dropped (everything below it too, for a directory removed),
 * and the cached listing of its directory, if any, is kept true: the
 * entry is added, marked stale (its attributes are asked for when next
 * needed) or removed.  The lookups of new names in a directory that is
 * being filled (cp -r, tar x, git checkout) then answer from the listing
 * without asking the provider.  A name changed that the listing lacks
 * (it was listed while the name existed only here) is added.  `type` is
 * the name's S_IFMT type; 0 if unknown, which drops the listing wherever
 * an entry would be added, as cache_forget() does.  The
 * directory's own attributes follow: a name added or removed sets its
 * mtime and ctime to now, and a directory added or removed drops them
 * (their link count changed).
 */
void cache_note(struct cache *c, const char *box, const char *path, enum cache_change how,
		mode_t type);

/* A directory just made through the mount (mkdir succeeded): it is empty,
 * so that lookups in it need not ask. */
void cache_note_empty_dir(struct cache *c, const char *box, const char *path);
void cache_forget_box(struct cache *c, const char *box);

/* Listings: build, then store or drop. */
struct cache_dir *cache_dir_new(void);
int cache_dir_add(struct cache_dir *d, const char *name, const struct stat *st);
void cache_dir_put(struct cache_dir *d);

/* Entries currently held (shown by the root ctl read). */
size_t cache_count(struct cache *c);

#endif

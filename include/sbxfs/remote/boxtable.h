/* SPDX-License-Identifier: MIT */
/*
 * The sandbox table of a remote provider: what it knows of each sandbox
 * by the name the tree shows (its ids on the server, its last state
 * word, whether it is gone or being stopped), and how fresh the last
 * complete listing is.
 *
 * A record, once made, lives until boxtable_destroy(): a command, a
 * socket or a terminal may keep a pointer to it.  A sandbox that goes
 * away is marked gone (its ids cleared) and its record is reused if the
 * name comes back.  Every field of every record is guarded by the
 * table's lock; the *_locked calls are for a caller that holds it, the
 * others take it.  The lock is never held across a network call.
 */
#ifndef SBXFS_REMOTE_BOXTABLE_H
#define SBXFS_REMOTE_BOXTABLE_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "sbxfs/provider.h"

#define RBOX_ID_MAX 128

struct rbox {
	struct rbox *next;
	char name[SBX_NAME_MAX + 1];
	/* The id the API knows the sandbox by; "" while unknown. */
	char id[RBOX_ID_MAX];
	/* A second id, for an API that has two (Rexec: the Docker id);
	 * "" if none. */
	char alt_id[RBOX_ID_MAX];
	/* The provider's word for the state last seen; "" if none. */
	char state[32];
	/* The listing that last showed it (boxtable_sweep_begin()). */
	unsigned seen;
	/* Known not to exist: deleted, or missing from a complete listing. */
	int gone;
	/* Stops and deletes under way (boxtable_set_stopping()). */
	int stopping;
	/* The provider's own data for this sandbox (a URL, a connection);
	 * released by the table's `release` when the record is forgotten
	 * and at destroy.  NULL if none. */
	void *priv;
};

struct boxtable {
	pthread_mutex_t lock; /* guards everything below and every record */
	struct rbox *boxes;
	/* When the last complete listing was taken in (CLOCK_MONOTONIC);
	 * zero if never. */
	struct timespec listed;
	unsigned gen; /* the last listing begun */
	/* Frees a record's priv; NULL if the provider keeps none.  Called
	 * without the lock held (it may block, closing a connection). */
	void (*release)(void *priv);
};

void boxtable_init(struct boxtable *t, void (*release)(void *priv));
/* Free every record and its priv.  Only once nothing uses the table. */
void boxtable_destroy(struct boxtable *t);

void boxtable_lock(struct boxtable *t);
void boxtable_unlock(struct boxtable *t);

/*
 * The record of `name`, made (gone, with no ids) if there is none.  NULL
 * only when out of memory.  The pointer stays valid until destroy.
 */
struct rbox *boxtable_get_locked(struct boxtable *t, const char *name);
/* The record of `name`, or NULL if there is none (none is made). */
struct rbox *boxtable_find_locked(struct boxtable *t, const char *name);
struct rbox *boxtable_get(struct boxtable *t, const char *name);

/*
 * Remember that `name` is the sandbox `id` (not NULL, shorter than
 * RBOX_ID_MAX): the record is no longer gone.  When the id changes (the
 * name now belongs to another sandbox), the record's priv is detached
 * and returned through *old for the caller to release once it has
 * dropped the lock (old may be NULL when the provider keeps none).
 */
struct rbox *boxtable_set_locked(struct boxtable *t, const char *name, const char *id,
				 void **old);
/* The same, taking the lock, releasing what the id change detached. */
void boxtable_set(struct boxtable *t, const char *name, const char *id);

/* The id of `name` into out (size bytes): 0, or -ENOENT if the sandbox
 * is not known to exist (no record, gone, or no id yet). */
int boxtable_id(struct boxtable *t, char *out, size_t size, const char *name);

/*
 * Forget `name`: mark its record gone, clear its ids and state, and
 * release its priv.  Nothing if there is no record.
 */
void boxtable_forget(struct boxtable *t, const char *name);
/* The same under the lock: the priv is returned through *old. */
void boxtable_forget_locked(struct rbox *b, void **old);

/*
 * A listing in steps.  boxtable_sweep_begin() gives the listing its
 * number; the provider takes each listed sandbox in (boxtable_set_locked()
 * or its own fields) and sets b->seen to that number;
 * boxtable_sweep_end() then marks gone, with no ids, every record that
 * this listing did not show and no later one did, and notes the time.
 * Only a complete listing may end a sweep; a failed one is just left.
 * Listings may run side by side.
 */
unsigned boxtable_sweep_begin(struct boxtable *t);
void boxtable_sweep_end(struct boxtable *t, unsigned gen);

/*
 * Note that `name` is there, in state `state` (the provider's word; "?"
 * if it is NULL or does not fit), as listing
 * `gen` showed it (0: a call about it alone): its record, made if need
 * be and no longer gone, or NULL when out of memory.
 */
struct rbox *boxtable_seen_locked(struct boxtable *t, const char *name, const char *state,
				  unsigned gen);
void boxtable_seen(struct boxtable *t, const char *name, const char *state, unsigned gen);
/* Is `name` there, with `state` the word last seen? */
int boxtable_state_is(struct boxtable *t, const char *name, const char *state);

/* Did a complete listing end within the last `ms` milliseconds? */
int boxtable_fresh(struct boxtable *t, long ms);

/*
 * Count a stop or delete of `name` as under way (on) or done (off): a
 * provider opens no new connection to a sandbox that is stopping.
 * boxtable_stopping() tells whether one is under way.
 */
void boxtable_set_stopping(struct boxtable *t, const char *name, int on);
int boxtable_stopping(struct boxtable *t, struct rbox *b);

#endif

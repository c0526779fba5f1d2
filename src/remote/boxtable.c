/* SPDX-License-Identifier: MIT */
/* The sandbox table of a remote provider.  See boxtable.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/boxtable.h"
#include "sbxfs/remote/time.h"

void boxtable_init(struct boxtable *t, void (*release)(void *priv))
{
	pthread_mutex_init(&t->lock, NULL);
	t->boxes = NULL;
	t->listed = (struct timespec){ 0 };
	t->gen = 0;
	t->release = release;
}

void boxtable_destroy(struct boxtable *t)
{
	while (t->boxes) {
		struct rbox *b = t->boxes;

		t->boxes = b->next;
		if (b->priv && t->release)
			t->release(b->priv);
		free(b);
	}
	pthread_mutex_destroy(&t->lock);
}

void boxtable_lock(struct boxtable *t)
{
	pthread_mutex_lock(&t->lock);
}

void boxtable_unlock(struct boxtable *t)
{
	pthread_mutex_unlock(&t->lock);
}

struct rbox *boxtable_find_locked(struct boxtable *t, const char *name)
{
	struct rbox *b;

	for (b = t->boxes; b; b = b->next)
		if (!strcmp(b->name, name))
			break;
	return b;
}

struct rbox *boxtable_get_locked(struct boxtable *t, const char *name)
{
	struct rbox *b = boxtable_find_locked(t, name);

	if (b)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->gone = 1;
	b->next = t->boxes;
	t->boxes = b;
	return b;
}

struct rbox *boxtable_get(struct boxtable *t, const char *name)
{
	struct rbox *b;

	pthread_mutex_lock(&t->lock);
	b = boxtable_get_locked(t, name);
	pthread_mutex_unlock(&t->lock);
	return b;
}

struct rbox *boxtable_set_locked(struct boxtable *t, const char *name, const char *id,
				 void **old)
{
	struct rbox *b = boxtable_get_locked(t, name);

	if (old)
		*old = NULL;
	if (!b)
		return NULL;
	b->gone = 0;
	if (strcmp(b->id, id)) {
		if (b->id[0] && old) {
			*old = b->priv;
			b->priv = NULL;
		}
		snprintf(b->id, sizeof(b->id), "%s", id);
	}
	return b;
}

void boxtable_set(struct boxtable *t, const char *name, const char *id)
{
	void *old;

	pthread_mutex_lock(&t->lock);
	boxtable_set_locked(t, name, id, &old);
	pthread_mutex_unlock(&t->lock);
	if (old && t->release)
		t->release(old);
}

int boxtable_id(struct boxtable *t, char *out, size_t size, const char *name)
{
	struct rbox *b;
	int rc = -ENOENT;

	pthread_mutex_lock(&t->lock);
	b = boxtable_find_locked(t, name);
	if (b && !b->gone && b->id[0]) {
		snprintf(out, size, "%s", b->id);
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void boxtable_forget_locked(struct rbox *b, void **old)
{
	b->gone = 1;
	b->id[0] = b->alt_id[0] = b->state[0] = '\0';
	*old = b->priv;
	b->priv = NULL;
}

void boxtable_forget(struct boxtable *t, const char *name)
{
	struct rbox *b;
	void *old = NULL;

	pthread_mutex_lock(&t->lock);
	b = boxtable_find_locked(t, name);
	if (b)
		boxtable_forget_locked(b, &old);
	pthread_mutex_unlock(&t->lock);
	if (old && t->release)
		t->release(old);
}

unsigned boxtable_sweep_begin(struct boxtable *t)
{
	unsigned gen;

	pthread_mutex_lock(&t->lock);
	gen = ++t->gen;
	pthread_mutex_unlock(&t->lock);
	return gen;
}

void boxtable_sweep_end(struct boxtable *t, unsigned gen)
{
	struct rbox *b;

	pthread_mutex_lock(&t->lock);
	for (b = t->boxes; b; b = b->next) {
		if ((int)(b->seen - gen) < 0 && !b->gone) {
			b->gone = 1;
			b->id[0] = b->alt_id[0] = '\0';
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t->listed);
	pthread_mutex_unlock(&t->lock);
}

int boxtable_fresh(struct boxtable *t, long ms)
{
	int fresh;

	pthread_mutex_lock(&t->lock);
	fresh = t->listed.tv_sec && ms_since(&t->listed) < ms;
	pthread_mutex_unlock(&t->lock);
	return fresh;
}

void boxtable_set_stopping(struct boxtable *t, const char *name, int on)
{
	struct rbox *b;

	pthread_mutex_lock(&t->lock);
	b = boxtable_get_locked(t, name);
	if (b)
		b->stopping += on ? 1 : -1;
	pthread_mutex_unlock(&t->lock);
}

int boxtable_stopping(struct boxtable *t, struct rbox *b)
{
	int s;

	pthread_mutex_lock(&t->lock);
	s = b->stopping;
	pthread_mutex_unlock(&t->lock);
	return s;
}

struct rbox *boxtable_seen_locked(struct boxtable *t, const char *name, const char *state,
				  unsigned gen)
{
	struct rbox *b = boxtable_get_locked(t, name);

	if (!b)
		return NULL;
	b->gone = 0;
	if (gen)
		b->seen = gen;
	snprintf(b->state, sizeof(b->state), "%s",
		 state && strlen(state) < sizeof(b->state) ? state : "?");
	return b;
}

void boxtable_seen(struct boxtable *t, const char *name, const char *state, unsigned gen)
{
	pthread_mutex_lock(&t->lock);
	boxtable_seen_locked(t, name, state, gen);
	pthread_mutex_unlock(&t->lock);
}

int boxtable_state_is(struct boxtable *t, const char *name, const char *state)
{
	struct rbox *b;
	int is;

	pthread_mutex_lock(&t->lock);
	b = boxtable_find_locked(t, name);
	is = b && !b->gone && !strcmp(b->state, state);
	pthread_mutex_unlock(&t->lock);
	return is;
}

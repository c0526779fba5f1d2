/* SPDX-License-Identifier: MIT */
/*
 * Docker: what the archive API's stat lacks, remembered.
 *
 * The engine's stat of a path (HEAD of its archive) costs one request
 * and no process, but has no owner, group, link count or access time; a script in the
 * container has them all but costs a process (about 100 ms of runc).
 * Every full lstat that a listing or a script brings is remembered here
 * by box and path, and a later stat of the same path that the engine
 * answers with the same file type takes the owner, group, link count and
 * access time from it (a read in the container that moves the access
 * time shows at the next listing).  A file's owner changes rarely, and never without a
 * listing or a chown through sbxfs to tell: a listing of its directory brings the truth
 * back.
 *
 * The memory is a fixed table of OWNERS_SLOTS entries, indexed by a hash
 * of box and path; a new entry takes its slot whatever was there.
 */
#include <pthread.h>

#include "docker.h"

#define OWNERS_SLOTS 4096
#define KEY_MAX 512 /* longer paths are not remembered */

struct owner {
	char key[KEY_MAX]; /* "BOX\0PATH"; key[0] == 0: empty */
	size_t klen;
	mode_t type;
	uid_t uid;
	gid_t gid;
	nlink_t nlink;
	struct timespec atime;
};

struct dk_owners {
	pthread_mutex_t lock;
	struct owner slot[OWNERS_SLOTS];
};

static size_t make_key(char *key, const char *box, const char *path)
{
	size_t b = strlen(box) + 1, p = strlen(path);

	if (b + p > KEY_MAX)
		return 0;
	memcpy(key, box, b);
	memcpy(key + b, path, p);
	return b + p;
}

static struct owner *slot_of(struct dk_owners *o, const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
	return &o->slot[h % OWNERS_SLOTS];
}

struct dk_owners *dk_owners_new(void)
{
	struct dk_owners *o = calloc(1, sizeof(*o));

	if (o)
		pthread_mutex_init(&o->lock, NULL);
	return o;
}

void dk_owners_free(struct dk_owners *o)
{
	if (!o)
		return;
	pthread_mutex_destroy(&o->lock);
	free(o);
}

void dk_owners_note(struct dk_owners *o, const char *box, const char *path,
		    const struct stat *st)
{
	char key[KEY_MAX];
	size_t len = make_key(key, box, path);
	struct owner *s;

	if (!len)
		return;
	pthread_mutex_lock(&o->lock);
	s = slot_of(o, key, len);
	memcpy(s->key, key, len);
	s->klen = len;
	s->type = st->st_mode & S_IFMT;
	s->uid = st->st_uid;
	s->gid = st->st_gid;
	s->nlink = st->st_nlink;
	s->atime = st->st_atim;
	pthread_mutex_unlock(&o->lock);
}

/* The slot that holds key, or NULL (o->lock held). */
static struct owner *held_locked(struct dk_owners *o, const char *key, size_t len)
{
	struct owner *s = slot_of(o, key, len);

	return s->klen == len && !memcmp(s->key, key, len) ? s : NULL;
}

int dk_owners_fill(struct dk_owners *o, struct stat *st, const char *box,
		   const char *path)
{
	char key[KEY_MAX];
	size_t len = make_key(key, box, path);
	struct owner *s;
	int found = 0;

	if (!len)
		return 0;
	pthread_mutex_lock(&o->lock);
	s = held_locked(o, key, len);
	if (s && s->type == (st->st_mode & S_IFMT)) {
		st->st_uid = s->uid;
		st->st_gid = s->gid;
		st->st_nlink = s->nlink;
		st->st_atim = s->atime;
		found = 1;
	}
	pthread_mutex_unlock(&o->lock);
	return found;
}

int dk_owners_known(struct dk_owners *o, const char *box, const char *path)
{
	char key[KEY_MAX];
	size_t len = make_key(key, box, path);
	int found;

	if (!len)
		return 0;
	pthread_mutex_lock(&o->lock);
	found = held_locked(o, key, len) != NULL;
	pthread_mutex_unlock(&o->lock);
	return found;
}

void dk_owners_forget(struct dk_owners *o, const char *box, const char *path)
{
	char key[KEY_MAX];
	size_t len = make_key(key, box, path);
	struct owner *s;

	if (!len)
		return;
	pthread_mutex_lock(&o->lock);
	if ((s = held_locked(o, key, len)))
		s->klen = 0;
	pthread_mutex_unlock(&o->lock);
}

void dk_forget(struct remote *r, const char *box, const char *path)
{
	dk_owners_forget(((struct dk *)r)->owners, box, path);
}

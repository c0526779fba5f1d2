/* SPDX-License-Identifier: MIT */
/* Staged copies of whole remote files; see stage.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbxfs/fsutil.h"
#include "sbxfs/log.h"
#include "sbxfs/provider.h"
#include "sbxfs/stage.h"

#define NBUCKETS 1024

struct stage {
	char *dir;
	uint64_t max;

	pthread_mutex_t lock; /* guards everything below and the entries' table fields */
	struct staged *table[NBUCKETS];
	struct staged lru; /* list head: unreferenced copies, oldest first */
	uint64_t bytes;	   /* sum of the entries' `bytes` */
};

static unsigned hash(const char *box, const char *path)
{
	unsigned h = 2166136261u;

	for (; *box; box++)
		h = (h ^ (unsigned char)*box) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 16777619u;
	return h % NBUCKETS;
}

struct stage *stage_new(const char *dir, uint64_t max_bytes)
{
	struct stage *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return NULL;
	rc = sbx_mkdir_p(dir, 0700);
	if (rc) {
		sbx_failf("cannot create the staging directory \"%s\": %s", dir,
			  strerror(-rc));
		free(s);
		return NULL;
	}
	s->dir = strdup(dir);
	s->max = max_bytes;
	s->lru.lru_next = s->lru.lru_prev = &s->lru;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void entry_free(struct staged *f)
{
	if (f->fd >= 0)
		close(f->fd);
	pthread_mutex_destroy(&f->lock);
	free(f->box);
	free(f->path);
	free(f);
}

void stage_free(struct stage *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < NBUCKETS; i++) {
		while (s->table[i]) {
			struct staged *f = s->table[i];

			s->table[i] = f->next;
			entry_free(f);
		}
	}
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

const char *stage_dir(const struct stage *s)
{
	return s->dir;
}

uint64_t stage_max(const struct stage *s)
{
	return s->max;
}

static void lru_unlink(struct staged *f)
{
	if (f->lru_next) {
		f->lru_next->lru_prev = f->lru_prev;
		f->lru_prev->lru_next = f->lru_next;
		f->lru_next = f->lru_prev = NULL;
	}
}

static void lru_append(struct stage *s, struct staged *f)
{
	f->lru_prev = s->lru.lru_prev;
	f->lru_next = &s->lru;
	s->lru.lru_prev->lru_next = f;
	s->lru.lru_prev = f;
}

/* Take f out of the table (it may stay alive through references). */
static void table_remove(struct stage *s, struct staged *f)
{
	struct staged **pp = &s->table[hash(f->box, f->path)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			f->next = NULL;
			return;
		}
	}
}

static struct staged *table_find(struct stage *s, const char *box, const char *path)
{
	struct staged *f = s->table[hash(box, path)];

	for (; f; f = f->next)
		if (!strcmp(f->box, box) && !strcmp(f->path, path))
			return f;
	return NULL;
}

/* Drop unreferenced copies, oldest first, until `need` more bytes fit. */
static void evict(struct stage *s, uint64_t need)
{
	while (s->bytes + need > s->max && s->lru.lru_next != &s->lru) {
		struct staged *f = s->lru.lru_next;

		lru_unlink(f);
		table_remove(s, f);
		s->bytes -= (uint64_t)f->bytes;
		entry_free(f);
	}
}

struct staged *stage_open(struct stage *s, const char *box, const char *path, int *err)
{
	struct staged *f;

	pthread_mutex_lock(&s->lock);
	f = table_find(s, box, path);
	if (f) {
		lru_unlink(f);
		f->refs++;
		f->opens++;
		pthread_mutex_unlock(&s->lock);
		return f;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto nomem;
	f->fd = open(s->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f->fd < 0) {
		*err = -errno;
		sbx_failf("cannot make a staging file in \"%s\": %s", s->dir,
			  strerror(errno));
		free(f);
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	f->box = strdup(box);
	f->path = strdup(path);
	if (!f->box || !f->path) {
		entry_free(f);
		goto nomem;
	}
	pthread_mutex_init(&f->lock, NULL);
	f->mode = S_IFREG | 0644;
	f->refs = f->opens = 1;
	f->owner = s;
	f->next = s->table[hash(box, path)];
	s->table[hash(box, path)] = f;
	pthread_mutex_unlock(&s->lock);
	return f;
nomem:
	pthread_mutex_unlock(&s->lock);
	*err = -ENOMEM;
	return NULL;
}

int stage_where(struct staged *f, char **box, char **path)
{
	struct stage *s = f->owner;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	*box = strdup(f->box);
	*path = strdup(f->path);
	if (f->orphan)
		rc = -ENOENT;
	pthread_mutex_unlock(&s->lock);
	if (rc || !*box || !*path) {
		/* Unlinked or no memory: the caller gets nothing to free. */
		free(*box);
		free(*path);
		*box = *path = NULL;
		return rc ? rc : -ENOMEM;
	}
	return 0;
}

int stage_shared(struct staged *f)
{
	struct stage *s = f->owner;
	int shared;

	pthread_mutex_lock(&s->lock);
	shared = f->opens > 1;
	pthread_mutex_unlock(&s->lock);
	return shared;
}

/* Recount f's size against the budget.  Called with s->lock held. */
static void account(struct stage *s, struct staged *f)
{
	struct stat st;
	off_t now = fstat(f->fd, &st) ? f->bytes : st.st_blocks * 512;

	s->bytes = s->bytes - (uint64_t)f->bytes + (uint64_t)now;
	f->bytes = now;
}

void stage_close(struct staged *f)
{
	struct stage *s = f->owner;

	pthread_mutex_lock(&s->lock);
	account(s, f);
	f->opens--;
	if (--f->refs == 0) {
		/* Keep a clean copy of a live file for the next open. */
		if (f->orphan || f->dirty || !f->fetched) {
			table_remove(s, f);
			s->bytes -= (uint64_t)f->bytes;
			entry_free(f);
		} else {
			lru_append(s, f);
		}
	}
	evict(s, 0);
	pthread_mutex_unlock(&s->lock);
}

int stage_fstat(const struct staged *f, struct stat *st)
{
	if (fstat(f->fd, st))
		return -errno;
	st->st_mode = f->mode;
	st->st_ino = 0; /* the copy's, not the remote file's */
	st->st_dev = 0;
	if (f->owner_known) {
		st->st_uid = f->uid;
		st->st_gid = f->gid;
	}
	return 0;
}

int stage_stat(struct stage *s, const char *box, const char *path, struct stat *st)
{
	struct staged *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&s->lock);
	f = table_find(s, box, path);
	if (f && f->opens) {
		f->refs++;
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_lock(&f->lock);
		if (f->dirty && !stage_fstat(f, st)) {
			st->st_nlink = 1;
			rc = 0;
		}
		pthread_mutex_unlock(&f->lock);
		pthread_mutex_lock(&s->lock);
		f->refs--;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stage_reserve(struct staged *f, off_t size)
{
	struct stage *s = f->owner;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (size > f->bytes) {
		uint64_t need = (uint64_t)(size - f->bytes);

		evict(s, need);
		if (s->bytes + need > s->max)
			rc = -EFBIG;
		else
			s->bytes += need, f->bytes = size;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc)
		sbx_failf("%lld bytes do not fit in the staging cache (%llu bytes, "
			  "-o cache_max)",
			  (long long)size, (unsigned long long)s->max);
	return rc;
}

int stage_put(struct staged *f, off_t off, const void *buf, size_t len)
{
	const char *p = buf;
	int rc = stage_reserve(f, off + (off_t)len);

	while (!rc && len) {
		ssize_t n = pwrite(f->fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			sbx_failf("cannot write a staged copy: %s", strerror(-rc));
			break;
		}
		p += n, len -= (size_t)n, off += n;
	}
	return rc;
}

int stage_truncate(struct stage *s, const char *box, const char *path, off_t size)
{
	struct staged *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&s->lock);
	f = table_find(s, box, path);
	if (!f || !f->opens) {
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	f->refs++; /* an open handle keeps it alive: dropping ours frees nothing */
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&f->lock);
	/* Only a copy that will be uploaded may take the truncation: a
	 * reader's copy is never uploaded, and the change would be lost. */
	if (f->writers || f->dirty) {
		rc = stage_reserve(f, size);
		if (!rc && ftruncate(f->fd, size))
			rc = -errno;
		if (!rc)
			f->dirty = 1;
	}
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&s->lock);
	f->refs--;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int stage_unlink(struct stage *s, const char *box, const char *path)
{
	struct staged *f;
	int local_only = 0;

	pthread_mutex_lock(&s->lock);
	f = table_find(s, box, path);
	if (f) {
		table_remove(s, f);
		if (f->refs) {
			/* Read without the copy's lock: should an upload race
			 * with this, the server had the file and its delete
			 * succeeded, so the answer does not matter then. */
			local_only = f->dirty && !f->fetched;
			f->orphan = 1; /* the last close frees it */
		} else {
			lru_unlink(f);
			s->bytes -= (uint64_t)f->bytes;
			entry_free(f);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return local_only;
}

/* Give f, which is in no bucket, the path `to` + what followed `from` in
 * its path, and put it in its new bucket. */
static int rename_one(struct stage *s, struct staged *f, const char *from, const char *to)
{
	char *np;

	if (asprintf(&np, "%s%s", to, f->path + strlen(from)) < 0)
		return -ENOMEM;
	free(f->path);
	f->path = np;
	f->next = s->table[hash(f->box, np)];
	s->table[hash(f->box, np)] = f;
	return 0;
}

void stage_rename(struct stage *s, const char *box, const char *from, const char *to)
{
	size_t n = strlen(from), i;
	struct staged *moved = NULL;

	stage_unlink(s, box, to);
	pthread_mutex_lock(&s->lock);
	/* Take them all out first: renaming moves them to buckets this loop
	 * may not have visited yet. */
	for (i = 0; i < NBUCKETS; i++) {
		struct staged **pp = &s->table[i];

		while (*pp) {
			struct staged *f = *pp;

			if (!strcmp(f->box, box) && !strncmp(f->path, from, n) &&
			    (f->path[n] == '\0' || f->path[n] == '/')) {
				*pp = f->next;
				f->next = moved;
				moved = f;
			} else {
				pp = &f->next;
			}
		}
	}
	while (moved) {
		struct staged *f = moved;

		moved = f->next;
		f->next = NULL;
		if (!rename_one(s, f, from, to))
			continue;
		if (f->refs) { /* out of memory: never upload it under a stale name */
			f->orphan = 1;
		} else {
			lru_unlink(f);
			s->bytes -= (uint64_t)f->bytes;
			entry_free(f);
		}
	}
	pthread_mutex_unlock(&s->lock);
}

struct staged *stage_lookup(struct stage *s, const char *box, const char *path)
{
	struct staged *f;

	pthread_mutex_lock(&s->lock);
	f = table_find(s, box, path);
	if (f && f->opens)
		f->refs++;
	else
		f = NULL;
	pthread_mutex_unlock(&s->lock);
	return f;
}

void stage_unref(struct staged *f)
{
	struct stage *s = f->owner;

	/* Only taken on open copies, whose handles outlive this reference. */
	pthread_mutex_lock(&s->lock);
	f->refs--;
	pthread_mutex_unlock(&s->lock);
}

void stage_drop_box(struct stage *s, const char *box)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < NBUCKETS; i++) {
		struct staged **pp = &s->table[i];

		while (*pp) {
			struct staged *f = *pp;

			if (strcmp(f->box, box)) {
				pp = &f->next;
				continue;
			}
			*pp = f->next;
			f->next = NULL;
			if (f->refs) {
				f->orphan = 1;
			} else {
				lru_unlink(f);
				s->bytes -= (uint64_t)f->bytes;
				entry_free(f);
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/box.h"
#include "sbxfs/node.h"

#define NBUCKETS 65536

/* Nodes below root/ kept, with their numbers, after the kernel forgot them
 * (see node.h), oldest dropped first. */
#define KEEP_MAX 65536

struct node_table {
	pthread_mutex_t lock; /* guards everything here and in the nodes */
	size_t path_max;      /* node_path's bound, with the NUL */
	fuse_ino_t root_ino;
	fuse_ino_t next_ino;
	uint64_t generation;
	struct node *by_ino[NBUCKETS];
	struct node *by_name[NBUCKETS];
	struct node *by_id[NBUCKETS];
	struct node *kept_old, *kept_new; /* the kept nodes, oldest first */
	size_t nkept;
};

static size_t ino_bucket(fuse_ino_t ino)
{
	return (size_t)(ino * 0x9E3779B97F4A7C15ull >> 48) % NBUCKETS;
}

static size_t name_bucket(fuse_ino_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		h ^= *s;
		h *= 1099511628211ull;
	}
	return (size_t)(h % NBUCKETS);
}

static size_t id_bucket(const struct box *box, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)(uintptr_t)box ^ ((uint64_t)dev << 32) ^ (uint64_t)ino;

	return (size_t)((h * 0x9E3779B97F4A7C15ull) >> 48) % NBUCKETS;
}

static void unlink_id_locked(struct node_table *t, struct node *n)
{
	struct node **pp;

	if (!n->backing)
		return;
	pp = &t->by_id[id_bucket(n->box, n->dev, n->backing)];
	while (*pp && *pp != n)
		pp = &(*pp)->next_id;
	if (*pp)
		*pp = n->next_id;
	n->next_id = NULL;
	n->backing = 0;
}

static struct node *find_id_locked(struct node_table *t, const struct box *box, dev_t dev,
				   ino_t ino)
{
	struct node *n = t->by_id[id_bucket(box, dev, ino)];

	while (n && (n->box != box || n->dev != dev || n->backing != ino))
		n = n->next_id;
	return n;
}

struct node_table *node_table_new(fuse_ino_t root_ino)
{
	struct node_table *t = calloc(1, sizeof(*t));
	struct node *root;

	if (!t)
		return NULL;
	root = calloc(1, sizeof(*root));
	if (!root) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	root->ino = root_ino;
	root->kind = NODE_ROOT;
	root->nlookup = 1; /* never forgotten */
	root->name = strdup("");
	t->by_ino[ino_bucket(root->ino)] = root;
	t->root_ino = root_ino;
	t->path_max = SBX_PATH_MAX;
	t->next_ino = root_ino + 1;
	return t;
}

static void node_free(struct node *n)
{
	box_put(n->box);
	free(n->name);
	free(n);
}

void node_table_free(struct node_table *t)
{
	for (size_t b = 0; b < NBUCKETS; b++) {
		struct node *n = t->by_ino[b], *next;

		for (; n; n = next) {
			next = n->next_ino;
			node_free(n);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct node *find_locked(struct node_table *t, fuse_ino_t ino)
{
	struct node *n = t->by_ino[ino_bucket(ino)];

	while (n && n->ino != ino)
		n = n->next_ino;
	return n;
}

struct node *node_find(struct node_table *t, fuse_ino_t ino)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_locked(t, ino);
	pthread_mutex_unlock(&t->lock);
	return n;
}

static struct node *child_locked(struct node_table *t, struct node *parent,
				 const char *name)
{
	struct node *n = t->by_name[name_bucket(parent->ino, name)];

	while (n && (n->parent != parent || !n->name || strcmp(n->name, name)))
		n = n->next_name;
	return n;
}

static void unlink_name_locked(struct node_table *t, struct node *n)
{
	struct node **pp;

	if (!n->name || !n->parent)
		return;
	pp = &t->by_name[name_bucket(n->parent->ino, n->name)];
	while (*pp && *pp != n)
		pp = &(*pp)->next_name;
	if (*pp)
		*pp = n->next_name;
	n->next_name = NULL;
	free(n->name);
	n->name = NULL;
}

static void link_name_locked(struct node_table *t, struct node *n, const char *name)
{
	size_t b = name_bucket(n->parent->ino, name);

	n->next_name = t->by_name[b];
	t->by_name[b] = n;
}

static void drop_if_unused_locked(struct node_table *t, struct node *n);

static void release_parent_locked(struct node_table *t, struct node *parent)
{
	if (parent && --parent->children == 0)
		drop_if_unused_locked(t, parent);
}

/* n is in use again (a lookup, a child): out of the kept list. */
static void unkeep_locked(struct node_table *t, struct node *n)
{
	if (!n->kept)
		return;
	*(n->kept_prev ? &n->kept_prev->kept_next : &t->kept_old) = n->kept_next;
	*(n->kept_next ? &n->kept_next->kept_prev : &t->kept_new) = n->kept_prev;
	n->kept_prev = n->kept_next = NULL;
	n->kept = 0;
	t->nkept--;
}

static void free_locked(struct node_table *t, struct node *n);

/* Keep an unused node below root/ that still has its name: a lookup of
 * that name gives the same number again.  The oldest go past KEEP_MAX. */
static void keep_locked(struct node_table *t, struct node *n)
{
	if (n->kept)
		return;
	n->kept = 1;
	n->kept_prev = t->kept_new;
	*(t->kept_new ? &t->kept_new->kept_next : &t->kept_old) = n;
	t->kept_new = n;
	t->nkept++;
	while (t->nkept > KEEP_MAX) {
		struct node *old = t->kept_old;

		unkeep_locked(t, old);
		free_locked(t, old);
	}
}

/* n loses its name for good: a kept node goes, as nobody can find it. */
static void unname_locked(struct node_table *t, struct node *n)
{
	unlink_name_locked(t, n);
	if (n->kept) {
		unkeep_locked(t, n);
		free_locked(t, n);
	}
}

static void drop_if_unused_locked(struct node_table *t, struct node *n)
{
	if (n->nlookup || n->children || n->ino == t->root_ino)
		return;
	if (n->kind == NODE_FS && n->name)
		keep_locked(t, n);
	else
		free_locked(t, n);
}

/* Unused n goes (lock held), and its parent may follow. */
static void free_locked(struct node_table *t, struct node *n)
{
	struct node **pp, *parent;

	unlink_name_locked(t, n);
	unlink_id_locked(t, n);
	pp = &t->by_ino[ino_bucket(n->ino)];
	while (*pp && *pp != n)
		pp = &(*pp)->next_ino;
	if (*pp)
		*pp = n->next_ino;
	parent = n->parent;
	node_free(n);
	release_parent_locked(t, parent);
}

/* Give `n` the name (parent, name); it loses the one it had.  Lock held. */
static int rename_locked(struct node_table *t, struct node *n, struct node *parent,
			 const char *name)
{
	char *copy = strdup(name);

	if (!copy)
		return -ENOMEM;
	unlink_name_locked(t, n);
	if (n->parent != parent) {
		struct node *old = n->parent;

		parent->children++;
		unkeep_locked(t, parent);
		n->parent = parent;
		release_parent_locked(t, old);
	}
	n->name = copy;
	link_name_locked(t, n, name);
	return 0;
}

struct node *node_lookup(struct node_table *t, struct node *parent, const char *name,
			 enum node_kind kind, struct box *box, unsigned cmd, int cfile,
			 const struct stat *st)
{
	int identity = kind == NODE_FS && st && st->st_ino && !S_ISDIR(st->st_mode);
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = child_locked(t, parent, name);
	if (n && (n->kind != kind || n->cmd != cmd || n->box != box ||
		  (identity && (n->backing != st->st_ino || n->dev != st->st_dev)) ||
		  (kind == NODE_FS && st && !identity && n->backing))) {
		unname_locked(t, n); /* the name means something else now */
		n = NULL;
	}
	if (!n && identity) {
		n = find_id_locked(t, box, st->st_dev, st->st_ino);
		if (n && rename_locked(t, n, parent, name))
			n = NULL;
	}
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n || !(n->name = strdup(name))) {
			free(n);
			pthread_mutex_unlock(&t->lock);
			return NULL;
		}
		n->ino = t->next_ino++;
		n->generation = t->generation;
		n->parent = parent;
		parent->children++;
		unkeep_locked(t, parent);
		n->kind = kind;
		n->box = box ? box_ref(box) : NULL;
		n->cmd = cmd;
		n->cfile = cfile;
		n->next_ino = t->by_ino[ino_bucket(n->ino)];
		t->by_ino[ino_bucket(n->ino)] = n;
		link_name_locked(t, n, name);
		if (identity) {
			size_t b = id_bucket(box, st->st_dev, st->st_ino);

			n->dev = st->st_dev;
			n->backing = st->st_ino;
			n->next_id = t->by_id[b];
			t->by_id[b] = n;
		}
	}
	unkeep_locked(t, n);
	n->nlookup++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

fuse_ino_t node_child_ino(struct node_table *t, struct node *parent, const char *name)
{
	struct node *n;
	fuse_ino_t ino;

	pthread_mutex_lock(&t->lock);
	n = child_locked(t, parent, name);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

unsigned node_child_opens(struct node_table *t, struct node *parent, const char *name)
{
	struct node *n;
	unsigned opens;

	pthread_mutex_lock(&t->lock);
	n = child_locked(t, parent, name);
	opens = n ? __atomic_load_n(&n->opens, __ATOMIC_ACQUIRE) : 0;
	pthread_mutex_unlock(&t->lock);
	return opens;
}

void node_forget(struct node_table *t, fuse_ino_t ino, uint64_t count)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_locked(t, ino);
	if (n && n->ino != t->root_ino) {
		n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
		drop_if_unused_locked(t, n);
	}
	pthread_mutex_unlock(&t->lock);
}

void node_unname(struct node_table *t, struct node *parent, const char *name)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = child_locked(t, parent, name);
	if (n)
		unname_locked(t, n);
	pthread_mutex_unlock(&t->lock);
}

int node_rename(struct node_table *t, struct node *parent, const char *name,
		struct node *newparent, const char *newname)
{
	struct node *n, *victim;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	victim = child_locked(t, newparent, newname);
	if (victim)
		unname_locked(t, victim);
	n = child_locked(t, parent, name);
	if (n)
		rc = rename_locked(t, n, newparent, newname);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int path_locked(struct node *n, const char *extra, char *out, size_t size)
{
	const char *parts[512];
	int depth = 0;
	size_t len = 0;

	if (extra)
		parts[depth++] = extra;
	for (; n && n->kind == NODE_FS; n = n->parent) {
		if (!n->name)
			return -ENOENT;
		if (depth == 512)
			return -ENAMETOOLONG;
		parts[depth++] = n->name;
	}
	if (!n || n->kind != NODE_FSROOT)
		return -ENOENT;
	if (depth == 0) {
		if (size < 2)
			return -ENAMETOOLONG;
		strcpy(out, "/");
		return 0;
	}
	while (depth--) {
		size_t l = strlen(parts[depth]);

		if (len + l + 2 > size)
			return -ENAMETOOLONG;
		out[len++] = '/';
		memcpy(out + len, parts[depth], l);
		len += l;
	}
	out[len] = '\0';
	return 0;
}

void node_table_set_path_max(struct node_table *t, size_t max)
{
	t->path_max = max;
}

int node_path(struct node_table *t, struct node *n, char *out, size_t size)
{
	int rc;

	if (size > t->path_max)
		size = t->path_max;
	pthread_mutex_lock(&t->lock);
	rc = path_locked(n, NULL, out, size);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int node_child_path(struct node_table *t, struct node *parent, const char *name,
		    char *out, size_t size)
{
	int rc;

	if (size > t->path_max)
		size = t->path_max;
	pthread_mutex_lock(&t->lock);
	rc = path_locked(parent, name, out, size);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

struct visit {
	fuse_ino_t parent, ino;
	char *name;
};

void node_visit_box(struct node_table *t, const struct box *box, node_visit_fn fn,
		    void *ctx)
{
	struct visit *v = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (struct node *x = t->by_ino[b]; x; x = x->next_ino) {
			if (x->box != box || x->kind != NODE_FS || !x->name ||
			    !x->nlookup)
				continue; /* the kernel knows nothing of it */
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct visit *nv = realloc(v, nc * sizeof(*nv));

				if (!nv)
					goto done;
				v = nv;
				cap = nc;
			}
			v[n].parent = x->parent->ino;
			v[n].ino = x->ino;
			v[n].name = strdup(x->name);
			if (v[n].name)
				n++;
		}
	}
done:
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		fn(ctx, v[i].parent, v[i].ino, v[i].name);
		free(v[i].name);
	}
	free(v);
}
